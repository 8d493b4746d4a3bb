package webhookverify_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/seek-api/seek-operator/pkg/webhookverify"
)

// A receiver verifies every delivery with the tenant's secret (GET /v1/webhooks/secret) before
// handling its event.
func ExampleVerifier_Middleware() {
	secret := "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" // os.Getenv("SEEK_WEBHOOK_SECRET")

	v, err := webhookverify.New([]string{secret})
	if err != nil {
		log.Fatal(err)
	}
	handler := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev := webhookverify.EventFrom(r.Context())
		fmt.Println(ev.Type, ev.Job.ID, string(ev.Job.Result))
	}))

	// What Seek sends, signed as Seek signs it.
	body := `{"type":"job.completed","timestamp":"2026-12-01T10:00:03Z","data":{"job_uuid":"job_7f3kq","status":"completed","response_json":{"valid":true}}}`
	req := httptest.NewRequest(http.MethodPost, "/hooks/seek", strings.NewReader(body))
	sign(req, secret, body)
	handler.ServeHTTP(httptest.NewRecorder(), req)

	// A forged delivery never reaches the handler.
	forged := httptest.NewRequest(http.MethodPost, "/hooks/seek", strings.NewReader(body))
	sign(forged, "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=", body)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, forged)
	fmt.Println(rec.Code)
	// Output:
	// job.completed job_7f3kq {"valid":true}
	// 401
}

func sign(r *http.Request, secret, body string) {
	wh, _ := standardwebhooks.NewWebhook(secret)
	now := time.Now()
	sig, _ := wh.Sign("msg_1_finished", now, []byte(body))
	r.Header.Set("webhook-id", "msg_1_finished")
	r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	r.Header.Set("webhook-signature", sig)
}
