package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret, as in the Standard Webhooks specification.
const SecretPrefix = "whsec_"

// Standard Webhooks 1.0 header names. http.Header canonicalizes them (Webhook-Id, ...); header names
// are case-insensitive.
const (
	// HeaderWebhookID carries the message id, the same on every attempt of one message.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp carries the attempt's time in Unix seconds.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature carries the space-separated "v1,<signature>" list.
	HeaderWebhookSignature = "webhook-signature"
)

const (
	// secretSize is the number of random bytes NewSecret generates.
	secretSize = 32
	// The Standard Webhooks specification asks for keys of 24 to 64 bytes.
	minSecretSize = 24
	maxSecretSize = 64
)

// NewSecret returns a new signing secret: SecretPrefix followed by the standard base64 encoding of 32
// random bytes.
func NewSecret() (string, error) {
	key := make([]byte, secretSize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("webhook: generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// ParseSecret returns the key in a signing secret: s without SecretPrefix (which, as in the Standard
// Webhooks libraries, is optional), decoded from standard base64. The key must be 24 to 64 bytes long,
// as the specification requires. Errors never repeat the secret.
func ParseSecret(s string) ([]byte, error) {
	encoded := strings.TrimPrefix(s, SecretPrefix)
	if encoded == "" {
		return nil, errors.New("webhook: secret is empty")
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// base64.CorruptInputError holds only an offset, so this does not leak the secret.
		return nil, fmt.Errorf("webhook: secret is not %s followed by standard base64: %w", SecretPrefix, err)
	}
	if len(key) < minSecretSize || len(key) > maxSecretSize {
		return nil, fmt.Errorf("webhook: secret decodes to %d bytes; it must be %d to %d", len(key), minSecretSize, maxSecretSize)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message: one "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" per secret (timestamp in Unix seconds), space-separated, in the order given
// (the current secret first, then the previous one while rotating). There must be at least one
// secret, id must be a non-empty header-safe string (printable ASCII without spaces) and timestamp
// must be set.
func Sign(secrets []string, id string, timestamp time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", errors.New("webhook: sign: no secrets")
	}
	if err := checkMessageID(id); err != nil {
		return "", fmt.Errorf("webhook: sign: %w", err)
	}
	if timestamp.IsZero() {
		return "", errors.New("webhook: sign: timestamp is not set")
	}
	signed := signedContent(id, timestamp, body)
	signatures := make([]string, len(secrets))
	for i, secret := range secrets {
		key, err := ParseSecret(secret)
		if err != nil {
			return "", fmt.Errorf("webhook: sign: secret %d: %w", i+1, err)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(signed)
		signatures[i] = "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	return strings.Join(signatures, " "), nil
}

// signedContent is what Standard Webhooks signs: "<id>.<unix seconds>.<body>".
func signedContent(id string, timestamp time.Time, body []byte) []byte {
	b := make([]byte, 0, len(id)+len(body)+22)
	b = append(b, id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, timestamp.Unix(), 10)
	b = append(b, '.')
	return append(b, body...)
}

func checkMessageID(id string) error {
	if id == "" {
		return errors.New("message id is empty")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("message id has a byte 0x%02x that is not printable ASCII", c)
		}
	}
	return nil
}

// Headers signs a delivery and sets its Standard Webhooks headers on h: webhook-id, webhook-timestamp
// (Unix seconds), webhook-signature (see Sign) and Content-Type: application/json. On error h is left
// unchanged.
func Headers(h http.Header, secrets []string, id string, timestamp time.Time, body []byte) error {
	signature, err := Sign(secrets, id, timestamp, body)
	if err != nil {
		return err
	}
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	h.Set(HeaderWebhookSignature, signature)
	h.Set("Content-Type", "application/json")
	return nil
}
