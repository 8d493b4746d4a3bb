package tenants

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

const (
	// FrontendServiceAccount is the REST frontend's ServiceAccount, in the chart's release namespace.
	FrontendServiceAccount = "seek-frontend"
	// FrontendRoleName names the Role and RoleBinding that give the frontend what it needs in a tenant
	// namespace, and only there.
	FrontendRoleName = "seek-frontend"
)

// frontendTenantRules are what the REST frontend may do in a tenant namespace: find a job's pods (get
// a pool pod by name, list a Job mode job's pods by its seek-api.com/job-uid label) and read their
// logs (GET /v1/jobs/{id}/logs). It reads them straight from the apiserver, never through an
// informer: no watch, and no rights on pods outside tenant namespaces.
var frontendTenantRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
	{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
}

// applyFrontendRole creates or updates the tenant's Role for the frontend and binds it to the
// frontend's ServiceAccount in frontendNamespace.
func applyFrontendRole(ctx context.Context, c client.Client, tenant, frontendNamespace string) error {
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: FrontendRoleName, Namespace: tenant}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, role, func() error {
		if role.Labels == nil {
			role.Labels = map[string]string{}
		}
		role.Labels[Label] = "true"
		role.Rules = frontendTenantRules
		return nil
	}); err != nil {
		return fmt.Errorf("frontend Role %s/%s: %w", tenant, FrontendRoleName, err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: FrontendRoleName, Namespace: tenant}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, binding, func() error {
		if binding.Labels == nil {
			binding.Labels = map[string]string{}
		}
		binding.Labels[Label] = "true"
		// roleRef cannot change once set; it is the same every time.
		binding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: FrontendRoleName}
		binding.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: FrontendServiceAccount, Namespace: frontendNamespace}}
		return nil
	}); err != nil {
		return fmt.Errorf("frontend RoleBinding %s/%s: %w", tenant, FrontendRoleName, err)
	}
	return nil
}
