// Package webhookverify checks that a webhook delivery comes from Seek, per Standard Webhooks 1.0, and
// parses its event. A receiver needs three lines:
//
//	v, err := webhookverify.New([]string{os.Getenv("SEEK_WEBHOOK_SECRET")})
//	...
//	http.Handle("/hooks/seek", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		event := webhookverify.EventFrom(r.Context()) // verified: event.Type, event.Job
//	})))
//
// or, without the middleware, event, err := v.Verify(r).
//
// A delivery is accepted when one of its signatures (webhook-signature holds one per secret the
// tenant signs with) is the HMAC-SHA256 of "webhook-id.webhook-timestamp.body" under one of the
// verifier's secrets, computed by the Standard Webhooks reference library, and its webhook-timestamp is
// within the replay window of now (5 minutes either way by default). During a secret rotation Seek
// signs with both the previous and the new secret for 24 hours, so a receiver still holding the
// previous secret keeps verifying; give the verifier both (New([]string{current, previous})) to switch
// over with no gap at all.
//
// Deliveries are at least once: retries and redeliveries carry the same Event.ID, on which receivers
// deduplicate. The window bounds how long a captured delivery can be replayed; it does not
// deduplicate.
package webhookverify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/seek-api/seek-operator/pkg/client"
)

// Standard Webhooks header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Defaults of a Verifier.
const (
	// DefaultTolerance is the replay window: how far webhook-timestamp may be from now, either way.
	DefaultTolerance = 5 * time.Minute
	// DefaultMaxBodyBytes bounds a delivery's body; Seek's are a few kilobytes (a result is at most 4,096
	// bytes).
	DefaultMaxBodyBytes = 1 << 20
)

// Event types, Event.Type.
const (
	EventStarted   = "job.started"
	EventCompleted = "job.completed"
	EventFailed    = "job.failed"
	EventCanceled  = "job.canceled"
	EventTimedOut  = "job.timed_out"
)

// Errors of Verify, wrapped with detail; errors.Is tells them apart.
var (
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature is absent.
	ErrMissingHeaders = errors.New("missing Standard Webhooks headers")
	// ErrInvalidTimestamp: webhook-timestamp is not Unix seconds.
	ErrInvalidTimestamp = errors.New("invalid webhook-timestamp")
	// ErrOutsideWindow: webhook-timestamp is further from now than the tolerance.
	ErrOutsideWindow = errors.New("webhook-timestamp outside the replay window")
	// ErrNoMatchingSignature: no signature matches any of the secrets.
	ErrNoMatchingSignature = errors.New("no signature matches")
	// ErrBodyTooLarge: the body exceeds the verifier's bound.
	ErrBodyTooLarge = errors.New("body too large")
	// ErrInvalidPayload: the signed body is not a Seek event.
	ErrInvalidPayload = errors.New("invalid event payload")
)

// Event is a verified delivery.
type Event struct {
	// ID is the delivery's webhook-id: the same on every retry and redelivery of one event.
	ID string `json:"-"`
	// Type is one of the Event constants.
	Type string `json:"type"`
	// Timestamp is when the event happened.
	Timestamp time.Time `json:"timestamp"`
	// Job is the job, as GET /v1/jobs/{id} showed it when the event happened.
	Job *client.Job `json:"data"`
	// SignedAt is the attempt's webhook-timestamp.
	SignedAt time.Time `json:"-"`
}

// Verifier verifies deliveries signed with any of its secrets. It is safe for concurrent use.
type Verifier struct {
	hooks        []*standardwebhooks.Webhook
	tolerance    time.Duration
	maxBodyBytes int64
	now          func() time.Time
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithTolerance sets the replay window (DefaultTolerance otherwise).
func WithTolerance(d time.Duration) Option { return func(v *Verifier) { v.tolerance = d } }

// WithMaxBodyBytes bounds a delivery's body (DefaultMaxBodyBytes otherwise).
func WithMaxBodyBytes(n int64) Option { return func(v *Verifier) { v.maxBodyBytes = n } }

// WithClock sets what "now" is, for tests.
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// New returns a verifier accepting signatures by any of secrets (whsec_..., as GET
// /v1/webhooks/secret shows them; empty strings are skipped, so an unset "previous secret" variable
// can be passed as is). At least one secret is required.
func New(secrets []string, opts ...Option) (*Verifier, error) {
	v := &Verifier{tolerance: DefaultTolerance, maxBodyBytes: DefaultMaxBodyBytes, now: time.Now}
	for i, s := range secrets {
		if s == "" {
			continue
		}
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			// The library's error may quote no secret; it says what is wrong with the encoding.
			return nil, fmt.Errorf("webhookverify: secret %d: %w", i+1, err)
		}
		v.hooks = append(v.hooks, wh)
	}
	if len(v.hooks) == 0 {
		return nil, errors.New("webhookverify: no secret")
	}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// Verify reads the request's body (bounded), verifies it and returns the event. It leaves r.Body
// readable again, holding the same bytes.
func (v *Verifier) Verify(r *http.Request) (*Event, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, v.maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("webhookverify: read the body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if int64(len(body)) > v.maxBodyBytes {
		return nil, fmt.Errorf("webhookverify: %w: more than %d bytes", ErrBodyTooLarge, v.maxBodyBytes)
	}
	return v.VerifyBody(body, r.Header)
}

// VerifyBody verifies a delivery's body and headers and returns its event.
func (v *Verifier) VerifyBody(body []byte, h http.Header) (*Event, error) {
	id, ts, sig := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sig == "" {
		return nil, fmt.Errorf("webhookverify: %w", ErrMissingHeaders)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("webhookverify: %w: %q", ErrInvalidTimestamp, ts)
	}
	signedAt := time.Unix(unix, 0)
	if skew := v.now().Sub(signedAt); skew > v.tolerance || skew < -v.tolerance {
		return nil, fmt.Errorf("webhookverify: %w: signed %s ago, tolerance %s", ErrOutsideWindow, skew.Round(time.Second), v.tolerance)
	}
	if !v.signedByAny(body, h) {
		return nil, fmt.Errorf("webhookverify: %w", ErrNoMatchingSignature)
	}
	ev := &Event{ID: id, SignedAt: signedAt}
	if err := json.Unmarshal(body, ev); err != nil || ev.Type == "" || ev.Job == nil {
		return nil, fmt.Errorf("webhookverify: %w: want {\"type\", \"timestamp\", \"data\"}", ErrInvalidPayload)
	}
	return ev, nil
}

// signedByAny checks the signatures with each secret. The window was checked already, with the
// verifier's clock and tolerance, so the library is asked to ignore the timestamp.
func (v *Verifier) signedByAny(body []byte, h http.Header) bool {
	for _, wh := range v.hooks {
		if wh.VerifyIgnoringTimestamp(body, h) == nil {
			return true
		}
	}
	return false
}

type eventKey struct{}

// Middleware verifies each delivery before next sees it: a delivery that does not verify is answered
// 401 (413 for a body too large, 400 for a body that is not an event) and never reaches next. next finds the event with
// EventFrom and may read r.Body again.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := v.Verify(r)
		switch {
		case errors.Is(err, ErrBodyTooLarge):
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		case errors.Is(err, ErrInvalidPayload):
			http.Error(w, "not a Seek event", http.StatusBadRequest)
		case err != nil:
			http.Error(w, "signature verification failed", http.StatusUnauthorized)
		default:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), eventKey{}, ev)))
		}
	})
}

// EventFrom returns the event Middleware verified, nil outside it.
func EventFrom(ctx context.Context) *Event {
	ev, _ := ctx.Value(eventKey{}).(*Event)
	return ev
}
