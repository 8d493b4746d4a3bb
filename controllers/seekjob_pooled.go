package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// The pooled branch of the SeekJob reconciler. The dispatcher leases a pooled job to a pool pod and
// records the runner's report; this reconciler covers what no runner reports: a cancel, a holder pod
// that is gone, a timeout the runner did not enforce, a pool whose pods cannot start, the queue
// timeout. A queued pooled job whose pool is fine gets no write at all: its state stays empty until a
// pod leases it.

const (
	// poolPodUIDField indexes SeekJobs by status.pool.podUID: the pool pod holding their attempt.
	poolPodUIDField = "status.pool.podUID"
	// terminatingPodRecheck is how often a job whose holder pod is being deleted is looked at again,
	// waiting for the runner's Interrupted report or the pod's end.
	terminatingPodRecheck = 5 * time.Second
	// timeoutBackstopSlack is how long past a pooled job's timeout and stop grace the reconciler
	// waits for the runner's TimedOut report before timing the job out itself.
	timeoutBackstopSlack = 10 * time.Second
)

// poolPodUIDIndexValue is the poolPodUIDField index's value of a SeekJob: the UID of the pod holding
// it, none when no pod does.
func poolPodUIDIndexValue(o client.Object) []string {
	sj := o.(*seekv1alpha1.SeekJob)
	if !leased(sj) || sj.Status.State.IsTerminal() {
		return nil
	}
	return []string{sj.Status.Pool.PodUID}
}

// pooledWorker returns sj's worker and whether sj runs pooled: a pool pod leased it before, or it has
// no Job and its worker is Pooled. A pooled job whose worker was deleted gets a stand-in without
// retries. A job whose worker does not exist and never was leased is not pooled: it waits as in Job
// mode.
func (r *SeekJobReconciler) pooledWorker(ctx context.Context, sj *seekv1alpha1.SeekJob) (*seekv1alpha1.SeekWorker, bool, error) {
	if sj.Status.JobName != "" {
		return nil, false, nil
	}
	w := &seekv1alpha1.SeekWorker{}
	err := r.Client.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w)
	switch {
	case apierrors.IsNotFound(err) && pooled(sj):
		return &seekv1alpha1.SeekWorker{ObjectMeta: metav1.ObjectMeta{Name: string(sj.Spec.WorkerName)}}, true, nil
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("get SeekWorker %s: %w", sj.Spec.WorkerName, err)
	}
	return w, pooled(sj) || w.Pooled(), nil
}

// reconcilePooled moves a pooled job along where no runner does, changing sj's status in memory
// only. It returns when to look again (0: at the next event).
func (r *SeekJobReconciler) reconcilePooled(ctx context.Context, sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) (time.Duration, error) {
	switch {
	case sj.Spec.CancelRequest != nil:
		// A runner holding it learns at its next heartbeat (Stop: the attempt is not held any more)
		// and stops the process.
		setCanceled(sj, now)
		return 0, nil
	case leased(sj):
		return r.watchHolder(ctx, sj, w, now)
	case pooled(sj):
		// Between attempts: the dispatcher leases it again at its retry time. Its timeout runs on.
		_, wait := leasable(sj, now)
		return soonest(wait, timeoutBackstop(sj, w, now)), nil
	}
	if msg, ready := workerReadiness(w); !ready {
		setWaiting(sj, seekv1alpha1.JobReasonWorkerNotReady, msg, now)
		return r.expirePooledQueued(sj, w, now), nil
	}
	if reason, msg := validateAgainstWorker(sj, w); reason != "" {
		fail(sj, reason, msg, now)
		return 0, nil
	}
	startLeft, err := r.poolStartTrouble(ctx, sj, w, now)
	if err != nil || sj.Status.State.IsTerminal() {
		return 0, err
	}
	return soonest(startLeft, r.expirePooledQueued(sj, w, now)), nil
}

// watchHolder ends sj's attempt when the pool pod holding it is gone or ended without a report, and
// times sj out when the runner did not. It waits while the pod is being deleted: its runner reports
// the attempt Interrupted, or the pod ends.
func (r *SeekJobReconciler) watchHolder(ctx context.Context, sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) (time.Duration, error) {
	pod := &corev1.Pod{}
	key := types.NamespacedName{Namespace: sj.Namespace, Name: sj.Status.Pool.PodName}
	err := r.Client.Get(ctx, key, pod)
	if apierrors.IsNotFound(err) {
		// The cache may not show a pod created a moment ago: ask the apiserver before giving up on it.
		err = r.APIReader.Get(ctx, key, pod)
	}
	switch {
	case apierrors.IsNotFound(err) || (err == nil && string(pod.UID) != sj.Status.Pool.PodUID):
		podLost(sj, w, nil, now)
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("get pool pod %s: %w", key, err)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		podLost(sj, w, pod, now)
		return 0, nil
	}
	backstop := timeoutBackstop(sj, w, now)
	if sj.Status.State.IsTerminal() {
		return 0, nil
	}
	if pod.DeletionTimestamp != nil {
		return soonest(backstop, terminatingPodRecheck), nil
	}
	return backstop, nil
}

