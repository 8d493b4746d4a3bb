package integration

import (
	"context"
	"fmt"
	"strconv"
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
	"github.com/seek-api/seek-operator/internal/testutil"
)

// The pool tests play the runner and the dispatcher: they write the lease into a job's status as the
// dispatcher does, and the pool pods' status as the kubelet does. kube-controller-manager's Job
// controller makes the pool Jobs' pods.

// pooledWorker is a Pooled worker with at most maxPods pods per pool.
func poolTestWorker(maxPods int32) *testutil.SeekWorkerWrapper {
	return testutil.MakeSeekWorker(uniqueName("pooled")).Image("example.com/seek/echo:v1").Command("/echo").Pooled(maxPods)
}

// poolJobs lists the pool Jobs of worker in ns.
func poolJobs(ctx context.Context, ns, worker string) ([]batchv1.Job, error) {
	jobs := &batchv1.JobList{}
	err := k8sClient.List(ctx, jobs, client.InNamespace(ns), client.MatchingLabels{seekv1alpha1.LabelPool: worker})
	return jobs.Items, err
}

// generationOf is the generation of a pool Job: the number its name ends with.
func generationOf(job *batchv1.Job) int {
	n, _ := strconv.Atoi(job.Name[strings.LastIndexByte(job.Name, '-')+1:])
	return n
}

// waitForPoolJob waits until the pool of worker in ns has n Jobs, the newest with the given
// parallelism, and returns that one.
func waitForPoolJob(t *testing.T, ns, worker string, n int, parallelism int32) *batchv1.Job {
	t.Helper()
	var newest *batchv1.Job
	eventually(t, fmt.Sprintf("%d pool Jobs, the newest of parallelism %d", n, parallelism), func(ctx context.Context) (bool, error) {
		jobs, err := poolJobs(ctx, ns, worker)
		if err != nil {
			return false, err
		}
		newest = nil
		for i := range jobs {
			if newest == nil || generationOf(&jobs[i]) > generationOf(newest) {
				newest = &jobs[i]
			}
		}
		if len(jobs) != n || newest == nil {
			return false, fmt.Errorf("%d pool Jobs", len(jobs))
		}
		return *newest.Spec.Parallelism == parallelism, fmt.Errorf("parallelism %d", *newest.Spec.Parallelism)
	})
	return newest
}

// waitForPoolPods waits until the pool Job has n live pods and returns them.
func waitForPoolPods(t *testing.T, job *batchv1.Job, n int) []corev1.Pod {
	t.Helper()
	var live []corev1.Pod
	eventually(t, fmt.Sprintf("%d pods of pool Job %s", n, job.Name), func(ctx context.Context) (bool, error) {
		pods := &corev1.PodList{}
		if err := k8sClient.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{"batch.kubernetes.io/controller-uid": string(job.UID)}); err != nil {
			return false, err
		}
		live = nil
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				live = append(live, p)
			}
		}
		return len(live) == n, fmt.Errorf("%d live pods", len(live))
	})
	return live
}

// lease writes what the dispatcher writes when pod leases the job's next attempt, started at startedAt.
func lease(t *testing.T, ns, name string, job *batchv1.Job, pod *corev1.Pod, startedAt time.Time) *seekv1alpha1.SeekJob {
	t.Helper()
	var sj *seekv1alpha1.SeekJob
	eventually(t, "lease of "+name, func(ctx context.Context) (bool, error) {
		w := &testutil.SeekJobWrapper{}
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &w.SeekJob); err != nil {
			return false, err
		}
		sj = w.Leased(job.Name, pod.Name, string(pod.UID), startedAt).Obj()
		err := k8sClient.Status().Update(ctx, sj)
		return err == nil, err
	})
	return sj
}

// waitForJob waits until cond holds for the SeekJob and returns it.
func waitForJob(t *testing.T, ns, name, what string, cond func(*seekv1alpha1.SeekJob) bool) *seekv1alpha1.SeekJob {
	t.Helper()
	sj := &seekv1alpha1.SeekJob{}
	eventually(t, name+": "+what, func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, sj); err != nil {
			return false, err
		}
		return cond(sj), fmt.Errorf("status %+v", sj.Status)
	})
	return sj
}

