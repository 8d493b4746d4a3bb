package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

func TestValidateAgainstWorker(t *testing.T) {
	const emailSchema = `{
		"type": "object",
		"required": ["email"],
		"properties": {
			"email": {"type": "string"},
			"address": {"type": "object", "properties": {"zip": {"type": "string"}}}
		}
	}`
	job := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1")
	worker := testutil.MakeSeekWorker("echo")
	// A JSON string of exactly n bytes, quotes included.
	jsonString := func(n int) string { return `"` + strings.Repeat("a", n-2) + `"` }

	cases := []struct {
		name       string
		sj         *seekv1alpha1.SeekJob
		worker     *seekv1alpha1.SeekWorker
		wantReason string
		wantMsg    string
		// wantPrefix compares only the start of the message.
		wantPrefix bool
	}{
		{
			name:   "no input, no constraints",
			sj:     job.Obj(),
			worker: worker.Obj(),
		},
		{
			name:   "valid input",
			sj:     job.Clone().Input(`{"email":"ada@example.com"}`).Timeout(time.Minute).Obj(),
			worker: worker.Clone().InputSchema(emailSchema).Timeouts(time.Minute, time.Hour).MaxInputBytes(1024).Obj(),
		},
		{
			name:   "input at the default limit",
			sj:     job.Clone().Input(jsonString(seekv1alpha1.DefaultMaxInputBytes)).Obj(),
			worker: worker.Obj(),
		},
		{
			name:       "input above the default limit",
			sj:         job.Clone().Input(jsonString(seekv1alpha1.DefaultMaxInputBytes + 1)).Obj(),
			worker:     worker.Obj(),
			wantReason: "InputTooLarge",
			wantMsg:    `spec.input is 65537 bytes; SeekWorker "echo" accepts at most 65536`,
		},
		{
			name:   "input at a custom limit",
			sj:     job.Clone().Input(`{"x":"0123456789"}`).Obj(),
			worker: worker.Clone().MaxInputBytes(18).Obj(),
		},
		{
			name:       "input above a custom limit",
			sj:         job.Clone().Input(`{"x":"0123456789"}`).Obj(),
			worker:     worker.Clone().MaxInputBytes(16).Obj(),
			wantReason: "InputTooLarge",
			wantMsg:    `spec.input is 18 bytes; SeekWorker "echo" accepts at most 16`,
		},
		{
			name:   "custom limit above the default",
			sj:     job.Clone().Input(jsonString(100 * 1024)).Obj(),
			worker: worker.Clone().MaxInputBytes(seekv1alpha1.MaxInputBytesLimit).Obj(),
		},
		{
			name:   "input at the largest limit",
			sj:     job.Clone().Input(jsonString(seekv1alpha1.MaxInputBytesLimit)).Obj(),
			worker: worker.Clone().MaxInputBytes(seekv1alpha1.MaxInputBytesLimit).Obj(),
		},
		{
			name:       "absent input counts as null",
			sj:         job.Obj(),
			worker:     worker.Clone().MaxInputBytes(3).Obj(),
			wantReason: "InputTooLarge",
			wantMsg:    `spec.input is 4 bytes; SeekWorker "echo" accepts at most 3`,
		},
		{
			name:       "size is checked before the schema",
			sj:         job.Clone().Input(`{"email":12345678901234567890}`).Obj(),
			worker:     worker.Clone().InputSchema(emailSchema).MaxInputBytes(16).Obj(),
			wantReason: "InputTooLarge",
			wantMsg:    `spec.input is 30 bytes; SeekWorker "echo" accepts at most 16`,
		},
		{
			name:   "timeout at the maximum",
			sj:     job.Clone().Timeout(time.Hour).Obj(),
			worker: worker.Clone().Timeouts(10*time.Minute, time.Hour).Obj(),
		},
		{
			name:       "timeout above the maximum",
			sj:         job.Clone().Timeout(90 * time.Minute).Obj(),
			worker:     worker.Clone().Timeouts(10*time.Minute, time.Hour).Obj(),
			wantReason: "InvalidTimeout",
			wantMsg:    `spec.timeout 1h30m0s exceeds the maximum 1h0m0s of SeekWorker "echo"`,
		},
		{
			name:   "no timeout: the worker default applies",
			sj:     job.Obj(),
			worker: worker.Clone().Timeouts(10*time.Minute, time.Hour).Obj(),
		},
		{
			name:       "schema mismatch names the field",
			sj:         job.Clone().Input(`{"email":5}`).Obj(),
			worker:     worker.Clone().InputSchema(emailSchema).Obj(),
			wantReason: "InvalidInput",
			wantMsg:    "spec.input/email: got number, want string",
		},
		{
			name:       "missing required field",
			sj:         job.Clone().Input(`{}`).Obj(),
			worker:     worker.Clone().InputSchema(emailSchema).Obj(),
			wantReason: "InvalidInput",
			wantMsg:    "spec.input/email: is required",
		},
		{
			name:       "nested field",
			sj:         job.Clone().Input(`{"email":"ada@example.com","address":{"zip":12345}}`).Obj(),
			worker:     worker.Clone().InputSchema(emailSchema).Obj(),
			wantReason: "InvalidInput",
			wantMsg:    "spec.input/address/zip: got number, want string",
		},
		{
			name:       "absent input checked as null",
			sj:         job.Obj(),
			worker:     worker.Clone().InputSchema(emailSchema).Obj(),
			wantReason: "InvalidInput",
			wantMsg:    "spec.input: got null, want object",
		},
		{
			name:       "invalid worker schema",
			sj:         job.Clone().Input(`{}`).Obj(),
			worker:     worker.Clone().InputSchema(`{"type":5}`).Obj(),
			wantReason: "InvalidInput",
			wantMsg:    `SeekWorker "echo" has an invalid input schema: input schema does not compile: `,
			wantPrefix: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg := validateAgainstWorker(tc.sj, tc.worker)
			if reason != tc.wantReason {
				t.Errorf("reason = %q, want %q (message %q)", reason, tc.wantReason, msg)
			}
			if tc.wantPrefix {
				if !strings.HasPrefix(msg, tc.wantMsg) {
					t.Errorf("message = %q, want it to start with %q", msg, tc.wantMsg)
				}
			} else if msg != tc.wantMsg {
				t.Errorf("message = %q, want %q", msg, tc.wantMsg)
			}
		})
	}
}

