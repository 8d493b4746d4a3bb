package frontend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// FuzzSubmit sends arbitrary bodies, headers, queries and paths to the API: malformed input is a 4xx in
// the error shape that stores nothing, never a 5xx or a panic; an accepted job's stored input is valid
// UTF-8 and was declared JSON (or undeclared).
func FuzzSubmit(f *testing.F) {
	fx := newFixture(f, nil, emailWorker)
	key := fx.keys["a"]
	for _, seed := range []struct{ path, query, body, idem, prefer, contentType string }{
		{"/v1/workers/email-validator/jobs", "", `{"email":"a@b.c"}`, "", "", ""},
		{"/v1/workers/email-validator/jobs", "", `{"email":`, "k", "wait=0", "application/json"},
		{"/v1/workers/email-validator/jobs", "", `[1]`, strings.Repeat("k", 300), "wait=x", ""},
		{"/v1/workers/../jobs", "", `{}`, "", "", ""},
		{"/v1/workers/email-validator/jobs", "", "{\"email\":\"\xff\"}", "\x00", "wait=99999999999999999999", ""},
		{"/v1/jobs/job_%2e%2e", "", ``, "", "", ""},
		// The hostile cases of issue 10.
		{"/v1/workers/email-validator/jobs", "", `{"email":"a@b.c","n":1e999}`, "", "", ""},
		{"/v1/workers/email-validator/jobs", "", `{"email":"a@b.c","n":12345678901234567890}`, "", "", ""},
		{"/v1/workers/email-validator/jobs", "", `{"email":"a@b.c","n":9007199254740993}`, "", "", ""},
		{"/v1/workers/email-validator/jobs", "", `{"email":"\ud800"}`, "", "", ""},
		{"/v1/workers/email-validator/jobs", "", `{"email":"a","email":"b"}`, "", "", ""},
		{"/v1/workers/email-validator/jobs", "", `{"email":"a@b.c"}`, "", "", "text/plain"},
		{"/v1/workers/email-validator/jobs", "", `{"email":"a@b.c"}`, "", "", "application/xml"},
		{"/v1/workers/email-validator/jobs", "", `{"email":"a@b.c"}`, "", "", "application/x-www-form-urlencoded"},
		{"/v1/workers/email-validator/jobs", "", `{"email":"a@b.c"}`, "", "wait=18446744074", ""},
		{"/v1/workers/email-validator/jobs", "timeout=99999999999h", `{"email":"a@b.c"}`, "", "", ""},
		{"/v1/workers/email-validator/jobs", "timeout=30s&retention=1h", `{"email":"a@b.c"}`, "", "", ""},
		{"/v1/workers/email-validator/jobs:batch", "", `{"inputs":[{"email":"a@b.c"},{"email":1e999}]}`, "", "", ""},
		{"/v1/workers/email-validator/jobs:batch", "", "{\"inputs\":[{\"email\":\"\xff\"}]}", "", "", ""},
	} {
		f.Add(seed.path, seed.query, seed.body, seed.idem, seed.prefer, seed.contentType)
	}
	f.Fuzz(func(t *testing.T, path, query, body, idem, prefer, contentType string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?") || strings.ContainsAny(query, " \r\n\t#") {
			return // not a request line a client could send
		}
		target := "http://frontend" + path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("X-Api-Key", key)
		req.Header.Set("Idempotency-Key", idem)
		req.Header.Set("Prefer", prefer)
		req.Header.Set("Content-Type", contentType)
		if d, err := preferWait(req); err == nil && d > 0 {
			return // a valid wait only makes the fuzzer slow: TestPreferWait covers it
		}
		before := map[string]bool{}
		for _, sj := range jobsOf(t, fx) {
			before[sj.Name] = true
		}
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && !strings.HasPrefix(rec.Body.String(), `{"error":{`) {
			t.Fatalf("POST %s: %d without the error shape: %s", path, rec.Code, rec.Body)
		}
		for _, sj := range jobsOf(t, fx) {
			if before[sj.Name] {
				continue
			}
			switch {
			case rec.Code >= 400:
				t.Fatalf("POST %s %q: %d, yet job %s was stored", path, body, rec.Code, sj.Name)
			case checkContentType(req) != nil:
				t.Fatalf("Content-Type %q accepted", contentType)
			case !utf8.Valid(sj.Spec.Input.Raw):
				t.Fatalf("stored input %q is not valid UTF-8", sj.Spec.Input.Raw)
			}
		}
	})
}

func jobsOf(t *testing.T, fx *fixture) []seekv1alpha1.SeekJob {
	list := &seekv1alpha1.SeekJobList{}
	if err := fx.client.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}
