package tenants

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestLoadTemplate(t *testing.T) {
	cm := func(data map[string]string) client.Object {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: TemplateName, Namespace: "seek-system"}, Data: data}
	}
	cases := []struct {
		name    string
		objs    []client.Object
		policy  bool
		wantErr string
	}{
		{name: "no template", wantErr: "is Seek installed in seek-system"},
		{name: "policy off", objs: []client.Object{cm(nil)}},
		{name: "policy", objs: []client.Object{cm(map[string]string{TemplateKeyNetworkPolicy: "policyTypes: [Egress]\negress: []\n"})}, policy: true},
		{name: "unknown field", objs: []client.Object{cm(map[string]string{TemplateKeyNetworkPolicy: "egres: []\n"})}, wantErr: "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := LoadTemplate(context.Background(), fake.NewClientBuilder().WithObjects(tc.objs...).Build(), "seek-system")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || (spec != nil) != tc.policy {
				t.Fatalf("LoadTemplate = %+v, %v; want a policy: %v", spec, err, tc.policy)
			}
		})
	}
}

func TestHardCount(t *testing.T) {
	quota := func(limit string, hard string) *corev1.ResourceQuota {
		q := &corev1.ResourceQuota{}
		if limit != "" {
			q.Annotations = map[string]string{AnnotationMaxActiveJobs: limit}
		}
		if hard != "" {
			q.Spec.Hard = corev1.ResourceList{QuotaResource: resource.MustParse(hard)}
		}
		return q
	}
	cases := []struct {
		name  string
		quota *corev1.ResourceQuota
		limit int64
		want  int64
	}{
		{"new quota", quota("", ""), 10, 10},
		{"cap raised, 5 finished counted", quota("10", "15"), 20, 25},
		{"cap lowered", quota("10", "15"), 4, 9},
		{"hard below the old cap", quota("10", "3"), 4, 4},
		{"someone else's quota", quota("", "100"), 4, 4},
	}
	for _, tc := range cases {
		if got := HardCount(tc.quota, tc.limit); got.Value() != tc.want {
			t.Errorf("%s: HardCount = %s, want %d", tc.name, got.String(), tc.want)
		}
	}
}

func TestApplyFrontendRole(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().Build()
	for range 2 { // idempotent
		if err := Apply(ctx, c, Tenant{Name: "acme", SystemNamespace: "seek-system"}); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	role := &rbacv1.Role{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "acme", Name: FrontendRoleName}, role); err != nil {
		t.Fatalf("get the Role: %v", err)
	}
	if diff := cmp.Diff(FrontendRules, role.Rules); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	binding := &rbacv1.RoleBinding{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "acme", Name: FrontendRoleName}, binding); err != nil {
		t.Fatalf("get the RoleBinding: %v", err)
	}
	want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: FrontendServiceAccount, Namespace: "seek-system"}}
	if diff := cmp.Diff(want, binding.Subjects); diff != "" || binding.RoleRef.Name != FrontendRoleName || binding.RoleRef.Kind != "Role" {
		t.Errorf("binding %+v, subjects (-want +got):\n%s", binding.RoleRef, diff)
	}

	// Without the system namespace (seek-dev), no Role.
	if err := Apply(ctx, c, Tenant{Name: "dev"}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "dev", Name: FrontendRoleName}, &rbacv1.Role{}); !apierrors.IsNotFound(err) {
		t.Errorf("get the Role of a tenant without a system namespace: %v, want NotFound", err)
	}
}
