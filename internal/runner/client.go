package runner

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// maxResponseBytes bounds an answer's body.
const maxResponseBytes = 1 << 20

// statusError is a non-2xx answer of the dispatch endpoint.
type statusError struct {
	code int
	body dispatch.ErrorResponse
	// retryAfter is the answer's Retry-After (whole seconds), 0 without one.
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.code)
	if e.body.Reason != "" {
		msg += " " + e.body.Reason
	}
	if e.body.Message != "" {
		msg += ": " + e.body.Message
	}
	return msg
}

// statusOf is the HTTP status of err, 0 if it is not an answer of the endpoint.
func statusOf(err error) int {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.code
	}
	return 0
}

func isAuth(err error) bool {
	s := statusOf(err)
	return s == http.StatusUnauthorized || s == http.StatusForbidden
}

// tokenError is a token file that cannot be read: treated as a refused token.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "reading the token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// call POSTs in as JSON to path and decodes a 2xx answer into out. It waits at most timeout.
func (r *runner) call(ctx context.Context, path string, in, out any, timeout time.Duration) error {
	token, err := os.ReadFile(r.cfg.TokenPath)
	if err != nil {
		return &tokenError{err}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("reading the answer to %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		se := &statusError{code: resp.StatusCode}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			se.retryAfter = time.Duration(secs) * time.Second
		}
		_ = json.Unmarshal(data, &se.body) // best effort: the status says enough
		return se
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the answer to %s: %w", path, err)
	}
	return nil
}

// backoff is a capped exponential backoff with jitter.
type backoff struct {
	min, max, cur time.Duration
}

func (r *runner) newBackoff() *backoff {
	return &backoff{min: r.cfg.BackoffMin, max: r.cfg.BackoffMax}
}

// next is the wait before the next retry.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// Up to a fifth more, so that the pods of a pool do not retry in step.
	return b.cur + rand.N(b.cur/5+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// failures logs a streak of failed calls: its first failure, then at most one line per
// failureLogEvery, and the recovery.
type failures struct {
	log    func(format string, args ...any)
	what   string
	n      int
	logged time.Time
}

const failureLogEvery = 30 * time.Second

func (f *failures) failed(err error, wait time.Duration) {
	f.n++
	if f.n == 1 || time.Since(f.logged) >= failureLogEvery {
		f.log("%s failed (%d in a row), retrying in %s: %v", f.what, f.n, round(wait), err)
		f.logged = time.Now()
	}
}

func (f *failures) succeeded() {
	if f.n > 0 {
		f.log("%s succeeded after %d failures", f.what, f.n)
	}
	f.n = 0
}

// lease asks for the next job, retrying until it gets an answer, ctx ends, or the token has been
// refused for AuthGiveUp. The runner has been idle for idle. It returns the answer and how long the
// call that got it took (failed calls before it not included).
func (r *runner) lease(ctx context.Context, idle time.Duration) (*dispatch.LeaseResponse, time.Duration, error) {
	b := r.newBackoff()
	f := &failures{log: r.log.Printf, what: "lease"}
	var authSince time.Time
	for {
		var resp dispatch.LeaseResponse
		sent := time.Now()
		err := r.call(ctx, dispatch.PathLease, dispatch.LeaseRequest{IdleSeconds: idle.Seconds()}, &resp, dispatch.LeaseWait+callSlack)
		if err == nil {
			f.succeeded()
			return &resp, time.Since(sent), nil
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		if _, ok := errors.AsType[*tokenError](err); ok || isAuth(err) {
			if authSince.IsZero() {
				authSince = time.Now()
			} else if time.Since(authSince) >= r.cfg.AuthGiveUp {
				return nil, 0, fmt.Errorf("%w: refused for %s, last: %w", ErrUnauthorized, round(time.Since(authSince)), err)
			}
		} else {
			authSince = time.Time{}
		}
		wait := b.next()
		f.failed(err, wait)
		if !sleep(ctx, wait) {
			return nil, 0, ctx.Err()
		}
	}
}

// heartbeat long-polls the endpoint about ref until ctx ends or the endpoint says to stop the attempt
// (a Stop answer or 409): then it sends the reason on stop. Other failures are retried: a manager
// that restarts does not stop the job.
func (r *runner) heartbeat(ctx context.Context, ref dispatch.AttemptRef, stop chan<- string) {
	// Most pooled jobs end within a fraction of a second: the first heartbeat waits a little, so a
	// short job costs no call but its lease and report. A cancel reaches a job at most this much later.
	if !sleep(ctx, firstHeartbeatDelay) {
		return
	}
	b := r.newBackoff()
	f := &failures{log: r.log.Printf, what: "heartbeat"}
	for {
		var resp dispatch.HeartbeatResponse
		err := r.call(ctx, dispatch.PathHeartbeat, ref, &resp, dispatch.HeartbeatWait+callSlack)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && resp.Stop:
			stop <- cmp.Or(resp.Reason, "Stop")
			return
		case err == nil:
			f.succeeded()
			b.reset()
			continue
		case statusOf(err) == http.StatusConflict:
			se, _ := errors.AsType[*statusError](err)
			stop <- cmp.Or(se.body.Reason, "Conflict")
			return
		}
		wait := b.next()
		f.failed(err, wait)
		if !sleep(ctx, wait) {
			return
		}
	}
}

// firstHeartbeatDelay is how long a job runs before its first heartbeat.
const firstHeartbeatDelay = 250 * time.Millisecond

// report sends rep, retrying for ReportRetryFor while the endpoint cannot take it. A 409 or an
// answer with accepted false drops it, as does any other 4xx but 401, 403, 408 and 429.
func (r *runner) report(label string, rep *dispatch.Report) {
	ctx, cancel := context.WithTimeout(r.hard, r.cfg.ReportRetryFor)
	defer cancel()
	b := r.newBackoff()
	f := &failures{log: r.log.Printf, what: "report of " + label}
	for {
		var resp dispatch.ReportResponse
		err := r.call(ctx, dispatch.PathReport, rep, &resp, reportCallTimeout)
		s := statusOf(err)
		switch {
		case err == nil && resp.Accepted:
			f.succeeded()
			return
		case err == nil:
			r.log.Printf("report of %s not accepted: the attempt is no longer this pod's", label)
			return
		case s == http.StatusConflict:
			r.log.Printf("report of %s refused: the attempt is no longer this pod's (%v)", label, err)
			return
		case s/100 == 4 && s != http.StatusUnauthorized && s != http.StatusForbidden &&
			s != http.StatusRequestTimeout && s != http.StatusTooManyRequests:
			r.log.Printf("report of %s refused, dropping it: %v", label, err)
			return
		}
		if ctx.Err() != nil {
			r.log.Printf("report of %s dropped after %d failures: %v (last: %v)", label, f.n+1, context.Cause(ctx), err)
			return
		}
		wait := b.next()
		f.failed(err, wait)
		if !sleep(ctx, wait) {
			r.log.Printf("report of %s dropped after %d failures: %v (last: %v)", label, f.n, context.Cause(ctx), err)
			return
		}
	}
}
