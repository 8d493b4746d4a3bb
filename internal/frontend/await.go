package frontend

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// Poll intervals of a Prefer: wait: without finishWaiters (tests), the cache is read every
// awaitPoll; with them, the informer wakes the request as soon as it sees the job finish and the
// poll only backs it up.
const (
	awaitPoll       = 100 * time.Millisecond
	awaitPollBackup = time.Second
)

// finishWaiters wakes the requests waiting for a job to finish (Prefer: wait) as soon as the SeekJob
// informer sees it finished, rather than at their next poll: on a fast worker the poll would be a
// good part of the answer's latency.
type finishWaiters struct {
	mu      sync.Mutex
	waiters map[types.NamespacedName]map[chan struct{}]struct{}
}

func newFinishWaiters() *finishWaiters {
	return &finishWaiters{waiters: map[types.NamespacedName]map[chan struct{}]struct{}{}}
}

// subscribe returns a channel that receives when the job key may have finished, and the function that
// ends the subscription.
func (f *finishWaiters) subscribe(key types.NamespacedName) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiters[key] == nil {
		f.waiters[key] = map[chan struct{}]struct{}{}
	}
	f.waiters[key][ch] = struct{}{}
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.waiters[key], ch)
		if len(f.waiters[key]) == 0 {
			delete(f.waiters, key)
		}
	}
}

// notify wakes the waiters of sj if it is finished.
func (f *finishWaiters) notify(obj any) {
	sj, ok := obj.(*seekv1alpha1.SeekJob)
	if !ok || !sj.Status.State.IsTerminal() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.waiters[client.ObjectKeyFromObject(sj)] {
		select {
		case ch <- struct{}{}:
		default: // already woken
		}
	}
}

// handler is the SeekJob informer's event handler. The informer calls it after its cache holds the
// new object, so a woken request reads the finished job.
func (f *finishWaiters) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.notify(obj) },
		UpdateFunc: func(_, obj any) { f.notify(obj) },
	}
}

// awaitFinished waits up to d for sj to reach a terminal state and returns it then, or nil. It reads
// the informer cache, so waiting costs the apiserver nothing.
func (s *Server) awaitFinished(ctx context.Context, sj *seekv1alpha1.SeekJob, d time.Duration) *seekv1alpha1.SeekJob {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wake <-chan struct{} // nil: never
	poll := awaitPoll
	if s.finished != nil {
		ch, unsubscribe := s.finished.subscribe(client.ObjectKeyFromObject(sj))
		defer unsubscribe()
		wake, poll = ch, awaitPollBackup
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		cur := &seekv1alpha1.SeekJob{}
		// The cache may not show the job yet: keep waiting until d passes.
		if err := s.Client.Get(ctx, client.ObjectKeyFromObject(sj), cur); err == nil && cur.UID == sj.UID && cur.Status.State.IsTerminal() {
			return cur
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-tick.C:
		}
	}
}
