package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/restapi"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// scaleConfig configures the scale phase.
type scaleConfig struct {
	// retained finished SeekJobs are present during the second measurement.
	retained int
	// jobs new SeekJobs go through the worker in each throughput measurement, at most maxConcurrent of
	// them running at once (its limits.maxConcurrentJobs).
	jobs          int
	maxConcurrent int
	// recheck measures the throughput once more after deleting the retained jobs.
	recheck bool
}

// Scale phase goals (issue 13): the control loop's cost grows with the active jobs, not the retained ones.
const (
	scaleMemoryGoal     = 5 * 1024 // bytes per retained job, manager and frontend each
	scaleThroughputGoal = 0.9      // new jobs' throughput with the retained ones / without
)

// Namespaces of the scale phase: each throughput measurement has its own, the retained jobs theirs.
const (
	scaleWorker      = "scale"
	scaleNSBefore    = "scale-new-0"
	scaleNSAfter     = "scale-new-1"
	scaleNSCleared   = "scale-new-2"
	scaleNSWarmup    = "scale-warmup-" // + the measurement's number
	scaleNSRetained  = "scale-retained"
	scaleResult      = `{"ok":true,"n":1}`
	scaleWaitTimeout = 30 * time.Minute
)

// scaleRun is what one half of the scale phase measured: each process's live heap once started and settled
// (the increase over the heap right before it started), without and with the retained jobs; how long
// it took to start; the new jobs' throughput and the manager's API writes for them.
type scaleRun struct {
	mgrHeap, frontendHeap   int64
	apiserverHeap           int64 // right before the throughput measurement
	mgrStart, frontendStart time.Duration
	rate                    float64
	writes                  writeSnapshot
	cpu                     cpuTimes // CPU seconds by process during the throughput measurement
}

// scaleResults are both halves: before and after the retained jobs were created.
type scaleResults struct {
	cfg           scaleConfig
	before, after scaleRun
	// cleared is the throughput measured again once the retained jobs are deleted: with before, it
	// brackets the measurement with them, so that a drift of the machine's speed shows.
	cleared         scaleRun
	createRetained  time.Duration
	deleteRetained  time.Duration
	retainedExample *seekv1alpha1.SeekJob
}

// runScaleOnly runs the scale phase on a control plane of its own and prints it.
func runScaleOnly(cfg config) error {
	res, err := runScale(context.Background(), cfg)
	if err != nil {
		return fmt.Errorf("scale phase: %w", err)
	}
	return printTable("scale", res.print)
}

