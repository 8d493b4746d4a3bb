package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/localcluster"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// The real-node phases: Seek installed by its chart on the local cluster, jobs submitted through its
// REST API, each run by real worker pods. The bench makes SeekWorkers of its own from the sample
// workers' specs (same image and command), one per execution mode, so both modes run in one run.
const (
	// phaseLatency: echo jobs one at a time with Prefer: wait, Job mode and Pooled alternating.
	phaseLatency = "latency"
	// phaseJobBurst: echo jobs submitted at once in Job mode, one request each, until all completed:
	// through a worker capped at maxConcurrent (slot grants), then through one without a cap.
	phaseJobBurst = "job-burst"
	// phaseB0: raw SeekJob creates on the local cluster (admin client), the ceiling of the batch call.
	phaseB0 = "b0"
	// phaseBatchEcho and phaseBatchEmail: one batch call of echo or email-validator jobs to a Pooled
	// worker, then until all completed.
	phaseBatchEcho  = "batch-echo"
	phaseBatchEmail = "batch-email"
)

// nodePhases are the real-node phases in the order they run.
var nodePhases = []string{phaseLatency, phaseJobBurst, phaseB0, phaseBatchEcho, phaseBatchEmail}

// nodeConfig configures the real-node phases.
type nodeConfig struct {
	phases phaseSet
	// latencyJobs are submitted one after the other in each mode, each when the one before has answered.
	latencyJobs int
	// burstJobs are submitted at once (at the client concurrency), one request each, in Job mode.
	burstJobs   int
	concurrency int
	// maxConcurrent is the workers' limits.maxConcurrentJobs; 0 is no cap.
	maxConcurrent int
	// batchJobs are the inputs of the one batch call of the batch phases.
	batchJobs int
	// poolMaxPods is the Pooled workers' pool.maxPods.
	poolMaxPods int
	// batchCallOnly measures only the batch call, not the jobs' completion (their tenant is deleted).
	batchCallOnly bool
	// controlPlaneB0 is the control-plane phase's B0 of the same run (creates/s), 0 when not run.
	controlPlaneB0 float64
	// retainedJobs are the finished jobs with a 1 MiB result of the retained-results phase.
	retainedJobs int
}

// phaseSet is a set of phase names; empty selects all.
type phaseSet map[string]bool

// parsePhases parses a comma-separated list of phases, each one of known; "" or "all" is every phase.
func parsePhases(list string, known []string) (phaseSet, error) {
	set := phaseSet{}
	if list == "" || list == "all" {
		for _, k := range known {
			set[k] = true
		}
		return set, nil
	}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if !contains(known, p) {
			return nil, fmt.Errorf("unknown phase %q (known: %s)", p, strings.Join(known, ", "))
		}
		set[p] = true
	}
	return set, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nodeRun is the state the real-node phases share.
type nodeRun struct {
	cfg     nodeConfig
	info    *localcluster.Info
	c       client.WithWatch
	cs      kubernetes.Interface
	suffix  string
	samples map[string]*seekv1alpha1.SeekWorker
	workers map[string]string // by sample and mode
	cleanup []func()
}

