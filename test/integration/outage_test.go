package integration

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// TestManagerRidesOutApiserverOutage: a leader-elected manager whose apiserver is away for 30 s
// keeps leading and running (no exit, so no crash-loop back-off), and a job created meanwhile moves
// (gets its pod) within 30 s of the apiserver's return.
func TestManagerRidesOutApiserverOutage(t *testing.T) {
	u, err := url.Parse(cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	// This test's manager, reaching the apiserver through the proxy, replaces the suite's.
	cfg := rest.CopyConfig(cp.Config)
	cfg.Host = "https://" + proxy.addr
	done, _ := leaderElectedManager(t, cfg, uniqueName("outage"), "seek-operator-manager-7d9f8-k3v8n_"+string(uuid.NewUUID()))
	ns := newNamespace(t)
	w := readyWorker(t, echoWorker(t).Obj())
	mustCreate(t, testutil.MakeSeekJob("before", ns).Worker(w.Name).Input(`{}`).Obj())
	waitForPod(t, ns, "before", 1)

	const outage = 30 * time.Second
	proxy.cut()
	// Created directly, as a client that still reaches the apiserver would: the manager cannot see it.
	mustCreate(t, testutil.MakeSeekJob("during", ns).Worker(w.Name).Input(`{}`).Obj())
	select {
	case err := <-done:
		t.Fatalf("the manager stopped during the outage: %v", err)
	case <-time.After(outage):
	}
	proxy.restore()
	back := time.Now()
	waitForPod(t, ns, "during", 1)
	if d := time.Since(back); d > 30*time.Second {
		t.Errorf("the job created during the outage got its pod %s after the apiserver's return, want within 30s", d.Round(time.Second))
	} else {
		t.Logf("the job created during a %s outage got its pod %s after the apiserver's return", outage, d.Round(100*time.Millisecond))
	}
	select {
	case err := <-done:
		t.Fatalf("the manager stopped: %v", err)
	default:
	}
}

// TestManagerRestartedInItsPodLeadsAtOnce: a manager whose container restarted in its pod (an OOM
// kill, a node reboot) finds the leader Lease held by its own identity, the pod's name and UID as the
// chart passes them, and takes it back at once. Any other identity, controller-runtime's default with
// a new UUID per process among them, waits out the lease duration (90 s), leaving no leader meanwhile.
func TestManagerRestartedInItsPodLeadsAtOnce(t *testing.T) {
	lease, identity := uniqueName("restart"), "seek-operator-manager-7d9f8-x2k4q_"+string(uuid.NewUUID())
	// The Lease as the previous container left it when it died: renewed a moment ago, not released.
	now := metav1.NewMicroTime(time.Now())
	mustCreate(t, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: systemNamespace},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &identity, LeaseDurationSeconds: ptr.To(int32(manager.DefaultLeaseDuration.Seconds())),
			AcquireTime: &now, RenewTime: &now},
	})

	// Another identity leads nothing while the Lease lasts: a new worker stays without its Ready condition.
	_, stop := leaderElectedManager(t, cp.Config, lease, "seek-operator-manager-7d9f8-q8zzt_"+string(uuid.NewUUID()))
	w := echoWorker(t).Obj()
	mustCreate(t, w)
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), w) })
	time.Sleep(8 * time.Second) // > the retry period (5 s): the other identity tried at least twice
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(w), w); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(w.Status.Conditions, seekv1alpha1.WorkerReady); c != nil {
		t.Fatalf("a manager of another identity led while the Lease lasted: worker condition %v", c)
	}
	stop()

	start := time.Now()
	leaderElectedManager(t, cp.Config, lease, identity)
	eventually(t, "worker "+w.Name+" ready", func(ctx context.Context) (bool, error) {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w)
		return err == nil && meta.IsStatusConditionTrue(w.Status.Conditions, seekv1alpha1.WorkerReady), err
	})
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the restarted manager led %s after its start, want at once (within 15s)", d.Round(100*time.Millisecond))
	} else {
		t.Logf("the restarted manager led and reconciled a worker %s after its start", d.Round(100*time.Millisecond))
	}
	got := &coordinationv1.Lease{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: lease}, got); err != nil {
		t.Fatal(err)
	}
	if h := ptr.Deref(got.Spec.HolderIdentity, ""); h != identity || !got.Spec.RenewTime.After(now.Time) {
		t.Errorf("Lease held by %q renewed %v, want %q renewed after %v", h, got.Spec.RenewTime, identity, now)
	}
}

// leaderElectedManager runs a leader-elected manager on cfg in place of the suite's, for lease with
// identity (empty: controller-runtime's), until stop or the test's end. done reports its return.
func leaderElectedManager(t *testing.T, cfg *rest.Config, lease, identity string) (done <-chan error, stop func()) {
	t.Helper()
	if mgrRun != nil {
		mgrRun.stop()
		mgrRun = nil
		t.Cleanup(func() { restartManager(t) })
	}
	ctx, cancel := context.WithCancel(context.Background())
	ret := make(chan error, 1)
	go func() {
		ret <- manager.Run(ctx, cfg, manager.Options{
			MetricsAddr: "0", HealthProbeAddr: "0", DispatchBindAddress: "0", JobConcurrency: 4, Restartable: true,
			LeaderElection: true, LeaderElectionNS: systemNamespace, LeaderElectionID: lease, LeaderElectionIdentity: identity,
			CredentialsNamespace: credentialsNamespace,
		})
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-ret; err != nil {
				t.Logf("manager: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return ret, stop
}
