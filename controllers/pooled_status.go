package controllers

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// This file holds the pure functions of a pooled job's status: a pool pod leases an attempt, the
// attempt ends with the runner's report, or its pod is lost. The dispatcher and the SeekJob
// reconciler both write a pooled job's status, each through these functions only, so one set of rules
// decides its state, attempts and retries. Every change here is part of one status write.

const (
	// retryBackoffBase and retryBackoffMax bound the wait before a pooled job's next attempt, as the
	// Job controller waits before a failed pod's replacement: 10s, doubling, at most 10 minutes.
	retryBackoffBase = 10 * time.Second
	retryBackoffMax  = 10 * time.Minute
	// stopGracePeriod is how long a pooled worker has after SIGTERM before SIGKILL, as a pod has.
	stopGracePeriod = 30 * time.Second
)

// pooled reports whether sj runs (or ran) in a pool: a pool pod leased it once.
func pooled(sj *seekv1alpha1.SeekJob) bool {
	return sj.Status.Pool != nil
}

// leased reports whether a pool pod holds sj's current attempt.
func leased(sj *seekv1alpha1.SeekJob) bool {
	return sj.Status.Pool != nil && sj.Status.Pool.PodUID != ""
}

// leasable reports whether a pool pod may lease sj now: it has not finished, is not being canceled or
// deleted, started no Job of its own, no pod holds it, and its retry time (if any) has come. wait is
// how long until the retry time when that is all that keeps it.
func leasable(sj *seekv1alpha1.SeekJob, now time.Time) (ok bool, wait time.Duration) {
	if sj.Status.State.IsTerminal() || sj.Spec.CancelRequest != nil || sj.DeletionTimestamp != nil ||
		sj.Status.JobName != "" || leased(sj) {
		return false, 0
	}
	if p := sj.Status.Pool; p != nil && p.RetryTime != nil && now.Before(p.RetryTime.Time) {
		return false, p.RetryTime.Sub(now)
	}
	return true, 0
}

// setLeased records that pod, of the pool Job jobName, runs sj's next attempt from now: sj is Running.
func setLeased(sj *seekv1alpha1.SeekJob, jobName string, pod *corev1.Pod, now time.Time) {
	sj.Status.Attempts++
	sj.Status.Pool = &seekv1alpha1.PoolAttempt{JobName: jobName, PodName: pod.Name, PodUID: string(pod.UID)}
	setStarted(sj, now, now)
}

// attemptTimeout is how long sj's current attempt may run from now: what is left of the job's
// timeout, which counts from its first start. Never negative.
func attemptTimeout(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) time.Duration {
	timeout := effectiveTimeout(sj, w)
	if sj.Status.StartTime == nil {
		return timeout
	}
	return max(timeout-now.Sub(sj.Status.StartTime.Time), 0)
}

// leaseFor is the dispatch protocol's view of sj's attempt just leased.
func leaseFor(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) *dispatch.Job {
	return &dispatch.Job{
		AttemptRef:    attemptRef(sj),
		Worker:        w.Name,
		Input:         []byte(inputText(sj)),
		TimeoutMillis: attemptTimeout(sj, w, now).Milliseconds(),
		GraceMillis:   stopGracePeriod.Milliseconds(),
		LogBytes:      int32(retainedLogBytes(w)),
	}
}

// attemptRef names sj's current attempt.
func attemptRef(sj *seekv1alpha1.SeekJob) dispatch.AttemptRef {
	return dispatch.AttemptRef{Namespace: sj.Namespace, Name: sj.Name, UID: string(sj.UID), Attempt: sj.Status.Attempts}
}

// holds reports whether the pod with the given UID holds the attempt ref names: the report or
// heartbeat is about sj's current attempt, and sj has not ended.
func holds(sj *seekv1alpha1.SeekJob, podUID string, ref dispatch.AttemptRef) bool {
	return leased(sj) && !sj.Status.State.IsTerminal() && sj.Status.Pool.PodUID == podUID &&
		string(sj.UID) == ref.UID && sj.Status.Attempts == ref.Attempt
}

// applyReport ends sj's current attempt with the runner's report: sj completes, fails, times out, or
// waits for its next attempt. storage is where a result over the inline limit went (see result.go).
func applyReport(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, r *dispatch.Report, storage resultStorage, now time.Time) {
	switch {
	case r.Interrupted:
		// The pod is going away (a deletion, a drain): not the worker's fault, as a disrupted pod in Job
		// mode does not count. The attempt is not counted and the job is leased again at once.
		releaseAttempt(sj, false, now)
		return
	case r.TimedOut:
		timeOut(sj, effectiveTimeout(sj, w), now)
		return
	case r.ExitCode == 0 && r.StartError == "":
		size := int64(len(r.Result))
		if r.ResultTruncated {
			size = max(r.ResultBytes, dispatch.MaxReportBytes)
		}
		completeWithResult(sj, r.Result, size, storage, now)
		return
	}
	exit := workerExit{code: r.ExitCode, message: r.Result, oomKilled: r.OOMKilled, memoryLimit: memoryLimit([]corev1.Container{{
		Name: protocol.ContainerName, Resources: w.Spec.Resources,
	}})}
	switch {
	case r.StartError != "":
		exit.reason, exit.message = "StartError", "the worker's command could not be started: "+r.StartError
	case r.Signal != "":
		exit.reason = r.Signal
	}
	if len(exit.message) == 0 || r.OOMKilled {
		// As the kubelet's FallbackToLogsOnError: nothing written, the log tail speaks.
		exit.message = fallbackLog(r.LogTail, r.OOMKilled)
	}
	if r.ExitCode == protocol.ExitCodeNoRetry {
		je := workerError(seekv1alpha1.JobReasonWorkerError, exit)
		finish(sj, seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonWorkerError, "The worker failed and asked not to be retried: "+je.Message, je, now)
		return
	}
	failAttempt(sj, w, workerError(seekv1alpha1.JobReasonRetriesExhausted, exit), now)
}

