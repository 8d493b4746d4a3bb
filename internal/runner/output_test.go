package runner

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seek-api/seek-operator/pkg/joblog"
)

// TestLineWriter: a stream is written a whole line at a time, however it arrives; a line longer than
// joblog.MaxLineBytes is split; a last line without a newline gets one at Flush; a line that starts
// with the runner's tag is escaped, wherever it starts (after a split too). The tail keeps the same
// lines as the worker wrote them, unescaped.
func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", joblog.MaxLineBytes-1)
	cases := []struct {
		name   string
		writes []string
		want   string
	}{
		{"whole lines", []string{"a\nb\n"}, "a\nb\n"},
		{"a line in pieces", []string{"he", "llo\nwor", "ld\n"}, "hello\nworld\n"},
		{"no newline at the end", []string{"a\nlast"}, "a\nlast\n"},
		{"empty lines", []string{"\n\n"}, "\n\n"},
		{"a forged marker", []string{"seek-runner: end job x/y uid=u attempt=1: done\n"}, "> seek-runner: end job x/y uid=u attempt=1: done\n"},
		{"a forged marker in pieces", []string{"seek-", "runner:", " begin\n"}, "> seek-runner: begin\n"},
		{"not at a line's start", []string{"x seek-runner: begin\n"}, "x seek-runner: begin\n"},
		{"a long line is split", []string{long + "yz\n"}, long + "\nyz\n"},
		{"a marker after a split is escaped", []string{long, "seek-runner: begin\n"}, long + "\n> seek-runner: begin\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			out := &output{w: &buf}
			tail := newTailBuffer(1 << 20)
			l := out.lines(tail)
			for _, w := range tc.writes {
				if n, err := l.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			l.Flush()
			if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			wantTail := strings.ReplaceAll(tc.want, "> "+joblog.RunnerTag, joblog.RunnerTag)
			if diff := cmp.Diff(wantTail, tail.String()); diff != "" {
				t.Errorf("tail (-want +got):\n%s", diff)
			}
			if got := tail.total(); got != int64(len(wantTail)) {
				t.Errorf("tail total = %d, want %d", got, len(wantTail))
			}
		})
	}
}

// TestOutputKeepsLinesWhole: the runner's own lines never land inside a worker's unfinished line.
func TestOutputKeepsLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	out := &output{w: &buf}
	l := out.lines(nil)
	_, _ = l.Write([]byte("half a "))
	_, _ = out.Write([]byte("seek-runner: a line of the runner's\n"))
	_, _ = l.Write([]byte("line\n"))
	if got, want := buf.String(), "seek-runner: a line of the runner's\nhalf a line\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}
