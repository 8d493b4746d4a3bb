package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// writeCounter counts the writes a client makes, by verb and kind.
type writeCounter struct {
	mu     sync.Mutex
	writes map[string]int
}

func (c *writeCounter) count(verb string, obj client.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes == nil {
		c.writes = map[string]int{}
	}
	c.writes[fmt.Sprintf("%s %T", verb, obj)]++
}

func (c *writeCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.writes {
		n += v
	}
	return n
}

func (c *writeCounter) funcs(createErr error) interceptor.Funcs {
	return interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			c.count("create", obj)
			if createErr != nil {
				return createErr
			}
			return cl.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			c.count("update", obj)
			return cl.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			c.count("patch", obj)
			return cl.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			c.count("delete", obj)
			return cl.Delete(ctx, obj, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, cl client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			c.count("update/"+sub, obj)
			return cl.SubResource(sub).Update(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, cl client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			c.count("patch/"+sub, obj)
			return cl.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}
}

// newPoolTestClient is a fake apiserver and cache with the indexes of the pool controller.
func newPoolTestClient(t *testing.T, counter *writeCounter, createErr error, objs ...client.Object) client.WithWatch {
	return withCacheIndexes(fake.NewClientBuilder().WithScheme(newTestScheme(t))).WithObjects(objs...).
		WithStatusSubresource(&seekv1alpha1.SeekJob{}, &seekv1alpha1.SeekWorker{}).
		WithInterceptorFuncs(counter.funcs(createErr)).Build()
}

func TestPoolReconcile(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	worker := testutil.MakeSeekWorker("echo").UID("w1").Pooled(4).Command("/echo").Ready()
	queued := func(n int) []client.Object {
		var objs []client.Object
		for i := range n {
			objs = append(objs, testutil.MakeSeekJob(fmt.Sprintf("j%d", i), "ns").Worker("echo").UID(fmt.Sprintf("u%d", i)).Created(now).Obj())
		}
		return objs
	}
	quota := apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "x", fmt.Errorf("exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=5, limited: count/jobs.batch=5"))
	cases := []struct {
		name      string
		worker    *seekv1alpha1.SeekWorker
		objs      []client.Object
		createErr error
		// wantParallelism is the parallelism of the pool's Job after the reconciles; 0: no Job.
		wantParallelism int32
		wantWrites      int
		wantEvent       string
		wantRequeue     time.Duration
	}{
		{name: "one queued job", worker: worker.Obj(), objs: queued(1), wantParallelism: 1, wantWrites: 1},
		{name: "ten queued jobs: maxPods, one write", worker: worker.Obj(), objs: queued(10), wantParallelism: 4, wantWrites: 1},
		{name: "no jobs: no pool", worker: worker.Obj()},
		{name: "no jobs, warm minimum", worker: worker.Clone().MinPods(2).Obj(), wantParallelism: 2, wantWrites: 1},
		{name: "worker not ready", worker: worker.Clone().NotReady(seekv1alpha1.WorkerReasonInvalidInputSchema, "bad").Obj(), objs: queued(3)},
		{name: "Job mode worker", worker: testutil.MakeSeekWorker("echo").UID("w1").Ready().Obj(), objs: queued(3)},
		// Each reconcile tries once more (the queue spaces them poolRefusedRetry apart).
		{name: "quota refuses the pool Job", worker: worker.Obj(), objs: queued(2), createErr: quota, wantWrites: 3,
			wantEvent: "Warning FailedCreate A ResourceQuota refused the Job", wantRequeue: poolRefusedRetry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			counter := &writeCounter{}
			c := newPoolTestClient(t, counter, tc.createErr, append(tc.objs, tc.worker)...)
			recorder := events.NewFakeRecorder(10)
			r := &PoolReconciler{Client: c, Recorder: recorder, Clock: clocktesting.NewFakePassiveClock(now), Options: testPoolOptions}
			req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "echo"}}
			var res ctrl.Result
			for range 3 { // a reconcile that finds the pool sized writes nothing
				var err error
				if res, err = r.Reconcile(context.Background(), req); err != nil {
					t.Fatal(err)
				}
			}
			if res.RequeueAfter != tc.wantRequeue {
				t.Errorf("RequeueAfter = %s, want %s", res.RequeueAfter, tc.wantRequeue)
			}
			jobs := &batchv1.JobList{}
			if err := c.List(context.Background(), jobs); err != nil {
				t.Fatal(err)
			}
			var got int32
			switch len(jobs.Items) {
			case 0:
			case 1:
				got = ptr.Deref(jobs.Items[0].Spec.Parallelism, 0)
				if want := poolJobName("echo", poolTemplateHash(tc.worker, testPoolOptions.RunnerImage), 1); jobs.Items[0].Name != want {
					t.Errorf("pool Job %s, want %s", jobs.Items[0].Name, want)
				}
			default:
				t.Fatalf("%d pool Jobs, want at most 1", len(jobs.Items))
			}
			if got != tc.wantParallelism {
				t.Errorf("parallelism = %d, want %d", got, tc.wantParallelism)
			}
			if n := counter.total(); n != tc.wantWrites {
				t.Errorf("%d writes (%v), want %d", n, counter.writes, tc.wantWrites)
			}
			select {
			case ev := <-recorder.Events:
				if tc.wantEvent == "" || !strings.HasPrefix(ev, tc.wantEvent) {
					t.Errorf("event %q, want %q", ev, tc.wantEvent)
				}
			default:
				if tc.wantEvent != "" {
					t.Errorf("no event, want %q", tc.wantEvent)
				}
			}
		})
	}
}

