package controllers

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// This file holds the pure functions of a job's start: where its worker container's start stands (the
// Started condition), the start deadline and the run timeout, and what an apiserver refusal of its Job
// means.

const (
	// reasonFailedCreate is the reason of the Job controller's event when it cannot create a pod.
	reasonFailedCreate = "FailedCreate"
	// quotaRetryMin and quotaRetryMax bound the delay between attempts to create a Job a quota refused.
	quotaRetryMin = time.Second
	quotaRetryMax = time.Minute
	// maxReasonBytes is the longest reason copied from the kubelet or scheduler (the limit of
	// status.error.reason).
	maxReasonBytes = 64
)

// conditionReasonPattern is the pattern metav1.Condition requires of a reason.
var conditionReasonPattern = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

// workerStatus returns the status of the pod's worker container, or nil.
func workerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == protocol.ContainerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// workerStartedAt returns when the pod's worker container started, and whether it has: it runs or
// has terminated. A terminated container without a start time counts from its end; so does one the
// runtime could not start, whose start time the kubelet gives as the Unix epoch (1970-01-01), which
// would otherwise time the job out at once, as if it had run for decades.
func workerStartedAt(pod *corev1.Pod) (time.Time, bool) {
	cs := workerStatus(pod)
	if cs == nil {
		return time.Time{}, false
	}
	term := cs.State.Terminated
	if term == nil {
		term = cs.LastTerminationState.Terminated
	}
	switch {
	case cs.State.Running != nil:
		return cs.State.Running.StartedAt.Time, true
	case term != nil && term.StartedAt.Unix() > 0:
		return term.StartedAt.Time, true
	case term != nil:
		return term.FinishedAt.Time, true
	}
	return time.Time{}, false
}

// firstStart returns when the earliest worker container among pods started, and whether one has.
func firstStart(pods []corev1.Pod) (time.Time, bool) {
	var first time.Time
	found := false
	for i := range pods {
		if at, ok := workerStartedAt(&pods[i]); ok && (!found || at.Before(first)) {
			first, found = at, true
		}
	}
	return first, found
}

// podLive reports whether a pod has not ended and is not being deleted.
func podLive(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// pendingPod returns the newest pod that is neither finished nor being deleted and whose worker
// container has not started, or nil.
func pendingPod(pods []corev1.Pod) *corev1.Pod {
	var newest *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if !podLive(p) {
			continue
		}
		if _, ok := workerStartedAt(p); ok {
			continue
		}
		if newest == nil || p.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = p
		}
	}
	return newest
}

// hasLivePod reports whether a pod of the Job exists that has not failed: then the Job controller
// managed to create it, and its events about failed creations are stale.
func hasLivePod(pods []corev1.Pod) bool {
	return slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Status.Phase != corev1.PodFailed })
}

// conditionReason returns r if it can be a condition reason and an error reason, else
// ContainerWaiting.
func conditionReason(r string) string {
	if len(r) > maxReasonBytes || !conditionReasonPattern.MatchString(r) {
		return seekv1alpha1.JobReasonContainerWaiting
	}
	return r
}

// podWaitingCause returns what keeps a pending pod's worker container from starting, as the kubelet
// (the container's waiting reason) or the scheduler (PodScheduled=False) reports it. ok is false
// while nothing is wrong: the pod is being scheduled, or its container created.
func podWaitingCause(pod *corev1.Pod) (reason, message string, ok bool) {
	if cs := workerStatus(pod); cs != nil && cs.State.Waiting != nil {
		switch w := cs.State.Waiting; w.Reason {
		case "", "ContainerCreating", "PodInitializing":
		default:
			msg := w.Message
			if msg == "" {
				msg = "The worker container is waiting: " + w.Reason
			}
			return conditionReason(w.Reason), msg, true
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			msg := c.Message
			if msg == "" {
				msg = "The pod cannot be scheduled: " + c.Reason
			}
			return conditionReason(c.Reason), msg, true
		}
	}
	return "", "", false
}

