package service_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/controller/service"
)

// ipHistory follows every Service of a namespace through a watch of the API server, in the
// order the API server applied the writes, and records what no reconcile may ever do: move an
// address a Service holds, give one address to two Services, or take an address away from a
// Service that keeps its request.
type ipHistory struct {
	mu        sync.Mutex
	current   map[string]string // Service -> its addresses, joined
	first     map[string]string // Service -> the first addresses it got
	problems  []string
	deletions map[string]bool
}

func (h *ipHistory) observe(ev watch.Event) {
	svc, ok := ev.Object.(*corev1.Service)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	name := svc.Name
	if ev.Type == watch.Deleted {
		delete(h.current, name)
		h.deletions[name] = true
		return
	}
	ips := strings.Join(ingressIPs(svc), ",")
	prev, had := h.current[name]
	h.current[name] = ips
	switch {
	case had && prev != "" && ips != prev:
		h.problems = append(h.problems, fmt.Sprintf("%s moved from [%s] to [%s] (resourceVersion %s)", name, prev, ips, svc.ResourceVersion))
	case ips != "" && h.first[name] == "":
		h.first[name] = ips
	}
	if ips == "" {
		return
	}
	for other, o := range h.current {
		if other != name && o != "" && o == ips {
			h.problems = append(h.problems, fmt.Sprintf("%s and %s both hold [%s] (resourceVersion %s)", name, other, ips, svc.ResourceVersion))
		}
	}
}

// TestQuickSuccessiveReconciles drives the Service reconciler as hard as it can be driven
// against its own writes: every Service of the namespace is requeued every few milliseconds (a
// label of the namespace flips) while a burst of Services is assigned, some wait for a full
// pool, and deletions free addresses for them. Reconciles then keep reading Services from a
// cache that has not yet seen the controller's last status write. Watching the API server, no
// address ever moves, none is held by two Services, and the pool's IPAllocated summaries count
// each assignment once.
func TestQuickSuccessiveReconciles(t *testing.T) {
	const (
		addresses = 40
		services  = 48 // 8 wait for an address
		deleted   = 8  // and get the addresses of these
	)
	f := newFixture(t)
	f.pool("p", []string{"198.51.100.1-198.51.100.40"})
	var writes writeCounter
	f.startWithConfig(writes.wrap(env.Config), func(o *service.Options) { o.SummaryInterval = 3 * time.Second })

	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := cs.CoreV1().Services(f.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	h := &ipHistory{current: map[string]string{}, first: map[string]string{}, deletions: map[string]bool{}}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range w.ResultChan() {
			h.observe(ev)
		}
	}()

	// Requeue every Service of the namespace every 5 ms until told to stop.
	stopFlip := make(chan struct{})
	flipped := make(chan int)
	go func() {
		n := 0
		defer func() { flipped <- n }()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopFlip:
				return
			case <-tick.C:
			}
			n++
			patch := fmt.Appendf(nil, `{"metadata":{"labels":{"flip":"%d"}}}`, n)
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}
			if err := f.c.Patch(context.Background(), ns, client.RawPatch(types.MergePatchType, patch)); err != nil {
				t.Errorf("flipping a label of namespace %s: %v", f.ns, err)
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range services {
		wg.Go(func() { f.service(fmt.Sprintf("s%02d", i)) })
	}
	wg.Wait()
	assigned := func() (int, string) {
		var list corev1.ServiceList
		if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
			return 0, err.Error()
		}
		n := 0
		for i := range list.Items {
			if len(list.Items[i].Status.LoadBalancer.Ingress) > 0 && list.Items[i].Annotations[v1beta1.AnnotationAllocatedFromPool] == "p" {
				n++
			}
		}
		return n, fmt.Sprintf("%d of %d Services assigned and annotated", n, len(list.Items))
	}
	f.eventually("the pool's addresses assigned", 60*time.Second, func() (bool, string) {
		n, s := assigned()
		return n == addresses, s
	})
	// Free addresses for the waiting Services, still under the flips.
	var list corev1.ServiceList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	victims := 0
	for i := range list.Items {
		if s := &list.Items[i]; len(s.Status.LoadBalancer.Ingress) > 0 && victims < deleted {
			if err := f.c.Delete(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			victims++
		}
	}
	f.eventually("the waiting Services assigned", 60*time.Second, func() (bool, string) {
		if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
			return false, err.Error()
		}
		n, s := assigned()
		return n == addresses && len(list.Items) == services-deleted, s
	})
	close(stopFlip)
	flips := <-flipped
	f.waitPoolStatus("p", v1beta1.IPAddressPoolStatus{AssignedIPv4: strconv.Itoa(addresses), AvailableIPv4: "0", AssignedIPv6: "0", AvailableIPv6: "0"})

	// Every assignment is summarised once: the 40 of the burst and the 8 to the waiting
	// Services, in events on the pool at most one per SummaryInterval.
	count := regexp.MustCompile(`^Assigned (\d+) address`)
	total := func() (int, []string) {
		msgs := f.events(f.herald, "p", service.ReasonIPAllocated)
		n := 0
		for _, m := range msgs {
			if g := count.FindStringSubmatch(m); g != nil {
				k, _ := strconv.Atoi(g[1])
				n += k
			}
		}
		return n, msgs
	}
	f.eventually("the assignments summarised", 30*time.Second, func() (bool, string) {
		n, msgs := total()
		return n >= services, fmt.Sprintf("%d summarised: %q", n, msgs)
	})
	// Past two more summary intervals nothing else may be summarised.
	late := time.Now().Add(7 * time.Second)
	f.eventually("no assignment summarised twice", 10*time.Second, func() (bool, string) {
		n, msgs := total()
		if n != services {
			t.Errorf("IPAllocated summaries count %d assignments, want %d (%d Services, %d of them given a freed address): %q", n, services, services, deleted, msgs)
			return true, ""
		}
		return time.Now().After(late), fmt.Sprint(n)
	})

	// The watch has seen the end state: 40 Services, each with an address.
	f.eventually("the watch caught up", 30*time.Second, func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := 0
		for _, ips := range h.current {
			if ips != "" {
				n++
			}
		}
		return n == addresses && len(h.current) == addresses, fmt.Sprintf("%d of %d Services with an address", n, len(h.current))
	})
	cancel()
	<-watched
	h.mu.Lock()
	defer h.mu.Unlock()
	// Patches beyond one status and one annotation per assignment are the no-op writes of
	// reconciles that read a Service before the cache had the controller's last write.
	statusPatches, metaPatches := 0, 0
	for p, n := range writes.paths() {
		switch {
		case !strings.HasPrefix(p, "PATCH /api/v1/namespaces/"+f.ns+"/services/"):
		case strings.HasSuffix(p, "/status"):
			statusPatches += n
		default:
			metaPatches += n
		}
	}
	t.Logf("%d namespace label flips; %d Services seen, %d deleted; %d status and %d metadata patches of Services for %d assignments",
		flips, len(h.first), len(h.deletions), statusPatches, metaPatches, services)
	for _, p := range h.problems {
		t.Error(p)
	}
	if len(h.first) != services {
		t.Errorf("%d Services got an address, want %d", len(h.first), services)
	}
	var held []string
	for name, ips := range h.current {
		if ips == "" {
			t.Errorf("%s holds no address at the end", name)
		}
		if h.first[name] != ips {
			t.Errorf("%s holds [%s] at the end, its first address was [%s]", name, ips, h.first[name])
		}
		held = append(held, ips)
	}
	slices.Sort(held)
	if len(slices.Compact(held)) != len(h.current) {
		t.Errorf("addresses at the end are not distinct: %v", held)
	}
}
