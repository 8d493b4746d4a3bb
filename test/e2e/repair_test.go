//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/seek-api/seek-operator/internal/localcluster"
)

// TestUpRepairsEachDaemon stops each of the cluster's daemons with SIGTERM and at once runs up, as
// `make run` right after a daemon was stopped: up must see the daemon shutting down, wait for it to
// exit, and start it again, so that it is healthy with a new pid, the other daemons keep theirs, the
// whole cluster is up, and a job completes through the REST API. Not parallel: the other tests wait while the cluster is repaired.
func TestUpRepairsEachDaemon(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "containerd"} {
		t.Run(name, func(t *testing.T) {
			all := localcluster.Daemons(ctx, clusterOpts)
			before := daemon(ctx, t, name)
			if before.PID == 0 || !before.Healthy {
				t.Fatalf("before: %+v, want running and healthy", before)
			}
			if err := syscall.Kill(before.PID, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if _, err := localcluster.Up(ctx, clusterOpts); err != nil {
				t.Fatalf("up right after SIGTERM to %s (pid %d): %v", name, before.PID, err)
			}
			if after := daemon(ctx, t, name); after.PID == 0 || after.PID == before.PID || !after.Healthy {
				t.Errorf("after up: %+v, want running and healthy with a pid other than %d", after, before.PID)
			}
			// The others were left alone.
			for _, d := range all {
				if now := daemon(ctx, t, d.Name); d.Name != name && now.PID != d.PID {
					t.Errorf("%s: pid %d before, %d after up; want it kept", d.Name, d.PID, now.PID)
				}
			}
			// Seek's own pods may restart once after an apiserver outage (the manager gives up its leader
			// lease when it cannot renew it): status must settle, not be perfect the instant up returns.
			var status bytes.Buffer
			deadline := time.Now().Add(2 * time.Minute)
			for {
				status.Reset()
				err := localcluster.Status(ctx, clusterOpts, &status)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("status 2 min after up: %v\n%s", err, &status)
					break
				}
				time.Sleep(2 * time.Second)
			}
			id := submit(t, "email-validator", `{"email": "repaired@example.com", "check_mx": false}`)
			if job := waitStatus(t, id, "completed", "failed"); job["status"] != "completed" {
				t.Fatalf("job after repairing %s = %v", name, job)
			}
		})
	}
}

// daemon is the observed state of the named daemon.
func daemon(ctx context.Context, t *testing.T, name string) localcluster.DaemonState {
	t.Helper()
	for _, d := range localcluster.Daemons(ctx, clusterOpts) {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no daemon %s", name)
	return localcluster.DaemonState{}
}
