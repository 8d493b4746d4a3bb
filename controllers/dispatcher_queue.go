package controllers

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// dispatchState is the dispatcher's derived view of the SeekJobs, fed by the SeekJob informer and by
// the dispatcher's own writes (whichever is newer per job): the queue of each pool in lease order, the
// attempts each worker's pods hold (for limits.maxConcurrentJobs), and which pod holds what. It is
// rebuilt from the cache after a restart (the informer replays every object), so it holds nothing
// that is not in the SeekJobs' status. Every method is safe for concurrent use.
type dispatchState struct {
	mu sync.Mutex
	// jobs is every SeekJob that has not finished, by UID.
	jobs map[types.UID]*jobEntry
	// queues holds each pool's candidates (see jobEntry.candidate), ordered by creation, then name.
	queues map[string][]*jobEntry
	// held is, per worker, the jobs whose attempt a pool pod holds or that are being leased right now.
	held map[string]map[types.UID]struct{}
	// holders maps a pod UID to the jobs it holds: one, but for a moment after a leader change. A
	// lease the last leader wrote as it stopped, whose answer never reached the runner, may reach
	// this informer only after this dispatcher leased the pod another job.
	holders map[string]map[types.UID]struct{}
	// waiters are the channels closed on the next change of a pool ("pool/" key) or job ("job/" UID).
	waiters map[string]chan struct{}
	// done holds the resourceVersion at which each known finished job finished, so that an older
	// version delivered late does not queue it again; a job leaves it when deleted.
	done map[types.UID]uint64
	// now is the dispatcher's clock, for the holders' last contact.
	now func() time.Time
}

// jobEntry is what the dispatcher knows of one SeekJob.
type jobEntry struct {
	key     types.NamespacedName
	uid     types.UID
	worker  string
	created time.Time
	// rv is the resourceVersion this entry was built from; older versions are ignored.
	rv uint64
	// candidate means the job may be leasable (perhaps after its retry time): not finished, not being
	// canceled or deleted, no Job of its own, no holder.
	candidate bool
	// claimed means a lease of the job is being written.
	claimed bool
	// holder is the UID of the pod holding the current attempt, attempts the attempt's number.
	holder   string
	attempts int32
	canceled bool
	// contact is when the holder last spoke of the current attempt (a heartbeat, progress, its
	// report), or when this dispatcher learnt of the attempt. It is liveness, not state: a new leader
	// starts every held attempt's clock afresh, as the node lifecycle controller does with node
	// heartbeats.
	contact time.Time
}

func newDispatchState() *dispatchState {
	return &dispatchState{
		now:     time.Now,
		jobs:    map[types.UID]*jobEntry{},
		queues:  map[string][]*jobEntry{},
		held:    map[string]map[types.UID]struct{}{},
		holders: map[string]map[types.UID]struct{}{},
		waiters: map[string]chan struct{}{},
		done:    map[types.UID]uint64{},
	}
}

func poolWaitKey(pool string) string   { return "pool/" + pool }
func jobWaitKey(uid types.UID) string  { return "job/" + string(uid) }
func (e *jobEntry) pool() string       { return poolKey(e.key.Namespace, e.worker) }
func (e *jobEntry) countsAsHeld() bool { return e.holder != "" || e.claimed }

// parseRV reads a resourceVersion as the number it is in practice (etcd's revision); 0 if it is not.
func parseRV(rv string) uint64 {
	n, _ := strconv.ParseUint(rv, 10, 64)
	return n
}

// entryFor summarises sj.
func entryFor(sj *seekv1alpha1.SeekJob) *jobEntry {
	ok, wait := leasable(sj, time.Time{})
	e := &jobEntry{
		key:       types.NamespacedName{Namespace: sj.Namespace, Name: sj.Name},
		uid:       sj.UID,
		worker:    string(sj.Spec.WorkerName),
		created:   sj.CreationTimestamp.Time,
		rv:        parseRV(sj.ResourceVersion),
		candidate: ok || wait > 0,
		attempts:  sj.Status.Attempts,
		canceled:  sj.Spec.CancelRequest != nil,
	}
	if leased(sj) && !sj.Status.State.IsTerminal() {
		e.holder = sj.Status.Pool.PodUID
	}
	return e
}

