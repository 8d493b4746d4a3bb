// Package frontend is the Seek REST API: it authenticates API keys, maps each key to its tenant
// namespace and translates requests into SeekJob custom resources and back. It only reads and writes
// CRs; every side effect stays in the controllers.
package frontend

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/jobview"
	"github.com/seek-api/seek-operator/internal/restapi"
	"github.com/seek-api/seek-operator/internal/signingkeys"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// OpenAPI is the OpenAPI 3.1 document of this API, served at GET /openapi.json. Tests validate real
// responses against it.
//
//go:embed openapi.json
var OpenAPI []byte

// DefaultMaxBodyBytes bounds a submission's body.
const DefaultMaxBodyBytes = 256 * 1024

// Server serves the REST API.
type Server struct {
	// Client writes SeekJobs and reads through the informer cache.
	Client client.Client
	// APIReader reads from the apiserver, for objects the cache may not show yet.
	APIReader client.Reader
	Keys      *KeyStore
	// MaxBodyBytes bounds a submission's body; DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
	// Ready reports whether the server can answer from its caches (GET /readyz); always ready when nil.
	Ready func(context.Context) error
	// Callbacks is the SSRF policy callback URLs are checked against at submit time; it must match the
	// manager's, which checks again at every delivery.
	Callbacks webhook.Policy
	// SigningKeys hold the tenants' webhook signing secrets.
	SigningKeys *signingkeys.Store
	// Logs reads the jobs' pods' logs (GET /v1/jobs/{id}/logs, which answers 503 when it is nil). The
	// pods themselves are read through APIReader, in the tenant's namespace only.
	Logs PodLogs
	// MaxLogFollows bounds the follow=true log answers streamed at once; DefaultMaxLogFollows when zero.
	MaxLogFollows int

	follows     atomic.Int32 // follow=true log answers streaming now
	limiterOnce sync.Once
	limiter     *rateLimiter
	// finished wakes Prefer: wait requests when the SeekJob informer sees their job finish; nil polls.
	finished *finishWaiters
	// queues, when set, makes read answers show a waiting job's queue position; its rates estimate the
	// wait. It needs the waitingWorkerField index on SeekJobs in Client.
	queues *finishRates
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/workers/{worker}/jobs", s.authed(apikeys.ScopeSubmit, s.submit))
	mux.Handle("POST /v1/workers/{worker}/jobs:batch", s.authed(apikeys.ScopeSubmit, s.submitBatch))
	mux.Handle("GET /v1/jobs", s.authed(apikeys.ScopeRead, s.listJobs))
	mux.Handle("GET /v1/jobs/{id}", s.authed(apikeys.ScopeRead, s.getJob))
	mux.Handle("GET /v1/jobs/{id}/logs", s.authed(apikeys.ScopeRead, s.jobLogs))
	mux.Handle("POST /v1/jobs/{id}/cancel", s.authed(apikeys.ScopeCancel, s.cancel))
	mux.Handle("POST /v1/jobs/{id}/callback:redeliver", s.authed(apikeys.ScopeSubmit, s.redeliver))
	mux.Handle("GET /v1/webhooks/secret", s.authed(apikeys.ScopeWebhooks, s.webhookSecret))
	mux.Handle("POST /v1/webhooks/secret:rotate", s.authed(apikeys.ScopeWebhooks, s.rotateWebhookSecret))
	mux.Handle("GET /v1/workers", s.authed(apikeys.ScopeRead, s.listWorkers))
	mux.Handle("GET /v1/workers/{worker}", s.authed(apikeys.ScopeRead, s.getWorker))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), time.Second)
			defer cancel()
			if err := s.Ready(ctx); err != nil {
				writeError(w, r, &restapi.Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: err.Error(), RetryAfter: 1})
				return
			}
		}
		_ = writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, &restapi.Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

func (s *Server) rateLimiter() *rateLimiter {
	s.limiterOnce.Do(func() { s.limiter = newRateLimiter() })
	return s.limiter
}

