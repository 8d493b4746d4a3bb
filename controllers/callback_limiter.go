package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// tenantLimiter caps the delivery attempts in flight per tenant (namespace), so that one tenant
// whose receiver hangs holds at most perTenant of the callback controller's workers, each for at
// most the attempt timeout, and the others stay free for everybody else.
//
// A reconcile that finds its tenant at the cap does not wait (that would hold a worker, which is
// what the cap is for): it is recorded as waiting, in arrival order, and returns. When one of the
// tenant's attempts ends, the first waiting request is put back on the controller's queue (wake),
// so the next attempt starts at once, without polling. A woken request that finds nothing to do
// passes the slot on (settle). The limiter holds no delivery state: should it lose a request (a
// restart), the request's own RequeueAfter brings it back.
//
// golang.org/x/sync/semaphore does the counting part of this, but not the queue of waiting
// requests, which is what keeps the waiting free of workers and of polling.
//
// A nil *tenantLimiter limits nothing.
type tenantLimiter struct {
	perTenant int
	// wake adds a request to the controller's queue; nil until the controller starts.
	wake func(reconcile.Request)

	mu      sync.Mutex
	tenants map[string]*tenantSlots
}

// tenantSlots is one tenant's attempts in flight and requests waiting for one.
type tenantSlots struct {
	inFlight int
	// queue holds waiting requests, oldest first. An entry no longer in waiting is stale: it got a
	// slot on its own (a watch event or its RequeueAfter) and is skipped.
	queue   []types.NamespacedName
	waiting map[types.NamespacedName]bool
	// woken are requests put back on the controller's queue for a freed slot, not yet reconciled.
	woken map[types.NamespacedName]bool
}

func newTenantLimiter(perTenant int) *tenantLimiter {
	return &tenantLimiter{perTenant: max(perTenant, 1), tenants: map[string]*tenantSlots{}}
}

// setWake sets the function that puts a request back on the controller's queue.
func (l *tenantLimiter) setWake(wake func(reconcile.Request)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wake = wake
}

// acquire takes one of the tenant's slots for req, or records req as waiting and returns false. A
// request woken for a freed slot that another took meanwhile waits first in line again.
func (l *tenantLimiter) acquire(req types.NamespacedName) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[req.Namespace]
	if t == nil {
		t = &tenantSlots{waiting: map[types.NamespacedName]bool{}, woken: map[types.NamespacedName]bool{}}
		l.tenants[req.Namespace] = t
	}
	wasWoken := t.woken[req]
	delete(t.woken, req)
	if t.inFlight < l.perTenant {
		t.inFlight++
		delete(t.waiting, req)
		return true
	}
	if !t.waiting[req] {
		t.waiting[req] = true
		if wasWoken {
			t.queue = append([]types.NamespacedName{req}, t.queue...)
		} else {
			t.queue = append(t.queue, req)
		}
	}
	return false
}

// release gives back a slot of the tenant and wakes the next waiting request.
func (l *tenantLimiter) release(tenant string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[tenant]
	if t == nil || t.inFlight == 0 {
		return
	}
	t.inFlight--
	l.wakeNext(tenant, t)
}

// settle ends a reconcile of req. A request that was woken for a freed slot and did not take it
// (nothing was due any more, or the job is gone) passes it to the next waiting request.
func (l *tenantLimiter) settle(req types.NamespacedName) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[req.Namespace]
	if t == nil || !t.woken[req] {
		return
	}
	delete(t.woken, req)
	l.wakeNext(req.Namespace, t)
}

// wakeNext wakes waiting requests for the slots that are neither in use nor promised to a woken
// request, and forgets a tenant with nothing in flight, waiting or woken.
func (l *tenantLimiter) wakeNext(tenant string, t *tenantSlots) {
	for t.inFlight+len(t.woken) < l.perTenant && len(t.queue) > 0 {
		req := t.queue[0]
		t.queue = t.queue[1:]
		if !t.waiting[req] {
			continue
		}
		delete(t.waiting, req)
		t.woken[req] = true
		if l.wake != nil {
			l.wake(reconcile.Request{NamespacedName: req})
		}
	}
	if t.inFlight == 0 && len(t.waiting) == 0 && len(t.woken) == 0 {
		delete(l.tenants, tenant)
	}
}
