package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/seek-api/seek-operator/pkg/protocol"
)

// outcome is what one Execute did.
type outcome struct {
	code   int
	result string // the result file; "<none>" when it was not created
	log    string
}

// execute runs h with Execute in a temporary directory. input is the input file's content; nil means
// no input file. env adds to the protocol variables, which point into the directory.
func execute(t *testing.T, ctx context.Context, h Handler, input []byte, env map[string]string) outcome {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{
		protocol.EnvProtocol:   protocol.Version,
		protocol.EnvInputPath:  filepath.Join(dir, "input.json"),
		protocol.EnvResultPath: filepath.Join(dir, "result.json"),
	}
	for k, v := range env {
		vars[k] = v
	}
	if input != nil {
		if err := os.WriteFile(vars[protocol.EnvInputPath], input, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	code := Execute(ctx, h, Options{Getenv: func(k string) string { return vars[k] }, Log: &log})
	o := outcome{code: code, result: "<none>", log: log.String()}
	if data, err := os.ReadFile(vars[protocol.EnvResultPath]); err == nil {
		o.result = string(data)
	}
	return o
}

// echoMessage decodes {"message": string} and returns {"echo": message}.
func echoMessage(_ context.Context, job *Job) (any, error) {
	var in struct {
		Message string `json:"message"`
	}
	if err := job.Decode(&in); err != nil {
		return nil, err
	}
	return map[string]string{"echo": in.Message}, nil
}

// returns is a handler that returns result and err.
func returns(result any, err error) Handler {
	return func(context.Context, *Job) (any, error) { return result, err }
}

// describeJob returns the job it gets.
func describeJob(_ context.Context, job *Job) (any, error) { return job, nil }

// waitForCancel returns err once ctx is canceled.
func waitForCancel(err error) Handler {
	return func(ctx context.Context, _ *Job) (any, error) {
		<-ctx.Done()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("waiting: %w", ctx.Err())
	}
}

func TestExecute(t *testing.T) {
	canceled, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("terminated signal received"))

	long := strings.Repeat("x", protocol.MaxResultBytes-2) // a JSON string of exactly 1 MiB

	for _, tc := range []struct {
		name    string
		ctx     context.Context
		h       Handler
		input   []byte // nil: no input file
		env     map[string]string
		code    int
		result  string
		inLog   string
		notLogs string
	}{{
		name:   "success",
		h:      echoMessage,
		input:  []byte(`{"message": "hello"}`),
		code:   0,
		result: `{"echo":"hello"}`,
		inLog:  "seek-worker: job: succeeded (16-byte result)",
	}, {
		name:   "nil result leaves the file empty",
		h:      returns(nil, nil),
		input:  []byte(`{}`),
		code:   0,
		result: ``,
	}, {
		name:   "raw JSON result is compacted",
		h:      returns(json.RawMessage(" {\"a\" : [1, 2]}\n"), nil),
		code:   0,
		result: `{"a":[1,2]}`,
	}, {
		name:   "no HTML escaping",
		h:      returns("<a & b>", nil),
		code:   0,
		result: `"<a & b>"`,
	}, {
		name:   "result of exactly 1 MiB",
		h:      returns(long, nil),
		code:   0,
		result: `"` + long + `"`,
	}, {
		name:   "result over 1 MiB",
		h:      returns(long+"x", nil),
		code:   65,
		result: `{"message":"the result is 1048577 bytes of JSON; at most 1048576 fit: return larger outputs by reference","reason":"ResultTooLarge"}`,
	}, {
		name:   "result that is not JSON",
		h:      returns(math.Inf(1), nil),
		code:   65,
		result: `{"message":"the result does not encode to JSON: json: unsupported value: +Inf","reason":"InvalidResult"}`,
	}, {
		name:   "permanent error",
		h:      returns(nil, Permanent("InvalidEmail", errors.New("the email address is not valid"))),
		code:   65,
		result: `{"message":"the email address is not valid","reason":"InvalidEmail"}`,
		inLog:  "failed with exit code 65 (InvalidEmail): the email address is not valid\n",
	}, {
		name:   "wrapped permanent error",
		h:      returns(nil, fmt.Errorf("check: %w", Permanent("InvalidEmail", errors.New("no @")))),
		code:   65,
		result: `{"message":"check: no @","reason":"InvalidEmail"}`,
	}, {
		name:   "permanent error without cause",
		h:      returns(nil, Permanent("Unwanted", nil)),
		code:   65,
		result: `{"message":"the worker failed (Unwanted)","reason":"Unwanted"}`,
	}, {
		name:   "retryable error",
		h:      returns(nil, Retryable("Unavailable", errors.New("the database is down"))),
		code:   1,
		result: `{"message":"the database is down","reason":"Unavailable"}`,
	}, {
		name:   "exit code",
		h:      returns(nil, ExitCode(42, "", errors.New("why not"))),
		code:   42,
		result: `{"message":"why not"}`,
	}, {
		name:   "exit code 0 becomes 1",
		h:      returns(nil, ExitCode(0, "Zero", errors.New("zero"))),
		code:   1,
		result: `{"message":"zero","reason":"Zero"}`,
	}, {
		name:   "exit code 256 becomes 1",
		h:      returns(nil, ExitCode(256, "Big", errors.New("big"))),
		code:   1,
		result: `{"message":"big","reason":"Big"}`,
	}, {
		name:   "plain error",
		h:      returns(nil, errors.New("something broke")),
		code:   1,
		result: `{"message":"something broke","reason":"WorkerError"}`,
	}, {
		name:   "empty error message",
		h:      returns(nil, errors.New("")),
		code:   1,
		result: `{"message":"the worker failed (WorkerError)","reason":"WorkerError"}`,
	}, {
		name:   "error with details",
		h:      returns(nil, WithDetails(Permanent("Bad", errors.New("bad")), map[string]any{"field": "email", "count": 2, "message": "ignored", "reason": "ignored"})),
		code:   65,
		result: `{"count":2,"field":"email","message":"bad","reason":"Bad"}`,
	}, {
		name:   "details inside a permanent error",
		h:      returns(nil, Permanent("Bad", WithDetails(errors.New("bad"), map[string]any{"x": []int{1}}))),
		code:   65,
		result: `{"message":"bad","reason":"Bad","x":[1]}`,
	}, {
		name:   "details that do not fit are dropped",
		h:      returns(nil, WithDetails(errors.New("bad"), map[string]any{"blob": long})),
		code:   1,
		result: `{"message":"bad","reason":"WorkerError"}`,
		inLog:  "dropping the error details",
	}, {
		name:   "details that do not encode are dropped",
		h:      returns(nil, WithDetails(errors.New("bad"), map[string]any{"c": make(chan int)})),
		code:   1,
		result: `{"message":"bad","reason":"WorkerError"}`,
		inLog:  "dropping the error details",
	}, {
		name:  "invalid input for Decode",
		h:     echoMessage,
		input: []byte(`{"message": 42}`),
		code:  65,
		inLog: "(InvalidInput): invalid input: json: cannot unmarshal number ", // the rest is encoding/json's
	}, {
		name:   "unknown field for Decode",
		h:      echoMessage,
		input:  []byte(`{"message": "hi", "extra": true}`),
		code:   65,
		result: `{"message":"invalid input: json: unknown field \"extra\"","reason":"InvalidInput"}`,
	}, {
		name:   "input file that is not JSON",
		h:      func(context.Context, *Job) (any, error) { panic("the handler must not run") },
		input:  []byte(`{"message":`),
		code:   65,
		inLog:  "(InvalidInput): the input file ",
		result: "",
	}, {
		name:   "panic",
		h:      func(context.Context, *Job) (any, error) { panic("boom") },
		code:   1,
		result: `{"message":"the worker panicked: boom","reason":"Panic"}`,
		inLog:  "panic: boom\ngoroutine ",
	}, {
		name:   "nil handler",
		code:   1,
		inLog:  "(Panic): the worker panicked: runtime error",
		result: "",
	}, {
		name:   "canceled context",
		ctx:    canceled,
		h:      waitForCancel(nil),
		code:   1,
		result: `{"message":"interrupted (terminated signal received): waiting: context canceled","reason":"Interrupted"}`,
	}, {
		name:   "canceled context, plain error",
		ctx:    canceled,
		h:      waitForCancel(errors.New("stopped")),
		code:   1,
		result: `{"message":"interrupted (terminated signal received): stopped","reason":"Interrupted"}`,
	}, {
		name:   "canceled context, permanent error",
		ctx:    canceled,
		h:      waitForCancel(Permanent("Bad", errors.New("bad"))),
		code:   65,
		result: `{"message":"bad","reason":"Bad"}`,
	}, {
		name:   "canceled context, result",
		ctx:    canceled,
		h:      returns("done anyway", nil),
		code:   0,
		result: `"done anyway"`,
	}, {
		name:   "handler's own deadline is a plain error",
		h:      returns(nil, fmt.Errorf("call the API: %w", context.DeadlineExceeded)),
		code:   1,
		result: `{"message":"call the API: context deadline exceeded","reason":"WorkerError"}`,
	}, {
		name:   "missing input file",
		h:      describeJob,
		code:   0,
		result: `{"Name":"","Namespace":"","UID":"","Worker":"","Input":null}`,
	}, {
		name:   "empty input file",
		h:      describeJob,
		input:  []byte(" \n"),
		code:   0,
		result: `{"Name":"","Namespace":"","UID":"","Worker":"","Input":null}`,
	}, {
		name:  "job from the environment",
		h:     describeJob,
		input: []byte("[1, 2]\n"),
		env: map[string]string{
			protocol.EnvJobName:      "job-1",
			protocol.EnvJobNamespace: "team-a",
			protocol.EnvJobUID:       "0b7e2a36-6a3b-4c1e-9f1c-1d7f3c4b5a69",
			protocol.EnvWorker:       "echo",
		},
		code:   0,
		result: `{"Name":"job-1","Namespace":"team-a","UID":"0b7e2a36-6a3b-4c1e-9f1c-1d7f3c4b5a69","Worker":"echo","Input":[1,2]}`,
		inLog:  "seek-worker: job team-a/job-1: succeeded",
	}, {
		name:   "unset protocol version",
		h:      returns(true, nil),
		env:    map[string]string{protocol.EnvProtocol: ""},
		code:   0,
		result: `true`,
	}, {
		name:   "unsupported protocol version",
		h:      func(context.Context, *Job) (any, error) { panic("the handler must not run") },
		env:    map[string]string{protocol.EnvProtocol: "v2"},
		code:   65,
		result: `{"message":"this worker speaks worker protocol v1, not v2","reason":"UnsupportedProtocol"}`,
	}, {
		name:   "unwritable result path",
		h:      returns("ok", nil),
		env:    map[string]string{protocol.EnvResultPath: filepath.Join(t.TempDir(), "missing", "result.json")},
		code:   1,
		result: "<none>",
		inLog:  "cannot write the result: open ",
	}, {
		name:    "unwritable result path for an error",
		h:       returns(nil, Permanent("Bad", errors.New("the input is bad"))),
		env:     map[string]string{protocol.EnvResultPath: filepath.Join(t.TempDir(), "missing", "result.json")},
		code:    1,
		result:  "<none>",
		inLog:   "cannot write the error: open ",
		notLogs: "succeeded",
	}, {
		name:   "unreadable input",
		h:      func(context.Context, *Job) (any, error) { panic("the handler must not run") },
		env:    map[string]string{protocol.EnvInputPath: t.TempDir()}, // a directory
		code:   1,
		inLog:  "(ReadInput): read the input: read ",
		result: "",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			got := execute(t, ctx, tc.h, tc.input, tc.env)
			if got.code != tc.code {
				t.Errorf("exit code %d, want %d; log:\n%s", got.code, tc.code, got.log)
			}
			if tc.result != "" || got.code == 0 {
				if got.result != tc.result {
					t.Errorf("result file:\n%s\nwant:\n%s", got.result, tc.result)
				}
			}
			if got.code != 0 && got.result != "<none>" {
				var e protocol.Error
				if err := json.Unmarshal([]byte(got.result), &e); err != nil || e.Message == "" {
					t.Errorf("the error %s is not a protocol error (%v)", got.result, err)
				}
				// The kubelet falls back to the log tail: the last line must be the error.
				lines := strings.Split(strings.TrimSuffix(got.log, "\n"), "\n")
				if last := lines[len(lines)-1]; !strings.HasSuffix(last, ": "+e.Message) {
					t.Errorf("the last log line %q does not end with the message %q", last, e.Message)
				}
			}
			if !strings.Contains(got.log, tc.inLog) {
				t.Errorf("log:\n%s\nwant it to contain %q", got.log, tc.inLog)
			}
			if tc.notLogs != "" && strings.Contains(got.log, tc.notLogs) {
				t.Errorf("log:\n%s\nwant it not to contain %q", got.log, tc.notLogs)
			}
			if !strings.HasSuffix(got.log, "\n") || strings.Count(got.log, "\n") > 2 && !strings.Contains(got.log, "panic") {
				t.Errorf("want a line or two of log, got:\n%s", got.log)
			}
		})
	}
}

