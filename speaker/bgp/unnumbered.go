package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/herald-lb/herald/internal/netdev"
	"github.com/herald-lb/herald/speaker/routeradv"
)

// BGP unnumbered (Peer.Interface). GoBGP v4.8.0 can run a session to a link-local address
// ("fe80::1%eth1", its NeighborAddress with a zone) and, for a neighbour given by interface
// (NeighborInterface), looks the address up in the kernel's neighbour table once, when the peer is
// added. It neither makes the node known to the router nor follows a router whose address
// changes. So the speaker does both itself: per interface it runs package routeradv (Router
// Advertisements out, so the router learns the node; in, so the speaker learns the router), gives
// GoBGP the learnt address with the interface as zone, and when the router's address changes it
// applies the last configuration again: the peer's resolved Address differs, so its session is
// restarted to the new address like any changed peer.

// validateUnnumbered adds to bad what makes an interface peer unusable.
func validateUnnumbered(p Peer, bad func(string, ...any)) {
	if !netdev.ValidName(p.Interface) {
		bad("interface %q is not a Linux device name (1 to 15 letters, digits, '_', '.' and '-', starting with a letter or digit)", p.Interface)
	}
	if a := p.Address; a.IsValid() && (!a.Is6() || !a.IsLinkLocalUnicast() || a.Zone() != p.Interface) {
		bad("address %v with interface %q: an interface peer's address is learnt; set only one of them", a, p.Interface)
	}
	if p.EBGPMultiHop {
		bad("ebgpMultiHop with interface %q: an unnumbered session runs to the router's link-local address, one hop away", p.Interface)
	}
	if p.SourceAddress.IsValid() {
		bad("source address %v with interface %q: an unnumbered session runs from the interface's link-local address", p.SourceAddress, p.Interface)
	}
	if p.VRF != "" {
		bad("VRF %q with interface %q: unnumbered sessions in a VRF are not supported", p.VRF, p.Interface)
	}
	if p.BFD.Enabled {
		bad("BFD with interface %q: BFD on an unnumbered session is not supported", p.Interface)
	}
}

// ifaceWatch is the routeradv loop of one interface.
type ifaceWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	router netip.Addr // the router's link-local address, zone the interface; zero until learnt
}

func (w *ifaceWatch) addr() netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.router
}

// waitingError is the LastError of an interface peer whose router is not known yet.
func waitingError(iface string) string {
	return fmt.Sprintf("waiting for a Router Advertisement on %s to learn the router's link-local address (BGP unnumbered; the router must send them, as FRR does for `neighbor %s interface`)", iface, iface)
}

// resolveUnnumbered fills in the learnt router address of the interface peers of peers and keeps
// one routeradv loop running per interface they name (stopping the others). It returns the peers
// that can have a session and, by name, the interface peers still waiting for their router's
// address. Callers hold mu.
func (s *Speaker) resolveUnnumbered(peers []Peer) ([]Peer, map[string]Peer) {
	var waiting map[string]Peer
	out := make([]Peer, 0, len(peers))
	used := map[string]bool{}
	for _, p := range peers {
		if p.Interface == "" {
			out = append(out, p)
			continue
		}
		used[p.Interface] = true
		w := s.watchInterface(p.Interface)
		if !p.Address.IsValid() {
			p.Address = w.addr()
		}
		if !p.Address.IsValid() {
			if waiting == nil {
				waiting = map[string]Peer{}
			}
			waiting[p.Name] = p
			continue
		}
		out = append(out, p)
	}
	for _, iface := range sortedNames(s.watches) {
		if !used[iface] {
			s.stopWatch(iface)
		}
	}
	return out, waiting
}

// watchInterface returns the routeradv loop of iface, starting it when needed. Callers hold mu.
func (s *Speaker) watchInterface(iface string) *ifaceWatch {
	if w, ok := s.watches[iface]; ok {
		return w
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &ifaceWatch{cancel: cancel, done: make(chan struct{})}
	s.watches[iface] = w
	s.log.Info("BGP unnumbered: sending and receiving Router Advertisements", "interface", iface)
	go func() {
		defer close(w.done)
		_ = routeradv.Run(ctx, routeradv.Config{Interface: iface, Logger: s.log, OnNeighbor: func(a netip.Addr) {
			w.mu.Lock()
			w.router = a
			w.mu.Unlock()
			go s.relearn(iface, a)
		}})
	}()
	return w
}

// stopWatch stops the routeradv loop of iface and waits for it. Callers hold mu.
func (s *Speaker) stopWatch(iface string) {
	w := s.watches[iface]
	delete(s.watches, iface)
	w.cancel()
	<-w.done
	s.log.Info("BGP unnumbered: no peer on the interface any more; Router Advertisements stopped", "interface", iface)
}

// stopWatches stops every routeradv loop. Callers hold mu.
func (s *Speaker) stopWatches() {
	for _, iface := range sortedNames(s.watches) {
		s.stopWatch(iface)
	}
}

// relearn applies the last SetPeers configuration again after the router on iface was learnt at
// a (new) address: the interface peers' sessions go to it.
func (s *Speaker) relearn(iface string, a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shut || s.watches[iface] == nil {
		return
	}
	s.log.Info("BGP unnumbered: router address learnt; (re)starting the interface's sessions", "interface", iface, "router", a)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.setPeers(ctx, slices.Clone(s.configured)); err != nil {
		s.log.Warn("BGP unnumbered: applying the peers after the router address changed", "interface", iface, "err", err)
	}
}
