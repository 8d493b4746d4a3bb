//go:build e2e

// Package e2e runs the whole system as users run it: the local single-node cluster of
// internal/localcluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
// kube-proxy, containerd), Seek installed in it by its Helm chart from images built from this checkout,
// and real worker containers. Tests talk to the REST API on localhost:8080 as a tenant of their own.
//
// A cluster already up (make run) is upgraded to this checkout's images and kept; otherwise the suite
// brings one up and removes it at the end. The node needs root and cgroups (containerd, runc and the
// CNI plugins are installed with apt-get if missing). Where the machine cannot run a node the suite
// fails and says why; SEEK_E2E=skip skips it explicitly.
package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/controlplane"
	"github.com/seek-api/seek-operator/internal/localcluster"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
)

const waitTimeout = 90 * time.Second

var (
	k8s    client.Client
	info   *localcluster.Info
	apiURL string
	apiKey string
	// tenant is this run's tenant namespace, so runs against a kept cluster do not collide.
	tenant string
	// clusterOpts are the options the suite brought the cluster up with.
	clusterOpts localcluster.Options
)

func TestMain(m *testing.M) {
	if os.Getenv("SEEK_E2E") == "skip" {
		fmt.Println("e2e: skipped (SEEK_E2E=skip)")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := localcluster.Preflight(); err != nil {
		return fail(fmt.Errorf("%w (set SEEK_E2E=skip to skip the end-to-end tests explicitly)", err))
	}
	ctx := context.Background()
	root, err := controlplane.RepoRoot()
	if err != nil {
		return fail(err)
	}
	clusterOpts = localcluster.Options{Dir: cmp.Or(os.Getenv("SEEK_E2E_CLUSTER_DIR"), localcluster.DefaultDir()),
		Assets: os.Getenv("KUBEBUILDER_ASSETS"), Helm: os.Getenv("HELM"), ModuleDir: root, Out: os.Stdout}
	var teardown func() error
	if info, teardown, err = localcluster.UpForRun(ctx, clusterOpts); err != nil {
		return fail(err)
	}
	defer func() {
		if err := teardown(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: down:", err)
		}
	}()
	ctrl.SetLogger(logr.Discard())
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return fail(err)
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: manager.NewScheme()}); err != nil {
		return fail(err)
	}
	t, err := localcluster.NewTenant(ctx, k8s, info, "e2e", 1000)
	if err != nil {
		return fail(err)
	}
	tenant, apiURL, apiKey = t.Namespace, info.APIURL, t.APIKey
	fmt.Printf("e2e: tenant %s on the cluster in %s (logs in %s)\n", tenant, clusterOpts.Dir, filepath.Join(clusterOpts.Dir, "logs"))
	code := m.Run()
	// A kept cluster is left as it was.
	if err := t.Delete(ctx, k8s); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: delete the tenant:", err)
	}
	return code
}

// workerImage is the image of one of the sample workers in the cluster.
func workerImage(name string) string {
	return fmt.Sprintf("%s/worker-%s:%s", info.ImageRegistry, name, info.ImageTag)
}

// call makes an API request and decodes the JSON object it answers.
func call(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	return callWith(t, method, path, body, nil)
}

// callWith is call with more request headers.
func callWith(t *testing.T, method, path, body string, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, apiURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("X-Api-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, raw)
	}
	return resp.StatusCode, out
}

// submit submits input to worker and returns the job id.
func submit(t *testing.T, worker, input string) string {
	t.Helper()
	code, body := call(t, "POST", "/v1/workers/"+worker+"/jobs", input)
	if code != http.StatusAccepted {
		t.Fatalf("submit to %s = %d %v", worker, code, body)
	}
	return body["job_uuid"].(string)
}

