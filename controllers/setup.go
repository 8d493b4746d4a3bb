// Package controllers holds the Seek operator's controllers: job execution (SeekJob → batch/v1 Job),
// worker status and admission (SeekWorker), retention (deleting finished SeekJobs), callbacks
// (delivering each job's events to its callback URL, signed and retried, with a ledger in status) and
// the tenants' caps on unfinished SeekJobs (their ResourceQuotas).
package controllers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/podlogs"
	"github.com/seek-api/seek-operator/internal/reconnect"
	"github.com/seek-api/seek-operator/internal/signingkeys"
	"github.com/seek-api/seek-operator/internal/tenants"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// unfinishedWorkerField indexes the SeekJobs that have not finished by spec.workerName in the cache:
// what a worker's slots, waiting jobs and pools are made of. Finished jobs, retained for a day by
// default and so most of them, are not in it: a worker's events cost what its active jobs cost.
const unfinishedWorkerField = "seek-api.com/unfinished-worker"

// cacheIndex is a field index of the manager's cache.
type cacheIndex struct {
	obj   client.Object
	field string
	value client.IndexerFunc
}

// cacheIndexes are the indexes of the manager's cache. The controllers find what belongs to a job,
// a worker or a pool through them: a label selector on the cache would scan the whole namespace,
// which holds the pods of every retained job too.
func cacheIndexes() []cacheIndex {
	return []cacheIndex{
		{&seekv1alpha1.SeekJob{}, unfinishedWorkerField, unfinishedWorker},
		{&seekv1alpha1.SeekJob{}, activePoolField, activePoolIndexValue},
		{&seekv1alpha1.SeekJob{}, poolPodUIDField, poolPodUIDIndexValue},
		{&seekv1alpha1.SeekJob{}, finishedField, finishedIndexValue},
		{&corev1.Event{}, eventObjectUIDField, eventObjectUID},
		{&corev1.Pod{}, jobUIDLabelField, labelValue(seekv1alpha1.LabelJobUID)},
		{&corev1.Pod{}, poolLabelField, labelValue(seekv1alpha1.LabelPool)},
		{&batchv1.Job{}, poolLabelField, labelValue(seekv1alpha1.LabelPool)},
	}
}

// Indexes of pods and Jobs by the labels that say whose they are: a SeekJob's (Job mode, by its UID)
// or a pool's (by its worker's name; namespaced lists make that the pool).
const (
	jobUIDLabelField = "metadata.labels.seek-api.com/job-uid"
	poolLabelField   = "metadata.labels.seek-api.com/pool"
)

// labelValue indexes objects by the value of one label, when they have it.
func labelValue(key string) client.IndexerFunc {
	return func(o client.Object) []string {
		if v := o.GetLabels()[key]; v != "" {
			return []string{v}
		}
		return nil
	}
}

// unfinishedWorker is the unfinishedWorkerField index's value of a SeekJob.
func unfinishedWorker(o client.Object) []string {
	if sj := o.(*seekv1alpha1.SeekJob); !sj.Status.State.IsTerminal() {
		return []string{string(sj.Spec.WorkerName)}
	}
	return nil
}

// eventObjectUIDField indexes Events by the UID of the object they are about.
const eventObjectUIDField = "involvedObject.uid"

// eventObjectUID is the eventObjectUIDField index's value of an Event.
func eventObjectUID(o client.Object) []string {
	return []string{string(o.(*corev1.Event).InvolvedObject.UID)}
}

// failedCreateEvents selects the Events the cache holds: the Job controller's failures to create a
// Job's pod (a missing ServiceAccount or RuntimeClass, an admission policy, a pod quota). Only these
// show why a Job has no pod; nothing in the Job's status does.
var failedCreateEvents = fields.SelectorFromSet(fields.Set{"involvedObject.kind": "Job", "reason": reasonFailedCreate})

// Options configure the controllers.
type Options struct {
	// JobConcurrency is how many SeekJobs are reconciled in parallel.
	JobConcurrency int
	// Clock is the time source; the real clock when nil.
	Clock clock.PassiveClock
	// CredentialsNamespace holds the webhook signing secrets.
	CredentialsNamespace string
	// Callbacks configure webhook delivery.
	Callbacks CallbackOptions
	// DefaultQueueTimeout is how long a job whose SeekWorker does not exist may stay Queued before it
	// fails with reason QueueTimeout (a job's spec.queueTimeout may shorten it); 0 means no limit.
	// Workers that exist set their own (timeouts.queueTimeout).
	DefaultQueueTimeout time.Duration
	// Pools configure pooled execution.
	Pools PoolOptions
}

