// Package chart tests the Helm chart (charts/seek-operator): helm lint, helm template with several value
// sets, agreement with the kustomize config in config/, and a server-side dry run of everything it
// renders against a real kube-apiserver. It runs the helm binary named by $HELM (make test builds it
// with hack/helm.sh).
package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/tenants"
)

const (
	namespace = "seek-system"
	// kubeVersion is the version helm renders for (the one the control plane runs).
	kubeVersion = "1.37.2"
)

func helm(t *testing.T) string {
	t.Helper()
	h := os.Getenv("HELM")
	if h == "" {
		t.Fatal("HELM is not set: run the chart tests with `make test`, which builds helm (hack/helm.sh), or set HELM to a helm v3 binary")
	}
	return h
}

func chartDir(t *testing.T) string {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "charts", "seek-operator")
}

// render runs helm template with --set values and returns the objects, or the error output.
func render(t *testing.T, sets ...string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	args := []string{"template", "seek", chartDir(t), "--namespace", namespace, "--kube-version", kubeVersion}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(helm(t), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(out), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs, nil
}

func mustRender(t *testing.T, sets ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render(t, sets...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func count(objs []*unstructured.Unstructured, kind string) int {
	n := 0
	for _, o := range objs {
		if o.GetKind() == kind {
			n++
		}
	}
	return n
}

func args(t *testing.T, objs []*unstructured.Unstructured, deployment string) []string {
	t.Helper()
	d := find(objs, "Deployment", deployment)
	if d == nil {
		t.Fatalf("no Deployment %s", deployment)
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	raw, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	return raw
}

// configObject reads one object from a file of config/.
func configObject(t *testing.T, file, kind, name string) *unstructured.Unstructured {
	t.Helper()
	root, _ := controlplane.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "config", file))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err == nil && u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("no %s %s in config/%s", kind, name, file)
	return nil
}

func TestLint(t *testing.T) {
	for _, values := range [][]string{nil, {"samples.enabled=true", "workerNetworkPolicy.namespaces={team-a}", "workerNetworkPolicy.clusterCIDRs={10.96.0.0/12}"}} {
		args := []string{"lint", "--strict", "--kube-version", kubeVersion, chartDir(t)}
		for _, s := range values {
			args = append(args, "--set", s)
		}
		out, err := exec.Command(helm(t), args...).CombinedOutput()
		if err != nil {
			t.Errorf("helm %v: %v\n%s", args, err, out)
		}
	}
}

func TestDefaults(t *testing.T) {
	objs := mustRender(t)
	for _, crd := range []string{"seekjobs.seek-api.com", "seekworkers.seek-api.com"} {
		o := find(objs, "CustomResourceDefinition", crd)
		if o == nil {
			t.Fatalf("no CRD %s", crd)
		}
		if o.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s is not kept on uninstall: %v", crd, o.GetAnnotations())
		}
	}
	if find(objs, "ValidatingAdmissionPolicy", "seek-seekjob-input-immutable") == nil {
		t.Error("no input-immutability policy")
	}
	// The generated RBAC and the frontend's are the same as in config/.
	for _, c := range []struct{ file, kind, name string }{
		{"rbac/role.yaml", "ClusterRole", "seek-manager-role"},
		{"rbac/role.yaml", "Role", "seek-manager-role"},
		{"rbac/frontend_rbac.yaml", "ClusterRole", "seek-frontend-role"},
		{"rbac/frontend_rbac.yaml", "Role", "seek-frontend-keys"},
	} {
		got := find(objs, c.kind, c.name)
		if got == nil {
			t.Errorf("no %s %s", c.kind, c.name)
			continue
		}
		if diff := cmp.Diff(configObject(t, c.file, c.kind, c.name).Object["rules"], got.Object["rules"]); diff != "" {
			t.Errorf("%s %s rules differ from config/%s (-config +chart):\n%s", c.kind, c.name, c.file, diff)
		}
	}
	for _, d := range []string{"seek-operator-manager", "seek-frontend"} {
		dep := find(objs, "Deployment", d)
		if dep == nil {
			t.Fatalf("no Deployment %s", d)
		}
		pod, _, _ := unstructured.NestedMap(dep.Object, "spec", "template", "spec", "securityContext")
		if pod["runAsNonRoot"] != true {
			t.Errorf("%s pod securityContext = %v", d, pod)
		}
		containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
		c := containers[0].(map[string]any)
		sc, _ := c["securityContext"].(map[string]any)
		if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
			t.Errorf("%s container securityContext = %v", d, sc)
		}
		if img, _ := c["image"].(string); !strings.HasSuffix(img, ":v0.1.0") {
			t.Errorf("%s image = %s, want the chart's appVersion tag", d, img)
		}
	}
	mgr := args(t, objs, "seek-operator-manager")
	for _, want := range []string{"--leader-elect", "--leader-election-identity=$(POD_NAME)_$(POD_UID)", "--credentials-namespace=" + credentials.DefaultNamespace, "--callback-timeout=15s", "--default-queue-timeout=1h"} {
		if !slices.Contains(mgr, want) {
			t.Errorf("manager args %v lack %s", mgr, want)
		}
	}
	if slices.ContainsFunc(mgr, func(a string) bool { return strings.HasPrefix(a, "--callback-allowed") }) {
		t.Errorf("manager args %v allow private callbacks by default", mgr)
	}
	if n := count(objs, "NetworkPolicy") + count(objs, "SeekWorker"); n != 0 {
		t.Errorf("%d NetworkPolicies and SeekWorkers rendered by default, want none", n)
	}
	if !slices.Contains(args(t, objs, "seek-frontend"), "--credentials-namespace="+credentials.DefaultNamespace) {
		t.Errorf("frontend args %v lack the credentials namespace", args(t, objs, "seek-frontend"))
	}
}