// runScale measures what retained finished SeekJobs cost the manager and the frontend: memory per
// retained job, and the throughput of new jobs with and without them. It starts its own control plane,
// with kube-controller-manager's Job and garbage-collector controllers (so the manager's Jobs create
// pods and its deletes of finished Jobs cascade to them); no kubelet runs: the bench plays it, every
// pod's worker exiting 0 with a small result as soon as the pod exists.
//
//  1. The frontend, then the manager, each started alone with no SeekJob at all; the manager then
//     runs the first throughput measurement (scale.jobs new SeekJobs through a worker capped at
//     scale.maxConcurrent, after a warm-up as every measurement), whose jobs are deleted after.
//  2. scale.retained finished SeekJobs are created, each with the status the controller wrote for a
//     job of step 1 (Completed, result, conditions, times), and no Job or pod, as the controller
//     leaves a finished Job mode job.
//  3. The frontend, then the manager, each started alone again; once the burst of the retained jobs'
//     creation has aged (burstAge), the manager runs the second throughput measurement.
//  4. With scale.recheck, the retained jobs are deleted and a fresh manager runs the third, once the
//     burst of their deletion has aged too.
//
// Memory is the Go live heap after a forced GC, once the process has synced its caches and (the
// manager) reconciled every SeekJob: its increase over the heap right before the start, the
// difference between steps 3 and 1 divided by the retained jobs.
func runScale(ctx context.Context, cfg config) (scaleResults, error) {
	sc := cfg.scale
	res := scaleResults{cfg: sc}
	cp, err := controlplane.Start(controlplane.Options{Controllers: []string{"job", "garbagecollector"}})
	if err != nil {
		return res, err
	}
	defer func() { _ = cp.Stop() }()
	admin := rest.CopyConfig(cp.Config)
	admin.QPS, admin.Burst = 5000, 10000
	c, err := client.New(admin, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		return res, err
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return res, err
	}
	h, err := newRESTHarness(ctx, cp, c, cfg)
	if err != nil {
		return res, err
	}
	for _, ns := range []string{scaleNSWarmup + "0", scaleNSWarmup + "1", scaleNSWarmup + "2", scaleNSBefore, scaleNSAfter, scaleNSCleared, scaleNSRetained} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return res, err
		}
		// No serviceaccount controller runs, and the Job controller's pods need their ServiceAccount.
		if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}); err != nil {
			return res, err
		}
	}
	if err := c.Create(ctx, testutil.MakeSeekWorker(scaleWorker).Image("example.com/seek/noop:v1").MaxConcurrent(int32(sc.maxConcurrent)).Obj()); err != nil {
		return res, err
	}
	workers := 2 // scale, and the REST harness's

	counter := &writeCounter{counts: map[string]int{}}
	mgrCfg := rest.CopyConfig(cp.Config)
	mgrCfg.Wrap(counter.wrap)
	m := scaleMeasurer{c: c, cs: cs, admin: admin, cfg: cfg, counter: counter}

	// 1. Without retained jobs.
	if res.before.frontendHeap, res.before.frontendStart, err = frontendFootprint(ctx, h); err != nil {
		return res, fmt.Errorf("frontend without retained jobs: %w", err)
	}
	mgr, heap, took, err := startSettledManager(ctx, mgrCfg, cfg, workers, 0)
	if err != nil {
		return res, fmt.Errorf("manager without retained jobs: %w", err)
	}
	res.before.mgrHeap, res.before.mgrStart = heap, took
	progress("frontend heap %.1f MiB (ready in %s), manager heap %.1f MiB (settled in %s), no retained jobs",
		mib(res.before.frontendHeap), res.before.frontendStart.Round(time.Millisecond), mib(heap), took.Round(time.Millisecond))
	if err := waitWorkerReady(ctx, c, scaleWorker); err != nil {
		mgr.stop()
		return res, err
	}
	if err := m.measure(ctx, 0, scaleNSBefore, time.Time{}, &res.before); err != nil {
		mgr.stop()
		return res, fmt.Errorf("throughput without retained jobs: %w", err)
	}
	list := &seekv1alpha1.SeekJobList{}
	if err := c.List(ctx, list, client.InNamespace(scaleNSBefore), client.Limit(1)); err != nil || len(list.Items) == 0 {
		mgr.stop()
		return res, fmt.Errorf("no finished job to copy (%d): %w", len(list.Items), err)
	}
	res.retainedExample = list.Items[0].DeepCopy()
	if err := clearNamespace(ctx, c, scaleNSBefore); err != nil {
		mgr.stop()
		return res, err
	}
	mgr.stop()
	progress("new jobs without retained ones: %.1f/s, %.2f manager writes per job", res.before.rate, float64(res.before.writes.total)/float64(sc.jobs))

	// 2. The retained jobs.
	start := time.Now()
	if err := createRetained(ctx, c, scaleNSRetained, res.retainedExample, sc.retained, cfg); err != nil {
		return res, fmt.Errorf("retained jobs: %w", err)
	}
	res.createRetained = time.Since(start)
	created := time.Now()
	progress("%d retained jobs created in %s", sc.retained, res.createRetained.Round(time.Second))

	// 3. With them.
	if res.after.frontendHeap, res.after.frontendStart, err = frontendFootprint(ctx, h); err != nil {
		return res, fmt.Errorf("frontend with retained jobs: %w", err)
	}
	mgr, heap, took, err = startSettledManager(ctx, mgrCfg, cfg, workers, sc.retained)
	if err != nil {
		return res, fmt.Errorf("manager with retained jobs: %w", err)
	}
	res.after.mgrHeap, res.after.mgrStart = heap, took
	progress("frontend heap %.1f MiB (ready in %s), manager heap %.1f MiB (settled in %s), %d retained jobs: per retained job %.2f / %.2f KiB",
		mib(res.after.frontendHeap), res.after.frontendStart.Round(time.Millisecond), mib(heap), took.Round(time.Millisecond), sc.retained,
		perRetained(res.before.frontendHeap, res.after.frontendHeap, sc.retained)/1024, perRetained(res.before.mgrHeap, heap, sc.retained)/1024)
	if err := m.measure(ctx, 1, scaleNSAfter, created, &res.after); err != nil {
		mgr.stop()
		return res, fmt.Errorf("throughput with retained jobs: %w", err)
	}
	mgr.stop()
	progress("new jobs with %d retained ones: %.1f/s (%.2f of before), %.2f manager writes per job", sc.retained, res.after.rate,
		res.after.rate/res.before.rate, float64(res.after.writes.total)/float64(sc.jobs))
	if !sc.recheck {
		return res, nil
	}

	// 4. Without them again, on a fresh manager.
	start = time.Now()
	if err := clearNamespace(ctx, c, scaleNSRetained); err != nil {
		return res, fmt.Errorf("delete the retained jobs: %w", err)
	}
	res.deleteRetained = time.Since(start)
	deleted := time.Now()
	if mgr, res.cleared.mgrHeap, res.cleared.mgrStart, err = startSettledManager(ctx, mgrCfg, cfg, workers, 0); err != nil {
		return res, fmt.Errorf("manager once the retained jobs are deleted: %w", err)
	}
	defer mgr.stop()
	if err := m.measure(ctx, 2, scaleNSCleared, deleted, &res.cleared); err != nil {
		return res, fmt.Errorf("throughput once the retained jobs are deleted: %w", err)
	}
	return res, nil
}

