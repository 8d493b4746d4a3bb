// Package localnode runs a real Kubernetes node on this machine next to a local control plane:
// containerd (with runc and the bridge CNI plugin, from Debian packages), kube-scheduler and a kubelet
// (built from the Go module proxy by hack/k8s-binaries.sh). Worker images are imported as tarballs, so
// no registry is involved. It needs root and cgroups; Stop undoes every host side effect it made.
//
// Facts behind the configuration (measured on Debian 12, cgroup v1, no systemd): runc needs
// containerd's restrict_oom_score_adj (no negative oom_score_adj in the sandbox); kubelet 1.37 refuses
// cgroup v1 unless failCgroupV1 is false; the node's not-ready taint is removed by
// kube-controller-manager's nodelifecycle controller; imported images must be kept from image GC.
package localnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/seek-api/seek-operator/internal/controlplane"
)

// Controllers are the kube-controller-manager controllers a control plane with a node needs: the
// Seek defaults plus nodelifecycle, which lifts the node's not-ready taint.
var Controllers = append(append([]string(nil), controlplane.DefaultControllers...), "nodelifecycle")

const (
	// NodeName is the name the kubelet registers.
	NodeName = "seek-node"
	bridge   = "seek0"
	// PodCIDR is the range pods get addresses from.
	PodCIDR = "10.89.0.0/16"
	// PauseImage is the sandbox image containerd is told to use; import it with the others.
	PauseImage = "seek.local/pause:3.10"
)

// Node is a running containerd, kube-scheduler and kubelet.
type Node struct {
	dir      string
	cp       *controlplane.ControlPlane
	procs    []*exec.Cmd // in start order
	socket   string
	kubeRoot string
}

// Preflight says why this machine cannot run a node, or nil.
func Preflight() error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not root (the kubelet and containerd need root)")
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		problems = append(problems, "no /sys/fs/cgroup")
	}
	for _, bin := range []string{"containerd", "runc", "ctr", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			problems = append(problems, bin+" not found (apt-get install containerd runc containernetworking-plugins iptables conntrack)")
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		problems = append(problems, "no CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("this machine cannot run a Kubernetes node: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Start starts a node for cp (which must run Controllers) and imports the image tarballs. assets holds
// kube-scheduler and kubelet; dir is scratch space, removed by Stop.
func Start(ctx context.Context, cp *controlplane.ControlPlane, assets, dir string, images []string) (*Node, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	n := &Node{dir: dir, cp: cp, socket: filepath.Join(dir, "containerd", "containerd.sock"), kubeRoot: filepath.Join(dir, "kubelet")}
	if err := n.start(ctx, assets, images); err != nil {
		return nil, errors.Join(err, n.Stop())
	}
	return n, nil
}

func (n *Node) start(ctx context.Context, assets string, images []string) error {
	for _, d := range []string{"containerd/cni", "kubelet/root", "logs"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return err
		}
	}
	schedKC, err := n.kubeconfig("system:kube-scheduler") // bound by the bootstrap RBAC roles
	if err != nil {
		return err
	}
	if err := n.run("kube-scheduler", filepath.Join(assets, "kube-scheduler"), "--kubeconfig="+schedKC, "--leader-elect=false", "--secure-port=0"); err != nil {
		return err
	}
	croot := filepath.Join(n.dir, "containerd")
	if err := os.WriteFile(filepath.Join(croot, "config.toml"), []byte(containerdConfig(croot)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(croot, "cni", "10-seek.conflist"), []byte(cniConfig), 0o644); err != nil {
		return err
	}
	if err := n.run("containerd", "containerd", "--config", filepath.Join(croot, "config.toml")); err != nil {
		return err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { _, err := os.Stat(n.socket); return err == nil }); err != nil {
		return fmt.Errorf("containerd did not come up (see %s): %w", filepath.Join(n.dir, "logs", "containerd.log"), err)
	}
	for _, tar := range images {
		out, err := exec.CommandContext(ctx, "ctr", "--address", n.socket, "-n", "k8s.io", "images", "import", tar).CombinedOutput()
		if err != nil {
			return fmt.Errorf("import %s: %w: %s", tar, err, out)
		}
	}
	ip, err := nodeIP()
	if err != nil {
		return err
	}
	// The kubelet acts as a node (system:nodes); the Node authorizer is not on in envtest, so it is
	// also in system:masters.
	kubeletKC, err := n.kubeconfig("system:node:"+NodeName, "system:nodes", "system:masters")
	if err != nil {
		return err
	}
	cfg := filepath.Join(n.kubeRoot, "config.yaml")
	if err := os.WriteFile(cfg, []byte(kubeletConfig(n.socket)), 0o644); err != nil {
		return err
	}
	if err := n.run("kubelet", filepath.Join(assets, "kubelet"), "--config="+cfg, "--kubeconfig="+kubeletKC,
		"--root-dir="+filepath.Join(n.kubeRoot, "root"), "--node-ip="+ip, "--hostname-override="+NodeName, "-v=1"); err != nil {
		return err
	}
	return n.waitReady(ctx)
}

// waitReady waits until the node is Ready and untainted, so pods schedule onto it.
func (n *Node) waitReady(ctx context.Context) error {
	c, err := client.New(n.cp.Config, client.Options{})
	if err != nil {
		return err
	}
	return waitFor(ctx, 2*time.Minute, func() bool {
		node := &corev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: NodeName}, node); err != nil {
			return false
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return len(node.Spec.Taints) == 0
			}
		}
		return false
	})
}

