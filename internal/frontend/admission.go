package frontend

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/restapi"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// AdmissionPath is where the frontend's admission server validates SeekJobs.
const AdmissionPath = "/validate-seekjob"

// JobValidator is the validating admission webhook of SeekJobs: it applies to a SeekJob created with
// kubectl (or any client but the frontend itself) the checks the REST API applies to a submission
// (restapi.ValidateJob), so a bad job is refused at once, naming the field, instead of failing
// after creation. A job whose SeekWorker does not exist is refused unless it carries the annotation
// seek-api.com/allow-missing-worker: "true".
type JobValidator struct {
	// Workers reads SeekWorkers: the informer cache.
	Workers client.Reader
	// APIReader reads a worker the cache does not show (yet): one created a moment before the job.
	APIReader client.Reader
	// Callbacks is the SSRF policy callback URLs are checked against, the REST API's.
	Callbacks webhook.Policy
}

var _ admission.Handler = (*JobValidator)(nil)

// Handle validates a SeekJob create, or an update that changes its spec other than cancelRequest
// (everything else in spec is immutable: the CRD's rules and the input policy refuse changes).
// Deletes, and updates of status or metadata, are allowed.
func (v *JobValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	sj := &seekv1alpha1.SeekJob{}
	if err := json.Unmarshal(req.Object.Raw, sj); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode the SeekJob: %w", err))
	}
	if req.Operation == admissionv1.Update {
		old := &seekv1alpha1.SeekJob{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decode the old SeekJob: %w", err))
		}
		if !specChanged(old, sj) {
			return admission.Allowed("")
		}
	}
	worker := &seekv1alpha1.SeekWorker{}
	mayWait := sj.Annotations[seekv1alpha1.AnnotationAllowMissingWorker] == "true"
	err := v.getWorker(ctx, string(sj.Spec.WorkerName), worker, !mayWait)
	switch {
	case apierrors.IsNotFound(err) && mayWait:
		return admission.Allowed("").WithWarnings(fmt.Sprintf(
			"SeekWorker %q does not exist: the job waits Queued until it does, at most its queue timeout", sj.Spec.WorkerName))
	case apierrors.IsNotFound(err):
		e := restapi.WorkerNotFound(string(sj.Spec.WorkerName))
		e.Detail = e.Message + fmt.Sprintf(`; create the SeekWorker first, or annotate the job %s: "true" to let it wait for the worker`,
			seekv1alpha1.AnnotationAllowMissingWorker)
		return invalid(sj, []*restapi.Error{e})
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("read SeekWorker %q: %w", sj.Spec.WorkerName, err))
	}
	if errs := restapi.ValidateJob(sj, worker, v.Callbacks); len(errs) > 0 {
		return invalid(sj, errs)
	}
	return admission.Allowed("")
}

// getWorker reads a worker from the cache and, when live and the cache does not show it, from the
// apiserver. A job that may wait for its worker is not worth the apiserver read.
func (v *JobValidator) getWorker(ctx context.Context, name string, w *seekv1alpha1.SeekWorker, live bool) error {
	key := types.NamespacedName{Name: name}
	err := v.Workers.Get(ctx, key, w)
	if apierrors.IsNotFound(err) && live && v.APIReader != nil {
		err = v.APIReader.Get(ctx, key, w)
	}
	return err
}

// specChanged reports whether an update changes the spec other than its cancelRequest.
func specChanged(old, sj *seekv1alpha1.SeekJob) bool {
	a, b := old.Spec.DeepCopy(), sj.Spec.DeepCopy()
	a.CancelRequest, b.CancelRequest = nil, nil
	return !equality.Semantic.DeepEqual(a, b)
}

// invalid refuses a SeekJob as the apiserver refuses an invalid object (422, reason Invalid), one
// cause per violation: its field, then the REST API's words, e.g.
// `spec.timeout: timeout must be from 1s to 1h (worker "echo"'s timeouts.maximumTimeout)`.
func invalid(sj *seekv1alpha1.SeekJob, errs []*restapi.Error) admission.Response {
	causes := make([]metav1.StatusCause, len(errs))
	msgs := make([]string, len(errs))
	for i, e := range errs {
		causes[i] = metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: e.Path, Message: e.AdmissionDetail()}
		msgs[i] = e.Path + ": " + e.AdmissionDetail()
	}
	msg := strings.Join(msgs, ", ")
	if len(msgs) > 1 {
		msg = "[" + msg + "]"
	}
	resp := admission.Denied("")
	resp.Result = &metav1.Status{
		Status: metav1.StatusFailure,
		Code:   http.StatusUnprocessableEntity,
		Reason: metav1.StatusReasonInvalid,
		// The apiserver prefixes: admission webhook "seekjobs.seek-api.com" denied the request: ...
		Message: fmt.Sprintf("SeekJob %q is invalid: %s", sj.Name, msg),
		Details: &metav1.StatusDetails{Group: seekv1alpha1.GroupVersion.Group, Kind: "SeekJob", Name: sj.Name, Causes: causes},
	}
	return resp
}

// addAdmission adds the admission webhook server to the frontend's manager when o asks for one: on
// every replica, with the informer cache's SeekWorkers.
func addAdmission(mgr ctrl.Manager, o Options) error {
	if o.AdmissionAddr == "" || o.AdmissionAddr == "0" {
		return nil
	}
	if o.AdmissionCertDir == "" {
		return errors.New("--admission-bind-address needs --admission-cert-dir")
	}
	host, portText, err := net.SplitHostPort(o.AdmissionAddr)
	if err != nil {
		return fmt.Errorf("--admission-bind-address: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("--admission-bind-address: port %q is not a port number", portText)
	}
	srv := crwebhook.NewServer(crwebhook.Options{Host: host, Port: port, CertDir: o.AdmissionCertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}})
	srv.Register(AdmissionPath, &admission.Webhook{Handler: &JobValidator{
		Workers: mgr.GetCache(), APIReader: mgr.GetAPIReader(), Callbacks: o.Callbacks}})
	if err := mgr.Add(srv); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("admission", srv.StartedChecker())
}
