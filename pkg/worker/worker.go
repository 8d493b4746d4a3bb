// Package worker is the Go SDK for Seek workers: container images that run one SeekJob each and speak
// worker protocol v1 (docs/worker-protocol.md). A worker is a Handler passed to Run:
//
//	func main() {
//		worker.Run(func(ctx context.Context, job *worker.Job) (any, error) {
//			var in struct {
//				Message string `json:"message"`
//			}
//			if err := job.Decode(&in); err != nil {
//				return nil, err // a Permanent error with reason "InvalidInput": exit 65, no retry
//			}
//			return map[string]string{"echo": in.Message}, nil
//		})
//	}
//
// Run reads the input from $SEEK_INPUT_PATH, calls the handler with a context that is canceled when
// the container gets SIGTERM (the job was canceled or timed out, or the pod is being evicted), writes
// the result or the error as JSON to $SEEK_RESULT_PATH and exits with the code the protocol expects:
//
//   - the handler returns a result: the result's JSON is written and the exit code is 0. A nil result
//     leaves the file empty: the job completes without a result. A result that does not encode to JSON
//     fails permanently with reason "InvalidResult"; one over protocol.MaxResultBytes (1 MiB) fails
//     permanently with reason "ResultTooLarge". A result over protocol.MaxMessageBytes (4096 bytes) is
//     stored in a Secret by the operator; in Job mode that needs the manager's dispatch endpoint, else
//     the job fails with "ResultTooLarge". Return larger outputs by reference.
//   - the handler returns an error made by Permanent: exit 65, never retried.
//   - an error made by Retryable or ExitCode: exit 1 or the chosen code; retried if the SeekWorker allows.
//   - any other error: exit 1 with reason "WorkerError", retried if the SeekWorker allows. Returned
//     after the context was canceled (by SIGTERM in Run), it is reported with reason "Interrupted",
//     still exit 1: a retryable failure. The exit code rarely matters then: the operator keeps nothing
//     from a canceled or timed-out job's pod, and replaces an evicted one without counting the attempt.
//   - the handler panics: the panic is recovered and logged with its stack; exit 1, reason "Panic".
//     Panics in goroutines the handler starts cannot be recovered and crash the process.
//
// Errors are written as {"message": ..., "reason": ...} (protocol.Error), plus any fields added with
// WithDetails, and cut to fit 4096 bytes. The SDK logs a line to stderr when the job ends, and the
// error message as the last line on failure: if the result file cannot be written, the kubelet falls
// back to that log tail. It never writes to stdout, and never logs to the result file.
//
// A job may run more than once (after a failed attempt, or when the pod is evicted): make external side
// effects idempotent, for example keyed by Job.UID. The root filesystem is read-only; use /tmp for
// scratch files. The package depends only on the standard library and pkg/protocol.
package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/seek-api/seek-operator/pkg/protocol"
)

// Handler does one job: it gets the job with its input and returns the result, any value that
// encodes to JSON (json.RawMessage for prepared JSON), or an error. The context is canceled when the
// job is being stopped; a handler should then return promptly, typically with ctx.Err().
type Handler func(ctx context.Context, job *Job) (any, error)

// Job is the job a worker runs: its identity, from the environment, and its input.
type Job struct {
	// Name is the SeekJob's name, its id within the namespace ($SEEK_JOB_NAME).
	Name string
	// Namespace is the SeekJob's namespace ($SEEK_JOB_NAMESPACE).
	Namespace string
	// UID is the SeekJob's UID ($SEEK_JOB_UID): unique across re-creations of a same-named job, and the
	// same for every attempt of one job, so a good idempotency key.
	UID string
	// Worker is the SeekWorker's name ($SEEK_WORKER).
	Worker string
	// Input is the job's input, a JSON value: null when the job has no input or the input file is
	// missing or empty.
	Input json.RawMessage
}

