package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/localcluster"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// nodeConfig is the real-node phase: Seek installed by its chart on the local cluster, jobs of the
// echo worker (a no-op: it returns its input) submitted through the REST API, each a real pod.
type nodeConfig struct {
	// latencyJobs are submitted one after the other, each when the one before has finished.
	latencyJobs int
	// burstJobs are submitted at once (at the client concurrency) for throughput.
	burstJobs   int
	concurrency int
	// maxConcurrent is the worker's limits.maxConcurrentJobs; 0 is no cap.
	maxConcurrent int
}

// runNode measures submit → completed latency and throughput with real worker pods. It uses a running
// local cluster (and leaves it), or brings one up and removes it at the end.
func runNode(ctx context.Context, cfg nodeConfig) error {
	if err := localcluster.Preflight(); err != nil {
		return err
	}
	root, err := controlplane.RepoRoot()
	if err != nil {
		return err
	}
	opts := localcluster.Options{Assets: os.Getenv("KUBEBUILDER_ASSETS"), Helm: os.Getenv("HELM"), ModuleDir: root, Out: os.Stderr}
	info, teardown, err := localcluster.UpForRun(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if err := teardown(); err != nil {
			fmt.Fprintln(os.Stderr, "bench: down:", err)
		}
	}()
	restCfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return err
	}
	c, err := client.NewWithWatch(restCfg, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		return err
	}
	tenant, err := localcluster.NewTenant(ctx, c, info, "bench", 10000)
	if err != nil {
		return err
	}
	defer func() { _ = tenant.Delete(ctx, c) }()
	ns, key := tenant.Namespace, tenant.APIKey
	// The echo image, as a worker of this run's own, with the cap under test.
	worker := testutil.MakeSeekWorker(ns).Image(fmt.Sprintf("%s/worker-echo:%s", info.ImageRegistry, info.ImageTag)).PullPolicy(corev1.PullNever)
	if cfg.maxConcurrent > 0 {
		worker = worker.MaxConcurrent(int32(cfg.maxConcurrent))
	}
	w := worker.Obj()
	if err := c.Create(ctx, w); err != nil {
		return err
	}
	defer func() { _ = c.Delete(ctx, w) }()
	done, err := watchFinished(ctx, c, ns)
	if err != nil {
		return err
	}
	api := &nodeAPI{url: info.APIURL, key: key, worker: ns}

	// Latency: one job at a time, so each measures the path alone.
	fmt.Fprintf(os.Stderr, "bench: node latency, %d jobs one at a time\n", cfg.latencyJobs)
	var latencies []time.Duration
	for i := range cfg.latencyJobs {
		t0 := time.Now()
		name, err := api.submit(ctx, i)
		if err != nil {
			return err
		}
		end, err := done.wait(ctx, name)
		if err != nil {
			return err
		}
		latencies = append(latencies, end.Sub(t0))
	}
	seq := sample{latencies: latencies}

	// Throughput: a burst submitted at once.
	fmt.Fprintf(os.Stderr, "bench: node throughput, %d jobs at once\n", cfg.burstJobs)
	names := make([]string, cfg.burstJobs)
	submitted := make([]time.Time, cfg.burstJobs)
	start := time.Now()
	if _, err := parallel(config{concurrency: cfg.concurrency}, cfg.burstJobs, func(i int) error {
		submitted[i] = time.Now()
		names[i], err = api.submit(ctx, cfg.latencyJobs+i)
		return err
	}); err != nil {
		return err
	}
	var last time.Time
	burst := sample{latencies: make([]time.Duration, cfg.burstJobs)}
	for i, name := range names {
		end, err := done.wait(ctx, name)
		if err != nil {
			return err
		}
		burst.latencies[i] = end.Sub(submitted[i])
		if end.After(last) {
			last = end
		}
	}
	elapsed := last.Sub(start)
	s, b := seq.stats(), burst.stats()

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	limit := "no cap"
	if cfg.maxConcurrent > 0 {
		limit = fmt.Sprintf("maxConcurrentJobs %d", cfg.maxConcurrent)
	}
	fmt.Fprintf(os.Stdout, "\nReal node: Seek installed by its chart on the local cluster, echo worker (no-op) pods (%s), REST API, %d CPUs\n\n", limit, runtime.NumCPU())
	fmt.Fprintln(tw, "measure\tvalue\t")
	fmt.Fprintf(tw, "submit → completed p50 / p99 (ms), %d jobs one at a time\t%.0f / %.0f\t\n", cfg.latencyJobs, s.p50, s.p99)
	fmt.Fprintf(tw, "throughput: %d jobs submitted at once, completed/s\t%.2f\t\n", cfg.burstJobs, float64(cfg.burstJobs)/elapsed.Seconds())
	fmt.Fprintf(tw, "  all %d completed after (s)\t%.0f\t\n", cfg.burstJobs, elapsed.Seconds())
	fmt.Fprintf(tw, "  submit → completed p50 / p99 in the burst (s)\t%.1f / %.1f\t\n", b.p50/1000, b.p99/1000)
	return tw.Flush()
}

