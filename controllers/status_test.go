package controllers

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

var (
	// t0 is when the test SeekJobs are created.
	t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	// jobCreated is when their Jobs are created.
	jobCreated = t0.Add(2 * time.Second)
	// now is when the controller observes them.
	now = t0.Add(time.Minute)
)

func TestParseResult(t *testing.T) {
	cases := []struct {
		name    string
		message string
		want    *seekv1alpha1.JSON
		wantErr string
	}{
		{name: "empty is no result", message: ""},
		{name: "blank is no result", message: " \n\t"},
		{name: "object compacted", message: "{\n  \"a\": [1, 2],\n  \"b\": {\"c\": \"d e\"}\n}\n", want: seekv1alpha1.NewJSON([]byte(`{"a":[1,2],"b":{"c":"d e"}}`))},
		{name: "string", message: ` "done" `, want: seekv1alpha1.NewJSON([]byte(`"done"`))},
		{name: "number", message: `42`, want: seekv1alpha1.NewJSON([]byte(`42`))},
		{name: "null literal", message: `null`, want: seekv1alpha1.NewJSON([]byte(`null`))},
		{
			name:    "plain text",
			message: "hello world\n",
			wantErr: `the worker exited 0 but its result is not valid JSON (11 bytes starting "hello world")`,
		},
		{
			name:    "truncated JSON",
			message: `{"a":`,
			wantErr: `the worker exited 0 but its result is not valid JSON (5 bytes starting "{\"a\":")`,
		},
		{
			name:    "long text is quoted in part",
			message: strings.Repeat("x", 100),
			wantErr: `the worker exited 0 but its result is not valid JSON (100 bytes starting "` + strings.Repeat("x", 61) + `…")`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseResult(tc.message)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("parseResult() error = %v, want %q", err, tc.wantErr)
				}
				if got != nil {
					t.Errorf("parseResult() = %s along with an error", got.Raw)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseResult() error = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseResult() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func terminated(exitCode int32, reason, message string) *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: reason, Message: message, FinishedAt: metav1.NewTime(now)}
}

func TestParseWorkerError(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes
	cases := []struct {
		name string
		term *corev1.ContainerStateTerminated
		want *seekv1alpha1.JobError
	}{
		{
			name: "no termination",
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: "the worker's pod and its exit status are gone"},
		},
		{
			name: "protocol error",
			term: terminated(65, "Error", `{"message":"email is not valid","reason":"InvalidEmail"}`),
			want: &seekv1alpha1.JobError{
				Reason:   "WorkerError",
				Message:  "email is not valid",
				ExitCode: ptr.To[int32](65),
				Details:  seekv1alpha1.NewJSON([]byte(`{"message":"email is not valid","reason":"InvalidEmail"}`)),
			},
		},
		{
			name: "protocol error with surrounding whitespace",
			term: terminated(1, "Error", "\n {\"message\": \"boom\"} \n"),
			want: &seekv1alpha1.JobError{
				Reason:   "WorkerError",
				Message:  "boom",
				ExitCode: ptr.To[int32](1),
				Details:  seekv1alpha1.NewJSON([]byte(`{"message": "boom"}`)),
			},
		},
		{
			name: "JSON without a message is kept as text",
			term: terminated(1, "Error", `{"reason":"NoMessage"}`),
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: `{"reason":"NoMessage"}`, ExitCode: ptr.To[int32](1)},
		},
		{
			name: "JSON that is not an object is kept as text",
			term: terminated(1, "Error", `"oops"`),
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: `"oops"`, ExitCode: ptr.To[int32](1)},
		},
		{
			name: "log tail",
			term: terminated(2, "Error", "Traceback (most recent call last):\n  File \"main.py\"\nValueError: bad\n"),
			want: &seekv1alpha1.JobError{
				Reason:   "WorkerError",
				Message:  "Traceback (most recent call last):\n  File \"main.py\"\nValueError: bad",
				ExitCode: ptr.To[int32](2),
			},
		},
		{
			name: "empty message",
			term: terminated(3, "Error", ""),
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: "the worker exited with code 3 without an error message", ExitCode: ptr.To[int32](3)},
		},
		{
			name: "empty message names an unusual reason",
			term: terminated(137, "OOMKilled", "  "),
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: "the worker exited with code 137 without an error message (OOMKilled)", ExitCode: ptr.To[int32](137)},
		},
		{
			name: "long protocol message truncated, details dropped",
			term: terminated(1, "Error", `{"message":"`+long+`"}`),
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: strings.Repeat("é", 2046) + "…", ExitCode: ptr.To[int32](1)},
		},
		{
			name: "long text truncated",
			term: terminated(1, "Error", long),
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: strings.Repeat("é", 2046) + "…", ExitCode: ptr.To[int32](1)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseWorkerError(seekv1alpha1.JobReasonWorkerError, tc.term)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseWorkerError() mismatch (-want +got):\n%s", diff)
			}
			if len(got.Message) > maxMessageBytes || !utf8.ValidString(got.Message) {
				t.Errorf("parseWorkerError() message of %d bytes is too long or not UTF-8", len(got.Message))
			}
		})
	}
}

