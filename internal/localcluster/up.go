package localcluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seek-api/seek-operator/internal/credentials"
)

// Up brings the cluster up, or the parts of it that are down, installs or upgrades Seek with the
// Helm chart and the images built from ModuleDir, and returns how to reach it.
func Up(ctx context.Context, o Options) (*Info, error) {
	c := newCluster(o)
	if err := Preflight(); err != nil {
		return nil, err
	}
	if err := c.ensurePackages(ctx); err != nil {
		return nil, err
	}
	for _, d := range []string{"run", "logs", "containerd/cni", "kubelet", "kube-proxy", "etcd"} {
		if err := os.MkdirAll(c.path(d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := c.recordHost(); err != nil {
		return nil, fmt.Errorf("record the host's state: %w", err)
	}
	ip, err := nodeIP()
	if err != nil {
		return nil, err
	}
	p, err := loadOrCreatePKI(c.path("pki"))
	if err != nil {
		return nil, err
	}
	admin, err := c.startControlPlane(ctx, p, ip)
	if err != nil {
		return nil, err
	}
	k8s, err := newClient(admin)
	if err != nil {
		return nil, err
	}
	tag, err := c.startNode(ctx, p, k8s, ip)
	if err != nil {
		return nil, err
	}
	admission, err := c.admissionCertificate(ctx, k8s, p)
	if err != nil {
		return nil, fmt.Errorf("the admission webhook's certificate: %w", err)
	}
	if err := c.install(ctx, admin, ip, tag, admission...); err != nil {
		return nil, err
	}
	if !managerLeads(ctx, k8s) {
		// Helm waited for the manager to be Ready, not for it to lead. A leader that was not stopped
		// (the machine went down with the cluster up, and the install then replaced its pod) leaves the
		// Lease to expire first: up to the lease duration, 90 s, in which no job moves.
		c.logf("Waiting for the manager to take the leader Lease (one that was not released expires within 90s)")
		if err := waitFor(ctx, 3*time.Minute, "the manager leading", func() bool { return managerLeads(ctx, k8s) }); err != nil {
			return nil, err
		}
	}
	info := &Info{Kubeconfig: admin, APIURL: fmt.Sprintf("http://127.0.0.1:%d", APIPort), Tenant: c.o.Tenant, NodeIP: ip,
		SystemNamespace: SystemNamespace, CredentialsNamespace: credentials.DefaultNamespace, ImageRegistry: ImageRegistry, ImageTag: tag}
	if kubectl := filepath.Join(c.o.Assets, "kubectl"); fileExists(kubectl) {
		info.Kubectl = kubectl
	}
	if info.APIKey, err = c.demoTenant(ctx, k8s); err != nil {
		return nil, err
	}
	if err := WaitForKey(ctx, info.APIURL, info.APIKey); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return nil, err
	}
	return info, os.WriteFile(c.infoFile(), data, 0o600)
}

// UpForRun brings the cluster up for one test or benchmark run: one already there is upgraded and
// kept; one brought up here is removed by the returned teardown.
func UpForRun(ctx context.Context, o Options) (info *Info, teardown func() error, err error) {
	if o.Assets == "" || o.Helm == "" {
		return nil, nil, errors.New("the Kubernetes binaries (KUBEBUILDER_ASSETS, with kube-scheduler, kubelet and kube-proxy) and helm (HELM) are needed; make sets them")
	}
	_, statErr := os.Stat(cmp.Or(o.Dir, DefaultDir()))
	if info, err = Up(ctx, o); err != nil {
		return nil, nil, err
	}
	teardown = func() error { return nil }
	if statErr != nil {
		teardown = func() error {
			newCluster(o).keepLogs()
			return Down(ctx, o)
		}
	}
	return info, teardown, nil
}

// keepLogs copies the components' logs and the pods' (which go with the pods) out of the cluster's
// directory before Down removes it, so that a failed run on a cluster brought up for it can be read.
func (c *Cluster) keepLogs() {
	dir, err := os.MkdirTemp("", "seek-cluster-logs-")
	if err != nil {
		c.logf("Could not keep the cluster's logs: %v", err)
		return
	}
	for _, sub := range [][]string{{"logs"}, {"kubelet", "pod-logs"}} {
		if err := os.CopyFS(filepath.Join(dir, sub[len(sub)-1]), os.DirFS(c.path(sub...))); err != nil {
			c.logf("Could not keep all of %s: %v", c.path(sub...), err)
		}
	}
	c.logf("Kept the cluster's logs in %s", dir)
}

// startControlPlane starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler and
// returns the admin kubeconfig.
func (c *Cluster) startControlPlane(ctx context.Context, p *pki, ip string) (string, error) {
	local := fmt.Sprintf("https://127.0.0.1:%d", APIServerPort)
	serverCert, serverKey, err := p.issue(certRequest{name: "kube-apiserver", cn: "kube-apiserver", server: true, hosts: []string{
		"127.0.0.1", "localhost", ip, apiServiceIP, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}})
	if err != nil {
		return "", err
	}
	kubeletClientCert, kubeletClientKey, err := p.issue(certRequest{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}})
	if err != nil {
		return "", err
	}
	admin, err := p.kubeconfig("admin", local, "seek-local-admin", "system:masters")
	if err != nil {
		return "", err
	}
	kcm, err := p.kubeconfig("kube-controller-manager", local, "system:kube-controller-manager")
	if err != nil {
		return "", err
	}
	sched, err := p.kubeconfig("kube-scheduler", local, "system:kube-scheduler")
	if err != nil {
		return "", err
	}
	bin := func(name string) string { return filepath.Join(c.o.Assets, name) }
	c.logf("Starting etcd and kube-apiserver")
	if err := c.ensure(ctx, daemon{name: "etcd", bin: bin("etcd"), args: []string{
		"--data-dir=" + c.path("etcd"), "--name=seek-local",
		fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", etcdPort), fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", etcdPort),
		fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", etcdPeerPort), fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", etcdPeerPort),
		fmt.Sprintf("--initial-cluster=seek-local=http://127.0.0.1:%d", etcdPeerPort), "--listen-metrics-urls=", "--log-level=warn",
	}}, c.healthCheck(ctx, "etcd"), time.Minute); err != nil {
		return "", err
	}
	if err := c.ensure(ctx, daemon{name: "kube-apiserver", bin: bin("kube-apiserver"), args: []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", etcdPort),
		fmt.Sprintf("--secure-port=%d", APIServerPort), "--advertise-address=" + ip,
		"--tls-cert-file=" + serverCert, "--tls-private-key-file=" + serverKey, "--client-ca-file=" + p.path("ca.crt"),
		"--kubelet-client-certificate=" + kubeletClientCert, "--kubelet-client-key=" + kubeletClientKey,
		// The node's name resolves nowhere (no cluster DNS, no hosts entry): reach the kubelet (logs,
		// exec, port-forward) at its InternalIP.
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.path("sa.pub"), "--service-account-signing-key-file=" + p.path("sa.key"),
		"--service-cluster-ip-range=" + ServiceCIDR,
		// The REST API's NodePort is 8080, below the default range.
		"--service-node-port-range=8000-32767",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--profiling=false", "--v=0",
	}}, c.healthCheck(ctx, "kube-apiserver"), 2*time.Minute); err != nil {
		return "", err
	}
	c.logf("Starting kube-controller-manager and kube-scheduler")
	if err := c.ensure(ctx, daemon{name: "kube-controller-manager", bin: bin("kube-controller-manager"), args: []string{
		"--kubeconfig=" + kcm, "--authentication-kubeconfig=" + kcm, "--authorization-kubeconfig=" + kcm,
		"--use-service-account-credentials=true", "--service-account-private-key-file=" + p.path("sa.key"),
		"--root-ca-file=" + p.path("ca.crt"), "--cluster-signing-cert-file=" + p.path("ca.crt"), "--cluster-signing-key-file=" + p.path("ca.key"),
		"--service-cluster-ip-range=" + ServiceCIDR, "--leader-elect=false", "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", controllerManagerPort),
		"--profiling=false",
		// The resourcequota controller counts a resource it learns of (the SeekJob CRD, installed a
		// moment before the demo tenant's quota) only at its next full resync: 5 min by default, which
		// left a new cluster's quota uncounted past the 2 min the install waits (a cold CI run).
		"--resource-quota-sync-period=30s",
	}}, c.healthCheck(ctx, "kube-controller-manager"), time.Minute); err != nil {
		return "", err
	}
	if err := c.ensure(ctx, daemon{name: "kube-scheduler", bin: bin("kube-scheduler"), args: []string{
		"--kubeconfig=" + sched, "--authentication-kubeconfig=" + sched, "--authorization-kubeconfig=" + sched,
		"--leader-elect=false", "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", schedulerPort), "--profiling=false",
	}}, c.healthCheck(ctx, "kube-scheduler"), time.Minute); err != nil {
		return "", err
	}
	return admin, nil
}

