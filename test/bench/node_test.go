package main

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestParsePhases(t *testing.T) {
	known := []string{"a", "b", "c"}
	for _, tc := range []struct {
		list    string
		want    phaseSet
		wantErr bool
	}{
		{"", phaseSet{"a": true, "b": true, "c": true}, false},
		{"all", phaseSet{"a": true, "b": true, "c": true}, false},
		{"b", phaseSet{"b": true}, false},
		{"c, a", phaseSet{"a": true, "c": true}, false},
		{"a,d", nil, true},
	} {
		got, err := parsePhases(tc.list, known)
		if (err != nil) != tc.wantErr {
			t.Errorf("parsePhases(%q) error = %v, want error %t", tc.list, err, tc.wantErr)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parsePhases(%q) (-want +got):\n%s", tc.list, diff)
		}
	}
}

const apiserverMetrics = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="seek-api.com",resource="seekjobs",scope="resource",subresource="",verb="POST",version="v1alpha1"} 1000
apiserver_request_total{code="403",component="apiserver",dry_run="",group="seek-api.com",resource="seekjobs",scope="resource",subresource="",verb="POST",version="v1alpha1"} 3
apiserver_request_total{code="201",component="apiserver",dry_run="All",group="seek-api.com",resource="seekjobs",scope="resource",subresource="",verb="POST",version="v1alpha1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="seek-api.com",resource="seekjobs",scope="resource",subresource="status",verb="PUT",version="v1alpha1"} 2000
apiserver_request_total{code="409",component="apiserver",dry_run="",group="seek-api.com",resource="seekjobs",scope="resource",subresource="status",verb="PUT",version="v1alpha1"} 12
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 50
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="GET",version="v1"} 90
# HELP other_total other
# TYPE other_total counter
other_total 4
`

func TestAPIServerWrites(t *testing.T) {
	got, err := apiserverWrites([]byte(apiserverMetrics))
	if err != nil {
		t.Fatal(err)
	}
	want := counts{"POST seek-api.com/seekjobs": 1003, "PUT seek-api.com/seekjobs/status": 2012, "PATCH pods/status": 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("apiserverWrites (-want +got):\n%s", diff)
	}
	if _, err := apiserverWrites([]byte("not { metrics")); err == nil {
		t.Error("apiserverWrites accepted garbage")
	}
}

func TestClientWrites(t *testing.T) {
	text := `# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="10.96.0.1:443",method="GET"} 500
