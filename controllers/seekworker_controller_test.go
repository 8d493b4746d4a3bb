package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestAssignSlots(t *testing.T) {
	// seekJob is a job of worker "echo" in namespace ns, with UID "uid-<name>", created at t0+age.
	seekJob := func(name string, age time.Duration) *testutil.SeekJobWrapper {
		return testutil.MakeSeekJob(name, "ns").Worker("echo").UID("uid-" + name).Created(t0.Add(age))
	}
	queued := func(name string, age time.Duration) seekv1alpha1.SeekJob {
		return *seekJob(name, age).State(seekv1alpha1.JobStateQueued).Obj()
	}
	running := func(name string, age time.Duration) seekv1alpha1.SeekJob {
		return *seekJob(name, age).State(seekv1alpha1.JobStateRunning).JobName(name).Obj()
	}
	ref := func(name string) seekv1alpha1.JobReference {
		return seekv1alpha1.JobReference{Namespace: "ns", Name: name, UID: "uid-" + name}
	}

	cases := []struct {
		name    string
		current []seekv1alpha1.JobReference
		jobs    []seekv1alpha1.SeekJob
		limit   int
		want    []seekv1alpha1.JobReference
	}{
		{
			name:  "no jobs",
			limit: 2,
		},
		{
			name:    "stale holders without jobs",
			current: []seekv1alpha1.JobReference{ref("gone")},
			limit:   2,
		},
		{
			name:  "fill oldest first",
			jobs:  []seekv1alpha1.SeekJob{queued("c", 2*time.Second), queued("a", 0), queued("b", time.Second)},
			limit: 2,
			want:  []seekv1alpha1.JobReference{ref("a"), ref("b")},
		},
		{
			name:  "new jobs without a state wait too",
			jobs:  []seekv1alpha1.SeekJob{*seekJob("b", time.Second).Obj(), *seekJob("a", 0).Obj()},
			limit: 1,
			want:  []seekv1alpha1.JobReference{ref("a")},
		},
		{
			name: "ties broken by namespace then name",
			jobs: []seekv1alpha1.SeekJob{
				queued("b", 0),
				*testutil.MakeSeekJob("z", "aa").Worker("echo").UID("uid-aa-z").Created(t0).State(seekv1alpha1.JobStateQueued).Obj(),
				queued("a", 0),
			},
			limit: 2,
			want:  []seekv1alpha1.JobReference{{Namespace: "aa", Name: "z", UID: "uid-aa-z"}, ref("a")},
		},
		{
			name:  "fewer jobs than slots",
			jobs:  []seekv1alpha1.SeekJob{queued("a", 0)},
			limit: 5,
			want:  []seekv1alpha1.JobReference{ref("a")},
		},
		{
			name:    "holders keep their slot over older waiting jobs",
			current: []seekv1alpha1.JobReference{ref("new")},
			jobs:    []seekv1alpha1.SeekJob{queued("old", 0), queued("older", -time.Second), queued("new", time.Hour)},
			limit:   2,
			want:    []seekv1alpha1.JobReference{ref("new"), ref("older")},
		},
		{
			name:    "holders keep their order",
			current: []seekv1alpha1.JobReference{ref("b"), ref("a")},
			jobs:    []seekv1alpha1.SeekJob{running("a", 0), running("b", time.Second)},
			limit:   2,
			want:    []seekv1alpha1.JobReference{ref("b"), ref("a")},
		},
		{
			name:    "duplicate holder counted once",
			current: []seekv1alpha1.JobReference{ref("a"), ref("a")},
			jobs:    []seekv1alpha1.SeekJob{running("a", 0), queued("b", time.Second)},
			limit:   2,
			want:    []seekv1alpha1.JobReference{ref("a"), ref("b")},
		},
		{
			name:    "finished jobs release their slot",
			current: []seekv1alpha1.JobReference{ref("done"), ref("failed"), ref("run")},
			jobs: []seekv1alpha1.SeekJob{
				*seekJob("done", 0).Finished(seekv1alpha1.JobStateCompleted, "Succeeded", now).Obj(),
				*seekJob("failed", 0).Finished(seekv1alpha1.JobStateTimedOut, "DeadlineExceeded", now).Obj(),
				running("run", 0),
				queued("next", time.Second),
				queued("later", 2*time.Second),
			},
			limit: 2,
			want:  []seekv1alpha1.JobReference{ref("run"), ref("next")},
		},
		{
			// Its Job may exist already (stale caches): the slot is freed only once the job is Canceled.
			name:    "canceled before starting keeps its slot until it is finished",
			current: []seekv1alpha1.JobReference{ref("a")},
			jobs:    []seekv1alpha1.SeekJob{*seekJob("a", 0).State(seekv1alpha1.JobStateQueued).Cancel("changed my mind").Obj(), queued("b", time.Second)},
			limit:   1,
			want:    []seekv1alpha1.JobReference{ref("a")},
		},
		{
			name:    "canceled job releases its slot once Canceled",
			current: []seekv1alpha1.JobReference{ref("a")},
			jobs:    []seekv1alpha1.SeekJob{*seekJob("a", 0).State(seekv1alpha1.JobStateCanceled).Cancel("changed my mind").Obj(), queued("b", time.Second)},
			limit:   1,
			want:    []seekv1alpha1.JobReference{ref("b")},
		},
		{
			name:  "canceled waiting job takes no slot",
			jobs:  []seekv1alpha1.SeekJob{*seekJob("a", 0).Cancel("").Obj(), queued("b", time.Second)},
			limit: 1,
			want:  []seekv1alpha1.JobReference{ref("b")},
		},
		{
			name:    "canceled running job keeps its slot until it finishes",
			current: []seekv1alpha1.JobReference{ref("a")},
			jobs:    []seekv1alpha1.SeekJob{*seekJob("a", 0).State(seekv1alpha1.JobStateRunning).Cancel("stop").Obj(), queued("b", time.Second)},
			limit:   1,
			want:    []seekv1alpha1.JobReference{ref("a")},
		},
		{
			name:  "running jobs without a slot take one, even over the limit",
			jobs:  []seekv1alpha1.SeekJob{queued("q", -time.Hour), running("a", 0), running("b", time.Second)},
			limit: 1,
			want:  []seekv1alpha1.JobReference{ref("a"), ref("b")},
		},
		{
			name:  "a job whose Job exists but has not started yet counts as running",
			jobs:  []seekv1alpha1.SeekJob{queued("q", -time.Hour), *seekJob("s", 0).State(seekv1alpha1.JobStateQueued).JobName("s").Obj()},
			limit: 1,
			want:  []seekv1alpha1.JobReference{ref("s")},
		},
		{
			name:  "running jobs without a slot come before waiting ones",
			jobs:  []seekv1alpha1.SeekJob{queued("q", -time.Hour), running("a", 0)},
			limit: 2,
			want:  []seekv1alpha1.JobReference{ref("a"), ref("q")},
		},
		{
			name:    "lowered limit never evicts",
			current: []seekv1alpha1.JobReference{ref("a"), ref("b"), ref("c")},
			jobs:    []seekv1alpha1.SeekJob{running("a", 0), running("b", time.Second), queued("c", 2*time.Second), queued("d", -time.Hour)},
			limit:   1,
			want:    []seekv1alpha1.JobReference{ref("a"), ref("b"), ref("c")},
		},
		{
			name:    "UID mismatch after re-create: the new job queues again",
			current: []seekv1alpha1.JobReference{{Namespace: "ns", Name: "a", UID: "uid-old"}},
			jobs:    []seekv1alpha1.SeekJob{queued("a", time.Hour), queued("b", 0)},
			limit:   1,
			want:    []seekv1alpha1.JobReference{ref("b")},
		},
		{
			name:    "UID mismatch after re-create: the new job may win the freed slot",
			current: []seekv1alpha1.JobReference{{Namespace: "ns", Name: "a", UID: "uid-old"}},
			jobs:    []seekv1alpha1.SeekJob{queued("a", time.Hour)},
			limit:   1,
			want:    []seekv1alpha1.JobReference{ref("a")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jobsBefore := make([]seekv1alpha1.SeekJob, len(tc.jobs))
			for i := range tc.jobs {
				tc.jobs[i].DeepCopyInto(&jobsBefore[i])
			}
			got := assignSlots(tc.current, tc.jobs, tc.limit)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("assignSlots() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(jobsBefore, tc.jobs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("assignSlots() modified the jobs (-before +after):\n%s", diff)
			}
		})
	}
}

