package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/controllers"
	"github.com/seek-api/seek-operator/internal/manager"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// testRunnerImage is the manager's --runner-image in the suite: part of the pool pods' template hash.
const testRunnerImage = "example.com/seek/runner:test"

// poolServiceAccount is the ServiceAccount the test's pool pods run as.
const poolServiceAccount = "seek-pool"

// pooledWorker creates a Pooled worker and waits for it to be Ready.
func pooledWorker(t *testing.T, mutate ...func(*seekv1alpha1.SeekWorker)) *seekv1alpha1.SeekWorker {
	t.Helper()
	w := echoWorker(t).Command("/bin/echo-worker").Obj()
	w.Spec.Execution = seekv1alpha1.WorkerExecution{Mode: seekv1alpha1.ExecutionModePooled,
		Pool: &seekv1alpha1.WorkerPool{MaxPods: 4, IdleTimeout: &metav1.Duration{Duration: time.Hour}}}
	for _, m := range mutate {
		m(w)
	}
	return readyWorker(t, w)
}

// poolNamespace creates a namespace with the pool pods' ServiceAccount.
func poolNamespace(t *testing.T) string {
	t.Helper()
	ns := newNamespace(t)
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: poolServiceAccount}})
	return ns
}

// runner plays the Seek runner of one pool pod: it holds the pod's dispatch token.
type runner struct {
	t     *testing.T
	pod   *corev1.Pod
	token string
}

// poolPod creates a pod of w's pool in ns (no kubelet runs it: it only has to exist) and mints its
// projected token, as the kubelet would. mutate may change the pod before it is created.
func poolPod(t *testing.T, ns string, w *seekv1alpha1.SeekWorker, mutate ...func(*corev1.Pod)) *runner {
	t.Helper()
	pod := testutil.MakePod(uniqueName("pool"), ns).
		Label(seekv1alpha1.LabelWorker, w.Name).Label(seekv1alpha1.LabelPool, w.Name).
		Label(seekv1alpha1.LabelPoolTemplate, controllers.PoolTemplateHash(w, testRunnerImage)).
		Label(batchv1.JobNameLabel, "seek-pool-"+w.Name+"-1").Obj()
	pod.Spec.ServiceAccountName = poolServiceAccount
	for _, m := range mutate {
		m(pod)
	}
	mustCreate(t, pod)
	return &runner{t: t, pod: pod, token: podToken(t, pod, dispatch.Audience)}
}

// podToken mints a token of the pod's ServiceAccount bound to the pod, for audience.
func podToken(t *testing.T, pod *corev1.Pod, audience string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Spec.ServiceAccountName}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{audience},
		ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if err := k8sClient.SubResource("token").Create(context.Background(), sa, tr); err != nil {
		t.Fatalf("request a token for pod %s: %v", pod.Name, err)
	}
	return tr.Status.Token
}

// dispatchCall posts body to the dispatch endpoint's path with token and decodes the answer into out.
func dispatchCall(ctx context.Context, token, path string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+dispatchAddr+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %q: %w", raw, err)
		}
	}
	return resp.StatusCode, nil
}

// call makes a call that must answer want, within timeout.
func (r *runner) call(path string, body, out any, want int, timeout time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	code, err := dispatchCall(ctx, r.token, path, body, out)
	if err != nil || code != want {
		r.t.Fatalf("POST %s as %s: %d %v, want %d (answer %+v)", path, r.pod.Name, code, err, want, out)
	}
}

// lease asks for a job and returns the answer.
func (r *runner) lease(idleSeconds float64) dispatch.LeaseResponse {
	r.t.Helper()
	var resp dispatch.LeaseResponse
	r.call(dispatch.PathLease, dispatch.LeaseRequest{IdleSeconds: idleSeconds}, &resp, http.StatusOK, dispatch.LeaseWait+10*time.Second)
	return resp
}

// leaseJob asks for a job and fails unless it gets the named one.
func (r *runner) leaseJob(name string) *dispatch.Job {
	r.t.Helper()
	resp := r.lease(0)
	if resp.Job == nil || resp.Job.Name != name {
		r.t.Fatalf("lease as %s: %+v, want job %s", r.pod.Name, resp, name)
	}
	return resp.Job
}

