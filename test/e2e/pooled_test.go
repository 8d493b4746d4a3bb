//go:build e2e

package e2e

// End-to-end tests of pooled execution (docs/pooled-execution.md) on the local cluster, covering the
// semantics Job mode has (issue 11, bullet 4): results, states, conditions and attempts; retries and exit
// code 65; timeouts and cancelation that really stop the worker's process; maxConcurrentJobs; webhooks;
// retention; events; metrics; a pool pod deleted mid-job; the manager killed mid-run; scale to zero
// and the warm minimum. Each test that looks at pool pods has a Pooled worker of its own (SeekWorkers
// are cluster-scoped: their names carry this run's tenant), so its pool is its own.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// poolSettings are a test worker's spec.execution.pool.
type poolSettings struct {
	maxPods, minPods int32
	idle             time.Duration
}

// pooledWorker creates a Pooled SeekWorker named <base>-<tenant> that runs the sample worker image
// (its entrypoint /<image> as the command), changed by edit, waits until it is ready, and deletes it
// at the end. It returns its name.
func pooledWorker(t *testing.T, base, image string, pool poolSettings, edit func(*testutil.SeekWorkerWrapper)) string {
	t.Helper()
	b := testutil.MakeSeekWorker(base + "-" + tenant).Image(workerImage(image)).PullPolicy(corev1.PullNever).Command("/" + image).
		Pooled(pool.maxPods).MinPods(pool.minPods).IdleTimeout(pool.idle)
	if edit != nil {
		edit(b)
	}
	return newWorker(t, b)
}

