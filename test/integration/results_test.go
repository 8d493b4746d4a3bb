package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/tenants"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// largeJSON is a JSON object of exactly n bytes.
func largeJSON(n int) string {
	return `{"r":"` + strings.Repeat("x", n-len(`{"r":""}`)) + `"}`
}

// resultTenant makes ns a tenant as `seekctl tenants create` does, with the frontend's Role.
func resultTenant(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := tenants.Apply(ctx, k8sClient, tenants.Tenant{Name: ns, SystemNamespace: systemNamespace}); err != nil {
		t.Fatal(err)
	}
	if err := tenants.WaitCounted(ctx, k8sClient, ns, waitTimeout); err != nil {
		t.Fatal(err)
	}
}

// checkResultSecret checks the result Secret of the SeekJob sj: it holds result, is typed, labeled,
// and controlled by sj; and status.resultRef names it.
func checkResultSecret(t *testing.T, sj *seekv1alpha1.SeekJob, result string) {
	t.Helper()
	sum := sha256.Sum256([]byte(result))
	want := &seekv1alpha1.ResultRef{SecretName: sj.Name + "-result", Bytes: int64(len(result)), SHA256: hex.EncodeToString(sum[:])}
	if got := sj.Status.ResultRef; got == nil || *got != *want || sj.Status.Result != nil {
		t.Fatalf("status.resultRef %+v, result %v; want %+v and no inline result", got, sj.Status.Result, want)
	}
	s := &corev1.Secret{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: sj.Namespace, Name: want.SecretName}, s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data[seekv1alpha1.ResultSecretKey]) != result || s.Type != seekv1alpha1.ResultSecretType || s.Labels[seekv1alpha1.LabelJobUID] != string(sj.UID) {
		t.Errorf("Secret %s: type %q, labels %v, %d bytes; want %s, the job's UID, the %d-byte result",
			s.Name, s.Type, s.Labels, len(s.Data[seekv1alpha1.ResultSecretKey]), seekv1alpha1.ResultSecretType, len(result))
	}
	if owner := metav1.GetControllerOf(s); owner == nil || owner.UID != sj.UID || owner.Kind != "SeekJob" {
		t.Errorf("Secret %s is controlled by %+v, want the SeekJob", s.Name, owner)
	}
}

// TestLargeResultPooled: a pool pod reports a 512 KiB result; the dispatcher stores it in a Secret
// owned by the job before the status write (the job costs no more SeekJob writes), the REST API
// returns it inline on GET and leaves it out of lists, a result over 1 MiB fails with ResultTooLarge,
// and deleting the job deletes the Secret (kube-controller-manager's garbage collector).
func TestLargeResultPooled(t *testing.T) {
	ns := poolNamespace(t)
	w := pooledWorker(t)
	r := poolPod(t, ns, w) // before Pod Security applies: the test's pod is not restricted
	resultTenant(t, ns)
	writes := watchWrites(t, ns)
	result := largeJSON(512 * 1024)

	createJob(t, ns, "big", w.Name, `{"n":1}`)
	job := r.leaseJob("big")
	var rr dispatch.ReportResponse
	r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: result + "\n"}, &rr, http.StatusOK, 10*time.Second)
	sj := getJob(t, ns, "big")
	if sj.Status.State != seekv1alpha1.JobStateCompleted {
		t.Fatalf("state %q (%+v), want Completed", sj.Status.State, sj.Status.Conditions)
	}
	checkResultSecret(t, sj, result)
	time.Sleep(time.Second)
	if n := writes.of("big"); n != 2 {
		t.Errorf("%d writes of the SeekJob after its creation, want 2 (lease, outcome)", n)
	}

	t.Run("the REST API returns it inline on GET, omitted in lists", func(t *testing.T) {
		api := &apiClient{t: t, base: startFrontend(t), key: apiKey(t, ns, apikeys.ScopeRead)}
		api.waitKeyAccepted("/v1/jobs/job_big")
		code, got := api.call("GET", "/v1/jobs/job_big", "")
		raw, _ := json.Marshal(got["response_json"])
		if code != http.StatusOK || string(raw) != result || got["response_bytes"] != float64(len(result)) || got["response_omitted"] != nil {
			t.Errorf("GET: %d, response_json of %d bytes, response_bytes %v, response_omitted %v; want 200, the %d-byte result",
				code, len(raw), got["response_bytes"], got["response_omitted"], len(result))
		}
		code, list := api.call("GET", "/v1/jobs", "")
		jobs, _ := list["jobs"].([]any)
		if code != http.StatusOK || len(jobs) != 1 {
			t.Fatalf("list: %d %v", code, list)
		}
		item := jobs[0].(map[string]any)
		if item["response_json"] != nil || item["response_omitted"] != true || item["response_bytes"] != float64(len(result)) {
			t.Errorf("list item: response_json %v, response_omitted %v, response_bytes %v; want null, true, %d",
				item["response_json"] != nil, item["response_omitted"], item["response_bytes"], len(result))
		}
	})

	t.Run("a result over 1 MiB fails with ResultTooLarge", func(t *testing.T) {
		createJob(t, ns, "huge", w.Name, `{"n":2}`)
		job := r.leaseJob("huge")
		r.call(dispatch.PathReport, dispatch.Report{AttemptRef: job.AttemptRef, Result: strings.Repeat("x", dispatch.MaxReportBytes),
			ResultTruncated: true, ResultBytes: 3 << 20}, &rr, http.StatusOK, 10*time.Second)
		sj := getJob(t, ns, "huge")
		if sj.Status.State != seekv1alpha1.JobStateFailed || sj.Status.Error == nil || sj.Status.Error.Reason != seekv1alpha1.JobReasonResultTooLarge ||
			!strings.Contains(sj.Status.Error.Message, "3145728 bytes; at most 1048576") {
			t.Errorf("state %q, error %+v; want Failed, ResultTooLarge naming 3145728 and 1048576 bytes", sj.Status.State, sj.Status.Error)
		}
	})

	t.Run("deleting the job deletes its result Secret", func(t *testing.T) {
		if err := k8sClient.Delete(context.Background(), sj); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the result Secret deleted", func(ctx context.Context) (bool, error) {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "big-result"}, &corev1.Secret{})
			return apierrors.IsNotFound(err), err
		})
	})
}

