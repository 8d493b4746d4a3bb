package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Outage is what Restart did to a daemon, as measured.
type Outage struct {
	// Stopped is when the daemon's old process was gone.
	Stopped time.Time
	// Started is when its new process was started.
	Started time.Time
	// Healthy is when the new process first answered its health check.
	Healthy time.Time
}

// Restart kills one of the cluster's daemons (SIGKILL, as a crash), keeps it stopped for down, starts
// it again exactly as it ran (the same program and arguments, read from /proc: nothing is recomputed,
// so nothing else changes), and waits until it answers its health check again, at most ready. It is
// for chaos tests: an apiserver or kubelet outage of a known length.
//
// It kills rather than stops: kube-apiserver stopped with SIGTERM takes its address out of the
// kubernetes Service's endpoints on the way down, and kube-proxy, whose watch the restarted apiserver
// first refuses (403 while its RBAC is not loaded) and which then backs off for up to a minute, may
// route the Service to it again only that much later. Seen in the chaos test: after a SIGTERM, 30 s
// down and 9 s to start, requests of pods to the apiserver still went unanswered 20 s after it was
// ready, and the manager lost its lease. A crash leaves the endpoint in place, so pods reach the
// apiserver as soon as it serves again.
func Restart(ctx context.Context, o Options, name string, down, ready time.Duration) (Outage, error) {
	c := newCluster(o)
	if !slices.Contains(daemons, name) {
		return Outage{}, fmt.Errorf("no daemon %q; the cluster's are %s", name, strings.Join(daemons, ", "))
	}
	return c.restart(ctx, name, down, ready, c.healthCheck(ctx, name))
}

// restart is Restart with the health check given.
func (c *Cluster) restart(ctx context.Context, name string, down, ready time.Duration, healthy func(pid int) bool) (Outage, error) {
	var o Outage
	pid, running := c.pid(name)
	if !running {
		return o, fmt.Errorf("%s does not run", name)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return o, fmt.Errorf("read the command line of %s (pid %d): %w", name, pid, err)
	}
	d, err := parseCmdline(name, cmdline)
	if err != nil {
		return o, err
	}
	if err := c.stop(name, 0); err != nil {
		return o, err
	}
	o.Stopped = time.Now()
	select {
	case <-ctx.Done():
		return o, ctx.Err()
	case <-time.After(down):
	}
	if pid, err = c.launch(d); err != nil {
		return o, err
	}
	o.Started = time.Now()
	err = waitFor(ctx, ready, name+" healthy again", func() bool { return !alive(pid) || healthy(pid) })
	if err == nil && !alive(pid) {
		err = fmt.Errorf("%s (pid %d) exited", name, pid)
	}
	if err != nil {
		return o, c.withLog(err, name)
	}
	o.Healthy = time.Now()
	return o, nil
}

// parseCmdline is the daemon that runs with the command line cmdline (the contents of
// /proc/<pid>/cmdline: NUL-terminated arguments, the program first).
func parseCmdline(name string, cmdline []byte) (daemon, error) {
	argv := strings.Split(string(bytes.TrimSuffix(cmdline, []byte{0})), "\x00")
	if len(argv) == 0 || argv[0] == "" {
		return daemon{}, fmt.Errorf("%s: empty command line", name)
	}
	return daemon{name: name, bin: argv[0], args: argv[1:]}, nil
}
