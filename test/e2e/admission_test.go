//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// TestAdmissionKubectl creates SeekJobs as kubectl does on the cluster the chart installed: the
// apiserver calls the frontend's admission webhook through its Service, with the certificate the
// local cluster's CA issued, and a job the REST API would refuse is refused at once.
func TestAdmissionKubectl(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, d := range []struct {
		sj   *seekv1alpha1.SeekJob
		want string
	}{
		{testutil.MakeSeekJob("adm-no-worker", tenant).Worker("emial").Input(`{"email": "a@example.com"}`).Obj(), `spec.workerName: no worker "emial"`},
		{testutil.MakeSeekJob("adm-bad-input", tenant).Worker("email-validator").Input(`{"mail": "a@example.com"}`).Obj(), `spec.input/email: is required`},
		{testutil.MakeSeekJob("adm-timeout", tenant).Worker("echo").Input(`{"message": "hi"}`).Timeout(200 * time.Hour).Obj(),
			`spec.timeout: timeout must be from 1s to`},
	} {
		err := k8s.Create(ctx, d.sj)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `admission webhook "seekjobs.seek-api.com" denied the request`) ||
			!strings.Contains(err.Error(), d.want) {
			t.Errorf("create %s: %v; want the webhook to refuse it saying %q", d.sj.Name, err, d.want)
		}
	}
	// A valid job is created and runs; so does one that opts in to wait for its worker (it stays Queued).
	mustCreate(t, testutil.MakeSeekJob("adm-valid", tenant).Worker("echo").Input(`{"message": "admitted"}`).Obj())
	mustCreate(t, testutil.MakeSeekJob("adm-later", tenant).Worker("not-yet").Annotation(seekv1alpha1.AnnotationAllowMissingWorker, "true").Obj())
	job := waitStatus(t, "job_adm-valid", "completed", "failed")
	if res, _ := job["response_json"].(map[string]any); res["echo"] != "admitted" {
		t.Fatalf("job = %v", job)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		later := &seekv1alpha1.SeekJob{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: tenant, Name: "adm-later"}, later); err != nil {
			t.Fatal(err)
		}
		if later.Status.State == seekv1alpha1.JobStateQueued {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job waiting for its worker is %q, want Queued", later.Status.State)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
