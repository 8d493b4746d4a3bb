package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/joblog"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// emptyDirVar makes the test binary run emptyDir on its value instead of the tests; see
// TestEmptyDirReadOnly.
const emptyDirVar = "SEEK_RUNNER_TEST_EMPTY_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(emptyDirVar); dir != "" {
		if err := emptyDir(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs a runner against a fakeDispatch. The worker's command sources the shell script
// named after the job ($SCRIPTS/<job name>.sh), so every job is a real process running a script of
// the test's; the scripts see $T, the test's directory, and $TMPD, the scratch directory.
type harness struct {
	t   *testing.T
	f   *fakeDispatch
	cfg Config
	dir string
	log *syncBuffer
}

const testToken = "token-1"

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	f := newFakeDispatch(t, testToken)
	h := &harness{t: t, f: f, dir: dir, log: &syncBuffer{}}
	for _, d := range []string{"scripts", "seek", "tmp", "cgroup"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tokenPath := filepath.Join(dir, "token")
	h.writeFile("token", testToken+"\n")
	inputPath, resultPath := filepath.Join(dir, "seek", "input", "input.json"), filepath.Join(dir, "seek", "result.json")
	h.cfg = Config{
		URL:       f.srv.URL + "/",
		TokenPath: tokenPath,
		Command:   []string{"/bin/sh", "-c", `. "$SCRIPTS/$SEEK_JOB_NAME.sh"`},
		Env: []string{
			"PATH=" + os.Getenv("PATH"),
			"SCRIPTS=" + filepath.Join(dir, "scripts"),
			"T=" + dir,
			"TMPD=" + filepath.Join(dir, "tmp"),
			protocol.EnvInputPath + "=" + inputPath,
			protocol.EnvResultPath + "=" + resultPath,
			protocol.EnvWorker + "=w",
			dispatch.EnvURL + "=" + f.srv.URL,
			dispatch.EnvTokenPath + "=" + tokenPath,
			protocol.EnvJobName + "=stale",
		},
		InputPath:        inputPath,
		ResultPath:       resultPath,
		TmpDir:           filepath.Join(dir, "tmp"),
		ProgressPath:     filepath.Join(dir, "seek", "progress.json"),
		CgroupDir:        filepath.Join(dir, "cgroup"),
		Log:              h.log,
		BackoffMin:       5 * time.Millisecond,
		BackoffMax:       20 * time.Millisecond,
		AuthGiveUp:       time.Minute,
		ReportRetryFor:   time.Minute,
		MaxShutdownGrace: 10 * time.Second,
		ShutdownBudget:   20 * time.Second,
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pod log:\n%s", h.log)
		}
	})
	return h
}

func (h *harness) path(name string) string { return filepath.Join(h.dir, name) }

