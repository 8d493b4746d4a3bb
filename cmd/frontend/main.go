// Command frontend serves the Seek REST API: it authenticates API keys, maps each key to its tenant
// namespace and translates requests into SeekJob custom resources. It is stateless; run as many
// replicas as the load needs.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/seek-api/seek-operator/internal/frontend"
)

func main() {
	opts := frontend.Options{}
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "frontend: %v\n", err)
		os.Exit(1)
	}
	if err := frontend.Run(ctrl.SetupSignalHandler(), cfg, opts); err != nil {
		ctrl.Log.Error(err, "Frontend exited")
		os.Exit(1)
	}
}
