// Package tenants makes tenant namespaces: a namespace where a tenant's SeekJobs and worker pods live,
// with what every tenant gets when it is created (`seekctl tenants create`, the local cluster):
//
//   - the Pod Security labels: worker pods must meet the restricted standard (enforced);
//   - a ResourceQuota (QuotaName) that caps the tenant's unfinished SeekJobs: Kubernetes' own object
//     count quota on SeekJobs, whose ceiling the manager keeps at the cap plus the tenant's finished
//     jobs (finished jobs stay until their retention passes and must not use up the cap);
//   - the worker NetworkPolicy (NetworkPolicyName), as the Helm chart renders it into its tenant
//     template ConfigMap (TemplateName, in the release namespace): no ingress, DNS to the cluster DNS
//     only, public addresses only;
//   - the REST frontend's Role and RoleBinding (FrontendRoleName), granting its ServiceAccount
//     FrontendRules in the namespace: reading the Secrets that hold large results, and the jobs' pods
//     and their logs.
//
// Apply is idempotent: applying a tenant that exists updates it (labels added, the quota's cap and the
// policy set), which is also how tenants made before these objects existed are brought up to date.
package tenants

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/yaml"
)

const (
	// Label marks a namespace as a Seek tenant (value "true").
	Label = "seek-api.com/tenant"

	// QuotaName is the tenant's ResourceQuota on SeekJobs.
	QuotaName = "seek-jobs"
	// QuotaResource is the object count the quota limits: SeekJobs of the namespace. The apiserver
	// refuses a SeekJob create beyond it with a Forbidden "exceeded quota: seek-jobs" error.
	QuotaResource corev1.ResourceName = "count/seekjobs.seek-api.com"
	// AnnotationMaxActiveJobs on the quota is the tenant's cap on unfinished SeekJobs. The quota's hard
	// count is this plus the namespace's finished SeekJobs, kept so by the manager.
	AnnotationMaxActiveJobs = "seek-api.com/max-active-jobs"
	// DefaultMaxActiveJobs is the cap when none is given.
	DefaultMaxActiveJobs = 1000

	// NetworkPolicyName is the worker pods' NetworkPolicy in a tenant namespace.
	NetworkPolicyName = "seek-workers"
	// TemplateName is the chart's ConfigMap (in the release namespace) with the worker NetworkPolicy's
	// spec under TemplateKeyNetworkPolicy; without that key, tenants get no NetworkPolicy.
	TemplateName             = "seek-tenant-template"
	TemplateKeyNetworkPolicy = "networkPolicy"

	// FrontendServiceAccount is the REST frontend's ServiceAccount, in the release namespace.
	FrontendServiceAccount = "seek-frontend"
	// FrontendRoleName names the Role and RoleBinding granting it FrontendRules in a tenant namespace.
	FrontendRoleName = "seek-frontend"

	// PodSecurityVersion pins the restricted standard tenant namespaces enforce: the oldest Kubernetes
	// the chart supports. Warnings use the latest, so a stricter standard shows before it binds.
	PodSecurityVersion = "v1.34"
)

// PodSecurityLabels are the Pod Security admission labels of a tenant namespace.
var PodSecurityLabels = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": PodSecurityVersion,
	"pod-security.kubernetes.io/warn":            "restricted",
	"pod-security.kubernetes.io/warn-version":    "latest",
}

// FrontendRules are what the REST frontend may do in every tenant namespace, beyond its cluster-wide
// rights on SeekJobs and SeekWorkers. It reads these straight from the apiserver, never through an
// informer: no watch, and no rights outside tenant namespaces.
//   - get the Secrets holding large results (type seek-api.com/result, named <job>-result), to return
//     them inline. RBAC narrows neither to a Secret type nor to names made at run time, so the grant
//     covers every Secret of the tenant namespace, and only get (no list or watch): the frontend reads
//     a Secret only by the name a SeekJob's status.resultRef gives.
//   - find a job's pods (get a pool pod by name, list a Job mode job's pods by its seek-api.com/job-uid
//     label) and read their logs (GET /v1/jobs/{id}/logs).
var FrontendRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
	{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
}

// Tenant is what a tenant namespace gets.
type Tenant struct {
	// Name is the namespace.
	Name string
	// MaxActiveJobs caps the tenant's unfinished SeekJobs; DefaultMaxActiveJobs when zero.
	MaxActiveJobs int64
	// NetworkPolicy is the worker pods' NetworkPolicy; none when nil.
	NetworkPolicy *networkingv1.NetworkPolicySpec
	// SystemNamespace is the release namespace, where the frontend's ServiceAccount is: the tenant's
	// frontend Role and RoleBinding bind it. None are made when empty.
	SystemNamespace string
}

// WaitCounted waits until kube-controller-manager has counted the tenant's quota: until then the
// apiserver refuses every SeekJob create in the namespace ("status unknown for quota").
func WaitCounted(ctx context.Context, c client.Reader, name string, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		q := &corev1.ResourceQuota{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: name, Name: QuotaName}, q); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		want, counted := q.Spec.Hard[QuotaResource], q.Status.Hard[QuotaResource]
		_, used := q.Status.Used[QuotaResource]
		return used && counted.Cmp(want) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("the ResourceQuota %s/%s is not counted yet (is kube-controller-manager's resourcequota controller running?): %w", name, QuotaName, err)
	}
	return nil
}

