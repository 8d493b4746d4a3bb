// Package integration tests the controllers against a real kube-apiserver and etcd, with
// kube-controller-manager's Job and garbage-collector controllers running, so Jobs create real Pods and
// deletes cascade. The tests play the kubelet by writing Pod status through the status subresource.
package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/controllers"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/webhook"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

const (
	// waitTimeout bounds every wait; the Job controller's first retry back-off alone is 10 s.
	waitTimeout  = 90 * time.Second
	pollInterval = 100 * time.Millisecond
)

var (
	// metricsAddr and probeAddr are where the manager serves /metrics and /healthz, /readyz.
	metricsAddr, probeAddr = freeAddr(), freeAddr()
	// dispatchAddr is where it serves the dispatch endpoint of pool pods (dispatch_test.go).
	dispatchAddr = freeAddr()

	// mgrLogPath is where the manager under test logs.
	mgrLogPath = filepath.Join(os.TempDir(), "seek-integration-manager.log")

	cp        *controlplane.ControlPlane
	k8sClient client.Client
	mgrRun    *runningManager
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logFile, err := os.CreateTemp("", "seek-integration-kcm-*.log")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logFile.Close()
	cp, err = controlplane.Start(controlplane.Options{Controllers: controlplane.DefaultControllers, Log: logFile})
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "integration: stop control plane:", err)
		}
	}()
	k8sClient, err = client.New(cp.Config, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The system namespace (Seek's ServiceAccounts) and the credentials namespace (API keys and webhook
	// signing secrets), as config/ creates them.
	for _, ns := range []string{systemNamespace, credentialsNamespace} {
		if err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	mgrLog, err := os.Create(mgrLogPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer mgrLog.Close()
	ctrl.SetLogger(zap.New(zap.WriteTo(mgrLog), zap.UseDevMode(true)))
	mgrRun = startManager()
	defer func() { mgrRun.stop() }() // the restart test replaces mgrRun
	if err := mgrRun.waitReady(waitTimeout); err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v; its log: %s\n", err, mgrLogPath)
		return 1
	}
	return m.Run()
}

// Webhook delivery settings of the manager and the frontend under test: a fast schedule of five
// attempts and a loopback allowlist.
var (
	callbackPolicy = webhook.Policy{AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, AnyPort: true,
		LookupNetIP: testResolver}
	callbackTimeout = 2 * time.Second
	// callbackTenantConcurrency is one tenant's share of the (default, 32) callback workers.
	callbackTenantConcurrency = 4
	callbackSchedule          = []time.Duration{0, 300 * time.Millisecond, 600 * time.Millisecond, time.Second, time.Second}
)

// suitePools configure pooled execution: no runner connects in these tests (they play its part by
// writing the statuses the dispatcher writes), so the dispatch URL leads nowhere.
var suitePools = controllers.PoolOptions{RunnerImage: testRunnerImage, DispatchURL: "http://127.0.0.1:9"}

// suiteSilenceLimit is how long a pool pod may say nothing of an attempt it holds before the attempt
// is leased again (a minute in production): short, so dispatch_test.go sees it apply; longer than
// any test here holds an attempt without a word.
const suiteSilenceLimit = 10 * time.Second

// suiteDefaultQueueTimeout is the manager's --default-queue-timeout: how long a job whose worker does
// not exist stays Queued.
const suiteDefaultQueueTimeout = 30 * time.Second

// testNames are host names the delivery client resolves without DNS (testResolver), standing for
// in-cluster names: they resolve to addresses outside the allowlist.
var testNames = map[string][]netip.Addr{
	"service.seek.test":  {netip.MustParseAddr("10.96.0.12")},
	"loopback.seek.test": {netip.MustParseAddr("::1")},
}

// testResolver answers for testNames and asks the system resolver about any other name.
func testResolver(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if addrs, ok := testNames[host]; ok {
		return addrs, nil
	}
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}

// runningManager is the Seek manager running in this process, as cmd/manager runs it.
type runningManager struct {
	ctx    context.Context
	cancel context.CancelFunc
	exited chan struct{} // closed when manager.Run has returned, err then set
	err    error
}

// startManager starts the manager. Should it stop by itself (a port taken, a controller that cannot
// start), every later test would time out waiting for it: the reason is printed at once instead.
func startManager() *runningManager {
	ctx, cancel := context.WithCancel(context.Background())
	rm := &runningManager{ctx: ctx, cancel: cancel, exited: make(chan struct{})}
	go func() {
		defer close(rm.exited)
		rm.err = manager.Run(ctx, cp.Config, manager.Options{
			MetricsAddr:          metricsAddr,
			HealthProbeAddr:      probeAddr,
			QPS:                  500,
			Burst:                1000,
			JobConcurrency:       8,
			Restartable:          true,
			CredentialsNamespace: credentialsNamespace,
			// Short, so queue_test.go sees it apply; long enough for the tests that create a job
			// before its worker.
			DefaultQueueTimeout: suiteDefaultQueueTimeout,
			// Receivers are local: loopback is allowlisted, as an operator would allowlist in-cluster ones.
			CallbackPolicy:            callbackPolicy,
			CallbackTimeout:           callbackTimeout,
			CallbackSchedule:          callbackSchedule,
			CallbackTenantConcurrency: callbackTenantConcurrency,
			DispatchBindAddress:       dispatchAddr,
			RunnerImage:               suitePools.RunnerImage,
			DispatchURL:               suitePools.DispatchURL,
			DispatchSilenceLimit:      suiteSilenceLimit,
		})
		if ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "integration: the manager stopped by itself (%v); its log: %s\n", rm.err, mgrLogPath)
		}
	}()
	return rm
}

