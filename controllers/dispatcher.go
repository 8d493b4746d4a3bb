package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

const (
	// reportWriteAttempts bounds the status writes of one report that meet a conflict.
	reportWriteAttempts = 5
	// dispatchShutdownTimeout bounds the wait for requests in flight when the dispatcher stops; long
	// polls end at once (their context is canceled).
	dispatchShutdownTimeout = 5 * time.Second
	// silenceSweepInterval is how often, at most, held attempts are checked for silence (see
	// Dispatcher.SilenceLimit).
	silenceSweepInterval = 10 * time.Second
)

// Heartbeat stop reasons besides a finished job's reason.
const (
	stopReasonDeleted  = "Deleted"
	stopReasonReleased = "Released"
)

// +kubebuilder:rbac:groups="",resources=services,verbs=get

// Dispatcher is the manager's dispatch endpoint (pkg/dispatch): the runner in every pool pod leases
// jobs of its worker and namespace from it, heartbeats while it runs one, and reports the outcome.
// It runs on the leader only, and writes a pooled job's status through the functions of
// pooled_status.go: twice per job on the happy path (the lease, the outcome). The collector sidecar
// of a Job mode pod calls it too, for its own job only: to store a large result, and to pass the
// worker's progress on (status.progress, as a pool pod's runner does).
type Dispatcher struct {
	// Client reads from the manager's cache and writes SeekJob status.
	Client client.Client
	// APIReader reads from the apiserver: a pod the cache has not shown yet, a job after a conflict.
	APIReader client.Reader
	// Cache provides the SeekJob and SeekWorker informers whose events feed the queues.
	Cache    cache.Cache
	Reviewer tokenReviewer
	Clock    clock.PassiveClock
	Recorder transitionRecorder
	// RunnerImage is part of the pool pods' template hash: a pod of another template is told to exit.
	RunnerImage string
	// BindAddress is where the endpoint listens.
	BindAddress string
	// SilenceLimit is how long the pod holding an attempt may say nothing of it (no heartbeat, progress
	// or report) before the attempt is released and leased again; dispatch.SilenceLimit when zero. A
	// runner running a job keeps a heartbeat open (each call bounded by its slack over
	// dispatch.HeartbeatWait, retried within seconds): that much silence means it does not run the
	// attempt (the answer to its lease was lost and it never asked again, or it hangs).
	SilenceLimit time.Duration

	state  *dispatchState
	tokens *tokenCache
	ready  atomic.Bool

	exitMu sync.Mutex
	// exiting holds, per pool, the pods told to exit: they no longer count as the pool's live pods.
	exiting map[string]map[types.UID]struct{}
}

// NeedLeaderElection makes the dispatcher run on the leader only: one process leases jobs.
func (d *Dispatcher) NeedLeaderElection() bool { return true }

func (d *Dispatcher) init() {
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.SilenceLimit <= 0 {
		d.SilenceLimit = dispatch.SilenceLimit
	}
	if d.state == nil {
		d.state = newDispatchState()
	}
	d.state.now = d.Clock.Now
	if d.tokens == nil {
		d.tokens = newTokenCache(d.Clock)
	}
	if d.exiting == nil {
		d.exiting = map[string]map[types.UID]struct{}{}
	}
}

// Start serves the endpoint until ctx ends. It answers 503 until the queues are built from the cache.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.init()
	log := ctrl.LoggerFrom(ctx).WithName("dispatcher")
	ln, err := net.Listen("tcp", d.BindAddress)
	if err != nil {
		return fmt.Errorf("listen on the dispatch address %s: %w", d.BindAddress, err)
	}
	// Requests see serveCtx end when the dispatcher stops, so long polls answer at once.
	serveCtx, stopServing := context.WithCancel(ctrl.LoggerInto(context.WithoutCancel(ctx), log))
	defer stopServing()
	srv := &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are small but a report's (at most dispatch.MaxReportRequestBytes); long polls wait
		// after the request is read, so no WriteTimeout.
		ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return serveCtx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("Serving the dispatch endpoint", "address", ln.Addr().String())

	unregister, err := d.watch(ctx)
	if err != nil {
		_ = srv.Close()
		return err
	}
	defer unregister()
	if ctx.Err() == nil {
		d.ready.Store(true)
	}

	sweep := time.NewTicker(min(silenceSweepInterval, d.SilenceLimit/4))
	defer sweep.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case err := <-served:
			return fmt.Errorf("serve the dispatch endpoint: %w", err)
		case <-sweep.C:
			d.releaseSilent(serveCtx)
		}
	}
	d.ready.Store(false)
	stopServing()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dispatchShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("stop the dispatch endpoint: %w", err)
	}
	return nil
}