// HardCount is the quota's new hard count for a new cap of limit: limit plus the finished SeekJobs the
// quota already makes room for (its hard count minus its old cap), which the manager keeps current.
func HardCount(quota *corev1.ResourceQuota, limit int64) resource.Quantity {
	finished := int64(0)
	if old, err := strconv.ParseInt(quota.Annotations[AnnotationMaxActiveJobs], 10, 64); err == nil {
		if hard, ok := quota.Spec.Hard[QuotaResource]; ok && hard.Value() > old {
			finished = hard.Value() - old
		}
	}
	return *resource.NewQuantity(limit+finished, resource.DecimalSI)
}

// LoadTemplate reads the worker NetworkPolicy from the chart's tenant template in systemNamespace: nil
// when the chart has the policy off.
func LoadTemplate(ctx context.Context, c client.Reader, systemNamespace string) (*networkingv1.NetworkPolicySpec, error) {
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: TemplateName}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("no ConfigMap %s/%s, the tenant template the Helm chart installs: is Seek installed in %s?", systemNamespace, TemplateName, systemNamespace)
		}
		return nil, fmt.Errorf("read the tenant template: %w", err)
	}
	raw, ok := cm.Data[TemplateKeyNetworkPolicy]
	if !ok {
		return nil, nil
	}
	spec := &networkingv1.NetworkPolicySpec{}
	if err := yaml.UnmarshalStrict([]byte(raw), spec); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %s: %w", systemNamespace, TemplateName, TemplateKeyNetworkPolicy, err)
	}
	return spec, nil
}

// Validate checks the tenant's name and cap.
func (t *Tenant) Validate() error {
	if errs := validation.IsDNS1123Label(t.Name); len(errs) > 0 {
		return fmt.Errorf("tenant name %q is not a namespace name: %s", t.Name, errs[0])
	}
	if errs := validation.IsDNS1123Label(t.SystemNamespace); t.SystemNamespace != "" && len(errs) > 0 {
		return fmt.Errorf("system namespace %q is not a namespace name: %s", t.SystemNamespace, errs[0])
	}
	if t.MaxActiveJobs < 0 {
		return fmt.Errorf("max active jobs must not be negative, got %d", t.MaxActiveJobs)
	}
	return nil
}

// Apply creates or updates the tenant's namespace, quota, the frontend's Role and the NetworkPolicy.
func Apply(ctx context.Context, c client.Client, t Tenant) error {
	if err := t.Validate(); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.Name}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, ns, func() error {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[Label] = "true"
		for k, v := range PodSecurityLabels {
			ns.Labels[k] = v
		}
		return nil
	}); err != nil {
		return fmt.Errorf("namespace %s: %w", t.Name, err)
	}

	limit := t.MaxActiveJobs
	if limit == 0 {
		limit = DefaultMaxActiveJobs
	}
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: QuotaName, Namespace: t.Name}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, quota, func() error {
		if quota.Labels == nil {
			quota.Labels = map[string]string{}
		}
		quota.Labels[Label] = "true"
		if quota.Annotations == nil {
			quota.Annotations = map[string]string{}
		}
		quota.Spec.Hard = corev1.ResourceList{QuotaResource: HardCount(quota, limit)}
		quota.Annotations[AnnotationMaxActiveJobs] = strconv.FormatInt(limit, 10)
		return nil
	}); err != nil {
		return fmt.Errorf("ResourceQuota %s/%s: %w", t.Name, QuotaName, err)
	}

	if t.SystemNamespace != "" {
		if err := applyFrontendRole(ctx, c, t); err != nil {
			return err
		}
	}
	if t.NetworkPolicy == nil {
		return nil
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: NetworkPolicyName, Namespace: t.Name}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, np, func() error {
		if np.Labels == nil {
			np.Labels = map[string]string{}
		}
		np.Labels[Label] = "true"
		np.Spec = *t.NetworkPolicy.DeepCopy()
		return nil
	}); err != nil {
		return fmt.Errorf("NetworkPolicy %s/%s: %w", t.Name, NetworkPolicyName, err)
	}
	return nil
}

// applyFrontendRole creates or updates the Role granting the frontend FrontendRules in the tenant
// namespace, and its RoleBinding.
func applyFrontendRole(ctx context.Context, c client.Client, t Tenant) error {
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: FrontendRoleName, Namespace: t.Name}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, role, func() error {
		if role.Labels == nil {
			role.Labels = map[string]string{}
		}
		role.Labels[Label] = "true"
		role.Rules = FrontendRules
		return nil
	}); err != nil {
		return fmt.Errorf("the frontend's Role %s/%s: %w", t.Name, FrontendRoleName, err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: FrontendRoleName, Namespace: t.Name}}
	if _, err := controllerutil.CreateOrPatch(ctx, c, binding, func() error {
		if binding.Labels == nil {
			binding.Labels = map[string]string{}
		}
		binding.Labels[Label] = "true"
		binding.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: FrontendRoleName}
		binding.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: FrontendServiceAccount, Namespace: t.SystemNamespace}}
		return nil
	}); err != nil {
		return fmt.Errorf("the frontend's RoleBinding %s/%s: %w", t.Name, FrontendRoleName, err)
	}
	return nil
}