// twoPoolPods waits for the dispatch endpoint and makes a namespace, a pooled worker and two of its
// pool pods there.
func twoPoolPods(t *testing.T) (string, *seekv1alpha1.SeekWorker, *runner, *runner) {
	t.Helper()
	ns := poolNamespace(t)
	w := pooledWorker(t)
	return ns, w, poolPod(t, ns, w), poolPod(t, ns, w)
}

// statusWrites counts the writes to the SeekJobs of a namespace from a watch: every write makes a
// new resourceVersion, and so one MODIFIED event (creations are not counted).
type statusWrites struct {
	mu     sync.Mutex
	counts map[string]int
	stop   func()
}

func watchWrites(t *testing.T, ns string) *statusWrites {
	t.Helper()
	wc, err := client.NewWithWatch(cp.Config, client.Options{Scheme: manager.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &seekv1alpha1.SeekJobList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	sw := &statusWrites{counts: map[string]int{}, stop: func() { cancel(); w.Stop() }}
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Modified {
				sw.mu.Lock()
				sw.counts[ev.Object.(*seekv1alpha1.SeekJob).Name]++
				sw.mu.Unlock()
			}
		}
	}()
	t.Cleanup(sw.stop)
	return sw
}

func (sw *statusWrites) of(name string) int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.counts[name]
}

func createJob(t *testing.T, ns, name, worker, input string) *seekv1alpha1.SeekJob {
	t.Helper()
	sj := testutil.MakeSeekJob(name, ns).Worker(worker).Input(input).Obj()
	mustCreate(t, sj)
	return sj
}

func getJob(t *testing.T, ns, name string) *seekv1alpha1.SeekJob {
	t.Helper()
	sj := &seekv1alpha1.SeekJob{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, sj); err != nil {
		t.Fatal(err)
	}
	return sj
}

