package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// TestReconcilePooled drives the pooled branch of the SeekJob reconciler: what it writes (often
// nothing) for queued, leased and waiting pooled jobs.
func TestReconcilePooled(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	worker := testutil.MakeSeekWorker("echo").UID("w1").Pooled(4).Command("/echo").Retries(1).
		Timeouts(time.Minute, 0).StartDeadline(2 * time.Minute).QueueTimeout(time.Hour).Ready()
	hash := poolTemplateHash(worker.Obj(), "")
	poolJob := testutil.MakeJob(poolJobName("echo", hash, 1), "ns").UID("pj1").ForPool("echo", hash, 1).Created(now.Add(-time.Minute))
	pod := testutil.MakePod("pool-a", "ns").UID("pod1").ForPool("echo", hash).ControlledBy(poolJob.Obj()).Created(now.Add(-time.Minute))
	queued := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Generation(1).Created(now.Add(-time.Minute))
	leasedAt := func(t time.Time) *testutil.SeekJobWrapper {
		return queued.Clone().Leased(poolJob.Name, "pool-a", "pod1", t)
	}
	leased := leasedAt(now.Add(-10 * time.Second))
	retryAt := now.Add(20 * time.Second)
	waitingRetry := leased.Clone().Obj()
	waitingRetry.Status.Pool = &seekv1alpha1.PoolAttempt{JobName: poolJob.Name, RetryTime: &metav1.Time{Time: retryAt}}
	failedCreate := func(involved corev1.ObjectReference, action, msg string) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "ev1", Namespace: "ns"},
			InvolvedObject: involved, Reason: reasonFailedCreate, Action: action, Message: msg, LastTimestamp: metav1.NewTime(now),
		}
	}

	cases := []struct {
		name   string
		sj     *seekv1alpha1.SeekJob
		worker *seekv1alpha1.SeekWorker
		objs   []client.Object
		// cacheMissesPod makes the cache not show the pool pod (only the apiserver does).
		cacheMissesPod bool
		// terminating marks the pool pod as being deleted.
		terminating  bool
		wantWrites   int
		wantState    seekv1alpha1.JobState
		wantReason   string // Started reason while Queued (or empty), Finished reason once final
		wantAttempts int32
		wantRequeue  time.Duration
		// check inspects the job after the reconcile.
		check func(t *testing.T, got *seekv1alpha1.SeekJob)
	}{
		{
			name: "queued, pool fine: no write, due at the queue timeout",
			sj:   queued.Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().Running(now).Obj()},
			wantRequeue: 59 * time.Minute,
		},
		{
			name: "queued, no pool yet: no write",
			sj:   queued.Obj(), wantRequeue: 59 * time.Minute,
		},
		{
			name: "queued, pool pod being scheduled: no write",
			sj:   queued.Obj(), objs: []client.Object{poolJob.Obj(), pod.Obj()}, wantRequeue: 59 * time.Minute,
		},
		{
			name: "worker not ready: waits as in Job mode",
			sj:   queued.Obj(), worker: worker.Clone().NotReady(seekv1alpha1.WorkerReasonInvalidInputSchema, "bad schema").Obj(),
			wantWrites: 1, wantState: seekv1alpha1.JobStateQueued, wantReason: seekv1alpha1.JobReasonWorkerNotReady, wantRequeue: 59 * time.Minute,
		},
		{
			name: "invalid input: failed as in Job mode",
			sj:   queued.Clone().Timeout(2 * time.Hour).Obj(), worker: worker.Clone().Timeouts(time.Minute, time.Hour).Obj(),
			wantWrites: 1, wantState: seekv1alpha1.JobStateFailed, wantReason: seekv1alpha1.JobReasonInvalidTimeout,
		},
		{
			name:       "queue timeout",
			sj:         queued.Clone().Created(now.Add(-2 * time.Hour)).Obj(),
			wantWrites: 1, wantState: seekv1alpha1.JobStateFailed, wantReason: seekv1alpha1.JobReasonQueueTimeout,
		},
		{
			name:       "canceled while queued",
			sj:         queued.Clone().Cancel("changed my mind").Obj(),
			wantWrites: 1, wantState: seekv1alpha1.JobStateCanceled, wantReason: seekv1alpha1.JobReasonCanceled,
		},
		{
			name: "canceled while leased: the runner's heartbeat stops it",
			sj:   leased.Clone().Cancel("").Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().Running(now).Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateCanceled, wantReason: seekv1alpha1.JobReasonCanceled, wantAttempts: 1,
		},
		{
			name: "leased, holder running: no write, due at the timeout backstop",
			sj:   leased.Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().Running(now).Obj()},
			wantState: seekv1alpha1.JobStateRunning, wantReason: seekv1alpha1.JobReasonWorkerStarted, wantAttempts: 1,
			wantRequeue: time.Minute + stopGracePeriod + timeoutBackstopSlack - 10*time.Second,
		},
		{
			name: "leased, holder not in the cache yet but in the apiserver: no write",
			sj:   leased.Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().Running(now).Obj()}, cacheMissesPod: true,
			wantState: seekv1alpha1.JobStateRunning, wantReason: seekv1alpha1.JobReasonWorkerStarted, wantAttempts: 1,
			wantRequeue: time.Minute + stopGracePeriod + timeoutBackstopSlack - 10*time.Second,
		},
		{
			name: "leased, holder gone: released, the attempt does not count",
			sj:   leased.Obj(), objs: []client.Object{poolJob.Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateRunning, wantReason: seekv1alpha1.JobReasonWorkerStarted, wantAttempts: 0,
			check: func(t *testing.T, got *seekv1alpha1.SeekJob) {
				if diff := cmp.Diff(&seekv1alpha1.PoolAttempt{JobName: poolJob.Name}, got.Status.Pool); diff != "" {
					t.Errorf("status.pool (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "leased, another pod of the same name: released",
			sj:   leased.Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().UID("pod2").Running(now).Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateRunning, wantReason: seekv1alpha1.JobReasonWorkerStarted, wantAttempts: 0,
		},
		{
			name: "leased, holder failed: the attempt counts, retried after a back-off",
			sj:   leased.Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().Failed(2, "runner crashed", now).Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateRunning, wantReason: seekv1alpha1.JobReasonWorkerStarted, wantAttempts: 1,
			check: func(t *testing.T, got *seekv1alpha1.SeekJob) {
				want := &seekv1alpha1.PoolAttempt{JobName: poolJob.Name, RetryTime: &metav1.Time{Time: now.Add(retryBackoffBase)}}
				if diff := cmp.Diff(want, got.Status.Pool); diff != "" {
					t.Errorf("status.pool (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "leased, holder failed, no retries left: failed",
			sj:   leased.Obj(), worker: worker.Clone().Retries(0).Obj(),
			objs:       []client.Object{poolJob.Obj(), pod.Clone().Failed(2, "runner crashed", now).Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateFailed, wantReason: seekv1alpha1.JobReasonRetriesExhausted, wantAttempts: 1,
		},
		{
			name:       "leased, holder evicted: released",
			sj:         leased.Obj(),
			objs:       []client.Object{poolJob.Obj(), pod.Clone().Failed(137, "", now).Condition(corev1.DisruptionTarget, corev1.ConditionTrue, "EvictionByEvictionAPI").Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateRunning, wantReason: seekv1alpha1.JobReasonWorkerStarted, wantAttempts: 0,
		},
		{
			name: "leased, holder terminating: wait for the runner's report",
			sj:   leased.Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().Running(now).Obj()}, terminating: true,
			wantState: seekv1alpha1.JobStateRunning, wantReason: seekv1alpha1.JobReasonWorkerStarted, wantAttempts: 1,
			wantRequeue: terminatingPodRecheck,
		},
		{
			name:       "leased past the timeout backstop: timed out",
			sj:         leasedAt(now.Add(-time.Minute - stopGracePeriod - timeoutBackstopSlack)).Obj(),
			objs:       []client.Object{poolJob.Obj(), pod.Clone().Running(now).Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateTimedOut, wantReason: seekv1alpha1.JobReasonDeadlineExceeded, wantAttempts: 1,
		},
		{
			name: "waiting for a retry: no write, due at the retry time",
			sj:   waitingRetry, objs: []client.Object{poolJob.Obj()},
			wantState: seekv1alpha1.JobStateRunning, wantReason: seekv1alpha1.JobReasonWorkerStarted, wantAttempts: 1,
			wantRequeue: 20 * time.Second,
		},
		{
			name: "pool pod cannot pull the worker image: queued with the cause",
			sj:   queued.Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().Waiting("ImagePullBackOff", "Back-off pulling image").Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateQueued, wantReason: "ImagePullBackOff", wantRequeue: time.Minute,
		},
		{
			name: "pool pod cannot pull the runner image: queued with the cause",
			sj:   queued.Obj(), objs: []client.Object{poolJob.Obj(), pod.Clone().InitWaiting("seek-runner-install", "ErrImagePull", "no such image").Waiting("PodInitializing", "").Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateQueued, wantReason: "ErrImagePull", wantRequeue: time.Minute,
		},
		{
			name:       "pool pod unschedulable past the start deadline: failed with the cause",
			sj:         queued.Clone().Created(now.Add(-3 * time.Minute)).Obj(),
			objs:       []client.Object{poolJob.Obj(), pod.Clone().Unschedulable("0/1 nodes are available").Obj()},
			wantWrites: 1, wantState: seekv1alpha1.JobStateFailed, wantReason: corev1.PodReasonUnschedulable,
		},
		{
			name: "the Job controller cannot create pool pods: queued with the cause",
			sj:   queued.Obj(),
			objs: []client.Object{poolJob.Obj(), failedCreate(corev1.ObjectReference{Kind: "Job", Namespace: "ns", Name: poolJob.Name, UID: "pj1"}, "",
				`Error creating: pods "x" is forbidden: error looking up service account ns/runner: serviceaccount "runner" not found`)},
			wantWrites: 1, wantState: seekv1alpha1.JobStateQueued, wantReason: seekv1alpha1.JobReasonServiceAccountNotFound, wantRequeue: time.Minute,
		},
		{
			name: "a quota refused the pool Job: queued with the cause",
			sj:   queued.Obj(),
			objs: []client.Object{failedCreate(corev1.ObjectReference{Kind: "Job", Namespace: "ns", Name: poolJobName("echo", hash, 1)},
				seekv1alpha1.JobReasonQuotaExceeded, "A ResourceQuota refused the Job; retrying: exceeded quota")},
			wantWrites: 1, wantState: seekv1alpha1.JobStateQueued, wantReason: seekv1alpha1.JobReasonQuotaExceeded, wantRequeue: time.Minute,
		},
		{
			name: "another worker's pool Job was refused: no write",
			sj:   queued.Obj(),
			objs: []client.Object{failedCreate(corev1.ObjectReference{Kind: "Job", Namespace: "ns", Name: poolJobName("echo2", hash, 1)},
				seekv1alpha1.JobReasonQuotaExceeded, "A ResourceQuota refused the Job")},
			wantRequeue: 59 * time.Minute,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.worker
			if w == nil {
				w = worker.Obj()
			}
			sj := tc.sj.DeepCopy()
			objs := []client.Object{sj, w}
			for _, o := range tc.objs {
				o = o.DeepCopyObject().(client.Object)
				if p, ok := o.(*corev1.Pod); ok && tc.terminating {
					p.DeletionTimestamp, p.Finalizers = ptr.To(metav1.NewTime(now)), []string{"test"}
				}
				objs = append(objs, o)
			}
			counter := &writeCounter{}
			apiserver := newPoolTestClient(t, counter, nil, objs...)
			cache := client.Client(apiserver)
			if tc.cacheMissesPod {
				cache = interceptor.NewClient(apiserver, interceptor.Funcs{
					Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
						if _, ok := obj.(*corev1.Pod); ok {
							return apierrors.NewNotFound(corev1.Resource("pods"), key.Name)
						}
						return c.Get(ctx, key, obj, opts...)
					},
				})
			}
			r := &SeekJobReconciler{Client: cache, APIReader: apiserver, Recorder: events.NewFakeRecorder(10),
				Clock: clocktesting.NewFakePassiveClock(now), Metrics: NewMetrics(apiserver)}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(sj)})
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter != tc.wantRequeue {
				t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, tc.wantRequeue)
			}
			if n := counter.total(); n != tc.wantWrites {
				t.Errorf("%d writes (%v), want %d", n, counter.writes, tc.wantWrites)
			}
			got := &seekv1alpha1.SeekJob{}
			if err := apiserver.Get(context.Background(), client.ObjectKeyFromObject(sj), got); err != nil {
				t.Fatal(err)
			}
			if tc.wantWrites == 0 && !cmp.Equal(tc.sj.Status, got.Status) {
				t.Errorf("status changed without a write:\n%s", cmp.Diff(tc.sj.Status, got.Status))
			}
			condType := seekv1alpha1.JobStarted
			if got.Status.State.IsTerminal() {
				condType = seekv1alpha1.JobFinished
			}
			reason := ""
			if c := meta.FindStatusCondition(got.Status.Conditions, condType); c != nil {
				reason = c.Reason
			}
			if got.Status.State != tc.wantState || reason != tc.wantReason || got.Status.Attempts != tc.wantAttempts {
				t.Errorf("state %q, %s reason %q, attempts %d; want %q, %q, %d (error %+v)", got.Status.State, condType, reason,
					got.Status.Attempts, tc.wantState, tc.wantReason, tc.wantAttempts, got.Status.Error)
			}
			if tc.wantWrites > 0 && got.Status.ObservedGeneration != 1 {
				t.Errorf("observedGeneration = %d, want 1", got.Status.ObservedGeneration)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
			// No Job of its own is ever made for a pooled job.
			if err := apiserver.Get(context.Background(), client.ObjectKeyFromObject(sj), &batchv1.Job{}); !apierrors.IsNotFound(err) {
				t.Errorf("Job %s exists (%v): a pooled job must not get a Job of its own", sj.Name, err)
			}
		})
	}
}

func TestPoolPodUIDIndexValue(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sj := testutil.MakeSeekJob("a", "ns").Worker("echo")
	for _, tc := range []struct {
		sj   *seekv1alpha1.SeekJob
		want []string
	}{
		{sj.Obj(), nil},
		{sj.Clone().Leased("pool", "p", "pod1", now).Obj(), []string{"pod1"}},
		{sj.Clone().Leased("pool", "p", "pod1", now).Finished(seekv1alpha1.JobStateCompleted, "Succeeded", now).Obj(), nil},
	} {
		if diff := cmp.Diff(tc.want, poolPodUIDIndexValue(tc.sj)); diff != "" {
			t.Errorf("poolPodUIDIndexValue (-want +got):\n%s", diff)
		}
	}
}
