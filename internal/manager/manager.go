// Package manager assembles the controller manager: scheme, cache, health checks, metrics, leader
// election and the controllers. cmd/manager, the local development environment and the integration
// tests all run it through Run, so they test what ships.
package manager

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/controllers"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// Options configure the manager. BindFlags sets the defaults of cmd/manager; a zero QPS, Burst or
// GracefulShutdownTime keeps a safe default in Run.
type Options struct {
	MetricsAddr     string
	HealthProbeAddr string
	// PprofAddr serves Go's /debug/pprof profiles (for measuring the manager under load); "0" or empty
	// disables it.
	PprofAddr        string
	LeaderElection   bool
	LeaderElectionNS string
	LeaderElectionID string
	// LeaderElectionIdentity names this manager in the leader election Lease. The chart gives the
	// pod's name and UID, so a manager whose container restarts in the same pod takes its own Lease
	// back at once. Empty: controller-runtime's, the host name and a new random UUID per process.
	LeaderElectionIdentity string
	// LeaseDuration, RenewDeadline and RetryPeriod time the leader election (defaults
	// DefaultLeaseDuration, DefaultRenewDeadline, DefaultRetryPeriod).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	QPS                                       float64
	Burst                                     int
	JobConcurrency                            int
	GracefulShutdownTime                      time.Duration
	// CredentialsNamespace holds the webhook signing secrets (shared with the frontend, which keeps the
	// API keys there too); the manager's only Secret rights are there.
	CredentialsNamespace string
	// Callback* configure webhook delivery; see controllers.CallbackOptions.
	CallbackPolicy      webhook.Policy
	CallbackTimeout     time.Duration
	CallbackSchedule    []time.Duration
	CallbackConcurrency int
	// DefaultQueueTimeout is how long a job whose SeekWorker does not exist may stay Queued; 0 means no
	// limit (see controllers.Options).
	DefaultQueueTimeout time.Duration
	// CallbackTenantConcurrency caps one tenant's share of CallbackConcurrency.
	CallbackTenantConcurrency int
	// Clock replaces the real clock (tests).
	Clock clock.PassiveClock
	// Registry receives the job metrics instead of controller-runtime's global registry. The metrics
	// endpoint serves only the global one, so set this only where nothing scrapes (benchmarks).
	Registry metrics.RegistererGatherer
	// RunnerImage is the Seek runner's image, copied into every pool pod (pooled execution).
	RunnerImage string
	// DispatchBindAddress is where the dispatch endpoint listens; "0" or empty disables it.
	DispatchBindAddress string
	// DispatchURL is the dispatch endpoint's URL as pool pods reach it; when empty it is resolved from
	// DispatchService.
	DispatchURL string
	// DispatchSilenceLimit is how long a pool pod may say nothing of an attempt it holds before the
	// attempt is leased again; dispatch.SilenceLimit when zero (tests shorten it).
	DispatchSilenceLimit time.Duration
	// DispatchService ("<namespace>/<name>") is the Service in front of the dispatch endpoint: its
	// cluster IP and its port named "dispatch" (or its only port) make DispatchURL.
	DispatchService string
	// Restartable lets one process run the manager more than once (tests): controller-runtime otherwise
	// refuses a second controller of the same name.
	Restartable bool
}