// runNode runs the selected real-node phases and prints their table. It uses a running local cluster
// (and leaves it), or brings one up and removes it at the end.
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
	restCfg.QPS, restCfg.Burst = 500, 1000
	c, err := client.NewWithWatch(restCfg, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	n := &nodeRun{cfg: cfg, info: info, c: c, cs: cs, suffix: strings.ToLower(rand.Text()[:6]), samples: map[string]*seekv1alpha1.SeekWorker{}, workers: map[string]string{}}
	defer func() {
		for i := len(n.cleanup) - 1; i >= 0; i-- {
			n.cleanup[i]()
		}
	}()
	for _, name := range []string{"echo", "email-validator"} {
		sw := &seekv1alpha1.SeekWorker{}
		if err := c.Get(ctx, types.NamespacedName{Name: name}, sw); err != nil {
			return fmt.Errorf("the sample worker %s: %w", name, err)
		}
		n.samples[name] = sw
	}
	rep := &nodeReport{cfg: cfg}
	if cfg.phases[phaseLatency] || cfg.phases[phaseJobBurst] {
		tenant, api, err := n.tenant(ctx, "bench")
		if err != nil {
			return err
		}
		jobW, err := n.worker(ctx, "echo", seekv1alpha1.ExecutionModeJob, cfg.maxConcurrent)
		if err != nil {
			return err
		}
		if cfg.phases[phaseLatency] {
			poolW, err := n.worker(ctx, "echo", seekv1alpha1.ExecutionModePooled, cfg.maxConcurrent)
			if err != nil {
				return err
			}
			if rep.latency, err = measureLatency(ctx, api, jobW, poolW, cfg.latencyJobs); err != nil {
				return fmt.Errorf("latency phase: %w", err)
			}
		}
		if cfg.phases[phaseJobBurst] {
			if rep.jobBurst, err = n.burst(ctx, tenant, api, jobW, cfg.maxConcurrent); err != nil {
				return fmt.Errorf("job-burst phase: %w", err)
			}
			if cfg.maxConcurrent > 0 {
				uncappedW, err := n.worker(ctx, "echo", seekv1alpha1.ExecutionModeJob, 0)
				if err != nil {
					return err
				}
				if rep.jobBurstUncapped, err = n.burst(ctx, tenant, api, uncappedW, 0); err != nil {
					return fmt.Errorf("job-burst phase, no cap: %w", err)
				}
			}
		}
	}
	if cfg.phases[phaseB0] {
		if rep.b0, err = n.rawCreates(ctx); err != nil {
			return fmt.Errorf("B0 phase: %w", err)
		}
	}
	for _, b := range []struct {
		phase, sample string
		input         func(i int) string
		out           **batchResult
	}{
		{phaseBatchEcho, "echo", func(i int) string { return fmt.Sprintf(`{"message":"m%d"}`, i) }, &rep.batchEcho},
		// check_mx false: syntax, disposable, role and typo checks only, no DNS.
		{phaseBatchEmail, "email-validator", func(i int) string { return fmt.Sprintf(`{"email":"user%d@example.com","check_mx":false}`, i) }, &rep.batchEmail},
	} {
		if !cfg.phases[b.phase] {
			continue
		}
		r, err := n.batch(ctx, b.phase, b.sample, b.input)
		if err != nil {
			return fmt.Errorf("%s phase: %w", b.phase, err)
		}
		*b.out = r
	}
	if slices.ContainsFunc(nodePhases, func(p string) bool { return cfg.phases[p] }) {
		if err := rep.print(os.Stdout); err != nil {
			return err
		}
	}
	if cfg.phases[phaseRetainedResults] {
		if err := n.retainedResults(ctx, cfg.retainedJobs, seekv1alpha1.MaxResultBytes, 8); err != nil {
			return fmt.Errorf("%s phase: %w", phaseRetainedResults, err)
		}
	}
	return nil
}

// tenant makes a tenant namespace with an API key, deleted at the end of the run.
func (n *nodeRun) tenant(ctx context.Context, prefix string) (string, *nodeAPI, error) {
	t, err := localcluster.NewTenant(ctx, n.c, n.info, prefix, 10000)
	if err != nil {
		return "", nil, err
	}
	n.cleanup = append(n.cleanup, func() { _ = t.Delete(context.Background(), n.c) })
	return t.Namespace, &nodeAPI{url: n.info.APIURL, key: t.APIKey}, nil
}

// worker makes a SeekWorker of the run from a sample worker's spec (image, command, schema, ...) in
// the given mode with limits.maxConcurrentJobs maxConcurrent (0: no cap), once, waits until it is
// ready, and deletes it at the end of the run.
func (n *nodeRun) worker(ctx context.Context, sample string, mode seekv1alpha1.ExecutionMode, maxConcurrent int) (string, error) {
	key := fmt.Sprintf("%s/%s/%d", sample, mode, maxConcurrent)
	if name, ok := n.workers[key]; ok {
		return name, nil
	}
	name := fmt.Sprintf("bench-%s-%s-cap%d-%s", sample, strings.ToLower(string(mode)), maxConcurrent, n.suffix)
	sw := benchWorker(n.samples[sample], name, mode, maxConcurrent, n.cfg.poolMaxPods)
	if err := n.c.Create(ctx, sw); err != nil {
		return "", err
	}
	n.cleanup = append(n.cleanup, func() { _ = n.c.Delete(context.Background(), sw) })
	err := waitFor(ctx, time.Minute, func() (bool, error) {
		err := n.c.Get(ctx, client.ObjectKeyFromObject(sw), sw)
		return err == nil && meta.IsStatusConditionTrue(sw.Status.Conditions, seekv1alpha1.WorkerReady), err
	})
	if err != nil {
		return "", fmt.Errorf("worker %s never ready: %w", sw.Name, err)
	}
	n.workers[key] = sw.Name
	return sw.Name, nil
}

