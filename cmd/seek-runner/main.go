// Command seek-runner is the entrypoint of every pod of a pooled SeekWorker. An init container copies
// it into the pod (install), and the worker container runs the worker's command through it (run):
//
//	seek-runner install DEST
//	seek-runner run [-tmp-dir DIR] [-cgroup-dir DIR] -- CMD [ARGS...]
//	seek-runner collect [-termination-log FILE]
//
// install copies this executable to DEST (mode 0555), creating DEST's directory. run leases jobs
// from the manager's dispatch endpoint ($SEEK_DISPATCH_URL, with the token in
// $SEEK_DISPATCH_TOKEN_PATH) and runs each as a fresh CMD process (see internal/runner); it exits 0
// when the endpoint tells it to (the pool shrinks) or on SIGTERM (after stopping and reporting the
// running job), and 1 when the endpoint keeps refusing its token. collect is the collector sidecar
// of a Job mode pod: while the worker runs it passes the worker's progress file
// ($SEEK_PROGRESS_PATH) on to the dispatch endpoint; it waits for SIGTERM (sent by the kubelet once
// the worker container has exited), uploads a result over 4 KiB to the dispatch endpoint, and writes what it did to its termination
// message (see internal/runner.Collect); it exits 0.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/seek-api/seek-operator/internal/runner"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

const usage = `usage:
  seek-runner install DEST
  seek-runner run [-tmp-dir DIR] [-cgroup-dir DIR] -- CMD [ARGS...]
  seek-runner collect [-termination-log FILE]
`

func main() {
	os.Exit(runMain(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// runMain runs the command line args and returns the exit code.
func runMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "install":
		if len(args) != 2 || args[1] == "" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		if err := install(args[1]); err != nil {
			fmt.Fprintf(stderr, "seek-runner: install: %v\n", err)
			return 1
		}
		return 0
	case "run":
		return run(args[1:], getenv, stderr)
	case "collect":
		return collect(args[1:], getenv, stderr)
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// install copies the running executable to dest, mode 0555, through a temporary file renamed into
// place, so that dest is never a partial copy.
func install(dest string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".seek-runner-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o555); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}

// run is the run subcommand.
func run(args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tmpDir := fs.String("tmp-dir", protocol.TmpDir, "scratch directory emptied before every job")
	cgroupDir := fs.String("cgroup-dir", runner.DefaultCgroupDir, "mount of the container's cgroup, for OOM kills")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	command := fs.Args()
	if len(command) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if getenv(dispatch.EnvURL) == "" {
		fmt.Fprintf(stderr, "seek-runner: $%s is not set\n", dispatch.EnvURL)
		return 2
	}
	cfg := runner.Config{
		URL:         getenv(dispatch.EnvURL),
		TokenPath:   cmp.Or(getenv(dispatch.EnvTokenPath), dispatch.TokenPath),
		Command:     command,
		InputPath:   cmp.Or(getenv(protocol.EnvInputPath), protocol.InputPath),
		ResultPath:  cmp.Or(getenv(protocol.EnvResultPath), protocol.ResultPath),
		TmpDir:      *tmpDir,
		CgroupDir:   *cgroupDir,
		Log:         stderr,
		ReapOrphans: os.Getpid() == 1,
	}
	if err := undumpable(); err != nil {
		fmt.Fprintf(stderr, "seek-runner: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := runner.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "seek-runner: %v\n", err)
		return 1
	}
	return 0
}

// collect is the collect subcommand.
func collect(args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	termLog := fs.String("termination-log", "/dev/termination-log", "file the termination message is written to")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	if getenv(dispatch.EnvURL) == "" {
		fmt.Fprintf(stderr, "seek-runner: $%s is not set\n", dispatch.EnvURL)
		return 2
	}
	cfg := runner.CollectConfig{
		URL:          getenv(dispatch.EnvURL),
		TokenPath:    cmp.Or(getenv(dispatch.EnvTokenPath), dispatch.TokenPath),
		ResultPath:   cmp.Or(getenv(protocol.EnvResultPath), protocol.ResultPath),
		ProgressPath: cmp.Or(getenv(protocol.EnvProgressPath), protocol.ProgressPath),
		Namespace:    getenv(protocol.EnvJobNamespace),
		Name:         getenv(protocol.EnvJobName),
		UID:          getenv(protocol.EnvJobUID),
		Log:          stderr,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	msg := runner.Collect(ctx, cfg)
	if err := os.WriteFile(*termLog, []byte(msg), 0o644); err != nil {
		fmt.Fprintf(stderr, "seek-runner: write the termination message: %v\n", err)
		return 1
	}
	return 0
}
