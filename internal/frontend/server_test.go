package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/frontend/apitest"
	"github.com/seek-api/seek-operator/internal/signingkeys"
	"github.com/seek-api/seek-operator/internal/testutil"
)

const systemNS = "seek-system"

type fixture struct {
	t       testing.TB
	openapi *apitest.Validator
	client  client.Client
	server  *Server
	handler http.Handler
	keys    map[string]string // tenant/scopes → key
}

func newFixture(t testing.TB, funcs *interceptor.Funcs, objs ...client.Object) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := seekv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, keys: map[string]string{}, openapi: apitest.NewValidator(t, OpenAPI)}
	for _, k := range []struct {
		name, tenant string
		scopes       []apikeys.Scope
		rps          float64
	}{
		{"a", "tenant-a", []apikeys.Scope{apikeys.ScopeSubmit, apikeys.ScopeRead, apikeys.ScopeCancel}, 1000},
		{"b", "tenant-b", []apikeys.Scope{apikeys.ScopeSubmit, apikeys.ScopeRead, apikeys.ScopeCancel}, 1000},
		{"a-readonly", "tenant-a", []apikeys.Scope{apikeys.ScopeRead}, 1000},
		{"a-slow", "tenant-a", []apikeys.Scope{apikeys.ScopeRead}, 1},
		{"a-slow-submit", "tenant-a", []apikeys.Scope{apikeys.ScopeSubmit}, 1},
		{"a-all", "tenant-a", apikeys.Scopes, 1000},
	} {
		secret, key, err := apikeys.New(systemNS, k.tenant, k.scopes, k.rps)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, secret)
		f.keys[k.name] = key
	}
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithIndex(&seekv1alpha1.SeekJob{}, waitingWorkerField, waitingWorker)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	f.client = b.Build()
	s := &Server{Client: f.client, APIReader: f.client, Keys: &KeyStore{Reader: f.client, Namespace: systemNS}, MaxBodyBytes: 1024,
		SigningKeys: &signingkeys.Store{Client: f.client, Reader: f.client, Live: f.client, Namespace: systemNS, Clock: clocktesting.NewFakeClock(time.Now())},
		queues:      newFinishRates(clocktesting.NewFakeClock(time.Now()), func(*seekv1alpha1.SeekJob) (string, bool) { return "", false })}
	f.server, f.handler = s, s.Handler()
	return f
}

