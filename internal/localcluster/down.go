package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Down stops the cluster and removes it: its directory and every change it made to the host.
// Built binaries and images stay cached. A cluster that is not there is not an error.
func Down(ctx context.Context, o Options) error {
	c := newCluster(o)
	if _, err := os.Stat(c.dir); errors.Is(err, os.ErrNotExist) {
		c.logf("No cluster in %s", c.dir)
		return nil
	}
	var errs []error
	// Nothing may recreate or reschedule pods while they go.
	for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
		errs = append(errs, c.stop(name, 10*time.Second))
	}
	c.deletePods(ctx)
	for _, name := range []string{"kube-proxy", "kubelet"} {
		errs = append(errs, c.stop(name, 15*time.Second))
	}
	c.killShims()
	for _, name := range []string{"containerd", "kube-apiserver", "etcd"} {
		errs = append(errs, c.stop(name, 15*time.Second))
	}
	errs = append(errs, c.restoreHost())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w (the cluster's directory %s is kept; run down again)", err, c.dir)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	c.logf("Removed the cluster in %s and its changes to the host", c.dir)
	return nil
}

// deletePods deletes every pod and waits until containerd runs no task, so the kubelet
// tears the pods' sandboxes, networks and mounts down the normal way.
func (c *Cluster) deletePods(ctx context.Context) {
	if _, ok := c.pid("kubelet"); !ok {
		return
	}
	admin := c.path("pki", "admin.kubeconfig")
	k8s, err := newClient(admin)
	if err != nil || !apiReady(ctx, admin) {
		return
	}
	c.logf("Deleting pods")
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods); err != nil {
		return
	}
	for i := range pods.Items {
		_ = k8s.Delete(ctx, &pods.Items[i], client.GracePeriodSeconds(0))
	}
	socket := c.path("containerd", "containerd.sock")
	// No task left means every sandbox was stopped, and its network torn down, by the kubelet.
	// A busy node takes a while (measured: 200 pods, ~2 min on 2 cores); what is left after is killed.
	_ = waitFor(ctx, 5*time.Minute, "pods deleted", func() bool {
		out, err := exec.Command("ctr", "--address", socket, "-n", "k8s.io", "tasks", "ls", "-q").Output()
		return err == nil && strings.TrimSpace(string(out)) == ""
	})
}

// killShims kills containerd shims left behind (they run in their own session, started for this
// cluster's containerd socket).
func (c *Cluster) killShims() {
	socket := c.path("containerd", "containerd.sock")
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(data), "containerd-shim") || !strings.Contains(string(data), socket) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