type handler func(w http.ResponseWriter, r *http.Request, p *Principal) error

// authed authenticates the request, checks the scope and renders the handler's error.
func (s *Server) authed(scope apikeys.Scope, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Keys.Authenticate(r.Context(), r)
		if err == nil {
			err = s.rateLimiter().take(p, 1)
		}
		if err == nil && !p.Can(scope) {
			err = &restapi.Error{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf("this API key lacks the %q scope", scope)}
		}
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			writeError(w, r, err)
		}
	})
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, p *Principal) error {
	workerName := r.PathValue("worker")
	wait, err := preferWait(r) // every check comes before the create: no error once the job is stored
	if err != nil {
		return err
	}
	if err := checkContentType(r); err != nil {
		return err
	}
	worker, err := s.worker(r.Context(), workerName)
	if err != nil {
		return err
	}
	opts, err := restapi.ParseJobOptions(r.URL.Query(), worker)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, s.bodyLimit())
	if err != nil {
		return err
	}
	req, err := restapi.ParseSubmit(workerName, body, opts)
	if err != nil {
		return err
	}
	sj, created, err := s.createJob(r.Context(), p, worker, req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if !created {
		return writeJSON(w, http.StatusOK, jobview.ToResponse(sj))
	}
	if wait > 0 {
		w.Header().Set("Preference-Applied", fmt.Sprintf("wait=%d", int(wait/time.Second)))
		if done := s.awaitFinished(r.Context(), sj, wait); done != nil {
			resp := jobview.ToResponse(done)
			if err := s.inlineLargeResult(r.Context(), done, resp); err != nil {
				return err
			}
			return writeJSON(w, http.StatusOK, resp)
		}
	}
	return writeJSON(w, http.StatusAccepted, jobview.ToResponse(sj))
}

func (s *Server) bodyLimit() int64 {
	if s.MaxBodyBytes <= 0 {
		return DefaultMaxBodyBytes
	}
	return s.MaxBodyBytes
}

// checkContentType accepts the media types a JSON body may be declared as: none, application/json,
// application/*+json (parameters such as charset=utf-8 allowed), and application/x-www-form-urlencoded,
// which curl -d sends (the body is still read as JSON). Anything else is a 415.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || mt == "application/x-www-form-urlencoded" ||
		(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	return &restapi.Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Field: "Content-Type",
		Message: fmt.Sprintf("the body must be JSON (Content-Type application/json), not %q", abbreviate(ct))}
}

// abbreviate shortens a client's text quoted in a message.
func abbreviate(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &restapi.Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("the body exceeds %d bytes", limit)}
	}
	if err != nil {
		return nil, &restapi.Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: "reading the body: " + err.Error()}
	}
	return body, nil
}

