package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/jobview"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// TestStartPath covers a job's way from its Job to its worker container running: the causes that
// keep it Queued, the start deadline, the timeout counted from the container's start, and the
// apiserver refusing the Job. The tests play the kubelet and the scheduler by writing pod status.
func TestStartPath(t *testing.T) {
	t.Run("image pull back-off: queued with the reason, failed at the start deadline", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).StartDeadline(4*time.Second).Obj())
		mustCreate(t, testutil.MakeSeekJob("nopull", ns).Worker(w.Name).Obj())
		pod := waitForPod(t, ns, "nopull", 1)
		const msg = `Back-off pulling image "example.com/seek/echo:v1": ErrImagePull: not found`
		updatePodStatus(t, pod, func(st *corev1.PodStatus) {
			st.Phase = corev1.PodPending
			st.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
			st.ContainerStatuses = []corev1.ContainerStatus{{Name: protocol.ContainerName, Image: pod.Spec.Containers[0].Image,
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: msg}}}}
		})
		sj := waitForStarted(t, ns, "nopull", "ImagePullBackOff")
		if sj.Status.State != seekv1alpha1.JobStateQueued || sj.Status.StartTime != nil {
			t.Errorf("status = %s, startTime %v; want Queued, not started", sj.Status.State, sj.Status.StartTime)
		}
		if r := jobview.ToResponse(sj); r.Status != "queued" || r.StatusReason == nil || *r.StatusReason != "ImagePullBackOff" || *r.StatusMessage != msg {
			t.Errorf("REST view = %s, %v, %v", r.Status, r.StatusReason, r.StatusMessage)
		}
		waitForEvent(t, ns, "nopull", "ImagePullBackOff")

		sj = waitForState(t, ns, "nopull", seekv1alpha1.JobStateFailed)
		if e := sj.Status.Error; e == nil || e.Reason != "ImagePullBackOff" || e.Message != "The worker did not start within 4s: "+msg {
			t.Errorf("error = %+v", e)
		}
		if sj.Status.StartTime != nil || sj.Status.Duration != nil {
			t.Errorf("startTime %v, duration %v: the job never started", sj.Status.StartTime, sj.Status.Duration)
		}
		waitJobGone(t, ns, "nopull")
	})

	t.Run("unschedulable, then scheduled: the timeout counts from the container's start", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).StartDeadline(20*time.Second).Obj())
		mustCreate(t, testutil.MakeSeekJob("late", ns).Worker(w.Name).Timeout(3*time.Second).Obj())
		pod := waitForPod(t, ns, "late", 1)
		const msg = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
		updatePodStatus(t, pod, func(st *corev1.PodStatus) {
			st.Phase = corev1.PodPending
			st.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: msg, LastTransitionTime: metav1.Now()}}
		})
		if c := meta.FindStatusCondition(waitForStarted(t, ns, "late", "Unschedulable").Status.Conditions, seekv1alpha1.JobStarted); c.Message != msg {
			t.Errorf("Started message = %q, want the scheduler's", c.Message)
		}
		time.Sleep(4 * time.Second) // longer than the timeout: waiting for a node must not use it up
		startPod(t, pod)
		running := waitForState(t, ns, "late", seekv1alpha1.JobStateRunning)
		c := meta.FindStatusCondition(running.Status.Conditions, seekv1alpha1.JobStarted)
		if c.Status != metav1.ConditionTrue || c.Reason != seekv1alpha1.JobReasonWorkerStarted || running.Status.StartTime == nil {
			t.Errorf("running: Started %+v, startTime %v", c, running.Status.StartTime)
		}
		sj := waitForState(t, ns, "late", seekv1alpha1.JobStateTimedOut)
		if e := sj.Status.Error; e == nil || e.Reason != seekv1alpha1.JobReasonDeadlineExceeded || e.Message != "The job ran longer than its timeout of 3s" {
			t.Errorf("error = %+v", e)
		}
		if d := sj.Status.Duration; d == nil || d.Duration < 3*time.Second || d.Duration > 6*time.Second {
			t.Errorf("duration = %v, want about the 3s timeout from the container's start", d)
		}
		waitJobGone(t, ns, "late")
	})

	t.Run("missing RuntimeClass: the Job controller cannot create the pod", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		missing := uniqueName("sandbox")
		w := readyWorker(t, echoWorker(t).RuntimeClass(missing).StartDeadline(5*time.Second).Obj())
		mustCreate(t, testutil.MakeSeekJob("sandboxed", ns).Worker(w.Name).Obj())
		sj := waitForStarted(t, ns, "sandboxed", seekv1alpha1.JobReasonRuntimeClassNotFound)
		if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); !strings.Contains(c.Message, missing) {
			t.Errorf("Started message = %q, want the RuntimeClass named", c.Message)
		}
		sj = waitForState(t, ns, "sandboxed", seekv1alpha1.JobStateFailed)
		if e := sj.Status.Error; e == nil || e.Reason != seekv1alpha1.JobReasonRuntimeClassNotFound || !strings.HasPrefix(e.Message, "The worker did not start within 5s: ") {
			t.Errorf("error = %+v", e)
		}
	})

	t.Run("quota on Jobs: queued while exceeded, started once it allows", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "jobs", Namespace: ns},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}}}
		mustCreate(t, quota)
		setQuotaStatus(t, quota, "0") // the quota controller does not run here: play it
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("held", ns).Worker(w.Name).Obj())
		sj := waitForStarted(t, ns, "held", seekv1alpha1.JobReasonQuotaExceeded)
		if sj.Status.State != seekv1alpha1.JobStateQueued || sj.Status.JobName != "" {
			t.Errorf("status = %s, jobName %q; want Queued without a Job", sj.Status.State, sj.Status.JobName)
		}
		waitForEvent(t, ns, "held", seekv1alpha1.JobReasonQuotaExceeded)

		eventually(t, "quota raised", func(ctx context.Context) (bool, error) {
			q := &corev1.ResourceQuota{}
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(quota), q); err != nil {
				return false, err
			}
			q.Spec.Hard["count/jobs.batch"] = resource.MustParse("1")
			err := k8sClient.Update(ctx, q)
			return err == nil, err
		})
		setQuotaStatus(t, quota, "1")
		waitForStarted(t, ns, "held", seekv1alpha1.JobReasonJobCreated)
		startPod(t, waitForPod(t, ns, "held", 1))
		waitForState(t, ns, "held", seekv1alpha1.JobStateRunning)
	})

	t.Run("invalid Job: failed with the apiserver's reason", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		// Requests above limits pass the SeekWorker's schema but not the pod template's validation.
		w := readyWorker(t, echoWorker(t).Resources(corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
		}).Obj())
		mustCreate(t, testutil.MakeSeekJob("invalid", ns).Worker(w.Name).Obj())
		sj := waitForState(t, ns, "invalid", seekv1alpha1.JobStateFailed)
		if e := sj.Status.Error; e == nil || e.Reason != seekv1alpha1.JobReasonJobRejected || !strings.Contains(e.Message, "must be less than or equal to cpu limit") {
			t.Errorf("error = %+v", e)
		}
		if jobs, err := jobsOf(context.Background(), ns); err != nil || len(jobs) != 0 {
			t.Errorf("jobs = %d (%v), want none", len(jobs), err)
		}
	})

	t.Run("OOM killed: the limit named, the log tail kept", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Resources(corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		}).Obj())
		mustCreate(t, testutil.MakeSeekJob("hungry", ns).Worker(w.Name).Obj())
		pod := waitForPod(t, ns, "hungry", 1)
		now := metav1.Now()
		setPodStatus(t, pod, corev1.PodFailed, corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: "OOMKilled", Message: "loading 2 GiB of embeddings\n", StartedAt: now, FinishedAt: now,
		}}})
		sj := waitForState(t, ns, "hungry", seekv1alpha1.JobStateFailed)
		e := sj.Status.Error
		if e == nil || e.Message != "The worker was OOMKilled (memory limit 64Mi)" || e.ExitCode == nil || *e.ExitCode != 137 ||
			e.Details == nil || string(e.Details.Raw) != `{"log_tail":"loading 2 GiB of embeddings"}` {
			t.Errorf("error = %+v (details %s)", e, detailsOf(e))
		}
	})
}

