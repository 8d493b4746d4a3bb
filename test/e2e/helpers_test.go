package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// newReceiver is a webhook endpoint on the host that hands every request to got and answers 204.
func newReceiver(got func(r *http.Request, body []byte)) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got(r, body)
		w.WriteHeader(http.StatusNoContent)
	}))
}

// verify checks a delivery's signature with the Standard Webhooks library.
func verify(secret string, h http.Header, body []byte) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(body, h)
}