// TestSecretRights: the manager and the frontend have Secret rights in the credentials namespace
// (which the chart creates and keeps on uninstall), none in the release namespace, where Helm keeps
// its release Secrets; cluster-wide, only the manager's get, create and update of a named Secret (the
// large results it stores).
func TestSecretRights(t *testing.T) {
	objs := mustRender(t)
	ns := find(objs, "Namespace", credentials.DefaultNamespace)
	if ns == nil {
		t.Fatalf("no Namespace %s", credentials.DefaultNamespace)
	}
	if ns.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("the credentials namespace is not kept on uninstall: %v", ns.GetAnnotations())
	}
	secretRoles := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Role" && o.GetKind() != "ClusterRole" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, r := range rules {
			res, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
			if slices.Contains(res, "secrets") || slices.Contains(res, "*") {
				secretRoles[o.GetKind()+" "+o.GetName()] = o.GetNamespace()
			}
		}
	}
	want := map[string]string{
		"Role seek-frontend-keys": credentials.DefaultNamespace,
		"Role seek-manager-role":  credentials.DefaultNamespace,
		// Large results' Secrets, in the namespace of any SeekJob: by name only (below).
		"ClusterRole seek-manager-role": "",
	}
	if diff := cmp.Diff(want, secretRoles); diff != "" {
		t.Errorf("roles with Secret rules and their namespaces (-want +got):\n%s", diff)
	}
	// Cluster-wide, the manager may get, create and update a Secret it names (a job's <name>-result),
	// never list, watch or delete one: it cannot enumerate the cluster's Secrets.
	for _, r := range rulesOf(find(objs, "ClusterRole", "seek-manager-role")) {
		if res, _, _ := unstructured.NestedStringSlice(r, "resources"); slices.Contains(res, "secrets") {
			verbs, _, _ := unstructured.NestedStringSlice(r, "verbs")
			if diff := cmp.Diff([]string{"create", "get", "update"}, slices.Sorted(slices.Values(verbs))); diff != "" {
				t.Errorf("the manager's cluster-wide Secret verbs (-want +got):\n%s", diff)
			}
		}
	}
	for _, b := range []string{"seek-frontend-keys", "seek-manager-rolebinding"} {
		rb := find(objs, "RoleBinding", b)
		if rb == nil || rb.GetNamespace() != credentials.DefaultNamespace {
			t.Errorf("RoleBinding %s: %v, want it in %s", b, rb, credentials.DefaultNamespace)
		}
	}

	t.Run("configured", func(t *testing.T) {
		objs := mustRender(t, "credentials.namespace=keys", "credentials.createNamespace=false")
		if count(objs, "Namespace") != 0 {
			t.Error("a Namespace rendered with credentials.createNamespace=false")
		}
		if r := find(objs, "Role", "seek-frontend-keys"); r == nil || r.GetNamespace() != "keys" {
			t.Errorf("frontend Role: %v", r)
		}
		if !slices.Contains(args(t, objs, "seek-operator-manager"), "--credentials-namespace=keys") {
			t.Errorf("manager args = %v", args(t, objs, "seek-operator-manager"))
		}
	})
	t.Run("the release namespace is refused", func(t *testing.T) {
		if _, err := render(t, "credentials.namespace="+namespace); err == nil || !strings.Contains(err.Error(), "must differ") {
			t.Errorf("error = %v", err)
		}
	})
}