func (h *harness) writeFile(name, content string) {
	h.t.Helper()
	if err := os.WriteFile(h.path(name), []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// job returns a job whose process runs script.
func (h *harness) job(name, script string) *dispatch.Job {
	h.t.Helper()
	h.writeFile(filepath.Join("scripts", name+".sh"), script)
	return &dispatch.Job{
		AttemptRef:    dispatch.AttemptRef{Namespace: "team-a", Name: name, UID: "uid-" + name, Attempt: 1},
		Worker:        "w",
		Input:         json.RawMessage(`{"message":"hi"}`),
		TimeoutMillis: 30_000,
		GraceMillis:   5_000,
	}
}

// run runs the runner until it returns, at most a minute.
func (h *harness) run(ctx context.Context) error {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := Run(ctx, h.cfg)
	if ctx.Err() == context.DeadlineExceeded {
		h.t.Fatal("the runner did not return within a minute")
	}
	return err
}

// runJobs runs the jobs and returns the reports once the runner has exited on an Exit answer.
func (h *harness) runJobs(jobs ...*dispatch.Job) []dispatch.Report {
	h.t.Helper()
	h.f.add(jobs...)
	h.f.set(func(f *fakeDispatch) { f.exitWhenEmpty = true })
	if err := h.run(context.Background()); err != nil {
		h.t.Fatalf("Run: %v", err)
	}
	return h.f.state().reports
}

// waitFile waits for the test's file name to hold a line and returns it.
func (h *harness) waitFile(name string) string {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(h.path(name)); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("%s was not written", name)
	return ""
}

// waitPID waits for the test's file name to hold a pid.
func (h *harness) waitPID(name string) int {
	h.t.Helper()
	pid, err := strconv.Atoi(h.waitFile(name))
	if err != nil {
		h.t.Fatal(err)
	}
	return pid
}

// assertGone fails unless process pid has ended (a zombie waiting for init to reap it has ended).
func assertGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if _, rest, ok := bytes.Cut(stat, []byte(") ")); ok && bytes.HasPrefix(rest, []byte("Z")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) is still running", what, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ref(name string) dispatch.AttemptRef {
	return dispatch.AttemptRef{Namespace: "team-a", Name: name, UID: "uid-" + name, Attempt: 1}
}

// TestOutcomes runs one job per case and compares its report.
func TestOutcomes(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 10_000) + "END\n"
	for _, tc := range []struct {
		name     string
		script   string
		logBytes int32 // the lease's LogBytes
		want     dispatch.Report
	}{{
		name:   "result",
		script: `echo working; printf '{"echo":"hi"}' > "$SEEK_RESULT_PATH"`,
		want:   dispatch.Report{Result: `{"echo":"hi"}`, LogTail: "working\n"},
	}, {
		name:   "exit-65-with-error",
		script: `printf '{"message":"bad email","reason":"InvalidEmail"}' > "$SEEK_RESULT_PATH"; echo failing >&2; exit 65`,
		want:   dispatch.Report{ExitCode: 65, Result: `{"message":"bad email","reason":"InvalidEmail"}`, LogTail: "failing\n"},
	}, {
		name:   "exit-1-with-error",
		script: `printf '{"message":"try again"}' > "$SEEK_RESULT_PATH"; exit 1`,
		want:   dispatch.Report{ExitCode: 1, Result: `{"message":"try again"}`},
	}, {
		name:   "exit-3-no-result",
		script: `echo "boom: disk on fire" >&2; exit 3`,
		want:   dispatch.Report{ExitCode: 3, LogTail: "boom: disk on fire\n"},
	}, {
		name:   "exit-255",
		script: `exit 255`,
		want:   dispatch.Report{ExitCode: 255},
	}, {
		name:   "killed-by-signal",
		script: `echo bye; kill -KILL $$`,
		want:   dispatch.Report{ExitCode: -1, Signal: "SIGKILL", LogTail: "bye\n"},
	}, {
		name:   "result-too-large",
		script: `head -c 1100000 /dev/zero | tr '\0' a > "$SEEK_RESULT_PATH"`,
		want:   dispatch.Report{Result: strings.Repeat("a", dispatch.MaxReportBytes), ResultTruncated: true, ResultBytes: 1100000},
	}, {
		name:   "result-one-byte-over",
		script: `head -c 1048577 /dev/zero | tr '\0' a > "$SEEK_RESULT_PATH"`,
		want:   dispatch.Report{Result: strings.Repeat("a", 1048577)},
	}, {
		name:   "result-of-1-MiB",
		script: `head -c 1048576 /dev/zero | tr '\0' a > "$SEEK_RESULT_PATH"`,
		want:   dispatch.Report{Result: strings.Repeat("a", 1048576)},
	}, {
		name:   "long-log",
		script: `head -c 10000 /dev/zero | tr '\0' x; echo END; exit 2`,
		want:   dispatch.Report{ExitCode: 2, LogTail: long[len(long)-dispatch.LogTailBytes:], OutputBytes: int64(len(long))},
	}, {
		name:     "long-log-kept",
		script:   `head -c 10000 /dev/zero | tr '\0' x; echo END; exit 2`,
		logBytes: 8192,
		want:     dispatch.Report{ExitCode: 2, LogTail: long[len(long)-8192:], OutputBytes: int64(len(long))},
	}, {
		name:     "whole-log-kept",
		script:   `head -c 10000 /dev/zero | tr '\0' x; echo END; exit 2`,
		logBytes: dispatch.MaxLogTailBytes,
		want:     dispatch.Report{ExitCode: 2, LogTail: long},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			job := h.job(tc.name, tc.script)
			job.LogBytes = tc.logBytes
			reports := h.runJobs(job)
			tc.want.AttemptRef = ref(tc.name)
			if diff := cmp.Diff([]dispatch.Report{wholeOutput(tc.want)}, reports); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStartError: a command that cannot be started is reported with exit code 127.
func TestStartError(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.Command = []string{filepath.Join(h.dir, "no-such-worker"), "arg"}
	reports := h.runJobs(h.job("missing", ""))
	if len(reports) != 1 {
		t.Fatalf("got %d reports, want 1", len(reports))
	}
	r := reports[0]
	if r.ExitCode != 127 || !strings.Contains(r.StartError, "no such file") || r.AttemptRef != ref("missing") {
		t.Errorf("report = %+v, want exit code 127 and a start error about the missing file", r)
	}
}

// TestInputAndEnvironment: the process reads the job's input, gets the job's SEEK_JOB_* variables
// and none of the runner's SEEK_DISPATCH_*, and leads a process group of its own.
func TestInputAndEnvironment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	script := `
printf '{"input":%s,"name":"%s","namespace":"%s","uid":"%s","worker":"%s","dispatchVars":%s,"jobNameVars":%s,"inputMode":"%s","pgidIsPid":%s}' \
  "$(cat "$SEEK_INPUT_PATH")" "$SEEK_JOB_NAME" "$SEEK_JOB_NAMESPACE" "$SEEK_JOB_UID" "$SEEK_WORKER" \
  "$(env | grep -c '^SEEK_DISPATCH_')" "$(env | grep -c '^SEEK_JOB_NAME=')" \
  "$(stat -c %a "$SEEK_INPUT_PATH")" \
  "$(test "$(cut -d' ' -f5 /proc/$$/stat)" = "$$" && echo true || echo false)" > "$SEEK_RESULT_PATH"
`
	withInput := h.job("env", script)
	withInput.Input = json.RawMessage(`{"message":"hello","n":[1,2,3]}`)
	noInput := h.job("env-null", script)
	noInput.Input = nil
	reports := h.runJobs(withInput, noInput)
	if len(reports) != 2 {
		t.Fatalf("got %d reports, want 2", len(reports))
	}
	type seen struct {
		Input        json.RawMessage
		Name         string
		Namespace    string
		UID          string
		Worker       string
		DispatchVars int
		JobNameVars  int
		InputMode    string
		PgidIsPid    bool
	}
	for i, want := range []seen{
		{Input: json.RawMessage(`{"message":"hello","n":[1,2,3]}`), Name: "env", Namespace: "team-a", UID: "uid-env", Worker: "w", JobNameVars: 1, InputMode: "444", PgidIsPid: true},
		{Input: json.RawMessage(`null`), Name: "env-null", Namespace: "team-a", UID: "uid-env-null", Worker: "w", JobNameVars: 1, InputMode: "444", PgidIsPid: true},
	} {
		if reports[i].ExitCode != 0 {
			t.Fatalf("report %d: %+v", i, reports[i])
		}
		var got seen
		if err := json.Unmarshal([]byte(reports[i].Result), &got); err != nil {
			t.Fatalf("result %q: %v", reports[i].Result, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("job %s saw (-want +got):\n%s", want.Name, diff)
		}
	}
}

// TestOutputPassesThrough: the process's stdout and stderr reach the pod log between the job's
// markers, and both the tail.
func TestOutputPassesThrough(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	reports := h.runJobs(h.job("output", `echo to-stdout; sleep 0.1; echo to-stderr >&2; exit 1`))
	if len(reports) != 1 || reports[0].LogTail != "to-stdout\nto-stderr\n" {
		t.Errorf("reports = %+v, want one with the log tail of both", reports)
	}
	log := h.log.String()
	want := "seek-runner: begin job team-a/output uid=uid-output attempt=1\nto-stdout\nto-stderr\n" +
		"seek-runner: end job team-a/output uid=uid-output attempt=1: process exited 1 after"
	if !strings.Contains(log, want) {
		t.Errorf("pod log lacks %q:\n%s", want, log)
	}
}

// TestJobFraming: each job's output lies between its own markers, whole lines of it, with a last
// line that has no newline ended by one; a worker's line that would pass for the runner's (a forged
// marker of another job, on either stream, even in the middle of a long line) is escaped, so that
// pkg/joblog's filter gives each job exactly its own lines.
func TestJobFraming(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	forge := `echo 'seek-runner: end job team-a/forger uid=uid-forger attempt=1: process exited 0 after 1ms'; sleep 0.1
echo 'seek-runner: begin job team-a/victim uid=uid-victim attempt=1' >&2; sleep 0.1
echo 'victim output forged by forger'
head -c 16383 /dev/zero | tr '\0' x; echo 'seek-runner: end job team-a/victim uid=uid-victim attempt=1: forged'
printf 'no newline'`
	h.runJobs(h.job("forger", forge), h.job("victim", `echo 'real victim line'; sleep 0.1; echo 'second' >&2`))
	log := h.log.String()
	long := strings.Repeat("x", joblog.MaxLineBytes-1)
	got := map[string][]string{}
	for _, name := range []string{"forger", "victim"} {
		f := joblog.NewFilter(joblog.Attempt{Namespace: "team-a", Name: name, UID: "uid-" + name, Attempt: 1})
		_ = joblog.ReadLines(strings.NewReader(log), 1<<20, func(line []byte) error {
			if keep, done := f.Line(line); keep {
				got[name] = append(got[name], string(line))
			} else if done {
				return joblog.ErrStop
			}
			return nil
		})
		if !f.Done() {
			t.Errorf("job %s: no end marker in the log", name)
		}
	}
	want := map[string][]string{
		"forger": {
			"> seek-runner: end job team-a/forger uid=uid-forger attempt=1: process exited 0 after 1ms",
			"> seek-runner: begin job team-a/victim uid=uid-victim attempt=1",
			"victim output forged by forger",
			long,
			"> seek-runner: end job team-a/victim uid=uid-victim attempt=1: forged",
			"no newline",
		},
		"victim": {"real victim line", "second"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("each job's lines (-want +got):\n%s", diff)
	}
}

// TestScratchAndResultReset: every job starts with an empty scratch directory (whatever the
// previous one left there, but never what a link points to outside it) and no result file.
func TestScratchAndResultReset(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeFile("outside", "keep me")
	first := h.job("first", `
set -e
echo data > "$TMPD/file"
mkdir -p "$TMPD/dir/sub/deeper"
echo data > "$TMPD/dir/sub/deeper/file"
chmod 500 "$TMPD/dir/sub/deeper" "$TMPD/dir/sub"
echo hidden > "$TMPD/.hidden"
ln -s "$T/outside" "$TMPD/link"
printf '"first"' > "$SEEK_RESULT_PATH"
`)
	second := h.job("second", `
had=$(test -e "$SEEK_RESULT_PATH" && echo true || echo false)
printf '{"tmp":"%s","hadResult":%s}' "$(ls -A "$TMPD" | tr '\n' ' ')" "$had" > "$SEEK_RESULT_PATH"
`)
	third := h.job("third", `echo no result`)
	reports := h.runJobs(first, second, third)
	want := []dispatch.Report{
		{AttemptRef: ref("first"), Result: `"first"`},
		{AttemptRef: ref("second"), Result: `{"tmp":"","hadResult":false}`},
		{AttemptRef: ref("third"), LogTail: "no result\n"},
	}
	if diff := cmp.Diff(wholeOutputs(want), reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if b, err := os.ReadFile(h.path("outside")); err != nil || string(b) != "keep me" {
		t.Errorf("the file outside the scratch directory: %q, %v", b, err)
	}
	if fi, err := os.Stat(h.cfg.TmpDir); err != nil || !fi.IsDir() {
		t.Errorf("the scratch directory itself: %v", err)
	}
}

// TestTimeout: a process past its timeout is stopped, SIGTERM then SIGKILL after the grace period,
// with its children, and reported TimedOut.
func TestTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		script     string
		wantSignal string
	}{
		{"ends-on-sigterm", `echo $$ > "$T/pid"; sleep 300 & echo $! > "$T/child"; wait`, "SIGTERM"},
		{"ignores-sigterm", `trap '' TERM; echo $$ > "$T/pid"; sleep 300 & echo $! > "$T/child"; wait; wait`, "SIGKILL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			job := h.job("slow", tc.script)
			job.TimeoutMillis, job.GraceMillis = 500, 300
			start := time.Now()
			reports := h.runJobs(job)
			want := []dispatch.Report{{AttemptRef: ref("slow"), ExitCode: -1, Signal: tc.wantSignal, TimedOut: true}}
			if diff := cmp.Diff(wholeOutputs(want), reports); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
			if d := time.Since(start); d < 500*time.Millisecond {
				t.Errorf("the runner returned after %s, before the timeout", d)
			}
			assertGone(t, "the worker", h.waitPID("pid"))
			assertGone(t, "the worker's child", h.waitPID("child"))
		})
	}
}

// TestNoTimeLeft: an attempt leased with no time left is reported TimedOut without running.
func TestNoTimeLeft(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	job := h.job("late", `echo ran > "$T/ran"`)
	job.TimeoutMillis = 0
	reports := h.runJobs(job)
	if diff := cmp.Diff([]dispatch.Report{{AttemptRef: ref("late"), ExitCode: -1, TimedOut: true}}, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(h.path("ran")); err == nil {
		t.Error("the worker ran")
	}
}

// TestStopByHeartbeat: when the manager says to stop the attempt (Stop, or 409), its whole process
// group is killed and its outcome is not reported, only its output (Stopped, for the manager to keep
// with a job that ended); the runner goes on leasing.
func TestStopByHeartbeat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, answer, wantLog string
	}{
		{"stop", "Canceled", "end job team-a/doomed uid=uid-doomed attempt=1: stopped (Canceled) after "},
		{"conflict", "409", "end job team-a/doomed uid=uid-doomed attempt=1: stopped (NotHeld) after "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			// The worker and its child ignore SIGTERM: only SIGKILL, after the grace period, ends them.
			job := h.job("doomed", `echo working; trap '' TERM; sleep 300 & echo $! > "$T/child"; echo $$ > "$T/pid"; wait; wait`)
			job.GraceMillis = 300
			next := h.job("next", `printf 1 > "$SEEK_RESULT_PATH"`)
			h.f.add(job, next)
			done := make(chan error, 1)
			go func() { done <- h.run(context.Background()) }()
			pid, child := h.waitPID("pid"), h.waitPID("child")
			h.f.set(func(f *fakeDispatch) { f.exitWhenEmpty = true })
			h.f.stop(job.AttemptRef, tc.answer)
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			assertGone(t, "the worker", pid)
			assertGone(t, "the worker's child", child)
			reports := h.f.state().reports
			want := []dispatch.Report{
				{AttemptRef: ref("doomed"), Stopped: true, LogTail: "working\n", OutputBytes: 8},
				{AttemptRef: ref("next"), Result: "1"},
			}
			if diff := cmp.Diff(want, reports); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
			if log := h.log.String(); !strings.Contains(log, tc.wantLog+"") || !strings.Contains(log, "process ended by SIGKILL") {
				t.Errorf("runner log lacks %q ... process ended by SIGKILL:\n%s", tc.wantLog, log)
			}
		})
	}
}

