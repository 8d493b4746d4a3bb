package localcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Up keeps a daemon only if it is healthy, not merely if its process lives: a daemon that was just
// sent SIGTERM still runs while it shuts down, and one that hangs runs forever. Such a daemon is given
// unhealthyGrace to become healthy (it may be starting, or recovering from a restart of a daemon it
// depends on: measured, kube-apiserver is ready again at once after etcd restarts) or to exit (it may be
// stopping); then it is stopped (SIGTERM, SIGKILL after stopGrace) and started again. Measured:
// kube-apiserver stops listening at once on SIGTERM but lives on for more than 45 s while it drains;
// a second SIGTERM ends it at once.
const (
	unhealthyGrace = 20 * time.Second
	stopGrace      = 15 * time.Second
)

// observation is what up sees of one daemon at one moment.
type observation struct {
	// running: the pid file names a live process (not a zombie) of the daemon's program.
	running bool
	// healthy: the daemon answers its health check.
	healthy bool
	// outdated: it runs with other arguments than up would start it with (a changed flag, a new node
	// address), so it must be restarted for the change to take.
	outdated bool
	// unhealthyFor is how long up has seen this process running but not healthy.
	unhealthyFor time.Duration
}

// action is what up does about a daemon.
type action int

const (
	// keep a running, healthy daemon.
	keep action = iota
	// launch a daemon that does not run (never started, exited, or a zombie).
	launch
	// wait for a running but unhealthy daemon to become healthy or to exit, and look again.
	wait
	// replace a daemon unhealthy for longer than the grace, or outdated: stop it, then launch it.
	replace
)

func (a action) String() string {
	return [...]string{"keep", "launch", "wait", "replace"}[a]
}

// decide is what to do about a daemon in the state o.
func decide(o observation, grace time.Duration) action {
	switch {
	case !o.running:
		return launch
	case o.outdated:
		return replace
	case o.healthy:
		return keep
	case o.unhealthyFor < grace:
		return wait
	default:
		return replace
	}
}

// ensure makes d run and be healthy within ready of starting it, starting it, waiting for it, or
// replacing it as decide says. healthy reports whether the daemon, running as pid, is healthy.
func (c *Cluster) ensure(ctx context.Context, d daemon, healthy func(pid int) bool, ready time.Duration) error {
	var watched int // the pid seen unhealthy since unhealthySince
	var unhealthySince time.Time
	for {
		pid, running := c.pid(d.name)
		o := observation{running: running, healthy: running && healthy(pid), outdated: running && !runsWith(pid, d.args)}
		if running && !o.healthy {
			if pid != watched {
				watched, unhealthySince = pid, time.Now()
				c.logf("%s (pid %d) runs but is not healthy: waiting up to %v for it to become healthy or exit", d.name, pid, c.grace)
			}
			o.unhealthyFor = time.Since(unhealthySince)
		}
		switch decide(o, c.grace) {
		case keep:
			return nil
		case wait:
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
			continue
		case replace:
			if o.outdated {
				c.logf("%s (pid %d) runs with other arguments: stopping it and starting it with the new ones", d.name, pid)
			} else {
				c.logf("%s (pid %d) is still not healthy after %v: stopping it and starting it again", d.name, pid, c.grace)
			}
			if err := c.stop(d.name, stopGrace); err != nil {
				return err
			}
		case launch:
			if pid != 0 {
				c.logf("%s (pid %d) is not running: starting it again", d.name, pid)
			}
		}
		pid, err := c.launch(d)
		if err != nil {
			return err
		}
		err = waitFor(ctx, ready, d.name+" healthy", func() bool { return !alive(pid) || healthy(pid) })
		if err == nil && !alive(pid) {
			err = fmt.Errorf("%s (pid %d) exited", d.name, pid)
		}
		if err != nil {
			return c.withLog(err, d.name)
		}
		return nil
	}
}

// healthCheck is c.healthy for ensure.
func (c *Cluster) healthCheck(ctx context.Context, name string) func(pid int) bool {
	return func(int) bool { return c.healthy(ctx, name) }
}

// healthy reports whether the named daemon answers its health check: etcd's /health, kube-apiserver's
// /readyz, kube-proxy's /livez, the /healthz of the others, containerd's socket.
func (c *Cluster) healthy(ctx context.Context, name string) bool {
	switch name {
	case "etcd":
		return httpOK(fmt.Sprintf("http://127.0.0.1:%d/health", etcdPort))
	case "kube-apiserver":
		return apiReady(ctx, c.path("pki", "admin.kubeconfig"))
	case "kube-controller-manager":
		return localHTTPSOK(fmt.Sprintf("https://127.0.0.1:%d/healthz", controllerManagerPort))
	case "kube-scheduler":
		return localHTTPSOK(fmt.Sprintf("https://127.0.0.1:%d/healthz", schedulerPort))
	case "kubelet":
		return httpOK(fmt.Sprintf("http://127.0.0.1:%d/healthz", kubeletHealthzPort))
	case "kube-proxy":
		// /livez is the proxy's own health; /healthz adds the node's (for load balancers).
		return httpOK(fmt.Sprintf("http://127.0.0.1:%d/livez", kubeProxyHealthzPort))
	case "containerd":
		conn, err := net.DialTimeout("unix", c.path("containerd", "containerd.sock"), 2*time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	return false
}

var insecureLocal = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // see localHTTPSOK

// localHTTPSOK is httpOK for the health endpoints of kube-controller-manager and kube-scheduler on
// 127.0.0.1: they serve with a self-signed certificate they make at start, so there is nothing to
// verify it against; nothing but the status code is read.
func localHTTPSOK(url string) bool {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	cl := http.Client{Timeout: 2 * time.Second, Transport: insecureLocal}
	resp, err := cl.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// DaemonState is the observed state of one of the cluster's processes.
type DaemonState struct {
	// Name is the daemon: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd,
	// kubelet or kube-proxy.
	Name string
	// PID is its process id; 0 unless it runs.
	PID int
	// Healthy reports that it runs and answers its health check (etcd's /health, kube-apiserver's
	// /readyz, kube-proxy's /livez, the others' /healthz, containerd's socket).
	Healthy bool
}

// Daemons observes the cluster's processes, in start order.
func Daemons(ctx context.Context, o Options) []DaemonState {
	c := newCluster(o)
	states := make([]DaemonState, 0, len(daemons))
	for _, name := range daemons {
		s := DaemonState{Name: name}
		if pid, ok := c.pid(name); ok {
			s.PID, s.Healthy = pid, c.healthy(ctx, name)
		}
		states = append(states, s)
	}
	return states
}
