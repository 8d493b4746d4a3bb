package controllers

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// Metrics are the job metrics the controllers export next to controller-runtime's own.
type Metrics struct {
	// Callbacks are the webhook delivery metrics.
	Callbacks *CallbackMetrics

	finished *prometheus.CounterVec
	duration *prometheus.HistogramVec
	latency  *prometheus.HistogramVec
	byState  *jobsByState

	// The dispatch endpoint's (pooled execution).
	leases    *prometheus.CounterVec
	leaseWait *prometheus.HistogramVec
	reports   *prometheus.CounterVec
}

// leaseWaitBuckets bound the time a runner's lease call waits for a job: at most dispatch.LeaseWait.
var leaseWaitBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20}

var durationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// NewMetrics creates the job metrics. reader lists SeekJobs (from the cache) when the jobs-by-state
// gauge is scraped.
func NewMetrics(reader client.Reader) *Metrics {
	return &Metrics{
		Callbacks: NewCallbackMetrics(),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seek_jobs_finished_total",
			Help: "SeekJobs that reached a terminal state, by worker, state and reason.",
		}, []string{"worker", "state", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seek_job_execution_duration_seconds",
			Help:    "Time from the start of a SeekJob's worker container to its terminal state (jobs that started), by worker and state.",
			Buckets: durationBuckets,
		}, []string{"worker", "state"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seek_job_end_to_end_duration_seconds",
			Help:    "Time from a SeekJob's creation to its terminal state, queueing included, by worker and state.",
			Buckets: durationBuckets,
		}, []string{"worker", "state"}),
		leases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seek_dispatch_leases_total",
			Help: "Attempts of pooled SeekJobs leased to pool pods, by worker.",
		}, []string{"worker"}),
		leaseWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seek_dispatch_lease_wait_seconds",
			Help:    "Time a pool pod's lease call waited before it got a job (calls that got one), by worker.",
			Buckets: leaseWaitBuckets,
		}, []string{"worker"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seek_dispatch_reports_total",
			Help: "Outcome reports of pool pods, by worker and whether they were accepted (a refused one is of an attempt the pod no longer held).",
		}, []string{"worker", "accepted"}),
		byState: &jobsByState{
			reader: reader,
			desc:   prometheus.NewDesc("seek_jobs", "SeekJobs currently stored, by worker and state.", []string{"worker", "state"}, nil),
		},
	}
}

// Register adds the metrics to a registry (controller-runtime's metrics.Registry in the manager) and
// returns a function that removes them again, so a process can run the manager more than once.
func (m *Metrics) Register(reg prometheus.Registerer) (unregister func(), err error) {
	collectors := append([]prometheus.Collector{m.finished, m.duration, m.latency, m.byState, m.leases, m.leaseWait, m.reports},
		m.Callbacks.Collectors()...)
	unregister = func() {
		for _, c := range collectors {
			reg.Unregister(c)
		}
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			unregister()
			return nil, err
		}
	}
	return unregister, nil
}

// observeTransition records a state change that was written to the apiserver.
func (m *Metrics) observeTransition(before, after *seekv1alpha1.SeekJob) {
	if m == nil || !after.Status.State.IsTerminal() || before.Status.State.IsTerminal() {
		return
	}
	worker, state := string(after.Spec.WorkerName), string(after.Status.State)
	reason := ""
	if after.Status.Error != nil {
		reason = after.Status.Error.Reason
	}
	m.finished.WithLabelValues(worker, state, reason).Inc()
	if after.Status.Duration != nil {
		m.duration.WithLabelValues(worker, state).Observe(after.Status.Duration.Seconds())
	}
	if after.Status.CompletionTime != nil {
		m.latency.WithLabelValues(worker, state).Observe(after.Status.CompletionTime.Sub(after.CreationTimestamp.Time).Seconds())
	}
}

// jobsByState counts SeekJobs by worker and state at scrape time, from the informer cache.
type jobsByState struct {
	reader client.Reader
	desc   *prometheus.Desc
}

func (c *jobsByState) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *jobsByState) Collect(ch chan<- prometheus.Metric) {
	list := &seekv1alpha1.SeekJobList{}
	if err := c.reader.List(context.Background(), list); err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	type key struct{ worker, state string }
	counts := map[key]int{}
	for i := range list.Items {
		sj := &list.Items[i]
		state := sj.Status.State
		if state == "" {
			state = seekv1alpha1.JobStateQueued
		}
		counts[key{string(sj.Spec.WorkerName), string(state)}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k.worker, k.state)
	}
}

// observeLease records a lease given to a pool pod after waiting for it.
func (m *Metrics) observeLease(worker string, waited time.Duration) {
	if m == nil || m.leases == nil {
		return
	}
	m.leases.WithLabelValues(worker).Inc()
	m.leaseWait.WithLabelValues(worker).Observe(waited.Seconds())
}

// observeReport records a pool pod's report, accepted or refused.
func (m *Metrics) observeReport(worker string, accepted bool) {
	if m == nil || m.reports == nil {
		return
	}
	m.reports.WithLabelValues(worker, strconv.FormatBool(accepted)).Inc()
}
