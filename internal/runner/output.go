package runner

import (
	"bytes"
	"io"
	"sync"

	"github.com/seek-api/seek-operator/pkg/joblog"
)

// output is the pod log: the runner's own lines, the job markers and every job's stdout and stderr
// go through it to one writer, a whole line at a time and in order, so that a job's lines are
// contiguous and lie between its markers (see pkg/joblog). It is safe for concurrent use.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p, whole lines of the runner's own (its log.Logger writes one line per call). A failing
// writer is ignored: the runner must never block on the log.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.w.Write(p)
	return len(p), nil
}

// lines returns a writer for one stream of a job's process, which also keeps its lines in tail (when
// not nil). It must be flushed once the stream ends.
func (o *output) lines(tail *tailBuffer) *lineWriter { return &lineWriter{out: o, tail: tail} }

// lineWriter splits one stream of a job's process into lines and writes each whole to the log: a line
// is ended by a newline, by reaching joblog.MaxLineBytes, or by the end of the stream (Flush). A line
// that starts with joblog.RunnerTag is written after joblog.EscapePrefix, so that no worker line can
// pass for one of the runner's (a marker of another job). Not safe for concurrent use: one per stream.
type lineWriter struct {
	out  *output
	tail *tailBuffer
	buf  []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		room := joblog.MaxLineBytes - 1 - len(l.buf)
		i := bytes.IndexByte(p, '\n')
		switch {
		case i >= 0 && i <= room:
			l.buf = append(l.buf, p[:i]...)
			p = p[i+1:]
			l.emit()
		case len(p) <= room:
			l.buf = append(l.buf, p...)
			p = nil
		default:
			l.buf = append(l.buf, p[:room]...)
			p = p[room:]
			l.emit()
		}
	}
	return n, nil
}

// Flush writes a last line that has no newline, with one.
func (l *lineWriter) Flush() {
	if len(l.buf) > 0 {
		l.emit()
	}
}

func (l *lineWriter) emit() {
	line := make([]byte, 0, len(joblog.EscapePrefix)+len(l.buf)+1)
	if joblog.Escaped(l.buf) {
		line = append(line, joblog.EscapePrefix...)
	}
	escape := len(line)
	line = append(line, l.buf...)
	line = append(line, '\n')
	l.buf = l.buf[:0]
	_, _ = l.out.Write(line)
	if l.tail != nil {
		_, _ = l.tail.Write(line[escape:]) // the worker's line, as it wrote it
	}
}