// burstAge is how long a burst of writes (creating or deleting the retained jobs) is left behind before
// a measurement: longer than kube-apiserver keeps a resource's watch events fresh (75 s,
// eventFreshDuration), since it lets them go only as new events come. A cluster accumulates its
// retained jobs over a day, not in minutes.
const burstAge = 90 * time.Second

// scaleMeasurer measures the throughput of new jobs.
type scaleMeasurer struct {
	c       client.Client
	cs      kubernetes.Interface
	admin   *rest.Config
	cfg     config
	counter *writeCounter
}

// measure measures the throughput of cfg.scale.jobs new SeekJobs in ns on a freshly started manager,
// once burstAge has passed since burst (zero: none), after the same warm-up in the i-th warm-up
// namespace: the first jobs of a process (and of kube-controller-manager) cost more than the next, and
// each measurement starts a new manager. It records kube-apiserver's live heap between the two.
func (m scaleMeasurer) measure(ctx context.Context, i int, ns string, burst time.Time, run *scaleRun) error {
	time.Sleep(burstAge - time.Since(burst))
	sc := m.cfg.scale
	warmup := scaleNSWarmup + strconv.Itoa(i)
	if err := scaleThroughput(ctx, m.c, m.cs, m.admin, warmup, max(sc.jobs/10, sc.maxConcurrent), m.cfg, m.counter, &scaleRun{}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := clearNamespace(ctx, m.c, warmup); err != nil {
		return err
	}
	var err error
	if run.apiserverHeap, err = apiserverLiveHeap(ctx, m.cs); err != nil {
		return err
	}
	return scaleThroughput(ctx, m.c, m.cs, m.admin, ns, sc.jobs, m.cfg, m.counter, run)
}

// apiserverLiveHeap is kube-apiserver's Go heap right after a collection: its heap profile endpoint
// collects first when asked to (gc=1), and its metrics then give the heap's allocated bytes.
func apiserverLiveHeap(ctx context.Context, cs kubernetes.Interface) (int64, error) {
	rc := cs.CoreV1().RESTClient()
	if _, err := rc.Get().AbsPath("/debug/pprof/heap").Param("gc", "1").DoRaw(ctx); err != nil {
		return 0, fmt.Errorf("kube-apiserver heap profile: %w", err)
	}
	raw, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("kube-apiserver metrics: %w", err)
	}
	families, err := parseFamilies(raw)
	if err != nil {
		return 0, fmt.Errorf("kube-apiserver metrics: %w", err)
	}
	heap := families["go_memstats_heap_alloc_bytes"]
	if len(heap) != 1 {
		return 0, errors.New("kube-apiserver metrics have no go_memstats_heap_alloc_bytes")
	}
	return int64(heap[0].value), nil
}

