package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/restapi"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// TestFrontendInputRoundTrip checks against the real apiserver what issue 10 found: the input a worker
// gets is the input the API validated. The apiserver decodes a SeekJob's input and re-encodes it, so the
// frontend hands it the input in the apiserver's own form and refuses what that round trip would change.
func TestFrontendInputRoundTrip(t *testing.T) {
	base := startFrontend(t)
	tenant := newNamespace(t)
	w := readyWorker(t, echoWorker(t).Obj())
	api := &apiClient{t: t, base: base, key: apiKey(t, tenant, apikeys.ScopeSubmit, apikeys.ScopeRead)}
	api.waitKeyAccepted("/v1/workers/" + w.Name)

	t.Run("the apiserver changes numbers a client sends it directly", func(t *testing.T) {
		// Why the frontend refuses them: created with kubectl, the input comes back another value.
		sj := testutil.MakeSeekJob("direct", tenant).Worker("no-such-worker").Input(`{"id":12345678901234567890,"p":0.30000000000000000001}`).Obj()
		mustCreate(t, sj)
		got := &seekv1alpha1.SeekJob{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(sj), got); err != nil {
			t.Fatal(err)
		}
		if string(got.Spec.Input.Raw) != `{"id":12345678901234567000,"p":0.3}` {
			t.Errorf("stored input = %s; the apiserver no longer rounds numbers: revisit the frontend's number rules", got.Spec.Input.Raw)
		}
	})

	t.Run("what the API accepts reaches the worker as validated", func(t *testing.T) {
		body := `{ "s": "<é>\u00e9😀\u2028", "i": 9007199254740993, "max": 9223372036854775807, "min": -9223372036854775808,
			"big": 100000000000000000000, "e": 0.1e1, "one": 1.0, "f": 0.1, "tiny": 5e-324, "huge": 1.7976931348623157e308,
			"neg": -0, "negf": -0.0, "n": null, "deep": [[{"x": [true, false, "\\ud800"]}]], "callback_url": "https://app.example/hook" }`
		code, job := api.call("POST", "/v1/workers/"+w.Name+"/jobs?timeout=45s&retention=2h", body)
		if code != http.StatusAccepted {
			t.Fatalf("submit = %d %v", code, job)
		}
		req, err := restapi.ParseSubmit(w.Name, []byte(body), restapi.JobOptions{})
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(job["job_uuid"].(string), "job_")
		sj := &seekv1alpha1.SeekJob{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: tenant, Name: name}, sj); err != nil {
			t.Fatal(err)
		}
		if string(sj.Spec.Input.Raw) != string(req.Input) {
			t.Errorf("stored input\n%s\nis not the validated\n%s", sj.Spec.Input.Raw, req.Input)
		}
		if sj.Spec.Timeout == nil || sj.Spec.Timeout.Duration.String() != "45s" || sj.Spec.TTLAfterFinished == nil || sj.Spec.TTLAfterFinished.Duration.String() != "2h0m0s" {
			t.Errorf("timeout %v, ttlAfterFinished %v; want 45s and 2h", sj.Spec.Timeout, sj.Spec.TTLAfterFinished)
		}
		pod := waitForPod(t, tenant, name, 1)
		if got := pod.Annotations[seekv1alpha1.AnnotationInput]; got != string(req.Input) {
			t.Errorf("the worker gets\n%s\nnot the validated\n%s", got, req.Input)
		}
	})

	t.Run("what the apiserver would change is a 4xx and stores nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name, body, contentType string
			wantStatus              int
			wantField               string
		}{
			{"beyond int64", `{"id":12345678901234567890}`, "", 400, "/id"},
			{"beyond float64", `{"a":[1e999]}`, "", 400, "/a/0"},
			{"beyond float64 precision", `{"p":0.30000000000000000001}`, "", 400, "/p"},
			{"invalid UTF-8", "{\"s\":\"\xff\"}", "", 400, ""},
			{"lone surrogate", `{"s":"\ud800"}`, "", 400, "/s"},
			{"duplicate key", `{"s":1,"s":2}`, "", 400, "/s"},
			{"text/plain", `{}`, "text/plain", 415, "Content-Type"},
		} {
			code, _, body := api.callWith("POST", "/v1/workers/"+w.Name+"/jobs", tc.body, "Content-Type", tc.contentType)
			e, _ := body["error"].(map[string]any)
			if code != tc.wantStatus || (tc.wantField != "" && e["field"] != tc.wantField) {
				t.Errorf("%s: %d %v, want %d naming %q", tc.name, code, body, tc.wantStatus, tc.wantField)
			}
		}
		list := &seekv1alpha1.SeekJobList{}
		if err := k8sClient.List(context.Background(), list, client.InNamespace(tenant)); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 2 { // "direct" and the accepted one
			t.Errorf("%d SeekJobs in the tenant, want 2", len(list.Items))
		}
	})
}

