package controllers

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestWaitingJobsOfWorker(t *testing.T) {
	waiting := func(name, reason string) *seekv1alpha1.SeekJob {
		return testutil.MakeSeekJob(name, "ns").Worker("w").UID(name).State(seekv1alpha1.JobStateQueued).
			Condition(metav1.Condition{Type: seekv1alpha1.JobStarted, Status: metav1.ConditionFalse, Reason: reason}).Obj()
	}
	jobs := []client.Object{
		testutil.MakeSeekJob("new", "ns").Worker("w").UID("new").Obj(),
		waiting("no-worker", seekv1alpha1.JobReasonWorkerNotFound),
		waiting("no-slot", seekv1alpha1.JobReasonWaitingForCapacity),
		waiting("slot-granted", seekv1alpha1.JobReasonWaitingForCapacity),
		testutil.MakeSeekJob("running", "ns").Worker("w").UID("running").State(seekv1alpha1.JobStateRunning).Obj(),
		testutil.MakeSeekJob("starting", "ns").Worker("w").UID("starting").State(seekv1alpha1.JobStateQueued).JobName("starting").
			Condition(metav1.Condition{Type: seekv1alpha1.JobStarted, Status: metav1.ConditionFalse, Reason: seekv1alpha1.JobReasonJobCreated}).Obj(),
		testutil.MakeSeekJob("done", "ns").Worker("w").UID("done").State(seekv1alpha1.JobStateCompleted).Obj(),
		waiting("other-worker", seekv1alpha1.JobReasonWorkerNotFound),
	}
	jobs[len(jobs)-1].(*seekv1alpha1.SeekJob).Spec.WorkerName = "other"
	c := withCacheIndexes(fake.NewClientBuilder().WithScheme(newTestScheme(t))).WithObjects(jobs...).Build()

	cases := []struct {
		name   string
		worker *seekv1alpha1.SeekWorker
		want   []string
	}{
		{
			name:   "no limit: every job waiting to get a Job",
			worker: testutil.MakeSeekWorker("w").Obj(),
			want:   []string{"new", "no-slot", "no-worker", "slot-granted"},
		},
		{
			name: "limit: capacity waiters only once they hold a slot",
			worker: testutil.MakeSeekWorker("w").MaxConcurrent(1).
				ActiveJobs(seekv1alpha1.JobReference{Namespace: "ns", Name: "slot-granted", UID: "slot-granted"}).Obj(),
			want: []string{"new", "no-worker", "slot-granted"},
		},
		{
			name: "limit, spec changed (a new queue timeout): every waiting job",
			worker: testutil.MakeSeekWorker("w").MaxConcurrent(1).Generation(2).
				ActiveJobs(seekv1alpha1.JobReference{Namespace: "ns", Name: "slot-granted", UID: "slot-granted"}).Obj(),
			want: []string{"new", "no-slot", "no-worker", "slot-granted"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, req := range waitingJobsOfWorker(c)(context.Background(), tc.worker) {
				got = append(got, req.Name)
			}
			sort.Strings(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("enqueued (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventToSeekJob(t *testing.T) {
	cases := []struct {
		name string
		ev   *corev1.Event
		want []reconcile.Request
	}{
		{
			name: "a Job's event wakes the SeekJob of the same name",
			ev:   &corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "Job", Namespace: "ns", Name: "a"}},
			want: []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}},
		},
		{name: "another kind", ev: &corev1.Event{InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "a"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, eventToSeekJob(context.Background(), tc.ev)); diff != "" {
				t.Errorf("eventToSeekJob() (-want +got):\n%s", diff)
			}
		})
	}
}

// withCacheIndexes registers the manager cache's indexes (cacheIndexes) on a fake client, whose
// lists then take the same field selectors as the cache.
func withCacheIndexes(b *fake.ClientBuilder) *fake.ClientBuilder {
	for _, ix := range cacheIndexes() {
		b = b.WithIndex(ix.obj, ix.field, ix.value)
	}
	return b
}