// watch feeds the queues from the SeekJob informer (which first replays every cached job), wakes the
// lease calls of a worker's pools when the worker changes, and returns once the replay is done.
func (d *Dispatcher) watch(ctx context.Context) (func(), error) {
	jobs, err := d.Cache.GetInformer(ctx, &seekv1alpha1.SeekJob{})
	if err != nil {
		return nil, fmt.Errorf("get the SeekJob informer: %w", err)
	}
	observe := func(o any) {
		if sj, ok := o.(*seekv1alpha1.SeekJob); ok {
			d.state.observe(sj)
		}
	}
	jobReg, err := jobs.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, o any) { observe(o) },
		DeleteFunc: func(o any) {
			if tomb, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				o = tomb.Obj
			}
			if sj, ok := o.(*seekv1alpha1.SeekJob); ok {
				d.state.forget(sj.UID)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch SeekJobs: %w", err)
	}
	workers, err := d.Cache.GetInformer(ctx, &seekv1alpha1.SeekWorker{})
	if err != nil {
		_ = jobs.RemoveEventHandler(jobReg)
		return nil, fmt.Errorf("get the SeekWorker informer: %w", err)
	}
	wake := func(o any) {
		if w, ok := o.(*seekv1alpha1.SeekWorker); ok {
			d.state.WakeWorker(w.Name)
		}
	}
	workerReg, err := workers.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: wake, UpdateFunc: func(_, o any) { wake(o) }, DeleteFunc: wake,
	})
	if err != nil {
		_ = jobs.RemoveEventHandler(jobReg)
		return nil, fmt.Errorf("watch SeekWorkers: %w", err)
	}
	unregister := func() {
		_ = jobs.RemoveEventHandler(jobReg)
		_ = workers.RemoveEventHandler(workerReg)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), jobReg.HasSynced, workerReg.HasSynced) && ctx.Err() == nil {
		unregister()
		return nil, errors.New("the SeekJob informer did not sync")
	}
	return unregister, nil
}

// Handler serves the dispatch protocol.
func (d *Dispatcher) Handler() http.Handler {
	d.init()
	mux := http.NewServeMux()
	mux.Handle("POST "+dispatch.PathLease, d.endpoint(dispatch.MaxRequestBytes, poolPods, d.lease))
	mux.Handle("POST "+dispatch.PathHeartbeat, d.endpoint(dispatch.MaxRequestBytes, poolPods, d.heartbeat))
	mux.Handle("POST "+dispatch.PathReport, d.endpoint(dispatch.MaxReportRequestBytes, poolPods, d.report))
	mux.Handle("POST "+dispatch.PathResult, d.endpoint(dispatch.MaxReportRequestBytes, jobPods, d.result))
	mux.Handle("POST "+dispatch.PathProgress, d.endpoint(dispatch.MaxRequestBytes, allPods, d.progress))
	return mux
}

// httpError is an answer other than 200: an ErrorResponse, or another body (a refused report).
type httpError struct {
	status int
	body   any
	// retryAfter, when set, is sent as Retry-After (whole seconds, rounded up).
	retryAfter time.Duration
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %v", e.status, e.body) }

func errorf(status int, reason, format string, args ...any) *httpError {
	return &httpError{status: status, body: dispatch.ErrorResponse{Reason: reason, Message: fmt.Sprintf(format, args...)}}
}

// endpoint wraps one call: readiness, authentication, the body (at most limit bytes, read once the
// caller is authenticated: a report may carry a 1 MiB result), and the JSON answer.
// who says which pods may call it.
func (d *Dispatcher) endpoint(limit int64, who callers, call func(ctx context.Context, c *caller, body []byte) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		status, answer := http.StatusOK, any(nil)
		var herr *httpError
		var err error
		var c *caller
		if !d.ready.Load() {
			herr = errorf(http.StatusServiceUnavailable, "NotReady", "the dispatcher is starting, stopping or not the leader; retry")
		} else {
			c, herr = d.authenticate(ctx, r, who)
		}
		if herr == nil {
			body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			var maxErr *http.MaxBytesError
			switch {
			case errors.As(readErr, &maxErr):
				herr = errorf(http.StatusRequestEntityTooLarge, "RequestTooLarge", "the request body exceeds %d bytes", limit)
			case readErr != nil:
				herr = errorf(http.StatusBadRequest, "BadRequest", "read the request body: %v", readErr)
			default:
				answer, err = call(ctx, c, body)
			}
		}
		if err != nil && !errors.As(err, &herr) {
			ctrl.LoggerFrom(ctx).Error(err, "Dispatch call failed", "path", r.URL.Path)
			herr = errorf(http.StatusInternalServerError, "InternalError", "%v", err)
		}
		if herr != nil {
			status, answer = herr.status, herr.body
			if herr.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(herr.retryAfter.Seconds()))))
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(answer)
	})
}

// decode reads a JSON request body into v.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(http.StatusBadRequest, "BadRequest", "the request body is not valid JSON of the dispatch protocol: %v", err)
	}
	return nil
}

