package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/frontend"
	"github.com/seek-api/seek-operator/internal/frontend/apitest"
	"github.com/seek-api/seek-operator/pkg/client"
	"github.com/seek-api/seek-operator/pkg/webhookverify"
)

// openAPITransport checks every answer the SDK receives against the API's OpenAPI document.
type openAPITransport struct{ t *testing.T }

func (o openAPITransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	openAPIOnce.Do(func() { openAPI = apitest.NewValidator(o.t, frontend.OpenAPI) })
	if err := openAPI.Validate(req.Method, req.URL.Path, resp.StatusCode, raw); err != nil {
		o.t.Errorf("OpenAPI: %v", err)
	}
	return resp, nil
}

// newSDK returns an SDK client of the frontend at base, once the frontend accepts its key.
func newSDK(t *testing.T, base, key string, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithHTTPClient(&http.Client{Transport: openAPITransport{t}})}, opts...)
	c, err := client.New(base, key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "key accepted", func(ctx context.Context) (bool, error) {
		_, err := c.Workers(ctx)
		return !client.IsCode(err, client.CodeUnauthenticated), err
	})
	return c
}

// finishJob plays the kubelet for a job submitted through the API: its pod ends with exit code and
// message (the result, or the worker's error report).
func finishJob(t *testing.T, tenant, id string, exitCode int32, message string) {
	t.Helper()
	finishPod(t, waitForPod(t, tenant, strings.TrimPrefix(id, "job_"), 1), exitCode, message)
}

