package frontend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/jobview"
	"github.com/seek-api/seek-operator/internal/restapi"
	"github.com/seek-api/seek-operator/internal/tenants"
)

// inlineLargeResult puts sj's large result (over 4096 bytes, in the Secret its status.resultRef names)
// into resp: one Secret read from the apiserver (Secrets are not cached), for a GET of one job only.
// The frontend may get Secrets in tenant namespaces through the Role `seekctl tenants create` makes
// (internal/tenants.FrontendRules). The Secret must be the job's and hold what the reference says.
func (s *Server) inlineLargeResult(ctx context.Context, sj *seekv1alpha1.SeekJob, resp *jobview.JobResponse) error {
	ref := sj.Status.ResultRef
	if ref == nil {
		return nil
	}
	unavailable := func(format string, args ...any) error {
		return &restapi.Error{Status: http.StatusServiceUnavailable, Code: "result_unavailable", RetryAfter: 1,
			Message: fmt.Sprintf("the job's result of %d bytes is stored in Secret %s, which ", ref.Bytes, ref.SecretName) + fmt.Sprintf(format, args...)}
	}
	secret := &corev1.Secret{}
	if err := s.APIReader.Get(ctx, client.ObjectKey{Namespace: sj.Namespace, Name: ref.SecretName}, secret); err != nil {
		return unavailable("cannot be read (is the tenant's Role %s missing? run `seekctl tenants create %s`): %v", tenants.FrontendRoleName, sj.Namespace, err)
	}
	data := secret.Data[seekv1alpha1.ResultSecretKey]
	sum := sha256.Sum256(data)
	if secret.Labels[seekv1alpha1.LabelJobUID] != string(sj.UID) || hex.EncodeToString(sum[:]) != ref.SHA256 {
		return unavailable("does not hold it (its job UID or SHA-256 differ)")
	}
	resp.SetLargeResult(data)
	return nil
}
