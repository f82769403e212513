package layer2

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// UpdateOwned changes the interfaces of the addresses in changed (nil or empty: no longer owned)
// and leaves every other owned address as it is: SetOwned for a few addresses, at a cost that does
// not depend on how many this node owns. It gives the same guarantees as SetOwned for the
// addresses it changes. fresh marks newly owned addresses nobody announced before (see
// SetOwnedFresh); it is ignored without Config.Conflicts.
//
// Addresses are only added to interfaces that have an open link (see Prepare); an interface
// without one makes UpdateOwned do a full SetOwned of the resulting state, which opens it. A
// replaced interface is noticed at the next SetOwned or Prepare, as the speaker calls them on
// every change of its interfaces.
func (a *Announcer) UpdateOwned(changed map[netip.Addr][]string, fresh map[netip.Addr]bool) error {
	var errs []error
	norm := make(map[netip.Addr][]string, len(changed))
	for ip, names := range changed {
		if !validOwned(ip) {
			errs = append(errs, fmt.Errorf("owning %s: %w", ip, ErrInvalidIP))
			continue
		}
		norm[ip.Unmap().WithZone("")] = uniqueNames(names)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	for _, names := range norm {
		for _, name := range names {
			if a.linkNamed(name) == nil {
				return errors.Join(append(errs, a.updateFull(norm, fresh))...)
			}
		}
	}
	now := time.Now()
	olds := make(map[netip.Addr][]string, len(norm))
	for ip := range norm {
		olds[ip] = a.interfacesOf(ip)
	}
	// Drop what is lost before anything else happens.
	for ip, names := range norm {
		for _, name := range olds[ip] {
			if !slices.Contains(names, name) {
				errs = append(errs, a.drop(ip, name))
			}
		}
	}
	added := false
	for ip, names := range norm {
		old := olds[ip]
		for _, name := range names {
			if !slices.Contains(old, name) {
				errs = append(errs, a.add(ip, name, fresh[ip], now))
				added = true
			}
		}
	}
	if added {
		a.sendFirst(now)
		a.kickAnnouncements()
		if a.g != nil {
			select {
			case a.g.kick <- struct{}{}:
			default:
			}
		}
	}
	return errors.Join(errs...)
}

// updateFull applies changes to the owned state and converges everything, as SetOwned does.
// a.mu must be held.
func (a *Announcer) updateFull(changed map[netip.Addr][]string, fresh map[netip.Addr]bool) error {
	for ip, names := range changed {
		f := familyOf(ip)
		for _, fams := range a.owned {
			delete(fams[f], ip)
		}
		for _, name := range names {
			a.ownedSet(name, f)[ip] = struct{}{}
		}
	}
	var errs []error
	_, openErrs, err := a.apply(fresh)
	for _, e := range openErrs {
		errs = append(errs, e)
	}
	return errors.Join(append(errs, err)...)
}

// ownedSet returns the owned addresses of a family on an interface, made if missing. a.mu must be
// held.
func (a *Announcer) ownedSet(name string, f family) map[netip.Addr]struct{} {
	fams := a.owned[name]
	if fams == nil {
		fams = &[numFamilies]map[netip.Addr]struct{}{}
		a.owned[name] = fams
	}
	if fams[f] == nil {
		fams[f] = map[netip.Addr]struct{}{}
	}
	return fams[f]
}

// drop stops answering for ip on interface name. a.mu must be held.
func (a *Announcer) drop(ip netip.Addr, name string) error {
	f := familyOf(ip)
	if fams := a.owned[name]; fams != nil {
		delete(fams[f], ip)
	}
	a.g.dropGuard(guardKey{ip: ip, ifname: name})
	l := a.linkNamed(name)
	if l == nil {
		return nil
	}
	delete(a.entries, announcement{ip: ip, ifindex: l.index})
	if r := l.resp[f]; r != nil {
		return r.remove(ip)
	}
	return nil
}

// add starts answering for ip on interface name, which has an open link, and queues its first
// announcement unless its guard keeps it silent (a fresh address being probed). a.mu must be held.
func (a *Announcer) add(ip netip.Addr, name string, fresh bool, now time.Time) error {
	f := familyOf(ip)
	a.ownedSet(name, f)[ip] = struct{}{}
	l := a.linkNamed(name)
	r := l.resp[f]
	if r == nil {
		return fmt.Errorf("answering for %s on %s: %w", ip, name, ErrNoSocket)
	}
	key := guardKey{ip: ip, ifname: name}
	// The guard first: a fresh address must never be answered before it was probed.
	a.g.addGuard(a, key, fresh, now)
	if a.g.silent(key) {
		r.mute(ip, true)
	}
	err := r.add(ip)
	an := announcement{ip: ip, ifindex: l.index}
	if _, ok := a.entries[an]; !ok && !a.g.silent(key) {
		a.log.Info("taking over", "ip", ip, "interface", name)
		a.takeOver(an, now)
	}
	return err
}

// addGuard starts guarding a newly owned address on an interface. A nil receiver does nothing.
func (gs *guards) addGuard(a *Announcer, key guardKey, fresh bool, now time.Time) {
	if gs == nil || gs.slots[key] != nil {
		return
	}
	gs.start(a, key, fresh, now)
}

// dropGuard stops guarding an address on an interface. A nil receiver does nothing.
func (gs *guards) dropGuard(key guardKey) {
	if gs == nil {
		return
	}
	s := gs.slots[key]
	if s == nil {
		return
	}
	if gs.forget(key, s) {
		gs.notify()
	}
}

// add starts answering for ip. For NDP it joins the solicited-node group of ip first.
func (r *responder) add(ip netip.Addr) error {
	var err error
	if r.fam == familyIPv6 {
		err = r.joinGroup(solicitedNodeMAC(ip))
		if r.claims != nil {
			err = errors.Join(err, r.joinGroup(allNodesMAC))
		}
	}
	r.mu.Lock()
	r.owned[ip] = struct{}{}
	n := len(r.owned)
	r.mu.Unlock()
	r.ownedGauge.Set(float64(n))
	return err
}

// remove stops answering for ip, then, for NDP, leaves its solicited-node group if no other owned
// address needs it.
func (r *responder) remove(ip netip.Addr) error {
	r.mu.Lock()
	_, had := r.owned[ip]
	delete(r.owned, ip)
	delete(r.muted, ip)
	n := len(r.owned)
	r.mu.Unlock()
	r.ownedGauge.Set(float64(n))
	if !had || r.fam != familyIPv6 {
		return nil
	}
	err := r.leaveGroup(solicitedNodeMAC(ip))
	if r.claims != nil {
		err = errors.Join(err, r.leaveGroup(allNodesMAC))
	}
	return err
}

// joinGroup counts one more owned address in a multicast group, joining it on the first.
func (r *responder) joinGroup(g net.HardwareAddr) error {
	r.joined[string(g)]++
	if r.joined[string(g)] > 1 || r.groups == nil {
		return nil
	}
	if err := r.groups.JoinGroup(g); err != nil {
		return fmt.Errorf("joining group %s on %s: %w", g, r.ifname, err)
	}
	return nil
}

// leaveGroup counts one owned address less in a multicast group, leaving it after the last.
func (r *responder) leaveGroup(g net.HardwareAddr) error {
	if r.joined[string(g)] == 0 {
		return nil
	}
	r.joined[string(g)]--
	if r.joined[string(g)] > 0 {
		return nil
	}
	delete(r.joined, string(g))
	if r.groups == nil {
		return nil
	}
	if err := r.groups.LeaveGroup(g); err != nil {
		return fmt.Errorf("leaving group %s on %s: %w", g, r.ifname, err)
	}
	return nil
}
