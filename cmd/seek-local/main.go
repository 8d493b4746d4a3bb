// Command seek-local runs Seek on a single-node Kubernetes cluster on this machine, built from
// upstream components, with no registry and no existing cluster (internal/localcluster):
//
//	seek-local up       # start (or repair) the cluster, build and import the images, helm upgrade --install
//	seek-local status   # what runs; exits non-zero unless everything is up
//	seek-local env      # shell exports: SEEK_API_URL, SEEK_API_KEY, KUBECONFIG
//	seek-local down     # stop it and undo every change to the host
//
// `make run` builds the Kubernetes binaries and helm first and calls up; `make down` calls down.
// Needs root, cgroups and apt-get (for containerd, runc and the CNI plugins).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/seek-api/seek-operator/internal/images"
	"github.com/seek-api/seek-operator/internal/localcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "seek-local:", err)
		os.Exit(1)
	}
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	o := localcluster.Options{Out: stderr}
	root := &cobra.Command{
		Use:           "seek-local",
		Short:         "Run Seek on a single-node Kubernetes cluster on this machine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&o.Dir, "dir", localcluster.DefaultDir(), "directory of the cluster's state, logs and certificates")
	up := &cobra.Command{
		Use:   "up",
		Short: "Start the cluster (or the parts that are down), build and import the images, install Seek with Helm",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Assets == "" || o.Helm == "" {
				return fmt.Errorf("--assets and --helm are required (make run passes them)")
			}
			info, err := localcluster.Up(cmd.Context(), o)
			if err != nil {
				return err
			}
			printInfo(stdout, info)
			return nil
		},
	}
	up.Flags().StringVar(&o.Assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory of the Kubernetes binaries (hack/k8s-binaries.sh prints it)")
	up.Flags().StringVar(&o.Helm, "helm", os.Getenv("HELM"), "helm binary (hack/helm.sh prints it)")
	up.Flags().StringVar(&o.ModuleDir, "module", ".", "root of the seek-operator repository: the chart and the images' sources")
	up.Flags().StringVar(&o.Tenant, "tenant", "demo", "namespace of the demo tenant")
	up.Flags().StringVar(&o.CACertFile, "ca-certs", images.SystemCACertFile(), "PEM bundle of trusted CAs to put into the images")
	return withCommands(root,
		up,
		&cobra.Command{
			Use:   "down",
			Short: "Stop the cluster and undo every change it made to the host (binaries and images stay cached)",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return localcluster.Down(cmd.Context(), o) },
		},
		&cobra.Command{
			Use:   "status",
			Short: "Show what runs; exit non-zero unless everything is up",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return localcluster.Status(cmd.Context(), o, stdout) },
		},
		&cobra.Command{
			Use:   "env",
			Short: "Print shell exports for the running cluster: eval \"$(seek-local env)\"",
			Args:  cobra.NoArgs,
			RunE: func(_ *cobra.Command, _ []string) error {
				info, err := localcluster.ReadInfo(o.Dir)
				if err != nil {
					return fmt.Errorf("no cluster in %s (run up): %w", o.Dir, err)
				}
				fmt.Fprintf(stdout, "export SEEK_API_URL=%s\nexport SEEK_API_KEY=%s\nexport KUBECONFIG=%s\n", info.APIURL, info.APIKey, info.Kubeconfig)
				if info.Kubectl != "" {
					fmt.Fprintf(stdout, "export PATH=%s:$PATH\n", filepath.Dir(info.Kubectl))
				}
				fmt.Fprintf(stdout, "export SEEK_CALLBACK_HOST=%s\n", info.NodeIP)
				return nil
			},
		},
	)
}

func withCommands(root *cobra.Command, cmds ...*cobra.Command) *cobra.Command {
	root.AddCommand(cmds...)
	return root
}

func printInfo(w io.Writer, info *localcluster.Info) {
	fmt.Fprintf(w, `
Seek runs on a local single-node Kubernetes cluster.

  REST API      %s
  Tenant        %s
  API key       %s
  Kubeconfig    %s
  Images        %s/<component>:%s
  Webhooks      receivers on this machine are reachable from the cluster at http://%s:<port>/...

  eval "$(go run ./cmd/seek-local env)"    # SEEK_API_URL, SEEK_API_KEY, KUBECONFIG, kubectl on PATH
  curl -s -X POST $SEEK_API_URL/v1/workers/email-validator/jobs -H "X-Api-Key: $SEEK_API_KEY" \
       -d '{"email": "hello@example.com", "check_mx": false}'
  make status / make down
`, info.APIURL, info.Tenant, info.APIKey, info.Kubeconfig, info.ImageRegistry, info.ImageTag, info.NodeIP)
}
