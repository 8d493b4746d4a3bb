package integration

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// TestKeptLogsPooled: a pool pod's report carries the end of the attempt's output; the dispatcher keeps
// it inline in status.logs when short, else in a Secret owned by the job before the status write (status.logs names it; the job costs no more
// SeekJob writes), the REST API serves it once the job has ended, an attempt that wrote nothing costs
// no Secret, a canceled job's stopped attempt sends its output after the job ended, and deleting the
// job deletes the Secret.
func TestKeptLogsPooled(t *testing.T) {
	ns := poolNamespace(t)
	w := pooledWorker(t)
	r := poolPod(t, ns, w)
	resultTenant(t, ns)
	writes := watchWrites(t, ns)
	// Over 1 KiB: kept in a Secret (shorter output is kept inline, below).
	output := strings.Repeat("a line of output\n", 100) + "line 2\n"

	createJob(t, ns, "chatty", w.Name, `{"n":1}`)
	job := r.leaseJob("chatty")
	if job.LogBytes != seekv1alpha1.DefaultRetainedLogBytes {
		t.Errorf("lease's logBytes %d, want the worker's default %d", job.LogBytes, seekv1alpha1.DefaultRetainedLogBytes)
	}
	var rr dispatch.ReportResponse
	r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `{"ok":true}`, LogTail: output, OutputBytes: int64(len(output))},
		&rr, http.StatusOK, 10*time.Second)
	sj := getJob(t, ns, "chatty")
	want := &seekv1alpha1.JobLogs{SecretName: "chatty-logs", Attempt: 1, Bytes: int64(len(output))}
	if sj.Status.State != seekv1alpha1.JobStateCompleted {
		t.Fatalf("state %q, want Completed", sj.Status.State)
	}
	if diff := cmp.Diff(want, sj.Status.Logs); diff != "" {
		t.Errorf("status.logs (-want +got):\n%s", diff)
	}
	s := &corev1.Secret{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "chatty-logs"}, s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data[seekv1alpha1.LogsSecretKey]) != output || s.Type != seekv1alpha1.LogsSecretType {
		t.Errorf("Secret: type %q, %q; want %s, %q", s.Type, s.Data[seekv1alpha1.LogsSecretKey], seekv1alpha1.LogsSecretType, output)
	}
	if owner := metav1.GetControllerOf(s); owner == nil || owner.UID != sj.UID {
		t.Errorf("Secret controlled by %+v, want the SeekJob", owner)
	}
	time.Sleep(time.Second)
	if n := writes.of("chatty"); n != 2 {
		t.Errorf("%d writes of the SeekJob after its creation, want 2 (lease, outcome)", n)
	}

	t.Run("the REST API serves the kept output", func(t *testing.T) {
		api := &apiClient{t: t, base: startFrontend(t), key: apiKey(t, ns, apikeys.ScopeRead)}
		api.waitKeyAccepted("/v1/jobs/job_chatty")
		code, body := api.text("GET", "/v1/jobs/job_chatty/logs?tail=1")
		if code != http.StatusOK || body != "line 2\n" {
			t.Errorf("GET logs?tail=1: %d %q, want 200 %q", code, body, "line 2\n")
		}
		// Short output is kept inline in status.logs: no Secret, no write of its own.
		createJob(t, ns, "short", w.Name, `{"n":4}`)
		job := r.leaseJob("short")
		r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `{}`, LogTail: "one\ntwo\n", OutputBytes: 8},
			&rr, http.StatusOK, 10*time.Second)
		sj := getJob(t, ns, "short")
		if diff := cmp.Diff(&seekv1alpha1.JobLogs{Attempt: 1, Bytes: 8, Text: "one\ntwo\n"}, sj.Status.Logs); diff != "" {
			t.Errorf("status.logs (-want +got):\n%s", diff)
		}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "short-logs"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("Secret short-logs: %v, want none", err)
		}
		if code, body := api.text("GET", "/v1/jobs/job_short/logs"); code != http.StatusOK || body != "one\ntwo\n" {
			t.Errorf("GET short's logs: %d %q, want 200 %q", code, body, "one\ntwo\n")
		}
	})

	t.Run("an attempt that wrote nothing costs no Secret", func(t *testing.T) {
		createJob(t, ns, "quiet", w.Name, `{"n":2}`)
		job := r.leaseJob("quiet")
		r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `{}`}, &rr, http.StatusOK, 10*time.Second)
		sj := getJob(t, ns, "quiet")
		if diff := cmp.Diff(&seekv1alpha1.JobLogs{Attempt: 1}, sj.Status.Logs); diff != "" {
			t.Errorf("status.logs (-want +got):\n%s", diff)
		}
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "quiet-logs"}, &corev1.Secret{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("Secret quiet-logs: %v, want none", err)
		}
	})

	t.Run("a canceled job's output is kept", func(t *testing.T) {
		createJob(t, ns, "stopped", w.Name, `{"n":3}`)
		job := r.leaseJob("stopped")
		// Before the job has ended, a stopped attempt's output is refused.
		stopped := dispatch.Report{AttemptRef: job.AttemptRef, Stopped: true, LogTail: "partial\n", OutputBytes: 8}
		r.call(dispatch.PathReport, stopped, &rr, http.StatusConflict, 10*time.Second)
		requestCancel(t, ns, "stopped", "no longer needed")
		waitForState(t, ns, "stopped", seekv1alpha1.JobStateCanceled)
		r.call(dispatch.PathReport, stopped, &rr, http.StatusOK, 10*time.Second)
		sj := getJob(t, ns, "stopped")
		want := &seekv1alpha1.JobLogs{Attempt: 1, Bytes: 8, Text: "partial\n"}
		if diff := cmp.Diff(want, sj.Status.Logs); diff != "" || sj.Status.State != seekv1alpha1.JobStateCanceled {
			t.Errorf("state %q, status.logs (-want +got):\n%s", sj.Status.State, diff)
		}
		// Once kept, again is refused (nothing is written twice).
		r.call(dispatch.PathReport, stopped, &rr, http.StatusConflict, 10*time.Second)
	})

	t.Run("deleting the job deletes its logs Secret", func(t *testing.T) {
		if err := k8sClient.Delete(context.Background(), sj); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the logs Secret deleted", func(ctx context.Context) (bool, error) {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "chatty-logs"}, &corev1.Secret{})
			return apierrors.IsNotFound(err), err
		})
	})
}

// text makes a request whose answer is text (a job's logs) and returns the status and the body.
func (c *apiClient) text(method, path string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", c.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}