// newWorker creates the SeekWorker b makes, waits until it is ready and the frontend serves it, and
// deletes it at the end. It returns its name.
func newWorker(t *testing.T, b *testutil.SeekWorkerWrapper) string {
	t.Helper()
	w := b.Obj()
	mustCreate(t, w)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), w) })
	waitWorkerReady(t, w.Name)
	// The frontend learns of the worker from its own informer: wait until it serves it.
	deadline := time.Now().Add(time.Minute)
	for code, body := call(t, http.MethodGet, "/v1/workers/"+w.Name, ""); code != http.StatusOK; code, body = call(t, http.MethodGet, "/v1/workers/"+w.Name, "") {
		if time.Now().After(deadline) {
			t.Fatalf("GET worker %s = %d %v", w.Name, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return w.Name
}

// seekJob reads the SeekJob of a REST job id.
func seekJob(t *testing.T, id string) *seekv1alpha1.SeekJob {
	t.Helper()
	sj := &seekv1alpha1.SeekJob{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: tenant, Name: strings.TrimPrefix(id, "job_")}, sj); err != nil {
		t.Fatal(err)
	}
	return sj
}

// waitSeekJob polls the SeekJob of id until ok holds, for at most timeout, and returns it.
func waitSeekJob(t *testing.T, id string, timeout time.Duration, what string, ok func(*seekv1alpha1.SeekJob) bool) *seekv1alpha1.SeekJob {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sj := seekJob(t, id)
		if ok(sj) {
			return sj
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: never %s: status %+v", id, what, sj.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leasedPod is the pool pod holding sj's current attempt, "" if none.
func leasedPod(sj *seekv1alpha1.SeekJob) string {
	if sj.Status.Pool == nil {
		return ""
	}
	return sj.Status.Pool.PodName
}

// checkPooledRun checks what every pooled job that ran shows: it ran in a pool Job of its worker (no
// Job of its own), and its Started condition is True.
func checkPooledRun(t *testing.T, sj *seekv1alpha1.SeekJob, worker string) {
	t.Helper()
	if sj.Status.JobName != "" {
		t.Errorf("job %s: status.jobName = %q, want none (pooled)", sj.Name, sj.Status.JobName)
	}
	if sj.Status.Pool == nil || !strings.HasPrefix(sj.Status.Pool.JobName, "seek-pool-"+worker+"-") {
		t.Errorf("job %s: status.pool = %+v, want a pool Job seek-pool-%s-...", sj.Name, sj.Status.Pool, worker)
	}
	if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c == nil || c.Status != metav1.ConditionTrue || c.Reason != seekv1alpha1.JobReasonWorkerStarted {
		t.Errorf("job %s: Started = %+v, want True/%s", sj.Name, c, seekv1alpha1.JobReasonWorkerStarted)
	}
	if sj.Status.StartTime == nil {
		t.Errorf("job %s: no startTime", sj.Name)
	}
}

// checkFinished checks the job's final state and its Finished condition.
func checkFinished(t *testing.T, sj *seekv1alpha1.SeekJob, state seekv1alpha1.JobState, reason string) {
	t.Helper()
	if sj.Status.State != state {
		t.Errorf("job %s: state %q, want %q", sj.Name, sj.Status.State, state)
	}
	if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobFinished); c == nil || c.Status != metav1.ConditionTrue || c.Reason != reason {
		t.Errorf("job %s: Finished = %+v, want True/%s", sj.Name, c, reason)
	}
	if sj.Status.CompletionTime == nil {
		t.Errorf("job %s: no completionTime", sj.Name)
	}
}

// e2eClientset is a clientset of the local cluster, made once: for what the controller-runtime
// client cannot do (pod logs).
var e2eClientset = sync.OnceValues(func() (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
})

// readPodLog returns the log of a pod's container ("": its only one).
func readPodLog(ctx context.Context, ns, pod, container string) ([]byte, error) {
	cs, err := e2eClientset()
	if err != nil {
		return nil, err
	}
	return cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
}

// podLog returns the log of the pool pod's worker container: the runner's lines and its jobs' output.
func podLog(t *testing.T, pod string) string {
	t.Helper()
	raw, err := readPodLog(context.Background(), tenant, pod, "worker")
	if err != nil {
		t.Fatalf("log of %s: %v", pod, err)
	}
	return string(raw)
}

// waitLog waits until the pod's log has a line that mentions the job and matches re, and returns it.
func waitLog(t *testing.T, pod, job string, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var log string
	for time.Now().Before(deadline) {
		log = podLog(t, pod)
		for line := range strings.SplitSeq(log, "\n") {
			if strings.Contains(line, job) && re.MatchString(line) {
				return line
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the log of pool pod %s has no line about %s matching %s:\n%s", pod, job, re, log)
	return ""
}

// poolPods lists the pods of the worker's pool in the tenant namespace.
func poolPods(t *testing.T, worker string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(tenant), client.MatchingLabels{seekv1alpha1.LabelPool: worker}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// running returns the names of the pods that run and are not being deleted.
func running(pods []corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names
}

// events returns the events recorded on the SeekJob.
func events(t *testing.T, sj *seekv1alpha1.SeekJob) []corev1.Event {
	t.Helper()
	list := &corev1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(tenant)); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.UID == sj.UID {
			out = append(out, e)
		}
	}
	return out
}

// waitWarning waits for a Warning event with the reason on the SeekJob.
func waitWarning(t *testing.T, sj *seekv1alpha1.SeekJob, reason string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := events(t, sj)
		if slices.ContainsFunc(evs, func(e corev1.Event) bool { return e.Type == corev1.EventTypeWarning && e.Reason == reason }) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("job %s: no Warning event %s; events: %v", sj.Name, reason, evs)
			return
		}
		time.Sleep(time.Second)
	}
}

// metric sums the samples of the manager's metric whose labels include all of want.
func metric(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(info.SystemNamespace), client.MatchingLabels{"app.kubernetes.io/component": "manager"}); err != nil {
		t.Fatal(err)
	}
	var ip string
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && p.Status.PodIP != "" {
			ip = p.Status.PodIP
		}
	}
	if ip == "" {
		t.Fatalf("no running manager pod: %v", pods.Items)
	}
	resp, err := http.Get("http://" + net.JoinHostPort(ip, "8080") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		end := strings.LastIndex(line, "}")
		matches := true
		for k, v := range want {
			if !strings.Contains(line[:end], fmt.Sprintf("%s=%q", k, v)) {
				matches = false
			}
		}
		if !matches {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestPooledJobReusesItsPod: a pooled echo job completes with its result, in a pool pod; a second one
// (answered through Prefer: wait) runs in the same pod. Both show the states, conditions and attempts
// of Job mode, no Normal events (one write fewer per job), and count in the metrics. The pool pod is
// the documented shape: the runner as entrypoint, no API token, a dispatch token of its own audience
// (which the apiserver refuses; the dispatch endpoint refuses any other), and the tenant's worker
// NetworkPolicy selects it and lets it reach the dispatch port.
func TestPooledJobReusesItsPod(t *testing.T) {
	t.Parallel()
	worker := pooledWorker(t, "pecho", "echo", poolSettings{maxPods: 1, idle: 5 * time.Minute}, nil)

	id1 := submit(t, worker, `{"message": "one"}`)
	job := waitStatus(t, id1, "completed", "failed")
	if res, _ := job["response_json"].(map[string]any); job["status"] != "completed" || res["echo"] != "one" || job["attempts"] != float64(1) || job["started_at"] == nil {
		t.Fatalf("first job = %v", job)
	}
	first := seekJob(t, id1)
	checkPooledRun(t, first, worker)
	checkFinished(t, first, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded)
	if first.Status.Attempts != 1 || leasedPod(first) == "" {
		t.Fatalf("first job: attempts %d, pool %+v; want 1 attempt on a named pod", first.Status.Attempts, first.Status.Pool)
	}

	// The pod is warm: the second job, answered when it finishes, runs in it.
	start := time.Now()
	code, job := callWith(t, "POST", "/v1/workers/"+worker+"/jobs", `{"message": "two"}`, http.Header{"Prefer": {"wait=30"}})
	if res, _ := job["response_json"].(map[string]any); code/100 != 2 || job["status"] != "completed" || res["echo"] != "two" {
		t.Fatalf("second job with Prefer: wait = %d %v", code, job)
	}
	t.Logf("a job on a warm pool pod answered in %v", time.Since(start).Round(time.Millisecond))
	second := seekJob(t, job["job_uuid"].(string))
	checkPooledRun(t, second, worker)
	if leasedPod(second) != leasedPod(first) || second.Status.Pool.JobName != first.Status.Pool.JobName {
		t.Errorf("second job ran in %+v, want the first one's pod %s", second.Status.Pool, leasedPod(first))
	}

	t.Run("pool pod", func(t *testing.T) {
		ctx := context.Background()
		pod := &corev1.Pod{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: tenant, Name: leasedPod(first)}, pod); err != nil {
			t.Fatal(err)
		}
		if pod.Labels[seekv1alpha1.LabelWorker] != worker || pod.Labels[seekv1alpha1.LabelPool] != worker || pod.Labels[seekv1alpha1.LabelPoolTemplate] == "" {
			t.Errorf("pod labels = %v", pod.Labels)
		}
		if _, ok := pod.Labels[seekv1alpha1.LabelJobUID]; ok {
			t.Errorf("pool pod has a job uid label: %v", pod.Labels)
		}
		if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
			t.Error("the pool pod may mount an API token")
		}
		var audiences []string
		for _, v := range pod.Spec.Volumes {
			if v.Projected == nil {
				continue
			}
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					audiences = append(audiences, s.ServiceAccountToken.Audience)
				}
			}
		}
		if !slices.Equal(audiences, []string{dispatch.Audience}) {
			t.Errorf("ServiceAccount token audiences = %q, want only %q", audiences, dispatch.Audience)
		}
		i := slices.IndexFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == "worker" })
		if i < 0 || len(pod.Spec.Containers[i].Command) == 0 || pod.Spec.Containers[i].Command[0] != dispatch.RunnerPath ||
			!slices.Contains(pod.Spec.Containers[i].Command, "/echo") {
			t.Errorf("containers = %+v, want worker running %s ... /echo", pod.Spec.Containers, dispatch.RunnerPath)
		}
		owner := metav1.GetControllerOf(pod)
		poolJob := &batchv1.Job{}
		if owner == nil || owner.Name != first.Status.Pool.JobName {
			t.Errorf("pod owner = %+v, want the pool Job %s", owner, first.Status.Pool.JobName)
		} else if err := k8s.Get(ctx, client.ObjectKey{Namespace: tenant, Name: owner.Name}, poolJob); err != nil {
			t.Error(err)
		} else if o := metav1.GetControllerOf(poolJob); o == nil || o.Kind != "SeekWorker" || o.Name != worker {
			t.Errorf("pool Job owner = %+v, want the SeekWorker %s", o, worker)
		}

		np := &networkingv1.NetworkPolicy{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: tenant, Name: "seek-workers"}, np); err != nil {
			t.Fatal(err)
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("the worker NetworkPolicy's podSelector %v does not select the pool pod (%v)", np.Spec.PodSelector, err)
		}
		if !slices.ContainsFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
			return len(r.Ports) == 1 && r.Ports[0].Port != nil && r.Ports[0].Port.IntValue() == 8090
		}) {
			t.Errorf("the worker NetworkPolicy's egress %+v has no rule to the dispatch port", np.Spec.Egress)
		}
	})

	t.Run("dispatch token", func(t *testing.T) {
		checkDispatchTokens(t, leasedPod(first))
	})

	t.Run("no Normal events", func(t *testing.T) {
		time.Sleep(3 * time.Second) // events are recorded asynchronously
		for _, sj := range []*seekv1alpha1.SeekJob{first, second} {
			for _, e := range events(t, sj) {
				if e.Type == corev1.EventTypeNormal {
					t.Errorf("job %s: Normal event %s %q", sj.Name, e.Reason, e.Message)
				}
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			// A completed job's reason label is empty, as in Job mode.
			finished := metric(t, "seek_jobs_finished_total", map[string]string{"worker": worker, "state": "Completed", "reason": ""})
			durations := metric(t, "seek_job_execution_duration_seconds_count", map[string]string{"worker": worker, "state": "Completed"})
			leases := metric(t, "seek_dispatch_leases_total", map[string]string{"worker": worker})
			reports := metric(t, "seek_dispatch_reports_total", map[string]string{"worker": worker, "accepted": "true"})
			if finished == 2 && durations == 2 && leases == 2 && reports == 2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("for %s: seek_jobs_finished_total = %v, seek_job_execution_duration_seconds_count = %v, seek_dispatch_leases_total = %v, seek_dispatch_reports_total{accepted=true} = %v; want 2 each",
					worker, finished, durations, leases, reports)
			}
			time.Sleep(time.Second)
		}
	})
}