// TestHeartbeatErrors: a dispatch endpoint that fails heartbeats (a manager restarting) does not
// stop the job.
func TestHeartbeatErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.f.set(func(f *fakeDispatch) { f.heartbeatStatus = http.StatusServiceUnavailable })
	reports := h.runJobs(h.job("steady", `sleep 0.5; printf '"done"' > "$SEEK_RESULT_PATH"`))
	if diff := cmp.Diff([]dispatch.Report{{AttemptRef: ref("steady"), Result: `"done"`}}, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if heartbeats := h.f.state().heartbeats; heartbeats < 2 {
		t.Errorf("%d heartbeats, want them retried", heartbeats)
	}
}

// TestInterrupt: when the runner is told to stop (SIGTERM to the pod) during a job, it stops the
// process (its grace period cut to MaxShutdownGrace), reports the attempt Interrupted and returns.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, script, wantSignal string
	}{
		{"ends-on-sigterm", `echo $$ > "$T/pid"; sleep 300 & echo $! > "$T/child"; wait`, "SIGTERM"},
		{"ignores-sigterm", `trap '' TERM; echo $$ > "$T/pid"; sleep 300 & echo $! > "$T/child"; wait; wait`, "SIGKILL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.cfg.MaxShutdownGrace = 300 * time.Millisecond
			job := h.job("busy", tc.script)
			job.GraceMillis = 60_000
			h.f.add(job)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- h.run(ctx) }()
			pid, child := h.waitPID("pid"), h.waitPID("child")
			start := time.Now()
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the runner took %s to stop", d)
			}
			assertGone(t, "the worker", pid)
			assertGone(t, "the worker's child", child)
			reports := h.f.state().reports
			want := []dispatch.Report{{AttemptRef: ref("busy"), ExitCode: -1, Signal: tc.wantSignal, Interrupted: true}}
			if diff := cmp.Diff(wholeOutputs(want), reports); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInterruptIdle: told to stop while waiting for a job, the runner returns at once.
