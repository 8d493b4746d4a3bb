package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// What the real-node phases count of the cluster's work: API writes, from the metrics of the apiserver
// (every client, by verb and resource) and of the manager (its own client, by method), and CPU seconds
// of pods, from their cgroups.

// writeVerbs are the verbs of apiserver_request_total that change something.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true, "DELETECOLLECTION": true, "APPLY": true}

// counts are request counts by a key.
type counts map[string]float64

func (c counts) minus(o counts) counts {
	d := counts{}
	for k, v := range c {
		if v-o[k] != 0 {
			d[k] = v - o[k]
		}
	}
	return d
}

func (c counts) total() float64 {
	var t float64
	for _, v := range c {
		t += v
	}
	return t
}

func (c counts) keys() []string { return slices.Sorted(maps.Keys(c)) }

// parseFamilies parses the Prometheus text format.
func parseFamilies(text []byte) (map[string][]sampleValue, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, err
	}
	out := map[string][]sampleValue{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := m.GetCounter().GetValue()
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter == nil:
				v = m.GetUntyped().GetValue()
			}
			out[name] = append(out[name], sampleValue{labels: labels, value: v})
		}
	}
	return out, nil
}

type sampleValue struct {
	labels map[string]string
	value  float64
}

// apiserverWrites sums apiserver_request_total over the write verbs, by "VERB resource[/subresource]"
// (resource as group/resource for named groups), every response code included: a refused or
// conflicting write is still a write.
func apiserverWrites(text []byte) (counts, error) {
	fams, err := parseFamilies(text)
	if err != nil {
		return nil, err
	}
	c := counts{}
	for _, s := range fams["apiserver_request_total"] {
		verb := s.labels["verb"]
		if !writeVerbs[verb] || s.labels["dry_run"] != "" {
			continue
		}
		res := s.labels["resource"]
		if g := s.labels["group"]; g != "" {
			res = g + "/" + res
		}
		if sub := s.labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		c[verb+" "+res] += s.value
	}
	return c, nil
}

// clientWrites sums a client-go process's rest_client_requests_total over the methods that change
// something, by method.
func clientWrites(text []byte) (counts, error) {
	fams, err := parseFamilies(text)
	if err != nil {
		return nil, err
	}
	c := counts{}
	for _, s := range fams["rest_client_requests_total"] {
		switch m := strings.ToUpper(s.labels["method"]); m {
		case "GET", "HEAD", "OPTIONS":
		default:
			c[m] += s.value
		}
	}
	return c, nil
}

// metricsReader reads the apiserver's metrics and the manager's (through the apiserver's pod proxy).
type metricsReader struct {
	cs        kubernetes.Interface
	namespace string // the manager's
}

func (m *metricsReader) apiserver(ctx context.Context) (counts, error) {
	raw, err := m.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("apiserver metrics: %w", err)
	}
	return apiserverWrites(raw)
}

// manager sums the writes of every manager pod (one unless it is being replaced).
func (m *metricsReader) manager(ctx context.Context) (counts, error) {
	pods, err := m.cs.CoreV1().Pods(m.namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=manager"})
	if err != nil {
		return nil, err
	}
	total := counts{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		raw, err := m.cs.CoreV1().Pods(m.namespace).ProxyGet("http", p.Name, "8080", "/metrics", nil).DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", p.Name, err)
		}
		c, err := clientWrites(raw)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", p.Name, err)
		}
		for k, v := range c {
			total[k] += v
		}
	}
	return total, nil
}

// cgroupRoots are where a pod's cgroup may be, by cgroup version and kubelet QoS class (cgroupfs
// driver): v1's cpuacct hierarchy, then the v2 unified one.
var cgroupRoots = []string{"/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"}

// podCgroupDirs are the candidate cgroup directories of a pod.
func podCgroupDirs(root string, uid types.UID) []string {
	var dirs []string
	for _, qos := range []string{"", "burstable", "besteffort"} {
		dirs = append(dirs, filepath.Join(root, "kubepods", qos, "pod"+string(uid)),
			filepath.Join(root, "kubepods.slice", "kubepods-"+qos+".slice", "kubepods-"+qos+"-pod"+strings.ReplaceAll(string(uid), "-", "_")+".slice"))
	}
	return dirs
}

// podCPU returns the CPU seconds a pod's cgroup has used, every process it ever ran included.
func podCPU(uid types.UID) (float64, bool) {
	for _, root := range cgroupRoots {
		for _, dir := range podCgroupDirs(root, uid) {
			if raw, err := os.ReadFile(filepath.Join(dir, "cpuacct.usage")); err == nil {
				if s, ok := parseCPUAcctUsage(raw); ok {
					return s, true
				}
			}
			if raw, err := os.ReadFile(filepath.Join(dir, "cpu.stat")); err == nil {
				if s, ok := parseCPUStat(raw); ok {
					return s, true
				}
			}
		}
	}
	return 0, false
}