// TestPooledFailuresAndRetries: exit code 65 fails a pooled job at once (WorkerError, never retried);
// any other code is retried (retries: 1) and then fails with RetriesExhausted; the worker's error
// reaches the job as in Job mode, with Warning events.
func TestPooledFailuresAndRetries(t *testing.T) {
	t.Parallel()
	worker := pooledWorker(t, "pfail", "fail", poolSettings{maxPods: 2, idle: time.Minute}, func(w *testutil.SeekWorkerWrapper) { w.Retries(1) })
	permanent := submit(t, worker, `{"exit_code": 65, "message": "bad input", "reason": "Nope"}`)
	flaky := submit(t, worker, `{"exit_code": 7, "message": "flaky"}`)

	job := waitStatus(t, permanent, "failed", "completed")
	e, _ := job["error"].(map[string]any)
	details, _ := e["details"].(map[string]any)
	if job["status"] != "failed" || e["reason"] != seekv1alpha1.JobReasonWorkerError || e["exit_code"] != float64(65) ||
		job["attempts"] != float64(1) || details["reason"] != "Nope" || !strings.Contains(fmt.Sprint(e["message"]), "bad input") {
		t.Errorf("exit 65: job = %v, want failed at once with WorkerError, exit code 65 and the worker's error", job)
	}
	sj := seekJob(t, permanent)
	checkPooledRun(t, sj, worker)
	checkFinished(t, sj, seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonWorkerError)
	waitWarning(t, sj, seekv1alpha1.JobReasonWorkerError)

	job = waitStatus(t, flaky, "failed", "completed")
	e, _ = job["error"].(map[string]any)
	if job["status"] != "failed" || e["reason"] != seekv1alpha1.JobReasonRetriesExhausted || e["exit_code"] != float64(7) ||
		job["attempts"] != float64(2) || !strings.Contains(fmt.Sprint(e["message"]), "flaky") {
		t.Errorf("exit 7: job = %v, want 2 attempts, then RetriesExhausted with exit code 7", job)
	}
	sj = seekJob(t, flaky)
	checkPooledRun(t, sj, worker)
	checkFinished(t, sj, seekv1alpha1.JobStateFailed, seekv1alpha1.JobReasonRetriesExhausted)
	waitWarning(t, sj, seekv1alpha1.JobReasonRetriesExhausted)
}