func TestInterruptIdle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	if err := h.run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the runner took %s to stop", d)
	}
}

// TestExitAndIdleSeconds: the runner exits on an Exit answer; the idle time it sends grows while it
// has no job and restarts when a job ends.
func TestExitAndIdleSeconds(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	done := make(chan error, 1)
	go func() { done <- h.run(context.Background()) }()
	// Empty answers for a while, then a job of a second, then Exit.
	time.Sleep(5 * fakePollWait)
	h.f.add(h.job("job", `sleep 1`))
	time.Sleep(2 * time.Second)
	h.f.set(func(f *fakeDispatch) { f.exitWhenEmpty = true })
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := h.f.state()
	if len(s.reports) != 1 || len(s.jobLeases) != 1 {
		t.Fatalf("state = %+v, want one job leased and reported", s)
	}
	before, after := s.leases[:s.jobLeases[0]+1], s.leases[s.jobLeases[0]+1:]
	if len(before) < 3 || len(after) < 2 {
		t.Fatalf("leases = %+v, want several before the job and after it", s.leases)
	}
	for _, ls := range [][]dispatch.LeaseRequest{before, after} {
		for i := 1; i < len(ls); i++ {
			if ls[i].IdleSeconds < ls[i-1].IdleSeconds {
				t.Errorf("idle seconds went down while idle: %+v", s.leases)
			}
		}
	}
	// The lease after the job counts from the job's end, not from the runner's start.
	if last, first := before[len(before)-1].IdleSeconds, after[0].IdleSeconds; last < 0.3 || first > 0.3 {
		t.Errorf("idle seconds %v before the job and %v after it, want the time since the start, then near 0", last, first)
	}
	if log := h.log.String(); !strings.Contains(log, "exiting: the dispatch endpoint has no more work") {
		t.Errorf("runner log lacks the exit:\n%s", log)
	}
}

