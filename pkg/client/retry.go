package client

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says which failed calls are made again, and when.
//
// Retried: 429 answers, always (the API refuses before doing anything); 503 answers and connection
// errors, for calls that are safe to repeat. The wait before a retry is the answer's Retry-After when
// it has one, else an exponential backoff from InitialBackoff (doubling, with ±20% jitter, at most
// MaxWait). A Retry-After longer than MaxWait is not waited for: the call fails at once with the
// *APIError, whose RetryAfter says when to come back. Neither is a wait that would end after the
// context's deadline.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts of one call, the first included; 1 disables retries.
	MaxAttempts int
	// InitialBackoff is the first wait when the server gave no Retry-After.
	InitialBackoff time.Duration
	// MaxWait bounds one wait between attempts.
	MaxWait time.Duration
}

// DefaultRetryPolicy makes up to 6 attempts, waiting at most 30 s between two: enough for the tenant's
// cap on unfinished jobs (Retry-After: 10) and a rate limit's refill.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 6, InitialBackoff: 500 * time.Millisecond, MaxWait: 30 * time.Second}

// next returns whether to retry after the attempt-th attempt (1-based) failed with err, and the wait.
func (p RetryPolicy) next(attempt int, idempotent bool, err error) (time.Duration, bool) {
	if attempt >= p.MaxAttempts {
		return 0, false
	}
	var apiErr *APIError
	var transport *transportError
	switch {
	case errors.As(err, &apiErr):
		if apiErr.StatusCode != http.StatusTooManyRequests && !(apiErr.StatusCode == http.StatusServiceUnavailable && idempotent) {
			return 0, false
		}
		if apiErr.RetryAfter > 0 {
			return apiErr.RetryAfter, apiErr.RetryAfter <= p.MaxWait
		}
	case errors.As(err, &transport):
		if !idempotent {
			return 0, false
		}
	default:
		return 0, false
	}
	return p.backoff(attempt), true
}

// backoff is InitialBackoff·2^(attempt-1), jittered by ±20%, at most MaxWait.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxWait; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) //nolint:gosec // jitter, not a secret
	return min(d, p.MaxWait)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date; zero when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
