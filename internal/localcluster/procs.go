package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A daemon is one process of the cluster. It runs detached (its own session, output to
// <dir>/logs/<name>.log, pid in <dir>/run/<name>.pid), so it outlives the command that started it.
type daemon struct {
	// name is also the base name of bin: a pid file naming a process of another program is stale.
	name string
	bin  string
	args []string
}

func (c *Cluster) pidFile(name string) string { return filepath.Join(c.dir, "run", name+".pid") }
func (c *Cluster) logFile(name string) string { return filepath.Join(c.dir, "logs", name+".log") }

// pid is the process id in the named daemon's pid file, and whether that process runs: it lives (is
// not a zombie) and is the daemon's program, not another that got the pid since.
func (c *Cluster) pid(name string) (int, bool) {
	data, err := os.ReadFile(c.pidFile(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, alive(pid) && program(pid) == name
}

// alive reports whether pid is a live process. A zombie is not: a daemon that exited stays one until
// its parent reaps it, and on a machine whose init does not reap, that is forever.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	state := procState(stat)
	return state != 0 && state != 'Z' && state != 'X'
}

// procState is the state letter in the contents of /proc/<pid>/stat (R, S, D, T, Z, X, ...), or 0.
// It follows the command name, which is in parentheses and may itself hold spaces and parentheses:
// "pid (comm) S ppid ...".
func procState(stat []byte) byte {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) || stat[i+1] != ' ' {
		return 0
	}
	return stat[i+2]
}

// program is the base name of pid's executable as it was started (argv[0]), or "".
func program(pid int) string {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	if len(argv0) == 0 {
		return ""
	}
	return filepath.Base(string(argv0))
}

// runsWith reports whether the process pid runs with the arguments args (after its program), as far
// as /proc shows: a process whose command line cannot be read is taken to.
func runsWith(pid int, args []string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return true
	}
	argv := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	return slices.Equal(argv[1:], args)
}

// launch starts d and records its pid.
func (c *Cluster) launch(d daemon) (int, error) {
	closeInheritedOnExec()
	log, err := os.OpenFile(c.logFile(d.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer log.Close()
	fmt.Fprintf(log, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339), d.bin, strings.Join(d.args, " "))
	cmd := exec.Command(d.bin, d.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", d.name, err)
	}
	pid := cmd.Process.Pid
	// Start returns once the child called execve, a moment before /proc shows the new program and its
	// arguments: wait for them, so that pid and runsWith see the daemon at once.
	for i := 0; i < 1000 && alive(pid) && (program(pid) != d.name || !runsWith(pid, d.args)); i++ {
		time.Sleep(time.Millisecond)
	}
	c.launched[d.name] = time.Now()
	// Reap it if it exits while this process lives; otherwise init does (or it stays a zombie).
	go func() { _ = cmd.Wait() }()
	return pid, os.WriteFile(c.pidFile(d.name), []byte(strconv.Itoa(pid)), 0o644)
}

// inheritedFDs marks, once, every file descriptor this process inherited (above stderr) close-on-exec.
// Go opens its own files close-on-exec, but not what it inherits: without this a daemon, which outlives
// us, would keep our caller's pipes and lock files open (a `flock LOCK make run` would hold LOCK as long
// as the cluster runs, a `make run | tee` would never see EOF).
var inheritedFDs sync.Once

func closeInheritedOnExec() {
	inheritedFDs.Do(func() {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return
		}
		for _, e := range entries {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				syscall.CloseOnExec(fd)
			}
		}
	})
}

// stop stops the named daemon: SIGTERM, then SIGKILL after grace; a grace of zero kills it at once.
func (c *Cluster) stop(name string, grace time.Duration) error {
	pid, ok := c.pid(name)
	if ok {
		if grace > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		deadline := time.Now().Add(grace)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; alive(pid) && i < 50; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			if alive(pid) {
				return fmt.Errorf("%s (pid %d) does not stop", name, pid)
			}
		}
	}
	if err := os.Remove(c.pidFile(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
