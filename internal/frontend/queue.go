package frontend

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/jobview"
)

// Queue position: where a waiting job stands in its worker's queue, and when it may start, computed
// when a job is read, from the informer cache, with no write. The queue is the one the controllers
// take jobs from, oldest first (then by namespace and name):
//   - in Job mode, every namespace's waiting jobs of the worker (they share its maxConcurrentJobs
//     slots); without a limit no job waits for long, and a job whose Job exists is not in the queue;
//   - in Pooled mode, the jobs of the worker in the job's own namespace: each tenant has its own pool.

// waitingWorkerField indexes the SeekJobs waiting in a worker's queue by their worker's name.
const waitingWorkerField = "seek-api.com/waiting-worker"

// waitingWorker is the waitingWorkerField index's value of a SeekJob: its worker while it waits for a
// slot or a pool pod (no Job, no lease, not canceled or deleted), none otherwise.
func waitingWorker(o client.Object) []string {
	sj, ok := o.(*seekv1alpha1.SeekJob)
	if !ok || !waiting(sj) {
		return nil
	}
	return []string{string(sj.Spec.WorkerName)}
}

// waiting reports whether sj waits in its worker's queue.
func waiting(sj *seekv1alpha1.SeekJob) bool {
	return (sj.Status.State == "" || sj.Status.State == seekv1alpha1.JobStateQueued) && sj.Status.JobName == "" &&
		(sj.Status.Pool == nil || sj.Status.Pool.PodUID == "") && sj.Spec.CancelRequest == nil && sj.DeletionTimestamp == nil
}

// queueOrder is the order the controllers take waiting jobs in: oldest first, then by namespace and name.
func queueOrder(a, b *seekv1alpha1.SeekJob) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// queueScope is the queue a job of worker w in namespace ns waits in: the worker's (Job mode) or its
// pool's (Pooled). It also keys the finish rates.
func queueScope(ns string, w *seekv1alpha1.SeekWorker) string {
	if w.Pooled() {
		return ns + "/" + w.Name
	}
	return w.Name
}

// queuePositions returns the 1-based queue positions of the waiting jobs among jobs, by
// "namespace/name", with the estimate of each one's wait. Jobs of a worker the cache does not show get none.
func (s *Server) queuePositions(ctx context.Context, jobs []*seekv1alpha1.SeekJob) (map[string]*jobview.Queue, error) {
	out := map[string]*jobview.Queue{}
	queues := map[string][]*seekv1alpha1.SeekJob{}   // by scope: each queue is read once per call
	workers := map[string]*seekv1alpha1.SeekWorker{} // by name, nil when the cache has none
	for _, sj := range jobs {
		if !waiting(sj) {
			continue
		}
		name := string(sj.Spec.WorkerName)
		w, read := workers[name]
		if !read {
			w = &seekv1alpha1.SeekWorker{}
			if err := s.Client.Get(ctx, client.ObjectKey{Name: name}, w); err != nil {
				w = nil
			}
			workers[name] = w
		}
		if w == nil {
			continue // no worker: the job waits for it, not in a queue
		}
		scope := queueScope(sj.Namespace, w)
		q, read := queues[scope]
		if !read {
			opts := []client.ListOption{client.MatchingFields{waitingWorkerField: w.Name}, client.UnsafeDisableDeepCopy}
			if w.Pooled() {
				opts = append(opts, client.InNamespace(sj.Namespace))
			}
			list := &seekv1alpha1.SeekJobList{}
			if err := s.Client.List(ctx, list, opts...); err != nil {
				return nil, fmt.Errorf("list the queue of worker %s: %w", w.Name, err)
			}
			q = make([]*seekv1alpha1.SeekJob, len(list.Items))
			for i := range list.Items {
				q[i] = &list.Items[i]
			}
			slices.SortFunc(q, queueOrder)
			queues[scope] = q
		}
		// The cache may not show a job it was just created as: it is then last.
		pos := len(q) + 1
		if i, found := slices.BinarySearchFunc(q, sj, queueOrder); found {
			pos = i + 1
		}
		out[sj.Namespace+"/"+sj.Name] = &jobview.Queue{Position: int32(min(pos, math.MaxInt32)), EstimatedWaitSeconds: s.queues.estimate(scope, pos)}
	}
	return out, nil
}

// Finish rate bounds: the estimate uses a queue's last finishRing finishes within finishWindow, and
// only when there are at least minFinishes of them.
const (
	finishRing   = 32
	finishWindow = 5 * time.Minute
	minFinishes  = 4
)

// finishRates records when the jobs of each queue finish, as the SeekJob informer sees them finish,
// to estimate how long a waiting job will wait: its position divided by the queue's recent rate. It
// is per frontend replica and starts empty: a replica that has seen no finishes estimates nothing.
type finishRates struct {
	clock clock.PassiveClock
	// scope returns the queue scope of a job, false when its worker is unknown.
	scope func(sj *seekv1alpha1.SeekJob) (string, bool)

	mu sync.Mutex
	// times holds each scope's last finishes, oldest first, at most finishRing.
	times map[string][]time.Time
}

func newFinishRates(c clock.PassiveClock, scope func(*seekv1alpha1.SeekJob) (string, bool)) *finishRates {
	return &finishRates{clock: c, scope: scope, times: map[string][]time.Time{}}
}

// observe records a finish when a job goes from unfinished to finished.
func (f *finishRates) observe(old, cur any) {
	o, ok1 := old.(*seekv1alpha1.SeekJob)
	sj, ok2 := cur.(*seekv1alpha1.SeekJob)
	if !ok1 || !ok2 || o.Status.State.IsTerminal() || !sj.Status.State.IsTerminal() {
		return
	}
	scope, ok := f.scope(sj)
	if !ok {
		return
	}
	now := f.clock.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	t := append(f.times[scope], now)
	if len(t) > finishRing {
		t = slices.Delete(t, 0, len(t)-finishRing)
	}
	f.times[scope] = t
	// Forget the scopes that finished nothing lately, so the map grows with active queues only.
	for k, ts := range f.times {
		if now.Sub(ts[len(ts)-1]) > finishWindow {
			delete(f.times, k)
		}
	}
}

// estimate is the expected wait, in whole seconds, of the job at 1-based position pos of scope's
// queue, or nil when too few of its jobs finished lately to tell.
func (f *finishRates) estimate(scope string, pos int) *int64 {
	if f == nil {
		return nil
	}
	now := f.clock.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var recent []time.Time
	for _, t := range f.times[scope] {
		if now.Sub(t) <= finishWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) < minFinishes {
		return nil
	}
	span := now.Sub(recent[0])
	if span <= 0 {
		return nil
	}
	// len(recent) finishes in span: the queue moves one place every span/len(recent).
	secs := int64(math.Ceil(span.Seconds() * float64(pos) / float64(len(recent))))
	return &secs
}

// handler is the SeekJob informer's event handler feeding the rates.
func (f *finishRates) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{UpdateFunc: f.observe}
}
