package localcluster

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    daemon
		err     string
	}{
		{"/opt/k8s/kube-apiserver\x00--secure-port=6443\x00--v=0\x00",
			daemon{name: "d", bin: "/opt/k8s/kube-apiserver", args: []string{"--secure-port=6443", "--v=0"}}, ""},
		{"containerd\x00--config\x00/a b/config.toml\x00",
			daemon{name: "d", bin: "containerd", args: []string{"--config", "/a b/config.toml"}}, ""},
		{"sleep\x00", daemon{name: "d", bin: "sleep", args: []string{}}, ""},
		{"", daemon{}, "empty command line"},
	} {
		got, err := parseCmdline("d", []byte(tc.cmdline))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseCmdline(%q) error = %v, want %q", tc.cmdline, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseCmdline(%q): %v", tc.cmdline, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(daemon{})); diff != "" {
			t.Errorf("parseCmdline(%q) (-want +got):\n%s", tc.cmdline, diff)
		}
	}
}

// TestRestart restarts a real process: it is stopped, stays down as long as asked, and runs again with
// the same program and arguments, recorded in the pid file.
func TestRestart(t *testing.T) {
	ctx := t.Context()
	c := newTestCluster(t)
	t.Cleanup(func() { _ = c.stop("sleep", time.Second) })
	sleep := daemon{name: "sleep", bin: "sleep", args: []string{"60"}}
	old, err := c.launch(sleep)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.restart(ctx, "sleep", 300*time.Millisecond, 10*time.Second, func(int) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if alive(old) {
		t.Errorf("the old process (pid %d) still runs", old)
	}
	pid, ok := c.pid("sleep")
	if !ok || pid == old || !runsWith(pid, sleep.args) {
		t.Errorf("pid = %d, %v; want a new process (not %d) running sleep 60", pid, ok, old)
	}
	if down := o.Started.Sub(o.Stopped); down < 300*time.Millisecond {
		t.Errorf("down for %v, want at least 300ms", down)
	}
	if o.Healthy.Before(o.Started) {
		t.Errorf("healthy at %v, before the start at %v", o.Healthy, o.Started)
	}

	if err := c.stop("sleep", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.restart(ctx, "sleep", 0, time.Second, func(int) bool { return true }); err == nil || !strings.Contains(err.Error(), "does not run") {
		t.Errorf("restart of a stopped daemon: error = %v, want it does not run", err)
	}
}

func TestRestartUnknownDaemon(t *testing.T) {
	if _, err := Restart(t.Context(), Options{Dir: t.TempDir()}, "sleep", 0, time.Second); err == nil || !strings.Contains(err.Error(), "no daemon") {
		t.Errorf("error = %v, want no daemon", err)
	}
}
