package runner

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// startErrorExitCode is the exit code reported when the command cannot be started, as a shell's.
const startErrorExitCode = 127

// outcome is how a job's process ended.
type outcome struct {
	report dispatch.Report
	// stopReason is set when the manager stopped the attempt: its outcome is not reported.
	stopReason string
	// ended says how the process ended, for the log: "exited 3", "ended by SIGKILL", ...
	ended    string
	duration time.Duration
}

// notes are the report's flags, for the log.
func (o *outcome) notes() string {
	var n []string
	if o.report.TimedOut {
		n = append(n, "timed out")
	}
	if o.report.Interrupted {
		n = append(n, "interrupted")
	}
	if o.report.OOMKilled {
		n = append(n, "OOM-killed")
	}
	if o.report.ResultTruncated {
		n = append(n, "result truncated")
	}
	if len(n) == 0 {
		return ""
	}
	return " (" + strings.Join(n, ", ") + ")"
}

// cause is why the runner ends a running process.
type cause int

const (
	causeNone cause = iota
	causeTimeout
	causeStop
	causeInterrupt
)

// execute runs job's process to its end and returns the outcome.
func (r *runner) execute(ctx context.Context, job *dispatch.Job) *outcome {
	start := time.Now()
	o := &outcome{report: dispatch.Report{AttemptRef: job.AttemptRef}}
	startFailed := func(err error) *outcome {
		o.report.ExitCode, o.report.StartError = startErrorExitCode, err.Error()
		o.ended, o.duration = "could not start: "+err.Error(), time.Since(start)
		return o
	}
	if ctx.Err() != nil {
		// Told to stop between the lease and now: give the attempt back unstarted.
		o.report.ExitCode, o.report.Interrupted = -1, true
		o.ended = "not started"
		return o
	}
	timeout := time.Duration(job.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		// The job's timeout passed before this attempt (it counts from the first attempt's start).
		o.report.ExitCode, o.report.TimedOut = -1, true
		o.ended = "not started: no time left"
		return o
	}
	if err := r.prepare(job); err != nil {
		return startFailed(fmt.Errorf("preparing the job: %w", err))
	}

	oomBefore, oomErr := readOOMKills(r.cfg.CgroupDir)
	tail := newTailBuffer(int(min(max(job.LogBytes, dispatch.LogTailBytes), dispatch.MaxLogTailBytes)))
	outR, outW, err := os.Pipe()
	if err != nil {
		return startFailed(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return startFailed(err)
	}
	cmd := exec.Command(r.cfg.Command[0], r.cfg.Command[1:]...)
	cmd.Env = append(jobEnv(r.cfg.Env, job), protocol.EnvProgressPath+"="+r.cfg.ProgressPath)
	cmd.Dir = r.cfg.Dir
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return startFailed(err)
	}
	start = time.Now()
	pgid := cmd.Process.Pid
	var copies sync.WaitGroup
	outLines, errLines := r.out.lines(tail), r.out.lines(tail)
	copies.Go(func() { copyOutput(outLines, outR) })
	copies.Go(func() { copyOutput(errLines, errR) })
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the outcome is in cmd.ProcessState
		close(done)
	}()

	hbCtx, stopHeartbeat := context.WithCancel(r.hard)
	stopCh := make(chan string, 1)
	go r.heartbeat(hbCtx, job.AttemptRef, stopCh)
	go r.watchProgress(hbCtx, job.AttemptRef)

	timer := time.NewTimer(timeout)
	why := causeNone
	select {
	case <-done:
	case <-timer.C:
		why = causeTimeout
	case o.stopReason = <-stopCh:
		why = causeStop
	case <-ctx.Done():
		why = causeInterrupt
	}
	timer.Stop()
	stopHeartbeat()
	if why != causeNone {
		grace := time.Duration(job.GraceMillis) * time.Millisecond
		if why == causeInterrupt {
			grace = min(grace, r.cfg.MaxShutdownGrace)
		}
		r.terminate(ctx, pgid, grace, why == causeInterrupt, done)
	}
	<-done
	o.duration = time.Since(start)
	// Nothing of the job outlives it: kill what is left of its process group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	drainOutput(&copies, outR, errR)
	outLines.Flush()
	errLines.Flush()
	if r.cfg.ReapOrphans {
		reapOrphans()
	}

	ps := cmd.ProcessState
	o.report.ExitCode = int32(ps.ExitCode())
	o.ended = fmt.Sprintf("exited %d", ps.ExitCode())
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		o.report.Signal = unix.SignalName(ws.Signal())
		if o.report.Signal == "" {
			o.report.Signal = fmt.Sprintf("signal %d", int(ws.Signal()))
		}
		o.ended = "ended by " + o.report.Signal
	}
	o.ended = "process " + o.ended
	o.report.TimedOut = why == causeTimeout
	o.report.Interrupted = why == causeInterrupt
	o.report.LogTail, o.report.OutputBytes = tail.String(), tail.total()
	var size int64
	o.report.Result, o.report.ResultTruncated, size, err = readResult(r.cfg.ResultPath)
	if o.report.ResultTruncated {
		o.report.ResultBytes = size
	}
	if err != nil {
		r.log.Printf("job %s/%s attempt %d: reading the result: %v", job.Namespace, job.Name, job.Attempt, err)
	}
	if oomErr == nil {
		if after, err := readOOMKills(r.cfg.CgroupDir); err == nil && after > oomBefore {
			o.report.OOMKilled = true
		}
	}
	return o
}

