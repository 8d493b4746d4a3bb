package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSecret(t *testing.T) {
	a, b := mustSecret(t), mustSecret(t)
	if a == b {
		t.Errorf("two secrets are equal: %s", a)
	}
	for _, s := range []string{a, b} {
		if !strings.HasPrefix(s, SecretPrefix) {
			t.Errorf("secret %q lacks prefix %q", s, SecretPrefix)
		}
		key, err := ParseSecret(s)
		if err != nil {
			t.Fatalf("ParseSecret(NewSecret()) error = %v", err)
		}
		if diff := cmp.Diff(32, len(key)); diff != "" {
			t.Errorf("key length mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestParseSecret(t *testing.T) {
	key24 := []byte("0123456789abcdef01234567")
	enc := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		secret  string
		want    []byte
		wantErr string
	}{
		{name: "with prefix", secret: SecretPrefix + enc(key24), want: key24},
		{name: "without prefix", secret: enc(key24), want: key24},
		{name: "64 bytes", secret: SecretPrefix + enc(make([]byte, 64)), want: make([]byte, 64)},
		{name: "empty", secret: "", wantErr: "webhook: secret is empty"},
		{name: "prefix only", secret: SecretPrefix, wantErr: "webhook: secret is empty"},
		{name: "not base64", secret: SecretPrefix + "not*base64", wantErr: "webhook: secret is not whsec_ followed by standard base64: illegal base64 data at input byte 3"},
		{name: "url-safe base64", secret: SecretPrefix + base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe}), wantErr: "is not whsec_ followed by standard base64"},
		{name: "too short", secret: SecretPrefix + enc(make([]byte, 16)), wantErr: "webhook: secret decodes to 16 bytes; it must be 24 to 64"},
		{name: "too long", secret: SecretPrefix + enc(make([]byte, 65)), wantErr: "webhook: secret decodes to 65 bytes; it must be 24 to 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSecret(tt.secret)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSecret() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSecret() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSignKnownAnswer checks Sign against the specification's construction, computed here without
// Sign's helpers, and against the published example (the Standard Webhooks and Svix documentation use
// this secret, id, timestamp and body).
func TestSignKnownAnswer(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		body   = `{"test": 2432232314}`
	)
	timestamp := time.Unix(1614265330, 0)

	independent := func(secret string) string {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			t.Fatal(err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + ".1614265330." + body))
		return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	other := mustSecret(t)

	tests := []struct {
		name    string
		secrets []string
		want    string
	}{
		{name: "published example", secrets: []string{secret}, want: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
		{name: "independent computation", secrets: []string{secret}, want: independent(secret)},
		{name: "two secrets in order", secrets: []string{other, secret}, want: independent(other) + " " + independent(secret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Sign(tt.secrets, id, timestamp, []byte(body))
			if err != nil {
				t.Fatalf("Sign() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Sign() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	good := mustSecret(t)
	now := time.Now()
	tests := []struct {
		name      string
		secrets   []string
		id        string
		timestamp time.Time
		wantErr   string
	}{
		{name: "no secrets", id: "msg_1", timestamp: now, wantErr: "webhook: sign: no secrets"},
		{name: "bad second secret", secrets: []string{good, "whsec_???"}, id: "msg_1", timestamp: now, wantErr: "webhook: sign: secret 2: webhook: secret is not whsec_ followed by standard base64"},
		{name: "empty id", secrets: []string{good}, timestamp: now, wantErr: "webhook: sign: message id is empty"},
		{name: "id with newline", secrets: []string{good}, id: "msg\n1", timestamp: now, wantErr: "webhook: sign: message id has a byte 0x0a that is not printable ASCII"},
		{name: "id with space", secrets: []string{good}, id: "msg 1", timestamp: now, wantErr: "webhook: sign: message id has a byte 0x20"},
		{name: "zero timestamp", secrets: []string{good}, id: "msg_1", wantErr: "webhook: sign: timestamp is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Sign(tt.secrets, tt.id, tt.timestamp, []byte(`{}`))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Sign() error = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), strings.TrimPrefix(good, SecretPrefix)) {
				t.Errorf("Sign() error %q leaks the secret", err)
			}
			h := http.Header{}
			if err := Headers(h, tt.secrets, tt.id, tt.timestamp, []byte(`{}`)); err == nil {
				t.Errorf("Headers() succeeded, want an error")
			}
			if diff := cmp.Diff(http.Header{}, h); diff != "" {
				t.Errorf("Headers() changed h on error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHeadersVerify checks deliveries with the reference Standard Webhooks library.
func TestHeadersVerify(t *testing.T) {
	current, previous, stranger := mustSecret(t), mustSecret(t), mustSecret(t)
	body := []byte(`{"type":"job.completed","timestamp":"2025-01-02T03:04:05Z","data":{"id":"job_1"}}`)
	now := time.Now()

	tests := []struct {
		name     string
		signWith []string
		verifier string
		tamper   func(h http.Header, body []byte) []byte
		want     error // matched with errors.Is; nil for a valid delivery
	}{
		{name: "current secret", signWith: []string{current}, verifier: current},
		{name: "rotation: current verifies", signWith: []string{current, previous}, verifier: current},
		{name: "rotation: previous verifies", signWith: []string{current, previous}, verifier: previous},
		{name: "wrong secret", signWith: []string{current, previous}, verifier: stranger, want: standardwebhooks.ErrNoMatchingSignature},
		{
			name: "body changed", signWith: []string{current}, verifier: current, want: standardwebhooks.ErrNoMatchingSignature,
			tamper: func(_ http.Header, body []byte) []byte {
				return []byte(strings.Replace(string(body), "job_1", "job_2", 1))
			},
		},
		{
			name: "id changed", signWith: []string{current}, verifier: current, want: standardwebhooks.ErrNoMatchingSignature,
			tamper: func(h http.Header, body []byte) []byte { h.Set(HeaderWebhookID, "msg_other"); return body },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if err := Headers(h, tt.signWith, "msg_2Kx9", now, body); err != nil {
				t.Fatalf("Headers() error = %v", err)
			}
			type headers struct{ ID, Timestamp, ContentType string }
			gotHeaders := headers{h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("Content-Type")}
			wantHeaders := headers{"msg_2Kx9", strconv.FormatInt(now.Unix(), 10), "application/json"}
			if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
				t.Errorf("headers mismatch (-want +got):\n%s", diff)
			}
			if got, want := len(strings.Fields(h.Get("webhook-signature"))), len(tt.signWith); got != want {
				t.Errorf("signature header has %d signatures, want %d", got, want)
			}

			delivered := body
			if tt.tamper != nil {
				delivered = tt.tamper(h, body)
			}
			wh, err := standardwebhooks.NewWebhook(tt.verifier)
			if err != nil {
				t.Fatalf("NewWebhook() error = %v", err)
			}
			err = wh.Verify(delivered, h)
			if diff := cmp.Diff(tt.want, err, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("Verify() error = %v; mismatch (-want +got):\n%s", err, diff)
			}
		})
	}
}
