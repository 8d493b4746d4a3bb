package controllers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

const (
	// maxMessageBytes bounds error messages copied into status (the API's limit).
	maxMessageBytes = 4096
	// maxEventNoteBytes is the apiserver's limit on an event's note.
	maxEventNoteBytes = 1024
	// maxLogTailBytes bounds the log tail kept in the error details of an OOM-killed worker.
	maxLogTailBytes = 4096
	// reasonOOMKilled is the reason of a container the kernel killed for exceeding its memory limit.
	reasonOOMKilled = "OOMKilled"
)

// setCondition sets a condition with the injected clock's time as its transition time.
func setCondition(st *seekv1alpha1.SeekJobStatus, generation int64, typ string, status metav1.ConditionStatus, reason, message string, now time.Time) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            truncate(message, 32768),
		ObservedGeneration: generation,
		LastTransitionTime: metav1.NewTime(now),
	})
}

// setWaiting records why a job has not started: it stays Queued.
func setWaiting(sj *seekv1alpha1.SeekJob, reason, message string, now time.Time) {
	sj.Status.State = seekv1alpha1.JobStateQueued
	setCondition(&sj.Status, sj.Generation, seekv1alpha1.JobStarted, metav1.ConditionFalse, reason, message, now)
}

// setStarted records that sj's worker container started at the given time (at most now): sj is Running.
func setStarted(sj *seekv1alpha1.SeekJob, at, now time.Time) {
	sj.Status.State = seekv1alpha1.JobStateRunning
	if sj.Status.StartTime == nil {
		if at.IsZero() || at.After(now) {
			at = now
		}
		sj.Status.StartTime = ptr.To(metav1.NewTime(at))
	}
	setCondition(&sj.Status, sj.Generation, seekv1alpha1.JobStarted, metav1.ConditionTrue, seekv1alpha1.JobReasonWorkerStarted,
		"The worker container started", now)
}

// started reports whether sj's worker container has started: Started is True (it stays True through
// retries, whose pods start again).
func started(sj *seekv1alpha1.SeekJob) bool {
	return meta.IsStatusConditionTrue(sj.Status.Conditions, seekv1alpha1.JobStarted)
}

// finish moves sj to a terminal state. jobErr is nil only for Completed.
func finish(sj *seekv1alpha1.SeekJob, state seekv1alpha1.JobState, reason, message string, jobErr *seekv1alpha1.JobError, now time.Time) {
	st := &sj.Status
	st.State = state
	st.Error = jobErr
	t := metav1.NewTime(now)
	st.CompletionTime = &t
	if st.StartTime != nil {
		st.Duration = &metav1.Duration{Duration: now.Sub(st.StartTime.Time).Round(time.Millisecond)}
	} else {
		setCondition(st, sj.Generation, seekv1alpha1.JobStarted, metav1.ConditionFalse, seekv1alpha1.JobReasonNeverStarted,
			"The job finished before it started", now)
	}
	setCondition(st, sj.Generation, seekv1alpha1.JobFinished, metav1.ConditionTrue, reason, message, now)
}

// fail finishes sj as Failed with an error of the given reason.
func fail(sj *seekv1alpha1.SeekJob, reason, message string, now time.Time) {
	finish(sj, seekv1alpha1.JobStateFailed, reason, message, &seekv1alpha1.JobError{Reason: reason, Message: truncate(message, maxMessageBytes)}, now)
}

// timeOut ends sj as TimedOut: it ran past its timeout.
func timeOut(sj *seekv1alpha1.SeekJob, timeout time.Duration, now time.Time) {
	msg := timeoutMessage(timeout)
	finish(sj, seekv1alpha1.JobStateTimedOut, seekv1alpha1.JobReasonDeadlineExceeded, msg,
		&seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonDeadlineExceeded, Message: msg}, now)
}

// jobCondition returns the Job's condition of the given type if it is True.
func jobCondition(job *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// jobFinished reports whether the Job reached its final Complete or Failed condition.
func jobFinished(job *batchv1.Job) bool {
	return jobCondition(job, batchv1.JobComplete) != nil || jobCondition(job, batchv1.JobFailed) != nil
}

// workerTermination is the terminated state of the worker container of a pod, or nil.
func workerTermination(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		if cs.Name != protocol.ContainerName {
			continue
		}
		if cs.State.Terminated != nil {
			return cs.State.Terminated
		}
		return cs.LastTerminationState.Terminated
	}
	return nil
}

// podFinishedAt orders pods by when their worker container ended, falling back to creation time.
func podFinishedAt(pod *corev1.Pod) time.Time {
	if t := workerTermination(pod); t != nil && !t.FinishedAt.IsZero() {
		return t.FinishedAt.Time
	}
	return pod.CreationTimestamp.Time
}

// lastPod returns the most recently finished pod in the given phase, or nil.
func lastPod(pods []corev1.Pod, phase corev1.PodPhase) *corev1.Pod {
	var last *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Status.Phase != phase {
			continue
		}
		if last == nil || podFinishedAt(p).After(podFinishedAt(last)) {
			last = p
		}
	}
	return last
}