// podCreationCause classifies the message of the Job controller's FailedCreate event.
func podCreationCause(message string) string {
	lower := strings.ToLower(message)
	switch {
	case strings.Contains(lower, "serviceaccount") && strings.Contains(lower, "not found"):
		return seekv1alpha1.JobReasonServiceAccountNotFound
	case strings.Contains(lower, "runtimeclass") && strings.Contains(lower, "not found"):
		return seekv1alpha1.JobReasonRuntimeClassNotFound
	default:
		return seekv1alpha1.JobReasonPodCreationFailed
	}
}

// latestFailedCreate returns the message of the newest FailedCreate event about job, or "".
func latestFailedCreate(job *batchv1.Job, events []corev1.Event) string {
	var latest *corev1.Event
	for i := range events {
		e := &events[i]
		if e.InvolvedObject.UID != job.UID || e.Reason != reasonFailedCreate {
			continue
		}
		if latest == nil || eventTimeOf(e).After(eventTimeOf(latest)) {
			latest = e
		}
	}
	if latest == nil {
		return ""
	}
	return latest.Message
}

// eventTimeOf is when an event last happened, whichever API wrote it.
func eventTimeOf(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// waitingCause says what the job whose Job exists waits for: the cause keeping its pending pod from
// starting, else why the Job controller cannot create the pod (failedCreate, its latest FailedCreate
// event, when no pod exists), else JobCreated.
func waitingCause(job *batchv1.Job, pods []corev1.Pod, failedCreate string) (reason, message string) {
	if pod := pendingPod(pods); pod != nil {
		if reason, message, ok := podWaitingCause(pod); ok {
			return reason, message
		}
	} else if failedCreate != "" && !hasLivePod(pods) {
		return podCreationCause(failedCreate), "The Job controller cannot create the worker's pod: " + failedCreate
	}
	// A stable message: a reconcile that learns nothing new writes nothing.
	return seekv1alpha1.JobReasonJobCreated, fmt.Sprintf("Job %s was created; its worker container has not started yet", job.Name)
}

// observeStart sets sj's state and Started condition from its Job and the Job's pods: Running from
// the moment a worker container started (or the Job completed, which needs one), else Queued with
// the cause it waits for. Once started, sj stays started: a retry's pod starting does not change it.
func observeStart(sj *seekv1alpha1.SeekJob, job *batchv1.Job, pods []corev1.Pod, failedCreate string, now time.Time) {
	if at, ok := firstStart(pods); ok {
		setStarted(sj, at, now)
		return
	}
	if started(sj) {
		sj.Status.State = seekv1alpha1.JobStateRunning
		return
	}
	if jobCondition(job, batchv1.JobComplete) != nil {
		// Its pods are gone: the Job's own start is the closest known time.
		at := job.CreationTimestamp.Time
		if job.Status.StartTime != nil {
			at = job.Status.StartTime.Time
		}
		setStarted(sj, at, now)
		return
	}
	if jobFinished(job) && meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted) != nil {
		// Its pods are gone or going: keep the cause seen last, which the job fails with.
		return
	}
	reason, message := waitingCause(job, pods, failedCreate)
	setWaiting(sj, reason, message, now)
}

// startFailure is the Finished reason and message of a job whose worker did not start within d, the
// Started reason and message seen last being the cause.
func startFailure(reason, message string, d time.Duration) (string, string) {
	msg := fmt.Sprintf("The worker did not start within %s", d)
	if d <= 0 { // a Job from before start deadlines: only its activeDeadlineSeconds stopped it
		msg = "The worker did not start before its Job's deadline"
	}
	if reason == "" || reason == seekv1alpha1.JobReasonJobCreated {
		return seekv1alpha1.JobReasonStartDeadlineExceeded, msg
	}
	return reason, msg + ": " + message
}

