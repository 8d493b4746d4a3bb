package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// pooledOutcome is what a pure function of pooled_status.go decides about a job.
type pooledOutcome struct {
	State     seekv1alpha1.JobState
	Attempts  int32
	Pool      *seekv1alpha1.PoolAttempt
	Result    string
	ResultRef *seekv1alpha1.ResultRef
	Error     *seekv1alpha1.JobError
	// Finished is the Finished condition's reason and message, "" while the job runs.
	Finished, FinishedMessage string
}

func outcomeOf(sj *seekv1alpha1.SeekJob) pooledOutcome {
	o := pooledOutcome{State: sj.Status.State, Attempts: sj.Status.Attempts, Pool: sj.Status.Pool, Error: sj.Status.Error, ResultRef: sj.Status.ResultRef}
	if sj.Status.Result != nil {
		o.Result = string(sj.Status.Result.Raw)
	}
	if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobFinished); c != nil {
		o.Finished, o.FinishedMessage = c.Reason, c.Message
	}
	return o
}

var (
	// leaseTime is when the test's pooled job was leased (its first start).
	leaseTime = t0.Add(time.Second)
	// reportTime is when its report arrives.
	reportTime = t0.Add(5 * time.Second)
)

// runningPooledJob is a pooled job whose attempt-th attempt the pod "pool-pod" (UID "pod-uid") holds.
func runningPooledJob(attempt int32) *seekv1alpha1.SeekJob {
	sj := testutil.MakeSeekJob("job", "tenant").Worker("echo").UID("job-uid").Created(t0).Obj()
	pod := testutil.MakePod("pool-pod", "tenant").UID("pod-uid").Obj()
	setLeased(sj, "pool-1", pod, leaseTime)
	sj.Status.Attempts = attempt
	return sj
}

// large is a JSON string of n bytes (n >= 2).
func large(n int) string { return `"` + strings.Repeat("r", n-2) + `"` }

func runningPool() *seekv1alpha1.PoolAttempt {
	return &seekv1alpha1.PoolAttempt{JobName: "pool-1", PodName: "pool-pod", PodUID: "pod-uid"}
}