// Decode decodes the input into v, which should be a pointer, as json.Unmarshal does but strictly:
// object fields that v does not have are rejected. A null input leaves v unchanged. The error, if
// any, is Permanent with reason ReasonInvalidInput, so a handler can return it as it is: retrying the
// same input cannot help. Handlers that want lenient decoding can use json.Unmarshal(job.Input, v).
func (j *Job) Decode(v any) error {
	input := j.Input
	if len(bytes.TrimSpace(input)) == 0 {
		input = json.RawMessage("null")
	}
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Permanent(ReasonInvalidInput, fmt.Errorf("invalid input: %w", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Permanent(ReasonInvalidInput, errors.New("invalid input: more than one JSON value"))
	}
	return nil
}

// Reasons the SDK writes into protocol errors. Handlers may use them too.
const (
	// ReasonInvalidInput: the input file is not JSON, or Job.Decode failed. Permanent.
	ReasonInvalidInput = "InvalidInput"
	// ReasonReadInput: the input file exists but cannot be read. Retryable.
	ReasonReadInput = "ReadInput"
	// ReasonUnsupportedProtocol: $SEEK_PROTOCOL is set to a version other than protocol.Version.
	// Permanent.
	ReasonUnsupportedProtocol = "UnsupportedProtocol"
	// ReasonInvalidResult: the handler's result does not encode to JSON. Permanent.
	ReasonInvalidResult = "InvalidResult"
	// ReasonResultTooLarge: the result's JSON is over protocol.MaxResultBytes. Permanent.
	ReasonResultTooLarge = "ResultTooLarge"
	// ReasonWorkerError: the handler returned an error not made by Permanent, Retryable or ExitCode.
	// Retryable.
	ReasonWorkerError = "WorkerError"
	// ReasonInterrupted: the handler returned such an error after the context was canceled (SIGTERM).
	// Retryable.
	ReasonInterrupted = "Interrupted"
	// ReasonPanic: the handler panicked. Retryable.
	ReasonPanic = "Panic"
)

// Options configures Execute. The zero value reads everything from the process environment, as Run does.
type Options struct {
	// InputPath is the input file. Default: $SEEK_INPUT_PATH, else protocol.InputPath.
	InputPath string
	// ResultPath is the file the result or error is written to. Default: $SEEK_RESULT_PATH, else
	// protocol.ResultPath.
	ResultPath string
	// ProgressPath is the file Progress writes to. Default: $SEEK_PROGRESS_PATH; when that is unset,
	// Progress does nothing.
	ProgressPath string
	// Getenv looks up environment variables. Default: os.Getenv.
	Getenv func(string) string
	// Log receives the SDK's log lines. Default: os.Stderr.
	Log io.Writer
}

// Run runs the worker: it reads the job from the environment and the input file, calls h with a
// context canceled on SIGTERM or SIGINT, writes the result or error to the result file per protocol
// v1 and exits with the matching code (see the package documentation). It never returns. After the
// first signal a second one ends the process at once, without writing anything.
func Run(h Handler) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		stop() // restore the default: another signal ends the process
		// The cause is context.Canceled itself when stop ended the context, after Execute returned.
		if cause := context.Cause(ctx); cause != context.Canceled { //nolint:errorlint // identity: a signal's cause wraps context.Canceled too
			fmt.Fprintf(os.Stderr, "seek-worker: %v: canceling the job\n", cause)
		}
	}()
	code := Execute(ctx, h, Options{})
	stop()
	<-done // for the log line
	os.Exit(code)
}

// Execute is Run without the signal handling and os.Exit, for tests and for embedding: it runs one
// job with h and returns the exit code the process should end with. The result or error is written to
// the result file, except when that fails: then the failure is logged and the code is 1. Canceling
// ctx is what SIGTERM does in Run.
func Execute(ctx context.Context, h Handler, o Options) int {
	if ctx == nil {
		ctx = context.Background()
	}
	o = o.withDefaults()
	job, err := loadJob(o)
	var result any
	if err == nil {
		result, err = call(withProgress(ctx, o.ProgressPath), h, job, o.Log)
	}
	var data []byte
	if err == nil {
		data, err = encodeResult(result)
	}
	if err == nil {
		if werr := writeFile(o.ResultPath, data); werr != nil {
			fmt.Fprintf(o.Log, "seek-worker: %s: cannot write the result: %v\n", job.label(), werr)
			return 1
		}
		fmt.Fprintf(o.Log, "seek-worker: %s: succeeded (%d-byte result)\n", job.label(), len(data))
		return 0
	}

	if ctx.Err() != nil && !classified(err) {
		err = Retryable(ReasonInterrupted, fmt.Errorf("interrupted (%v): %w", context.Cause(ctx), err))
	}
	code, reason := Classify(err)
	details, _ := detailsOf(err)
	data, message, reason := encodeError(err.Error(), reason, details, o.Log)
	werr := writeFile(o.ResultPath, data)
	if werr != nil {
		fmt.Fprintf(o.Log, "seek-worker: %s: cannot write the error: %v\n", job.label(), werr)
		code = 1
	}
	// The last log line is the error: the kubelet uses the log tail when the result file is empty.
	if reason != "" {
		reason = " (" + reason + ")"
	}
	fmt.Fprintf(o.Log, "seek-worker: %s: failed with exit code %d%s: %s\n", job.label(), code, reason, message)
	return code
}

