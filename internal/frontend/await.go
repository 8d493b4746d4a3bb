package frontend

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// finishNotifier wakes the requests waiting (Prefer: wait) for a job to finish as soon as the informer
// shows it finished, instead of each polling the cache: a fast job's answer must not wait for the
// next poll.
type finishNotifier struct {
	mu      sync.Mutex
	waiters map[types.UID][]chan struct{}
}

func newFinishNotifier() *finishNotifier {
	return &finishNotifier{waiters: map[types.UID][]chan struct{}{}}
}

// wait returns a channel closed when the job with the given UID is seen finished, and a function that
// stops waiting. Closing happens at most once per channel.
func (n *finishNotifier) wait(uid types.UID) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	n.mu.Lock()
	n.waiters[uid] = append(n.waiters[uid], ch)
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		list := n.waiters[uid]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(n.waiters, uid)
		} else {
			n.waiters[uid] = list
		}
	}
}

// observe wakes the waiters of obj if it is a finished SeekJob.
func (n *finishNotifier) observe(obj any) {
	sj, ok := obj.(*seekv1alpha1.SeekJob)
	if !ok || !sj.Status.State.IsTerminal() {
		return
	}
	n.mu.Lock()
	list := n.waiters[sj.UID]
	delete(n.waiters, sj.UID)
	n.mu.Unlock()
	for _, ch := range list {
		close(ch)
	}
}

// handler is the informer event handler feeding observe.
func (n *finishNotifier) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.observe(obj) },
		UpdateFunc: func(_, obj any) { n.observe(obj) },
	}
}
