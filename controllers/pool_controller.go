package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// poolRefusedRetry is how long the pool controller waits before creating a pool Job the apiserver
// refused (a quota, an admission policy) again.
const poolRefusedRetry = 30 * time.Second

// PoolReconciler keeps, for each Pooled SeekWorker and tenant namespace with jobs for it, a pool: a
// batch/v1 Job whose parallelism follows the namespace's queue of that worker's jobs. Its key is
// (namespace, worker name). It writes pool Jobs only, never a SeekJob: the dispatcher leases the jobs
// to the pool's pods, and the SeekJob reconciler watches the pods holding them.
type PoolReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Clock    clock.PassiveClock
	Options  PoolOptions
}

// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete

// Reconcile sizes the pool of worker req.Name in namespace req.Namespace: it raises the parallelism
// of the pool's newest Job, or creates the next generation, so that the pool has as many pods as it
// has unfinished jobs, within the worker's pool bounds.
func (r *PoolReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	w := &seekv1alpha1.SeekWorker{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: req.Name}, w); err != nil {
		// A deleted worker's pool Jobs go with it (owner references).
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !w.Pooled() || w.DeletionTimestamp != nil {
		// A worker switched to Job mode: its pool's pods exit when idle, leasing nothing new.
		return ctrl.Result{}, nil
	}
	ns := req.Namespace
	jobs := &seekv1alpha1.SeekJobList{}
	// Read only, so the cache's objects themselves: a pool may have a thousand queued jobs, and this
	// runs at every change of one of them.
	if err := r.Client.List(ctx, jobs, client.MatchingFields{activePoolField: poolKey(ns, w.Name)}, client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, fmt.Errorf("list SeekJobs of pool %s: %w", poolKey(ns, w.Name), err)
	}
	poolJobs := &batchv1.JobList{}
	if err := r.Client.List(ctx, poolJobs, client.InNamespace(ns), client.MatchingFields{poolLabelField: w.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list Jobs of pool %s: %w", poolKey(ns, w.Name), err)
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingFields{poolLabelField: w.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list pods of pool %s: %w", poolKey(ns, w.Name), err)
	}

	minPods, maxPods, idle := w.PoolSize()
	demand, requeue := poolDemand(jobs.Items, idle, r.Clock.Now())
	if !meta.IsStatusConditionTrue(w.Status.Conditions, seekv1alpha1.WorkerReady) {
		demand = 0 // its jobs wait (WorkerNotReady) and are leased to nobody
	}
	plan := planPool(poolJobs.Items, pods.Items, poolTemplateHash(w, r.Options.RunnerImage), clampPods(demand, minPods, maxPods))
	switch {
	case plan.raise != nil:
		if err := r.raise(ctx, plan.raise, plan.parallelism); err != nil {
			return ctrl.Result{}, err
		}
	case plan.generation > 0:
		job := buildPoolJob(w, ns, plan.generation, plan.parallelism, r.Options)
		if err := r.Client.Create(ctx, job); apierrors.IsAlreadyExists(err) {
			// Made by an earlier reconcile the cache does not show yet: its event reconciles again.
			return ctrl.Result{RequeueAfter: requeue}, nil
		} else if reason, msg, refused := refusal(err); refused {
			// Regarding the Job that could not be made, as the Job controller reports a pod it cannot
			// create; the SeekJob reconciler reads it as its queued jobs' start trouble.
			r.Recorder.Eventf(job, w, corev1.EventTypeWarning, reasonFailedCreate, reason, "%s", truncate(msg, maxEventNoteBytes))
			return ctrl.Result{RequeueAfter: soonest(requeue, poolRefusedRetry)}, nil
		} else if err != nil {
			return ctrl.Result{}, fmt.Errorf("create pool Job %s: %w", klog.KObj(job), err)
		}
		ctrl.LoggerFrom(ctx).V(2).Info("Created pool Job", "job", klog.KObj(job), "parallelism", plan.parallelism)
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// raise sets the parallelism of job to n, which is higher. The patch carries the resourceVersion: a
// Job the cache shows stale (its parallelism raised further since) is never lowered, which would make
// the Job controller kill pods, maybe mid-job; the conflict retries with the newer Job.
func (r *PoolReconciler) raise(ctx context.Context, job *batchv1.Job, n int32) error {
	patch := client.MergeFromWithOptions(job.DeepCopy(), client.MergeFromWithOptimisticLock{})
	job.Spec.Parallelism = ptr.To(n)
	if err := r.Client.Patch(ctx, job, patch); err != nil {
		return fmt.Errorf("raise parallelism of pool Job %s to %d: %w", klog.KObj(job), n, err)
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Raised pool parallelism", "job", klog.KObj(job), "parallelism", n)
	return nil
}

// poolDemand counts the pods a pool's jobs need now: one for each job a pod holds, is leasable, or
// retries within idle (a pod kept for it would not be idle long enough to exit). Jobs of Job mode,
// being canceled or deleted, take none unless a pod still holds them. requeue is when a later retry
// comes within idle, and so needs a pod (0: none).
func poolDemand(jobs []seekv1alpha1.SeekJob, idle time.Duration, now time.Time) (demand int32, requeue time.Duration) {
	for i := range jobs {
		sj := &jobs[i]
		if sj.Status.State.IsTerminal() {
			continue
		}
		if leased(sj) {
			demand++
			continue
		}
		ok, wait := leasable(sj, now)
		switch {
		case ok:
			demand++
		case wait > 0 && wait <= idle:
			demand++
		case wait > 0:
			requeue = soonest(requeue, wait-idle)
		}
	}
	return demand, requeue
}

// clampPods is the desired size of a pool with the given demand.
func clampPods(demand, minPods, maxPods int32) int32 {
	return min(max(demand, minPods), maxPods)
}

// poolPlan is what the pool controller does to a pool: raise the parallelism of its newest Job, or
// create a new generation with that parallelism, or (zero value) nothing.
type poolPlan struct {
	raise       *batchv1.Job
	generation  int
	parallelism int32
}

// planPool decides how a pool of the given Jobs and pods reaches desired live pods. Pods of other
// generations that are still alive count against desired. The newest Job grows if it can still make
// pods: not finished or being deleted, none of its pods exited 0 (then a work-queue Job makes no new
// pods), and built from the current template hash. Otherwise the next generation is created.
// Parallelism only ever goes up; a pool shrinks by its pods' idle exits.
func planPool(jobs []batchv1.Job, pods []corev1.Pod, hash string, desired int32) poolPlan {
	var newest *batchv1.Job
	for i := range jobs {
		if g := poolGeneration(&jobs[i]); g > 0 && (newest == nil || g > poolGeneration(newest)) {
			newest = &jobs[i]
		}
	}
	usable := newest != nil && poolJobUsable(newest, pods, hash)
	var others int32
	for i := range pods {
		p := &pods[i]
		if !podLive(p) {
			continue
		}
		if owner := metav1.GetControllerOf(p); usable && owner != nil && owner.UID == newest.UID {
			continue
		}
		others++
	}
	want := desired - others
	switch {
	case want <= 0:
		return poolPlan{}
	case usable && want > ptr.Deref(newest.Spec.Parallelism, 0):
		return poolPlan{raise: newest, parallelism: want}
	case usable:
		return poolPlan{}
	case newest == nil:
		return poolPlan{generation: 1, parallelism: want}
	default:
		return poolPlan{generation: poolGeneration(newest) + 1, parallelism: want}
	}
}

// poolJobUsable reports whether the pool Job can still make pods of the current template hash.
func poolJobUsable(job *batchv1.Job, pods []corev1.Pod, hash string) bool {
	if job.DeletionTimestamp != nil || jobFinished(job) || job.Status.Succeeded > 0 || job.Labels[seekv1alpha1.LabelPoolTemplate] != hash {
		return false
	}
	for i := range pods {
		// The Job's status may not count a pod that just exited 0 yet.
		if owner := metav1.GetControllerOf(&pods[i]); owner != nil && owner.UID == job.UID && pods[i].Status.Phase == corev1.PodSucceeded {
			return false
		}
	}
	return true
}

// poolOfObject maps a pool Job or pod to its pool.
func poolOfObject(_ context.Context, o client.Object) []reconcile.Request {
	worker := o.GetLabels()[seekv1alpha1.LabelPool]
	if worker == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: worker}}}
}

// waitsForPod reports whether sj is a pool's unfinished job that no pod holds: queued, or waiting to
// retry. Only such a job adds to its pool's demand without a pod of its own.
func waitsForPod(sj *seekv1alpha1.SeekJob) bool {
	return !sj.Status.State.IsTerminal() && !leased(sj) && sj.Spec.CancelRequest == nil && sj.DeletionTimestamp == nil &&
		sj.Status.JobName == ""
}

// mayRaisePoolDemand passes the SeekJob events after which its pool may need more pods: a new job,
// and a job that waits for a pod again (its lease ended without finishing it). A job leased, finished
// or deleted only lowers the demand, and a pool shrinks by its pods' idle exits alone, so those events
// (two of every pooled job's three writes) cost no reconcile, which lists the pool's jobs.
var mayRaisePoolDemand = predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return true },
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, oldOK := e.ObjectOld.(*seekv1alpha1.SeekJob)
		sj, newOK := e.ObjectNew.(*seekv1alpha1.SeekJob)
		return !oldOK || !newOK || (waitsForPod(sj) && !waitsForPod(old))
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return true },
}

