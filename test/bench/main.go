// Command bench measures the Seek controllers on a real local control plane (etcd + kube-apiserver,
// built by hack/k8s-binaries.sh) and prints a table. All numbers come from one run on one machine, so
// ratios between them are meaningful even where absolute numbers are not.
//
//	B0          raw SeekJob creates/s at the given client concurrency, no controller running
//	REST        the same through the REST frontend (running as its ServiceAccount), closed loop, and
//	            both open loop at half of the REST rate; GET latency. B0 and REST alternate in rounds, so that
//	            drift in the machine's speed hits both sides of their ratio alike
//	steady      SeekJobs/s from the first create to the last Job the controller created for them, the
//	            SeekJobs being created at full speed while the controller runs
//	backlog     SeekJobs/s a freshly started manager turns a backlog of SeekJobs into Jobs (cache
//	            sync included)
//	callback    terminal state → delivered latency at a local receiver, jobs arriving open loop
//	fairness    the same for tenant B alone, then while tenant A's jobs call a receiver that never
//	            answers (-fairness-only runs this phase alone)
//	writes/job  API writes the manager issued per SeekJob (by verb and resource), steady phase
//	CPU/job     CPU time per SeekJob of each process, B0 and steady phases
//
// kube-controller-manager is not started: the benchmark stops at Job creation, before pods exist.
//
// The scale phase (-scale-only; not part of a default run: creating 100,000 SeekJobs alone takes 10 to
// 30 minutes on this shared 2-core machine) measures what retained finished SeekJobs cost, on a control plane of its own WITH
// kube-controller-manager's Job and garbage-collector controllers, and a SIMULATED KUBELET: the bench
// writes each pod's status itself, its worker exited 0 with a small result, as soon as the Job
// controller has created it (scale.go):
//
//	memory/job   the Go live heap that the manager, then the frontend, each started alone, holds once
//	             synced (and, the manager, every SeekJob reconciled), with -scale-retained finished
//	             SeekJobs (no Job, no pod: as the controller leaves them) against none; ≤ 5 KiB each
//	throughput   -scale-jobs new SeekJobs through a worker capped at -scale-max-concurrent, first create
//	             to last finished, with the retained ones against the mean of before them and after
//	             their deletion (drift cancels out; -scale-recheck=false skips it, deleting as long as
//	             creating); ≥ 0.9. API writes and CPU per new job alongside
//
// Then the real-node phases (-node-phases, all by default; -node-only runs only them), on the local
// cluster (internal/localcluster), with SeekWorkers copied from the sample echo and email-validator
// workers in Job mode and in Pooled mode:
//
//	latency      echo jobs one at a time with Prefer: wait, Job mode and Pooled alternating:
//	             submit → answer p50 / p90
//	job-burst    echo jobs submitted at once in Job mode, one request each: completed/s, through a
//	             worker capped at -node-max-concurrent (slot grants), then through one without a cap
//	b0           raw SeekJob creates/s on the cluster (admin client, tenant quota)
//	batch-echo   one batch call of -node-batch-jobs echo jobs (Pooled, a fresh tenant): the call's
//	             latency, then submit → last completed jobs/s
//	batch-email  the same with the email validator, inputs that need no MX lookup (check_mx false)
//
// For job-burst (both workers) and the batch phases: API writes per job (apiserver_request_total deltas by verb and
// resource, every client; the manager's own rest_client_requests_total by method) and CPU per job of
// the manager, frontend and worker pods (their cgroups' CPU accounting, sampled every 500 ms).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/localcluster"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/internal/webhook"
)

type config struct {
	jobs        int
	concurrency int
	qps         float64
	burst       int
	reconcilers int
	restProfile string
	// callbacks jobs with a callback are created at callbackRate per second.
	callbacks    int
	callbackRate float64
	// callbackTenantConcurrency is the manager's --callback-tenant-concurrency (0: its default).
	callbackTenantConcurrency int
	fairness                  fairnessConfig
	scale                     scaleConfig
}