// progress reports a step's numbers as soon as they are known: a large run takes a while.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: scale: %s: "+format+"\n", append([]any{time.Now().UTC().Format(time.TimeOnly)}, args...)...)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// liveHeap is the Go heap's live bytes after a forced collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC() // what finalizers of the first collection released
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// settle is how long a started process is left alone before its heap is read: caches synced and
// queues empty, whatever it does next is timers.
const settle = 3 * time.Second

// frontendFootprint starts the frontend alone and returns by how much it grew the live heap once its
// caches had synced, and how long that took.
func frontendFootprint(ctx context.Context, h *restHarness) (int64, time.Duration, error) {
	before := liveHeap()
	start := time.Now()
	stop, err := h.start(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	took := time.Since(start)
	time.Sleep(settle)
	return liveHeap() - before, took, nil
}

// startSettledManager starts the manager and waits until it has reconciled every worker and at least
// jobs SeekJobs (each once, as it does at start) and its queues are empty; it returns the manager, by
// how much it grew the live heap then, and how long that took.
func startSettledManager(ctx context.Context, mgrCfg *rest.Config, cfg config, workers, jobs int) (*benchManager, int64, time.Duration, error) {
	before := liveHeap()
	count := func() (workerRec, jobRec, depth float64, err error) {
		families, err := ctrlmetrics.Registry.Gather()
		if err != nil {
			return 0, 0, 0, err
		}
		workerRec = metricSum(families, "controller_runtime_reconcile_total", map[string]string{"controller": "seekworker"})
		jobRec = metricSum(families, "controller_runtime_reconcile_total", map[string]string{"controller": "seekjob"})
		return workerRec, jobRec, metricSum(families, "workqueue_depth", nil), nil
	}
	w0, j0, _, err := count()
	if err != nil {
		return nil, 0, 0, err
	}
	start := time.Now()
	mgr := startManager(mgrCfg, cfg)
	err = waitFor(ctx, scaleWaitTimeout, func() (bool, error) {
		w, j, depth, err := count()
		return err == nil && w-w0 >= float64(workers) && j-j0 >= float64(jobs) && depth == 0, err
	})
	if err != nil {
		mgr.stop()
		return nil, 0, 0, fmt.Errorf("the manager did not reconcile %d workers and %d SeekJobs: %w", workers, jobs, err)
	}
	took := time.Since(start)
	time.Sleep(settle)
	return mgr, liveHeap() - before, took, nil
}

// metricSum sums the values of the counters and gauges named name whose labels include match.
func metricSum(families []*dto.MetricFamily, name string, match map[string]string) float64 {
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range match {
				if labels[k] != v {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func waitWorkerReady(ctx context.Context, c client.Client, name string) error {
	w := &seekv1alpha1.SeekWorker{}
	return waitFor(ctx, time.Minute, func() (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Name: name}, w)
		return err == nil && meta.IsStatusConditionTrue(w.Status.Conditions, seekv1alpha1.WorkerReady), err
	})
}

// scaleThroughput creates n SeekJobs of the scale worker in ns at full speed, plays the
// kubelet for their pods, and records in run the jobs per second from the first create to the last
// job finished, and the manager's API writes and each process's CPU from the first create until the
// manager went quiet.
func scaleThroughput(ctx context.Context, c client.Client, cs kubernetes.Interface, admin *rest.Config, ns string, n int, cfg config, counter *writeCounter, run *scaleRun) error {
	finished, err := countFinished(ctx, admin, ns, n)
	if err != nil {
		return err
	}
	defer finished.stop()
	stopKubelet := playKubelet(ctx, cs, ns)
	defer stopKubelet()
	counter.reset()
	cpuBefore := cpuSeconds()
	start := time.Now()
	if _, err := parallel(cfg, n, func(int) error {
		name, err := restapi.JobName(ns, "")
		if err != nil {
			return err
		}
		return c.Create(ctx, testutil.MakeSeekJob(name, ns).Worker(scaleWorker).Input(`{"n": 1}`).Obj())
	}); err != nil {
		return err
	}
	var last time.Time
	select {
	case last = <-finished.done:
	case <-time.After(scaleWaitTimeout):
		return fmt.Errorf("%d of %d jobs finished within %s", finished.count.Load(), n, scaleWaitTimeout)
	}
	if f := finished.notCompleted.Load(); f != nil {
		return fmt.Errorf("job %s finished %s, not Completed: %v", f.Name, f.Status.State, f.Status.Error)
	}
	// The writes that follow each job's end (deleting its Job) count too.
	for prev := int64(-1); prev != counter.total.Load(); {
		prev = counter.total.Load()
		time.Sleep(2 * time.Second)
	}
	run.rate, run.writes, run.cpu = float64(n)/last.Sub(start).Seconds(), counter.snapshot(), cpuSeconds().minus(cpuBefore)
	return nil
}

// finishCounter records when the n-th SeekJob of a namespace reached a terminal state.
type finishCounter struct {
	done         chan time.Time
	count        atomic.Int64
	notCompleted atomic.Pointer[seekv1alpha1.SeekJob]
	stop         context.CancelFunc
}

func countFinished(ctx context.Context, admin *rest.Config, ns string, n int) (*finishCounter, error) {
	ctx, cancel := context.WithCancel(ctx)
	fc := &finishCounter{done: make(chan time.Time, 1), stop: cancel}
	ca, err := cache.New(admin, cache.Options{Scheme: manager.NewScheme(), DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		cancel()
		return nil, err
	}
	inf, err := ca.GetInformer(ctx, &seekv1alpha1.SeekJob{})
	if err != nil {
		cancel()
		return nil, err
	}
	var seen sync.Map
	observe := func(obj any) {
		sj, ok := obj.(*seekv1alpha1.SeekJob)
		if !ok || !sj.Status.State.IsTerminal() {
			return
		}
		if _, dup := seen.LoadOrStore(sj.Name, true); dup {
			return
		}
		if sj.Status.State != seekv1alpha1.JobStateCompleted {
			fc.notCompleted.CompareAndSwap(nil, sj)
		}
		if fc.count.Add(1) == int64(n) {
			fc.done <- time.Now()
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, obj any) { observe(obj) },
	}); err != nil {
		cancel()
		return nil, err
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		cancel()
		return nil, errors.New("the SeekJob cache of the finish counter did not sync")
	}
	return fc, nil
}

// playKubelet plays the kubelet for the pods of ns: as soon as the Job controller has created one, its
// worker container has run and exited 0 with a small result as termination message (one status
// write, where a kubelet writes two or three). It returns the function that stops it.
func playKubelet(ctx context.Context, cs kubernetes.Interface, ns string) func() {
	ctx, cancel := context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	var wg sync.WaitGroup
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Status.Phase != corev1.PodPending || pod.DeletionTimestamp != nil {
			return
		}
		wg.Go(func() {
			if err := succeedPod(ctx, cs, pod.DeepCopy()); err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "bench: kubelet:", err)
			}
		})
	}})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return func() { cancel(); factory.Shutdown(); wg.Wait() }
}