// TestPoolReconcileGrows checks that the pool grows with its queue, one write per change of size
// however many jobs arrive, and never shrinks.
func TestPoolReconcileGrows(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	worker := testutil.MakeSeekWorker("echo").UID("w1").Pooled(6).Command("/echo").Ready().Obj()
	counter := &writeCounter{}
	c := newPoolTestClient(t, counter, nil, worker)
	r := &PoolReconciler{Client: c, Recorder: events.NewFakeRecorder(10), Clock: clocktesting.NewFakePassiveClock(now), Options: testPoolOptions}
	req := ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "ns", Name: "echo"}}
	ctx := context.Background()
	var created []*seekv1alpha1.SeekJob
	add := func(n int) {
		for range n {
			sj := testutil.MakeSeekJob(fmt.Sprintf("j%d", len(created)), "ns").Worker("echo").Created(now).Obj()
			if err := c.Create(ctx, sj); err != nil {
				t.Fatal(err)
			}
			created = append(created, sj)
			if _, err := r.Reconcile(ctx, req); err != nil { // one reconcile per job event, at worst
				t.Fatal(err)
			}
		}
	}
	parallelism := func() int32 {
		jobs := &batchv1.JobList{}
		if err := c.List(ctx, jobs); err != nil || len(jobs.Items) != 1 {
			t.Fatalf("pool Jobs: %v, %v", jobs.Items, err)
		}
		return ptr.Deref(jobs.Items[0].Spec.Parallelism, 0)
	}
	before := counter.total()
	add(3)
	if got := parallelism(); got != 3 {
		t.Errorf("parallelism after 3 jobs = %d, want 3", got)
	}
	add(20)
	if got := parallelism(); got != 6 {
		t.Errorf("parallelism after 23 jobs = %d, want 6", got)
	}
	// Creates of SeekJobs are the test's. The pool's writes: 1 create, and a raise to 2, 3, 4, 5 and 6
	// as jobs arrive one by one; none for the 17 jobs beyond maxPods.
	poolWrites := counter.total() - before - len(created)
	if poolWrites != 6 {
		t.Errorf("pool writes for 23 jobs = %d (%v), want 6 (1 create, 5 raises)", poolWrites, counter.writes)
	}
	// The queue drains: the pool is not lowered.
	for _, sj := range created {
		if err := c.Delete(ctx, sj); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := parallelism(); got != 6 {
		t.Errorf("parallelism after the queue drained = %d, want 6 (never lowered)", got)
	}
}

func TestMayRaisePoolDemand(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	queued := testutil.MakeSeekJob("a", "ns").Worker("echo").State(seekv1alpha1.JobStateQueued)
	running := queued.Clone().Leased("pool-1", "pod-1", "uid-1", now)
	retrying := running.Clone()
	retrying.Status.State = seekv1alpha1.JobStateQueued
	retrying.Status.Pool = &seekv1alpha1.PoolAttempt{JobName: "pool-1", RetryTime: &metav1.Time{Time: now.Add(10 * time.Second)}}
	done := running.Clone().Finished(seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, now)
	cases := map[string]struct {
		old, new *testutil.SeekJobWrapper
		want     bool
	}{
		"queued, status written again": {old: queued, new: queued.Clone().Attempts(0), want: false},
		"leased":                       {old: queued, new: running, want: false},
		"finished":                     {old: running, new: done, want: false},
		"lease ended, retry waits":     {old: running, new: retrying, want: true},
		"cancel requested":             {old: queued, new: queued.Clone().Cancel("no"), want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := mayRaisePoolDemand.Update(event.UpdateEvent{ObjectOld: tc.old.Obj(), ObjectNew: tc.new.Obj()})
			if got != tc.want {
				t.Errorf("Update = %v, want %v", got, tc.want)
			}
		})
	}
	if !mayRaisePoolDemand.Create(event.CreateEvent{Object: queued.Obj()}) {
		t.Error("Create = false, want true: a new job may need a pod")
	}
	if mayRaisePoolDemand.Delete(event.DeleteEvent{Object: running.Obj()}) {
		t.Error("Delete = true, want false: a deleted job only lowers the demand")
	}
}
