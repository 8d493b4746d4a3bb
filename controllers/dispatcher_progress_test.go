package controllers

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// TestJobPodRuns: a Job mode pod may report progress only for the attempt it runs: its own job's
// current attempt, while the job and the pod are live.
func TestJobPodRuns(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	running := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").State(seekv1alpha1.JobStateRunning).JobName("a").Attempts(2)
	job := testutil.MakeJob("a", "ns").ForSeekJob(running.Obj()).ControlledBy(running.Obj()).UID("job-uid").Obj()
	pod := testutil.MakePod("a-xyz", "ns").UID("pod-uid").ForSeekJob(running.Obj()).ControlledBy(job).Phase(corev1.PodRunning)
	ref := dispatch.AttemptRef{Namespace: "ns", Name: "a", UID: "u1"}
	withAttempt := func(n int32) dispatch.AttemptRef { r := ref; r.Attempt = n; return r }
	otherJob := testutil.MakeJob("b", "ns").UID("job-b").Obj()
	deleting := metav1.NewTime(now)

	for _, tc := range []struct {
		name string
		sj   *seekv1alpha1.SeekJob
		pod  *corev1.Pod
		ref  dispatch.AttemptRef
		want bool
	}{
		{name: "its own attempt (0)", sj: running.Obj(), pod: pod.Obj(), ref: ref, want: true},
		{name: "the current attempt by number", sj: running.Obj(), pod: pod.Obj(), ref: withAttempt(2), want: true},
		{name: "pending pod (the worker may run before the kubelet says)", sj: running.Obj(), pod: pod.Clone().Phase(corev1.PodPending).Obj(), ref: ref, want: true},
		{name: "an earlier attempt", sj: running.Obj(), pod: pod.Obj(), ref: withAttempt(1)},
		{name: "a later attempt", sj: running.Obj(), pod: pod.Obj(), ref: withAttempt(3)},
		{name: "another UID (a deleted job of the same name)", sj: running.Clone().UID("u2").Obj(), pod: pod.Obj(), ref: ref},
		{name: "the job finished", sj: running.Clone().Finished(seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, now).Obj(), pod: pod.Obj(), ref: ref},
		{name: "the job is being canceled", sj: running.Clone().Cancel("no").Obj(), pod: pod.Obj(), ref: ref},
		{name: "the job is being deleted", sj: running.Clone().Deleting(now).Finalizers("x").Obj(), pod: pod.Obj(), ref: ref},
		{name: "a pooled job", sj: func() *seekv1alpha1.SeekJob {
			sj := running.Obj()
			sj.Status.Pool = &seekv1alpha1.PoolAttempt{JobName: "seek-pool-echo-1", PodName: "a-xyz", PodUID: "pod-uid"}
			return sj
		}(), pod: pod.Obj(), ref: ref},
		{name: "a failed pod (its attempt ended)", sj: running.Obj(), pod: pod.Clone().Phase(corev1.PodFailed).Obj(), ref: ref},
		{name: "a succeeded pod", sj: running.Obj(), pod: pod.Clone().Phase(corev1.PodSucceeded).Obj(), ref: ref},
		{name: "a pod being deleted", sj: running.Obj(), pod: func() *corev1.Pod { p := pod.Obj(); p.DeletionTimestamp = &deleting; return p }(), ref: ref},
		{name: "a pod of another Job", sj: running.Obj(), pod: testutil.MakePod("a-xyz", "ns").ForSeekJob(running.Obj()).ControlledBy(otherJob).Phase(corev1.PodRunning).Obj(), ref: ref},
		{name: "a pod of no Job", sj: running.Obj(), pod: testutil.MakePod("a-xyz", "ns").ForSeekJob(running.Obj()).Phase(corev1.PodRunning).Obj(), ref: ref},
		{name: "a pod labelled for another job", sj: running.Obj(), pod: pod.Clone().Label(seekv1alpha1.LabelJobUID, "u9").Obj(), ref: ref},
		{name: "a reference to another job", sj: running.Obj(), pod: pod.Obj(), ref: dispatch.AttemptRef{Namespace: "ns", Name: "b", UID: "u1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := jobPodRuns(tc.sj, tc.pod, tc.ref); got != tc.want {
				t.Errorf("jobPodRuns = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestValidateJobPodRef: a Job mode pod names its own job (else 403), attempt 0 or more (else 400).
func TestValidateJobPodRef(t *testing.T) {
	pod := testutil.MakePod("a-xyz", "ns").Label(seekv1alpha1.LabelJobName, "a").Label(seekv1alpha1.LabelJobUID, "u1").Obj()
	// answer is a refusal's status and reason; zero for a valid reference.
	type answer struct {
		Status int
		Reason string
	}
	for _, tc := range []struct {
		name string
		ref  dispatch.AttemptRef
		want answer
	}{
		{name: "its own job, attempt 0", ref: dispatch.AttemptRef{Namespace: "ns", Name: "a", UID: "u1"}},
		{name: "its own job, attempt 3", ref: dispatch.AttemptRef{Namespace: "ns", Name: "a", UID: "u1", Attempt: 3}},
		{name: "a negative attempt", ref: dispatch.AttemptRef{Namespace: "ns", Name: "a", UID: "u1", Attempt: -1}, want: answer{http.StatusBadRequest, "BadRequest"}},
		{name: "no UID", ref: dispatch.AttemptRef{Namespace: "ns", Name: "a"}, want: answer{http.StatusBadRequest, "BadRequest"}},
		{name: "another job's name", ref: dispatch.AttemptRef{Namespace: "ns", Name: "b", UID: "u1"}, want: answer{http.StatusForbidden, "NotTheJobsPod"}},
		{name: "another UID", ref: dispatch.AttemptRef{Namespace: "ns", Name: "a", UID: "u2"}, want: answer{http.StatusForbidden, "NotTheJobsPod"}},
		{name: "another namespace", ref: dispatch.AttemptRef{Namespace: "other", Name: "a", UID: "u1"}, want: answer{http.StatusForbidden, "NotTheJobsPod"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateJobPodRef(tc.ref, pod)
			var got answer
			if herr, ok := errors.AsType[*httpError](err); ok {
				got = answer{herr.status, herr.body.(dispatch.ErrorResponse).Reason}
			} else if err != nil {
				t.Fatalf("error %v is no answer", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}