// stopLine matches the runner's end marker of a job whose process it stopped: "end job NS/NAME uid=UID
// attempt=N: stopped (Canceled) after ..." on a stop from the manager, "end job NS/NAME uid=UID
// attempt=N: process exited 1 after 3s (timed out)" on a timeout.
var stopLine = regexp.MustCompile(`^seek-runner: end job .*: (stopped \(|.*\(timed out)`)

// TestPooledTimeoutStopsTheProcess: a pooled job past its timeout ends TimedOut, the runner stops its
// process (its log says so), and the pod, the pool's only one, then runs the next job.
func TestPooledTimeoutStopsTheProcess(t *testing.T) {
	t.Parallel()
	worker := pooledWorker(t, "ptimeout", "sleep", poolSettings{maxPods: 1, idle: 5 * time.Minute}, nil)
	mustCreate(t, testutil.MakeSeekJob("pooled-too-slow", tenant).Worker(worker).Input(`{"seconds": 300}`).Timeout(3*time.Second).Obj())
	job := waitStatus(t, "job_pooled-too-slow", "timed_out", "completed", "failed")
	if e, _ := job["error"].(map[string]any); job["status"] != "timed_out" || e["reason"] != seekv1alpha1.JobReasonDeadlineExceeded {
		t.Fatalf("job = %v, want timed_out with DeadlineExceeded", job)
	}
	sj := seekJob(t, "job_pooled-too-slow")
	checkPooledRun(t, sj, worker)
	checkFinished(t, sj, seekv1alpha1.JobStateTimedOut, seekv1alpha1.JobReasonDeadlineExceeded)
	if d := sj.Status.CompletionTime.Sub(sj.Status.StartTime.Time); d > 45*time.Second {
		t.Errorf("timed out %v after its start, want about its 3s timeout", d)
	}
	pod := leasedPod(sj)
	if pod == "" {
		t.Fatalf("status.pool = %+v, want the pod that ran it", sj.Status.Pool)
	}
	t.Logf("runner: %s", waitLog(t, pod, sj.Name, stopLine))

	// The process is gone: the pool's only pod takes the next job (else it would sleep 300 s more).
	next := submit(t, worker, `{"seconds": 0}`)
	if job := waitStatus(t, next, "completed", "failed"); job["status"] != "completed" {
		t.Fatalf("next job = %v", job)
	}
	if p := leasedPod(seekJob(t, next)); p != pod {
		t.Errorf("the next job ran in %s, want the pool's only pod %s", p, pod)
	}
}

