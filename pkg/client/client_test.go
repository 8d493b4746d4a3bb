package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeAPI answers each request with the next of its scripted answers and records the requests.
type fakeAPI struct {
	t       *testing.T
	mu      sync.Mutex
	answers []answer
	got     []recorded
}

type answer struct {
	status int
	header map[string]string
	body   string
}

type recorded struct {
	Method, Path, Query, Body string
	Header                    http.Header
	At                        time.Time
}

func newFakeAPI(t *testing.T, answers ...answer) (*fakeAPI, *Client) {
	t.Helper()
	f := &fakeAPI{t: t, answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "seek_test_key")
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, recorded{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone(), At: time.Now()})
	if len(f.answers) == 0 {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
		return
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.got...)
}

const queuedJob = `{"job_uuid":"job_abc","worker":"echo","status":"queued","status_reason":null,"status_message":null,
	"response_json":null,"error":null,"created_at":"2026-12-01T10:00:00Z","started_at":null,"completed_at":null,"attempts":0,"callback":null}`

func TestNewRejectsBadSettings(t *testing.T) {
	for _, tc := range []struct{ url, key string }{
		{"ftp://seek.example", "k"}, {"seek.example", "k"}, {"https://seek.example?x=1", "k"}, {"https://seek.example", ""},
	} {
		if _, err := New(tc.url, tc.key); err == nil {
			t.Errorf("New(%q, %q) = nil error", tc.url, tc.key)
		}
	}
}

