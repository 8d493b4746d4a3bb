package frontend

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzSubmit sends arbitrary bodies, headers and paths to the API: malformed input is a 4xx in the
// error shape, never a 5xx or a panic.
func FuzzSubmit(f *testing.F) {
	fx := newFixture(f, nil, emailWorker)
	key := fx.keys["a"]
	for _, seed := range []struct{ path, body, idem, prefer string }{
		{"/v1/workers/email-validator/jobs", `{"email":"a@b.c"}`, "", ""},
		{"/v1/workers/email-validator/jobs", `{"email":`, "k", "wait=0"},
		{"/v1/workers/email-validator/jobs", `[1]`, strings.Repeat("k", 300), "wait=x"},
		{"/v1/workers/../jobs", `{}`, "", ""},
		{"/v1/workers/email-validator/jobs", "{\"email\":\"\xff\"}", "\x00", "wait=99999999999999999999"},
		{"/v1/jobs/job_%2e%2e", ``, "", ""},
	} {
		f.Add(seed.path, seed.body, seed.idem, seed.prefer)
	}
	f.Fuzz(func(t *testing.T, path, body, idem, prefer string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?") {
			return // not a request line a client could send
		}
		req, err := http.NewRequest("POST", "http://frontend"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("X-Api-Key", key)
		req.Header.Set("Idempotency-Key", idem)
		req.Header.Set("Prefer", prefer)
		if d, err := preferWait(req); err == nil && d > 0 {
			return // a valid wait only makes the fuzzer slow: TestPreferWait covers it
		}
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && !strings.HasPrefix(rec.Body.String(), `{"error":{`) {
			t.Fatalf("POST %s: %d without the error shape: %s", path, rec.Code, rec.Body)
		}
	})
}
