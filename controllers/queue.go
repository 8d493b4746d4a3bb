package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// Queue timeout: a SeekJob that is still Queued (no Job was created for it) when its queue timeout has
// passed since its creation fails with reason QueueTimeout. The deadline is computed from the
// SeekJob's creationTimestamp and the current specs on every reconcile, so nothing lives in memory and a
// changed worker applies at once; Reconcile requeues a queued job for its deadline, so a job whose
// worker does not exist (which no watch event wakes) still ends.

// DefaultUnknownWorkerQueueTimeout is the manager's default queue timeout of jobs whose SeekWorker
// does not exist (--default-queue-timeout).
const DefaultUnknownWorkerQueueTimeout = time.Hour

// queueLimit is how long sj may stay Queued, and what set that limit (for messages); 0 means no
// limit. w is sj's worker, nil when it does not exist; unknownWorker is the limit for that case (0:
// none). A job's own spec.queueTimeout only ever shortens the limit.
func queueLimit(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, unknownWorker time.Duration) (time.Duration, string) {
	limit, source := unknownWorker, "the manager's --default-queue-timeout for jobs of missing SeekWorkers"
	if w != nil {
		limit, source = seekv1alpha1.DefaultQueueTimeout, fmt.Sprintf("the default of SeekWorker %q", w.Name)
		if q := w.Spec.Timeouts.QueueTimeout; q != nil {
			limit, source = q.Duration, fmt.Sprintf("timeouts.queueTimeout of SeekWorker %q", w.Name)
		}
	}
	if q := sj.Spec.QueueTimeout; q != nil && (limit <= 0 || q.Duration < limit) {
		limit, source = q.Duration, "spec.queueTimeout"
	}
	if limit <= 0 {
		return 0, ""
	}
	return limit, source
}

// queueWait is how long until a job created at created, with the given queue limit, runs out of queue
// time at now; expired once it has. A zero limit never expires (and has nothing to wait for).
func queueWait(created time.Time, limit time.Duration, now time.Time) (wait time.Duration, expired bool) {
	if limit <= 0 {
		return 0, false
	}
	left := created.Add(limit).Sub(now)
	return left, left <= 0
}

// queueTimeoutMessage says why a queued job failed: how long it waited, what set that limit, and what it
// was waiting for (the reason of its Started condition).
func queueTimeoutMessage(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, limit time.Duration, source string) string {
	msg := fmt.Sprintf("The job did not start within its queue timeout of %s (%s)", limit, source)
	cause := ""
	switch started := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); {
	case w == nil:
		cause = fmt.Sprintf("SeekWorker %q does not exist", sj.Spec.WorkerName)
	case started != nil && started.Status != metav1.ConditionTrue && started.Message != "":
		cause = started.Message
	}
	if cause != "" {
		msg += ": " + cause
	}
	return msg
}

// expireQueued fails sj with reason QueueTimeout when it is still Queued, without a Job, after its
// queue timeout; job is the Job the reconcile found (nil if none). Otherwise it returns how long until
// the timeout passes, for Reconcile to requeue (0 when none applies). A job that got its slot or its
// worker in the same reconcile has started already, so a job only fails when it cannot start now.
func (r *SeekJobReconciler) expireQueued(ctx context.Context, sj *seekv1alpha1.SeekJob, job *batchv1.Job, now time.Time) (time.Duration, error) {
	if job != nil || sj.Status.State != seekv1alpha1.JobStateQueued || sj.Status.JobName != "" {
		return 0, nil
	}
	w := &seekv1alpha1.SeekWorker{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w); apierrors.IsNotFound(err) {
		w = nil
	} else if err != nil {
		return 0, fmt.Errorf("get SeekWorker %s: %w", sj.Spec.WorkerName, err)
	}
	limit, source := queueLimit(sj, w, r.DefaultQueueTimeout)
	wait, expired := queueWait(sj.CreationTimestamp.Time, limit, now)
	if !expired {
		return wait, nil
	}
	// The cache may not show a Job an earlier reconcile created (its status write lost): a job that
	// runs must not be reported as never started.
	existing := &batchv1.Job{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: sj.Namespace, Name: jobName(sj)}, existing)
	switch {
	case err == nil && ownership(existing, sj) == nil:
		// Its watch event reconciles the job again, which then observes it.
		return 0, nil
	case err != nil && !apierrors.IsNotFound(err):
		return 0, fmt.Errorf("get Job %s/%s: %w", sj.Namespace, jobName(sj), err)
	}
	fail(sj, seekv1alpha1.JobReasonQueueTimeout, queueTimeoutMessage(sj, w, limit, source), now)
	ctrl.LoggerFrom(ctx).V(2).Info("SeekJob ran out of queue time", "queueTimeout", limit)
	return 0, nil
}