func (f *fixture) do(method, path, key, body string, header ...string) (int, map[string]any) {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	if err := f.openapi.Validate(method, req.URL.Path, rec.Code, rec.Body.Bytes()); err != nil {
		f.t.Errorf("OpenAPI: %v", err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		f.t.Fatalf("%s %s: response is not a JSON object: %q", method, path, rec.Body.String())
	}
	return rec.Code, out
}

func errorOf(body map[string]any) map[string]any {
	e, _ := body["error"].(map[string]any)
	return e
}

var emailWorker = testutil.MakeSeekWorker("email-validator").Description("Validates email addresses").
	InputSchema(`{"type":"object","required":["email"],"properties":{"email":{"type":"string"}}}`).Obj()

func TestSubmitAndGet(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	code, body := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"hello@example.com","callback_url":"https://app.example/hook"}`)
	if code != http.StatusAccepted || body["status"] != "queued" {
		t.Fatalf("submit = %d %v", code, body)
	}
	id := body["job_uuid"].(string)
	if !strings.HasPrefix(id, "job_") || len(id) < 30 {
		t.Errorf("job_uuid = %q, want job_ and an unguessable name", id)
	}
	sj := &seekv1alpha1.SeekJob{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "tenant-a", Name: strings.TrimPrefix(id, "job_")}, sj); err != nil {
		t.Fatalf("the accepted job is not stored: %v", err)
	}
	if string(sj.Spec.Input.Raw) != `{"email":"hello@example.com"}` || sj.Spec.Callback.URL != "https://app.example/hook" {
		t.Errorf("stored spec = input %s, callback %+v", sj.Spec.Input.Raw, sj.Spec.Callback)
	}

	code, got := f.do("GET", "/v1/jobs/"+id, f.keys["a-readonly"], "")
	if code != http.StatusOK || got["job_uuid"] != id || got["worker"] != "email-validator" {
		t.Errorf("get = %d %v", code, got)
	}
	if code, got := f.do("GET", "/v1/jobs/"+id, f.keys["b"], ""); code != http.StatusNotFound || errorOf(got)["code"] != "not_found" {
		t.Errorf("another tenant's get = %d %v, want 404", code, got)
	}
}

func TestSubmitErrors(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	cases := []struct {
		name, path, key, body string
		header                []string
		wantStatus            int
		wantCode, wantField   string
	}{
		{"no key", "/v1/workers/email-validator/jobs", "", `{}`, nil, 401, "unauthenticated", ""},
		{"bad key", "/v1/workers/email-validator/jobs", "seek_aaaaaaaa_" + strings.Repeat("b", 32), `{}`, nil, 401, "unauthenticated", ""},
		{"garbage key", "/v1/workers/email-validator/jobs", "hunter2", `{}`, nil, 401, "unauthenticated", ""},
		{"missing scope", "/v1/workers/email-validator/jobs", "a-readonly", `{"email":"x"}`, nil, 403, "forbidden", ""},
		{"unknown worker", "/v1/workers/nope/jobs", "a", `{}`, nil, 404, "not_found", ""},
		{"malformed JSON", "/v1/workers/email-validator/jobs", "a", `{"email":`, nil, 400, "invalid_request", ""},
		{"schema mismatch", "/v1/workers/email-validator/jobs", "a", `{"email": 42}`, nil, 400, "invalid_input", "/email"},
		{"missing field", "/v1/workers/email-validator/jobs", "a", `{}`, nil, 400, "invalid_input", "/email"},
		{"body too large", "/v1/workers/email-validator/jobs", "a", `{"email":"` + strings.Repeat("x", 2000) + `"}`, nil, 413, "body_too_large", ""},
		{"idempotency key too long", "/v1/workers/email-validator/jobs", "a", `{"email":"x"}`, []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_request", "Idempotency-Key"},
		{"unknown route", "/v2/nothing", "a", ``, nil, 404, "not_found", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := f.keys[tc.key]
			if key == "" {
				key = tc.key
			}
			code, body := f.do("POST", tc.path, key, tc.body, tc.header...)
			e := errorOf(body)
			if code != tc.wantStatus || e["code"] != tc.wantCode || (tc.wantField != "" && e["field"] != tc.wantField) {
				t.Errorf("= %d %v, want %d %s field %q", code, body, tc.wantStatus, tc.wantCode, tc.wantField)
			}
		})
	}
	list := &seekv1alpha1.SeekJobList{}
	if err := f.client.List(context.Background(), list); err != nil || len(list.Items) != 0 {
		t.Errorf("rejected requests stored %d jobs (%v)", len(list.Items), err)
	}
}

func TestIdempotency(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	submit := func(key, body string) (int, map[string]any) {
		return f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], body, "Idempotency-Key", key)
	}
	code1, first := submit("order-1", `{"email":"a@b.c"}`)
	code2, again := submit("order-1", `{ "email": "a@b.c" }`)
	if code1 != http.StatusAccepted || code2 != http.StatusOK || first["job_uuid"] != again["job_uuid"] {
		t.Errorf("same key and body: %d %v then %d %v; want 202 then 200 with the same job", code1, first, code2, again)
	}
	if code, body := submit("order-1", `{"email":"other@b.c"}`); code != http.StatusUnprocessableEntity || errorOf(body)["code"] != "idempotency_conflict" {
		t.Errorf("same key, other body = %d %v, want 422", code, body)
	}
	code, other := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["b"], `{"email":"a@b.c"}`, "Idempotency-Key", "order-1")
	if code != http.StatusAccepted || other["job_uuid"] == first["job_uuid"] {
		t.Errorf("another tenant's same key = %d %v, want its own job", code, other)
	}
}

func TestCancel(t *testing.T) {
	f := newFixture(t, nil, emailWorker, testutil.MakeSeekJob("abc", "tenant-a").Worker("email-validator").Obj())
	if code, body := f.do("POST", "/v1/jobs/job_abc/cancel", f.keys["a-readonly"], ""); code != http.StatusForbidden {
		t.Errorf("cancel without scope = %d %v", code, body)
	}
	if code, _ := f.do("POST", "/v1/jobs/job_abc/cancel", f.keys["b"], ""); code != http.StatusNotFound {
		t.Errorf("another tenant's cancel = %d, want 404", code)
	}
	if code, body := f.do("POST", "/v1/jobs/job_abc/cancel", f.keys["a"], ""); code != http.StatusAccepted {
		t.Errorf("cancel = %d %v", code, body)
	}
	sj := &seekv1alpha1.SeekJob{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "tenant-a", Name: "abc"}, sj); err != nil || sj.Spec.CancelRequest == nil {
		t.Errorf("cancel request not stored: %+v (%v)", sj.Spec.CancelRequest, err)
	}
}

func TestWorkers(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	code, body := f.do("GET", "/v1/workers/email-validator", f.keys["a"], "")
	want := map[string]any{"name": "email-validator", "description": "Validates email addresses",
		"input_schema": map[string]any{"type": "object", "required": []any{"email"}, "properties": map[string]any{"email": map[string]any{"type": "string"}}}}
	if diff := cmp.Diff(want, body); code != http.StatusOK || diff != "" {
		t.Errorf("worker = %d (-want +got):\n%s", code, diff)
	}
	code, body = f.do("GET", "/v1/workers", f.keys["a"], "")
	if workers, _ := body["workers"].([]any); code != http.StatusOK || len(workers) != 1 {
		t.Errorf("workers = %d %v", code, body)
	}
}

func TestApiserverUnavailable(t *testing.T) {
	funcs := &interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		return apierrors.NewServiceUnavailable("etcd is down")
	}}
	f := newFixture(t, funcs, emailWorker)
	req := httptest.NewRequest(http.MethodPost, "/v1/workers/email-validator/jobs", strings.NewReader(`{"email":"a@b.c"}`))
	req.Header.Set("Authorization", "Bearer "+f.keys["a"])
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("= %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestRevokedKey(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	if code, _ := f.do("GET", "/v1/workers", f.keys["a"], ""); code != http.StatusOK {
		t.Fatalf("key does not work before revocation: %d", code)
	}
	id := strings.Split(f.keys["a"], "_")[1]
	secret := &corev1.Secret{}
	secret.Name, secret.Namespace = apikeys.SecretName(id), systemNS
	if err := f.client.Delete(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	if code, _ := f.do("GET", "/v1/workers", f.keys["a"], ""); code != http.StatusUnauthorized {
		t.Errorf("revoked key = %d, want 401", code)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	codes := []int{}
	var retryAfter string
	for range 3 {
		req := httptest.NewRequest(http.MethodGet, "/v1/workers", nil)
		req.Header.Set("X-Api-Key", f.keys["a-slow"])
		rec := httptest.NewRecorder()
		f.handler.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
		retryAfter = rec.Header().Get("Retry-After")
	}
	// 1 request/s with a burst of 2: the third request in a row is refused for about a second.
	if diff := cmp.Diff([]int{200, 200, 429}, codes); diff != "" || retryAfter != "1" {
		t.Errorf("codes (-want +got):\n%s Retry-After %q", diff, retryAfter)
	}
	if code, _ := f.do("GET", "/v1/workers", f.keys["a"], ""); code != http.StatusOK {
		t.Errorf("another key of the same tenant was limited too: %d", code)
	}
}

func TestListJobs(t *testing.T) {
	created := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	f := newFixture(t, nil, emailWorker,
		testutil.MakeSeekJob("one", "tenant-a").Worker("email-validator").Created(created).Obj(),
		testutil.MakeSeekJob("two", "tenant-a").Worker("email-validator").Created(created.Add(time.Second)).Obj(),
		testutil.MakeSeekJob("theirs", "tenant-b").Worker("email-validator").Created(created).Obj(),
	)
	code, body := f.do("GET", "/v1/jobs?limit=1", f.keys["a"], "")
	jobs, _ := body["jobs"].([]any)
	if code != http.StatusOK || len(jobs) != 1 || jobs[0].(map[string]any)["job_uuid"] != "job_two" || body["next_cursor"] == nil {
		t.Fatalf("first page = %d %v", code, body)
	}
	code, body = f.do("GET", "/v1/jobs?limit=1&cursor="+body["next_cursor"].(string), f.keys["a"], "")
	jobs, _ = body["jobs"].([]any)
	if code != http.StatusOK || len(jobs) != 1 || jobs[0].(map[string]any)["job_uuid"] != "job_one" || body["next_cursor"] != nil {
		t.Errorf("last page = %d %v", code, body)
	}
	for query, field := range map[string]string{"limit=0": "limit", "limit=101": "limit", "status=done": "status", "cursor=zzz": "cursor"} {
		if code, body := f.do("GET", "/v1/jobs?"+query, f.keys["a"], ""); code != http.StatusBadRequest || errorOf(body)["field"] != field {
			t.Errorf("%s = %d %v, want 400 naming %s", query, code, body, field)
		}
	}
}

func TestPreferWait(t *testing.T) {
	done := testutil.MakeSeekJob("done", "tenant-a").Worker("email-validator").State(seekv1alpha1.JobStateCompleted).Result(`{"ok":true}`).Obj()
	pending := testutil.MakeSeekJob("pending", "tenant-a").Worker("email-validator").State(seekv1alpha1.JobStateRunning).Obj()
	f := newFixture(t, nil, emailWorker, done, pending)

	start := time.Now()
	code, body := f.do("GET", "/v1/jobs/job_pending", f.keys["a"], "", "Prefer", "wait=1")
	if code != http.StatusOK || body["status"] != "running" || time.Since(start) < time.Second {
		t.Errorf("waiting on an unfinished job = %d %v after %s; want its current state after 1s", code, body, time.Since(start))
	}
	go func() { // the job finishes while a request waits
		time.Sleep(300 * time.Millisecond)
		sj := pending.DeepCopy()
		_ = f.client.Get(context.Background(), client.ObjectKeyFromObject(sj), sj)
		sj.Status.State = seekv1alpha1.JobStateFailed
		_ = f.client.Update(context.Background(), sj)
	}()
	start = time.Now()
	code, body = f.do("GET", "/v1/jobs/job_pending", f.keys["a"], "", "Prefer", "wait=10")
	if code != http.StatusOK || body["status"] != "failed" || time.Since(start) >= 10*time.Second { // it must not sit out the whole wait
		t.Errorf("job finishing during the wait = %d %v after %s", code, body, time.Since(start))
	}
	if code, body := f.do("GET", "/v1/jobs/job_done", f.keys["a"], "", "Prefer", "wait=60"); code != http.StatusOK || body["status"] != "completed" {
		t.Errorf("finished job = %d %v", code, body)
	}
	for _, bad := range []string{"wait=61", "wait=-1", "wait=soon"} {
		if code, body := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"a@b.c"}`, "Prefer", bad); code != http.StatusBadRequest || errorOf(body)["field"] != "Prefer" {
			t.Errorf("Prefer: %s = %d %v, want 400", bad, code, body)
		}
	}
	list := &seekv1alpha1.SeekJobList{}
	if err := f.client.List(context.Background(), list, client.InNamespace("tenant-a")); err != nil || len(list.Items) != 2 {
		t.Errorf("rejected submissions stored jobs: %d (%v)", len(list.Items), err)
	}
	// A submission whose job does not finish in time is 202 with its current state.
	if code, body := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"a@b.c"}`, "Prefer", "wait=1"); code != http.StatusAccepted || body["status"] != "queued" {
		t.Errorf("submit with wait = %d %v, want 202 queued", code, body)
	}
}

func TestSubmitBatch(t *testing.T) {
	f := newFixture(t, nil, emailWorker)
	body := `{"inputs": [{"email":"a@b.c"}, {"email": 7}, [1], {"email":"d@e.f","callback_url":"https://x.example/"}]}`
	code, out := f.do("POST", "/v1/workers/email-validator/jobs:batch", f.keys["a"], body, "Idempotency-Key", "batch-1")
	items, _ := out["items"].([]any)
	if code != http.StatusAccepted || len(items) != 4 {
		t.Fatalf("batch = %d %v", code, out)
	}
	item := func(i int) map[string]any { return items[i].(map[string]any) }
	if item(0)["status"] != "queued" || item(3)["status"] != "queued" || item(0)["job_uuid"] == item(3)["job_uuid"] {
		t.Errorf("accepted items = %v, %v", item(0), item(3))
	}
	if e := errorOf(item(1)); e["code"] != "invalid_input" || e["field"] != "/email" {
		t.Errorf("item 1 = %v, want invalid_input naming /email", item(1))
	}
	if e := errorOf(item(2)); e["code"] != "invalid_request" {
		t.Errorf("item 2 = %v, want invalid_request", item(2))
	}
	list := &seekv1alpha1.SeekJobList{}
	if err := f.client.List(context.Background(), list); err != nil || len(list.Items) != 2 {
		t.Errorf("stored %d jobs (%v), want 2", len(list.Items), err)
	}
	_, again := f.do("POST", "/v1/workers/email-validator/jobs:batch", f.keys["a"], body, "Idempotency-Key", "batch-1")
	againItems, _ := again["items"].([]any)
	if len(againItems) != 4 || againItems[0].(map[string]any)["job_uuid"] != item(0)["job_uuid"] || againItems[3].(map[string]any)["job_uuid"] != item(3)["job_uuid"] {
		t.Errorf("repeated batch = %v, want the same jobs", again)
	}
	for name, bad := range map[string]string{
		"empty":     `{"inputs": []}`,
		"too many":  `{"inputs": [` + strings.TrimSuffix(strings.Repeat(`{},`, MaxBatchItems+1), ",") + `]}`,
		"not batch": `[{}]`,
	} {
		if code, out := f.do("POST", "/v1/workers/email-validator/jobs:batch", f.keys["a"], bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %v, want 400", name, code, out)
		}
	}
}

func TestPanicIsA500(t *testing.T) {
	h := instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/jobs", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"code":"internal"`) {
		t.Errorf("panic answered %d %s, want a 500 with the error shape", rec.Code, rec.Body)
	}
}