// BindFlags registers the manager's flags with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	webhook.BindPolicyFlags(fs, &o.CallbackPolicy)
	fs.StringVar(&o.CredentialsNamespace, "credentials-namespace", credentials.DefaultNamespace, "Namespace of the webhook signing Secrets (the frontend's too).")
	fs.Func("system-namespace", "Deprecated, ignored: the webhook signing Secrets are in --credentials-namespace (seekctl credentials migrate moves them there).", func(string) error {
		return nil
	})
	fs.DurationVar(&o.CallbackTimeout, "callback-timeout", controllers.DefaultCallbackTimeout, "Timeout of one callback delivery attempt.")
	fs.IntVar(&o.CallbackConcurrency, "callback-concurrency", controllers.DefaultCallbackConcurrency, "Callback deliveries in flight at once.")
	fs.IntVar(&o.CallbackTenantConcurrency, "callback-tenant-concurrency", 0, "Callback deliveries one tenant (namespace) may have in flight at once; the others wait, holding no worker (0: a quarter of --callback-concurrency, at least 1).")
	fs.Func("callback-schedule", "Comma-separated delays before each callback attempt (default: 0s,5s,5m,30m,2h,5h,10h,14h,20h,24h), jittered by 10%.", func(v string) error {
		s, err := webhook.ParseSchedule(v)
		o.CallbackSchedule = s
		return err
	})
	fs.DurationVar(&o.DefaultQueueTimeout, "default-queue-timeout", controllers.DefaultUnknownWorkerQueueTimeout,
		"How long a job whose SeekWorker does not exist may stay Queued before it fails with reason QueueTimeout; 0 disables. Workers that exist set their own (spec.timeouts.queueTimeout).")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 disables it.")
	fs.StringVar(&o.HealthProbeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints; 0 disables them.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "0", "Address of Go's /debug/pprof profiles; 0 disables them. Never expose it beyond the node.")
	fs.BoolVar(&o.LeaderElection, "leader-elect", false, "Elect a leader so only one replica reconciles at a time.")
	fs.StringVar(&o.LeaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the pod's namespace).")
	fs.StringVar(&o.LeaderElectionID, "leader-election-id", "seek-operator.seek-api.com", "Name of the leader election Lease.")
	fs.StringVar(&o.LeaderElectionIdentity, "leader-election-identity", "", "This manager's name in the leader election Lease; unique to one process at a time, stable across its restarts (the chart: <pod name>_<pod UID>). Default: the host name and a random UUID per process, so a restarted manager waits a whole lease duration for its own earlier Lease.")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", DefaultLeaseDuration, "How long a leader's Lease lasts without renewal: a crashed leader's successor waits this long (a graceful stop releases it at once).")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", DefaultRenewDeadline, "How long the leader keeps trying to renew its Lease before it gives up leading and exits: an apiserver outage shorter than this costs no restart.")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", DefaultRetryPeriod, "How often the leader renews its Lease, and a candidate tries to take it.")
	fs.Float64Var(&o.QPS, "kube-api-qps", 200, "Sustained queries per second to the Kubernetes API.")
	fs.IntVar(&o.Burst, "kube-api-burst", 400, "Burst of queries to the Kubernetes API.")
	fs.StringVar(&o.DispatchBindAddress, "dispatch-bind-address", ":8090", "Address of the dispatch endpoint pool pods lease jobs from; 0 disables it (and pooled execution).")
	fs.StringVar(&o.DispatchURL, "dispatch-url", "", "URL of the dispatch endpoint as pool pods reach it, such as http://10.96.0.20:8090 (default: from --dispatch-service).")
	fs.StringVar(&o.DispatchService, "dispatch-service", "", "The Service of the dispatch endpoint, as <namespace>/<name>: when --dispatch-url is not given, the pool pods use http://<its cluster IP>:<its port named dispatch, or its only port>.")
	fs.StringVar(&o.RunnerImage, "runner-image", "", "Image of the Seek runner, copied into every pool pod.")
	fs.IntVar(&o.JobConcurrency, "job-concurrency", 16, "SeekJobs reconciled in parallel.")
	fs.DurationVar(&o.GracefulShutdownTime, "graceful-shutdown-timeout", 30*time.Second, "How long to wait for reconciles to finish on shutdown.")
}

func (o *Options) credentialsNamespace() string {
	if o.CredentialsNamespace == "" {
		return credentials.DefaultNamespace
	}
	return o.CredentialsNamespace
}

