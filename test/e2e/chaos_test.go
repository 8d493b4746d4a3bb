//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/localcluster"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/internal/webhook"
	"github.com/seek-api/seek-operator/pkg/joblog"
)

// The chaos run's size and disruptions (issue 13).
const (
	// chaosJobs are submitted through the REST API: 6% run in Job mode (one in 50 on a fail worker with
	// one retry, so two pods each, one in 25 on sleep), the rest pooled (echo). One in chaosCallbackEvery
	// asks for a callback. Job mode is the slow one: with the sample workers' cap of 8 jobs at a time, a
	// loaded 2-core node runs about one Job-mode pod every 2 s.
	chaosJobs          = 2000
	chaosCallbackEvery = 4
	// chaosSubmitRate paces the submissions while the disruptions last, so that there are jobs to move
	// after each of them; once the disruptions are over, the rest go as fast as the API takes them.
	// The disruptions take about 5 min: at 7 a second nearly every job is submitted by then (at 5, a
	// third were still to come). The Job mode jobs, about one pod every 2 s, still finish minutes later.
	chaosSubmitRate   = 7
	chaosSubmitters   = 6
	chaosManagerKills = 10
	// The apiserver is down for chaosApiserverDown; jobs must move again within chaosApiserverRecovery
	// of its return.
	chaosApiserverDown     = 30 * time.Second
	chaosApiserverRecovery = 30 * time.Second
	chaosKubeletDown       = 5 * time.Second
	// chaosHang is how long the webhook receiver hangs (every request it gets meanwhile waits).
	chaosHang = time.Minute
	// chaosFailRetries is the retries of the chaos run's fail worker.
	chaosFailRetries = 1
)