// lease answers a pool pod asking for a job: the oldest leasable job of its pool, waiting up to
// dispatch.LeaseWait for one; or tells it to exit.
func (d *Dispatcher) lease(ctx context.Context, c *caller, body []byte) (any, error) {
	req := dispatch.LeaseRequest{}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.IdleSeconds < 0 {
		return nil, errorf(http.StatusBadRequest, "BadRequest", "idleSeconds must not be negative")
	}
	if c.pod.DeletionTimestamp != nil {
		return dispatch.LeaseResponse{Exit: true}, nil
	}
	arrived := d.Clock.Now()
	deadline := arrived.Add(dispatch.LeaseWait)
	pool := poolKey(c.namespace, c.worker)
	for {
		changed := d.state.changed(poolWaitKey(pool))
		w := &seekv1alpha1.SeekWorker{}
		if err := d.Client.Get(ctx, types.NamespacedName{Name: c.worker}, w); apierrors.IsNotFound(err) {
			return dispatch.LeaseResponse{Exit: true}, nil // its pool Job goes with it
		} else if err != nil {
			return nil, fmt.Errorf("get SeekWorker %s: %w", c.worker, err)
		}
		if !w.Pooled() || c.pod.Labels[seekv1alpha1.LabelPoolTemplate] != poolTemplateHash(w, d.RunnerImage) {
			return dispatch.LeaseResponse{Exit: true}, nil
		}
		// A lease request says the runner is idle: an attempt its pod still holds was lost on the way
		// (the answer to its lease never arrived), since a runner reports every attempt before it asks
		// again. It is released, as an interrupted attempt, so it runs again. Checked again after each
		// wait: after a leader change, the informer may show the last leader's lease only now.
		if err := d.releaseLost(ctx, c); err != nil {
			return nil, err
		}
		now := d.Clock.Now()
		var wait time.Duration
		if meta.IsStatusConditionTrue(w.Status.Conditions, seekv1alpha1.WorkerReady) {
			job, retryWait, err := d.tryLease(ctx, c, w, pool)
			if job != nil {
				d.Recorder.Metrics.observeLease(c.worker, d.Clock.Now().Sub(arrived))
			}
			if err != nil || job != nil {
				return dispatch.LeaseResponse{Job: job}, err
			}
			wait = retryWait
		}
		_, _, idleTimeout := w.PoolSize()
		idle := time.Duration(req.IdleSeconds*float64(time.Second)) + now.Sub(arrived)
		if idle >= idleTimeout {
			exit, err := d.mayExit(ctx, c, w)
			if err != nil || exit {
				return dispatch.LeaseResponse{Exit: exit}, err
			}
		} else if wait == 0 || idleTimeout-idle < wait {
			wait = idleTimeout - idle
		}
		if left := deadline.Sub(now); left <= 0 {
			return dispatch.LeaseResponse{}, nil
		} else if wait == 0 || left < wait {
			wait = left
		}
		if !sleep(ctx, changed, wait) {
			return dispatch.LeaseResponse{}, nil
		}
	}
}

// sleep waits for changed, d or the end of ctx; false means ctx ended.
func sleep(ctx context.Context, changed <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-changed:
	case <-t.C:
	}
	return true
}

// tryLease leases the oldest leasable job of the pool to the caller, if one is and the worker has a
// free slot. Otherwise it returns how long until a queued job's retry time (0 if none waits).
func (d *Dispatcher) tryLease(ctx context.Context, c *caller, w *seekv1alpha1.SeekWorker, pool string) (*dispatch.Job, time.Duration, error) {
	limit := -1
	if m := w.Spec.Limits.MaxConcurrentJobs; m != nil {
		limit = int(*m)
	}
	now := d.Clock.Now()
	var soonest time.Duration
	for _, key := range d.state.queued(pool) {
		sj := &seekv1alpha1.SeekJob{}
		if err := d.Client.Get(ctx, key, sj); apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			return nil, 0, fmt.Errorf("get SeekJob %s: %w", key, err)
		}
		if d.state.newerThan(sj) {
			continue // the cache has not shown the dispatcher's last write yet
		}
		ok, wait := leasable(sj, now)
		if !ok {
			if wait > 0 && (soonest == 0 || wait < soonest) {
				soonest = wait
			}
			continue
		}
		if reason, _ := validateAgainstWorker(sj, w); reason != "" {
			continue // the SeekJob reconciler fails it
		}
		switch d.state.claim(sj.UID, limit) {
		case claimFull:
			return nil, soonest, nil // a finished attempt of the worker wakes the pool
		case claimGone:
			continue
		}
		got, lease, err := d.writeLease(ctx, sj, w, c.pod, now)
		d.state.unclaim(sj.UID, got)
		if apierrors.IsConflict(err) {
			// Changed meanwhile: learn how from the apiserver rather than wait for the informer, which
			// may lag (its version is leased to a pod this dispatcher has not heard of, say). Best
			// effort: the informer shows it in the end.
			_, _ = d.readJob(ctx, key, false)
			continue
		} else if apierrors.IsNotFound(err) {
			continue // deleted meanwhile
		} else if err != nil {
			return nil, 0, err
		}
		ctrl.LoggerFrom(ctx).V(2).Info("Leased SeekJob", "seekJob", klog.KObj(sj), "pod", klog.KObj(c.pod), "attempt", got.Status.Attempts)
		return lease, 0, nil
	}
	return nil, soonest, nil
}