// PoolOptions configure pooled execution: the pool pods and the dispatch endpoint they lease jobs from.
type PoolOptions struct {
	// RunnerImage is the image holding the Seek runner, copied into every pool pod by an init container.
	RunnerImage string
	// DispatchBindAddress is where the manager serves the dispatch endpoint; "0" disables it (and with
	// it pooled execution).
	DispatchBindAddress string
	// DispatchURL is the dispatch endpoint's URL as pool pods reach it (resolved by the manager from its
	// Service when not given).
	DispatchURL string
	// SilenceLimit is how long a pool pod may say nothing of an attempt it holds (no heartbeat, progress
	// or report) before the attempt is released and leased again; dispatch.SilenceLimit when zero.
	SilenceLimit time.Duration
}

// Enabled reports whether the manager serves the dispatch endpoint: without it no pool pod can lease a
// job, and Pooled workers are not Ready.
func (o PoolOptions) Enabled() bool {
	return o.DispatchBindAddress != "" && o.DispatchBindAddress != "0"
}

// CallbackOptions configure webhook delivery.
type CallbackOptions struct {
	// Policy is the SSRF policy every attempt is checked against at connect time.
	Policy webhook.Policy
	// Timeout bounds one attempt; DefaultCallbackTimeout when zero.
	Timeout time.Duration
	// Schedule is the delay before each attempt; webhook.DefaultSchedule when empty.
	Schedule []time.Duration
	// Concurrency is how many deliveries run at once; DefaultCallbackConcurrency when zero. A slow
	// receiver holds one of them for at most Timeout, and never a job reconciler.
	Concurrency int
	// TenantConcurrency is how many of them one tenant (namespace) may hold at once; a quarter of
	// Concurrency (at least 1) when zero, at most Concurrency. A tenant's attempts beyond it wait,
	// holding no worker, for one of its own to end: a tenant whose receiver hangs delays its own
	// deliveries, not the others'.
	TenantConcurrency int
}

// Callback defaults.
const (
	DefaultCallbackTimeout     = 15 * time.Second
	DefaultCallbackConcurrency = 32
	callbackJitter             = 0.1
)

// DefaultCallbackTenantConcurrency is a quarter of the callback concurrency, at least 1: with three
// tenants' receivers hanging at once, a quarter of the workers still serves everybody else.
func DefaultCallbackTenantConcurrency(concurrency int) int {
	return max(1, concurrency/4)
}

// CacheOptions restricts the manager's cache to what the controllers need: Jobs and Pods carrying the
// SeekJob label, the Job controller's FailedCreate events, the webhook signing Secrets of the
// credentials namespace, the tenants' quotas, and no managedFields on anything.
func CacheOptions(credentialsNamespace string) cache.Options {
	// Every Job and pod the controllers create carries the worker label: one per SeekJob (Job mode) and
	// the pools (Pooled mode).
	req, err := labels.NewRequirement(seekv1alpha1.LabelWorker, selection.Exists, nil)
	if err != nil {
		panic(err)
	}
	ours := labels.NewSelector().Add(*req)
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		// Informers reconnect within a second of an apiserver's return, not after the reflector's
		// back-off of up to a minute: jobs move again at once after an apiserver restart.
		NewInformer: reconnect.NewInformer,
		ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}:  {Label: ours},
			&corev1.Pod{}:   {Label: ours},
			&corev1.Event{}: {Field: failedCreateEvents},
			&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{signingkeys.Label: "true"}),
				Namespaces: map[string]cache.Config{credentialsNamespace: {}}},
			&corev1.ResourceQuota{}: {Label: labels.SelectorFromSet(labels.Set{tenants.Label: "true"})},
		},
	}
}

