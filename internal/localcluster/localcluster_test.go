package localcluster

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
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

	kubelet := map[string]any{}
	if err := yaml.Unmarshal([]byte(kubeletConfig("/s/containerd.sock", "/s/ca.crt", "/s/pod-logs")), &kubelet); err != nil {
		t.Fatalf("kubelet config: %v", err)
	}
	for key, want := range map[string]any{"failCgroupV1": false, "cgroupDriver": "cgroupfs", "containerRuntimeEndpoint": "unix:///s/containerd.sock",
		"podLogsDirectory": "/s/pod-logs", "imageGCHighThresholdPercent": float64(100)} {
		if kubelet[key] != want {
			t.Errorf("kubelet %s = %v, want %v", key, kubelet[key], want)
		}
	}

	proxy := map[string]any{}
	if err := yaml.Unmarshal([]byte(kubeProxyConfig("/s/kube-proxy.kubeconfig")), &proxy); err != nil {
		t.Fatalf("kube-proxy config: %v", err)
	}
	conntrack, _ := proxy["conntrack"].(map[string]any)
	if proxy["mode"] != "iptables" || proxy["clusterCIDR"] != PodCIDR || conntrack["maxPerCore"] != float64(0) {
		t.Errorf("kube-proxy config = %v", proxy)
	}

	containerd := containerdConfig("/s/containerd", PauseImage)
	for _, want := range []string{`sandbox_image = "` + PauseImage + `"`, "restrict_oom_score_adj = true", `Root = "/s/containerd/runc"`, `conf_dir = "/s/containerd/cni"`} {
		if !strings.Contains(containerd, want) {
			t.Errorf("containerd config lacks %s", want)
		}
	}
}

func TestDaemons(t *testing.T) {
	c := newCluster(Options{Dir: t.TempDir()})
	for _, d := range []string{"run", "logs"} {
		if err := os.MkdirAll(c.path(d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	d := daemon{name: "sleeper", bin: "sleep", args: []string{"60"}}
	if err := c.start(d); err != nil {
		t.Fatal(err)
	}
	pid, ok := c.pid("sleeper")
	if !ok {
		t.Fatal("not running after start")
	}
	if err := c.start(d); err != nil {
		t.Fatal(err)
	}
	if again, _ := c.pid("sleeper"); again != pid {
		t.Errorf("a second start started another process (%d, then %d)", pid, again)
	}
	if err := c.stop("sleeper", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Error("still alive after stop")
	}
	if _, err := os.Stat(c.pidFile("sleeper")); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
	if err := c.stop("sleeper", time.Second); err != nil {
		t.Errorf("stopping a stopped daemon: %v", err)
	}
	if data, _ := os.ReadFile(c.logFile("sleeper")); !strings.Contains(string(data), "sleep 60") {
		t.Errorf("log does not record the command: %q", data)
	}
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