// writeLease records that pod runs sj's next attempt: one status write. It returns the written job
// and the lease for the pod. The lease is made before the write: the apiserver keeps times in whole
// seconds, and a start time read back would cut up to a second off the attempt's timeout.
func (d *Dispatcher) writeLease(ctx context.Context, sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, pod *corev1.Pod, now time.Time) (*seekv1alpha1.SeekJob, *dispatch.Job, error) {
	before := sj
	sj = sj.DeepCopy()
	setLeased(sj, jobOfPod(pod), pod, now)
	sj.Status.ObservedGeneration = sj.Generation
	lease := leaseFor(sj, w, now)
	if err := d.Client.Status().Update(ctx, sj); err != nil {
		return nil, nil, fmt.Errorf("lease SeekJob %s: %w", klog.KObj(sj), err)
	}
	d.Recorder.record(ctx, before, sj)
	return sj, lease, nil
}

// jobOfPod is the name of the pool Job a pod belongs to.
func jobOfPod(pod *corev1.Pod) string {
	for _, label := range []string{batchv1.JobNameLabel, "job-name"} {
		if name := pod.Labels[label]; name != "" {
			return name
		}
	}
	if ref := metav1.GetControllerOf(pod); ref != nil && ref.Kind == "Job" {
		return ref.Name
	}
	return ""
}

// releaseLost frees the attempts the caller's pod holds, if any (see lease). There is one at most,
// but for a moment after a leader change (dispatchState.holders): a lease the informer shows late is
// released at the pod's next lease call.
func (d *Dispatcher) releaseLost(ctx context.Context, c *caller) error {
	for _, key := range d.state.heldBy(c.podUID()) {
		ctrl.LoggerFrom(ctx).Info("Releasing an attempt the pod holds but asks for a new job", "seekJob", key, "pod", klog.KObj(c.pod))
		if _, err := d.updateAttempt(ctx, c, key, nil, func(sj *seekv1alpha1.SeekJob, _ *seekv1alpha1.SeekWorker, now time.Time) bool {
			releaseAttempt(sj, false, now)
			return true
		}); err != nil {
			return err
		}
	}
	return nil
}

// releaseSilent releases every attempt whose holder has not spoken of it for SilenceLimit, as
// an interrupted attempt (not counted), so that it runs again: the pod's runner does not run it. A
// job stays running no longer than that after the answer to its lease was lost, whatever its pod does
// next. A failed release is tried again at the next sweep.
func (d *Dispatcher) releaseSilent(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	for _, a := range d.state.silent(d.SilenceLimit) {
		ref := dispatch.AttemptRef{Namespace: a.key.Namespace, Name: a.key.Name, UID: string(a.uid), Attempt: a.attempts}
		released, err := d.updateJob(ctx, a.key.Namespace, a.key,
			func(sj *seekv1alpha1.SeekJob) bool { return holds(sj, a.holder, ref) },
			func(sj *seekv1alpha1.SeekJob, _ *seekv1alpha1.SeekWorker, now time.Time) bool {
				releaseAttempt(sj, false, now)
				return true
			})
		switch {
		case err != nil:
			log.Error(err, "Releasing a silent attempt failed; trying again later", "seekJob", a.key)
		case released:
			log.Info("Released an attempt its pool pod said nothing of", "seekJob", a.key, "podUID", a.holder,
				"attempt", a.attempts, "silence", a.silence.Round(time.Second))
		}
	}
}

// mayExit decides whether an idle pod may exit: its pool keeps more than minPods live pods without
// it. Pods told to exit no longer count, so two idle pods of a pool one above minPods do not both go.
func (d *Dispatcher) mayExit(ctx context.Context, c *caller, w *seekv1alpha1.SeekWorker) (bool, error) {
	minPods, _, _ := w.PoolSize()
	pods := &corev1.PodList{}
	if err := d.Client.List(ctx, pods, client.InNamespace(c.namespace), client.MatchingFields{poolLabelField: c.worker}); err != nil {
		return false, fmt.Errorf("list the pods of pool %s: %w", poolKey(c.namespace, c.worker), err)
	}
	pool := poolKey(c.namespace, c.worker)
	d.exitMu.Lock()
	defer d.exitMu.Unlock()
	exiting := d.exiting[pool]
	if exiting == nil {
		exiting = map[types.UID]struct{}{}
		d.exiting[pool] = exiting
	}
	if _, ok := exiting[c.pod.UID]; ok {
		return true, nil
	}
	live, alive := 0, map[types.UID]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !podLive(p) {
			continue
		}
		alive[p.UID] = true
		if _, ok := exiting[p.UID]; !ok {
			live++
		}
	}
	for uid := range exiting {
		if !alive[uid] {
			delete(exiting, uid) // gone: it counts nowhere now
		}
	}
	if !alive[c.pod.UID] {
		live++ // the cache has not shown it yet
	}
	if live <= int(minPods) {
		return false, nil
	}
	exiting[c.pod.UID] = struct{}{}
	return true, nil
}