// nodeAPI submits echo jobs through the REST API.
type nodeAPI struct{ url, key, worker string }

func (a *nodeAPI) submit(ctx context.Context, i int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+"/v1/workers/"+a.worker+"/jobs", bytes.NewReader(fmt.Appendf(nil, `{"message": "m%d"}`, i)))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Api-Key", a.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		JobUUID string `json:"job_uuid"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("submit %d: %d %v", i, resp.StatusCode, err)
	}
	return strings.TrimPrefix(body.JobUUID, "job_"), nil
}

// finished records when a watch first saw each SeekJob of a namespace in a terminal state.
type finished struct {
	mu     sync.Mutex
	cond   *sync.Cond
	at     map[string]time.Time
	failed map[string]string
	err    error
}

// watchFinished lists and watches the SeekJobs of ns until ctx ends, listing again whenever the
// apiserver ends the watch (it does, under load).
func watchFinished(ctx context.Context, c client.WithWatch, ns string) (*finished, error) {
	f := &finished{at: map[string]time.Time{}, failed: map[string]string{}}
	f.cond = sync.NewCond(&f.mu)
	w, err := f.listAndWatch(ctx, c, ns)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			for ev := range w.ResultChan() {
				if sj, ok := ev.Object.(*seekv1alpha1.SeekJob); ok && ev.Type != watch.Deleted && ev.Type != watch.Error {
					f.see(sj)
				}
			}
			w.Stop()
			if w, err = f.listAndWatch(ctx, c, ns); err != nil {
				f.mu.Lock()
				f.err = err
				f.cond.Broadcast()
				f.mu.Unlock()
				return
			}
		}
	}()
	return f, nil
}

func (f *finished) listAndWatch(ctx context.Context, c client.WithWatch, ns string) (watch.Interface, error) {
	list := &seekv1alpha1.SeekJobList{}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list SeekJobs: %w", err)
	}
	for i := range list.Items {
		f.see(&list.Items[i])
	}
	return c.Watch(ctx, &seekv1alpha1.SeekJobList{}, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
}

// see records sj's finishing time if it just finished.
func (f *finished) see(sj *seekv1alpha1.SeekJob) {
	if !sj.Status.State.IsTerminal() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, seen := f.at[sj.Name]; seen {
		return
	}
	f.at[sj.Name] = time.Now()
	if sj.Status.State != seekv1alpha1.JobStateCompleted {
		f.failed[sj.Name] = string(sj.Status.State)
	}
	f.cond.Broadcast()
}

// wait returns when the job finished; a job that did not complete is an error.
func (f *finished) wait(ctx context.Context, name string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if at, ok := f.at[name]; ok {
			if state, bad := f.failed[name]; bad {
				return at, fmt.Errorf("job %s ended %s", name, state)
			}
			return at, nil
		}
		if f.err != nil {
			return time.Time{}, fmt.Errorf("job %s: %w", name, f.err)
		}
		f.cond.Wait()
	}
}
