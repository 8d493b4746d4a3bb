package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seek-api/seek-operator/pkg/worker"
)

func TestSleep(t *testing.T) {
	for _, tc := range []struct {
		input  string
		waited time.Duration // -1: no wait
		result any
		code   int
		reason string
	}{
		{input: `{"seconds": 2}`, waited: 2 * time.Second, result: result{SleptSeconds: 2}},
		{input: `{"seconds": 0}`, waited: -1, result: result{SleptSeconds: 0}}, // nothing to wait for
		{input: `{"seconds": 0.25}`, waited: 250 * time.Millisecond, result: result{SleptSeconds: 0.25}},
		{input: `{"seconds": 3600}`, waited: time.Hour, result: result{SleptSeconds: 3600}},
		{input: `{"seconds": 1, "exit_code": 0}`, waited: time.Second, result: result{SleptSeconds: 1}},
		{input: `{"seconds": 1, "exit_code": 3}`, waited: time.Second, code: 3, reason: "RequestedExitCode"},
		{input: `{"seconds": 1, "exit_code": 65}`, waited: time.Second, code: 65, reason: "RequestedExitCode"},
		{input: `{"seconds": 1, "exit_code": 255}`, waited: time.Second, code: 255, reason: "RequestedExitCode"},
		{input: `{"seconds": 1, "exit_code": 256}`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
		{input: `{"seconds": 1, "exit_code": -1}`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
		{input: `{"seconds": 1, "exit_code": 1.5}`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
		{input: `{"seconds": -1}`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
		{input: `{"seconds": 3600.5}`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
		{input: `{"seconds": "1"}`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
		{input: `{}`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
		{input: `null`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
		{input: `{"seconds": 1, "minutes": 1}`, waited: -1, code: 65, reason: worker.ReasonInvalidInput},
	} {
		waited := time.Duration(-1)
		s := sleeper{wait: func(_ context.Context, d time.Duration) error { waited = max(waited, 0) + d; return nil }}
		r, err := s.handle(context.Background(), &worker.Job{Input: json.RawMessage(tc.input)})
		if waited != tc.waited {
			t.Errorf("%s: waited %v, want %v", tc.input, waited, tc.waited)
		}
		if code, reason := worker.Classify(err); code != tc.code || reason != tc.reason {
			t.Errorf("%s: error %v classified %d %q, want %d %q", tc.input, err, code, reason, tc.code, tc.reason)
		}
		if diff := cmp.Diff(tc.result, r); diff != "" {
			t.Errorf("%s: result (-want +got):\n%s", tc.input, diff)
		}
	}
}

func TestWait(t *testing.T) {
	if err := wait(context.Background(), time.Millisecond); err != nil {
		t.Errorf("wait: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	start := time.Now()
	if err := wait(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("wait canceled: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("wait returned %v after the cancelation", d)
	}
}

// TestSleepCanceled runs the worker through the SDK and cancels it, as SIGTERM would.
func TestSleepCanceled(t *testing.T) {
	dir := t.TempDir()
	input, resultPath := filepath.Join(dir, "input.json"), filepath.Join(dir, "result.json")
	if err := os.WriteFile(input, []byte(`{"seconds": 3600}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	start := time.Now()
	code := worker.Execute(ctx, sleeper{wait: wait}.handle, worker.Options{
		InputPath:  input,
		ResultPath: resultPath,
		Getenv:     func(string) string { return "" },
		Log:        &bytes.Buffer{},
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the worker stopped %v after the cancelation", d)
	}
	data, err := os.ReadFile(resultPath)
	want := `{"message":"interrupted (context canceled): sleep 1h0m0s: context canceled","reason":"Interrupted"}`
	if code != 1 || err != nil || string(data) != want {
		t.Errorf("exit %d, result %s (%v); want exit 1, result %s", code, data, err, want)
	}
}
