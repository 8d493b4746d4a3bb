package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/controllers"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// fairnessConfig configures the callback fairness phase.
type fairnessConfig struct {
	// jobs callbacks of the well-behaved tenant are measured per run, created at rate per second.
	jobs int
	rate float64
	// hanging is how many jobs the other tenant points at a receiver that never answers.
	hanging int
}

// fairnessResult is the well-behaved tenant's terminal state → delivered latency alone, while the
// other tenant's receiver hangs, and the same with tenant isolation off (one tenant may hold every
// delivery worker, as before it existed).
type fairnessResult struct {
	cfg                          fairnessConfig
	tenantCap                    int
	baseline, hang, unisolated   createStats
	peakIsolated, peakUnisolated int32
}

// runFairness measures delivery latency for one tenant while another tenant's receiver hangs. It
// starts its own managers (mgrCfg, bc): none may be running. The hanging tenant's attempts each hold
// a worker for the attempt timeout (15 s).
func runFairness(ctx context.Context, c client.Client, mgrCfg, admin *rest.Config, bc config, fc fairnessConfig) (fairnessResult, error) {
	res := fairnessResult{cfg: fc, tenantCap: controllers.DefaultCallbackTenantConcurrency(controllers.DefaultCallbackConcurrency)}
	for _, ns := range []string{"fair-warmup", "fair-base", "fair-hang", "fair-slow", "fair-fast", "fair-unisolated"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return res, err
		}
	}
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)

	mgr := startManager(mgrCfg, bc)
	defer func() { mgr.stop() }()
	// Warm up, so that the baseline does not count the manager's start.
	if _, err := runCallbacks(ctx, c, admin, "fair-warmup", 20, fc.rate); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	baseline, err := runCallbacks(ctx, c, admin, "fair-base", fc.jobs, fc.rate)
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	res.baseline = baseline.stats()

	// The misbehaving tenant: its jobs finish at once, and every attempt hangs until it times out.
	for i := range fc.hanging {
		if err := c.Create(ctx, testutil.MakeSeekJob(fmt.Sprintf("hang-%03d", i), "fair-slow").Worker("absent").Callback(hang.URL+"/hook").Cancel("bench").Obj()); err != nil {
			return res, err
		}
	}
	if err := waitFor(ctx, time.Minute, func() (bool, error) { return int(inFlight.Load()) >= min(fc.hanging, res.tenantCap), nil }); err != nil {
		return res, fmt.Errorf("the hanging receiver got no attempts: %w", err)
	}
	// Measure while A hangs, not while its jobs are being created and finished: wait until every one
	// of them has its ledger (attempting or waiting for a slot).
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		list := &seekv1alpha1.SeekJobList{}
		if err := c.List(ctx, list, client.InNamespace("fair-slow")); err != nil {
			return false, err
		}
		for i := range list.Items {
			if list.Items[i].Status.Callback == nil {
				return false, nil
			}
		}
		return len(list.Items) == fc.hanging, nil
	}); err != nil {
		return res, fmt.Errorf("tenant A's ledgers: %w", err)
	}
	hung, err := runCallbacks(ctx, c, admin, "fair-hang", fc.jobs, fc.rate)
	if err != nil {
		return res, fmt.Errorf("under a hanging receiver: %w", err)
	}
	res.hang, res.peakIsolated = hung.stats(), peak.Load()

	// For comparison, isolation off: any tenant may hold every worker. The hanging tenant's due
	// attempts take them all as the manager starts.
	mgr.stop()
	peak.Store(0)
	unisolated := bc
	unisolated.callbackTenantConcurrency = controllers.DefaultCallbackConcurrency
	mgr = startManager(mgrCfg, unisolated)
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		return int(inFlight.Load()) >= min(fc.hanging, controllers.DefaultCallbackConcurrency), nil
	}); err != nil {
		return res, fmt.Errorf("the hanging receiver did not take every worker without isolation: %w", err)
	}
	off, err := runCallbacks(ctx, c, admin, "fair-unisolated", fc.jobs, fc.rate)
	if err != nil {
		return res, fmt.Errorf("under a hanging receiver, no isolation: %w", err)
	}
	res.unisolated, res.peakUnisolated = off.stats(), peak.Load()
	return res, nil
}

// print adds the phase's rows to a table of the form main prints.
func (r fairnessResult) print(tw *tabwriter.Writer) {
	fmt.Fprintf(tw, "callback fairness: tenant B's terminal state → delivered p50 / p99 (ms), %d jobs at %.0f/s: alone\t%.1f / %.1f\t\t\n", r.cfg.jobs, r.cfg.rate, r.baseline.p50, r.baseline.p99)
	fmt.Fprintf(tw, "while tenant A's receiver hangs (%d jobs; A's attempts in flight at most %d, cap %d)\t%.1f / %.1f\t\t\n", r.cfg.hanging, r.peakIsolated, r.tenantCap, r.hang.p50, r.hang.p99)
	fmt.Fprintf(tw, "callback fairness: B's p99 while A hangs / alone\t%.2f\t≤ 2\t\n", r.hang.p99/r.baseline.p99)
	fmt.Fprintf(tw, "for comparison, no tenant isolation (A's attempts in flight at most %d)\t%.1f / %.1f\t\t\n", r.peakUnisolated, r.unisolated.p50, r.unisolated.p99)
}