func TestPool(t *testing.T) {
	t.Run("a queued job makes a pool of one pod and gets no status write", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, poolTestWorker(4).Obj())
		sj := testutil.MakeSeekJob("hello", ns).Worker(w.Name).Input(`{"x":1}`).Obj()
		mustCreate(t, sj)
		created := sj.ResourceVersion

		job := waitForPoolJob(t, ns, w.Name, 1, 1)
		if !metav1.IsControlledBy(job, w) {
			t.Errorf("pool Job %s is controlled by %v, want SeekWorker %s", job.Name, metav1.GetControllerOf(job), w.Name)
		}
		if job.Spec.Completions != nil || job.Labels[seekv1alpha1.LabelPool] != w.Name || job.Labels[seekv1alpha1.LabelWorker] != w.Name ||
			job.Labels[seekv1alpha1.LabelPoolTemplate] == "" {
			t.Errorf("pool Job: completions %v, labels %v", job.Spec.Completions, job.Labels)
		}
		waitForPoolPods(t, job, 1)
		// The reconcilers have seen the job, its pool Job and pod: still nothing written to the job.
		time.Sleep(2 * time.Second)
		got := &seekv1alpha1.SeekJob{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(sj), got); err != nil {
			t.Fatal(err)
		}
		if got.ResourceVersion != created || got.Status.State != "" {
			t.Errorf("queued pooled job was written: resourceVersion %s -> %s, status %+v", created, got.ResourceVersion, got.Status)
		}
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "hello"}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
			t.Errorf("a pooled job got a Job of its own (%v)", err)
		}
		// A Pooled worker's jobs take no slots.
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(w), w); err != nil {
			t.Fatal(err)
		}
		if len(w.Status.ActiveJobs) != 0 {
			t.Errorf("worker status.activeJobs = %v, want none", w.Status.ActiveJobs)
		}
	})

	t.Run("ten queued jobs: parallelism maxPods, never lowered", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, poolTestWorker(3).MaxConcurrent(2).Obj())
		for i := range 10 {
			mustCreate(t, testutil.MakeSeekJob(fmt.Sprintf("j%d", i), ns).Worker(w.Name).Obj())
		}
		job := waitForPoolJob(t, ns, w.Name, 1, 3)
		for i := range 10 {
			requestCancel(t, ns, fmt.Sprintf("j%d", i), "done")
		}
		for i := range 10 {
			waitForState(t, ns, fmt.Sprintf("j%d", i), seekv1alpha1.JobStateCanceled)
		}
		time.Sleep(time.Second)
		got := waitForPoolJob(t, ns, w.Name, 1, 3)
		if got.Name != job.Name {
			t.Errorf("pool Job %s replaced by %s", job.Name, got.Name)
		}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(w), w); err != nil {
			t.Fatal(err)
		}
		if len(w.Status.ActiveJobs) != 0 {
			t.Errorf("worker status.activeJobs = %v, want none: the dispatcher enforces maxConcurrentJobs", w.Status.ActiveJobs)
		}
	})

	t.Run("a leased job whose pod is deleted is released, its attempt not counted", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, poolTestWorker(1).Retries(0).Obj())
		mustCreate(t, testutil.MakeSeekJob("a", ns).Worker(w.Name).Obj())
		job := waitForPoolJob(t, ns, w.Name, 1, 1)
		pod := waitForPoolPods(t, job, 1)[0]
		startPod(t, &pod)
		lease(t, ns, "a", job, &pod, time.Now())
		if err := k8sClient.Delete(context.Background(), &pod); err != nil {
			t.Fatal(err)
		}
		// While the pod terminates (the Job controller's finalizer holds it), its runner may still report
		// the attempt Interrupted: the job stays leased.
		time.Sleep(time.Second)
		if sj := waitForJob(t, ns, "a", "leased", func(*seekv1alpha1.SeekJob) bool { return true }); sj.Status.Pool.PodUID != string(pod.UID) {
			t.Errorf("released while its pod terminates: pool %+v", sj.Status.Pool)
		}
		// The kubelet ends it without a report from the runner.
		finishPod(t, &pod, 137, "")
		sj := waitForJob(t, ns, "a", "released", func(sj *seekv1alpha1.SeekJob) bool {
			return sj.Status.Pool != nil && sj.Status.Pool.PodUID == ""
		})
		if sj.Status.State != seekv1alpha1.JobStateRunning || sj.Status.Attempts != 0 || sj.Status.Pool.RetryTime != nil {
			t.Errorf("released job: state %s, attempts %d, retryTime %v; want Running, 0, none", sj.Status.State, sj.Status.Attempts, sj.Status.Pool.RetryTime)
		}
	})

	t.Run("a leased job whose pod failed counts the attempt, then fails when no retries are left", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, poolTestWorker(1).Retries(1).Obj())
		mustCreate(t, testutil.MakeSeekJob("a", ns).Worker(w.Name).Obj())
		job := waitForPoolJob(t, ns, w.Name, 1, 1)
		pod := waitForPoolPods(t, job, 1)[0]
		startPod(t, &pod)
		lease(t, ns, "a", job, &pod, time.Now())
		finishPod(t, &pod, 2, "runner crashed")
		sj := waitForJob(t, ns, "a", "attempt failed", func(sj *seekv1alpha1.SeekJob) bool {
			return sj.Status.Pool != nil && sj.Status.Pool.RetryTime != nil
		})
		if sj.Status.State != seekv1alpha1.JobStateRunning || sj.Status.Attempts != 1 || sj.Status.Pool.PodUID != "" {
			t.Errorf("after a failed attempt: state %s, attempts %d, pool %+v", sj.Status.State, sj.Status.Attempts, sj.Status.Pool)
		}
		// The second attempt, on the pod the Job controller made in place of the failed one, fails the
		// same way: no retries left.
		pod2 := waitForPoolPods(t, job, 1)[0]
		startPod(t, &pod2)
		lease(t, ns, "a", job, &pod2, time.Now())
		finishPod(t, &pod2, 2, "runner crashed again")
		sj = waitForState(t, ns, "a", seekv1alpha1.JobStateFailed)
		if sj.Status.Attempts != 2 || sj.Status.Error == nil || sj.Status.Error.Reason != seekv1alpha1.JobReasonRetriesExhausted {
			t.Errorf("failed job: attempts %d, error %+v; want 2, RetriesExhausted", sj.Status.Attempts, sj.Status.Error)
		}
	})

	t.Run("cancel of a leased job", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, poolTestWorker(1).Obj())
		mustCreate(t, testutil.MakeSeekJob("a", ns).Worker(w.Name).Obj())
		job := waitForPoolJob(t, ns, w.Name, 1, 1)
		pod := waitForPoolPods(t, job, 1)[0]
		startPod(t, &pod)
		lease(t, ns, "a", job, &pod, time.Now())
		requestCancel(t, ns, "a", "no longer needed")
		sj := waitForState(t, ns, "a", seekv1alpha1.JobStateCanceled)
		if sj.Status.Attempts != 1 || sj.Status.Error == nil || sj.Status.Error.Message != "The job was canceled: no longer needed" {
			t.Errorf("canceled job: attempts %d, error %+v", sj.Status.Attempts, sj.Status.Error)
		}
		// The pool pod stays: its runner stops the process and leases the next job.
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(&pod), &corev1.Pod{}); err != nil {
			t.Errorf("pool pod: %v", err)
		}
	})

	t.Run("the timeout backstop ends a job its runner did not", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, poolTestWorker(1).Timeouts(time.Second, 0).Obj())
		mustCreate(t, testutil.MakeSeekJob("a", ns).Worker(w.Name).Obj())
		job := waitForPoolJob(t, ns, w.Name, 1, 1)
		pod := waitForPoolPods(t, job, 1)[0]
		startPod(t, &pod)
		// Started 41 s ago: past its 1 s timeout, the 30 s stop grace and 10 s of slack.
		lease(t, ns, "a", job, &pod, time.Now().Add(-41*time.Second))
		sj := waitForState(t, ns, "a", seekv1alpha1.JobStateTimedOut)
		if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobFinished); c == nil || c.Reason != seekv1alpha1.JobReasonDeadlineExceeded {
			t.Errorf("Finished condition %+v, want DeadlineExceeded", c)
		}
	})

	t.Run("a worker template change makes a new generation once the old pods exit", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, poolTestWorker(4).Obj())
		for i := range 2 {
			mustCreate(t, testutil.MakeSeekJob(fmt.Sprintf("j%d", i), ns).Worker(w.Name).Obj())
		}
		gen1 := waitForPoolJob(t, ns, w.Name, 1, 2)
		pods := waitForPoolPods(t, gen1, 2)
		eventually(t, "worker image changed", func(ctx context.Context) (bool, error) {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
				return false, err
			}
			w.Spec.Image = "example.com/seek/echo:v2"
			err := k8sClient.Update(ctx, w)
			return err == nil, err
		})
		// The old pods still stand for the queue: no new generation yet.
		time.Sleep(time.Second)
		if jobs, err := poolJobs(context.Background(), ns, w.Name); err != nil || len(jobs) != 1 {
			t.Fatalf("pool Jobs while the old pods live: %d (%v), want 1", len(jobs), err)
		}
		// Their runners are told to exit (outdated template) and do.
		for i := range pods {
			finishPod(t, &pods[i], 0, "")
		}
		gen2 := waitForPoolJob(t, ns, w.Name, 2, 2)
		if gen2.Labels[seekv1alpha1.LabelPoolTemplate] == gen1.Labels[seekv1alpha1.LabelPoolTemplate] {
			t.Errorf("generation 2 %s has the template hash of generation 1", gen2.Name)
		}
		if img := gen2.Spec.Template.Spec.Containers[0].Image; img != "example.com/seek/echo:v2" {
			t.Errorf("generation 2 runs %s, want the new image", img)
		}
	})

	t.Run("pool pods that cannot pull their image: queued with the cause, failed at the start deadline", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, poolTestWorker(2).StartDeadline(5*time.Second).Obj())
		mustCreate(t, testutil.MakeSeekJob("a", ns).Worker(w.Name).Obj())
		job := waitForPoolJob(t, ns, w.Name, 1, 1)
		pod := waitForPoolPods(t, job, 1)[0]
		updatePodStatus(t, &pod, func(st *corev1.PodStatus) {
			st.Phase = corev1.PodPending
			st.ContainerStatuses = []corev1.ContainerStatus{{Name: "worker", Image: "example.com/seek/echo:v1",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image"}}}}
		})
		sj := waitForStarted(t, ns, "a", "ImagePullBackOff")
		if sj.Status.State != seekv1alpha1.JobStateQueued {
			t.Errorf("state %s, want Queued", sj.Status.State)
		}
		sj = waitForState(t, ns, "a", seekv1alpha1.JobStateFailed)
		if e := sj.Status.Error; e == nil || e.Reason != "ImagePullBackOff" || !strings.HasPrefix(e.Message, "The worker did not start within 5s: ") {
			t.Errorf("error = %+v", e)
		}
	})

	t.Run("a quota refusing the pool Job: queued with the cause", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "jobs", Namespace: ns},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}}}
		mustCreate(t, quota)
		setQuotaStatus(t, quota, "0") // the quota controller does not run here: play it
		w := readyWorker(t, poolTestWorker(2).Obj())
		mustCreate(t, testutil.MakeSeekJob("held", ns).Worker(w.Name).Obj())
		sj := waitForStarted(t, ns, "held", seekv1alpha1.JobReasonQuotaExceeded)
		if sj.Status.State != seekv1alpha1.JobStateQueued {
			t.Errorf("state %s, want Queued", sj.Status.State)
		}
		if jobs, err := poolJobs(context.Background(), ns, w.Name); err != nil || len(jobs) != 0 {
			t.Errorf("pool Jobs: %d (%v), want none", len(jobs), err)
		}
	})
}