// waitReady waits until the manager serves on all its addresses: the readiness probe passes (its
// caches synced), metrics answer, and the dispatch endpoint refuses a call without a token (its queues
// built). It fails with the reason the manager stopped, if it did.
func (rm *runningManager) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(rm.ctx, timeout)
	defer cancel()
	ready := func() (bool, string) {
		// Each call short: the readiness probe waits for the caches, and a stopping manager waits for it.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if code, _, err := httpGet(ctx, "http://"+probeAddr+"/readyz"); code != http.StatusOK {
			return false, fmt.Sprintf("readyz: %d %v", code, err)
		}
		if code, _, err := httpGet(ctx, "http://"+metricsAddr+"/metrics"); code != http.StatusOK {
			return false, fmt.Sprintf("metrics: %d %v", code, err)
		}
		if code, err := dispatchCall(ctx, "", dispatch.PathLease, dispatch.LeaseRequest{}, nil); code != http.StatusUnauthorized {
			return false, fmt.Sprintf("dispatch: %d %v", code, err)
		}
		return true, ""
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last string
	for {
		select {
		case <-rm.exited:
			return fmt.Errorf("the manager stopped before it was ready: %w", rm.err)
		case <-ctx.Done():
			return fmt.Errorf("the manager was not ready after %s (%s)", timeout, last)
		case <-tick.C:
		}
		var ok bool
		if ok, last = ready(); ok {
			return nil
		}
	}
}

// restartManager starts the manager again after a test stopped it, and waits until it serves.
func restartManager(t *testing.T) {
	t.Helper()
	mgrRun = startManager()
	if err := mgrRun.waitReady(waitTimeout); err != nil {
		t.Fatal(err)
	}
}

func (rm *runningManager) stop() {
	rm.cancel()
	<-rm.exited
	if rm.err != nil {
		fmt.Fprintln(os.Stderr, "integration: manager:", rm.err)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago. The port is outside
// the kernel's ephemeral range: go test runs other packages alongside this one, and their listeners
// on port 0 and their outgoing connections take ports from that range, so one could take a port
// picked there before the manager binds it (and the manager, unable to listen, would stop).
func freeAddr() string {
	low := ephemeralPortsFrom()
	for {
		port := low/2 + mrand.IntN(low/2)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken; another
		}
		addr := l.Addr().String()
		_ = l.Close()
		return addr
	}
}

// ephemeralPortsFrom is the first port of the kernel's ephemeral range (Linux's default when unknown).
func ephemeralPortsFrom() int {
	const linuxDefault = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return linuxDefault
	}
	var low, high int
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil || low < 2048 {
		return linuxDefault
	}
	return low
}

var nameMu sync.Mutex

// uniqueName returns prefix plus a random suffix: workers are cluster-scoped and tests run in parallel.
func uniqueName(prefix string) string {
	nameMu.Lock()
	defer nameMu.Unlock()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("t")}}
	mustCreate(t, ns)
	return ns.Name
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8sClient.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// eventually polls cond until it returns true, failing the test with the last description on timeout.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), pollInterval, waitTimeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		lastErr = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
	}
}