// createJob validates a parsed submission against its worker and stores its SeekJob. With an
// idempotency key, a repeat of the same request returns the existing job (created false) and a
// different request with the same key is a 422.
func (s *Server) createJob(ctx context.Context, p *Principal, worker *seekv1alpha1.SeekWorker, req *restapi.SubmitRequest, idempotencyKey string) (*seekv1alpha1.SeekJob, bool, error) {
	if err := restapi.CheckInput(worker, req.Input); err != nil {
		return nil, false, err
	}
	if req.CallbackURL != "" {
		if err := restapi.CheckCallbackURL(s.Callbacks, req.CallbackURL); err != nil {
			return nil, false, err
		}
	}
	name, err := restapi.JobName(p.Tenant, idempotencyKey)
	if err != nil {
		return nil, false, err
	}
	sj := restapi.NewSeekJob(p.Tenant, name, worker.Name, req, idempotencyKey != "")
	// A create conflicts only in admission: the apiserver could not record it in the namespace's
	// ResourceQuota, which others were updating at the same moment (the quota controllers; the creates
	// of one group of waiters fail together). Nothing was stored: try again.
	err = retry.OnError(retry.DefaultRetry, apierrors.IsConflict, func() error { return s.Client.Create(ctx, sj) })
	if apierrors.IsConflict(err) {
		return nil, false, &restapi.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the job store is busy; retry shortly", RetryAfter: 1}
	}
	quota := isQuotaExceeded(err)
	// Quota admission runs before the store sees the name is taken: a repeat of a request that did create
	// its job is still answered with that job.
	if (apierrors.IsAlreadyExists(err) || quota) && idempotencyKey != "" {
		existing := &seekv1alpha1.SeekJob{}
		getErr := s.APIReader.Get(ctx, client.ObjectKeyFromObject(sj), existing)
		if quota && apierrors.IsNotFound(getErr) {
			return nil, false, activeJobsLimit(err)
		}
		if getErr != nil {
			return nil, false, getErr
		}
		if err := restapi.SameRequest(existing, req); err != nil {
			return nil, false, err
		}
		return existing, false, nil
	}
	if quota {
		return nil, false, activeJobsLimit(err)
	}
	if err != nil {
		return nil, false, err
	}
	return sj, true, nil
}

// ActiveJobsRetryAfter is the Retry-After, in seconds, of a submission refused by the tenant's quota.
const ActiveJobsRetryAfter = 10

// isQuotaExceeded reports whether the apiserver refused a create because a ResourceQuota of the
// namespace (count/seekjobs.seek-api.com) is used up.
func isQuotaExceeded(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota")
}

// activeJobsLimit is the 429 for a create the tenant's quota refused. The quota caps the tenant's
// unfinished jobs (see docs/tenants.md); the apiserver's counts include finished ones, so only the
// quota's name is repeated.
func activeJobsLimit(err error) *restapi.Error {
	quota := "its ResourceQuota on SeekJobs"
	if _, detail, ok := strings.Cut(err.Error(), "exceeded quota: "); ok {
		if name, _, ok := strings.Cut(detail, ","); ok && name != "" {
			quota = "ResourceQuota " + name
		}
	}
	return &restapi.Error{Status: http.StatusTooManyRequests, Code: "active_jobs_limit", RetryAfter: ActiveJobsRetryAfter,
		Message: "the tenant has as many unfinished jobs as " + quota + " allows; retry when some have finished"}
}

// isQuotaUnknown reports whether the apiserver refused a create because it has not yet counted a
// ResourceQuota of the namespace (for a moment after the quota is created): a transient refusal.
func isQuotaUnknown(err error) bool {
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), "status unknown for quota")
}

// Batch bounds.
const (
	MaxBatchItems = restapi.MaxBatchItems
	// batchConcurrency bounds the creates one batch runs at once. The apiserver admits the creates of
	// one namespace against its ResourceQuota one group at a time (one quota status write per group of
	// waiting creates), so the more creates wait together, the fewer quota writes a batch costs: 64 in
	// flight made a 1,000-input batch about twice as fast as 16 (test/bench). API Priority and Fairness
	// (the frontend's own priority level) bounds what the apiserver runs at once.
	batchConcurrency = 64
)

// batchItem is one input's outcome: its job, or its error.
type batchItem struct {
	*jobview.JobResponse
	Error *restapi.Error `json:"error,omitempty"`
}

// MarshalJSON renders a job, or {"error": {...}} for a failed item.
func (b batchItem) MarshalJSON() ([]byte, error) {
	if b.Error != nil {
		return json.Marshal(b.Error)
	}
	return json.Marshal(b.JobResponse)
}

