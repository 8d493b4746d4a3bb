package restapi

import (
	"fmt"
	"net/http"
	"time"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/webhook"
	"github.com/seek-api/seek-operator/internal/workerschema"
)

// The checks of a job against its worker, shared by the REST API (a submission) and the frontend's
// admission webhook (a SeekJob created with kubectl): one function per rule, one wording. Each returns
// the REST answer (Status, Code, Field: the REST field, Message) and, for admission, the SeekJob field
// it is about (Path) and the words that follow it there (Detail; Message when empty).

// SeekJob field paths, as admission names them.
const (
	PathWorkerName       = "spec.workerName"
	PathInput            = "spec.input"
	PathTimeout          = "spec.timeout"
	PathTTLAfterFinished = "spec.ttlAfterFinished"
	PathCallbackURL      = "spec.callback.url"
)

// AdmissionDetail is what admission says after the error's Path.
func (e *Error) AdmissionDetail() string {
	if e.Detail != "" {
		return e.Detail
	}
	return e.Message
}

// WorkerNotFound is the answer for a job naming a SeekWorker that does not exist.
func WorkerNotFound(name string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no worker %q", name), Path: PathWorkerName}
}

// MaximumTimeout is the longest timeout a worker accepts: its timeouts.maximumTimeout, 1h when unset.
func MaximumTimeout(w *seekv1alpha1.SeekWorker) time.Duration {
	if w.Spec.Timeouts.MaximumTimeout != nil {
		return w.Spec.Timeouts.MaximumTimeout.Duration
	}
	return DefaultMaximumTimeout
}

// CheckTimeout checks a job's timeout against its worker: from 1s to the worker's maximumTimeout.
func CheckTimeout(w *seekv1alpha1.SeekWorker, d time.Duration) *Error {
	return checkRange(TimeoutParam, PathTimeout, d, time.Second, MaximumTimeout(w), fmt.Sprintf("worker %q's timeouts.maximumTimeout", w.Name))
}

// CheckRetention checks a job's retention (spec.ttlAfterFinished): from 0s to MaxRetention.
func CheckRetention(d time.Duration) *Error {
	return checkRange(RetentionParam, PathTTLAfterFinished, d, 0, MaxRetention, "the API's maximum")
}

func checkRange(name, path string, d, lo, hi time.Duration, hiName string) *Error {
	if d >= lo && d <= hi {
		return nil
	}
	e := invalid(name, "%s must be from %s to %s (%s)", name, shortDuration(lo), shortDuration(hi), hiName)
	e.Path = path
	return e
}

// CheckInput applies the worker's input rules, as the job controller does: the size cap
// (limits.maxInputBytes), then the input JSON Schema. input is the JSON text Kubernetes stores.
func CheckInput(w *seekv1alpha1.SeekWorker, input []byte) *Error {
	switch e := workerschema.CheckInput(w, input); {
	case e == nil:
		return nil
	case e.Problem == workerschema.InputTooLarge:
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "input_too_large", Path: PathInput,
			Message: fmt.Sprintf("the input is %d bytes; worker %q accepts at most %d", e.Size, w.Name, e.Limit)}
	case e.Problem == workerschema.SchemaBroken:
		return &Error{Status: http.StatusServiceUnavailable, Code: "worker_not_ready", Path: PathInput,
			Message: fmt.Sprintf("worker %q has an invalid input schema", w.Name)}
	default:
		// REST: "input/email: is required", field "/email"; admission: "spec.input/email: is required".
		return &Error{Status: http.StatusBadRequest, Code: "invalid_input", Message: e.Field.Error(), Field: e.Field.Field,
			Path: PathInput + e.Field.Field, Detail: e.Field.Message}
	}
}

// CheckCallbackURL applies the SSRF policy's static rules to a callback URL (the manager checks the
// addresses again at every delivery).
func CheckCallbackURL(p webhook.Policy, url string) *Error {
	if err := p.CheckURL(url); err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_callback_url", Field: CallbackURLField, Message: err.Error(), Path: PathCallbackURL}
	}
	return nil
}

// ValidateJob applies to a SeekJob every check the REST API applies to a submission for worker w,
// in the same order: timeout, retention, input, callback URL. It returns every violation (the REST
// API stops at the first). A job's worker name is checked by whoever finds the worker.
func ValidateJob(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, p webhook.Policy) []*Error {
	var errs []*Error
	add := func(e *Error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	if sj.Spec.Timeout != nil {
		add(CheckTimeout(w, sj.Spec.Timeout.Duration))
	}
	if sj.Spec.TTLAfterFinished != nil {
		add(CheckRetention(sj.Spec.TTLAfterFinished.Duration))
	}
	add(CheckInput(w, InputText(sj)))
	if sj.Spec.Callback != nil {
		add(CheckCallbackURL(p, sj.Spec.Callback.URL))
	}
	return errs
}

// InputText is a SeekJob's input as the worker receives it: its JSON text, "null" when it has none.
func InputText(sj *seekv1alpha1.SeekJob) []byte {
	if sj.Spec.Input == nil || len(sj.Spec.Input.Raw) == 0 {
		return []byte("null")
	}
	return sj.Spec.Input.Raw
}
