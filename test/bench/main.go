// Command bench measures the Seek controllers on a real local control plane (etcd + kube-apiserver,
// built by hack/k8s-binaries.sh) and prints a table. All numbers come from one run on one machine, so
// ratios between them are meaningful even where absolute numbers are not.
//
//	B0          raw SeekJob creates/s at the given client concurrency, no controller running
//	throughput  SeekJobs/s from the first create to the last Job the controller created for them
//	writes/job  API writes the manager issued per SeekJob (by verb and resource)
//
// kube-controller-manager is not started: the benchmark stops at Job creation, before pods exist.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
)

type config struct {
	jobs        int
	concurrency int
	qps         float64
	burst       int
	reconcilers int
}

func main() {
	cfg := config{}
	flag.IntVar(&cfg.jobs, "jobs", 2000, "SeekJobs per measurement.")
	flag.IntVar(&cfg.concurrency, "concurrency", 16, "Client goroutines creating SeekJobs.")
	flag.Float64Var(&cfg.qps, "manager-qps", 1000, "Manager API QPS (--kube-api-qps).")
	flag.IntVar(&cfg.burst, "manager-burst", 2000, "Manager API burst (--kube-api-burst).")
	flag.IntVar(&cfg.reconcilers, "job-concurrency", 16, "Manager --job-concurrency.")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.WriteTo(discard{})))
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// writeCounter counts the mutating requests a client sends, by verb and resource.
type writeCounter struct {
	mu     sync.Mutex
	counts map[string]int
	total  atomic.Int64
	next   http.RoundTripper
}

func (w *writeCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.total.Add(1)
		w.mu.Lock()
		w.counts[req.Method+" "+resourceOf(req.URL.Path)]++
		w.mu.Unlock()
	}
	return w.next.RoundTrip(req)
}

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

func run(cfg config) error {
	ctx := context.Background()
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = cp.Stop() }()
	admin := rest.CopyConfig(cp.Config)
	admin.QPS, admin.Burst = 5000, 10000
	c, err := client.New(admin, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		return err
	}
	for _, ns := range []string{"b0", "b1"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}

	// B0: raw creates, no controller.
	b0, err := createJobs(ctx, c, "b0", "absent", cfg)
	if err != nil {
		return err
	}
	if err := c.DeleteAllOf(ctx, &seekv1alpha1.SeekJob{}, client.InNamespace("b0")); err != nil {
		return err
	}

	// The manager, with every API write counted.
	counter := &writeCounter{counts: map[string]int{}}
	mgrCfg := rest.CopyConfig(cp.Config)
	mgrCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter })
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- manager.Run(mgrCtx, mgrCfg, manager.Options{
			MetricsAddr: "0", HealthProbeAddr: "0", QPS: cfg.qps, Burst: cfg.burst,
			JobConcurrency: cfg.reconcilers, Registry: prometheus.NewRegistry(),
		})
	}()
	defer func() { stop(); <-done }()

	worker := testutil.MakeSeekWorker("bench").Image("example.com/seek/noop:v1").Obj()
	if err := c.Create(ctx, worker); err != nil {
		return err
	}
	if err := waitFor(ctx, 60*time.Second, func() (bool, error) {
		err := c.Get(ctx, types.NamespacedName{Name: "bench"}, worker)
		return err == nil && meta.IsStatusConditionTrue(worker.Status.Conditions, seekv1alpha1.WorkerReady), err
	}); err != nil {
		return fmt.Errorf("worker never ready: %w", err)
	}
	time.Sleep(time.Second)
	counter.reset()

	// Controller throughput: SeekJob created → Job created.
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	watcher, err := cs.BatchV1().Jobs("b1").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer watcher.Stop()
	seen := make(chan time.Time, 1)
	go func() {
		n := 0
		for ev := range watcher.ResultChan() {
			if _, ok := ev.Object.(*batchv1.Job); ok && ev.Type == "ADDED" {
				if n++; n == cfg.jobs {
					seen <- time.Now()
					return
				}
			}
		}
	}()
	start := time.Now()
	created, err := createJobs(ctx, c, "b1", "bench", cfg)
	if err != nil {
		return err
	}
	var last time.Time
	select {
	case last = <-seen:
	case <-time.After(10 * time.Minute):
		return fmt.Errorf("the controller did not create %d Jobs within 10 minutes", cfg.jobs)
	}
	throughput := float64(cfg.jobs) / last.Sub(start).Seconds()

	// Let status writes and events settle, then count.
	if err := waitFor(ctx, 2*time.Minute, func() (bool, error) {
		list := &seekv1alpha1.SeekJobList{}
		if err := c.List(ctx, list, client.InNamespace("b1")); err != nil {
			return false, err
		}
		for i := range list.Items {
			if list.Items[i].Status.State != seekv1alpha1.JobStateRunning {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return fmt.Errorf("SeekJobs never all Running: %w", err)
	}
	for prev := int64(-1); prev != counter.total.Load(); {
		prev = counter.total.Load()
		time.Sleep(2 * time.Second)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(os.Stdout, "\nSeek controller benchmark: %d SeekJobs, client concurrency %d, manager QPS %.0f/burst %d, %d job reconcilers\n\n",
		cfg.jobs, cfg.concurrency, cfg.qps, cfg.burst, cfg.reconcilers)
	fmt.Fprintln(tw, "measure\tvalue\ttarget\t")
	fmt.Fprintf(tw, "B0: raw SeekJob creates/s\t%.0f\t\t\n", b0.rate)
	fmt.Fprintf(tw, "raw create latency p50 / p99 (ms)\t%.1f / %.1f\t\t\n", b0.p50, b0.p99)
	fmt.Fprintf(tw, "creates/s while the controller runs\t%.0f\t\t\n", created.rate)
	fmt.Fprintf(tw, "controller throughput (SeekJob → Job)/s\t%.0f\t\t\n", throughput)
	fmt.Fprintf(tw, "ratio throughput / B0\t%.2f\t≥ 0.5\t\n", throughput/b0.rate)
	fmt.Fprintf(tw, "controller API writes per SeekJob\t%.2f\t≤ 3\t\n", float64(counter.total.Load())/float64(cfg.jobs))
	keys := make([]string, 0, len(counter.counts))
	for k := range counter.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s per SeekJob\t%.2f\t\t\n", k, float64(counter.counts[k])/float64(cfg.jobs))
	}
	return tw.Flush()
}

type createStats struct {
	rate, p50, p99 float64
}

// createJobs creates cfg.jobs SeekJobs in ns from cfg.concurrency goroutines and reports the rate.
func createJobs(ctx context.Context, c client.Client, ns, worker string, cfg config) (createStats, error) {
	var next atomic.Int64
	latencies := make([]time.Duration, cfg.jobs)
	errs := make(chan error, cfg.concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.jobs {
					return
				}
				sj := testutil.MakeSeekJob(fmt.Sprintf("j-%05d", i), ns).Worker(worker).Input(`{"n": 1}`).Obj()
				t0 := time.Now()
				if err := c.Create(ctx, sj); err != nil {
					errs <- err
					return
				}
				latencies[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return createStats{}, err
	default:
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	ms := func(q float64) float64 {
		return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	return createStats{rate: float64(cfg.jobs) / elapsed.Seconds(), p50: ms(0.5), p99: ms(0.99)}, nil
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