// failStart fails sj, whose worker never started, at its start deadline d.
func failStart(sj *seekv1alpha1.SeekJob, d time.Duration, now time.Time) {
	var reason, message string
	if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c != nil {
		reason, message = c.Reason, c.Message
	}
	reason, message = startFailure(reason, message, d)
	fail(sj, reason, message, now)
}

// timeoutMessage says that a job ran past its timeout.
func timeoutMessage(timeout time.Duration) string {
	return fmt.Sprintf("The job ran longer than its timeout of %s", timeout)
}

// enforceDeadlines ends sj if its Job ran out of time, the Job's status not saying so yet: a worker
// that has not started within the start deadline (counted from the Job's creation for the first
// attempt, from the pod's creation for a retry) fails the job with the cause seen last; one that runs
// longer than the timeout from its first start times it out. It reports whether sj ended (the caller
// deletes the Job), and otherwise when the next deadline falls due (0: none).
func enforceDeadlines(sj *seekv1alpha1.SeekJob, job *batchv1.Job, pods []corev1.Pod, now time.Time) (bool, time.Duration) {
	l := limitsOf(job)
	if started(sj) {
		if sj.Status.StartTime == nil || l.timeout <= 0 {
			return false, 0
		}
		end := sj.Status.StartTime.Add(l.timeout)
		if !now.Before(end) {
			timeOut(sj, l.timeout, now)
			return true, 0
		}
		next := end.Sub(now)
		if pod := pendingPod(pods); pod != nil && l.startDeadline > 0 && !pod.CreationTimestamp.IsZero() {
			deadline := pod.CreationTimestamp.Add(l.startDeadline)
			if !now.Before(deadline) {
				reason, message, _ := podWaitingCause(pod)
				reason, message = startFailure(reason, message, l.startDeadline)
				fail(sj, reason, fmt.Sprintf("Attempt %d: %s", sj.Status.Attempts, message), now)
				return true, 0
			}
			next = min(next, deadline.Sub(now))
		}
		return false, next
	}
	if l.startDeadline <= 0 {
		return false, 0
	}
	created := job.CreationTimestamp.Time
	if created.IsZero() {
		created = now
	}
	deadline := created.Add(l.startDeadline)
	if !now.Before(deadline) {
		failStart(sj, l.startDeadline, now)
		return true, 0
	}
	return false, deadline.Sub(now)
}

// refusal classifies an apiserver error creating a Job. A quota refusal is temporary (the job waits,
// QuotaExceeded); an invalid Job or one an admission policy forbids is final (JobRejected). Anything
// else, such as the operator lacking RBAC permissions or the apiserver being unavailable, is not the
// job's fault: refused is false and the caller retries.
func refusal(err error) (reason, message string, refused bool) {
	if err == nil {
		return "", "", false
	}
	msg := err.Error()
	switch {
	case apierrors.IsInvalid(err):
		return seekv1alpha1.JobReasonJobRejected, "The apiserver refused the Job: " + msg, true
	case !apierrors.IsForbidden(err):
		return "", "", false
	case strings.Contains(msg, "exceeded quota") || strings.Contains(msg, "status unknown for quota"):
		return seekv1alpha1.JobReasonQuotaExceeded, "A ResourceQuota refused the Job; retrying: " + msg, true
	case strings.Contains(msg, "cannot create resource"), apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// RBAC denied the operator itself, or the namespace is going away: not the job's doing.
		return "", "", false
	default:
		return seekv1alpha1.JobReasonJobRejected, "The apiserver refused the Job: " + msg, true
	}
}

// quotaRetryDelay is how long to wait before trying again to create the Job of sj, which a quota
// refused: as long as the job has been waiting (the Started=False condition's age), between
// quotaRetryMin and quotaRetryMax, so the delay doubles from a second up to a minute.
func quotaRetryDelay(sj *seekv1alpha1.SeekJob, now time.Time) time.Duration {
	d := quotaRetryMin
	if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c != nil {
		d = now.Sub(c.LastTransitionTime.Time)
	}
	return min(max(d, quotaRetryMin), quotaRetryMax)
}
