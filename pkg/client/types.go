package client

import (
	"encoding/json"
	"net/http"
	"time"
)

// JobStatus is a job's place in its lifecycle: queued → running → completed | failed | canceled |
// timed_out.
type JobStatus string

// Job statuses.
const (
	StatusQueued    JobStatus = "queued"
	StatusRunning   JobStatus = "running"
	StatusCompleted JobStatus = "completed"
	StatusFailed    JobStatus = "failed"
	StatusCanceled  JobStatus = "canceled"
	StatusTimedOut  JobStatus = "timed_out"
)

// IsTerminal reports whether a job in this status is finished: it will not change again.
func (s JobStatus) IsTerminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusCanceled, StatusTimedOut:
		return true
	}
	return false
}

// Job is a job as the API shows it (GET /v1/jobs/{id}); webhook deliveries carry the same object.
type Job struct {
	// ID is the job's id, "job_" followed by its SeekJob's name.
	ID string `json:"job_uuid"`
	// Worker is the name of the worker that runs the job.
	Worker string `json:"worker"`
	// Status is where the job stands.
	Status JobStatus `json:"status"`
	// StatusReason says, while the job is queued, why it waits (WaitingForCapacity, ImagePullBackOff,
	// ...); empty otherwise.
	StatusReason string `json:"status_reason,omitempty"`
	// StatusMessage is the human-readable detail of StatusReason.
	StatusMessage string `json:"status_message,omitempty"`
	// Result is the worker's JSON result once the job completed, JSON null before.
	Result json.RawMessage `json:"response_json"`
	// Error says why a failed, canceled or timed-out job did not complete; nil otherwise.
	Error *JobError `json:"error"`
	// CreatedAt is when the job was submitted.
	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when its worker started, nil before.
	StartedAt *time.Time `json:"started_at"`
	// CompletedAt is when it finished, nil before.
	CompletedAt *time.Time `json:"completed_at"`
	// Attempts counts the runs of the worker.
	Attempts int32 `json:"attempts"`
	// Callback is the delivery ledger of the job's callback_url, nil without one.
	Callback *Callback `json:"callback"`
	// Progress is the worker's last progress report, nil when it made none.
	Progress *Progress `json:"progress"`
	// Queue is where the job waits in its worker's queue: set by Get and List while it waits for a
	// slot or a pool pod, nil otherwise.
	Queue *Queue `json:"queue,omitempty"`
}

// Progress is a worker's report of how far a job has come.
type Progress struct {
	// Fraction is the share of the work done, from 0 to 1.
	Fraction float64 `json:"fraction"`
	// Message is the worker's short text.
	Message string `json:"message"`
	// UpdatedAt is when Seek recorded it.
	UpdatedAt time.Time `json:"updated_at"`
}

// Queue is a waiting job's place in its worker's queue.
type Queue struct {
	// Position is 1 for the job taken next.
	Position int32 `json:"position"`
	// EstimatedWaitSeconds is how long the job may wait at its queue's recent pace; nil when unknown.
	EstimatedWaitSeconds *int64 `json:"estimated_wait_seconds"`
}

// JobError is why a job failed.
type JobError struct {
	// Reason is a machine-readable CamelCase reason (WorkerFailed, DeadlineExceeded, InvalidInput, ...).
	Reason string `json:"reason"`
	// Message is the human-readable explanation.
	Message string `json:"message"`
	// ExitCode is the worker's exit code, when it exited.
	ExitCode *int32 `json:"exit_code,omitempty"`
	// Details is the worker's own JSON error report, when it wrote one.
	Details json.RawMessage `json:"details,omitempty"`
}

// Callback is where a job's webhook delivery stands: that of its terminal event, or before it, of its
// started event.
type Callback struct {
	// URL is the job's callback_url.
	URL string `json:"url"`
	// State is waiting (no event yet), pending, delivered or failed.
	State string `json:"state"`
	// Attempts counts the delivery attempts of the event.
	Attempts int32 `json:"attempts"`
	// LastStatusCode is the receiver's last HTTP status, nil before any answer.
	LastStatusCode *int32 `json:"last_status_code"`
	// LastError describes the last failed attempt.
	LastError *string `json:"last_error"`
	// NextAttemptAt is when the next attempt is due, while pending.
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	// DeliveredAt is when the receiver accepted the event.
	DeliveredAt *time.Time `json:"delivered_at"`
}

// Worker is an entry of the worker catalogue.
type Worker struct {
	// Name is what jobs are submitted to.
	Name string `json:"name"`
	// Description says what the worker does.
	Description string `json:"description"`
	// InputSchema is the JSON Schema inputs must match, JSON null when the worker has none.
	InputSchema json.RawMessage `json:"input_schema"`
}

// WebhookSecret is the tenant's webhook signing secret.
type WebhookSecret struct {
	// Secret is the current secret, whsec_ followed by base64.
	Secret string `json:"secret"`
	// PreviousSecretExpiresAt is, after a rotation, until when the previous secret signs too; nil
	// otherwise.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

// BatchItem is the outcome of one input of a batch: its job, or why it was refused.
type BatchItem struct {
	// Job is the job created for the input (or, on a repeated Idempotency-Key, found); nil when Err is
	// set.
	Job *Job
	// Err is why the input was refused (its status is the one a single submission would have had).
	Err *APIError
}

// UnmarshalJSON reads an item: a job, or {"error": {...}}.
func (b *BatchItem) UnmarshalJSON(data []byte) error {
	var probe struct {
		ID string `json:"job_uuid"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return err
	}
	if probe.ID == "" {
		var envelope struct {
			Error *APIError `json:"error"`
		}
		if err := json.Unmarshal(data, &envelope); err != nil {
			return err
		}
		b.Err = envelope.Error
		if b.Err == nil {
			b.Err = &APIError{Message: "the batch item has neither a job nor an error"}
		}
		b.Err.StatusCode = statusOfCode(b.Err.Code)
		return nil
	}
	b.Job = &Job{}
	return json.Unmarshal(data, b.Job)
}

// statusOfCode is the HTTP status a single submission answers with a given error code: a batch item
// carries only the code.
func statusOfCode(code string) int {
	switch code {
	case CodeInvalidRequest, CodeInvalidInput, CodeInvalidCallbackURL:
		return http.StatusBadRequest
	case CodeNotFound:
		return http.StatusNotFound
	case CodeInputTooLarge, CodeBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeIdempotencyConflict:
		return http.StatusUnprocessableEntity
	case CodeRateLimited, CodeActiveJobsLimit:
		return http.StatusTooManyRequests
	case CodeForbidden:
		return http.StatusForbidden
	case CodeUnavailable, "worker_not_ready":
		return http.StatusServiceUnavailable
	}
	return 0
}