// TestChaos runs 2,000 jobs in both execution modes while the cluster is disrupted: the manager's pod
// is deleted ten times, the kubelet killed and started again once, kube-apiserver killed and started
// again 30 s later, and the jobs' webhook receiver hangs for a minute (docs/chaos.md). Afterwards every accepted job reached exactly one
// terminal state, no SeekJob got two Jobs, no job made more attempts than its worker's retries allow,
// every finished job with a callback got its terminal event (delivered, with one webhook-id however
// often it was sent), and the REST API answered only 2xx for stored jobs, 503 or 429 with
// Retry-After, never another error; while the apiserver was down it answered 503 with Retry-After.
// After the apiserver's return jobs move again within 30 s, and so does a job accepted after it. It
// prints the counts and the recovery times. It runs alone (not parallel): it disrupts the whole
// cluster.
func TestChaos(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	begin := time.Now()
	// The test's own informers retry through the apiserver's outage: keep client-go's complaints out
	// of the test's output.
	klog.SetLogger(logr.Discard())
	t.Cleanup(klog.ClearLogger)

	tn, err := localcluster.NewTenant(ctx, k8s, info, "chaos", 1000)
	if err != nil {
		t.Fatal(err)
	}
	ns := tn.Namespace
	t.Cleanup(func() {
		// Wait (a while) for the namespace and its thousands of SeekJobs to go, so that the tests after
		// this one do not share the node with the deletion.
		start := time.Now()
		if err := tn.Delete(context.Background(), k8s); err != nil {
			t.Logf("delete the tenant: %v", err)
			return
		}
		for time.Since(start) < 3*time.Minute {
			if err := k8s.Get(context.Background(), client.ObjectKey{Name: ns}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
				t.Logf("namespace %s deleted in %v", ns, time.Since(start).Round(time.Second))
				return
			}
			time.Sleep(time.Second)
		}
		t.Logf("namespace %s still there %v after its deletion", ns, time.Since(start).Round(time.Second))
	})
	api := &chaosAPI{key: tn.APIKey, http: &http.Client{Timeout: 20 * time.Second}}

	failWorker := "chaos-fail-" + ns
	fw := testutil.MakeSeekWorker(failWorker).Image(workerImage("fail")).PullPolicy(corev1.PullNever).
		Retries(chaosFailRetries).MaxConcurrent(int32(localcluster.SampleMaxConcurrentJobs())).Obj()
	mustCreate(t, fw)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), fw) })
	waitWorkerReady(t, failWorker)
	retries := map[string]int32{}
	jobMode := map[string]bool{}
	for _, name := range []string{"echo", "sleep", failWorker} {
		w := &seekv1alpha1.SeekWorker{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, w); err != nil {
			t.Fatal(err)
		}
		retries[name] = w.Spec.Retries
		jobMode[name] = w.Spec.Execution.Mode != seekv1alpha1.ExecutionModePooled
	}
	if jobMode["echo"] || !jobMode["sleep"] || !jobMode[failWorker] {
		t.Fatalf("want echo pooled, sleep and %s in Job mode: %v", failWorker, jobMode)
	}
	for code, _ := api.do(ctx, http.MethodGet, "/v1/workers/"+failWorker, "", ""); code != http.StatusOK; code, _ = api.do(ctx, http.MethodGet, "/v1/workers/"+failWorker, "", "") {
		time.Sleep(200 * time.Millisecond) // the frontend learns of the worker from its informer
	}

	// The webhook receiver.
	code, raw := api.do(ctx, http.MethodGet, "/v1/webhooks/secret", "", "")
	var secret struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(raw, &secret); code != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/webhooks/secret = %d %s", code, raw)
	}
	hooks := &hookReceiver{secret: secret.Secret, got: map[string][]hookDelivery{}}
	receiver := newReceiver(t, hooks.receive)

	// Watch the tenant's SeekJobs and Jobs for the whole run.
	tr := newChaosTracker(jobMode)
	informers := tr.start(ctx, t, ns)

	// The submissions.
	plan := make([]chaosSubmission, chaosJobs)
	for i := range plan {
		s := chaosSubmission{key: fmt.Sprintf("chaos-%d", i), worker: "echo", input: fmt.Sprintf(`"message": "c%d"`, i)}
		switch {
		case i%50 == 0:
			s.worker, s.input = failWorker, `"exit_code": 3, "message": "chaos"`
		case i%25 == 1:
			s.worker, s.input = "sleep", `"seconds": 0.5`
		}
		if i%chaosCallbackEvery == 0 {
			s.callback = fmt.Sprintf("%s/hook/%d", receiver.URL, i)
			s.input += fmt.Sprintf(`, "callback_url": %q`, s.callback)
		}
		plan[i] = s
	}
	var accepted chaosAccepted
	var chaosOver atomic.Bool
	next := make(chan chaosSubmission)
	go func() {
		defer close(next)
		tick := time.NewTicker(time.Second / chaosSubmitRate)
		defer tick.Stop()
		for _, s := range plan {
			if !chaosOver.Load() {
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
			select {
			case next <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	var submitters sync.WaitGroup
	var submitErrs chaosErrors
	for range chaosSubmitters {
		submitters.Go(func() {
			for s := range next {
				if name, err := api.submitUntilAccepted(ctx, s); err != nil {
					submitErrs.add("%s: %v", s.key, err)
				} else {
					accepted.add(name, s)
				}
			}
		})
	}

	// The disruptions, one after the other, once jobs flow.
	for accepted.count() < 50 && time.Since(begin) < 2*time.Minute {
		time.Sleep(200 * time.Millisecond)
	}
	chaosStart := time.Now()
	hangStart, hangEnd := make(chan time.Time, 1), make(chan time.Time, 1)
	go func() {
		time.Sleep(5 * time.Second)
		hangStart <- hooks.hang(chaosHang)
		hangEnd <- time.Now()
	}()
	var outcomes []disruption
	var markers []string
	kill := func(n int) {
		d, marker := chaosKillManager(ctx, t, api, tr, n)
		outcomes, markers = append(outcomes, d), append(markers, marker)
		time.Sleep(3 * time.Second)
	}
	kill(1)
	kill(2)
	apiserver := chaosRestartApiserver(ctx, t, api, ns)
	outcomes = append(outcomes, apiserver.disruption)
	kill(3)
	outcomes = append(outcomes, chaosRestartKubelet(ctx, t, tr))
	for n := 4; n <= chaosManagerKills; n++ {
		kill(n)
	}
	chaosOver.Store(true)
	chaosDuration := time.Since(chaosStart)
	submitters.Wait()
	lastSubmission := time.Now()
	t.Logf("chaos over after %v; all %d submissions answered %v after the start", chaosDuration.Round(time.Second), chaosJobs, time.Since(begin).Round(time.Second))

	// Every accepted job (the 2,000, the markers, the probes the API accepted) ends.
	all := accepted.names()
	all = append(all, markers...)
	all = append(all, apiserver.accepted...)
	all = slices.DeleteFunc(all, func(s string) bool { return s == "" })
	waitDeadline := lastSubmission.Add(6 * time.Minute)
	for tr.unfinished(all) > 0 && time.Now().Before(waitDeadline) {
		time.Sleep(time.Second)
	}
	allDone := time.Now()
	final := &seekv1alpha1.SeekJobList{}
	if err := k8s.List(ctx, final, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	byName := map[string]*seekv1alpha1.SeekJob{}
	for i := range final.Items {
		byName[final.Items[i].Name] = &final.Items[i]
	}

	// The callbacks: wait for the terminal event of every finished job that asked for one (a delivery
	// that failed during the hang is tried again 5 s later, then 5 min later).
	hangEndAt := <-hangEnd
	hangStartAt := <-hangStart
	callbacksDeadline := hangEndAt.Add(7 * time.Minute)
	callbackJobs := accepted.withCallback()
	for {
		missing := hooks.missing(callbackJobs, byName)
		if len(missing) == 0 || time.Now().After(callbacksDeadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	callbacksDone := time.Now()
	cancel()
	informers.wait()

	// Assertions.
	var stuck []string
	states := map[string]map[seekv1alpha1.JobState]int{}
	attempts := map[string]map[int32]int{}
	for _, name := range all {
		sj := byName[name]
		if sj == nil {
			t.Errorf("accepted job %s is not stored", name)
			continue
		}
		w := string(sj.Spec.WorkerName)
		if !sj.Status.State.IsTerminal() {
			stuck = append(stuck, describeJob(sj))
			continue
		}
		if states[w] == nil {
			states[w], attempts[w] = map[seekv1alpha1.JobState]int{}, map[int32]int{}
		}
		states[w][sj.Status.State]++
		attempts[w][sj.Status.Attempts]++
		if w != failWorker && sj.Status.State != seekv1alpha1.JobStateCompleted {
			// Allowed (a worker without retries may lose an attempt to the chaos), but worth a look.
			t.Logf("job %s (%s) did not complete:\n%s", name, w, describeJob(sj))
		}
		if max := retries[w] + 1; sj.Status.Attempts > max {
			t.Errorf("job %s (%s) made %d attempts; its worker allows %d (retries %d)", name, w, sj.Status.Attempts, max, retries[w])
		}
	}
	if len(stuck) > 0 {
		t.Errorf("%d accepted jobs did not finish within 6 min of the last submission:\n%s", len(stuck), strings.Join(stuck, "\n"))
		for _, name := range all {
			if sj := byName[name]; sj != nil && !sj.Status.State.IsTerminal() && sj.Status.Pool != nil {
				explainStuckPooled(ctx, t, sj)
			}
		}
	}
	for _, f := range tr.flipped() {
		t.Errorf("a job changed its terminal state: %s", f)
	}
	jobsPerSeekJob := tr.jobCounts()
	for name, n := range jobsPerSeekJob {
		if n > 1 {
			t.Errorf("SeekJob %s got %d Jobs", name, n)
		}
	}
	for _, err := range submitErrs.list() {
		t.Errorf("submission: %s", err)
	}
	answers := api.answers()
	for _, a := range answers {
		switch {
		case a.err != nil:
		case a.code >= 500 && a.retryAfter == "":
			t.Errorf("%s %s answered %d without Retry-After at %s: %s", a.method, a.key, a.code, a.at.Format(time.RFC3339Nano), a.body)
		case a.code == http.StatusServiceUnavailable, a.code == http.StatusTooManyRequests:
			if a.retryAfter == "" {
				t.Errorf("%s %s answered %d without Retry-After: %s", a.method, a.key, a.code, a.body)
			}
		case a.code >= 400:
			t.Errorf("%s %s answered %d: %s", a.method, a.key, a.code, a.body)
		}
	}
	down := apiserver.answersWhileDown(answers)
	if down.by["503+Retry-After"] == 0 {
		t.Errorf("no submission was answered 503 with Retry-After while the apiserver was down: %v", down.by)
	}
	if apiserver.recovered < 0 || apiserver.recovered > chaosApiserverRecovery {
		t.Errorf("jobs moved again %v after the apiserver's return, want within %v", apiserver.recovered, chaosApiserverRecovery)
	}
	// A job finishing soon after the return may be an attempt that ended during the outage and whose
	// report went through late; a job accepted after the return shows that new work moves.
	if apiserver.newJob < 0 || apiserver.newJob > chaosApiserverRecovery {
		t.Errorf("the first job accepted after the apiserver's return finished %v after it, want within %v", apiserver.newJob, chaosApiserverRecovery)
	}
	for _, d := range outcomes {
		if d.err != nil {
			t.Errorf("%s: %v", d.what, d.err)
		}
	}
	cb := hooks.check(t, callbackJobs, byName)

	// The report.
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\nchaos run\t\n")
	fmt.Fprintf(tw, "submitted (REST, Idempotency-Key)\t%d\t\n", chaosJobs)
	fmt.Fprintf(tw, "accepted\t%d (+%d markers, +%d probes)\t\n", accepted.count(), len(markers), len(apiserver.accepted))
	total := countAnswers(answers)
	fmt.Fprintf(tw, "answers\t%s; slowest %v\t\n", formatCounts(total.by), total.slowest.Round(100*time.Millisecond))
	for _, e := range total.errors {
		fmt.Fprintf(tw, "\t%s\t\n", e)
	}
	fmt.Fprintf(tw, "answers while the apiserver was down\t%s; slowest %v\t\n", formatCounts(down.by), down.slowest.Round(100*time.Millisecond))
	for _, e := range down.errors {
		fmt.Fprintf(tw, "\t%s\t\n", e)
	}
	for _, p := range apiserver.phases(answers) {
		fmt.Fprintf(tw, "\t%s\t\n", p)
	}
	for _, w := range slices.Sorted(maps.Keys(states)) {
		mode := "pooled"
		if jobMode[w] {
			mode = "Job mode"
		}
		fmt.Fprintf(tw, "%s (%s, retries %d)\tstates %s; attempts %s\t\n", w, mode, retries[w], formatCounts(states[w]), formatCounts(attempts[w]))
	}
	fmt.Fprintf(tw, "unfinished\t%d\t\n", len(stuck))
	fmt.Fprintf(tw, "Jobs (Job mode)\t%d for %d SeekJobs, most for one: %d\t\n", sumValues(jobsPerSeekJob), len(jobsPerSeekJob), maxValue(jobsPerSeekJob))
	fmt.Fprintf(tw, "callbacks\t%d jobs, %d got their terminal event, %d deliveries received (%d during the hang), %d answered; webhook-ids per event: at most %d\t\n",
		len(callbackJobs), cb.delivered, cb.received, cb.duringHang, cb.answered, cb.maxIDs)
	fmt.Fprintf(tw, "receiver hang\t%s to %s\t\n", hangStartAt.Sub(begin).Round(time.Second), hangEndAt.Sub(begin).Round(time.Second))
	fmt.Fprintf(tw, "\ndisruption (time since start)\tdown\tnew leader / back after\tjobs move again after\t\n")
	for _, d := range outcomes {
		fmt.Fprintf(tw, "%s (+%v)\t%v\t%v\t%v\t\n", d.what, d.at.Sub(begin).Round(time.Second), d.down.Round(100*time.Millisecond),
			d.back.Round(100*time.Millisecond), d.recovered.Round(100*time.Millisecond))
	}
	fmt.Fprintf(tw, "first job accepted after the apiserver's return finished after\t%v\t\n", apiserver.newJob)
	fmt.Fprintf(tw, "(jobs move again: after a manager deletion, a pooled job; the kubelet, a Job mode job; the apiserver, any job)\t\t\n")
	fmt.Fprintf(tw, "\nphase\tduration\t\n")
	fmt.Fprintf(tw, "disruptions\t%v\t\n", chaosDuration.Round(time.Second))
	fmt.Fprintf(tw, "start to last submission\t%v\t\n", lastSubmission.Sub(begin).Round(time.Second))
	fmt.Fprintf(tw, "start to every job finished\t%v\t\n", allDone.Sub(begin).Round(time.Second))
	fmt.Fprintf(tw, "start to every callback delivered\t%v\t\n", callbacksDone.Sub(begin).Round(time.Second))
	_ = tw.Flush()
	t.Log(b.String())
}

// chaosSubmission is one job of the run.
type chaosSubmission struct {
	key, worker string
	// input is the JSON body's members.
	input    string
	callback string
}

// chaosAccepted are the accepted submissions: job names by idempotency key.
type chaosAccepted struct {
	mu   sync.Mutex
	jobs map[string]chaosSubmission
}

func (a *chaosAccepted) add(name string, s chaosSubmission) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.jobs == nil {
		a.jobs = map[string]chaosSubmission{}
	}
	a.jobs[name] = s
}

func (a *chaosAccepted) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.jobs)
}

func (a *chaosAccepted) names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Collect(maps.Keys(a.jobs))
}

// withCallback are the accepted jobs that asked for a callback.
func (a *chaosAccepted) withCallback() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for name, s := range a.jobs {
		if s.callback != "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// chaosErrors collects errors from goroutines.
type chaosErrors struct {
	mu   sync.Mutex
	errs []string
}

func (e *chaosErrors) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

func (e *chaosErrors) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.errs)
}

// chaosAPI is the REST API as the chaos tenant, recording every answer.
type chaosAPI struct {
	key  string
	http *http.Client

	mu  sync.Mutex
	log []apiAnswer
}

// apiAnswer is one answer of the REST API (or the error that came instead).
type apiAnswer struct {
	sent, at    time.Time
	method, key string
	code        int
	retryAfter  string
	body        string
	err         error
}

// do sends one request and returns the answer's status and body (0 on a transport error).
func (a *chaosAPI) do(ctx context.Context, method, path, body, idempotencyKey string) (int, []byte) {
	ans, raw := a.send(ctx, method, path, body, idempotencyKey)
	return ans.code, raw
}

func (a *chaosAPI) send(ctx context.Context, method, path, body, idempotencyKey string) (apiAnswer, []byte) {
	ans := apiAnswer{method: method + " " + path, key: idempotencyKey, sent: time.Now()}
	req, err := http.NewRequestWithContext(ctx, method, apiURL+path, strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("X-Api-Key", a.key)
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := a.http.Do(req)
	var raw []byte
	if err == nil {
		raw, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		ans.code, ans.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	ans.at, ans.err, ans.body = time.Now(), err, string(raw)
	if method == http.MethodPost {
		a.mu.Lock()
		a.log = append(a.log, ans)
		a.mu.Unlock()
	}
	return ans, raw
}

func (a *chaosAPI) answers() []apiAnswer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.log)
}

// submitOnce submits s once and returns the answer and the job's name when it was accepted.
func (a *chaosAPI) submitOnce(ctx context.Context, s chaosSubmission) (apiAnswer, string) {
	ans, raw := a.send(ctx, http.MethodPost, "/v1/workers/"+s.worker+"/jobs", "{"+s.input+"}", s.key)
	if ans.err != nil || (ans.code != http.StatusAccepted && ans.code != http.StatusOK) {
		return ans, ""
	}
	var job struct {
		ID string `json:"job_uuid"`
	}
	if err := json.Unmarshal(raw, &job); err != nil || !strings.HasPrefix(job.ID, "job_") {
		ans.err = fmt.Errorf("answer %d without a job id: %s", ans.code, raw)
		return ans, ""
	}
	return ans, strings.TrimPrefix(job.ID, "job_")
}

// submitUntilAccepted submits s until the API accepts it (the Idempotency-Key makes a repeat safe),
// waiting as Retry-After says after a 503 or 429, for at most 5 min. Any other 4xx is an error.
func (a *chaosAPI) submitUntilAccepted(ctx context.Context, s chaosSubmission) (string, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ans, name := a.submitOnce(ctx, s)
		if name != "" {
			return name, nil
		}
		wait := time.Second
		switch {
		case ans.err != nil:
		case ans.code >= 500, ans.code == http.StatusTooManyRequests:
			if secs, err := strconv.Atoi(ans.retryAfter); err == nil {
				wait = time.Duration(min(max(secs, 1), 10)) * time.Second
			}
		default:
			return "", fmt.Errorf("answered %d: %s", ans.code, ans.body)
		}
		if time.Now().Add(wait).After(deadline) {
			return "", fmt.Errorf("not accepted within 5 min; last answer %d %v: %s", ans.code, ans.err, ans.body)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
	}
}

// answerCounts counts answers by kind: 2xx, 503+Retry-After, 429+Retry-After, other codes, and
// transport errors.
type answerCounts struct {
	by map[string]int
	// slowest is the longest wait for an answer.
	slowest time.Duration
	// errors are the distinct transport errors (their count, and when the first was, after the first
	// answer counted), at most ten.
	errors []string
}

func countAnswers(answers []apiAnswer) answerCounts {
	c := answerCounts{by: map[string]int{}}
	errs := map[string]int{}
	var order []string
	for _, a := range answers {
		c.slowest = max(c.slowest, a.at.Sub(a.sent))
		switch {
		case a.err != nil:
			c.by["no answer"]++
			msg := a.err.Error()
			if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "Post ") {
				msg = msg[i+2:] // the cause, without the URL
			}
			if errs[msg] == 0 {
				order = append(order, msg)
			}
			errs[msg]++
		case a.code >= 200 && a.code < 300:
			c.by["2xx"]++
		case a.retryAfter != "":
			c.by[strconv.Itoa(a.code)+"+Retry-After"]++
		default:
			c.by[strconv.Itoa(a.code)]++
		}
	}
	for _, msg := range order[:min(len(order), 10)] {
		c.errors = append(c.errors, fmt.Sprintf("%d× %s", errs[msg], msg))
	}
	return c
}

