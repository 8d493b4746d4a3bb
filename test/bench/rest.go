package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/frontend"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// rounds is how many alternating raw and REST chunks the submission phases are split into: the
// machine's speed drifts (other tenants of the host, GC, compaction), and alternating makes the drift
// hit both sides of a ratio alike.
const rounds = 4

// submitStats are B0 and the REST frontend's numbers, measured with no controller running.
type submitStats struct {
	b0, rest         sample   // closed loop at the client concurrency
	b0Half, restHalf sample   // open loop at half of the REST rate
	get              sample   // GETs of existing jobs at the client concurrency
	cpuB0, cpuREST   cpuTimes // CPU seconds by process during the closed-loop phases
}

// runSubmissions measures raw SeekJob creates (B0) and REST submissions, interleaved in rounds. The
// frontend runs only during its own rounds, so B0 pays nothing for it.
func runSubmissions(ctx context.Context, cp *controlplane.ControlPlane, c client.Client, cfg config) (submitStats, error) {
	var st submitStats
	h, err := newRESTHarness(ctx, cp, c, cfg)
	if err != nil {
		return st, err
	}
	raw := func(prefix string) func(i int) error {
		return func(i int) error {
			return c.Create(ctx, testutil.MakeSeekJob(fmt.Sprintf("%s-%05d", prefix, i), "b0").Worker("absent").Input(`{"n": 1}`).Obj())
		}
	}
	var ids []string
	var mu sync.Mutex
	submit := func(int) error {
		id, err := h.call(ctx, "POST", "/v1/workers/rest/jobs", []byte(`{"n": 1}`), http.StatusAccepted)
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		return err
	}
	chunk := cfg.jobs / rounds
	st.cpuB0, st.cpuREST = cpuTimes{}, cpuTimes{}
	for r := range rounds {
		before := cpuSeconds()
		s, err := parallel(cfg, chunk, raw(fmt.Sprintf("c%d", r)))
		if err != nil {
			return st, err
		}
		st.cpuB0.add(cpuSeconds().minus(before))
		st.b0.merge(s)
		err = h.during(ctx, func() error {
			before := cpuSeconds()
			s, err := parallel(cfg, chunk, submit)
			st.cpuREST.add(cpuSeconds().minus(before))
			st.rest.merge(s)
			return err
		})
		if err != nil {
			return st, err
		}
	}
	// Half load: half of what the frontend sustains, offered to both at a fixed rate.
	half := st.rest.stats().rate / 2
	for r := range rounds {
		s, err := openLoop(chunk, half, raw(fmt.Sprintf("o%d", r)))
		if err != nil {
			return st, err
		}
		st.b0Half.merge(s)
		err = h.during(ctx, func() error {
			s, err := openLoop(chunk, half, submit)
			st.restHalf.merge(s)
			return err
		})
		if err != nil {
			return st, err
		}
	}
	err = h.during(ctx, func() error {
		st.get, err = parallel(cfg, len(ids), func(i int) error {
			_, err := h.call(ctx, "GET", "/v1/jobs/"+ids[i], nil, http.StatusOK)
			return err
		})
		return err
	})
	if err != nil {
		return st, err
	}
	// The controller phases that follow must not see these jobs.
	for _, ns := range []string{"b0", "b4"} {
		if err := c.DeleteAllOf(ctx, &seekv1alpha1.SeekJob{}, client.InNamespace(ns)); err != nil {
			return st, err
		}
	}
	return st, nil
}

// restHarness runs the frontend as its own ServiceAccount (so RBAC and API Priority and Fairness apply)
// with an API key for tenant b4 and a worker.
type restHarness struct {
	cfg     config
	userCfg *rest.Config
	key     string
	httpc   *http.Client
	base    string
	runs    int // frontend runs so far, to name profiles
}