// benchWorker is a copy of a sample worker's spec under another name, in the given mode. A Pooled
// worker needs a command: the sample's, else the images' entrypoint (/<name>, internal/images).
func benchWorker(sample *seekv1alpha1.SeekWorker, name string, mode seekv1alpha1.ExecutionMode, maxConcurrent, maxPods int) *seekv1alpha1.SeekWorker {
	sw := &seekv1alpha1.SeekWorker{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: *sample.Spec.DeepCopy()}
	sw.Spec.Description = "Seek benchmark: " + sample.Name + " in mode " + string(mode)
	sw.Spec.Limits.MaxConcurrentJobs = nil
	if maxConcurrent > 0 {
		sw.Spec.Limits.MaxConcurrentJobs = testutil.MakeSeekWorker("x").MaxConcurrent(int32(maxConcurrent)).Obj().Spec.Limits.MaxConcurrentJobs
	}
	sw.Spec.Execution = seekv1alpha1.WorkerExecution{Mode: mode}
	if mode == seekv1alpha1.ExecutionModePooled {
		if len(sw.Spec.Command) == 0 {
			sw.Spec.Command = []string{"/" + sample.Name}
		}
		pods := int32(maxPods)
		sw.Spec.Execution.Pool = &seekv1alpha1.WorkerPool{MaxPods: pods}
	}
	return sw
}

// latencyResult is submit → answer with Prefer: wait, one job at a time, by mode.
type latencyResult struct {
	job, pooled []time.Duration
}

// measureLatency submits echo jobs one at a time with Prefer: wait, alternating Job mode and Pooled
// (so that drift in the machine's speed hits both alike), after one unmeasured job each (the first
// pool pod starts then).
func measureLatency(ctx context.Context, api *nodeAPI, jobW, poolW string, jobs int) (*latencyResult, error) {
	fmt.Fprintf(os.Stderr, "bench: latency, %d echo jobs one at a time in each mode, Prefer: wait\n", jobs)
	r := &latencyResult{}
	for i := -1; i < jobs; i++ {
		for _, m := range []struct {
			worker string
			out    *[]time.Duration
		}{{jobW, &r.job}, {poolW, &r.pooled}} {
			t0 := time.Now()
			status, err := api.submitWait(ctx, m.worker, fmt.Appendf(nil, `{"message":"m%d"}`, i))
			if err != nil {
				return nil, err
			}
			if status != "completed" {
				return nil, fmt.Errorf("a %s job answered %q, want completed", m.worker, status)
			}
			if i >= 0 {
				*m.out = append(*m.out, time.Since(t0))
			}
		}
	}
	return r, nil
}

// batchResult is one batch phase.
type batchResult struct {
	jobs    int
	call    time.Duration // the batch call
	elapsed time.Duration // from the call to the last job completed; 0 when not waited for
	use     resourceUse
	refused []string // the batch's refused items: "index: code message"
}

// meter counts the writes of the whole cluster and the CPU of the manager, the frontends, the pods of
// ns, the node's daemons and the whole node during a phase.
func (n *nodeRun) meter(ns string) *resourceMeter {
	return &resourceMeter{metrics: &metricsReader{cs: n.cs, namespace: localcluster.SystemNamespace}, cs: n.cs, proc: "/proc", groups: []podGroup{
		{name: "manager", namespace: localcluster.SystemNamespace, selector: "app.kubernetes.io/component=manager"},
		{name: "frontend", namespace: localcluster.SystemNamespace, selector: "app.kubernetes.io/component=frontend"},
		{name: "worker pods", namespace: ns},
	}}
}

