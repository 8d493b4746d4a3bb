package frontend

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/restapi"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/internal/webhook"
)

func admissionRequest(t *testing.T, op admissionv1.Operation, sj, old *seekv1alpha1.SeekJob) admission.Request {
	t.Helper()
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Operation: op, Name: sj.Name, Namespace: sj.Namespace}}
	raw, err := json.Marshal(sj)
	if err != nil {
		t.Fatal(err)
	}
	req.Object = runtime.RawExtension{Raw: raw}
	if old != nil {
		if req.OldObject.Raw, err = json.Marshal(old); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

func TestJobValidator(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := seekv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	email := testutil.MakeSeekWorker("email-validator").MaxInputBytes(64).Timeouts(time.Minute, 5*time.Minute).
		InputSchema(`{"type":"object","required":["email"],"properties":{"email":{"type":"string"}}}`).Obj()
	plain := testutil.MakeSeekWorker("echo").Obj() // no maximumTimeout: the API's default, 1h
	broken := testutil.MakeSeekWorker("broken").InputSchema(`{"type":5}`).Obj()
	// late is only in the apiserver: created a moment ago, not in the cache yet.
	late := testutil.MakeSeekWorker("late").Obj()
	cached := fake.NewClientBuilder().WithScheme(scheme).WithObjects(email, plain, broken).Build()
	live := fake.NewClientBuilder().WithScheme(scheme).WithObjects(email, plain, broken, late).Build()
	v := &JobValidator{Workers: cached, APIReader: live, Callbacks: webhook.Policy{}}

	job := func(worker string) *testutil.SeekJobWrapper {
		return testutil.MakeSeekJob("j", "team-a").Worker(worker).Input(`{"email":"a@example.com"}`)
	}
	type cause struct{ Field, Message string }
	cases := []struct {
		name string
		op   admissionv1.Operation
		sj   *seekv1alpha1.SeekJob
		old  *seekv1alpha1.SeekJob
		// want are the causes of a denial; nil means allowed.
		want     []cause
		warnings []string
	}{
		{name: "valid", sj: job("email-validator").Timeout(5 * time.Minute).TTL(720 * time.Hour).Callback("https://example.com/hook").Obj()},
		{name: "worker created a moment ago, found in the apiserver", sj: job("late").Obj()},
		{name: "worker without schema, any input", sj: testutil.MakeSeekJob("j", "team-a").Worker("echo").Input(`[1,"x"]`).Obj()},
		{name: "no input is null", sj: testutil.MakeSeekJob("j", "team-a").Worker("echo").Obj()},
		{name: "missing worker", sj: job("emial").Obj(), want: []cause{{"spec.workerName",
			`no worker "emial"; create the SeekWorker first, or annotate the job seek-api.com/allow-missing-worker: "true" to let it wait for the worker`}}},
		{name: "missing worker, allowed by annotation", sj: job("emial").Annotation(seekv1alpha1.AnnotationAllowMissingWorker, "true").Obj(),
			warnings: []string{`SeekWorker "emial" does not exist: the job waits Queued until it does, at most its queue timeout`}},
		{name: "missing worker, annotation not true", sj: job("emial").Annotation(seekv1alpha1.AnnotationAllowMissingWorker, "yes").Obj(),
			want: []cause{{"spec.workerName", `no worker "emial"; create the SeekWorker first, or annotate the job seek-api.com/allow-missing-worker: "true" to let it wait for the worker`}}},
		{name: "input missing a required field", sj: job("email-validator").Input(`{"mail":"a@example.com"}`).Obj(),
			want: []cause{{"spec.input/email", "is required"}}},
		{name: "input of the wrong type", sj: job("email-validator").Input(`{"email":5}`).Obj(),
			want: []cause{{"spec.input/email", "got number, want string"}}},
		{name: "input too large", sj: job("email-validator").Input(`{"email":"` + strings.Repeat("a", 64) + `"}`).Obj(),
			want: []cause{{"spec.input", `the input is 76 bytes; worker "email-validator" accepts at most 64`}}},
		{name: "worker's schema broken", sj: testutil.MakeSeekJob("j", "team-a").Worker("broken").Obj(),
			want: []cause{{"spec.input", `worker "broken" has an invalid input schema`}}},
		{name: "timeout above the worker's maximum", sj: job("email-validator").Timeout(6 * time.Minute).Obj(),
			want: []cause{{"spec.timeout", `timeout must be from 1s to 5m (worker "email-validator"'s timeouts.maximumTimeout)`}}},
		{name: "timeout above the default maximum", sj: testutil.MakeSeekJob("j", "team-a").Worker("echo").Timeout(2 * time.Hour).Obj(),
			want: []cause{{"spec.timeout", `timeout must be from 1s to 1h (worker "echo"'s timeouts.maximumTimeout)`}}},
		{name: "retention too long", sj: job("email-validator").TTL(721 * time.Hour).Obj(),
			want: []cause{{"spec.ttlAfterFinished", `retention must be from 0s to 720h (the API's maximum)`}}},
		{name: "callback to a private address", sj: job("email-validator").Callback("http://10.0.0.1/hook").Obj(),
			want: []cause{{"spec.callback.url", "invalid callback URL: host 10.0.0.1 is a private address; callbacks must go to public addresses"}}},
		{name: "callback on another port", sj: job("email-validator").Callback("https://example.com:8443/hook").Obj(),
			want: []cause{{"spec.callback.url", `invalid callback URL: port 8443 is not allowed; use 443 (https) or 80 (http)`}}},
		{name: "every violation at once", sj: job("email-validator").Input(`{}`).Timeout(time.Hour).Callback("https://user:pw@example.com/").Obj(),
			want: []cause{
				{"spec.timeout", `timeout must be from 1s to 5m (worker "email-validator"'s timeouts.maximumTimeout)`},
				{"spec.input/email", "is required"},
				{"spec.callback.url", "invalid callback URL: URL must not contain user information (user:password@)"},
			}},
		{name: "cancel of a job whose worker is gone", op: admissionv1.Update,
			old: job("emial").Obj(), sj: job("emial").Cancel("no longer needed").Obj()},
		{name: "metadata update of an invalid job", op: admissionv1.Update,
			old: job("email-validator").Input(`{}`).Obj(), sj: job("email-validator").Input(`{}`).Label("a", "b").Obj()},
		{name: "update changing the input", op: admissionv1.Update,
			old: job("email-validator").Obj(), sj: job("email-validator").Input(`{"email":1}`).Obj(),
			want: []cause{{"spec.input/email", "got number, want string"}}},
		{name: "delete", op: admissionv1.Delete, sj: job("emial").Obj()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op := tc.op
			if op == "" {
				op = admissionv1.Create
			}
			resp := v.Handle(context.Background(), admissionRequest(t, op, tc.sj, tc.old))
			if diff := cmp.Diff(tc.warnings, resp.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if tc.want == nil {
				if !resp.Allowed {
					t.Fatalf("denied: %+v", resp.Result)
				}
				return
			}
			if resp.Allowed {
				t.Fatal("allowed; want denied")
			}
			r := resp.Result
			if r.Code != http.StatusUnprocessableEntity || r.Reason != metav1.StatusReasonInvalid || r.Details == nil || r.Details.Kind != "SeekJob" {
				t.Fatalf("result %+v; want a 422 Invalid with details of the SeekJob", r)
			}
			var got []cause
			var msgs []string
			for _, c := range r.Details.Causes {
				got = append(got, cause{c.Field, c.Message})
				msgs = append(msgs, c.Field+": "+c.Message)
				if c.Type != metav1.CauseTypeFieldValueInvalid {
					t.Errorf("cause type %q", c.Type)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("causes (-want +got):\n%s", diff)
			}
			wantMsg := `SeekJob "j" is invalid: ` + strings.Join(msgs, ", ")
			if len(msgs) > 1 {
				wantMsg = `SeekJob "j" is invalid: [` + strings.Join(msgs, ", ") + "]"
			}
			if r.Message != wantMsg {
				t.Errorf("message %q; want %q", r.Message, wantMsg)
			}
		})
	}
}

// The REST API and admission word a violation alike: admission's detail is the REST message, but for
// an input field, which the REST message names as input/<pointer> and admission as spec.input/<pointer>.
func TestAdmissionWordsAreREST(t *testing.T) {
	w := testutil.MakeSeekWorker("email-validator").Timeouts(time.Minute, 5*time.Minute).
		InputSchema(`{"type":"object","required":["email"]}`).Obj()
	sj := testutil.MakeSeekJob("j", "team-a").Worker("email-validator").Input(`{}`).Timeout(time.Hour).Obj()
	errs := restapi.ValidateJob(sj, w, webhook.Policy{})
	if len(errs) != 2 {
		t.Fatalf("got %d errors; want 2", len(errs))
	}
	if errs[0].Field != "timeout" || errs[0].AdmissionDetail() != errs[0].Message {
		t.Errorf("timeout: %+v", errs[0])
	}
	if errs[1].Field != "/email" || errs[1].Message != "input/email: is required" || "spec."+errs[1].Message != errs[1].Path+": "+errs[1].AdmissionDetail() {
		t.Errorf("input: %+v", errs[1])
	}
}