func main() {
	cfg := config{}
	flag.IntVar(&cfg.jobs, "jobs", 2000, "SeekJobs per measurement.")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "Client goroutines creating SeekJobs.")
	flag.Float64Var(&cfg.qps, "manager-qps", 200, "Manager API QPS (--kube-api-qps).")
	flag.IntVar(&cfg.burst, "manager-burst", 400, "Manager API burst (--kube-api-burst).")
	flag.IntVar(&cfg.reconcilers, "job-concurrency", 16, "Manager --job-concurrency.")
	flag.IntVar(&cfg.callbacks, "callbacks", 1000, "SeekJobs with a callback in the callback phase.")
	flag.Float64Var(&cfg.callbackRate, "callback-rate", 50, "SeekJobs with a callback created per second (open loop).")
	flag.IntVar(&cfg.fairness.jobs, "fairness-jobs", 300, "Callback fairness: tenant B's jobs per measurement.")
	flag.Float64Var(&cfg.fairness.rate, "fairness-rate", 30, "Callback fairness: tenant B's jobs created per second (open loop).")
	flag.IntVar(&cfg.fairness.hanging, "fairness-hanging", 64, "Callback fairness: tenant A's jobs, whose receiver never answers.")
	flag.IntVar(&cfg.scale.retained, "scale-retained", 100000, "Scale (-scale-only): finished SeekJobs retained during the second throughput measurement.")
	flag.IntVar(&cfg.scale.jobs, "scale-jobs", 2000, "Scale: new SeekJobs per throughput measurement.")
	flag.IntVar(&cfg.scale.maxConcurrent, "scale-max-concurrent", 50, "Scale: the worker's limits.maxConcurrentJobs.")
	flag.BoolVar(&cfg.scale.recheck, "scale-recheck", true, "Scale: measure the throughput once more after deleting the retained jobs (the ratio's reference is then the mean of before and after).")
	scaleOnly := flag.Bool("scale-only", false, "Run only the scale phase (on its own control plane).")
	fairnessOnly := flag.Bool("fairness-only", false, "Run only the callback fairness phase (on its own control plane).")
	logPath := flag.String("manager-log", "", "Write the manager's log to this file.")
	flag.StringVar(&cfg.restProfile, "rest-cpuprofile", "", "Write CPU profiles of this process (load generator and frontend) during each REST measurement, to <path>.<n>; merge them with go tool pprof.")
	node := nodeConfig{}
	flag.IntVar(&node.latencyJobs, "node-latency-jobs", 30, "Real node: echo jobs submitted one at a time with Prefer: wait in each mode for the latency (0 skips the real-node phases).")
	flag.IntVar(&node.burstJobs, "node-jobs", 100, "Real node: echo jobs submitted at once, one request each, for the Job mode throughput (twice: through a worker capped at -node-max-concurrent, then through one without a cap).")
	flag.IntVar(&node.maxConcurrent, "node-max-concurrent", localcluster.SampleMaxConcurrentJobs(), "Real node: the workers' limits.maxConcurrentJobs, as the local cluster sets it for the sample workers (0: no cap).")
	flag.IntVar(&node.batchJobs, "node-batch-jobs", 1000, "Real node: inputs of the one batch call of the batch phases (and SeekJobs of the local B0).")
	flag.IntVar(&node.poolMaxPods, "node-pool-max-pods", 4, "Real node: pool.maxPods of the Pooled workers.")
	flag.BoolVar(&node.batchCallOnly, "node-batch-call-only", false, "Real node: in the batch phases, measure the batch call only, not the jobs' completion.")
	nodePhaseList := flag.String("node-phases", "all", "Real node: comma-separated phases to run, of "+strings.Join(nodePhases, ", ")+
		" (all by default), and "+strings.Join(optionalNodePhases, ", ")+" (only when named).")
	flag.IntVar(&node.retainedJobs, "node-retained-jobs", 1000, "Real node: finished jobs of the retained-results phase.")
	nodeOnly := flag.Bool("node-only", false, "Run only the real-node phases.")
	flag.Parse()
	node.concurrency = cfg.concurrency
	var err error
	known := append(append([]string{}, nodePhases...), optionalNodePhases...)
	if *nodePhaseList == "" || *nodePhaseList == "all" {
		known = nodePhases // the optional phases run only when named
	}
	if node.phases, err = parsePhases(*nodePhaseList, known); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *logPath == "" {
		ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	} else {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		ctrl.SetLogger(zap.New(zap.WriteTo(f)))
	}
	if *scaleOnly {
		if err := runScaleOnly(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *fairnessOnly {
		if err := runFairnessOnly(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if !*nodeOnly {
		if node.controlPlaneB0, err = run(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	// After the control-plane phases, whose control plane is gone by then: the node would skew them.
	if node.latencyJobs > 0 && len(node.phases) > 0 {
		if err := runNode(context.Background(), node); err != nil {
			fmt.Fprintln(os.Stderr, "bench: real-node phase:", err)
			os.Exit(1)
		}
	}
}

// writeCounter counts the mutating requests a client sends, by verb and resource.
type writeCounter struct {
	mu     sync.Mutex
	counts map[string]int
	total  atomic.Int64
}

// wrap returns a transport that counts into w; every client built from the config gets its own.
func (w *writeCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.total.Add(1)
			w.mu.Lock()
			w.counts[req.Method+" "+resourceOf(req.URL.Path)]++
			w.mu.Unlock()
		}
		return next.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (w *writeCounter) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts = map[string]int{}
	w.total.Store(0)
}

// resourceOf reduces an API path to its resource (and subresource): /apis/g/v/namespaces/ns/r/name/s → r/s.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i < len(parts); i++ {
		if parts[i] == "namespaces" && i+2 < len(parts) {
			parts = parts[i+2:]
			break
		}
	}
	if len(parts) >= 3 && (parts[0] == "api" || parts[0] == "apis") {
		parts = parts[len(parts)-min(len(parts), 3):]
	}
	if len(parts) == 3 {
		return parts[0] + "/" + parts[2]
	}
	return parts[0]
}

// startControlPlane starts a local control plane and returns it with an admin config and client whose
// rate limits are out of the way.
func startControlPlane() (*controlplane.ControlPlane, *rest.Config, client.Client, error) {
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		return nil, nil, nil, err
	}
	admin := rest.CopyConfig(cp.Config)
	admin.QPS, admin.Burst = 5000, 10000
	c, err := client.New(admin, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		_ = cp.Stop()
		return nil, nil, nil, err
	}
	return cp, admin, c, nil
}

func run(cfg config) (float64, error) {
	ctx := context.Background()
	cp, admin, c, err := startControlPlane()
	if err != nil {
		return 0, err
	}
	defer func() { _ = cp.Stop() }()
	for _, ns := range []string{"b0", "b1", "b2", "b3", "b4"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return 0, err
		}
	}

	// B0 and the REST frontend, no controller.
	sub, err := runSubmissions(ctx, cp, c, cfg)
	if err != nil {
		return 0, fmt.Errorf("B0 and REST phases: %w", err)
	}
	b0, restSubmit := sub.b0.stats(), sub.rest.stats()
	cpuB0 := sub.cpuB0

	// The manager, with every API write counted.
	counter := &writeCounter{counts: map[string]int{}}
	mgrCfg := rest.CopyConfig(cp.Config)
	mgrCfg.Wrap(counter.wrap)
	mgr := startManager(mgrCfg, cfg)
	defer func() { mgr.stop() }()

	worker := testutil.MakeSeekWorker("bench").Image("example.com/seek/noop:v1").Obj()
	if err := c.Create(ctx, worker); err != nil {
		return 0, err
	}
	if err := waitFor(ctx, 60*time.Second, func() (bool, error) {
		err := c.Get(ctx, types.NamespacedName{Name: "bench"}, worker)
		return err == nil && meta.IsStatusConditionTrue(worker.Status.Conditions, seekv1alpha1.WorkerReady), err
	}); err != nil {
		return 0, fmt.Errorf("worker never ready: %w", err)
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return 0, err
	}

	// Steady state: SeekJobs created at full speed while the controller runs.
	time.Sleep(time.Second)
	counter.reset()
	cpuBefore := cpuSeconds()
	jobsB1 := countJobs(ctx, cs, "b1", cfg.jobs)
	start := time.Now()
	createdSample, err := createJobs(ctx, c, "b1", "bench", cfg)
	if err != nil {
		return 0, err
	}
	last, err := jobsB1.wait(10 * time.Minute)
	if err != nil {
		return 0, err
	}
	created := createdSample.stats()
	steady := float64(cfg.jobs) / last.Sub(start).Seconds()
	if err := waitAllJobCreated(ctx, c, "b1"); err != nil {
		return 0, err
	}
	for prev := int64(-1); prev != counter.total.Load(); {
		prev = counter.total.Load()
		time.Sleep(2 * time.Second)
	}
	writes := counter.snapshot()
	cpuSteady := cpuSeconds().minus(cpuBefore)

	// What the controller's writes cost the apiserver on their own, with no manager running: the same
	// Jobs created raw, and one status update per SeekJob.
	mgr.stop()
	cpuBefore = cpuSeconds()
	rawJobsSample, err := copyJobs(ctx, c, "b1", "b3", cfg)
	if err != nil {
		return 0, err
	}
	rawJobs := rawJobsSample.stats()
	cpuRawJobs := cpuSeconds().minus(cpuBefore)
	cpuBefore = cpuSeconds()
	rawStatusSample, err := touchStatuses(ctx, c, "b1", cfg)
	if err != nil {
		return 0, err
	}
	rawStatus := rawStatusSample.stats()
	cpuRawStatus := cpuSeconds().minus(cpuBefore)
	bound := 1 / (1 + b0.rate/rawJobs.rate + b0.rate/rawStatus.rate)

	// Backlog: SeekJobs created with no manager running, then drained by a fresh manager.
	if _, err := createJobs(ctx, c, "b2", "bench", cfg); err != nil {
		return 0, err
	}
	jobsB2 := countJobs(ctx, cs, "b2", cfg.jobs)
	start = time.Now()
	mgr = startManager(mgrCfg, cfg)
	last, err = jobsB2.wait(10 * time.Minute)
	if err != nil {
		return 0, err
	}
	drain := float64(cfg.jobs) / last.Sub(start).Seconds()

	// Callbacks: terminal state → delivered, at a local receiver.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b5"}}); err != nil {
		return 0, err
	}
	cbSample, err := runCallbacks(ctx, c, admin, "b5", cfg.callbacks, cfg.callbackRate)
	if err != nil {
		return 0, fmt.Errorf("callback phase: %w", err)
	}
	cb := cbSample.stats()

	// Callback fairness: one tenant's deliveries while another tenant's receiver hangs.
	mgr.stop()
	fair, err := runFairness(ctx, c, mgrCfg, admin, cfg, cfg.fairness)
	if err != nil {
		return 0, fmt.Errorf("callback fairness phase: %w", err)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(os.Stdout, "\nSeek controller benchmark: %d SeekJobs per phase, client concurrency %d, manager QPS %.0f/burst %d, %d job reconcilers, %d CPUs\n\n",
		cfg.jobs, cfg.concurrency, cfg.qps, cfg.burst, cfg.reconcilers, runtime.NumCPU())
	fmt.Fprintln(tw, "measure\tvalue\ttarget\t")
	b0Half, restHalf, get := sub.b0Half.stats(), sub.restHalf.stats(), sub.get.stats()
	fmt.Fprintf(tw, "B0: raw SeekJob creates/s (no controller)\t%.0f\t\t\n", b0.rate)
	fmt.Fprintf(tw, "REST submits/s (frontend as its ServiceAccount)\t%.0f\t\t\n", restSubmit.rate)
	fmt.Fprintf(tw, "REST submit / B0\t%.2f\t≥ 0.8\t\n", restSubmit.rate/b0.rate)
	fmt.Fprintf(tw, "latency p50 / p99 at full load (ms): B0 create\t%.1f / %.1f\t\t\n", b0.p50, b0.p99)
	fmt.Fprintf(tw, "REST submit\t%.1f / %.1f\t\t\n", restSubmit.p50, restSubmit.p99)
	fmt.Fprintf(tw, "latency p50 / p99 at half load, %.0f/s open loop (ms): B0 create\t%.1f / %.1f\t\t\n", restSubmit.rate/2, b0Half.p50, b0Half.p99)
	fmt.Fprintf(tw, "REST submit\t%.1f / %.1f\tp99 ≤ 100\t\n", restHalf.p50, restHalf.p99)
	fmt.Fprintf(tw, "REST GET latency p50 / p99 (ms), %.0f GETs/s\t%.1f / %.1f\t\t\n", get.rate, get.p50, get.p99)
	fmt.Fprintf(tw, "steady: creates/s while the controller runs\t%.0f\t\t\n", created.rate)
	fmt.Fprintf(tw, "steady: SeekJob → Job throughput/s\t%.0f\t\t\n", steady)
	fmt.Fprintf(tw, "steady: ratio to B0\t%.2f\t≥ 0.5\t\n", steady/b0.rate)
	fmt.Fprintf(tw, "backlog: SeekJob → Job throughput/s (fresh manager)\t%.0f\t\t\n", drain)
	fmt.Fprintf(tw, "backlog: ratio to B0\t%.2f\t≥ 0.5\t\n", drain/b0.rate)
	fmt.Fprintf(tw, "callback: terminal state → delivered p50 / p99 (ms), %d jobs at %.0f/s\t%.1f / %.1f\tp99 ≤ 250\t\n", cfg.callbacks, cfg.callbackRate, cb.p50, cb.p99)
	fair.print(tw)
	fmt.Fprintf(tw, "raw Job creates/s (the controller's Jobs, copied)\t%.0f\t\t\n", rawJobs.rate)
	fmt.Fprintf(tw, "raw SeekJob status updates/s\t%.0f\t\t\n", rawStatus.rate)
	fmt.Fprintf(tw, "ceiling for the ratio: B0 cost / (B0 + Job create + status update)\t%.2f\t\t\n", bound)
	fmt.Fprintf(tw, "controller API writes per SeekJob\t%.2f\t≤ 3\t\n", float64(writes.total)/float64(cfg.jobs))
	for _, k := range writes.keys() {
		fmt.Fprintf(tw, "  %s per SeekJob\t%.2f\t\t\n", k, float64(writes.counts[k])/float64(cfg.jobs))
	}
	for _, k := range cpuSteady.keys() {
		fmt.Fprintf(tw, "CPU ms per raw Job create / status update, %s\t%.2f / %.2f\t\t\n", k, cpuRawJobs[k]*1000/float64(cfg.jobs), cpuRawStatus[k]*1000/float64(cfg.jobs))
	}
	for _, k := range sub.cpuREST.keys() {
		fmt.Fprintf(tw, "CPU ms per submission, %s: B0 / REST\t%.2f / %.2f\t\t\n", k, cpuB0[k]*1000/float64(len(sub.b0.latencies)), sub.cpuREST[k]*1000/float64(len(sub.rest.latencies)))
	}
	for _, k := range cpuSteady.keys() {
		fmt.Fprintf(tw, "CPU ms per SeekJob, %s: B0 / steady\t%.2f / %.2f\t\t\n", k, cpuB0[k]*1000/float64(len(sub.b0.latencies)), cpuSteady[k]*1000/float64(cfg.jobs))
	}
	return b0.rate, tw.Flush()
}

