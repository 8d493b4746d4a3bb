// Command seek-dev runs the whole Seek system locally with no cluster: a real etcd, kube-apiserver and
// kube-controller-manager (built by hack/k8s-binaries.sh), the Seek CRDs, the sample SeekWorker and
// SeekJob, the Seek manager and the REST frontend with a demo tenant and API key, until interrupted.
// `make run` starts it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/frontend"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/tenants"
)

func main() {
	opts := manager.Options{}
	opts.BindFlags(flag.CommandLine)
	// The REST API takes :8080 locally; the manager's endpoints move aside.
	flag.CommandLine.Lookup("metrics-bind-address").DefValue = ":9080"
	opts.MetricsAddr = ":9080"
	flag.CommandLine.Lookup("health-probe-bind-address").DefValue = ":9081"
	opts.HealthProbeAddr = ":9081"
	apiListen := flag.String("api-listen", "127.0.0.1:8080", "Address of the REST API.")
	tenant := flag.String("tenant", "demo", "Namespace of the demo tenant whose API key is printed.")
	samples := flag.String("samples", "config/samples", "Directory of manifests applied at start; empty applies none.")
	kubeconfigOut := flag.String("kubeconfig-out", defaultKubeconfigPath(), "Where to write the admin kubeconfig of the local control plane.")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), opts, *apiListen, *tenant, *samples, *kubeconfigOut); err != nil {
		fmt.Fprintln(os.Stderr, "seek-dev:", err)
		os.Exit(1)
	}
}

func defaultKubeconfigPath() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "seek-operator", "dev", "kubeconfig")
}

func run(ctx context.Context, opts manager.Options, apiListen, tenant, samples, kubeconfigOut string) error {
	log := ctrl.Log.WithName("seek-dev")
	log.Info("Starting etcd, kube-apiserver and kube-controller-manager")
	cp, err := controlplane.Start(controlplane.Options{Controllers: controlplane.DefaultControllers, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer func() {
		log.Info("Stopping the control plane")
		if err := cp.Stop(); err != nil {
			log.Error(err, "Stopping the control plane")
		}
	}()
	kubeconfig, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(kubeconfigOut), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfigOut, kubeconfig, 0o600); err != nil {
		return err
	}
	c, err := client.New(cp.Config, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		return err
	}
	if samples != "" {
		if err := controlplane.ApplyManifests(ctx, c, samples); err != nil {
			return err
		}
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: credentials.DefaultNamespace}}); err != nil {
		return err
	}
	// The demo tenant as seekctl tenants create makes one (no NetworkPolicy: there is no chart, nor a
	// node to enforce one).
	if err := tenants.Apply(ctx, c, tenants.Tenant{Name: tenant}); err != nil {
		return err
	}
	if err := tenants.WaitCounted(ctx, c, tenant, time.Minute); err != nil {
		return err
	}
	secret, key, err := apikeys.New(credentials.DefaultNamespace, tenant, apikeys.Scopes, 0)
	if err != nil {
		return err
	}
	if err := c.Create(ctx, secret); err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return manager.Run(ctx, cp.Config, opts) })
	g.Go(func() error {
		return frontend.Run(ctx, cp.Config, frontend.Options{Listen: apiListen, MetricsAddr: "0", HealthProbeAddr: "0",
			CredentialsNamespace: credentials.DefaultNamespace, MaxBodyBytes: frontend.DefaultMaxBodyBytes, QPS: 200, Burst: 400, ShutdownTimeout: 10 * time.Second,
			Callbacks: opts.CallbackPolicy})
	})
	fmt.Printf(`
Seek is running on a local control plane (etcd, kube-apiserver, kube-controller-manager).

REST API: http://%[1]s   tenant %[2]q, API key (shown once): %[3]s

  curl -s -X POST http://%[1]s/v1/workers/echo/jobs -H 'X-Api-Key: %[3]s' -d '{"message":"hello"}'
  curl -s http://%[1]s/v1/jobs/<job_uuid> -H 'X-Api-Key: %[3]s'

kubectl, in another shell:

  export KUBECONFIG=%[4]s PATH=%[5]s:$PATH
  kubectl get seekworkers,seekjobs -A

There is no node yet, so worker pods stay Pending and jobs stay running until canceled or timed out.
Manager metrics: http://localhost%[6]s/metrics   health: http://localhost%[7]s/readyz   Stop: Ctrl-C

`, apiListen, tenant, key, kubeconfigOut, os.Getenv("KUBEBUILDER_ASSETS"), opts.MetricsAddr, opts.HealthProbeAddr)
	return g.Wait()
}
