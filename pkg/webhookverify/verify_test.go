package webhookverify

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const (
	oldSecret   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	newSecret   = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
	otherSecret = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="
	payload     = `{"type":"job.completed","timestamp":"2026-12-01T10:00:03Z","data":{"job_uuid":"job_abc","worker":"echo","status":"completed","response_json":{"ok":true}}}`
)

var now = time.Date(2026, 12, 1, 10, 0, 5, 0, time.UTC)

// signed returns the headers Seek sends: one signature per secret, space-separated.
func signed(t *testing.T, at time.Time, body string, secrets ...string) http.Header {
	t.Helper()
	var sigs []string
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := wh.Sign("msg_1_finished", at, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, sig)
	}
	h := http.Header{}
	h.Set(HeaderID, "msg_1_finished")
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h
}

func TestVerifyBody(t *testing.T) {
	cases := []struct {
		name    string
		secrets []string
		header  http.Header
		body    string
		wantErr error
	}{
		{name: "one secret", secrets: []string{newSecret}, header: signed(t, now, payload, newSecret), body: payload},
		{name: "rotation: a receiver holding the previous secret", secrets: []string{oldSecret}, header: signed(t, now, payload, newSecret, oldSecret), body: payload},
		{name: "rotation: a receiver holding both, sender on the new one only", secrets: []string{newSecret, oldSecret}, header: signed(t, now, payload, newSecret), body: payload},
		{name: "unset previous secret is skipped", secrets: []string{newSecret, ""}, header: signed(t, now, payload, newSecret), body: payload},
		{name: "other secret", secrets: []string{otherSecret}, header: signed(t, now, payload, newSecret, oldSecret), body: payload, wantErr: ErrNoMatchingSignature},
		{name: "tampered body", secrets: []string{newSecret}, header: signed(t, now, payload, newSecret), body: strings.Replace(payload, "true", "false", 1), wantErr: ErrNoMatchingSignature},
		{name: "too old", secrets: []string{newSecret}, header: signed(t, now.Add(-6*time.Minute), payload, newSecret), body: payload, wantErr: ErrOutsideWindow},
		{name: "too new", secrets: []string{newSecret}, header: signed(t, now.Add(6*time.Minute), payload, newSecret), body: payload, wantErr: ErrOutsideWindow},
		{name: "no headers", secrets: []string{newSecret}, header: http.Header{}, body: payload, wantErr: ErrMissingHeaders},
		{name: "timestamp not a number", secrets: []string{newSecret}, header: func() http.Header {
			h := signed(t, now, payload, newSecret)
			h.Set(HeaderTimestamp, "yesterday")
			return h
		}(), body: payload, wantErr: ErrInvalidTimestamp},
		{name: "signed, but not an event", secrets: []string{newSecret}, header: signed(t, now, `{"hello":1}`, newSecret), body: `{"hello":1}`, wantErr: ErrInvalidPayload},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.secrets, WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := v.VerifyBody([]byte(tc.body), tc.header)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if ev.ID != "msg_1_finished" || ev.Type != EventCompleted || ev.Job.ID != "job_abc" || string(ev.Job.Result) != `{"ok":true}` ||
				!ev.Timestamp.Equal(time.Date(2026, 12, 1, 10, 0, 3, 0, time.UTC)) || !ev.SignedAt.Equal(now) {
				t.Errorf("event = %+v, job %+v", ev, ev.Job)
			}
		})
	}
}

func TestToleranceIsConfigurable(t *testing.T) {
	v, err := New([]string{newSecret}, WithClock(func() time.Time { return now }), WithTolerance(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyBody([]byte(payload), signed(t, now.Add(-time.Minute), payload, newSecret)); !errors.Is(err, ErrOutsideWindow) {
		t.Errorf("a minute old with a 30s window: %v", err)
	}
}

func TestNewNeedsAValidSecret(t *testing.T) {
	for _, secrets := range [][]string{nil, {""}, {"whsec_not base64!"}} {
		if _, err := New(secrets); err == nil {
			t.Errorf("New(%q) = nil error", secrets)
		}
	}
}

func TestMiddleware(t *testing.T) {
	v, err := New([]string{newSecret}, WithClock(func() time.Time { return now }), WithMaxBodyBytes(1024))
	if err != nil {
		t.Fatal(err)
	}
	var seen *Event
	var seenBody string
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = EventFrom(r.Context())
		b, _ := io.ReadAll(r.Body)
		seenBody = string(b)
		w.WriteHeader(http.StatusNoContent)
	}))
	serve := func(body string, header http.Header) int {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		for k, vs := range header {
			req.Header[k] = vs
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}

	if code := serve(payload, signed(t, now, payload, newSecret)); code != http.StatusNoContent || seen == nil || seen.Job.ID != "job_abc" || seenBody != payload {
		t.Errorf("a good delivery: %d, event %+v, body %q", code, seen, seenBody)
	}
	seen = nil
	if code := serve(payload, signed(t, now, payload, otherSecret)); code != http.StatusUnauthorized || seen != nil {
		t.Errorf("a forged delivery: %d, event %+v", code, seen)
	}
	big := strings.Repeat("x", 2048)
	if code := serve(big, signed(t, now, big, newSecret)); code != http.StatusRequestEntityTooLarge || seen != nil {
		t.Errorf("a large delivery: %d", code)
	}
	if EventFrom(httptest.NewRequest(http.MethodGet, "/", nil).Context()) != nil {
		t.Error("EventFrom outside the middleware is not nil")
	}
}
