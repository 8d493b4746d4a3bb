package controllers

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestEnforceDeadlines(t *testing.T) {
	sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Generation(1).Created(t0)
	base := sj.Obj()
	// The Job was created at jobCreated with a 30s start deadline and a 1m timeout.
	job := testutil.MakeJob("a", "ns").ForSeekJob(base).UID("j1").Created(jobCreated).ActiveDeadlineSeconds(90).
		Annotation(seekv1alpha1.AnnotationTimeout, "1m0s").Annotation(seekv1alpha1.AnnotationStartDeadline, "30s")
	pod := func(name string, created time.Time) *testutil.PodWrapper {
		return testutil.MakePod(name, "ns").ForSeekJob(base).Created(created)
	}
	queued := func(reason, message string) *testutil.SeekJobWrapper {
		return sj.Clone().State(seekv1alpha1.JobStateQueued).JobName("a").Attempts(1).Condition(waitingCond(reason, message))
	}
	running := func(startedAt time.Time) *testutil.SeekJobWrapper {
		return sj.Clone().State(seekv1alpha1.JobStateRunning).JobName("a").Attempts(1).StartTime(startedAt).Condition(startedCond())
	}
	at := func(d time.Duration) time.Time { return jobCreated.Add(d) }

	cases := []struct {
		name        string
		sj          *seekv1alpha1.SeekJob
		job         *batchv1.Job
		pods        []corev1.Pod
		now         time.Time
		wantExpired bool
		wantNext    time.Duration
		// wantState, wantReason and wantMessage describe sj after an expiry.
		wantState   seekv1alpha1.JobState
		wantReason  string
		wantMessage string
	}{
		{
			name:     "starting, within the start deadline: due when it passes",
			sj:       queued(seekv1alpha1.JobReasonJobCreated, "").Obj(),
			job:      job.Obj(),
			now:      at(10 * time.Second),
			wantNext: 20 * time.Second,
		},
		{
			name:        "start deadline passed with a cause: failed with it",
			sj:          queued("ImagePullBackOff", `Back-off pulling image "example.com/nope:v1"`).Obj(),
			job:         job.Obj(),
			now:         at(30 * time.Second),
			wantExpired: true,
			wantState:   seekv1alpha1.JobStateFailed,
			wantReason:  "ImagePullBackOff",
			wantMessage: `The worker did not start within 30s: Back-off pulling image "example.com/nope:v1"`,
		},
		{
			name:        "start deadline passed without a known cause",
			sj:          queued(seekv1alpha1.JobReasonJobCreated, "Job a was created; its worker container has not started yet").Obj(),
			job:         job.Obj(),
			now:         at(time.Minute),
			wantExpired: true,
			wantState:   seekv1alpha1.JobStateFailed,
			wantReason:  "StartDeadlineExceeded",
			wantMessage: "The worker did not start within 30s",
		},
		{
			name:     "Job from before start deadlines: nothing to enforce while starting",
			sj:       queued(seekv1alpha1.JobReasonJobCreated, "").Obj(),
			job:      testutil.MakeJob("a", "ns").Created(jobCreated).ActiveDeadlineSeconds(60).Obj(),
			now:      at(time.Hour),
			wantNext: 0,
		},
		{
			name:     "running: the timeout counts from the container's start, not the Job's creation",
			sj:       running(at(25 * time.Second)).Obj(),
			job:      job.Obj(),
			pods:     []corev1.Pod{*pod("a-1", jobCreated).Running(at(25 * time.Second)).Obj()},
			now:      at(70 * time.Second),
			wantNext: 15 * time.Second,
		},
		{
			name:        "running past the timeout: timed out",
			sj:          running(at(25 * time.Second)).Obj(),
			job:         job.Obj(),
			pods:        []corev1.Pod{*pod("a-1", jobCreated).Running(at(25 * time.Second)).Obj()},
			now:         at(85 * time.Second),
			wantExpired: true,
			wantState:   seekv1alpha1.JobStateTimedOut,
			wantReason:  "DeadlineExceeded",
			wantMessage: "The job ran longer than its timeout of 1m0s",
		},
		{
			name: "a retry's pod within its start deadline: due at the earlier of both deadlines",
			sj:   running(at(time.Second)).Obj(),
			job:  job.Obj(),
			pods: []corev1.Pod{
				*pod("a-1", jobCreated).Failed(1, "boom", at(10*time.Second)).Obj(),
				*pod("a-2", at(20*time.Second)).Waiting("ImagePullBackOff", "Back-off pulling image").Obj(),
			},
			now:      at(40 * time.Second),
			wantNext: 10 * time.Second,
		},
		{
			name: "a retry's pod past its start deadline: failed with its cause",
			sj:   running(at(time.Second)).Attempts(2).Obj(),
			job:  job.Obj(),
			pods: []corev1.Pod{
				*pod("a-1", jobCreated).Failed(1, "boom", at(10*time.Second)).Obj(),
				*pod("a-2", at(20*time.Second)).Waiting("ImagePullBackOff", "Back-off pulling image").Obj(),
			},
			now:         at(50 * time.Second),
			wantExpired: true,
			wantState:   seekv1alpha1.JobStateFailed,
			wantReason:  "ImagePullBackOff",
			wantMessage: "Attempt 2: The worker did not start within 30s: Back-off pulling image",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expired, next := enforceDeadlines(tc.sj, tc.job, tc.pods, tc.now)
			if expired != tc.wantExpired || next != tc.wantNext {
				t.Fatalf("enforceDeadlines() = %v, %s; want %v, %s", expired, next, tc.wantExpired, tc.wantNext)
			}
			if !expired {
				return
			}
			st := tc.sj.Status
			if st.State != tc.wantState || st.Error == nil || st.Error.Reason != tc.wantReason || st.Error.Message != tc.wantMessage {
				t.Errorf("status = %s, error %+v; want %s, %s: %q", st.State, st.Error, tc.wantState, tc.wantReason, tc.wantMessage)
			}
			if !st.CompletionTime.Time.Equal(tc.now) {
				t.Errorf("completionTime = %v, want %v", st.CompletionTime, tc.now)
			}
		})
	}
}