func newRESTHarness(ctx context.Context, cp *controlplane.ControlPlane, c client.Client, cfg config) (*restHarness, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return nil, err
	}
	for _, ns := range []string{"seek-system", credentials.DefaultNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, err
		}
	}
	for _, f := range []string{"rbac/frontend_rbac.yaml", "frontend/flowcontrol.yaml"} {
		if err := controlplane.ApplyManifestFile(ctx, c, filepath.Join(root, "config", f)); err != nil {
			return nil, err
		}
	}
	if err := c.Create(ctx, testutil.MakeSeekWorker("rest").Obj()); err != nil {
		return nil, err
	}
	secret, key, err := apikeys.New(credentials.DefaultNamespace, "b4", []apikeys.Scope{apikeys.ScopeSubmit, apikeys.ScopeRead}, apikeys.MaxRequestsPerSecond)
	if err != nil {
		return nil, err
	}
	if err := c.Create(ctx, secret); err != nil {
		return nil, err
	}
	userCfg, err := cp.ServiceAccountConfig("seek-system", "seek-frontend")
	if err != nil {
		return nil, err
	}
	h := &restHarness{cfg: cfg, userCfg: userCfg, key: key,
		httpc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.concurrency * 2}}}
	return h, nil
}

// during starts the frontend (start), runs measure (CPU-profiled to <rest-cpuprofile>.<run> when
// asked) after a warm-up, and stops the frontend.
func (h *restHarness) during(ctx context.Context, measure func() error) error {
	stop, err := h.start(ctx)
	if err != nil {
		return err
	}
	defer stop()
	// Warm up: connections from the load generator to the frontend and from the frontend to the
	// apiserver are opened outside the measurement.
	if _, err := parallel(h.cfg, 2*h.cfg.concurrency, func(int) error {
		_, err := h.call(ctx, "POST", "/v1/workers/rest/jobs", []byte(`{"warmup": true}`), http.StatusAccepted)
		return err
	}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	h.runs++
	if h.cfg.restProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", h.cfg.restProfile, h.runs))
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	return measure()
}

// start starts the frontend, at the settings the chart ships (its client's QPS and burst), waits
// until its caches are synced and it answers, and returns the function that stops it.
func (h *restHarness) start(ctx context.Context) (stop func(), err error) {
	fctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- frontend.Run(fctx, h.userCfg, frontend.Options{Listen: "127.0.0.1:0", MetricsAddr: "0", HealthProbeAddr: "0",
			CredentialsNamespace: credentials.DefaultNamespace, MaxBodyBytes: frontend.DefaultMaxBodyBytes, QPS: frontend.DefaultKubeAPIQPS, Burst: frontend.DefaultKubeAPIBurst, ShutdownTimeout: 5 * time.Second, Ready: ready})
	}()
	stop = func() { cancel(); <-done } //nolint:errcheck // the frontend was stopped on purpose
	select {
	case addr := <-ready:
		h.base = "http://" + addr
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("frontend: %w", err)
	}
	if err := waitFor(ctx, 5*time.Minute, func() (bool, error) {
		if _, err := h.call(ctx, "GET", "/readyz", nil, http.StatusOK); err != nil {
			return false, err
		}
		_, err := h.call(ctx, "GET", "/v1/workers/rest", nil, http.StatusOK)
		return err == nil, err
	}); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// call makes one API request and returns the job_uuid of the response.
func (h *restHarness) call(ctx context.Context, method, path string, body []byte, want int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Api-Key", h.key)
	resp, err := h.httpc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		JobUUID string `json:"job_uuid"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != want {
		return "", fmt.Errorf("%s %s: %d", method, path, resp.StatusCode)
	}
	return out.JobUUID, nil
}

// openLoop starts n operations at a fixed rate, whatever the latency (so queueing shows in it).
func openLoop(n int, rate float64, op func(i int) error) (sample, error) {
	latencies := make([]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		wg.Go(func() {
			t0 := time.Now()
			if err := op(i); err != nil {
				errs <- err
				return
			}
			latencies[i] = time.Since(t0)
		})
	}
	wg.Wait()
	return newSample(latencies, time.Since(start), errs)
}