// TestPooledCancelStopsTheProcess: canceling a running pooled job stops its process (the runner logs
// it) and the pod, the pool's only one, takes the next job.
func TestPooledCancelStopsTheProcess(t *testing.T) {
	t.Parallel()
	worker := pooledWorker(t, "pcancel", "sleep", poolSettings{maxPods: 1, idle: 5 * time.Minute}, nil)
	id := submit(t, worker, `{"seconds": 300}`)
	job := waitStatus(t, id, "running")
	if job["started_at"] == nil || job["attempts"] != float64(1) {
		t.Errorf("running job = %v", job)
	}
	sj := seekJob(t, id)
	checkPooledRun(t, sj, worker)
	pod := leasedPod(sj)
	if sj.Status.State != seekv1alpha1.JobStateRunning || pod == "" || sj.Status.Pool.PodUID == "" {
		t.Fatalf("running job: state %q, pool %+v", sj.Status.State, sj.Status.Pool)
	}

	if code, body := call(t, "POST", "/v1/jobs/"+id+"/cancel", ""); code != http.StatusAccepted {
		t.Fatalf("cancel = %d %v", code, body)
	}
	waitStatus(t, id, "canceled")
	checkFinished(t, seekJob(t, id), seekv1alpha1.JobStateCanceled, seekv1alpha1.JobReasonCanceled)
	t.Logf("runner: %s", waitLog(t, pod, sj.Name, stopLine))

	next := submit(t, worker, `{"seconds": 0}`)
	if job := waitStatus(t, next, "completed", "failed"); job["status"] != "completed" {
		t.Fatalf("next job = %v", job)
	}
	if p := leasedPod(seekJob(t, next)); p != pod {
		t.Errorf("the next job ran in %s, want the pool's only pod %s (the canceled process stopped)", p, pod)
	}
}

