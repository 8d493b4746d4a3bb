package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricSum(t *testing.T) {
	reg := prometheus.NewRegistry()
	reconciles := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "controller_runtime_reconcile_total"}, []string{"controller", "result"})
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "workqueue_depth"}, []string{"name"})
	reg.MustRegister(reconciles, depth)
	reconciles.WithLabelValues("seekjob", "success").Add(5)
	reconciles.WithLabelValues("seekjob", "error").Add(2)
	reconciles.WithLabelValues("seekworker", "success").Add(3)
	depth.WithLabelValues("seekjob").Set(4)
	depth.WithLabelValues("seekworker").Set(1)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{"controller_runtime_reconcile_total", map[string]string{"controller": "seekjob"}, 7},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "seekjob", "result": "error"}, 2},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "absent"}, 0},
		{"workqueue_depth", nil, 5},
		{"absent_metric", nil, 0},
	} {
		if got := metricSum(families, tc.name, tc.match); got != tc.want {
			t.Errorf("metricSum(%s, %v) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
}

func TestPerRetained(t *testing.T) {
	for _, tc := range []struct {
		without, with int64
		n             int
		want          float64
	}{
		{1 << 20, 1<<20 + 5000*2048, 5000, 2048},
		{1 << 20, 1 << 19, 10, -52428.8}, // a smaller heap with the jobs shows as such, not hidden
		{1 << 20, 2 << 20, 0, 0},
	} {
		if got := perRetained(tc.without, tc.with, tc.n); got != tc.want {
			t.Errorf("perRetained(%d, %d, %d) = %v, want %v", tc.without, tc.with, tc.n, got, tc.want)
		}
	}
}

func TestBracketRatio(t *testing.T) {
	for _, tc := range []struct {
		before, with, after, want float64
	}{
		{20, 18, 20, 0.9},
		{22, 20, 18, 1},  // the machine slowed down steadily: the retained jobs cost nothing
		{20, 18, 0, 0.9}, // not measured after
		{0, 10, 0, 0},
	} {
		if got := bracketRatio(tc.before, tc.with, tc.after); got != tc.want {
			t.Errorf("bracketRatio(%v, %v, %v) = %v, want %v", tc.before, tc.with, tc.after, got, tc.want)
		}
	}
}
