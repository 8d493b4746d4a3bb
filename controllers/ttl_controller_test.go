package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// newTestScheme is internal/manager.NewScheme, which this package cannot import: the manager package
// imports controllers.
func newTestScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := seekv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSeekJobTTLReconcile(t *testing.T) {
	job := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Created(t0)
	// finishedAgo is a job that finished d before now.
	finishedAgo := func(d time.Duration) *testutil.SeekJobWrapper {
		return job.Clone().StartTime(t0).Finished(seekv1alpha1.JobStateCompleted, "Succeeded", now.Add(-d))
	}
	worker := testutil.MakeSeekWorker("echo")
	errBoom := errors.New("boom")
	const url = "https://app.example/hook"
	started := metav1.Condition{Type: seekv1alpha1.JobStarted, Status: metav1.ConditionTrue, Reason: seekv1alpha1.JobReasonJobCreated}
	neverStarted := metav1.Condition{Type: seekv1alpha1.JobStarted, Status: metav1.ConditionFalse, Reason: seekv1alpha1.JobReasonNeverStarted}
	// delivery is a ledger entry for ev in the given state.
	delivery := func(ev seekv1alpha1.CallbackEvent, state seekv1alpha1.CallbackState) seekv1alpha1.CallbackDelivery {
		return seekv1alpha1.CallbackDelivery{Event: ev, ID: "msg_u1_" + strings.ToLower(string(ev)), Type: "job.x", State: state}
	}
	// queuedThenFailed is a job that failed 25h ago without ever starting (a queue timeout).
	queuedThenFailed := job.Clone().Condition(neverStarted).Finished(seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonQueueTimeout, now.Add(-25*time.Hour))

	cases := []struct {
		name        string
		objs        []client.Object
		interceptor *interceptor.Funcs
		want        ctrl.Result
		wantErr     error
		wantDeleted bool
	}{
		{
			name: "SeekJob gone",
			objs: []client.Object{worker.Obj()},
		},
		{
			name: "queued",
			objs: []client.Object{job.Clone().State(seekv1alpha1.JobStateQueued).Obj(), worker.Obj()},
		},
		{
			name: "running",
			objs: []client.Object{job.Clone().State(seekv1alpha1.JobStateRunning).StartTime(t0).Obj(), worker.Obj()},
		},
		{
			name: "terminal state without completion time",
			objs: []client.Object{job.Clone().State(seekv1alpha1.JobStateFailed).Obj(), worker.Obj()},
		},
		{
			name: "expired but already being deleted",
			objs: []client.Object{finishedAgo(48 * time.Hour).Finalizers("example.com/hold").Deleting(now).Obj(), worker.Obj()},
		},
		{
			name: "finished, not expired: requeued for the remaining time",
			objs: []client.Object{finishedAgo(time.Hour).Obj(), worker.Obj()},
			want: ctrl.Result{RequeueAfter: 23 * time.Hour},
		},
		{
			name: "finished just now",
			objs: []client.Object{finishedAgo(0).Obj(), worker.Obj()},
			want: ctrl.Result{RequeueAfter: 24 * time.Hour},
		},
		{
			name:        "expired: deleted",
			objs:        []client.Object{finishedAgo(25 * time.Hour).Obj(), worker.Obj()},
			wantDeleted: true,
		},
		{
			name:        "expiring now: deleted",
			objs:        []client.Object{finishedAgo(24 * time.Hour).Obj(), worker.Obj()},
			wantDeleted: true,
		},
		{
			name:        "failed jobs expire too",
			objs:        []client.Object{job.Clone().Finished(seekv1alpha1.JobStateFailed, "InvalidInput", now.Add(-25*time.Hour)).Obj(), worker.Obj()},
			wantDeleted: true,
		},
		{
			name: "expired, callback still being delivered: kept",
			objs: []client.Object{finishedAgo(25*time.Hour).Callback(url).
				CallbackLedger(seekv1alpha1.CallbackPending, delivery(seekv1alpha1.CallbackEventFinished, seekv1alpha1.CallbackPending)).Obj(), worker.Obj()},
		},
		{
			name: "expired, callback not planned yet: kept",
			objs: []client.Object{finishedAgo(25 * time.Hour).Callback(url).Obj(), worker.Obj()},
		},
		{
			name: "expired, callback delivered: deleted",
			objs: []client.Object{finishedAgo(25*time.Hour).Callback(url).
				CallbackLedger(seekv1alpha1.CallbackDelivered, delivery(seekv1alpha1.CallbackEventFinished, seekv1alpha1.CallbackDelivered)).Obj(), worker.Obj()},
			wantDeleted: true,
		},
		{
			name: "expired, callback given up: deleted",
			objs: []client.Object{finishedAgo(25*time.Hour).Callback(url).
				CallbackLedger(seekv1alpha1.CallbackFailed, delivery(seekv1alpha1.CallbackEventFinished, seekv1alpha1.CallbackFailed)).Obj(), worker.Obj()},
			wantDeleted: true,
		},
		{
			// The bug: Started never happens, so no ledger is ever written, and the job was kept forever.
			name:        "expired, only Started asked for, finished without starting: deleted",
			objs:        []client.Object{queuedThenFailed.Clone().Callback(url, seekv1alpha1.CallbackEventStarted).Obj(), worker.Obj()},
			wantDeleted: true,
		},
		{
			name:        "expired, only Started asked for, canceled while queued, worker gone: deleted",
			objs:        []client.Object{job.Clone().Condition(neverStarted).Finished(seekv1alpha1.JobStateCanceled, seekv1alpha1.JobReasonCanceled, now.Add(-25*time.Hour)).Callback(url, seekv1alpha1.CallbackEventStarted).Obj()},
			wantDeleted: true,
		},
		{
			name: "not expired, only Started asked for, never started: requeued for the remaining time",
			objs: []client.Object{job.Clone().Condition(neverStarted).Finished(seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonQueueTimeout, now.Add(-time.Hour)).
				Callback(url, seekv1alpha1.CallbackEventStarted).Obj(), worker.Obj()},
			want: ctrl.Result{RequeueAfter: 23 * time.Hour},
		},
		{
			name:        "expired, Started and Finished asked for, never started, Finished delivered: deleted",
			objs:        []client.Object{queuedThenFailed.Clone().Callback(url, seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackEventFinished).CallbackLedger(seekv1alpha1.CallbackDelivered, delivery(seekv1alpha1.CallbackEventFinished, seekv1alpha1.CallbackDelivered)).Obj(), worker.Obj()},
			wantDeleted: true,
		},
		{
			name: "expired, only Started asked for, started, Started delivered: deleted",
			objs: []client.Object{finishedAgo(25*time.Hour).Condition(started).Callback(url, seekv1alpha1.CallbackEventStarted).
				CallbackLedger(seekv1alpha1.CallbackDelivered, delivery(seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackDelivered)).Obj(), worker.Obj()},
			wantDeleted: true,
		},
		{
			name: "expired, only Started asked for, started, Started not planned yet: kept",
			objs: []client.Object{finishedAgo(25*time.Hour).Condition(started).Callback(url, seekv1alpha1.CallbackEventStarted).Obj(), worker.Obj()},
		},
		{
			// The ledger's summary says Delivered, but Finished has not been planned yet.
			name: "expired, Started delivered, Finished not planned yet: kept",
			objs: []client.Object{finishedAgo(25*time.Hour).Condition(started).Callback(url, seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackEventFinished).
				CallbackLedger(seekv1alpha1.CallbackDelivered, delivery(seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackDelivered)).Obj(), worker.Obj()},
		},
		{
			// The ledger's summary says Failed, but Finished is still being delivered.
			name: "expired, Started given up, Finished pending: kept",
			objs: []client.Object{finishedAgo(25*time.Hour).Condition(started).Callback(url, seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackEventFinished).
				CallbackLedger(seekv1alpha1.CallbackFailed, delivery(seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackFailed),
					delivery(seekv1alpha1.CallbackEventFinished, seekv1alpha1.CallbackPending)).Obj(), worker.Obj()},
		},
		{
			name: "expired, redelivery asked for and not acted on yet: kept",
			objs: []client.Object{finishedAgo(25*time.Hour).Callback(url).Annotation(seekv1alpha1.AnnotationRedeliver, "1").
				CallbackLedger(seekv1alpha1.CallbackDelivered, delivery(seekv1alpha1.CallbackEventFinished, seekv1alpha1.CallbackDelivered)).Obj(), worker.Obj()},
		},
		{
			name: "worker TTL",
			objs: []client.Object{finishedAgo(30 * time.Minute).Obj(), worker.Clone().TTL(2 * time.Hour).Obj()},
			want: ctrl.Result{RequeueAfter: 90 * time.Minute},
		},
		{
			name:        "worker TTL expired",
			objs:        []client.Object{finishedAgo(3 * time.Hour).Obj(), worker.Clone().TTL(2 * time.Hour).Obj()},
			wantDeleted: true,
		},
		{
			name: "job TTL overrides a shorter worker TTL",
			objs: []client.Object{finishedAgo(3 * time.Hour).TTL(48 * time.Hour).Obj(), worker.Clone().TTL(2 * time.Hour).Obj()},
			want: ctrl.Result{RequeueAfter: 45 * time.Hour},
		},
		{
			name:        "job TTL overrides a longer worker TTL",
			objs:        []client.Object{finishedAgo(30 * time.Minute).TTL(10 * time.Minute).Obj(), worker.Clone().TTL(2 * time.Hour).Obj()},
			wantDeleted: true,
		},
		{
			name: "worker missing: default of 24h",
			objs: []client.Object{finishedAgo(time.Hour).Obj()},
			want: ctrl.Result{RequeueAfter: 23 * time.Hour},
		},
		{
			name:        "worker missing, expired",
			objs:        []client.Object{finishedAgo(25 * time.Hour).Obj()},
			wantDeleted: true,
		},
		{
			name: "worker missing, job TTL",
			objs: []client.Object{finishedAgo(time.Hour).TTL(90 * time.Minute).Obj()},
			want: ctrl.Result{RequeueAfter: 30 * time.Minute},
		},
		{
			name: "reading the worker fails",
			objs: []client.Object{finishedAgo(25 * time.Hour).Obj(), worker.Obj()},
			interceptor: &interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if _, ok := obj.(*seekv1alpha1.SeekWorker); ok {
					return errBoom
				}
				return c.Get(ctx, key, obj, opts...)
			}},
			wantErr: errBoom,
		},
		{
			name: "deleting fails",
			objs: []client.Object{finishedAgo(25 * time.Hour).Obj(), worker.Obj()},
			interceptor: &interceptor.Funcs{Delete: func(context.Context, client.WithWatch, client.Object, ...client.DeleteOption) error {
				return errBoom
			}},
			wantErr: errBoom,
		},
		{
			name: "deleted meanwhile",
			objs: []client.Object{finishedAgo(25 * time.Hour).Obj(), worker.Obj()},
			interceptor: &interceptor.Funcs{Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
				if err := c.Delete(ctx, obj, opts...); err != nil {
					return err
				}
				return c.Delete(ctx, obj, opts...) // NotFound: someone else deleted it first
			}},
			wantDeleted: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			builder := withCacheIndexes(fake.NewClientBuilder().WithScheme(newTestScheme(t))).
				WithStatusSubresource(&seekv1alpha1.SeekJob{}, &seekv1alpha1.SeekWorker{}).
				WithObjects(tc.objs...)
			if tc.interceptor != nil {
				builder = builder.WithInterceptorFuncs(*tc.interceptor)
			}
			c := builder.Build()
			r := &SeekJobTTLReconciler{Client: c, Clock: clocktesting.NewFakePassiveClock(now)}
			key := types.NamespacedName{Namespace: "ns", Name: "a"}

			got, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key})

			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Reconcile() error = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("Reconcile() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Reconcile() result mismatch (-want +got):\n%s", diff)
			}
			existed := false
			for _, o := range tc.objs {
				if _, ok := o.(*seekv1alpha1.SeekJob); ok {
					existed = true
				}
			}
			err = c.Get(context.Background(), key, &seekv1alpha1.SeekJob{})
			switch {
			case tc.wantDeleted && !apierrors.IsNotFound(err):
				t.Errorf("SeekJob still exists (get error %v), want it deleted", err)
			case !tc.wantDeleted && existed && err != nil:
				t.Errorf("get SeekJob: %v, want it kept", err)
			}
		})
	}
}