// chaosTracker watches the tenant's SeekJobs and Jobs.
type chaosTracker struct {
	jobMode map[string]bool

	mu sync.Mutex
	// terminal is the first terminal state seen of each SeekJob.
	terminal map[string]seekv1alpha1.JobState
	// flips are SeekJobs seen in one terminal state, then in another.
	flips []string
	// finishes are when SeekJobs were first seen terminal, in order, and whether they ran in Job mode.
	finishes []finish
	// jobs are the UIDs of the Jobs seen for each SeekJob (Job mode).
	jobs map[string]map[types.UID]bool
}

type finish struct {
	at      time.Time
	jobMode bool
}

// finishMode says which jobs' finishes waitFinish waits for.
type finishMode int

const (
	anyMode finishMode = iota
	jobModeOnly
	pooledOnly
)

type runningInformers struct{ done chan struct{} }

func (r runningInformers) wait() { <-r.done }

func newChaosTracker(jobMode map[string]bool) *chaosTracker {
	return &chaosTracker{jobMode: jobMode, terminal: map[string]seekv1alpha1.JobState{}, jobs: map[string]map[types.UID]bool{}}
}

// start runs informers on the namespace's SeekJobs and Jobs until ctx ends.
func (tr *chaosTracker) start(ctx context.Context, t *testing.T, ns string) runningInformers {
	t.Helper()
	c, err := namespaceCache(ns)
	if err != nil {
		t.Fatal(err)
	}
	sjInf, err := c.GetInformer(ctx, &seekv1alpha1.SeekJob{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sjInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: tr.seekJob, UpdateFunc: func(_, obj any) { tr.seekJob(obj) }}); err != nil {
		t.Fatal(err)
	}
	jobInf, err := c.GetInformer(ctx, &batchv1.Job{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: tr.job, UpdateFunc: func(_, obj any) { tr.job(obj) }}); err != nil {
		t.Fatal(err)
	}
	r := runningInformers{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_ = c.Start(ctx)
	}()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the chaos run's informers never synced")
	}
	return r
}