// waitStatus polls the job until its status is one of want, and returns it.
func waitStatus(t *testing.T, id string, want ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var body map[string]any
	for time.Now().Before(deadline) {
		_, body = call(t, "GET", "/v1/jobs/"+id, "")
		for _, w := range want {
			if body["status"] == w {
				return body
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("job %s never reached %v: %v", id, want, body)
	return nil
}

func TestEmailValidatorThroughREST(t *testing.T) {
	t.Parallel()
	id := submit(t, "email-validator", `{"email": "hello@example.com", "check_mx": false}`)
	job := waitStatus(t, id, "completed", "failed")
	res, _ := job["response_json"].(map[string]any)
	if job["status"] != "completed" || res["valid"] != true || res["email"] != "hello@example.com" {
		t.Fatalf("job = %v", job)
	}
	id = submit(t, "email-validator", `{"email": "not an email", "check_mx": false}`)
	job = waitStatus(t, id, "completed", "failed")
	if res, _ := job["response_json"].(map[string]any); job["status"] != "completed" || res["valid"] != false || res["reason"] != "invalid_syntax" {
		t.Fatalf("invalid address: job = %v", job)
	}
}

func TestWorkerFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		input, reason string
		exit          float64
	}{
		{`{"exit_code": 65, "message": "bad input", "reason": "Nope"}`, seekv1alpha1.JobReasonWorkerError, 65},
		{`{"exit_code": 3, "message": "flaky"}`, seekv1alpha1.JobReasonRetriesExhausted, 3},
	} {
		job := waitStatus(t, submit(t, "fail", tc.input), "failed", "completed")
		e, _ := job["error"].(map[string]any)
		if job["status"] != "failed" || e["reason"] != tc.reason || e["exit_code"] != tc.exit {
			t.Errorf("input %s: job = %v", tc.input, job)
		}
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	mustCreate(t, testutil.MakeSeekJob("too-slow", tenant).Worker("sleep").Input(`{"seconds": 300}`).Timeout(3*time.Second).Obj())
	job := waitStatus(t, "job_too-slow", "timed_out", "completed", "failed")
	if job["status"] != "timed_out" {
		t.Fatalf("job = %v", job)
	}
}

func TestCancelStopsTheProcess(t *testing.T) {
	t.Parallel()
	id := submit(t, "sleep", `{"seconds": 300}`)
	name := strings.TrimPrefix(id, "job_")
	waitPodRunning(t, name)
	if code, body := call(t, "POST", "/v1/jobs/"+id+"/cancel", ""); code != http.StatusAccepted {
		t.Fatalf("cancel = %d %v", code, body)
	}
	waitStatus(t, id, "canceled")
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		pods := &corev1.PodList{}
		if err := k8s.List(context.Background(), pods, client.InNamespace(tenant), client.MatchingLabels{seekv1alpha1.LabelJobName: name}); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			return // the pod, and its process, are gone
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal("the canceled job's pod is still there")
}

func TestKubectlMadeJobThroughREST(t *testing.T) {
	t.Parallel()
	mustCreate(t, testutil.MakeSeekJob("from-kubectl", tenant).Worker("echo").Input(`{"message": "hi"}`).Obj())
	job := waitStatus(t, "job_from-kubectl", "completed", "failed")
	if res, _ := job["response_json"].(map[string]any); res["echo"] != "hi" {
		t.Fatalf("job = %v", job)
	}
}

func TestWebhookSigned(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	srv := newReceiver(t, func(r *http.Request, body []byte) { got <- r; bodies <- body })
	id := submit(t, "echo", fmt.Sprintf(`{"message": "hook", "callback_url": %q}`, srv.URL+"/hook"))
	var r *http.Request
	select {
	case r = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("no webhook")
	}
	body := <-bodies
	_, secret := call(t, "GET", "/v1/webhooks/secret", "")
	if err := verify(secret["secret"].(string), r.Header, body); err != nil {
		t.Errorf("signature: %v", err)
	}
	var p struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	_ = json.Unmarshal(body, &p)
	if p.Type != "job.completed" || p.Data["job_uuid"] != id {
		t.Errorf("payload = %s", body)
	}
}

func waitPodRunning(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		pods := &corev1.PodList{}
		_ = k8s.List(context.Background(), pods, client.InNamespace(tenant), client.MatchingLabels{seekv1alpha1.LabelJobName: name})
		if len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the pod of %s never ran", name)
}

func mustCreate(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	// SeekWorkers are cluster-scoped: the name is this run's.
	worker := "fail-twice-" + tenant
	w := testutil.MakeSeekWorker(worker).Image(workerImage("fail")).PullPolicy(corev1.PullNever).Retries(1).Obj()
	mustCreate(t, w)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), w) })
	waitWorkerReady(t, worker)
	job := waitStatus(t, submit(t, worker, `{"exit_code": 7, "message": "flaky"}`), "failed", "completed")
	e, _ := job["error"].(map[string]any)
	if job["attempts"] != float64(2) || e["reason"] != seekv1alpha1.JobReasonRetriesExhausted || e["exit_code"] != float64(7) {
		t.Fatalf("job = %v, want 2 attempts then RetriesExhausted", job)
	}
}