func TestWebhookSecret(t *testing.T) {
	f := newFixture(t, nil)
	code, first := f.do("GET", "/v1/webhooks/secret", f.keys["a-all"], "")
	secret, _ := first["secret"].(string)
	if code != http.StatusOK || !strings.HasPrefix(secret, "whsec_") || first["previous_secret_expires_at"] != nil {
		t.Fatalf("GET secret = %d %v", code, first)
	}
	if _, again := f.do("GET", "/v1/webhooks/secret", f.keys["a-all"], ""); again["secret"] != secret {
		t.Errorf("second read = %v, want the same secret", again)
	}
	if code, _ := f.do("GET", "/v1/webhooks/secret", f.keys["a"], ""); code != http.StatusForbidden {
		t.Errorf("without the webhooks scope = %d, want 403", code)
	}
	code, rotated := f.do("POST", "/v1/webhooks/secret:rotate", f.keys["a-all"], "")
	if code != http.StatusOK || rotated["secret"] == secret || rotated["previous_secret_expires_at"] == nil {
		t.Errorf("rotate = %d %v", code, rotated)
	}
	// Tenants have separate secrets.
	sec := &corev1.Secret{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: systemNS, Name: signingkeys.Name("tenant-a")}, sec); err != nil {
		t.Fatal(err)
	}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: systemNS, Name: signingkeys.Name("tenant-b")}, sec); !apierrors.IsNotFound(err) {
		t.Errorf("tenant-b's secret exists before it asked: %v", err)
	}
}