// terminate ends the process group pgid: SIGTERM now, SIGKILL after grace unless the leader has
// exited (done). When the runner is told to stop during the grace period (ctx ends and interrupted
// is false), the grace period is shortened to MaxShutdownGrace from then.
func (r *runner) terminate(ctx context.Context, pgid int, grace time.Duration, interrupted bool, done <-chan struct{}) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	kill := time.NewTimer(grace)
	defer kill.Stop()
	shutdown := ctx.Done()
	if interrupted {
		shutdown = nil
	}
	for {
		select {
		case <-done:
			return
		case <-kill.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		case <-shutdown:
			shutdown = nil
			if d := time.Now().Add(r.cfg.MaxShutdownGrace); d.Before(deadline) {
				kill.Reset(time.Until(d))
			}
		}
	}
}

// copyOutput copies the process's output from src to dst (the pod log and the tail, a line at a time)
// until src ends. A failing log does not stop it: the process must never block on its output.
func copyOutput(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			_, _ = dst.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// drainOutput waits for the output copies to end, at most outputDrainWait, then closes the pipes:
// a process that left the job's process group may hold them open.
func drainOutput(copies *sync.WaitGroup, pipes ...*os.File) {
	drained := make(chan struct{})
	go func() {
		copies.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(outputDrainWait):
	}
	for _, p := range pipes {
		p.Close()
	}
	<-drained
}

// jobEnv is the environment of job's process: env without the runner's SEEK_DISPATCH_* variables and
// any SEEK_JOB_* ones, plus the job's.
func jobEnv(env []string, job *dispatch.Job) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SEEK_DISPATCH_") || name == protocol.EnvJobName ||
			name == protocol.EnvJobNamespace || name == protocol.EnvJobUID {
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		protocol.EnvJobName+"="+job.Name,
		protocol.EnvJobNamespace+"="+job.Namespace,
		protocol.EnvJobUID+"="+job.UID)
}

// tailBuffer keeps the last bytes written to it, and counts them all. It is safe for concurrent use.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	written int64
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

// total is how many bytes were written.
func (t *tailBuffer) total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	t.written += int64(n)
	if len(p) > t.max {
		p = p[len(p)-t.max:]
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return n, nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) > t.max {
		return string(t.buf[len(t.buf)-t.max:])
	}
	return string(t.buf)
}