// namespaceCache is a new informer cache of the namespace.
func namespaceCache(ns string) (cache.Cache, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", info.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	return cache.New(cfg, cache.Options{Scheme: k8s.Scheme(), DefaultNamespaces: map[string]cache.Config{ns: {}}})
}

// firstFinish watches the namespace's SeekJobs with a new informer (its own list and watch, which no
// reconnect back-off of an informer that lived through an outage delays) and returns when one of them
// turns terminal, at most bound after it started.
func firstFinish(ctx context.Context, ns string, bound time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	c, err := namespaceCache(ns)
	if err != nil {
		return time.Time{}, err
	}
	inf, err := c.GetInformer(ctx, &seekv1alpha1.SeekJob{})
	if err != nil {
		return time.Time{}, err
	}
	finished := make(chan time.Time, 1)
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{UpdateFunc: func(oldObj, newObj any) {
		o, ok1 := oldObj.(*seekv1alpha1.SeekJob)
		n, ok2 := newObj.(*seekv1alpha1.SeekJob)
		if ok1 && ok2 && !o.Status.State.IsTerminal() && n.Status.State.IsTerminal() {
			select {
			case finished <- time.Now():
			default:
			}
		}
	}}); err != nil {
		return time.Time{}, err
	}
	go func() { _ = c.Start(ctx) }()
	select {
	case at := <-finished:
		return at, nil
	case <-ctx.Done():
		return time.Time{}, fmt.Errorf("no job finished within %v", bound)
	}
}