// TestPooledMaxConcurrentJobs: a pooled worker with limits.maxConcurrentJobs 1 runs one job at a time
// although its pool may have two pods; the others wait queued, not written (state empty).
func TestPooledMaxConcurrentJobs(t *testing.T) {
	t.Parallel()
	worker := pooledWorker(t, "plimit", "sleep", poolSettings{maxPods: 2, idle: time.Minute}, func(w *testutil.SeekWorkerWrapper) { w.MaxConcurrent(1) })
	ids := []string{submit(t, worker, `{"seconds": 3}`), submit(t, worker, `{"seconds": 3}`), submit(t, worker, `{"seconds": 3}`)}
	deadline := time.Now().Add(3 * time.Minute)
	sawQueued := false
	for {
		list := &seekv1alpha1.SeekJobList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(tenant), client.MatchingFields{"spec.workerName": worker}); err != nil {
			t.Fatal(err)
		}
		runningJobs, done := 0, 0
		for _, sj := range list.Items {
			switch {
			case sj.Status.State == seekv1alpha1.JobStateRunning:
				runningJobs++
			case sj.Status.State.IsTerminal():
				done++
			case sj.Status.State == "":
				sawQueued = true
			default:
				// A queued pooled job whose pool is fine is not written (3 writes per job, issue 11).
				t.Errorf("queued pooled job %s has state %q, want none written", sj.Name, sj.Status.State)
			}
		}
		if runningJobs > 1 {
			t.Fatalf("%d jobs of %s running at once, want at most 1", runningJobs, worker)
		}
		if done == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d jobs finished", done, len(ids))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !sawQueued {
		t.Error("no job was seen waiting")
	}
	for _, id := range ids {
		if job := waitStatus(t, id, "completed", "failed"); job["status"] != "completed" || job["attempts"] != float64(1) {
			t.Errorf("job = %v", job)
		}
	}
	w := &seekv1alpha1.SeekWorker{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: worker}, w); err != nil {
		t.Fatal(err)
	}
	if len(w.Status.ActiveJobs) != 0 {
		t.Errorf("status.activeJobs = %v, want none for a pooled worker", w.Status.ActiveJobs)
	}
}

// TestPooledWebhooks: a job of the pooled sample echo worker delivers its started and completed events,
// signed.
func TestPooledWebhooks(t *testing.T) {
	t.Parallel()
	type delivery struct {
		h    http.Header
		body []byte
	}
	got := make(chan delivery, 8)
	srv := newReceiver(t, func(r *http.Request, body []byte) { got <- delivery{r.Header.Clone(), body} })
	id := submit(t, "echo", fmt.Sprintf(`{"message": "hook", "callback_url": %q, "callback_events": ["started", "finished"]}`, srv.URL+"/hook"))
	_, secret := call(t, "GET", "/v1/webhooks/secret", "")
	types := map[string]bool{}
	timeout := time.After(waitTimeout)
	for !types["job.started"] || !types["job.completed"] {
		select {
		case d := <-got:
			if err := verify(secret["secret"].(string), d.h, d.body); err != nil {
				t.Errorf("signature: %v", err)
			}
			var p struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			_ = json.Unmarshal(d.body, &p)
			if p.Data["job_uuid"] != id {
				t.Errorf("delivery for another job: %s", d.body)
			}
			types[p.Type] = true
		case <-timeout:
			t.Fatalf("deliveries seen: %v, want job.started and job.completed", types)
		}
	}
	if sj := seekJob(t, id); sj.Status.Pool == nil {
		t.Errorf("the echo job did not run pooled: %+v", sj.Status)
	}
}

