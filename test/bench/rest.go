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
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/frontend"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// restStats are the REST frontend's numbers, measured with no controller running (like B0).
type restStats struct {
	submit         createStats // closed loop at the client concurrency
	halfLoad       createStats // open loop at half of B0
	halfLoadTarget float64
	get            createStats // GETs of existing jobs at the client concurrency
}

// runREST starts the frontend as its own ServiceAccount (so RBAC and API Priority and Fairness apply)
// and measures submissions and reads through HTTP.
func runREST(ctx context.Context, cp *controlplane.ControlPlane, c client.Client, cfg config, b0 float64) (restStats, error) {
	var st restStats
	root, err := controlplane.RepoRoot()
	if err != nil {
		return st, err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "seek-system"}}); err != nil {
		return st, err
	}
	for _, f := range []string{"rbac/frontend_rbac.yaml", "frontend/flowcontrol.yaml"} {
		if err := controlplane.ApplyManifestFile(ctx, c, filepath.Join(root, "config", f)); err != nil {
			return st, err
		}
	}
	if err := c.Create(ctx, testutil.MakeSeekWorker("rest").Obj()); err != nil {
		return st, err
	}
	secret, key, err := frontend.NewKey("seek-system", "b4", []frontend.Scope{frontend.ScopeSubmit, frontend.ScopeRead}, 1e6)
	if err != nil {
		return st, err
	}
	if err := c.Create(ctx, secret); err != nil {
		return st, err
	}
	userCfg, err := cp.ServiceAccountConfig("seek-system", "seek-frontend")
	if err != nil {
		return st, err
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- frontend.Run(fctx, userCfg, frontend.Options{Listen: "127.0.0.1:0", MetricsAddr: "0", HealthProbeAddr: "0",
			SystemNamespace: "seek-system", MaxBodyBytes: frontend.DefaultMaxBodyBytes, QPS: 5000, Burst: 10000, ShutdownTimeout: 5 * time.Second, Ready: ready})
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		return st, fmt.Errorf("frontend: %w", err)
	}
	defer func() { stop(); <-done }()
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.concurrency * 2}}
	call := func(method, path string, body []byte, want int) (string, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("X-Api-Key", key)
		resp, err := httpc.Do(req)
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
	// Wait until the key and worker are in the frontend's cache.
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		_, err := call("GET", "/v1/workers/rest", nil, http.StatusOK)
		return err == nil, err
	}); err != nil {
		return st, err
	}
	if cfg.restProfile != "" {
		f, err := os.Create(cfg.restProfile)
		if err != nil {
			return st, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return st, err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	submit := []byte(`{"n": 1}`)
	ids := make([]string, cfg.jobs)
	var mu sync.Mutex
	if st.submit, err = parallel(cfg, cfg.jobs, func(i int) error {
		id, err := call("POST", "/v1/workers/rest/jobs", submit, http.StatusAccepted)
		mu.Lock()
		ids[i] = id
		mu.Unlock()
		return err
	}); err != nil {
		return st, err
	}
	st.halfLoadTarget = b0 / 2
	if st.halfLoad, err = openLoop(cfg.jobs, st.halfLoadTarget, func() error {
		_, err := call("POST", "/v1/workers/rest/jobs", submit, http.StatusAccepted)
		return err
	}); err != nil {
		return st, err
	}
	if st.get, err = parallel(cfg, cfg.jobs, func(i int) error {
		_, err := call("GET", "/v1/jobs/"+ids[i], nil, http.StatusOK)
		return err
	}); err != nil {
		return st, err
	}
	// The controller phases that follow must not see these jobs.
	return st, c.DeleteAllOf(ctx, &seekv1alpha1.SeekJob{}, client.InNamespace("b4"))
}

// openLoop starts n operations at a fixed rate, whatever the latency (so queueing shows in it), and
// reports the achieved rate and latencies.
func openLoop(n int, rate float64, op func() error) (createStats, error) {
	latencies := make([]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		wg.Go(func() {
			t0 := time.Now()
			if err := op(); err != nil {
				errs <- err
				return
			}
			latencies[i] = time.Since(t0)
		})
	}
	wg.Wait()
	return summarize(latencies, time.Since(start), errs)
}
