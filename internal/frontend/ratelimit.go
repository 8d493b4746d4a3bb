package frontend

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/seek-api/seek-operator/internal/restapi"
)

// rateLimiter keeps one token bucket per API key. Buckets live in this replica's memory: with N
// frontend replicas behind a load balancer a key gets up to N times its rate.
type rateLimiter struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	now     func() time.Time
}

func newRateLimiter() *rateLimiter {
	return &rateLimiter{buckets: map[string]*rate.Limiter{}, now: time.Now}
}

// bucketSize is how many tokens a key's bucket holds: twice its rate, at least one.
func bucketSize(requestsPerSecond float64) int {
	return max(1, int(math.Ceil(2*requestsPerSecond)))
}

// checkBatch refuses, with a 400, a batch of more jobs than p's bucket holds: no wait would let it
// through. apikeys bounds a key's rate, so every bucket is finite.
func checkBatch(p *Principal, jobs int) error {
	if burst := bucketSize(p.RequestsPerSecond); jobs > burst {
		return &restapi.Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "inputs",
			Message: fmt.Sprintf("this API key may create at most %d jobs at once (twice its limit of %g requests per second); split the batch", burst, p.RequestsPerSecond)}
	}
	return nil
}

// take takes n tokens for p's key, all or none, or returns a 429 saying when to retry.
func (l *rateLimiter) take(p *Principal, n int) error {
	limit := rate.Limit(p.RequestsPerSecond)
	burst := bucketSize(p.RequestsPerSecond)
	if n <= 0 {
		return nil
	}
	l.mu.Lock()
	b := l.buckets[p.ID]
	if b == nil || b.Limit() != limit || b.Burst() != burst {
		b = rate.NewLimiter(limit, burst)
		l.buckets[p.ID] = b
	}
	l.mu.Unlock()
	now := l.now()
	r := b.ReserveN(now, n)
	if !r.OK() { // n > burst: checkBatch excludes it
		return fmt.Errorf("reserve %d tokens of a bucket of %d", n, burst)
	}
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	r.CancelAt(now)
	return &restapi.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message:    fmt.Sprintf("this API key may make %g requests (or create %g jobs) per second", p.RequestsPerSecond, p.RequestsPerSecond),
		RetryAfter: max(1, int(math.Ceil(delay.Seconds())))}
}
