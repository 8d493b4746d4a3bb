package frontend

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// storedJobs lists the SeekJobs of all tenants.
func (f *fixture) storedJobs() []seekv1alpha1.SeekJob {
	f.t.Helper()
	list := &seekv1alpha1.SeekJobList{}
	if err := f.client.List(context.Background(), list); err != nil {
		f.t.Fatal(err)
	}
	return list.Items
}

// Issue 10: hostile input is a 4xx in the error shape, naming the field, and stores nothing.
func TestSubmitRefusesWhatWouldBeAltered(t *testing.T) {
	anyWorker := testutil.MakeSeekWorker("any").Timeouts(time.Minute, 2*time.Hour).Obj()
	f := newFixture(t, nil, anyWorker)
	const submit = "/v1/workers/any/jobs"
	cases := []struct {
		name, path, body    string
		header              []string
		wantStatus          int
		wantCode, wantField string
	}{
		{"invalid UTF-8", submit, "{\"name\":\"caf\xe9\"}", nil, 400, "invalid_request", ""},
		{"lone surrogate", submit, `{"name":"\ud800"}`, nil, 400, "invalid_request", "/name"},
		{"1e999", submit, `{"x":{"y":1e999}}`, nil, 400, "invalid_request", "/x/y"},
		{"beyond int64", submit, `{"id":12345678901234567890}`, nil, 400, "invalid_request", "/id"},
		{"beyond float64 precision", submit, `{"p":0.30000000000000000001}`, nil, 400, "invalid_request", "/p"},
		{"duplicate key", submit, `{"a":1,"a":2}`, nil, 400, "invalid_request", "/a"},
		{"text/plain", submit, `{}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "Content-Type"},
		{"application/xml", submit, `{}`, []string{"Content-Type", "application/xml"}, 415, "unsupported_media_type", "Content-Type"},
		{"multipart", submit, `{}`, []string{"Content-Type", "multipart/form-data; boundary=x"}, 415, "unsupported_media_type", "Content-Type"},
		{"malformed content type", submit, `{}`, []string{"Content-Type", "application/json; charset"}, 415, "unsupported_media_type", "Content-Type"},
		{"batch as text/plain", submit + ":batch", `{"inputs":[{}]}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "Content-Type"},
		{"Prefer: wait overflowing", submit, `{}`, []string{"Prefer", "wait=18446744074"}, 400, "invalid_request", "Prefer"},
		{"Prefer: wait beyond int", submit, `{}`, []string{"Prefer", "wait=99999999999999999999"}, 400, "invalid_request", "Prefer"},
		{"timeout over the worker's maximum", submit + "?timeout=3h", `{}`, nil, 400, "invalid_request", "timeout"},
		{"timeout not whole seconds", submit + "?timeout=1.5s", `{}`, nil, 400, "invalid_request", "timeout"},
		{"retention over 720h", submit + "?retention=721h", `{}`, nil, 400, "invalid_request", "retention"},
		{"batch timeout over the maximum", submit + ":batch?timeout=3h", `{"inputs":[{}]}`, nil, 400, "invalid_request", "timeout"},
		{"batch with invalid UTF-8", submit + ":batch", "{\"inputs\":[{\"a\":\"\xff\"}]}", nil, 400, "invalid_request", ""},
		{"batch with an unknown member", submit + ":batch", `{"inputs":[{}],"callback_url":"https://x.example/"}`, nil, 400, "invalid_request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.do("POST", tc.path, f.keys["a"], tc.body, tc.header...)
			e := errorOf(body)
			if code != tc.wantStatus || e["code"] != tc.wantCode || e["field"] != nilIfEmpty(tc.wantField) {
				t.Errorf("= %d %v, want %d %s field %q", code, body, tc.wantStatus, tc.wantCode, tc.wantField)
			}
		})
	}
	if jobs := f.storedJobs(); len(jobs) != 0 {
		t.Errorf("refused requests stored %d jobs", len(jobs))
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Numbers are stored as the same value, and the input in the form Kubernetes keeps: what the worker
// gets is what was validated.
func TestSubmitKeepsInputExactly(t *testing.T) {
	f := newFixture(t, nil, testutil.MakeSeekWorker("any").InputSchema(`{"type":"object","properties":{"n":{"type":"integer","maximum":9007199254740993}}}`).Obj())
	body := `{"s":"<é>\u00e9😀","n":9007199254740993,"max":9223372036854775807,"big":100000000000000000000,"f":0.1e1,"g":1.50,"callback_url":"https://app.example/hook"}`
	code, out := f.do("POST", "/v1/workers/any/jobs", f.keys["a"], body)
	if code != http.StatusAccepted {
		t.Fatalf("submit = %d %v", code, out)
	}
	jobs := f.storedJobs()
	want := `{"big":100000000000000000000,"f":1,"g":1.5,"max":9223372036854775807,"n":9007199254740993,"s":"\u003cé\u003eé😀"}`
	if len(jobs) != 1 || string(jobs[0].Spec.Input.Raw) != want {
		t.Fatalf("stored input = %s, want %s", jobs[0].Spec.Input.Raw, want)
	}
	// The schema saw the exact integer: one more is over its maximum.
	code, out = f.do("POST", "/v1/workers/any/jobs", f.keys["a"], `{"n":9007199254740994}`)
	if e := errorOf(out); code != http.StatusBadRequest || e["code"] != "invalid_input" || e["field"] != "/n" {
		t.Errorf("n over the schema's maximum by 1 = %d %v, want 400 naming /n", code, out)
	}
}

func TestSubmitContentTypes(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.api+json",
		"application/x-www-form-urlencoded"} {
		code, body := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"a@b.c"}`, "Content-Type", ct)
		if code != http.StatusAccepted {
			t.Errorf("Content-Type %q = %d %v, want 202", ct, code, body)
		}
	}
}

func TestSubmitTimeoutAndRetention(t *testing.T) {
	f := newFixture(t, nil, testutil.MakeSeekWorker("any").Timeouts(time.Minute, 2*time.Hour).Obj())
	code, body := f.do("POST", "/v1/workers/any/jobs?timeout=90m&retention=72h", f.keys["a"], `{}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit = %d %v", code, body)
	}
	code, batch := f.do("POST", "/v1/workers/any/jobs:batch?timeout=90m&retention=72h", f.keys["a"], `{"inputs":[{"b":1}]}`)
	if code != http.StatusAccepted {
		t.Fatalf("batch = %d %v", code, batch)
	}
	jobs := f.storedJobs()
	if len(jobs) != 2 {
		t.Fatalf("stored %d jobs, want 2", len(jobs))
	}
	for _, sj := range jobs {
		if sj.Spec.Timeout == nil || sj.Spec.Timeout.Duration != 90*time.Minute || sj.Spec.TTLAfterFinished == nil || sj.Spec.TTLAfterFinished.Duration != 72*time.Hour {
			t.Errorf("job %s: timeout %v, ttlAfterFinished %v", sj.Name, sj.Spec.Timeout, sj.Spec.TTLAfterFinished)
		}
	}
	// The options are part of the request an Idempotency-Key stands for.
	if code, _ := f.do("POST", "/v1/workers/any/jobs?timeout=90s", f.keys["a"], `{}`, "Idempotency-Key", "k"); code != http.StatusAccepted {
		t.Fatalf("first = %d", code)
	}
	if code, body := f.do("POST", "/v1/workers/any/jobs?timeout=91s", f.keys["a"], `{}`, "Idempotency-Key", "k"); code != http.StatusUnprocessableEntity {
		t.Errorf("same key, other timeout = %d %v, want 422", code, body)
	}
}