// timeoutBackstop times sj out when it runs past its timeout, its stop grace period and some slack:
// the runner enforces the timeout, so this happens only if it could not (its pod hangs, the manager
// missed its report). Otherwise it returns when that point comes (0: sj has not started).
func timeoutBackstop(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) time.Duration {
	if sj.Status.StartTime == nil {
		return 0
	}
	timeout := effectiveTimeout(sj, w)
	left := sj.Status.StartTime.Add(timeout + stopGracePeriod + timeoutBackstopSlack).Sub(now)
	if left > 0 {
		return left
	}
	timeOut(sj, timeout, now)
	return 0
}

// poolStartTrouble records why the pool of sj, a job no pod has leased yet, cannot start pods, if it
// cannot: no pool pod runs, and a pool pod waits with a cause (an image pull, scheduling), or the Job
// controller cannot create the pool's pods, or the apiserver refused the pool Job. A job in such
// trouble fails at its worker's start deadline, counted from its creation. It returns when that
// deadline comes (0: no trouble).
func (r *SeekJobReconciler) poolStartTrouble(ctx context.Context, sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) (time.Duration, error) {
	reason, msg, err := r.poolTrouble(ctx, sj.Namespace, w.Name)
	if err != nil || reason == "" {
		return 0, err
	}
	setWaiting(sj, reason, msg, now)
	d := effectiveStartDeadline(w)
	left := sj.CreationTimestamp.Add(d).Sub(now)
	if left > 0 {
		return left, nil
	}
	failStart(sj, d, now)
	return 0, nil
}

// poolTrouble says why the pool of worker in ns cannot start pods, "" while it can (a pool pod runs,
// or its pods are being made and started).
func (r *SeekJobReconciler) poolTrouble(ctx context.Context, ns, worker string) (reason, message string, err error) {
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingFields{poolLabelField: worker}); err != nil {
		return "", "", fmt.Errorf("list pods of pool %s: %w", poolKey(ns, worker), err)
	}
	if slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil }) {
		return "", "", nil
	}
	if pod := pendingPod(pods.Items); pod != nil {
		if reason, message, ok := poolPodWaitingCause(pod); ok {
			return reason, message, nil
		}
		return "", "", nil
	}
	if slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return podLive(&p) }) {
		return "", "", nil
	}
	jobs := &batchv1.JobList{}
	if err := r.Client.List(ctx, jobs, client.InNamespace(ns), client.MatchingFields{poolLabelField: worker}); err != nil {
		return "", "", fmt.Errorf("list Jobs of pool %s: %w", poolKey(ns, worker), err)
	}
	events := &corev1.EventList{}
	if err := r.Client.List(ctx, events, client.InNamespace(ns)); err != nil {
		return "", "", fmt.Errorf("list events of pool %s: %w", poolKey(ns, worker), err)
	}
	return poolCreationTrouble(worker, jobs.Items, events.Items)
}

// poolCreationTrouble says why a pool without live pods has none, from the FailedCreate events the
// cache holds: the Job controller's about a pool Job's pods, or the pool controller's about a pool Job
// the apiserver refused, when no pool Job that could make pods exists.
func poolCreationTrouble(worker string, jobs []batchv1.Job, events []corev1.Event) (reason, message string, err error) {
	var unfinished []*batchv1.Job
	for i := range jobs {
		if !jobFinished(&jobs[i]) && jobs[i].DeletionTimestamp == nil {
			unfinished = append(unfinished, &jobs[i])
		}
	}
	for _, job := range unfinished {
		if msg := latestFailedCreate(job, events); msg != "" {
			return podCreationCause(msg), "The Job controller cannot create the pool's pods: " + msg, nil
		}
	}
	if len(unfinished) > 0 {
		return "", "", nil
	}
	// The pool controller's events regard the Job it could not create: it has no UID, and its name
	// starts with the pool's prefix.
	var latest *corev1.Event
	for i := range events {
		e := &events[i]
		if e.InvolvedObject.Kind != "Job" || e.InvolvedObject.UID != "" || !poolJobNameOf(e.InvolvedObject.Name, worker) {
			continue
		}
		if latest == nil || eventTimeOf(e).After(eventTimeOf(latest)) {
			latest = e
		}
	}
	if latest == nil {
		return "", "", nil
	}
	reason = latest.Action
	if reason == "" || !conditionReasonPattern.MatchString(reason) {
		reason = seekv1alpha1.JobReasonJobRejected
	}
	return reason, latest.Message, nil
}

// poolJobNameOf reports whether name is the name of a pool Job of worker (any hash and generation).
func poolJobNameOf(name, worker string) bool {
	rest, ok := strings.CutPrefix(name, poolJobPrefix)
	if !ok {
		return false
	}
	// <worker, perhaps cut>-<hash>-<generation>
	parts := strings.Split(rest, "-")
	if len(parts) < 3 {
		return false
	}
	cut := strings.Join(parts[:len(parts)-2], "-")
	// A worker's name is cut to 40 characters, fewer only for generations with many digits.
	return cut == worker || (len(cut) >= poolWorkerNameMax-10 && strings.HasPrefix(worker, cut))
}

