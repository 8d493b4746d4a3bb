package integration

import (
	"context"
	"net/url"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// TestManagerRidesOutApiserverOutage: a leader-elected manager whose apiserver is away for 20 s
// keeps leading and running (no exit, so no crash-loop back-off), and a job created meanwhile moves
// (gets its pod) within 30 s of the apiserver's return.
func TestManagerRidesOutApiserverOutage(t *testing.T) {
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	// This test's manager, reaching the apiserver through the proxy, replaces the suite's.
	mgrRun.stop()
	t.Cleanup(func() { mgrRun = startManager() })
	cfg := rest.CopyConfig(cp.Config)
	cfg.Host = "https://" + proxy.addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- manager.Run(ctx, cfg, manager.Options{
			MetricsAddr: "0", HealthProbeAddr: "0", DispatchBindAddress: "0", JobConcurrency: 4, Restartable: true,
			LeaderElection: true, LeaderElectionNS: systemNamespace, LeaderElectionID: uniqueName("outage"),
			CredentialsNamespace: credentialsNamespace,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("manager: %v", err)
		}
	})
	ns := newNamespace(t)
	w := readyWorker(t, echoWorker(t).Obj())
	mustCreate(t, testutil.MakeSeekJob("before", ns).Worker(w.Name).Input(`{}`).Obj())
	waitForPod(t, ns, "before", 1)

	const outage = 30 * time.Second
	proxy.cut()
	// Created directly, as a client that still reaches the apiserver would: the manager cannot see it.
	mustCreate(t, testutil.MakeSeekJob("during", ns).Worker(w.Name).Input(`{}`).Obj())
	select {
	case err := <-done:
		t.Fatalf("the manager stopped during the outage: %v", err)
	case <-time.After(outage):
	}
	proxy.restore()
	back := time.Now()
	waitForPod(t, ns, "during", 1)
	if d := time.Since(back); d > 30*time.Second {
		t.Errorf("the job created during the outage got its pod %s after the apiserver's return, want within 30s", d.Round(time.Second))
	} else {
		t.Logf("the job created during a %s outage got its pod %s after the apiserver's return", outage, d.Round(100*time.Millisecond))
	}
	select {
	case err := <-done:
		t.Fatalf("the manager stopped: %v", err)
	default:
	}
}