func (tr *chaosTracker) seekJob(obj any) {
	sj, ok := obj.(*seekv1alpha1.SeekJob)
	if !ok || !sj.Status.State.IsTerminal() {
		return
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	first, seen := tr.terminal[sj.Name]
	switch {
	case !seen:
		tr.terminal[sj.Name] = sj.Status.State
		tr.finishes = append(tr.finishes, finish{at: time.Now(), jobMode: tr.jobMode[string(sj.Spec.WorkerName)]})
	case first != sj.Status.State:
		tr.flips = append(tr.flips, fmt.Sprintf("%s: %s, then %s", sj.Name, first, sj.Status.State))
	}
}

func (tr *chaosTracker) job(obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	name := job.Labels[seekv1alpha1.LabelJobName]
	if name == "" {
		return // a pool's Job
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.jobs[name] == nil {
		tr.jobs[name] = map[types.UID]bool{}
	}
	tr.jobs[name][job.UID] = true
}

// unfinished is how many of names have not been seen terminal.
func (tr *chaosTracker) unfinished(names []string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, name := range names {
		if _, ok := tr.terminal[name]; !ok {
			n++
		}
	}
	return n
}

func (tr *chaosTracker) flipped() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.flips)
}

func (tr *chaosTracker) jobCounts() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for name, uids := range tr.jobs {
		out[name] = len(uids)
	}
	return out
}