// submitBatch creates one job per input, in order, each succeeding or failing on its own. With an
// Idempotency-Key, item i uses the key "<key>#<i>".
//
// Each item costs one token of the key's rate limit, taken up front for the whole batch (the request's
// own token counts as the first item's): a batch the bucket cannot pay for now is a 429 that creates
// nothing, and a batch larger than the key's burst is a 400.
func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := checkContentType(r); err != nil {
		return err
	}
	worker, err := s.worker(r.Context(), r.PathValue("worker"))
	if err != nil {
		return err
	}
	opts, err := restapi.ParseJobOptions(r.URL.Query(), worker)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, 16*s.bodyLimit())
	if err != nil {
		return err
	}
	inputs, err := restapi.ParseBatch(body)
	if err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > restapi.MaxIdempotencyKeyLength-5 {
		return &restapi.Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "Idempotency-Key", Message: fmt.Sprintf("a batch's Idempotency-Key must be at most %d characters", restapi.MaxIdempotencyKeyLength-5)}
	}
	if err := checkBatch(p, len(inputs)); err != nil {
		return err
	}
	if err := s.rateLimiter().take(p, len(inputs)-1); err != nil { // the request took the first token
		return err
	}
	items := make([]batchItem, len(inputs))
	sem := make(chan struct{}, batchConcurrency)
	var wg sync.WaitGroup
	for i, raw := range inputs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			itemKey := ""
			if key != "" {
				itemKey = fmt.Sprintf("%s#%d", key, i)
			}
			req, err := restapi.ParseSubmit(worker.Name, raw, opts)
			var sj *seekv1alpha1.SeekJob
			if err == nil {
				sj, _, err = s.createJob(r.Context(), p, worker, req, itemKey)
			}
			if err != nil {
				items[i].Error = toAPIError(r, err)
				return
			}
			items[i].JobResponse = jobview.ToResponse(sj)
		})
	}
	wg.Wait()
	return writeJSON(w, http.StatusAccepted, struct {
		Items []batchItem `json:"items"`
	}{items})
}

// MaxWait bounds Prefer: wait.
const MaxWait = 60 * time.Second

// preferWait parses "Prefer: wait=N" (RFC 7240), N in seconds, at most MaxWait; 0 when absent.
func preferWait(r *http.Request) (time.Duration, error) {
	for _, pref := range strings.Split(r.Header.Get("Prefer"), ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(pref), "wait=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > int(MaxWait/time.Second) { // compared in seconds: n*time.Second may overflow
			return 0, &restapi.Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "Prefer",
				Message: fmt.Sprintf("Prefer: wait=N takes N from 0 to %d seconds", int(MaxWait/time.Second))}
		}
		return time.Duration(n) * time.Second, nil
	}
	return 0, nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, p *Principal) error {
	sj, err := s.job(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	wait, err := preferWait(r)
	if err != nil {
		return err
	}
	if wait > 0 && !sj.Status.State.IsTerminal() {
		w.Header().Set("Preference-Applied", fmt.Sprintf("wait=%d", int(wait/time.Second)))
		if done := s.awaitFinished(r.Context(), sj, wait); done != nil {
			sj = done
		}
	}
	return s.writeJobs(w, r, http.StatusOK, []*seekv1alpha1.SeekJob{sj}, func(jobs []*jobview.JobResponse) (any, error) {
		return jobs[0], s.inlineLargeResult(r.Context(), sj, jobs[0])
	})
}

// writeJobs renders jobs, with the queue positions of those waiting, as shape makes them into the answer.
func (s *Server) writeJobs(w http.ResponseWriter, r *http.Request, status int, jobs []*seekv1alpha1.SeekJob, shape func([]*jobview.JobResponse) (any, error)) error {
	var queues map[string]*jobview.Queue
	if s.queues != nil {
		var err error
		if queues, err = s.queuePositions(r.Context(), jobs); err != nil {
			return err
		}
	}
	out := make([]*jobview.JobResponse, len(jobs))
	for i, sj := range jobs {
		out[i] = jobview.ToResponse(sj)
		out[i].Queue = queues[sj.Namespace+"/"+sj.Name]
	}
	answer, err := shape(out)
	if err != nil {
		return err
	}
	return writeJSON(w, status, answer)
}

// List bounds.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
)

