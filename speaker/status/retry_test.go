package status

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/kube/crclient"
)

// flaky is an API server that refuses to create the objects named in fail, for the number of
// attempts given, and records when each object's creation was attempted and how often the writer
// listed objects.
type flaky struct {
	mu       sync.Mutex
	fail     map[string]int
	attempts map[string][]time.Time
	lists    int
}

func (f *flaky) client(t *testing.T) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := v1beta1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return interceptor.NewClient(fake.NewClientBuilder().WithScheme(s).
		WithStatusSubresource(&v1beta1.ServiceL2Status{}, &v1beta1.ServiceBGPStatus{}, &v1beta1.BGPSessionStatus{}).Build(),
		interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				f.mu.Lock()
				name := obj.GetName()
				f.attempts[name] = append(f.attempts[name], time.Now())
				refuse := f.fail[name] > 0
				if refuse {
					f.fail[name]--
				}
				f.mu.Unlock()
				if refuse {
					return errors.New("etcdserver: request timed out")
				}
				return c.Create(ctx, obj, opts...)
			},
			List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				f.mu.Lock()
				f.lists++
				f.mu.Unlock()
				return c.List(ctx, list, opts...)
			},
		})
}

// gaps are the times between consecutive attempts.
func gaps(at []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(at); i++ {
		out = append(out, at[i].Sub(at[i-1]))
	}
	return out
}

// TestRetryBacksOffPerObject: an object whose write fails is retried alone (not with the other
// objects, not by converging everything again), after a delay that doubles with each failure and
// starts again from the shortest once a write succeeds.
func TestRetryBacksOffPerObject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &flaky{fail: map[string]int{"b": 4}, attempts: map[string][]time.Time{}}
		w := NewWriter(crclient.Client(f.client(t)), "herald", "me", slog.New(slog.DiscardHandler), nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go w.Run(ctx)

		w.Set(Desired{L2: map[string]v1beta1.ServiceL2StatusStatus{}})
		synctest.Wait()
		if !w.Idle() {
			t.Fatal("the first convergence of nothing did not complete")
		}
		f.mu.Lock()
		listsAfterSet := f.lists
		f.mu.Unlock()

		st := func(svc string) *v1beta1.ServiceL2StatusStatus {
			return &v1beta1.ServiceL2StatusStatus{Node: "me", ServiceName: svc, ServiceNamespace: "app"}
		}
		w.Put(map[string]*v1beta1.ServiceL2StatusStatus{"a": st("a"), "b": st("b")}, nil)
		// The four failures of b take 0.2+0.4+0.8+1.6 s; move the bubble's fake clock beyond
		// them (inside synctest, time.Sleep is the injected clock: it returns at once once every
		// goroutine of the bubble is blocked, with the clock advanced; nothing waits in real time).
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if !w.Idle() {
			t.Fatal("the writer is not idle after b's failures")
		}

		// A success resets b's delay: its next failure is retried after the shortest delay again.
		f.mu.Lock()
		f.fail["b"] = 1
		f.mu.Unlock()
		w.Put(map[string]*v1beta1.ServiceL2StatusStatus{"b": nil}, nil)
		synctest.Wait()
		w.Put(map[string]*v1beta1.ServiceL2StatusStatus{"b": st("b")}, nil)
		time.Sleep(time.Second) // the fake clock, past the shortest retry delay
		synctest.Wait()

		f.mu.Lock()
		defer f.mu.Unlock()
		if got := len(f.attempts["a"]); got != 1 {
			t.Errorf("a was created in %d attempts, want 1: the failures of b made the writer write a again", got)
		}
		b := f.attempts["b"]
		if len(b) != 7 {
			t.Fatalf("b was attempted %d times, want 5 (4 failures, then written) and 2 (1 failure, then written)", len(b))
		}
		want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}
		if diff := cmp.Diff(want, gaps(b[:5])); diff != "" {
			t.Errorf("delays between b's attempts (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]time.Duration{200 * time.Millisecond}, gaps(b[5:])); diff != "" {
			t.Errorf("delay after a success and a new failure (-want +got):\n%s", diff)
		}
		if f.lists != listsAfterSet {
			t.Errorf("the writer listed objects %d times while retrying b: it converged everything, not b alone", f.lists-listsAfterSet)
		}
	})
}
