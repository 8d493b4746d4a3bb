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

// allow takes a token for p's key, or returns a 429 error saying when to retry.
func (l *rateLimiter) allow(p *Principal) error {
	limit := rate.Limit(p.RequestsPerSecond)
	burst := max(1, int(math.Ceil(2*p.RequestsPerSecond)))
	l.mu.Lock()
	b := l.buckets[p.ID]
	if b == nil || b.Limit() != limit || b.Burst() != burst {
		b = rate.NewLimiter(limit, burst)
		l.buckets[p.ID] = b
	}
	l.mu.Unlock()
	now := l.now()
	r := b.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	r.CancelAt(now)
	return &restapi.Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message:    fmt.Sprintf("this API key may make %g requests per second", p.RequestsPerSecond),
		RetryAfter: max(1, int(math.Ceil(delay.Seconds())))}
}
