//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// TestLargeResults runs the echo worker returning a 512 KiB result (input "repeat") in Job mode (its
// pod's collector sidecar uploads it) and in Pooled mode (the runner reports it): in both, the result
// is stored in a Secret owned by the SeekJob, the REST API returns it inline on GET and leaves it out
// of the list, and deleting the job deletes the Secret.
func TestLargeResults(t *testing.T) {
	t.Parallel()
	// Its finished Jobs are retained, so that the pod's end can be checked.
	jobMode := newWorker(t, testutil.MakeSeekWorker("lecho-"+tenant).Image(workerImage("echo")).PullPolicy(corev1.PullNever).
		FinishedJobs(seekv1alpha1.FinishedJobsRetain))
	pooled := pooledWorker(t, "plecho", "echo", poolSettings{maxPods: 1, idle: 5 * time.Minute}, nil)

	const n = 512 * 1024
	for _, worker := range []string{jobMode, pooled} {
		t.Run(worker, func(t *testing.T) {
			t.Parallel()
			id := submit(t, worker, `{"message": "x", "repeat": 524288}`)
			job := waitStatus(t, id, "completed", "failed", "timed_out", "canceled")
			res, _ := job["response_json"].(map[string]any)
			echo, _ := res["echo"].(string)
			if job["status"] != "completed" || len(echo) != n || strings.Trim(echo, "x") != "" || job["response_omitted"] != nil {
				t.Fatalf("job %s: status %v, error %v, echo of %d bytes; want completed with %d bytes of x inline", id, job["status"], job["error"], len(echo), n)
			}
			sj := seekJob(t, id)
			ref := sj.Status.ResultRef
			if ref == nil || ref.SecretName != sj.Name+"-result" || float64(ref.Bytes) != job["response_bytes"] || sj.Status.Result != nil {
				t.Fatalf("status.resultRef %+v (REST response_bytes %v), result %v", ref, job["response_bytes"], sj.Status.Result)
			}
			s := &corev1.Secret{}
			if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: sj.Namespace, Name: ref.SecretName}, s); err != nil {
				t.Fatal(err)
			}
			if owner := metav1.GetControllerOf(s); owner == nil || owner.UID != sj.UID || int64(len(s.Data[seekv1alpha1.ResultSecretKey])) != ref.Bytes {
				t.Errorf("Secret %s: controller %+v, %d bytes; want the SeekJob, %d bytes", s.Name, owner, len(s.Data[seekv1alpha1.ResultSecretKey]), ref.Bytes)
			}
			if worker == jobMode {
				// The pod succeeds once its collector has ended too (the job completed from its message).
				deadline := time.Now().Add(30 * time.Second)
				for {
					pods := &corev1.PodList{}
					if err := k8s.List(context.Background(), pods, client.InNamespace(sj.Namespace), client.MatchingLabels{seekv1alpha1.LabelJobUID: string(sj.UID)}); err != nil || len(pods.Items) != 1 {
						t.Fatalf("pods of %s: %d, %v", sj.Name, len(pods.Items), err)
					}
					p := pods.Items[0]
					if len(p.Spec.InitContainers) != 1 || p.Spec.InitContainers[0].Name != dispatch.CollectorContainer {
						t.Fatalf("pod %s: init containers %+v, want the collector", p.Name, p.Spec.InitContainers)
					}
					if p.Status.Phase == corev1.PodSucceeded {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("pod %s: phase %s 30s after the job completed, want Succeeded", p.Name, p.Status.Phase)
					}
					time.Sleep(500 * time.Millisecond)
				}
			}

			code, list := call(t, http.MethodGet, "/v1/jobs?worker="+worker, "")
			jobs, _ := list["jobs"].([]any)
			if code != http.StatusOK || len(jobs) != 1 {
				t.Fatalf("list = %d %v", code, list)
			}
			if item := jobs[0].(map[string]any); item["response_json"] != nil || item["response_omitted"] != true {
				t.Errorf("list item: response_json set %v, response_omitted %v; want null, true", item["response_json"] != nil, item["response_omitted"])
			}

			if err := k8s.Delete(context.Background(), sj); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(waitTimeout)
			for err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), &corev1.Secret{}); !apierrors.IsNotFound(err); err = k8s.Get(context.Background(), client.ObjectKeyFromObject(s), &corev1.Secret{}) {
				if time.Now().After(deadline) {
					t.Fatalf("the result Secret %s outlived its SeekJob: %v", s.Name, err)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
}
