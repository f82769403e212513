// Package scale holds the lab tests of Herald at scale: a lab of package e2e/lab with more nodes
// (e2e/topology-20.clab.yaml's layout, generated) and hundreds to thousands of layer-2 IPs, where
// it measures failover after kill -9 from the segment client's side and the speakers' memory. It
// starts its own lab (the machine-wide lab lock makes it wait for any other), and needs what the
// tests of package e2e need. make test runs a small version; make bench (HERALD_BENCH=1) the full
// one.
package scale
