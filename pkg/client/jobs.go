package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MaxWait is the longest a single request may wait for its job (Prefer: wait=60).
const MaxWait = 60 * time.Second

// SubmitOptions are a submission's settings besides its input; the zero value takes every default.
type SubmitOptions struct {
	// IdempotencyKey makes a repeat of the submission return the job the first one created (up to 255
	// characters). One is generated per call when empty, so retries of this call are safe; set your
	// own to make retries across processes safe too.
	IdempotencyKey string
	// Timeout is the job's time limit, in whole seconds, from 1s to the worker's maximum; zero for the
	// worker's default.
	Timeout time.Duration
	// Retention is how long the finished job and its result are kept, in whole seconds, up to 720h;
	// nil for the default.
	Retention *time.Duration
	// CallbackURL is where the job's events are delivered (see pkg/webhookverify); empty for none. It
	// is added to the input object as its callback_url member.
	CallbackURL string
	// CallbackEvents are the events delivered: "started", "finished" (the default) and "progress".
	CallbackEvents []string
	// Wait, when positive, has the API answer once the job finishes or after Wait (at most MaxWait,
	// whole seconds, and a second less than what is left of ctx), whichever comes first: one round
	// trip for a quick job. The job is created either way.
	Wait time.Duration
}

// Submit submits a job to a worker. input is the worker's input, a JSON object: a json.RawMessage
// or []byte is sent as is, anything else is encoded with encoding/json. The returned job is queued,
// or further along with SubmitOptions.Wait.
func (c *Client) Submit(ctx context.Context, worker string, input any, opts *SubmitOptions) (*Job, error) {
	if opts == nil {
		opts = &SubmitOptions{}
	}
	w, err := segment("worker", worker)
	if err != nil {
		return nil, err
	}
	body, err := encodeInput(input)
	if err != nil {
		return nil, err
	}
	if body, err = addCallback(body, opts.CallbackURL, opts.CallbackEvents); err != nil {
		return nil, err
	}
	key, err := idempotencyKey(opts.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	r := &request{method: http.MethodPost, path: "/v1/workers/" + w + "/jobs", body: body, idempotent: true,
		query: jobOptions(opts.Timeout, opts.Retention), header: http.Header{"Idempotency-Key": {key}}}
	if wait := waitWithin(ctx, opts.Wait); wait > 0 {
		r.header.Set("Prefer", preferWait(wait))
	}
	return c.job(ctx, r)
}

// BatchOptions are a batch's settings besides its inputs.
type BatchOptions struct {
	// IdempotencyKey makes a repeat of the batch return the same jobs: item i is submitted under
	// "<key>#<i>" (up to 250 characters). Generated per call when empty.
	IdempotencyKey string
	// Timeout and Retention apply to every job, as in SubmitOptions.
	Timeout   time.Duration
	Retention *time.Duration
}

// MaxBatchInputs is the most inputs one batch may hold. An API key may also create at most twice its
// rate limit of jobs in one batch; a larger batch is refused with a 400 naming the field "inputs".
const MaxBatchInputs = 1000

// SubmitBatch submits one job per input in a single request: the items answer the inputs in order,
// each with its job or why that input was refused. Inputs are JSON objects sent as they are; a
// callback_url member in one becomes its job's callback. The call fails as a whole (an *APIError)
// only when the batch itself is refused, such as for its size or the key's rate limit, in which case
// no job was created.
func (c *Client) SubmitBatch(ctx context.Context, worker string, inputs []json.RawMessage, opts *BatchOptions) ([]BatchItem, error) {
	if opts == nil {
		opts = &BatchOptions{}
	}
	w, err := segment("worker", worker)
	if err != nil {
		return nil, err
	}
	if len(inputs) == 0 || len(inputs) > MaxBatchInputs {
		return nil, fmt.Errorf("seek: a batch holds 1 to %d inputs, not %d", MaxBatchInputs, len(inputs))
	}
	body, err := json.Marshal(struct {
		Inputs []json.RawMessage `json:"inputs"`
	}{inputs})
	if err != nil {
		return nil, fmt.Errorf("seek: encode the batch: %w", err)
	}
	key, err := idempotencyKey(opts.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/workers/" + w + "/jobs:batch", body: body, idempotent: true,
		query: jobOptions(opts.Timeout, opts.Retention), header: http.Header{"Idempotency-Key": {key}}})
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []BatchItem `json:"items"`
	}
	if err := decode(resp, &out); err != nil {
		return nil, err
	}
	if len(out.Items) != len(inputs) {
		return nil, fmt.Errorf("seek: the batch answered %d items for %d inputs", len(out.Items), len(inputs))
	}
	return out.Items, nil
}

// Get returns a job.
func (c *Client) Get(ctx context.Context, id string) (*Job, error) {
	return c.get(ctx, id, 0)
}