// TestManyAtOnce submits 200 jobs at once; every one completes with its own result. It runs alone
// (before the parallel tests): 200 pods keep the 2-core node busy for minutes.
func TestManyAtOnce(t *testing.T) {
	const n = 200
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, apiURL+"/v1/workers/echo/jobs", strings.NewReader(fmt.Sprintf(`{"message": "m%d"}`, i)))
			req.Header.Set("X-Api-Key", apiKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != http.StatusAccepted {
				errs <- fmt.Errorf("submit %d: %d %v", i, resp.StatusCode, body)
				return
			}
			ids[i] = body["job_uuid"].(string)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	start := time.Now()
	for i, id := range ids {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			_, job := call(t, "GET", "/v1/jobs/"+id, "")
			if job["status"] == "completed" {
				if res, _ := job["response_json"].(map[string]any); res["echo"] != fmt.Sprintf("m%d", i) {
					t.Errorf("job %d result = %v", i, res)
				}
				break
			}
			if job["status"] == "failed" || time.Now().After(deadline) {
				t.Fatalf("job %d = %v", i, job)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("%d jobs completed %v after the last submission", n, time.Since(start).Round(time.Second))
}

func waitWorkerReady(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		w := &seekv1alpha1.SeekWorker{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, w); err == nil && meta.IsStatusConditionTrue(w.Status.Conditions, seekv1alpha1.WorkerReady) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("worker %s never ready", name)
}

// TestManagerPodKilledMidRun kills the manager's pod while a job's pod runs: the Deployment starts
// another, which takes the leader lease over, and the job completes with one Job and one attempt
// (nothing lost, nothing run twice). The worker retains finished Jobs, so that they can be counted.
func TestManagerPodKilledMidRun(t *testing.T) {
	ctx := context.Background()
	worker := newWorker(t, testutil.MakeSeekWorker("ksleep-"+tenant).Image(workerImage("sleep")).PullPolicy(corev1.PullNever).
		FinishedJobs(seekv1alpha1.FinishedJobsRetain))
	mustCreate(t, testutil.MakeSeekJob("survivor", tenant).Worker(worker).Input(`{"seconds": 8}`).Obj())
	waitPodRunning(t, "survivor")
	selector := client.MatchingLabels{"app.kubernetes.io/component": "manager"}
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(info.SystemNamespace), selector); err != nil || len(pods.Items) != 1 {
		t.Fatalf("manager pods: %v, %v", pods.Items, err)
	}
	killed := pods.Items[0]
	if err := k8s.Delete(ctx, &killed, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	job := waitStatus(t, "job_survivor", "completed", "failed")
	if job["status"] != "completed" || job["attempts"] != float64(1) {
		t.Fatalf("job = %v", job)
	}
	jobs := &batchv1.JobList{}
	if err := k8s.List(ctx, jobs, client.InNamespace(tenant), client.MatchingLabels{seekv1alpha1.LabelJobName: "survivor"}); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 {
		t.Errorf("%d Jobs for the SeekJob, want 1", len(jobs.Items))
	}
	// The job completed through a new manager pod.
	if err := k8s.List(ctx, pods, client.InNamespace(info.SystemNamespace), selector); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.UID == killed.UID {
			t.Errorf("the killed manager pod %s is still there", p.Name)
		}
	}
}