// TestIdleExcludesFailedCalls: time the dispatch endpoint failed (a manager restart, an apiserver
// outage) is not idle time, so a pool pod does not exit for an outage's sake with jobs waiting.
func TestIdleExcludesFailedCalls(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	failures := make([]int, 40)
	for i := range failures {
		failures[i] = http.StatusServiceUnavailable
	}
	h.f.set(func(f *fakeDispatch) { f.fail[dispatch.PathLease] = failures })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- h.run(ctx) }()
	for len(h.f.state().leases) < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := h.f.state()
	failedFor := time.Since(start) - 3*fakePollWait
	if failedFor < 200*time.Millisecond {
		t.Fatalf("the lease failed for only %v; the test needs longer", failedFor)
	}
	// The first answered lease follows the failures: idle 0. Each later one adds one empty long poll.
	for i, l := range s.leases[:3] {
		if max := float64(i+1) * 2 * fakePollWait.Seconds(); l.IdleSeconds > max {
			t.Errorf("lease %d sent idle %.3fs after %v of failed calls, want at most %.3fs: %+v", i, l.IdleSeconds, failedFor, max, s.leases)
		}
	}
}

// TestAuthRetry: a refused token is retried, re-read from its file for every call, until accepted.
func TestAuthRetry(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeFile("token", "not-yet-valid")
	h.f.add(h.job("ok", `printf 1 > "$SEEK_RESULT_PATH"`))
	go func() {
		for {
			if h.f.state().unauthorized >= 3 {
				h.writeFile("token", testToken)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	reports := h.runJobs()
	if diff := cmp.Diff([]dispatch.Report{{AttemptRef: ref("ok"), Result: "1"}}, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}

// TestAuthGiveUp: a token refused (or unreadable) for AuthGiveUp makes Run fail.
func TestAuthGiveUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
	}{
		{"refused", func(h *harness) { h.writeFile("token", "wrong") }},
		{"unreadable", func(h *harness) { h.cfg.TokenPath = h.path("no-token") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			tc.setup(h)
			h.cfg.AuthGiveUp = 300 * time.Millisecond
			start := time.Now()
			err := h.run(context.Background())
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Run = %v, want ErrUnauthorized", err)
			}
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Errorf("gave up after %s, before AuthGiveUp", d)
			}
		})
	}
}

