package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/e2e/lab"
	"github.com/herald-lb/herald/internal/memberlistkey"
	"github.com/herald-lb/herald/speaker/members"
)

// TestMemberlistKeyRotation rotates the memberlist key of the running speakers in the three
// steps of package memberlistkey (stage, promote, retire), each by editing the Secret and waiting
// until every speaker reports it applied (its metrics), while a client sends a request to a
// layer-2 IP every 20 ms. No speaker may be declared dead, no IP may move, every request must be
// answered. A speaker restarted afterwards, which knows only the new key, must rejoin the others:
// they really speak the new key.
func TestMemberlistKeyRotation(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 5*time.Minute)
	ns := newNamespace(t, l, "rotate")
	names := []string{"web", "api", "db"}
	var ips []netip.Addr
	owners := map[string]string{}
	for _, name := range names {
		ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: name, Pool: lab.L2PoolName}, 1)[0]
		owner, err := waitL2Owner(ctx, l, ns, name, "")
		must(t, err)
		_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == owner })
		must(t, err)
		ips = append(ips, ip)
		owners[name] = owner
	}
	logs := speakerLogOffsets(t, l)
	stream := l.StartStream("l2client", lab.URL(ips[0], 80), 20*time.Millisecond, time.Second)
	defer stream.Stop()

	key := client.ObjectKey{Namespace: lab.HeraldNamespace, Name: lab.MemberlistSecret}
	var sec corev1.Secret
	must(t, l.Client.Get(ctx, key, &sec))
	oldKey, err := memberlistkey.FromSecret(&sec)
	must(t, err)
	newKey := make([]byte, memberlistkey.Size)
	_, err = rand.Read(newKey)
	must(t, err)
	oldFP, newFP := members.Fingerprint(oldKey), members.Fingerprint(newKey)
	t.Logf("rotating the memberlist key %s -> %s", oldFP, newFP)

	steps := []struct {
		name    string
		edit    func(*corev1.Secret) error
		keys    float64
		primary string
	}{
		{"stage", func(s *corev1.Secret) error { return memberlistkey.Stage(s, newKey) }, 2, oldFP},
		{"promote", memberlistkey.Promote, 2, newFP},
		{"retire", memberlistkey.Retire, 1, newFP},
	}
	for _, st := range steps {
		var cur corev1.Secret
		must(t, l.Client.Get(ctx, key, &cur))
		must(t, st.edit(&cur))
		must(t, l.Client.Update(ctx, &cur))
		begin := time.Now()
		must(t, waitKeyring(ctx, l, st.keys, st.primary))
		t.Logf("%s: every speaker applied it %s after the Secret changed", st.name, time.Since(begin).Round(time.Millisecond))
	}
	// Memberlist gives a suspected member up to 1.3 s to refute: watch that long before counting.
	watch := time.NewTimer(2 * time.Second)
	<-watch.C
	samples := stream.Stop()

	deaths, moves := scanSpeakerLogs(t, l, logs, ips)
	for _, d := range deaths {
		t.Errorf("speaker declared dead during the rotation: %s", d)
	}
	for _, m := range moves {
		t.Errorf("IP moved during the rotation: %s", m)
	}
	if f, c := lab.Failures(samples), ownerChanges(samples); f > 0 || c > 0 || len(samples) < 50 {
		t.Errorf("%d requests to %s during the rotation: %d failed, %d changes of the answering node; want many, none failed, no change",
			len(samples), ips[0], f, c)
	}
	for i, name := range names {
		if o, err := l.L2Owners(ctx, ns, name); err != nil || !slices.Equal(o, []string{owners[name]}) {
			t.Errorf("owner of %s (%s) after the rotation: %v, %v; want %s", name, ips[i], o, err, owners[name])
		}
	}

	// A speaker that starts now reads only the new key: it joins only if the others use it.
	restarted := l.Nodes[len(l.Nodes)-1].Name
	restartSpeakerAfter(t, l, restarted)
	must(t, l.StopSpeaker(restarted, syscall.SIGTERM))
	must(t, l.StartSpeaker(restarted))
	must(t, waitSpeakersConverged(ctx, l))
	must(t, waitKeyring(ctx, l, 1, newFP))
}

// waitKeyring waits until every speaker reports keys keys in its memberlist keyring, the primary
// one with fingerprint primary.
func waitKeyring(ctx context.Context, l *lab.Lab, keys float64, primary string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, n := range l.Nodes {
			m, err := scrapeSpeaker(l, n.Name)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			got, fp := m["herald_speaker_memberlist_keys"], m[`herald_speaker_memberlist_primary_key{fingerprint="`+primary+`"}`]
			if got != keys || fp != 1 {
				last = fmt.Sprintf("%s has %v keys, primary %s: %v", n.Name, got, primary, fp)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return withHerald(fmt.Errorf("waiting for every speaker to hold %v keys with primary %s (%s): %w", keys, primary, last, err), l)
	}
	return nil
}
