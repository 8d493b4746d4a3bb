package controllers

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// limiterStep is one call on a tenantLimiter and what it must answer.
type limiterStep struct {
	op   string // acquire, release, settle
	req  string // namespace/name; for release the namespace alone
	want bool   // acquire's answer
	// woken are the requests the step puts back on the queue, in order.
	woken []string
}

func nn(s string) types.NamespacedName {
	for i := range len(s) {
		if s[i] == '/' {
			return types.NamespacedName{Namespace: s[:i], Name: s[i+1:]}
		}
	}
	return types.NamespacedName{Namespace: s}
}

func TestTenantLimiter(t *testing.T) {
	cases := []struct {
		name  string
		cap   int
		steps []limiterStep
	}{
		{
			name: "over the cap: wait, then woken one per freed slot, oldest first",
			cap:  2,
			steps: []limiterStep{
				{op: "acquire", req: "a/1", want: true},
				{op: "acquire", req: "a/2", want: true},
				{op: "acquire", req: "a/3"},
				{op: "acquire", req: "a/4"},
				{op: "release", req: "a", woken: []string{"a/3"}},
				{op: "acquire", req: "a/3", want: true},
				{op: "release", req: "a", woken: []string{"a/4"}},
				{op: "acquire", req: "a/4", want: true},
				{op: "release", req: "a"},
				{op: "release", req: "a"},
			},
		},
		{
			name: "tenants are capped apart",
			cap:  1,
			steps: []limiterStep{
				{op: "acquire", req: "a/1", want: true},
				{op: "acquire", req: "a/2"},
				{op: "acquire", req: "b/1", want: true},
				{op: "release", req: "b"},
				{op: "release", req: "a", woken: []string{"a/2"}},
				{op: "acquire", req: "a/2", want: true},
				{op: "release", req: "a"},
			},
		},
		{
			name: "a woken request with nothing to do passes the slot on",
			cap:  1,
			steps: []limiterStep{
				{op: "acquire", req: "a/1", want: true},
				{op: "acquire", req: "a/2"},
				{op: "acquire", req: "a/3"},
				{op: "release", req: "a", woken: []string{"a/2"}},
				{op: "settle", req: "a/2", woken: []string{"a/3"}},
				{op: "acquire", req: "a/3", want: true},
				{op: "settle", req: "a/3"},
				{op: "release", req: "a"},
			},
		},
		{
			name: "a woken request that lost its slot to a newcomer waits first in line",
			cap:  1,
			steps: []limiterStep{
				{op: "acquire", req: "a/1", want: true},
				{op: "acquire", req: "a/2"},
				{op: "acquire", req: "a/3"},
				{op: "release", req: "a", woken: []string{"a/2"}},
				{op: "acquire", req: "a/9", want: true},
				{op: "acquire", req: "a/2"},
				{op: "release", req: "a", woken: []string{"a/2"}},
				{op: "acquire", req: "a/2", want: true},
				{op: "release", req: "a", woken: []string{"a/3"}},
				{op: "acquire", req: "a/3", want: true},
				{op: "release", req: "a"},
			},
		},
		{
			name: "waiting again keeps the place; a request that got a slot on its own is not woken",
			cap:  1,
			steps: []limiterStep{
				{op: "acquire", req: "a/1", want: true},
				{op: "acquire", req: "a/2"},
				{op: "acquire", req: "a/3"},
				{op: "acquire", req: "a/2"}, // its RequeueAfter, still over the cap
				{op: "release", req: "a", woken: []string{"a/2"}},
				{op: "acquire", req: "a/3", want: true}, // a watch event, before a/2 came back
				{op: "acquire", req: "a/2"},
				{op: "release", req: "a", woken: []string{"a/2"}},
				{op: "acquire", req: "a/2", want: true},
				{op: "release", req: "a"},
			},
		},
		{
			name: "a release without an acquire changes nothing",
			cap:  1,
			steps: []limiterStep{
				{op: "release", req: "a"},
				{op: "acquire", req: "a/1", want: true},
				{op: "acquire", req: "a/2"},
				{op: "release", req: "b"},
				{op: "settle", req: "a/2"},
				{op: "release", req: "a", woken: []string{"a/2"}},
				{op: "settle", req: "a/2"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newTenantLimiter(tc.cap)
			var woken []string
			l.setWake(func(r reconcile.Request) { woken = append(woken, r.String()) })
			for i, s := range tc.steps {
				woken = nil
				switch s.op {
				case "acquire":
					if got := l.acquire(nn(s.req)); got != s.want {
						t.Fatalf("step %d: acquire(%s) = %v, want %v", i, s.req, got, s.want)
					}
				case "release":
					l.release(s.req)
				case "settle":
					l.settle(nn(s.req))
				}
				if diff := cmp.Diff(s.woken, woken); diff != "" {
					t.Fatalf("step %d: %s(%s) woke (-want +got):\n%s", i, s.op, s.req, diff)
				}
			}
			if len(l.tenants) != 0 {
				t.Errorf("tenants left behind: %+v", l.tenants)
			}
		})
	}
}

// TestTenantLimiterConcurrent runs reconciles of many requests of two tenants as the controller's
// workers would, a woken request being reconciled again: every request gets its attempt, and no
// tenant ever has more than the cap in flight.
func TestTenantLimiterConcurrent(t *testing.T) {
	const perTenant, requests = 3, 200
	l := newTenantLimiter(perTenant)
	queue := make(chan types.NamespacedName, 2*requests)
	l.setWake(func(r reconcile.Request) { queue <- r.NamespacedName })
	var inFlight, peak [2]atomic.Int32
	var done sync.WaitGroup
	done.Add(2 * requests)
	for i := range requests {
		queue <- types.NamespacedName{Namespace: "a", Name: strconv.Itoa(i)}
		queue <- types.NamespacedName{Namespace: "b", Name: strconv.Itoa(i)}
	}
	var workers sync.WaitGroup
	stop := make(chan struct{})
	for range 16 {
		workers.Go(func() {
			for {
				select {
				case <-stop:
					return
				case req := <-queue:
					tenant := 0
					if req.Namespace == "b" {
						tenant = 1
					}
					if l.acquire(req) {
						n := inFlight[tenant].Add(1)
						for {
							p := peak[tenant].Load()
							if n <= p || peak[tenant].CompareAndSwap(p, n) {
								break
							}
						}
						inFlight[tenant].Add(-1)
						l.release(req.Namespace)
						done.Done()
					}
					l.settle(req)
				}
			}
		})
	}
	done.Wait()
	close(stop)
	workers.Wait()
	for i := range peak {
		if p := peak[i].Load(); p > perTenant {
			t.Errorf("tenant %d had %d attempts in flight, cap %d", i, p, perTenant)
		}
	}
	if len(l.tenants) != 0 {
		t.Errorf("tenants left behind: %+v", l.tenants)
	}
}