func TestAdmitted(t *testing.T) {
	sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Obj()
	cases := []struct {
		name   string
		worker *seekv1alpha1.SeekWorker
		want   bool
	}{
		{
			name:   "no concurrency limit",
			worker: testutil.MakeSeekWorker("echo").Obj(),
			want:   true,
		},
		{
			name:   "no concurrency limit ignores the slot list",
			worker: testutil.MakeSeekWorker("echo").ActiveJobs(seekv1alpha1.JobReference{Namespace: "ns", Name: "b", UID: "u2"}).Obj(),
			want:   true,
		},
		{
			name:   "limit, no slots given",
			worker: testutil.MakeSeekWorker("echo").MaxConcurrent(1).Obj(),
			want:   false,
		},
		{
			name:   "limit, slot held",
			worker: testutil.MakeSeekWorker("echo").MaxConcurrent(2).ActiveJobs(seekv1alpha1.JobReference{Namespace: "ns", Name: "b", UID: "u2"}, testutil.JobRef(sj)).Obj(),
			want:   true,
		},
		{
			name:   "limit, slot held by others",
			worker: testutil.MakeSeekWorker("echo").MaxConcurrent(1).ActiveJobs(seekv1alpha1.JobReference{Namespace: "ns", Name: "b", UID: "u2"}).Obj(),
			want:   false,
		},
		{
			name:   "limit, slot held by an earlier job of the same name",
			worker: testutil.MakeSeekWorker("echo").MaxConcurrent(1).ActiveJobs(seekv1alpha1.JobReference{Namespace: "ns", Name: "a", UID: "u0"}).Obj(),
			want:   false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := admitted(sj, tc.worker); got != tc.want {
				t.Errorf("admitted() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOwnership(t *testing.T) {
	sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("new").Obj()
	predecessor := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("old").Obj()
	other := testutil.MakeSeekJob("b", "ns").Worker("echo").UID("other").Obj()
	controlledBy := func(owner *seekv1alpha1.SeekJob) *batchv1.Job {
		job := testutil.MakeJob("a", "ns").Obj()
		if owner != nil {
			if err := controllerutil.SetControllerReference(owner, job, newTestScheme(t)); err != nil {
				t.Fatal(err)
			}
		}
		return job
	}
	cases := []struct {
		name string
		job  *batchv1.Job
		want error
	}{
		{"ours", controlledBy(sj), nil},
		{"a deleted SeekJob of the same name", controlledBy(predecessor), errPreviousJob},
		{"another SeekJob", controlledBy(other), errJobNotOwned},
		{"no owner", controlledBy(nil), errJobNotOwned},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ownership(tc.job, sj); got != tc.want { //nolint:errorlint // the sentinels themselves
				t.Errorf("ownership() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestReconcileCancel drives Reconcile with a cache that does not show the Job yet (the apiserver has
// it): a cancel must still stop a running Job, and must not overwrite the outcome of a finished one.
func TestReconcileCancel(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		jobDone   bool
		wantState seekv1alpha1.JobState
		wantJob   bool
	}{
		{name: "running Job is deleted", wantState: seekv1alpha1.JobStateCanceled, wantJob: false},
		{name: "finished Job keeps its outcome", jobDone: true, wantState: seekv1alpha1.JobStateCompleted, wantJob: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scheme := newTestScheme(t)
			sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Cancel("stop").Obj()
			job := testutil.MakeJob("a", "ns").ForSeekJob(sj).UID("j1").Obj()
			if err := controllerutil.SetControllerReference(sj, job, scheme); err != nil {
				t.Fatal(err)
			}
			objs := []client.Object{sj, job}
			if tc.jobDone {
				job.Status = *testutil.MakeJob("a", "ns").SucceededCount(1).Complete(now).Obj().Status.DeepCopy()
				objs = append(objs, testutil.MakePod("a-1", "ns").ForSeekJob(sj).Succeeded(`"ok"`, now).Obj())
			}
			apiserver := withCacheIndexes(fake.NewClientBuilder().WithScheme(scheme)).WithObjects(objs...).WithStatusSubresource(sj).Build()
			staleCache := interceptor.NewClient(apiserver, interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if _, ok := obj.(*batchv1.Job); ok {
						return apierrors.NewNotFound(batchv1.Resource("jobs"), key.Name)
					}
					return c.Get(ctx, key, obj, opts...)
				},
			})
			r := &SeekJobReconciler{Client: staleCache, APIReader: apiserver, Recorder: events.NewFakeRecorder(10),
				Clock: clocktesting.NewFakePassiveClock(now), Metrics: NewMetrics(apiserver)}
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(sj)}); err != nil {
				t.Fatal(err)
			}
			got := &seekv1alpha1.SeekJob{}
			if err := apiserver.Get(context.Background(), client.ObjectKeyFromObject(sj), got); err != nil {
				t.Fatal(err)
			}
			if got.Status.State != tc.wantState {
				t.Errorf("state = %q, want %q (error %+v)", got.Status.State, tc.wantState, got.Status.Error)
			}
			err := apiserver.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{})
			if exists := err == nil; exists != tc.wantJob {
				t.Errorf("Job exists = %v, want %v (%v)", exists, tc.wantJob, err)
			}
		})
	}
}

// TestReconcileRemovesFinishedJob: once a Job mode job has finished (its outcome in status), its Job is
// deleted, unless the worker retains finished Jobs; a Job that is not the job's is never touched.
func TestReconcileRemovesFinishedJob(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		policy  seekv1alpha1.FinishedJobPolicy
		state   seekv1alpha1.JobState
		foreign bool
		wantJob bool
	}{
		{name: "finished: deleted", state: seekv1alpha1.JobStateCompleted},
		{name: "the default policy (unset): deleted", policy: "", state: seekv1alpha1.JobStateFailed},
		{name: "Retain keeps it", policy: seekv1alpha1.FinishedJobsRetain, state: seekv1alpha1.JobStateCompleted, wantJob: true},
		{name: "a Job of someone else's is not touched", state: seekv1alpha1.JobStateFailed, foreign: true, wantJob: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scheme := newTestScheme(t)
			w := testutil.MakeSeekWorker("echo").FinishedJobs(tc.policy).Obj()
			sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").JobName("a").State(tc.state).Obj()
			job := testutil.MakeJob("a", "ns").ForSeekJob(sj).UID("j1").Obj()
			if !tc.foreign {
				if err := controllerutil.SetControllerReference(sj, job, scheme); err != nil {
					t.Fatal(err)
				}
			}
			c := withCacheIndexes(fake.NewClientBuilder().WithScheme(scheme)).WithObjects(w, sj, job).WithStatusSubresource(sj).Build()
			r := &SeekJobReconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10),
				Clock: clocktesting.NewFakePassiveClock(now), Metrics: NewMetrics(c)}
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(sj)}); err != nil {
				t.Fatal(err)
			}
			err := c.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{})
			if exists := err == nil; exists != tc.wantJob {
				t.Errorf("Job exists = %v, want %v (%v)", exists, tc.wantJob, err)
			}
		})
	}
}

