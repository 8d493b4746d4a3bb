package jobcmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// fakeSeek is an in-memory stand-in for the REST API, enough for the commands' output and the batch
// pipeline: a job's result echoes its input, and an input with "fail": true fails.
type fakeSeek struct {
	t  *testing.T
	mu sync.Mutex
	// jobs by id, and their inputs, in submission order.
	jobs   map[string]map[string]any
	inputs map[string]json.RawMessage
	ids    []string
	// maxBatch refuses larger batches with the API's 400 naming inputs (0: 1,000).
	maxBatch int
	// refuseOnce answers the items whose input has "busy": true with active_jobs_limit, the first time.
	refused map[string]bool
	// delay returns how long a Prefer: wait GET of a job takes, to finish jobs out of order.
	delay func(input json.RawMessage) time.Duration
	// batchSizes records each batch request's size, and keys its Idempotency-Key.
	batchSizes []int
}

var created = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func newFakeSeek(t *testing.T) (*fakeSeek, string) {
	f := &fakeSeek{t: t, jobs: map[string]map[string]any{}, inputs: map[string]json.RawMessage{}, refused: map[string]bool{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func apiError(w http.ResponseWriter, status int, code, field, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "field": field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeSeek) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Api-Key") != "test-key" {
		apiError(w, 401, "unauthenticated", "", "no key")
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch path := r.URL.Path; {
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/jobs:batch"):
		f.batch(w, body)
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/jobs"):
		f.mu.Lock()
		job := f.create(json.RawMessage(body))
		f.mu.Unlock()
		writeJSON(w, 202, job)
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/logs"):
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Query().Get("follow") == "true" {
			_, _ = w.Write([]byte("line 1\nline 2\nline 3\n"))
			return
		}
		_, _ = fmt.Fprintf(w, "last %s lines\n", r.URL.Query().Get("tail"))
	case r.Method == http.MethodGet && path == "/v1/jobs":
		f.list(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/v1/jobs/"):
		f.get(w, r, strings.TrimPrefix(path, "/v1/jobs/"))
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/cancel"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/v1/jobs/"), "/cancel")
		f.mu.Lock()
		job, ok := f.jobs[id]
		if ok {
			job["status"] = "canceled"
		}
		f.mu.Unlock()
		if !ok {
			apiError(w, 404, "not_found", "", "no job "+id)
			return
		}
		writeJSON(w, 202, job)
	case r.Method == http.MethodGet && path == "/v1/workers":
		writeJSON(w, 200, map[string]any{"workers": []any{
			map[string]any{"name": "echo", "description": "Echoes its input", "input_schema": nil},
		}})
	default:
		apiError(w, 404, "not_found", "", "no such endpoint")
	}
}

// create stores a queued job for an input; f.mu is held.
func (f *fakeSeek) create(input json.RawMessage) map[string]any {
	id := fmt.Sprintf("job_%03d", len(f.ids))
	job := map[string]any{"job_uuid": id, "worker": "echo", "status": "queued", "status_reason": nil, "status_message": nil,
		"response_json": nil, "error": nil, "created_at": created.Add(time.Duration(len(f.ids)) * time.Second), "started_at": nil,
		"completed_at": nil, "attempts": 0, "callback": nil}
	f.jobs[id], f.inputs[id] = job, input
	f.ids = append(f.ids, id)
	return job
}

func (f *fakeSeek) batch(w http.ResponseWriter, body []byte) {
	var req struct{ Inputs []json.RawMessage }
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, 400, "invalid_request", "", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batchSizes = append(f.batchSizes, len(req.Inputs))
	if f.maxBatch > 0 && len(req.Inputs) > f.maxBatch {
		apiError(w, 400, "invalid_request", "inputs", fmt.Sprintf("this API key may create at most %d jobs at once", f.maxBatch))
		return
	}
	items := make([]any, len(req.Inputs))
	for i, in := range req.Inputs {
		var fields map[string]any
		_ = json.Unmarshal(in, &fields)
		switch {
		case fields["busy"] == true && !f.refused[string(in)]:
			f.refused[string(in)] = true
			items[i] = map[string]any{"error": map[string]any{"code": "active_jobs_limit", "message": "full"}}
		case fields["bad"] != nil:
			items[i] = map[string]any{"error": map[string]any{"code": "invalid_input", "message": "bad is not allowed", "field": "/bad"}}
		default:
			items[i] = f.create(in)
		}
	}
	writeJSON(w, 202, map[string]any{"items": items})
}

// get answers a job; with Prefer: wait, the job finishes first, after f.delay.
func (f *fakeSeek) get(w http.ResponseWriter, r *http.Request, id string) {
	f.mu.Lock()
	job, ok := f.jobs[id]
	input := f.inputs[id]
	f.mu.Unlock()
	if !ok {
		apiError(w, 404, "not_found", "", "no job "+id)
		return
	}
	if r.Header.Get("Prefer") != "" {
		if f.delay != nil {
			time.Sleep(f.delay(input))
		}
		f.mu.Lock()
		if job["status"] != "queued" {
			f.mu.Unlock()
			writeJSON(w, 200, job)
			return
		}
		var fields map[string]any
		_ = json.Unmarshal(input, &fields)
		if fields["fail"] == true {
			job["status"], job["error"] = "failed", map[string]any{"reason": "WorkerFailed", "message": "asked to fail"}
		} else {
			job["status"], job["response_json"] = "completed", map[string]any{"echo": fields}
		}
		job["attempts"] = 1
		f.mu.Unlock()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, 200, job)
}

// list pages the jobs newest first, two a page, filtered by status.
func (f *fakeSeek) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var matched []any
	for i := len(f.ids) - 1; i >= 0; i-- {
		job := f.jobs[f.ids[i]]
		if s := r.URL.Query().Get("status"); s == "" || job["status"] == s {
			matched = append(matched, job)
		}
	}
	start := 0
	if c := r.URL.Query().Get("cursor"); c != "" {
		_, _ = fmt.Sscan(c, &start)
	}
	end := min(start+2, len(matched))
	var next any
	if end < len(matched) {
		next = fmt.Sprint(end)
	}
	writeJSON(w, 200, map[string]any{"jobs": append([]any{}, matched[start:end]...), "next_cursor": next})
}

// run runs seekctl's job commands with args against url and returns standard output and error.
func run(t *testing.T, url string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := &cobra.Command{Use: "seekctl", SilenceUsage: true, SilenceErrors: true}
	AddTo(root)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"--url", url, "--api-key", "test-key"}, args...)) // args may override them
	err := root.Execute()
	return out.String(), errOut.String(), err
}
