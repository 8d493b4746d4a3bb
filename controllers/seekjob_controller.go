package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/podlogs"
	"github.com/seek-api/seek-operator/internal/workerschema"
)

var (
	// errJobNotOwned means a Job with the SeekJob's name exists but another object controls it.
	errJobNotOwned = errors.New("job not owned")
	// errPreviousJob means the Job with the SeekJob's name belongs to a deleted SeekJob of the same name:
	// the garbage collector is about to remove it.
	errPreviousJob = errors.New("job of a previous SeekJob")
)

// SeekJobReconciler runs each SeekJob as exactly one batch/v1 Job and owns the SeekJob's status:
// state, the Started and Finished conditions, result and error.
type SeekJobReconciler struct {
	Client client.Client
	// APIReader reads from the apiserver, bypassing the cache, to confirm what the cache cannot show yet.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Metrics   *Metrics
	// DefaultQueueTimeout is the queue timeout of jobs whose SeekWorker does not exist; 0 means none
	// (see queue.go).
	DefaultQueueTimeout time.Duration
	// Collector, when its dispatch endpoint is enabled and it has a runner image and a dispatch URL,
	// adds the result collector sidecar to Job mode pods: results over 4 KiB then reach the manager
	// (see withCollector). Without it, such results fail with ResultTooLarge.
	Collector PoolOptions
	// Logs reads pods' logs (the apiserver's pods/log), to keep the end of a finished job's output;
	// nil keeps none.
	Logs podlogs.Reader
}

// collects reports whether Job mode pods get the result collector sidecar.
func (r *SeekJobReconciler) collects() bool {
	return r.Collector.Enabled() && r.Collector.RunnerImage != "" && r.Collector.DispatchURL != ""
}

