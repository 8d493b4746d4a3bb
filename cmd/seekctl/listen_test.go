package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seek-api/seek-operator/internal/webhook"
)

func TestReceiverVerifiesSignatures(t *testing.T) {
	secret, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	other, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type": "job.completed", "data": {"job_uuid": "job_a"}}`)
	for _, tc := range []struct {
		name, receiverSecret, signWith string
		wantStatus                     int
		wantLine                       string
	}{
		{"verified", secret, secret, http.StatusNoContent, `POST /hook signature verified id=msg_1: {"type":"job.completed","data":{"job_uuid":"job_a"}}`},
		{"wrong secret", secret, other, http.StatusUnauthorized, "POST /hook BAD SIGNATURE"},
		{"no secret to check with", "", other, http.StatusNoContent, "POST /hook unverified id=msg_1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			h, err := newReceiver(tc.receiverSecret, &out)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
			if err := webhook.Headers(req.Header, []string{tc.signWith}, "msg_1", time.Now(), body); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || !strings.HasPrefix(out.String(), tc.wantLine) {
				t.Errorf("status %d, printed %q; want %d, %q...", rec.Code, out.String(), tc.wantStatus, tc.wantLine)
			}
		})
	}
}

func TestReceiverRejectsABadSecret(t *testing.T) {
	if _, err := newReceiver("not-a-secret", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--secret") {
		t.Fatalf("err = %v, want one naming --secret", err)
	}
}
