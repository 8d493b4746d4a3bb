package frontend

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "seek_frontend_requests_total",
		Help: "REST API requests, by route and status code.",
	}, []string{"route", "code"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "seek_frontend_request_duration_seconds",
		Help:    "REST API request latency, by route.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route"})
	registerOnce sync.Once
)

// registerMetrics adds the request metrics to controller-runtime's registry, which the frontend's
// metrics endpoint serves.
func registerMetrics() {
	registerOnce.Do(func() { metrics.Registry.MustRegister(requests, requestDuration) })
}

// instrument records each request's route, status and latency, and logs it (never the API key).
func instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		serveRecovering(next, rec, r)
		route := r.Pattern // set by the ServeMux; bounded, unlike the path
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		requestDuration.WithLabelValues(route).Observe(elapsed.Seconds())
		ctrl.Log.WithName("access").V(2).Info("Request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", elapsed.Round(time.Microsecond), "remote", r.RemoteAddr)
	})
}

// serveRecovering serves r, turning a panic into a logged 500 with the API's error shape (rather than
// a dropped connection).
func serveRecovering(next http.Handler, rec *statusRecorder, r *http.Request) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value, compared as net/http does
			panic(v)
		}
		ctrl.Log.WithName("api").Error(fmt.Errorf("panic: %v", v), "Handler panicked", "method", r.Method, "path", r.URL.Path, "stack", string(debug.Stack()))
		if !rec.wrote {
			writeError(rec, r, errors.New("handler panicked"))
		}
	}()
	next.ServeHTTP(rec, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (a streamed answer flushes and sets its
// own write deadline).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) WriteHeader(code int) {
	s.wrote = true
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
