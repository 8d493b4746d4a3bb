package frontend

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/jobview"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestWaiting(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	base := testutil.MakeSeekJob("a", "ns").Worker("echo")
	cases := map[string]struct {
		job  *seekv1alpha1.SeekJob
		want bool
	}{
		"new, not seen by the controller": {job: base.Clone().Obj(), want: true},
		"queued for a slot":               {job: base.Clone().State(seekv1alpha1.JobStateQueued).Obj(), want: true},
		"queued, its Job made":            {job: base.Clone().State(seekv1alpha1.JobStateQueued).JobName("a").Obj(), want: false},
		"leased by a pool pod":            {job: base.Clone().Leased("pool", "pod", "uid", now).Obj(), want: false},
		"canceling":                       {job: base.Clone().Cancel("no").Obj(), want: false},
		"deleting":                        {job: base.Clone().Finalizers("x").Deleting(now).Obj(), want: false},
		"finished":                        {job: base.Clone().Finished(seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, now).Obj(), want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := waiting(tc.job); got != tc.want {
				t.Errorf("waiting = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueuePositions(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	job := func(name, ns, worker string, age int) *testutil.SeekJobWrapper {
		return testutil.MakeSeekJob(name, ns).Worker(worker).State(seekv1alpha1.JobStateQueued).Created(t0.Add(time.Duration(age) * time.Second))
	}
	objs := []client.Object{
		testutil.MakeSeekWorker("capped").MaxConcurrent(1).Obj(),
		testutil.MakeSeekWorker("pooled").Pooled(2).Obj(),
		// Job mode: one queue across namespaces, oldest first, then namespace, then name.
		job("running", "a", "capped", 0).JobName("running").Obj(),
		job("c1", "b", "capped", 1).Obj(),
		job("c2", "a", "capped", 2).Obj(),
		job("c3", "a", "capped", 2).Obj(),
		job("c4", "b", "capped", 2).Obj(),
		// Pooled: a queue per namespace.
		job("p1", "b", "pooled", 1).Obj(),
		job("p2", "a", "pooled", 3).Obj(),
		job("p3", "a", "pooled", 4).Obj(),
		job("orphan", "a", "absent", 0).Obj(),
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, seekv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithIndex(&seekv1alpha1.SeekJob{}, waitingWorkerField, waitingWorker).Build()
	clk := clocktesting.NewFakeClock(t0.Add(time.Minute))
	s := &Server{Client: c, queues: newFinishRates(clk, func(*seekv1alpha1.SeekJob) (string, bool) { return "pooled-queue", true })}

	var jobs []*seekv1alpha1.SeekJob
	for _, o := range objs {
		if sj, ok := o.(*seekv1alpha1.SeekJob); ok {
			jobs = append(jobs, sj)
		}
	}
	got, err := s.queuePositions(context.Background(), jobs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*jobview.Queue{
		"b/c1": {Position: 1}, "a/c2": {Position: 2}, "a/c3": {Position: 3}, "b/c4": {Position: 4},
		"b/p1": {Position: 1}, "a/p2": {Position: 1}, "a/p3": {Position: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}

	// A job the cache does not show yet comes last.
	fresh := job("new", "a", "pooled", 5).Obj()
	got, err = s.queuePositions(context.Background(), []*seekv1alpha1.SeekJob{fresh})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]*jobview.Queue{"a/new": {Position: 3}}, got); diff != "" {
		t.Errorf("a job not in the cache (-want +got):\n%s", diff)
	}
}

func TestFinishRatesEstimate(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	f := newFinishRates(clk, func(sj *seekv1alpha1.SeekJob) (string, bool) {
		return string(sj.Spec.WorkerName), sj.Spec.WorkerName != "absent"
	})
	running := testutil.MakeSeekJob("a", "ns").Worker("w").State(seekv1alpha1.JobStateRunning).Obj()
	done := testutil.MakeSeekJob("a", "ns").Worker("w").Finished(seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, t0).Obj()
	finish := func() { f.observe(running, done) }

	if got := f.estimate("w", 1); got != nil {
		t.Errorf("estimate with no finishes = %d, want nil", *got)
	}
	// Three finishes, 2 s apart: too few.
	for range 3 {
		finish()
		clk.Step(2 * time.Second)
	}
	if got := f.estimate("w", 1); got != nil {
		t.Errorf("estimate after 3 finishes = %d, want nil", *got)
	}
	// The fourth, 2 s later: 4 finishes over the 6 s since the first... and 0 s since the last.
	finish()
	// 4 finishes in 6 s: one every 1.5 s; position 3 waits 4.5 s, rounded up.
	if diff := cmp.Diff(ptr.To[int64](5), f.estimate("w", 3)); diff != "" {
		t.Errorf("estimate (-want +got):\n%s", diff)
	}
	// An update that is not a finish, or a job of an unknown worker, records nothing.
	f.observe(done, done)
	f.observe(running, running)
	absent := done.DeepCopy()
	absent.Spec.WorkerName = "absent"
	f.observe(running, absent)
	if diff := cmp.Diff(ptr.To[int64](5), f.estimate("w", 3)); diff != "" {
		t.Errorf("estimate after non-finishes (-want +got):\n%s", diff)
	}
	// Finishes older than the window no longer count, and their scope is forgotten at the next finish.
	clk.Step(finishWindow + time.Second)
	if got := f.estimate("w", 1); got != nil {
		t.Errorf("estimate after the window = %d, want nil", *got)
	}
	other := done.DeepCopy()
	other.Spec.WorkerName = "other"
	f.observe(running, other)
	if _, kept := f.times["w"]; kept {
		t.Error("scope w kept after its finishes left the window")
	}
	// The ring keeps the last finishRing finishes.
	for range finishRing + 5 {
		f.observe(running, other)
	}
	if n := len(f.times["other"]); n != finishRing {
		t.Errorf("finishes kept = %d, want %d", n, finishRing)
	}
}

func TestGetJobShowsQueue(t *testing.T) {
	t0 := time.Now().Add(-time.Minute)
	f := newFixture(t, nil,
		testutil.MakeSeekWorker("capped").MaxConcurrent(1).Obj(),
		testutil.MakeSeekJob("first", "tenant-a").Worker("capped").State(seekv1alpha1.JobStateQueued).Created(t0).Obj(),
		testutil.MakeSeekJob("second", "tenant-a").Worker("capped").State(seekv1alpha1.JobStateQueued).Created(t0.Add(time.Second)).Obj(),
		testutil.MakeSeekJob("done", "tenant-a").Worker("capped").Finished(seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, t0).Created(t0).Obj(),
	)
	code, body := f.do(http.MethodGet, "/v1/jobs/"+jobview.IDPrefix+"second", f.keys["a"], "")
	if code != http.StatusOK {
		t.Fatalf("GET = %d %v", code, body)
	}
	if diff := cmp.Diff(map[string]any{"position": float64(2), "estimated_wait_seconds": nil}, body["queue"]); diff != "" {
		t.Errorf("queue (-want +got):\n%s", diff)
	}
	code, body = f.do(http.MethodGet, "/v1/jobs/"+jobview.IDPrefix+"done", f.keys["a"], "")
	if _, shown := body["queue"]; code != http.StatusOK || shown {
		t.Errorf("GET of a finished job = %d, queue shown: %v", code, body["queue"])
	}
	code, body = f.do(http.MethodGet, "/v1/jobs", f.keys["a"], "")
	if code != http.StatusOK {
		t.Fatalf("list = %d %v", code, body)
	}
	positions := map[string]any{}
	for _, j := range body["jobs"].([]any) {
		j := j.(map[string]any)
		positions[j["job_uuid"].(string)] = j["queue"]
	}
	want := map[string]any{
		jobview.IDPrefix + "first":  map[string]any{"position": float64(1), "estimated_wait_seconds": nil},
		jobview.IDPrefix + "second": map[string]any{"position": float64(2), "estimated_wait_seconds": nil},
		jobview.IDPrefix + "done":   nil,
	}
	if diff := cmp.Diff(want, positions); diff != "" {
		t.Errorf("list's queues (-want +got):\n%s", diff)
	}
}