// +kubebuilder:rbac:groups=seek-api.com,resources=seekjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=seek-api.com,resources=seekjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=seek-api.com,resources=seekjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=seek-api.com,resources=seekworkers,verbs=get;list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one SeekJob along its lifecycle and writes its status at most once.
func (r *SeekJobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sj := &seekv1alpha1.SeekJob{}
	if err := r.Client.Get(ctx, req.NamespacedName, sj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if sj.DeletionTimestamp != nil {
		// Being deleted, with its Job: nothing left to run or to report.
		return ctrl.Result{}, nil
	}
	if sj.Status.State.IsTerminal() {
		// Finished, and its outcome written: its Job and pods have served their purpose.
		return ctrl.Result{}, r.removeFinishedJob(ctx, sj)
	}
	before := sj.DeepCopy()
	now := r.Clock.Now()

	w, isPooled, err := r.pooledWorker(ctx, sj)
	if err != nil {
		return ctrl.Result{}, err
	}
	// requeue is when something falls due that no watch event announces: a deadline, a retry.
	var requeue time.Duration
	if isPooled {
		requeue, err = r.reconcilePooled(ctx, sj, w, now)
	} else {
		requeue, err = r.reconcileJob(ctx, sj, now)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if equality.Semantic.DeepEqual(before.Status, sj.Status) {
		// Nothing changed: nothing is written, not even observedGeneration (a queued pooled job waits
		// for its lease without a write).
		return ctrl.Result{RequeueAfter: requeue}, nil
	}
	sj.Status.ObservedGeneration = sj.Generation
	if err := r.Client.Status().Update(ctx, sj); apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		// Our copy was stale (the newer version's watch event reconciles again) or the object is gone.
		ctrl.LoggerFrom(ctx).V(4).Info("Status update skipped", "reason", apierrors.ReasonForError(err))
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, fmt.Errorf("update status of SeekJob %s: %w", klog.KObj(sj), err)
	}
	r.recordTransition(ctx, before, sj)
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// reconcileJob moves a job of Job mode along (one batch/v1 Job per SeekJob), changing its status in
// memory only. It returns when to look again (0: at the next event).
func (r *SeekJobReconciler) reconcileJob(ctx context.Context, sj *seekv1alpha1.SeekJob, now time.Time) (time.Duration, error) {
	job, err := r.getJob(ctx, sj)
	if err != nil && !errors.Is(err, errPreviousJob) && !errors.Is(err, errJobNotOwned) {
		return 0, err
	}
	var requeue time.Duration
	switch {
	case sj.Spec.CancelRequest != nil && (job == nil || !jobFinished(job)):
		// cancel returns the Job when it turns out to have finished: the outcome stands.
		if job, err = r.cancel(ctx, sj); err != nil {
			return 0, err
		}
	case errors.Is(err, errPreviousJob):
		// Its deletion event wakes this SeekJob again (Owns maps it by name).
		setWaiting(sj, seekv1alpha1.JobReasonWaitingForPreviousJob, previousJobMessage(sj), now)
	case errors.Is(err, errJobNotOwned):
		fail(sj, seekv1alpha1.JobReasonJobNotOwned, notOwnedMessage(sj), now)
	case job == nil && sj.Status.JobName != "":
		fail(sj, seekv1alpha1.JobReasonJobLost, fmt.Sprintf("Job %s was deleted before it finished", sj.Status.JobName), now)
	case job == nil:
		job, requeue, err = r.start(ctx, sj)
		if errors.Is(err, errAwaitsSlot) {
			// Nothing to write: the worker controller grants the free slot within moments.
			return slotGrantBackstop, nil
		} else if err != nil {
			return 0, err
		}
	}
	if job != nil && !sj.Status.State.IsTerminal() {
		if requeue, err = r.observeJob(ctx, sj, job); err != nil {
			return 0, err
		}
	}
	// A job still queued fails once its queue timeout passes; until then it is requeued for that moment.
	queueLeft, err := r.expireQueued(ctx, sj, job, now)
	if err != nil {
		return 0, err
	}
	sj.Status.ObservedGeneration = sj.Generation
	return soonest(requeue, queueLeft), nil
}

// removeFinishedJob deletes the Job, and with it the pods, of sj, a Job mode job whose outcome is in its
// status, unless its worker retains finished Jobs (spec.execution.finishedJobs). The cache holds Jobs
// and pods, so a retained SeekJob then costs neither the cluster nor the manager's memory.
func (r *SeekJobReconciler) removeFinishedJob(ctx context.Context, sj *seekv1alpha1.SeekJob) error {
	if sj.Status.JobName == "" || sj.Status.Pool != nil {
		return nil
	}
	// The cache only: a retained job whose Job is gone must cost no request.
	job := &batchv1.Job{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: sj.Namespace, Name: jobName(sj)}, job); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(job, sj) {
		return nil // not sj's to delete
	}
	w := &seekv1alpha1.SeekWorker{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w); err == nil && w.Spec.Execution.FinishedJobs == seekv1alpha1.FinishedJobsRetain {
		return nil
	} else if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("get SeekWorker %s: %w", sj.Spec.WorkerName, err)
	}
	err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete the finished Job %s: %w", klog.KObj(job), err)
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Deleted the finished job's Job", "job", klog.KObj(job))
	return nil
}

// getJob returns the SeekJob's Job, nil if there is none, or errJobNotOwned. When the cache has no Job
// but status says one was created, it asks the apiserver before believing the Job is gone.
func (r *SeekJobReconciler) getJob(ctx context.Context, sj *seekv1alpha1.SeekJob) (*batchv1.Job, error) {
	job := &batchv1.Job{}
	key := types.NamespacedName{Namespace: sj.Namespace, Name: jobName(sj)}
	err := r.Client.Get(ctx, key, job)
	if apierrors.IsNotFound(err) && sj.Status.JobName != "" {
		err = r.APIReader.Get(ctx, key, job)
	}
	if apierrors.IsNotFound(err) {
		// The cache only holds Jobs carrying our labels: a foreign Job is found when creating.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Job %s: %w", key, err)
	}
	if err := ownership(job, sj); err != nil {
		return nil, err
	}
	return job, nil
}

