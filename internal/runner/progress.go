package runner

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"time"

	"k8s.io/utils/clock"

	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// progressPoll is how often a running job's progress file is read. A job shorter than that never
// reports progress, and costs no call for it.
const progressPoll = 500 * time.Millisecond

// progressCallTimeout bounds one progress call.
const progressCallTimeout = 10 * time.Second

// progressWatch passes a worker's progress file on to the dispatch endpoint: the runner of a pool
// pod for the attempt it runs, the collector sidecar of a Job mode pod for its job. It sends what
// changed at most once every dispatch.ProgressInterval (the endpoint refuses more often with 429), so
// the latest report always goes out and none in between piles up.
type progressWatch struct {
	clock clock.WithTicker
	// path is the progress file.
	path string
	// send makes one progress call.
	send func(ctx context.Context, p protocol.Progress) error

	// sent is the last report the endpoint took; notBefore is when the next may go.
	sent      *protocol.Progress
	notBefore time.Time
}

// run polls the progress file every progressPoll until ctx ends or the endpoint says the attempt is
// no longer the caller's.
func (w *progressWatch) run(ctx context.Context) {
	tick := w.clock.NewTicker(progressPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
		if !w.poll(ctx) {
			return
		}
	}
}

// poll reads the progress file and sends it when it changed and its interval has passed. It reports
// false when there is no point in going on: ctx ended, or the endpoint answered 409 (the attempt is
// not the caller's: the job ended, or the attempt was taken away, which the heartbeat acts on).
func (w *progressWatch) poll(ctx context.Context) bool {
	p, ok := readProgress(w.path)
	if !ok || (w.sent != nil && *w.sent == p) || w.clock.Now().Before(w.notBefore) {
		return true
	}
	err := w.send(ctx, p)
	switch {
	case ctx.Err() != nil:
		return false
	case err == nil:
		w.sent = &p
		w.notBefore = w.clock.Now().Add(dispatch.ProgressInterval)
	case statusOf(err) == http.StatusConflict:
		return false
	default:
		// 429 (too soon: the interval lives in the job's status, so a restarted runner or manager
		// forgets nothing), or the endpoint is away: try the latest again after Retry-After, or after
		// an interval when the answer named none.
		wait := dispatch.ProgressInterval
		if se, ok := errors.AsType[*statusError](err); ok && se.retryAfter > 0 {
			wait = se.retryAfter
		}
		w.notBefore = w.clock.Now().Add(wait)
	}
	return true
}

// watchProgress passes the progress of the attempt ref on while ctx lasts (see progressWatch).
func (r *runner) watchProgress(ctx context.Context, ref dispatch.AttemptRef) {
	w := &progressWatch{clock: clock.RealClock{}, path: r.cfg.ProgressPath, send: r.progressSender(ref)}
	w.run(ctx)
}

// progressSender makes the progress calls of the attempt ref. A Job mode pod's collector sends
// attempt 0: the attempt its pod runs.
func (r *runner) progressSender(ref dispatch.AttemptRef) func(context.Context, protocol.Progress) error {
	return func(ctx context.Context, p protocol.Progress) error {
		var resp dispatch.ProgressResponse
		return r.call(ctx, dispatch.PathProgress, dispatch.ProgressRequest{AttemptRef: ref, Fraction: p.Fraction, Message: p.Message}, &resp, progressCallTimeout)
	}
}

// readProgress reads a progress file the worker wrote; false when there is none or it is not a
// valid report (the worker may be writing it in place, against the protocol's advice).
func readProgress(path string) (protocol.Progress, bool) {
	f, err := os.Open(path)
	if err != nil {
		return protocol.Progress{}, false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, protocol.MaxProgressBytes+1))
	if err != nil || len(data) > protocol.MaxProgressBytes {
		return protocol.Progress{}, false
	}
	var p protocol.Progress
	if json.Unmarshal(data, &p) != nil || math.IsNaN(p.Fraction) {
		return protocol.Progress{}, false
	}
	p.Fraction = math.Round(min(max(p.Fraction, 0), 1)*1000) / 1000
	if len(p.Message) > protocol.MaxProgressMessageBytes {
		p.Message = p.Message[:protocol.MaxProgressMessageBytes] // the endpoint cuts it on a rune boundary
	}
	return p, true
}