func TestDispatchLifecycle(t *testing.T) {
	ns := poolNamespace(t)
	w := pooledWorker(t)
	writes := watchWrites(t, ns)
	r := poolPod(t, ns, w)

	// The older job first, whatever the names.
	createJob(t, ns, "z-old", w.Name, `{"n":1}`)
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has whole seconds
	createJob(t, ns, "a-new", w.Name, `{"n":2}`)

	job := r.leaseJob("z-old")
	sj := getJob(t, ns, "z-old")
	if diff := cmp.Diff(&seekv1alpha1.PoolAttempt{JobName: "seek-pool-" + w.Name + "-1", PodName: r.pod.Name, PodUID: string(r.pod.UID)}, sj.Status.Pool); diff != "" {
		t.Errorf("status.pool (-want +got):\n%s", diff)
	}
	if sj.Status.State != seekv1alpha1.JobStateRunning || sj.Status.Attempts != 1 || sj.Status.StartTime == nil {
		t.Errorf("leased job: state %q, attempts %d, startTime %v; want Running, 1, set", sj.Status.State, sj.Status.Attempts, sj.Status.StartTime)
	}
	want := &dispatch.Job{AttemptRef: dispatch.AttemptRef{Namespace: ns, Name: "z-old", UID: string(sj.UID), Attempt: 1},
		Worker: w.Name, Input: json.RawMessage(`{"n":1}`), TimeoutMillis: job.TimeoutMillis, GraceMillis: 30000,
		LogBytes: seekv1alpha1.DefaultRetainedLogBytes}
	if diff := cmp.Diff(want, job); diff != "" {
		t.Errorf("leased job (-want +got):\n%s", diff)
	}
	// The first attempt gets the whole timeout: its start is the lease (the stored start time, in whole
	// seconds, must not shorten it).
	if job.TimeoutMillis != seekv1alpha1.DefaultTimeout.Milliseconds() {
		t.Errorf("timeoutMillis %d, want the whole timeout %d", job.TimeoutMillis, seekv1alpha1.DefaultTimeout.Milliseconds())
	}

	t.Run("heartbeat continues while the pod holds the attempt", func(t *testing.T) {
		var hb dispatch.HeartbeatResponse
		start := time.Now()
		r.call(dispatch.PathHeartbeat, job.AttemptRef, &hb, http.StatusOK, dispatch.HeartbeatWait+5*time.Second)
		if hb.Stop || time.Since(start) < dispatch.HeartbeatWait-time.Second {
			t.Errorf("heartbeat %+v after %s, want continue after the long poll (%s)", hb, time.Since(start), dispatch.HeartbeatWait)
		}
	})

	t.Run("another pod can neither report nor heartbeat the attempt; a cancel stops the heartbeat", func(t *testing.T) {
		other := poolPod(t, ns, w)
		// other leases a-new; then it reports z-old, which r holds: refused.
		other.leaseJob("a-new")
		var rr dispatch.ReportResponse
		other.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `"stolen"`}, &rr, http.StatusConflict, 10*time.Second)
		if rr.Accepted {
			t.Errorf("report of an attempt not held accepted")
		}
		var hb dispatch.HeartbeatResponse
		other.call(dispatch.PathHeartbeat, job.AttemptRef, &hb, http.StatusOK, 5*time.Second)
		if !hb.Stop {
			t.Errorf("heartbeat of an attempt not held: %+v, want stop", hb)
		}
		// Nothing is said about another namespace's jobs.
		foreign := job.AttemptRef
		foreign.Namespace = "kube-system"
		var er dispatch.ErrorResponse
		other.call(dispatch.PathHeartbeat, foreign, &er, http.StatusForbidden, 5*time.Second)
		// Cancel a-new: other's heartbeat stops at once.
		aNew := getJob(t, ns, "a-new")
		ref := dispatch.AttemptRef{Namespace: ns, Name: "a-new", UID: string(aNew.UID), Attempt: 1}
		done := make(chan dispatch.HeartbeatResponse, 1)
		go func() {
			var hb dispatch.HeartbeatResponse
			_, _ = dispatchCall(context.Background(), other.token, dispatch.PathHeartbeat, ref, &hb)
			done <- hb
		}()
		time.Sleep(300 * time.Millisecond) // the heartbeat waits
		requestCancel(t, ns, "a-new", "not needed")
		select {
		case hb := <-done:
			if diff := cmp.Diff(dispatch.HeartbeatResponse{Stop: true, Reason: seekv1alpha1.JobReasonCanceled}, hb); diff != "" {
				t.Errorf("heartbeat after cancel (-want +got):\n%s", diff)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the heartbeat did not stop within 5s of the cancel")
		}
	})

	var rr dispatch.ReportResponse
	r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `{"echo": {"n": 1}}`}, &rr, http.StatusOK, 10*time.Second)
	if !rr.Accepted {
		t.Fatalf("report not accepted")
	}
	done := getJob(t, ns, "z-old") // the answer comes after the write
	if done.Status.State != seekv1alpha1.JobStateCompleted || string(done.Status.Result.Raw) != `{"echo":{"n":1}}` {
		t.Errorf("reported job: state %q, result %s; want Completed, {\"echo\":{\"n\":1}}", done.Status.State, done.Status.Result.Raw)
	}
	r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `1`}, &rr, http.StatusConflict, 10*time.Second)

	// Two writes by the dispatcher (lease, outcome) and nothing else, events included.
	time.Sleep(2 * time.Second)
	if n := writes.of("z-old"); n != 2 {
		t.Errorf("%d writes of the SeekJob after its creation, want 2 (lease, outcome)", n)
	}
	events := &eventsv1.EventList{}
	if err := k8sClient.List(context.Background(), events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.Regarding.Name == "z-old" {
			t.Errorf("event %s %s about a pooled job that completed", e.Type, e.Reason)
		}
	}

	t.Run("a queued job reaches a waiting runner at once", func(t *testing.T) {
		got := make(chan dispatch.LeaseResponse, 1)
		go func() {
			var resp dispatch.LeaseResponse
			_, _ = dispatchCall(context.Background(), r.token, dispatch.PathLease, dispatch.LeaseRequest{}, &resp)
			got <- resp
		}()
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		createJob(t, ns, "late", w.Name, `"x"`)
		select {
		case resp := <-got:
			if resp.Job == nil || resp.Job.Name != "late" {
				t.Fatalf("lease %+v, want job late", resp)
			}
			t.Logf("create to lease: %s", time.Since(start))
			if d := time.Since(start); d > time.Second {
				t.Errorf("the waiting runner got the job %s after its creation, want well under 1s", d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no lease within 5s of the job's creation")
		}
	})
}

func TestDispatchAuthentication(t *testing.T) {
	w := pooledWorker(t)
	ns, other := poolNamespace(t), poolNamespace(t)
	r, otherRunner := poolPod(t, ns, w), poolPod(t, other, w)
	createJob(t, ns, "mine", w.Name, `1`)
	time.Sleep(1100 * time.Millisecond)
	createJob(t, other, "theirs", w.Name, `2`)

	t.Run("a pod leases only jobs of its namespace", func(t *testing.T) {
		otherRunner.leaseJob("theirs")
		r.leaseJob("mine")
	})
	t.Run("refused tokens", func(t *testing.T) {
		plain := testutil.MakePod(uniqueName("plain"), ns).Label(seekv1alpha1.LabelWorker, w.Name).Obj()
		plain.Spec.ServiceAccountName = poolServiceAccount
		mustCreate(t, plain)
		cases := []struct {
			name, token string
			want        int
			reason      string
		}{
			{name: "no token", want: http.StatusUnauthorized, reason: "Unauthorized"},
			{name: "garbage", token: "not-a-token", want: http.StatusUnauthorized, reason: "InvalidToken"},
			{name: "another audience", token: podToken(t, r.pod, "https://kubernetes.default.svc"), want: http.StatusUnauthorized, reason: "InvalidToken"},
			{name: "a pod that is not a pool pod", token: podToken(t, plain, dispatch.Audience), want: http.StatusForbidden, reason: "NotAPoolPod"},
		}
		for _, tc := range cases {
			var er dispatch.ErrorResponse
			code, err := dispatchCall(context.Background(), tc.token, dispatch.PathLease, dispatch.LeaseRequest{}, &er)
			if err != nil || code != tc.want || er.Reason != tc.reason || er.Message == "" {
				t.Errorf("%s: %d %+v %v, want %d %s", tc.name, code, er, err, tc.want, tc.reason)
			}
		}
		// A deleted pod's token is refused, even though the token is still valid and cached.
		gone := poolPod(t, ns, w)
		var hb dispatch.HeartbeatResponse
		gone.call(dispatch.PathHeartbeat, dispatch.AttemptRef{Namespace: ns, Name: "mine", UID: "x", Attempt: 1}, &hb, http.StatusOK, 5*time.Second)
		if err := k8sClient.Delete(context.Background(), gone.pod, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the deleted pod's token refused", func(ctx context.Context) (bool, error) {
			var er dispatch.ErrorResponse
			code, err := dispatchCall(ctx, gone.token, dispatch.PathLease, dispatch.LeaseRequest{}, &er)
			return code == http.StatusForbidden || code == http.StatusUnauthorized, fmt.Errorf("%d %+v %v", code, er, err)
		})
	})
}