// ownership returns nil if sj controls job, errPreviousJob if a deleted SeekJob of the same name does,
// and errJobNotOwned otherwise.
func ownership(job *batchv1.Job, sj *seekv1alpha1.SeekJob) error {
	if metav1.IsControlledBy(job, sj) {
		return nil
	}
	if owner := metav1.GetControllerOf(job); owner != nil && owner.Kind == "SeekJob" && owner.Name == sj.Name &&
		owner.APIVersion == seekv1alpha1.GroupVersion.String() {
		return errPreviousJob
	}
	return errJobNotOwned
}

func notOwnedMessage(sj *seekv1alpha1.SeekJob) string {
	return fmt.Sprintf("A Job named %s exists in this namespace and is not controlled by this SeekJob; delete or rename it", jobName(sj))
}

func previousJobMessage(sj *seekv1alpha1.SeekJob) string {
	return fmt.Sprintf("Job %s of a deleted SeekJob of the same name is being deleted", jobName(sj))
}

// cancel stops sj: it deletes its running Job (the garbage collector deletes the pods) and finishes sj
// as Canceled. It reads the Job from the apiserver, not the cache: a Job the cache does not show yet
// must not keep running, and one that already finished keeps its outcome; cancel then returns it.
func (r *SeekJobReconciler) cancel(ctx context.Context, sj *seekv1alpha1.SeekJob) (*batchv1.Job, error) {
	job := &batchv1.Job{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: sj.Namespace, Name: jobName(sj)}, job)
	switch {
	case apierrors.IsNotFound(err) || (err == nil && ownership(job, sj) != nil):
	case err != nil:
		return nil, fmt.Errorf("get Job %s: %w", jobName(sj), err)
	case jobFinished(job):
		return job, nil
	default:
		sj.Status.JobName = job.Name
		sj.Status.Attempts = max(sj.Status.Attempts, attempts(job), 1)
		// The output so far is kept before the pod goes with its Job.
		pods, err := r.listPods(ctx, sj, false)
		if err != nil {
			return nil, err
		}
		if err := r.keepLogs(ctx, sj, pods); err != nil {
			return nil, err
		}
		err = r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &job.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete Job %s: %w", klog.KObj(job), err)
		}
	}
	setCanceled(sj, r.Clock.Now())
	return nil, nil //nolint:nilerr // a Job that is not found (or not sj's) has nothing to stop: sj is canceled
}

// start checks sj against its worker and creates its Job once the worker is ready and has room.
// It returns the Job, or nil while the job waits (then possibly when to try again) or after it failed
// validation or the apiserver refused the Job; errAwaitsSlot when it writes nothing until its slot
// is granted.
func (r *SeekJobReconciler) start(ctx context.Context, sj *seekv1alpha1.SeekJob) (*batchv1.Job, time.Duration, error) {
	now := r.Clock.Now()
	w := &seekv1alpha1.SeekWorker{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w); err != nil {
		if apierrors.IsNotFound(err) {
			setWaiting(sj, seekv1alpha1.JobReasonWorkerNotFound, fmt.Sprintf("SeekWorker %q does not exist; the job starts when it is created", sj.Spec.WorkerName), now)
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("get SeekWorker %s: %w", sj.Spec.WorkerName, err)
	}
	if msg, ready := workerReadiness(w); !ready {
		setWaiting(sj, seekv1alpha1.JobReasonWorkerNotReady, msg, now)
		return nil, 0, nil
	}
	if reason, msg := validateAgainstWorker(sj, w); reason != "" {
		fail(sj, reason, msg, now)
		return nil, 0, nil
	}
	if !admitted(sj, w) {
		if hasFreeSlot(w) {
			return nil, 0, errAwaitsSlot
		}
		setWaiting(sj, seekv1alpha1.JobReasonWaitingForCapacity, fmt.Sprintf("All %d slots of SeekWorker %q are in use", *w.Spec.Limits.MaxConcurrentJobs, w.Name), now)
		return nil, 0, nil
	}

	job := buildJob(sj, w)
	if r.collects() {
		withCollector(job, r.Collector)
	}
	if err := controllerutil.SetControllerReference(sj, job, r.Client.Scheme()); err != nil {
		return nil, 0, fmt.Errorf("set owner of Job %s: %w", klog.KObj(job), err)
	}
	err := r.Client.Create(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		// Created by an earlier reconcile the cache has not shown yet, or someone else's Job.
		if err = r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), job); err == nil {
			switch own := ownership(job, sj); {
			case errors.Is(own, errPreviousJob):
				setWaiting(sj, seekv1alpha1.JobReasonWaitingForPreviousJob, previousJobMessage(sj), now)
				return nil, 0, nil
			case errors.Is(own, errJobNotOwned):
				fail(sj, seekv1alpha1.JobReasonJobNotOwned, notOwnedMessage(sj), now)
				return nil, 0, nil
			}
		}
	}
	if reason, msg, refused := refusal(err); refused && reason == seekv1alpha1.JobReasonQuotaExceeded {
		setWaiting(sj, reason, msg, now)
		return nil, quotaRetryDelay(sj, now), nil
	} else if refused {
		fail(sj, reason, msg, now)
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("create Job %s: %w", klog.KObj(job), err)
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Created Job", "job", klog.KObj(job))
	return job, 0, nil
}

