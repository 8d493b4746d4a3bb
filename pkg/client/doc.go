// Package client is the Go SDK of the Seek REST API: a typed client for every endpoint, with safe
// retries.
//
//	c, err := client.New("https://seek.example.com", os.Getenv("SEEK_API_KEY"))
//	job, err := c.Submit(ctx, "email-validator", map[string]any{"email": "hello@example.com"}, nil)
//	job, err = c.Wait(ctx, job.ID)
//
// Every call takes a context, which bounds it, its retries and their waits. A call that the API
// refuses returns an *APIError carrying the API's error shape (HTTP status, code, message and the
// field at fault); use errors.As, or the IsCode helper:
//
//	var apiErr *client.APIError
//	if errors.As(err, &apiErr) && apiErr.Field != "" { ... }
//
// Retries: answers 429 (rate limited, or the tenant's cap on unfinished jobs) and 503 (the job store
// briefly unavailable) are retried, after the server's Retry-After when it sends one, within
// RetryPolicy's bounds. Submit and SubmitBatch send an Idempotency-Key (one per call, generated
// unless given), so a retried submission never creates a second job. Connection errors are retried
// only for requests that are safe to repeat: reads, submissions (by their key), cancel and
// redeliver, never a webhook secret rotation.
//
// Responses are read through a size bound; the package imports no Kubernetes code. Webhook
// deliveries are verified by the sibling package pkg/webhookverify.
package client