// burst submits cfg.burstJobs echo jobs at once, one request each, to worker (capped at
// maxConcurrent, 0: no cap), and waits until all completed.
func (n *nodeRun) burst(ctx context.Context, ns string, api *nodeAPI, worker string, maxConcurrent int) (*batchResult, error) {
	fmt.Fprintf(os.Stderr, "bench: job-burst, %d echo jobs at once in Job mode, maxConcurrentJobs %d (0: no cap)\n", n.cfg.burstJobs, maxConcurrent)
	done, err := watchFinished(ctx, n.c, ns)
	if err != nil {
		return nil, err
	}
	m := n.meter(ns)
	if err := m.start(ctx, 500*time.Millisecond); err != nil {
		return nil, err
	}
	names := make([]string, n.cfg.burstJobs)
	start := time.Now()
	if _, err := parallel(config{concurrency: n.cfg.concurrency}, n.cfg.burstJobs, func(i int) error {
		var err error
		names[i], err = api.submit(ctx, worker, fmt.Appendf(nil, `{"message":"b%d"}`, i))
		return err
	}); err != nil {
		return nil, err
	}
	call := time.Since(start)
	last, err := done.waitAll(ctx, names)
	if err != nil {
		return nil, err
	}
	if err := n.waitDeleted(ctx, ns, names); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // the writes that follow the last deletion (the Jobs' and pods' ends)
	use, err := m.end(ctx)
	if err != nil {
		return nil, err
	}
	return &batchResult{jobs: len(names), call: call, elapsed: last.Sub(start), use: use}, nil
}

// rawCreates creates cfg.batchJobs SeekJobs in a tenant namespace with the admin client (no
// frontend) at the client concurrency: the apiserver's rate for the batch's writes, quota admission
// included. Their worker does not exist: the manager answers each with one status write.
func (n *nodeRun) rawCreates(ctx context.Context) (float64, error) {
	fmt.Fprintf(os.Stderr, "bench: B0, %d raw SeekJob creates\n", n.cfg.batchJobs)
	ns, _, err := n.tenant(ctx, "bench-b0")
	if err != nil {
		return 0, err
	}
	s, err := parallel(config{concurrency: n.cfg.concurrency}, n.cfg.batchJobs, func(i int) error {
		// A worker that does not exist, so nothing runs: the admission webhook lets the job in with the opt-in.
		sj := testutil.MakeSeekJob(fmt.Sprintf("raw-%05d", i), ns).Worker("absent-"+n.suffix).Input(`{"message":"m"}`).
			Annotation(seekv1alpha1.AnnotationAllowMissingWorker, "true").Obj()
		// As the frontend does: a create whose quota update lost a race stored nothing.
		return retry.OnError(retry.DefaultRetry, apierrors.IsConflict, func() error { return n.c.Create(ctx, sj) })
	})
	if err != nil {
		return 0, err
	}
	return s.stats().rate, nil
}

