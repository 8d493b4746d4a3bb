// Package restapi translates between the Seek REST contract and SeekJob custom resources. It is the
// pure core of the REST frontend: job ids, request parsing and the response shape. It imports
// the API types and nothing of the controllers.
package restapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/jobview"
)

const (
	// CallbackURLField is the body field that becomes spec.callback.url rather than input.
	CallbackURLField = "callback_url"
	// CallbackEventsField is the body field that becomes spec.callback.events: ["started", "finished"];
	// ["finished"] when absent.
	CallbackEventsField = "callback_events"
	// MaxIdempotencyKeyLength bounds the Idempotency-Key header.
	MaxIdempotencyKeyLength = 255
	// AnnotationRequestHash records the hash of the request that created a SeekJob under an
	// Idempotency-Key, so a repeated key with a different body can be told apart.
	AnnotationRequestHash = "seek-api.com/request-sha256"

	randomNameLength = 26 // 130 bits of base32: unguessable
)

// LowerBase32 encodes random and hashed bytes in characters valid in Kubernetes names and API keys.
var LowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Error is the one error shape of the API: {"error": {"code", "message", "field"}} with an HTTP status.
type Error struct {
	Status int `json:"-"`
	// RetryAfter, in seconds, is sent as the Retry-After header when positive.
	RetryAfter int    `json:"-"`
	Code       string `json:"code"`
	Message    string `json:"message"`
	Field      string `json:"field,omitempty"`
	// Path is the SeekJob field the error is about (spec.timeout, spec.input/email), for admission
	// (see ValidateJob); Detail, when set, is what admission says after it instead of Message.
	Path   string `json:"-"`
	Detail string `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// MarshalJSON wraps the error in its envelope.
func (e *Error) MarshalJSON() ([]byte, error) {
	type body Error
	return json.Marshal(struct {
		Error body `json:"error"`
	}{body(*e)})
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: fmt.Sprintf(format, args...), Field: field}
}

// NameFromID returns the SeekJob name an id refers to, or a 404 error for anything that is not an id.
func NameFromID(id string) (string, error) {
	name, ok := strings.CutPrefix(id, jobview.IDPrefix)
	if !ok || len(validation.IsDNS1123Subdomain(name)) > 0 || len(name) > 63 {
		return "", &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no job %q", id)}
	}
	return name, nil
}

// SubmitRequest is a parsed job submission.
type SubmitRequest struct {
	// Input is the worker's input in the canonical form Kubernetes stores: exactly the bytes the worker
	// receives.
	Input          []byte
	CallbackURL    string
	CallbackEvents []seekv1alpha1.CallbackEvent
	JobOptions
	// RequestHash identifies the request for idempotency: the worker, input, callback and job options.
	RequestHash string
}

// ParseSubmit parses a submission body: a JSON object whose callback_url and callback_events, if
// present, are taken out and whose other members are the worker's input. Anything Kubernetes would not
// store exactly is a 400 naming the field (see checkJSON); the input is returned in the form the
// apiserver stores, so what is validated is what the worker gets.
func ParseSubmit(worker string, body []byte, opts JobOptions) (*SubmitRequest, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	fields, err := canonicalObject(body)
	if err != nil {
		return nil, err
	}
	req := &SubmitRequest{JobOptions: opts}
	if v, ok := fields[CallbackURLField]; ok {
		if req.CallbackURL, _ = v.(string); req.CallbackURL == "" {
			return nil, invalid(CallbackURLField, "callback_url must be a non-empty string")
		}
		delete(fields, CallbackURLField)
	}
	if v, ok := fields[CallbackEventsField]; ok {
		events, err := parseCallbackEvents(v)
		if err != nil {
			return nil, err
		}
		if req.CallbackURL == "" {
			return nil, invalid(CallbackEventsField, "callback_events needs a callback_url")
		}
		req.CallbackEvents = events
		delete(fields, CallbackEventsField)
	}
	input, err := storedForm(fields)
	if err != nil {
		return nil, err
	}
	req.Input = input
	sum := sha256.New()
	events := make([]string, len(req.CallbackEvents))
	for i, ev := range req.CallbackEvents {
		events[i] = string(ev)
	}
	for _, part := range [][]byte{[]byte(worker), input, []byte(req.CallbackURL), []byte(strings.Join(events, ",")),
		[]byte(durationText(req.Timeout)), []byte(durationText(req.Retention))} {
		fmt.Fprintf(sum, "%d:", len(part))
		sum.Write(part)
	}
	req.RequestHash = hex.EncodeToString(sum.Sum(nil))
	return req, nil
}

func durationText(d *time.Duration) string {
	if d == nil {
		return ""
	}
	return d.String()
}

// Job options are query parameters, not body fields: every body member but callback_url and
// callback_events is the worker's input, and a new reserved member could collide with an input field.
const (
	// TimeoutParam sets spec.timeout: a duration from 1s to the worker's timeouts.maximumTimeout.
	TimeoutParam = "timeout"
	// RetentionParam sets spec.ttlAfterFinished: a duration from 0s to MaxRetention.
	RetentionParam = "retention"
	// MaxRetention is the longest retention a job may ask for (the SeekJob API's bound).
	MaxRetention = 720 * time.Hour
	// DefaultMaximumTimeout is a worker's timeouts.maximumTimeout when it sets none (the CRD default).
	DefaultMaximumTimeout = time.Hour
)

// JobOptions are a submission's settings that are not input: the job's timeout and retention, nil
// for the worker's defaults.
type JobOptions struct {
	Timeout   *time.Duration
	Retention *time.Duration
}

// ParseJobOptions reads ?timeout= and ?retention= (Go durations in whole seconds: 90s, 15m, 2h) and
// checks them against the worker's bounds, so the apiserver and the controller accept what the API
// accepted.
func ParseJobOptions(q url.Values, w *seekv1alpha1.SeekWorker) (JobOptions, error) {
	var opts JobOptions
	var err error
	if opts.Timeout, err = durationParam(q, TimeoutParam, func(d time.Duration) *Error { return CheckTimeout(w, d) }); err != nil {
		return JobOptions{}, err
	}
	if opts.Retention, err = durationParam(q, RetentionParam, CheckRetention); err != nil {
		return JobOptions{}, err
	}
	return opts, nil
}

// maxDurationLength matches the SeekJob API's bound on duration strings.
const maxDurationLength = 32

func durationParam(q url.Values, name string, check func(time.Duration) *Error) (*time.Duration, error) {
	values, ok := q[name]
	if !ok {
		return nil, nil
	}
	if len(values) != 1 {
		return nil, invalid(name, "%s may be given once", name)
	}
	d, err := time.ParseDuration(values[0])
	if err != nil || d%time.Second != 0 || len(values[0]) > maxDurationLength {
		return nil, invalid(name, "%s must be a duration in whole seconds, like 90s, 15m or 2h", name)
	}
	if err := check(d); err != nil {
		return nil, err
	}
	return &d, nil
}

// shortDuration prints 1h rather than 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// JobName returns the name of a new SeekJob: random, or, with an Idempotency-Key, derived from the key
// so that the apiserver itself makes concurrent identical submissions collide on one object.
func JobName(namespace, idempotencyKey string) (string, error) {
	if idempotencyKey == "" {
		b := make([]byte, 17)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return LowerBase32.EncodeToString(b)[:randomNameLength], nil
	}
	if len(idempotencyKey) > MaxIdempotencyKeyLength {
		return "", invalid("Idempotency-Key", "Idempotency-Key must be at most %d characters", MaxIdempotencyKeyLength)
	}
	sum := sha256.Sum256([]byte(namespace + "\x00" + idempotencyKey))
	return "i" + LowerBase32.EncodeToString(sum[:])[:randomNameLength-1], nil
}

// parseCallbackEvents reads callback_events: a non-empty list of distinct "started", "finished" and
// "progress".
func parseCallbackEvents(v any) ([]seekv1alpha1.CallbackEvent, error) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, invalid(CallbackEventsField, `callback_events must be a non-empty list of "started", "finished" and "progress"`)
	}
	var out []seekv1alpha1.CallbackEvent
	for _, item := range list {
		n, ok := item.(string)
		if !ok {
			return nil, invalid(CallbackEventsField, `callback_events must be a non-empty list of "started", "finished" and "progress"`)
		}
		var ev seekv1alpha1.CallbackEvent
		switch n {
		case "started":
			ev = seekv1alpha1.CallbackEventStarted
		case "finished":
			ev = seekv1alpha1.CallbackEventFinished
		case "progress":
			ev = seekv1alpha1.CallbackEventProgress
		default:
			return nil, invalid(CallbackEventsField, `callback_events may hold only "started", "finished" and "progress", not %q`, n)
		}
		if slices.Contains(out, ev) {
			return nil, invalid(CallbackEventsField, "callback_events lists %q twice", n)
		}
		out = append(out, ev)
	}
	slices.Sort(out) // a set: the order given does not matter
	return out, nil
}

// NewSeekJob builds the SeekJob for a submission.
func NewSeekJob(namespace, name, worker string, req *SubmitRequest, idempotent bool) *seekv1alpha1.SeekJob {
	sj := &seekv1alpha1.SeekJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: seekv1alpha1.SeekJobSpec{
			WorkerName: seekv1alpha1.WorkerName(worker),
			Input:      seekv1alpha1.NewJSON(req.Input),
		},
	}
	if idempotent {
		sj.Annotations = map[string]string{AnnotationRequestHash: req.RequestHash}
	}
	if req.CallbackURL != "" {
		sj.Spec.Callback = &seekv1alpha1.Callback{URL: req.CallbackURL, Events: req.CallbackEvents}
	}
	if req.Timeout != nil {
		sj.Spec.Timeout = &metav1.Duration{Duration: *req.Timeout}
	}
	if req.Retention != nil {
		sj.Spec.TTLAfterFinished = &metav1.Duration{Duration: *req.Retention}
	}
	return sj
}

// ErrIdempotencyConflict means an Idempotency-Key was reused with a different request.
var ErrIdempotencyConflict = &Error{Status: http.StatusUnprocessableEntity, Code: "idempotency_conflict",
	Message: "this Idempotency-Key was used with a different request", Field: "Idempotency-Key"}

// SameRequest reports whether an existing SeekJob was created by this request (same idempotency hash).
func SameRequest(existing *seekv1alpha1.SeekJob, req *SubmitRequest) error {
	if existing.Annotations[AnnotationRequestHash] != req.RequestHash {
		return ErrIdempotencyConflict
	}
	return nil
}

// IsAPIError reports whether err is an *Error and returns it.
func IsAPIError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
