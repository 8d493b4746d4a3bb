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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/seek-api/seek-operator/internal/controlplane"
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
	for _, values := range [][]string{nil, {"samples.enabled=true", "workerNetworkPolicy.enabled=true", "workerNetworkPolicy.namespaces={team-a}"}} {
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
	for _, want := range []string{"--leader-elect", "--system-namespace=" + namespace, "--callback-timeout=15s", "--default-queue-timeout=1h"} {
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
		objs := mustRender(t, "workerNetworkPolicy.enabled=true", "workerNetworkPolicy.namespaces={team-a,team-b}")
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
	objs := mustRender(t, "samples.enabled=true", "workerNetworkPolicy.enabled=true", "workerNetworkPolicy.namespaces={team-a}",
		"image.tag=dev")
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
	for _, ns := range []string{namespace, "team-a"} {
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
		err := c.Patch(ctx, o, client.Apply, client.FieldOwner("helm-chart-test"), client.ForceOwnership, client.DryRunAll)
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
