package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultMaxResponseBytes bounds the body of one answer: a page of 100 jobs or a batch of 1,000 with
// their results fits many times over.
const DefaultMaxResponseBytes = 32 << 20

// userAgent is sent unless WithUserAgent replaces it.
const userAgent = "seek-go-client/1"

// Client calls the Seek REST API with one API key. It is safe for concurrent use.
type Client struct {
	base             *url.URL
	apiKey           string
	httpClient       *http.Client
	userAgent        string
	retry            RetryPolicy
	maxResponseBytes int64
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client requests are made with (http.DefaultClient otherwise). Its
// Timeout, if any, must be longer than a minute: Wait long-polls for up to 60 s per request.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpClient = h } }

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithMaxResponseBytes bounds the body of one answer (DefaultMaxResponseBytes otherwise).
func WithMaxResponseBytes(n int64) Option { return func(c *Client) { c.maxResponseBytes = n } }

// New returns a client of the API at baseURL (http or https, such as https://seek.example.com)
// authenticating with apiKey.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("seek: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("seek: base URL %q must be http:// or https:// with a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("seek: base URL %q must have no query or fragment", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("seek: the API key is empty")
	}
	c := &Client{base: u, apiKey: apiKey, httpClient: http.DefaultClient, userAgent: userAgent,
		retry: DefaultRetryPolicy, maxResponseBytes: DefaultMaxResponseBytes}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// request is one API call: made once, and again on a retriable answer.
type request struct {
	method string
	path   string // below the base URL, its segments escaped (see segment)
	query  url.Values
	header http.Header
	body   []byte // nil for none
	// idempotent means the call may be repeated after a connection error or a 503 without changing
	// its effect: reads, submissions under an Idempotency-Key, cancel, redeliver.
	idempotent bool
}

// response is a successful answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do makes the call, retrying per the client's RetryPolicy, and returns a 2xx answer or an error:
// an *APIError for an error answer.
func (c *Client) do(ctx context.Context, r *request) (*response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, r)
		if err == nil {
			return resp, nil
		}
		delay, retry := c.retry.next(attempt, r.idempotent, err)
		if !retry || ctx.Err() != nil {
			return nil, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < delay {
			return nil, err // the answer would come too late: say why now
		}
		if werr := sleepContext(ctx, delay); werr != nil {
			return nil, errors.Join(err, werr)
		}
	}
}

// once makes one attempt.
func (c *Client) once(ctx context.Context, r *request) (*response, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponseBytes+1))
	if err != nil {
		return nil, &transportError{err: fmt.Errorf("seek: %s %s: reading the answer: %w", r.method, r.path, err)}
	}
	if int64(len(raw)) > c.maxResponseBytes {
		return nil, fmt.Errorf("seek: %s %s: the answer exceeds %d bytes", r.method, r.path, c.maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, parseAPIError(resp.StatusCode, resp.Header, raw)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// send makes the HTTP request of r and returns its answer, whatever the status, with its body unread.
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	u, err := url.Parse(c.base.String() + r.path)
	if err != nil {
		return nil, fmt.Errorf("seek: %s %s: %w", r.method, r.path, err)
	}
	u.RawQuery = r.query.Encode()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("seek: %s %s: %w", r.method, r.path, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("X-Api-Key", c.apiKey)
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, &transportError{err: fmt.Errorf("seek: %s %s: %w", r.method, r.path, err)}
	}
	return resp, nil
}

// transportError is a request that got no answer: retried only when idempotent.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// decode reads a JSON answer into v.
func decode(resp *response, v any) error {
	if err := json.Unmarshal(resp.body, v); err != nil {
		return fmt.Errorf("seek: the answer (%d) is not the expected JSON: %w", resp.status, err)
	}
	return nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// segment escapes one path segment given by the caller (a job id, a worker name). "." and ".." are
// refused: they would name another endpoint.
func segment(what, s string) (string, error) {
	if s == "" || s == "." || s == ".." {
		return "", fmt.Errorf("seek: %s %q is not valid", what, s)
	}
	return url.PathEscape(s), nil
}