// NewScheme returns a scheme with the Kubernetes built-in types and the Seek API.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := seekv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Run runs the manager until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	if o.DefaultQueueTimeout < 0 {
		return fmt.Errorf("--default-queue-timeout must not be negative, got %s", o.DefaultQueueTimeout)
	}
	cfg = rest.CopyConfig(cfg)
	// ContentType stays empty: controller-runtime then speaks protobuf for built-in types (Jobs, Pods),
	// which costs the apiserver far less than JSON, and JSON for the Seek CRDs.
	if o.QPS > 0 {
		cfg.QPS = float32(o.QPS)
	}
	if o.Burst > 0 {
		cfg.Burst = o.Burst
	}
	shutdown := o.GracefulShutdownTime
	if shutdown <= 0 {
		// Zero would make Start return before the servers and reconcilers have stopped.
		shutdown = 30 * time.Second
	}
	renewDeadline := cmp.Or(o.RenewDeadline, DefaultRenewDeadline)
	lock, err := leaderLock(cfg, o, renewDeadline)
	if err != nil {
		return err
	}
	var lockInterface resourcelock.Interface // nil, not a nil *LeaseLock: controller-runtime's own lock then
	if lock != nil {
		lockInterface = lock
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                              NewScheme(),
		Cache:                               controllers.CacheOptions(o.credentialsNamespace()),
		Metrics:                             metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:              o.HealthProbeAddr,
		PprofBindAddress:                    o.PprofAddr,
		LeaderElection:                      o.LeaderElection,
		LeaderElectionNamespace:             o.LeaderElectionNS,
		LeaderElectionID:                    o.LeaderElectionID,
		LeaderElectionReleaseOnCancel:       true,
		LeaseDuration:                       ptr.To(cmp.Or(o.LeaseDuration, DefaultLeaseDuration)),
		RenewDeadline:                       ptr.To(renewDeadline),
		RetryPeriod:                         ptr.To(cmp.Or(o.RetryPeriod, DefaultRetryPeriod)),
		GracefulShutdownTimeout:             &shutdown,
		Controller:                          config.Controller{SkipNameValidation: ptr.To(o.Restartable)},
		LeaderElectionResourceLockInterface: lockInterface,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if lock != nil {
		lock.LockConfig.EventRecorder = mgr.GetEventRecorderFor(o.LeaderElectionIdentity) //nolint:staticcheck // client-go's leader election records through the old events API.
	}
	dispatchURL := o.DispatchURL
	if dispatchURL == "" && o.DispatchService != "" {
		if dispatchURL, err = awaitDispatchURL(ctx, mgr.GetAPIReader(), o.DispatchService); err != nil {
			return err
		}
	}
	jobMetrics, err := controllers.SetupWithManager(mgr, controllers.Options{
		JobConcurrency:       o.JobConcurrency,
		Clock:                o.Clock,
		CredentialsNamespace: o.credentialsNamespace(),
		DefaultQueueTimeout:  o.DefaultQueueTimeout,
		Callbacks: controllers.CallbackOptions{
			Policy: o.CallbackPolicy, Timeout: o.CallbackTimeout, Schedule: o.CallbackSchedule, Concurrency: o.CallbackConcurrency,
			TenantConcurrency: o.CallbackTenantConcurrency,
		},
		Pools: controllers.PoolOptions{RunnerImage: o.RunnerImage, DispatchBindAddress: o.DispatchBindAddress, DispatchURL: dispatchURL,
			SilenceLimit: o.DispatchSilenceLimit},
	})
	if err != nil {
		return err
	}
	reg := o.Registry
	if reg == nil {
		reg = metrics.Registry
	}
	unregister, err := jobMetrics.Register(reg)
	if err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	defer unregister()
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add healthz check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return fmt.Errorf("informer caches not synced")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("add readyz check: %w", err)
	}
	ctrl.LoggerFrom(ctx).Info("Starting manager", "jobConcurrency", o.JobConcurrency, "leaderElection", o.LeaderElection)
	return mgr.Start(ctx)
}

// Leader election defaults. Kubernetes' own controllers renew within 10 s of a 15 s lease; Seek's
// manager waits longer, so that an apiserver outage (a restart, an upgrade: tens of seconds) does not
// make it give up leading, exit and then crash-loop while the apiserver is still away. A renewal
// starts up to RetryPeriod after the last one, so an outage of RenewDeadline-RetryPeriod (75 s) is
// ridden out; a restarted apiserver answers 403 for tens of seconds before it is ready on a busy node
// (docs/chaos.md: 30 s down and 15 to 20 s starting). The price: a leader that crashes (not a graceful
// stop, which releases the Lease) is replaced after up to 90 s.
const (
	DefaultLeaseDuration = 90 * time.Second
	DefaultRenewDeadline = 80 * time.Second
	DefaultRetryPeriod   = 5 * time.Second
)

