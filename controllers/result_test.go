package controllers

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

func TestResultLimitsAgree(t *testing.T) {
	if seekv1alpha1.MaxInlineResultBytes != protocol.MaxMessageBytes || seekv1alpha1.MaxResultBytes != protocol.MaxResultBytes ||
		dispatch.MaxReportBytes != protocol.MaxResultBytes+1 {
		t.Errorf("the API's result limits (%d, %d) differ from the protocol's (%d, %d) or the report's (%d)",
			seekv1alpha1.MaxInlineResultBytes, seekv1alpha1.MaxResultBytes, protocol.MaxMessageBytes, protocol.MaxResultBytes, dispatch.MaxReportBytes)
	}
}

func TestLargeResult(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      string
	}{
		{"empty", "", ""},
		{"inline", large(4096), ""},
		{"large, trimmed", " " + large(4097) + "\n", large(4097)},
		{"1 MiB", large(seekv1alpha1.MaxResultBytes), large(seekv1alpha1.MaxResultBytes)},
		{"over 1 MiB", large(seekv1alpha1.MaxResultBytes + 1), ""},
		{"not JSON", large(5000) + "}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(largeResult(tc.raw)); got != tc.want {
				t.Errorf("largeResult = %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

func TestStoreResult(t *testing.T) {
	ctx := context.Background()
	data := []byte(large(5000))
	other := []byte(large(6000))
	uid := types.UID("job-uid")
	ref := resultRefFor("job", data)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "job-result"}, Data: map[string][]byte{"x": []byte("y")}}

	for _, tc := range []struct {
		name     string
		existing []client.Object
		want     resultStorage
		wantData []byte
	}{
		{name: "creates the Secret", want: resultStorage{ref: ref}, wantData: data},
		{name: "the same result already stored is fine", existing: []client.Object{resultSecret("tenant", "job", uid, data)}, want: resultStorage{ref: ref}, wantData: data},
		{name: "an earlier attempt's result is replaced", existing: []client.Object{resultSecret("tenant", "job", uid, other)}, want: resultStorage{ref: ref}, wantData: data},
		{name: "a Secret of a job of the same name before is not the job's", existing: []client.Object{resultSecret("tenant", "job", "old-uid", other)},
			want:     resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: "The worker returned a result of 5000 bytes, but Secret job-result, where it would be stored, exists and is not the job's"},
			wantData: other},
		{name: "a foreign Secret is not touched", existing: []client.Object{foreign},
			want: resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: "The worker returned a result of 5000 bytes, but Secret job-result, where it would be stored, exists and is not the job's"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(newTestScheme(t)).WithObjects(tc.existing...).Build()
			got, err := storeResult(ctx, c, c, "tenant", "job", uid, data)
			if err != nil {
				t.Fatalf("storeResult: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(resultStorage{})); diff != "" {
				t.Errorf("storage (-want +got):\n%s", diff)
			}
			s := &corev1.Secret{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: "tenant", Name: "job-result"}, s); err != nil {
				t.Fatalf("get the Secret: %v", err)
			}
			if tc.wantData != nil {
				if got := s.Data[seekv1alpha1.ResultSecretKey]; string(got) != string(tc.wantData) {
					t.Errorf("the Secret holds %d bytes, want %d", len(got), len(tc.wantData))
				}
				if s.Type != seekv1alpha1.ResultSecretType || s.Labels[seekv1alpha1.LabelJobUID] == "" {
					t.Errorf("the Secret's type %q and labels %v", s.Type, s.Labels)
				}
			}
			if tc.name == "creates the Secret" {
				owner := metav1.GetControllerOf(s)
				if owner == nil || owner.UID != uid || owner.Kind != "SeekJob" {
					t.Errorf("the Secret's controller is %+v, want the SeekJob", owner)
				}
			}
		})
	}
}

