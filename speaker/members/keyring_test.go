package members

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	keyA = bytes.Repeat([]byte("A"), 32)
	keyB = bytes.Repeat([]byte("B"), 32)
)

// holdAll checks every 10ms for d that every member sees all of want, and fails the test for
// each moment one does not.
func holdAll(t *testing.T, d time.Duration, what string, ms []*testMember, want ...string) {
	t.Helper()
	slices.Sort(want)
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, m := range ms {
			if got := m.Members.Members(); !slices.Equal(got, want) {
				t.Fatalf("%s: %s sees %v, want %v", what, m.name, got, want)
			}
		}
		select {
		case <-tick.C:
		case <-end.C:
			return
		}
	}
}

// TestKeyRotation rotates the key of a running cluster in the three steps of SetKeys, one
// member after the other with time between them (the worst order: members disagree for as long
// as possible), and checks that no member ever loses sight of another.
func TestKeyRotation(t *testing.T) {
	a, b, c := cluster(t, keyA)
	all := []*testMember{a, b, c}
	// Longer than the longest suspicion (SuspicionMaxTimeoutMult * 210ms = 1.26s): a member
	// the others could not understand would be declared dead within it.
	const hold = 1500 * time.Millisecond
	steps := []struct {
		name      string
		primary   []byte
		secondary [][]byte
		want      []string
	}{
		{"install B", keyA, [][]byte{keyB}, []string{Fingerprint(keyA), Fingerprint(keyB)}},
		{"make B primary", keyB, [][]byte{keyA}, []string{Fingerprint(keyB), Fingerprint(keyA)}},
		{"remove A", keyB, nil, []string{Fingerprint(keyB)}},
	}
	for _, st := range steps {
		for _, m := range all {
			changed, err := m.SetKeys(st.primary, st.secondary)
			if err != nil || !changed {
				t.Fatalf("%s on %s: SetKeys = %v, %v; want true, nil", st.name, m.name, changed, err)
			}
			if diff := cmp.Diff(st.want, m.KeyFingerprints()); diff != "" {
				t.Errorf("%s on %s: keys (-want +got):\n%s", st.name, m.name, diff)
			}
			holdAll(t, hold, st.name+" applied on "+m.name, all, "a", "b", "c")
		}
	}
	if changed, err := a.SetKeys(keyB, nil); changed || err != nil {
		t.Errorf("SetKeys with the keys in use = %v, %v; want false, nil", changed, err)
	}
	for _, m := range all {
		for _, o := range all {
			if slices.Contains(m.events.kinds(o.name), Gone) {
				t.Errorf("%s saw %s go during the rotation: %v", m.name, o.name, m.events.kinds(o.name))
			}
		}
	}

	// The cluster now speaks B only: a member with B joins, one with A does not.
	d := start(t, "d", 0, keyB, a)
	waitFor(t, 5*time.Second, "member with the new key joins", append(all, d), sees("a", "b", "c", "d"))
	old := start(t, "old", 0, keyA)
	if n, err := old.Join([]string{fmt.Sprintf("127.0.0.1:%d", a.port)}); !errors.Is(err, ErrNoPeerReached) {
		t.Errorf("joining with the removed key: Join = %d, %v; want %v", n, err, ErrNoPeerReached)
	}
}

// TestKeySwitchWithoutInstallSplits is the rotation done wrong, in one step: the member that
// switched cannot be understood by the others and is declared dead. It shows that
// TestKeyRotation would see a split.
func TestKeySwitchWithoutInstallSplits(t *testing.T) {
	a, b, c := cluster(t, keyA)
	if _, err := a.SetKeys(keyB, nil); err != nil {
		t.Fatalf("SetKeys: %v", err)
	}
	waitFor(t, 5*time.Second, "member with another key declared dead", []*testMember{b, c}, lacks("a"))
}

func TestSetKeysErrors(t *testing.T) {
	plain := start(t, "plain", 0, nil)
	if _, err := plain.SetKeys(keyA, nil); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("SetKeys on an unencrypted member: %v, want %v", err, ErrNotEncrypted)
	}
	enc := start(t, "enc", 0, keyA)
	if _, err := enc.SetKeys(keyB, [][]byte{[]byte("short")}); err == nil || !strings.Contains(err.Error(), "key 1") {
		t.Errorf("SetKeys with a 5-byte key: %v, want an error naming key 1", err)
	}
	if diff := cmp.Diff([]string{Fingerprint(keyA)}, enc.KeyFingerprints()); diff != "" {
		t.Errorf("keys after a refused SetKeys (-want +got):\n%s", diff)
	}
}

func TestKeyringFromConfig(t *testing.T) {
	// a is at step 2 of a rotation (sends with B), b at step 1 (sends with A): each needs its
	// secondary key to understand the other.
	a := startWith(t, "a", 0, func(c *Config) { c.SecretKey, c.SecondaryKeys = keyB, [][]byte{keyA} })
	b := startWith(t, "b", 0, func(c *Config) { c.SecretKey, c.SecondaryKeys = keyA, [][]byte{keyB} }, a)
	waitFor(t, 5*time.Second, "members one rotation step apart converge", []*testMember{a, b}, sees("a", "b"))
	if diff := cmp.Diff([]string{Fingerprint(keyB), Fingerprint(keyA)}, a.KeyFingerprints()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

func TestTrafficAndMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := startWith(t, "a", 0, func(c *Config) { c.SecretKey, c.Registerer = keyA, reg })
	b := start(t, "b", 0, keyA, a)
	waitFor(t, 5*time.Second, "converge", []*testMember{a, b}, sees("a", "b"))
	if tr := b.Traffic(); tr.TCPStreams == 0 || tr.TCPBytes == 0 {
		t.Errorf("b joined a over TCP but counted %+v", tr)
	}
	before := a.Traffic()
	waitFor(t, 5*time.Second, "a sends probes", []*testMember{a}, func(m *testMember) bool {
		return m.Traffic().UDPPackets >= before.UDPPackets+10
	})
	got := a.Traffic().Sub(before)
	if got.UDPBytes < got.UDPPackets {
		t.Errorf("%d datagrams of %d bytes in all: bytes not counted", got.UDPPackets, got.UDPBytes)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
			}
			found[name] += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if n := found["herald_speaker_memberlist_primary_key{fingerprint="+Fingerprint(keyA)+"}"]; n != 1 {
		t.Errorf("primary key metric for %s = %v, want 1; metrics: %v", Fingerprint(keyA), n, found)
	}
	if found["herald_speaker_memberlist_sent_packets_total"] < 10 || found["herald_speaker_memberlist_keys"] != 1 {
		t.Errorf("metrics = %v; want at least 10 packets and 1 key", found)
	}
	if _, ok := found["herald_speaker_memberlist_health_score"]; !ok {
		t.Errorf("no health score metric in %v", found)
	}
}
