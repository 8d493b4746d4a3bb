// Command seekctl runs jobs on Seek through its REST API, and administers Seek: it creates tenants,
// mints, lists and revokes the REST API's keys, and moves the credentials of older releases into the
// credentials namespace.
//
// The job commands (package jobcmd) need only the API's URL and a key (--url and --api-key,
// SEEK_API_URL and SEEK_API_KEY, or $XDG_CONFIG_HOME/seek/config.yaml), never a kubeconfig:
//
//	seekctl submit email-validator -d '{"email": "hello@example.com"}' --wait
//	seekctl list --status failed
//	seekctl batch email-validator -f inputs.jsonl -o results.jsonl
//
// The admin commands:
//
//	seekctl tenants create team-a --max-active-jobs 500
//	seekctl keys create --tenant team-a --scopes submit,read,cancel --rate 10
//	seekctl keys list
//	seekctl keys revoke <key-id>
//	seekctl credentials migrate
//
// They talk to the cluster of the current kubeconfig (or --kubeconfig) with its user's rights: Secrets
// in the credentials namespace for keys; namespaces, resource quotas and network policies for tenants.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func main() {
	cmd := newRootCommand(func() (client.Client, error) {
		cfg, err := ctrl.GetConfig()
		if err != nil {
			return nil, err
		}
		return client.New(cfg, client.Options{}) // built-in types only: client-go's scheme
	})
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "seekctl:", err)
		os.Exit(1)
	}
}
