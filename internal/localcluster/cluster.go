// Package localcluster runs a persistent single-node Kubernetes cluster on this machine from upstream
// components, and installs Seek into it with its Helm chart: etcd, kube-apiserver (with its own CA,
// certificates and service-account key), kube-controller-manager, kube-scheduler, a kubelet, and
// kube-proxy (all built by hack/k8s-binaries.sh), and containerd, runc and the CNI plugins (Debian
// packages). Seek's images are built with internal/images and imported, so no registry is involved.
// The REST API is a NodePort Service on localhost:8080.
//
// Up, Down and Status are idempotent. The cluster's daemons outlive the command that starts them;
// everything lives under one directory, and Down removes it and every change made to the host
// (mounts, the pod bridge, cgroups, iptables chains, kernel settings). Needs root and cgroups.
package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Options configure the cluster.
type Options struct {
	// Dir holds the cluster's state, logs and certificates; empty means DefaultDir().
	Dir string
	// Assets is the directory of the Kubernetes binaries (hack/k8s-binaries.sh prints it).
	Assets string
	// Helm is the helm binary (hack/helm.sh prints it).
	Helm string
	// ModuleDir is the root of this repository: the chart and the images' sources.
	ModuleDir string
	// ImageCache is where built images are cached; empty means <user cache>/seek-operator/images.
	ImageCache string
	// CACertFile is the PEM bundle of trusted CAs put into the images (for HTTPS webhooks); empty
	// means images.SystemCACertFile().
	CACertFile string
	// Tenant is the namespace of the demo tenant whose API key Up prints; empty means "demo".
	Tenant string
	// Out receives progress; nil discards it.
	Out io.Writer
}

// Info describes a running cluster.
type Info struct {
	// Kubeconfig is the admin (system:masters) kubeconfig.
	Kubeconfig string `json:"kubeconfig"`
	// Kubectl is the kubectl binary, if built.
	Kubectl string `json:"kubectl,omitempty"`
	// APIURL is the REST API's base URL on this machine.
	APIURL string `json:"apiURL"`
	// Tenant and APIKey are the demo tenant and its API key.
	Tenant string `json:"tenant"`
	APIKey string `json:"apiKey"`
	// NodeIP is the node's address; webhook receivers on this machine listen on it (callbacks to
	// it are allowed, on any port).
	NodeIP string `json:"nodeIP"`
	// SystemNamespace is where Seek runs.
	SystemNamespace string `json:"systemNamespace"`
	// CredentialsNamespace holds the API key and webhook signing Secrets.
	CredentialsNamespace string `json:"credentialsNamespace,omitempty"`
	// ImageRegistry and ImageTag name Seek's images in the node: <registry>/<component>:<tag>.
	ImageRegistry string `json:"imageRegistry"`
	ImageTag      string `json:"imageTag"`
}

const (
	// SystemNamespace is the Helm release's namespace.
	SystemNamespace = "seek-system"
	releaseName     = "seek"
	// LeaderLease is the manager's leader election Lease in SystemNamespace (the default of its
	// --leader-election-id).
	LeaderLease = "seek-operator.seek-api.com"
	// APIPort is the REST API's port on localhost (a NodePort).
	APIPort = 8080
	// ImageRegistry is the registry part of Seek's imported images.
	ImageRegistry = "seek.local/seek-operator"
	// PauseImage is the pod sandbox image, imported with Seek's.
	PauseImage = "seek.local/pause:3.10"
)

// DefaultDir is where the cluster lives unless told otherwise.
func DefaultDir() string {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "seek-operator", "cluster")
}

// Cluster is the local cluster in one directory.
type Cluster struct {
	o   Options
	dir string
	out io.Writer
	// grace is how long a running daemon may stay unhealthy before up replaces it.
	grace time.Duration
	// launched is when this Cluster started each daemon it started.
	launched map[string]time.Time
}

func newCluster(o Options) *Cluster {
	if o.Dir == "" {
		o.Dir = DefaultDir()
	}
	if o.Tenant == "" {
		o.Tenant = "demo"
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	return &Cluster{o: o, dir: o.Dir, out: out, grace: unhealthyGrace, launched: map[string]time.Time{}}
}

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.out, "seek-local: "+format+"\n", args...)
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}
func (c *Cluster) infoFile() string { return c.path("cluster.json") }

// daemons are the cluster's processes in start order; Down stops them in reverse.
var daemons = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet", "kube-proxy"}

// Preflight says why this machine cannot run the cluster, or nil. Missing Debian packages are not a
// reason: Up installs them.
func Preflight() error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "not root (the kubelet and containerd need root)")
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		problems = append(problems, "no /sys/fs/cgroup")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		problems = append(problems, "no ip command (iproute2)")
	}
	if err := checkPackages(); err != nil {
		if _, aptErr := exec.LookPath("apt-get"); aptErr != nil {
			problems = append(problems, err.Error()+", and no apt-get to install them")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("this machine cannot run a Kubernetes node: %s", strings.Join(problems, "; "))
	}
	return nil
}

// packages are the Debian packages the node needs, with a file each provides.
var packages = map[string]string{
	"containerd":                  "/usr/bin/containerd",
	"runc":                        "/usr/sbin/runc",
	"containernetworking-plugins": "/usr/lib/cni/bridge",
	"iptables":                    "/usr/sbin/iptables",
	"conntrack":                   "/usr/sbin/conntrack",
}

func missingPackages() []string {
	var missing []string
	for pkg, file := range packages {
		if _, err := os.Stat(file); err != nil {
			missing = append(missing, pkg)
		}
	}
	return missing
}

func checkPackages() error {
	if m := missingPackages(); len(m) > 0 {
		return fmt.Errorf("missing Debian packages %s", strings.Join(m, " "))
	}
	return nil
}

// ensurePackages installs the missing Debian packages with apt-get.
func (c *Cluster) ensurePackages(ctx context.Context) error {
	missing := missingPackages()
	if len(missing) == 0 {
		return nil
	}
	c.logf("Installing Debian packages %s", strings.Join(missing, " "))
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return checkPackages()
}

// ReadInfo returns the Info of the cluster in dir (empty: DefaultDir) that Up last wrote.
func ReadInfo(dir string) (*Info, error) {
	c := newCluster(Options{Dir: dir})
	data, err := os.ReadFile(c.infoFile())
	if err != nil {
		return nil, err
	}
	info := &Info{}
	return info, json.Unmarshal(data, info)
}

// nodeIP is the first non-loopback IPv4 address outside the pod range: the kubelet refuses loopback,
// and pods reach the host on it.
func nodeIP() (string, error) {
	_, pods, _ := net.ParseCIDR(PodCIDR)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !pods.Contains(ipn.IP) {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("no non-loopback IPv4 address for the node")
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not after %v", what, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