// waitForState waits until the SeekJob reaches state and returns it.
func waitForState(t *testing.T, ns, name string, state seekv1alpha1.JobState) *seekv1alpha1.SeekJob {
	t.Helper()
	sj := &seekv1alpha1.SeekJob{}
	eventually(t, fmt.Sprintf("SeekJob %s/%s in state %s", ns, name, state), func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sj); err != nil {
			return false, err
		}
		return sj.Status.State == state, fmt.Errorf("state %q, conditions %+v", sj.Status.State, sj.Status.Conditions)
	})
	return sj
}

// waitForPod waits for the attempt-th (1-based) pod of a SeekJob to exist and returns it.
func waitForPod(t *testing.T, ns, name string, attempt int) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, fmt.Sprintf("pod %d of SeekJob %s/%s", attempt, ns, name), func(ctx context.Context) (bool, error) {
		pods, err := podsOf(ctx, ns, name)
		if err != nil {
			return false, err
		}
		if len(pods) < attempt {
			return false, fmt.Errorf("%d pods", len(pods))
		}
		for i := range pods {
			if pods[i].Status.Phase != corev1.PodSucceeded && pods[i].Status.Phase != corev1.PodFailed && pods[i].DeletionTimestamp == nil {
				pod = &pods[i]
				return true, nil
			}
		}
		return false, fmt.Errorf("no live pod among %d", len(pods))
	})
	return pod
}

func podsOf(ctx context.Context, ns, name string) ([]corev1.Pod, error) {
	pods := &corev1.PodList{}
	err := k8sClient.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{seekv1alpha1.LabelJobName: name})
	return pods.Items, err
}

// finishPod plays the kubelet: the worker container terminated with exitCode and message.
func finishPod(t *testing.T, pod *corev1.Pod, exitCode int32, message string) {
	t.Helper()
	now := metav1.Now()
	phase, reason := corev1.PodSucceeded, "Completed"
	if exitCode != 0 {
		phase, reason = corev1.PodFailed, "Error"
	}
	setPodStatus(t, pod, phase, corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: exitCode, Reason: reason, Message: message, StartedAt: now, FinishedAt: now,
	}}})
}

// startPod plays the kubelet starting the worker container.
func startPod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	setPodStatus(t, pod, corev1.PodRunning, corev1.ContainerStatus{
		Ready: true, Started: ptrTo(true),
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	})
}

// setPodStatus writes the pod's phase and its worker container's status through the status subresource.
func setPodStatus(t *testing.T, pod *corev1.Pod, phase corev1.PodPhase, cs corev1.ContainerStatus) {
	t.Helper()
	now := metav1.Now()
	eventually(t, "pod status update", func(ctx context.Context) (bool, error) {
		p := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			return false, err
		}
		cs.Name, cs.Image = protocol.ContainerName, p.Spec.Containers[0].Image
		cs.ImageID = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		p.Status.Phase = phase
		p.Status.StartTime = &now
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		p.Status.InitContainerStatuses = collectorStatus(p, cs)
		err := k8sClient.Status().Update(ctx, p)
		return err == nil, err
	})
}

// collectorStatus plays the result collector sidecar of a Job mode pod (if it has one), given its
// worker container's status: running while the worker is not terminated; then terminated with the
// message `seek-runner collect` writes for a result file holding the worker's message (at most 4 KiB).
func collectorStatus(p *corev1.Pod, worker corev1.ContainerStatus) []corev1.ContainerStatus {
	for _, c := range p.Spec.InitContainers {
		if c.Name != dispatch.CollectorContainer {
			continue
		}
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, Started: ptrTo(true),
			ImageID: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
		term := worker.State.Terminated
		if term == nil {
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.Now()}
		} else {
			msg := term.Message
			if msg == "" {
				msg = dispatch.CollectedPrefix + `{"bytes":0}`
			}
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", Message: msg,
				StartedAt: term.StartedAt, FinishedAt: term.FinishedAt}
		}
		return []corev1.ContainerStatus{cs}
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// jobsOf lists the Jobs in ns (of anyone).
func jobsOf(ctx context.Context, ns string) ([]batchv1.Job, error) {
	jobs := &batchv1.JobList{}
	err := k8sClient.List(ctx, jobs, client.InNamespace(ns))
	return jobs.Items, err
}