// TestReportDelivery: a report is retried while the endpoint fails, and dropped when it answers
// that the attempt is no longer the pod's, or when retrying takes too long; either way the runner
// goes on with the next job.
func TestReportDelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// fail are the first report calls' answers; always answers every call after them.
		fail     []int
		always   int
		accepted bool
		retryFor time.Duration
		// wantCalls is the number of calls for the first job's report (0: not checked).
		wantCalls int
		// wantReports are the names of the jobs whose reports were accepted.
		wantReports []string
		wantLog     string
	}{
		{name: "accepted", accepted: true, wantCalls: 1, wantReports: []string{"first", "second"}},
		{name: "retried-on-5xx", fail: []int{503, 500, 502}, accepted: true, wantCalls: 4, wantReports: []string{"first", "second"},
			wantLog: "report of job team-a/first attempt 1 succeeded after 3 failures"},
		{name: "retried-on-auth", fail: []int{401, 403, 429}, accepted: true, wantCalls: 4, wantReports: []string{"first", "second"}},
		{name: "conflict", fail: []int{409}, accepted: true, wantCalls: 1, wantReports: []string{"second"},
			wantLog: "report of job team-a/first attempt 1 refused: the attempt is no longer this pod's"},
		{name: "bad-request", fail: []int{400}, accepted: true, wantCalls: 1, wantReports: []string{"second"},
			wantLog: "report of job team-a/first attempt 1 refused, dropping it"},
		{name: "not-accepted", accepted: false, wantCalls: 1,
			wantLog: "report of job team-a/first attempt 1 not accepted"},
		{name: "gives-up", always: 503, retryFor: 200 * time.Millisecond,
			wantLog: "report of job team-a/first attempt 1 dropped after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tc.retryFor != 0 {
				h.cfg.ReportRetryFor = tc.retryFor
			}
			h.f.set(func(f *fakeDispatch) {
				f.fail[dispatch.PathReport] = tc.fail
				f.reportStatus = tc.always
				f.reportAccepted = tc.accepted
			})
			h.f.add(h.job("first", `printf 1 > "$SEEK_RESULT_PATH"`), h.job("second", `printf 2 > "$SEEK_RESULT_PATH"`))
			reports := h.runJobs()
			s := h.f.state()
			if tc.wantCalls != 0 && s.reportCalls != tc.wantCalls+1 {
				t.Errorf("%d report calls, want %d for the first job and one for the second", s.reportCalls, tc.wantCalls)
			}
			var names []string
			for _, r := range reports {
				names = append(names, r.Name)
			}
			if diff := cmp.Diff(tc.wantReports, names, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("accepted reports (-want +got):\n%s", diff)
			}
			if log := h.log.String(); !strings.Contains(log, tc.wantLog) {
				t.Errorf("runner log lacks %q:\n%s", tc.wantLog, log)
			}
		})
	}
}

