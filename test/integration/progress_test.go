package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// TestJobModeProgress: the collector of a Job mode pod reports its worker's progress for the attempt
// its pod runs (attempt 0): it reaches the job's status and webhooks, at most one write per
// dispatch.ProgressInterval as in Pooled mode; another job's progress, another attempt's, a pool
// pod's or an ended pod's is refused, and the last progress stays when the job ends.
func TestJobModeProgress(t *testing.T) {
	ns := poolNamespace(t)
	// No serviceaccount controller runs: the pod's projected token needs its ServiceAccount.
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	w := readyWorker(t, echoWorker(t).Retries(1).Obj())
	rc := newReceiver(t, nil)
	mustCreate(t, testutil.MakeSeekJob("slow", ns).Worker(w.Name).Input(`{}`).
		Callback(rc.url(), seekv1alpha1.CallbackEventProgress, seekv1alpha1.CallbackEventFinished).Obj())
	pod := waitForPod(t, ns, "slow", 1)
	if env := envOf(pod.Spec.Containers[0]); env[protocol.EnvProgressPath] != protocol.ProgressPath {
		t.Errorf("worker env %v: want %s=%s", env, protocol.EnvProgressPath, protocol.ProgressPath)
	}
	startPod(t, pod)
	waitForState(t, ns, "slow", seekv1alpha1.JobStateRunning)
	jp := &runner{t: t, pod: pod, token: podToken(t, pod, dispatch.Audience)}
	ref := dispatch.AttemptRef{Namespace: ns, Name: "slow", UID: string(getJob(t, ns, "slow").UID)}

	send := func(p *runner, ref dispatch.AttemptRef, fraction float64, message string) (int, dispatch.ProgressResponse) {
		t.Helper()
		var resp dispatch.ProgressResponse
		code, err := dispatchCall(context.Background(), p.token, dispatch.PathProgress,
			dispatch.ProgressRequest{AttemptRef: ref, Fraction: fraction, Message: message}, &resp)
		if err != nil {
			t.Fatalf("progress call: %v", err)
		}
		return code, resp
	}
	progressIs := func(fraction, message string, attempt int32) *seekv1alpha1.JobProgress {
		t.Helper()
		var p *seekv1alpha1.JobProgress
		eventually(t, fmt.Sprintf("progress %s %q of attempt %d in status", fraction, message, attempt), func(context.Context) (bool, error) {
			p = getJob(t, ns, "slow").Status.Progress
			return p != nil && p.Fraction == fraction && p.Message == message && p.Attempt == attempt, nil
		})
		return p
	}

	if code, resp := send(jp, ref, 0.25, "page 1 of 4"); code != http.StatusOK || !resp.Written {
		t.Fatalf("first progress = %d %+v, want 200 written", code, resp)
	}
	first := progressIs("0.25", "page 1 of 4", 1)
	calls := rc.waitCalls(1)
	typ, data := calls[0].payload(t)
	progress, _ := data["progress"].(map[string]any)
	if typ != "job.progress" || progress["fraction"] != 0.25 || progress["message"] != "page 1 of 4" || data["status"] != "running" {
		t.Errorf("first delivery: %s %v", typ, data)
	}

	if code, resp := send(jp, ref, 0.25, "page 1 of 4"); code != http.StatusOK || resp.Written {
		t.Errorf("the same progress again = %d %+v, want 200 not written", code, resp)
	}
	if code, _ := send(jp, ref, 0.5, "page 2 of 4"); code != http.StatusTooManyRequests {
		t.Errorf("progress within the interval = %d, want 429", code)
	}
	current := ref
	current.Attempt = 1
	if code, resp := send(jp, current, 0.25, "page 1 of 4"); code != http.StatusOK || resp.Written {
		t.Errorf("the current attempt by number = %d %+v, want 200 not written", code, resp)
	}
	later := ref
	later.Attempt = 2
	if code, _ := send(jp, later, 0.5, ""); code != http.StatusConflict {
		t.Errorf("progress of another attempt = %d, want 409", code)
	}
	another := ref
	another.UID = "not-the-job"
	if code, _ := send(jp, another, 0.5, ""); code != http.StatusForbidden {
		t.Errorf("progress of another job = %d, want 403", code)
	}
	if code, _ := send(poolPod(t, ns, pooledWorker(t)), current, 0.5, ""); code != http.StatusConflict {
		t.Errorf("a pool pod's progress of a Job mode job = %d, want 409", code)
	}
	var lease dispatch.LeaseResponse
	if code, err := dispatchCall(context.Background(), jp.token, dispatch.PathLease, dispatch.LeaseRequest{}, &lease); err != nil || code != http.StatusForbidden {
		t.Errorf("a Job mode pod's lease = %d %v, want 403", code, err)
	}

	// The first attempt fails; its pod's collector may no longer report, the second's may.
	finishPod(t, pod, 1, "boom")
	pod2 := waitForPod(t, ns, "slow", 2)
	eventually(t, "attempt 2 counted", func(context.Context) (bool, error) {
		return getJob(t, ns, "slow").Status.Attempts == 2, nil
	})
	eventually(t, "the failed pod's progress refused", func(context.Context) (bool, error) {
		code, _ := send(jp, ref, 0.9, "late")
		return code == http.StatusConflict, fmt.Errorf("status %d, want 409", code)
	})
	startPod(t, pod2)
	jp2 := &runner{t: t, pod: pod2, token: podToken(t, pod2, dispatch.Audience)}
	time.Sleep(time.Until(first.UpdateTime.Add(dispatch.ProgressInterval + time.Second))) // whole seconds in the status
	if code, resp := send(jp2, ref, 0.75, "page 3 of 4"); code != http.StatusOK || !resp.Written {
		t.Fatalf("the second attempt's progress = %d %+v, want 200 written", code, resp)
	}
	progressIs("0.75", "page 3 of 4", 2)
	rc.waitCalls(2)

	finishPod(t, pod2, 0, `{"ok":true}`)
	sj := waitForState(t, ns, "slow", seekv1alpha1.JobStateCompleted)
	if p := sj.Status.Progress; p == nil || p.Fraction != "0.75" || p.Attempt != 2 {
		t.Errorf("progress of the finished job = %+v, want the last one", p)
	}
	// Refused: 409 while the pod is there, 403 once the finished job's Job and pod are deleted (its
	// token then names a pod that does not exist).
	if code, _ := send(jp2, ref, 1, "done"); code != http.StatusConflict && code != http.StatusForbidden {
		t.Errorf("progress of a finished job = %d, want 409 or 403", code)
	}
	calls = rc.waitCalls(3)
	if typ, data := calls[2].payload(t); typ != "job.completed" {
		t.Errorf("third delivery: %s %v", typ, data)
	}
}

// envOf is a container's environment by name.
func envOf(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}
