//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// TestProgress: the sleep worker reports its progress every second through the SDK, in both modes:
// pooled, the runner passes it on; Job mode, the collector sidecar of its pod does. The REST API shows
// it while the job runs (at most one write every 5 s) and keeps the last one; the job's progress
// webhook events arrive before its terminal event.
func TestProgress(t *testing.T) {
	t.Parallel()
	pooled := pooledWorker(t, "pprogress", "sleep", poolSettings{maxPods: 1, idle: time.Minute}, nil)
	for _, worker := range []string{"sleep", pooled} {
		t.Run(worker, func(t *testing.T) {
			t.Parallel()
			checkProgress(t, worker, 10*time.Second, worker == pooled)
		})
	}
}

// checkProgress runs a sleep job of the given length on worker and checks its progress, its status
// and its webhook deliveries.
func checkProgress(t *testing.T, worker string, length time.Duration, pooled bool) {
	t.Helper()
	type delivery struct {
		typ  string
		data map[string]any
	}
	got := make(chan delivery, 16)
	srv := newReceiver(t, func(_ *http.Request, body []byte) {
		var p struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(body, &p)
		got <- delivery{p.Type, p.Data}
	})
	id := submit(t, worker, fmt.Sprintf(`{"seconds": %d, "callback_url": %q, "callback_events": ["progress", "finished"]}`,
		int(length.Seconds()), srv.URL+"/hook"))
	deadline := time.Now().Add(waitTimeout)
	var progress map[string]any
	for progress == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no progress shown while the job ran")
		}
		_, job := call(t, http.MethodGet, "/v1/jobs/"+id, "")
		if job["status"] == "running" {
			progress, _ = job["progress"].(map[string]any)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if f, _ := progress["fraction"].(float64); f <= 0 || f >= 1 || !strings.HasPrefix(progress["message"].(string), "slept ") {
		t.Errorf("progress while running = %v", progress)
	}
	job := waitStatus(t, id, "completed", "failed")
	last, _ := job["progress"].(map[string]any)
	if job["status"] != "completed" || last == nil || last["fraction"].(float64) < progress["fraction"].(float64) {
		t.Errorf("finished job = %v, its progress %v (first seen %v)", job, last, progress)
	}
	sj := seekJob(t, id)
	if ranPooled := sj.Status.Pool != nil; ranPooled != pooled {
		t.Errorf("the job ran in a pool: %v (%+v, Job %q), want %v", ranPooled, sj.Status.Pool, sj.Status.JobName, pooled)
	}
	if sj.Status.Progress == nil || sj.Status.Progress.Attempt != 1 {
		t.Errorf("status.progress = %+v", sj.Status.Progress)
	}
	var types []string
	for len(types) == 0 || types[len(types)-1] != "job.completed" {
		select {
		case d := <-got:
			types = append(types, d.typ)
			if d.typ == "job.progress" && d.data["progress"] == nil {
				t.Errorf("job.progress without progress: %v", d.data)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("deliveries: %v, want job.progress then job.completed", types)
		}
	}
	// The first report, then at most one every 5 s.
	if most := 1 + int(length/dispatch.ProgressInterval); len(types) < 2 || types[0] != "job.progress" || len(types) > most+1 {
		t.Errorf("deliveries %v: want 1 to %d job.progress (%s at one write per %s at most), then job.completed",
			types, most, length, dispatch.ProgressInterval)
	}
}