// before orders a pool's queue: oldest first, then by name.
func (e *jobEntry) before(o *jobEntry) bool {
	if !e.created.Equal(o.created) {
		return e.created.Before(o.created)
	}
	return e.key.Name < o.key.Name
}

// observe records a version of sj, from the informer or from a write of the dispatcher: a version
// older than the one known is ignored (the informer may deliver it after the dispatcher's own write).
func (s *dispatchState) observe(sj *seekv1alpha1.SeekJob) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.jobs[sj.UID]
	n := entryFor(sj)
	if rv, ok := s.done[sj.UID]; ok && (n.rv == 0 || rv >= n.rv) {
		return
	}
	if old != nil && n.rv != 0 && old.rv > n.rv {
		return
	}
	if old != nil {
		n.claimed = old.claimed
	}
	s.replace(old, n)
	if sj.Status.State.IsTerminal() {
		s.replace(n, nil)
		s.done[sj.UID] = n.rv
	}
}

// forget removes a deleted SeekJob.
func (s *dispatchState) forget(uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replace(s.jobs[uid], nil)
	delete(s.done, uid)
}

// replace swaps old for n (either may be nil) in every view and wakes whoever waits on a change.
// s.mu is held.
func (s *dispatchState) replace(old, n *jobEntry) {
	if old != nil {
		if old.candidate && !old.claimed {
			s.dequeue(old)
		}
		if old.countsAsHeld() {
			delete(s.held[old.worker], old.uid)
			// A slot may have been freed: every pool of the worker may lease again.
			s.wakeWorker(old.worker)
		}
		if old.holder != "" {
			delete(s.holders[old.holder], old.uid)
			if len(s.holders[old.holder]) == 0 {
				delete(s.holders, old.holder)
			}
		}
		delete(s.jobs, old.uid)
		s.wake(jobWaitKey(old.uid))
		s.wake(poolWaitKey(old.pool()))
	}
	if n == nil {
		return
	}
	if n.holder != "" && old != nil && old.holder == n.holder && old.attempts == n.attempts {
		n.contact = old.contact
	} else if n.holder != "" {
		n.contact = s.now()
	}
	s.jobs[n.uid] = n
	if n.candidate && !n.claimed {
		q := s.queues[n.pool()]
		i, _ := slices.BinarySearchFunc(q, n, func(a, b *jobEntry) int {
			if a.before(b) {
				return -1
			}
			return 1
		})
		s.queues[n.pool()] = slices.Insert(q, i, n)
	}
	if n.countsAsHeld() {
		if s.held[n.worker] == nil {
			s.held[n.worker] = map[types.UID]struct{}{}
		}
		s.held[n.worker][n.uid] = struct{}{}
	}
	if n.holder != "" {
		if s.holders[n.holder] == nil {
			s.holders[n.holder] = map[types.UID]struct{}{}
		}
		s.holders[n.holder][n.uid] = struct{}{}
	}
	s.wake(jobWaitKey(n.uid))
	s.wake(poolWaitKey(n.pool()))
}

// dequeue removes e from its pool's queue. s.mu is held.
func (s *dispatchState) dequeue(e *jobEntry) {
	q := s.queues[e.pool()]
	if i := slices.Index(q, e); i >= 0 {
		q = slices.Delete(q, i, i+1)
	}
	if len(q) == 0 {
		delete(s.queues, e.pool())
		return
	}
	s.queues[e.pool()] = q
}

// wake closes the channel of key's waiters. s.mu is held.
func (s *dispatchState) wake(key string) {
	if ch, ok := s.waiters[key]; ok {
		close(ch)
		delete(s.waiters, key)
	}
}

// wakeWorker wakes the waiters of every pool of worker. s.mu is held.
func (s *dispatchState) wakeWorker(worker string) {
	suffix := "/" + worker
	for key := range s.waiters {
		if strings.HasPrefix(key, "pool/") && strings.HasSuffix(key, suffix) &&
			strings.Count(key, "/") == 2 {
			s.wake(key)
		}
	}
}

// WakeWorker wakes the lease calls waiting in any pool of worker (its spec or readiness changed).
func (s *dispatchState) WakeWorker(worker string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wakeWorker(worker)
}

// changed returns a channel closed at the next change of key (poolWaitKey or jobWaitKey).
func (s *dispatchState) changed(key string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changedLocked(key)
}