// validateAgainstWorker checks what the API schema cannot: the worker-specific input size, input
// schema and maximum timeout. It returns a Finished reason and message, or "" when sj is acceptable.
func validateAgainstWorker(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker) (string, string) {
	inputErr := workerschema.CheckInput(w, []byte(inputText(sj)))
	if inputErr != nil && inputErr.Problem == workerschema.InputTooLarge {
		return seekv1alpha1.JobReasonInputTooLarge, fmt.Sprintf("spec.input is %d bytes; SeekWorker %q accepts at most %d", inputErr.Size, w.Name, inputErr.Limit)
	}
	if sj.Spec.Timeout != nil && w.Spec.Timeouts.MaximumTimeout != nil && sj.Spec.Timeout.Duration > w.Spec.Timeouts.MaximumTimeout.Duration {
		return seekv1alpha1.JobReasonInvalidTimeout, fmt.Sprintf("spec.timeout %s exceeds the maximum %s of SeekWorker %q", sj.Spec.Timeout.Duration, w.Spec.Timeouts.MaximumTimeout.Duration, w.Name)
	}
	switch {
	case inputErr == nil:
		return "", ""
	case inputErr.Problem == workerschema.SchemaBroken:
		return seekv1alpha1.JobReasonInvalidInput, fmt.Sprintf("SeekWorker %q has an invalid input schema: %v", w.Name, inputErr.Err)
	default:
		return seekv1alpha1.JobReasonInvalidInput, "spec." + inputErr.Field.Error()
	}
}

// admitted reports whether sj may start now: the worker has no concurrency limit, or its controller
// gave sj one of the slots.
// slotGrantBackstop is when a job that awaits the grant of a free slot looks again if no event came:
// the grant's own event (the worker's status) normally wakes it within milliseconds.
const slotGrantBackstop = 10 * time.Second

// errAwaitsSlot says that a job without a slot of its capped worker waits for the worker controller
// to grant the one the worker (as the cache shows it) has free, or to grant it to an older job and
// show every slot taken. Until then the job is left as it is: writing it "waiting for capacity" would
// cost a status write and an event, and say that all slots are in use when one is not.
var errAwaitsSlot = errors.New("awaits the grant of a free slot")

// hasFreeSlot reports whether the capped worker w has a slot its controller has not granted yet.
func hasFreeSlot(w *seekv1alpha1.SeekWorker) bool {
	limit := w.Spec.Limits.MaxConcurrentJobs
	return limit != nil && len(w.Status.ActiveJobs) < int(*limit) && w.Status.ObservedGeneration == w.Generation
}

func admitted(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker) bool {
	if w.Spec.Limits.MaxConcurrentJobs == nil {
		return true
	}
	for _, ref := range w.Status.ActiveJobs {
		if ref.UID == string(sj.UID) {
			return true
		}
	}
	return false
}