// batch submits cfg.batchJobs jobs of a Pooled copy of the sample worker in one batch call, in a
// tenant of its own (its pool starts from zero), and waits until all completed.
func (n *nodeRun) batch(ctx context.Context, phase, sample string, input func(i int) string) (*batchResult, error) {
	fmt.Fprintf(os.Stderr, "bench: %s, %d %s jobs in one batch call, Pooled\n", phase, n.cfg.batchJobs, sample)
	ns, api, err := n.tenant(ctx, "bench-"+sample)
	if err != nil {
		return nil, err
	}
	worker, err := n.worker(ctx, sample, seekv1alpha1.ExecutionModePooled, n.cfg.maxConcurrent)
	if err != nil {
		return nil, err
	}
	done, err := watchFinished(ctx, n.c, ns)
	if err != nil {
		return nil, err
	}
	inputs := make([]string, n.cfg.batchJobs)
	for i := range inputs {
		inputs[i] = input(i)
	}
	m := n.meter(ns)
	if err := m.start(ctx, 500*time.Millisecond); err != nil {
		return nil, err
	}
	start := time.Now()
	all, refused, err := api.batch(ctx, worker, inputs)
	call := time.Since(start)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, name := range all {
		if name != "" {
			names = append(names, name)
		}
	}
	r := &batchResult{jobs: len(names), call: call, refused: refused}
	if len(refused) > 0 {
		fmt.Fprintf(os.Stderr, "bench: %s: %d of %d items refused, first %s\n", phase, len(refused), len(all), refused[0])
	}
	if !n.cfg.batchCallOnly && len(names) > 0 {
		last, err := done.waitAll(ctx, names)
		if err != nil {
			return nil, err
		}
		r.elapsed = last.Sub(start)
		if err := n.waitDeleted(ctx, ns, names); err != nil {
			return nil, err
		}
		time.Sleep(2 * time.Second) // the writes that follow the last deletion
	}
	if r.use, err = m.end(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// benchRetention is the retention (REST ?retention=) of the jobs the throughput phases submit: short,
// so that each phase counts every write of a job's life, its deletion by the TTL controller (and in
// Job mode the garbage collector's of its Job and pod) included.
const benchRetention = 5 * time.Second

// waitDeleted waits until none of the SeekJobs named is left in ns: their retention has passed.
func (n *nodeRun) waitDeleted(ctx context.Context, ns string, names []string) error {
	want := make(map[string]bool, len(names))
	for _, name := range names {
		want[name] = true
	}
	return waitFor(ctx, 5*time.Minute, func() (bool, error) {
		list := &seekv1alpha1.SeekJobList{}
		if err := n.c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for i := range list.Items {
			if want[list.Items[i].Name] {
				return false, nil
			}
		}
		return true, nil
	})
}

// nodeAPI calls the REST API with a tenant's key.
type nodeAPI struct{ url, key string }

func (a *nodeAPI) post(ctx context.Context, path string, body []byte, header ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Api-Key", a.key)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// jobOf reads a job response: its SeekJob name and status.
func jobOf(body []byte) (name, status string, err error) {
	var job struct {
		JobUUID string `json:"job_uuid"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(body, &job); err != nil {
		return "", "", err
	}
	return strings.TrimPrefix(job.JobUUID, "job_"), job.Status, nil
}

// submit submits one job and returns its SeekJob's name.
func (a *nodeAPI) submit(ctx context.Context, worker string, input []byte) (string, error) {
	code, body, err := a.post(ctx, "/v1/workers/"+worker+"/jobs?retention="+benchRetention.String(), input)
	if err != nil {
		return "", err
	}
	if code != http.StatusAccepted {
		return "", fmt.Errorf("submit: %d %s", code, abbreviate(body))
	}
	name, _, err := jobOf(body)
	return name, err
}

// submitWait submits one job with Prefer: wait and returns the status it was answered with.
func (a *nodeAPI) submitWait(ctx context.Context, worker string, input []byte) (string, error) {
	code, body, err := a.post(ctx, "/v1/workers/"+worker+"/jobs", input, "Prefer", "wait=30")
	if err != nil {
		return "", err
	}
	if code != http.StatusOK && code != http.StatusAccepted {
		return "", fmt.Errorf("submit: %d %s", code, abbreviate(body))
	}
	_, status, err := jobOf(body)
	return status, err
}

// batch submits the inputs in one batch call and returns the SeekJobs' names, in order ("" for a
// refused item), and the refused items' errors.
func (a *nodeAPI) batch(ctx context.Context, worker string, inputs []string) ([]string, []string, error) {
	body := []byte(`{"inputs":[` + strings.Join(inputs, ",") + `]}`)
	code, out, err := a.post(ctx, "/v1/workers/"+worker+"/jobs:batch?retention="+benchRetention.String(), body)
	if err != nil {
		return nil, nil, err
	}
	if code != http.StatusAccepted {
		return nil, nil, fmt.Errorf("batch: %d %s", code, abbreviate(out))
	}
	return batchNames(out, len(inputs))
}

// batchNames reads a batch response: the SeekJob name of every item ("" for a refused one) and the
// refused items' errors.
func batchNames(body []byte, want int) ([]string, []string, error) {
	var resp struct {
		Items []struct {
			JobUUID string `json:"job_uuid"`
			Error   *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, nil, fmt.Errorf("batch response: %w", err)
	}
	if len(resp.Items) != want {
		return nil, nil, fmt.Errorf("batch response: %d items for %d inputs", len(resp.Items), want)
	}
	names := make([]string, len(resp.Items))
	var refused []string
	for i, it := range resp.Items {
		if it.Error != nil || it.JobUUID == "" {
			if it.Error == nil {
				refused = append(refused, fmt.Sprintf("%d: no job_uuid", i))
			} else {
				refused = append(refused, fmt.Sprintf("%d: %s %s", i, it.Error.Code, it.Error.Message))
			}
			continue
		}
		names[i] = strings.TrimPrefix(it.JobUUID, "job_")
	}
	return names, refused, nil
}

func abbreviate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// waitAll waits until every named job completed and returns when the last did.
func (f *finished) waitAll(ctx context.Context, names []string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	var last time.Time
	var errs []error
	for _, name := range names {
		end, err := f.wait(ctx, name)
		if err != nil {
			errs = append(errs, err)
			if len(errs) > 5 {
				break
			}
		}
		if end.After(last) {
			last = end
		}
	}
	return last, errors.Join(errs...)
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
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if ctx.Err() != nil {
			return time.Time{}, fmt.Errorf("job %s not finished: %w", name, ctx.Err())
		}
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
