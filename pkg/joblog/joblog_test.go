package joblog

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	first  = Attempt{Namespace: "team-a", Name: "first", UID: "u1", Attempt: 1}
	second = Attempt{Namespace: "team-a", Name: "second", UID: "u2", Attempt: 1}
)

// extract runs a filter for a over log and returns the lines kept and whether it ended.
func extract(t *testing.T, a Attempt, log string) ([]string, bool) {
	t.Helper()
	f := NewFilter(a)
	var got []string
	err := ReadLines(strings.NewReader(log), 1<<20, func(line []byte) error {
		keep, done := f.Line(line)
		if keep {
			got = append(got, string(line))
		}
		if done {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, f.Done()
}

func TestFilter(t *testing.T) {
	log := "seek-runner: leasing jobs\n" +
		"output of an earlier job\n" +
		BeginLine(first) +
		"one\n" +
		"> seek-runner: begin job team-a/second uid=u2 attempt=1\n" + // a forged marker, escaped by the runner
		"seek-runner: job team-a/first attempt 1: reading the result: too large\n" +
		"two\n" +
		EndLine(first, "process exited 0 after 5ms") +
		BeginLine(second) +
		"three\n" +
		EndLine(second, "process exited 1 after 5ms") +
		BeginLine(Attempt{Namespace: "team-a", Name: "second", UID: "u2", Attempt: 2}) +
		"four\n"
	tests := []struct {
		name     string
		a        Attempt
		log      string
		want     []string
		wantDone bool
	}{
		{"first", first, log, []string{"one", "> seek-runner: begin job team-a/second uid=u2 attempt=1", "two"}, true},
		{"second", second, log, []string{"three"}, true},
		{"a later attempt, still running", Attempt{Namespace: "team-a", Name: "second", UID: "u2", Attempt: 2}, log, []string{"four"}, false},
		{"not in this log", Attempt{Namespace: "team-a", Name: "third", UID: "u3", Attempt: 1}, log, nil, false},
		{"another UID of the same name", Attempt{Namespace: "team-a", Name: "first", UID: "other", Attempt: 1}, log, nil, false},
		{"no end marker: the next begin ends it", first, BeginLine(first) + "one\n" + BeginLine(second) + "three\n", []string{"one"}, true},
		{"a last line without newline", second, BeginLine(second) + "a\nb", []string{"a", "b"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, done := extract(t, tc.a, tc.log)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if done != tc.wantDone {
				t.Errorf("done = %v, want %v", done, tc.wantDone)
			}
		})
	}
}

func TestMarkers(t *testing.T) {
	if got, want := BeginLine(first), "seek-runner: begin job team-a/first uid=u1 attempt=1\n"; got != want {
		t.Errorf("BeginLine = %q, want %q", got, want)
	}
	if got, want := EndLine(first, "process exited 0 after 1s"), "seek-runner: end job team-a/first uid=u1 attempt=1: process exited 0 after 1s\n"; got != want {
		t.Errorf("EndLine = %q, want %q", got, want)
	}
	for line, want := range map[string]bool{
		"seek-runner: begin job x": true, "seek-runner:x": true, " seek-runner: begin": false, "> seek-runner: end": false, "hello": false,
	} {
		if got := Escaped([]byte(line)); got != want {
			t.Errorf("Escaped(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name               string
		maxLines, maxBytes int
		lines              []string
		want               string
		wantDropped        int
	}{
		{"within bounds", 10, 100, []string{"a", "b"}, "a\nb\n", 0},
		{"line cap keeps the last", 2, 100, []string{"a", "b", "c"}, "b\nc\n", 1},
		{"byte cap keeps the last whole lines", 10, 8, []string{"aaa", "bbb", "ccc"}, "bbb\nccc\n", 1},
		{"a line longer than the byte cap is cut", 10, 4, []string{"a", "bcdefg"}, "bcd\n", 1},
		{"nothing", 10, 10, nil, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tail := &Tail{MaxLines: tc.maxLines, MaxBytes: tc.maxBytes}
			for _, l := range tc.lines {
				tail.Add([]byte(l))
			}
			if got := string(tail.Bytes()); got != tc.want {
				t.Errorf("Bytes = %q, want %q", got, tc.want)
			}
			if tail.Dropped != tc.wantDropped {
				t.Errorf("Dropped = %d, want %d", tail.Dropped, tc.wantDropped)
			}
		})
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	in := "a\n\n" + long + "\nb"
	var got []string
	if err := ReadLines(strings.NewReader(in), 10, func(line []byte) error {
		got = append(got, string(line))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "", "xxxxxxxxxx", "b"}, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}