func TestSubmitCallbackURL(t *testing.T) {
	f := newFixture(t, nil, emailWorker.DeepCopy())
	for _, url := range []string{"http://127.0.0.1/hook", "http://169.254.169.254/", "ftp://x.example/", "https://a@b.example/", "http://[::1]/", "http://localhost/", "not a url"} {
		code, body := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], fmt.Sprintf(`{"email":"a@b.c","callback_url":%q}`, url))
		if e := errorOf(body); code != http.StatusBadRequest || e["field"] != "callback_url" || e["code"] != "invalid_callback_url" {
			t.Errorf("callback_url %q: %d %v, want 400 naming callback_url", url, code, body)
		}
	}
	code, body := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"a@b.c","callback_url":"https://app.example/hook"}`)
	if cb, _ := body["callback"].(map[string]any); code != http.StatusAccepted || cb["state"] != "waiting" || cb["url"] != "https://app.example/hook" {
		t.Errorf("submit = %d %v", code, body)
	}
}

func TestRedeliver(t *testing.T) {
	ledger := func(state seekv1alpha1.CallbackState) *testutil.SeekJobWrapper {
		return testutil.MakeSeekJob("hooked", "tenant-a").Worker("email-validator").Callback("https://app.example/hook").
			State(seekv1alpha1.JobStateCompleted).CallbackLedger(state, seekv1alpha1.CallbackDelivery{
			Event: seekv1alpha1.CallbackEventFinished, ID: "msg", Type: "job.completed", State: state, Attempts: 1})
	}
	cases := []struct {
		name     string
		sj       *seekv1alpha1.SeekJob
		wantCode int
	}{
		{"delivered: again", ledger(seekv1alpha1.CallbackDelivered).Obj(), http.StatusAccepted},
		{"failed: again", ledger(seekv1alpha1.CallbackFailed).Obj(), http.StatusAccepted},
		{"still pending", ledger(seekv1alpha1.CallbackPending).Obj(), http.StatusConflict},
		{"running", testutil.MakeSeekJob("hooked", "tenant-a").Worker("email-validator").Callback("https://app.example/hook").State(seekv1alpha1.JobStateRunning).Obj(), http.StatusConflict},
		{"no callback", testutil.MakeSeekJob("hooked", "tenant-a").Worker("email-validator").State(seekv1alpha1.JobStateCompleted).Obj(), http.StatusConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil, tc.sj)
			code, body := f.do("POST", "/v1/jobs/job_hooked/callback:redeliver", f.keys["a"], "")
			if code != tc.wantCode {
				t.Fatalf("redeliver = %d %v, want %d", code, body, tc.wantCode)
			}
			got := &seekv1alpha1.SeekJob{}
			if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "tenant-a", Name: "hooked"}, got); err != nil {
				t.Fatal(err)
			}
			if asked := got.Annotations[seekv1alpha1.AnnotationRedeliver] != ""; asked != (tc.wantCode == http.StatusAccepted) {
				t.Errorf("redeliver annotation = %q", got.Annotations[seekv1alpha1.AnnotationRedeliver])
			}
			if code, _ := f.do("POST", "/v1/jobs/job_hooked/callback:redeliver", f.keys["b"], ""); code != http.StatusNotFound {
				t.Errorf("another tenant's redeliver = %d, want 404", code)
			}
		})
	}
}

// TestSubmitBatchParallelOrderAndFailures: a batch's creates run in parallel, bounded, and finish in
// any order; the answer still has item i for input i, and items that fail mid-batch (invalid input,
// the tenant's quota, an unavailable apiserver) fail alone, each with its own error.
func TestSubmitBatchParallelOrderAndFailures(t *testing.T) {
	const n = 150
	var inFlight, maxInFlight atomic.Int64
	var attempts sync.Map
	funcs := &interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		sj, ok := obj.(*seekv1alpha1.SeekJob)
		if !ok {
			return c.Create(ctx, obj, opts...)
		}
		var in struct {
			Email string `json:"email"`
		}
		if err := json.Unmarshal(sj.Spec.Input.Raw, &in); err != nil {
			return err
		}
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(in.Email, "u"), "@b.c"))
		if err != nil {
			return err
		}
		cur := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := maxInFlight.Load(); cur > m && !maxInFlight.CompareAndSwap(m, cur); m = maxInFlight.Load() {
		}
		time.Sleep(time.Duration((i*7919)%13) * time.Millisecond) // later inputs often finish first
		if n, _ := attempts.LoadOrStore(i, new(atomic.Int64)); i%6 == 4 && n.(*atomic.Int64).Add(1) <= 2 {
			return quotaConflict(sj.Name) // twice: then admitted
		}
		switch {
		case i%5 == 2:
			return apierrors.NewForbidden(seekv1alpha1.GroupVersion.WithResource("seekjobs").GroupResource(), sj.Name,
				errors.New("exceeded quota: seek-jobs, requested: count/seekjobs.seek-api.com=1, used: count/seekjobs.seek-api.com=10, limited: count/seekjobs.seek-api.com=10"))
		case i%7 == 3:
			return apierrors.NewServiceUnavailable("etcd is away")
		}
		return c.Create(ctx, obj, opts...)
	}}
	f := newFixture(t, funcs, emailWorker)
	inputs := make([]string, n)
	for i := range inputs {
		inputs[i] = fmt.Sprintf(`{"email":"u%d@b.c"}`, i)
		if i%11 == 0 {
			inputs[i] = `{"email":7}`
		}
	}
	code, out := f.do("POST", "/v1/workers/email-validator/jobs:batch", f.keys["a"], `{"inputs":[`+strings.Join(inputs, ",")+`]}`)
	items, _ := out["items"].([]any)
	if code != http.StatusAccepted || len(items) != n {
		t.Fatalf("batch = %d with %d items, want 202 with %d", code, len(items), n)
	}
	stored := &seekv1alpha1.SeekJobList{}
	if err := f.client.List(context.Background(), stored, client.InNamespace("tenant-a")); err != nil {
		t.Fatal(err)
	}
	inputOf := map[string]string{}
	for _, sj := range stored.Items {
		inputOf["job_"+sj.Name] = string(sj.Spec.Input.Raw)
	}
	created := 0
	for i, raw := range items {
		item := raw.(map[string]any)
		var want string
		switch {
		case i%11 == 0:
			want = "invalid_input"
		case i%5 == 2:
			want = "active_jobs_limit"
		case i%7 == 3:
			want = "unavailable"
		}
		if want != "" {
			if e := errorOf(item); e["code"] != want {
				t.Errorf("item %d = %v, want error %s", i, item, want)
			}
			continue
		}
		created++
		id, _ := item["job_uuid"].(string)
		if got := inputOf[id]; got != fmt.Sprintf(`{"email":"u%d@b.c"}`, i) {
			t.Errorf("item %d is job %q with input %q, want the job of input %d", i, id, got, i)
		}
	}
	if len(stored.Items) != created {
		t.Errorf("stored %d jobs, answered %d", len(stored.Items), created)
	}
	if n, _ := attempts.Load(4); n.(*atomic.Int64).Load() != 3 {
		t.Errorf("input 4 was created in %d attempts, want 3 (two conflicts)", n.(*atomic.Int64).Load())
	}
	if m := maxInFlight.Load(); m < 2 || m > batchConcurrency {
		t.Errorf("at most %d creates ran at once, want 2 to %d", m, batchConcurrency)
	}
}

// quotaConflict is the apiserver's answer to a create whose ResourceQuota update lost a race.
func quotaConflict(name string) error {
	return apierrors.NewConflict(corev1.Resource("resourcequotas"), "seek-jobs", errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// TestSubmitQuotaConflict: a create refused because its quota update conflicted stored nothing, so it
// is tried again; still refused after a few tries, it is a 503 to retry, not a 500.
func TestSubmitQuotaConflict(t *testing.T) {
	var conflicts atomic.Int64
	conflicts.Store(2)
	funcs := &interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		if conflicts.Add(-1) >= 0 {
			return quotaConflict(obj.GetName())
		}
		return c.Create(ctx, obj, opts...)
	}}
	f := newFixture(t, funcs, emailWorker)
	if code, body := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"a@b.c"}`); code != http.StatusAccepted || body["status"] != "queued" {
		t.Errorf("submit after two conflicts = %d %v, want 202", code, body)
	}
	conflicts.Store(1000)
	code, body := f.do("POST", "/v1/workers/email-validator/jobs", f.keys["a"], `{"email":"a@b.c"}`)
	if e := errorOf(body); code != http.StatusServiceUnavailable || e["code"] != "unavailable" {
		t.Errorf("submit that always conflicts = %d %v, want 503 unavailable", code, body)
	}
	list := &seekv1alpha1.SeekJobList{}
	if err := f.client.List(context.Background(), list, client.InNamespace("tenant-a")); err != nil || len(list.Items) != 1 {
		t.Errorf("stored %d jobs (%v), want 1", len(list.Items), err)
	}
}