func TestDispatchConcurrencyLimit(t *testing.T) {
	w := pooledWorker(t, func(w *seekv1alpha1.SeekWorker) { w.Spec.Limits.MaxConcurrentJobs = ptr.To[int32](1) })
	ns1, ns2 := poolNamespace(t), poolNamespace(t)
	r1, r2 := poolPod(t, ns1, w), poolPod(t, ns2, w)
	createJob(t, ns1, "one", w.Name, `1`)
	createJob(t, ns2, "two", w.Name, `2`)
	job := r1.leaseJob("one")

	// The worker's one slot is taken: ns2's runner waits, and gets its job once "one" finishes.
	got := make(chan dispatch.LeaseResponse, 1)
	go func() {
		var resp dispatch.LeaseResponse
		_, _ = dispatchCall(context.Background(), r2.token, dispatch.PathLease, dispatch.LeaseRequest{}, &resp)
		got <- resp
	}()
	select {
	case resp := <-got:
		t.Fatalf("lease beyond maxConcurrentJobs: %+v", resp)
	case <-time.After(2 * time.Second):
	}
	if s := getJob(t, ns2, "two"); s.Status.State != "" {
		t.Fatalf("job two is %q while the slot is taken", s.Status.State)
	}
	var rr dispatch.ReportResponse
	r1.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, ExitCode: 0}, &rr, http.StatusOK, 10*time.Second)
	select {
	case resp := <-got:
		if resp.Job == nil || resp.Job.Name != "two" {
			t.Fatalf("lease after the slot freed: %+v, want job two", resp)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no lease within 5s of the slot freeing")
	}
}