func TestApplyReport(t *testing.T) {
	worker := testutil.MakeSeekWorker("echo").Retries(2).Obj()
	noRetries := testutil.MakeSeekWorker("echo").Obj()
	limited := testutil.MakeSeekWorker("echo").Resources(corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}).Obj()
	var lines strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&lines, "line %03d\n", i)
	}
	longLines := strings.Repeat(strings.Repeat("x", 299)+"\n", 10)
	ref := attemptRef(runningPooledJob(1))
	report := func(r dispatch.Report) *dispatch.Report {
		r.AttemptRef = ref
		return &r
	}
	timeout := 3 * time.Second

	cases := []struct {
		name    string
		attempt int32
		worker  *seekv1alpha1.SeekWorker
		timeout *time.Duration
		report  *dispatch.Report
		storage resultStorage
		want    pooledOutcome
	}{{
		name:   "success completes with the result, compacted",
		worker: worker, report: report(dispatch.Report{Result: "{\"ok\": true}\n"}),
		want: pooledOutcome{State: seekv1alpha1.JobStateCompleted, Attempts: 1, Pool: runningPool(), Result: `{"ok":true}`,
			Finished: seekv1alpha1.JobReasonSucceeded, FinishedMessage: "The worker returned a result"},
	}, {
		name:   "success without a result completes with none",
		worker: worker, report: report(dispatch.Report{}),
		want: pooledOutcome{State: seekv1alpha1.JobStateCompleted, Attempts: 1, Pool: runningPool(),
			Finished: seekv1alpha1.JobReasonSucceeded, FinishedMessage: "The worker returned a result"},
	}, {
		name:   "a result that is not JSON fails the job",
		worker: worker, report: report(dispatch.Report{Result: "hello"}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonInvalidResult, ExitCode: ptr.To[int32](0),
				Message: `the worker exited 0 but its result is not valid JSON (5 bytes starting "hello")`},
			Finished: seekv1alpha1.JobReasonInvalidResult, FinishedMessage: `the worker exited 0 but its result is not valid JSON (5 bytes starting "hello")`},
	}, {
		name:   "a result over 1 MiB fails the job with ResultTooLarge naming its size",
		worker: worker, report: report(dispatch.Report{Result: strings.Repeat("1", dispatch.MaxReportBytes), ResultTruncated: true, ResultBytes: 2000000}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonResultTooLarge, ExitCode: ptr.To[int32](0),
				Message: "The worker exited 0 with a result of 2000000 bytes; at most 1048576 bytes (1 MiB) fit: return larger outputs by reference"},
			Finished: seekv1alpha1.JobReasonResultTooLarge, FinishedMessage: "The worker exited 0 with a result of 2000000 bytes; at most 1048576 bytes (1 MiB) fit: return larger outputs by reference"},
	}, {
		name:   "a result of 4096 bytes stays inline",
		worker: worker, report: report(dispatch.Report{Result: large(4096)}),
		want: pooledOutcome{State: seekv1alpha1.JobStateCompleted, Attempts: 1, Pool: runningPool(), Result: large(4096),
			Finished: seekv1alpha1.JobReasonSucceeded, FinishedMessage: "The worker returned a result"},
	}, {
		name:   "a large result stored in its Secret completes with a reference",
		worker: worker, report: report(dispatch.Report{Result: large(4097) + "\n"}), storage: resultStorage{ref: resultRefFor("job", []byte(large(4097)))},
		want: pooledOutcome{State: seekv1alpha1.JobStateCompleted, Attempts: 1, Pool: runningPool(), ResultRef: resultRefFor("job", []byte(large(4097))),
			Finished: seekv1alpha1.JobReasonSucceeded, FinishedMessage: "The worker returned a result of 4097 bytes, stored in Secret job-result"},
	}, {
		name:   "a large result not stored fails the job with the storage's reason",
		worker: worker, report: report(dispatch.Report{Result: large(5000)}), storage: resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: "Secret job-result is not the job's"},
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error:    &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonResultLost, ExitCode: ptr.To[int32](0), Message: "Secret job-result is not the job's"},
			Finished: seekv1alpha1.JobReasonResultLost, FinishedMessage: "Secret job-result is not the job's"},
	}, {
		name:   "a large result that is not JSON fails with InvalidResult",
		worker: worker, report: report(dispatch.Report{Result: strings.Repeat("x", 5000)}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonInvalidResult, ExitCode: ptr.To[int32](0),
				Message: `the worker exited 0 but its result is not valid JSON (5000 bytes starting "` + strings.Repeat("x", 61) + `…")`},
			Finished: seekv1alpha1.JobReasonInvalidResult, FinishedMessage: `the worker exited 0 but its result is not valid JSON (5000 bytes starting "` + strings.Repeat("x", 61) + `…")`},
	}, {
		name:   "exit 65 fails at once with the worker's error",
		worker: worker, report: report(dispatch.Report{ExitCode: protocol.ExitCodeNoRetry, Result: `{"message":"bad address","reason":"Invalid"}`}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonWorkerError, ExitCode: ptr.To[int32](65), Message: "bad address",
				Details: seekv1alpha1.NewJSON([]byte(`{"message":"bad address","reason":"Invalid"}`))},
			Finished: seekv1alpha1.JobReasonWorkerError, FinishedMessage: "The worker failed and asked not to be retried: bad address"},
	}, {
		name:   "a failed first attempt waits 10s for the next",
		worker: worker, attempt: 1, report: report(dispatch.Report{ExitCode: 1, LogTail: "boom\n"}),
		want: pooledOutcome{State: seekv1alpha1.JobStateRunning, Attempts: 1,
			Pool: &seekv1alpha1.PoolAttempt{JobName: "pool-1", RetryTime: ptr.To(metav1.NewTime(reportTime.Add(10 * time.Second)))}},
	}, {
		name:   "a failed second attempt waits 20s",
		worker: worker, attempt: 2, report: report(dispatch.Report{ExitCode: 1, LogTail: "boom\n"}),
		want: pooledOutcome{State: seekv1alpha1.JobStateRunning, Attempts: 2,
			Pool: &seekv1alpha1.PoolAttempt{JobName: "pool-1", RetryTime: ptr.To(metav1.NewTime(reportTime.Add(20 * time.Second)))}},
	}, {
		name:   "the last attempt failing exhausts the retries",
		worker: worker, attempt: 3, report: report(dispatch.Report{ExitCode: 1, LogTail: "boom\n"}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 3, Pool: runningPool(),
			Error:    &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, ExitCode: ptr.To[int32](1), Message: "boom"},
			Finished: seekv1alpha1.JobReasonRetriesExhausted, FinishedMessage: "All 3 attempts failed; the last: boom"},
	}, {
		name:   "an OOM kill names the memory limit and keeps the log tail",
		worker: limited, report: report(dispatch.Report{ExitCode: -1, Signal: "SIGKILL", OOMKilled: true, Result: "partial", LogTail: "allocating\n"}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, ExitCode: ptr.To[int32](-1),
				Message: "The worker was OOMKilled (memory limit 64Mi)", Details: seekv1alpha1.NewJSON([]byte(`{"log_tail":"allocating"}`))},
			Finished: seekv1alpha1.JobReasonRetriesExhausted, FinishedMessage: "All 1 attempts failed; the last: The worker was OOMKilled (memory limit 64Mi)"},
	}, {
		name:   "killed by a signal without a message names the signal",
		worker: noRetries, report: report(dispatch.Report{ExitCode: -1, Signal: "SIGSEGV"}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, ExitCode: ptr.To[int32](-1),
				Message: "the worker exited with code -1 without an error message (SIGSEGV)"},
			Finished: seekv1alpha1.JobReasonRetriesExhausted, FinishedMessage: "All 1 attempts failed; the last: the worker exited with code -1 without an error message (SIGSEGV)"},
	}, {
		name:   "timed out ends the job as TimedOut",
		worker: worker, timeout: &timeout, report: report(dispatch.Report{ExitCode: -1, Signal: "SIGTERM", TimedOut: true}),
		want: pooledOutcome{State: seekv1alpha1.JobStateTimedOut, Attempts: 1, Pool: runningPool(),
			Error:    &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonDeadlineExceeded, Message: "The job ran longer than its timeout of 3s"},
			Finished: seekv1alpha1.JobReasonDeadlineExceeded, FinishedMessage: "The job ran longer than its timeout of 3s"},
	}, {
		name:   "interrupted does not count and may run again at once",
		worker: noRetries, attempt: 2, report: report(dispatch.Report{ExitCode: -1, Signal: "SIGTERM", Interrupted: true}),
		want: pooledOutcome{State: seekv1alpha1.JobStateRunning, Attempts: 1, Pool: &seekv1alpha1.PoolAttempt{JobName: "pool-1"}},
	}, {
		name:   "a start error fails the attempt with exit code 127",
		worker: noRetries, report: report(dispatch.Report{ExitCode: 127, StartError: "exec: \"/bin/worker\": no such file"}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, ExitCode: ptr.To[int32](127),
				Message: "the worker's command could not be started: exec: \"/bin/worker\": no such file"},
			Finished: seekv1alpha1.JobReasonRetriesExhausted, FinishedMessage: "All 1 attempts failed; the last: the worker's command could not be started: exec: \"/bin/worker\": no such file"},
	}, {
		name:   "without an error message the last 80 lines of the log speak",
		worker: noRetries, report: report(dispatch.Report{ExitCode: 2, LogTail: lines.String()}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, ExitCode: ptr.To[int32](2),
				Message: strings.TrimSpace(lines.String()[20*9:])},
			Finished: seekv1alpha1.JobReasonRetriesExhausted, FinishedMessage: "All 1 attempts failed; the last: " + strings.TrimSpace(lines.String()[20*9:])},
	}, {
		name:   "without an error message at most 2048 bytes of the log speak",
		worker: noRetries, report: report(dispatch.Report{ExitCode: 2, LogTail: longLines}),
		want: pooledOutcome{State: seekv1alpha1.JobStateFailed, Attempts: 1, Pool: runningPool(),
			Error: &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, ExitCode: ptr.To[int32](2),
				Message: strings.TrimSpace(longLines[len(longLines)-2048:])},
			Finished: seekv1alpha1.JobReasonRetriesExhausted, FinishedMessage: "All 1 attempts failed; the last: " + strings.TrimSpace(longLines[len(longLines)-2048:])},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sj := runningPooledJob(max(tc.attempt, 1))
			if tc.timeout != nil {
				sj.Spec.Timeout = &metav1.Duration{Duration: *tc.timeout}
			}
			applyReport(sj, tc.worker, tc.report, tc.storage, reportTime)
			if diff := cmp.Diff(tc.want, outcomeOf(sj)); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if sj.Status.State.IsTerminal() {
				if diff := cmp.Diff(ptr.To(metav1.NewTime(reportTime)), sj.Status.CompletionTime); diff != "" {
					t.Errorf("completionTime (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(&metav1.Duration{Duration: reportTime.Sub(leaseTime)}, sj.Status.Duration); diff != "" {
					t.Errorf("duration (-want +got):\n%s", diff)
				}
			}
			if !started(sj) {
				t.Errorf("Started is not True after an attempt ran")
			}
		})
	}
}

