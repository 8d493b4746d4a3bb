package chart

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestAdmission: by default the chart registers the frontend's SeekJob admission webhook
// (failurePolicy Fail, a 5 s timeout, creates and spec updates, never the frontend's own requests),
// with a serving certificate Helm made for the admission Service and the CA the apiserver trusts for
// it; the frontend serves it from the mounted Secret, with two replicas and a PodDisruptionBudget.
func TestAdmission(t *testing.T) {
	objs := mustRender(t)
	vwc := find(objs, "ValidatingWebhookConfiguration", "seek-seekjob-validation")
	if vwc == nil {
		t.Fatal("no ValidatingWebhookConfiguration seek-seekjob-validation")
	}
	hooks, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
	if len(hooks) != 1 {
		t.Fatalf("webhooks = %v", hooks)
	}
	h := hooks[0].(map[string]any)
	for field, want := range map[string]string{
		"name": "seekjobs.seek-api.com", "failurePolicy": "Fail", "sideEffects": "None", "timeoutSeconds": "5",
		"admissionReviewVersions": "[v1]", "clientConfig.service.name": "seek-frontend-admission",
		"clientConfig.service.namespace": namespace, "clientConfig.service.path": "/validate-seekjob",
		"clientConfig.service.port": "443",
	} {
		v, _, _ := unstructured.NestedFieldNoCopy(h, strings.Split(field, ".")...)
		if got := fmt.Sprint(v); got != want {
			t.Errorf("webhook %s = %s, want %s", field, got, want)
		}
	}
	rules, _, _ := unstructured.NestedSlice(h, "rules")
	if got := fmt.Sprint(rules); got != "[map[apiGroups:[seek-api.com] apiVersions:[v1alpha1] operations:[CREATE UPDATE] resources:[seekjobs] scope:Namespaced]]" {
		t.Errorf("rules = %s: want creates and updates of seekjobs, not of their status", got)
	}
	conds, _, _ := unstructured.NestedSlice(h, "matchConditions")
	var names []string
	for _, c := range conds {
		names = append(names, c.(map[string]any)["name"].(string))
		if c.(map[string]any)["name"] == "not-the-frontend" && !strings.Contains(fmt.Sprint(c), "system:serviceaccount:"+namespace+":seek-frontend") {
			t.Errorf("not-the-frontend = %v", c)
		}
	}
	if !slices.Equal(names, []string{"spec-changed", "not-the-frontend"}) {
		t.Errorf("matchConditions = %v", names)
	}

	// The CA in caBundle signed the Secret's certificate, for the admission Service's name.
	caB64, _, _ := unstructured.NestedString(h, "clientConfig", "caBundle")
	secret := find(objs, "Secret", "seek-frontend-admission-tls")
	if secret == nil {
		t.Fatal("no Secret seek-frontend-admission-tls")
	}
	data, _, _ := unstructured.NestedStringMap(secret.Object, "data")
	if data["ca.crt"] != caB64 || data["tls.key"] == "" {
		t.Errorf("Secret data keys %v; caBundle is not its ca.crt", data)
	}
	roots := x509.NewCertPool()
	caPEM, _ := base64.StdEncoding.DecodeString(caB64)
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("caBundle holds no certificate")
	}
	crtPEM, _ := base64.StdEncoding.DecodeString(data["tls.crt"])
	block, _ := pem.Decode(crtPEM)
	if block == nil {
		t.Fatal("tls.crt holds no certificate")
	}
	crt, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crt.Verify(x509.VerifyOptions{Roots: roots, DNSName: "seek-frontend-admission." + namespace + ".svc",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the serving certificate does not verify for the Service: %v", err)
	}

	// The frontend serves it on its admission port, behind a ClusterIP Service of its own.
	a := args(t, objs, "seek-frontend")
	for _, want := range []string{"--admission-bind-address=:9443", "--admission-cert-dir=/etc/seek/admission"} {
		if !slices.Contains(a, want) {
			t.Errorf("frontend args %v lack %s", a, want)
		}
	}
	dep := find(objs, "Deployment", "seek-frontend")
	vols, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	if got := fmt.Sprint(vols); !strings.Contains(got, "secretName:seek-frontend-admission-tls") {
		t.Errorf("frontend volumes = %s", got)
	}
	svc := find(objs, "Service", "seek-frontend-admission")
	if typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type"); typ != "ClusterIP" {
		t.Errorf("admission Service type = %s", typ)
	}
	if replicas, _, _ := unstructured.NestedFieldNoCopy(dep.Object, "spec", "replicas"); fmt.Sprint(replicas) != "2" {
		t.Errorf("frontend replicas = %v, want 2", replicas)
	}
	pdb := find(objs, "PodDisruptionBudget", "seek-frontend")
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget seek-frontend")
	}
	if v, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "minAvailable"); fmt.Sprint(v) != "1" {
		t.Errorf("PodDisruptionBudget minAvailable = %v", v)
	}
	sel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
	if sel["app.kubernetes.io/component"] != "frontend" {
		t.Errorf("PodDisruptionBudget selector = %v", sel)
	}
}