// workerPolicy reads the worker NetworkPolicy from the tenant template the chart renders, as seekctl
// tenants create does.
func workerPolicy(t *testing.T, objs []*unstructured.Unstructured) *networkingv1.NetworkPolicySpec {
	t.Helper()
	u := find(objs, "ConfigMap", tenants.TemplateName)
	if u == nil {
		t.Fatalf("no ConfigMap %s", tenants.TemplateName)
	}
	cm := &corev1.ConfigMap{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, cm); err != nil {
		t.Fatal(err)
	}
	spec, err := tenants.LoadTemplate(context.Background(), fake.NewClientBuilder().WithObjects(cm).Build(), namespace)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestWorkerNetworkPolicy: on by default; no ingress; DNS only to the cluster DNS; public addresses
// except the metadata, NAT64, "this network", private and configured cluster ranges.
func TestWorkerNetworkPolicy(t *testing.T) {
	spec := workerPolicy(t, mustRender(t))
	if spec == nil {
		t.Fatal("no worker NetworkPolicy by default")
	}
	if len(spec.Ingress) != 0 || !slices.Contains(spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("ingress = %v, policyTypes %v: want none allowed", spec.Ingress, spec.PolicyTypes)
	}
	// Every worker pod: a Job mode job's pods and the pool pods of pooled workers, which have no job uid.
	wantPods := metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "seek-api.com/worker", Operator: metav1.LabelSelectorOpExists}}}
	if diff := cmp.Diff(wantPods, spec.PodSelector); diff != "" {
		t.Errorf("podSelector (-want +got):\n%s", diff)
	}
	if len(spec.Egress) != 3 {
		t.Fatalf("egress = %+v, want the DNS, the public and the dispatch rules", spec.Egress)
	}
	dns := spec.Egress[0]
	wantDNS := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
	}
	if len(dns.To) != 1 || !cmp.Equal(wantDNS, dns.To[0]) || len(dns.Ports) != 2 || dns.Ports[0].Port.IntValue() != 53 {
		t.Errorf("DNS rule = %+v, want port 53 to the kube-dns pods of kube-system only", dns)
	}
	public := spec.Egress[1]
	if len(public.Ports) != 0 || len(public.To) != 2 || public.To[0].IPBlock == nil || public.To[1].IPBlock == nil {
		t.Fatalf("public rule = %+v, want two ipBlocks, any port", public)
	}
	v4, v6 := public.To[0].IPBlock, public.To[1].IPBlock
	for _, want := range []string{"0.0.0.0/8", "10.0.0.0/8", "169.254.169.254/32", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"} {
		if v4.CIDR != "0.0.0.0/0" || !slices.Contains(v4.Except, want) {
			t.Errorf("IPv4 block %+v does not deny %s", v4, want)
		}
	}
	for _, want := range []string{"64:ff9b::/96", "fd00:ec2::254/128", "fc00::/7", "fe80::/10", "::1/128"} {
		if v6.CIDR != "::/0" || !slices.Contains(v6.Except, want) {
			t.Errorf("IPv6 block %+v does not deny %s", v6, want)
		}
	}
	// The one cluster address: the dispatch port of the manager pods in the release namespace.
	dispatch := spec.Egress[2]
	wantManager := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": namespace}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "seek-operator", "app.kubernetes.io/component": "manager"}},
	}
	if len(dispatch.To) != 1 || !cmp.Equal(wantManager, dispatch.To[0]) || len(dispatch.Ports) != 1 ||
		dispatch.Ports[0].Port.IntValue() != 8090 || *dispatch.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("dispatch rule = %+v, want TCP 8090 to the manager pods of %s only", dispatch, namespace)
	}
	// The manager pods the rule selects are the chart's.
	dep := find(mustRender(t), "Deployment", "seek-operator-manager")
	podLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	if sel, err := metav1.LabelSelectorAsSelector(wantManager.PodSelector); err != nil || !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("the manager's pod labels %v do not match the dispatch rule's selector (%v)", podLabels, err)
	}

	t.Run("cluster ranges and extra rules", func(t *testing.T) {
		objs := mustRender(t, "workerNetworkPolicy.clusterCIDRs={198.18.0.0/15,2001:db8:42::/56}",
			"workerNetworkPolicy.namespaces={team-a}", "workerNetworkPolicy.extraEgress[0].ports[0].port=5432")
		spec := workerPolicy(t, objs)
		if v4 := spec.Egress[1].To[0].IPBlock; !slices.Contains(v4.Except, "198.18.0.0/15") || slices.Contains(v4.Except, "2001:db8:42::/56") {
			t.Errorf("IPv4 except = %v", v4.Except)
		}
		if v6 := spec.Egress[1].To[1].IPBlock; !slices.Contains(v6.Except, "2001:db8:42::/56") {
			t.Errorf("IPv6 except = %v", v6.Except)
		}
		if len(spec.Egress) != 4 || spec.Egress[3].Ports[0].Port.IntValue() != 5432 {
			t.Errorf("egress = %+v, want the extra rule last", spec.Egress)
		}
		// The policy rendered into a listed namespace is the template's.
		np := find(objs, "NetworkPolicy", tenants.NetworkPolicyName)
		if np == nil || np.GetNamespace() != "team-a" {
			t.Fatalf("NetworkPolicy in team-a: %v", np)
		}
		rendered := &networkingv1.NetworkPolicy{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(np.Object, rendered); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(*spec, rendered.Spec); diff != "" {
			t.Errorf("the namespace's policy differs from the template's (-template +rendered):\n%s", diff)
		}
	})
	t.Run("config/ has the same template", func(t *testing.T) {
		u := configObject(t, "tenants/tenant_template.yaml", "ConfigMap", tenants.TemplateName)
		if diff := cmp.Diff(spec, workerPolicy(t, []*unstructured.Unstructured{u})); diff != "" {
			t.Errorf("config/tenants differs from the chart's default (-chart +config):\n%s", diff)
		}
	})
	t.Run("off", func(t *testing.T) {
		objs := mustRender(t, "workerNetworkPolicy.enabled=false", "workerNetworkPolicy.namespaces={team-a}")
		if count(objs, "NetworkPolicy") != 0 || workerPolicy(t, objs) != nil {
			t.Error("a worker NetworkPolicy with workerNetworkPolicy.enabled=false")
		}
	})
}