func (o Options) withDefaults() Options {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.InputPath == "" {
		o.InputPath = o.Getenv(protocol.EnvInputPath)
	}
	if o.InputPath == "" {
		o.InputPath = protocol.InputPath
	}
	if o.ResultPath == "" {
		o.ResultPath = o.Getenv(protocol.EnvResultPath)
	}
	if o.ResultPath == "" {
		o.ResultPath = protocol.ResultPath
	}
	if o.ProgressPath == "" {
		o.ProgressPath = o.Getenv(protocol.EnvProgressPath)
	}
	return o
}

// loadJob returns the job from the environment and the input file. Its error, if any, is classified;
// the job is returned even then, for the log.
func loadJob(o Options) (*Job, error) {
	job := &Job{
		Name:      o.Getenv(protocol.EnvJobName),
		Namespace: o.Getenv(protocol.EnvJobNamespace),
		UID:       o.Getenv(protocol.EnvJobUID),
		Worker:    o.Getenv(protocol.EnvWorker),
		Input:     json.RawMessage("null"),
	}
	if v := o.Getenv(protocol.EnvProtocol); v != "" && v != protocol.Version {
		return job, Permanent(ReasonUnsupportedProtocol,
			fmt.Errorf("this worker speaks worker protocol %s, not %s", protocol.Version, v))
	}
	raw, err := os.ReadFile(o.InputPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return job, nil
	case err != nil:
		return job, Retryable(ReasonReadInput, fmt.Errorf("read the input: %w", err))
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return job, nil
	}
	if !json.Valid(raw) {
		return job, Permanent(ReasonInvalidInput, fmt.Errorf("the input file %s is not valid JSON", o.InputPath))
	}
	job.Input = raw
	return job, nil
}

// label names the job in log lines.
func (j *Job) label() string {
	switch {
	case j.Name == "":
		return "job"
	case j.Namespace == "":
		return "job " + j.Name
	}
	return "job " + j.Namespace + "/" + j.Name
}

// call calls h, turning a panic into a Retryable error with reason ReasonPanic.
func call(ctx context.Context, h Handler, job *Job, log io.Writer) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(log, "seek-worker: %s: panic: %v\n%s", job.label(), p, debug.Stack())
			result, err = nil, Retryable(ReasonPanic, fmt.Errorf("the worker panicked: %v", p))
		}
	}()
	return h(ctx, job)
}

// encodeResult returns the result's JSON: compact, without HTML escaping, empty for a nil result.
// Its error is Permanent.
func encodeResult(result any) ([]byte, error) {
	if result == nil {
		return nil, nil
	}
	data, err := marshal(result)
	if err != nil {
		return nil, Permanent(ReasonInvalidResult, fmt.Errorf("the result does not encode to JSON: %w", err))
	}
	if len(data) > protocol.MaxResultBytes {
		return nil, Permanent(ReasonResultTooLarge, fmt.Errorf(
			"the result is %d bytes of JSON; at most %d fit: return larger outputs by reference",
			len(data), protocol.MaxResultBytes))
	}
	return data, nil
}

// marshal is json.Marshal without HTML escaping, which only makes the JSON longer.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeFile writes data to path in place. The result path is the container's termination message
// file, which the kubelet bind-mounts: it cannot be replaced by renaming a temporary file over it.
func writeFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err != nil {
		_ = f.Truncate(0) // rather nothing than a part, which would be taken for an error
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