type benchManager struct {
	stop func()
}

func startManager(cfg *rest.Config, bc config) *benchManager {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- manager.Run(ctx, cfg, manager.Options{
			MetricsAddr: "0", HealthProbeAddr: "0", QPS: bc.qps, Burst: bc.burst,
			JobConcurrency: bc.reconcilers, Registry: prometheus.NewRegistry(), Restartable: true,
			CallbackPolicy:            webhook.Policy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, AnyPort: true},
			CallbackTenantConcurrency: bc.callbackTenantConcurrency,
		})
	}()
	var once sync.Once
	return &benchManager{stop: func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				fmt.Fprintln(os.Stderr, "bench: manager:", err)
			}
		})
	}}
}

// jobCounter counts Jobs appearing in a namespace through an informer (which re-lists and re-watches
// as needed) and records when the n-th one appeared.
type jobCounter struct {
	done chan time.Time
	stop chan struct{}
}

func countJobs(ctx context.Context, cs kubernetes.Interface, ns string, n int) *jobCounter {
	jc := &jobCounter{done: make(chan time.Time, 1), stop: make(chan struct{})}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Batch().V1().Jobs().Informer()
	var seen atomic.Int64
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) {
		if seen.Add(1) == int64(n) {
			jc.done <- time.Now()
		}
	}})
	factory.Start(jc.stop)
	factory.WaitForCacheSync(jc.stop)
	return jc
}

