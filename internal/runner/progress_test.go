package runner

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// TestProgressWatchPoll: what one poll of the progress file sends, and when the watch gives up.
func TestProgressWatchPoll(t *testing.T) {
	const (
		p1 = `{"fraction":0.25,"message":"one"}`
		p2 = `{"fraction":0.5,"message":"two"}`
	)
	tooSoon := func(retryAfter time.Duration) error {
		return &statusError{code: http.StatusTooManyRequests, retryAfter: retryAfter}
	}
	type step struct {
		// at is when the poll runs, from the start.
		at time.Duration
		// file is the progress file's content then; "" means there is none.
		file string
		// answer is the endpoint's answer, should the poll call it.
		answer error
		// sends says the poll calls the endpoint (with the file's report); stops that it gives up.
		sends, stops bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{name: "no file, or an invalid one, sends nothing", steps: []step{
			{at: 0},
			{at: time.Second, file: `{"fraction":`},
			{at: 2 * time.Second, file: p1, sends: true},
		}},
		{name: "the first report at once, the same one never again", steps: []step{
			{at: 0, file: p1, sends: true},
			{at: time.Second, file: p1},
			{at: time.Minute, file: p1},
		}},
		{name: "a change waits for the interval", steps: []step{
			{at: 0, file: p1, sends: true},
			{at: time.Second, file: p2},
			{at: dispatch.ProgressInterval - time.Millisecond, file: p2},
			{at: dispatch.ProgressInterval, file: p2, sends: true},
		}},
		{name: "429 waits for Retry-After, then sends the latest", steps: []step{
			{at: 0, file: p1, answer: tooSoon(2 * time.Second), sends: true},
			{at: time.Second, file: p2},
			{at: 2 * time.Second, file: p2, sends: true},
		}},
		{name: "429 without Retry-After waits an interval", steps: []step{
			{at: 0, file: p1, answer: tooSoon(0), sends: true},
			{at: dispatch.ProgressInterval - time.Millisecond, file: p1},
			{at: dispatch.ProgressInterval, file: p1, sends: true},
		}},
		{name: "an endpoint that is away is tried again after an interval", steps: []step{
			{at: 0, file: p1, answer: errors.New("connection refused"), sends: true},
			{at: time.Second, file: p1},
			{at: dispatch.ProgressInterval, file: p1, answer: &statusError{code: http.StatusServiceUnavailable}, sends: true},
			{at: 2 * dispatch.ProgressInterval, file: p1, sends: true},
		}},
		{name: "409 ends the watch", steps: []step{
			{at: 0, file: p1, answer: &statusError{code: http.StatusConflict}, sends: true, stops: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			clk := clocktesting.NewFakeClock(start)
			path := filepath.Join(t.TempDir(), "progress.json")
			var answer error
			var got []protocol.Progress
			w := &progressWatch{clock: clk, path: path, send: func(_ context.Context, p protocol.Progress) error {
				got = append(got, p)
				return answer
			}}
			for i, s := range tc.steps {
				clk.SetTime(start.Add(s.at))
				_ = os.Remove(path)
				if s.file != "" {
					if err := os.WriteFile(path, []byte(s.file), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				answer, got = s.answer, nil
				goOn := w.poll(context.Background())
				var want []protocol.Progress
				if s.sends {
					var p protocol.Progress
					if err := json.Unmarshal([]byte(s.file), &p); err != nil {
						t.Fatal(err)
					}
					want = []protocol.Progress{p}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("step %d (at %s): sent (-want +got):\n%s", i, s.at, diff)
				}
				if goOn == s.stops {
					t.Errorf("step %d (at %s): poll = %v, want %v", i, s.at, goOn, !s.stops)
				}
			}
		})
	}
}

// TestCollectProgress: the collector passes the worker's progress on while the worker runs, for the
// attempt its pod runs (attempt 0), honours the endpoint's Retry-After, and collects the result once
// the worker has ended.
func TestCollectProgress(t *testing.T) {
	dir := t.TempDir()
	token, progress, result := filepath.Join(dir, "token"), filepath.Join(dir, "progress.json"), filepath.Join(dir, "result.json")
	for path, content := range map[string]string{token: "tok", result: `{"ok":true}`, progress: `{"fraction":0.25,"message":"one"}`} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []dispatch.ProgressRequest
	calls := make(chan time.Time, 10)
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p dispatch.ProgressRequest
		if r.URL.Path != dispatch.PathProgress || r.Header.Get("Authorization") != "Bearer tok" || json.NewDecoder(r.Body).Decode(&p) != nil {
			t.Errorf("unexpected call %s %v", r.URL.Path, r.Header)
		}
		mu.Lock()
		got = append(got, p)
		n := len(got)
		mu.Unlock()
		if n == 2 {
			w.Header().Set("Retry-After", "3")
			writeJSON(w, http.StatusTooManyRequests, dispatch.ErrorResponse{Reason: "TooSoon"})
		} else {
			writeJSON(w, http.StatusOK, dispatch.ProgressResponse{Written: true})
		}
		calls <- clk.Now()
	}))
	defer srv.Close()

	ctx, workerEnded := context.WithCancel(context.Background())
	done := make(chan string)
	go func() {
		done <- Collect(ctx, CollectConfig{URL: srv.URL + "/", TokenPath: token, ResultPath: result, ProgressPath: progress,
			Namespace: "ns", Name: "job", UID: "uid", Log: &strings.Builder{}, Clock: clk})
	}()
	// next steps the fake clock a poll at a time until the next progress call, and returns the
	// clock's time of that call.
	next := func() time.Time {
		t.Helper()
		for range 200 {
			select {
			case at := <-calls:
				return at
			case <-time.After(20 * time.Millisecond):
			}
			clk.Step(progressPoll)
		}
		t.Fatal("no progress call")
		return time.Time{}
	}
	first := next()
	if err := os.WriteFile(progress, []byte(`{"fraction":0.5,"message":"two"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	second := next() // answered 429, Retry-After 3 s
	if d := second.Sub(first); d < dispatch.ProgressInterval {
		t.Errorf("the second call came %s after the first, want at least %s", d, dispatch.ProgressInterval)
	}
	third := next()
	if d := third.Sub(second); d < 3*time.Second || d >= dispatch.ProgressInterval {
		t.Errorf("the call after a 429 with Retry-After 3 came %s later, want from 3s to %s", d, dispatch.ProgressInterval)
	}
	workerEnded()
	select {
	case msg := <-done:
		if msg != `{"ok":true}` {
			t.Errorf("termination message %q, want the result", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Collect did not return once the worker ended")
	}
	ref := dispatch.AttemptRef{Namespace: "ns", Name: "job", UID: "uid"}
	want := []dispatch.ProgressRequest{
		{AttemptRef: ref, Fraction: 0.25, Message: "one"},
		{AttemptRef: ref, Fraction: 0.5, Message: "two"},
		{AttemptRef: ref, Fraction: 0.5, Message: "two"},
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("progress calls (-want +got):\n%s", diff)
	}
}
