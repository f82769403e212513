package layer2

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"

	"github.com/herald-lb/herald/speaker/layer2/layer2test"
)

// indexedNet is a host whose interfaces have indexes that change when one is "recreated".
type indexedNet struct {
	mu    sync.Mutex
	index map[string]int
	next  int
	conns map[int]*layer2test.Conn // ARP socket by index
}

func newIndexedNet(names ...string) *indexedNet {
	n := &indexedNet{index: map[string]int{}, next: 2, conns: map[int]*layer2test.Conn{}}
	for _, name := range names {
		n.recreate(name)
	}
	return n
}

// recreate gives name a new index, as deleting and creating an interface again does.
func (n *indexedNet) recreate(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.index[name] = n.next
	n.next++
}

func (n *indexedNet) remove(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.index, name)
}

func (n *indexedNet) lookup(name string) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	idx, ok := n.index[name]
	if !ok {
		return 0, fmt.Errorf("looking up interface %q: %w", name, ErrInterfaceNotFound)
	}
	return idx, nil
}

func (n *indexedNet) dial(name string) (*Link, error) {
	idx, err := n.lookup(name)
	if err != nil {
		return nil, err
	}
	c := layer2test.NewConn()
	n.mu.Lock()
	n.conns[idx] = c
	n.mu.Unlock()
	return NewLink(&net.Interface{Name: name, Index: idx, MTU: 1500, HardwareAddr: selfMAC}, c, nil)
}

func (n *indexedNet) conn(name string) *layer2test.Conn {
	idx, _ := n.lookup(name)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[idx]
}

func newIndexedAnnouncer(t *testing.T, n *indexedNet) *Announcer {
	t.Helper()
	a, err := NewAnnouncer(Config{Dial: n.dial, Index: n.lookup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// TestAnnouncerReopensReplacedInterface: an interface deleted and created again under the same
// name has a new index; the next SetOwned closes the dead socket, opens the new interface and
// announces there at once, and answers there.
func TestAnnouncerReopensReplacedInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newIndexedNet("eth0")
		a := newIndexedAnnouncer(t, n)
		owned := map[netip.Addr][]string{lbIPv4: {"eth0"}}
		if err := a.SetOwned(owned); err != nil {
			t.Fatal(err)
		}
		old := n.conn("eth0")
		old.Take()
		n.recreate("eth0")
		if err := a.SetOwned(owned); err != nil {
			t.Fatal(err)
		}
		if !old.Closed() {
			t.Error("the socket of the deleted interface is still open")
		}
		fresh := n.conn("eth0")
		if fresh == old || fresh == nil {
			t.Fatal("the new interface was not opened")
		}
		if diff := cmp.Diff([]string{"garp-req 198.51.100.10", "garp-rep 198.51.100.10"}, kinds(t, fresh.Take())); diff != "" {
			t.Errorf("announcements on the new interface (-want +got):\n%s", diff)
		}
		fresh.Deliver(arpFrame(t, arp.OperationRequest, broadcast, clientMAC, clientV4, lbIPv4))
		synctest.Wait()
		if diff := cmp.Diff([]string{"arp-rep 198.51.100.10"}, kinds(t, fresh.Take())); diff != "" {
			t.Errorf("answers on the new interface (-want +got):\n%s", diff)
		}
		// Unchanged index: nothing reopened, nothing announced again.
		if err := a.SetOwned(owned); err != nil {
			t.Fatal(err)
		}
		if n.conn("eth0") != fresh || fresh.Closed() || len(fresh.Take()) != 0 {
			t.Error("SetOwned with an unchanged interface reopened or re-announced it")
		}
		// Gone: the socket is closed and the error names the interface.
		n.remove("eth0")
		if err := a.SetOwned(owned); err == nil || !strings.Contains(err.Error(), `"eth0"`) {
			t.Errorf("SetOwned on a deleted interface: %v, want an error naming eth0", err)
		}
		if !fresh.Closed() {
			t.Error("the socket of the deleted interface is still open")
		}
	})
}

// TestAnnouncerPrepare: prepared interfaces are opened before anything is owned on them, kept
// open while nothing is owned, reported when they cannot be opened, and closed when no longer
// prepared.
func TestAnnouncerPrepare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newIndexedNet("eth0", "eth1")
		a := newIndexedAnnouncer(t, n)
		open, err := a.Prepare([]string{"eth1", "missing", "eth0"})
		if err == nil || !strings.Contains(err.Error(), `"missing"`) {
			t.Errorf("Prepare error = %v, want one naming the missing interface", err)
		}
		if diff := cmp.Diff([]string{"eth0", "eth1"}, open); diff != "" {
			t.Errorf("Prepare (-want +got):\n%s", diff)
		}
		e0, e1 := n.conn("eth0"), n.conn("eth1")
		if e0 == nil || e1 == nil {
			t.Fatal("prepared interfaces not opened")
		}
		if err := a.SetOwned(map[netip.Addr][]string{lbIPv4: {"eth0"}}); err != nil {
			t.Fatal(err)
		}
		if n.conn("eth0") != e0 {
			t.Error("owning an address on a prepared interface opened it again")
		}
		if err := a.SetOwned(nil); err != nil {
			t.Fatal(err)
		}
		if e0.Closed() || e1.Closed() {
			t.Error("owning nothing closed a prepared interface")
		}
		if open, err := a.Prepare(nil); err != nil || len(open) != 0 {
			t.Errorf("Prepare(nil) = %v, %v", open, err)
		}
		if !e0.Closed() || !e1.Closed() {
			t.Error("interfaces no longer prepared nor owned are still open")
		}
	})
}