func (jc *jobCounter) wait(timeout time.Duration) (time.Time, error) {
	defer close(jc.stop)
	select {
	case t := <-jc.done:
		return t, nil
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("the controller did not create all Jobs within %s", timeout)
	}
}

// waitAllJobCreated waits until every SeekJob of ns records its Job. Without a kubelet no worker
// container starts: the SeekJobs stay Queued with reason JobCreated.
func waitAllJobCreated(ctx context.Context, c client.Client, ns string) error {
	return waitFor(ctx, 2*time.Minute, func() (bool, error) {
		list := &seekv1alpha1.SeekJobList{}
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for i := range list.Items {
			if list.Items[i].Status.JobName == "" {
				return false, nil
			}
		}
		return true, nil
	})
}

type writeSnapshot struct {
	total  int64
	counts map[string]int
}

func (w *writeCounter) snapshot() writeSnapshot {
	w.mu.Lock()
	defer w.mu.Unlock()
	return writeSnapshot{total: w.total.Load(), counts: maps.Clone(w.counts)}
}

func (s writeSnapshot) keys() []string {
	return slices.Sorted(maps.Keys(s.counts))
}

// cpuTimes are CPU seconds by process: this process (bench client + manager), etcd, kube-apiserver.
type cpuTimes map[string]float64

