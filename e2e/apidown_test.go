package e2e

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/e2e/lab"
)

// nftNoAPI is the table blockAPI adds in a node.
const nftNoAPI = "herald_lab_noapi"

// blockAPI makes node drop its traffic to the API server, as if the control plane were down.
func blockAPI(ctx context.Context, l *lab.Lab, node string) error {
	api := l.Plan.APIServerAddr
	for _, c := range [][]string{
		{"nft", "add", "table", "inet", nftNoAPI},
		{"nft", "add", "chain", "inet", nftNoAPI, "out", "{ type filter hook output priority 0; policy accept; }"},
		{"nft", "add", "rule", "inet", nftNoAPI, "out", "ip", "daddr", api.Addr().String(), "tcp", "dport", strconv.Itoa(int(api.Port())), "drop"},
	} {
		if _, err := l.Exec(ctx, node, c...); err != nil {
			return err
		}
	}
	return nil
}

func unblockAPI(ctx context.Context, l *lab.Lab, node string) error {
	_, err := l.Exec(ctx, node, "nft", "delete", "table", "inet", nftNoAPI)
	return err
}

// TestLayer2WithoutAPIServer: liveness comes from memberlist, not from the API server. With every
// node cut off from the API server, the speakers keep answering for the IP they announced, and when
// the owner fails (its speaker killed and its traffic dropped), another node takes the IP over and
// the segment client reaches the Service again, all without the API server.
func TestLayer2WithoutAPIServer(t *testing.T) {
	l := requireHerald(t)
	ctx := deadline(t, 2*time.Minute)
	ns := newNamespace(t, l, "noapi")
	ip := service(t, ctx, l, lab.ServiceSpec{Namespace: ns, Name: "web", Pool: lab.L2PoolName, Families: []corev1.IPFamily{corev1.IPv4Protocol}}, 1)[0]
	owner, err := waitL2Owner(ctx, l, ns, "web", "")
	must(t, err)
	_, err = l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b == owner })
	must(t, err)

	for _, n := range l.Nodes {
		must(t, blockAPI(ctx, l, n.Name))
	}
	t.Cleanup(func() {
		for _, n := range l.Nodes {
			if err := unblockAPI(context.Background(), l, n.Name); err != nil {
				t.Errorf("unblocking the API server in %s: %v", n.Name, err)
			}
		}
	})

	// The announcement stays: ARP still resolves the IP to the owner.
	l.FlushNeighbor(ctx, "l2client", ip)
	mac, err := l.NeighborMAC(ctx, "l2client", ip)
	must(t, err)
	ownerMAC, err := l.MAC(ctx, owner)
	must(t, err)
	if mac != ownerMAC {
		t.Fatalf("with the API server unreachable, %s resolves to %s, want the owner %s (%s)", ip, mac, owner, ownerMAC)
	}

	// The owner fails; memberlist alone moves the IP.
	restartSpeakerAfter(t, l, owner)
	must(t, l.BlockTraffic(ctx, owner, ip))
	t.Cleanup(func() { _ = l.UnblockTraffic(context.Background(), owner) })
	must(t, l.StopSpeaker(owner, syscall.SIGKILL))
	body, err := l.WaitCurl(ctx, "l2client", ip, 80, func(b string) bool { return b != "" && b != owner })
	must(t, err)
	t.Logf("API server unreachable: after %s failed, %s is served by %s", owner, ip, body)
}
