package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/workerschema"
)

// SeekWorkerReconciler owns a SeekWorker's status: the Ready condition and, for Job-mode workers with a
// concurrency limit, the list of jobs holding a slot. Slots are granted here, one worker at a time and
// under the apiserver's optimistic concurrency, so no two managers or reconciles can over-admit.
type SeekWorkerReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	// PoolsEnabled is false when the manager serves no dispatch endpoint: Pooled workers are then not
	// Ready.
	PoolsEnabled bool
}

// +kubebuilder:rbac:groups=seek-api.com,resources=seekworkers,verbs=get;list;watch
// +kubebuilder:rbac:groups=seek-api.com,resources=seekworkers/status,verbs=get;update;patch

// Reconcile computes the worker's status and writes it once if it changed.
func (r *SeekWorkerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	w := &seekv1alpha1.SeekWorker{}
	if err := r.Client.Get(ctx, req.NamespacedName, w); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := w.DeepCopy()
	setWorkerReady(w, r.PoolsEnabled, r.Clock.Now())

	w.Status.ActiveJobs = nil
	// A Pooled worker's jobs take no slots: the dispatcher enforces its limit when leasing.
	if limit := w.Spec.Limits.MaxConcurrentJobs; limit != nil && !w.Pooled() {
		jobs := &seekv1alpha1.SeekJobList{}
		// Read only: the cache's objects themselves, and only the unfinished jobs (slots are theirs).
		if err := r.Client.List(ctx, jobs, client.MatchingFields{unfinishedWorkerField: w.Name}, client.UnsafeDisableDeepCopy); err != nil {
			return ctrl.Result{}, fmt.Errorf("list SeekJobs of worker %s: %w", w.Name, err)
		}
		w.Status.ActiveJobs = assignSlots(before.Status.ActiveJobs, jobs.Items, int(*limit))
	}
	w.Status.ActiveJobCount = int32(len(w.Status.ActiveJobs))
	w.Status.ObservedGeneration = w.Generation
	if equality.Semantic.DeepEqual(before.Status, w.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Client.Status().Update(ctx, w); apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		// Our copy was stale (the newer version's watch event reconciles again) or the object is gone.
		ctrl.LoggerFrom(ctx).V(4).Info("Status update skipped", "reason", apierrors.ReasonForError(err))
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, fmt.Errorf("update status of SeekWorker %s: %w", klog.KObj(w), err)
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Updated SeekWorker status", "activeJobs", w.Status.ActiveJobCount)
	wasReady := meta.IsStatusConditionTrue(before.Status.Conditions, seekv1alpha1.WorkerReady)
	ready := meta.FindStatusCondition(w.Status.Conditions, seekv1alpha1.WorkerReady)
	if wasReady != (ready.Status == metav1.ConditionTrue) || before.Status.ObservedGeneration == 0 {
		eventType := corev1.EventTypeNormal
		if ready.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(w, nil, eventType, ready.Reason, "Validate", "%s", truncate(ready.Message, maxEventNoteBytes))
	}
	return ctrl.Result{}, nil
}

// setWorkerReady computes the Ready condition: the input schema, if any, must compile, and a Pooled
// worker needs the manager's dispatch endpoint (poolsEnabled).
func setWorkerReady(w *seekv1alpha1.SeekWorker, poolsEnabled bool, now time.Time) {
	cond := metav1.Condition{
		Type:               seekv1alpha1.WorkerReady,
		Status:             metav1.ConditionTrue,
		Reason:             seekv1alpha1.WorkerReasonValid,
		Message:            "The worker accepts jobs",
		ObservedGeneration: w.Generation,
		LastTransitionTime: metav1.NewTime(now),
	}
	if w.Spec.InputSchema != nil {
		if _, err := workerschema.Compile(w.Spec.InputSchema.Raw); err != nil {
			cond.Status = metav1.ConditionFalse
			cond.Reason = seekv1alpha1.WorkerReasonInvalidInputSchema
			cond.Message = truncate("spec.inputSchema: "+err.Error(), 32768)
		}
	}
	if cond.Status == metav1.ConditionTrue && w.Pooled() && !poolsEnabled {
		cond.Status = metav1.ConditionFalse
		cond.Reason = seekv1alpha1.WorkerReasonPooledExecutionDisabled
		cond.Message = "spec.execution.mode is Pooled but the manager serves no dispatch endpoint (--dispatch-bind-address=0): its jobs wait until it does"
	}
	meta.SetStatusCondition(&w.Status.Conditions, cond)
}

// assignSlots computes which jobs hold a concurrency slot. Holders keep their slot until they finish;
// running jobs without a slot (the limit was added later) take one; free
// slots go to queued jobs, oldest first. The result may exceed limit after the limit was lowered: running
// jobs are never evicted, but nothing new is admitted until the count drops below it.
func assignSlots(current []seekv1alpha1.JobReference, jobs []seekv1alpha1.SeekJob, limit int) []seekv1alpha1.JobReference {
	byUID := make(map[string]*seekv1alpha1.SeekJob, len(jobs))
	for i := range jobs {
		byUID[string(jobs[i].UID)] = &jobs[i]
	}
	// A holder keeps its slot until the job controller reports it finished, even when canceled: until
	// then it may have a Job running.
	holds := func(sj *seekv1alpha1.SeekJob) bool {
		return sj != nil && !sj.Status.State.IsTerminal()
	}
	slots := []seekv1alpha1.JobReference{}
	taken := map[string]bool{}
	take := func(sj *seekv1alpha1.SeekJob) {
		slots = append(slots, seekv1alpha1.JobReference{Namespace: sj.Namespace, Name: sj.Name, UID: string(sj.UID)})
		taken[string(sj.UID)] = true
	}
	for _, ref := range current {
		if sj := byUID[ref.UID]; holds(sj) && !taken[ref.UID] {
			take(sj)
		}
	}
	var waiting []*seekv1alpha1.SeekJob
	for i := range jobs {
		sj := &jobs[i]
		switch {
		case taken[string(sj.UID)] || !holds(sj):
		case sj.Status.State == seekv1alpha1.JobStateRunning || sj.Status.JobName != "":
			// Its Job exists (it may still be starting): it runs without a slot.
			take(sj)
		case sj.Spec.CancelRequest == nil:
			waiting = append(waiting, sj)
		}
	}
	slices.SortFunc(waiting, func(a, b *seekv1alpha1.SeekJob) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, sj := range waiting {
		if len(slots) >= limit {
			break
		}
		take(sj)
	}
	if len(slots) == 0 {
		return nil
	}
	return slots
}
