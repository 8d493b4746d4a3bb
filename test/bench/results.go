package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// phaseRetainedResults keeps 1,000 finished jobs with a 1 MiB result each (issue 12): what they cost
// the apiserver's memory and etcd. Not run by default ("all"): name it in -node-phases.
const phaseRetainedResults = "retained-results"

// optionalNodePhases are real-node phases that run only when named.
var optionalNodePhases = []string{phaseRetainedResults}

// etcdClientURL is the local cluster's etcd (plain HTTP on loopback): its etcd and kube-apiserver are
// the processes with it on their command line (a control plane of the integration tests may run too).
const etcdClientURL = "http://127.0.0.1:12379"

// etcdMetricsURL is its metrics.
const etcdMetricsURL = etcdClientURL + "/metrics"

// retainedResults writes jobs finished SeekJobs, each with a result of resultBytes stored as the
// manager stores a large result (a Secret of type seek-api.com/result owned by the job, and
// status.resultRef), with the admin client at the given concurrency, and prints the apiserver's
// resident memory and etcd's database size before and after. The jobs name a worker that does not
// exist and are written finished at once: no pod runs (the worker path is measured by the e2e test).
func (n *nodeRun) retainedResults(ctx context.Context, jobs, resultBytes, concurrency int) error {
	fmt.Fprintf(os.Stderr, "bench: retained results, %d finished jobs with a %d-byte result each\n", jobs, resultBytes)
	ns, _, err := n.tenant(ctx, "bench-results")
	if err != nil {
		return err
	}
	before, err := n.memorySnapshot(ctx)
	if err != nil {
		return err
	}
	result := []byte(`"` + strings.Repeat("r", resultBytes-2) + `"`)
	worker := "bench-results-none-" + n.suffix
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < jobs; i = int(next.Add(1)) - 1 {
				if err := n.retainedResult(ctx, ns, fmt.Sprintf("r-%05d", i), worker, result); err != nil {
					errs <- err
					return
				}
				if (i+1)%100 == 0 {
					fmt.Fprintf(os.Stderr, "bench: %d jobs with their results written after %s\n", i+1, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	took := time.Since(start)
	time.Sleep(5 * time.Second) // the watch caches catch up
	after, err := n.memorySnapshot(ctx)
	if err != nil {
		return err
	}
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("\nRetained results (%s): %d finished jobs with a %d-byte result each, stored as the manager stores them, in %s\n",
		phaseRetainedResults, jobs, resultBytes, took.Round(time.Millisecond))
	fmt.Printf("| measure | before | after | difference | per job |\n| --- | --- | --- | --- | --- |\n")
	for _, m := range []struct {
		name          string
		before, after int64
	}{
		{"kube-apiserver resident memory (VmRSS)", before.apiserverRSS, after.apiserverRSS},
		{"kube-apiserver Go heap in use (go_memstats_heap_inuse_bytes)", before.apiserverHeap, after.apiserverHeap},
		{"etcd database size (etcd_mvcc_db_total_size_in_bytes)", before.etcdDB, after.etcdDB},
		{"etcd database in use (etcd_mvcc_db_total_size_in_use_in_bytes)", before.etcdInUse, after.etcdInUse},
		{"etcd resident memory (VmRSS)", before.etcdRSS, after.etcdRSS},
	} {
		d := m.after - m.before
		fmt.Printf("| %s | %.0f MiB | %.0f MiB | %+.0f MiB | %.2f MiB |\n", m.name, mib(m.before), mib(m.after), mib(d), mib(d)/float64(jobs))
	}
	return n.releaseRetained(ctx, ns)
}

// releaseRetained deletes the phase's tenant and gives etcd its space back: etcd counts its whole
// database file against its quota (2 GiB by default), free pages included, until it is compacted and
// defragmented, which the apiserver does not do (it compacts every 5 minutes, never defragments).
func (n *nodeRun) releaseRetained(ctx context.Context, ns string) error {
	if err := n.c.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := waitFor(ctx, 5*time.Minute, func() (bool, error) {
		err := n.c.Get(ctx, types.NamespacedName{Name: ns}, &corev1.Namespace{})
		return apierrors.IsNotFound(err), err
	}); err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	base := strings.TrimSuffix(etcdMetricsURL, "/metrics")
	var rev struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := etcdPost(ctx, base+"/v3/kv/range", `{"key":"AA=="}`, &rev); err != nil {
		return err
	}
	if err := etcdPost(ctx, base+"/v3/kv/compaction", fmt.Sprintf(`{"revision":%q,"physical":true}`, rev.Header.Revision), nil); err != nil {
		return err
	}
	if err := etcdPost(ctx, base+"/v3/maintenance/defragment", `{}`, nil); err != nil {
		return err
	}
	m, err := n.memorySnapshot(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("After deleting the jobs, compacting and defragmenting etcd: its database is %.0f MiB\n", float64(m.etcdDB)/(1<<20))
	return nil
}

// etcdPost calls etcd's JSON gateway and decodes its answer into out (unless nil).
func etcdPost(ctx context.Context, url, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %d %s %v", url, resp.StatusCode, raw, err)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// retainedResult creates one finished job with its result Secret.
func (n *nodeRun) retainedResult(ctx context.Context, ns, name, worker string, result []byte) error {
	sj := &seekv1alpha1.SeekJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: seekv1alpha1.SeekJobSpec{WorkerName: seekv1alpha1.WorkerName(worker)}}
	// The quota admission of concurrent creates may conflict on the quota's update: try again.
	if err := retry.OnError(retry.DefaultBackoff, apierrors.IsConflict, func() error { return n.c.Create(ctx, sj) }); err != nil {
		return fmt.Errorf("create SeekJob %s: %w", name, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: seekv1alpha1.ResultSecretName(name),
			Labels:          map[string]string{seekv1alpha1.LabelJobName: name, seekv1alpha1.LabelJobUID: string(sj.UID)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: seekv1alpha1.GroupVersion.String(), Kind: "SeekJob", Name: name, UID: sj.UID, Controller: ptr.To(true)}}},
		Type: seekv1alpha1.ResultSecretType,
		Data: map[string][]byte{seekv1alpha1.ResultSecretKey: result},
	}
	if err := n.c.Create(ctx, secret); err != nil {
		return fmt.Errorf("create Secret %s: %w", secret.Name, err)
	}
	ref := &seekv1alpha1.ResultRef{SecretName: secret.Name, Bytes: int64(len(result)), SHA256: strings.Repeat("0", 64)}
	for {
		now := metav1.Now()
		sj.Status.State, sj.Status.CompletionTime, sj.Status.ResultRef = seekv1alpha1.JobStateCompleted, &now, ref
		sj.Status.Conditions = []metav1.Condition{{Type: seekv1alpha1.JobFinished, Status: metav1.ConditionTrue,
			Reason: seekv1alpha1.JobReasonSucceeded, Message: "bench: a retained 1 MiB result", LastTransitionTime: now}}
		err := n.c.Status().Update(ctx, sj)
		if !apierrors.IsConflict(err) {
			if err != nil {
				return fmt.Errorf("finish SeekJob %s: %w", name, err)
			}
			return nil
		}
		// The job controller wrote it first (its worker does not exist): read it again.
		if err := n.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sj); err != nil {
			return err
		}
	}
}

// memory is what the control plane holds.
type memory struct {
	apiserverRSS, apiserverHeap, etcdRSS, etcdDB, etcdInUse int64
}

// memorySnapshot reads the node's /proc for the daemons' resident memory, and etcd's and the
// apiserver's metrics.
func (n *nodeRun) memorySnapshot(ctx context.Context) (memory, error) {
	var m memory
	var err error
	raw, err := n.cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return m, fmt.Errorf("apiserver metrics: %w", err)
	}
	m.apiserverHeap = metricValue(raw, "go_memstats_heap_inuse_bytes")
	if m.apiserverRSS, err = processRSS("/proc", "kube-apiserver", etcdClientURL); err != nil {
		return m, err
	}
	if m.etcdRSS, err = processRSS("/proc", "etcd", etcdClientURL); err != nil {
		return m, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, etcdMetricsURL, nil)
	if err != nil {
		return m, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, fmt.Errorf("etcd metrics: %w", err)
	}
	defer resp.Body.Close()
	if raw, err = io.ReadAll(resp.Body); err != nil {
		return m, err
	}
	m.etcdDB = metricValue(raw, "etcd_mvcc_db_total_size_in_bytes")
	m.etcdInUse = metricValue(raw, "etcd_mvcc_db_total_size_in_use_in_bytes")
	return m, nil
}

// metricValue is the value of an unlabeled metric in a Prometheus text exposition, 0 if absent.
func metricValue(text []byte, name string) int64 {
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return int64(f)
			}
		}
	}
	return 0
}

// processRSS is the resident memory in bytes of the process whose comm is name and whose command
// line contains arg.
func processRSS(proc, name, arg string) (int64, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(arg)) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(proc, e.Name(), "status"))
		if err != nil {
			return 0, err
		}
		return parseRSS(status)
	}
	return 0, fmt.Errorf("no process %s with %s in %s", name, arg, proc)
}

// parseRSS reads VmRSS (kB) from a /proc/<pid>/status.
func parseRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}
