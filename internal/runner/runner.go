// Package runner is the Seek runner: the entrypoint of every pod of a pooled worker. It leases jobs
// from the manager's dispatch endpoint (pkg/dispatch), runs each one as a fresh process of the
// worker's command under worker protocol v1 (pkg/protocol), and reports how it ended. It has no
// Kubernetes code: cmd/seek-runner wires it to the pod's environment and signals. See
// docs/pooled-execution.md.
//
// Per job the runner empties the scratch directory, removes the previous result file, writes the
// input file, and starts the command in a process group of its own with the container's environment
// (minus the runner's SEEK_DISPATCH_* variables) plus the job's SEEK_JOB_* variables. The process's
// stdout and stderr go, a line at a time, to the pod log between the job's begin and end markers
// (pkg/joblog), and to a tail kept for the report. The runner
// ends the process group (SIGTERM, then SIGKILL after the grace period) when the attempt's timeout
// passes, when the manager says to stop it (a heartbeat answers Stop or 409: no report then), or
// when the runner itself is told to stop (its context ends: SIGTERM to the pod). Whatever of the
// process group is left when its leader exits is killed, so no process outlives its job.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/joblog"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// Defaults of Config's durations.
const (
	// DefaultBackoffMin and DefaultBackoffMax bound the wait between retries of a failed call.
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
	// DefaultAuthGiveUp is how long the lease call may keep failing with 401 or 403 before the runner
	// gives up: a new pod's token may not be accepted at once, but one that never is will not be.
	DefaultAuthGiveUp = 2 * time.Minute
	// DefaultReportRetryFor is how long a report is retried while the manager cannot take it (it may
	// be restarting).
	DefaultReportRetryFor = 15 * time.Minute
	// DefaultMaxShutdownGrace bounds the grace period of a process stopped because the runner is
	// stopping: the pod's terminationGracePeriodSeconds (35) must leave time for the report.
	DefaultMaxShutdownGrace = 25 * time.Second
	// DefaultShutdownBudget is how long the runner may take, once told to stop, to stop its process
	// and report it: a little less than the pool pod's terminationGracePeriodSeconds.
	DefaultShutdownBudget = 33 * time.Second
	// DefaultCgroupDir is where the container's cgroup is mounted.
	DefaultCgroupDir = "/sys/fs/cgroup"

	// callSlack is added to a long poll's wait for the HTTP timeout of the call.
	callSlack = 15 * time.Second
	// reportCallTimeout bounds one report call.
	reportCallTimeout = 30 * time.Second
	// outputDrainWait is how long the runner waits, after the process group is gone, for the rest of
	// its output; a process that left the group may keep the pipes open.
	outputDrainWait = 2 * time.Second
)

// ErrUnauthorized is returned by Run when the dispatch endpoint kept refusing the runner's token
// (401 or 403) for Config.AuthGiveUp.
var ErrUnauthorized = errors.New("the dispatch endpoint does not accept this pod's token")

// Config configures Run. Zero fields take the defaults given.
type Config struct {
	// URL is the dispatch endpoint's base URL (dispatch.EnvURL). Required.
	URL string
	// TokenPath is the file holding the bearer token, read for every call. Default: dispatch.TokenPath.
	TokenPath string
	// Command is the worker's command and arguments. Required.
	Command []string
	// Env is the environment the worker's process starts from, as os.Environ returns it; the runner
	// removes SEEK_DISPATCH_* and SEEK_JOB_* from it and adds the job's SEEK_JOB_* variables.
	// Default: os.Environ().
	Env []string
	// Dir is the process's working directory. Default: the runner's.
	Dir string
	// InputPath is where the job's input is written. Default: protocol.InputPath.
	InputPath string
	// ResultPath is the file the worker writes its result or error to. Default: protocol.ResultPath.
	ResultPath string
	// TmpDir is the scratch directory emptied before every job. Default: protocol.TmpDir.
	TmpDir string
	// ProgressPath is the file the worker may write its progress to, removed before every job.
	// Default: protocol.ProgressPath.
	ProgressPath string
	// CgroupDir is the container's cgroup mount, where the OOM-kill counter is read (cgroup v2
	// memory.events, else cgroup v1 memory/memory.oom_control). Default: DefaultCgroupDir.
	CgroupDir string
	// Log is the pod log: it receives, in order and a whole line at a time, the runner's own lines,
	// each job's begin and end markers, and between them the job's stdout and stderr (see
	// pkg/joblog). Default: os.Stderr.
	Log io.Writer
	// ReapOrphans makes the runner collect exited processes that are not its own children between
	// jobs, as the PID 1 of a container must. It must be false when other code of the same process
	// waits for child processes. cmd/seek-runner sets it when it is PID 1.
	ReapOrphans bool
	// Client makes the HTTP calls. Default: a client of its own that uses no proxy.
	Client *http.Client

	BackoffMin, BackoffMax time.Duration
	AuthGiveUp             time.Duration
	ReportRetryFor         time.Duration
	MaxShutdownGrace       time.Duration
	ShutdownBudget         time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, fmt.Errorf("no dispatch URL (%s)", dispatch.EnvURL)
	}
	if len(c.Command) == 0 || c.Command[0] == "" {
		return c, errors.New("no worker command")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defS := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	c.URL = strings.TrimSuffix(c.URL, "/")
	defS(&c.TokenPath, dispatch.TokenPath)
	defS(&c.InputPath, protocol.InputPath)
	defS(&c.ResultPath, protocol.ResultPath)
	defS(&c.TmpDir, protocol.TmpDir)
	defS(&c.ProgressPath, protocol.ProgressPath)
	defS(&c.CgroupDir, DefaultCgroupDir)
	if c.Env == nil {
		c.Env = os.Environ()
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	if c.Client == nil {
		c.Client = newClient()
	}
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.AuthGiveUp, DefaultAuthGiveUp)
	def(&c.ReportRetryFor, DefaultReportRetryFor)
	def(&c.MaxShutdownGrace, DefaultMaxShutdownGrace)
	def(&c.ShutdownBudget, DefaultShutdownBudget)
	return c, nil
}

