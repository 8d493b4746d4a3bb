package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/tenants"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestTenantQuotaReconcile(t *testing.T) {
	quota := func(ns, limit, hard string) *corev1.ResourceQuota {
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: tenants.QuotaName, Namespace: ns,
			Labels: map[string]string{tenants.Label: "true"}}}
		if limit != "" {
			q.Annotations = map[string]string{tenants.AnnotationMaxActiveJobs: limit}
		}
		if hard != "" {
			q.Spec.Hard = corev1.ResourceList{tenants.QuotaResource: resource.MustParse(hard), corev1.ResourcePods: resource.MustParse("7")}
		}
		return q
	}
	jobs := []client.Object{
		testutil.MakeSeekJob("queued", "team-a").Worker("w").Obj(),
		testutil.MakeSeekJob("running", "team-a").Worker("w").State(seekv1alpha1.JobStateRunning).Obj(),
		testutil.MakeSeekJob("done", "team-a").Worker("w").State(seekv1alpha1.JobStateCompleted).Obj(),
		testutil.MakeSeekJob("failed", "team-a").Worker("w").State(seekv1alpha1.JobStateFailed).Obj(),
		testutil.MakeSeekJob("canceled", "team-a").Worker("w").State(seekv1alpha1.JobStateCanceled).Obj(),
		testutil.MakeSeekJob("elsewhere", "team-b").Worker("w").State(seekv1alpha1.JobStateCompleted).Obj(),
	}
	cases := []struct {
		name  string
		quota *corev1.ResourceQuota
		want  corev1.ResourceList
	}{
		{
			name:  "cap plus the finished jobs of the namespace; other resources kept",
			quota: quota("team-a", "2", "2"),
			want:  corev1.ResourceList{tenants.QuotaResource: resource.MustParse("5"), corev1.ResourcePods: resource.MustParse("7")},
		},
		{
			name:  "finished jobs deleted: lowered",
			quota: quota("team-a", "2", "9"),
			want:  corev1.ResourceList{tenants.QuotaResource: resource.MustParse("5"), corev1.ResourcePods: resource.MustParse("7")},
		},
		{
			name:  "no hard count yet",
			quota: quota("team-a", "10", ""),
			want:  corev1.ResourceList{tenants.QuotaResource: resource.MustParse("13")},
		},
		{
			name:  "no cap annotation: left alone",
			quota: quota("team-a", "", "4"),
			want:  corev1.ResourceList{tenants.QuotaResource: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("7")},
		},
		{
			name:  "a namespace with no finished job",
			quota: quota("team-c", "3", "1"),
			want:  corev1.ResourceList{tenants.QuotaResource: resource.MustParse("3"), corev1.ResourcePods: resource.MustParse("7")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := withCacheIndexes(fake.NewClientBuilder().WithScheme(newTestScheme(t))).WithObjects(append(jobs, tc.quota)...).Build()
			r := &TenantQuotaReconciler{Client: c}
			key := client.ObjectKeyFromObject(tc.quota)
			if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
			got := &corev1.ResourceQuota{}
			if err := c.Get(context.Background(), key, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Spec.Hard); diff != "" {
				t.Errorf("hard (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("no quota", func(t *testing.T) {
		c := withCacheIndexes(fake.NewClientBuilder().WithScheme(newTestScheme(t))).Build()
		req := ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: tenants.QuotaName}}
		if _, err := (&TenantQuotaReconciler{Client: c}).Reconcile(context.Background(), req); err != nil {
			t.Errorf("Reconcile = %v, want nothing to do", err)
		}
	})
}

func TestFinishedChanged(t *testing.T) {
	queued := testutil.MakeSeekJob("a", "ns").Obj()
	running := testutil.MakeSeekJob("a", "ns").State(seekv1alpha1.JobStateRunning).Obj()
	done := testutil.MakeSeekJob("a", "ns").State(seekv1alpha1.JobStateCompleted).Obj()
	cases := []struct {
		name string
		got  bool
		want bool
	}{
		{"create unfinished", finishedChanged.Create(event.CreateEvent{Object: queued}), false},
		{"create finished (cache start)", finishedChanged.Create(event.CreateEvent{Object: done}), true},
		{"queued to running", finishedChanged.Update(event.UpdateEvent{ObjectOld: queued, ObjectNew: running}), false},
		{"running to completed", finishedChanged.Update(event.UpdateEvent{ObjectOld: running, ObjectNew: done}), true},
		{"finished job updated", finishedChanged.Update(event.UpdateEvent{ObjectOld: done, ObjectNew: done}), false},
		{"delete unfinished", finishedChanged.Delete(event.DeleteEvent{Object: running}), false},
		{"delete finished", finishedChanged.Delete(event.DeleteEvent{Object: done}), true},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestEnqueueQuotaLater checks that the finishes of a burst in one namespace share one reconcile of
// its quota, due quotaBatchDelay after the first.
func TestEnqueueQuotaLater(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request](),
		workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Clock: clk})
	defer q.ShutDown()
	h := enqueueQuotaLater{}
	for _, ns := range []string{"team-a", "team-a", "team-b", "team-a"} {
		sj := testutil.MakeSeekJob("j", ns).Obj()
		h.Update(context.Background(), event.TypedUpdateEvent[client.Object]{ObjectOld: sj, ObjectNew: sj}, q)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("queued %d requests before the batch delay, want 0", n)
	}
	clk.Step(quotaBatchDelay)
	want := map[reconcile.Request]bool{
		{NamespacedName: types.NamespacedName{Namespace: "team-a", Name: tenants.QuotaName}}: true,
		{NamespacedName: types.NamespacedName{Namespace: "team-b", Name: tenants.QuotaName}}: true,
	}
	got := map[reconcile.Request]bool{}
	for len(got) < len(want) {
		item, _ := q.Get()
		got[item] = true
		q.Done(item)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reconciled quotas (-want +got):\n%s", diff)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d more requests queued, want one per namespace", n)
	}
}

func TestQuotaSpecChanged(t *testing.T) {
	quota := func(limit, hard, used string) *corev1.ResourceQuota {
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: tenants.QuotaName, Namespace: "ns",
			Annotations: map[string]string{tenants.AnnotationMaxActiveJobs: limit}}}
		q.Spec.Hard = corev1.ResourceList{tenants.QuotaResource: resource.MustParse(hard)}
		q.Status.Used = corev1.ResourceList{tenants.QuotaResource: resource.MustParse(used)}
		return q
	}
	for _, tc := range []struct {
		name          string
		before, after *corev1.ResourceQuota
		want          bool
	}{
		{"usage only (a create, the quota controller)", quota("10", "12", "3"), quota("10", "12", "4"), false},
		{"cap changed", quota("10", "12", "3"), quota("20", "12", "3"), true},
		{"hard changed (by someone else)", quota("10", "12", "3"), quota("10", "100", "3"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := quotaSpecChanged.Update(event.UpdateEvent{ObjectOld: tc.before, ObjectNew: tc.after}); got != tc.want {
				t.Errorf("quotaSpecChanged = %v, want %v", got, tc.want)
			}
		})
	}
}