func (s *dispatchState) changedLocked(key string) <-chan struct{} {
	ch, ok := s.waiters[key]
	if !ok {
		ch = make(chan struct{})
		s.waiters[key] = ch
	}
	return ch
}

// queued returns the keys of pool's candidates in lease order.
func (s *dispatchState) queued(pool string) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[pool]
	keys := make([]types.NamespacedName, len(q))
	for i, e := range q {
		keys[i] = e.key
	}
	return keys
}

// heldBy returns the jobs whose attempt the pod holds, by name.
func (s *dispatchState) heldBy(podUID string) []types.NamespacedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]types.NamespacedName, 0, len(s.holders[podUID]))
	for uid := range s.holders[podUID] {
		keys = append(keys, s.jobs[uid].key)
	}
	slices.SortFunc(keys, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	return keys
}

// claimResult is the outcome of a claim.
type claimResult int

const (
	// claimOK: the job is the caller's to lease.
	claimOK claimResult = iota
	// claimGone: the job is no longer a candidate (leased, finished, claimed by another call).
	claimGone
	// claimFull: the worker's pods hold as many attempts as its limit allows.
	claimFull
)

// claim marks the job with the given UID as being leased, if it is still a candidate and its worker
// holds fewer than limit attempts (limit < 0: no limit). The claim counts as a held attempt until
// unclaim.
func (s *dispatchState) claim(uid types.UID, limit int) claimResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.jobs[uid]
	if e == nil || !e.candidate || e.claimed || e.holder != "" {
		return claimGone
	}
	if limit >= 0 && len(s.held[e.worker]) >= limit {
		return claimFull
	}
	n := *e
	n.claimed = true
	s.replace(e, &n)
	return claimOK
}

// unclaim ends a claim: the lease was written (written is the new version) or not (nil).
func (s *dispatchState) unclaim(uid types.UID, written *seekv1alpha1.SeekJob) {
	s.mu.Lock()
	e := s.jobs[uid]
	if e != nil && e.claimed {
		n := *e
		n.claimed = false
		s.replace(e, &n)
	}
	s.mu.Unlock()
	if written != nil {
		s.observe(written)
	}
}

// heldCount is how many attempts the worker's pods hold or are being given.
func (s *dispatchState) heldCount(worker string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held[worker])
}

// attempt returns what the dispatcher knows of the job with the given UID and key: the pod holding its
// current attempt ("" if none), the attempt's number and whether a cancel was requested; ok is false
// when the job is unknown (finished or deleted).
func (s *dispatchState) attempt(uid types.UID, key types.NamespacedName) (holder string, attempts int32, canceled, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.jobs[uid]
	if e == nil || e.key != key {
		return "", 0, false, false
	}
	return e.holder, e.attempts, e.canceled, true
}

// newerThan reports whether the dispatcher knows a newer version of sj than sj (its own write, which
// the cache has not shown yet).
func (s *dispatchState) newerThan(sj *seekv1alpha1.SeekJob) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.jobs[sj.UID]
	rv := parseRV(sj.ResourceVersion)
	return e != nil && rv != 0 && e.rv > rv
}

// touch records that the pod with the given UID spoke of the job's attempt (a heartbeat, progress,
// a report), if it holds it.
func (s *dispatchState) touch(uid types.UID, podUID string, attempt int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.jobs[uid]; e != nil && e.holder == podUID && e.attempts == attempt {
		e.contact = s.now()
	}
}

// silentAttempt is an attempt whose holder has not spoken of it for a while.
type silentAttempt struct {
	key      types.NamespacedName
	uid      types.UID
	holder   string
	attempts int32
	silence  time.Duration
}

// silent returns the held attempts whose holder has not spoken of them for at least limit.
func (s *dispatchState) silent(limit time.Duration) []silentAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []silentAttempt
	for _, e := range s.jobs {
		if e.holder != "" && now.Sub(e.contact) >= limit {
			out = append(out, silentAttempt{key: e.key, uid: e.uid, holder: e.holder, attempts: e.attempts, silence: now.Sub(e.contact)})
		}
	}
	slices.SortFunc(out, func(a, b silentAttempt) int { return strings.Compare(a.key.String(), b.key.String()) })
	return out
}
