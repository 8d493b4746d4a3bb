package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Status writes the state of each part of the cluster to w and returns an error unless all of it
// is up.
func Status(ctx context.Context, o Options, w io.Writer) error {
	c := newCluster(o)
	if _, err := os.Stat(c.dir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(w, "No cluster in %s (run up)\n", c.dir)
		return errors.New("down")
	}
	var down []string
	for _, d := range Daemons(ctx, o) {
		switch {
		case d.Healthy:
			fmt.Fprintf(w, "%-24s running (pid %d)\n", d.Name, d.PID)
		case d.PID != 0:
			fmt.Fprintf(w, "%-24s running (pid %d), not healthy\n", d.Name, d.PID)
			down = append(down, d.Name)
		default:
			fmt.Fprintf(w, "%-24s stopped\n", d.Name)
			down = append(down, d.Name)
		}
	}
	info, infoErr := ReadInfo(c.dir)
	admin := c.path("pki", "admin.kubeconfig")
	k8s, err := newClient(admin)
	switch {
	case err != nil || !apiReady(ctx, admin):
		down = append(down, "API")
	case !nodeReady(ctx, k8s):
		fmt.Fprintf(w, "%-24s not ready\n", "node "+NodeName)
		down = append(down, "node")
	default:
		fmt.Fprintf(w, "%-24s ready\n", "node "+NodeName)
		deps := &appsv1.DeploymentList{}
		if err := k8s.List(ctx, deps, client.InNamespace(SystemNamespace)); err == nil {
			for _, d := range deps.Items {
				fmt.Fprintf(w, "%-24s %d/%d available\n", "deployment "+d.Name, d.Status.AvailableReplicas, d.Status.Replicas)
				if d.Status.AvailableReplicas == 0 {
					down = append(down, d.Name)
				}
			}
		}
	}
	if infoErr == nil && httpOK(info.APIURL+"/readyz") {
		fmt.Fprintf(w, "%-24s %s ready\n", "REST API", info.APIURL)
	} else {
		fmt.Fprintf(w, "%-24s not ready\n", "REST API")
		down = append(down, "REST API")
	}
	if len(down) > 0 {
		return fmt.Errorf("not up: %v (run up)", down)
	}
	return nil
}