// heartbeat answers a runner running an attempt: Stop as soon as its pod no longer holds it (the job
// finished, was canceled or deleted, or the attempt was released), else "continue" after waiting up
// to dispatch.HeartbeatWait for that to happen.
func (d *Dispatcher) heartbeat(ctx context.Context, c *caller, body []byte) (any, error) {
	ref := dispatch.AttemptRef{}
	if err := decode(body, &ref); err != nil {
		return nil, err
	}
	if err := validateRef(ref); err != nil {
		return nil, err
	}
	if ref.Namespace != c.namespace {
		// Its pod never holds such an attempt; say nothing about other tenants' jobs.
		return nil, errorf(http.StatusForbidden, "ForeignNamespace", "the attempt is not of the pod's namespace %s", c.namespace)
	}
	deadline := d.Clock.Now().Add(dispatch.HeartbeatWait)
	key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	uid := types.UID(ref.UID)
	d.state.touch(uid, c.podUID(), ref.Attempt)
	defer d.state.touch(uid, c.podUID(), ref.Attempt)
	confirmed := false
	for {
		changed := d.state.changed(jobWaitKey(uid))
		holder, attempts, canceled, known := d.state.attempt(uid, key)
		if !known || holder != c.podUID() || attempts != ref.Attempt || canceled {
			if !confirmed {
				// A stop ends the process and drops its outcome: the apiserver confirms it first, as
				// the informer may lag behind a lease (another leader's, say). Reading the job teaches
				// the dispatcher its version.
				confirmed = true
				if _, err := d.readJob(ctx, key, false); err != nil {
					return nil, err
				}
				continue
			}
			return dispatch.HeartbeatResponse{Stop: true, Reason: d.stopReason(ctx, key, ref)}, nil
		}
		left := deadline.Sub(d.Clock.Now())
		if left <= 0 || !sleep(ctx, changed, left) {
			return dispatch.HeartbeatResponse{}, nil
		}
	}
}

// stopReason says why an attempt stops: the job's cancel request or end, its deletion, or its
// release (the attempt was taken away).
func (d *Dispatcher) stopReason(ctx context.Context, key types.NamespacedName, ref dispatch.AttemptRef) string {
	sj := &seekv1alpha1.SeekJob{}
	if err := d.Client.Get(ctx, key, sj); err != nil || string(sj.UID) != ref.UID || sj.DeletionTimestamp != nil {
		return stopReasonDeleted
	}
	if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobFinished); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	if sj.Spec.CancelRequest != nil {
		return seekv1alpha1.JobReasonCanceled
	}
	return stopReasonReleased
}

// validateRef checks the fields of an attempt reference.
func validateRef(ref dispatch.AttemptRef) error {
	for field, empty := range map[string]bool{"namespace": ref.Namespace == "", "name": ref.Name == "", "uid": ref.UID == ""} {
		if empty {
			return errorf(http.StatusBadRequest, "BadRequest", "%s is required", field)
		}
	}
	if ref.Attempt < 1 {
		return errorf(http.StatusBadRequest, "BadRequest", "attempt must be at least 1")
	}
	return nil
}

// report ends the caller's attempt with its outcome: one status write, then the events and metrics.
// A report of an attempt the pod does not hold is refused with 409 and dropped.
func (d *Dispatcher) report(ctx context.Context, c *caller, body []byte) (any, error) {
	r := &dispatch.Report{}
	if err := decode(body, r); err != nil {
		return nil, err
	}
	if err := validateRef(r.AttemptRef); err != nil {
		return nil, err
	}
	switch {
	case len(r.Result) > dispatch.MaxReportBytes || r.ResultBytes < 0:
		return nil, errorf(http.StatusBadRequest, "BadRequest", "result exceeds %d bytes", dispatch.MaxReportBytes)
	case len(r.LogTail) > dispatch.MaxLogTailBytes:
		return nil, errorf(http.StatusBadRequest, "BadRequest", "logTail exceeds %d bytes", dispatch.MaxLogTailBytes)
	}
	d.state.touch(types.UID(r.UID), c.podUID(), r.Attempt)
	if r.Stopped {
		return d.keepStoppedOutput(ctx, c, r)
	}
	key := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
	out, held, err := d.storeReportOutputs(ctx, c, r)
	if err != nil {
		return nil, err
	}
	ok := false
	if held {
		ok, err = d.updateAttempt(ctx, c, key, &r.AttemptRef, func(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) bool {
			applyReport(sj, w, r, out.result, now)
			if logs := reportedLogs(r, w, out.logs); logs != nil {
				sj.Status.Logs = logs
			}
			return true
		})
	}
	if err != nil {
		return nil, err
	}
	d.Recorder.Metrics.observeReport(c.worker, ok)
	if !ok {
		return nil, &httpError{status: http.StatusConflict, body: dispatch.ReportResponse{Accepted: false}}
	}
	return dispatch.ReportResponse{Accepted: true}, nil
}

