package webhook

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultSchedule is the delay before each attempt: immediately, 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h,
// 24h (ten attempts over about three days, 75h35m5s in all before jitter).
var DefaultSchedule = []time.Duration{
	0,
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	14 * time.Hour,
	20 * time.Hour,
	24 * time.Hour,
}

// ParseSchedule parses a retry schedule given as a flag: comma-separated Go durations such as
// "0,5s,5m,30m", the delay before each attempt. The first may be 0 (try at once); the others must be
// positive. The error names the first bad entry.
func ParseSchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("webhook: schedule is empty")
	}
	var schedule []time.Duration
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		d, err := time.ParseDuration(entry)
		switch {
		case err != nil:
			return nil, fmt.Errorf("webhook: schedule entry %d (%q): %w", i+1, entry, err)
		case d < 0:
			return nil, fmt.Errorf("webhook: schedule entry %d (%q) is negative", i+1, entry)
		case d == 0 && i > 0:
			return nil, fmt.Errorf("webhook: schedule entry %d (%q) is zero; only the first may be", i+1, entry)
		}
		schedule = append(schedule, d)
	}
	return schedule, nil
}

// Backoff returns the delay before attempt number attempt (1-based: attempt 1 is the first try and
// waits schedule[0]), and ok=false when the schedule has no such attempt. The delay is moved by up to
// ±jitter of itself (jitter is clamped to [0, 1]; 0.1 means ±10%) using random, which returns values
// in [0, 1) such as math/rand/v2.Float64 or (*rand.Rand).Float64; 0.5 means no change, and a nil
// random disables jitter. The delay is never negative.
func Backoff(schedule []time.Duration, attempt int, jitter float64, random func() float64) (delay time.Duration, ok bool) {
	if attempt < 1 || attempt > len(schedule) {
		return 0, false
	}
	base := max(schedule[attempt-1], 0)
	if random == nil || base == 0 || !(jitter > 0) { // !(>) also catches NaN
		return base, true
	}
	jitter = min(jitter, 1)
	r := random()
	if !(r >= 0) { // NaN or negative
		r = 0
	}
	r = min(r, 1)
	scaled := float64(base) * (1 + jitter*(2*r-1))
	switch {
	case scaled <= 0:
		return 0, true
	case scaled >= math.MaxInt64:
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(math.Round(scaled)), true
}

// Outcome is what a delivery attempt's result means for the message.
type Outcome string

const (
	// Delivered means the receiver accepted the message (a 2xx response): stop.
	Delivered Outcome = "Delivered"
	// Retry means the attempt failed and the message should be tried again per the schedule.
	Retry Outcome = "Retry"
	// Gone means the receiver asked never to be called again (410 Gone): stop without retrying.
	Gone Outcome = "Gone"
)

// maxRetryAfter caps the delay a receiver can ask for with Retry-After.
const maxRetryAfter = 24 * time.Hour

// Classify maps an attempt's result (the response and error from http.Client.Do) to an outcome: any
// 2xx is Delivered, 410 is Gone, and everything else is Retry: 1xx and 3xx (redirects are not
// followed), other 4xx and 5xx, and transport errors, including refusals by the SSRF policy at connect
// time, since what a name resolves to may change.
//
// For 429 and 503 responses retryAfter is the Retry-After header's delay (delta-seconds, or an
// HTTP-date taken relative to now), capped at 24h; it is zero otherwise, and for a missing, malformed
// or past value. It is a lower bound the caller may apply to the next delay.
func Classify(resp *http.Response, err error, now time.Time) (o Outcome, retryAfter time.Duration) {
	if err != nil || resp == nil {
		return Retry, 0
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		return Delivered, 0
	case code == http.StatusGone:
		return Gone, 0
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return Retry, parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return Retry, 0
}

// parseRetryAfter parses a Retry-After value (RFC 9110 section 10.2.3), capped at maxRetryAfter.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if strings.IndexFunc(value, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		seconds, err := strconv.ParseUint(value, 10, 64)
		if err != nil || seconds > uint64(maxRetryAfter/time.Second) { // too many digits is too long
			return maxRetryAfter
		}
		return time.Duration(seconds) * time.Second
	}
	at, err := http.ParseTime(value)
	if err != nil {
		return 0
	}
	return min(max(at.Sub(now), 0), maxRetryAfter)
}
