package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/jobview"
	"github.com/seek-api/seek-operator/internal/signingkeys"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// Event reasons of the callback controller.
const (
	// EventCallbackFailed is emitted when a delivery is given up.
	EventCallbackFailed = "CallbackFailed"
)

// CallbackReconciler delivers a SeekJob's events to spec.callback.url, signed per Standard Webhooks,
// and owns status.callback, the delivery ledger: attempts, last status and error, next attempt time
// and delivered time live there, so they survive restarts and leader changes. It makes at most one
// attempt per reconcile and writes the ledger once after it.
type CallbackReconciler struct {
	Client client.Client
	// APIReader confirms, before an attempt, that the delivery is still due: the cache may not show
	// the ledger this controller wrote a moment ago, and acting on it would send a duplicate.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// HTTP makes the attempts: an SSRF-safe client that follows no redirects (webhook.Policy.NewClient).
	HTTP *http.Client
	// Policy checks the URL itself before every attempt, as the frontend does at submit: a SeekJob
	// created with kubectl is held to the same rules.
	Policy  webhook.Policy
	Keys    *signingkeys.Store
	Retry   retryPolicy
	Metrics *CallbackMetrics
	// Limiter caps each tenant's attempts in flight; a request over the cap waits without a worker.
	Limiter *tenantLimiter
	// WaitingRequeue is when a request waiting for its tenant's slot is reconciled again should its
	// wake-up be lost: the attempt timeout, by which time a slot has come free.
	WaitingRequeue time.Duration
}

// +kubebuilder:rbac:groups=seek-api.com,resources=seekjobs,verbs=get;list;watch
// +kubebuilder:rbac:groups=seek-api.com,resources=seekjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",namespace=seek-credentials,resources=secrets,verbs=get;list;watch;create

// Reconcile makes the job's next due delivery attempt, if any, and schedules the one after.
func (r *CallbackReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	defer r.Limiter.settle(req.NamespacedName)
	sj := &seekv1alpha1.SeekJob{}
	if err := r.Client.Get(ctx, req.NamespacedName, sj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if sj.Spec.Callback == nil || sj.DeletionTimestamp != nil {
		return ctrl.Result{}, nil
	}
	now := r.Clock.Now()
	ledger := planDeliveries(sj, now)
	if ledger == nil {
		return ctrl.Result{}, nil // no event yet
	}
	d, wait := due(ledger, now)
	if d != nil {
		if err := r.APIReader.Get(ctx, req.NamespacedName, sj); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if ledger = planDeliveries(sj, now); ledger == nil {
			return ctrl.Result{}, nil
		}
		d, wait = due(ledger, now)
	}
	var res *attemptResult
	if d != nil {
		var ok bool
		if res, ok = r.attemptInSlot(ctx, sj, d, now); ok {
			now = r.Clock.Now() // the schedule and Retry-After count from the answer
			recordAttempt(d, *res, now, r.Retry)
			ledger.State = summarize(ledger.Deliveries)
			_, wait = due(ledger, now)
		} else {
			// The tenant has all its attempts in flight: woken when one of them ends. The planned
			// ledger is written all the same.
			r.Metrics.deferred()
			d, wait = nil, r.WaitingRequeue
		}
	}
	if !equality.Semantic.DeepEqual(ledger, sj.Status.Callback) {
		before := sj.DeepCopy()
		sj.Status.Callback = ledger
		if err := r.Client.Status().Patch(ctx, sj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				// Our copy was stale: the newer version's watch event reconciles again, and the attempt, if
				// one was made, is repeated with the same webhook-id (deliveries are at least once).
				ctrl.LoggerFrom(ctx).V(4).Info("Callback ledger update skipped", "reason", apierrors.ReasonForError(err))
				return ctrl.Result{}, nil
			}
			return ctrl.Result{}, fmt.Errorf("write the callback ledger of %s: %w", klog.KObj(sj), err)
		}
	}
	if d != nil {
		r.observe(ctx, sj, d, res, now)
	}
	// Another delivery due now (a started and a terminal event) is picked up by the reconcile our own
	// status write triggers; a later one by RequeueAfter.
	return ctrl.Result{RequeueAfter: wait}, nil
}

// attemptInSlot makes the attempt in one of the tenant's slots, or returns false if it has none free.
// The slot is held for the HTTP attempt only: that is what a hanging receiver prolongs.
func (r *CallbackReconciler) attemptInSlot(ctx context.Context, sj *seekv1alpha1.SeekJob, d *seekv1alpha1.CallbackDelivery, now time.Time) (*attemptResult, bool) {
	if !r.Limiter.acquire(client.ObjectKeyFromObject(sj)) {
		return nil, false
	}
	defer r.Limiter.release(sj.Namespace)
	return r.attempt(ctx, sj, d, now), true
}