// waitFinish waits, at most bound, until a SeekJob of the given mode (any, Job mode or pooled) is
// first seen terminal after since, and returns how long after from that was.
func (tr *chaosTracker) waitFinish(since, from time.Time, mode finishMode, bound time.Duration) (time.Duration, error) {
	deadline := since.Add(bound)
	for {
		tr.mu.Lock()
		i := slices.IndexFunc(tr.finishes, func(f finish) bool {
			return f.at.After(since) && (mode == anyMode || f.jobMode == (mode == jobModeOnly))
		})
		var at time.Time
		if i >= 0 {
			at = tr.finishes[i].at
		}
		tr.mu.Unlock()
		if i >= 0 {
			return at.Sub(from), nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no job finished within %v", bound)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// disruption is one disruption and how the system recovered.
type disruption struct {
	what string
	at   time.Time
	// down is how long the component was away (a manager: until its successor led).
	down time.Duration
	// back is when the component was back (a manager: its successor leads), after at.
	back time.Duration
	// recovered is when a job was first seen finished after the component was back, after at (the
	// apiserver: after its return).
	recovered time.Duration
	err       error
}

// chaosKillManager deletes the leading manager's pod (as kubectl delete does, with its grace period),
// submits a marker job, and measures how long until another manager leads and a job finishes after
// that. It returns the marker's job name.
func chaosKillManager(ctx context.Context, t *testing.T, api *chaosAPI, tr *chaosTracker, n int) (disruption, string) {
	d := disruption{what: fmt.Sprintf("manager pod deleted (%d)", n)}
	holder, err := leaseHolder(ctx)
	if err != nil {
		d.err = err
		return d, ""
	}
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(info.SystemNamespace), client.MatchingLabels{"app.kubernetes.io/component": "manager"}); err != nil {
		d.err = err
		return d, ""
	}
	var victim *corev1.Pod
	for i := range pods.Items {
		if p := &pods.Items[i]; p.DeletionTimestamp == nil && strings.HasPrefix(holder, p.Name+"_") {
			victim = p
		}
	}
	if victim == nil {
		d.err = fmt.Errorf("no manager pod holds the lease (holder %q)", holder)
		return d, ""
	}
	d.at = time.Now()
	if err := k8s.Delete(ctx, victim); err != nil {
		d.err = err
		return d, ""
	}
	_, marker := api.submitOnce(ctx, chaosSubmission{key: fmt.Sprintf("marker-%d", n), worker: "echo", input: fmt.Sprintf(`"message": "marker %d"`, n)})
	var led time.Time
	for deadline := d.at.Add(3 * time.Minute); ; {
		h, err := leaseHolder(ctx)
		if err == nil && h != "" && h != holder {
			led = time.Now()
			break
		}
		if time.Now().After(deadline) {
			d.err = fmt.Errorf("no other manager leads 3 min after deleting %s (holder %q)", victim.Name, h)
			return d, marker
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.down, d.back = led.Sub(d.at), led.Sub(d.at)
	// Pooled jobs move once the pool pods reach the new leader's dispatcher: its pod is Ready and
	// behind the dispatch Service. Waiting for that keeps the disruptions apart (docs/chaos.md).
	d.recovered, d.err = tr.waitFinish(led, d.at, pooledOnly, 2*time.Minute)
	return d, marker
}

// leaseHolder is the manager's leader election Lease's holder ("" when released).
func leaseHolder(ctx context.Context) (string, error) {
	lease := &coordinationv1.Lease{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: info.SystemNamespace, Name: localcluster.LeaderLease}, lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// chaosRestartKubelet restarts the kubelet and measures how long until a Job-mode job finishes.
func chaosRestartKubelet(ctx context.Context, t *testing.T, tr *chaosTracker) disruption {
	d := disruption{what: "kubelet restarted", at: time.Now()}
	o, err := localcluster.Restart(ctx, clusterOpts, "kubelet", chaosKubeletDown, 2*time.Minute)
	if err != nil {
		d.err = err
		return d
	}
	d.down, d.back = o.Started.Sub(o.Stopped), o.Healthy.Sub(d.at)
	r, err := tr.waitFinish(o.Healthy, o.Healthy, jobModeOnly, 3*time.Minute)
	d.recovered, d.err = r, err
	if err == nil {
		d.recovered = o.Healthy.Sub(d.at) + r
	}
	return d
}

// apiserverOutage is the apiserver's restart, what the API answered meanwhile, and the probes it
// accepted.
type apiserverOutage struct {
	disruption
	// from and to bound the outage: from the stop's start to the apiserver answering /readyz again.
	from, to time.Time
	// outage is when the apiserver stopped, started again and answered /readyz.
	outage   localcluster.Outage
	accepted []string
	// acceptedAt is when each of accepted was accepted.
	acceptedAt []time.Time
	// newJob is when the first job accepted after the apiserver's return finished (its completionTime,
	// whole seconds), after the return: the manager saw it (its informers are back) and ran it.
	newJob time.Duration
}

func (o apiserverOutage) answersWhileDown(answers []apiAnswer) answerCounts {
	return countAnswers(slices.DeleteFunc(slices.Clone(answers), func(a apiAnswer) bool { return a.at.Before(o.from) || a.at.After(o.to) }))
}

// phases counts the answers to the requests sent while the apiserver stopped, was down, started,
// and in the 20 s after it was ready.
func (o apiserverOutage) phases(answers []apiAnswer) []string {
	phases := []struct {
		name     string
		from, to time.Time
	}{
		{"stopping", o.from, o.outage.Stopped},
		{"down", o.outage.Stopped, o.outage.Started},
		{"starting", o.outage.Started, o.outage.Healthy},
		{"ready (20 s)", o.outage.Healthy, o.outage.Healthy.Add(20 * time.Second)},
	}
	var out []string
	for _, p := range phases {
		c := countAnswers(slices.DeleteFunc(slices.Clone(answers), func(a apiAnswer) bool { return a.sent.Before(p.from) || !a.sent.Before(p.to) }))
		out = append(out, fmt.Sprintf("sent while %s (%v): %s; slowest %v", p.name, p.to.Sub(p.from).Round(100*time.Millisecond), formatCounts(c.by), c.slowest.Round(100*time.Millisecond)))
	}
	return out
}

// chaosRestartApiserver kills kube-apiserver, starts it again chaosApiserverDown later, while a probe
// submits a job every 250 ms (each once), from 2 s before to 20 s after, and measures how long after
// its return a job finishes.
func chaosRestartApiserver(ctx context.Context, t *testing.T, api *chaosAPI, ns string) apiserverOutage {
	out := apiserverOutage{disruption: disruption{what: "kube-apiserver restarted"}}
	probeCtx, stopProbe := context.WithCancel(ctx)
	var probes sync.WaitGroup
	var mu sync.Mutex
	probes.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-probeCtx.Done():
				return
			case <-tick.C:
			}
			probes.Go(func() {
				_, name := api.submitOnce(ctx, chaosSubmission{key: fmt.Sprintf("probe-%d", n), worker: "echo", input: fmt.Sprintf(`"message": "probe %d"`, n)})
				if name != "" {
					mu.Lock()
					out.accepted, out.acceptedAt = append(out.accepted, name), append(out.acceptedAt, time.Now())
					mu.Unlock()
				}
			})
		}
	})
	time.Sleep(2 * time.Second)
	out.at, out.from = time.Now(), time.Now()
	o, err := localcluster.Restart(ctx, clusterOpts, "kube-apiserver", chaosApiserverDown, 3*time.Minute)
	if err != nil {
		stopProbe()
		probes.Wait()
		out.err = err
		return out
	}
	out.to, out.outage = o.Healthy, o
	out.down, out.back = o.Started.Sub(o.Stopped), o.Healthy.Sub(out.at)
	at, err := firstFinish(ctx, ns, 3*time.Minute)
	out.recovered, out.err = at.Sub(o.Healthy), err
	time.Sleep(time.Until(o.Healthy.Add(20 * time.Second)))
	stopProbe()
	probes.Wait()
	out.newJob = -1
	if i := slices.IndexFunc(out.acceptedAt, func(at time.Time) bool { return at.After(o.Healthy) }); i < 0 {
		out.err = errors.Join(out.err, errors.New("no job was accepted in the 20 s after the apiserver's return"))
	} else {
		sj := &seekv1alpha1.SeekJob{}
		for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
			err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: out.accepted[i]}, sj)
			if err == nil && sj.Status.CompletionTime != nil {
				out.newJob = sj.Status.CompletionTime.Sub(o.Healthy)
				break
			}
			if time.Now().After(deadline) {
				out.err = errors.Join(out.err, fmt.Errorf("job %s, accepted %v after the apiserver's return, did not finish within 3 min", out.accepted[i], out.acceptedAt[i].Sub(o.Healthy)))
				break
			}
		}
	}
	saveManagerLog(ctx, t, fmt.Sprintf("seek-chaos-%s-manager-apiserver.log", ns))
	t.Logf("kube-apiserver: stopped %v after the stop began, started %v later, ready %v after that; a job finished %v after its return; the first job accepted after it finished %v after it",
		o.Stopped.Sub(out.from).Round(100*time.Millisecond), out.down.Round(100*time.Millisecond), o.Healthy.Sub(o.Started).Round(100*time.Millisecond),
		out.recovered.Round(100*time.Millisecond), out.newJob)
	return out
}