// Stop deletes the pods (so the kubelet tears their sandboxes and networks down), stops the processes
// and removes what they left on the host: mounts, the bridge, cgroups and their state (the logs stay).
func (n *Node) Stop() error {
	var errs []error
	if c, err := client.New(n.cp.Config, client.Options{}); err == nil && len(n.procs) == 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods); err == nil {
			for i := range pods.Items {
				_ = c.Delete(ctx, &pods.Items[i], client.GracePeriodSeconds(0))
			}
		}
		_ = waitFor(ctx, time.Minute, func() bool {
			out, _ := exec.Command("ctr", "--address", n.socket, "-n", "k8s.io", "containers", "ls", "-q").Output()
			return strings.TrimSpace(string(out)) == ""
		})
		cancel()
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		errs = append(errs, stop(n.procs[i]))
	}
	// Leftovers: mounts under the scratch directory, the CNI bridge, the pods' cgroups.
	if data, err := os.ReadFile("/proc/self/mounts"); err == nil {
		lines := strings.Split(string(data), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if f := strings.Fields(lines[i]); len(f) > 1 && strings.HasPrefix(f[1], n.dir) {
				_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
			}
		}
	}
	if _, err := net.InterfaceByName(bridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", bridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w: %s", bridge, err, out))
		}
	}
	removeCgroups()
	// The logs stay (they are small and explain failures); containerd's and the kubelet's state goes.
	for _, d := range []string{"containerd", "kubelet"} {
		errs = append(errs, os.RemoveAll(filepath.Join(n.dir, d)))
	}
	return errors.Join(errs...)
}

// run starts a process whose output goes to logs/<name>.log; it dies with this process.
func (n *Node) run(name, bin string, args ...string) error {
	f, err := os.Create(filepath.Join(n.dir, "logs", name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	n.procs = append(n.procs, cmd)
	return nil
}

func (n *Node) kubeconfig(user string, groups ...string) (string, error) {
	u, err := n.cp.Env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", user, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(n.dir, strings.ReplaceAll(user, ":", "-")+".kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

// Logs is where the node's processes write.
func (n *Node) Logs() string { return filepath.Join(n.dir, "logs") }

func stop(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

// nodeIP is the first non-loopback IPv4 address: the kubelet refuses loopback.
func nodeIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !strings.HasPrefix(ipn.IP.String(), "10.89.") {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("no non-loopback IPv4 address for the node")
}

// removeCgroups removes the kubelet's pod cgroups (/kubepods) from every cgroup v1 hierarchy.
func removeCgroups() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

func containerdConfig(root string) string {
	return fmt.Sprintf(`version = 2
root = "%[1]s/root"
state = "%[1]s/state"
[grpc]
  address = "%[1]s/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[2]q
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[1]s/cni"
`, root, PauseImage)
}

var cniConfig = fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "seek", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}
]}
`, bridge, PodCIDR)

func kubeletConfig(socket string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
containerRuntimeEndpoint: unix://%s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
readOnlyPort: 0
evictionHard: {}
enforceNodeAllocatable: []
`, socket)
}
