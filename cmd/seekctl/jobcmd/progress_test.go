package jobcmd

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCountsString(t *testing.T) {
	c := counts{inputs: 100, queued: 50, running: 10, completed: 30, failed: 8, refused: 2, elapsed: 20 * time.Second}
	want := "40/100 done: queued 50, running 10, completed 30, failed 8, refused 2; 2.0 jobs/s, ETA 30s"
	if got := c.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	c.inputs = -1
	if got := c.String(); !strings.HasPrefix(got, "40/? done") || strings.Contains(got, "ETA") {
		t.Errorf("with an unknown total: %q", got)
	}
}

func TestBarReporter(t *testing.T) {
	var out bytes.Buffer
	rep := newReporter(&out, true, -1, time.Second)
	rep.update(counts{inputs: 10, queued: 3, running: 2, completed: 4, failed: 1, elapsed: time.Second})
	rep.finish(counts{inputs: 10, completed: 9, failed: 1, elapsed: 2 * time.Second})
	got := out.String()
	for _, want := range []string{"queued 3  running 2  completed 4  failed 1", "completed 9  failed 1", "10/10", "jobs/s"} {
		if !strings.Contains(got, want) {
			t.Errorf("the bar never showed %q:\n%q", want, got)
		}
	}
}

func TestLineReporter(t *testing.T) {
	var out bytes.Buffer
	rep := newReporter(&out, false, 4, time.Hour)
	rep.update(counts{inputs: 4, queued: 4, elapsed: time.Second}) // within the interval: nothing
	rep.finish(counts{inputs: 4, completed: 4, elapsed: 2 * time.Second})
	if want := "batch: finished in 2s: 4/4 done: queued 0, running 0, completed 4, failed 0; 2.0 jobs/s\n"; out.String() != want {
		t.Errorf("lines = %q, want %q", out.String(), want)
	}
}
