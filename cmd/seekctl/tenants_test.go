package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/frontend"
	"github.com/seek-api/seek-operator/internal/signingkeys"
	"github.com/seek-api/seek-operator/internal/tenants"
)

func newFake(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	// Reads of a ResourceQuota see it counted, as kube-controller-manager would have it.
	counted := interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if err := c.Get(ctx, key, obj, opts...); err != nil {
			return err
		}
		if q, ok := obj.(*corev1.ResourceQuota); ok {
			q.Status.Hard, q.Status.Used = q.Spec.Hard, corev1.ResourceList{tenants.QuotaResource: resource.MustParse("0")}
		}
		return nil
	}}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithInterceptorFuncs(counted).Build()
}

// template is the tenant template ConfigMap as the chart renders it (abridged).
var template = &corev1.ConfigMap{
	ObjectMeta: metav1.ObjectMeta{Name: tenants.TemplateName, Namespace: "seek-system"},
	Data: map[string]string{tenants.TemplateKeyNetworkPolicy: `
podSelector:
  matchExpressions:
  - {key: seek-api.com/job-uid, operator: Exists}
policyTypes: [Ingress, Egress]
ingress: []
egress:
- to:
  - ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32, 10.0.0.0/8]}
`},
}

func TestTenantsCreate(t *testing.T) {
	c := newFake(t, template)
	ctx := context.Background()
	out, err := run(t, c, "tenants", "create", "team-a", "--max-active-jobs", "3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "at most 3 unfinished") || !strings.Contains(out, "NetworkPolicy seek-workers") {
		t.Errorf("output = %q", out)
	}
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: "team-a"}, ns); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": tenants.PodSecurityVersion,
		tenants.Label: "true",
	} {
		if ns.Labels[k] != v {
			t.Errorf("namespace label %s = %q, want %q", k, ns.Labels[k], v)
		}
	}
	quota := &corev1.ResourceQuota{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: tenants.QuotaName}, quota); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(corev1.ResourceList{tenants.QuotaResource: resource.MustParse("3")}, quota.Spec.Hard); diff != "" {
		t.Errorf("quota hard (-want +got):\n%s", diff)
	}
	np := &networkingv1.NetworkPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: tenants.NetworkPolicyName}, np); err != nil {
		t.Fatal(err)
	}
	if got := np.Spec.Egress[0].To[0].IPBlock.Except; !cmp.Equal(got, []string{"169.254.169.254/32", "10.0.0.0/8"}) {
		t.Errorf("NetworkPolicy egress except = %v, want the template's", got)
	}

	// Again, on the existing tenant whose manager counted 5 finished jobs: the cap moves, the finished
	// jobs stay counted, labels others set stay.
	quota.Spec.Hard[tenants.QuotaResource] = resource.MustParse("8")
	if err := c.Update(ctx, quota); err != nil {
		t.Fatal(err)
	}
	ns.Labels["team"] = "blue"
	if err := c.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, c, "tenants", "create", "team-a", "--max-active-jobs", "10"); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(quota), quota); err != nil {
		t.Fatal(err)
	}
	if hard := quota.Spec.Hard[tenants.QuotaResource]; hard.Value() != 15 || quota.Annotations[tenants.AnnotationMaxActiveJobs] != "10" {
		t.Errorf("quota after raising the cap to 10: hard %s, annotations %v; want 15 (10 + 5 finished)", hard.String(), quota.Annotations)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "team-a"}, ns); err != nil || ns.Labels["team"] != "blue" {
		t.Errorf("namespace labels = %v (%v): the tenant's own label is gone", ns.Labels, err)
	}

	// Without the chart's template: refused, unless asked for no policy.
	c = newFake(t)
	if _, err := run(t, c, "tenants", "create", "team-b"); err == nil || !strings.Contains(err.Error(), tenants.TemplateName) {
		t.Errorf("without a template: %v, want an error naming the ConfigMap", err)
	}
	if _, err := run(t, c, "tenants", "create", "team-b", "--no-network-policy"); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-b", Name: tenants.NetworkPolicyName}, np); !apierrors.IsNotFound(err) {
		t.Errorf("--no-network-policy: NetworkPolicy lookup = %v, want NotFound", err)
	}

	for _, args := range [][]string{
		{"tenants", "create"},
		{"tenants", "create", "Team_A"},
		{"tenants", "create", "team-c", "--max-active-jobs", "0"},
	} {
		if _, err := run(t, c, args...); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

func TestCredentialsMigrate(t *testing.T) {
	key, raw, err := apikeys.New(credentials.LegacyNamespace, "team-a", apikeys.Scopes, 0)
	if err != nil {
		t.Fatal(err)
	}
	signing := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: signingkeys.Name("team-a"), Namespace: credentials.LegacyNamespace, Labels: map[string]string{signingkeys.Label: "true"}},
		Data:       map[string][]byte{"current": []byte("whsec_old")},
	}
	unrelated := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.seek.v1", Namespace: credentials.LegacyNamespace}}
	c := newFake(t, key, signing, unrelated)
	if _, err := run(t, c, "credentials", "migrate"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("without the credentials namespace: %v, want an error saying it does not exist", err)
	}
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: credentials.DefaultNamespace}}); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, c, "credentials", "migrate")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2 Secrets moved") {
		t.Errorf("output = %q", out)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Api-Key", raw)
	if p, err := (&frontend.KeyStore{Reader: c, Namespace: credentials.DefaultNamespace}).Authenticate(context.Background(), req); err != nil || p.Tenant != "team-a" {
		t.Errorf("the migrated key authenticates as %+v (%v)", p, err)
	}
	left := &corev1.SecretList{}
	if err := c.List(context.Background(), left, client.InNamespace(credentials.LegacyNamespace)); err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 1 || left.Items[0].Name != unrelated.Name {
		t.Errorf("left in %s: %v, want only the unrelated Secret", credentials.LegacyNamespace, left.Items)
	}
	if out, err := run(t, c, "credentials", "migrate"); err != nil || !strings.Contains(out, "0 Secrets moved") {
		t.Errorf("second run: %q, %v", out, err)
	}
}