func TestDispatchExit(t *testing.T) {
	t.Run("an outdated pod template exits", func(t *testing.T) {
		w := pooledWorker(t)
		ns := poolNamespace(t)
		r := poolPod(t, ns, w, func(p *corev1.Pod) { p.Labels[seekv1alpha1.LabelPoolTemplate] = "outdated" })
		createJob(t, ns, "job", w.Name, `1`)
		if resp := r.lease(0); !resp.Exit || resp.Job != nil {
			t.Errorf("lease of an outdated pod: %+v, want exit", resp)
		}
	})
	t.Run("idle pods exit down to minPods", func(t *testing.T) {
		w := pooledWorker(t, func(w *seekv1alpha1.SeekWorker) {
			w.Spec.Execution.Pool.MinPods = 1
			w.Spec.Execution.Pool.IdleTimeout = &metav1.Duration{Duration: time.Second}
		})
		ns := poolNamespace(t)
		a, b := poolPod(t, ns, w), poolPod(t, ns, w)
		answers := make(chan dispatch.LeaseResponse, 2)
		for _, r := range []*runner{a, b} {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				var resp dispatch.LeaseResponse
				if _, err := dispatchCall(ctx, r.token, dispatch.PathLease, dispatch.LeaseRequest{IdleSeconds: 0.5}, &resp); err != nil {
					resp = dispatch.LeaseResponse{} // still waiting when the client gave up
				}
				answers <- resp
			}()
		}
		var exits []bool
		for range 2 {
			exits = append(exits, (<-answers).Exit)
		}
		sort.Slice(exits, func(i, j int) bool { return !exits[i] && exits[j] })
		if diff := cmp.Diff([]bool{false, true}, exits); diff != "" {
			t.Errorf("exit answers of two idle pods with minPods 1 (-want +got):\n%s", diff)
		}
	})
}

func TestDispatchManagerRestart(t *testing.T) {
	ns, w, r, r2 := twoPoolPods(t)
	createJob(t, ns, "held", w.Name, `1`)
	time.Sleep(1100 * time.Millisecond)
	createJob(t, ns, "queued", w.Name, `2`)
	job := r.leaseJob("held")

	// A long poll in flight ends when the manager stops; the manager does not wait for it.
	polled := make(chan time.Time, 1)
	go func() {
		var hb dispatch.HeartbeatResponse
		_, _ = dispatchCall(context.Background(), r.token, dispatch.PathHeartbeat, job.AttemptRef, &hb)
		polled <- time.Now()
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	mgrRun.stop()
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the manager took %s to stop with a heartbeat in flight", d)
	}
	select {
	case at := <-polled:
		if d := at.Sub(start); d > 8*time.Second {
			t.Errorf("the heartbeat answered %s after the stop", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the heartbeat did not end with the manager")
	}
	restartManager(t)

	// The queue and the holders are rebuilt from the cache.
	r2.leaseJob("queued")
	var rr dispatch.ReportResponse
	r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `"ok"`}, &rr, http.StatusOK, 10*time.Second)
	if sj := getJob(t, ns, "held"); !rr.Accepted || sj.Status.State != seekv1alpha1.JobStateCompleted {
		t.Errorf("report after the restart: accepted %v, state %q; want true, Completed", rr.Accepted, sj.Status.State)
	}
}