// poolPodWaitingCause is podWaitingCause for a pool pod, whose runner's init container may keep the
// worker container from starting (its image cannot be pulled, or it failed).
func poolPodWaitingCause(pod *corev1.Pod) (reason, message string, ok bool) {
	for _, cs := range pod.Status.InitContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" && w.Reason != "ContainerCreating" {
			msg := w.Message
			if msg == "" {
				msg = "The Seek runner's init container is waiting: " + w.Reason
			}
			return conditionReason(w.Reason), msg, true
		}
	}
	return podWaitingCause(pod)
}

// workerReadiness returns the message of a worker that is not Ready, and whether it is.
func workerReadiness(w *seekv1alpha1.SeekWorker) (string, bool) {
	ready := meta.FindStatusCondition(w.Status.Conditions, seekv1alpha1.WorkerReady)
	if ready != nil && ready.Status == metav1.ConditionTrue {
		return "", true
	}
	msg := fmt.Sprintf("SeekWorker %q is not ready", w.Name)
	if ready != nil {
		msg += ": " + ready.Message
	}
	return msg, false
}

// setCanceled finishes sj as Canceled, with its cancel request's reason in the message.
func setCanceled(sj *seekv1alpha1.SeekJob, now time.Time) {
	msg := "The job was canceled"
	if reason := sj.Spec.CancelRequest.Reason; reason != "" {
		msg += ": " + reason
	}
	finish(sj, seekv1alpha1.JobStateCanceled, seekv1alpha1.JobReasonCanceled, msg,
		&seekv1alpha1.JobError{Reason: seekv1alpha1.JobReasonCanceled, Message: msg}, now)
}

// expirePooledQueued fails sj, a pooled job no pod has leased yet, once its queue timeout passed
// since its creation; otherwise it returns how long until then (0: no limit). A lease the cache does
// not show yet makes the status write conflict, and the lease stands.
func (r *SeekJobReconciler) expirePooledQueued(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) time.Duration {
	limit, source := queueLimit(sj, w, r.DefaultQueueTimeout)
	wait, expired := queueWait(sj.CreationTimestamp.Time, limit, now)
	if !expired {
		return wait
	}
	fail(sj, seekv1alpha1.JobReasonQueueTimeout, queueTimeoutMessage(sj, w, limit, source), now)
	return 0
}

// poolPodToSeekJobs maps a pool pod to the jobs it holds and, while it cannot start, to the jobs of
// its pool no pod has leased yet: they record the cause.
func poolPodToSeekJobs(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		pod := o.(*corev1.Pod)
		worker := pod.Labels[seekv1alpha1.LabelPool]
		if worker == "" {
			return nil
		}
		var reqs []reconcile.Request
		holders := &seekv1alpha1.SeekJobList{}
		if err := c.List(ctx, holders, client.InNamespace(pod.Namespace), client.MatchingFields{poolPodUIDField: string(pod.UID)}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing SeekJobs held by pool pod", "pod", client.ObjectKeyFromObject(pod))
			return nil
		}
		for i := range holders.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&holders.Items[i])})
		}
		if _, _, trouble := poolPodWaitingCause(pod); trouble {
			reqs = append(reqs, unleasedJobsOfPool(ctx, c, pod.Namespace, worker)...)
		}
		return reqs
	}
}

// poolEventToSeekJobs maps a FailedCreate event about a pool Job, or one the pool controller could
// not create, to the jobs of its pool no pod has leased yet.
func poolEventToSeekJobs(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		ev := o.(*corev1.Event)
		if ev.InvolvedObject.Kind != "Job" || !strings.HasPrefix(ev.InvolvedObject.Name, poolJobPrefix) {
			return nil
		}
		var worker string
		job := &batchv1.Job{}
		switch err := c.Get(ctx, types.NamespacedName{Namespace: ev.InvolvedObject.Namespace, Name: ev.InvolvedObject.Name}, job); {
		case err == nil:
			worker = job.Labels[seekv1alpha1.LabelPool]
		case ev.Related != nil && ev.Related.Kind == "SeekWorker":
			worker = ev.Related.Name
		}
		if worker == "" {
			return nil
		}
		return unleasedJobsOfPool(ctx, c, ev.InvolvedObject.Namespace, worker)
	}
}

// unleasedJobsOfPool lists the jobs of a pool that no pod has leased yet.
func unleasedJobsOfPool(ctx context.Context, c client.Reader, ns, worker string) []reconcile.Request {
	jobs := &seekv1alpha1.SeekJobList{}
	if err := c.List(ctx, jobs, client.MatchingFields{activePoolField: poolKey(ns, worker)}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing SeekJobs of pool", "pool", poolKey(ns, worker))
		return nil
	}
	var reqs []reconcile.Request
	for i := range jobs.Items {
		if sj := &jobs.Items[i]; !pooled(sj) && sj.Status.JobName == "" {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(sj)})
		}
	}
	return reqs
}
