package integration

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/tenants"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// getLogs gets a job's logs and returns the status, the Content-Type and the body.
func getLogs(t *testing.T, base, key, id string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/jobs/"+id+"/logs", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(raw)
}

// restrictedPod is a pod the restricted Pod Security standard admits, never scheduled (no node here).
func restrictedPod(name, ns string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: "worker", Image: "example.com/worker:v1",
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
		},
	}
}

// finishedJob creates a SeekJob of a worker that does not exist and writes a finished status, which the
// manager leaves alone, with pool (nil for Job mode, where jobName is set instead).
func finishedJob(t *testing.T, ns, name string, pool *corev1.Pod) *seekv1alpha1.SeekJob {
	t.Helper()
	mustCreate(t, testutil.MakeSeekJob(name, ns).Worker("no-such-worker").Obj())
	now := time.Now()
	var sj *seekv1alpha1.SeekJob
	eventually(t, "status of "+name, func(ctx context.Context) (bool, error) {
		w := &testutil.SeekJobWrapper{}
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &w.SeekJob); err != nil {
			return false, err
		}
		if pool != nil {
			w.Leased("seek-pool-echo-1", pool.Name, string(pool.UID), now)
		} else {
			w.JobName(name).Attempts(1).StartTime(now)
		}
		sj = w.Finished(seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, now).Result(`{}`).Obj()
		err := k8sClient.Status().Update(ctx, sj)
		return err == nil, err
	})
	return sj
}

// TestJobLogsPermissions: the frontend, as its ServiceAccount, reads a job's pod and its log in a tenant
// namespace through the tenant's Role, in both modes (no kubelet runs here: the apiserver answers an
// unscheduled pod's log with nothing, so the answer is an empty 200); it may not in a
// tenant made without the Role (503, saying to run seekctl tenants create again), nor read pods
// anywhere else. Unknown jobs are 404 and the read scope is required.
func TestJobLogsPermissions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := startFrontend(t)

	withRole := newTenant(t, 10)
	withoutRole := uniqueName("tenant")
	if err := tenants.Apply(ctx, k8sClient, tenants.Tenant{Name: withoutRole}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k8sClient.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: withoutRole}})
	})

	for _, ns := range []string{withRole, withoutRole} {
		pod := restrictedPod("pool-pod", ns, nil) // unlabelled: no controller of the manager's touches it
		mustCreate(t, pod)
		finishedJob(t, ns, "pooled", pod)
		jm := finishedJob(t, ns, "jobmode", nil)
		mustCreate(t, restrictedPod("jobmode-pod", ns, map[string]string{seekv1alpha1.LabelJobUID: string(jm.UID)}))
	}

	c := &apiClient{t: t, base: base, key: apiKey(t, withRole, apikeys.ScopeRead)}
	c.waitKeyAccepted("/v1/jobs/job_pooled")
	for _, id := range []string{"job_pooled", "job_jobmode"} {
		// The apiserver answers an unscheduled pod's log with nothing: the frontend got that far.
		code, ctype, body := getLogs(t, base, c.key, id)
		if code != http.StatusOK || ctype != "text/plain; charset=utf-8" || body != "" {
			t.Errorf("%s: %d %s %q, want 200 text/plain, empty (a pod without a node has no log)", id, code, ctype, body)
		}
	}
	if code, _ := c.call(http.MethodGet, "/v1/jobs/job_nope/logs", ""); code != http.StatusNotFound {
		t.Errorf("unknown job: %d, want 404", code)
	}
	submitOnly := &apiClient{t: t, base: base, key: apiKey(t, withRole, apikeys.ScopeSubmit)}
	eventually(t, "submit-only key accepted", func(context.Context) (bool, error) {
		code, _ := submitOnly.call(http.MethodGet, "/v1/jobs/job_pooled/logs", "")
		return code == http.StatusForbidden, nil
	})

	old := &apiClient{t: t, base: base, key: apiKey(t, withoutRole, apikeys.ScopeRead)}
	old.waitKeyAccepted("/v1/jobs/job_pooled")
	for _, id := range []string{"job_pooled", "job_jobmode"} {
		code, body := old.call(http.MethodGet, "/v1/jobs/"+id+"/logs", "")
		e, _ := body["error"].(map[string]any)
		if code != http.StatusServiceUnavailable || e["code"] != "logs_unavailable" || !strings.Contains(e["message"].(string), "seekctl tenants create") {
			t.Errorf("%s in a tenant without the Role: %d %v, want 503 logs_unavailable", id, code, body)
		}
	}

	// The frontend's identity reads pods in tenant namespaces only, and never watches them.
	cfg, err := cp.ServiceAccountConfig(systemNamespace, tenants.FrontendServiceAccount)
	if err != nil {
		t.Fatal(err)
	}
	fe, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fe.Get(ctx, types.NamespacedName{Namespace: withRole, Name: "pool-pod"}, &corev1.Pod{}); err != nil {
		t.Errorf("get a tenant's pod: %v", err)
	}
	for what, err := range map[string]error{
		"list pods cluster-wide":        fe.List(ctx, &corev1.PodList{}),
		"get a pod outside tenants":     fe.Get(ctx, types.NamespacedName{Namespace: "default", Name: "x"}, &corev1.Pod{}),
		"get a tenant's pod, no Role":   fe.Get(ctx, types.NamespacedName{Namespace: withoutRole, Name: "pool-pod"}, &corev1.Pod{}),
		"delete a pod in a tenant":      fe.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: withRole, Name: "pool-pod"}}),
		"list Secrets of a tenant":      fe.List(ctx, &corev1.SecretList{}, client.InNamespace(withRole)),
		"list pods of kube-system, too": fe.List(ctx, &corev1.PodList{}, client.InNamespace("kube-system")),
	} {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s: %v, want Forbidden", what, err)
		}
	}
}