func cpuSeconds() cpuTimes {
	t := cpuTimes{"bench client + manager": procCPU(os.Getpid())}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		comm := string(stat[bytes.IndexByte(stat, '(')+1 : bytes.LastIndexByte(stat, ')')])
		t[comm] += procCPU(pid)
	}
	return t
}

// procCPU is utime+stime of a process in seconds (assuming the usual 100 clock ticks per second).
func procCPU(pid int) float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100
}

func (t cpuTimes) minus(o cpuTimes) cpuTimes {
	d := cpuTimes{}
	for k, v := range t {
		d[k] = v - o[k]
	}
	return d
}

func (t cpuTimes) add(o cpuTimes) {
	for k, v := range o {
		t[k] += v
	}
}

func (t cpuTimes) keys() []string {
	return slices.Sorted(maps.Keys(t))
}

// copyJobs re-creates the Jobs of one namespace in another, stripped of identity and owner: the exact
// objects the controller writes, without the controller.
func copyJobs(ctx context.Context, c client.Client, from, to string, cfg config) (sample, error) {
	list := &batchv1.JobList{}
	if err := c.List(ctx, list, client.InNamespace(from)); err != nil {
		return sample{}, err
	}
	return parallel(cfg, len(list.Items), func(i int) error {
		job := list.Items[i].DeepCopy()
		job.ObjectMeta = metav1.ObjectMeta{Name: job.Name, Namespace: to, Labels: job.Labels}
		job.Status = batchv1.JobStatus{}
		job.Spec.Selector, job.Spec.Template.Labels = nil, job.Labels // the apiserver generates them
		return c.Create(ctx, job)
	})
}

