package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
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

	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// mainVar makes the test binary run main's code instead of the tests; see startRunner.
const mainVar = "SEEK_RUNNER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainVar) == "1" {
		os.Exit(runMain(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestInstall(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "seek", "bin", "seek-runner")
	for i := range 2 { // the second time over the first, read-only copy
		var stderr bytes.Buffer
		if code := runMain([]string{"install", dest}, os.Getenv, &bytes.Buffer{}, &stderr); code != 0 {
			t.Fatalf("install #%d: exit code %d: %s", i+1, code, stderr.String())
		}
		fi, err := os.Stat(dest)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o555 {
			t.Errorf("mode %v, want -r-xr-xr-x", fi.Mode())
		}
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("the copy (%d bytes) differs from the executable (%d bytes)", len(got), len(want))
		}
	}
	entries, err := os.ReadDir(filepath.Dir(dest))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only the runner (no temporary file left)", len(entries))
	}
	// The copy runs (as main: it is this test binary).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dest, "bogus")
	cmd.Env = append(os.Environ(), mainVar+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "usage:") {
		t.Errorf("the installed copy answered %v: %s", err, out)
	}
}

func TestInstallFails(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := runMain([]string{"install", filepath.Join(blocker, "seek-runner")}, os.Getenv, &bytes.Buffer{}, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "seek-runner: install: ") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestUsage(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	withURL := env(map[string]string{dispatch.EnvURL: "http://127.0.0.1:1"})
	for _, tc := range []struct {
		name   string
		args   []string
		getenv func(string) string
		want   string
	}{
		{"no-args", nil, withURL, "usage:"},
		{"unknown", []string{"serve"}, withURL, "usage:"},
		{"install-no-dest", []string{"install"}, withURL, "usage:"},
		{"install-two-dests", []string{"install", "a", "b"}, withURL, "usage:"},
		{"run-no-command", []string{"run"}, withURL, "usage:"},
		{"run-empty-command", []string{"run", "--"}, withURL, "usage:"},
		{"run-bad-flag", []string{"run", "-bogus", "--", "x"}, withURL, "flag provided but not defined"},
		{"run-no-url", []string{"run", "--", "x"}, env(nil), "$SEEK_DISPATCH_URL is not set"},
		{"collect-no-url", []string{"collect"}, env(nil), "$SEEK_DISPATCH_URL is not set"},
		{"collect-args", []string{"collect", "x"}, withURL, ""},
		{"collect-bad-flag", []string{"collect", "-bogus"}, withURL, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := runMain(tc.args, tc.getenv, &bytes.Buffer{}, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.want)
			}
		})
	}
}

// fakeEndpoint hands out one job, then answers leases with Exit (exit) or nothing, and records
// reports.
type fakeEndpoint struct {
	mu      sync.Mutex
	job     *dispatch.Job
	exit    bool
	reports []dispatch.Report
	gotAuth []string
}

func (f *fakeEndpoint) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	f.mu.Lock()
	f.gotAuth = append(f.gotAuth, req.Header.Get("Authorization"))
	f.mu.Unlock()
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch req.URL.Path {
	case dispatch.PathLease:
		f.mu.Lock()
		job, exit := f.job, f.exit
		f.job = nil
		f.mu.Unlock()
		switch {
		case job != nil:
			reply(dispatch.LeaseResponse{Job: job})
		case exit:
			reply(dispatch.LeaseResponse{Exit: true})
		default:
			select {
			case <-time.After(time.Second):
			case <-req.Context().Done():
			}
			reply(dispatch.LeaseResponse{})
		}
	case dispatch.PathHeartbeat:
		select {
		case <-time.After(time.Second):
		case <-req.Context().Done():
		}
		reply(dispatch.HeartbeatResponse{})
	case dispatch.PathReport:
		var r dispatch.Report
		if err := json.NewDecoder(req.Body).Decode(&r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.reports = append(f.reports, r)
		f.mu.Unlock()
		reply(dispatch.ReportResponse{Accepted: true})
	default:
		http.NotFound(w, req)
	}
}

func (f *fakeEndpoint) state() ([]dispatch.Report, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]dispatch.Report(nil), f.reports...), append([]string(nil), f.gotAuth...)
}

