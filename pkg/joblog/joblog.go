// Package joblog frames the jobs of a pool pod in its container log and takes one job's lines back
// out. A pool pod runs job after job, one at a time; its runner (internal/runner) is the only writer
// of the container's log and writes, in one ordered stream:
//
//	seek-runner: begin job <namespace>/<name> uid=<uid> attempt=<n>
//	... the job's stdout and stderr, line by line ...
//	seek-runner: end job <namespace>/<name> uid=<uid> attempt=<n>: <how it ended>
//
// A worker cannot forge a marker: every line of the runner's own starts with Prefix, and the runner
// escapes a worker's line that starts with RunnerTag by writing EscapePrefix before it (see Escape).
// So a line that starts with Prefix is the runner's. The REST frontend reads the pod's log from
// about the attempt's start and keeps the lines between the attempt's begin marker and the next line
// of the runner's (Filter), the last of them within bounds (Tail).
//
// It has no Kubernetes code: the runner and the frontend share it.
package joblog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// RunnerTag starts every line of the runner's own.
	RunnerTag = "seek-runner:"
	// Prefix is RunnerTag and the space after it.
	Prefix = RunnerTag + " "
	// EscapePrefix is written before a worker's line that starts with RunnerTag.
	EscapePrefix = "> "
	// MaxLineBytes is the longest line the runner writes: a worker's longer line is split into lines of
	// at most this many bytes (newline included), each escaped on its own.
	MaxLineBytes = 16 * 1024
)

// Attempt names one attempt of a job.
type Attempt struct {
	Namespace, Name, UID string
	Attempt              int32
}

func (a Attempt) label() string {
	return fmt.Sprintf("job %s/%s uid=%s attempt=%d", a.Namespace, a.Name, a.UID, a.Attempt)
}

// BeginLine is the marker the runner writes before a's process starts, newline included.
func BeginLine(a Attempt) string { return Prefix + "begin " + a.label() + "\n" }

// EndLine is the marker the runner writes once a's process has ended and its output is written,
// with how it ended (summary), newline included.
func EndLine(a Attempt, summary string) string {
	return Prefix + "end " + a.label() + ": " + summary + "\n"
}

// Escaped reports whether a worker's line must be escaped before it is written to the log: it starts
// with RunnerTag, so it could pass for one of the runner's lines.
func Escaped(line []byte) bool { return bytes.HasPrefix(line, []byte(RunnerTag)) }

// Filter picks one attempt's lines out of a pool pod's log: the lines after the attempt's begin marker
// up to the next line of the runner's (its end marker, or a later job's begin if the runner never
// wrote the end). The zero value is not usable: use NewFilter.
type Filter struct {
	begin string
	state filterState
}

type filterState int

const (
	before filterState = iota
	inside
	after
)

// NewFilter returns a filter for a's lines.
func NewFilter(a Attempt) *Filter { return &Filter{begin: strings.TrimSuffix(BeginLine(a), "\n")} }

// Line classifies one line of the log, without its newline: keep when it is the attempt's output,
// done once the attempt's output has ended (no later line is the attempt's).
func (f *Filter) Line(line []byte) (keep, done bool) {
	switch f.state {
	case before:
		if string(line) == f.begin {
			f.state = inside
		}
		return false, false
	case inside:
		if bytes.HasPrefix(line, []byte(Prefix+"begin ")) || bytes.HasPrefix(line, []byte(Prefix+"end ")) {
			f.state = after
			return false, true
		}
		// The runner's other lines (a failed heartbeat, ...) are not the job's output.
		return !bytes.HasPrefix(line, []byte(Prefix)), false
	default:
		return false, true
	}
}

// Began reports whether the attempt's begin marker was seen.
func (f *Filter) Began() bool { return f.state != before }

// Done reports whether the attempt's output has ended.
func (f *Filter) Done() bool { return f.state == after }

// Tail keeps the last lines written to it: at most MaxLines lines and MaxBytes bytes (newlines
// included); a line longer than MaxBytes keeps its first MaxBytes-1 bytes. Lines are added without
// their newline.
type Tail struct {
	MaxLines, MaxBytes int

	lines [][]byte
	bytes int
	// Dropped counts the lines dropped for either bound.
	Dropped int
}

// Add adds a line.
func (t *Tail) Add(line []byte) {
	if len(line)+1 > t.MaxBytes {
		line = line[:max(t.MaxBytes-1, 0)]
	}
	t.lines = append(t.lines, bytes.Clone(line))
	t.bytes += len(line) + 1
	for len(t.lines) > t.MaxLines || t.bytes > t.MaxBytes {
		t.bytes -= len(t.lines[0]) + 1
		t.lines[0] = nil
		t.lines = t.lines[1:]
		t.Dropped++
	}
}

// Len is the number of lines kept.
func (t *Tail) Len() int { return len(t.lines) }

// Bytes is the lines kept, each ended by a newline.
func (t *Tail) Bytes() []byte {
	out := make([]byte, 0, t.bytes)
	for _, l := range t.lines {
		out = append(out, l...)
		out = append(out, '\n')
	}
	return out
}

// ErrStop, returned by ReadLines' callback, ends ReadLines with no error.
var ErrStop = errors.New("stop reading")

// ReadLines calls fn with each line of r, without its newline, until r ends, fn returns an error (ErrStop
// ends it with none) or r fails. A line longer than maxLine bytes is cut to its first maxLine bytes.
// A last line without a newline is passed too.
func ReadLines(r io.Reader, maxLine int, fn func(line []byte) error) error {
	br := bufio.NewReaderSize(r, 64*1024)
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long) < maxLine {
				long = append(long, chunk[:min(len(chunk), maxLine-len(long))]...)
			}
			continue
		}
		line := chunk
		if long != nil {
			if len(long) < maxLine {
				long = append(long, chunk[:min(len(chunk), maxLine-len(long))]...)
			}
			line, long = long, nil
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > maxLine {
			line = line[:maxLine]
		}
		if len(line) > 0 || err == nil {
			if ferr := fn(line); ferr != nil {
				if errors.Is(ferr, ErrStop) {
					return nil
				}
				return ferr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
