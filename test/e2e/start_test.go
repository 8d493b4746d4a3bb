//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/seek-api/seek-operator/internal/testutil"
)

// TestWorkerCannotStart runs jobs whose worker container cannot start on the real node: an image that
// cannot be pulled, a node selector no node matches, and a ServiceAccount that does not exist (the Job
// controller cannot create the pod). Each job shows the cause through the REST API
// while queued (never running), then fails with it at the worker's start deadline.
func TestWorkerCannotStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		worker  *testutil.SeekWorkerWrapper
		reasons []string // any of them, as the kubelet alternates between pull errors and back-off
	}{
		{
			name:    "image pull failure",
			worker:  testutil.MakeSeekWorker("nopull-" + tenant).Image("registry.invalid/seek/no-such-worker:v1").PullPolicy(corev1.PullIfNotPresent),
			reasons: []string{"ErrImagePull", "ImagePullBackOff"},
		},
		{
			name:    "unschedulable",
			worker:  testutil.MakeSeekWorker("nowhere-"+tenant).Image(workerImage("echo")).PullPolicy(corev1.PullNever).NodeSelector("seek-api.com/e2e-no-such-node", "true"),
			reasons: []string{"Unschedulable"},
		},
		{
			name:    "missing ServiceAccount",
			worker:  testutil.MakeSeekWorker("nosa-" + tenant).Image(workerImage("echo")).PullPolicy(corev1.PullNever).ServiceAccount("no-such-account"),
			reasons: []string{"ServiceAccountNotFound"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := tc.worker.StartDeadline(20 * time.Second).Obj()
			mustCreate(t, w)
			t.Cleanup(func() { _ = k8s.Delete(context.Background(), w) })
			waitWorkerReady(t, w.Name)
			id := submit(t, w.Name, `{"message": "hi"}`)

			// Queued, with the cause, until the deadline: never running.
			deadline := time.Now().Add(waitTimeout)
			var job map[string]any
			for {
				_, job = call(t, "GET", "/v1/jobs/"+id, "")
				if job["status"] != "queued" {
					t.Fatalf("job = %v, want queued with a reason among %v", job, tc.reasons)
				}
				if reason, _ := job["status_reason"].(string); slices.Contains(tc.reasons, reason) {
					if msg, _ := job["status_message"].(string); msg == "" {
						t.Errorf("status_message is empty: %v", job)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("job = %v, want a status_reason among %v", job, tc.reasons)
				}
				time.Sleep(250 * time.Millisecond)
			}
			t.Logf("queued: %v: %v", job["status_reason"], job["status_message"])

			job = waitStatus(t, id, "failed", "running", "completed", "timed_out")
			e, _ := job["error"].(map[string]any)
			reason, _ := e["reason"].(string)
			msg, _ := e["message"].(string)
			if job["status"] != "failed" || !slices.Contains(tc.reasons, reason) || !strings.HasPrefix(msg, "The worker did not start within 20s: ") || job["started_at"] != nil {
				t.Fatalf("job = %v, want failed with a reason among %v after the 20s start deadline", job, tc.reasons)
			}
		})
	}
}
