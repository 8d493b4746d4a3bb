// Package controlplane runs a real, local Kubernetes control plane for tests, benchmarks and local
// development: etcd and kube-apiserver through controller-runtime's envtest, plus kube-controller-manager
// with the Job and garbage-collector controllers, so Jobs really create Pods and deletes really cascade.
// The binaries come from KUBEBUILDER_ASSETS, which hack/k8s-binaries.sh builds from the Go module proxy.
package controlplane

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DefaultControllers are the kube-controller-manager controllers the Seek controllers depend on; the
// resource quota controller keeps the tenants' quotas on SeekJobs (internal/tenants) counted.
var DefaultControllers = []string{"job", "garbagecollector", "ttl-after-finished", "resourcequota"}

// Options configure a control plane.
type Options struct {
	// CRDDirectory holds the CRDs to install; defaults to <repo>/config/crd/bases.
	CRDDirectory string
	// PolicyDirectory holds the ValidatingAdmissionPolicies to install; defaults to <repo>/config/policy.
	PolicyDirectory string
	// Controllers are the kube-controller-manager controllers to run; none starts no controller manager.
	Controllers []string
	// Log receives the controller manager's output; discarded when nil.
	Log io.Writer
}

// ControlPlane is a running etcd + kube-apiserver (+ kube-controller-manager).
type ControlPlane struct {
	Env *envtest.Environment
	// Config is an admin (system:masters) client config.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file.
	Kubeconfig string

	dir string
	kcm *exec.Cmd
}

// ErrNoAssets explains how to get the binaries when KUBEBUILDER_ASSETS is missing.
var ErrNoAssets = errors.New("KUBEBUILDER_ASSETS is not set: run `make test` (it builds etcd and kube-apiserver once, " +
	"from the Go module proxy), or `export KUBEBUILDER_ASSETS=$(hack/k8s-binaries.sh)`")

// RepoRoot finds the repository root (the directory holding go.mod) from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Start starts the control plane and installs the CRDs.
func Start(opts Options) (*ControlPlane, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return nil, ErrNoAssets
	}
	if opts.CRDDirectory == "" || opts.PolicyDirectory == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		if opts.CRDDirectory == "" {
			opts.CRDDirectory = filepath.Join(root, "config", "crd", "bases")
		}
		if opts.PolicyDirectory == "" {
			opts.PolicyDirectory = filepath.Join(root, "config", "policy")
		}
	}
	dir, err := os.MkdirTemp("", "seek-controlplane-")
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{opts.CRDDirectory},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start etcd and kube-apiserver from %s: %w", assets, err)
	}
	cp := &ControlPlane{Env: env, Config: cfg, dir: dir}
	if cp.Kubeconfig, err = cp.writeKubeconfig("admin", []string{"system:masters"}); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	if err := installPolicies(cfg, opts.PolicyDirectory); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	if len(opts.Controllers) > 0 {
		if err := cp.startControllerManager(assets, opts.Controllers, opts.Log); err != nil {
			_ = cp.Stop()
			return nil, err
		}
	}
	return cp, nil
}

// UserConfig returns a client config for a user authenticated by a client certificate, with only the
// permissions RBAC grants that name and groups (and subject to API Priority and Fairness, unlike the
// system:masters admin).
func (cp *ControlPlane) UserConfig(name string, groups ...string) (*rest.Config, error) {
	user, err := cp.Env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("add user %s: %w", name, err)
	}
	return user.Config(), nil
}

// ServiceAccountConfig returns a client config that authenticates as the ServiceAccount namespace/name
// would in a cluster (its user name and groups), so RBAC bindings to the ServiceAccount apply.
func (cp *ControlPlane) ServiceAccountConfig(namespace, name string) (*rest.Config, error) {
	return cp.UserConfig("system:serviceaccount:"+namespace+":"+name,
		"system:serviceaccounts", "system:serviceaccounts:"+namespace, "system:authenticated")
}

// writeKubeconfig creates a user with a client certificate and writes its kubeconfig file.
func (cp *ControlPlane) writeKubeconfig(name string, groups []string) (string, error) {
	user, err := cp.Env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("add user %s: %w", name, err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("kubeconfig of %s: %w", name, err)
	}
	path := filepath.Join(cp.dir, name+".kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

func (cp *ControlPlane) startControllerManager(assets string, controllers []string, log io.Writer) error {
	kubeconfig, err := cp.writeKubeconfig("kube-controller-manager", []string{"system:masters"})
	if err != nil {
		return err
	}
	if log == nil {
		log = io.Discard
	}
	cmd := exec.Command(filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-job-syncs=20",
		"--concurrent-gc-syncs=20",
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
		"-v=1",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kube-controller-manager (build it with hack/k8s-binaries.sh): %w", err)
	}
	cp.kcm = cmd
	return nil
}

// Stop stops every process and removes the temporary files.
func (cp *ControlPlane) Stop() error {
	var errs []error
	if cp.kcm != nil && cp.kcm.Process != nil {
		_ = cp.kcm.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cp.kcm.Wait() }()
		select {
		case <-done: //nolint:errcheck // stopped on purpose: its exit status says nothing
		case <-time.After(10 * time.Second):
			_ = cp.kcm.Process.Kill()
			<-done //nolint:errcheck // killed on purpose
		}
	}
	if err := cp.Env.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stop envtest: %w", err))
	}
	errs = append(errs, os.RemoveAll(cp.dir))
	return errors.Join(errs...)
}