// TestLargeResultJobMode: a Job mode pod has the collector sidecar; its upload of a 512 KiB result
// is stored (only by the job's own pod), and the job completes from the collector's message.
func TestLargeResultJobMode(t *testing.T) {
	ns := newNamespace(t)
	// No serviceaccount controller runs: the pod's projected token needs its ServiceAccount.
	mustCreate(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}})
	w := readyWorker(t, echoWorker(t).Obj())
	result := largeJSON(512 * 1024)
	createJob(t, ns, "big", w.Name, `{"n":1}`)
	pod := waitForPod(t, ns, "big", 1)

	var collector *corev1.Container
	for i, c := range pod.Spec.InitContainers {
		if c.Name == dispatch.CollectorContainer {
			collector = &pod.Spec.InitContainers[i]
		}
	}
	if collector == nil || collector.RestartPolicy == nil || *collector.RestartPolicy != corev1.ContainerRestartPolicyAlways ||
		collector.Image != testRunnerImage || pod.Spec.Containers[0].TerminationMessagePath != corev1.TerminationMessagePathDefault {
		t.Fatalf("pod %s: collector %+v, worker termination message path %q; want a native sidecar of the runner image, the default path",
			pod.Name, collector, pod.Spec.Containers[0].TerminationMessagePath)
	}
	sj := getJob(t, ns, "big")
	up := dispatch.ResultUpload{Namespace: ns, Name: "big", UID: string(sj.UID), Result: result}

	t.Run("another pod cannot upload it", func(t *testing.T) {
		pns := poolNamespace(t)
		other := poolPod(t, pns, pooledWorker(t))
		var er dispatch.ErrorResponse
		other.call(dispatch.PathResult, up, &er, http.StatusForbidden, 10*time.Second)
	})

	jp := &runner{t: t, pod: pod, token: podToken(t, pod, dispatch.Audience)}
	var er dispatch.ErrorResponse
	wrong := up
	wrong.UID = "not-the-job"
	jp.call(dispatch.PathResult, wrong, &er, http.StatusForbidden, 10*time.Second)
	small := up
	small.Result = `{"small":true}`
	jp.call(dispatch.PathResult, small, &er, http.StatusBadRequest, 10*time.Second)
	var stored dispatch.ResultResponse
	jp.call(dispatch.PathResult, up, &stored, http.StatusOK, 10*time.Second)
	jp.call(dispatch.PathResult, up, &stored, http.StatusOK, 10*time.Second) // idempotent

	// The kubelet: the worker exited 0 (its termination message is empty: the file is the
	// collector's), and the collector says what it stored.
	startPod(t, pod)
	envelope, _ := json.Marshal(dispatch.Collected{Bytes: stored.Bytes, SecretName: stored.SecretName, SHA256: stored.SHA256})
	now := metav1.Now()
	eventually(t, "pod status update", func(ctx context.Context) (bool, error) {
		p := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			return false, err
		}
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: protocol.ContainerName, Image: p.Spec.Containers[0].Image,
			ImageID: "sha256:0000000000000000000000000000000000000000000000000000000000000000",
			State:   corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}}}
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: dispatch.CollectorContainer, Image: testRunnerImage,
			ImageID: "sha256:0000000000000000000000000000000000000000000000000000000000000000",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
				Message: dispatch.CollectedPrefix + string(envelope), StartedAt: now, FinishedAt: now}}}}
		err := k8sClient.Status().Update(ctx, p)
		return err == nil, err
	})
	done := waitForState(t, ns, "big", seekv1alpha1.JobStateCompleted)
	checkResultSecret(t, done, result)
}
