//go:build e2e

package e2e

// End-to-end tests of GET /v1/jobs/{id}/logs (issue 12) on the local cluster: a Job mode job's pod
// log, two pooled jobs that ran in one pool pod coming back apart, and follow streaming a running job's
// lines until it ends, in both modes.

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// getLogs gets a job's logs (query: "", or "?follow=true" ...) and returns the status and the body,
// read to its end.
func getLogs(t *testing.T, id, query string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/v1/jobs/"+id+"/logs"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("logs of %s: %v (read %q)", id, err, raw)
	}
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("logs of %s: Content-Type %q", id, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(raw)
}

// succeededLine is the line the worker SDK writes when a job succeeds.
func succeededLine(id string) string {
	return "seek-worker: job " + tenant + "/" + strings.TrimPrefix(id, "job_") + ": succeeded"
}

// TestLogsJobMode: a Job mode job's logs are its pod's worker container's log.
func TestLogsJobMode(t *testing.T) {
	t.Parallel()
	id := submit(t, "sleep", `{"seconds": 0}`)
	waitStatus(t, id, "completed")
	code, body := getLogs(t, id, "")
	if code != http.StatusOK || !strings.HasPrefix(body, succeededLine(id)) || strings.Contains(body, "seek-runner") {
		t.Errorf("logs = %d %q, want 200 with the worker's line %q", code, body, succeededLine(id))
	}
	if code, body := getLogs(t, id, "?tail=0"); code != http.StatusBadRequest {
		t.Errorf("tail=0: %d %q, want 400", code, body)
	}
}

// TestLogsPooledJobsApart: two jobs that ran one after the other in the same pool pod each get their
// own lines back, none of the other's and none of the runner's, while the pod's log holds both.
func TestLogsPooledJobsApart(t *testing.T) {
	t.Parallel()
	worker := pooledWorker(t, "plogs", "echo", poolSettings{maxPods: 1, idle: 5 * time.Minute}, nil)
	ids := []string{submit(t, worker, `{"message": "one"}`)}
	waitStatus(t, ids[0], "completed")
	ids = append(ids, submit(t, worker, `{"message": "two"}`))
	waitStatus(t, ids[1], "completed")
	first, second := seekJob(t, ids[0]), seekJob(t, ids[1])
	if leasedPod(first) == "" || leasedPod(first) != leasedPod(second) {
		t.Fatalf("the jobs ran in pods %q and %q, want one pod", leasedPod(first), leasedPod(second))
	}
	podText := podLog(t, leasedPod(first))
	for i, id := range ids {
		other := ids[1-i]
		if !strings.Contains(podText, succeededLine(id)) {
			t.Fatalf("the pool pod's log lacks %q:\n%s", succeededLine(id), podText)
		}
		code, body := getLogs(t, id, "")
		if code != http.StatusOK || !strings.HasPrefix(body, succeededLine(id)) || strings.Count(body, "\n") != 1 ||
			strings.Contains(body, strings.TrimPrefix(other, "job_")) || strings.Contains(body, "seek-runner") {
			t.Errorf("logs of %s = %d %q, want its one line %q", id, code, body, succeededLine(id))
		}
	}
}

// TestLogsFollow: follow=true streams a running job's lines until the job ends (Job mode: its container
// ends; pooled: the runner's end marker), and a finished job's at once.
func TestLogsFollow(t *testing.T) {
	t.Parallel()
	pooled := pooledWorker(t, "plsleep", "sleep", poolSettings{maxPods: 1, idle: 5 * time.Minute}, nil)
	for _, worker := range []string{"sleep", pooled} {
		t.Run(worker, func(t *testing.T) {
			t.Parallel()
			id := submit(t, worker, `{"seconds": 6}`)
			waitStatus(t, id, "running")
			start := time.Now()
			code, body := getLogs(t, id, "?follow=true")
			took := time.Since(start)
			if code != http.StatusOK || !strings.HasPrefix(body, succeededLine(id)) || strings.Contains(body, "seek-runner") {
				t.Errorf("follow = %d %q, want 200 with the line written when the job ended", code, body)
			}
			job := waitStatus(t, id, "completed", "failed")
			if job["status"] != "completed" {
				t.Fatalf("job = %v", job)
			}
			if took < time.Second || took > time.Minute {
				t.Errorf("the stream lasted %v: want it open while the job ran (6 s), and closed when it ended", took)
			}
			start = time.Now()
			if code, again := getLogs(t, id, "?follow=true"); code != http.StatusOK || again != body || time.Since(start) > 10*time.Second {
				t.Errorf("follow on the finished job = %d %q after %v, want %q at once", code, again, time.Since(start), body)
			}
		})
	}
}

// TestLogsKeptAfterThePodIsGone: once a job has finished, the end of its output is kept with it
// (status.logs, a Secret the job owns), and GET .../logs answers it after the pod that wrote it is
// deleted, in both modes.
func TestLogsKeptAfterThePodIsGone(t *testing.T) {
	t.Parallel()
	pooled := pooledWorker(t, "pkept", "echo", poolSettings{maxPods: 1, idle: 5 * time.Minute}, nil)
	for _, worker := range []string{"sleep", pooled} {
		t.Run(worker, func(t *testing.T) {
			t.Parallel()
			input := `{"seconds": 0}`
			if worker == pooled {
				input = `{"message": "kept"}`
			}
			id := submit(t, worker, input)
			waitStatus(t, id, "completed")
			sj := seekJob(t, id)
			want := succeededLine(id) // followed by " (N-byte result)"
			// One short line: kept inline in status.logs.
			if l := sj.Status.Logs; l == nil || l.SecretName != "" || l.Attempt != 1 || !strings.HasPrefix(l.Text, want) {
				t.Fatalf("status.logs = %+v, want attempt 1's output inline, starting %q", l, want)
			}
			// The pod goes: Job mode, with the job's Job, which the manager deletes once the job has
			// finished (the worker's finishedJobs: Delete); pooled, with the pool Job, deleted here.
			var job batchv1.Job
			job.Namespace, job.Name = tenant, sj.Status.JobName
			if sj.Status.Pool != nil {
				job.Name = sj.Status.Pool.JobName
				if err := k8s.Delete(context.Background(), &job, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
					t.Fatal(err)
				}
			}
			name := job.Name
			deadline := time.Now().Add(2 * time.Minute)
			for k8s.Get(context.Background(), client.ObjectKeyFromObject(&job), &job) == nil {
				if time.Now().After(deadline) {
					t.Fatalf("Job %s still there after 2 minutes", name)
				}
				time.Sleep(time.Second)
			}
			code, body := getLogs(t, id, "")
			if code != http.StatusOK || !strings.HasPrefix(body, succeededLine(id)) || strings.Contains(body, "seek-runner") {
				t.Errorf("logs after the pod is gone = %d %q, want 200 with %q", code, body, succeededLine(id))
			}
		})
	}
}