// parseCPUAcctUsage reads cgroup v1 cpuacct.usage (nanoseconds).
func parseCPUAcctUsage(raw []byte) (float64, bool) {
	ns, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	return float64(ns) / 1e9, err == nil
}

// parseCPUStat reads usage_usec of cgroup v2 cpu.stat.
func parseCPUStat(raw []byte) (float64, bool) {
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return float64(us) / 1e6, err == nil
		}
	}
	return 0, false
}

// cpuTracker keeps, per pod, the CPU seconds seen first and last: a pod that is gone by the end (a
// pool pod's idle exit) still counts up to its last sample.
type cpuTracker struct {
	first, last map[types.UID]float64
	group       map[types.UID]string
}

func newCPUTracker() *cpuTracker {
	return &cpuTracker{first: map[types.UID]float64{}, last: map[types.UID]float64{}, group: map[types.UID]string{}}
}

// observe records a pod's CPU seconds; baseline says whether the phase had not begun yet, so that what
// the pod used before it does not count. A pod first seen after the start counts from zero.
func (t *cpuTracker) observe(uid types.UID, group string, seconds float64, baseline bool) {
	if _, seen := t.first[uid]; !seen {
		if baseline {
			t.first[uid] = seconds
		} else {
			t.first[uid] = 0
		}
		t.group[uid] = group
	}
	t.last[uid] = max(t.last[uid], seconds)
}

// seconds are the CPU seconds used during the phase, by group.
func (t *cpuTracker) seconds() map[string]float64 {
	out := map[string]float64{}
	for uid, last := range t.last {
		out[t.group[uid]] += last - t.first[uid]
	}
	return out
}

// podGroup selects pods whose CPU is counted under a name.
type podGroup struct {
	name, namespace, selector string
}

// resourceMeter counts the writes and CPU of one phase.
type resourceMeter struct {
	metrics *metricsReader
	cs      kubernetes.Interface
	groups  []podGroup
	// proc is the node's /proc, to count its daemons' CPU and its busy time too ("": not counted).
	proc string

	apiBefore, mgrBefore counts
	mu                   sync.Mutex
	cpu                  *cpuTracker
	stop                 chan struct{}
	done                 chan struct{}
}

// resourceUse is what a phase cost.
type resourceUse struct {
	api     counts // the apiserver's writes, every client, by verb and resource
	manager counts // the manager's writes, by method
	// cpu is CPU seconds by pod group, node daemon group (nodeDaemonGroups) and nodeBusyGroup; a group
	// none of whose pods' cgroups or processes was found is missing.
	cpu map[string]float64
}

// start takes the baseline and samples the pods' CPU every interval until end.
func (m *resourceMeter) start(ctx context.Context, interval time.Duration) error {
	var err error
	if m.apiBefore, err = m.metrics.apiserver(ctx); err != nil {
		return err
	}
	if m.mgrBefore, err = m.metrics.manager(ctx); err != nil {
		return err
	}
	m.cpu = newCPUTracker()
	m.sample(ctx, true)
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample(ctx, false)
			}
		}
	}()
	return nil
}

func (m *resourceMeter) sample(ctx context.Context, baseline bool) {
	if m.proc != "" {
		// An unreadable /proc leaves the node's groups missing, printed as such.
		if daemons, groups, busy, err := hostCPU(m.proc); err == nil {
			m.mu.Lock()
			for pid, s := range daemons {
				m.cpu.observe(types.UID("pid/"+pid), groups[pid], s, baseline)
			}
			m.cpu.observe(types.UID("node"), nodeBusyGroup, busy, true) // the node never starts from zero
			m.mu.Unlock()
		}
	}
	for _, g := range m.groups {
		pods, err := m.cs.CoreV1().Pods(g.namespace).List(ctx, metav1.ListOptions{LabelSelector: g.selector, ResourceVersion: "0"})
		if err != nil {
			continue
		}
		for _, p := range pods.Items {
			// A pod whose cgroup is not there (not started yet, or gone) has nothing to add.
			if s, ok := podCPU(p.UID); ok {
				m.mu.Lock()
				m.cpu.observe(p.UID, g.name, s, baseline)
				m.mu.Unlock()
			}
		}
	}
}

// end stops sampling and returns the phase's use.
func (m *resourceMeter) end(ctx context.Context) (resourceUse, error) {
	close(m.stop)
	<-m.done
	m.sample(ctx, false)
	api, err := m.metrics.apiserver(ctx)
	if err != nil {
		return resourceUse{}, err
	}
	mgr, err := m.metrics.manager(ctx)
	if err != nil {
		return resourceUse{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return resourceUse{api: api.minus(m.apiBefore), manager: mgr.minus(m.mgrBefore), cpu: m.cpu.seconds()}, nil
}