// TestPooledRetention: a finished pooled job is deleted when its ttlAfterFinished passes.
func TestPooledRetention(t *testing.T) {
	t.Parallel()
	mustCreate(t, testutil.MakeSeekJob("pooled-short-lived", tenant).Worker("echo").Input(`{"message": "bye"}`).TTL(3*time.Second).Obj())
	waitStatus(t, "job_pooled-short-lived", "completed")
	if sj := seekJob(t, "job_pooled-short-lived"); sj.Status.Pool == nil {
		t.Errorf("the echo job did not run pooled: %+v", sj.Status)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: tenant, Name: "pooled-short-lived"}, &seekv1alpha1.SeekJob{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job is still there after its retention: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code, body := call(t, "GET", "/v1/jobs/job_pooled-short-lived", ""); code != http.StatusNotFound {
		t.Errorf("GET after retention = %d %v, want 404", code, body)
	}
}

// TestPooledPodDeletedMidJob deletes the pool pod running a job, gracefully (as a drain does: the
// runner stops the job and reports it interrupted) and forcefully (no report: the manager sees the pod
// gone): each time the attempt does not count (the worker allows no retry) and the job completes on
// another pod.
func TestPooledPodDeletedMidJob(t *testing.T) {
	t.Parallel()
	worker := pooledWorker(t, "pkill", "sleep", poolSettings{maxPods: 2, idle: time.Minute}, nil)
	for _, tc := range []struct {
		name  string
		grace []client.DeleteOption
	}{
		{"graceful", nil},
		{"forced", []client.DeleteOption{client.GracePeriodSeconds(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := submit(t, worker, `{"seconds": 8}`)
			sj := waitSeekJob(t, id, waitTimeout, "leased", func(sj *seekv1alpha1.SeekJob) bool { return leasedPod(sj) != "" })
			victim := leasedPod(sj)
			time.Sleep(time.Second) // the process runs
			if err := k8s.Delete(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: victim}}, tc.grace...); err != nil {
				t.Fatal(err)
			}
			job := waitStatusWithin(t, id, 3*time.Minute, "completed", "failed", "timed_out")
			if job["status"] != "completed" || job["attempts"] != float64(1) {
				t.Fatalf("job = %v, want completed with 1 attempt (the interrupted one not counted)", job)
			}
			sj = seekJob(t, id)
			checkPooledRun(t, sj, worker)
			if p := leasedPod(sj); p == victim || p == "" {
				t.Errorf("the job completed in pod %q, want another than the deleted %s", p, victim)
			}
		})
	}
}

// waitStatusWithin is waitStatus with its own timeout.
func waitStatusWithin(t *testing.T, id string, timeout time.Duration, want ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var body map[string]any
	for time.Now().Before(deadline) {
		_, body = call(t, "GET", "/v1/jobs/"+id, "")
		if slices.Contains(want, fmt.Sprint(body["status"])) {
			return body
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("job %s never reached %v: %v", id, want, body)
	return nil
}

// TestPooledManagerKilledMidRun kills the manager's pod while pool pods run jobs and others wait: the
// Deployment starts another, and every job completes with one attempt (the leases are in the jobs'
// status; the runners' reports wait for the new manager). Not parallel: it takes the manager away.
func TestPooledManagerKilledMidRun(t *testing.T) {
	ctx := context.Background()
	worker := pooledWorker(t, "pmgr", "sleep", poolSettings{maxPods: 2, idle: time.Minute}, nil)
	var ids []string
	for range 4 {
		ids = append(ids, submit(t, worker, `{"seconds": 5}`))
	}
	waitSeekJob(t, ids[0], waitTimeout, "running", func(sj *seekv1alpha1.SeekJob) bool { return leasedPod(sj) != "" })

	selector := client.MatchingLabels{"app.kubernetes.io/component": "manager"}
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(info.SystemNamespace), selector); err != nil || len(pods.Items) != 1 {
		t.Fatalf("manager pods: %v, %v", pods.Items, err)
	}
	killed := pods.Items[0]
	if err := k8s.Delete(ctx, &killed, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		job := waitStatusWithin(t, id, 4*time.Minute, "completed", "failed", "timed_out", "canceled")
		if job["status"] != "completed" || job["attempts"] != float64(1) {
			t.Errorf("job = %v, want completed with 1 attempt", job)
		}
		checkPooledRun(t, seekJob(t, id), worker)
	}
	if err := k8s.List(ctx, pods, client.InNamespace(info.SystemNamespace), selector); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.UID == killed.UID {
			t.Errorf("the killed manager pod %s is still there", p.Name)
		}
	}
}