func TestPodLost(t *testing.T) {
	worker := testutil.MakeSeekWorker("echo").Retries(2).Obj()
	noRetries := testutil.MakeSeekWorker("echo").Obj()
	pod := testutil.MakePod("pool-pod", "tenant").UID("pod-uid")
	failed := pod.Clone().Phase(corev1.PodFailed).Obj()
	failed.Status.Reason, failed.Status.Message = "UnexpectedAdmissionError", "the node refused it"
	lostMsg := "the pool pod pool-pod running the job ended without reporting an outcome: UnexpectedAdmissionError the node refused it"
	released := pooledOutcome{State: seekv1alpha1.JobStateRunning, Attempts: 1, Pool: &seekv1alpha1.PoolAttempt{JobName: "pool-1"}}

	cases := []struct {
		name   string
		worker *seekv1alpha1.SeekWorker
		pod    *corev1.Pod
		want   pooledOutcome
	}{
		{name: "a pod that is gone interrupted the attempt", worker: noRetries, pod: nil, want: released},
		{name: "a pod that failed without a reason fails the attempt", worker: noRetries, pod: pod.Clone().Phase(corev1.PodFailed).Obj(), want: pooledOutcome{
			State: seekv1alpha1.JobStateFailed, Attempts: 2, Pool: runningPool(),
			Error:    &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, Message: "the pool pod pool-pod running the job ended without reporting an outcome"},
			Finished: seekv1alpha1.JobReasonRetriesExhausted, FinishedMessage: "All 2 attempts failed; the last: the pool pod pool-pod running the job ended without reporting an outcome",
		}},
		{name: "a disrupted pod interrupted the attempt", worker: noRetries,
			pod: pod.Clone().Phase(corev1.PodFailed).Condition(corev1.DisruptionTarget, corev1.ConditionTrue, "EvictionByEvictionAPI").Obj(), want: released},
		{name: "a failed pod fails the attempt; retries left wait", worker: worker, pod: failed, want: pooledOutcome{
			State: seekv1alpha1.JobStateRunning, Attempts: 2,
			Pool: &seekv1alpha1.PoolAttempt{JobName: "pool-1", RetryTime: ptr.To(metav1.NewTime(reportTime.Add(20 * time.Second)))},
		}},
		{name: "a failed pod fails the job when no retry is left", worker: noRetries, pod: failed, want: pooledOutcome{
			State: seekv1alpha1.JobStateFailed, Attempts: 2, Pool: runningPool(),
			Error:    &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, Message: lostMsg},
			Finished: seekv1alpha1.JobReasonRetriesExhausted, FinishedMessage: "All 2 attempts failed; the last: " + lostMsg,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sj := runningPooledJob(2)
			podLost(sj, tc.worker, tc.pod, reportTime)
			if diff := cmp.Diff(tc.want, outcomeOf(sj)); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a pod being deleted interrupted the attempt", func(t *testing.T) {
		sj := runningPooledJob(2)
		deleting := pod.Clone().Phase(corev1.PodRunning).Obj()
		deleting.DeletionTimestamp = ptr.To(metav1.NewTime(reportTime))
		podLost(sj, noRetries, deleting, reportTime)
		if diff := cmp.Diff(released, outcomeOf(sj)); diff != "" {
			t.Errorf("outcome (-want +got):\n%s", diff)
		}
	})
}