// A batch costs one rate-limit token per job, taken up front: a batch the bucket cannot pay for
// creates nothing.
func TestBatchRateLimit(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	key := f.keys["a-slow-submit"] // 1 request/s, burst 2
	if code, body := f.do("POST", "/v1/workers/email-validator/jobs:batch", key, `{"inputs":[{"email":"a"},{"email":"b"},{"email":"c"}]}`); code != http.StatusBadRequest || errorOf(body)["field"] != "inputs" {
		t.Errorf("batch larger than the burst = %d %v, want 400 naming inputs", code, body)
	}
	if jobs := f.storedJobs(); len(jobs) != 0 {
		t.Fatalf("stored %d jobs", len(jobs))
	}
	f2 := newFixture(t, nil, emailWorker)
	key = f2.keys["a-slow-submit"]
	if code, body := f2.do("POST", "/v1/workers/email-validator/jobs:batch", key, `{"inputs":[{"email":"a"},{"email":"b"}]}`); code != http.StatusAccepted {
		t.Fatalf("batch of the burst = %d %v", code, body)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/workers/email-validator/jobs:batch", strings.NewReader(`{"inputs":[{"email":"c"},{"email":"d"}]}`))
	req.Header.Set("X-Api-Key", key)
	rec := httptest.NewRecorder()
	f2.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("second batch at once = %d %s, Retry-After %q; want 429", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	if jobs := f2.storedJobs(); len(jobs) != 2 {
		t.Errorf("stored %d jobs, want the first batch's 2", len(jobs))
	}
}

func quotaError(obj client.Object) error {
	return apierrors.NewForbidden(schema.GroupResource{Group: "seek-api.com", Resource: "seekjobs"}, obj.GetName(),
		errors.New("exceeded quota: seek-jobs, requested: count/seekjobs.seek-api.com=1, used: count/seekjobs.seek-api.com=2, limited: count/seekjobs.seek-api.com=2"))
}

// When the tenant's ResourceQuota refuses the create, the client gets a 429 it can act on.
func TestQuotaExceeded(t *testing.T) {
	var full bool
	funcs := &interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if _, ok := obj.(*seekv1alpha1.SeekJob); ok && full {
			return quotaError(obj)
		}
		return c.Create(ctx, obj, opts...)
	}}
	f := newFixture(t, funcs, emailWorker)
	code, first := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"a@b.c"}`, "Idempotency-Key", "k1")
	if code != http.StatusAccepted {
		t.Fatalf("submit = %d %v", code, first)
	}
	full = true
	req := httptest.NewRequest(http.MethodPost, "/v1/workers/email-validator/jobs", strings.NewReader(`{"email":"a@b.c"}`))
	req.Header.Set("X-Api-Key", f.keys["a"])
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"code":"active_jobs_limit"`) ||
		!strings.Contains(rec.Body.String(), "ResourceQuota seek-jobs") || strings.Contains(rec.Body.String(), "used:") {
		t.Errorf("submit over quota = %d %s, Retry-After %q; want 429 active_jobs_limit naming the quota, not its counts", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	// A repeat of a request that created its job still gets it.
	if code, again := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"a@b.c"}`, "Idempotency-Key", "k1"); code != http.StatusOK || again["job_uuid"] != first["job_uuid"] {
		t.Errorf("idempotent repeat over quota = %d %v, want 200 with the job", code, again)
	}
	code, out := f.do("POST", "/v1/workers/email-validator/jobs:batch", f.keys["a"], `{"inputs":[{"email":"a@b.c"}]}`)
	items, _ := out["items"].([]any)
	if code != http.StatusAccepted || len(items) != 1 || errorOf(items[0].(map[string]any))["code"] != "active_jobs_limit" {
		t.Errorf("batch over quota = %d %v, want the item refused with active_jobs_limit", code, out)
	}
	if jobs := f.storedJobs(); len(jobs) != 1 {
		t.Errorf("stored %d jobs, want 1", len(jobs))
	}
}

// For a moment after a tenant's quota is created the apiserver refuses creates until it has counted
// the quota: a transient 503 with Retry-After, not a 500.
func TestQuotaNotCountedYet(t *testing.T) {
	funcs := &interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		return apierrors.NewForbidden(schema.GroupResource{Group: "seek-api.com", Resource: "seekjobs"}, obj.GetName(),
			errors.New("status unknown for quota: seek-jobs, resource: count/seekjobs.seek-api.com"))
	}}
	f := newFixture(t, funcs, emailWorker)
	req := httptest.NewRequest(http.MethodPost, "/v1/workers/email-validator/jobs", strings.NewReader(`{"email":"a@b.c"}`))
	req.Header.Set("X-Api-Key", f.keys["a"])
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"code":"unavailable"`) {
		t.Errorf("submit before the quota is counted = %d %s, Retry-After %q; want 503 unavailable", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
}

func TestMetricsNotOnTheAPIPort(t *testing.T) {
	f := newFixture(t, nil)
	if code, body := f.do("GET", "/metrics", "", ""); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the API = %d %v, want 404", code, body)
	}
}

// A key Secret whose rate is not a bounded number fails closed: the holder gets a clear 403.
func TestInvalidKeySecretFailsClosed(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	id := strings.Split(f.keys["a"], "_")[1]
	sec := &corev1.Secret{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: systemNS, Name: apikeys.SecretName(id)}, sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["requestsPerSecond"] = []byte("Inf")
	if err := f.client.Update(context.Background(), sec); err != nil {
		t.Fatal(err)
	}
	if code, body := f.do("GET", "/v1/workers", f.keys["a"], ""); code != http.StatusForbidden || errorOf(body)["code"] != "invalid_api_key" {
		t.Errorf("key with rate Inf = %d %v, want 403 invalid_api_key", code, body)
	}
}
