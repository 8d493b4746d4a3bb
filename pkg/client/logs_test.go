package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLogs(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case r.URL.Path == "/v1/jobs/job_gone/logs":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":{"code":"logs_unavailable","message":"the job's pod is gone"}}`))
		case r.URL.Query().Get("follow") == "true" && n == 2:
			// The first attempt to follow meets a busy server.
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"busy"}}`))
		case r.URL.Query().Get("follow") == "true":
			w.Header().Set("Content-Type", "text/plain")
			for _, line := range []string{"one\n", "two\n", "three\n"} {
				_, _ = w.Write([]byte(line))
				w.(http.Flusher).Flush()
				time.Sleep(10 * time.Millisecond)
			}
		default:
			if got := r.URL.Query().Get("tail"); got != "2" || r.Header.Get("Accept") != "text/plain" {
				t.Errorf("tail %q, Accept %q", got, r.Header.Get("Accept"))
			}
			_, _ = w.Write([]byte("two\nthree\n"))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "key", WithRetryPolicy(RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxWait: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	got, err := c.Logs(ctx, "job_x", &LogsOptions{Tail: 2})
	if err != nil || got != "two\nthree\n" {
		t.Errorf("Logs = %q, %v", got, err)
	}
	var out bytes.Buffer
	if err := c.FollowLogs(ctx, "job_x", nil, &out); err != nil || out.String() != "one\ntwo\nthree\n" {
		t.Errorf("FollowLogs = %q, %v (after a 503, retried)", out.String(), err)
	}
	_, err = c.Logs(ctx, "job_gone", nil)
	if apiErr, ok := errors.AsType[*APIError](err); !ok || apiErr.Code != CodeLogsUnavailable || apiErr.StatusCode != http.StatusConflict {
		t.Errorf("Logs of a job whose pod is gone: %v", err)
	}
	if err := c.FollowLogs(ctx, "job_gone", nil, &out); !IsCode(err, CodeLogsUnavailable) {
		t.Errorf("FollowLogs of a job whose pod is gone: %v", err)
	}
	if _, err := c.Logs(ctx, "job_x", &LogsOptions{Tail: MaxLogTail + 1}); err == nil || !strings.Contains(err.Error(), "Tail") {
		t.Errorf("Logs with Tail beyond the maximum: %v", err)
	}
}