func TestLeasable(t *testing.T) {
	queued := testutil.MakeSeekJob("job", "tenant").Worker("echo").UID("job-uid").Created(t0)
	retrying := runningPooledJob(1)
	releaseAttempt(retrying, true, leaseTime) // next attempt at leaseTime+10s
	cases := []struct {
		name     string
		sj       *seekv1alpha1.SeekJob
		at       time.Time
		wantOK   bool
		wantWait time.Duration
	}{
		{name: "queued", sj: queued.Obj(), at: t0, wantOK: true},
		{name: "cancel requested", sj: queued.Clone().Cancel("no").Obj(), at: t0},
		{name: "deleting", sj: queued.Clone().Finalizers("x").Deleting(t0).Obj(), at: t0},
		{name: "its own Job (Job mode)", sj: queued.Clone().JobName("job").Obj(), at: t0},
		{name: "finished", sj: queued.Clone().Finished(seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, t0).Obj(), at: t0},
		{name: "held by a pod", sj: runningPooledJob(1), at: reportTime},
		{name: "before its retry time", sj: retrying, at: leaseTime.Add(4 * time.Second), wantWait: 6 * time.Second},
		{name: "at its retry time", sj: retrying, at: leaseTime.Add(10 * time.Second), wantOK: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, wait := leasable(tc.sj, tc.at)
			if ok != tc.wantOK || wait != tc.wantWait {
				t.Errorf("leasable = %v, %s; want %v, %s", ok, wait, tc.wantOK, tc.wantWait)
			}
		})
	}
}

