package controllers

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// queuedJob is a new pooled job of worker echo, at resourceVersion rv.
func queuedJob(ns, name string, created time.Time, rv int) *seekv1alpha1.SeekJob {
	sj := testutil.MakeSeekJob(name, ns).Worker("echo").UID(ns + "-" + name).Created(created).Obj()
	sj.ResourceVersion = strconv.Itoa(rv)
	return sj
}

// version returns a copy of sj at resourceVersion rv after change.
func version(sj *seekv1alpha1.SeekJob, rv int, change func(*seekv1alpha1.SeekJob)) *seekv1alpha1.SeekJob {
	sj = sj.DeepCopy()
	sj.ResourceVersion = strconv.Itoa(rv)
	change(sj)
	return sj
}

func names(keys []types.NamespacedName) []string {
	out := []string{}
	for _, k := range keys {
		out = append(out, k.Name)
	}
	return out
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestDispatchStateQueueOrder(t *testing.T) {
	s := newDispatchState()
	s.observe(queuedJob("ns", "c", t0.Add(2*time.Second), 1))
	s.observe(queuedJob("ns", "b", t0.Add(time.Second), 2))
	s.observe(queuedJob("ns", "a", t0.Add(time.Second), 3))
	s.observe(queuedJob("other", "0", t0, 4)) // another pool
	s.observe(queuedJob("ns", "canceled", t0, 5).DeepCopy())
	canceled := queuedJob("ns", "canceled", t0, 6)
	canceled.Spec.CancelRequest = &seekv1alpha1.CancelRequest{}
	s.observe(canceled)
	s.observe(testutil.MakeSeekJob("job-mode", "ns").Worker("echo").UID("jm").Created(t0).JobName("job-mode").Obj())
	s.observe(testutil.MakeSeekJob("done", "ns").Worker("echo").UID("done").Created(t0).
		Finished(seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, t0).Obj())
	retrying := runningPooledJob(1)
	retrying.Namespace, retrying.Name, retrying.UID = "ns", "retrying", "retrying"
	releaseAttempt(retrying, true, t0)
	s.observe(retrying)

	if diff := cmp.Diff([]string{"retrying", "a", "b", "c"}, names(s.queued(poolKey("ns", "echo")))); diff != "" {
		t.Errorf("queue of ns/echo (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"0"}, names(s.queued(poolKey("other", "echo")))); diff != "" {
		t.Errorf("queue of other/echo (-want +got):\n%s", diff)
	}
}

func TestDispatchStateVersions(t *testing.T) {
	s := newDispatchState()
	pool := poolKey("ns", "echo")
	v1 := queuedJob("ns", "job", t0, 10)
	s.observe(v1)
	pod := testutil.MakePod("pod", "ns").UID("pod-uid").Obj()
	leased := version(v1, 12, func(sj *seekv1alpha1.SeekJob) { setLeased(sj, "pool-1", pod, t0) })
	s.observe(leased)
	s.observe(version(v1, 11, func(*seekv1alpha1.SeekJob) {})) // delivered late: ignored
	if got := names(s.queued(pool)); len(got) != 0 {
		t.Errorf("a leased job is queued: %v", got)
	}
	if diff := cmp.Diff([]string{"job"}, names(s.heldBy("pod-uid"))); diff != "" {
		t.Errorf("heldBy(pod-uid) (-want +got):\n%s", diff)
	}
	if holder, attempts, _, ok := s.attempt(v1.UID, types.NamespacedName{Namespace: "ns", Name: "job"}); holder != "pod-uid" || attempts != 1 || !ok {
		t.Errorf("attempt = %q, %d, %v; want pod-uid, 1, true", holder, attempts, ok)
	}
	if _, _, _, ok := s.attempt(v1.UID, types.NamespacedName{Namespace: "ns", Name: "other-name"}); ok {
		t.Errorf("attempt found under another name")
	}
	if !s.newerThan(v1) || s.newerThan(leased) {
		t.Errorf("newerThan: v1 %v (want true), leased %v (want false)", s.newerThan(v1), s.newerThan(leased))
	}

	finished := version(leased, 14, func(sj *seekv1alpha1.SeekJob) {
		finish(sj, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, "done", nil, t0)
	})
	s.observe(finished)
	s.observe(leased) // late again: the finished job stays gone
	if held := s.heldBy("pod-uid"); len(held) != 0 {
		t.Errorf("a finished job is still held: %v", held)
	}
	if n := s.heldCount("echo"); n != 0 {
		t.Errorf("heldCount = %d after the job finished, want 0", n)
	}
	if _, _, _, ok := s.attempt(v1.UID, types.NamespacedName{Namespace: "ns", Name: "job"}); ok {
		t.Errorf("a finished job is known")
	}
	s.forget(v1.UID)
	if len(s.jobs) != 0 || len(s.done) != 0 || len(s.queues) != 0 || len(s.held["echo"]) != 0 || len(s.holders) != 0 {
		t.Errorf("state not empty after the job was deleted: %+v", s)
	}
}

func TestDispatchStateClaim(t *testing.T) {
	s := newDispatchState()
	pod := testutil.MakePod("pod", "ns1").UID("pod-uid").Obj()
	running := version(queuedJob("ns1", "running", t0, 1), 2, func(sj *seekv1alpha1.SeekJob) { setLeased(sj, "pool-1", pod, t0) })
	s.observe(running)
	waiting := queuedJob("ns2", "waiting", t0, 3)
	s.observe(waiting)

	if got := s.claim(waiting.UID, 1); got != claimFull {
		t.Errorf("claim with the worker's one slot held in another namespace = %v, want claimFull", got)
	}
	if got := s.claim(waiting.UID, 2); got != claimOK {
		t.Fatalf("claim with a slot free = %v, want claimOK", got)
	}
	if got := s.claim(waiting.UID, -1); got != claimGone {
		t.Errorf("second claim = %v, want claimGone", got)
	}
	if n := s.heldCount("echo"); n != 2 {
		t.Errorf("heldCount with a claim in flight = %d, want 2", n)
	}
	if got := names(s.queued(poolKey("ns2", "echo"))); len(got) != 0 {
		t.Errorf("a claimed job is queued: %v", got)
	}
	s.unclaim(waiting.UID, nil) // the write failed
	if diff := cmp.Diff([]string{"waiting"}, names(s.queued(poolKey("ns2", "echo")))); diff != "" {
		t.Errorf("queue after a failed lease (-want +got):\n%s", diff)
	}
	if n := s.heldCount("echo"); n != 1 {
		t.Errorf("heldCount after a failed lease = %d, want 1", n)
	}

	if got := s.claim(waiting.UID, -1); got != claimOK {
		t.Fatalf("claim = %v, want claimOK", got)
	}
	other := testutil.MakePod("pod2", "ns2").UID("pod2-uid").Obj()
	s.unclaim(waiting.UID, version(waiting, 4, func(sj *seekv1alpha1.SeekJob) { setLeased(sj, "pool-2", other, t0) }))
	if n := s.heldCount("echo"); n != 2 {
		t.Errorf("heldCount after a lease = %d, want 2", n)
	}
	if diff := cmp.Diff([]string{"waiting"}, names(s.heldBy("pod2-uid"))); diff != "" {
		t.Errorf("heldBy(pod2-uid) (-want +got):\n%s", diff)
	}
	// The informer's event of the version before the lease comes late: nothing changes.
	s.observe(waiting)
	if got := names(s.queued(poolKey("ns2", "echo"))); len(got) != 0 {
		t.Errorf("a leased job is queued again: %v", got)
	}
}

func TestDispatchStateWakeups(t *testing.T) {
	s := newDispatchState()
	pool1, pool2, otherWorker := s.changed(poolWaitKey("ns/echo")), s.changed(poolWaitKey("ns2/echo")), s.changed(poolWaitKey("ns/x-echo"))
	job := queuedJob("ns", "job", t0, 1)
	jobCh := s.changed(jobWaitKey(job.UID))
	s.observe(job)
	if !closed(pool1) || closed(pool2) || closed(otherWorker) || !closed(jobCh) {
		t.Errorf("a new job woke: own pool %v (want true), other namespace %v, other worker %v, the job %v (want true)",
			closed(pool1), closed(pool2), closed(otherWorker), closed(jobCh))
	}
	pool1 = s.changed(poolWaitKey("ns/echo"))
	s.WakeWorker("echo")
	if !closed(pool1) || !closed(pool2) || closed(otherWorker) {
		t.Errorf("a worker change woke: ns/echo %v, ns2/echo %v (want both), ns/x-echo %v (want not)", closed(pool1), closed(pool2), closed(otherWorker))
	}

	// A held attempt ending frees a slot: every pool of the worker wakes.
	pod := testutil.MakePod("pod", "ns").UID("pod-uid").Obj()
	s.observe(version(job, 2, func(sj *seekv1alpha1.SeekJob) { setLeased(sj, "pool-1", pod, t0) }))
	pool2 = s.changed(poolWaitKey("ns2/echo"))
	jobCh = s.changed(jobWaitKey(job.UID))
	s.observe(version(job, 3, func(sj *seekv1alpha1.SeekJob) { sj.Spec.CancelRequest = &seekv1alpha1.CancelRequest{} }))
	if !closed(jobCh) {
		t.Errorf("a cancel request did not wake the job's heartbeat")
	}
	s.observe(version(job, 4, func(sj *seekv1alpha1.SeekJob) {
		finish(sj, seekv1alpha1.JobStateCanceled, seekv1alpha1.JobReasonCanceled, "canceled", &seekv1alpha1.JobError{}, t0)
	}))
	if !closed(pool2) {
		t.Errorf("a freed slot did not wake the worker's other pool")
	}
}

// TestDispatchStateSilence: a held attempt's clock starts when the dispatcher learns of it, restarts
// with each word from its holder about it (not from another pod, not about another attempt) and with
// a new holder, and the attempt is silent once limit passes without one.
func TestDispatchStateSilence(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(t0)
	s := newDispatchState()
	s.now = clock.Now
	pod := testutil.MakePod("pod", "ns").UID("pod-uid").Obj()
	leased := version(queuedJob("ns", "job", t0, 10), 12, func(sj *seekv1alpha1.SeekJob) { setLeased(sj, "pool-1", pod, t0) })
	s.observe(queuedJob("ns", "waiting", t0, 11))
	s.observe(leased)
	silentNames := func() []string {
		var out []string
		for _, a := range s.silent(time.Minute) {
			out = append(out, fmt.Sprintf("%s %s %d", a.key.Name, a.holder, a.attempts))
		}
		return out
	}
	step := func(d time.Duration, want ...string) {
		t.Helper()
		clock.SetTime(clock.Now().Add(d))
		if diff := cmp.Diff(want, silentNames()); diff != "" {
			t.Errorf("silent at %v (-want +got):\n%s", clock.Now().Sub(t0), diff)
		}
	}
	step(59 * time.Second)
	s.touch(leased.UID, "other-pod", 1)                            // not the holder
	s.touch(leased.UID, "pod-uid", 2)                              // not its attempt
	s.observe(version(leased, 13, func(*seekv1alpha1.SeekJob) {})) // the same attempt again
	step(time.Second, "job pod-uid 1")
	s.touch(leased.UID, "pod-uid", 1)
	step(59 * time.Second)
	step(time.Second, "job pod-uid 1")
	releasedAndLeasedAgain := version(leased, 14, func(sj *seekv1alpha1.SeekJob) {
		releaseAttempt(sj, false, clock.Now())
		setLeased(sj, "pool-1", testutil.MakePod("pod2", "ns").UID("pod2-uid").Obj(), clock.Now())
	})
	s.observe(releasedAndLeasedAgain)
	step(59 * time.Second)
	step(time.Second, "job pod2-uid 1")
}