// SetupWithManager registers the index and all controllers with mgr and returns the job metrics
// (the caller registers them with a Prometheus registry).
func SetupWithManager(mgr ctrl.Manager, opts Options) (*Metrics, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.JobConcurrency <= 0 {
		opts.JobConcurrency = 16
	}
	ctx := context.Background()
	for _, ix := range cacheIndexes() {
		if err := mgr.GetFieldIndexer().IndexField(ctx, ix.obj, ix.field, ix.value); err != nil {
			return nil, fmt.Errorf("index %T by %s: %w", ix.obj, ix.field, err)
		}
	}
	c := mgr.GetClient()
	metrics := NewMetrics(mgr.GetCache())

	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("make a clientset for pod logs: %w", err)
	}
	jobs := &SeekJobReconciler{Client: c, APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("seek-job-controller"), Clock: opts.Clock, Metrics: metrics,
		DefaultQueueTimeout: opts.DefaultQueueTimeout, Collector: opts.Pools, Logs: podlogs.New(clientset)}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("seekjob").
		For(&seekv1alpha1.SeekJob{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToSeekJob)).
		Watches(&corev1.Event{}, handler.EnqueueRequestsFromMapFunc(eventToSeekJob)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(poolPodToSeekJobs(c)), builder.WithPredicates(poolObjects)).
		Watches(&corev1.Event{}, handler.EnqueueRequestsFromMapFunc(poolEventToSeekJobs(c))).
		Watches(&seekv1alpha1.SeekWorker{}, handler.EnqueueRequestsFromMapFunc(waitingJobsOfWorker(c))).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.JobConcurrency, RateLimiter: retryLimiter()}).
		Complete(jobs)
	if err != nil {
		return nil, fmt.Errorf("set up SeekJob controller: %w", err)
	}

	workers := &SeekWorkerReconciler{Client: c, Recorder: mgr.GetEventRecorder("seek-worker-controller"), Clock: opts.Clock, PoolsEnabled: opts.Pools.Enabled()}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("seekworker").
		For(&seekv1alpha1.SeekWorker{}).
		Watches(&seekv1alpha1.SeekJob{}, handler.EnqueueRequestsFromMapFunc(limitedWorkerOfJob(c))).
		WithOptions(controller.Options{RateLimiter: retryLimiter()}).
		Complete(workers)
	if err != nil {
		return nil, fmt.Errorf("set up SeekWorker controller: %w", err)
	}

	ttl := &SeekJobTTLReconciler{Client: c, Clock: opts.Clock}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("seekjob-ttl").
		For(&seekv1alpha1.SeekJob{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.(*seekv1alpha1.SeekJob).Status.State.IsTerminal()
		}))).
		WithOptions(controller.Options{RateLimiter: retryLimiter()}).
		Complete(ttl)
	if err != nil {
		return nil, fmt.Errorf("set up SeekJob TTL controller: %w", err)
	}

	if err := setupPools(mgr, opts); err != nil {
		return nil, err
	}
	if err := setupCallbacks(mgr, opts, metrics.Callbacks); err != nil {
		return nil, err
	}
	if err := setupTenantQuotas(mgr); err != nil {
		return nil, err
	}
	// The dispatch endpoint of the pool pods (pooled execution).
	if err := setupDispatcher(mgr, opts, metrics); err != nil {
		return nil, err
	}
	return metrics, nil
}

// retryLimiter is the back-off of the items whose reconcile failed: each item's wait doubles from
// 10 ms up to 10 s, and nothing limits them overall. controller-runtime's default lets an item wait up
// to 1000 s and all failed items through at 10 a second: after an apiserver outage, during which every
// busy job's reconcile failed, a thousand jobs would take minutes to move again. With this, each
// retries within 10 s of the apiserver's return; the client's QPS bounds the load.
func retryLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](10*time.Millisecond, 10*time.Second)
}

// poolObjects selects the pool Jobs and pods.
var poolObjects = predicate.NewPredicateFuncs(func(o client.Object) bool {
	return o.GetLabels()[seekv1alpha1.LabelPool] != ""
})

// setupPools registers the pool controller: a small queue of pools, each reconciled on its jobs', its
// Jobs', its pods' and its worker's changes.
func setupPools(mgr ctrl.Manager, opts Options) error {
	c := mgr.GetClient()
	pools := &PoolReconciler{Client: c, Recorder: mgr.GetEventRecorder("seek-pool-controller"), Clock: opts.Clock, Options: opts.Pools}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("seekpool").
		Watches(&seekv1alpha1.SeekJob{}, handler.EnqueueRequestsFromMapFunc(poolOfSeekJob(c)), builder.WithPredicates(mayRaisePoolDemand)).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(poolOfObject), builder.WithPredicates(poolObjects)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(poolOfObject), builder.WithPredicates(poolObjects)).
		Watches(&seekv1alpha1.SeekWorker{}, handler.EnqueueRequestsFromMapFunc(poolsOfWorker(c))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4, RateLimiter: retryLimiter()}).
		Complete(pools)
	if err != nil {
		return fmt.Errorf("set up pool controller: %w", err)
	}
	return nil
}

