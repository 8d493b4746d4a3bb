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

// failedPod is a failed pod whose worker container ended as term (nil: never ran), with an optional
// memory limit.
func failedPod(term *corev1.ContainerStateTerminated, memoryLimit string) *corev1.Pod {
	p := testutil.MakePod("a-1", "ns").Phase(corev1.PodFailed)
	if memoryLimit != "" {
		p.MemoryLimit(memoryLimit)
	}
	if term != nil {
		p.Terminated(term.ExitCode, term.Reason, term.Message, term.FinishedAt.Time)
	}
	return p.Obj()
}

func TestParseWorkerError(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes
	rejected := failedPod(nil, "")
	rejected.Status.Reason, rejected.Status.Message = "OutOfcpu", "Node didn't have enough resource: cpu, requested: 4000, used: 0, capacity: 2000"
	cases := []struct {
		name string
		term *corev1.ContainerStateTerminated
		// pod, when set, is the pod instead of one built from term.
		pod         *corev1.Pod
		memoryLimit string
		want        *seekv1alpha1.JobError
	}{
		{
			name: "no termination",
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: "the worker's pod and its exit status are gone"},
		},
		{
			name: "pod rejected by the kubelet before the worker ran",
			pod:  rejected,
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: "the pod failed before the worker ran: OutOfcpu: Node didn't have enough resource: cpu, requested: 4000, used: 0, capacity: 2000"},
		},
		{
			name:        "OOM killed: the limit named, the log tail kept in details",
			term:        terminated(137, "OOMKilled", "allocating 300 MiB\nstill allocating\n"),
			memoryLimit: "256Mi",
			want: &seekv1alpha1.JobError{
				Reason:   "WorkerError",
				Message:  "The worker was OOMKilled (memory limit 256Mi)",
				ExitCode: ptr.To[int32](137),
				Details:  seekv1alpha1.NewJSON([]byte(`{"log_tail":"allocating 300 MiB\nstill allocating"}`)),
			},
		},
		{
			name: "OOM killed without a limit or a log",
			term: terminated(137, "OOMKilled", ""),
			want: &seekv1alpha1.JobError{
				Reason:   "WorkerError",
				Message:  "The worker was OOMKilled (no memory limit: the node ran out of memory)",
				ExitCode: ptr.To[int32](137),
			},
		},
		{
			name:        "OOM killed with a long log: the tail is bounded",
			term:        terminated(137, "OOMKilled", long),
			memoryLimit: "1G",
			want: &seekv1alpha1.JobError{
				Reason:   "WorkerError",
				Message:  "The worker was OOMKilled (memory limit 1G)",
				ExitCode: ptr.To[int32](137),
				Details:  seekv1alpha1.NewJSON([]byte(`{"log_tail":"` + strings.Repeat("é", 2046) + `…"}`)),
			},
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
			term: terminated(128, "StartError", "  "),
			want: &seekv1alpha1.JobError{Reason: "WorkerError", Message: "the worker exited with code 128 without an error message (StartError)", ExitCode: ptr.To[int32](128)},
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
			pod := tc.pod
			if pod == nil && tc.term != nil {
				pod = failedPod(tc.term, tc.memoryLimit)
			}
			got := parseWorkerError(seekv1alpha1.JobReasonWorkerError, pod)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseWorkerError() mismatch (-want +got):\n%s", diff)
			}
			if len(got.Message) > maxMessageBytes || !utf8.ValidString(got.Message) {
				t.Errorf("parseWorkerError() message of %d bytes is too long or not UTF-8", len(got.Message))
			}
		})
	}
}

func startedCond() metav1.Condition {
	return metav1.Condition{
		Type:               seekv1alpha1.JobStarted,
		Status:             metav1.ConditionTrue,
		Reason:             seekv1alpha1.JobReasonWorkerStarted,
		Message:            "The worker container started",
		ObservedGeneration: 1,
		LastTransitionTime: metav1.NewTime(now),
	}
}

func waitingCond(reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               seekv1alpha1.JobStarted,
		Status:             metav1.ConditionFalse,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: 1,
		LastTransitionTime: metav1.NewTime(now),
	}
}