// TestReconcileStart drives Reconcile through the start path: the apiserver refusing the Job, the
// Job controller failing to create the pod, and the start deadline passing.
func TestReconcileStart(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	worker := testutil.MakeSeekWorker("echo").StartDeadline(30 * time.Second).Ready().Obj()
	newSJ := func() *seekv1alpha1.SeekJob {
		return testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Generation(1).Created(now.Add(-time.Minute)).Obj()
	}
	jobs := schema.GroupResource{Group: "batch", Resource: "jobs"}
	cases := []struct {
		name string
		// createErr is what the apiserver answers the Job's creation.
		createErr error
		// jobAge, when set, makes a Job of that age exist already.
		jobAge time.Duration
		// failedCreate is a FailedCreate event of the Job controller about that Job.
		failedCreate string
		wantState    seekv1alpha1.JobState
		wantReason   string // Started reason while Queued, Finished reason once final
		wantRequeue  time.Duration
		wantJob      bool
	}{
		{
			name:      "Job created: queued until its container starts, due at the start deadline",
			wantState: seekv1alpha1.JobStateQueued, wantReason: seekv1alpha1.JobReasonJobCreated,
			wantRequeue: 30 * time.Second, wantJob: true,
		},
		{
			name:      "quota exceeded: queued, retried later",
			createErr: apierrors.NewForbidden(jobs, "a", errors.New("exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=1, limited: count/jobs.batch=1")),
			wantState: seekv1alpha1.JobStateQueued, wantReason: seekv1alpha1.JobReasonQuotaExceeded, wantRequeue: time.Second,
		},
		{
			name:      "forbidden by an admission policy: failed",
			createErr: apierrors.NewForbidden(jobs, "a", errors.New("admission webhook denied the request")),
			wantState: seekv1alpha1.JobStateFailed, wantReason: seekv1alpha1.JobReasonJobRejected,
		},
		{
			name:         "pod cannot be created: queued with the cause",
			jobAge:       10 * time.Second,
			failedCreate: `Error creating: pods "a-x7k2p" is forbidden: pod rejected: RuntimeClass "gvisor" not found`,
			wantState:    seekv1alpha1.JobStateQueued, wantReason: seekv1alpha1.JobReasonRuntimeClassNotFound,
			wantRequeue: 20 * time.Second, wantJob: true,
		},
		{
			name:         "start deadline passed: failed with the cause, Job deleted",
			jobAge:       31 * time.Second,
			failedCreate: `Error creating: pods "a-x7k2p" is forbidden: pod rejected: RuntimeClass "gvisor" not found`,
			wantState:    seekv1alpha1.JobStateFailed, wantReason: seekv1alpha1.JobReasonRuntimeClassNotFound,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scheme := newTestScheme(t)
			sj := newSJ()
			objs := []client.Object{sj, worker}
			if tc.jobAge > 0 {
				job := buildJob(sj, worker)
				job.UID, job.CreationTimestamp = "j1", metav1.NewTime(now.Add(-tc.jobAge))
				if err := controllerutil.SetControllerReference(sj, job, scheme); err != nil {
					t.Fatal(err)
				}
				objs = append(objs, job, &corev1.Event{
					ObjectMeta:     metav1.ObjectMeta{Name: "a.1", Namespace: "ns"},
					InvolvedObject: corev1.ObjectReference{Kind: "Job", Namespace: "ns", Name: "a", UID: "j1"},
					Reason:         "FailedCreate", Message: tc.failedCreate, LastTimestamp: metav1.NewTime(now),
				})
			}
			c := withCacheIndexes(fake.NewClientBuilder().WithScheme(scheme)).WithObjects(objs...).WithStatusSubresource(sj).
				WithInterceptorFuncs(interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					if _, ok := obj.(*batchv1.Job); ok && tc.createErr != nil {
						return tc.createErr
					}
					return c.Create(ctx, obj, opts...)
				}}).Build()
			r := &SeekJobReconciler{Client: c, APIReader: c, Recorder: events.NewFakeRecorder(10),
				Clock: clocktesting.NewFakePassiveClock(now), Metrics: NewMetrics(c)}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(sj)})
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter != tc.wantRequeue {
				t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, tc.wantRequeue)
			}
			got := &seekv1alpha1.SeekJob{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(sj), got); err != nil {
				t.Fatal(err)
			}
			condType := seekv1alpha1.JobStarted
			if got.Status.State.IsTerminal() {
				condType = seekv1alpha1.JobFinished
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, condType)
			if got.Status.State != tc.wantState || cond == nil || cond.Reason != tc.wantReason {
				t.Errorf("state %s, %s condition %+v; want %s, reason %s", got.Status.State, condType, cond, tc.wantState, tc.wantReason)
			}
			err = c.Get(context.Background(), client.ObjectKeyFromObject(sj), &batchv1.Job{})
			if exists := err == nil; exists != tc.wantJob {
				t.Errorf("Job exists = %v, want %v (%v)", exists, tc.wantJob, err)
			}
		})
	}
}
