// Package jobview is the JSON shape of a job as clients see it: the REST API's job object and the
// data of every webhook payload. It is shared by the REST frontend and the callback controller, which
// must render a job identically, and imports only the API types.
package jobview

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// IDPrefix starts every job id. The rest of the id is the SeekJob's name, so a SeekJob created with
// kubectl is reachable through the API too.
const IDPrefix = "job_"

// JobID is the REST id of a SeekJob.
func JobID(sj *seekv1alpha1.SeekJob) string {
	return IDPrefix + sj.Name
}

// Statuses are the REST statuses, in lifecycle order.
var Statuses = []string{"queued", "running", "completed", "failed", "canceled", "timed_out"}

// IsStatus reports whether s is a REST status.
func IsStatus(s string) bool { return slices.Contains(Statuses, s) }

// JobResponse is the JSON shape of a job in every response.
type JobResponse struct {
	JobUUID string `json:"job_uuid"`
	Worker  string `json:"worker"`
	Status  string `json:"status"`
	// StatusReason says, while the job is queued, why it waits: the reason of its Started condition,
	// such as WaitingForCapacity, JobCreated, ImagePullBackOff or Unschedulable. Null otherwise.
	StatusReason *string `json:"status_reason"`
	// StatusMessage is the human-readable detail of StatusReason. Null when it is.
	StatusMessage *string `json:"status_message"`
	// ResponseJSON is the job's result. A result over 4096 bytes (at most 1 MiB, stored in a Secret)
	// is in the answer to a GET of the job only: elsewhere (lists, webhook payloads, the answers to a
	// submit, a cancel) it is null with ResponseOmitted set.
	ResponseJSON json.RawMessage `json:"response_json"`
	// ResponseBytes is the size of a result over 4096 bytes; absent for smaller ones.
	ResponseBytes int64 `json:"response_bytes,omitempty"`
	// ResponseOmitted is true when ResponseJSON is null but the job has a large result: GET the job
	// to read it.
	ResponseOmitted bool       `json:"response_omitted,omitempty"`
	Error           *JobError  `json:"error"`
	CreatedAt       time.Time  `json:"created_at"`
	StartedAt       *time.Time `json:"started_at"`
	CompletedAt     *time.Time `json:"completed_at"`
	Attempts        int32      `json:"attempts"`
	// Callback is the delivery ledger of the job's callback, null without one.
	Callback *CallbackResponse `json:"callback"`
	// Progress is the worker's last report of how far the job has come, null when it made none.
	Progress *Progress `json:"progress"`
	// Queue is where the job waits in its worker's queue, when it does (read answers only: GET of a
	// job and the list); absent otherwise.
	Queue *Queue `json:"queue,omitempty"`
}

// Progress is a worker's progress report.
type Progress struct {
	// Fraction is the share of the work done, from 0 to 1.
	Fraction float64 `json:"fraction"`
	// Message is the worker's short text, "" when it gave none.
	Message string `json:"message"`
	// UpdatedAt is when Seek recorded it.
	UpdatedAt time.Time `json:"updated_at"`
}

// Queue is a waiting job's place in its worker's queue, computed when read.
type Queue struct {
	// Position is 1 for the job taken next.
	Position int32 `json:"position"`
	// EstimatedWaitSeconds is how long the job may wait to start at the queue's recent pace, or null
	// when too few of the queue's jobs finished lately to tell.
	EstimatedWaitSeconds *int64 `json:"estimated_wait_seconds"`
}

// CallbackResponse shows where a job's callback stands: the delivery of its terminal event (or, before
// that, of its started event).
type CallbackResponse struct {
	URL string `json:"url"`
	// State is waiting (no event to deliver yet), pending, delivered or failed.
	State          string     `json:"state"`
	Attempts       int32      `json:"attempts"`
	LastStatusCode *int32     `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
}

// JobError is a failed job's error in responses.
type JobError struct {
	Reason   string          `json:"reason"`
	Message  string          `json:"message"`
	ExitCode *int32          `json:"exit_code,omitempty"`
	Details  json.RawMessage `json:"details,omitempty"`
}

// Status is the REST status of a job state: queued, running, completed, failed, canceled, timed_out.
func Status(state seekv1alpha1.JobState) string {
	switch state {
	case seekv1alpha1.JobStateRunning:
		return "running"
	case seekv1alpha1.JobStateCompleted:
		return "completed"
	case seekv1alpha1.JobStateFailed:
		return "failed"
	case seekv1alpha1.JobStateCanceled:
		return "canceled"
	case seekv1alpha1.JobStateTimedOut:
		return "timed_out"
	default: // Queued, or not yet seen by the controller
		return "queued"
	}
}

// ToResponse renders a SeekJob as the API shows it.
func ToResponse(sj *seekv1alpha1.SeekJob) *JobResponse {
	r := &JobResponse{
		JobUUID:      JobID(sj),
		Worker:       string(sj.Spec.WorkerName),
		Status:       Status(sj.Status.State),
		ResponseJSON: json.RawMessage("null"),
		CreatedAt:    sj.CreationTimestamp.UTC(),
		StartedAt:    timePtr(sj.Status.StartTime),
		CompletedAt:  timePtr(sj.Status.CompletionTime),
		Attempts:     sj.Status.Attempts,
	}
	if r.Status == "queued" {
		if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c != nil && c.Status != metav1.ConditionTrue {
			r.StatusReason, r.StatusMessage = &c.Reason, &c.Message
		}
	}
	if !sj.Status.Result.IsNull() {
		r.ResponseJSON = json.RawMessage(sj.Status.Result.Raw)
	}
	if ref := sj.Status.ResultRef; ref != nil {
		r.ResponseBytes, r.ResponseOmitted = ref.Bytes, true
	}
	if e := sj.Status.Error; e != nil {
		r.Error = &JobError{Reason: e.Reason, Message: e.Message, ExitCode: e.ExitCode}
		if !e.Details.IsNull() {
			r.Error.Details = json.RawMessage(e.Details.Raw)
		}
	}
	if sj.Spec.Callback != nil {
		r.Callback = toCallbackResponse(sj)
	}
	if p := sj.Status.Progress; p != nil {
		// The pattern of status.progress.fraction makes it a number.
		f, _ := strconv.ParseFloat(p.Fraction, 64)
		r.Progress = &Progress{Fraction: f, Message: p.Message, UpdatedAt: p.UpdateTime.UTC()}
	}
	return r
}

// SetLargeResult puts a large result, read from the Secret status.resultRef names, into r.
func (r *JobResponse) SetLargeResult(raw []byte) {
	r.ResponseJSON, r.ResponseOmitted = json.RawMessage(raw), false
}

func toCallbackResponse(sj *seekv1alpha1.SeekJob) *CallbackResponse {
	out := &CallbackResponse{URL: sj.Spec.Callback.URL, State: "waiting"}
	ledger := sj.Status.Callback
	if ledger == nil || len(ledger.Deliveries) == 0 {
		return out
	}
	d := ledger.Deliveries[len(ledger.Deliveries)-1] // the terminal event's, once there is one
	out.State = strings.ToLower(string(d.State))
	out.Attempts = d.Attempts
	if d.LastStatusCode != 0 {
		out.LastStatusCode = &d.LastStatusCode
	}
	if d.LastError != "" {
		out.LastError = &d.LastError
	}
	out.NextAttemptAt, out.DeliveredAt = timePtr(d.NextAttemptTime), timePtr(d.DeliveredTime)
	return out
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