// jobCreatedCond is the Started condition of a job whose Job a exists and has no trouble starting.
var jobCreatedCond = waitingCond(seekv1alpha1.JobReasonJobCreated, "Job a was created; its worker container has not started yet")

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
		name string
		sj   *seekv1alpha1.SeekJob
		job  *batchv1.Job
		pods []corev1.Pod
		// failedCreate is the Job controller's latest FailedCreate message.
		failedCreate string
		lostPods     bool
		wantOK       bool
		want         seekv1alpha1.SeekJobStatus
	}{
		{
			name:   "running",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Running(jobCreated).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: &started,
				Conditions: []metav1.Condition{startedCond()},
			},
		},
		{
			name:   "started earlier, pods not seen: still running, start time kept",
			sj:     sj.Clone().State(seekv1alpha1.JobStateRunning).StartTime(t0).Condition(startedCond()).Obj(),
			job:    job.Clone().Active(1).Obj(),
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 1, StartTime: ptr.To(metav1.NewTime(t0)),
				Conditions: []metav1.Condition{startedCond()},
			},
		},
		{
			name:   "started earlier, a retry's pod pending: still running",
			sj:     sj.Clone().State(seekv1alpha1.JobStateRunning).StartTime(t0).Condition(startedCond()).Obj(),
			job:    job.Clone().FailedCount(1).Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-2").Waiting("ImagePullBackOff", "Back-off pulling image").Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 2, StartTime: ptr.To(metav1.NewTime(t0)),
				Conditions: []metav1.Condition{startedCond()},
			},
		},
		{
			name:   "Job created, no pod yet: queued",
			sj:     sj.Obj(),
			job:    job.Clone().Obj(),
			wantOK: true,
			want:   seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1, Conditions: []metav1.Condition{jobCreatedCond}},
		},
		{
			name:   "pod being created: queued, nothing wrong",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Condition(corev1.PodScheduled, corev1.ConditionTrue, "").Waiting("ContainerCreating", "").Obj()},
			wantOK: true,
			want:   seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1, Conditions: []metav1.Condition{jobCreatedCond}},
		},
		{
			name:   "image pull back-off: queued with the kubelet's reason",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Waiting("ImagePullBackOff", `Back-off pulling image "example.com/nope:v1"`).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1,
				Conditions: []metav1.Condition{waitingCond("ImagePullBackOff", `Back-off pulling image "example.com/nope:v1"`)}},
		},
		{
			name:   "missing Secret: queued with CreateContainerConfigError",
			sj:     sj.Clone().State(seekv1alpha1.JobStateQueued).Condition(jobCreatedCond).Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Waiting("CreateContainerConfigError", `secret "creds" not found`).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1,
				Conditions: []metav1.Condition{waitingCond("CreateContainerConfigError", `secret "creds" not found`)}},
		},
		{
			name:   "waiting reason without a message",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Waiting("ErrImagePull", "").Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1,
				Conditions: []metav1.Condition{waitingCond("ErrImagePull", "The worker container is waiting: ErrImagePull")}},
		},
		{
			name:   "waiting reason that cannot be a condition reason",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Waiting("Weird reason!", "odd").Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1,
				Conditions: []metav1.Condition{waitingCond("ContainerWaiting", "odd")}},
		},
		{
			name:   "unschedulable: queued with the scheduler's message",
			sj:     sj.Obj(),
			job:    job.Clone().Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-1").Unschedulable("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.").Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1,
				Conditions: []metav1.Condition{waitingCond("Unschedulable", "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.")}},
		},
		{
			name:         "no pod: the Job controller cannot create it, the ServiceAccount is missing",
			sj:           sj.Obj(),
			job:          job.Clone().Obj(),
			failedCreate: `Error creating: pods "a-x7k2p" is forbidden: error looking up service account ns/runner: serviceaccount "runner" not found`,
			wantOK:       true,
			want: seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1,
				Conditions: []metav1.Condition{waitingCond("ServiceAccountNotFound",
					`The Job controller cannot create the worker's pod: Error creating: pods "a-x7k2p" is forbidden: error looking up service account ns/runner: serviceaccount "runner" not found`)}},
		},
		{
			name:         "a pod exists: a failure to create one is stale",
			sj:           sj.Obj(),
			job:          job.Clone().Active(1).Obj(),
			pods:         []corev1.Pod{*pod("a-1").Obj()},
			failedCreate: `Error creating: pods "a-x7k2p" is forbidden: pod rejected: RuntimeClass "gvisor" not found`,
			wantOK:       true,
			want:         seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1, Conditions: []metav1.Condition{jobCreatedCond}},
		},
		{
			name:   "attempts count failed, succeeded and active pods",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(2).Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-3").Running(now).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 3, StartTime: &completed,
				Conditions: []metav1.Condition{startedCond()},
			},
		},
		{
			name:   "attempts never decrease",
			sj:     sj.Clone().Attempts(4).Obj(),
			job:    job.Clone().FailedCount(1).Active(1).Obj(),
			wantOK: true,
			want:   seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 4, Conditions: []metav1.Condition{jobCreatedCond}},
		},
		{
			name:   "start time is the earliest container start",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(1).Active(1).Obj(),
			pods:   []corev1.Pod{*pod("a-2").Running(now).Obj(), *pod("a-1").Failed(1, "boom", now.Add(-time.Second)).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateRunning, JobName: "a", Attempts: 2, StartTime: &started,
				Conditions: []metav1.Condition{startedCond()},
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
				Conditions: []metav1.Condition{startedCond(), func() metav1.Condition {
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
				Conditions: []metav1.Condition{startedCond()},
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
				Conditions: []metav1.Condition{startedCond()},
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
				Conditions: []metav1.Condition{startedCond(), finishedCond("Succeeded", "The worker returned a result")},
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
				Conditions: []metav1.Condition{startedCond(), func() metav1.Condition {
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
				StartTime: &started, Conditions: []metav1.Condition{startedCond()},
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
				Conditions: []metav1.Condition{startedCond(), finishedCond("Succeeded", "The worker returned a result")},
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
				Conditions: []metav1.Condition{startedCond(), finishedCond("Succeeded", "The worker returned a result")},
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
					startedCond(),
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
				Conditions: []metav1.Condition{startedCond()},
			},
		},
		{
			name:     "complete and the pod is gone: started when the Job did",
			sj:       sj.Obj(),
			job:      job.Clone().StartTime(jobCreated).SucceededCount(1).Complete(now).Obj(),
			lostPods: true,
			wantOK:   true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{Reason: "InvalidResult", Message: "The worker succeeded but its pod and result are gone"},
				Conditions: []metav1.Condition{
					startedCond(),
					finishedCond("InvalidResult", "The worker succeeded but its pod and result are gone"),
				},
			},
		},
		{
			name:     "deadline exceeded, pods already deleted",
			sj:       sj.Clone().StartTime(jobCreated).Condition(startedCond()).Obj(),
			job:      job.Clone().Annotation(seekv1alpha1.AnnotationTimeout, "30s").Annotation(seekv1alpha1.AnnotationStartDeadline, "30s").FailedCount(1).Failed(batchv1.JobReasonDeadlineExceeded, now).Obj(),
			lostPods: true,
			wantOK:   true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateTimedOut, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{Reason: "DeadlineExceeded", Message: "The job ran longer than its timeout of 30s"},
				Conditions: []metav1.Condition{
					startedCond(),
					finishedCond("DeadlineExceeded", "The job ran longer than its timeout of 30s"),
				},
			},
		},
		{
			name:     "deadline exceeded on a Job from before start deadlines: its activeDeadlineSeconds is the timeout",
			sj:       sj.Clone().StartTime(jobCreated).Condition(startedCond()).Obj(),
			job:      job.Clone().FailedCount(1).Failed(batchv1.JobReasonDeadlineExceeded, now).Obj(),
			lostPods: true,
			wantOK:   true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateTimedOut, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{Reason: "DeadlineExceeded", Message: "The job ran longer than its timeout of 1m0s"},
				Conditions: []metav1.Condition{
					startedCond(),
					finishedCond("DeadlineExceeded", "The job ran longer than its timeout of 1m0s"),
				},
			},
		},
		{
			name:     "the Job's backstop deadline passed before the worker started: failed with the cause seen last",
			sj:       sj.Clone().State(seekv1alpha1.JobStateQueued).Condition(waitingCond("Unschedulable", "0/1 nodes are available")).Obj(),
			job:      job.Clone().Annotation(seekv1alpha1.AnnotationTimeout, "30s").Annotation(seekv1alpha1.AnnotationStartDeadline, "20s").FailedCount(1).Failed(batchv1.JobReasonDeadlineExceeded, now).Obj(),
			lostPods: true,
			wantOK:   true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 1, CompletionTime: &completed,
				Error: &seekv1alpha1.JobError{Reason: "Unschedulable", Message: "The worker did not start within 20s: 0/1 nodes are available"},
				Conditions: []metav1.Condition{
					waitingCond("NeverStarted", "The job finished before it started"),
					finishedCond("Unschedulable", "The worker did not start within 20s: 0/1 nodes are available"),
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
					startedCond(),
					finishedCond("WorkerError", "The worker failed and asked not to be retried: email is not valid"),
				},
			},
		},
		{
			name:   "pod failure policy but the pod is not seen yet",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(1).Failed(batchv1.JobReasonPodFailurePolicy, now).Obj(),
			wantOK: false,
			want:   seekv1alpha1.SeekJobStatus{State: seekv1alpha1.JobStateQueued, JobName: "a", Attempts: 1, Conditions: []metav1.Condition{jobCreatedCond}},
		},
		{
			name:   "OOM killed on the last attempt",
			sj:     sj.Obj(),
			job:    job.Clone().FailedCount(1).Failed(batchv1.JobReasonBackoffLimitExceeded, now).Obj(),
			pods:   []corev1.Pod{*pod("a-1").MemoryLimit("64Mi").Phase(corev1.PodFailed).Terminated(137, "OOMKilled", "loading model\n", now).Obj()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 1,
				StartTime: &started, CompletionTime: &completed, Duration: ran,
				Error: &seekv1alpha1.JobError{Reason: "RetriesExhausted", Message: "The worker was OOMKilled (memory limit 64Mi)",
					ExitCode: ptr.To[int32](137), Details: seekv1alpha1.NewJSON([]byte(`{"log_tail":"loading model"}`))},
				Conditions: []metav1.Condition{
					startedCond(),
					finishedCond("RetriesExhausted", "All 1 attempts failed; the last: The worker was OOMKilled (memory limit 64Mi)"),
				},
			},
		},
		{
			name: "every attempt rejected by the kubelet: never started",
			sj:   sj.Obj(),
			job:  job.Clone().FailedCount(1).Failed(batchv1.JobReasonBackoffLimitExceeded, now).Obj(),
			pods: []corev1.Pod{func() corev1.Pod {
				p := pod("a-1").Phase(corev1.PodFailed).Obj()
				p.Status.Reason, p.Status.Message = "NodeAffinity", "Pod Predicate NodeAffinity failed"
				return *p
			}()},
			wantOK: true,
			want: seekv1alpha1.SeekJobStatus{
				State: seekv1alpha1.JobStateFailed, JobName: "a", Attempts: 1, CompletionTime: &completed,
				Error: &seekv1alpha1.JobError{Reason: "RetriesExhausted", Message: "the pod failed before the worker ran: NodeAffinity: Pod Predicate NodeAffinity failed"},
				Conditions: []metav1.Condition{
					waitingCond("NeverStarted", "The job finished before it started"),
					finishedCond("RetriesExhausted", "All 1 attempts failed; the last: the pod failed before the worker ran: NodeAffinity: Pod Predicate NodeAffinity failed"),
				},
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
					startedCond(),
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
					startedCond(),
					finishedCond("RetriesExhausted", "All 1 attempts failed; the last: the worker exited with code 137 without an error message"),
				},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotOK := setStatusFromJob(tc.sj, tc.job, tc.pods, tc.failedCreate, tc.lostPods, now)
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
		Type: seekv1alpha1.JobStarted, Status: metav1.ConditionTrue, Reason: seekv1alpha1.JobReasonWorkerStarted,
		Message: "The worker container started", ObservedGeneration: 1, LastTransitionTime: earlier,
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
