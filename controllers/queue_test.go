package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestQueueLimit(t *testing.T) {
	job := testutil.MakeSeekJob("a", "ns").Worker("echo")
	worker := testutil.MakeSeekWorker("echo")
	cases := []struct {
		name          string
		sj            *seekv1alpha1.SeekJob
		worker        *seekv1alpha1.SeekWorker
		unknownWorker time.Duration
		want          time.Duration
		wantSource    string
	}{
		{
			name:       "worker's queue timeout",
			sj:         job.Obj(),
			worker:     worker.Clone().QueueTimeout(time.Hour).Obj(),
			want:       time.Hour,
			wantSource: `timeouts.queueTimeout of SeekWorker "echo"`,
		},
		{
			name:       "worker without one (no API defaulting): 24h",
			sj:         job.Obj(),
			worker:     worker.Obj(),
			want:       24 * time.Hour,
			wantSource: `the default of SeekWorker "echo"`,
		},
		{
			name:       "a job may ask for less",
			sj:         job.Clone().QueueTimeout(time.Minute).Obj(),
			worker:     worker.Clone().QueueTimeout(time.Hour).Obj(),
			want:       time.Minute,
			wantSource: "spec.queueTimeout",
		},
		{
			name:       "a job may not ask for more",
			sj:         job.Clone().QueueTimeout(2 * time.Hour).Obj(),
			worker:     worker.Clone().QueueTimeout(time.Hour).Obj(),
			want:       time.Hour,
			wantSource: `timeouts.queueTimeout of SeekWorker "echo"`,
		},
		{
			name:          "missing worker: the manager's default",
			sj:            job.Obj(),
			unknownWorker: time.Hour,
			want:          time.Hour,
			wantSource:    "the manager's --default-queue-timeout for jobs of missing SeekWorkers",
		},
		{
			name:          "missing worker: a job may ask for less than the manager's default",
			sj:            job.Clone().QueueTimeout(time.Second).Obj(),
			unknownWorker: time.Hour,
			want:          time.Second,
			wantSource:    "spec.queueTimeout",
		},
		{
			name:          "missing worker: a job may not ask for more than the manager's default",
			sj:            job.Clone().QueueTimeout(2 * time.Hour).Obj(),
			unknownWorker: time.Hour,
			want:          time.Hour,
			wantSource:    "the manager's --default-queue-timeout for jobs of missing SeekWorkers",
		},
		{
			name: "missing worker, no manager default: no limit",
			sj:   job.Obj(),
		},
		{
			name:       "missing worker, no manager default: the job's own",
			sj:         job.Clone().QueueTimeout(time.Minute).Obj(),
			want:       time.Minute,
			wantSource: "spec.queueTimeout",
		},
		{
			name:          "the manager's default does not apply to workers that exist",
			sj:            job.Obj(),
			worker:        worker.Clone().QueueTimeout(48 * time.Hour).Obj(),
			unknownWorker: time.Hour,
			want:          48 * time.Hour,
			wantSource:    `timeouts.queueTimeout of SeekWorker "echo"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, source := queueLimit(tc.sj, tc.worker, tc.unknownWorker)
			if got != tc.want || source != tc.wantSource {
				t.Errorf("queueLimit() = %v, %q; want %v, %q", got, source, tc.want, tc.wantSource)
			}
		})
	}
}

func TestQueueWait(t *testing.T) {
	cases := []struct {
		name        string
		limit       time.Duration
		now         time.Time
		wantWait    time.Duration
		wantExpired bool
	}{
		{name: "no limit", now: t0.Add(1000 * time.Hour)},
		{name: "just created", limit: time.Hour, now: t0, wantWait: time.Hour},
		{name: "half way", limit: time.Hour, now: t0.Add(20 * time.Minute), wantWait: 40 * time.Minute},
		{name: "at the deadline", limit: time.Hour, now: t0.Add(time.Hour), wantExpired: true},
		{name: "past the deadline", limit: time.Hour, now: t0.Add(2 * time.Hour), wantWait: -time.Hour, wantExpired: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wait, expired := queueWait(t0, tc.limit, tc.now)
			if wait != tc.wantWait || expired != tc.wantExpired {
				t.Errorf("queueWait() = %v, %v; want %v, %v", wait, expired, tc.wantWait, tc.wantExpired)
			}
		})
	}
}

// TestReconcileQueueTimeout drives Reconcile on a fake apiserver and a fake clock.
func TestReconcileQueueTimeout(t *testing.T) {
	created := t0
	job := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Created(created)
	waiting := func(w *testutil.SeekJobWrapper, reason, msg string) *testutil.SeekJobWrapper {
		return w.State(seekv1alpha1.JobStateQueued).Condition(metav1.Condition{
			Type: seekv1alpha1.JobStarted, Status: metav1.ConditionFalse, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(created),
		})
	}
	worker := testutil.MakeSeekWorker("echo").Ready().QueueTimeout(time.Hour)
	capped := worker.Clone().MaxConcurrent(1).ActiveJobs(seekv1alpha1.JobReference{Namespace: "ns", Name: "other", UID: "u2"})

	cases := []struct {
		name string
		sj   *seekv1alpha1.SeekJob
		objs []client.Object
		// unknownWorker is the manager's default for missing workers.
		unknownWorker time.Duration
		now           time.Time
		// jobHiddenFromCache puts a Job of sj in the apiserver that the cache does not show.
		jobHiddenFromCache bool

		want       ctrl.Result
		wantState  seekv1alpha1.JobState
		wantReason string // of the Started condition while Queued, of Finished once finished
		wantMsg    string
	}{
		{
			name:          "missing worker: requeued for the manager's default",
			sj:            job.Obj(),
			unknownWorker: time.Hour,
			now:           created.Add(10 * time.Minute),
			want:          ctrl.Result{RequeueAfter: 50 * time.Minute},
			wantState:     seekv1alpha1.JobStateQueued,
			wantReason:    seekv1alpha1.JobReasonWorkerNotFound,
		},
		{
			name:       "missing worker, no manager default: waits for the worker's watch event",
			sj:         job.Obj(),
			now:        created.Add(1000 * time.Hour),
			wantState:  seekv1alpha1.JobStateQueued,
			wantReason: seekv1alpha1.JobReasonWorkerNotFound,
		},
		{
			name:          "missing worker, the manager's default passed",
			sj:            waiting(job.Clone(), seekv1alpha1.JobReasonWorkerNotFound, "").Obj(),
			unknownWorker: time.Hour,
			now:           created.Add(time.Hour),
			wantState:     seekv1alpha1.JobStateFailed,
			wantReason:    seekv1alpha1.JobReasonQueueTimeout,
			wantMsg:       `The job did not start within its queue timeout of 1h0m0s (the manager's --default-queue-timeout for jobs of missing SeekWorkers): SeekWorker "echo" does not exist`,
		},
		{
			name:          "missing worker, the job's shorter queue timeout passed",
			sj:            job.Clone().QueueTimeout(5 * time.Second).Obj(),
			unknownWorker: time.Hour,
			now:           created.Add(6 * time.Second),
			wantState:     seekv1alpha1.JobStateFailed,
			wantReason:    seekv1alpha1.JobReasonQueueTimeout,
			wantMsg:       `The job did not start within its queue timeout of 5s (spec.queueTimeout): SeekWorker "echo" does not exist`,
		},
		{
			name:       "waiting for capacity: requeued for the worker's queue timeout",
			sj:         job.Obj(),
			objs:       []client.Object{capped.Obj()},
			now:        created.Add(59 * time.Minute),
			want:       ctrl.Result{RequeueAfter: time.Minute},
			wantState:  seekv1alpha1.JobStateQueued,
			wantReason: seekv1alpha1.JobReasonWaitingForCapacity,
		},
		{
			name:       "waiting for capacity past the worker's queue timeout",
			sj:         waiting(job.Clone(), seekv1alpha1.JobReasonWaitingForCapacity, "old message").Obj(),
			objs:       []client.Object{capped.Obj()},
			now:        created.Add(2 * time.Hour),
			wantState:  seekv1alpha1.JobStateFailed,
			wantReason: seekv1alpha1.JobReasonQueueTimeout,
			wantMsg:    `The job did not start within its queue timeout of 1h0m0s (timeouts.queueTimeout of SeekWorker "echo"): All 1 slots of SeekWorker "echo" are in use`,
		},
		{
			name:       "worker not ready past the worker's queue timeout",
			sj:         job.Obj(),
			objs:       []client.Object{worker.Clone().NotReady(seekv1alpha1.WorkerReasonInvalidInputSchema, "spec.inputSchema: broken").Obj()},
			now:        created.Add(time.Hour),
			wantState:  seekv1alpha1.JobStateFailed,
			wantReason: seekv1alpha1.JobReasonQueueTimeout,
			wantMsg:    `The job did not start within its queue timeout of 1h0m0s (timeouts.queueTimeout of SeekWorker "echo"): SeekWorker "echo" is not ready: spec.inputSchema: broken`,
		},
		{
			name:       "given a slot at the deadline: its Job is created",
			sj:         waiting(job.Clone(), seekv1alpha1.JobReasonWaitingForCapacity, "").Obj(),
			objs:       []client.Object{worker.Clone().MaxConcurrent(1).ActiveJobs(seekv1alpha1.JobReference{Namespace: "ns", Name: "a", UID: "u1"}).Obj()},
			now:        created.Add(2 * time.Hour),
			wantState:  seekv1alpha1.JobStateQueued, // its Job exists: Started stays False until the worker runs
			want:       ctrl.Result{RequeueAfter: seekv1alpha1.DefaultStartDeadline},
			wantReason: seekv1alpha1.JobReasonJobCreated,
		},
		{
			name:       "worker created at the deadline: its Job is created",
			sj:         waiting(job.Clone(), seekv1alpha1.JobReasonWorkerNotFound, "").Obj(),
			objs:       []client.Object{worker.Obj()},
			now:        created.Add(2 * time.Hour),
			wantState:  seekv1alpha1.JobStateQueued, // its Job exists: Started stays False until the worker runs
			want:       ctrl.Result{RequeueAfter: seekv1alpha1.DefaultStartDeadline},
			wantReason: seekv1alpha1.JobReasonJobCreated,
		},
		{
			name:               "a Job the cache does not show yet: not failed",
			sj:                 waiting(job.Clone(), seekv1alpha1.JobReasonWaitingForCapacity, "").Obj(),
			objs:               []client.Object{capped.Obj()},
			now:                created.Add(2 * time.Hour),
			jobHiddenFromCache: true,
			wantState:          seekv1alpha1.JobStateQueued,
			wantReason:         seekv1alpha1.JobReasonWaitingForCapacity,
		},
		{
			name:       "a lowered worker queue timeout applies at once",
			sj:         waiting(job.Clone(), seekv1alpha1.JobReasonWaitingForCapacity, "").Obj(),
			objs:       []client.Object{capped.Clone().QueueTimeout(time.Minute).Obj()},
			now:        created.Add(time.Minute),
			wantState:  seekv1alpha1.JobStateFailed,
			wantReason: seekv1alpha1.JobReasonQueueTimeout,
			wantMsg:    `The job did not start within its queue timeout of 1m0s (timeouts.queueTimeout of SeekWorker "echo"): All 1 slots of SeekWorker "echo" are in use`,
		},
		{
			name:       "running jobs have no queue timeout",
			sj:         job.Clone().State(seekv1alpha1.JobStateRunning).JobName("a").StartTime(created).Obj(),
			objs:       []client.Object{capped.Obj()},
			now:        created.Add(2 * time.Hour),
			wantState:  seekv1alpha1.JobStateFailed, // its Job is gone: JobLost, not QueueTimeout
			wantReason: seekv1alpha1.JobReasonJobLost,
			wantMsg:    "Job a was deleted before it finished",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scheme := newTestScheme(t)
			objs := append([]client.Object{tc.sj}, tc.objs...)
			if tc.jobHiddenFromCache {
				j := testutil.MakeJob("a", "ns").ForSeekJob(tc.sj).UID("j1").Obj()
				if err := controllerutil.SetControllerReference(tc.sj, j, scheme); err != nil {
					t.Fatal(err)
				}
				objs = append(objs, j)
			}
			apiserver := withCacheIndexes(fake.NewClientBuilder().WithScheme(scheme)).WithObjects(objs...).
				WithStatusSubresource(&seekv1alpha1.SeekJob{}, &seekv1alpha1.SeekWorker{}).Build()
			cache := interceptor.NewClient(apiserver, interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if _, ok := obj.(*batchv1.Job); ok && tc.jobHiddenFromCache {
						return apierrors.NewNotFound(batchv1.Resource("jobs"), key.Name)
					}
					return c.Get(ctx, key, obj, opts...)
				},
			})
			r := &SeekJobReconciler{Client: cache, APIReader: apiserver, Recorder: events.NewFakeRecorder(10),
				Clock: clocktesting.NewFakePassiveClock(tc.now), Metrics: NewMetrics(apiserver), DefaultQueueTimeout: tc.unknownWorker}

			got, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tc.sj)})
			if err != nil {
				t.Fatalf("Reconcile() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Reconcile() result (-want +got):\n%s", diff)
			}
			sj := &seekv1alpha1.SeekJob{}
			if err := apiserver.Get(context.Background(), client.ObjectKeyFromObject(tc.sj), sj); err != nil {
				t.Fatal(err)
			}
			if sj.Status.State != tc.wantState {
				t.Fatalf("state = %q, want %q (conditions %+v)", sj.Status.State, tc.wantState, sj.Status.Conditions)
			}
			condType := seekv1alpha1.JobStarted
			if sj.Status.State.IsTerminal() {
				condType = seekv1alpha1.JobFinished
			}
			c := meta.FindStatusCondition(sj.Status.Conditions, condType)
			if c == nil || c.Reason != tc.wantReason || (tc.wantMsg != "" && c.Message != tc.wantMsg) {
				t.Errorf("%s condition = %+v, want reason %q, message %q", condType, c, tc.wantReason, tc.wantMsg)
			}
			if tc.wantReason != seekv1alpha1.JobReasonQueueTimeout {
				return
			}
			want := &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonQueueTimeout, Message: tc.wantMsg}
			if diff := cmp.Diff(want, sj.Status.Error); diff != "" {
				t.Errorf("status.error (-want +got):\n%s", diff)
			}
			if started := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); started == nil || started.Reason != seekv1alpha1.JobReasonNeverStarted {
				t.Errorf("Started condition = %+v, want NeverStarted", started)
			}
			if sj.Status.CompletionTime == nil || !sj.Status.CompletionTime.Time.Equal(tc.now) || sj.Status.StartTime != nil || sj.Status.JobName != "" {
				t.Errorf("status = %+v, want completed at %v, never started", sj.Status, tc.now)
			}
			if err := apiserver.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "a"}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
				t.Errorf("get Job: %v, want none created", err)
			}
		})
	}
}

// TestAssignSlotsQueueTimeout: a job that ran out of queue time holds no slot, even one it was given.
func TestAssignSlotsQueueTimeout(t *testing.T) {
	job := func(name string, created time.Time) *testutil.SeekJobWrapper {
		return testutil.MakeSeekJob(name, "ns").Worker("echo").UID(name).Created(created).State(seekv1alpha1.JobStateQueued)
	}
	timedOut := job("timed-out", t0).Finished(seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonQueueTimeout, now).Obj()
	next := job("next", t0.Add(time.Second)).Obj()
	jobs := []seekv1alpha1.SeekJob{*timedOut, *next}

	got := assignSlots([]seekv1alpha1.JobReference{testutil.JobRef(timedOut)}, jobs, 1)
	if diff := cmp.Diff([]seekv1alpha1.JobReference{testutil.JobRef(next)}, got); diff != "" {
		t.Errorf("assignSlots() (-want +got):\n%s", diff)
	}
}