// TestSetStatusFromJobCollector: a Job mode pod with the collector sidecar completes from the
// collector's verdict: the worker's exit 0 waits for it (at most collectorWait from the worker's end,
// on the injected clock), then the job completes inline or with a reference, or fails.
func TestSetStatusFromJobCollector(t *testing.T) {
	sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Generation(1).Created(t0)
	base := sj.Obj()
	job := testutil.MakeJob("a", "ns").ForSeekJob(base).UID("j1").Created(jobCreated).ActiveDeadlineSeconds(60).Active(1)
	exited := jobCreated.Add(2 * time.Second)
	worker := func() *testutil.PodWrapper {
		return testutil.MakePod("a-1", "ns").ForSeekJob(base).Created(jobCreated).WithCollector().Phase(corev1.PodRunning).
			Terminated(0, "Completed", "", exited)
	}
	ref := resultRefFor("a", []byte(large(5000)))
	envelope := func(c dispatch.Collected) string {
		data, _ := json.Marshal(c)
		return dispatch.CollectedPrefix + string(data)
	}

	for _, tc := range []struct {
		name      string
		pod       *corev1.Pod
		now       time.Time
		wantState seekv1alpha1.JobState
		wantRef   *seekv1alpha1.ResultRef
		result    string
		reason    string
		pending   time.Duration
	}{
		{name: "waits for the collector", pod: worker().Obj(), now: exited.Add(10 * time.Second),
			wantState: seekv1alpha1.JobStateRunning, pending: collectorWait - 10*time.Second},
		{name: "fails once the collector stays silent past its wait", pod: worker().Obj(), now: exited.Add(collectorWait),
			wantState: seekv1alpha1.JobStateFailed, reason: seekv1alpha1.JobReasonResultLost},
		{name: "a small result comes verbatim", pod: worker().Collected(`{"ok":true}`, exited).Obj(), now: exited.Add(time.Second),
			wantState: seekv1alpha1.JobStateCompleted, result: `{"ok":true}`},
		{name: "no result", pod: worker().Collected(envelope(dispatch.Collected{}), exited).Obj(), now: exited.Add(time.Second),
			wantState: seekv1alpha1.JobStateCompleted},
		{name: "a stored result is referenced",
			pod: worker().Collected(envelope(dispatch.Collected{Bytes: ref.Bytes, SecretName: ref.SecretName, SHA256: ref.SHA256}), exited).Obj(),
			now: exited.Add(time.Second), wantState: seekv1alpha1.JobStateCompleted, wantRef: ref},
		{name: "a stored result of another Secret is refused",
			pod: worker().Collected(envelope(dispatch.Collected{Bytes: ref.Bytes, SecretName: "other-result", SHA256: ref.SHA256}), exited).Obj(),
			now: exited.Add(time.Second), wantState: seekv1alpha1.JobStateFailed, reason: seekv1alpha1.JobReasonResultLost},
		{name: "over 1 MiB fails with ResultTooLarge", pod: worker().Collected(envelope(dispatch.Collected{Bytes: 2 << 20, Error: "too large"}), exited).Obj(),
			now: exited.Add(time.Second), wantState: seekv1alpha1.JobStateFailed, reason: seekv1alpha1.JobReasonResultTooLarge},
		{name: "an upload that failed loses the result", pod: worker().Collected(envelope(dispatch.Collected{Bytes: 5000, Error: "HTTP 503"}), exited).Obj(),
			now: exited.Add(time.Second), wantState: seekv1alpha1.JobStateFailed, reason: seekv1alpha1.JobReasonResultLost},
		{name: "a killed collector loses the result", pod: worker().Collected("", exited).Obj(),
			now: exited.Add(time.Second), wantState: seekv1alpha1.JobStateFailed, reason: seekv1alpha1.JobReasonResultLost},
		// Seen in a chaos run: the runtime's error is the message of a collector that could not start.
		{name: "a collector that could not start loses the result, its message is no result",
			pod: worker().CollectorEnded(128, "StartError", "failed to create containerd task: failed to start shim: start failed", exited).Obj(),
			now: exited.Add(time.Second), wantState: seekv1alpha1.JobStateFailed, reason: seekv1alpha1.JobReasonResultLost},
		{name: "a collector that failed loses the result", pod: worker().CollectorEnded(1, "Error", `{"ok":true}`, exited).Obj(),
			now: exited.Add(time.Second), wantState: seekv1alpha1.JobStateFailed, reason: seekv1alpha1.JobReasonResultLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sj.Clone().Obj()
			setStatusFromJob(got, job.Obj(), []corev1.Pod{*tc.pod}, "", false, tc.now)
			st := got.Status
			if st.State != tc.wantState {
				t.Fatalf("state %q (conditions %+v), want %q", st.State, st.Conditions, tc.wantState)
			}
			if diff := cmp.Diff(tc.wantRef, st.ResultRef); diff != "" {
				t.Errorf("resultRef (-want +got):\n%s", diff)
			}
			gotResult := ""
			if st.Result != nil {
				gotResult = string(st.Result.Raw)
			}
			if gotResult != tc.result {
				t.Errorf("result %q, want %q", gotResult, tc.result)
			}
			if tc.reason != "" && (st.Error == nil || st.Error.Reason != tc.reason) {
				t.Errorf("error %+v, want reason %s", st.Error, tc.reason)
			}
			if got := collectorPending([]corev1.Pod{*tc.pod}, tc.now); got != tc.pending {
				t.Errorf("collectorPending = %s, want %s", got, tc.pending)
			}
		})
	}
}

// TestWithCollector: the Job mode pod gets the collector sidecar with the dispatch token; the worker
// shares /seek with it and its termination message path goes back to the default.
func TestWithCollector(t *testing.T) {
	sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Obj()
	w := testutil.MakeSeekWorker("echo").Obj()
	job := buildJob(sj, w)
	withCollector(job, PoolOptions{RunnerImage: "example.com/runner:v1", DispatchURL: "http://10.0.0.1:8090"})
	spec := job.Spec.Template.Spec
	if len(spec.InitContainers) != 1 {
		t.Fatalf("init containers %+v, want the collector", spec.InitContainers)
	}
	c := spec.InitContainers[0]
	if c.Name != dispatch.CollectorContainer || c.Image != "example.com/runner:v1" || c.RestartPolicy == nil ||
		*c.RestartPolicy != corev1.ContainerRestartPolicyAlways || !cmp.Equal(c.Command, []string{runnerInstallPath, "collect"}) {
		t.Errorf("collector %+v", c)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if diff := cmp.Diff(map[string]string{resultVolume: resultDir, tokenVolume: dispatch.TokenDir}, mounts); diff != "" {
		t.Errorf("collector mounts (-want +got):\n%s", diff)
	}
	workerC := spec.Containers[0]
	for _, m := range workerC.VolumeMounts {
		if m.Name == tokenVolume {
			t.Errorf("the worker container mounts the dispatch token")
		}
	}
	if workerC.TerminationMessagePath != corev1.TerminationMessagePathDefault || workerC.VolumeMounts[0].MountPath != resultDir {
		t.Errorf("worker: termination message path %q, mounts %+v", workerC.TerminationMessagePath, workerC.VolumeMounts)
	}
	if spec.ServiceAccountName != defaultServiceAccount {
		t.Errorf("serviceAccountName %q, want %q (a projected token needs one)", spec.ServiceAccountName, defaultServiceAccount)
	}
}