// saveManagerLog saves the leading manager's log to a file in the temporary directory, for a look at
// what it did.
func saveManagerLog(ctx context.Context, t *testing.T, file string) {
	holder, err := leaseHolder(ctx)
	if err != nil {
		t.Logf("manager log: %v", err)
		return
	}
	pod, _, _ := strings.Cut(holder, "_")
	raw, err := readPodLog(ctx, info.SystemNamespace, pod, "")
	if err != nil {
		t.Logf("manager log of %s: %v", pod, err)
		return
	}
	path := filepath.Join(os.TempDir(), file)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Logf("manager log: %v", err)
		return
	}
	t.Logf("the log of manager pod %s is in %s", pod, path)
}

// hookReceiver records webhook deliveries by job and can hang.
type hookReceiver struct {
	secret string

	mu      sync.Mutex
	hanging chan struct{} // non-nil while hanging; closed when the hang ends
	got     map[string][]hookDelivery
}

// hookDelivery is one delivery attempt as the receiver saw it.
type hookDelivery struct {
	id, typ string
	// answered: the receiver answered 204 while the sender still waited.
	answered bool
	// duringHang: it arrived while the receiver hung.
	duringHang bool
	sigErr     error
}

func (h *hookReceiver) receive(r *http.Request, body []byte) {
	d := hookDelivery{id: r.Header.Get(webhook.HeaderWebhookID), sigErr: verify(h.secret, r.Header, body)}
	var p struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"job_uuid"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &p)
	d.typ = p.Type
	h.mu.Lock()
	hanging := h.hanging
	h.mu.Unlock()
	if hanging != nil {
		d.duringHang = true
		select {
		case <-hanging:
		case <-r.Context().Done():
		}
	}
	d.answered = r.Context().Err() == nil
	h.mu.Lock()
	defer h.mu.Unlock()
	name := strings.TrimPrefix(p.Data.ID, "job_")
	h.got[name] = append(h.got[name], d)
}

// hang makes the receiver hang for d (every request waits until the end) and returns when it began.
func (h *hookReceiver) hang(d time.Duration) time.Time {
	ch := make(chan struct{})
	h.mu.Lock()
	h.hanging = ch
	h.mu.Unlock()
	start := time.Now()
	time.Sleep(d)
	h.mu.Lock()
	h.hanging = nil
	h.mu.Unlock()
	close(ch)
	return start
}

// terminalEvent is the webhook event type of a job's terminal state.
func terminalEvent(s seekv1alpha1.JobState) string {
	switch s {
	case seekv1alpha1.JobStateCompleted:
		return webhook.EventCompleted
	case seekv1alpha1.JobStateCanceled:
		return webhook.EventCanceled
	case seekv1alpha1.JobStateTimedOut:
		return webhook.EventTimedOut
	default:
		return webhook.EventFailed
	}
}

// missing are the finished jobs of names whose terminal event was not answered yet.
func (h *hookReceiver) missing(names []string, jobs map[string]*seekv1alpha1.SeekJob) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, name := range names {
		sj := jobs[name]
		if sj == nil || !sj.Status.State.IsTerminal() {
			continue
		}
		want := terminalEvent(sj.Status.State)
		if !slices.ContainsFunc(h.got[name], func(d hookDelivery) bool { return d.typ == want && d.answered }) {
			out = append(out, name)
		}
	}
	return out
}

type callbackCounts struct {
	delivered, received, duringHang, answered, maxIDs int
}