func TestValues(t *testing.T) {
	t.Run("no CRDs", func(t *testing.T) {
		objs := mustRender(t, "crds.install=false")
		if n := count(objs, "CustomResourceDefinition") + count(objs, "ValidatingAdmissionPolicy"); n != 0 {
			t.Errorf("%d CRDs and policies rendered", n)
		}
	})
	t.Run("CRDs not kept", func(t *testing.T) {
		o := find(mustRender(t, "crds.keep=false"), "CustomResourceDefinition", "seekjobs.seek-api.com")
		if _, kept := o.GetAnnotations()["helm.sh/resource-policy"]; kept {
			t.Errorf("annotations = %v", o.GetAnnotations())
		}
	})
	t.Run("latest is refused", func(t *testing.T) {
		if _, err := render(t, "image.tag=latest"); err == nil || !strings.Contains(err.Error(), "must not be latest") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("callback allowlist reaches both", func(t *testing.T) {
		objs := mustRender(t, "callbacks.allowedCIDRs={10.0.0.0/8,192.168.0.0/16}", "callbacks.anyPort=true")
		for _, d := range []string{"seek-operator-manager", "seek-frontend"} {
			a := args(t, objs, d)
			if !slices.Contains(a, "--callback-allowed-cidrs=10.0.0.0/8,192.168.0.0/16") || !slices.Contains(a, "--callback-any-port") {
				t.Errorf("%s args = %v", d, a)
			}
		}
	})
	t.Run("frontend off", func(t *testing.T) {
		objs := mustRender(t, "frontend.enabled=false")
		if find(objs, "Deployment", "seek-frontend") != nil || find(objs, "ClusterRole", "seek-frontend-role") != nil {
			t.Error("frontend rendered")
		}
	})
	t.Run("local images", func(t *testing.T) {
		objs := mustRender(t, "image.registry=seek.local/seek-operator", "image.repositoryPrefix=", "image.tag=dev", "samples.enabled=true")
		dep := find(objs, "Deployment", "seek-operator-manager")
		containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
		if img := containers[0].(map[string]any)["image"]; img != "seek.local/seek-operator/manager:dev" {
			t.Errorf("manager image = %v", img)
		}
		w := find(objs, "SeekWorker", "echo")
		if img, _, _ := unstructured.NestedString(w.Object, "spec", "image"); img != "seek.local/seek-operator/worker-echo:dev" {
			t.Errorf("echo worker image = %v", img)
		}
	})
	t.Run("worker network policy per tenant namespace", func(t *testing.T) {
		objs := mustRender(t, "workerNetworkPolicy.namespaces={team-a,team-b}")
		var got []string
		for _, o := range objs {
			if o.GetKind() == "NetworkPolicy" {
				got = append(got, o.GetNamespace())
			}
		}
		if diff := cmp.Diff([]string{"team-a", "team-b"}, got); diff != "" {
			t.Errorf("NetworkPolicy namespaces (-want +got):\n%s", diff)
		}
	})
}

// TestDryRunOnAPIServer sends everything the chart renders, samples and network policies included, to a
// real kube-apiserver as a server-side dry run: every object must pass its schema and validation.
func TestDryRunOnAPIServer(t *testing.T) {
	objs := mustRender(t, "samples.enabled=true", "workerNetworkPolicy.namespaces={team-a}",
		"workerNetworkPolicy.clusterCIDRs={198.18.0.0/15,2001:db8:42::/56}", "image.tag=dev")
	cp, err := controlplane.Start(controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	c, err := client.New(cp.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{namespace, credentials.DefaultNamespace, "team-a"} {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns)
		if err := c.Create(ctx, u); client.IgnoreAlreadyExists(err) != nil {
			t.Fatal(err)
		}
	}
	// CRDs are in place already (the control plane installs config/crd); the chart's must match them.
	for _, o := range objs {
		err := c.Patch(ctx, o, client.Apply, client.FieldOwner("helm-chart-test"), client.ForceOwnership, client.DryRunAll) //nolint:staticcheck // server-side apply of rendered unstructured objects
		if err != nil {
			t.Errorf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

// TestNodePortExposesOnlyTheAPI: a NodePort frontend Service (as the local cluster installs it) opens
// the REST API on the given node port and nothing else; metrics stay on a ClusterIP Service.
func TestNodePortExposesOnlyTheAPI(t *testing.T) {
	objs := mustRender(t, "frontend.service.type=NodePort", "frontend.service.nodePort=8080")
	api, metrics := find(objs, "Service", "seek-frontend"), find(objs, "Service", "seek-frontend-metrics")
	if api == nil || metrics == nil {
		t.Fatal("frontend Services missing")
	}
	ports, _, _ := unstructured.NestedSlice(api.Object, "spec", "ports")
	if len(ports) != 1 {
		t.Fatalf("API Service ports = %v, want only http", ports)
	}
	if p := ports[0].(map[string]any); p["name"] != "http" || fmt.Sprint(p["nodePort"]) != "8080" {
		t.Errorf("API Service port = %v, want http on node port 8080", p)
	}
	if typ, _, _ := unstructured.NestedString(metrics.Object, "spec", "type"); typ != "ClusterIP" {
		t.Errorf("metrics Service type = %s, want ClusterIP", typ)
	}
}

// TestDispatch: the manager serves the dispatch endpoint of pooled workers on its port 8090, behind a
// Service it resolves (--dispatch-service), and knows the runner image (same scheme as the others);
// config/ does the same.
func TestDispatch(t *testing.T) {
	objs := mustRender(t)
	svc := find(objs, "Service", "seek-operator-dispatch")
	if svc == nil {
		t.Fatal("no Service seek-operator-dispatch")
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	want := []any{map[string]any{"name": "dispatch", "port": float64(8090), "targetPort": "dispatch", "protocol": "TCP"}}
	if diff := cmp.Diff(want, ports); diff != "" {
		t.Errorf("dispatch Service ports (-want +got):\n%s", diff)
	}
	dep := find(objs, "Deployment", "seek-operator-manager")
	selector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	podLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	if len(selector) == 0 || !labels.SelectorFromSet(selector).Matches(labels.Set(podLabels)) {
		t.Errorf("dispatch Service selector %v does not select the manager pods %v", selector, podLabels)
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	cports, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "ports")
	if !slices.ContainsFunc(cports, func(p any) bool {
		m := p.(map[string]any)
		return m["name"] == "dispatch" && fmt.Sprint(m["containerPort"]) == "8090"
	}) {
		t.Errorf("manager container ports %v lack dispatch 8090", cports)
	}
	wantArgs := []string{
		"--runner-image=ghcr.io/seek-api/seek-operator-runner:v0.1.0",
		"--dispatch-bind-address=:8090",
		"--dispatch-service=" + namespace + "/seek-operator-dispatch",
	}
	mgr := args(t, objs, "seek-operator-manager")
	for _, a := range wantArgs {
		if !slices.Contains(mgr, a) {
			t.Errorf("manager args %v lack %s", mgr, a)
		}
	}
	if slices.ContainsFunc(mgr, func(a string) bool { return strings.HasPrefix(a, "--dispatch-url") }) {
		t.Errorf("manager args %v set --dispatch-url by default", mgr)
	}

	t.Run("configured", func(t *testing.T) {
		objs := mustRender(t, "manager.dispatch.port=9000", "manager.dispatch.url=http://dispatch.example:9000",
			"image.registry=seek.local/seek-operator", "image.repositoryPrefix=", "image.tag=dev")
		mgr := args(t, objs, "seek-operator-manager")
		for _, a := range []string{"--runner-image=seek.local/seek-operator/runner:dev", "--dispatch-bind-address=:9000", "--dispatch-url=http://dispatch.example:9000"} {
			if !slices.Contains(mgr, a) {
				t.Errorf("manager args %v lack %s", mgr, a)
			}
		}
		if p := workerPolicy(t, objs).Egress[2].Ports[0].Port.IntValue(); p != 9000 {
			t.Errorf("worker policy's dispatch port = %d, want 9000", p)
		}
	})
	t.Run("config/ is the same", func(t *testing.T) {
		d := configObject(t, "manager/manager.yaml", "Deployment", "seek-operator-manager")
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		a, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		for _, want := range wantArgs {
			if !slices.Contains(a, want) {
				t.Errorf("config/ manager args %v lack %s", a, want)
			}
		}
		s := configObject(t, "manager/manager.yaml", "Service", "seek-operator-dispatch")
		sel, _, _ := unstructured.NestedStringMap(s.Object, "spec", "selector")
		podLabels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
		if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(podLabels)) {
			t.Errorf("config/ dispatch Service selector %v does not select the manager pods %v", sel, podLabels)
		}
		ports, _, _ := unstructured.NestedSlice(s.Object, "spec", "ports")
		if diff := cmp.Diff(want, ports); diff != "" {
			t.Errorf("config/ dispatch Service ports (-want +got):\n%s", diff)
		}
	})
}

// TestPooledSamples: echo and email-validator run pooled (with their image's entrypoint as command),
// sleep and fail one Job per job, so both modes run in the local cluster.
func TestPooledSamples(t *testing.T) {
	objs := mustRender(t, "samples.enabled=true")
	for name, pooled := range map[string]bool{"echo": true, "email-validator": true, "sleep": false, "fail": false} {
		w := find(objs, "SeekWorker", name)
		if w == nil {
			t.Errorf("no sample SeekWorker %s", name)
			continue
		}
		mode, _, _ := unstructured.NestedString(w.Object, "spec", "execution", "mode")
		command, _, _ := unstructured.NestedStringSlice(w.Object, "spec", "command")
		maxPods, _, _ := unstructured.NestedFieldNoCopy(w.Object, "spec", "execution", "pool", "maxPods")
		idle, _, _ := unstructured.NestedString(w.Object, "spec", "execution", "pool", "idleTimeout")
		switch {
		case pooled && (mode != "Pooled" || !slices.Equal(command, []string{"/" + name}) || fmt.Sprint(maxPods) != "4" || idle != "30s"):
			t.Errorf("%s: mode %q, command %v, maxPods %v, idleTimeout %q; want Pooled, [/%s], 4, 30s", name, mode, command, maxPods, idle, name)
		case !pooled && (mode != "" || command != nil):
			t.Errorf("%s: mode %q, command %v; want Job mode (unset)", name, mode, command)
		}
	}
}

// rulesOf returns a Role's or ClusterRole's rules.
func rulesOf(o *unstructured.Unstructured) []map[string]any {
	if o == nil {
		return nil
	}
	rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
	out := make([]map[string]any, 0, len(rules))
	for _, r := range rules {
		out = append(out, r.(map[string]any))
	}
	return out
}