// waitForStarted waits until the SeekJob's Started condition has the given reason and returns it.
func waitForStarted(t *testing.T, ns, name, reason string) *seekv1alpha1.SeekJob {
	t.Helper()
	sj := &seekv1alpha1.SeekJob{}
	eventually(t, fmt.Sprintf("SeekJob %s/%s Started reason %s", ns, name, reason), func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sj); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted)
		return c != nil && c.Reason == reason, fmt.Errorf("state %q, Started %+v", sj.Status.State, c)
	})
	return sj
}

// updatePodStatus plays the kubelet or the scheduler: it changes the pod's status through the status
// subresource.
func updatePodStatus(t *testing.T, pod *corev1.Pod, change func(*corev1.PodStatus)) {
	t.Helper()
	eventually(t, "pod status update", func(ctx context.Context) (bool, error) {
		p := &corev1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			return false, err
		}
		change(&p.Status)
		err := k8sClient.Status().Update(ctx, p)
		return err == nil, err
	})
}

// setQuotaStatus plays the resource quota controller: the quota's hard limit on Jobs is n, none used.
func setQuotaStatus(t *testing.T, quota *corev1.ResourceQuota, n string) {
	t.Helper()
	eventually(t, "quota status", func(ctx context.Context) (bool, error) {
		q := &corev1.ResourceQuota{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(quota), q); err != nil {
			return false, err
		}
		q.Status.Hard = corev1.ResourceList{"count/jobs.batch": resource.MustParse(n)}
		q.Status.Used = corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}
		err := k8sClient.Status().Update(ctx, q)
		return err == nil, err
	})
}

// waitJobGone waits until the SeekJob's Job is deleted (or being deleted, its pods going first).
func waitJobGone(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "Job "+name+" deleted", func(ctx context.Context) (bool, error) {
		job := &batchv1.Job{}
		err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, job)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return err == nil && job.DeletionTimestamp != nil, fmt.Errorf("job %v: %v", job.Status, err)
	})
}

func detailsOf(e *seekv1alpha1.JobError) string {
	if e == nil || e.Details == nil {
		return ""
	}
	return string(e.Details.Raw)
}