// observeJob reads the Job, its pods and the Job controller's failures to create them into sj's status,
// and ends sj when the Job ran out of time: then it deletes the Job. It returns when the next deadline
// falls due.
func (r *SeekJobReconciler) observeJob(ctx context.Context, sj *seekv1alpha1.SeekJob, job *batchv1.Job) (time.Duration, error) {
	now := r.Clock.Now()
	pods, err := r.listPods(ctx, sj, false)
	if err != nil {
		return 0, err
	}
	failedCreate := ""
	if !started(sj) && !hasLivePod(pods) {
		if failedCreate, err = r.failedCreate(ctx, job); err != nil {
			return 0, err
		}
	}
	if !setStatusFromJob(sj, job, pods, failedCreate, false, now) {
		// The Job finished but the cache has not shown the pod holding the outcome: ask the apiserver.
		if pods, err = r.listPods(ctx, sj, true); err != nil {
			return 0, err
		}
		setStatusFromJob(sj, job, pods, failedCreate, true, now)
	}
	expired := false
	if !sj.Status.State.IsTerminal() {
		var next time.Duration
		if expired, next = enforceDeadlines(sj, job, pods, now); !expired {
			if wait := collectorPending(pods, now); wait > 0 && (next == 0 || wait < next) {
				next = wait
			}
			return next, nil
		}
	}
	// sj ended: keep the end of its output while its pod is there, then stop a Job that ran out of time.
	if err := r.keepLogs(ctx, sj, pods); err != nil || !expired {
		return 0, err
	}
	// Deleted before the status write, as a cancel is: should the write fail, the next reconcile
	// still sees the Job (foreground deletion keeps it until its pods are gone) and ends sj alike.
	err = r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationForeground), client.Preconditions{UID: &job.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("delete Job %s: %w", klog.KObj(job), err)
	}
	return 0, nil
}

// keepLogs keeps the end of the worker's output in the pod of sj's latest attempt (see logs.go) and
// records it in sj's status. A pod whose worker never ran has nothing to keep.
func (r *SeekJobReconciler) keepLogs(ctx context.Context, sj *seekv1alpha1.SeekJob, pods []corev1.Pod) error {
	pod := podlogs.Newest(pods)
	if pod == nil || !workerRan(pod) {
		return nil
	}
	w := &seekv1alpha1.SeekWorker{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w); apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get SeekWorker %s: %w", sj.Spec.WorkerName, err)
	}
	logs, err := keepPodLogs(ctx, r.Client, r.APIReader, r.Logs, sj, w, pod)
	if err != nil {
		return err
	}
	sj.Status.Logs = logs
	return nil
}

// failedCreate returns the message of the Job controller's latest event saying it cannot create the
// Job's pod, or "".
func (r *SeekJobReconciler) failedCreate(ctx context.Context, job *batchv1.Job) (string, error) {
	events := &corev1.EventList{}
	if err := r.Client.List(ctx, events, client.InNamespace(job.Namespace), client.MatchingFields{eventObjectUIDField: string(job.UID)}); err != nil {
		return "", fmt.Errorf("list events of Job %s: %w", klog.KObj(job), err)
	}
	return latestFailedCreate(job, events.Items), nil
}

func (r *SeekJobReconciler) listPods(ctx context.Context, sj *seekv1alpha1.SeekJob, live bool) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	// The cache by its index; the apiserver by the label.
	var c client.Reader = r.Client
	var selector client.ListOption = client.MatchingFields{jobUIDLabelField: string(sj.UID)}
	if live {
		c, selector = r.APIReader, client.MatchingLabels{seekv1alpha1.LabelJobUID: string(sj.UID)}
	}
	if err := c.List(ctx, pods, client.InNamespace(sj.Namespace), selector); err != nil {
		return nil, fmt.Errorf("list pods of SeekJob %s: %w", klog.KObj(sj), err)
	}
	return pods.Items, nil
}