func TestExecuteOptions(t *testing.T) {
	dir := t.TempDir()
	input, result := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	if err := os.WriteFile(input, []byte(`{"message":"from options"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(result, []byte("stale content that is longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == protocol.EnvInputPath || k == protocol.EnvResultPath {
			return filepath.Join(dir, "from-env")
		}
		return ""
	}
	code := Execute(context.Background(), echoMessage, Options{InputPath: input, ResultPath: result, Getenv: env, Log: &bytes.Buffer{}})
	data, err := os.ReadFile(result)
	if code != 0 || err != nil || string(data) != `{"echo":"from options"}` {
		t.Errorf("Execute = %d, result %q (%v)", code, data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "from-env")); err == nil {
		t.Error("the paths from the environment were used")
	}
}

func TestDecode(t *testing.T) {
	type target struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	for _, tc := range []struct {
		input json.RawMessage
		want  target
		err   string
	}{
		{input: json.RawMessage(`{"a": 1, "b": "x"}`), want: target{A: 1, B: "x"}},
		{input: json.RawMessage(`{"a": 1}`), want: target{A: 1, B: "keep"}},
		{input: json.RawMessage(`null`), want: target{A: 7, B: "keep"}},
		{input: nil, want: target{A: 7, B: "keep"}},
		{input: json.RawMessage(`{"a": "1"}`), err: "invalid input: json: cannot unmarshal string"},
		{input: json.RawMessage(`{"c": 1}`), err: `invalid input: json: unknown field "c"`},
		{input: json.RawMessage(`[1]`), err: "invalid input: json: cannot unmarshal array"},
		{input: json.RawMessage(`{} {}`), err: "invalid input: more than one JSON value"},
		{input: json.RawMessage(`{`), err: "invalid input: unexpected EOF"},
	} {
		got := target{A: 7, B: "keep"}
		err := (&Job{Input: tc.input}).Decode(&got)
		if tc.err == "" {
			if err != nil {
				t.Errorf("Decode(%s): %v", tc.input, err)
			} else if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode(%s) (-want +got):\n%s", tc.input, diff)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("Decode(%s) = %v, want an error starting with %q", tc.input, err, tc.err)
		}
		if code, reason := Classify(err); code != protocol.ExitCodeNoRetry || reason != ReasonInvalidInput {
			t.Errorf("Decode(%s) error classified as %d %q", tc.input, code, reason)
		}
	}
}

func TestClassify(t *testing.T) {
	cause := errors.New("cause")
	for _, tc := range []struct {
		err    error
		code   int
		reason string
	}{
		{nil, 0, ""},
		{cause, 1, ReasonWorkerError},
		{Permanent("P", cause), 65, "P"},
		{Retryable("R", cause), 1, "R"},
		{ExitCode(3, "E", cause), 3, "E"},
		{ExitCode(-1, "E", cause), 1, "E"},
		{fmt.Errorf("outer: %w", Permanent("P", Retryable("R", cause))), 65, "P"},
		{errors.Join(cause, Retryable("R", cause)), 1, "R"},
		{WithDetails(ExitCode(9, "D", cause), map[string]any{"k": 1}), 9, "D"},
		{context.Canceled, 1, ReasonWorkerError},
	} {
		code, reason := Classify(tc.err)
		if code != tc.code || reason != tc.reason {
			t.Errorf("Classify(%v) = %d, %q; want %d, %q", tc.err, code, reason, tc.code, tc.reason)
		}
	}
	if err := Permanent("P", cause); !errors.Is(err, cause) || err.Error() != "cause" {
		t.Errorf("Permanent does not wrap its cause: %v", err)
	}
	if err := WithDetails(cause, nil); !errors.Is(err, cause) || err.Error() != "cause" {
		t.Errorf("WithDetails does not wrap its cause: %v", err)
	}
	if WithDetails(nil, map[string]any{"k": 1}) != nil {
		t.Error("WithDetails(nil) is not nil")
	}
}

func TestEncodeErrorFits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		message string
		reason  string
	}{
		{"ascii", strings.Repeat("a", 10000), "Long"},
		{"exactly at the limit", strings.Repeat("a", protocol.MaxMessageBytes-len(`{"message":"","reason":"Long"}`)), "Long"},
		{"multi-byte runes", strings.Repeat("é€😀", 2000), "Long"},
		{"escaped characters", strings.Repeat("\x01\"\\", 3000), "Long"},
		{"invalid UTF-8", strings.Repeat("\xff", 5000), ""},
		{"huge reason", "short message", strings.Repeat("R", 5000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			data, message, reason := encodeError(tc.message, tc.reason, nil, &log)
			if len(data) > protocol.MaxMessageBytes {
				t.Fatalf("%d bytes", len(data))
			}
			var e protocol.Error
			if err := json.Unmarshal(data, &e); err != nil {
				t.Fatalf("%s: %v", data, err)
			}
			if e.Message != message || !utf8.ValidString(e.Message) || e.Message == "" {
				t.Errorf("message %q, returned %q", e.Message, message)
			}
			if e.Reason != reason || len(reason) > maxReasonBytes || !strings.HasPrefix(tc.reason, reason) {
				t.Errorf("reason %q, returned %q", e.Reason, reason)
			}
			fits := len(tc.message) <= protocol.MaxMessageBytes-len(`{"message":"","reason":"Long"}`) && !strings.Contains(tc.message, "\x01")
			if fits && utf8.ValidString(tc.message) && e.Message != tc.message {
				t.Errorf("a message that fits was changed to %q", e.Message)
			}
			if !fits && (!strings.HasSuffix(e.Message, ellipsis) || len(data) < protocol.MaxMessageBytes-16) {
				t.Errorf("a message that does not fit was cut to %d bytes: %q", len(data), e.Message)
			}
		})
	}
}

func TestErrorWrittenOverStaleResult(t *testing.T) {
	// A handler may have written to the result file itself; the error replaces all of it.
	dir := t.TempDir()
	result := filepath.Join(dir, "result.json")
	h := func(context.Context, *Job) (any, error) {
		if err := os.WriteFile(result, bytes.Repeat([]byte("x"), 10000), 0o600); err != nil {
			return nil, err
		}
		return nil, Permanent("Bad", errors.New("bad"))
	}
	code := Execute(context.Background(), h, Options{
		InputPath:  filepath.Join(dir, "none"),
		ResultPath: result,
		Getenv:     func(string) string { return "" },
		Log:        &bytes.Buffer{},
	})
	data, _ := os.ReadFile(result)
	if code != 65 || string(data) != `{"message":"bad","reason":"Bad"}` {
		t.Errorf("Execute = %d, result %q", code, data)
	}
}

func TestProgress(t *testing.T) {
	dir := t.TempDir()
	progress := filepath.Join(dir, "progress.json")
	input := filepath.Join(dir, "input.json")
	if err := os.WriteFile(input, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var seen []protocol.Progress
	h := func(ctx context.Context, _ *Job) (any, error) {
		for _, step := range []struct {
			f   float64
			msg string
		}{{0.25, "a"}, {2, strings.Repeat("é", 200)}, {math.NaN(), ""}} {
			if err := Progress(ctx, step.f, step.msg); err != nil {
				return nil, err
			}
			raw, err := os.ReadFile(progress)
			if err != nil {
				return nil, err
			}
			var p protocol.Progress
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, err
			}
			seen = append(seen, p)
		}
		return nil, nil
	}
	code := Execute(context.Background(), h, Options{InputPath: input, ResultPath: filepath.Join(dir, "result.json"), ProgressPath: progress, Log: io.Discard})
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	want := []protocol.Progress{
		{Fraction: 0.25, Message: "a"},
		{Fraction: 1, Message: strings.Repeat("é", 128)}, // clamped; 256 bytes of 2-byte runes
		{Fraction: 0},
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("progress reports (-want +got):\n%s", diff)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".progress-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// Without a progress path (Job mode), Progress does nothing.
	code = Execute(context.Background(), func(ctx context.Context, _ *Job) (any, error) {
		return nil, Progress(ctx, 0.5, "x")
	}, Options{InputPath: input, ResultPath: filepath.Join(dir, "result.json"), Getenv: func(string) string { return "" }, Log: io.Discard})
	if code != 0 {
		t.Errorf("exit code without a progress path = %d", code)
	}
}