func TestSetLeasedAndHolds(t *testing.T) {
	sj := testutil.MakeSeekJob("job", "tenant").Worker("echo").UID("job-uid").Created(t0).Timeout(time.Minute).Input(`{"a":1}`).Obj()
	w := testutil.MakeSeekWorker("echo").Obj()
	pod := testutil.MakePod("pool-pod", "tenant").UID("pod-uid").Obj()
	setLeased(sj, "pool-1", pod, leaseTime)
	want := pooledOutcome{State: seekv1alpha1.JobStateRunning, Attempts: 1, Pool: runningPool()}
	if diff := cmp.Diff(want, outcomeOf(sj)); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ptr.To(metav1.NewTime(leaseTime)), sj.Status.StartTime); diff != "" {
		t.Errorf("startTime (-want +got):\n%s", diff)
	}
	ref := dispatch.AttemptRef{Namespace: "tenant", Name: "job", UID: "job-uid", Attempt: 1}
	wantJob := &dispatch.Job{AttemptRef: ref, Worker: "echo", Input: []byte(`{"a":1}`), TimeoutMillis: 55000, GraceMillis: 30000,
		LogBytes: seekv1alpha1.DefaultRetainedLogBytes}
	if diff := cmp.Diff(wantJob, leaseFor(sj, w, leaseTime.Add(5*time.Second))); diff != "" {
		t.Errorf("leaseFor (-want +got):\n%s", diff)
	}
	other := ref
	other.Attempt = 2
	otherJob := ref
	otherJob.UID = "other"
	finished := sj.DeepCopy()
	finish(finished, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, "done", nil, reportTime)
	for _, tc := range []struct {
		name   string
		sj     *seekv1alpha1.SeekJob
		podUID string
		ref    dispatch.AttemptRef
		want   bool
	}{
		{name: "the holder, its attempt", sj: sj, podUID: "pod-uid", ref: ref, want: true},
		{name: "another pod", sj: sj, podUID: "other-pod", ref: ref},
		{name: "another attempt", sj: sj, podUID: "pod-uid", ref: other},
		{name: "a job of the same name", sj: sj, podUID: "pod-uid", ref: otherJob},
		{name: "finished", sj: finished, podUID: "pod-uid", ref: ref},
	} {
		if got := holds(tc.sj, tc.podUID, tc.ref); got != tc.want {
			t.Errorf("%s: holds = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSetProgress(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(d)) }
	last := &seekv1alpha1.JobProgress{Fraction: "0.25", Message: "a", Attempt: 1, UpdateTime: at(-2 * time.Second)}
	cases := map[string]struct {
		old      *seekv1alpha1.JobProgress
		attempt  int32
		fraction float64
		message  string
		want     *seekv1alpha1.JobProgress
		changed  bool
		wait     time.Duration
	}{
		"first": {attempt: 1, fraction: 0.4256, message: "a",
			want: &seekv1alpha1.JobProgress{Fraction: "0.426", Message: "a", Attempt: 1, UpdateTime: at(0)}, changed: true},
		"unchanged": {old: last, attempt: 1, fraction: 0.25, message: "a", want: last},
		"too soon":  {old: last, attempt: 1, fraction: 0.5, message: "b", want: last, wait: 3 * time.Second},
		"after the interval": {old: &seekv1alpha1.JobProgress{Fraction: "0.25", Attempt: 1, UpdateTime: at(-dispatch.ProgressInterval)}, attempt: 1, fraction: 1,
			want: &seekv1alpha1.JobProgress{Fraction: "1", Attempt: 1, UpdateTime: at(0)}, changed: true},
		"a long message, not UTF-8": {attempt: 2, fraction: 0, message: "\xff" + strings.Repeat("é", 200),
			want: &seekv1alpha1.JobProgress{Fraction: "0", Message: strings.Repeat("é", 126) + "…", Attempt: 2, UpdateTime: at(0)}, changed: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sj := testutil.MakeSeekJob("a", "ns").Obj()
			sj.Status.Progress = tc.old.DeepCopy()
			changed, wait := setProgress(sj, tc.attempt, tc.fraction, tc.message, now)
			if changed != tc.changed || wait != tc.wait {
				t.Errorf("setProgress = %v, %v; want %v, %v", changed, wait, tc.changed, tc.wait)
			}
			if diff := cmp.Diff(tc.want, sj.Status.Progress); diff != "" {
				t.Errorf("status.progress (-want +got):\n%s", diff)
			}
		})
	}
}
