package worker

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"unicode/utf8"

	"github.com/seek-api/seek-operator/pkg/protocol"
)

// exitError is an error with the exit code and reason it is reported with.
type exitError struct {
	code   int
	reason string
	err    error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return "the worker failed (" + e.reason + ")"
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Permanent returns err as a permanent failure: the worker exits with code 65
// (protocol.ExitCodeNoRetry) and the job fails at once, however many retries the SeekWorker allows.
// Use it when running the job again cannot help, such as for bad input. The error is written as
// {"message": err.Error(), "reason": reason}; reason is an optional CamelCase cause such as
// "InvalidEmail". Permanent(reason, nil) returns an error whose message names the reason. The
// returned error wraps err, and keeps its meaning when wrapped further with fmt.Errorf and %w.
func Permanent(reason string, err error) error {
	return ExitCode(protocol.ExitCodeNoRetry, reason, err)
}

// Retryable returns err as a failure that may be retried: the worker exits with code 1, and the job
// runs again if the SeekWorker's spec.retries allows. It is Permanent's counterpart, for transient
// causes such as an unavailable dependency; an error made by none of these functions is retryable too,
// with reason "WorkerError".
func Retryable(reason string, err error) error {
	return ExitCode(1, reason, err)
}

// ExitCode returns err as a failure that makes the worker exit with code, which should be 1 to 255:
// other values are replaced by 1 (0 would report success). 65 is permanent, as with Permanent; every
// other code may be retried. Codes above 128 look like deaths by signal (143 for SIGTERM) to people
// reading the job's status. The error is written as with Permanent.
func ExitCode(code int, reason string, err error) error {
	if code < 1 || code > 255 {
		code = 1
	}
	return &exitError{code: code, reason: reason, err: err}
}

// Classify returns the exit code and reason Execute reports err with: those of the outermost error
// made by Permanent, Retryable or ExitCode in err's chain, else 1 and ReasonWorkerError. It ignores
// interruption: Execute reports an unclassified error returned after the context was canceled with
// ReasonInterrupted. Classify is meant for tests of handlers; it returns 0 and "" for a nil error.
func Classify(err error) (exitCode int, reason string) {
	if err == nil {
		return 0, ""
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code, e.reason
	}
	return 1, ReasonWorkerError
}

// classified reports whether err's chain has an error made by Permanent, Retryable or ExitCode.
func classified(err error) bool {
	_, ok := errors.AsType[*exitError](err)
	return ok
}

// detailsError is an error with extra fields for its JSON.
type detailsError struct {
	err     error
	details map[string]any
}

func (e *detailsError) Error() string { return e.err.Error() }

func (e *detailsError) Unwrap() error { return e.err }

// WithDetails returns err with extra fields for the error JSON written to the result file, next to
// "message" and "reason": they end up in the SeekJob's status.error.details. The values must encode to
// JSON; keys "message" and "reason" are ignored. Fields are dropped if the error would not fit in
// protocol.MaxMessageBytes with them. WithDetails does not change how err is classified; with several
// WithDetails in a chain, the outermost wins. WithDetails(nil, ...) returns nil.
func WithDetails(err error, details map[string]any) error {
	if err == nil {
		return nil
	}
	return &detailsError{err: err, details: maps.Clone(details)}
}

// detailsOf returns the details of the outermost WithDetails in err's chain.
func detailsOf(err error) (map[string]any, bool) {
	if e, ok := errors.AsType[*detailsError](err); ok {
		return e.details, true
	}
	return nil, false
}

const (
	// ellipsis marks a message cut to fit.
	ellipsis = "…"
	// maxReasonBytes is the length reasons are cut to.
	maxReasonBytes = 128
)

// encodeError returns the error JSON for message, reason and details, at most protocol.MaxMessageBytes
// long: without the details if they do not encode or do not fit, and then with the message cut. A
// reason over maxReasonBytes is cut too. It also returns the message and the reason as written.
// Dropped details are logged to log.
func encodeError(message, reason string, details map[string]any, log io.Writer) ([]byte, string, string) {
	if message == "" {
		message = "the worker failed"
		if reason != "" {
			message += " (" + reason + ")"
		}
	}
	if len(reason) > maxReasonBytes { // a reason is a short CamelCase word
		n := maxReasonBytes
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	if !utf8.ValidString(message) {
		message = string([]rune(message)) // replaces invalid bytes by U+FFFD, as JSON encoding would
	}
	fields := make(map[string]any, len(details)+2)
	for k, v := range details {
		if k != "message" && k != "reason" {
			fields[k] = v
		}
	}
	if len(fields) > 0 {
		fields["message"], fields["reason"] = message, reason
		data, err := marshal(fields)
		switch {
		case err != nil:
			fmt.Fprintf(log, "seek-worker: dropping the error details: %v\n", err)
		case len(data) > protocol.MaxMessageBytes:
			fmt.Fprintf(log, "seek-worker: dropping the error details: the error would be %d bytes; at most %d fit\n",
				len(data), protocol.MaxMessageBytes)
		default:
			return data, message, reason
		}
	}
	encode := func(message string) []byte {
		data, err := marshal(protocol.Error{Message: message, Reason: reason})
		if err != nil { // two strings always encode
			panic(fmt.Sprintf("worker: encode an error: %v", err))
		}
		return data
	}
	if data := encode(message); len(data) <= protocol.MaxMessageBytes {
		return data, message, reason
	}
	// Find the longest prefix of the message that fits with the ellipsis. Only the first
	// MaxMessageBytes bytes can fit, and a longer prefix never has shorter JSON.
	m := message[:min(len(message), protocol.MaxMessageBytes)]
	lo, hi := 0, len(m) // m[:lo] fits
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(encode(m[:mid]+ellipsis)) <= protocol.MaxMessageBytes {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	for lo > 0 && lo < len(m) && !utf8.RuneStart(m[lo]) {
		lo--
	}
	message = m[:lo] + ellipsis
	return encode(message), message, reason
}
