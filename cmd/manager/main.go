// Command manager runs the Seek operator's controllers: it turns SeekJobs into batch/v1 Jobs, keeps
// SeekWorkers' status and admission slots, delivers each job's callback events (signed webhooks with
// retries) and deletes finished SeekJobs after their retention.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/seek-api/seek-operator/internal/manager"
)

func main() {
	opts := manager.Options{}
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		os.Exit(1)
	}
	if err := manager.Run(ctrl.SetupSignalHandler(), cfg, opts); err != nil {
		ctrl.Log.Error(err, "Manager exited")
		os.Exit(1)
	}
}