// Wait returns the job once it is finished (completed, failed, canceled or timed out), long-polling
// with Prefer: wait as many times as it takes. It waits until ctx is done; then it returns the job as
// last seen (nil if never) with ctx's error.
func (c *Client) Wait(ctx context.Context, id string) (*Job, error) {
	var last *Job
	for {
		job, err := c.get(ctx, id, max(time.Second, waitWithin(ctx, MaxWait)))
		if ctx.Err() != nil {
			return last, fmt.Errorf("seek: waiting for job %s: %w", id, ctx.Err())
		}
		if err != nil {
			return last, err
		}
		if last = job; job.Status.IsTerminal() {
			return job, nil
		}
	}
}

func (c *Client) get(ctx context.Context, id string, wait time.Duration) (*Job, error) {
	seg, err := segment("job id", id)
	if err != nil {
		return nil, err
	}
	r := &request{method: http.MethodGet, path: "/v1/jobs/" + seg, idempotent: true}
	if wait > 0 {
		r.header = http.Header{"Prefer": {preferWait(wait)}}
	}
	return c.job(ctx, r)
}

// Cancel asks for a job to be canceled and returns it as it was. A queued job is canceled at once, a
// running one once its worker is stopped; a finished job is left as it is. Wait returns the outcome.
func (c *Client) Cancel(ctx context.Context, id string) (*Job, error) {
	seg, err := segment("job id", id)
	if err != nil {
		return nil, err
	}
	return c.job(ctx, &request{method: http.MethodPost, path: "/v1/jobs/" + seg + "/cancel", idempotent: true})
}

// Redeliver delivers a finished job's webhook events again, with the same webhook-id. It fails with
// CodeNoCallback for a job without callback_url and CodeCallbackPending while a delivery is under way.
func (c *Client) Redeliver(ctx context.Context, id string) (*Job, error) {
	seg, err := segment("job id", id)
	if err != nil {
		return nil, err
	}
	return c.job(ctx, &request{method: http.MethodPost, path: "/v1/jobs/" + seg + "/callback:redeliver", idempotent: true})
}

// job makes a call answered with a job.
func (c *Client) job(ctx context.Context, r *request) (*Job, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	job := &Job{}
	if err := decode(resp, job); err != nil {
		return nil, err
	}
	return job, nil
}

// DecodeResult decodes the job's result (response_json) into v.
func (j *Job) DecodeResult(v any) error {
	if len(j.Result) == 0 || bytes.Equal(j.Result, []byte("null")) {
		return fmt.Errorf("seek: job %s (%s) has no result", j.ID, j.Status)
	}
	return json.Unmarshal(j.Result, v)
}

func encodeInput(input any) ([]byte, error) {
	var raw []byte
	switch v := input.(type) {
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		b, err := json.Marshal(input)
		if err != nil {
			return nil, fmt.Errorf("seek: encode the input: %w", err)
		}
		raw = b
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, errors.New("seek: the input must be a JSON object")
	}
	return trimmed, nil
}

// addCallback adds callback_url and callback_events to an input object, leaving its own members as
// they are (the API refuses a member given twice).
func addCallback(input []byte, callbackURL string, events []string) ([]byte, error) {
	if callbackURL == "" {
		if len(events) > 0 {
			return nil, errors.New("seek: CallbackEvents needs a CallbackURL")
		}
		return input, nil
	}
	members := map[string]any{"callback_url": callbackURL}
	if len(events) > 0 {
		members["callback_events"] = events
	}
	extra, err := json.Marshal(members)
	if err != nil {
		return nil, fmt.Errorf("seek: encode the callback: %w", err)
	}
	rest := bytes.TrimSpace(input[1:]) // after "{"
	out := append([]byte{}, extra[:len(extra)-1]...)
	if rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...), nil
}

// idempotencyKey returns key, or a new random one.
func idempotencyKey(key string) (string, error) {
	if key != "" {
		return key, nil
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("seek: generate an Idempotency-Key: %w", err)
	}
	return "seek-go-" + hex.EncodeToString(b), nil
}

func jobOptions(timeout time.Duration, retention *time.Duration) url.Values {
	q := url.Values{}
	if timeout > 0 {
		q.Set("timeout", seconds(timeout))
	}
	if retention != nil {
		q.Set("retention", seconds(*retention))
	}
	return q
}

// seconds renders a duration as the API takes it: whole seconds, such as 90s.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// waitWithin is how long a request may ask to wait (Prefer: wait) within ctx's deadline, leaving
// the answer a second to arrive: at most d, and 0 when less than a second is left.
func waitWithin(ctx context.Context, d time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline)-time.Second)
	}
	if d < time.Second {
		return 0
	}
	return d
}

func preferWait(d time.Duration) string {
	return "wait=" + strconv.Itoa(int(min(d, MaxWait)/time.Second))
}
