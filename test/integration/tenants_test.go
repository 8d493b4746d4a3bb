package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/signingkeys"
	"github.com/seek-api/seek-operator/internal/tenants"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// newTenant makes a tenant namespace as seekctl tenants create does, with a worker NetworkPolicy like
// the chart's and the frontend's Role, and waits until kube-controller-manager has counted its quota.
func newTenant(t *testing.T, maxActive int64) string {
	t.Helper()
	ctx := context.Background()
	ns := uniqueName("tenant")
	policy := &networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: seekv1alpha1.LabelJobUID, Operator: metav1.LabelSelectorOpExists}}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
			{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"0.0.0.0/8", "10.0.0.0/8", "169.254.169.254/32"}}},
			{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"64:ff9b::/96", "fc00::/7"}}},
		}}},
	}
	if err := tenants.Apply(ctx, k8sClient, tenants.Tenant{Name: ns, MaxActiveJobs: maxActive, NetworkPolicy: policy, SystemNamespace: systemNamespace}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k8sClient.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	if err := tenants.WaitCounted(ctx, k8sClient, ns, waitTimeout); err != nil {
		t.Fatal(err)
	}
	return ns
}

// createSeekJob creates a SeekJob and returns the apiserver's error.
func createSeekJob(ns, name, worker string) error {
	return k8sClient.Create(context.Background(), testutil.MakeSeekJob(name, ns).Worker(worker).Obj())
}

func isQuotaRefusal(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota: "+tenants.QuotaName)
}

// TestTenantCapsUnfinishedJobs: a tenant's quota refuses the SeekJob beyond its cap of unfinished jobs;
// a job finishing frees a slot (finished jobs, kept for their retention, do not count), and worker pods
// are admitted in the tenant's namespace, which enforces the restricted Pod Security standard.
func TestTenantCapsUnfinishedJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newTenant(t, 2)
	w := readyWorker(t, echoWorker(t).Obj())

	// Restricted is enforced: a privileged pod is refused; the worker pods below are admitted.
	priv := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "privileged", Namespace: ns}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "example.com/x:v1", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}},
	}}
	if err := k8sClient.Create(ctx, priv); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("privileged pod in the tenant namespace: %v, want refused by PodSecurity", err)
	}

	for _, name := range []string{"a", "b"} {
		if err := createSeekJob(ns, name, w.Name); err != nil {
			t.Fatalf("job %s within the cap: %v", name, err)
		}
	}
	podA := waitForPod(t, ns, "a", 1)
	waitForPod(t, ns, "b", 1)
	if err := createSeekJob(ns, "c", w.Name); !isQuotaRefusal(err) {
		t.Fatalf("third job with two unfinished: %v, want Forbidden exceeded quota: %s", err, tenants.QuotaName)
	}

	finishPod(t, podA, 0, `{}`)
	waitForState(t, ns, "a", seekv1alpha1.JobStateCompleted)
	eventually(t, "a slot freed by the finished job", func(context.Context) (bool, error) {
		err := createSeekJob(ns, "c", w.Name)
		return err == nil, err
	})
	if err := createSeekJob(ns, "d", w.Name); !isQuotaRefusal(err) {
		t.Fatalf("job beyond the cap again (b and c unfinished, a finished): %v, want refused", err)
	}

	// The finished job deleted (its retention passed): the ceiling comes down with it, the cap stays 2.
	if err := k8sClient.Delete(ctx, testutil.MakeSeekJob("a", ns).Obj()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the quota's hard count back at the cap", func(ctx context.Context) (bool, error) {
		q := &corev1.ResourceQuota{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: tenants.QuotaName}, q); err != nil {
			return false, err
		}
		hard := q.Spec.Hard[tenants.QuotaResource]
		return hard.Value() == 2, fmt.Errorf("hard %s", hard.String())
	})
	// The apiserver's quota admission reads quotas from its own informer, a moment behind the write
	// seen above: a dry run shows when it has caught up, without storing a job beyond the cap.
	eventually(t, "quota admission at the lowered hard count", func(ctx context.Context) (bool, error) {
		err := k8sClient.Create(ctx, testutil.MakeSeekJob("d", ns).Worker(w.Name).Obj(), client.DryRunAll)
		return isQuotaRefusal(err), err
	})
	if err := createSeekJob(ns, "d", w.Name); !isQuotaRefusal(err) {
		t.Errorf("job beyond the cap after the finished one was deleted: %v, want refused", err)
	}
}

// TestCredentialsMigration: API key and signing Secrets where releases before the credentials
// namespace kept them are moved there (seekctl credentials migrate), and the keys keep working through
// the frontend, which has no Secret rights in the old place.
func TestCredentialsMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	legacy := newNamespace(t)
	tenant := newNamespace(t)
	keySecret, key, err := apikeys.New(legacy, tenant, apikeys.Scopes, 1000)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, keySecret)
	signing, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: signingkeys.Name(tenant), Namespace: legacy, Labels: map[string]string{signingkeys.Label: "true"}},
		Type:       "seek-api.com/webhook-signing-secret",
		Data:       map[string][]byte{"current": []byte(signing), "tenant": []byte(tenant)},
	})
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.seek.v1", Namespace: legacy}}
	mustCreate(t, other)

	moved, err := credentials.Migrate(ctx, k8sClient, legacy, credentialsNamespace)
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 2 {
		t.Errorf("moved %+v, want the key and the signing secret", moved)
	}
	left := &corev1.SecretList{}
	if err := k8sClient.List(ctx, left, client.InNamespace(legacy)); err != nil {
		t.Fatal(err)
	}
	if len(left.Items) != 1 || left.Items[0].Name != other.Name {
		t.Errorf("left in the old namespace: %d Secrets, want only the unrelated one", len(left.Items))
	}
	if again, err := credentials.Migrate(ctx, k8sClient, legacy, credentialsNamespace); err != nil || len(again) != 0 {
		t.Errorf("second run moved %+v (%v), want nothing", again, err)
	}

	api := &apiClient{t: t, base: startFrontend(t), key: key}
	eventually(t, "the migrated key accepted", func(context.Context) (bool, error) {
		code, body := api.call("GET", "/v1/jobs", "")
		return code == http.StatusOK, fmt.Errorf("%d %v", code, body)
	})
	if _, got := api.call("GET", "/v1/webhooks/secret", ""); got["secret"] != signing {
		t.Errorf("webhook secret after the migration = %v, want the one from before", got["secret"])
	}
}
