package localcluster

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	kubeproxyconfig "k8s.io/kube-proxy/config/v1alpha1"
	kubeletconfig "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

func TestPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, _, err := p.issue(certRequest{name: "server", cn: "kube-apiserver", server: true, hosts: []string{"127.0.0.1", "10.96.0.1", "kubernetes.default.svc"}})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.caCert)
	server := readCert(t, certFile)
	for _, name := range []string{"127.0.0.1", "10.96.0.1", "kubernetes.default.svc"} {
		if _, err := server.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	kc, err := p.kubeconfig("kubelet", "https://127.0.0.1:6443", "system:node:seek-node", "system:nodes")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	client := readCert(t, cfg.CertFile)
	if cfg.Host != "https://127.0.0.1:6443" || client.Subject.CommonName != "system:node:seek-node" || !slices.Equal(client.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("kubeconfig: host %s, client %s %v", cfg.Host, client.Subject.CommonName, client.Subject.Organization)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}

	// Loading again keeps the CA, the service-account key and issued certificates.
	saKey, _ := os.ReadFile(filepath.Join(dir, "sa.key"))
	again, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	saKeyAgain, _ := os.ReadFile(filepath.Join(dir, "sa.key"))
	if !again.caCert.Equal(p.caCert) || string(saKey) != string(saKeyAgain) {
		t.Error("a second load made a new CA or service-account key")
	}
	if certAgain, _, _ := again.issue(certRequest{name: "server", cn: "other"}); readCert(t, certAgain).Subject.CommonName != "kube-apiserver" {
		t.Error("an existing certificate was reissued")
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestComponentConfigs(t *testing.T) {
	var cni struct {
		Name    string
		Plugins []map[string]any
	}
	if err := json.Unmarshal([]byte(cniConfig("/state/cni-ipam")), &cni); err != nil {
		t.Fatalf("CNI config: %v", err)
	}
	if cni.Name != cniNetwork || len(cni.Plugins) != 2 || cni.Plugins[0]["bridge"] != bridge || cni.Plugins[0]["ipMasq"] != false {
		t.Errorf("CNI config = %+v", cni)
	}
	ipam, _ := cni.Plugins[0]["ipam"].(map[string]any)
	if ipam["dataDir"] != "/state/cni-ipam" {
		t.Errorf("host-local IPAM keeps its state in %v, want the cluster's directory", ipam["dataDir"])
	}

	// Each config is decoded strictly into its component's own type: a component skips a field it does
	// not know (the kubelet logs "strict decoding error" and goes on), so every field must be one of it.
	kubelet := kubeletconfig.KubeletConfiguration{}
	if err := yaml.UnmarshalStrict([]byte(kubeletConfig("/s/containerd.sock", "/s/ca.crt", "/s/pod-logs")), &kubelet); err != nil {
		t.Fatalf("kubelet config has a field the kubelet does not know: %v", err)
	}
	if !ptr.Equal(kubelet.FailCgroupV1, ptr.To(false)) || kubelet.CgroupDriver != "cgroupfs" || kubelet.ContainerRuntimeEndpoint != "unix:///s/containerd.sock" ||
		kubelet.PodLogsDir != "/s/pod-logs" || !ptr.Equal(kubelet.ImageGCHighThresholdPercent, ptr.To[int32](100)) {
		t.Errorf("kubelet config = %+v", kubelet)
	}

	proxy := kubeproxyconfig.KubeProxyConfiguration{}
	if err := yaml.UnmarshalStrict([]byte(kubeProxyConfig("/s/kube-proxy.kubeconfig")), &proxy); err != nil {
		t.Fatalf("kube-proxy config has a field kube-proxy does not know: %v", err)
	}
	if proxy.Mode != "iptables" || proxy.ClusterCIDR != PodCIDR || !ptr.Equal(proxy.Conntrack.MaxPerCore, ptr.To[int32](0)) {
		t.Errorf("kube-proxy config = %+v", proxy)
	}

	containerd := containerdConfig("/s/containerd", PauseImage)
	for _, want := range []string{`sandbox_image = "` + PauseImage + `"`, "restrict_oom_score_adj = true", `Root = "/s/containerd/runc"`, `conf_dir = "/s/containerd/cni"`} {
		if !strings.Contains(containerd, want) {
			t.Errorf("containerd config lacks %s", want)
		}
	}
}

func newTestCluster(t *testing.T) *Cluster {
	t.Helper()
	c := newCluster(Options{Dir: t.TempDir()})
	for _, d := range []string{"run", "logs"} {
		if err := os.MkdirAll(c.path(d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestDaemons(t *testing.T) {
	c := newTestCluster(t)
	d := daemon{name: "sleep", bin: "sleep", args: []string{"60"}}
	pid, err := c.launch(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.pid("sleep"); !ok || got != pid {
		t.Fatalf("pid = %d, %v after launch; want %d, true", got, ok, pid)
	}
	if err := c.stop("sleep", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Error("still alive after stop")
	}
	if _, err := os.Stat(c.pidFile("sleep")); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
	if err := c.stop("sleep", time.Second); err != nil {
		t.Errorf("stopping a stopped daemon: %v", err)
	}
	if data, _ := os.ReadFile(c.logFile("sleep")); !strings.Contains(string(data), "sleep 60") {
		t.Errorf("log does not record the command: %q", data)
	}

	// A pid file naming a live process of another program (the pid was reused) is stale.
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	if err := os.WriteFile(c.pidFile("etcd"), []byte(strconv.Itoa(other.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.pid("etcd"); ok {
		t.Error("a sleep process counts as etcd")
	}
}

func TestProcState(t *testing.T) {
	for stat, want := range map[string]byte{
		"42 (etcd) S 1 42 42 0 -1":   'S',
		"42 (kube-apiserver) R 1 42": 'R',
		"42 (etcd) Z 1 42 42 0 -1":   'Z',
		"42 (a (b) c) D 1":           'D',
		"42 (name with ) paren) X 1": 'X',
		"42 (etcd)":                  0,
		"":                           0,
		"garbage":                    0,
	} {
		if got := procState([]byte(stat)); got != want {
			t.Errorf("procState(%q) = %q, want %q", stat, got, want)
		}
	}
}

// TestZombieIsNotRunning: a daemon that exited and was not reaped (this sandbox's init does not reap)
// is a zombie, and a zombie is not running.
func TestZombieIsNotRunning(t *testing.T) {
	c := newTestCluster(t)
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Wait() })
	if err := waitFor(t.Context(), 10*time.Second, "a zombie", func() bool {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return procState(stat) == 'Z'
	}); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("alive(%d) = true for a zombie", pid)
	}
	if err := os.WriteFile(c.pidFile("true"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.pid("true"); ok {
		t.Error("a zombie counts as running")
	}
	if alive(os.Getpid()) != true {
		t.Error("this process is not alive")
	}
}

func TestDecide(t *testing.T) {
	const grace = 45 * time.Second
	for _, tc := range []struct {
		name string
		o    observation
		want action
	}{
		{"not running", observation{}, launch},
		{"not running, a stale health answer", observation{healthy: true}, launch},
		{"running and healthy", observation{running: true, healthy: true}, keep},
		{"healthy again after a while", observation{running: true, healthy: true, unhealthyFor: time.Minute}, keep},
		{"just seen unhealthy: starting or stopping", observation{running: true}, wait},
		{"unhealthy within the grace", observation{running: true, unhealthyFor: grace - time.Millisecond}, wait},
		{"unhealthy for the grace", observation{running: true, unhealthyFor: grace}, replace},
		{"unhealthy for longer", observation{running: true, unhealthyFor: 10 * time.Minute}, replace},
		{"healthy, other arguments", observation{running: true, healthy: true, outdated: true}, replace},
		{"unhealthy, other arguments", observation{running: true, outdated: true}, replace},
		{"not running, other arguments", observation{outdated: true}, launch},
	} {
		if got := decide(tc.o, grace); got != tc.want {
			t.Errorf("%s: decide(%+v) = %v, want %v", tc.name, tc.o, got, tc.want)
		}
	}
}

// TestEnsure runs ensure on real processes whose health the test decides.
func TestEnsure(t *testing.T) {
	ctx := t.Context()
	sleep := daemon{name: "sleep", bin: "sleep", args: []string{"60"}}
	healthyAlways := func(int) bool { return true }

	t.Run("starts a daemon that is not running, keeps a healthy one", func(t *testing.T) {
		c := newTestCluster(t)
		t.Cleanup(func() { _ = c.stop("sleep", time.Second) })
		if err := c.ensure(ctx, sleep, healthyAlways, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		pid, ok := c.pid("sleep")
		if !ok {
			t.Fatal("not running")
		}
		if err := c.ensure(ctx, sleep, healthyAlways, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if again, _ := c.pid("sleep"); again != pid {
			t.Errorf("a healthy daemon was replaced (pid %d, then %d)", pid, again)
		}
	})

	t.Run("waits for a terminating daemon to exit and starts it again", func(t *testing.T) {
		c := newTestCluster(t)
		c.grace = time.Minute
		t.Cleanup(func() { _ = c.stop("sh", time.Second) })
		// The old process shuts down for a second after SIGTERM, unhealthy meanwhile, as kube-apiserver does.
		sh := daemon{name: "sh", bin: "sh", args: []string{"-c", "trap 'sleep 1; exit 0' TERM; while :; do sleep 0.1; done"}}
		old, err := c.launch(sh)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // let the shell set its trap
		if err := syscall.Kill(old, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := c.ensure(ctx, sh, func(pid int) bool { return pid != old }, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		pid, ok := c.pid("sh")
		if !ok || pid == old {
			t.Fatalf("pid = %d, %v; want a new running process (old %d)", pid, ok, old)
		}
		if alive(old) {
			t.Error("the old process still runs")
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("took %v: waited for the grace instead of the exit", took)
		}
	})

	t.Run("replaces a daemon unhealthy past the grace", func(t *testing.T) {
		c := newTestCluster(t)
		c.grace = time.Second
		t.Cleanup(func() { _ = c.stop("sleep", time.Second) })
		old, err := c.launch(sleep)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ensure(ctx, sleep, func(pid int) bool { return pid != old }, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if pid, ok := c.pid("sleep"); !ok || pid == old {
			t.Errorf("pid = %d, %v; want a new running process (old %d)", pid, ok, old)
		}
		if alive(old) {
			t.Error("the hung process was not stopped")
		}
	})

	t.Run("restarts a healthy daemon running with other arguments", func(t *testing.T) {
		c := newTestCluster(t)
		t.Cleanup(func() { _ = c.stop("sleep", time.Second) })
		old, err := c.launch(sleep)
		if err != nil {
			t.Fatal(err)
		}
		changed := daemon{name: "sleep", bin: "sleep", args: []string{"61"}}
		if err := c.ensure(ctx, changed, healthyAlways, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		pid, ok := c.pid("sleep")
		if !ok || pid == old || !runsWith(pid, changed.args) {
			t.Errorf("pid = %d, %v; want a new process running with %v (old %d)", pid, ok, changed.args, old)
		}
		if alive(old) {
			t.Error("the outdated process was not stopped")
		}
	})

	t.Run("starts a daemon whose pid file names a zombie", func(t *testing.T) {
		c := newTestCluster(t)
		t.Cleanup(func() { _ = c.stop("sleep", time.Second) })
		zombie := exec.Command("sleep", "0")
		if err := zombie.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = zombie.Wait() })
		if err := waitFor(ctx, 10*time.Second, "a zombie", func() bool { return !alive(zombie.Process.Pid) }); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.pidFile("sleep"), []byte(strconv.Itoa(zombie.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.ensure(ctx, sleep, healthyAlways, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if pid, ok := c.pid("sleep"); !ok || pid == zombie.Process.Pid {
			t.Errorf("pid = %d, %v; want a new running process", pid, ok)
		}
	})

	t.Run("a daemon that exits at start fails with its log", func(t *testing.T) {
		c := newTestCluster(t)
		err := c.ensure(ctx, daemon{name: "sh", bin: "sh", args: []string{"-c", "echo cannot bind; exit 1"}}, func(int) bool { return false }, 10*time.Second)
		if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "cannot bind") {
			t.Errorf("err = %v, want one saying it exited, with its log", err)
		}
	})
}

func TestReadInfo(t *testing.T) {
	dir := t.TempDir()
	want := Info{Kubeconfig: "/k", APIURL: "http://127.0.0.1:8080", Tenant: "demo", APIKey: "seek_x", NodeIP: "192.0.2.2",
		SystemNamespace: SystemNamespace, ImageRegistry: ImageRegistry, ImageTag: "dev-abc"}
	data, _ := json.Marshal(want)
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadInfo(dir)
	if err != nil || *got != want {
		t.Fatalf("ReadInfo = %+v, %v; want %+v", got, err, want)
	}
	if _, err := ReadInfo(t.TempDir()); !os.IsNotExist(err) {
		t.Errorf("ReadInfo of an empty directory: %v, want not-exist", err)
	}
}

func TestParseSave(t *testing.T) {
	out := []byte(`# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-SERVICES - [0:0]
:CNI-SEEK-LOCAL-MASQ - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -s 10.89.0.0/16 -j CNI-SEEK-LOCAL-MASQ
-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE
-A CNI-SEEK-LOCAL-MASQ -d 10.89.0.0/16 -j RETURN
-A KUBE-SERVICES -j KUBE-NODEPORTS
COMMIT
*filter
:INPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
COMMIT
`)
	got := parseSave("iptables", out)
	wantChains := []string{"iptables nat KUBE-SERVICES", "iptables nat CNI-SEEK-LOCAL-MASQ", "iptables filter KUBE-FIREWALL"}
	if !slices.Equal(got.chains, wantChains) {
		t.Errorf("chains = %q, want %q", got.chains, wantChains)
	}
	wantJumps := []jump{
		{table: "nat", target: "KUBE-SERVICES", line: `-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`},
		{table: "nat", target: "CNI-SEEK-LOCAL-MASQ", line: "-A POSTROUTING -s 10.89.0.0/16 -j CNI-SEEK-LOCAL-MASQ"},
		{table: "filter", target: "KUBE-FIREWALL", line: "-A INPUT -j KUBE-FIREWALL"},
	}
	if !slices.Equal(got.jumps, wantJumps) {
		t.Errorf("jumps = %+v, want %+v", got.jumps, wantJumps)
	}
}

func TestUpForRunNeedsTheBinaries(t *testing.T) {
	_, _, err := UpForRun(t.Context(), Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "KUBEBUILDER_ASSETS") || !strings.Contains(err.Error(), "HELM") {
		t.Fatalf("UpForRun without binaries: %v, want an error naming KUBEBUILDER_ASSETS and HELM", err)
	}
}

// TestWriteConfigsKeepsUnchangedFiles: kube-proxy exits on any write to its configuration file, so up
// must not rewrite one whose content is the same.
func TestWriteConfigsKeepsUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	same, changed := filepath.Join(dir, "same.yaml"), filepath.Join(dir, "changed.yaml")
	if err := writeConfigs(map[string]string{same: "a: 1\n", changed: "b: 1\n"}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, p := range []string{same, changed} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeConfigs(map[string]string{same: "a: 1\n", changed: "b: 2\n"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(same); !st.ModTime().Equal(old) {
		t.Errorf("an unchanged file was written (modified %v)", st.ModTime())
	}
	if data, _ := os.ReadFile(changed); string(data) != "b: 2\n" {
		t.Errorf("changed file = %q", data)
	}
}

// A daemon outlives the command that started it, so it must not keep that command's inherited files
// open: a lock file held by `flock LOCK make run` would stay locked as long as the cluster runs.
func TestLaunchDoesNotLeakInheritedFiles(t *testing.T) {
	lock, err := os.Create(filepath.Join(t.TempDir(), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	// Make it look inherited: Go opened it close-on-exec, a parent's descriptor is not.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, lock.Fd(), syscall.F_SETFD, 0); errno != 0 {
		t.Fatal(errno)
	}
	inheritedFDs = sync.Once{}
	c := newTestCluster(t)
	t.Cleanup(func() { _ = c.stop("sleep", time.Second) })
	pid, err := c.launch(daemon{name: "sleep", bin: "sleep", args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); target == lock.Name() {
			t.Errorf("the daemon holds the caller's file %s as fd %s", target, e.Name())
		}
	}
}
