package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// LogsOptions selects a job's log lines.
type LogsOptions struct {
	// Tail is how many of the last lines to return, 1 to MaxLogTail; 0 means the server's default, 100.
	Tail int
}

// MaxLogTail is the most lines Logs and FollowLogs return from before the call.
const MaxLogTail = 10000

// maxLogErrorBytes bounds the error answer read in place of a log stream.
const maxLogErrorBytes = 64 << 10

// Logs returns the last lines of the output of the job's latest attempt: the worker's stdout and
// stderr, at most 1 MiB (in Pooled mode only this job's lines). A job whose log cannot be read (not
// started yet, waiting for its next attempt, or its pod is gone) is an *APIError with code
// CodeLogsUnavailable (409).
func (c *Client) Logs(ctx context.Context, id string, opts *LogsOptions) (string, error) {
	r, err := logsRequest(id, opts, false)
	if err != nil {
		return "", err
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return "", err
	}
	return string(resp.body), nil
}

// FollowLogs writes the job's last lines to w, then its new lines as the worker writes them, until
// the attempt ends, the server ends the stream (after 1 MiB or 5 minutes: call again to go on), or
// ctx is done (then it returns nil). The call that opens the stream is retried per the client's
// RetryPolicy; a stream cut midway returns the transport's error.
func (c *Client) FollowLogs(ctx context.Context, id string, opts *LogsOptions, w io.Writer) error {
	r, err := logsRequest(id, opts, true)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, r)
		if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxLogErrorBytes))
			resp.Body.Close()
			err = parseAPIError(resp.StatusCode, resp.Header, raw)
		}
		if err == nil {
			return follow(ctx, id, resp.Body, w)
		}
		delay, retry := c.retry.next(attempt, true, err)
		if !retry || ctx.Err() != nil {
			return err
		}
		if werr := sleepContext(ctx, delay); werr != nil {
			return errors.Join(err, werr)
		}
	}
}

// follow copies a log stream to w until it ends; one cut because ctx ended is no error.
func follow(ctx context.Context, id string, body io.ReadCloser, w io.Writer) error {
	defer body.Close()
	if _, err := io.Copy(w, body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("seek: following the logs of job %s: %w", id, err)
	}
	return nil
}

// logsRequest is the call of Logs and FollowLogs.
func logsRequest(id string, opts *LogsOptions, follow bool) (*request, error) {
	seg, err := segment("job id", id)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts != nil && opts.Tail != 0 {
		if opts.Tail < 1 || opts.Tail > MaxLogTail {
			return nil, fmt.Errorf("seek: Tail must be from 1 to %d, got %d", MaxLogTail, opts.Tail)
		}
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	if follow {
		q.Set("follow", "true")
	}
	return &request{method: http.MethodGet, path: "/v1/jobs/" + seg + "/logs", query: q, idempotent: true,
		header: http.Header{"Accept": {"text/plain"}}}, nil
}