// attempt POSTs one event and classifies the answer. The result's err is shown to the tenant
// (status, REST last_error, events): transport errors are described without the addresses they name,
// which go to the log only.
func (r *CallbackReconciler) attempt(ctx context.Context, sj *seekv1alpha1.SeekJob, d *seekv1alpha1.CallbackDelivery, now time.Time) *attemptResult {
	log := ctrl.LoggerFrom(ctx)
	// Our own failures: the detail (which may name the apiserver's address) goes to the log only.
	internal := func(what string, err error) *attemptResult {
		log.Error(err, "Callback attempt not made", "step", what, "event", d.Event, "webhookID", d.ID)
		return &attemptResult{outcome: webhook.Retry, reason: failureInternal, err: "internal error " + what + "; the delivery is retried"}
	}
	data, err := json.Marshal(jobview.ToResponse(sj))
	if err != nil {
		return internal("encoding the payload", err)
	}
	body, err := json.Marshal(webhook.Payload{Type: d.Type, Timestamp: eventTime(sj, d.Event).UTC(), Data: data})
	if err != nil {
		return internal("encoding the payload", err)
	}
	keys, err := r.Keys.Get(ctx, sj.Namespace)
	if err != nil {
		return internal("reading the signing secret", err)
	}
	// The URL's own words: what it says about an address literal, the tenant wrote.
	if err := r.Policy.CheckURL(sj.Spec.Callback.URL); err != nil {
		return &attemptResult{outcome: webhook.Gone, reason: failureInvalidURL, err: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sj.Spec.Callback.URL, bytes.NewReader(body))
	if err != nil {
		return &attemptResult{outcome: webhook.Gone, reason: failureInvalidURL, err: "invalid callback URL: " + err.Error()}
	}
	if err := webhook.Headers(req.Header, keys.Signing(now), d.ID, now, body); err != nil {
		return internal("signing", err)
	}
	req.Header.Set("User-Agent", "seek-webhooks/1")
	start := time.Now()
	resp, err := r.HTTP.Do(req)
	r.Metrics.attemptDuration(time.Since(start))
	outcome, retryAfter := webhook.Classify(resp, err, now)
	res := &attemptResult{outcome: outcome, retryAfter: retryAfter}
	switch {
	case err != nil:
		reason, msg := webhook.DescribeTransportError(err)
		res.reason, res.err = string(reason), msg
		if reason == webhook.ReasonDestinationNotAllowed {
			// Worth the operator's attention: a tenant's URL leads into a range the policy keeps out.
			log.Info("Callback destination refused by the SSRF policy", "event", d.Event, "webhookID", d.ID, "error", err.Error())
		}
	default:
		res.statusCode = resp.StatusCode
		if outcome != webhook.Delivered {
			res.reason = failureHTTPStatus
			res.err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, webhook.ReadSnippet(resp.Body, 256))
		}
		// Drain a little so the connection can be reused; receivers' bodies are not read beyond that.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	log.V(2).Info("Delivered callback attempt", "event", d.Event, "webhookID", d.ID, "attempt", d.Attempts+1, "outcome", outcome, "status", res.statusCode, "error", errString(err))
	return res
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// observe records metrics and events of an attempt whose result was written.
func (r *CallbackReconciler) observe(ctx context.Context, sj *seekv1alpha1.SeekJob, d *seekv1alpha1.CallbackDelivery, res *attemptResult, now time.Time) {
	r.Metrics.attempted(d, res, now.Sub(eventTime(sj, d.Event)))
	if d.State == seekv1alpha1.CallbackFailed {
		r.Recorder.Eventf(sj, nil, corev1.EventTypeWarning, EventCallbackFailed, "Deliver",
			"Gave up delivering %s (webhook-id %s) after %d attempts: %s", d.Type, d.ID, d.Attempts, truncate(d.LastError, 512))
	}
}

// Failure reasons of attempts that are not transport errors (webhook.FailureReason), for the
// seek_callback_attempt_failures_total metric.
const (
	failureInvalidURL = "invalid_url"
	failureHTTPStatus = "http_status"
	failureInternal   = "internal"
)

// CallbackMetrics are the delivery metrics.
type CallbackMetrics struct {
	attempts *prometheus.CounterVec
	failures *prometheus.CounterVec
	waited   prometheus.Counter
	duration prometheus.Histogram
	latency  prometheus.Histogram
}

// NewCallbackMetrics creates the delivery metrics.
func NewCallbackMetrics() *CallbackMetrics {
	return &CallbackMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seek_callback_attempts_total",
			Help: "Callback delivery attempts, by outcome: delivered, retry (scheduled again) or failed (given up).",
		}, []string{"outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seek_callback_attempt_failures_total",
			Help: "Failed callback delivery attempts, by reason: destination_not_allowed, dns, timeout, connection_refused, tls, connection, http_status, invalid_url or internal.",
		}, []string{"reason"}),
		waited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seek_callback_attempts_waited_total",
			Help: "Due callback attempts that waited because their tenant had as many in flight as --callback-tenant-concurrency allows.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seek_callback_attempt_duration_seconds",
			Help:    "Time a callback receiver took to answer an attempt.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30},
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seek_callback_delivery_latency_seconds",
			Help:    "Time from a job event (start, or terminal state) to its successful delivery, retries included.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 86400, 259200},
		}),
	}
}

// Collectors are the metrics to register.
func (m *CallbackMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.attempts, m.failures, m.waited, m.duration, m.latency}
}

func (m *CallbackMetrics) deferred() {
	if m != nil {
		m.waited.Inc()
	}
}

func (m *CallbackMetrics) attemptDuration(d time.Duration) {
	if m != nil {
		m.duration.Observe(d.Seconds())
	}
}

func (m *CallbackMetrics) attempted(d *seekv1alpha1.CallbackDelivery, res *attemptResult, sinceEvent time.Duration) {
	if m == nil {
		return
	}
	if res.reason != "" {
		m.failures.WithLabelValues(res.reason).Inc()
	}
	switch d.State {
	case seekv1alpha1.CallbackDelivered:
		m.attempts.WithLabelValues("delivered").Inc()
		m.latency.Observe(sinceEvent.Seconds())
	case seekv1alpha1.CallbackFailed:
		m.attempts.WithLabelValues("failed").Inc()
	default:
		m.attempts.WithLabelValues("retry").Inc()
	}
}