func TestWaitingCausePodCreation(t *testing.T) {
	job := testutil.MakeJob("a", "ns").UID("j1").Obj()
	cases := []struct {
		message string
		want    string
	}{
		{`Error creating: pods "a-x7k2p" is forbidden: error looking up service account ns/runner: serviceaccount "runner" not found`, "ServiceAccountNotFound"},
		{`Error creating: pods "a-x7k2p" is forbidden: pod rejected: RuntimeClass "gvisor" not found`, "RuntimeClassNotFound"},
		{`Error creating: pods "a-x7k2p" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=0, limited: pods=0`, "PodCreationFailed"},
		{`Error creating: pods "a-x7k2p" is forbidden: violates PodSecurity "restricted:latest": ...`, "PodCreationFailed"},
	}
	for _, tc := range cases {
		reason, message := waitingCause(job, nil, tc.message)
		if reason != tc.want || message != "The Job controller cannot create the worker's pod: "+tc.message {
			t.Errorf("waitingCause(%q) = %s, %q; want %s", tc.message, reason, message, tc.want)
		}
	}
}

func TestLatestFailedCreate(t *testing.T) {
	job := testutil.MakeJob("a", "ns").UID("j1").Obj()
	ev := func(uid types.UID, reason, message string, last time.Time) corev1.Event {
		return corev1.Event{
			InvolvedObject: corev1.ObjectReference{Kind: "Job", Namespace: "ns", Name: "a", UID: uid},
			Reason:         reason, Message: message, LastTimestamp: metav1.NewTime(last),
		}
	}
	cases := []struct {
		name   string
		events []corev1.Event
		want   string
	}{
		{name: "none"},
		{
			name: "the newest of this Job's FailedCreate events",
			events: []corev1.Event{
				ev("j1", "FailedCreate", "old", t0),
				ev("j1", "FailedCreate", "new", t0.Add(time.Minute)),
				ev("j1", "SuccessfulCreate", "Created pod: a-x7k2p", t0.Add(2*time.Minute)),
				ev("j0", "FailedCreate", "a previous Job of the same name", t0.Add(3*time.Minute)),
			},
			want: "new",
		},
		{
			name: "an events.k8s.io event: its series' last time counts",
			events: []corev1.Event{
				ev("j1", "FailedCreate", "recorded once", t0.Add(time.Minute)),
				func() corev1.Event {
					e := ev("j1", "FailedCreate", "in a series", time.Time{})
					e.EventTime = metav1.NewMicroTime(t0)
					e.Series = &corev1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(t0.Add(2 * time.Minute))}
					return e
				}(),
			},
			want: "in a series",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := latestFailedCreate(job, tc.events); got != tc.want {
				t.Errorf("latestFailedCreate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRefusal(t *testing.T) {
	jobs := schema.GroupResource{Group: "batch", Resource: "jobs"}
	terminating := apierrors.NewForbidden(jobs, "a", errors.New("unable to create new content in namespace ns because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
	cases := []struct {
		name        string
		err         error
		wantReason  string
		wantRefused bool
	}{
		{name: "no error"},
		{
			name:        "invalid",
			err:         apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "a", field.ErrorList{field.Invalid(field.NewPath("spec", "template"), "x", "bad")}),
			wantReason:  "JobRejected",
			wantRefused: true,
		},
		{
			name:        "forbidden by an admission policy",
			err:         apierrors.NewForbidden(jobs, "a", errors.New(`ValidatingAdmissionPolicy 'no-jobs' with binding 'no-jobs' denied request: nope`)),
			wantReason:  "JobRejected",
			wantRefused: true,
		},
		{
			name:        "exceeded quota: temporary",
			err:         apierrors.NewForbidden(jobs, "a", errors.New("exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=1, limited: count/jobs.batch=1")),
			wantReason:  "QuotaExceeded",
			wantRefused: true,
		},
		{
			name:        "quota not computed yet: temporary",
			err:         apierrors.NewForbidden(jobs, "a", errors.New("status unknown for quota: jobs, resource: count/jobs.batch")),
			wantReason:  "QuotaExceeded",
			wantRefused: true,
		},
		{
			name: "RBAC denies the operator: not the job's fault",
			err:  apierrors.NewForbidden(jobs, "a", errors.New(`User "system:serviceaccount:seek-system:seek" cannot create resource "jobs" in API group "batch" in the namespace "ns"`)),
		},
		{name: "namespace terminating", err: terminating},
		{name: "apiserver unavailable", err: apierrors.NewServiceUnavailable("try later")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg, refused := refusal(tc.err)
			if reason != tc.wantReason || refused != tc.wantRefused {
				t.Errorf("refusal() = %q, %v; want %q, %v", reason, refused, tc.wantReason, tc.wantRefused)
			}
			if refused && msg == "" {
				t.Error("refusal() gave no message")
			}
		})
	}
}

func TestQuotaRetryDelay(t *testing.T) {
	cases := []struct {
		name    string
		waiting time.Duration // age of the Started=False condition; <0 for none
		want    time.Duration
	}{
		{name: "no condition", waiting: -1, want: time.Second},
		{name: "just refused", waiting: 0, want: time.Second},
		{name: "doubles with the wait", waiting: 8 * time.Second, want: 8 * time.Second},
		{name: "capped at a minute", waiting: time.Hour, want: time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sj := testutil.MakeSeekJob("a", "ns").Obj()
			if tc.waiting >= 0 {
				c := waitingCond(seekv1alpha1.JobReasonQuotaExceeded, "exceeded quota")
				c.LastTransitionTime = metav1.NewTime(now.Add(-tc.waiting))
				sj.Status.Conditions = append(sj.Status.Conditions, c)
			}
			if got := quotaRetryDelay(sj, now); got != tc.want {
				t.Errorf("quotaRetryDelay() = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestWorkerStartedAt(t *testing.T) {
	started := t0.Add(5 * time.Second)
	cases := []struct {
		name   string
		pod    *corev1.Pod
		wantAt time.Time
		wantOK bool
	}{
		{name: "pending", pod: testutil.MakePod("a-1", "ns").Obj()},
		{name: "waiting", pod: testutil.MakePod("a-1", "ns").Waiting("ErrImagePull", "").Obj()},
		{name: "running", pod: testutil.MakePod("a-1", "ns").Running(started).Obj(), wantAt: started, wantOK: true},
		{name: "terminated", pod: testutil.MakePod("a-1", "ns").Created(started).Succeeded(`1`, now).Obj(), wantAt: started, wantOK: true},
		{
			name: "terminated without a start time: from its end",
			pod: func() *corev1.Pod {
				p := testutil.MakePod("a-1", "ns").Terminated(128, "StartError", "exec: not found", now).Obj()
				p.Status.ContainerStatuses[0].State.Terminated.StartedAt = metav1.Time{}
				return p
			}(),
			wantAt: now, wantOK: true,
		},
		{
			// Seen in a chaos run: "failed to create containerd task", started at the epoch.
			name: "could not start, started at the Unix epoch: from its end",
			pod: func() *corev1.Pod {
				p := testutil.MakePod("a-1", "ns").Terminated(128, "StartError", "failed to create containerd task", now).Obj()
				p.Status.ContainerStatuses[0].State.Terminated.StartedAt = metav1.NewTime(time.Unix(0, 0))
				return p
			}(),
			wantAt: now, wantOK: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at, ok := workerStartedAt(tc.pod)
			if ok != tc.wantOK || !at.Equal(tc.wantAt) {
				t.Errorf("workerStartedAt() = %v, %v; want %v, %v", at, ok, tc.wantAt, tc.wantOK)
			}
		})
	}
}

// TestObserveStartWrites checks that a job starting without trouble changes its status only when it
// is first seen and when its container starts: pods being created or scheduled cost no write.
func TestObserveStartWrites(t *testing.T) {
	base := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Generation(1).Obj()
	job := testutil.MakeJob("a", "ns").ForSeekJob(base).UID("j1").Created(jobCreated).Obj()
	pod := testutil.MakePod("a-1", "ns").ForSeekJob(base).Created(jobCreated)
	steps := []struct {
		pods      []corev1.Pod
		wantState seekv1alpha1.JobState
		wantWrite bool
	}{
		{pods: nil, wantState: seekv1alpha1.JobStateQueued, wantWrite: true},
		{pods: []corev1.Pod{*pod.Obj()}, wantState: seekv1alpha1.JobStateQueued},
		{pods: []corev1.Pod{*pod.Clone().Condition(corev1.PodScheduled, corev1.ConditionTrue, "").Waiting("ContainerCreating", "").Obj()}, wantState: seekv1alpha1.JobStateQueued},
		{pods: []corev1.Pod{*pod.Clone().Running(jobCreated.Add(3 * time.Second)).Obj()}, wantState: seekv1alpha1.JobStateRunning, wantWrite: true},
		{pods: []corev1.Pod{*pod.Clone().Running(jobCreated.Add(3 * time.Second)).Obj()}, wantState: seekv1alpha1.JobStateRunning},
	}
	sj := base.DeepCopy()
	for i, step := range steps {
		before := sj.Status.DeepCopy()
		setStatusFromJob(sj, job, step.pods, "", false, now.Add(time.Duration(i)*time.Second))
		if sj.Status.State != step.wantState {
			t.Errorf("step %d: state %s, want %s", i, sj.Status.State, step.wantState)
		}
		if wrote := !cmp.Equal(*before, sj.Status); wrote != step.wantWrite {
			t.Errorf("step %d: status changed = %v, want %v:\n%s", i, wrote, step.wantWrite, cmp.Diff(*before, sj.Status))
		}
	}
	if got := sj.Status.StartTime; got == nil || !got.Time.Equal(jobCreated.Add(3*time.Second)) {
		t.Errorf("startTime = %v, want the container's start", got)
	}
}

func TestStartTrouble(t *testing.T) {
	job := func(jobName, reason string) *seekv1alpha1.SeekJob {
		w := testutil.MakeSeekJob("a", "ns").State(seekv1alpha1.JobStateQueued).JobName(jobName)
		if reason != "" {
			w.Condition(waitingCond(reason, reason+" message"))
		}
		return w.Obj()
	}
	cases := []struct {
		name          string
		before, after *seekv1alpha1.SeekJob
		want          string
	}{
		{name: "waiting for capacity is no trouble", before: job("", ""), after: job("", "WaitingForCapacity")},
		{name: "Job created is no trouble", before: job("", "WaitingForCapacity"), after: job("a", "JobCreated")},
		{name: "quota refusal", before: job("", "WaitingForCapacity"), after: job("", "QuotaExceeded"), want: "QuotaExceeded"},
		{name: "image pull failure", before: job("a", "JobCreated"), after: job("a", "ErrImagePull"), want: "ErrImagePull"},
		{name: "first seen failing to pull", before: job("", ""), after: job("a", "ImagePullBackOff"), want: "ImagePullBackOff"},
		{name: "one cause to another is not new trouble", before: job("a", "ErrImagePull"), after: job("a", "ImagePullBackOff")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg, ok := startTrouble(tc.before, tc.after)
			if reason != tc.want || ok != (tc.want != "") || (ok && msg != tc.want+" message") {
				t.Errorf("startTrouble() = %q, %q, %v; want %q", reason, msg, ok, tc.want)
			}
		})
	}
}
