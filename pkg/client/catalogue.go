package client

import (
	"context"
	"net/http"
)

// Workers returns the worker catalogue.
func (c *Client) Workers(ctx context.Context) ([]Worker, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/v1/workers", idempotent: true})
	if err != nil {
		return nil, err
	}
	var out struct {
		Workers []Worker `json:"workers"`
	}
	if err := decode(resp, &out); err != nil {
		return nil, err
	}
	return out.Workers, nil
}

// Worker returns one worker of the catalogue, with its input schema.
func (c *Client) Worker(ctx context.Context, name string) (*Worker, error) {
	seg, err := segment("worker", name)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/v1/workers/" + seg, idempotent: true})
	if err != nil {
		return nil, err
	}
	w := &Worker{}
	if err := decode(resp, w); err != nil {
		return nil, err
	}
	return w, nil
}

// WebhookSecret returns the tenant's webhook signing secret, creating it on first use (API key scope
// webhooks).
func (c *Client) WebhookSecret(ctx context.Context) (*WebhookSecret, error) {
	return c.secret(ctx, &request{method: http.MethodGet, path: "/v1/webhooks/secret", idempotent: true})
}

// RotateWebhookSecret makes a new signing secret; the previous one keeps signing alongside it for
// 24 hours (WebhookSecret.PreviousSecretExpiresAt). It is never retried after a connection error or
// a 503, which could rotate twice and end the previous secret's overlap early.
func (c *Client) RotateWebhookSecret(ctx context.Context) (*WebhookSecret, error) {
	return c.secret(ctx, &request{method: http.MethodPost, path: "/v1/webhooks/secret:rotate"})
}

func (c *Client) secret(ctx context.Context, r *request) (*WebhookSecret, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	s := &WebhookSecret{}
	if err := decode(resp, s); err != nil {
		return nil, err
	}
	return s, nil
}
