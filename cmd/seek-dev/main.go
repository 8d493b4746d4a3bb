// Command seek-dev runs the whole Seek system locally with no cluster: a real etcd, kube-apiserver and
// kube-controller-manager (built by hack/k8s-binaries.sh), the Seek CRDs, the sample SeekWorker and
// SeekJob, and the Seek manager, until interrupted. `make run` starts it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/manager"
)

func main() {
	opts := manager.Options{}
	opts.BindFlags(flag.CommandLine)
	samples := flag.String("samples", "config/samples", "Directory of manifests applied at start; empty applies none.")
	kubeconfigOut := flag.String("kubeconfig-out", defaultKubeconfigPath(), "Where to write the admin kubeconfig of the local control plane.")
	zapOpts := zap.Options{Development: true}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), opts, *samples, *kubeconfigOut); err != nil {
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

func run(ctx context.Context, opts manager.Options, samples, kubeconfigOut string) error {
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
	if samples != "" {
		if err := apply(ctx, cp, samples); err != nil {
			return err
		}
	}
	fmt.Printf(`
Seek is running on a local control plane (etcd, kube-apiserver, kube-controller-manager).
In another shell:

  export KUBECONFIG=%s PATH=%s:$PATH
  kubectl get seekworkers,seekjobs -A
  kubectl describe seekjob -n default echo-hello

There is no node yet, so worker pods stay Pending and jobs stay Running until canceled or timed out.
Metrics: http://localhost%s/metrics   Health: http://localhost%s/readyz   Stop: Ctrl-C

`, kubeconfigOut, os.Getenv("KUBEBUILDER_ASSETS"), opts.MetricsAddr, opts.HealthProbeAddr)
	return manager.Run(ctx, cp.Config, opts)
}

// apply creates the sample manifests.
func apply(ctx context.Context, cp *controlplane.ControlPlane, dir string) error {
	c, err := client.New(cp.Config, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		return err
	}
	return controlplane.ApplyManifests(ctx, c, dir)
}