func TestSetWorkerReady(t *testing.T) {
	earlier := metav1.NewTime(t0)
	readyCond := func(ltt metav1.Time) metav1.Condition {
		return metav1.Condition{
			Type: seekv1alpha1.WorkerReady, Status: metav1.ConditionTrue, Reason: seekv1alpha1.WorkerReasonValid,
			Message: "The worker accepts jobs", ObservedGeneration: 3, LastTransitionTime: ltt,
		}
	}
	invalidCond := func(ltt metav1.Time) metav1.Condition {
		return metav1.Condition{
			Type: seekv1alpha1.WorkerReady, Status: metav1.ConditionFalse, Reason: seekv1alpha1.WorkerReasonInvalidInputSchema,
			ObservedGeneration: 3, LastTransitionTime: ltt,
		}
	}
	worker := testutil.MakeSeekWorker("echo").Generation(3).Created(t0)

	cases := []struct {
		name   string
		worker *seekv1alpha1.SeekWorker
		want   metav1.Condition
		// wantMessage prefixes the message of a False condition (the rest is the schema library's).
		wantMessage string
		// poolsDisabled: the manager serves no dispatch endpoint.
		poolsDisabled bool
	}{
		{
			name:   "no schema",
			worker: worker.Obj(),
			want:   readyCond(metav1.NewTime(now)),
		},
		{
			name:   "valid schema",
			worker: worker.Clone().InputSchema(`{"type":"object","required":["email"],"properties":{"email":{"type":"string"}}}`).Obj(),
			want:   readyCond(metav1.NewTime(now)),
		},
		{
			name:   "still ready: transition time kept",
			worker: worker.Clone().Condition(readyCond(earlier)).Obj(),
			want:   readyCond(earlier),
		},
		{
			name:        "invalid schema",
			worker:      worker.Clone().InputSchema(`{"type":5}`).Obj(),
			want:        invalidCond(metav1.NewTime(now)),
			wantMessage: "spec.inputSchema: input schema does not compile: ",
		},
		{
			name:        "schema that is not JSON",
			worker:      worker.Clone().InputSchema(`{"type":`).Obj(),
			want:        invalidCond(metav1.NewTime(now)),
			wantMessage: "spec.inputSchema: input schema is not valid JSON: ",
		},
		{
			name:        "schema with an external reference",
			worker:      worker.Clone().InputSchema(`{"$ref":"https://example.com/schema.json"}`).Obj(),
			want:        invalidCond(metav1.NewTime(now)),
			wantMessage: "spec.inputSchema: input schema does not compile: ",
		},
		{
			name:        "ready worker becomes invalid",
			worker:      worker.Clone().Condition(readyCond(earlier)).InputSchema(`{"type":5}`).Obj(),
			want:        invalidCond(metav1.NewTime(now)),
			wantMessage: "spec.inputSchema: input schema does not compile: ",
		},
		{
			name:   "invalid worker becomes ready",
			worker: worker.Clone().Condition(invalidCond(earlier)).Obj(),
			want:   readyCond(metav1.NewTime(now)),
		},
		{
			name:   "pooled worker, pools enabled",
			worker: worker.Clone().Command("/echo").Pooled(4).Obj(),
			want:   readyCond(metav1.NewTime(now)),
		},
		{
			name:          "pooled worker, no dispatch endpoint",
			worker:        worker.Clone().Command("/echo").Pooled(4).Obj(),
			poolsDisabled: true,
			want: metav1.Condition{Type: seekv1alpha1.WorkerReady, Status: metav1.ConditionFalse, Reason: seekv1alpha1.WorkerReasonPooledExecutionDisabled,
				ObservedGeneration: 3, LastTransitionTime: metav1.NewTime(now)},
			wantMessage: "spec.execution.mode is Pooled but the manager serves no dispatch endpoint",
		},
		{
			name:          "job-mode worker, no dispatch endpoint",
			worker:        worker.Clone().Obj(),
			poolsDisabled: true,
			want:          readyCond(metav1.NewTime(now)),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setWorkerReady(tc.worker, !tc.poolsDisabled, now)
			if len(tc.worker.Status.Conditions) != 1 {
				t.Fatalf("conditions = %+v, want exactly Ready", tc.worker.Status.Conditions)
			}
			got := tc.worker.Status.Conditions[0]
			opts := cmp.Options{}
			if tc.wantMessage != "" {
				opts = append(opts, cmpopts.IgnoreFields(metav1.Condition{}, "Message"))
				if !strings.HasPrefix(got.Message, tc.wantMessage) {
					t.Errorf("message = %q, want it to start with %q", got.Message, tc.wantMessage)
				}
			}
			if diff := cmp.Diff(tc.want, got, opts); diff != "" {
				t.Errorf("Ready condition mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
