package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// nftMemberlistTable is the table IsolateMemberlist adds.
const nftMemberlistTable = "herald_lab_partition"

// IsolateMemberlist drops every memberlist packet (TCP and UDP port 7946, both ways) in node's
// namespace: its speaker sees only itself, the others see it die, while everything else (the API
// server, the layer-2 segment) still works. That is a split brain, as a firewall rule, a key
// mismatch or a partition makes one. HealMemberlist undoes it.
func (l *Lab) IsolateMemberlist(ctx context.Context, node string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", nftMemberlistTable)
	for _, hook := range []string{"input", "output"} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority -300; policy accept;\n", hook, hook)
		for _, proto := range []string{"tcp", "udp"} {
			fmt.Fprintf(&b, "\t\t%s dport 7946 drop\n\t\t%s sport 7946 drop\n", proto, proto)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.ns[node], "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("isolating the memberlist of %s: %w: %s", node, err, out)
	}
	return nil
}

// HealMemberlist removes what IsolateMemberlist added in node (nothing if it was not isolated).
func (l *Lab) HealMemberlist(ctx context.Context, node string) error {
	_, err := l.Exec(ctx, node, "nft", "delete", "table", "inet", nftMemberlistTable)
	if err != nil && strings.Contains(err.Error(), "No such file or directory") {
		return nil
	}
	return err
}
