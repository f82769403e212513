// Package e2e holds Herald's end-to-end tests. They run the lab of package e2e/lab (network
// namespaces built from topology.clab.yaml, a real kube-apiserver and etcd, an FRR router, real
// herald-controller and herald-speaker processes) and check, from clients inside the lab, that
// Services are reachable over layer 2 and BGP, for IPv4 and IPv6, through failures and bad input.
//
// They need root, the Debian packages of `make deps` and the API server of `make kube-assets`;
// without them they skip (with HERALD_REQUIRE_APISERVER set, missing API server binaries fail).
// One lab serves the whole package: it starts with the first test that needs it and is removed
// when the tests end, also on Ctrl-C. `make e2e` runs them; `make test` includes them.
package e2e
