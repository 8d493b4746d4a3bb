package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Error codes of the API's error shape, APIError.Code.
const (
	// CodeInvalidRequest: a malformed request; Field names the parameter, header or body member.
	CodeInvalidRequest = "invalid_request"
	// CodeInvalidInput: the input does not match the worker's JSON Schema; Field is its JSON pointer.
	CodeInvalidInput = "invalid_input"
	// CodeInvalidCallbackURL: callback_url is refused (scheme, port, private address, ...).
	CodeInvalidCallbackURL = "invalid_callback_url"
	// CodeInputTooLarge: the input exceeds the worker's limit.
	CodeInputTooLarge = "input_too_large"
	// CodeBodyTooLarge: the request body exceeds the server's limit.
	CodeBodyTooLarge = "body_too_large"
	// CodeUnauthenticated: no API key, or an unknown one.
	CodeUnauthenticated = "unauthenticated"
	// CodeForbidden: the API key lacks the scope the endpoint needs.
	CodeForbidden = "forbidden"
	// CodeNotFound: no such job, worker or endpoint (another tenant's job is not found either).
	CodeNotFound = "not_found"
	// CodeIdempotencyConflict: the Idempotency-Key was used with a different request.
	CodeIdempotencyConflict = "idempotency_conflict"
	// CodeNoCallback: redeliver was asked of a job without a callback_url.
	CodeNoCallback = "no_callback"
	// CodeCallbackPending: redeliver was asked before the job's callback settled.
	CodeCallbackPending = "callback_pending"
	// CodeRateLimited: the API key's rate is exceeded (429, retried).
	CodeRateLimited = "rate_limited"
	// CodeActiveJobsLimit: the tenant has as many unfinished jobs as it may (429, retried).
	CodeActiveJobsLimit = "active_jobs_limit"
	// CodeUnavailable: the job store is briefly unavailable (503, retried).
	CodeUnavailable = "unavailable"
	// CodeLogsUnavailable: the job's log cannot be read: it has not started, waits for its next
	// attempt, or its pod is gone (409).
	CodeLogsUnavailable = "logs_unavailable"
)

// APIError is an error answer of the API: {"error": {"code", "message", "field"}} with its HTTP status.
type APIError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int `json:"-"`
	// Code is the machine-readable error code, one of the Code constants (or a newer one); empty when
	// the answer was not in the API's shape (a proxy's error page, for instance).
	Code string `json:"code"`
	// Message is the human-readable explanation.
	Message string `json:"message"`
	// Field names what is at fault: a JSON pointer into the input (/email), a body member
	// (callback_url, inputs), a query parameter (limit) or a header (Idempotency-Key). Often empty.
	Field string `json:"field,omitempty"`
	// RetryAfter is the server's Retry-After, zero when it sent none.
	RetryAfter time.Duration `json:"-"`
}

// Error implements error: "seek: 400 invalid_input (field /email): ...".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seek: %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later: 429 and 503.
func (e *APIError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusServiceUnavailable
}

// IsCode reports whether err is, or wraps, an *APIError with the given code.
func IsCode(err error, code string) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Code == code
}

// IsNotFound reports whether err is the API's 404: no such job or worker.
func IsNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound
}

// maxErrorSnippet bounds the text of a non-JSON error answer quoted in an APIError.
const maxErrorSnippet = 256

// parseAPIError reads an error answer. An answer not in the API's shape keeps its status and the
// start of its body as the message.
func parseAPIError(status int, header http.Header, body []byte) *APIError {
	var envelope struct {
		Error *APIError `json:"error"`
	}
	e := &APIError{}
	if json.Unmarshal(body, &envelope) == nil && envelope.Error != nil && envelope.Error.Code != "" {
		e = envelope.Error
	} else {
		msg := strings.TrimSpace(string(body))
		if len(msg) > maxErrorSnippet {
			msg = msg[:maxErrorSnippet] + "..."
		}
		msg = strings.ToValidUTF8(msg, "?")
		if msg == "" {
			msg = http.StatusText(status)
		}
		e.Message = msg
	}
	e.StatusCode = status
	e.RetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
	return e
}