// startRunner runs the test binary as "seek-runner run" against f, with the environment of a pool
// pod (paths under a temporary directory), running script as the worker's command.
func startRunner(t *testing.T, f *fakeEndpoint, script string) (cmd *exec.Cmd, dir string, stderr *bytes.Buffer) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	dir = t.TempDir()
	for _, d := range []string{"tmp", "cgroup", "seek"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("the-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd = exec.CommandContext(ctx, os.Args[0], "run", "-tmp-dir", filepath.Join(dir, "tmp"),
		"-cgroup-dir", filepath.Join(dir, "cgroup"), "--", "/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), mainVar+"=1", "T="+dir,
		dispatch.EnvURL+"="+srv.URL,
		dispatch.EnvTokenPath+"="+filepath.Join(dir, "token"),
		protocol.EnvInputPath+"="+filepath.Join(dir, "seek", "input", "input.json"),
		protocol.EnvResultPath+"="+filepath.Join(dir, "seek", "result.json"))
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, dir, stderr
}

func testJob(name string) *dispatch.Job {
	return &dispatch.Job{
		AttemptRef: dispatch.AttemptRef{Namespace: "team-a", Name: name, UID: "uid-1", Attempt: 1},
		Worker:     "echo", Input: json.RawMessage(`{"message":"hi"}`), TimeoutMillis: 30_000, GraceMillis: 5_000,
	}
}

// TestRun: the runner runs a leased job with the pod's paths and token and exits 0 on Exit.
func TestRun(t *testing.T) {
	f := &fakeEndpoint{job: testJob("j1"), exit: true}
	cmd, _, stderr := startRunner(t, f, `printf '{"input":%s,"job":"%s"}' "$(cat "$SEEK_INPUT_PATH")" "$SEEK_JOB_NAME" > "$SEEK_RESULT_PATH"`)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the runner: %v\n%s", err, stderr)
	}
	reports, auth := f.state()
	want := []dispatch.Report{{AttemptRef: testJob("j1").AttemptRef, Result: `{"input":{"message":"hi"},"job":"j1"}`}}
	if diff := cmp.Diff(want, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s\n%s", diff, stderr)
	}
	for _, a := range auth {
		if a != "Bearer the-token" {
			t.Errorf("Authorization %q, want the token of the file", a)
		}
	}
}

// TestRunSIGTERM: SIGTERM to the runner stops the running job's process, reports it Interrupted and
// exits 0.
func TestRunSIGTERM(t *testing.T) {
	f := &fakeEndpoint{job: testJob("long")}
	cmd, dir, stderr := startRunner(t, f, `echo $$ > "$T/pid.tmp"; mv "$T/pid.tmp" "$T/pid"; exec sleep 300`)
	var pid int
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err == nil {
			if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				t.Fatal(err)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || time.Now().After(deadline) {
			t.Fatalf("the worker did not start: %v\n%s", err, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the runner: %v\n%s", err, stderr)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		if stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(stat), ") Z") {
			t.Errorf("the worker (pid %d) still runs: %v", pid, err)
		}
	}
	reports, _ := f.state()
	want := []dispatch.Report{{AttemptRef: testJob("long").AttemptRef, ExitCode: -1, Signal: "SIGTERM", Interrupted: true}}
	if diff := cmp.Diff(want, reports); diff != "" {
		t.Errorf("reports (-want +got):\n%s\n%s", diff, stderr)
	}
	if !strings.Contains(stderr.String(), "seek-runner: stopped (") {
		t.Errorf("stderr lacks the runner's stop:\n%s", stderr)
	}
}

// TestCollectSIGTERM runs the collector as its sidecar container runs: it waits for SIGTERM, then
// writes its termination message (here, a small result verbatim) and exits 0.
func TestCollectSIGTERM(t *testing.T) {
	dir := t.TempDir()
	result, termLog := filepath.Join(dir, "result.json"), filepath.Join(dir, "termination-log")
	if err := os.WriteFile(result, []byte(`{"ok":true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "collect", "-termination-log", termLog)
	cmd.Env = append(os.Environ(), mainVar+"=1", dispatch.EnvURL+"=http://127.0.0.1:1", protocol.EnvResultPath+"="+result)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Its first line says it waits, its SIGTERM handler in place.
	for !strings.Contains(stderr.String(), "waiting for the worker to end") {
		if ctx.Err() != nil {
			t.Fatalf("the collector never said it waits:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(termLog); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the termination message was written before SIGTERM: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("collect: %v\n%s", err, stderr.String())
	}
	if got, err := os.ReadFile(termLog); err != nil || string(got) != `{"ok":true}` {
		t.Errorf("termination message %q (%v), want the result", got, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test reading it at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