// progress records the worker's progress of the caller's attempt in the job's status: one write, at
// most one every dispatch.ProgressInterval per job (the last one's time is in the status, so a manager
// restart forgets nothing); a report sooner than that is refused with 429 and Retry-After, and one
// that changes nothing writes nothing. A pool pod's runner reports the attempt its pod holds; a Job
// mode pod's collector reports for its own job only (403 for another), attempt 0 standing for the
// attempt its pod runs, which must be the job's current one (409 once it is not).
func (d *Dispatcher) progress(ctx context.Context, c *caller, body []byte) (any, error) {
	p := &dispatch.ProgressRequest{}
	if err := decode(body, p); err != nil {
		return nil, err
	}
	check := validateRef
	if c.jobPod {
		check = func(ref dispatch.AttemptRef) error { return validateJobPodRef(ref, c.pod) }
	}
	if err := check(p.AttemptRef); err != nil {
		return nil, err
	}
	if !c.jobPod {
		d.state.touch(types.UID(p.UID), c.podUID(), p.Attempt)
	}
	if math.IsNaN(p.Fraction) || p.Fraction < 0 || p.Fraction > 1 {
		return nil, errorf(http.StatusBadRequest, "BadRequest", "fraction must be from 0 to 1")
	}
	key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
	var written bool
	var wait time.Duration
	ok, err := d.updateAttempt(ctx, c, key, &p.AttemptRef, func(sj *seekv1alpha1.SeekJob, _ *seekv1alpha1.SeekWorker, now time.Time) bool {
		attempt := p.Attempt
		if attempt == 0 {
			attempt = max(sj.Status.Attempts, 1)
		}
		written, wait = setProgress(sj, attempt, p.Fraction, p.Message, now)
		return written
	})
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, errorf(http.StatusConflict, "NotHeld", "the attempt is not this pod's")
	case wait > 0:
		e := errorf(http.StatusTooManyRequests, "TooSoon", "the job's progress was written less than %s ago", dispatch.ProgressInterval)
		e.retryAfter = wait
		return nil, e
	}
	return dispatch.ProgressResponse{Written: written}, nil
}

// validateJobPodRef checks the attempt reference a Job mode pod sends: its own job's (the pod's
// labels name it), attempt 0 (the pod's own) or more.
func validateJobPodRef(ref dispatch.AttemptRef, pod *corev1.Pod) error {
	if ref.Attempt < 0 {
		return errorf(http.StatusBadRequest, "BadRequest", "attempt must not be negative")
	}
	own := ref
	own.Attempt = max(ref.Attempt, 1)
	if err := validateRef(own); err != nil {
		return err
	}
	if ref.Namespace != pod.Namespace || ref.Name != pod.Labels[seekv1alpha1.LabelJobName] || ref.UID != pod.Labels[seekv1alpha1.LabelJobUID] {
		return errorf(http.StatusForbidden, "NotTheJobsPod", "pod %s does not run job %s/%s (UID %s)", pod.Name, ref.Namespace, ref.Name, ref.UID)
	}
	return nil
}

// reportOutputs is what a report left outside the job's status, before the status write.
type reportOutputs struct {
	// result is where a result over the inline limit went.
	result resultStorage
	// logs records the kept end of the attempt's output, nil when none is kept.
	logs *seekv1alpha1.JobLogs
}

// storeReportOutputs stores, before the status write that ends the attempt, what does not go into
// status: the large result of a report of success, and the end of the attempt's output (see logs.go).
// That is one more write for each; none for a small result and an attempt that wrote nothing. It
// reports false when the pod does not hold the attempt (nothing is stored).
func (d *Dispatcher) storeReportOutputs(ctx context.Context, c *caller, r *dispatch.Report) (reportOutputs, bool, error) {
	var data []byte
	if r.ExitCode == 0 && r.StartError == "" && !r.TimedOut && !r.Interrupted && !r.ResultTruncated {
		data = largeResult(r.Result)
	}
	if r.Interrupted || (data == nil && r.LogTail == "") {
		// An interrupted attempt does not count: its output is not the job's last word.
		return reportOutputs{}, true, nil
	}
	if r.Namespace != c.namespace {
		return reportOutputs{}, false, nil
	}
	sj, held, err := d.readAllowed(ctx, types.NamespacedName{Namespace: r.Namespace, Name: r.Name}, true,
		func(sj *seekv1alpha1.SeekJob) bool { return holds(sj, c.podUID(), r.AttemptRef) })
	if !held || err != nil {
		return reportOutputs{}, false, err
	}
	var out reportOutputs
	if data != nil {
		if out.result, err = storeResult(ctx, d.Client, d.APIReader, sj.Namespace, sj.Name, sj.UID, data); err != nil {
			return reportOutputs{}, false, err
		}
	}
	w := &seekv1alpha1.SeekWorker{}
	if err := d.Client.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w); apierrors.IsNotFound(err) {
		return out, true, nil
	} else if err != nil {
		return reportOutputs{}, false, fmt.Errorf("get SeekWorker %s: %w", sj.Spec.WorkerName, err)
	}
	out.logs, err = storeLogs(ctx, d.Client, d.APIReader, sj, w, r.Attempt, []byte(r.LogTail), r.OutputBytes)
	return out, err == nil, err
}