// TestClient exercises the Go SDK (pkg/client) against the real frontend, controllers and apiserver.
func TestClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := startFrontend(t)
	tenant := newNamespace(t)
	w := readyWorker(t, echoWorker(t).InputSchema(`{"type":"object","required":["email"],"properties":{"email":{"type":"string"}}}`).Obj())
	c := newSDK(t, base, apiKey(t, tenant, apikeys.ScopeSubmit, apikeys.ScopeRead, apikeys.ScopeCancel, apikeys.ScopeWebhooks))

	t.Run("submit, resubmit under the same key, wait until completed", func(t *testing.T) {
		opts := &client.SubmitOptions{IdempotencyKey: "order-1", Timeout: 2 * time.Minute}
		job, err := c.Submit(ctx, w.Name, map[string]any{"email": "a@example.com"}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if job.Status != client.StatusQueued || job.Worker != w.Name {
			t.Errorf("submitted job = %+v", job)
		}
		again, err := c.Submit(ctx, w.Name, json.RawMessage(`{"email":"a@example.com"}`), opts)
		if err != nil || again.ID != job.ID {
			t.Errorf("resubmit = %v, %v; want job %s", again, err, job.ID)
		}
		_, err = c.Submit(ctx, w.Name, map[string]any{"email": "b@example.com"}, opts)
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnprocessableEntity || apiErr.Code != client.CodeIdempotencyConflict || apiErr.Field != "Idempotency-Key" {
			t.Errorf("another body under the same key = %v, want 422 idempotency_conflict", err)
		}
		if got, err := c.Get(ctx, job.ID); err != nil || got.ID != job.ID {
			t.Errorf("Get = %v, %v", got, err)
		}

		done := make(chan *client.Job, 1)
		go func() {
			j, err := c.Wait(ctx, job.ID)
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
			done <- j
		}()
		finishJob(t, tenant, job.ID, 0, `{"valid":true}`)
		select {
		case j := <-done:
			var result struct{ Valid bool }
			if j == nil || j.Status != client.StatusCompleted || j.DecodeResult(&result) != nil || !result.Valid || j.CompletedAt == nil {
				t.Errorf("Wait = %+v", j)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Wait did not return once the job completed")
		}
	})

	t.Run("bad input is a typed error naming the field", func(t *testing.T) {
		_, err := c.Submit(ctx, w.Name, map[string]any{"email": 42}, nil)
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != client.CodeInvalidInput || apiErr.Field != "/email" {
			t.Errorf("= %v, want 400 invalid_input naming /email", err)
		}
		_, err = c.Submit(ctx, "no-such-worker", map[string]any{}, nil)
		if !client.IsNotFound(err) {
			t.Errorf("unknown worker = %v, want 404", err)
		}
		_, err = c.Submit(ctx, w.Name, map[string]any{"email": "a@b.c"}, &client.SubmitOptions{Timeout: 500 * time.Millisecond})
		if !errors.As(err, &apiErr) || apiErr.Field != "timeout" {
			t.Errorf("a timeout under a second = %v, want 400 naming timeout", err)
		}
	})

	t.Run("batch, then list over several pages", func(t *testing.T) {
		inputs := []json.RawMessage{[]byte(`{"email":"1@example.com"}`), []byte(`{"email":2}`), []byte(`{"email":"3@example.com"}`)}
		items, err := c.SubmitBatch(ctx, w.Name, inputs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if items[0].Job == nil || items[2].Job == nil || items[1].Err == nil || items[1].Err.Field != "/email" || items[1].Err.Code != client.CodeInvalidInput {
			t.Fatalf("items = %+v %+v %+v", items[0], items[1], items[2])
		}
		// Listings read the frontend's cache: wait until it has the batch's jobs.
		var want []string
		eventually(t, "the batch's jobs listed", func(ctx context.Context) (bool, error) {
			want = nil
			for job, err := range c.List(ctx, &client.ListOptions{Worker: w.Name, PageSize: 100}) {
				if err != nil {
					return false, err
				}
				want = append(want, job.ID)
			}
			return slices.Contains(want, items[0].Job.ID) && slices.Contains(want, items[2].Job.ID), nil
		})
		var got []string
		pages := 0
		for cursor := ""; ; {
			page, err := c.ListPage(ctx, &client.ListOptions{Worker: w.Name, PageSize: 2}, cursor)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, j := range page.Jobs {
				got = append(got, j.ID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		var iterated []string
		for job, err := range c.List(ctx, &client.ListOptions{Worker: w.Name, PageSize: 2}) {
			if err != nil {
				t.Fatal(err)
			}
			iterated = append(iterated, job.ID)
		}
		if len(want) < 3 || pages < 2 || !slices.Equal(got, want) || !slices.Equal(iterated, want) {
			t.Errorf("one page: %v\n%d pages of 2: %v\niterator: %v", want, pages, got, iterated)
		}
		var completed int
		for job, err := range c.List(ctx, &client.ListOptions{Worker: w.Name, Status: client.StatusCompleted}) {
			if err != nil {
				t.Fatal(err)
			}
			if job.Status != client.StatusCompleted {
				t.Errorf("status filter let %s (%s) through", job.ID, job.Status)
			}
			completed++
		}
		if completed >= len(want) {
			t.Errorf("the status filter kept all %d jobs", completed)
		}
	})

	t.Run("cancel, then wait returns canceled", func(t *testing.T) {
		job, err := c.Submit(ctx, w.Name, map[string]any{"email": "c@example.com"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		waitForPod(t, tenant, strings.TrimPrefix(job.ID, "job_"), 1)
		if _, err := c.Cancel(ctx, job.ID); err != nil {
			t.Fatal(err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, waitTimeout)
		defer cancel()
		if j, err := c.Wait(waitCtx, job.ID); err != nil || j.Status != client.StatusCanceled {
			t.Errorf("Wait = %+v, %v; want canceled", j, err)
		}
		if _, err := c.Redeliver(ctx, job.ID); !client.IsCode(err, client.CodeNoCallback) {
			t.Errorf("Redeliver without callback = %v, want no_callback", err)
		}
	})

	t.Run("workers", func(t *testing.T) {
		workers, err := c.Workers(ctx)
		if err != nil || !slices.ContainsFunc(workers, func(x client.Worker) bool { return x.Name == w.Name }) {
			t.Errorf("Workers = %v, %v; want %s among them", workers, err, w.Name)
		}
		got, err := c.Worker(ctx, w.Name)
		if err != nil || !strings.Contains(string(got.InputSchema), `"email"`) {
			t.Errorf("Worker = %+v, %v", got, err)
		}
	})

	t.Run("webhook deliveries verify, across a secret rotation", func(t *testing.T) {
		before, err := c.WebhookSecret(ctx)
		if err != nil || !strings.HasPrefix(before.Secret, "whsec_") {
			t.Fatalf("WebhookSecret = %+v, %v", before, err)
		}
		after, err := c.RotateWebhookSecret(ctx)
		if err != nil || after.Secret == before.Secret || after.PreviousSecretExpiresAt == nil {
			t.Fatalf("RotateWebhookSecret = %+v, %v", after, err)
		}
		// The receiver is switched to the new secret; one still holding the previous secret must verify
		// the same deliveries (Seek signs with both for 24 hours).
		current, err := webhookverify.New([]string{after.Secret})
		if err != nil {
			t.Fatal(err)
		}
		previous, err := webhookverify.New([]string{before.Secret})
		if err != nil {
			t.Fatal(err)
		}
		type delivery struct {
			event       *webhookverify.Event
			previousErr error
		}
		deliveries := make(chan delivery, 4)
		hook := httptest.NewServer(current.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := previous.Verify(r) // the middleware left the body readable
			deliveries <- delivery{event: webhookverify.EventFrom(r.Context()), previousErr: err}
		})))
		defer hook.Close()

		job, err := c.Submit(ctx, w.Name, map[string]any{"email": "d@example.com"}, &client.SubmitOptions{CallbackURL: hook.URL + "/hook"})
		if err != nil {
			t.Fatal(err)
		}
		finishJob(t, tenant, job.ID, 0, `{"valid":false}`)
		select {
		case d := <-deliveries:
			if d.event.Type != webhookverify.EventCompleted || d.event.Job.ID != job.ID || string(d.event.Job.Result) != `{"valid":false}` {
				t.Errorf("event = %+v, job %+v", d.event, d.event.Job)
			}
			if d.previousErr != nil {
				t.Errorf("the previous secret does not verify the delivery: %v", d.previousErr)
			}
		case <-time.After(waitTimeout):
			t.Fatal("no verified delivery")
		}
	})
}

// TestClientRetriesRateLimits: the SDK waits out the frontend's 429 (Retry-After) and succeeds.
func TestClientRetriesRateLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := startFrontend(t)
	tenant := newNamespace(t)
	secret, key, err := apikeys.New(credentialsNamespace, tenant, []apikeys.Scope{apikeys.ScopeRead}, 1) // a bucket of 2
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, secret)
	once := newSDK(t, base, key, client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 1}))
	retrying := newSDK(t, base, key)

	var apiErr *client.APIError
	for range 4 {
		if _, err = once.Workers(ctx); err != nil {
			break
		}
	}
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != client.CodeRateLimited || apiErr.RetryAfter < time.Second {
		t.Fatalf("without retries = %v, want 429 rate_limited with Retry-After", err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { _, errs[i] = retrying.Workers(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("with retries: %v", err)
	}
	if elapsed := time.Since(start); elapsed < 500*time.Millisecond {
		t.Errorf("3 requests at 1/s on an empty bucket took %s", elapsed)
	}
}
