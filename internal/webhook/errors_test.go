package webhook

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestDescribeTransportError makes real attempts with the delivery client, its resolver replaced by
// a fake one, and checks that the tenant's message names no address while the error itself does.
func TestDescribeTransportError(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ok.Close()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer hang.Close()
	defer close(release) // before hang.Close, which waits for its handlers
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsSrv.Close()
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer hangUp.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	port := func(srv *httptest.Server) uint16 { return serverAddr(t, srv).Port() }
	loopback := Policy{AllowedCIDRs: prefixes("127.0.0.0/8"), AnyPort: true}
	tests := []struct {
		name      string
		policy    Policy
		url       string
		addrs     []string // what receiver.example.com resolves to
		lookupErr error
		want      FailureReason
		wantMsg   string
		// hidden must appear in the error, for the operator, and not in the message.
		hidden string
	}{
		{
			name: "resolves to a private address", policy: Policy{AnyPort: true}, addrs: []string{"10.96.0.12"},
			url: fmt.Sprintf("http://receiver.example.com:%d/hook", port(ok)), hidden: "10.96.0.12",
			want: ReasonDestinationNotAllowed, wantMsg: DestinationNotAllowedMessage,
		},
		{
			name: "resolves to loopback and a private address", policy: Policy{AnyPort: true}, addrs: []string{"127.0.0.1", "fd00::1"},
			url: fmt.Sprintf("http://receiver.example.com:%d/hook", port(ok)), hidden: "fd00::1",
			want: ReasonDestinationNotAllowed, wantMsg: DestinationNotAllowedMessage,
		},
		{
			name: "port refused at connect time", policy: Policy{}, addrs: []string{"127.0.0.1"},
			url: fmt.Sprintf("http://receiver.example.com:%d/hook", port(ok)), hidden: "receiver.example.com",
			want: ReasonDestinationNotAllowed, wantMsg: "destination not allowed: the callback URL's port is not allowed",
		},
		{
			name: "no such host", policy: loopback, lookupErr: &net.DNSError{Err: "no such host", Name: "receiver.example.com", Server: "10.96.0.10:53", IsNotFound: true},
			url: "http://receiver.example.com/hook", hidden: "10.96.0.10",
			want: ReasonDNS, wantMsg: "the callback URL's host could not be resolved: no such host",
		},
		{
			name: "lookup times out", policy: loopback, lookupErr: &net.DNSError{Err: "i/o timeout", Name: "receiver.example.com", Server: "10.96.0.10:53", IsTimeout: true},
			url: "http://receiver.example.com/hook", hidden: "10.96.0.10",
			want: ReasonDNS, wantMsg: "the callback URL's host could not be resolved: the lookup timed out",
		},
		{
			name: "no addresses", policy: loopback,
			url: "http://receiver.example.com/hook", hidden: "receiver.example.com",
			want: ReasonDNS, wantMsg: "the callback URL's host could not be resolved: no addresses",
		},
		{
			name: "connection refused", policy: loopback, addrs: []string{"127.0.0.1"},
			url: fmt.Sprintf("http://receiver.example.com:%d/hook", closedPort), hidden: "127.0.0.1",
			want: ReasonConnectionRefused, wantMsg: "connection refused by the receiver",
		},
		{
			name: "no answer in time", policy: loopback, addrs: []string{"127.0.0.1"},
			url: fmt.Sprintf("http://receiver.example.com:%d/hook", port(hang)), hidden: "receiver.example.com",
			want: ReasonTimeout, wantMsg: "timed out waiting for the receiver's answer",
		},
		{
			name: "certificate not trusted", policy: loopback, addrs: []string{"127.0.0.1"},
			url: fmt.Sprintf("https://receiver.example.com:%d/hook", port(tlsSrv)), hidden: "x509",
			want: ReasonTLS, wantMsg: "TLS handshake failed: the receiver's certificate could not be verified",
		},
		{
			name: "not TLS", policy: loopback, addrs: []string{"127.0.0.1"},
			url: fmt.Sprintf("https://receiver.example.com:%d/hook", port(ok)), hidden: "receiver.example.com",
			want: ReasonTLS, wantMsg: "TLS handshake failed: the receiver does not speak TLS",
		},
		{
			name: "closed without an answer", policy: loopback, addrs: []string{"127.0.0.1"},
			url: fmt.Sprintf("http://receiver.example.com:%d/hook", port(hangUp)), hidden: "receiver.example.com",
			want: ReasonConnection, wantMsg: "the receiver closed the connection without answering",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy := tt.policy
			policy.LookupNetIP = func(context.Context, string, string) ([]netip.Addr, error) {
				var out []netip.Addr
				for _, a := range tt.addrs {
					out = append(out, netip.MustParseAddr(a))
				}
				return out, tt.lookupErr
			}
			client := policy.NewClient(300 * time.Millisecond)
			resp, err := client.Post(tt.url, "application/json", bytes.NewReader([]byte("{}")))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("POST %s succeeded (%d), want an error", tt.url, resp.StatusCode)
			}
			reason, msg := DescribeTransportError(err)
			if reason != tt.want || msg != tt.wantMsg {
				t.Errorf("DescribeTransportError(%q) = %q, %q; want %q, %q", err, reason, msg, tt.want, tt.wantMsg)
			}
			if !strings.Contains(err.Error(), tt.hidden) {
				t.Errorf("error %q does not contain %q, the detail the operator needs", err, tt.hidden)
			}
			for _, leak := range []string{tt.hidden, "127.0.0.1", "10.", "fd00", "receiver.example.com"} {
				if strings.Contains(msg, leak) {
					t.Errorf("message %q contains %q", msg, leak)
				}
			}
		})
	}
}
