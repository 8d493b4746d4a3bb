package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// newListenCommand is `seekctl webhooks listen`: a webhook receiver for trying callbacks out. It
// prints every delivery, and checks its signature when given the tenant's signing secret.
func newListenCommand() *cobra.Command {
	var addr, secret string
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Receive webhook deliveries and print them, verifying their signatures with --secret",
		Long: "Receive webhook deliveries and print them. With --secret (GET /v1/webhooks/secret), each\n" +
			"signature is verified with the Standard Webhooks reference library. Answers 204, or 401 when\n" +
			"a signature does not verify.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := newReceiver(secret, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Listening on %s\n", l.Addr())
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(l); err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", ":9000", "Address to listen on.")
	cmd.Flags().StringVar(&secret, "secret", "", "The tenant's signing secret (whsec_...), to verify signatures.")
	return cmd
}

// newReceiver answers deliveries and prints one line per delivery: its verification, type and body.
func newReceiver(secret string, out io.Writer) (http.Handler, error) {
	var wh *standardwebhooks.Webhook
	if secret != "" {
		var err error
		if wh, err = standardwebhooks.NewWebhook(secret); err != nil {
			return nil, fmt.Errorf("--secret: %w", err)
		}
	}
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		verdict, status := "unverified", http.StatusNoContent
		if wh != nil {
			if err := wh.Verify(body, r.Header); err != nil {
				verdict, status = "BAD SIGNATURE ("+err.Error()+")", http.StatusUnauthorized
			} else {
				verdict = "signature verified"
			}
		}
		var compact bytes.Buffer
		if json.Compact(&compact, body) != nil {
			compact.Reset()
			compact.Write(body)
		}
		mu.Lock()
		fmt.Fprintf(out, "%s %s %s id=%s: %s\n", r.Method, r.URL.Path, verdict, r.Header.Get("webhook-id"), compact.String())
		mu.Unlock()
		w.WriteHeader(status)
	}), nil
}