// poolOfSeekJob maps a SeekJob to its pool when its worker is Pooled (as the cache shows it).
func poolOfSeekJob(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		sj := o.(*seekv1alpha1.SeekJob)
		if sj.Status.JobName != "" {
			return nil // Job mode
		}
		w := &seekv1alpha1.SeekWorker{}
		if err := c.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w); err != nil || !w.Pooled() {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: sj.Namespace, Name: w.Name}}}
	}
}

// poolsOfWorker maps a Pooled SeekWorker to its pools: every namespace with a pool Job of it or an
// unfinished job for it.
func poolsOfWorker(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		w := o.(*seekv1alpha1.SeekWorker)
		if !w.Pooled() {
			return nil
		}
		namespaces := map[string]bool{}
		poolJobs := &batchv1.JobList{}
		if err := c.List(ctx, poolJobs, client.MatchingFields{poolLabelField: w.Name}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing pool Jobs of worker", "worker", w.Name)
			return nil
		}
		for i := range poolJobs.Items {
			namespaces[poolJobs.Items[i].Namespace] = true
		}
		jobs := &seekv1alpha1.SeekJobList{}
		if err := c.List(ctx, jobs, client.MatchingFields{unfinishedWorkerField: w.Name}, client.UnsafeDisableDeepCopy); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing SeekJobs of worker", "worker", w.Name)
			return nil
		}
		for i := range jobs.Items {
			if !jobs.Items[i].Status.State.IsTerminal() {
				namespaces[jobs.Items[i].Namespace] = true
			}
		}
		reqs := make([]reconcile.Request, 0, len(namespaces))
		for ns := range namespaces {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: w.Name}})
		}
		return reqs
	}
}
