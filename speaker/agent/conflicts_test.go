package agent

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/herald-lb/herald/speaker/layer2"
)

func TestConflictMessage(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:02")
	ip := netip.MustParseAddr("198.51.100.105")
	tests := []struct {
		name    string
		members []string
		c       layer2.Conflict
		want    []string
	}{
		{
			name: "foreign host before the first announcement",
			c:    layer2.Conflict{IP: ip, Interface: "eth0", MAC: mac, NeverAnnounced: true},
			want: []string{"198.51.100.105 is already in use by 02:00:00:00:00:02, a host that is not a Herald speaker, on interface eth0 of node n1", "does not announce it", "give the Service another one"},
		},
		{
			name: "foreign host later",
			c:    layer2.Conflict{IP: ip, Interface: "eth0", MAC: mac},
			want: []string{"also answered by 02:00:00:00:00:02, a host that is not a Herald speaker", "duplicate address", "node n1 stopped answering"},
		},
		{
			name:    "split brain, yielded",
			members: []string{"n1"},
			c:       layer2.Conflict{IP: ip, Interface: "eth0", MAC: mac, Node: "n2"},
			want:    []string{"also announced by node n2 (02:00:00:00:00:02)", "split brain", "port 7946", "memberlist key", "node n1 stopped answering and leaves the address to node n2"},
		},
		{
			name:    "split brain, kept",
			members: []string{"n1"},
			c:       layer2.Conflict{IP: ip, Interface: "eth0", MAC: mac, Node: "n2", Answering: true},
			want:    []string{"split brain", "node n1 keeps answering, node n2 stops"},
		},
		{
			name:    "the other node's host answers while the speakers see each other",
			members: []string{"n1", "n2"},
			c:       layer2.Conflict{IP: ip, Interface: "eth0", MAC: mac, Node: "n2"},
			want:    []string{"the address is configured on node n2", "IPVS mode without strictARP", "node n1 stopped answering"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Agent{opts: Options{NodeName: "n1"}}
			msg := a.conflictMessage(tt.c, tt.members)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if tt.c.Node != "" && tt.members != nil && len(tt.members) == 2 && strings.Contains(msg, "split brain") {
				t.Errorf("message %q speaks of a split brain between speakers that see each other", msg)
			}
		})
	}
}
