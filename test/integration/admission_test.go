package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/frontend"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// admissionTestLabel marks the namespaces whose SeekJobs the webhook under test validates: the other
// tests share the apiserver and create jobs the webhook would refuse (before their worker, with bad
// inputs) on purpose.
const admissionTestLabel = "seek-api.com/admission-test"

// admissionMatchConditions are the chart's (charts/seek-operator/templates/admission.yaml): creates,
// and updates that change the spec other than cancelRequest; never the frontend's own requests (it
// applied the same checks before).
func admissionMatchConditions(frontendUser string) []admissionregistrationv1.MatchCondition {
	return []admissionregistrationv1.MatchCondition{
		{Name: "spec-changed", Expression: "request.operation == 'CREATE' || " +
			"object.spec.exists(k, k != 'cancelRequest' && (!(k in oldObject.spec) || object.spec[k] != oldObject.spec[k])) || " +
			"oldObject.spec.exists(k, k != 'cancelRequest' && !(k in object.spec))"},
		{Name: "not-the-frontend", Expression: fmt.Sprintf("request.userInfo.username != '%s'", frontendUser)},
	}
}

// startAdmission runs the REST frontend with its admission server on loopback, a serving certificate
// of a CA of its own, and registers a ValidatingWebhookConfiguration for SeekJobs in namespaces
// labelled selector, as the chart does for all. It returns once the apiserver calls the webhook.
func startAdmission(t *testing.T, selector string) {
	t.Helper()
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := controlplane.ApplyManifestFile(context.Background(), k8sClient, filepath.Join(root, "config", "rbac", "frontend_rbac.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg, err := cp.ServiceAccountConfig(systemNamespace, "seek-frontend")
	if err != nil {
		t.Fatal(err)
	}
	// The serving certificate: for 127.0.0.1, signed by a CA made for this test (its bundle, certPEM,
	// holds the CA too).
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- frontend.Run(ctx, cfg, frontend.Options{
			Listen: "127.0.0.1:0", MetricsAddr: "0", HealthProbeAddr: "0", CredentialsNamespace: credentialsNamespace,
			MaxBodyBytes: frontend.DefaultMaxBodyBytes, QPS: 500, Burst: 1000, ShutdownTimeout: 5 * time.Second,
			Callbacks: callbackPolicy, AdmissionAddr: addr, AdmissionCertDir: dir,
		})
	}()
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "seek-admission-" + selector},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "seekjobs.seek-api.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL: ptr.To("https://" + addr + frontend.AdmissionPath), CABundle: certPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"seek-api.com"}, APIVersions: []string{"v1alpha1"},
					Resources: []string{"seekjobs"}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{admissionTestLabel: selector}},
			MatchConditions:         admissionMatchConditions("system:serviceaccount:" + systemNamespace + ":seek-frontend"),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	mustCreate(t, vwc)
	t.Cleanup(func() {
		if err := k8sClient.Delete(context.Background(), vwc); err != nil {
			t.Errorf("delete the webhook configuration: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("frontend: %v", err)
		}
	})
	// Until the apiserver has seen the configuration, and the server is up, creates pass or fail
	// otherwise: wait for the webhook's own refusal of a job of a missing worker (a dry run).
	probeNS := admissionNamespace(t, selector)
	eventually(t, "the admission webhook to refuse a job", func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			t.Fatalf("frontend exited: %v", err)
		default:
		}
		err := k8sClient.Create(ctx, testutil.MakeSeekJob("probe", probeNS).Worker("absent").Obj(), client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), `no worker "absent"`), err
	})
}

// admissionNamespace creates a namespace whose SeekJobs the webhook of startAdmission(selector) validates.
func admissionNamespace(t *testing.T, selector string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniqueName("adm"), Labels: map[string]string{admissionTestLabel: selector}}}
	mustCreate(t, ns)
	return ns.Name
}