func TestAdmissionValues(t *testing.T) {
	t.Run("one replica, no PodDisruptionBudget", func(t *testing.T) {
		if find(mustRender(t, "frontend.replicas=1"), "PodDisruptionBudget", "seek-frontend") != nil {
			t.Error("a PodDisruptionBudget with one replica blocks every drain")
		}
	})
	t.Run("off", func(t *testing.T) {
		objs := mustRender(t, "admission.enabled=false")
		if find(objs, "ValidatingWebhookConfiguration", "seek-seekjob-validation") != nil || find(objs, "Secret", "seek-frontend-admission-tls") != nil {
			t.Error("admission rendered")
		}
		if a := args(t, objs, "seek-frontend"); slices.ContainsFunc(a, func(s string) bool { return strings.HasPrefix(s, "--admission") }) {
			t.Errorf("frontend args = %v", a)
		}
	})
	t.Run("frontend off", func(t *testing.T) {
		if find(mustRender(t, "frontend.enabled=false"), "ValidatingWebhookConfiguration", "seek-seekjob-validation") != nil {
			t.Error("a webhook without a frontend to serve it")
		}
	})
	t.Run("failure policy", func(t *testing.T) {
		vwc := find(mustRender(t, "admission.failurePolicy=Ignore"), "ValidatingWebhookConfiguration", "seek-seekjob-validation")
		hooks, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
		if p := hooks[0].(map[string]any)["failurePolicy"]; p != "Ignore" {
			t.Errorf("failurePolicy = %v", p)
		}
	})
	t.Run("cert-manager", func(t *testing.T) {
		objs := mustRender(t, "admission.certificate.source=certManager")
		if find(objs, "Secret", "seek-frontend-admission-tls") != nil {
			t.Error("Helm-made Secret rendered: cert-manager writes it")
		}
		crt := find(objs, "Certificate", "seek-frontend-admission")
		if crt == nil || find(objs, "Issuer", "seek-frontend-admission") == nil {
			t.Fatal("no Certificate and Issuer")
		}
		if s, _, _ := unstructured.NestedString(crt.Object, "spec", "secretName"); s != "seek-frontend-admission-tls" {
			t.Errorf("Certificate secretName = %s", s)
		}
		vwc := find(objs, "ValidatingWebhookConfiguration", "seek-seekjob-validation")
		if a := vwc.GetAnnotations()["cert-manager.io/inject-ca-from"]; a != namespace+"/seek-frontend-admission" {
			t.Errorf("inject-ca-from = %q", a)
		}
	})
	t.Run("own Secret", func(t *testing.T) {
		if _, err := render(t, "admission.certificate.source=secret"); err == nil || !strings.Contains(err.Error(), "needs admission.certificate.secretName") {
			t.Errorf("error = %v", err)
		}
		objs := mustRender(t, "admission.certificate.source=secret", "admission.certificate.secretName=mine", "admission.certificate.caBundle=Q0E=")
		if find(objs, "Secret", "seek-frontend-admission-tls") != nil {
			t.Error("Helm-made Secret rendered")
		}
		vwc := find(objs, "ValidatingWebhookConfiguration", "seek-seekjob-validation")
		hooks, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
		if ca, _, _ := unstructured.NestedString(hooks[0].(map[string]any), "clientConfig", "caBundle"); ca != "Q0E=" {
			t.Errorf("caBundle = %q", ca)
		}
		vols, _, _ := unstructured.NestedSlice(find(objs, "Deployment", "seek-frontend").Object, "spec", "template", "spec", "volumes")
		if !strings.Contains(fmt.Sprint(vols), "secretName:mine") {
			t.Errorf("volumes = %v", vols)
		}
	})
}