// newClient is an HTTP client for the dispatch endpoint: no proxy (the endpoint is in the cluster,
// and a worker's HTTP_PROXY is not meant for it), keep-alive connections, and no client timeout:
// every call has a deadline of its own, longer than its long poll.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // the long polls answer late on purpose
	}}
}

// runner runs jobs leased from the dispatch endpoint.
type runner struct {
	cfg Config
	// out is the pod log (cfg.Log), shared by log and the jobs' output.
	out *output
	log *log.Logger
	// hard ends ShutdownBudget after the context given to Run: it bounds what the runner still does
	// once told to stop (stopping the process, reporting it).
	hard context.Context
}

// Run leases and runs jobs until the dispatch endpoint answers Exit (it returns nil), ctx ends (it
// stops the running job, if any, reports it Interrupted, and returns nil), or the endpoint keeps
// refusing the token (it returns an error wrapping ErrUnauthorized). Other errors of the endpoint
// are retried forever.
func Run(ctx context.Context, cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(cfg.ShutdownBudget, cancelHard) })
	defer stopAfter()

	out := &output{w: cfg.Log}
	r := &runner{cfg: cfg, out: out, log: log.New(out, joblog.Prefix, 0), hard: hard}
	if _, err := readOOMKills(cfg.CgroupDir); err != nil {
		r.log.Printf("OOM kills will not be detected: %v", err)
	}
	r.log.Printf("leasing jobs from %s for %q", cfg.URL, cfg.Command)
	// idle is how long the endpoint has answered that it had no job for this pod, since its last job.
	// Time the endpoint could not be reached or failed (a manager restart, an apiserver outage) does
	// not count: a pod must not leave its pool for the outage's sake, with jobs waiting behind it.
	var idle time.Duration
	for {
		if r.cfg.ReapOrphans {
			reapOrphans()
		}
		resp, answeredIn, err := r.lease(ctx, idle)
		if err == nil && resp.Job != nil {
			// Even when told to stop meanwhile: the job is this pod's now, and handle gives it back.
			r.handle(ctx, resp.Job)
			if ctx.Err() != nil {
				r.log.Printf("stopped (%v)", context.Cause(ctx))
				return nil
			}
			idle = 0
			continue
		}
		idle += answeredIn
		switch {
		case ctx.Err() != nil:
			r.log.Printf("stopping (%v): no job was running", context.Cause(ctx))
			return nil
		case err != nil:
			return err
		case resp.Exit:
			r.log.Printf("exiting: the dispatch endpoint has no more work for this pod (idle %s)", round(idle))
			return nil
		}
	}
}

// handle runs job and reports its outcome unless the manager stopped it.
func (r *runner) handle(ctx context.Context, job *dispatch.Job) {
	label := fmt.Sprintf("job %s/%s attempt %d", job.Namespace, job.Name, job.Attempt)
	// Two lines per job, framing its output: a pool pod may run many jobs a second, and every line
	// costs the container runtime's log pipeline. The REST API's logs endpoint finds the job's output
	// between them.
	a := joblog.Attempt{Namespace: job.Namespace, Name: job.Name, UID: job.UID, Attempt: job.Attempt}
	_, _ = io.WriteString(r.out, joblog.BeginLine(a))
	o := r.execute(ctx, job)
	if o.stopReason != "" {
		_, _ = io.WriteString(r.out, joblog.EndLine(a, fmt.Sprintf("stopped (%s) after %s: %s", o.stopReason, round(o.duration), o.ended)))
		if o.report.LogTail != "" {
			// The outcome does not count, but the output is the job's to keep (a canceled job's).
			r.report(label+" (its output)", &dispatch.Report{AttemptRef: o.report.AttemptRef, Stopped: true,
				LogTail: o.report.LogTail, OutputBytes: o.report.OutputBytes})
		}
		return
	}
	_, _ = io.WriteString(r.out, joblog.EndLine(a, fmt.Sprintf("%s after %s%s", o.ended, round(o.duration), o.notes())))
	r.report(label, &o.report)
}

// round shortens d for the log.
func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