// TestAdmission creates SeekJobs as kubectl does (an admin client, straight to the apiserver) with the
// frontend's admission webhook registered: what the REST API would refuse is refused at once, with
// its words and the field; the rest is created.
func TestAdmission(t *testing.T) {
	selector := uniqueName("a")
	startAdmission(t, selector)
	ns := admissionNamespace(t, selector)
	workerName := uniqueName("email")
	mustCreate(t, testutil.MakeSeekWorker(workerName).Image("example.com/email:v1").MaxInputBytes(64).
		Timeouts(time.Minute, 5*time.Minute).
		InputSchema(`{"type":"object","required":["email"],"properties":{"email":{"type":"string"}}}`).Obj())
	job := func(name string) *testutil.SeekJobWrapper {
		return testutil.MakeSeekJob(name, ns).Worker(workerName).Input(`{"email":"a@example.com"}`)
	}
	// A worker created a moment ago may not be in the frontend's cache yet: the webhook asks the apiserver.
	mustCreate(t, job("valid").Timeout(5*time.Minute).TTL(time.Hour).Callback("http://127.0.0.1:9/hook").Obj())

	denials := []struct {
		name string
		sj   *seekv1alpha1.SeekJob
		want string
	}{
		{"bad-input", job("bad-input").Input(`{"email":5}`).Obj(), `spec.input/email: got number, want string`},
		{"missing-field", job("missing-field").Input(`{"mail":"a@example.com"}`).Obj(), `spec.input/email: is required`},
		{"too-large", job("too-large").Input(`{"email":"` + strings.Repeat("a", 64) + `"}`).Obj(),
			fmt.Sprintf(`spec.input: the input is 76 bytes; worker %q accepts at most 64`, workerName)},
		{"too-long", job("too-long").Timeout(10 * time.Minute).Obj(),
			fmt.Sprintf(`spec.timeout: timeout must be from 1s to 5m (worker %q's timeouts.maximumTimeout)`, workerName)},
		{"bad-callback", job("bad-callback").Callback("https://user:pw@example.com/hook").Obj(),
			`spec.callback.url: invalid callback URL: URL must not contain user information (user:password@)`},
		{"no-worker", testutil.MakeSeekJob("no-worker", ns).Worker("emial").Obj(),
			`spec.workerName: no worker "emial"; create the SeekWorker first, or annotate the job seek-api.com/allow-missing-worker: "true"`},
	}
	for _, d := range denials {
		err := k8sClient.Create(context.Background(), d.sj)
		if !apierrors.IsInvalid(err) {
			t.Errorf("%s: create: %v; want Invalid", d.name, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, `admission webhook "seekjobs.seek-api.com" denied the request: SeekJob "`+d.name+`" is invalid: `) || !strings.Contains(msg, d.want) {
			t.Errorf("%s: refused with %q; want it to say %q", d.name, msg, d.want)
		}
		var status apierrors.APIStatus
		if !asAPIStatus(err, &status) || status.Status().Details == nil || len(status.Status().Details.Causes) != 1 ||
			!strings.HasPrefix(d.want, status.Status().Details.Causes[0].Field+": ") {
			t.Errorf("%s: details %+v; want one cause naming the field of %q", d.name, status.Status().Details, d.want)
		}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(d.sj), &seekv1alpha1.SeekJob{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: a refused job was stored (%v)", d.name, err)
		}
	}

	// The opt-in: a job of a worker to come is created (and waits, Queued).
	later := testutil.MakeSeekJob("later", ns).Worker("later-"+workerName).Annotation(seekv1alpha1.AnnotationAllowMissingWorker, "true").Obj()
	mustCreate(t, later)
	waitForState(t, ns, "later", seekv1alpha1.JobStateQueued)
	// Cancel, a spec update the webhook lets through whatever the worker: it does not exist.
	if err := k8sClient.Patch(context.Background(), later, client.RawPatch("application/merge-patch+json",
		[]byte(`{"spec":{"cancelRequest":{"reason":"not needed"}}}`))); err != nil {
		t.Fatalf("cancel a job whose worker does not exist: %v", err)
	}
	waitForState(t, ns, "later", seekv1alpha1.JobStateCanceled)
	// A valid job runs as before.
	waitForJob(t, ns, "valid", "a Job created", func(sj *seekv1alpha1.SeekJob) bool { return sj.Status.JobName != "" })
}

// TestAdmissionFrontendDown: with failurePolicy Fail, a create is refused while no frontend answers,
// and nothing is stored.
func TestAdmissionFrontendDown(t *testing.T) {
	selector := uniqueName("down")
	ns := admissionNamespace(t, selector)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there
	certPEM, _, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "seek-admission-" + selector},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "seekjobs.seek-api.com",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://" + addr + frontend.AdmissionPath), CABundle: certPEM},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"seek-api.com"}, APIVersions: []string{"v1alpha1"},
					Resources: []string{"seekjobs"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{admissionTestLabel: selector}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	mustCreate(t, vwc)
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), vwc) })
	eventually(t, "creates to fail while the webhook is down", func(ctx context.Context) (bool, error) {
		err := k8sClient.Create(ctx, testutil.MakeSeekJob("j", ns).Worker("echo").Obj())
		if err == nil {
			_ = k8sClient.Delete(ctx, testutil.MakeSeekJob("j", ns).Obj())
			return false, nil
		}
		return strings.Contains(err.Error(), `failed calling webhook "seekjobs.seek-api.com"`), err
	})
}

// TestSeekWorkerName: a SeekWorker whose name no SeekJob's spec.workerName could hold (a DNS-1123
// label) is refused by the CRD.
func TestSeekWorkerName(t *testing.T) {
	for _, name := range []string{uniqueName("dotted") + ".example", uniqueName("long") + "-" + strings.Repeat("a", 60)} {
		err := k8sClient.Create(context.Background(), testutil.MakeSeekWorker(name).Image("example.com/w:v1").Obj())
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "metadata.name must be a DNS-1123 label") ||
			!strings.Contains(err.Error(), "spec.workerName could never name this worker") {
			t.Errorf("create SeekWorker %q: %v; want it refused naming the rule", name, err)
		}
	}
	ok := testutil.MakeSeekWorker(uniqueName("ok") + "-" + strings.Repeat("a", 50)).Image("example.com/w:v1").Obj()
	mustCreate(t, ok)
	// The rule holds on create only (optionalOldSelf): a worker's updates, and its status writes, pass.
	if err := k8sClient.Patch(context.Background(), ok, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"description":"changed"}}`))); err != nil {
		t.Fatal(err)
	}
}

func asAPIStatus(err error, out *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus) //nolint:errorlint // the client returns the *StatusError itself
	*out = s
	return ok
}