// keepStoppedOutput keeps the output of an attempt the manager stopped because its job ended (a
// cancel): the job's status does not change but for status.logs, written after the Secret (see
// logs.go). A report of an attempt that is not the caller's, or of a job that has not ended, or whose
// output is kept already, is refused with 409.
func (d *Dispatcher) keepStoppedOutput(ctx context.Context, c *caller, r *dispatch.Report) (any, error) {
	key := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
	var logs *seekv1alpha1.JobLogs
	var storeErr error
	ok, err := d.updateJob(ctx, c.namespace, key, func(sj *seekv1alpha1.SeekJob) bool { return stoppedHere(sj, c.podUID(), r.AttemptRef) },
		func(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, _ time.Time) bool {
			if logs == nil { // once, whatever conflicts follow
				logs, storeErr = storeLogs(ctx, d.Client, d.APIReader, sj, w, r.Attempt, []byte(r.LogTail), r.OutputBytes)
			}
			if logs == nil {
				return false // nothing kept: nothing to write
			}
			sj.Status.Logs = logs
			return true
		})
	switch {
	case storeErr != nil:
		return nil, storeErr
	case err != nil:
		return nil, err
	case !ok:
		return nil, &httpError{status: http.StatusConflict, body: dispatch.ReportResponse{Accepted: false}}
	}
	return dispatch.ReportResponse{Accepted: true}, nil
}

// readJob reads a SeekJob: from the cache, unless it lags behind the dispatcher's own last write of the
// job or fromCache is false, then from the apiserver. It returns nil, without error, when it is gone.
// A version read from the apiserver updates the dispatcher's view at once: the informer may be slow to
// show it.
func (d *Dispatcher) readJob(ctx context.Context, key types.NamespacedName, fromCache bool) (*seekv1alpha1.SeekJob, error) {
	sj := &seekv1alpha1.SeekJob{}
	var err error
	if fromCache {
		err = d.Client.Get(ctx, key, sj)
	}
	fromAPI := !fromCache || (err == nil && d.state.newerThan(sj))
	if fromAPI {
		err = d.APIReader.Get(ctx, key, sj)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get SeekJob %s: %w", key, err)
	}
	if fromAPI {
		d.state.observe(sj)
	}
	return sj, nil
}

// readAllowed reads a job for a caller that may act on it only as may says: from the cache (see
// readJob), and when the cache shows a job the caller may not act on, or none, again from the
// apiserver. The cache may lag behind another writer (the job's cancel, another leader's lease), and a
// wrong refusal drops an outcome. Refusals are rare, so the second read costs little. It returns the
// job (nil when gone) and whether may allows it.
func (d *Dispatcher) readAllowed(ctx context.Context, key types.NamespacedName, fromCache bool, may func(*seekv1alpha1.SeekJob) bool) (*seekv1alpha1.SeekJob, bool, error) {
	sj, err := d.readJob(ctx, key, fromCache)
	if err == nil && fromCache && (sj == nil || !may(sj)) {
		sj, err = d.readJob(ctx, key, false)
	}
	if sj == nil || err != nil {
		return nil, false, err
	}
	return sj, may(sj), nil
}

// updateAttempt changes the status of the job holding the caller's attempt (ref; the pod's current
// attempt when nil) with change, as updateJob does. It returns false when the pod does not hold the
// attempt.
func (d *Dispatcher) updateAttempt(ctx context.Context, c *caller, key types.NamespacedName, ref *dispatch.AttemptRef,
	change func(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) bool) (bool, error) {
	return d.updateJob(ctx, c.namespace, key, func(sj *seekv1alpha1.SeekJob) bool {
		r := attemptRef(sj)
		if ref != nil {
			r = *ref
		}
		return c.runs(sj, r)
	}, change)
}

// updateJob changes the status of a job of the given namespace (the caller's) with change, in one
// write unless change returns false, re-reading the job from the apiserver after a conflict or before
// a refusal (readAllowed). It returns false when the job is not in that namespace, is gone, or may
// not be changed by the caller (may).
func (d *Dispatcher) updateJob(ctx context.Context, namespace string, key types.NamespacedName, may func(sj *seekv1alpha1.SeekJob) bool,
	change func(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, now time.Time) bool) (bool, error) {
	if key.Namespace != namespace {
		return false, nil
	}
	fromCache := true
	for range reportWriteAttempts {
		sj, allowed, err := d.readAllowed(ctx, key, fromCache, may)
		if !allowed || err != nil {
			return false, err
		}
		w := &seekv1alpha1.SeekWorker{}
		if err := d.Client.Get(ctx, types.NamespacedName{Name: string(sj.Spec.WorkerName)}, w); apierrors.IsNotFound(err) {
			w = &seekv1alpha1.SeekWorker{ObjectMeta: metav1.ObjectMeta{Name: string(sj.Spec.WorkerName)}} // no retries
		} else if err != nil {
			return false, fmt.Errorf("get SeekWorker %s: %w", sj.Spec.WorkerName, err)
		}
		before := sj.DeepCopy()
		if !change(sj, w, d.Clock.Now()) {
			return true, nil
		}
		sj.Status.ObservedGeneration = sj.Generation
		err = d.Client.Status().Update(ctx, sj)
		switch {
		case apierrors.IsConflict(err):
			fromCache = false
			continue
		case apierrors.IsNotFound(err):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("update status of SeekJob %s: %w", klog.KObj(sj), err)
		}
		d.state.observe(sj)
		d.Recorder.record(ctx, before, sj)
		return true, nil
	}
	return false, errorf(http.StatusServiceUnavailable, "Conflict", "SeekJob %s kept changing; retry", key)
}