// workerRan reports whether pod's worker container has started (it may have a log).
func workerRan(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == protocol.ContainerName {
			return cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil
		}
	}
	return false
}

// countPods counts the pods in the given phase.
func countPods(pods []corev1.Pod, phase corev1.PodPhase) int {
	n := 0
	for i := range pods {
		if pods[i].Status.Phase == phase {
			n++
		}
	}
	return n
}

// finishedAt is when the Job reached its final condition, so a job's completion time and duration do
// not depend on when the controller noticed (it may have been down). Never later than now.
func finishedAt(c *batchv1.JobCondition, now time.Time) time.Time {
	if c.LastTransitionTime.IsZero() || c.LastTransitionTime.After(now) {
		return now
	}
	return c.LastTransitionTime.Time
}

// parseResult turns a worker's termination message into a result. The message must be JSON; empty
// means the worker returned nothing (null).
func parseResult(message string) (*seekv1alpha1.JSON, error) {
	raw := bytes.TrimSpace([]byte(message))
	if len(raw) == 0 {
		return nil, nil
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("the worker exited 0 but its result is not valid JSON (%d bytes starting %q)", len(raw), truncate(string(raw), 64))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, fmt.Errorf("compact result: %w", err)
	}
	return seekv1alpha1.NewJSON(compact.Bytes()), nil
}

// parseWorkerError turns a failed pod's worker termination into a JobError. A worker that followed the
// protocol wrote {"message": ..., "reason": ...}; anything else (for example the log tail the kubelet
// falls back to) becomes the message verbatim. A worker killed for exceeding its memory limit is said
// to be, with the limit, its log tail going into details. pod may be nil (gone).
func parseWorkerError(reason string, pod *corev1.Pod) *seekv1alpha1.JobError {
	var term *corev1.ContainerStateTerminated
	if pod != nil {
		term = workerTermination(pod)
	}
	switch {
	case term == nil && pod != nil && (pod.Status.Reason != "" || pod.Status.Message != ""):
		// The kubelet rejected or evicted the pod before its worker ran.
		return &seekv1alpha1.JobError{Reason: reason, Message: truncate(strings.TrimPrefix(fmt.Sprintf("the pod failed before the worker ran: %s: %s", pod.Status.Reason, pod.Status.Message), ": "), maxMessageBytes)}
	case term == nil:
		return &seekv1alpha1.JobError{Reason: reason, Message: "the worker's pod and its exit status are gone"}
	}
	return workerError(reason, workerExit{
		code: term.ExitCode, reason: term.Reason, message: workerMessage(pod, term),
		oomKilled: term.Reason == reasonOOMKilled, memoryLimit: memoryLimit(pod.Spec.Containers),
	})
}

// workerExit is how a worker process ended, read from its container's termination (Job mode) or from
// the runner's report (Pooled mode).
type workerExit struct {
	// code is the exit code.
	code int32
	// reason is the container runtime's reason (Error, StartError, ...), "" if none.
	reason string
	// message is what the worker wrote to the result file, else the tail of its log.
	message string
	// oomKilled is true when the kernel killed the worker for exceeding its memory limit.
	oomKilled bool
	// memoryLimit is the worker container's memory limit, "" if it has none.
	memoryLimit string
}

// workerError turns a failed worker's exit into a JobError of the given reason.
func workerError(reason string, exit workerExit) *seekv1alpha1.JobError {
	je := &seekv1alpha1.JobError{Reason: reason, ExitCode: ptr.To(exit.code)}
	raw := bytes.TrimSpace([]byte(exit.message))
	var perr protocol.Error
	switch {
	case exit.oomKilled:
		je.Message = oomMessage(exit.memoryLimit)
		if len(raw) > 0 {
			details, err := json.Marshal(map[string]string{"log_tail": truncate(string(raw), maxLogTailBytes)})
			if err == nil {
				je.Details = seekv1alpha1.NewJSON(details)
			}
		}
	case len(raw) == 0:
		je.Message = fmt.Sprintf("the worker exited with code %d without an error message", exit.code)
		if exit.reason != "" && exit.reason != "Error" {
			je.Message += " (" + exit.reason + ")"
		}
	case json.Valid(raw) && json.Unmarshal(raw, &perr) == nil && perr.Message != "":
		je.Message = truncate(perr.Message, maxMessageBytes)
		if len(raw) <= protocol.MaxMessageBytes {
			je.Details = seekv1alpha1.NewJSON(raw)
		}
	default:
		je.Message = truncate(string(raw), maxMessageBytes)
	}
	return je
}

// memoryLimit returns the worker container's memory limit among containers, "" if it has none.
func memoryLimit(containers []corev1.Container) string {
	for _, c := range containers {
		if c.Name != protocol.ContainerName {
			continue
		}
		if limit, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && !limit.IsZero() {
			return limit.String()
		}
	}
	return ""
}

