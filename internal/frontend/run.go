package frontend

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/reconnect"
	"github.com/seek-api/seek-operator/internal/signingkeys"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// Options configure the frontend process.
type Options struct {
	Listen          string
	MetricsAddr     string
	HealthProbeAddr string
	// CredentialsNamespace holds the API key Secrets and the webhook signing Secrets (and nothing else):
	// the frontend's only Secret rights are there.
	CredentialsNamespace string
	MaxBodyBytes         int64
	QPS                  float64
	Burst                int
	ShutdownTimeout      time.Duration
	// Callbacks is the SSRF policy for callback URLs; it must match the manager's.
	Callbacks webhook.Policy
	// Ready, when set, receives the address the API listens on once it does (tests use port 0).
	Ready chan<- string
	// AdmissionAddr is where the SeekJob admission webhook is served (HTTPS, AdmissionPath); "0" or ""
	// serves none. AdmissionCertDir holds its tls.crt and tls.key, reloaded when they change.
	AdmissionAddr    string
	AdmissionCertDir string
}

// The frontend's default client rate limits. The burst holds a whole batch's creates: with 400, a
// 1,000-input batch could not take less than (1000-400)/200 = 3 s whatever the apiserver's speed. The
// apiserver protects itself with API Priority and Fairness (the frontend has its own priority level),
// and every API key has its own rate limit.
const (
	DefaultKubeAPIQPS   = 500
	DefaultKubeAPIBurst = 2 * MaxBatchItems
)

// BindFlags registers the frontend's flags with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	webhook.BindPolicyFlags(fs, &o.Callbacks)
	fs.StringVar(&o.Listen, "listen", ":8080", "Address of the REST API.")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8082", "Address of the Prometheus metrics endpoint (never served on --listen); 0 disables it.")
	fs.StringVar(&o.HealthProbeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz; 0 disables them.")
	fs.StringVar(&o.CredentialsNamespace, "credentials-namespace", credentials.DefaultNamespace, "Namespace of the API key and webhook signing Secrets.")
	fs.Func("system-namespace", "Deprecated, ignored: API key and signing Secrets are in --credentials-namespace (seekctl credentials migrate moves them there).", func(string) error {
		return nil
	})
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", DefaultMaxBodyBytes, "Largest accepted submission body.")
	fs.Float64Var(&o.QPS, "kube-api-qps", DefaultKubeAPIQPS, "Sustained queries per second to the Kubernetes API.")
	fs.IntVar(&o.Burst, "kube-api-burst", DefaultKubeAPIBurst, "Burst of queries to the Kubernetes API (at least MaxBatchItems, so that a batch's creates are not throttled).")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "How long in-flight requests may finish on shutdown.")
	fs.StringVar(&o.AdmissionAddr, "admission-bind-address", "0", "Address of the SeekJob validating admission webhook (HTTPS, "+AdmissionPath+"); 0 disables it.")
	fs.StringVar(&o.AdmissionCertDir, "admission-cert-dir", "", "Directory of the admission webhook's serving certificate, tls.crt and tls.key (reloaded when they change).")
}

// Run serves the REST API until ctx ends, then drains in-flight requests.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.QPS), o.Burst
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := seekv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	o.CredentialsNamespace = cmp.Or(o.CredentialsNamespace, credentials.DefaultNamespace)
	keys := labels.SelectorFromSet(labels.Set{apikeys.Label: "true"})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			// Informers reconnect within a second of an apiserver's return, not after the reflector's
			// back-off of up to a minute, so answers are current again at once.
			NewInformer: reconnect.NewInformer,
			// Keys and workers are only read, on every request: hand out the cached objects themselves
			// rather than deep copies. SeekJobs are copied: cancel patches the object it reads.
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Secret{}: {Label: keys, Namespaces: map[string]cache.Config{o.CredentialsNamespace: {}},
					UnsafeDisableDeepCopy: ptr.To(true)},
				&seekv1alpha1.SeekWorker{}: {UnsafeDisableDeepCopy: ptr.To(true)},
			},
		},
		Metrics:                metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress: o.HealthProbeAddr,
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &seekv1alpha1.SeekJob{}, waitingWorkerField, waitingWorker); err != nil {
		return fmt.Errorf("index waiting SeekJobs: %w", err)
	}
	// Start the informers now, not on first use: the first request must not wait for a cache sync.
	finished := newFinishWaiters()
	queues := newFinishRates(clock.RealClock{}, func(sj *seekv1alpha1.SeekJob) (string, bool) {
		w := &seekv1alpha1.SeekWorker{}
		if err := mgr.GetCache().Get(ctx, client.ObjectKey{Name: string(sj.Spec.WorkerName)}, w); err != nil {
			return "", false
		}
		return queueScope(sj.Namespace, w), true
	})
	for _, obj := range []client.Object{&corev1.Secret{}, &seekv1alpha1.SeekJob{}, &seekv1alpha1.SeekWorker{}} {
		inf, err := mgr.GetCache().GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		if _, ok := obj.(*seekv1alpha1.SeekJob); ok {
			if _, err := inf.AddEventHandler(finished.handler()); err != nil {
				return fmt.Errorf("watch SeekJobs finishing: %w", err)
			}
			if _, err := inf.AddEventHandler(queues.handler()); err != nil {
				return fmt.Errorf("watch SeekJobs finishing: %w", err)
			}
		}
	}
	synced := func(ctx context.Context) error {
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("informer caches not synced")
		}
		return nil
	}
	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("create clientset: %w", err)
	}
	srv := &Server{
		Ready:     synced,
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Keys:      &KeyStore{Reader: mgr.GetCache(), Namespace: o.CredentialsNamespace},
		Callbacks: o.Callbacks,
		// Signing secrets are read rarely: straight from the apiserver, not cached.
		SigningKeys:  &signingkeys.Store{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Live: mgr.GetAPIReader(), Namespace: o.CredentialsNamespace, Clock: clock.RealClock{}},
		MaxBodyBytes: o.MaxBodyBytes,
		// Logs through pods/log, and pods through APIReader: no pod informer, no cluster-wide pod rights.
		Logs:     NewPodLogs(clientset),
		finished: finished,
		queues:   queues,
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", func(r *http.Request) error { return synced(r.Context()) }); err != nil {
		return err
	}
	registerMetrics()
	if err := mgr.Add(&apiServer{handler: instrument(srv.Handler()), opts: o}); err != nil {
		return err
	}
	if err := addAdmission(mgr, o); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// apiServer runs the HTTP server as a manager runnable, on every replica (no leader election).
type apiServer struct {
	handler http.Handler
	opts    Options
}

func (a *apiServer) NeedLeaderElection() bool { return false }

func (a *apiServer) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("api")
	l, err := net.Listen("tcp", a.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.opts.Listen, err)
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second, // room for a 60 s Prefer: wait
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if a.opts.Ready != nil {
		a.opts.Ready <- l.Addr().String()
	}
	log.Info("Serving the REST API", "address", l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Drain: stop accepting, let in-flight requests finish.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down the REST API: %w", err)
	}
	log.Info("REST API stopped")
	return nil
}
