package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// object parses a manifest, filling in a unique name (for cluster-scoped workers) where it says NAME.
func object(t *testing.T, manifest, ns string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	manifest = strings.ReplaceAll(manifest, "NAME", uniqueName("v"))
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatalf("bad test manifest: %v\n%s", err, manifest)
	}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}

const workerHead = `
apiVersion: seek-api.com/v1alpha1
kind: SeekWorker
metadata: {name: NAME}
`

const jobHead = `
apiVersion: seek-api.com/v1alpha1
kind: SeekJob
metadata: {name: NAME}
`

func TestSchemaValidation(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name     string
		manifest string
		// wantErr is a substring of the apiserver's message; empty means the object is accepted.
		wantErr string
	}{
		{"worker: minimal", workerHead + `spec: {image: "example.com/w:v1"}`, ""},
		{"worker: everything", workerHead + `
spec:
  description: Validates email addresses
  image: example.com/w@sha256:0123456789012345678901234567890123456789012345678901234567890123
  imagePullPolicy: IfNotPresent
  command: [/worker]
  args: [--fast]
  env: [{name: LOG_LEVEL, value: debug}]
  resources: {requests: {cpu: 100m}, limits: {memory: 128Mi}}
  timeouts: {defaultTimeout: 30s, maximumTimeout: 5m, startDeadline: 2m}
  retries: 3
  ttlAfterFinished: 1h30m
  limits: {maxConcurrentJobs: 10, maxInputBytes: 1024}
  inputSchema: {type: object, required: [email], properties: {email: {type: string}}}
  isolation:
    serviceAccountName: worker-sa
    runtimeClassName: gvisor
    nodeSelector: {pool: untrusted}
    tolerations: [{key: untrusted, operator: Exists, effect: NoSchedule}]
`, ""},
		{"worker: image required", workerHead + `spec: {}`, "spec.image: Required value"},
		{"worker: latest image", workerHead + `spec: {image: "example.com/w:latest"}`, "image must be pinned to a tag or digest other than :latest"},
		{"worker: reserved env", workerHead + `spec: {image: "example.com/w:v1", env: [{name: SEEK_INPUT_PATH, value: /x}]}`, "env names starting with SEEK_ are reserved"},
		{"worker: default above maximum", workerHead + `spec: {image: "example.com/w:v1", timeouts: {defaultTimeout: 2h, maximumTimeout: 1h}}`, "timeouts.defaultTimeout must not exceed timeouts.maximumTimeout"},
		{"worker: default too short", workerHead + `spec: {image: "example.com/w:v1", timeouts: {defaultTimeout: 500ms}}`, "defaultTimeout must be at least 1s"},
		{"worker: too many env vars", workerHead + `spec: {image: "example.com/w:v1", env: [` + strings.Repeat(`{name: A, value: b},`, 65) + `]}`, "spec.env: Too many: 65: must have at most 64 items"},
		{"worker: maximum too long", workerHead + `spec: {image: "example.com/w:v1", timeouts: {maximumTimeout: 200h}}`, "maximumTimeout must be between 1s and 168h"},
		{"worker: start deadline too long", workerHead + `spec: {image: "example.com/w:v1", timeouts: {startDeadline: 25h}}`, "startDeadline must be between 1s and 24h"},
		{"worker: start deadline too short", workerHead + `spec: {image: "example.com/w:v1", timeouts: {startDeadline: 500ms}}`, "startDeadline must be between 1s and 24h"},
		{"worker: malformed duration", workerHead + `spec: {image: "example.com/w:v1", timeouts: {defaultTimeout: "ten minutes"}}`, "spec.timeouts.defaultTimeout: Invalid value"},
		{"worker: too many retries", workerHead + `spec: {image: "example.com/w:v1", retries: 21}`, "spec.retries: Invalid value: 21: spec.retries in body should be less than or equal to 20"},
		{"worker: zero concurrency", workerHead + `spec: {image: "example.com/w:v1", limits: {maxConcurrentJobs: 0}}`, "spec.limits.maxConcurrentJobs in body should be greater than or equal to 1"},
		{"worker: input cap too high", workerHead + `spec: {image: "example.com/w:v1", limits: {maxInputBytes: 262144}}`, "spec.limits.maxInputBytes in body should be less than or equal to 131072"},
		{"worker: pull policy", workerHead + `spec: {image: "example.com/w:v1", imagePullPolicy: Sometimes}`, `spec.imagePullPolicy: Unsupported value: "Sometimes"`},
		{"worker: service account name", workerHead + `spec: {image: "example.com/w:v1", isolation: {serviceAccountName: "Not_Valid"}}`, "spec.isolation.serviceAccountName in body should match"},

		{"job: minimal", jobHead + `spec: {workerName: echo}`, ""},
		{"job: everything", jobHead + `
spec:
  workerName: email-validator
  input: {email: hello@example.com, options: {deep: [1, 2, 3]}}
  callback: {url: "https://app.example.com/hook?x=1", events: [Started, Finished]}
  timeout: 90s
  ttlAfterFinished: 1h
`, ""},
		{"job: any JSON input", jobHead + `spec: {workerName: echo, input: [1, "two", null]}`, ""},
		{"job: worker required", jobHead + `spec: {}`, "spec.workerName: Required value"},
		{"job: worker name too long", jobHead + `spec: {workerName: ` + strings.Repeat("w", 64) + `}`, "spec.workerName: Too long: may not be more than 63 bytes"},
		{"job: callback URL too long", jobHead + `spec: {workerName: echo, callback: {url: "https://a.example/` + strings.Repeat("x", 2048) + `"}}`, "spec.callback.url: Too long: may not be more than 2048 bytes"},
		{"job: worker name pattern", jobHead + `spec: {workerName: Email_Validator}`, "spec.workerName in body should match"},
		{"job: name too long", strings.Replace(jobHead, "NAME", strings.Repeat("a", 64), 1) + `spec: {workerName: echo}`, "metadata.name must be at most 63 characters"},
		{"job: callback scheme", jobHead + `spec: {workerName: echo, callback: {url: "ftp://example.com/x"}}`, "url must be an absolute http or https URL"},
		{"job: callback relative", jobHead + `spec: {workerName: echo, callback: {url: "/hook"}}`, "url must be an absolute http or https URL"},
		{"job: callback event", jobHead + `spec: {workerName: echo, callback: {url: "https://a.example/", events: [Stopped]}}`, `Unsupported value: "Stopped"`},
		{"job: timeout too short", jobHead + `spec: {workerName: echo, timeout: 500ms}`, "timeout must be at least 1s"},
		{"job: retention too long", jobHead + `spec: {workerName: echo, ttlAfterFinished: 1000h}`, "ttlAfterFinished must be at most 720h (30 days)"},
		{"job: unknown field", jobHead + `spec: {workerName: echo, priority: 5}`, ""}, // pruned, as for any CRD
		{"job: cancel reason too long", jobHead + `spec: {workerName: echo, cancelRequest: {reason: "` + strings.Repeat("x", 300) + `"}}`, "spec.cancelRequest.reason: Too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.manifest, "")
			if obj.GetKind() == "SeekJob" {
				obj.SetNamespace(ns)
			}
			err := k8sClient.Create(context.Background(), obj)
			if obj.GetKind() == "SeekWorker" && err == nil {
				t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), obj) })
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("accepted; want an error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestSpecImmutability(t *testing.T) {
	ns := newNamespace(t)
	base := jobHead + `
spec:
  workerName: nonexistent-worker
  input: {a: 1}
  timeout: 1m
`
	cases := []struct {
		name    string
		patch   string
		wantErr string
	}{
		{"worker", `{"spec":{"workerName":"other"}}`, "workerName is immutable"},
		{"input changed", `{"spec":{"input":{"a":2}}}`, "input is immutable"},
		{"input removed", `{"spec":{"input":null}}`, "input is immutable"},
		{"timeout", `{"spec":{"timeout":"2m"}}`, "timeout is immutable"},
		{"timeout removed", `{"spec":{"timeout":null}}`, "callback, timeout and ttlAfterFinished cannot be added or removed after creation"},
		{"retention added", `{"spec":{"ttlAfterFinished":"1h"}}`, "callback, timeout and ttlAfterFinished cannot be added or removed after creation"},
		{"callback added", `{"spec":{"callback":{"url":"https://a.example/"}}}`, "callback, timeout and ttlAfterFinished cannot be added or removed after creation"},
		{"labels are fine", `{"metadata":{"labels":{"team":"x"}}}`, ""},
		{"cancel", `{"spec":{"cancelRequest":{"reason":"stop"}}}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, base, ns)
			if err := k8sClient.Create(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
			err := k8sClient.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(tc.patch)))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}

	t.Run("cancel cannot be withdrawn or changed", func(t *testing.T) {
		obj := object(t, base, ns)
		if err := k8sClient.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
		for _, patch := range []string{`{"spec":{"cancelRequest":{"reason":"stop"}}}`} {
			if err := k8sClient.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
				t.Fatal(err)
			}
		}
		for _, patch := range []string{`{"spec":{"cancelRequest":null}}`, `{"spec":{"cancelRequest":{"reason":"other"}}}`} {
			err := k8sClient.Patch(context.Background(), obj, client.RawPatch(types.MergePatchType, []byte(patch)))
			if err == nil || !strings.Contains(err.Error(), "cancelRequest cannot be changed or removed once set") {
				t.Errorf("patch %s: error = %v", patch, err)
			}
		}
	})
}

// TestSelectableFields lists SeekJobs by worker and state with field selectors, as
// kubectl get seekjobs --field-selector spec.workerName=W,status.state=S does.
func TestSelectableFields(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	for _, j := range []struct {
		name, worker string
		state        seekv1alpha1.JobState
	}{{"a1", "alpha", seekv1alpha1.JobStateCompleted}, {"a2", "alpha", seekv1alpha1.JobStateFailed}, {"b1", "beta", seekv1alpha1.JobStateCompleted}} {
		sj := testutil.MakeSeekJob(j.name, ns).Worker(j.worker).Obj()
		if err := k8sClient.Create(ctx, sj); err != nil {
			t.Fatal(err)
		}
		// The running manager may write status too; a terminal state is final for it.
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(sj), sj); err != nil {
				return err
			}
			sj.Status.State = j.state
			return k8sClient.Status().Update(ctx, sj)
		}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		selector string
		want     []string
	}{
		{"spec.workerName=alpha", []string{"a1", "a2"}},
		{"status.state=Completed", []string{"a1", "b1"}},
		{"spec.workerName=alpha,status.state=Completed", []string{"a1"}},
		{"spec.workerName!=alpha", []string{"b1"}},
	}
	for _, tc := range cases {
		t.Run(tc.selector, func(t *testing.T) {
			sel, err := fields.ParseSelector(tc.selector)
			if err != nil {
				t.Fatal(err)
			}
			list := &seekv1alpha1.SeekJobList{}
			if err := k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingFieldsSelector{Selector: sel}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sj := range list.Items {
				got = append(got, sj.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}
