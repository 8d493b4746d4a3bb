// Command seekctl administers Seek: it mints, lists and revokes the REST API's keys.
//
//	seekctl keys create --tenant team-a --scopes submit,read,cancel --rate 10
//	seekctl keys list
//	seekctl keys revoke <key-id>
//
// It talks to the cluster of the current kubeconfig (or --kubeconfig) and needs rights on Secrets in the
// system namespace.
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
		return client.New(cfg, client.Options{}) // Secrets only: client-go's scheme

	})
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "seekctl:", err)
		os.Exit(1)
	}
}
