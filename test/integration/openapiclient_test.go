package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/frontend"
	"github.com/seek-api/seek-operator/internal/frontend/apitest"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/test/integration/openapiclient"
)

// The README's sample worker email-validator: its input schema (charts/seek-operator/templates/samples.yaml)
// and the result it computed for hello@example.com.
const (
	readmeEmailSchema = `{"type":"object","required":["email"],"properties":{"email":{"type":"string","maxLength":320},"check_mx":{"type":"boolean"}}}`
	readmeEmailResult = `{"checks":{"disposable":false,"mx":null,"role_account":true,"syntax":true,"typo_suggestion":null},"email":"hello@example.com","reason":"","score":0.72,"valid":true}`
)

// validatingDoer sends the generated client's requests and checks every answer against the OpenAPI
// document, as the handler tests do, before the client decodes it.
type validatingDoer struct{ t *testing.T }

func (d validatingDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	openAPIOnce.Do(func() { openAPI = apitest.NewValidator(d.t, frontend.OpenAPI) })
	if err := openAPI.Validate(req.Method, req.URL.Path, resp.StatusCode, raw); err != nil {
		d.t.Errorf("OpenAPI: %v", err)
	}
	return resp, nil
}

// generatedClient is the client oapi-codegen generated from the document, sending key (none when
// empty) as X-Api-Key.
func generatedClient(t *testing.T, base, key string) *openapiclient.ClientWithResponses {
	t.Helper()
	c, err := openapiclient.NewClientWithResponses(base, openapiclient.WithHTTPClient(validatingDoer{t}),
		openapiclient.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if key != "" {
				req.Header.Set("X-Api-Key", key)
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// input is a submission body: the worker's input members, and callback_url when given.
func input(members map[string]any, callbackURL string) openapiclient.SubmitRequest {
	body := openapiclient.SubmitRequest{AdditionalProperties: members}
	if callbackURL != "" {
		body.CallbackUrl = &callbackURL
	}
	return body
}

// jsonEqual reports how got, any JSON value decoded by the client, differs from the JSON text want.
func jsonEqual(got any, want string) string {
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		return err.Error()
	}
	raw, err := json.Marshal(got)
	if err != nil {
		return err.Error()
	}
	var g any
	_ = json.Unmarshal(raw, &g)
	return cmp.Diff(w, g)
}

// TestGeneratedClient runs the README's flows (Try it, and webhooks) against the real frontend and
// manager with nothing but the client oapi-codegen generated from the OpenAPI document
// (test/integration/openapiclient): the catalogue, a submission and its result, the README's 400, the
// echo worker answered within Prefer: wait, the job list, a batch, cancel, and a signed callback with
// the tenant's secret, redelivered, then rotated. The tests play the kubelet (finishPod). Every answer
// is also checked against the document.
func TestGeneratedClient(t *testing.T) {
	ctx := context.Background()
	base := startFrontend(t)
	tenant := newNamespace(t)
	api := generatedClient(t, base, apiKey(t, tenant, apikeys.Scopes...))
	email := readyWorker(t, testutil.MakeSeekWorker(uniqueName("email-validator")).Image("example.com/seek/email-validator:v1").
		Description("Sample worker email-validator (cmd/workers/email-validator)").InputSchema(readmeEmailSchema).Obj())
	echo := readyWorker(t, echoWorker(t).Description("Sample worker echo (cmd/workers/echo)").Obj())

	// The key reaches the frontend's cache within moments.
	eventually(t, "key accepted", func(ctx context.Context) (bool, error) {
		r, err := api.GetWorkerWithResponse(ctx, email.Name)
		if err != nil {
			return false, err
		}
		return r.StatusCode() == http.StatusOK, fmt.Errorf("%d %s", r.StatusCode(), r.Body)
	})

	t.Run("the catalogue", func(t *testing.T) {
		r, err := api.ListWorkersWithResponse(ctx)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("list workers = %v %v", r, err)
		}
		found := map[string]openapiclient.Worker{}
		for _, w := range r.JSON200.Workers {
			found[w.Name] = w
		}
		if w := found[email.Name]; w.Description != email.Spec.Description || jsonEqual(w.InputSchema, readmeEmailSchema) != "" {
			t.Errorf("email-validator in the catalogue = %+v (schema diff %s)", w, jsonEqual(w.InputSchema, readmeEmailSchema))
		}
		if w, ok := found[echo.Name]; !ok || w.InputSchema != nil {
			t.Errorf("echo in the catalogue = %+v (listed %t), want no input schema", w, ok)
		}
		one, err := api.GetWorkerWithResponse(ctx, email.Name)
		if err != nil || one.JSON200 == nil || one.JSON200.Name != email.Name || jsonEqual(one.JSON200.InputSchema, readmeEmailSchema) != "" {
			t.Errorf("get worker = %v %v", one, err)
		}
		missing, err := api.GetWorkerWithResponse(ctx, "no-such-worker")
		if err != nil || missing.JSON404 == nil || missing.JSON404.Error.Code != openapiclient.ErrorCodeNotFound {
			t.Errorf("get a worker that does not exist = %v %v, want 404 not_found", missing, err)
		}
	})

	t.Run("the README's 400: an input without the email the schema requires", func(t *testing.T) {
		r, err := api.SubmitJobWithResponse(ctx, email.Name, nil, input(map[string]any{"mail": 1}, ""))
		if err != nil || r.JSON400 == nil {
			t.Fatalf("submit = %v %v, want 400", r, err)
		}
		want := openapiclient.Error{}
		// The message is the README's and the document's example.
		want.Error.Code, want.Error.Message, want.Error.Field = openapiclient.ErrorCodeInvalidInput, "input/email: is required", ptrTo("/email")
		if diff := cmp.Diff(want, *r.JSON400); diff != "" {
			t.Errorf("400 (-want +got):\n%s", diff)
		}
	})

	var emailJob string
	t.Run("submit, get, and the result", func(t *testing.T) {
		r, err := api.SubmitJobWithResponse(ctx, email.Name, nil, input(map[string]any{"email": "hello@example.com", "check_mx": false}, ""))
		if err != nil || r.JSON202 == nil {
			t.Fatalf("submit = %v %v, want 202", r, err)
		}
		job := r.JSON202
		if job.Status != openapiclient.StatusQueued || job.Worker != email.Name || !strings.HasPrefix(job.JobUuid, "job_") || job.ResponseJson != nil || job.Callback != nil {
			t.Errorf("submitted job = %+v", job)
		}
		emailJob = job.JobUuid
		pod := waitForPod(t, tenant, strings.TrimPrefix(job.JobUuid, "job_"), 1)
		if got := pod.Annotations[seekv1alpha1.AnnotationInput]; got != `{"check_mx":false,"email":"hello@example.com"}` {
			t.Errorf("the worker's input = %s", got)
		}
		got, err := api.GetJobWithResponse(ctx, job.JobUuid, nil)
		if err != nil || got.JSON200 == nil || got.JSON200.JobUuid != job.JobUuid {
			t.Errorf("get = %v %v", got, err)
		}

		finishPod(t, pod, 0, readmeEmailResult)
		var done *openapiclient.Job
		eventually(t, "completed through the API", func(ctx context.Context) (bool, error) {
			got, err := api.GetJobWithResponse(ctx, job.JobUuid, &openapiclient.GetJobParams{Prefer: ptrTo("wait=10")})
			if err != nil || got.JSON200 == nil {
				return false, fmt.Errorf("%v %v", got, err)
			}
			done = got.JSON200
			return done.Status == openapiclient.StatusCompleted, fmt.Errorf("%+v", done)
		})
		if diff := jsonEqual(done.ResponseJson, readmeEmailResult); diff != "" || done.Attempts != 1 || done.CompletedAt == nil || done.Error != nil {
			t.Errorf("completed job = %+v; response_json (-want +got):\n%s", done, diff)
		}
	})

	t.Run("echo within Prefer: wait", func(t *testing.T) {
		type answer struct {
			r   *openapiclient.SubmitJobResponse
			err error
		}
		answered := make(chan answer, 1)
		go func() {
			r, err := api.SubmitJobWithResponse(ctx, echo.Name, &openapiclient.SubmitJobParams{Prefer: ptrTo("wait=60")}, input(map[string]any{"message": "hi"}, ""))
			answered <- answer{r, err}
		}()
		// Play the kubelet while the submission waits: the worker of the tenant's echo job answers.
		var pod *corev1.Pod
		eventually(t, "the echo job's pod", func(ctx context.Context) (bool, error) {
			list := &seekv1alpha1.SeekJobList{}
			if err := k8sClient.List(ctx, list, client.InNamespace(tenant)); err != nil {
				return false, err
			}
			for _, sj := range list.Items {
				if string(sj.Spec.WorkerName) == echo.Name {
					pods, err := podsOf(ctx, tenant, sj.Name)
					if err != nil || len(pods) == 0 {
						return false, fmt.Errorf("%d pods (%v)", len(pods), err)
					}
					pod = &pods[0]
					return true, nil
				}
			}
			return false, fmt.Errorf("no SeekJob of %s yet", echo.Name)
		})
		name := pod.Labels[seekv1alpha1.LabelJobName]
		result := fmt.Sprintf(`{"echo":"hi","job":%q}`, name)
		finishPod(t, pod, 0, result)
		a := <-answered
		if a.err != nil || a.r.JSON200 == nil {
			t.Fatalf("submit with Prefer: wait=60 = %v %v, want 200 with the finished job", a.r, a.err)
		}
		if job := a.r.JSON200; job.JobUuid != "job_"+name || job.Status != openapiclient.StatusCompleted || jsonEqual(job.ResponseJson, result) != "" {
			t.Errorf("echo job = %+v", job)
		}
		if h := a.r.Headers200; h == nil || h.PreferenceApplied == nil || *h.PreferenceApplied != "wait=60" {
			t.Errorf("Preference-Applied = %+v, want wait=60", h)
		}
	})

	t.Run("list jobs, a page at a time", func(t *testing.T) {
		r, err := api.ListJobsWithResponse(ctx, &openapiclient.ListJobsParams{Worker: &email.Name})
		if err != nil || r.JSON200 == nil || len(r.JSON200.Jobs) != 1 || r.JSON200.Jobs[0].JobUuid != emailJob || r.JSON200.NextCursor != nil {
			t.Fatalf("list the email-validator's jobs = %v %v, want the one job", r, err)
		}
		completed := openapiclient.StatusCompleted
		var seen []string
		params := &openapiclient.ListJobsParams{Status: &completed, Limit: ptrTo(1)}
		for page := 0; ; page++ {
			r, err := api.ListJobsWithResponse(ctx, params)
			if err != nil || r.JSON200 == nil || len(r.JSON200.Jobs) != 1 || page > 2 {
				t.Fatalf("page %d = %v %v", page, r, err)
			}
			seen = append(seen, r.JSON200.Jobs[0].Worker)
			if r.JSON200.NextCursor == nil {
				break
			}
			params.Cursor = r.JSON200.NextCursor
		}
		// Newest first, by name within the same second (creation times have whole seconds): both jobs
		// may well share theirs, so only the pages' contents are compared.
		slices.Sort(seen)
		if diff := cmp.Diff(slices.Sorted(slices.Values([]string{echo.Name, email.Name})), seen); diff != "" {
			t.Errorf("completed jobs, one per page (-want +got):\n%s", diff)
		}
		bad, err := api.ListJobsWithResponse(ctx, &openapiclient.ListJobsParams{Limit: ptrTo(101)})
		if err != nil || bad.JSON400 == nil || bad.JSON400.Error.Field == nil || *bad.JSON400.Error.Field != "limit" {
			t.Errorf("limit=101 = %v %v, want 400 naming limit", bad, err)
		}
	})

	t.Run("a batch: one job, one refused input", func(t *testing.T) {
		r, err := api.SubmitJobBatchWithResponse(ctx, email.Name, nil, openapiclient.BatchRequest{Inputs: []openapiclient.SubmitRequest{
			input(map[string]any{"email": "hello@example.com", "check_mx": false}, ""), input(map[string]any{"mail": 1}, ""),
		}})
		if err != nil || r.JSON202 == nil || len(r.JSON202.Items) != 2 {
			t.Fatalf("batch = %v %v", r, err)
		}
		job, err := r.JSON202.Items[0].AsJob()
		if err != nil || job.Status != openapiclient.StatusQueued || job.Worker != email.Name {
			t.Errorf("item 0 = %+v %v, want a queued job", job, err)
		}
		refused, err := r.JSON202.Items[1].AsError()
		if err != nil || refused.Error.Code != openapiclient.ErrorCodeInvalidInput {
			t.Errorf("item 1 = %+v %v, want invalid_input", refused, err)
		}
	})

	t.Run("cancel, with a timeout and a retention", func(t *testing.T) {
		r, err := api.SubmitJobWithResponse(ctx, email.Name, &openapiclient.SubmitJobParams{Timeout: ptrTo("90s"), Retention: ptrTo("72h")},
			input(map[string]any{"email": "x@y.z"}, ""))
		if err != nil || r.JSON202 == nil {
			t.Fatalf("submit = %v %v", r, err)
		}
		id := r.JSON202.JobUuid
		name := strings.TrimPrefix(id, "job_")
		waitForPod(t, tenant, name, 1)
		sj := &seekv1alpha1.SeekJob{}
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: tenant, Name: name}, sj); err != nil {
			t.Fatal(err)
		}
		if sj.Spec.Timeout == nil || sj.Spec.Timeout.Duration != 90*time.Second || sj.Spec.TTLAfterFinished == nil || sj.Spec.TTLAfterFinished.Duration != 72*time.Hour {
			t.Errorf("stored spec: timeout %v, ttlAfterFinished %v; want 90s and 72h", sj.Spec.Timeout, sj.Spec.TTLAfterFinished)
		}
		c, err := api.CancelJobWithResponse(ctx, id)
		if err != nil || c.JSON202 == nil || c.JSON202.JobUuid != id {
			t.Fatalf("cancel = %v %v", c, err)
		}
		eventually(t, "canceled through the API", func(ctx context.Context) (bool, error) {
			got, err := api.GetJobWithResponse(ctx, id, nil)
			if err != nil || got.JSON200 == nil {
				return false, fmt.Errorf("%v %v", got, err)
			}
			return got.JSON200.Status == openapiclient.StatusCanceled, fmt.Errorf("%+v", got.JSON200)
		})
		missing, err := api.CancelJobWithResponse(ctx, "job_no-such-job")
		if err != nil || missing.JSON404 == nil || missing.JSON404.Error.Code != openapiclient.ErrorCodeNotFound {
			t.Errorf("cancel a job that does not exist = %v %v, want 404 not_found", missing, err)
		}
	})

	t.Run("webhooks: a signed callback, redelivered, then a rotated secret", func(t *testing.T) {
		s, err := api.GetWebhookSecretWithResponse(ctx)
		if err != nil || s.JSON200 == nil || !strings.HasPrefix(s.JSON200.Secret, "whsec_") || s.JSON200.PreviousSecretExpiresAt != nil {
			t.Fatalf("webhook secret = %v %v", s, err)
		}
		secret := s.JSON200.Secret
		rc := newReceiver(t, nil)
		r, err := api.SubmitJobWithResponse(ctx, email.Name, nil, input(map[string]any{"email": "hello@example.com", "check_mx": false}, rc.url()))
		if err != nil || r.JSON202 == nil || r.JSON202.Callback == nil || r.JSON202.Callback.Url != rc.url() || r.JSON202.Callback.State != openapiclient.CallbackStateWaiting {
			t.Fatalf("submit with callback_url = %v %v", r, err)
		}
		id := r.JSON202.JobUuid
		finishPod(t, waitForPod(t, tenant, strings.TrimPrefix(id, "job_"), 1), 0, readmeEmailResult)
		call := rc.waitCalls(1)[0]
		if err := verify(t, secret, call); err != nil {
			t.Errorf("the delivery does not verify with the tenant's secret: %v", err)
		}
		if typ, data := call.payload(t); typ != "job.completed" || data["job_uuid"] != id || jsonEqual(data["response_json"], readmeEmailResult) != "" {
			t.Errorf("payload = %s", call.body)
		}
		eventually(t, "callback delivered, as the API shows it", func(ctx context.Context) (bool, error) {
			got, err := api.GetJobWithResponse(ctx, id, nil)
			if err != nil || got.JSON200 == nil || got.JSON200.Callback == nil {
				return false, fmt.Errorf("%v %v", got, err)
			}
			cb := got.JSON200.Callback
			return cb.State == openapiclient.CallbackStateDelivered && cb.LastStatusCode != nil && *cb.LastStatusCode == http.StatusNoContent, fmt.Errorf("%+v", cb)
		})
		again, err := api.RedeliverJobCallbackWithResponse(ctx, id)
		if err != nil || again.JSON202 == nil {
			t.Fatalf("redeliver = %v %v", again, err)
		}
		if second := rc.waitCalls(2)[1]; second.id() != call.id() {
			t.Errorf("redelivery webhook-id = %s, want the original %s", second.id(), call.id())
		}
		conflict, err := api.RedeliverJobCallbackWithResponse(ctx, emailJob) // no callback_url
		if err != nil || conflict.JSON409 == nil || conflict.JSON409.Error.Code != openapiclient.ErrorCodeNoCallback {
			t.Errorf("redeliver a job without a callback = %v %v, want 409 no_callback", conflict, err)
		}

		rot, err := api.RotateWebhookSecretWithResponse(ctx)
		if err != nil || rot.JSON200 == nil || rot.JSON200.Secret == secret || !strings.HasPrefix(rot.JSON200.Secret, "whsec_") || rot.JSON200.PreviousSecretExpiresAt == nil {
			t.Errorf("rotate = %v %v", rot, err)
		}
	})

	t.Run("no key, the probes and the document", func(t *testing.T) {
		anonymous := generatedClient(t, base, "")
		r, err := anonymous.ListWorkersWithResponse(ctx)
		if err != nil || r.JSON401 == nil || r.JSON401.Error.Code != openapiclient.ErrorCodeUnauthenticated {
			t.Errorf("list workers without a key = %v %v, want 401 unauthenticated", r, err)
		}
		live, err := anonymous.GetLivenessWithResponse(ctx)
		if err != nil || live.JSON200 == nil || live.JSON200.Status != openapiclient.Ok {
			t.Errorf("liveness = %v %v", live, err)
		}
		ready, err := anonymous.GetReadinessWithResponse(ctx)
		if err != nil || ready.JSON200 == nil || ready.JSON200.Status != openapiclient.Ok {
			t.Errorf("readiness = %v %v", ready, err)
		}
		doc, err := anonymous.GetOpenAPIDocumentWithResponse(ctx)
		if err != nil || doc.StatusCode() != http.StatusOK || !bytes.Equal(doc.Body, frontend.OpenAPI) {
			t.Errorf("GET /openapi.json = %v %v, want the document the client was generated from", doc, err)
		}
	})
}