// check asserts the deliveries of the finished jobs of names: the terminal event answered at least
// once, one webhook-id per event however often it came, signed, no other terminal event.
func (h *hookReceiver) check(t *testing.T, names []string, jobs map[string]*seekv1alpha1.SeekJob) callbackCounts {
	t.Helper()
	missing := h.missing(names, jobs)
	if len(missing) > 0 {
		var lines []string
		for _, name := range missing {
			lines = append(lines, describeJob(jobs[name]))
		}
		t.Errorf("%d finished jobs never got their terminal event:\n%s", len(missing), strings.Join(lines, "\n"))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var c callbackCounts
	c.delivered = len(names) - len(missing)
	for _, name := range names {
		sj := jobs[name]
		if sj == nil {
			continue
		}
		ids := map[string]map[string]bool{} // type → webhook-ids
		for _, d := range h.got[name] {
			c.received++
			if d.duringHang {
				c.duringHang++
			}
			if d.answered {
				c.answered++
			}
			if d.sigErr != nil {
				t.Errorf("job %s: a %s delivery's signature: %v", name, d.typ, d.sigErr)
			}
			if ids[d.typ] == nil {
				ids[d.typ] = map[string]bool{}
			}
			ids[d.typ][d.id] = true
		}
		for typ, set := range ids {
			c.maxIDs = max(c.maxIDs, len(set))
			if len(set) != 1 {
				t.Errorf("job %s: its %s deliveries came with %d webhook-ids: %v", name, typ, len(set), slices.Sorted(maps.Keys(set)))
			}
			if typ != terminalEvent(sj.Status.State) && typ != webhook.EventStarted && typ != webhook.EventProgress {
				t.Errorf("job %s ended %s but got a %s event", name, sj.Status.State, typ)
			}
		}
	}
	return c
}

// describeJob is a job's name, worker, state, conditions and callback ledger, for a failure message.
func describeJob(sj *seekv1alpha1.SeekJob) string {
	if sj == nil {
		return "(not stored)"
	}
	var conds []string
	for _, c := range sj.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s/%s %q", c.Type, c.Status, c.Reason, c.Message))
	}
	s := fmt.Sprintf("  %s (worker %s): state %q, attempts %d, conditions [%s]", sj.Name, sj.Spec.WorkerName, sj.Status.State, sj.Status.Attempts, strings.Join(conds, "; "))
	if p := sj.Status.Pool; p != nil {
		s += fmt.Sprintf(", pool pod %q (UID %s) of Job %q", p.PodName, p.PodUID, p.JobName)
	}
	if cb := sj.Status.Callback; cb != nil {
		for _, d := range cb.Deliveries {
			s += fmt.Sprintf(", callback %s %s after %d attempts (last status %d)", d.Event, d.State, d.Attempts, d.LastStatusCode)
		}
	}
	return s
}

func formatCounts[K comparable](m map[K]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v: %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func maxValue(m map[string]int) int {
	n := 0
	for _, v := range m {
		n = max(n, v)
	}
	return n
}

// explainStuckPooled logs what a pooled job that did not finish waits for: its holder pod's state,
// the pod's log around the job, and what the manager pods' logs say of it.
func explainStuckPooled(ctx context.Context, t *testing.T, sj *seekv1alpha1.SeekJob) {
	// indented keeps the lines of a log that keep says to, indented under the test's line.
	indented := func(lines []string, keep func(string) bool) string {
		var out []string
		for _, l := range lines {
			if keep(l) {
				out = append(out, "      "+l)
			}
		}
		return strings.Join(out, "\n")
	}
	all := func(string) bool { return true }
	splitLines := func(raw []byte) []string { return strings.Split(strings.TrimRight(string(raw), "\n"), "\n") }
	if name := sj.Status.Pool.PodName; name != "" {
		pod := &corev1.Pod{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: sj.Namespace, Name: name}, pod); err != nil {
			t.Logf("job %s: its pool pod %s: %v", sj.Name, name, err)
		} else {
			var conds []string
			for _, c := range pod.Status.Conditions {
				conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
			}
			var states []string
			for _, c := range pod.Status.ContainerStatuses {
				states = append(states, fmt.Sprintf("%s ready=%t restarts=%d %+v", c.Name, c.Ready, c.RestartCount, c.State))
			}
			t.Logf("job %s: pool pod %s (UID %s): phase %s, deleting %v, conditions %v, containers %v",
				sj.Name, name, pod.UID, pod.Status.Phase, pod.DeletionTimestamp, conds, states)
		}
		if raw, err := readPodLog(ctx, sj.Namespace, name, "worker"); err != nil {
			t.Logf("job %s: the log of pool pod %s: %v", sj.Name, name, err)
		} else {
			lines := splitLines(raw)
			t.Logf("job %s: the pool pod's runner lines and this job's (of %d lines):\n%s\n    its last 20 lines:\n%s", sj.Name, len(lines),
				indented(lines, func(l string) bool {
					runners := strings.HasPrefix(l, joblog.Prefix) && !strings.HasPrefix(l, joblog.Prefix+"begin ") && !strings.HasPrefix(l, joblog.Prefix+"end ")
					return runners || strings.Contains(l, string(sj.UID)) || strings.Contains(l, sj.Name)
				}),
				indented(lines[max(0, len(lines)-20):], all))
		}
	}
	pods := &corev1.PodList{}
	if err := k8s.List(ctx, pods, client.InNamespace(info.SystemNamespace), client.MatchingLabels{"app.kubernetes.io/component": "manager"}); err != nil {
		t.Logf("job %s: list the manager pods: %v", sj.Name, err)
		return
	}
	for _, p := range pods.Items {
		raw, err := readPodLog(ctx, p.Namespace, p.Name, "")
		if err != nil {
			t.Logf("job %s: the log of manager pod %s: %v", sj.Name, p.Name, err)
			continue
		}
		t.Logf("job %s: manager pod %s says:\n%s", sj.Name, p.Name, indented(splitLines(raw), func(l string) bool {
			return strings.Contains(l, sj.Name) || sj.Status.Pool.PodName != "" && strings.Contains(l, sj.Status.Pool.PodName)
		}))
	}
}