func TestDispatchReleases(t *testing.T) {
	ns, w, r, r2 := twoPoolPods(t)
	createJob(t, ns, "job", w.Name, `1`)

	t.Run("a lease the runner never got is released when it asks again", func(t *testing.T) {
		first := r.leaseJob("job")
		again := r.leaseJob("job") // the runner reports every attempt before asking: the first answer was lost
		if again.Attempt != first.Attempt {
			t.Errorf("attempt %d after a lost lease, want %d (a lost attempt does not count)", again.Attempt, first.Attempt)
		}
		if sj := getJob(t, ns, "job"); sj.Status.Pool.PodUID != string(r.pod.UID) || sj.Status.Attempts != 1 {
			t.Errorf("status.pool %+v, attempts %d; want held by %s, 1", sj.Status.Pool, sj.Status.Attempts, r.pod.Name)
		}
	})
	t.Run("an interrupted attempt runs again at once on another pod", func(t *testing.T) {
		sj := getJob(t, ns, "job")
		ref := dispatch.AttemptRef{Namespace: ns, Name: "job", UID: string(sj.UID), Attempt: sj.Status.Attempts}
		var rr dispatch.ReportResponse
		r.call(dispatch.PathReport, dispatch.Report{AttemptRef: ref, ExitCode: -1, Signal: "SIGTERM", Interrupted: true}, &rr, http.StatusOK, 10*time.Second)
		next := r2.leaseJob("job")
		if next.Attempt != 1 {
			t.Errorf("attempt %d after an interruption, want 1", next.Attempt)
		}
	})
}

// TestDispatchReleasesSilentAttempt: an attempt whose pod says nothing of it (the answer to its lease
// was lost, and the pod never asks again) is released after the silence limit, not counted, and leased
// to another pod; the first pod's heartbeat for it then answers stop.
func TestDispatchReleasesSilentAttempt(t *testing.T) {
	ns, w, r, r2 := twoPoolPods(t)
	createJob(t, ns, "job", w.Name, `1`)

	lost := r.leaseJob("job")
	leased := time.Now()
	eventually(t, "the silent attempt released", func(context.Context) (bool, error) {
		sj := getJob(t, ns, "job")
		return sj.Status.Pool != nil && sj.Status.Pool.PodUID == "" && sj.Status.Attempts == 0 && !sj.Status.State.IsTerminal(), nil
	})
	if silence := time.Since(leased); silence < suiteSilenceLimit {
		t.Errorf("released after %v of silence, before the limit %v", silence, suiteSilenceLimit)
	}
	next := r2.leaseJob("job")
	if next.Attempt != lost.Attempt {
		t.Errorf("attempt %d after a silent one, want %d (a released attempt does not count)", next.Attempt, lost.Attempt)
	}
	var hb dispatch.HeartbeatResponse
	r.call(dispatch.PathHeartbeat, lost.AttemptRef, &hb, http.StatusOK, 5*time.Second)
	if !hb.Stop {
		t.Errorf("heartbeat of the released attempt: %+v, want stop", hb)
	}
	var rr dispatch.ReportResponse
	r2.call(dispatch.PathReport, dispatch.Report{AttemptRef: next.AttemptRef, Result: `"ok"`}, &rr, http.StatusOK, 10*time.Second)
	if sj := getJob(t, ns, "job"); sj.Status.State != seekv1alpha1.JobStateCompleted || sj.Status.Attempts != 1 {
		t.Errorf("state %s, attempts %d; want Completed after 1 attempt", sj.Status.State, sj.Status.Attempts)
	}
}