// startNode starts containerd, imports the images, starts the kubelet and kube-proxy, and waits for
// the node to be Ready. It returns the images' tag.
func (c *Cluster) startNode(ctx context.Context, p *pki, k8s client.Client, ip string) (string, error) {
	local := fmt.Sprintf("https://127.0.0.1:%d", APIServerPort)
	kubeletKC, err := p.kubeconfig("kubelet", local, "system:node:"+NodeName, "system:nodes")
	if err != nil {
		return "", err
	}
	proxyKC, err := p.kubeconfig("kube-proxy", local, "system:kube-proxy")
	if err != nil {
		return "", err
	}
	croot := c.path("containerd")
	socket := filepath.Join(croot, "containerd.sock")
	if err := writeConfigs(map[string]string{
		filepath.Join(croot, "config.toml"):             containerdConfig(croot, PauseImage),
		filepath.Join(croot, "cni", "10-seek.conflist"): cniConfig(c.path("cni-ipam")),
		c.path("kubelet", "config.yaml"):                kubeletConfig(socket, p.path("ca.crt"), c.path("kubelet", "pod-logs")),
		c.path("kube-proxy", "config.yaml"):             kubeProxyConfig(proxyKC),
	}); err != nil {
		return "", err
	}
	if err := ensureMasquerade(); err != nil {
		return "", fmt.Errorf("pod masquerading: %w", err)
	}
	c.logf("Starting containerd")
	if err := c.ensure(ctx, daemon{name: "containerd", bin: "containerd", args: []string{"--config", filepath.Join(croot, "config.toml")}},
		c.healthCheck(ctx, "containerd"), 30*time.Second); err != nil {
		return "", err
	}
	tag, err := c.importImages(ctx, socket)
	if err != nil {
		return "", err
	}
	c.logf("Starting the kubelet and kube-proxy")
	if err := c.ensure(ctx, daemon{name: "kubelet", bin: filepath.Join(c.o.Assets, "kubelet"), args: []string{
		"--config=" + c.path("kubelet", "config.yaml"), "--kubeconfig=" + kubeletKC, "--root-dir=" + c.path("kubelet", "root"),
		"--node-ip=" + ip, "--hostname-override=" + NodeName, "--v=1",
	}}, c.healthCheck(ctx, "kubelet"), time.Minute); err != nil {
		return "", err
	}
	if err := c.ensure(ctx, daemon{name: "kube-proxy", bin: filepath.Join(c.o.Assets, "kube-proxy"), args: []string{
		"--config=" + c.path("kube-proxy", "config.yaml"), "--v=1",
	}}, c.healthCheck(ctx, "kube-proxy"), time.Minute); err != nil {
		return "", err
	}
	// A kubelet started by this up must report the node Ready itself: the status the previous one
	// left says Ready until the new one first reports (NotReady, for a moment).
	since := c.launched["kubelet"]
	if err := waitFor(ctx, 2*time.Minute, "node "+NodeName+" Ready", func() bool { return nodeReadySince(ctx, k8s, since) }); err != nil {
		return "", c.withLog(err, "kubelet")
	}
	return tag, nil
}

