//go:build e2e

package e2e

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/tenants"
)

// TestTenantIsolation: the test's tenant was made as seekctl tenants create makes one, from the
// installed chart's template: its namespace enforces the restricted Pod Security standard, and a real
// worker pod runs there; it has its quota and the chart's worker NetworkPolicy (which this cluster's
// bridge network does not enforce). The frontend's ServiceAccount reads Secrets in the credentials
// namespace only.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := &corev1.Namespace{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: tenant}, ns); err != nil {
		t.Fatal(err)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("tenant namespace labels = %v, want restricted enforced", ns.Labels)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: tenant, Name: tenants.QuotaName}, &corev1.ResourceQuota{}); err != nil {
		t.Errorf("tenant quota: %v", err)
	}
	np := &networkingv1.NetworkPolicy{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: tenant, Name: tenants.NetworkPolicyName}, np); err != nil {
		t.Errorf("worker NetworkPolicy: %v", err)
	} else if len(np.Spec.Egress) < 2 || np.Spec.Egress[0].To[0].PodSelector == nil {
		t.Errorf("worker NetworkPolicy egress = %+v, want the chart's DNS and public rules", np.Spec.Egress)
	}

	id := submit(t, "echo", `{"message": "restricted"}`)
	if job := waitStatus(t, id, "completed", "failed"); job["status"] != "completed" {
		t.Fatalf("job in the restricted namespace = %v", job)
	}

	for ns, want := range map[string]bool{info.SystemNamespace: false, credentials.DefaultNamespace: true} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + info.SystemNamespace + ":seek-frontend",
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + info.SystemNamespace},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "secrets"},
		}}
		if err := k8s.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != want {
			t.Errorf("the frontend may list Secrets in %s: %v, want %v", ns, sar.Status.Allowed, want)
		}
	}
}