func startedCond(jobName string) metav1.Condition {
	return metav1.Condition{
		Type:               seekv1alpha1.JobStarted,
		Status:             metav1.ConditionTrue,
		Reason:             seekv1alpha1.JobReasonJobCreated,
		Message:            "Job " + jobName + " runs the worker",
		ObservedGeneration: 1,
		LastTransitionTime: metav1.NewTime(now),
	}
}

func finishedCond(reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               seekv1alpha1.JobFinished,
		Status:             metav1.ConditionTrue,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: 1,
		LastTransitionTime: metav1.NewTime(now),
	}
}

func TestSetStatusFromJob(t *testing.T) {
	sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Generation(1).Created(t0)
	base := sj.Obj()
	job := testutil.MakeJob("a", "ns").ForSeekJob(base).UID("j1").Created(jobCreated).ActiveDeadlineSeconds(60)
	pod := func(name string) *testutil.PodWrapper {
		return testutil.MakePod(name, "ns").ForSeekJob(base).Created(jobCreated)
	}
	started := metav1.NewTime(jobCreated)
	completed := metav1.NewTime(now)
	ran := &metav1.Duration{Duration: now.Sub(jobCreated)}

	cases := []struct {
		name     string
		sj       *seekv1alpha1.SeekJob
		job      *batchv1.Job
		pods     []corev1.Pod
		lostPods bool
		wantOK   bool
		want     seekv1alpha1.SeekJobStatus
	}{
		{
			name:   "running",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Running(jobCreated).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: &started,
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:   "running, start time kept from an earlier observation",
			sj:     sj.Clone().State(seekv1alpha1.JobStateRunning).StartTime(t0).Obj(),
			job:    job.Clone().Active(1).Obj(),
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: ptr.To(metav1.NewTime(t0)),
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:   "running, Job without creation time starts now",
			sj:     sj.Obj(),
			job:    job.Clone().Created(time.Time{}).Active(1).Obj(),
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: &completed,
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:   "attempts count failed, succeeded and active pods",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(2).Active(1).Obj(),
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 3, StartTime: &started,
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:   "attempts never decrease",
			sj:     sj.Clone().Attempts(4).Obj(),
			job:    job.Clone().FailedCount(1).Active(1).Obj(),
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 4, StartTime: &started,
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:   "worker exited 0 with a result before the Job is Complete: completed when the container ended",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Phase(corev1.PodRunning).Terminated(0, "Completed", `{"ok": true}`, now.Add(-2*time.Second)).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateCompleted, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: ptr.To(metav1.NewTime(now.Add(-2 * time.Second))), Duration: &metav1.Duration{Duration: now.Add(-2 * time.Second).Sub(jobCreated)},
				Result: seekv1alpha1.NewJSON([]byte(`{"ok":true}`)),
				Conditions: []metav1.Condition{startedCond("a"), func() metav1.Condition {
					c := finishedCond("Succeeded", "The worker returned a result")
					c.LastTransitionTime = metav1.NewTime(now.Add(-2 * time.Second))
					return c
				}()},
			},
		},
		{
			name:   "worker exited 0 with an invalid result before the Job is Complete: wait for the Job",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Phase(corev1.PodRunning).Terminated(0, "Completed", `not json`, now).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: &started,
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:   "worker exited non-zero before the Job failed: wait for the Job (it may retry)",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Phase(corev1.PodRunning).Terminated(3, "Error", `{"message": "flaky"}`, now).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: &started,
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:   "complete with a JSON result",
			sj:     sj.Obj(),
			job:    job.Clone().SucceededCount(1).Complete(now).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Succeeded("{\n \"y\": [1, 2]\n}\n", now.Add(-2*time.Second)).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateCompleted, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Result:     seekv1alpha1.NewJSON([]byte(`{"y":[1,2]}`)),
				Conditions: []metav1.Condition{startedCond("a"), finishedCond("Succeeded", "The worker returned a result")},
			},
		},
		{
			name:   "completion time is when the Job finished, not when it was noticed",
			sj:     sj.Obj(),
			job:    job.Clone().SucceededCount(1).Complete(now.Add(-time.Minute)).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Succeeded(`1`, now.Add(-time.Minute)).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateCompleted, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: ptr.To(metav1.NewTime(now.Add(-time.Minute))),
				Duration: &metav1.Duration{Duration: now.Add(-time.Minute).Sub(jobCreated)},
				Result:   seekv1alpha1.NewJSON([]byte(`1`)),
				Conditions: []metav1.Condition{startedCond("a"), func() metav1.Condition {
					c := finishedCond("Succeeded", "The worker returned a result")
					c.LastTransitionTime = metav1.NewTime(now.Add(-time.Minute))
					return c
				}()},
			},
		},
		{
			name:   "failed, but the cache does not show the last failed pod yet",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(2).Failed(batchv1.JobReasonBackoffLimitExceeded, now).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Failed(1, "first", now.Add(-time.Second)).Obj(), *pod("a-2").Running(now).Obj()},
			wantOK: false,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 2,
				StartTime: &started, Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:   "complete without output",
			sj:     sj.Obj(),
			job:    job.Clone().SucceededCount(1).Complete(now).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Succeeded("", now).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateCompleted, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Conditions: []metav1.Condition{startedCond("a"), finishedCond("Succeeded", "The worker returned a result")},
			},
		},
		{
			name: "complete, result read from the succeeded pod only",
			sj:   sj.Obj(),
			job:  job.Clone().FailedCount(1).SucceededCount(1).Complete(now).Obj(),
			pods: []corev1.Pod{
				*pod("a-1").Failed(1, "crash", now.Add(-10*time.Second)).Obj(),
				*pod("a-2").Succeeded(`"ok"`, now.Add(-5*time.Second)).Obj(),
			},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateCompleted, JobName: "a", Attempts: 2,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Result:     seekv1alpha1.NewJSON([]byte(`"ok"`)),
				Conditions: []metav1.Condition{startedCond("a"), finishedCond("Succeeded", "The worker returned a result")},
			},
		},
		{
			name:   "complete with a result that is not JSON",
			sj:     sj.Obj(),
			job:    job.Clone().SucceededCount(1).Complete(now).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Succeeded("all good", now).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{
					Reason:   "InvalidResult",
					Message:  `the worker exited 0 but its result is not valid JSON (8 bytes starting "all good")`,
					ExitCode: ptr.To[int32](0),
				},
				Conditions: []metav1.Condition{
					startedCond("a"),
					finishedCond("InvalidResult", `the worker exited 0 but its result is not valid JSON (8 bytes starting "all good")`),
				},
			},
		},
		{
			name:   "complete but the pod is not seen yet",
			sj:     sj.Obj(),
			job:    job.Clone().SucceededCount(1).Complete(now).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Running(jobCreated).Obj()},
			wantOK: false,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: &started,
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name:     "complete and the pod is gone",
			sj:       sj.Obj(),
			job:      job.Clone().SucceededCount(1).Complete(now).Obj(),
			lostPods: true,
			wantOK:   true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{Reason: "InvalidResult", Message: "The worker succeeded but its pod and result are gone"},
				Conditions: []metav1.Condition{
					startedCond("a"),
					finishedCond("InvalidResult", "The worker succeeded but its pod and result are gone"),
				},
			},
		},
		{
			name:     "deadline exceeded, pods already deleted",
			sj:       sj.Obj(),
			job:      job.Clone().FailedCount(1).Failed(batchv1.JobReasonDeadlineExceeded, now).Obj(),
			lostPods: true,
			wantOK:   true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateTimedOut, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{Reason: "DeadlineExceeded", Message: "The job ran longer than its timeout of 60s"},
				Conditions: []metav1.Condition{
					startedCond("a"),
					finishedCond("DeadlineExceeded", "The job ran longer than its timeout of 60s"),
				},
			},
		},
		{
			name:   "pod failure policy: the worker asked not to be retried",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(1).Failed(batchv1.JobReasonPodFailurePolicy, now).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Failed(65, `{"message":"email is not valid","reason":"InvalidEmail"}`, now).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{
					Reason:   "WorkerError",
					Message:  "email is not valid",
					ExitCode: ptr.To[int32](65),
					Details:  seekv1alpha1.NewJSON([]byte(`{"message":"email is not valid","reason":"InvalidEmail"}`)),
				},
				Conditions: []metav1.Condition{
					startedCond("a"),
					finishedCond("WorkerError", "The worker failed and asked not to be retried: email is not valid"),
				},
			},
		},
		{
			name:   "pod failure policy but the pod is not seen yet",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(1).Failed(batchv1.JobReasonPodFailurePolicy, now).Obj(),
			wantOK: false,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: &started,
				Conditions: []metav1.Condition{startedCond("a")},
			},
		},
		{
			name: "backoff limit exceeded: the last attempt's error",
			sj:   sj.Obj(),
			job:  job.Clone().BackoffLimit(2).FailedCount(3).Failed(batchv1.JobReasonBackoffLimitExceeded, now).Obj(),
			pods: []corev1.Pod{
				*pod("a-1").Failed(1, "first", jobCreated.Add(10*time.Second)).Obj(),
				*pod("a-3").Failed(1, "panic: third\n", jobCreated.Add(30*time.Second)).Obj(),
				*pod("a-2").Failed(1, "second", jobCreated.Add(20*time.Second)).Obj(),
			},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 3,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{Reason: "RetriesExhausted", Message: "panic: third", ExitCode: ptr.To[int32](1)},
				Conditions: []metav1.Condition{
					startedCond("a"),
					finishedCond("RetriesExhausted", "All 3 attempts failed; the last: panic: third"),
				},
			},
		},
		{
			name:   "backoff limit exceeded without a message",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(1).Failed(batchv1.JobReasonBackoffLimitExceeded, now).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Failed(137, "", now).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{Reason: "RetriesExhausted", Message: "the worker exited with code 137 without an error message", ExitCode: ptr.To[int32](137)},
				Conditions: []metav1.Condition{
					startedCond("a"),
					finishedCond("RetriesExhausted", "All 1 attempts failed; the last: the worker exited with code 137 without an error message"),
				},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotOK := setStatusFromJob(tc.sj, tc.job, tc.pods, tc.lostPods, now)
			if gotOK != tc.wantOK {
				t.Errorf("setStatusFromJob() = %v, want %v", gotOK, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, tc.sj.Status); diff != "" {
				t.Errorf("status mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	earlier := metav1.NewTime(t0.Add(time.Second))
	startedEarlier := metav1.Condition{
		Type: seekv1alpha1.JobStarted, Status: metav1.ConditionTrue, Reason: seekv1alpha1.JobReasonJobCreated,
		Message: "Job a runs the worker", ObservedGeneration: 1, LastTransitionTime: earlier,
	}
	cases := []struct {
		name   string
		sj     *seekv1alpha1.SeekJob
		state  seekv1alpha1.JobState
		reason string
		msg    string
		jobErr *seekv1alpha1.JobError
		want   seekv1alpha1.SeekJobStatus
	}{
		{
			name:   "after starting",
			sj:     testutil.MakeSeekJob("a", "ns").Generation(1).State(seekv1alpha1.JobStateRunning).StartTime(t0.Add(1234567 * time.Microsecond)).Condition(startedEarlier).Obj(),
			state:  seekv1alpha1.JobStateCompleted,
			reason: "Succeeded",
			msg:    "The worker returned a result",
			want: seekv1alpha1.SeekJobStatus{
				State:          seekv1alpha1.JobStateCompleted,
				StartTime:      ptr.To(metav1.NewTime(t0.Add(1234567 * time.Microsecond))),
				CompletionTime: ptr.To(metav1.NewTime(now)),
				// 58.765433s rounded to the millisecond.
				Duration:   &metav1.Duration{Duration: 58765 * time.Millisecond},
				Conditions: []metav1.Condition{startedEarlier, finishedCond("Succeeded", "The worker returned a result")},
			},
		},
		{
			name:   "before starting",
			sj:     testutil.MakeSeekJob("a", "ns").Generation(1).Cancel("no longer needed").Obj(),
			state:  seekv1alpha1.JobStateCanceled,
			reason: "Canceled",
			msg:    "The job was canceled: no longer needed",
			jobErr: &seekv1alpha1.JobError{Reason: "Canceled", Message: "The job was canceled: no longer needed"},
			want: seekv1alpha1.SeekJobStatus{
				State:          seekv1alpha1.JobStateCanceled,
				CompletionTime: ptr.To(metav1.NewTime(now)),
				Error:          &seekv1alpha1.JobError{Reason: "Canceled", Message: "The job was canceled: no longer needed"},
				Conditions: []metav1.Condition{
					{
						Type: seekv1alpha1.JobStarted, Status: metav1.ConditionFalse, Reason: seekv1alpha1.JobReasonNeverStarted,
						Message: "The job finished before it started", ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(now),
					},
					finishedCond("Canceled", "The job was canceled: no longer needed"),
				},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			finish(tc.sj, tc.state, tc.reason, tc.msg, tc.jobErr, now)
			if diff := cmp.Diff(tc.want, tc.sj.Status); diff != "" {
				t.Errorf("status mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFail(t *testing.T) {
	sj := testutil.MakeSeekJob("a", "ns").Generation(1).Obj()
	msg := strings.Repeat("ü", 3000)
	fail(sj, seekv1alpha1.JobReasonInvalidInput, msg, now)

	if sj.Status.State != seekv1alpha1.JobStateFailed {
		t.Errorf("state = %q, want Failed", sj.Status.State)
	}
	if sj.Status.Error == nil || sj.Status.Error.Reason != seekv1alpha1.JobReasonInvalidInput {
		t.Fatalf("error = %+v, want reason InvalidInput", sj.Status.Error)
	}
	if got := sj.Status.Error.Message; len(got) > maxMessageBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("error message of %d bytes, want at most %d bytes of valid UTF-8 ending in …", len(got), maxMessageBytes)
	}
	// The condition keeps more of the message: conditions allow 32 KiB.
	for _, c := range sj.Status.Conditions {
		if c.Type == seekv1alpha1.JobFinished && c.Message != msg {
			t.Errorf("Finished condition message of %d bytes, want the full %d", len(c.Message), len(msg))
		}
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{name: "short", s: "abc", n: 10, want: "abc"},
		{name: "exact", s: "abcde", n: 5, want: "abcde"},
		{name: "empty", s: "", n: 3, want: ""},
		{name: "ASCII", s: "abcdefgh", n: 6, want: "abc…"},
		{name: "only the ellipsis fits", s: "abcd", n: 3, want: "…"},
		{name: "two-byte runes cut on a boundary", s: "ééééé", n: 7, want: "éé…"},
		{name: "two-byte rune not split", s: "ééééé", n: 6, want: "é…"},
		{name: "four-byte rune not split", s: "a😀😀", n: 7, want: "a…"},
		{name: "four-byte rune on a boundary", s: "a😀😀", n: 8, want: "a😀…"},
		{name: "three-byte runes", s: "日本語テキスト", n: 10, want: "日本…"},
		{name: "mixed", s: "x😀y", n: 5, want: "x…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := truncate(tc.s, tc.n)
			if got != tc.want {
				t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
			}
			if len(got) > tc.n {
				t.Errorf("truncate(%q, %d) is %d bytes long", tc.s, tc.n, len(got))
			}
			if !utf8.ValidString(got) {
				t.Errorf("truncate(%q, %d) = %q is not valid UTF-8", tc.s, tc.n, got)
			}
		})
	}
}

// TestTruncateAllCuts checks every cut of a string mixing 1- to 4-byte runes.
func TestTruncateAllCuts(t *testing.T) {
	s := "aé日😀bü語🎉"
	for n := len("…"); n <= len(s)+1; n++ {
		got := truncate(s, n)
		if len(got) > n || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q (%d bytes, valid UTF-8: %v)", s, n, got, len(got), utf8.ValidString(got))
		}
		if n < len(s) && !strings.HasPrefix(s, strings.TrimSuffix(got, "…")) {
			t.Errorf("truncate(%q, %d) = %q is not a prefix of the input plus …", s, n, got)
		}
	}
}
