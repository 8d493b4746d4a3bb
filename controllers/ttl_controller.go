package controllers

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// SeekJobTTLReconciler deletes finished SeekJobs once their retention (ttlAfterFinished) has passed.
// It never polls: each finished job is requeued for the moment it expires.
type SeekJobTTLReconciler struct {
	Client client.Client
	Clock  clock.PassiveClock
}

// +kubebuilder:rbac:groups=seek-api.com,resources=seekjobs,verbs=get;list;watch;delete

// Reconcile deletes an expired finished SeekJob, or requeues it for when it expires.
func (r *SeekJobTTLReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sj := &seekv1alpha1.SeekJob{}
	if err := r.Client.Get(ctx, req.NamespacedName, sj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !sj.Status.State.IsTerminal() || sj.Status.CompletionTime == nil || sj.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	if callbackPending(sj, r.Clock.Now()) {
		// Kept until its callback is settled (delivered or given up): the ledger's change requeues it.
		return ctrl.Result{}, nil
	}
	w := &seekv1alpha1.SeekWorker{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get SeekWorker %s: %w", sj.Spec.WorkerName, err)
		}
		w = nil
	}
	expiry := sj.Status.CompletionTime.Add(effectiveTTL(sj, w))
	if left := expiry.Sub(r.Clock.Now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	err := r.Client.Delete(ctx, sj, client.Preconditions{UID: &sj.UID}, client.PropagationPolicy("Background"))
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("delete expired SeekJob %s: %w", klog.KObj(sj), err)
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Deleted expired SeekJob", "finishedAt", ptr.Deref(sj.Status.CompletionTime, metav1.Time{}).Time)
	return ctrl.Result{}, nil
}

// callbackPending reports whether a finished job still has a callback delivery to make: one that is
// Pending in the ledger (a retry or a redelivery), or one the callback controller has yet to plan for
// an event that happened. It goes by the events that happened, not by the ledger alone: a job that
// asked only for Started and finished without starting has no event to deliver and never gets a
// ledger, and waiting for one would keep it forever.
func callbackPending(sj *seekv1alpha1.SeekJob, now time.Time) bool {
	ledger := planDeliveries(sj, now)
	return ledger != nil && slices.ContainsFunc(ledger.Deliveries, func(d seekv1alpha1.CallbackDelivery) bool {
		return d.State == seekv1alpha1.CallbackPending
	})
}