// leaderLock is the leader election Lease with this manager's own identity
// (Options.LeaderElectionIdentity), or nil for controller-runtime's. Its identity has a new random
// UUID per process, and client-go's elector waits a whole lease duration (90 s) before it takes a
// Lease another identity held, even one held by the same pod's previous container: a container restart
// (an OOM kill, a node reboot) would leave Seek without a leader for 90 s. With the pod's name and
// UID, the restarted manager finds its own Lease and takes it back at once. A pod runs one manager
// container at a time, so two processes never hold the identity at once; a new pod has a new one.
func leaderLock(cfg *rest.Config, o Options, renewDeadline time.Duration) (*resourcelock.LeaseLock, error) {
	if !o.LeaderElection || o.LeaderElectionIdentity == "" {
		return nil, nil
	}
	namespace := o.LeaderElectionNS
	if namespace == "" {
		// The pod's namespace, as controller-runtime defaults it.
		ns, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
		if err != nil {
			return nil, fmt.Errorf("--leader-election-namespace is not set and the pod's namespace is unknown: %w", err)
		}
		namespace = strings.TrimSpace(string(ns))
	}
	cfg = rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	// As controller-runtime's own lock: one hung request must not outlast the renew deadline.
	cfg.Timeout = max(renewDeadline/2, time.Second)
	leases, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	return &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: o.LeaderElectionID},
		Client:     leases,
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.LeaderElectionIdentity},
	}, nil
}

// awaitDispatchURL resolves the dispatch Service as resolveDispatchURL does, retrying while the
// apiserver cannot be reached (a manager starting during an outage waits rather than exits, which
// the kubelet would answer with a growing crash-loop back-off), until ctx ends. A malformed flag or a
// Service without a usable address fails at once.
func awaitDispatchURL(ctx context.Context, reader client.Reader, service string) (string, error) {
	delay := time.Second
	for {
		u, err := resolveDispatchURL(ctx, reader, service)
		var unreachable *apiUnreachableError
		if err == nil || !errors.As(err, &unreachable) {
			return u, err
		}
		ctrl.LoggerFrom(ctx).Info("Waiting for the apiserver to resolve the dispatch Service", "service", service, "retryIn", delay, "error", err.Error())
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("resolve the dispatch Service %s: %w", service, context.Cause(ctx))
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// apiUnreachableError is a read that failed for want of the apiserver, not for what it answered.
type apiUnreachableError struct{ err error }

func (e *apiUnreachableError) Error() string { return e.err.Error() }
func (e *apiUnreachableError) Unwrap() error { return e.err }

// resolveDispatchURL makes the dispatch endpoint's URL from its Service ("<namespace>/<name>"): its
// cluster IP and its port named "dispatch", or its only port. Pool pods reach the manager by IP: a
// cluster need not run DNS.
func resolveDispatchURL(ctx context.Context, reader client.Reader, service string) (string, error) {
	ns, name, ok := strings.Cut(service, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("--dispatch-service must be <namespace>/<name>, got %q", service)
	}
	svc := &corev1.Service{}
	if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc); err != nil {
		err = fmt.Errorf("get the dispatch Service %s (--dispatch-service): %w", service, err)
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsBadRequest(err) {
			return "", err
		}
		return "", &apiUnreachableError{err}
	}
	ip := svc.Spec.ClusterIP
	if ip == "" || ip == corev1.ClusterIPNone {
		return "", fmt.Errorf("the dispatch Service %s has no cluster IP", service)
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if p := &svc.Spec.Ports[i]; p.Name == "dispatch" || len(svc.Spec.Ports) == 1 {
			port = p
			break
		}
	}
	if port == nil {
		return "", fmt.Errorf("the dispatch Service %s has no port named dispatch", service)
	}
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(int(port.Port))), nil
}
