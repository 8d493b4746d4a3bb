package runner

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"time"

	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// progressPoll is how often the runner reads a running job's progress file. A job shorter than that
// never reports progress, and costs no call for it.
const progressPoll = 500 * time.Millisecond

// progressCallTimeout bounds one progress call.
const progressCallTimeout = 10 * time.Second

// watchProgress passes the job's progress on while ctx lasts: it reads the progress file every
// progressPoll and sends what changed, at most once every dispatch.ProgressInterval (the endpoint
// refuses more often with 429), so the latest report always goes out and none in between piles up.
// It gives up when the attempt is no longer this pod's (409), which the heartbeat acts on.
func (r *runner) watchProgress(ctx context.Context, ref dispatch.AttemptRef) {
	tick := time.NewTicker(progressPoll)
	defer tick.Stop()
	var sent *protocol.Progress
	var notBefore time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p, ok := readProgress(r.cfg.ProgressPath)
		if !ok || (sent != nil && *sent == p) || time.Now().Before(notBefore) {
			continue
		}
		var resp dispatch.ProgressResponse
		err := r.call(ctx, dispatch.PathProgress, dispatch.ProgressRequest{AttemptRef: ref, Fraction: p.Fraction, Message: p.Message}, &resp, progressCallTimeout)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			sent = &p
			notBefore = time.Now().Add(dispatch.ProgressInterval)
		case statusOf(err) == http.StatusConflict:
			return
		default:
			// 429 (too soon: a manager restart forgot nothing, the interval lives in the job's
			// status), or the endpoint is away: try the latest again after an interval.
			notBefore = time.Now().Add(dispatch.ProgressInterval)
		}
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
