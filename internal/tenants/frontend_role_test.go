package tenants

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// TestApplyFrontendRoleRestoresEdits: a tenant gets the frontend's Role bound to the
// frontend's ServiceAccount of the given namespace, again on a second Apply (brought back if edited);
// none without a frontend namespace.
func TestApplyFrontendRoleRestoresEdits(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().Build()
	if err := Apply(ctx, c, Tenant{Name: "team-a", SystemNamespace: "seek-system"}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: FrontendRoleName}, role); err != nil {
		t.Fatal(err)
	}
	role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}})
	if err := c.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := Apply(ctx, c, Tenant{Name: "team-a", SystemNamespace: "seek-system"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: FrontendRoleName}, role); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(FrontendRules, role.Rules); diff != "" {
		t.Errorf("Role rules (-want +got):\n%s", diff)
	}
	binding := &rbacv1.RoleBinding{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: FrontendRoleName}, binding); err != nil {
		t.Fatal(err)
	}
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "seek-frontend", Namespace: "seek-system"}}
	if diff := cmp.Diff(wantSubjects, binding.Subjects); diff != "" || binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != FrontendRoleName {
		t.Errorf("RoleBinding %+v; subjects (-want +got):\n%s", binding.RoleRef, diff)
	}

	if err := Apply(ctx, c, Tenant{Name: "team-b"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-b", Name: FrontendRoleName}, &rbacv1.Role{}); !apierrors.IsNotFound(err) {
		t.Errorf("Role without a frontend namespace: %v, want none", err)
	}
	if err := Apply(ctx, c, Tenant{Name: "team-c", SystemNamespace: "Not_A_Namespace"}); err == nil {
		t.Error("a frontend namespace that is no namespace name was accepted")
	}
}