// TestOOMKilled: the report says OOMKilled when the cgroup's OOM-kill counter rose during the job,
// for cgroup v2 (memory.events) and v1 (memory/memory.oom_control).
func TestOOMKilled(t *testing.T) {
	t.Parallel()
	v2 := func(n int) string {
		return "low 0\nhigh 0\nmax 3\noom 1\noom_kill " + strconv.Itoa(n) + "\noom_group_kill 0\n"
	}
	v1 := func(n int) string { return "oom_kill_disable 0\nunder_oom 0\noom_kill " + strconv.Itoa(n) + "\n" }
	for _, tc := range []struct {
		name     string
		file     string
		content  func(int) string
		from, to int
		want     bool
	}{
		{"v2-rose", "memory.events", v2, 0, 1, true},
		{"v2-unchanged", "memory.events", v2, 2, 2, false},
		{"v1-rose", "memory/memory.oom_control", v1, 5, 6, true},
		{"v1-unchanged", "memory/memory.oom_control", v1, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			file := filepath.Join(h.cfg.CgroupDir, tc.file)
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(tc.content(tc.from)), 0o644); err != nil {
				t.Fatal(err)
			}
			// The "kernel" counts the kill while the job runs.
			h.writeFile("after", tc.content(tc.to))
			reports := h.runJobs(h.job("hungry", `cp "$T/after" "`+file+`"; kill -KILL $$`))
			want := []dispatch.Report{{AttemptRef: ref("hungry"), ExitCode: -1, Signal: "SIGKILL", OOMKilled: tc.want}}
			if diff := cmp.Diff(wholeOutputs(want), reports); diff != "" {
				t.Errorf("reports (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseOOMKills(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"v2", "low 0\nhigh 0\nmax 0\noom 2\noom_kill 2\noom_group_kill 0\n", 2, false},
		{"v1", "oom_kill_disable 0\nunder_oom 0\noom_kill 17\n", 17, false},
		{"missing", "oom_kill_disable 0\nunder_oom 0\n", 0, true},
		{"garbage", "oom_kill many\n", 0, true},
		{"group-kill-only", "oom_group_kill 3\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOOMKills([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseOOMKills = %d, %v; want %d, error %t", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestJobEnv(t *testing.T) {
	job := &dispatch.Job{AttemptRef: dispatch.AttemptRef{Namespace: "ns", Name: "j", UID: "u", Attempt: 2}}
	got := jobEnv([]string{
		"PATH=/bin", "SEEK_DISPATCH_URL=http://x", "SEEK_DISPATCH_TOKEN_PATH=/t", "SEEK_DISPATCH_OTHER=1",
		"SEEK_JOB_NAME=old", "SEEK_WORKER=w", "SEEK_PROTOCOL=v1", "EMPTY=", "SEEK_JOB_UID=old",
	}, job)
	want := []string{"PATH=/bin", "SEEK_WORKER=w", "SEEK_PROTOCOL=v1", "EMPTY=", "SEEK_JOB_NAME=j", "SEEK_JOB_NAMESPACE=ns", "SEEK_JOB_UID=u"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("jobEnv (-want +got):\n%s", diff)
	}
}

func TestTailBuffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"empty", nil, ""},
		{"short", []string{"ab", "cd"}, "abcd"},
		{"exact", []string{"abcd", "efgh"}, "abcdefgh"},
		{"overflow-in-steps", []string{"abc", "def", "ghi", "jkl"}, "efghijkl"},
		{"one-huge-write", []string{"0123456789abcdefXYZ"}, "bcdefXYZ"},
		{"many-small", strings.Split(strings.Repeat("x", 30)+"12345678", ""), "12345678"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTailBuffer(8)
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := b.String(); got != tc.want {
				t.Errorf("tail = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	if _, err := (Config{Command: []string{"x"}}).withDefaults(); err == nil {
		t.Error("no URL accepted")
	}
	if _, err := (Config{URL: "http://x"}).withDefaults(); err == nil {
		t.Error("no command accepted")
	}
	c, err := Config{URL: "http://x/", Command: []string{"x"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.URL, c.TokenPath, c.InputPath, c.ResultPath, c.TmpDir, c.CgroupDir}
	want := []string{"http://x", dispatch.TokenPath, protocol.InputPath, protocol.ResultPath, protocol.TmpDir, "/sys/fs/cgroup"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestEmptyDirRefusesRoot(t *testing.T) {
	for _, d := range []string{"/", "//", "."} {
		if err := emptyDir(d); err == nil {
			t.Errorf("emptyDir(%q) accepted", d)
		}
	}
}

// TestInterruptDuringGrace: told to stop while a timed-out process has its grace period, the runner
// cuts that period to MaxShutdownGrace; the attempt is still reported TimedOut.
func TestInterruptDuringGrace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.cfg.MaxShutdownGrace = 300 * time.Millisecond
	job := h.job("stubborn", `trap '' TERM; echo $$ > "$T/pid"; sleep 300 & wait; wait`)
	job.TimeoutMillis, job.GraceMillis = 200, 60_000
	h.f.add(job)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.run(ctx) }()
	pid := h.waitPID("pid")
	time.Sleep(time.Second) // past the timeout: in the grace period
	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the runner took %s to stop", d)
	}
	assertGone(t, "the worker", pid)
	want := []dispatch.Report{{AttemptRef: ref("stubborn"), ExitCode: -1, Signal: "SIGKILL", TimedOut: true}}
	if diff := cmp.Diff(want, h.f.state().reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
}

// TestLeasedWhileStopping: a job leased as the runner is told to stop is given back unstarted.
func TestLeasedWhileStopping(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg, err := h.cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	out := &output{w: h.log}
	r := &runner{cfg: cfg, out: out, log: log.New(out, joblog.Prefix, 0), hard: context.Background()}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := r.execute(ctx, h.job("late", `echo ran > "$T/ran"`))
	want := dispatch.Report{AttemptRef: ref("late"), ExitCode: -1, Interrupted: true}
	if diff := cmp.Diff(want, o.report); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(h.path("ran")); err == nil {
		t.Error("the worker ran")
	}
}

// TestEmptyDirReadOnly: emptyDir removes trees the previous job made read-only, as the runner's
// non-root user (when the test runs as root, in a child process of user nobody).
func TestEmptyDirReadOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	scratch := filepath.Join(dir, "tmp")
	for _, d := range []string{"a/b/c", "d"} {
		if err := os.MkdirAll(filepath.Join(scratch, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a/b/c/file", "a/file", "d/file", "file"} {
		if err := os.WriteFile(filepath.Join(scratch, f), []byte("x"), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "outside"), filepath.Join(scratch, "a", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "outside"), 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		const nobody = 65534
		if err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, nobody, nobody)
		}); err != nil {
			t.Fatal(err)
		}
		// The parent directories must let nobody in.
		for p := dir; p != "/"; p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
				if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, d := range []string{"a/b/c", "a/b", "a", "d", "../outside"} {
		if err := os.Chmod(filepath.Join(scratch, d), 0o500); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getuid() == 0 {
		// A copy of the test binary that nobody may run.
		bin, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		self := filepath.Join(dir, "runner.test")
		if err := os.WriteFile(self, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), emptyDirVar+"="+scratch)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("emptyDir as nobody: %v: %s", err, out)
		}
	} else if err := emptyDir(scratch); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(scratch)
	if err != nil || len(entries) != 0 {
		t.Errorf("the scratch directory holds %v (%v), want nothing", entries, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "outside")); err != nil || fi.Mode().Perm() != 0o500 {
		t.Errorf("the directory a link pointed to was changed: %v, %v", fi.Mode(), err)
	}
}

// TestShortJobNoHeartbeat: a job that ends within firstHeartbeatDelay costs no heartbeat call, only
// its lease and its report.
func TestShortJobNoHeartbeat(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	reports := h.runJobs(h.job("quick", `printf '{"ok":true}' > "$SEEK_RESULT_PATH"`))
	if len(reports) != 1 || reports[0].Result != `{"ok":true}` {
		t.Fatalf("reports = %+v", reports)
	}
	if n := h.f.state().heartbeats; n != 0 {
		t.Errorf("%d heartbeat calls for a job of a few milliseconds, want 0", n)
	}
}

// TestProgress: the worker's progress file reaches the endpoint while the job runs: the first report
// at once, then the latest after the interval; a stale file of the previous job is gone.
func TestProgress(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeFile("seek/progress.json", `{"fraction":0.9,"message":"stale"}`)
	// Three reports within the interval: the first goes out at once, the last after the interval
	// (the middle one is never sent), then the job ends.
	script := `
write() { printf '%s' "$1" > "$SEEK_PROGRESS_PATH.tmp" && mv "$SEEK_PROGRESS_PATH.tmp" "$SEEK_PROGRESS_PATH"; }
write '{"fraction":0.1,"message":"one"}'; sleep 1
write '{"fraction":0.5,"message":"two"}'; sleep 0.7
write '{"fraction":2,"message":"three"}'; sleep 6
printf '{}' > "$SEEK_RESULT_PATH"
`
	reports := h.runJobs(h.job("progress", script))
	if len(reports) != 1 || reports[0].ExitCode != 0 {
		t.Fatalf("reports: %+v", reports)
	}
	got := h.f.state().progress
	ref := reports[0].AttemptRef
	want := []dispatch.ProgressRequest{
		{AttemptRef: ref, Fraction: 0.1, Message: "one"},
		{AttemptRef: ref, Fraction: 1, Message: "three"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("progress sent (-want +got):\n%s", diff)
	}
}

func TestReadProgress(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.json")
	cases := map[string]struct {
		content string
		want    protocol.Progress
		ok      bool
	}{
		"valid":            {content: `{"fraction":0.4256,"message":"m"}`, want: protocol.Progress{Fraction: 0.426, Message: "m"}, ok: true},
		"clamped":          {content: `{"fraction":-3}`, want: protocol.Progress{}, ok: true},
		"half written":     {content: `{"fraction":0.`, ok: false},
		"too large":        {content: `{"fraction":0.5,"message":"` + strings.Repeat("x", protocol.MaxProgressBytes) + `"}`, ok: false},
		"long message cut": {content: `{"fraction":1,"message":"` + strings.Repeat("x", 300) + `"}`, want: protocol.Progress{Fraction: 1, Message: strings.Repeat("x", protocol.MaxProgressMessageBytes)}, ok: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, ok := readProgress(path)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("readProgress = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := readProgress(filepath.Join(dir, "absent")); ok {
		t.Error("readProgress of a missing file: ok")
	}
}

// wholeOutput is r with OutputBytes set, when unset, to the size of its LogTail: the whole output.
func wholeOutput(r dispatch.Report) dispatch.Report {
	if r.OutputBytes == 0 {
		r.OutputBytes = int64(len(r.LogTail))
	}
	return r
}

func wholeOutputs(rs []dispatch.Report) []dispatch.Report {
	out := make([]dispatch.Report, len(rs))
	for i, r := range rs {
		out[i] = wholeOutput(r)
	}
	return out
}
