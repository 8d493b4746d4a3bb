// Package webhook holds the pure parts of callback delivery: protecting the operator from
// server-side request forgery through user-supplied callback URLs (Policy), signing deliveries the
// Standard Webhooks 1.0 way (Sign, Headers), the retry schedule and the classification of an
// attempt's result (Backoff, Classify), and the delivered body (Payload).
//
// It imports the standard library, code.dny.dev/ssrf and nothing of Kubernetes, so the REST frontend
// (which checks a URL at submit time) and the callback controller (which delivers) can share it.
package webhook