// withLog adds the tail of a daemon's log to err.
func (c *Cluster) withLog(err error, name string) error {
	data, _ := os.ReadFile(c.logFile(name))
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return fmt.Errorf("%w; %s ends:\n%s", err, c.logFile(name), data)
}

// writeConfigs writes the files whose content differs. An unchanged file is not touched: kube-proxy
// exits on any write to its configuration file, even of the same content.
func writeConfigs(files map[string]string) error {
	for path, content := range files {
		if old, err := os.ReadFile(path); err == nil && string(old) == content {
			continue
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func newClient(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	return client.New(cfg, client.Options{})
}

// managerLeads reports that a Ready manager pod of the release, not being deleted, holds the leader
// Lease, by the identity the chart gives it: <pod name>_<pod UID>.
func managerLeads(ctx context.Context, k8s client.Client) bool {
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: SystemNamespace, Name: LeaderLease}, lease); err != nil {
		return false
	}
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(SystemNamespace),
		client.MatchingLabels{"app.kubernetes.io/instance": releaseName, "app.kubernetes.io/component": "manager"}); err != nil {
		return false
	}
	for _, p := range pods.Items {
		if ptr.Deref(lease.Spec.HolderIdentity, "") == p.Name+"_"+string(p.UID) && p.DeletionTimestamp == nil && podReady(&p) {
			return true
		}
	}
	return false
}

// podReady reports the pod's Ready condition.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// apiReady asks kube-apiserver's /readyz, which waits for its post-start hooks (the bootstrap RBAC
// roles the other components need, among them).
func apiReady(ctx context.Context, kubeconfig string) bool {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return false
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return false
	}
	_, err = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil
}

// nodeReady reports that the node is Ready and untainted, so pods schedule onto it.
func nodeReady(ctx context.Context, k8s client.Client) bool {
	return nodeReadySince(ctx, k8s, time.Time{})
}

// nodeReadySince is nodeReady, reported by the kubelet at since or later (to the second).
func nodeReadySince(ctx context.Context, k8s client.Client, since time.Time) bool {
	node := &corev1.Node{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: NodeName}, node); err != nil {
		return false
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue && len(node.Spec.Taints) == 0 && !cond.LastHeartbeatTime.Time.Before(since.Truncate(time.Second))
		}
	}
	return false
}

// WaitForKey waits until the REST API at apiURL serves and accepts key: the frontend learns of a new
// key from its Secret informer, a moment after the Secret is created.
func WaitForKey(ctx context.Context, apiURL, key string) error {
	return waitFor(ctx, 2*time.Minute, "the REST API on "+apiURL+" accepting the API key", func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/v1/workers", nil)
		if err != nil {
			return false
		}
		req.Header.Set("X-Api-Key", key)
		return do(req)
	})
}

func httpOK(url string) bool {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	return err == nil && do(req)
}

// do reports whether req is answered 200 within 2 s.
func do(req *http.Request) bool {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