// recordTransition emits an event and metrics for a state change that was just written, and a
// Warning event when a job starts having trouble starting.
func (r *SeekJobReconciler) recordTransition(ctx context.Context, before, after *seekv1alpha1.SeekJob) {
	transitionRecorder{Recorder: r.Recorder, Metrics: r.Metrics}.record(ctx, before, after)
}

// transitionRecorder emits the events and metrics of a SeekJob's status change, for every writer of
// a SeekJob's status (the reconciler, the dispatcher). A pooled job gets no Normal event: an event
// is an API write, and a pooled job's happy path is three writes (create, lease, report); its
// Warnings stay.
type transitionRecorder struct {
	Recorder events.EventRecorder
	Metrics  *Metrics
}

// record emits an event and metrics for a state change that was just written, and a Warning event
// when a job starts having trouble starting.
func (t transitionRecorder) record(ctx context.Context, before, after *seekv1alpha1.SeekJob) {
	event := func(eventType, reason, msg string) {
		if eventType == corev1.EventTypeNormal && pooled(after) {
			return
		}
		t.Recorder.Eventf(after, nil, eventType, reason, string(after.Status.State), "%s", truncate(msg, maxEventNoteBytes))
	}
	if before.Status.State == after.Status.State {
		if reason, msg, ok := startTrouble(before, after); ok {
			event(corev1.EventTypeWarning, reason, msg)
		}
		return
	}
	ctrl.LoggerFrom(ctx).V(2).Info("SeekJob changed state", "from", before.Status.State, "to", after.Status.State)
	eventType := corev1.EventTypeNormal
	var reason, msg string
	switch after.Status.State {
	case seekv1alpha1.JobStateQueued:
		c := meta.FindStatusCondition(after.Status.Conditions, seekv1alpha1.JobStarted)
		if c.Reason == seekv1alpha1.JobReasonJobCreated {
			// Starting as it should: the Started condition records it, and an event would add an API
			// write to every job's path to its Job.
			t.Metrics.observeTransition(before, after)
			return
		}
		reason, msg = c.Reason, c.Message
		if _, _, trouble := startTrouble(before, after); trouble {
			eventType = corev1.EventTypeWarning
		}
	case seekv1alpha1.JobStateRunning:
		// No event: the Started condition records it, and an event per start would add an API write
		// to every job.
		t.Metrics.observeTransition(before, after)
		return
	default:
		c := meta.FindStatusCondition(after.Status.Conditions, seekv1alpha1.JobFinished)
		reason, msg = c.Reason, c.Message
		if after.Status.State != seekv1alpha1.JobStateCompleted {
			eventType = corev1.EventTypeWarning
		}
	}
	event(eventType, reason, msg)
	t.Metrics.observeTransition(before, after)
}

// startTrouble returns the Started reason and message of a queued job that has just started having
// trouble starting: its Job was refused by a quota, or exists and its pod cannot start (any reason but
// JobCreated). A change from one such cause to another (ErrImagePull and ImagePullBackOff alternate)
// is not new trouble.
func startTrouble(before, after *seekv1alpha1.SeekJob) (string, string, bool) {
	troubled := func(sj *seekv1alpha1.SeekJob) *metav1.Condition {
		c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted)
		if sj.Status.State != seekv1alpha1.JobStateQueued || c == nil || c.Status == metav1.ConditionTrue {
			return nil
		}
		if c.Reason == seekv1alpha1.JobReasonQuotaExceeded || (sj.Status.JobName != "" && c.Reason != seekv1alpha1.JobReasonJobCreated) {
			return c
		}
		return nil
	}
	c := troubled(after)
	if c == nil || troubled(before) != nil {
		return "", "", false
	}
	return c.Reason, c.Message, true
}

// soonest is the earliest of the positive durations (when the reconciler must run again), 0 if none.
func soonest(ds ...time.Duration) time.Duration {
	var out time.Duration
	for _, d := range ds {
		if d > 0 && (out == 0 || d < out) {
			out = d
		}
	}
	return out
}