// listJobs lists the tenant's jobs, newest first, filtered by worker and status, a page at a time.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, p *Principal) error {
	q := r.URL.Query()
	limit := DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			return &restapi.Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "limit", Message: fmt.Sprintf("limit must be an integer from 1 to %d", MaxListLimit)}
		}
		limit = n
	}
	status := q.Get("status")
	if status != "" && !jobview.IsStatus(status) {
		return &restapi.Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "status", Message: "status must be one of " + strings.Join(jobview.Statuses, ", ")}
	}
	after, err := restapi.ParseCursor(q.Get("cursor"))
	if err != nil {
		return err
	}
	list := &seekv1alpha1.SeekJobList{}
	// The cache's objects themselves, only read: a tenant with 100,000 retained jobs must not cost a
	// deep copy of each per page. The answer renders the page's jobs into new values.
	if err := s.Client.List(r.Context(), list, client.InNamespace(p.Tenant), client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	page, next := restapi.Page(list.Items, q.Get("worker"), status, after, limit)
	// A page holds up to 100 jobs: their large results (up to 1 MiB each) are left out
	// (response_omitted), so a page stays small and costs no Secret read.
	return s.writeJobs(w, r, http.StatusOK, page, func(jobs []*jobview.JobResponse) (any, error) {
		return struct {
			Jobs       []*jobview.JobResponse `json:"jobs"`
			NextCursor *string                `json:"next_cursor"`
		}{Jobs: jobs, NextCursor: next}, nil
	})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, p *Principal) error {
	sj, err := s.job(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	if sj.Spec.CancelRequest == nil && !sj.Status.State.IsTerminal() {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"cancelRequest":{"reason":"canceled through the API"}}}`))
		if err := s.Client.Patch(r.Context(), sj, patch); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusAccepted, jobview.ToResponse(sj))
}

// redeliver asks the callback controller to deliver a finished job's events again, through the
// seek-api.com/redeliver annotation (what a kubectl user would set).
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request, p *Principal) error {
	sj, err := s.job(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	switch {
	case sj.Spec.Callback == nil:
		return &restapi.Error{Status: http.StatusConflict, Code: "no_callback", Message: "this job has no callback_url"}
	case sj.Status.Callback == nil || sj.Status.Callback.State == seekv1alpha1.CallbackPending || !sj.Status.State.IsTerminal():
		return &restapi.Error{Status: http.StatusConflict, Code: "callback_pending", Message: "the job's callback is not settled yet: redeliver a finished job whose callback was delivered or failed"}
	}
	value := strconv.FormatInt(time.Now().UnixNano(), 10)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{seekv1alpha1.AnnotationRedeliver: value}}})
	if err != nil {
		return err
	}
	if err := s.Client.Patch(r.Context(), sj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, jobview.ToResponse(sj))
}

// WebhookSecretResponse is the tenant's signing secret.
type WebhookSecretResponse struct {
	Secret                  string     `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

func toWebhookSecretResponse(k *signingkeys.Keys) WebhookSecretResponse {
	out := WebhookSecretResponse{Secret: k.Current}
	if k.Previous != "" && k.PreviousExpiresAt != nil && time.Now().Before(*k.PreviousExpiresAt) {
		out.PreviousSecretExpiresAt = k.PreviousExpiresAt
	}
	return out
}

func (s *Server) webhookSecret(w http.ResponseWriter, r *http.Request, p *Principal) error {
	k, err := s.SigningKeys.Get(r.Context(), p.Tenant)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWebhookSecretResponse(k))
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, p *Principal) error {
	k, err := s.SigningKeys.Rotate(r.Context(), p.Tenant)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWebhookSecretResponse(k))
}

// WorkerResponse is a worker in the catalogue.
type WorkerResponse struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