// oomMessage says that the worker was killed for exceeding its memory limit, naming the limit.
func oomMessage(limit string) string {
	if limit == "" {
		return "The worker was OOMKilled (no memory limit: the node ran out of memory)"
	}
	return fmt.Sprintf("The worker was OOMKilled (memory limit %s)", limit)
}

// attempts is how many pods have run (or are running) the job.
func attempts(job *batchv1.Job) int32 {
	return job.Status.Failed + job.Status.Succeeded + job.Status.Active
}

// setStatusFromJob computes sj's status from its Job, the Job's pods and failedCreate, the message of
// the Job controller's latest failure to create a pod ("" if none). It reports false when the Job
// finished but the pod holding the outcome is not among pods (the caller looks harder, then calls again
// with lostPods=true to settle without it).
func setStatusFromJob(sj *seekv1alpha1.SeekJob, job *batchv1.Job, pods []corev1.Pod, failedCreate string, lostPods bool, now time.Time) bool {
	sj.Status.JobName = job.Name
	// The first attempt begins with the Job: counting it now saves a status write when its pod appears.
	sj.Status.Attempts = max(sj.Status.Attempts, attempts(job), 1)
	observeStart(sj, job, pods, failedCreate, now)

	if jobCondition(job, batchv1.JobComplete) == nil && jobCondition(job, batchv1.JobFailed) == nil {
		if done := earlyResult(sj, pods, now); done != nil {
			sj.Status = done.Status
			return true
		}
	}
	if c := jobCondition(job, batchv1.JobComplete); c != nil {
		now = finishedAt(c, now)
		pod := lastPod(pods, corev1.PodSucceeded)
		if pod == nil && !lostPods {
			return false
		}
		var term *corev1.ContainerStateTerminated
		if pod != nil {
			term = workerTermination(pod)
		}
		if term == nil {
			fail(sj, seekv1alpha1.JobReasonInvalidResult, "The worker succeeded but its pod and result are gone", now)
			return true
		}
		// The pod succeeded: its collector, if any, has ended (or was killed: the result is lost).
		raw, size, storage, ok := podResult(pod, term, now.Add(collectorWait))
		if !ok {
			storage = resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: "The worker exited 0 but its pod ended before the result collector said what it read"}
		}
		completeWithResult(sj, raw, size, storage, now)
		return true
	}

	failed := jobCondition(job, batchv1.JobFailed)
	if failed == nil {
		return true
	}
	now = finishedAt(failed, now)
	if !lostPods && countPods(pods, corev1.PodFailed) < int(job.Status.Failed) {
		return false // the cache may not show the last failed attempt yet
	}
	pod := lastPod(pods, corev1.PodFailed)
	switch {
	case failed.Reason == batchv1.JobReasonDeadlineExceeded && !started(sj):
		// The Job's backstop deadline (start deadline plus timeout) passed before the worker started.
		failStart(sj, limitsOf(job).startDeadline, now)
	case failed.Reason == batchv1.JobReasonDeadlineExceeded:
		timeOut(sj, limitsOf(job).timeout, now)
	case failed.Reason == batchv1.JobReasonPodFailurePolicy:
		je := parseWorkerError(seekv1alpha1.JobReasonWorkerError, pod)
		finish(sj, seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonWorkerError, "The worker failed and asked not to be retried: "+je.Message, je, now)
	default:
		je := parseWorkerError(seekv1alpha1.JobReasonRetriesExhausted, pod)
		msg := fmt.Sprintf("All %d attempts failed; the last: %s", sj.Status.Attempts, je.Message)
		finish(sj, seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonRetriesExhausted, msg, je, now)
	}
	return true
}

// earlyResult is sj completed with the result of a worker container that exited 0, before the Job
// controller has marked the Job Complete: the kubelet reports the exit a second or more before the
// pod's phase and the Job's condition follow, and a Job of one completion whose pod succeeded cannot
// end otherwise. Its time is the container's end (at most now). With a collector sidecar, its verdict
// is awaited (at most collectorWait), and is final: the job completes or fails with it. Anything else
// (no such container, an invalid result without a collector) waits for the Job; nil then.
func earlyResult(sj *seekv1alpha1.SeekJob, pods []corev1.Pod, now time.Time) *seekv1alpha1.SeekJob {
	for i := range pods {
		for _, cs := range pods[i].Status.ContainerStatuses {
			term := cs.State.Terminated
			if cs.Name != protocol.ContainerName || term == nil || term.ExitCode != 0 {
				continue
			}
			raw, size, storage, ok := podResult(&pods[i], term, now)
			if !ok {
				continue
			}
			at := now
			if !term.FinishedAt.IsZero() && term.FinishedAt.Time.Before(now) {
				at = term.FinishedAt.Time
			}
			done := sj.DeepCopy()
			completeWithResult(done, raw, size, storage, at)
			if done.Status.State == seekv1alpha1.JobStateCompleted || hasCollector(&pods[i]) {
				return done
			}
		}
	}
	return nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