// fallbackLog is the log tail standing in for an error message the worker did not write: at most the
// last 80 lines and 2048 bytes, as the kubelet keeps, or 4 KiB for the details of an OOM kill.
func fallbackLog(tail string, oom bool) string {
	if oom {
		return lastBytes(tail, maxLogTailBytes)
	}
	lines := 0
	for i := len(tail) - 1; i >= 0; i-- {
		if tail[i] == '\n' && i != len(tail)-1 {
			if lines++; lines == 80 {
				tail = tail[i+1:]
				break
			}
		}
	}
	return lastBytes(tail, 2048)
}

// lastBytes returns the last n bytes of s at most, not splitting a UTF-8 sequence.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - n
	for cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut++
	}
	return s[cut:]
}

// failAttempt ends sj's current attempt as failed with je: the job waits for its next attempt when
// retries are left, else fails with RetriesExhausted.
func failAttempt(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, je *seekv1alpha1.JobError, now time.Time) {
	if sj.Status.Attempts < 1+w.Spec.Retries {
		releaseAttempt(sj, true, now)
		return
	}
	msg := fmt.Sprintf("All %d attempts failed; the last: %s", sj.Status.Attempts, je.Message)
	finish(sj, seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonRetriesExhausted, msg, je, now)
}

// releaseAttempt frees sj for its next attempt. A failed attempt counts, and the next one waits
// (10s, doubling per failed attempt, at most 10 minutes); an interrupted one does not count and the
// next may start at once. sj stays Running: its worker started, as in Job mode between attempts.
func releaseAttempt(sj *seekv1alpha1.SeekJob, failed bool, now time.Time) {
	p := sj.Status.Pool
	p.PodName, p.PodUID, p.RetryTime = "", "", nil
	if !failed {
		sj.Status.Attempts = max(sj.Status.Attempts-1, 0)
		return
	}
	p.RetryTime = &metav1.Time{Time: now.Add(retryBackoff(sj.Status.Attempts))}
}

// retryBackoff is the wait after the given number of failed attempts.
func retryBackoff(failed int32) time.Duration {
	d := retryBackoffBase
	for i := int32(1); i < failed && d < retryBackoffMax; i++ {
		d *= 2
	}
	return min(d, retryBackoffMax)
}

// podLost ends sj's current attempt whose pool pod is gone or ended without reporting. A pod that was
// deleted or disrupted (a drain, an eviction, a preemption) interrupted the attempt, which does not
// count; any other end (the node or the runner died) fails it, as a failed pod does in Job mode.
func podLost(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, pod *corev1.Pod, now time.Time) {
	if pod == nil || pod.DeletionTimestamp != nil || disrupted(pod) {
		releaseAttempt(sj, false, now)
		return
	}
	msg := fmt.Sprintf("the pool pod %s running the job ended without reporting an outcome", pod.Name)
	if pod.Status.Reason != "" || pod.Status.Message != "" {
		msg += fmt.Sprintf(": %s %s", pod.Status.Reason, pod.Status.Message)
	}
	failAttempt(sj, w, &seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonRetriesExhausted, Message: truncate(msg, maxMessageBytes)}, now)
}

// disrupted reports whether the pod has the DisruptionTarget condition: it is being removed for a
// reason that is not its own fault.
func disrupted(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// setProgress records a worker's progress of attempt in sj's status, unless it says nothing new or
// the last one was written less than dispatch.ProgressInterval ago: then wait is how long until the
// next may be. The fraction is kept to three decimals and the message cut to fit, as valid UTF-8.
func setProgress(sj *seekv1alpha1.SeekJob, attempt int32, fraction float64, message string, now time.Time) (changed bool, wait time.Duration) {
	p := &seekv1alpha1.JobProgress{
		Fraction:   strconv.FormatFloat(math.Round(min(max(fraction, 0), 1)*1000)/1000, 'f', -1, 64),
		Message:    truncate(strings.ToValidUTF8(message, ""), protocol.MaxProgressMessageBytes),
		Attempt:    attempt,
		UpdateTime: metav1.NewTime(now),
	}
	if old := sj.Status.Progress; old != nil {
		if old.Fraction == p.Fraction && old.Message == p.Message && old.Attempt == p.Attempt {
			return false, 0
		}
		if next := old.UpdateTime.Add(dispatch.ProgressInterval); now.Before(next) {
			return false, next.Sub(now)
		}
	}
	sj.Status.Progress = p
	return true, 0
}