func toWorkerResponse(sw *seekv1alpha1.SeekWorker) WorkerResponse {
	schema := json.RawMessage("null")
	if !sw.Spec.InputSchema.IsNull() {
		schema = json.RawMessage(sw.Spec.InputSchema.Raw)
	}
	return WorkerResponse{Name: sw.Name, Description: sw.Spec.Description, InputSchema: schema}
}

func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	list := &seekv1alpha1.SeekWorkerList{}
	if err := s.Client.List(r.Context(), list); err != nil {
		return err
	}
	out := struct {
		Workers []WorkerResponse `json:"workers"`
	}{Workers: []WorkerResponse{}}
	for i := range list.Items {
		out.Workers = append(out.Workers, toWorkerResponse(&list.Items[i]))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) getWorker(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	sw, err := s.worker(r.Context(), r.PathValue("worker"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWorkerResponse(sw))
}

func (s *Server) worker(ctx context.Context, name string) (*seekv1alpha1.SeekWorker, error) {
	sw := &seekv1alpha1.SeekWorker{}
	err := s.Client.Get(ctx, types.NamespacedName{Name: name}, sw)
	if apierrors.IsNotFound(err) {
		return nil, restapi.WorkerNotFound(name)
	}
	return sw, err
}

// job returns the tenant's SeekJob with the given id, asking the apiserver when the cache has not
// seen it yet (read-after-write). Another tenant's job is simply not found.
func (s *Server) job(ctx context.Context, p *Principal, id string) (*seekv1alpha1.SeekJob, error) {
	name, err := restapi.NameFromID(id)
	if err != nil {
		return nil, err
	}
	key := types.NamespacedName{Namespace: p.Tenant, Name: name}
	sj := &seekv1alpha1.SeekJob{}
	err = s.Client.Get(ctx, key, sj)
	if apierrors.IsNotFound(err) {
		err = s.APIReader.Get(ctx, key, sj)
	}
	if apierrors.IsNotFound(err) {
		return nil, &restapi.Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no job %q", id)}
	}
	return sj, err
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// writeError renders any error in the API's error shape.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	apiErr := toAPIError(r, err)
	if apiErr.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(apiErr.RetryAfter))
	}
	_ = writeJSON(w, apiErr.Status, apiErr)
}

// isBrokenConnection reports whether err is the apiserver's connection breaking under a request (a
// killed apiserver resets it while the answer is read): the request may or may not have taken effect,
// which a retry with the same Idempotency-Key settles.
func isBrokenConnection(err error) bool {
	// A *url.Error (the client's failed round trip: refused, reset, timed out) is a net.Error too.
	var netErr net.Error
	return errors.As(err, &netErr) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err)
}

// storeUnavailable is the 503 with Retry-After for a request the apiserver could not serve now.
func storeUnavailable() *restapi.Error {
	return &restapi.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the job store is unavailable; retry shortly", RetryAfter: 1}
}

// toAPIError maps an error to the API's shape. Errors that are not API errors are the apiserver's:
// unavailable → 503 with Retry-After, anything else → 500 without internals (logged).
func toAPIError(r *http.Request, err error) *restapi.Error {
	if apiErr, ok := restapi.IsAPIError(err); ok {
		return apiErr
	}
	switch {
	case apierrors.IsServiceUnavailable(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsTooManyRequests(err), errors.Is(err, context.DeadlineExceeded), isQuotaUnknown(err), isBrokenConnection(err):
		return storeUnavailable()
	case apierrors.IsForbidden(err):
		// The frontend's own request was refused (a tenant's quota is answered before this): a restarted
		// apiserver answers 403 until its RBAC is loaded (docs/chaos.md). Transient then; logged, as a
		// lasting refusal is a misconfigured release.
		ctrl.LoggerFrom(r.Context()).Error(err, "The apiserver refused the frontend's request", "method", r.Method, "path", r.URL.Path)
		return storeUnavailable()
	default:
		ctrl.LoggerFrom(r.Context()).Error(err, "Request failed", "method", r.Method, "path", r.URL.Path)
		return &restapi.Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
}