// TestPooledScaleToZero: an idle pool's pods exit 0 after the worker's idleTimeout and its Job
// completes; the next job gets a new pool Job (the next generation) and completes.
func TestPooledScaleToZero(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	worker := pooledWorker(t, "pidle", "echo", poolSettings{maxPods: 1, idle: 2 * time.Second}, nil)
	first := submit(t, worker, `{"message": "before"}`)
	waitStatus(t, first, "completed")
	firstJob := seekJob(t, first).Status.Pool.JobName

	// The runner asks for work in long polls of up to dispatch.LeaseWait: it exits within one of them
	// after its idle timeout.
	deadline := time.Now().Add(dispatch.LeaseWait + 60*time.Second)
	for {
		pods := poolPods(t, worker)
		job := &batchv1.Job{}
		err := k8s.Get(ctx, client.ObjectKey{Namespace: tenant, Name: firstJob}, job)
		complete := err == nil && slices.ContainsFunc(job.Status.Conditions, func(c batchv1.JobCondition) bool {
			return c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue
		})
		if len(running(pods)) == 0 && complete {
			for _, p := range pods {
				if p.Status.Phase != corev1.PodSucceeded {
					t.Errorf("pool pod %s ended %s, want Succeeded (exit 0)", p.Name, p.Status.Phase)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle pool did not scale to zero: running pods %v, Job %s complete %v (%v)", running(pods), firstJob, complete, err)
		}
		time.Sleep(time.Second)
	}

	next := submit(t, worker, `{"message": "after"}`)
	if job := waitStatus(t, next, "completed", "failed"); job["status"] != "completed" {
		t.Fatalf("job after scale to zero = %v", job)
	}
	if j := seekJob(t, next).Status.Pool.JobName; j == firstJob {
		t.Errorf("the job after scale to zero ran in the finished pool Job %s, want a new generation", j)
	}
}

// TestPooledWarmMinimum: with minPods 1, one pool pod stays after the idle timeout and takes the next
// job.
func TestPooledWarmMinimum(t *testing.T) {
	t.Parallel()
	worker := pooledWorker(t, "pwarm", "echo", poolSettings{maxPods: 2, minPods: 1, idle: 2 * time.Second}, nil)
	var ids []string
	for i := range 3 {
		ids = append(ids, submit(t, worker, fmt.Sprintf(`{"message": "m%d"}`, i)))
	}
	for _, id := range ids {
		waitStatus(t, id, "completed")
	}
	// Past the idle timeout and a long poll: one pod left, and it stays.
	time.Sleep(2*time.Second + dispatch.LeaseWait + 5*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	var warm []string
	for {
		warm = running(poolPods(t, worker))
		if len(warm) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("running pool pods = %v, want the 1 of minPods", warm)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(dispatch.LeaseWait)
	if now := running(poolPods(t, worker)); !slices.Equal(now, warm) {
		t.Fatalf("running pool pods = %v a while later, want the warm %v", now, warm)
	}
	next := submit(t, worker, `{"message": "warm"}`)
	waitStatus(t, next, "completed")
	if p := leasedPod(seekJob(t, next)); p != warm[0] {
		t.Errorf("the next job ran in %s, want the warm pod %s", p, warm[0])
	}
}

// checkDispatchTokens checks the two sides of the dispatch token, with tokens the test requests for the
// pool pod's ServiceAccount: one of the dispatch audience bound to the pool pod (as the kubelet
// projects it) is refused by the apiserver; the dispatch endpoint refuses a request without a token,
// one of the apiserver's audience bound to the same pod, and one of its own audience bound to no pod.
func checkDispatchTokens(t *testing.T, podName string) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: tenant, Name: podName}, pod); err != nil {
		t.Fatal(err)
	}
	token := func(audience string, boundToPod bool) string {
		t.Helper()
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: tenant, Name: cmp.Or(pod.Spec.ServiceAccountName, "default")}}
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
		if audience != "" { // else the apiserver's own audiences
			tr.Spec.Audiences = []string{audience}
		}
		if boundToPod {
			tr.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
		}
		if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
			t.Fatalf("token request: %v", err)
		}
		return tr.Status.Token
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	withToken := rest.AnonymousClientConfig(cfg)
	withToken.BearerToken = token(dispatch.Audience, true)
	cs, err := kubernetes.NewForConfig(withToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(tenant).List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("the apiserver answered a dispatch token with %v, want 401 Unauthorized", err)
	}

	managers := &corev1.PodList{}
	if err := k8s.List(ctx, managers, client.InNamespace(info.SystemNamespace), client.MatchingLabels{"app.kubernetes.io/component": "manager"}); err != nil {
		t.Fatal(err)
	}
	var url string
	for _, p := range managers.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && p.Status.PodIP != "" {
			url = "http://" + net.JoinHostPort(p.Status.PodIP, "8090") + dispatch.PathLease
		}
	}
	if url == "" {
		t.Fatalf("no running manager pod: %v", managers.Items)
	}
	for name, bearer := range map[string]string{
		"no token":                      "",
		"the apiserver's audience":      token("", true),
		"the dispatch audience, no pod": token(dispatch.Audience, false),
		"not a token":                   "not-a-token",
	} {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"idleSeconds": 0}`))
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: the dispatch endpoint answered %d %s, want 401 or 403", name, resp.StatusCode, body)
		}
	}
}