func setupCallbacks(mgr ctrl.Manager, opts Options, m *CallbackMetrics) error {
	co := opts.Callbacks
	if co.Timeout <= 0 {
		co.Timeout = DefaultCallbackTimeout
	}
	if len(co.Schedule) == 0 {
		co.Schedule = webhook.DefaultSchedule
	}
	if co.Concurrency <= 0 {
		co.Concurrency = DefaultCallbackConcurrency
	}
	if co.TenantConcurrency <= 0 {
		co.TenantConcurrency = DefaultCallbackTenantConcurrency(co.Concurrency)
	}
	limiter := newTenantLimiter(min(co.TenantConcurrency, co.Concurrency))
	c := mgr.GetClient()
	callbacks := &CallbackReconciler{
		Client:    c,
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("seek-callback-controller"),
		Clock:     opts.Clock,
		HTTP:      co.Policy.NewClient(co.Timeout),
		Policy:    co.Policy,
		Keys:      &signingkeys.Store{Client: c, Reader: c, Live: mgr.GetAPIReader(), Namespace: opts.CredentialsNamespace, Clock: opts.Clock},
		Retry:     retryPolicy{schedule: co.Schedule, jitter: callbackJitter, random: rand.Float64},
		Metrics:   m,
		Limiter:   limiter,
		// By then one of the tenant's attempts has ended and woken it; this is in case that was lost.
		WaitingRequeue: co.Timeout,
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("seekjob-callback").
		For(&seekv1alpha1.SeekJob{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.(*seekv1alpha1.SeekJob).Spec.Callback != nil
		}))).
		// The limiter puts requests that waited for their tenant's slot back on the queue.
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			limiter.setWake(q.Add)
			return nil
		})).
		WithOptions(controller.Options{MaxConcurrentReconciles: co.Concurrency, RateLimiter: retryLimiter()}).
		Complete(callbacks)
	if err != nil {
		return fmt.Errorf("set up SeekJob callback controller: %w", err)
	}
	return nil
}

// podToSeekJob maps a worker pod to its SeekJob through the job-name label.
func podToSeekJob(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[seekv1alpha1.LabelJobName]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// eventToSeekJob maps an event about a Job to the SeekJob of the same name: a Job is named after its
// SeekJob. (A Job that is not a SeekJob's wakes nothing that exists, or a SeekJob that finds it foreign.)
func eventToSeekJob(_ context.Context, o client.Object) []reconcile.Request {
	ev := o.(*corev1.Event)
	if ev.InvolvedObject.Kind != "Job" || ev.InvolvedObject.Name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ev.InvolvedObject.Namespace, Name: ev.InvolvedObject.Name}}}
}

// waitingJobsOfWorker maps a SeekWorker to its SeekJobs that have not started and may start now: a
// new or newly ready worker wakes every waiting job, a freed slot only the jobs it was given to. A
// changed spec (one the worker controller has not observed yet) wakes every waiting job too: a new
// timeouts.queueTimeout moves their deadlines.
func waitingJobsOfWorker(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		w := o.(*seekv1alpha1.SeekWorker)
		list := &seekv1alpha1.SeekJobList{}
		if err := c.List(ctx, list, client.MatchingFields{unfinishedWorkerField: w.Name}, client.UnsafeDisableDeepCopy); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing SeekJobs of worker", "worker", w.Name)
			return nil
		}
		specChanged := w.Generation != w.Status.ObservedGeneration
		slots := make(map[string]bool, len(w.Status.ActiveJobs))
		for _, ref := range w.Status.ActiveJobs {
			slots[ref.UID] = true
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			sj := &list.Items[i]
			if (sj.Status.State != "" && sj.Status.State != seekv1alpha1.JobStateQueued) || sj.Status.JobName != "" {
				continue // started, or its Job exists: the worker no longer matters to it
			}
			started := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted)
			if started != nil && started.Reason == seekv1alpha1.JobReasonWaitingForCapacity && !specChanged &&
				w.Spec.Limits.MaxConcurrentJobs != nil && !slots[string(sj.UID)] {
				continue // still no slot: nothing changed for this job
			}
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(sj)})
		}
		return reqs
	}
}

// limitedWorkerOfJob maps a SeekJob to its worker when that worker has a concurrency limit and Job mode: a job
// arriving, starting or finishing changes who holds the worker's slots.
func limitedWorkerOfJob(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		name := string(o.(*seekv1alpha1.SeekJob).Spec.WorkerName)
		w := &seekv1alpha1.SeekWorker{}
		if err := c.Get(ctx, types.NamespacedName{Name: name}, w); err != nil || w.Spec.Limits.MaxConcurrentJobs == nil || w.Pooled() {
			// A Pooled worker's limit is the dispatcher's: it takes no slots in status.
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
	}
}
