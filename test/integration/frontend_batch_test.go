package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
)

// TestFrontendBatchQuotaMidBatch: a batch whose parallel creates run into the tenant's quota part way
// creates exactly as many jobs as the quota allows, answers item i for input i (each created item is the
// job of its own input), refuses the others one by one with active_jobs_limit, and repeated with the
// same Idempotency-Key answers the same jobs and creates nothing more.
func TestFrontendBatchQuotaMidBatch(t *testing.T) {
	t.Parallel()
	const capacity, inputs = 25, 60
	base := startFrontend(t)
	tenant := newTenant(t, capacity)
	w := readyWorker(t, echoWorker(t).Obj())
	api := &apiClient{t: t, base: base, key: apiKey(t, tenant, apikeys.ScopeSubmit, apikeys.ScopeRead)}
	api.waitKeyAccepted("/v1/workers/" + w.Name)

	list := make([]string, inputs)
	for i := range list {
		list[i] = fmt.Sprintf(`{"n":%d}`, i)
	}
	body := `{"inputs":[` + strings.Join(list, ",") + `]}`
	batch := func() []any {
		t.Helper()
		code, _, out := api.callWith("POST", "/v1/workers/"+w.Name+"/jobs:batch", body, "Idempotency-Key", "quota-batch")
		items, _ := out["items"].([]any)
		if code != http.StatusAccepted || len(items) != inputs {
			t.Fatalf("batch = %d with %d items, want 202 with %d", code, len(items), inputs)
		}
		return items
	}
	stored := func() map[string]string {
		t.Helper()
		jobs := &seekv1alpha1.SeekJobList{}
		if err := k8sClient.List(context.Background(), jobs, client.InNamespace(tenant)); err != nil {
			t.Fatal(err)
		}
		inputOf := map[string]string{}
		for _, sj := range jobs.Items {
			inputOf["job_"+sj.Name] = string(sj.Spec.Input.Raw)
		}
		return inputOf
	}

	first := batch()
	inputOf := stored()
	if len(inputOf) != capacity {
		t.Errorf("%d jobs stored, want the quota's %d", len(inputOf), capacity)
	}
	ids := map[int]string{}
	for i, raw := range first {
		item := raw.(map[string]any)
		if e, refused := item["error"].(map[string]any); refused {
			if e["code"] != "active_jobs_limit" {
				t.Errorf("item %d = %v, want active_jobs_limit", i, item)
			}
			continue
		}
		id, _ := item["job_uuid"].(string)
		if got := inputOf[id]; got != fmt.Sprintf(`{"n":%d}`, i) {
			t.Errorf("item %d is job %q with input %q, want the job of input %d", i, id, got, i)
		}
		ids[i] = id
	}
	if len(ids) != capacity {
		t.Errorf("%d items created, want %d", len(ids), capacity)
	}

	again := batch()
	for i, raw := range again {
		item := raw.(map[string]any)
		id, _ := item["job_uuid"].(string)
		if want, created := ids[i]; created && id != want {
			t.Errorf("repeated item %d = %v, want job %s", i, item, want)
		} else if e, _ := item["error"].(map[string]any); !created && (e == nil || e["code"] != "active_jobs_limit") {
			t.Errorf("repeated item %d = %v, want active_jobs_limit again", i, item)
		}
	}
	if n := len(stored()); n != capacity {
		t.Errorf("the repeat stored %d jobs in all, want %d", n, capacity)
	}
}
