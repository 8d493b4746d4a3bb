package localcluster

import "fmt"

// Configuration files of the node's components. Facts behind them (measured on Debian 12, cgroup v1,
// no systemd; see docs/local-cluster.md): runc needs containerd's restrict_oom_score_adj (no negative
// oom_score_adj in a sandbox); kubelet 1.37 refuses cgroup v1 unless failCgroupV1 is false; imported
// images must be kept from image GC, as there is no registry to pull them from again.

const (
	// NodeName is the name the kubelet registers.
	NodeName = "seek-node"
	bridge   = "seek0"
	// PodCIDR is the range pods get addresses from.
	PodCIDR = "10.89.0.0/16"
	// ServiceCIDR is the range of Service cluster IPs; its first address is the API's.
	ServiceCIDR  = "10.96.0.0/16"
	apiServiceIP = "10.96.0.1"
	cniNetwork   = "seek"
	etcdPort     = 12379
	etcdPeerPort = 12380
	// APIServerPort is kube-apiserver's port, on every address of the host.
	APIServerPort = 6443
	// Ports of the other components, on 127.0.0.1: their health checks (and the scheduler's and
	// controller manager's metrics).
	controllerManagerPort = 10257
	schedulerPort         = 10259
	kubeletHealthzPort    = 10248
	kubeProxyHealthzPort  = 10256
)

func containerdConfig(root, pauseImage string) string {
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
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = "%[1]s/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "%[1]s/cni"
`, root, pauseImage)
}

// cniConfig: a bridge with host-local addresses. Pod traffic leaving the pod range is masqueraded by
// one rule for the whole range (masqueradeChain), not by the bridge plugin's per-pod chains: those
// cost several iptables runs per pod start and stop, which a busy 2-core node feels. No portmap: Seek
// uses no host ports (the REST API is a NodePort, kube-proxy's).
func cniConfig(ipamDir string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "loopback"}
]}
`, cniNetwork, bridge, ipamDir, PodCIDR)
}

// masqueradeChain masquerades pod traffic that leaves the pod range. Its CNI- prefix puts it in the
// chains down removes.
const masqueradeChain = "CNI-SEEK-LOCAL-MASQ"

// kubeletConfig: the API server reaches the kubelet (logs, exec) with a client certificate of the
// cluster's CA; anything with one is allowed.
func kubeletConfig(socket, caFile, podLogs string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization:
  mode: AlwaysAllow
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
evictionHard: {}
enforceNodeAllocatable: []
maxPods: 250
serializeImagePulls: false
kubeAPIQPS: 100
kubeAPIBurst: 200
`, socket, podLogs, caFile, kubeletHealthzPort)
}

// kubeProxyConfig leaves the host's conntrack settings alone (zero values), so down has less to undo.
func kubeProxyConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %s}
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, kubeconfig, PodCIDR, NodeName, kubeProxyHealthzPort)
}
