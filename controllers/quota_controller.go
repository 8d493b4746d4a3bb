package controllers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/tenants"
)

// finishedField indexes SeekJobs by whether they are finished ("true") in the cache.
const finishedField = "status.finished"

// TenantQuotaReconciler makes a tenant's ResourceQuota on SeekJobs (tenants.QuotaName) a cap on its
// unfinished jobs. Kubernetes' object count quota counts every SeekJob of the namespace, finished ones
// too, and these stay until their retention passes; so the quota's hard count is kept at the cap
// (annotation tenants.AnnotationMaxActiveJobs) plus the namespace's finished SeekJobs. The apiserver
// still enforces it, atomically, at every create: a job finishing frees a slot, a submission beyond the
// cap is refused with "exceeded quota".
type TenantQuotaReconciler struct {
	Client client.Client
}

// +kubebuilder:rbac:groups="",resources=resourcequotas,verbs=get;list;watch;patch

// Reconcile sets the quota's hard count from its cap and the namespace's finished SeekJobs.
func (r *TenantQuotaReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	quota := &corev1.ResourceQuota{}
	if err := r.Client.Get(ctx, req.NamespacedName, quota); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	limit, err := strconv.ParseInt(quota.Annotations[tenants.AnnotationMaxActiveJobs], 10, 64)
	if err != nil || limit < 0 {
		return ctrl.Result{}, nil //nolint:nilerr // not a cap this controller keeps: nothing to retry
	}
	finished := &seekv1alpha1.SeekJobList{}
	if err := r.Client.List(ctx, finished, client.InNamespace(req.Namespace), client.MatchingFields{finishedField: "true"},
		client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("list the finished SeekJobs of %s: %w", req.Namespace, err)
	}
	want := quotaHard(limit, len(finished.Items))
	if have, ok := quota.Spec.Hard[tenants.QuotaResource]; ok && have.Cmp(want) == 0 {
		return ctrl.Result{}, nil
	}
	// No optimistic lock: the apiserver updates the quota's status at every create in the namespace, so a
	// locked patch would mostly conflict; this controller alone sets the hard count, from its cache.
	patch := client.MergeFrom(quota.DeepCopy())
	if quota.Spec.Hard == nil {
		quota.Spec.Hard = corev1.ResourceList{}
	}
	quota.Spec.Hard[tenants.QuotaResource] = want
	if err := r.Client.Patch(ctx, quota, patch); err != nil {
		return ctrl.Result{}, fmt.Errorf("set the hard count of ResourceQuota %s: %w", klog.KObj(quota), err)
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Set the SeekJob quota", "maxActiveJobs", limit, "finished", len(finished.Items), "hard", want.String())
	return ctrl.Result{}, nil
}

// quotaHard is the hard count that caps unfinished SeekJobs at limit when finished of them exist.
func quotaHard(limit int64, finished int) resource.Quantity {
	return *resource.NewQuantity(limit+int64(finished), resource.DecimalSI)
}

// finishedIndexValue is the finishedField index value of a SeekJob.
func finishedIndexValue(o client.Object) []string {
	return []string{strconv.FormatBool(o.(*seekv1alpha1.SeekJob).Status.State.IsTerminal())}
}

// finishedChanged passes the SeekJob events that change how many finished jobs a namespace has: a job
// finishing, and a finished job created or deleted.
var finishedChanged = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool { return e.Object.(*seekv1alpha1.SeekJob).Status.State.IsTerminal() },
	DeleteFunc: func(e event.DeleteEvent) bool { return e.Object.(*seekv1alpha1.SeekJob).Status.State.IsTerminal() },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.(*seekv1alpha1.SeekJob).Status.State.IsTerminal() != e.ObjectNew.(*seekv1alpha1.SeekJob).Status.State.IsTerminal()
	},
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// quotaSpecChanged passes the quota events this controller acts on: a quota appearing, and a change
// of its cap annotation or its hard counts. The apiserver updates a quota's status at every create in
// its namespace, and the quota controller at every change of what it counts: those updates carry
// nothing to act on, and reacting to them would cost a patch per job.
var quotaSpecChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		before, after := e.ObjectOld.(*corev1.ResourceQuota), e.ObjectNew.(*corev1.ResourceQuota)
		return before.Annotations[tenants.AnnotationMaxActiveJobs] != after.Annotations[tenants.AnnotationMaxActiveJobs] ||
			!equality.Semantic.DeepEqual(before.Spec.Hard, after.Spec.Hard)
	},
}

// quotaBatchDelay is how long a job's finish waits before its namespace's quota is updated, so the
// finishes of a burst share one patch: the quota costs an API write per namespace and second at most,
// not one per job. A finished job frees its slot that much later.
const quotaBatchDelay = time.Second

// quotaOfNamespace maps a SeekJob to its namespace's tenant quota (a reconcile of a namespace without
// one ends at a cache miss).
func quotaOfNamespace(o client.Object) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: tenants.QuotaName}}
}

// enqueueQuotaLater enqueues a SeekJob's namespace quota after quotaBatchDelay. The work queue holds
// one pending entry per quota, so every finish within the delay joins the first one's reconcile.
type enqueueQuotaLater struct{}

func (enqueueQuotaLater) add(o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	q.AddAfter(quotaOfNamespace(o), quotaBatchDelay)
}

func (h enqueueQuotaLater) Create(_ context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(e.Object, q)
}

func (h enqueueQuotaLater) Update(_ context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(e.ObjectNew, q)
}

func (h enqueueQuotaLater) Delete(_ context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	h.add(e.Object, q)
}

func (enqueueQuotaLater) Generic(context.Context, event.TypedGenericEvent[client.Object], workqueue.TypedRateLimitingInterface[reconcile.Request]) {
}

func setupTenantQuotas(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).
		Named("tenant-quota").
		For(&corev1.ResourceQuota{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetName() == tenants.QuotaName
		}), quotaSpecChanged)).
		Watches(&seekv1alpha1.SeekJob{}, enqueueQuotaLater{}, builder.WithPredicates(finishedChanged)).
		WithOptions(controller.Options{RateLimiter: retryLimiter()}).
		Complete(&TenantQuotaReconciler{Client: mgr.GetClient()})
	if err != nil {
		return fmt.Errorf("set up the tenant quota controller: %w", err)
	}
	return nil
}
