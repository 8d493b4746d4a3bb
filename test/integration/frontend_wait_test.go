package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seek-api/seek-operator/internal/apikeys"
)

// TestFrontendPreferWait: a request waiting for its job (Prefer: wait) is answered with the finished job
// once the job finishes: the frontend's SeekJob informer wakes it.
func TestFrontendPreferWait(t *testing.T) {
	t.Parallel()
	base := startFrontend(t)
	tenant := newNamespace(t)
	w := readyWorker(t, echoWorker(t).Obj())
	api := &apiClient{t: t, base: base, key: apiKey(t, tenant, apikeys.ScopeSubmit, apikeys.ScopeRead)}
	api.waitKeyAccepted("/v1/workers/" + w.Name)

	code, job := api.call("POST", "/v1/workers/"+w.Name+"/jobs", `{"n":1}`)
	if code != http.StatusAccepted {
		t.Fatalf("submit = %d %v", code, job)
	}
	id := job["job_uuid"].(string)
	type answer struct {
		code    int
		applied string
		body    map[string]any
		err     error
	}
	answered := make(chan answer, 1)
	go func() {
		req, err := http.NewRequest(http.MethodGet, base+"/v1/jobs/"+id, nil)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		req.Header.Set("X-Api-Key", api.key)
		req.Header.Set("Prefer", "wait=30")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		a := answer{code: resp.StatusCode, applied: resp.Header.Get("Preference-Applied"), body: map[string]any{}, err: err}
		if err == nil {
			a.err = json.Unmarshal(raw, &a.body)
		}
		answered <- a
	}()
	pod := waitForPod(t, tenant, strings.TrimPrefix(id, "job_"), 1)
	select {
	case a := <-answered:
		t.Fatalf("answered before the job finished: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}
	finishPod(t, pod, 0, `{"echo":1}`)
	select {
	case a := <-answered:
		if a.err != nil || a.code != http.StatusOK || a.body["status"] != "completed" || a.applied != "wait=30" {
			t.Errorf("Prefer: wait answer = %+v, want 200 with the completed job", a)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no answer once the job finished")
	}
}