func TestSubmitSendsKeyOptionsAndCallback(t *testing.T) {
	f, c := newFakeAPI(t, answer{status: 202, body: queuedJob})
	ret := 2 * time.Hour
	job, err := c.Submit(context.Background(), "echo", map[string]any{"message": "hi"}, &SubmitOptions{
		Timeout: 90 * time.Second, Retention: &ret, CallbackURL: "https://app.example/hook", CallbackEvents: []string{"finished"}, Wait: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if job.ID != "job_abc" || job.Status != StatusQueued || job.Status.IsTerminal() {
		t.Errorf("job = %+v", job)
	}
	req := f.requests()[0]
	if req.Method != http.MethodPost || req.Path != "/v1/workers/echo/jobs" || req.Query != "retention=7200s&timeout=90s" {
		t.Errorf("request = %s %s?%s", req.Method, req.Path, req.Query)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(req.Body), &body); err != nil {
		t.Fatalf("body %s: %v", req.Body, err)
	}
	want := map[string]any{"message": "hi", "callback_url": "https://app.example/hook", "callback_events": []any{"finished"}}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(req.Header.Get("Idempotency-Key"), "seek-go-") || req.Header.Get("X-Api-Key") != "seek_test_key" ||
		req.Header.Get("Prefer") != "wait=5" || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", req.Header)
	}
}

func TestSubmitRefusesInputThatIsNotAnObject(t *testing.T) {
	_, c := newFakeAPI(t)
	for _, input := range []any{[]int{1}, "text", json.RawMessage(`{"a":`), nil} {
		if _, err := c.Submit(context.Background(), "echo", input, nil); err == nil {
			t.Errorf("Submit(%v) = nil error", input)
		}
	}
}

func TestAddCallback(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{}`, `{"callback_url":"https://h.example/x"}`},
		{`{ "a" : 1 }`, `{"callback_url":"https://h.example/x","a" : 1 }`},
	} {
		got, err := addCallback([]byte(tc.in), "https://h.example/x", nil)
		if err != nil || string(got) != tc.want {
			t.Errorf("addCallback(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestErrorShape(t *testing.T) {
	_, c := newFakeAPI(t, answer{status: 400, body: `{"error":{"code":"invalid_input","message":"input: missing property 'email'","field":"/email"}}`},
		answer{status: 502, body: "<html>bad gateway</html>"})
	_, err := c.Submit(context.Background(), "echo", map[string]any{}, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want an *APIError", err)
	}
	want := &APIError{StatusCode: 400, Code: CodeInvalidInput, Message: "input: missing property 'email'", Field: "/email"}
	if diff := cmp.Diff(want, apiErr); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if !IsCode(fmt.Errorf("wrapped: %w", err), CodeInvalidInput) || apiErr.Temporary() {
		t.Errorf("IsCode/Temporary disagree for %v", err)
	}
	if got := err.Error(); got != "seek: 400 invalid_input (field /email): input: missing property 'email'" {
		t.Errorf("Error() = %q", got)
	}

	_, err = c.Get(context.Background(), "job_x")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway || apiErr.Code != "" || apiErr.Message != "<html>bad gateway</html>" {
		t.Errorf("non-JSON error = %#v", err)
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	f, c := newFakeAPI(t,
		answer{status: 429, header: map[string]string{"Retry-After": "1"}, body: `{"error":{"code":"rate_limited","message":"slow down"}}`},
		answer{status: 503, header: map[string]string{"Retry-After": "1"}, body: `{"error":{"code":"unavailable","message":"busy"}}`},
		answer{status: 202, body: queuedJob})
	start := time.Now()
	job, err := c.Submit(context.Background(), "echo", map[string]any{"a": 1}, nil)
	if err != nil || job.ID != "job_abc" {
		t.Fatalf("Submit = %v, %v", job, err)
	}
	reqs := f.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i := 1; i < 3; i++ {
		if gap := reqs[i].At.Sub(reqs[i-1].At); gap < time.Second {
			t.Errorf("attempt %d came %s after the previous, before its Retry-After of 1s", i+1, gap)
		}
		if reqs[i].Header.Get("Idempotency-Key") != reqs[0].Header.Get("Idempotency-Key") || reqs[i].Body != reqs[0].Body {
			t.Errorf("attempt %d is not the same request: key %q body %s", i+1, reqs[i].Header.Get("Idempotency-Key"), reqs[i].Body)
		}
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %s", elapsed)
	}
}

func TestRetryPolicy(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond, MaxWait: 10 * time.Second}
	rateLimited := &APIError{StatusCode: 429, RetryAfter: 2 * time.Second}
	unavailable := &APIError{StatusCode: 503}
	cases := []struct {
		name       string
		attempt    int
		idempotent bool
		err        error
		wantRetry  bool
		wantWait   time.Duration // exact, or 0 for a backoff within ±20% of 100ms
	}{
		{"429 waits its Retry-After", 1, false, rateLimited, true, 2 * time.Second},
		{"429 with a Retry-After beyond MaxWait fails at once", 1, true, &APIError{StatusCode: 429, RetryAfter: time.Minute}, false, 0},
		{"503 of an idempotent call backs off", 1, true, unavailable, true, 0},
		{"503 of a rotation is not retried", 1, false, unavailable, false, 0},
		{"400 is not retried", 1, true, &APIError{StatusCode: 400}, false, 0},
		{"connection error of a read", 1, true, &transportError{err: io.ErrUnexpectedEOF}, true, 0},
		{"connection error of a rotation", 1, false, &transportError{err: io.ErrUnexpectedEOF}, false, 0},
		{"attempts used up", 3, true, rateLimited, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wait, retry := p.next(tc.attempt, tc.idempotent, tc.err)
			if retry != tc.wantRetry {
				t.Fatalf("retry = %v, want %v", retry, tc.wantRetry)
			}
			if !retry {
				return
			}
			if tc.wantWait != 0 && wait != tc.wantWait {
				t.Errorf("wait = %s, want %s", wait, tc.wantWait)
			}
			if tc.wantWait == 0 && (wait < 80*time.Millisecond || wait > 120*time.Millisecond) {
				t.Errorf("backoff = %s, want 100ms ±20%%", wait)
			}
		})
	}
}

func TestRetryGivesUpBeforeTheDeadline(t *testing.T) {
	f, c := newFakeAPI(t, answer{status: 429, header: map[string]string{"Retry-After": "20"}, body: `{"error":{"code":"active_jobs_limit","message":"full"}}`})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Submit(ctx, "echo", map[string]any{}, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != CodeActiveJobsLimit || apiErr.RetryAfter != 20*time.Second {
		t.Fatalf("err = %v, want the 429 with its Retry-After", err)
	}
	if time.Since(start) > time.Second || len(f.requests()) != 1 {
		t.Errorf("waited %s and made %d requests; want an answer at once", time.Since(start), len(f.requests()))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, "-1": 0, "soon": 0, "Tue, 01 Dec 2026 10:00:30 GMT": 30 * time.Second, "Tue, 01 Dec 2026 09:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestWaitLongPollsUntilFinished(t *testing.T) {
	running := strings.Replace(queuedJob, `"queued"`, `"running"`, 1)
	done := strings.Replace(strings.Replace(queuedJob, `"queued"`, `"completed"`, 1), `"response_json":null`, `"response_json":{"ok":true}`, 1)
	f, c := newFakeAPI(t, answer{status: 200, body: running}, answer{status: 200, body: done})
	job, err := c.Wait(context.Background(), "job_abc")
	if err != nil || job.Status != StatusCompleted {
		t.Fatalf("Wait = %+v, %v", job, err)
	}
	var result struct{ OK bool }
	if err := job.DecodeResult(&result); err != nil || !result.OK {
		t.Errorf("DecodeResult = %+v, %v", result, err)
	}
	for _, r := range f.requests() {
		if r.Method != http.MethodGet || r.Path != "/v1/jobs/job_abc" || r.Header.Get("Prefer") != "wait=60" {
			t.Errorf("request %s %s Prefer %q", r.Method, r.Path, r.Header.Get("Prefer"))
		}
	}
}

func TestWaitShortensThePollToTheDeadline(t *testing.T) {
	f, c := newFakeAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already done: no request
	if _, err := c.Wait(ctx, "job_abc"); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a done context = %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests on a done context", n)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := strings.Replace(queuedJob, `"queued"`, `"canceled"`, 1)
	f, c = newFakeAPI(t, answer{status: 200, body: done})
	if job, err := c.Wait(ctx, "job_abc"); err != nil || job.Status != StatusCanceled {
		t.Fatalf("Wait = %v, %v", job, err)
	}
	// 10 s left, less a second for the answer to arrive, in whole seconds.
	if got := f.requests()[0].Header.Get("Prefer"); got != "wait=8" {
		t.Errorf("Prefer = %q, want wait=8", got)
	}
}

func TestListIteratesOverPages(t *testing.T) {
	job := func(id string) string { return strings.Replace(queuedJob, "job_abc", id, 1) }
	f, c := newFakeAPI(t,
		answer{status: 200, body: `{"jobs":[` + job("job_1") + `,` + job("job_2") + `],"next_cursor":"c2"}`},
		answer{status: 200, body: `{"jobs":[` + job("job_3") + `],"next_cursor":null}`})
	var ids []string
	for j, err := range c.List(context.Background(), &ListOptions{Worker: "echo", Status: StatusQueued, PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if diff := cmp.Diff([]string{"job_1", "job_2", "job_3"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	reqs := f.requests()
	if reqs[0].Query != "limit=2&status=queued&worker=echo" || reqs[1].Query != "cursor=c2&limit=2&status=queued&worker=echo" {
		t.Errorf("queries %q, %q", reqs[0].Query, reqs[1].Query)
	}
}

func TestListStopsAtTheFirstError(t *testing.T) {
	_, c := newFakeAPI(t, answer{status: 400, body: `{"error":{"code":"invalid_request","message":"bad","field":"limit"}}`})
	n := 0
	for j, err := range c.List(context.Background(), &ListOptions{PageSize: 1000}) {
		n++
		if j != nil || !IsCode(err, CodeInvalidRequest) {
			t.Errorf("yielded %v, %v", j, err)
		}
	}
	if n != 1 {
		t.Errorf("yielded %d times, want once", n)
	}
}

func TestBatchItems(t *testing.T) {
	f, c := newFakeAPI(t, answer{status: 202, body: `{"items":[` + queuedJob + `,{"error":{"code":"invalid_input","message":"no","field":"/email"}}]}`})
	items, err := c.SubmitBatch(context.Background(), "echo", []json.RawMessage{json.RawMessage(`{"email":"a@b.c"}`), json.RawMessage(`{}`)}, &BatchOptions{IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if items[0].Job == nil || items[0].Job.ID != "job_abc" || items[0].Err != nil {
		t.Errorf("item 0 = %+v", items[0])
	}
	if items[1].Job != nil || items[1].Err == nil || items[1].Err.Field != "/email" || items[1].Err.StatusCode != http.StatusBadRequest {
		t.Errorf("item 1 = %+v", items[1])
	}
	req := f.requests()[0]
	if req.Path != "/v1/workers/echo/jobs:batch" || req.Header.Get("Idempotency-Key") != "k1" || req.Body != `{"inputs":[{"email":"a@b.c"},{}]}` {
		t.Errorf("request %s %s %s", req.Path, req.Header.Get("Idempotency-Key"), req.Body)
	}
	if _, err := c.SubmitBatch(context.Background(), "echo", nil, nil); err == nil {
		t.Error("an empty batch was sent")
	}
}

func TestIDsAreEscaped(t *testing.T) {
	f, c := newFakeAPI(t, answer{status: 404, body: `{"error":{"code":"not_found","message":"no"}}`})
	if _, err := c.Get(context.Background(), "job_a/../../workers"); !IsNotFound(err) {
		t.Errorf("Get = %v", err)
	}
	if got := f.requests()[0].Path; got != "/v1/jobs/job_a%2F..%2F..%2Fworkers" {
		t.Errorf("path = %s", got)
	}
	if _, err := c.Cancel(context.Background(), ".."); err == nil {
		t.Error(`Cancel("..") = nil error`)
	}
}

func TestResponseSizeIsBounded(t *testing.T) {
	f := &fakeAPI{t: t, answers: []answer{{status: 200, body: `{"workers":[` + strings.Repeat(" ", 2048) + `]}`}}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := New(srv.URL, "k", WithMaxResponseBytes(1024))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Workers(context.Background()); err == nil || !strings.Contains(err.Error(), "exceeds 1024 bytes") {
		t.Errorf("Workers = %v, want the size error", err)
	}
}

func TestSubmitWaitStaysWithinTheDeadline(t *testing.T) {
	f, c := newFakeAPI(t, answer{status: 202, body: queuedJob}, answer{status: 202, body: queuedJob})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Submit(ctx, "echo", map[string]any{}, &SubmitOptions{Wait: time.Minute}); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancelShort()
	if _, err := c.Submit(short, "echo", map[string]any{}, &SubmitOptions{Wait: time.Minute}); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if got := reqs[0].Header.Get("Prefer"); got != "wait=8" {
		t.Errorf("Prefer with 10s left = %q, want wait=8", got)
	}
	if got := reqs[1].Header.Get("Prefer"); got != "" {
		t.Errorf("Prefer with 1.5s left = %q, want none", got)
	}
}
