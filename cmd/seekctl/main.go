// Command seekctl administers Seek: it creates tenants, mints, lists and revokes the REST API's keys,
// and moves the credentials of older releases into the credentials namespace.
//
//	seekctl tenants create team-a --max-active-jobs 500
//	seekctl keys create --tenant team-a --scopes submit,read,cancel --rate 10
//	seekctl keys list
//	seekctl keys revoke <key-id>
//	seekctl credentials migrate
//
// It talks to the cluster of the current kubeconfig (or --kubeconfig) with its user's rights: Secrets
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
