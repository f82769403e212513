package bgp

// A Peer with a VRF runs its session in that Linux VRF: GoBGP binds the session's TCP connection
// to the VRF device (Transport.BindInterface, SO_BINDTODEVICE), so the kernel routes it with the
// VRF's table and sources it from the VRF's addresses, and sets a TCP MD5 key for the VRF
// (TCP_MD5SIG_EXT with the VRF's ifindex). The connection check (diagnose.go) binds its socket
// the same way. A VRF device that does not exist on the node makes every connection attempt
// fail (the check reports "no such device"); other sessions are not affected. Routes of the
// other address family than the session's carry the node's address as next hop (Config.NodeIPv4,
// NodeIPv6), which the VRF must be able to reach. BFD does not run in a VRF (ValidatePeer
// refuses it): the speaker's BFD sockets live in the default VRF.