// setupDispatcher adds the dispatch endpoint to mgr, unless its bind address is "0" or empty.
func setupDispatcher(mgr ctrl.Manager, opts Options, metrics *Metrics) error {
	if !opts.Pools.Enabled() {
		return nil
	}
	d := &Dispatcher{
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Cache:        mgr.GetCache(),
		Reviewer:     apiTokenReviewer{client: mgr.GetClient()},
		Clock:        opts.Clock,
		Recorder:     transitionRecorder{Recorder: mgr.GetEventRecorder("seek-dispatcher"), Metrics: metrics},
		RunnerImage:  opts.Pools.RunnerImage,
		BindAddress:  opts.Pools.DispatchBindAddress,
		SilenceLimit: opts.Pools.SilenceLimit,
	}
	if err := mgr.Add(d); err != nil {
		return fmt.Errorf("add the dispatcher: %w", err)
	}
	return nil
}

// PoolTemplateHash is the value of the seek-api.com/pool-template label of the worker's current pool
// pods when the runner image is runnerImage (for tests and tools that make pool pods).
func PoolTemplateHash(w *seekv1alpha1.SeekWorker, runnerImage string) string {
	return poolTemplateHash(w, runnerImage)
}

// result stores the large result the collector sidecar of a Job mode pod uploads for its job, in the
// job's result Secret (one write), and names it; the SeekJob controller completes the job with it once
// the collector has said so in its termination message. Only the job's current pod may: the pod's
// labels name the job, and it is controlled by the job's Job.
func (d *Dispatcher) result(ctx context.Context, c *caller, body []byte) (any, error) {
	up := dispatch.ResultUpload{}
	if err := decode(body, &up); err != nil {
		return nil, err
	}
	if up.Namespace != c.namespace || up.Name != c.pod.Labels[seekv1alpha1.LabelJobName] || up.UID != c.pod.Labels[seekv1alpha1.LabelJobUID] {
		return nil, errorf(http.StatusForbidden, "NotTheJobsPod", "pod %s does not run job %s/%s (UID %s)", c.pod.Name, up.Namespace, up.Name, up.UID)
	}
	data := largeResult(up.Result)
	if data == nil {
		return nil, errorf(http.StatusBadRequest, "BadRequest", "result must be JSON of %d to %d bytes (%d given)",
			seekv1alpha1.MaxInlineResultBytes+1, seekv1alpha1.MaxResultBytes, len(up.Result))
	}
	key := types.NamespacedName{Namespace: up.Namespace, Name: up.Name}
	sj := &seekv1alpha1.SeekJob{}
	err := d.Client.Get(ctx, key, sj)
	if apierrors.IsNotFound(err) {
		err = d.APIReader.Get(ctx, key, sj)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, errorf(http.StatusConflict, "JobGone", "SeekJob %s does not exist", key)
	case err != nil:
		return nil, fmt.Errorf("get SeekJob %s: %w", key, err)
	case string(sj.UID) != up.UID || sj.DeletionTimestamp != nil || sj.Status.State.IsTerminal():
		return nil, errorf(http.StatusConflict, "JobGone", "SeekJob %s with UID %s is gone or finished", key, up.UID)
	}
	if owner := metav1.GetControllerOf(c.pod); owner == nil || owner.Kind != "Job" || owner.Name != jobName(sj) {
		return nil, errorf(http.StatusForbidden, "NotTheJobsPod", "pod %s is not controlled by Job %s of SeekJob %s", c.pod.Name, jobName(sj), key)
	}
	storage, err := storeResult(ctx, d.Client, d.APIReader, sj.Namespace, sj.Name, sj.UID, data)
	if err != nil {
		return nil, err
	}
	if storage.ref == nil {
		return nil, errorf(http.StatusConflict, seekv1alpha1.JobReasonResultLost, "%s", storage.message)
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Stored a collected result", "seekJob", klog.KObj(sj), "pod", klog.KObj(c.pod), "bytes", storage.ref.Bytes)
	return dispatch.ResultResponse{SecretName: storage.ref.SecretName, Bytes: storage.ref.Bytes, SHA256: storage.ref.SHA256}, nil
}
