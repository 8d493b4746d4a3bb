package jobcmd

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/seek-api/seek-operator/pkg/client"
)

// counts is where a batch run stands.
type counts struct {
	// inputs is how many inputs there are, -1 while unknown (standard input not read to the end).
	inputs int
	// read counts the inputs read so far.
	read int
	// queued and running split the submitted jobs not finished yet.
	queued, running int
	// completed and failed (failed, canceled or timed out) count the finished jobs.
	completed, failed int
	// refused counts the inputs with no job: refused at submission, not JSON, or unreadable.
	refused int
	elapsed time.Duration
}

func (c counts) done() int { return c.completed + c.failed + c.refused }

// rate is finished inputs per second.
func (c counts) rate() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return float64(c.done()) / c.elapsed.Seconds()
}

// eta is how long the rest will take at the current rate, 0 when unknown.
func (c counts) eta() time.Duration {
	if c.inputs < 0 || c.rate() == 0 {
		return 0
	}
	return time.Duration(float64(c.inputs-c.done()) / c.rate() * float64(time.Second)).Round(time.Second)
}

// String is the one-line progress report.
func (c counts) String() string {
	total := "?"
	if c.inputs >= 0 {
		total = fmt.Sprint(c.inputs)
	}
	s := fmt.Sprintf("%d/%s done: queued %d, running %d, completed %d, failed %d", c.done(), total, c.queued, c.running, c.completed, c.failed)
	if c.refused > 0 {
		s += fmt.Sprintf(", refused %d", c.refused)
	}
	s += fmt.Sprintf("; %.1f jobs/s", c.rate())
	if eta := c.eta(); eta > 0 {
		s += fmt.Sprintf(", ETA %s", eta)
	}
	return s
}

// tally keeps the counts of a batch run; its methods are safe for concurrent use.
type tally struct {
	mu    sync.Mutex
	c     counts
	start time.Time
	// pending are the submitted jobs not finished yet; running those of them the last sample saw running.
	pending map[string]bool
}

func newTally() *tally {
	return &tally{start: time.Now(), pending: map[string]bool{}, c: counts{inputs: -1}}
}

func (t *tally) setTotal(n int) { t.mu.Lock(); t.c.inputs = n; t.mu.Unlock() }
func (t *tally) read()          { t.mu.Lock(); t.c.read++; t.mu.Unlock() }
func (t *tally) refused()       { t.mu.Lock(); t.c.refused++; t.mu.Unlock() }

func (t *tally) submitted(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending[id] = false
}

// finished records a job's end: job nil when it could not be read (the result line says why).
func (t *tally) finished(id string, job *client.Job) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, id)
	switch {
	case job == nil:
	case job.Status == client.StatusCompleted:
		t.c.completed++
	default:
		t.c.failed++
	}
}

// sawRunning records which jobs a sample saw running.
func (t *tally) sawRunning(ids []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.pending {
		t.pending[id] = false
	}
	for _, id := range ids {
		if _, ok := t.pending[id]; ok {
			t.pending[id] = true
		}
	}
}

func (t *tally) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

func (t *tally) snapshot() counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.c
	c.running, c.queued = 0, 0
	for _, running := range t.pending {
		if running {
			c.running++
		} else {
			c.queued++
		}
	}
	c.elapsed = time.Since(t.start)
	return c
}

// reporter shows progress.
type reporter interface {
	// update shows the counts; called often.
	update(counts)
	// finish shows the final counts.
	finish(counts)
}

// reportEvery updates rep from t until the returned func is called, which reports and returns the
// final counts.
func reportEvery(t *tally, rep reporter) func() counts {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				rep.update(t.snapshot())
			}
		}
	}()
	return func() counts {
		close(stop)
		<-done
		final := t.snapshot()
		rep.finish(final)
		return final
	}
}

// newReporter shows a live bar on a terminal and a line every interval otherwise.
func newReporter(w io.Writer, terminal bool, inputs int, interval time.Duration) reporter {
	if !terminal {
		return &lineReporter{w: w, every: interval, last: time.Now()}
	}
	return &barReporter{bar: progressbar.NewOptions64(int64(inputs),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("submitting"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("jobs"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionFullWidth(),
		// No throttle of its own: reportEvery updates it five times a second, and update's two calls
		// must both draw, the second with the value and the description current.
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	), inputs: inputs}
}

// barReporter draws a progress bar of finished inputs, described by the queued, running, completed
// and failed counts; the bar's own rate and remaining time follow.
type barReporter struct {
	bar    *progressbar.ProgressBar
	inputs int
}

func (r *barReporter) update(c counts) {
	if c.inputs >= 0 && c.inputs != r.inputs {
		r.inputs = c.inputs
		r.bar.ChangeMax64(int64(c.inputs))
	}
	desc := fmt.Sprintf("queued %d  running %d  completed %d  failed %d", c.queued, c.running, c.completed, c.failed)
	if c.refused > 0 {
		desc += fmt.Sprintf("  refused %d", c.refused)
	}
	_ = r.bar.Set(c.done())
	r.bar.Describe(desc)
}

func (r *barReporter) finish(c counts) {
	r.update(c)
	_ = r.bar.Finish()
}

// lineReporter prints a progress line every interval, and one at the end.
type lineReporter struct {
	w     io.Writer
	every time.Duration
	last  time.Time
}

func (r *lineReporter) update(c counts) {
	if time.Since(r.last) < r.every {
		return
	}
	r.last = time.Now()
	fmt.Fprintf(r.w, "batch: %s\n", c)
}

func (r *lineReporter) finish(c counts) {
	fmt.Fprintf(r.w, "batch: finished in %s: %s\n", c.elapsed.Round(100*time.Millisecond), c)
}

type nopReporter struct{}

func (nopReporter) update(counts) {}
func (nopReporter) finish(counts) {}

// isBlank reports whether a line holds only white space.
func isBlank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}