// succeedPod writes the status of a pod whose worker container ran and exited 0 with scaleResult.
func succeedPod(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod) error {
	return retry.OnError(retry.DefaultBackoff, func(err error) bool { return apierrors.IsConflict(err) }, func() error {
		now := metav1.Now()
		pod.Status.Phase = corev1.PodSucceeded
		pod.Status.StartTime = &now
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: protocol.ContainerName, Image: pod.Spec.Containers[0].Image,
			ImageID: "sha256:0000000000000000000000000000000000000000000000000000000000000000",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 0, Reason: "Completed", Message: scaleResult, StartedAt: now, FinishedAt: now,
			}},
		}}
		_, err := cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			fresh, getErr := cs.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if getErr != nil {
				return getErr
			}
			*pod = *fresh
		}
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// clearNamespace deletes the SeekJobs of ns and waits until they, their Jobs and their pods are gone.
// A collection of many SeekJobs may take the apiserver longer than a request may last: it is asked
// again until none is left.
func clearNamespace(ctx context.Context, c client.Client, ns string) error {
	return waitFor(ctx, 20*time.Minute, func() (bool, error) {
		err := c.DeleteAllOf(ctx, &seekv1alpha1.SeekJob{}, client.InNamespace(ns))
		if err != nil && !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
			return false, err
		}
		for _, list := range []client.ObjectList{&seekv1alpha1.SeekJobList{}, &batchv1.JobList{}, &corev1.PodList{}} {
			if err := c.List(ctx, list, client.InNamespace(ns), client.Limit(1)); err != nil {
				return false, err
			}
			if meta.LenList(list) > 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// createRetained creates n finished SeekJobs in ns, each with example's spec and status: created, then
// given that status through the status subresource.
func createRetained(ctx context.Context, c client.Client, ns string, example *seekv1alpha1.SeekJob, n int, cfg config) error {
	wide := cfg
	wide.concurrency = max(cfg.concurrency, 32)
	_, err := parallel(wide, n, func(int) error {
		name, err := restapi.JobName(ns, "")
		if err != nil {
			return err
		}
		sj := &seekv1alpha1.SeekJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: *example.Spec.DeepCopy()}
		if err := c.Create(ctx, sj); err != nil {
			return err
		}
		sj.Status = *example.Status.DeepCopy()
		return c.Status().Update(ctx, sj)
	})
	return err
}

// perRetained is the bytes one retained job adds: the growth with n retained jobs less the growth
// without any.
func perRetained(without, with int64, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(with-without) / float64(n)
}

// bracketRatio is a measure with the retained jobs over the mean of the two measurements
// without them, one before and one after: a steady drift of the machine's speed cancels out. Without
// the one after (0: not measured), it is over the one before.
func bracketRatio(before, with, after float64) float64 {
	switch {
	case after == 0 && before == 0:
		return 0
	case after == 0:
		return with / before
	}
	return with / ((before + after) / 2)
}

// print adds the phase's rows to a table of the form main prints.
func (r scaleResults) print(tw *tabwriter.Writer) {
	n := r.cfg.retained
	fmt.Fprintf(tw, "scale: %d retained finished SeekJobs created (create + status update each)\t%.0f s, %.0f/s\t\t\n",
		n, r.createRetained.Seconds(), float64(n)/r.createRetained.Seconds())
	fmt.Fprintf(tw, "scale: manager live heap after start, none / %d retained (MiB)\t%.1f / %.1f\t\t\n", n, mib(r.before.mgrHeap), mib(r.after.mgrHeap))
	fmt.Fprintf(tw, "scale: manager start → every SeekJob reconciled, none / %d retained (s)\t%.1f / %.1f\t\t\n", n, r.before.mgrStart.Seconds(), r.after.mgrStart.Seconds())
	fmt.Fprintf(tw, "scale: manager memory per retained job (KiB)\t%.2f\t≤ %d\t\n", perRetained(r.before.mgrHeap, r.after.mgrHeap, n)/1024, scaleMemoryGoal/1024)
	fmt.Fprintf(tw, "scale: frontend live heap after start, none / %d retained (MiB)\t%.1f / %.1f\t\t\n", n, mib(r.before.frontendHeap), mib(r.after.frontendHeap))
	fmt.Fprintf(tw, "scale: frontend start → ready, none / %d retained (s)\t%.1f / %.1f\t\t\n", n, r.before.frontendStart.Seconds(), r.after.frontendStart.Seconds())
	fmt.Fprintf(tw, "scale: frontend memory per retained job (KiB)\t%.2f\t≤ %d\t\n", perRetained(r.before.frontendHeap, r.after.frontendHeap, n)/1024, scaleMemoryGoal/1024)
	fmt.Fprintf(tw, "scale: kube-apiserver live heap before the measurement, none / %d retained (MiB)\t%.1f / %.1f\t\t\n", n, mib(r.before.apiserverHeap), mib(r.after.apiserverHeap))
	fmt.Fprintf(tw, "scale: kube-apiserver memory per retained job (KiB; its watch cache holds every SeekJob)\t%.2f\t\t\n", perRetained(r.before.apiserverHeap, r.after.apiserverHeap, n)/1024)
	fmt.Fprintf(tw, "scale: new jobs/s, %d through a worker capped at %d (simulated kubelet): none / %d retained / none again\t%.1f / %.1f / %.1f\t\t\n",
		r.cfg.jobs, r.cfg.maxConcurrent, n, r.before.rate, r.after.rate, r.cleared.rate)
	ref := "the mean without"
	if !r.cfg.recheck {
		ref = "without (none again: not measured, -scale-recheck=false)"
	}
	fmt.Fprintf(tw, "scale: new jobs' throughput with the retained ones / "+ref+"\t%.2f\t≥ %.2f\t\n", bracketRatio(r.before.rate, r.after.rate, r.cleared.rate), scaleThroughputGoal)
	self := "bench client + manager"
	fmt.Fprintf(tw, "scale: CPU per new job of this process (manager, bench client, simulated kubelet), with the retained ones / "+ref+"\t%.2f\t≤ %.2f\t\n",
		bracketRatio(r.before.cpu[self], r.after.cpu[self], r.cleared.cpu[self]), 1/scaleThroughputGoal)
	if r.cfg.recheck {
		fmt.Fprintf(tw, "scale: retained jobs deleted (deletecollection)\t%.0f s\t\t\n", r.deleteRetained.Seconds())
	}
	jobs := float64(r.cfg.jobs)
	fmt.Fprintf(tw, "scale: manager API writes per new job, none / %d retained\t%.2f / %.2f\t\t\n", n, float64(r.before.writes.total)/jobs, float64(r.after.writes.total)/jobs)
	keys := r.before.writes.keys()
	for _, k := range r.after.writes.keys() {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s per new job\t%.2f / %.2f\t\t\n", k, float64(r.before.writes.counts[k])/jobs, float64(r.after.writes.counts[k])/jobs)
	}
	for _, k := range r.after.cpu.keys() {
		fmt.Fprintf(tw, "scale: CPU ms per new job, %s: none / %d retained / none again\t%.2f / %.2f / %.2f\t\t\n", k, n,
			r.before.cpu[k]*1000/jobs, r.after.cpu[k]*1000/jobs, r.cleared.cpu[k]*1000/jobs)
	}
}