// touchStatuses writes one status update to every SeekJob of a namespace, as the controller does.
func touchStatuses(ctx context.Context, c client.Client, ns string, cfg config) (sample, error) {
	list := &seekv1alpha1.SeekJobList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return sample{}, err
	}
	return parallel(cfg, len(list.Items), func(i int) error {
		sj := &list.Items[i]
		sj.Status.Attempts++
		return c.Status().Update(ctx, sj)
	})
}

type createStats struct {
	rate, p50, p99 float64
}

// createJobs creates cfg.jobs SeekJobs in ns from cfg.concurrency goroutines and reports the rate.
func createJobs(ctx context.Context, c client.Client, ns, worker string, cfg config) (sample, error) {
	return parallel(cfg, cfg.jobs, func(i int) error {
		return c.Create(ctx, testutil.MakeSeekJob(fmt.Sprintf("j-%05d", i), ns).Worker(worker).Input(`{"n": 1}`).Obj())
	})
}

// parallel runs op(0..n-1) from cfg.concurrency goroutines and reports the rate and latencies.
func parallel(cfg config, n int, op func(i int) error) (sample, error) {
	var next atomic.Int64
	latencies := make([]time.Duration, n)
	errs := make(chan error, cfg.concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					errs <- err
					return
				}
				latencies[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return newSample(latencies, time.Since(start), errs)
}

// sample is the latencies of a set of operations and the wall time they took.
type sample struct {
	latencies []time.Duration
	elapsed   time.Duration
}

// newSample returns the sample, or the first error an operation reported.
func newSample(latencies []time.Duration, elapsed time.Duration, errs chan error) (sample, error) {
	select {
	case err := <-errs:
		return sample{}, err
	default:
	}
	return sample{latencies: latencies, elapsed: elapsed}, nil
}

// merge adds another sample of the same operation, taken at another time.
func (s *sample) merge(o sample) {
	s.latencies = append(s.latencies, o.latencies...)
	s.elapsed += o.elapsed
}

// stats is the sample's rate and latency percentiles.
func (s sample) stats() createStats {
	if len(s.latencies) == 0 {
		return createStats{}
	}
	sorted := slices.Sorted(slices.Values(s.latencies))
	ms := func(q float64) float64 {
		return float64(sorted[int(q*float64(len(sorted)-1))].Microseconds()) / 1000
	}
	return createStats{rate: float64(len(sorted)) / s.elapsed.Seconds(), p50: ms(0.5), p99: ms(0.99)}
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out (last error: %v)", lastErr)
}

// runFairnessOnly runs the callback fairness phase on a control plane of its own and prints it.
func runFairnessOnly(cfg config) error {
	ctx := context.Background()
	cp, admin, c, err := startControlPlane()
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	// The webhook signing secrets live there (the REST phase creates it in a full run).
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: credentials.DefaultNamespace}}); err != nil {
		return err
	}
	fair, err := runFairness(ctx, c, rest.CopyConfig(cp.Config), admin, cfg, cfg.fairness)
	if err != nil {
		return fmt.Errorf("callback fairness phase: %w", err)
	}
	return printTable("callback fairness", fair.print)
}

// printTable prints the table of a phase run on its own: a title naming the benchmark, then
// measure, value and target columns filled by rows.
func printTable(name string, rows func(tw *tabwriter.Writer)) error {
	fmt.Fprintf(os.Stdout, "\nSeek %s benchmark, %d CPUs\n\n", name, runtime.NumCPU())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tvalue\ttarget\t")
	rows(tw)
	return tw.Flush()
}