// TestFrontendQuota: a tenant's ResourceQuota on SeekJobs makes the API answer 429 active_jobs_limit.
func TestFrontendQuota(t *testing.T) {
	base := startFrontend(t)
	tenant := newNamespace(t)
	w := readyWorker(t, echoWorker(t).Obj())
	api := &apiClient{t: t, base: base, key: apiKey(t, tenant, apikeys.ScopeSubmit, apikeys.ScopeRead)}
	api.waitKeyAccepted("/v1/workers/" + w.Name)
	countSeekJobs := corev1.ResourceName("count/seekjobs.seek-api.com")
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "seek-jobs", Namespace: tenant},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{countSeekJobs: resource.MustParse("1")}},
	}
	mustCreate(t, quota)
	// Quota admission refuses every create until the quota has a status. The suite runs no
	// resource-quota controller: play it, as the tests play the kubelet (or let it, if one runs). Quota
	// admission then keeps status.used itself.
	eventually(t, "quota status", func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(quota), quota); err != nil {
			return false, err
		}
		if _, ok := quota.Status.Hard[countSeekJobs]; ok {
			return true, nil
		}
		quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{countSeekJobs: resource.MustParse("0")}}
		return false, k8sClient.Status().Update(ctx, quota)
	})

	code, _, first := api.callWith("POST", "/v1/workers/"+w.Name+"/jobs", `{"n":1}`, "Idempotency-Key", "q1")
	if code != http.StatusAccepted {
		t.Fatalf("first submit = %d %v", code, first)
	}
	// Quota admission runs before the name is found taken: a repeat is still answered with its job.
	if code, _, again := api.callWith("POST", "/v1/workers/"+w.Name+"/jobs", `{"n":1}`, "Idempotency-Key", "q1"); code != http.StatusOK || again["job_uuid"] != first["job_uuid"] {
		t.Errorf("idempotent repeat over quota = %d %v, want 200 with the job", code, again)
	}
	code, header, body := api.callWith("POST", "/v1/workers/"+w.Name+"/jobs", `{"n":2}`)
	e, _ := body["error"].(map[string]any)
	if code != http.StatusTooManyRequests || header.Get("Retry-After") == "" || e["code"] != "active_jobs_limit" || !strings.Contains(fmt.Sprint(e["message"]), "seek-jobs") {
		t.Errorf("submit over quota = %d %v, Retry-After %q; want 429 active_jobs_limit naming the quota", code, body, header.Get("Retry-After"))
	}
	code, batch := api.call("POST", "/v1/workers/"+w.Name+"/jobs:batch", `{"inputs":[{"n":3}]}`)
	items, _ := batch["items"].([]any)
	if code != http.StatusAccepted || len(items) != 1 || fmt.Sprint(items[0].(map[string]any)["error"].(map[string]any)["code"]) != "active_jobs_limit" {
		t.Errorf("batch over quota = %d %v, want its item refused with active_jobs_limit", code, batch)
	}
	list := &seekv1alpha1.SeekJobList{}
	if err := k8sClient.List(context.Background(), list, client.InNamespace(tenant)); err != nil || len(list.Items) != 1 {
		t.Errorf("%d SeekJobs (%v), want 1", len(list.Items), err)
	}
}
