// Package netdev holds the rule for the Linux network device names Herald accepts in its API (a
// BGPPeer's vrf), shared by config (the admission rules) and speaker/bgp (its own check of a
// peer): 1 to 15 bytes (IFNAMSIZ) of letters, digits, '_', '.' and '-', starting with a letter or
// digit, which is what the CRD's pattern allows and a subset of what the kernel's dev_valid_name
// accepts. Standard library only.
package netdev

// ValidName reports whether name is a device name Herald accepts.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 15 {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}
