package localcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A daemon is one process of the cluster. It runs detached (its own session, output to
// <dir>/logs/<name>.log, pid in <dir>/run/<name>.pid), so it outlives the command that started it.
type daemon struct {
	name string
	bin  string
	args []string
}

func (c *Cluster) pidFile(name string) string { return filepath.Join(c.dir, "run", name+".pid") }
func (c *Cluster) logFile(name string) string { return filepath.Join(c.dir, "logs", name+".log") }

// pid is the process id of the named daemon if it runs.
func (c *Cluster) pid(name string) (int, bool) {
	data, err := os.ReadFile(c.pidFile(name))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, false
	}
	return pid, alive(pid)
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// start starts d unless it already runs.
func (c *Cluster) start(d daemon) error {
	if _, ok := c.pid(d.name); ok {
		return nil
	}
	log, err := os.OpenFile(c.logFile(d.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "\n=== %s %s %s\n", time.Now().Format(time.RFC3339), d.bin, strings.Join(d.args, " "))
	cmd := exec.Command(d.bin, d.args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while this process lives; otherwise init does.
	go func() { _ = cmd.Wait() }()
	return os.WriteFile(c.pidFile(d.name), []byte(strconv.Itoa(pid)), 0o644)
}

// stop stops the named daemon: SIGTERM, then SIGKILL after grace.
func (c *Cluster) stop(name string, grace time.Duration) error {
	pid, ok := c.pid(name)
	if ok {
		_ = syscall.Kill(pid, syscall.SIGTERM)
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
