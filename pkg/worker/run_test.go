package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seek-api/seek-operator/pkg/protocol"
)

// modeVar makes the test binary run a worker with Run instead of the tests; see TestRun.
const modeVar = "SEEK_WORKER_TEST_MODE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(modeVar); mode != "" {
		runTestWorker(mode) // never returns
	}
	os.Exit(m.Run())
}

// runTestWorker runs a worker with Run. It prints "ready" to stdout when its handler has started.
func runTestWorker(mode string) {
	Run(func(ctx context.Context, job *Job) (any, error) {
		fmt.Println("ready")
		switch mode {
		case "echo":
			return job.Input, nil
		case "wait": // until canceled
			<-ctx.Done()
			return nil, ctx.Err()
		case "stubborn": // ignores cancelation
			select {}
		}
		return nil, Permanent("BadMode", errors.New("unknown mode "+mode))
	})
}

// startWorker starts the test binary as a worker in mode, with input, and waits until its handler runs.
func startWorker(t *testing.T, mode, input string) (cmd *exec.Cmd, resultPath string, stderr *bufio.Reader) {
	t.Helper()
	dir := t.TempDir()
	inputPath, resultPath := filepath.Join(dir, "input.json"), filepath.Join(dir, "result.json")
	if err := os.WriteFile(inputPath, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd = exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), modeVar+"="+mode,
		protocol.EnvProtocol+"="+protocol.Version,
		protocol.EnvInputPath+"="+inputPath,
		protocol.EnvResultPath+"="+resultPath,
		protocol.EnvJobName+"=job-1",
		protocol.EnvJobNamespace+"=team-a")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("the worker printed %q (%v)", line, err)
	}
	return cmd, resultPath, bufio.NewReader(errPipe)
}

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}

	t.Run("success", func(t *testing.T) {
		cmd, result, stderr := startWorker(t, "echo", `{"a": 1}`)
		log, _ := io.ReadAll(stderr)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v; stderr:\n%s", err, log)
		}
		if data, err := os.ReadFile(result); string(data) != `{"a":1}` {
			t.Errorf("result %q (%v)", data, err)
		}
		if want := "seek-worker: job team-a/job-1: succeeded (7-byte result)\n"; string(log) != want {
			t.Errorf("stderr %q, want %q", log, want)
		}
	})

	t.Run("SIGTERM cancels the context", func(t *testing.T) {
		cmd, result, stderr := startWorker(t, "wait", `null`)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		log, _ := io.ReadAll(stderr)
		err := cmd.Wait()
		if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != 1 {
			t.Fatalf("exit: %v, want code 1; stderr:\n%s", err, log)
		}
		want := `{"message":"interrupted (terminated signal received): context canceled","reason":"Interrupted"}`
		if data, err := os.ReadFile(result); string(data) != want {
			t.Errorf("result %s (%v), want %s", data, err, want)
		}
		if !strings.Contains(string(log), "seek-worker: terminated signal received: canceling the job\n") {
			t.Errorf("stderr:\n%s", log)
		}
	})

	t.Run("a second SIGTERM ends the process", func(t *testing.T) {
		cmd, result, stderr := startWorker(t, "stubborn", `null`)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		line, err := stderr.ReadString('\n') // logged once the default behavior is back
		if !strings.Contains(line, "canceling the job") {
			t.Fatalf("stderr %q (%v)", line, err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Errorf("exit: %v, want death by SIGTERM", err)
		}
		if data, err := os.ReadFile(result); err == nil {
			t.Errorf("result written: %q", data)
		}
	})
}