// TestDispatchProgress: a runner's progress reaches the job's status, at most one write per
// dispatch.ProgressInterval; sooner is 429 with Retry-After, the same report writes nothing, another
// pod's report is refused, and the last progress stays when the job ends.
func TestDispatchProgress(t *testing.T) {
	ns := poolNamespace(t)
	w := pooledWorker(t)
	r, other := poolPod(t, ns, w), poolPod(t, ns, w)
	createJob(t, ns, "slow", w.Name, `{}`)
	job := r.leaseJob("slow")
	writes := watchWrites(t, ns)

	send := func(p *runner, fraction float64, message string) (int, dispatch.ProgressResponse) {
		t.Helper()
		var resp dispatch.ProgressResponse
		code, err := dispatchCall(context.Background(), p.token, dispatch.PathProgress,
			dispatch.ProgressRequest{AttemptRef: job.AttemptRef, Fraction: fraction, Message: message}, &resp)
		if err != nil {
			t.Fatalf("progress call: %v", err)
		}
		return code, resp
	}
	progressOf := func() *seekv1alpha1.JobProgress {
		var p *seekv1alpha1.JobProgress
		eventually(t, "progress in status", func(context.Context) (bool, error) {
			p = getJob(t, ns, "slow").Status.Progress
			return p != nil, nil
		})
		return p
	}

	if code, resp := send(r, 0.25, "page 1 of 4"); code != http.StatusOK || !resp.Written {
		t.Fatalf("first progress = %d %+v, want 200 written", code, resp)
	}
	if p := progressOf(); p.Fraction != "0.25" || p.Message != "page 1 of 4" || p.Attempt != 1 {
		t.Errorf("status.progress = %+v", p)
	}
	if code, resp := send(r, 0.25, "page 1 of 4"); code != http.StatusOK || resp.Written {
		t.Errorf("the same progress again = %d %+v, want 200 not written", code, resp)
	}
	if code, _ := send(r, 0.5, "page 2 of 4"); code != http.StatusTooManyRequests {
		t.Errorf("progress within the interval = %d, want 429", code)
	}
	if code, _ := send(other, 0.9, "not mine"); code != http.StatusConflict {
		t.Errorf("another pod's progress = %d, want 409", code)
	}
	if code, _ := send(r, 1.5, ""); code != http.StatusBadRequest {
		t.Errorf("fraction 1.5 = %d, want 400", code)
	}
	time.Sleep(dispatch.ProgressInterval)
	if code, resp := send(r, 0.5, "page 2 of 4"); code != http.StatusOK || !resp.Written {
		t.Fatalf("progress after the interval = %d %+v, want 200 written", code, resp)
	}
	var rr dispatch.ReportResponse
	r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `{}`}, &rr, http.StatusOK, 10*time.Second)
	sj := waitForState(t, ns, "slow", seekv1alpha1.JobStateCompleted)
	if p := sj.Status.Progress; p == nil || p.Fraction != "0.5" || p.Message != "page 2 of 4" {
		t.Errorf("progress of the finished job = %+v, want the last one", p)
	}
	// Two progress writes and the report's: nothing else for this job.
	if n := writes.of("slow"); n != 3 {
		t.Errorf("status writes of the job since its lease = %d, want 3", n)
	}
	if code, _ := send(r, 0.75, ""); code != http.StatusConflict {
		t.Errorf("progress of a finished attempt = %d, want 409", code)
	}
}

// TestDispatchProgressWebhook: a job that asked for progress events gets job.progress for each
// progress write, with the progress in its data and a webhook-id of its own, then its finished event.
func TestDispatchProgressWebhook(t *testing.T) {
	ns := poolNamespace(t)
	w := pooledWorker(t)
	r := poolPod(t, ns, w)
	rc := newReceiver(t, nil)
	mustCreate(t, testutil.MakeSeekJob("hooked", ns).Worker(w.Name).Input(`{}`).
		Callback(rc.url(), seekv1alpha1.CallbackEventProgress, seekv1alpha1.CallbackEventFinished).Obj())
	job := r.leaseJob("hooked")

	var resp dispatch.ProgressResponse
	r.call(dispatch.PathProgress, dispatch.ProgressRequest{AttemptRef: job.AttemptRef, Fraction: 0.5, Message: "half"}, &resp, http.StatusOK, 10*time.Second)
	calls := rc.waitCalls(1)
	typ, data := calls[0].payload(t)
	progress, _ := data["progress"].(map[string]any)
	if typ != "job.progress" || progress["fraction"] != 0.5 || progress["message"] != "half" || data["status"] != "running" {
		t.Errorf("first delivery: %s %v", typ, data)
	}
	if id := calls[0].id(); !strings.HasPrefix(id, "msg_"+job.UID+"_progress_") {
		t.Errorf("webhook-id %q", id)
	}
	var rr dispatch.ReportResponse
	r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: `{"done":true}`}, &rr, http.StatusOK, 10*time.Second)
	calls = rc.waitCalls(2)
	if typ, data := calls[1].payload(t); typ != "job.completed" || data["status"] != "completed" {
		t.Errorf("second delivery: %s %v", typ, data)
	}
	if calls[1].id() == calls[0].id() {
		t.Errorf("progress and finished share webhook-id %q", calls[0].id())
	}
}
