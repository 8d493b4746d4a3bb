//go:build e2e

package e2e

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// newReceiver is a webhook endpoint on the host, on the node's address (pods reach it; callbacks to it
// are allowed), that hands every request to got and answers 204.
func newReceiver(t *testing.T, got func(r *http.Request, body []byte)) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(info.NodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got(r, body)
		w.WriteHeader(http.StatusNoContent)
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// verify checks a delivery's signature with the Standard Webhooks library.
func verify(secret string, h http.Header, body []byte) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(body, h)
}