rest_client_requests_total{code="200",host="10.96.0.1:443",method="PUT"} 2000
rest_client_requests_total{code="409",host="10.96.0.1:443",method="PUT"} 4
rest_client_requests_total{code="201",host="10.96.0.1:443",method="POST"} 10
rest_client_requests_total{code="200",host="10.96.0.1:443",method="PATCH"} 3
`
	got, err := clientWrites([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(counts{"PUT": 2004, "POST": 10, "PATCH": 3}, got); diff != "" {
		t.Errorf("clientWrites (-want +got):\n%s", diff)
	}
}

func TestCounts(t *testing.T) {
	after := counts{"a": 10, "b": 5, "c": 1}
	before := counts{"a": 4, "b": 5}
	d := after.minus(before)
	if diff := cmp.Diff(counts{"a": 6, "c": 1}, d); diff != "" {
		t.Errorf("minus (-want +got):\n%s", diff)
	}
	if d.total() != 7 || !cmp.Equal(d.keys(), []string{"a", "c"}) {
		t.Errorf("total = %v, keys = %v", d.total(), d.keys())
	}
}

func TestCgroupCPU(t *testing.T) {
	if s, ok := parseCPUAcctUsage([]byte("1500000000\n")); !ok || s != 1.5 {
		t.Errorf("cpuacct.usage = %v %v, want 1.5", s, ok)
	}
	if _, ok := parseCPUAcctUsage([]byte("x")); ok {
		t.Error("cpuacct.usage accepted garbage")
	}
	if s, ok := parseCPUStat([]byte("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")); !ok || s != 2.5 {
		t.Errorf("cpu.stat = %v %v, want 2.5", s, ok)
	}
	if _, ok := parseCPUStat([]byte("user_usec 1\n")); ok {
		t.Error("cpu.stat without usage_usec read")
	}
	dirs := podCgroupDirs("/sys/fs/cgroup/cpuacct", "ab-cd")
	if !contains(dirs, "/sys/fs/cgroup/cpuacct/kubepods/besteffort/podab-cd") || !contains(dirs, "/sys/fs/cgroup/cpuacct/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podab_cd.slice") {
		t.Errorf("podCgroupDirs = %v", dirs)
	}
}

func TestCPUTracker(t *testing.T) {
	tr := newCPUTracker()
	tr.observe("manager", "manager", 100, true) // before the phase: its 100 s do not count
	tr.observe("gone", "pods", 1, false)        // a pod started during the phase, gone before the end
	tr.observe("pod", "pods", 2, false)
	tr.observe("manager", "manager", 103.5, false)
	tr.observe("gone", "pods", 1.5, false)
	tr.observe("pod", "pods", 4, false)
	want := map[string]float64{"manager": 3.5, "pods": 5.5}
	if diff := cmp.Diff(want, tr.seconds()); diff != "" {
		t.Errorf("seconds (-want +got):\n%s", diff)
	}
}

func TestPercentileMs(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 10; i++ {
		ds = append(ds, time.Duration(11-i)*100*time.Millisecond)
	}
	if p50, p90 := percentileMs(ds, 0.5), percentileMs(ds, 0.9); p50 != 500 || p90 != 900 {
		t.Errorf("p50, p90 = %v, %v, want 500, 900", p50, p90)
	}
	if percentileMs(nil, 0.5) != 0 || rate(10, 0) != 0 || rate(10, 2*time.Second) != 5 {
		t.Error("empty sample or zero time")
	}
}

func TestBatchNames(t *testing.T) {
	got, refused, err := batchNames([]byte(`{"items":[{"job_uuid":"job_a","status":"queued"},{"job_uuid":"job_b","status":"queued"}]}`), 2)
	if err != nil || !cmp.Equal(got, []string{"a", "b"}) || len(refused) != 0 {
		t.Errorf("batchNames = %v, %v, %v", got, refused, err)
	}
	got, refused, err = batchNames([]byte(`{"items":[{"job_uuid":"job_a"},{"error":{"code":"active_jobs_limit","message":"full"}},{}]}`), 3)
	if err != nil || !cmp.Equal(got, []string{"a", "", ""}) || !cmp.Equal(refused, []string{"1: active_jobs_limit full", "2: no job_uuid"}) {
		t.Errorf("refused items: %v, %v, %v", got, refused, err)
	}
	if _, _, err := batchNames([]byte(`{"items":[{"job_uuid":"job_a"}]}`), 2); err == nil {
		t.Error("a short response accepted")
	}
}

func TestBenchWorker(t *testing.T) {
	sample := testutil.MakeSeekWorker("echo").Image("reg/worker-echo:v1").MaxConcurrent(3).Obj()
	pooled := benchWorker(sample, "bench-echo-pooled-x", seekv1alpha1.ExecutionModePooled, 8, 4)
	if pooled.Name != "bench-echo-pooled-x" || pooled.Spec.Image != "reg/worker-echo:v1" || !cmp.Equal(pooled.Spec.Command, []string{"/echo"}) ||
		!pooled.Pooled() || pooled.Spec.Execution.Pool.MaxPods != 4 || *pooled.Spec.Limits.MaxConcurrentJobs != 8 {
		t.Errorf("pooled worker = %+v", pooled.Spec)
	}
	withCommand := testutil.MakeSeekWorker("email-validator").Command("/bin/validate").Obj()
	if w := benchWorker(withCommand, "w", seekv1alpha1.ExecutionModePooled, 0, 2); !cmp.Equal(w.Spec.Command, []string{"/bin/validate"}) || w.Spec.Limits.MaxConcurrentJobs != nil {
		t.Errorf("the sample's command is kept, no cap: %+v", w.Spec)
	}
	job := benchWorker(sample, "bench-echo-job-x", seekv1alpha1.ExecutionModeJob, 8, 4)
	if job.Pooled() || job.Spec.Execution.Pool != nil || len(job.Spec.Command) != 0 {
		t.Errorf("Job mode worker = %+v", job.Spec)
	}
	if sample.Spec.Execution.Mode != "" || *sample.Spec.Limits.MaxConcurrentJobs != 3 {
		t.Error("the sample was changed")
	}
}

func TestNodeReport(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	use := func(creates, managerPuts, events float64) resourceUse {
		return resourceUse{
			api:     counts{"POST seek-api.com/seekjobs": creates, "PUT seek-api.com/seekjobs/status": managerPuts, "POST events.k8s.io/events": events},
			manager: counts{"PUT": managerPuts, "POST": events},
			cpu:     map[string]float64{"manager": 2, "frontend": 0.5, "worker pods": 4, "kube-apiserver": 3, "etcd": 1, nodeBusyGroup: 12},
		}
	}
	r := &nodeReport{
		cfg:              nodeConfig{burstJobs: 500, concurrency: 16, maxConcurrent: 8, poolMaxPods: 4, controlPlaneB0: 900},
		latency:          &latencyResult{job: ms(1000, 1100, 900), pooled: ms(200, 150, 300)},
		jobBurst:         &batchResult{jobs: 500, call: 2 * time.Second, elapsed: 200 * time.Second, use: use(500, 2500, 1500)},
		jobBurstUncapped: &batchResult{jobs: 500, call: 2 * time.Second, elapsed: 100 * time.Second, use: use(500, 2000, 1500)},
		batchEcho:        &batchResult{jobs: 1000, call: 1500 * time.Millisecond, elapsed: 10 * time.Second, use: use(1000, 2000, 0)},
		batchEmail:       &batchResult{jobs: 998, call: 1800 * time.Millisecond, elapsed: 20 * time.Second, use: resourceUse{}, refused: []string{"7: unavailable busy", "9: unavailable busy"}},
		b0:               500,
	}
	var out bytes.Buffer
	if err := r.print(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []*regexpLine{
		{"echo one at a time", []string{"1000 / 1000", "200 / 200", "Pooled p50 ≤ 250"}},
		{"Job mode p50 / Pooled p50", []string{"5.0"}},
		{"500 jobs submitted at once (one request each), worker capped at 8", []string{"2.50"}},
		{"500 jobs submitted at once (one request each), worker no cap", []string{"5.00"}},
		{"control-plane phase", []string{"900"}},
		{"echo, 1000 jobs in one batch call: the call (s)", []string{"1.50", "≤ 2"}},
		{"ids/s of the call / B0", []string{"1.33"}},
		{"submit → last completed", []string{"100.0", "≥ 50"}},
		{"submit → last completed", []string{"49.9"}},
		{"email-validator (no MX lookups), 1000 jobs in one batch call", []string{"1.80"}},
		{"items refused (first: 7: unavailable busy)", []string{"2"}},
		{"creates + manager writes", []string{"9.00", "8.00", "3.00", "0.00"}},
		{"every write of a job's life, every client: submit to deletion", []string{"9.00", "3.00", "0.00"}},
		{"  PUT seek-api.com/seekjobs/status", []string{"5.00", "2.00"}},
		{"CPU ms, manager", []string{"4.0", "2.0", "n/a"}},
		{"CPU ms, kube-apiserver", []string{"6.0", "3.0", "n/a"}},
		{"CPU ms, kubelet", []string{"n/a"}}, // no kubelet process seen
		{"CPU ms, node, every process", []string{"24.0", "12.0", "n/a"}},
		// 12 s busy - 2 - 0.5 - 4 - 3 - 1 = 1.5 s over 1000 jobs.
		{"  of it not above", []string{"3.0", "1.5", "n/a"}},
		// 1000 jobs over 12 busy CPU seconds, on this machine's CPUs.
		{fmt.Sprintf("jobs/s %d CPUs carry", runtime.NumCPU()), []string{fmt.Sprintf("%.1f", float64(runtime.NumCPU())*1000/12)}},
	} {
		if !want.in(text) {
			t.Errorf("no line with %q and %q in:\n%s", want.prefix, want.parts, text)
		}
	}
}

// regexpLine is a line holding prefix and then every part.
type regexpLine struct {
	prefix string
	parts  []string
}

func (l *regexpLine) in(text string) bool {
	for _, line := range strings.Split(text, "\n") {
		if !strings.Contains(line, l.prefix) {
			continue
		}
		ok := true
		for _, p := range l.parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}
