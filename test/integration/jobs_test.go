package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// readyWorker creates a worker and waits for its Ready condition.
func readyWorker(t *testing.T, w *seekv1alpha1.SeekWorker) *seekv1alpha1.SeekWorker {
	t.Helper()
	mustCreate(t, w)
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), w) })
	eventually(t, "worker "+w.Name+" ready", func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(w.Status.Conditions, seekv1alpha1.WorkerReady), nil
	})
	return w
}

func echoWorker(t *testing.T) *testutil.SeekWorkerWrapper {
	return testutil.MakeSeekWorker(uniqueName("echo")).Image("example.com/seek/echo:v1")
}

func TestJobLifecycle(t *testing.T) {
	t.Run("result recorded", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("hello", ns).Worker(w.Name).Input(`{"message": "hi"}`).Obj())

		pod := waitForPod(t, ns, "hello", 1)
		if got := pod.Annotations[seekv1alpha1.AnnotationInput]; got != `{"message":"hi"}` {
			t.Errorf("pod input annotation = %q", got)
		}
		waitForState(t, ns, "hello", seekv1alpha1.JobStateQueued) // until its container runs
		startPod(t, pod)
		running := waitForState(t, ns, "hello", seekv1alpha1.JobStateRunning)
		if running.Status.JobName != "hello" || running.Status.StartTime == nil {
			t.Errorf("running status = %+v", running.Status)
		}
		job := &batchv1.Job{}
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "hello"}, job); err != nil {
			t.Fatal(err)
		}
		if !metav1.IsControlledBy(job, running) {
			t.Errorf("Job owner references = %+v, want controlled by the SeekJob", job.OwnerReferences)
		}
		finishPod(t, pod, 0, `{"echo": "hi", "n": 1}`)

		sj := waitForState(t, ns, "hello", seekv1alpha1.JobStateCompleted)
		if diff := cmp.Diff(`{"echo":"hi","n":1}`, string(sj.Status.Result.Raw)); diff != "" {
			t.Errorf("result (-want +got):\n%s", diff)
		}
		if sj.Status.Attempts != 1 || sj.Status.Error != nil || sj.Status.CompletionTime == nil || sj.Status.Duration == nil {
			t.Errorf("completed status = %+v", sj.Status)
		}
		if sj.Status.ObservedGeneration != sj.Generation {
			t.Errorf("observedGeneration = %d, want %d", sj.Status.ObservedGeneration, sj.Generation)
		}
		finished := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobFinished)
		if finished == nil || finished.Status != metav1.ConditionTrue || finished.Reason != seekv1alpha1.JobReasonSucceeded {
			t.Errorf("Finished condition = %+v", finished)
		}
		// Its outcome in status, the finished job's Job goes (the worker's finishedJobs: Delete).
		eventually(t, "the finished job's Job deleted", func(ctx context.Context) (bool, error) {
			err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "hello"}, &batchv1.Job{})
			return apierrors.IsNotFound(err), err
		})
		waitForEvent(t, ns, "hello", seekv1alpha1.JobReasonSucceeded)
	})

	t.Run("non-JSON result", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("garbage", ns).Worker(w.Name).Obj())
		finishPod(t, waitForPod(t, ns, "garbage", 1), 0, "this is not json")
		sj := waitForState(t, ns, "garbage", seekv1alpha1.JobStateFailed)
		if sj.Status.Error == nil || sj.Status.Error.Reason != seekv1alpha1.JobReasonInvalidResult || !strings.Contains(sj.Status.Error.Message, "not valid JSON") {
			t.Errorf("error = %+v, want InvalidResult", sj.Status.Error)
		}
		if sj.Status.Result != nil {
			t.Errorf("result = %s, want none", sj.Status.Result.Raw)
		}
	})

	t.Run("worker error with exit code", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("boom", ns).Worker(w.Name).Obj())
		finishPod(t, waitForPod(t, ns, "boom", 1), 3, `{"message": "upstream said no", "reason": "Upstream"}`)
		sj := waitForState(t, ns, "boom", seekv1alpha1.JobStateFailed)
		want := &seekv1alpha1.JobError{
			Reason:   seekv1alpha1.JobReasonRetriesExhausted,
			Message:  "upstream said no",
			ExitCode: ptrTo[int32](3),
			Details:  seekv1alpha1.NewJSON([]byte(`{"message":"upstream said no","reason":"Upstream"}`)), // compacted by the apiserver
		}
		if diff := cmp.Diff(want, sj.Status.Error); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		waitForEvent(t, ns, "boom", seekv1alpha1.JobReasonRetriesExhausted)
	})

	t.Run("non-retryable exit code", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Retries(3).Obj())
		mustCreate(t, testutil.MakeSeekJob("bad-input", ns).Worker(w.Name).Obj())
		finishPod(t, waitForPod(t, ns, "bad-input", 1), protocol.ExitCodeNoRetry, `{"message": "not an email address"}`)
		sj := waitForState(t, ns, "bad-input", seekv1alpha1.JobStateFailed)
		if sj.Status.Error == nil || sj.Status.Error.Reason != seekv1alpha1.JobReasonWorkerError || *sj.Status.Error.ExitCode != protocol.ExitCodeNoRetry {
			t.Errorf("error = %+v, want WorkerError with exit code %d", sj.Status.Error, protocol.ExitCodeNoRetry)
		}
		if sj.Status.Attempts != 1 {
			t.Errorf("attempts = %d, want 1 (no retry)", sj.Status.Attempts)
		}
	})

	t.Run("retry then success", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Retries(2).Obj())
		mustCreate(t, testutil.MakeSeekJob("flaky", ns).Worker(w.Name).Obj())
		finishPod(t, waitForPod(t, ns, "flaky", 1), 1, "connection reset")
		finishPod(t, waitForPod(t, ns, "flaky", 2), 0, `"ok"`)
		sj := waitForState(t, ns, "flaky", seekv1alpha1.JobStateCompleted)
		if string(sj.Status.Result.Raw) != `"ok"` || sj.Status.Attempts != 2 {
			t.Errorf("status = result %s, attempts %d; want \"ok\", 2", sj.Status.Result.Raw, sj.Status.Attempts)
		}
	})

	t.Run("retries exhausted", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Retries(1).Obj())
		mustCreate(t, testutil.MakeSeekJob("doomed", ns).Worker(w.Name).Obj())
		finishPod(t, waitForPod(t, ns, "doomed", 1), 1, "first failure")
		finishPod(t, waitForPod(t, ns, "doomed", 2), 2, "second failure")
		sj := waitForState(t, ns, "doomed", seekv1alpha1.JobStateFailed)
		if sj.Status.Error.Reason != seekv1alpha1.JobReasonRetriesExhausted || sj.Status.Error.Message != "second failure" || *sj.Status.Error.ExitCode != 2 || sj.Status.Attempts != 2 {
			t.Errorf("status = %+v, error %+v", sj.Status, sj.Status.Error)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("slow", ns).Worker(w.Name).Timeout(2*time.Second).Obj())
		startPod(t, waitForPod(t, ns, "slow", 1)) // it never finishes: the controller stops it 2s after it started
		sj := waitForState(t, ns, "slow", seekv1alpha1.JobStateTimedOut)
		if sj.Status.Error == nil || sj.Status.Error.Reason != seekv1alpha1.JobReasonDeadlineExceeded {
			t.Errorf("error = %+v, want DeadlineExceeded", sj.Status.Error)
		}
	})

	t.Run("cancel running", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("unwanted", ns).Worker(w.Name).Obj())
		startPod(t, waitForPod(t, ns, "unwanted", 1))
		waitForState(t, ns, "unwanted", seekv1alpha1.JobStateRunning)
		requestCancel(t, ns, "unwanted", "changed my mind")
		sj := waitForState(t, ns, "unwanted", seekv1alpha1.JobStateCanceled)
		if sj.Status.Error == nil || !strings.Contains(sj.Status.Error.Message, "changed my mind") {
			t.Errorf("error = %+v", sj.Status.Error)
		}
		eventually(t, "Job and pods deleted", func(ctx context.Context) (bool, error) {
			jobs, err := jobsOf(ctx, ns)
			if err != nil {
				return false, err
			}
			pods, err := podsOf(ctx, ns, "unwanted")
			return len(jobs) == 0 && len(pods) == 0, fmt.Errorf("%d jobs, %d pods (%v)", len(jobs), len(pods), err)
		})
	})

	t.Run("cancel queued", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		mustCreate(t, testutil.MakeSeekJob("never", ns).Worker(uniqueName("absent")).Obj())
		waitForState(t, ns, "never", seekv1alpha1.JobStateQueued)
		requestCancel(t, ns, "never", "")
		sj := waitForState(t, ns, "never", seekv1alpha1.JobStateCanceled)
		started := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted)
		if started.Status != metav1.ConditionFalse || started.Reason != seekv1alpha1.JobReasonNeverStarted || sj.Status.JobName != "" {
			t.Errorf("status = %+v", sj.Status)
		}
	})

	t.Run("missing worker created later", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		name := uniqueName("late")
		mustCreate(t, testutil.MakeSeekJob("early", ns).Worker(name).Obj())
		sj := waitForState(t, ns, "early", seekv1alpha1.JobStateQueued)
		started := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted)
		if started == nil || started.Reason != seekv1alpha1.JobReasonWorkerNotFound || !strings.Contains(started.Message, name) {
			t.Errorf("Started condition = %+v, want WorkerNotFound naming %s", started, name)
		}
		readyWorker(t, testutil.MakeSeekWorker(name).Image("example.com/seek/echo:v1").Obj())
		finishPod(t, waitForPod(t, ns, "early", 1), 0, `{}`)
		waitForState(t, ns, "early", seekv1alpha1.JobStateCompleted)
	})

	t.Run("worker with invalid schema is not ready", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := testutil.MakeSeekWorker(uniqueName("broken")).Image("example.com/seek/echo:v1").InputSchema(`{"type": 12}`).Obj()
		mustCreate(t, w)
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), w) })
		eventually(t, "Ready=False", func(ctx context.Context) (bool, error) {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
				return false, err
			}
			c := meta.FindStatusCondition(w.Status.Conditions, seekv1alpha1.WorkerReady)
			return c != nil && c.Status == metav1.ConditionFalse && c.Reason == seekv1alpha1.WorkerReasonInvalidInputSchema, fmt.Errorf("%+v", c)
		})
		mustCreate(t, testutil.MakeSeekJob("waits", ns).Worker(w.Name).Obj())
		sj := waitForState(t, ns, "waits", seekv1alpha1.JobStateQueued)
		if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c.Reason != seekv1alpha1.JobReasonWorkerNotReady {
			t.Errorf("Started condition = %+v, want WorkerNotReady", c)
		}
	})

	t.Run("input checked against worker", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).MaxInputBytes(64).Timeouts(time.Minute, 5*time.Minute).
			InputSchema(`{"type":"object","properties":{"email":{"type":"string"}},"required":["email"]}`).Obj())
		cases := map[string]struct {
			job    *seekv1alpha1.SeekJob
			reason string
			text   string
		}{
			"schema": {testutil.MakeSeekJob("wrong-type", ns).Worker(w.Name).Input(`{"email": 42}`).Obj(), seekv1alpha1.JobReasonInvalidInput, "/email"},
			"size":   {testutil.MakeSeekJob("too-big", ns).Worker(w.Name).Input(`{"email": "` + strings.Repeat("a", 100) + `"}`).Obj(), seekv1alpha1.JobReasonInputTooLarge, "at most 64"},
			"timeout": {testutil.MakeSeekJob("too-long", ns).Worker(w.Name).Input(`{"email": "a@b.c"}`).Timeout(time.Hour).Obj(),
				seekv1alpha1.JobReasonInvalidTimeout, "exceeds the maximum"},
		}
		for name, tc := range cases {
			mustCreate(t, tc.job)
			sj := waitForState(t, ns, tc.job.Name, seekv1alpha1.JobStateFailed)
			if sj.Status.Error.Reason != tc.reason || !strings.Contains(sj.Status.Error.Message, tc.text) {
				t.Errorf("%s: error = %+v, want reason %s mentioning %q", name, sj.Status.Error, tc.reason, tc.text)
			}
		}
		jobs, err := jobsOf(context.Background(), ns)
		if err != nil || len(jobs) != 0 {
			t.Errorf("jobs = %d (%v), want none for rejected inputs", len(jobs), err)
		}
	})

	t.Run("foreign Job with our name", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Obj())
		foreign := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns},
			Spec: batchv1.JobSpec{
				Suspend: ptrTo(true),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "other", Image: "example.com/other:v1"}},
				}},
			},
		}
		mustCreate(t, foreign)
		mustCreate(t, testutil.MakeSeekJob("taken", ns).Worker(w.Name).Obj())
		sj := waitForState(t, ns, "taken", seekv1alpha1.JobStateFailed)
		if sj.Status.Error.Reason != seekv1alpha1.JobReasonJobNotOwned {
			t.Errorf("error = %+v, want JobNotOwned", sj.Status.Error)
		}
		got := &batchv1.Job{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(foreign), got); err != nil {
			t.Fatal(err)
		}
		if got.UID != foreign.UID || len(got.OwnerReferences) != 0 {
			t.Errorf("foreign Job was touched: %+v", got.ObjectMeta)
		}
	})

	t.Run("re-created with the same name", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Obj())
		first := testutil.MakeSeekJob("again", ns).Worker(w.Name).Obj()
		mustCreate(t, first)
		waitForPod(t, ns, "again", 1)
		// A finalizer keeps the first Job around after its SeekJob is gone, as a slow garbage collector would.
		hold := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":["seek-api.com/test-hold"]}}`))
		oldJob := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "again"}}
		if err := k8sClient.Patch(context.Background(), oldJob, hold); err != nil {
			t.Fatal(err)
		}
		if err := k8sClient.Delete(context.Background(), first); err != nil {
			t.Fatal(err)
		}
		eventually(t, "first SeekJob gone", func(ctx context.Context) (bool, error) {
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(first), &seekv1alpha1.SeekJob{})
			return apierrors.IsNotFound(err), err
		})
		second := testutil.MakeSeekJob("again", ns).Worker(w.Name).Input(`"second"`).Obj()
		mustCreate(t, second)
		sj := waitForState(t, ns, "again", seekv1alpha1.JobStateQueued)
		if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c.Reason != seekv1alpha1.JobReasonWaitingForPreviousJob {
			t.Errorf("Started condition = %+v, want WaitingForPreviousJob", c)
		}
		release := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
		if err := k8sClient.Patch(context.Background(), oldJob, release); err != nil {
			t.Fatal(err)
		}
		var pod *corev1.Pod
		eventually(t, "a pod of the second SeekJob", func(ctx context.Context) (bool, error) {
			pods, err := podsOf(ctx, ns, "again")
			for i := range pods {
				if pods[i].Labels[seekv1alpha1.LabelJobUID] == string(second.UID) {
					pod = &pods[i]
					return true, nil
				}
			}
			return false, err
		})
		finishPod(t, pod, 0, `"done"`)
		sj = waitForState(t, ns, "again", seekv1alpha1.JobStateCompleted)
		if sj.UID != second.UID || string(sj.Status.Result.Raw) != `"done"` {
			t.Errorf("second SeekJob = uid %s, result %s", sj.UID, sj.Status.Result.Raw)
		}
	})

	t.Run("retention deletes finished jobs", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("brief", ns).Worker(w.Name).TTL(2*time.Second).Obj())
		mustCreate(t, testutil.MakeSeekJob("kept", ns).Worker(w.Name).Obj())
		finishPod(t, waitForPod(t, ns, "brief", 1), 0, `1`)
		finishPod(t, waitForPod(t, ns, "kept", 1), 0, `2`)
		waitForState(t, ns, "kept", seekv1alpha1.JobStateCompleted)
		eventually(t, "expired SeekJob and its Job deleted", func(ctx context.Context) (bool, error) {
			err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "brief"}, &seekv1alpha1.SeekJob{})
			if !apierrors.IsNotFound(err) {
				return false, fmt.Errorf("SeekJob still there (%v)", err)
			}
			err = k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "brief"}, &batchv1.Job{})
			return apierrors.IsNotFound(err), fmt.Errorf("Job still there (%v)", err)
		})
		if err := k8sClient.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "kept"}, &seekv1alpha1.SeekJob{}); err != nil {
			t.Errorf("job within its 24h retention was deleted: %v", err)
		}
	})
}

func TestConcurrencyLimit(t *testing.T) {
	ns := newNamespace(t)
	w := readyWorker(t, echoWorker(t).MaxConcurrent(2).FinishedJobs(seekv1alpha1.FinishedJobsRetain).Obj())
	names := []string{"c1", "c2", "c3", "c4"}
	for i, name := range names {
		sj := testutil.MakeSeekJob(name, ns).Worker(w.Name).Obj()
		mustCreate(t, sj)
		if i < len(names)-1 {
			time.Sleep(1100 * time.Millisecond) // distinct creation timestamps: admission is oldest first
		}
	}
	waitForPod(t, ns, "c1", 1)
	waitForPod(t, ns, "c2", 1)
	for _, name := range names[2:] {
		sj := waitForState(t, ns, name, seekv1alpha1.JobStateQueued)
		if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c == nil || c.Reason != seekv1alpha1.JobReasonWaitingForCapacity {
			t.Errorf("%s Started condition = %+v, want WaitingForCapacity", name, c)
		}
	}
	assertActiveJobs(t, ns, 2)
	// c1 and c2 found free slots: they started at once, never said (or evented) that all slots were taken.
	events := &eventsv1.EventList{}
	if err := k8sClient.List(context.Background(), events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if (e.Regarding.Name == "c1" || e.Regarding.Name == "c2") && e.Reason == seekv1alpha1.JobReasonWaitingForCapacity {
			t.Errorf("%s, which had a free slot, got event %s: %s", e.Regarding.Name, e.Reason, e.Note)
		}
	}

	finishPod(t, waitForPod(t, ns, "c1", 1), 0, `{}`)
	waitForState(t, ns, "c1", seekv1alpha1.JobStateCompleted)
	waitForPod(t, ns, "c3", 1)
	assertActiveJobs(t, ns, 2)
	if sj := waitForState(t, ns, "c4", seekv1alpha1.JobStateQueued); sj.Status.JobName != "" {
		t.Errorf("c4 started early: %+v", sj.Status)
	}

	requestCancel(t, ns, "c4", "") // a canceled queued job frees nothing and never starts
	waitForState(t, ns, "c4", seekv1alpha1.JobStateCanceled)
	finishPod(t, waitForPod(t, ns, "c2", 1), 0, `{}`)
	finishPod(t, waitForPod(t, ns, "c3", 1), 0, `{}`)
	waitForState(t, ns, "c3", seekv1alpha1.JobStateCompleted)
	eventually(t, "all slots released", func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
			return false, err
		}
		return w.Status.ActiveJobCount == 0 && len(w.Status.ActiveJobs) == 0, fmt.Errorf("activeJobs %+v", w.Status.ActiveJobs)
	})
	jobs, _ := jobsOf(context.Background(), ns)
	if len(jobs) != 3 {
		t.Errorf("%d Jobs created, want 3 (c4 was canceled while queued)", len(jobs))
	}
}

// assertActiveJobs checks that exactly n Jobs of ns run a worker, and stay so for a moment. A Job
// whose worker container has exited does not count, though the Job controller may not have marked it
// finished yet: the SeekJob completes, and frees its slot, as soon as the worker exits with a result.
func assertActiveJobs(t *testing.T, ns string, n int) {
	t.Helper()
	for range 10 {
		jobs, err := jobsOf(context.Background(), ns)
		if err != nil {
			t.Fatal(err)
		}
		pods := &corev1.PodList{}
		if err := k8sClient.List(context.Background(), pods, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		exited := map[string]bool{} // Job name → its worker exited
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Terminated != nil {
					exited[p.Labels[batchv1.JobNameLabel]] = true
				}
			}
		}
		active := 0
		for i := range jobs {
			done := exited[jobs[i].Name]
			for _, c := range jobs[i].Status.Conditions {
				if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
					done = true
				}
			}
			if !done {
				active++
			}
		}
		if active != n {
			t.Fatalf("%d Jobs running a worker, want %d", active, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func requestCancel(t *testing.T, ns, name, reason string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"cancelRequest": map[string]any{"reason": reason}}})
	sj := &seekv1alpha1.SeekJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8sClient.Patch(context.Background(), sj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("cancel %s: %v", name, err)
	}
}

// waitForEvent waits for an events.k8s.io event about the SeekJob with the given reason.
func waitForEvent(t *testing.T, ns, name, reason string) *eventsv1.Event {
	t.Helper()
	var found *eventsv1.Event
	eventually(t, "event "+reason, func(ctx context.Context) (bool, error) {
		list := &eventsv1.EventList{}
		if err := k8sClient.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for i, e := range list.Items {
			if e.Regarding.Name == name && e.Reason == reason {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events", len(list.Items))
	})
	return found
}

func TestMetricsAndProbes(t *testing.T) {
	ns := newNamespace(t)
	w := readyWorker(t, echoWorker(t).Obj())
	rc := newReceiver(t, nil)
	mustCreate(t, testutil.MakeSeekJob("measured", ns).Worker(w.Name).Callback(rc.url()).Obj())
	finishPod(t, waitForPod(t, ns, "measured", 1), 0, `{}`)
	waitForState(t, ns, "measured", seekv1alpha1.JobStateCompleted)
	waitForCallback(t, ns, "measured", seekv1alpha1.CallbackDelivered)

	for _, path := range []string{"/healthz", "/readyz"} {
		eventually(t, path, func(ctx context.Context) (bool, error) {
			status, _, err := httpGet(ctx, "http://"+probeAddr+path)
			return status == http.StatusOK, fmt.Errorf("status %d: %v", status, err)
		})
	}
	want := []string{
		fmt.Sprintf(`seek_jobs{state="Completed",worker=%q} 1`, w.Name),
		fmt.Sprintf(`seek_jobs_finished_total{reason="",state="Completed",worker=%q} 1`, w.Name),
		fmt.Sprintf(`seek_job_execution_duration_seconds_count{state="Completed",worker=%q} 1`, w.Name),
		fmt.Sprintf(`seek_job_end_to_end_duration_seconds_count{state="Completed",worker=%q} 1`, w.Name),
		`controller_runtime_reconcile_total{controller="seekjob",result="success"}`,
		`seek_callback_attempts_total{outcome="delivered"}`,
		`seek_callback_attempt_duration_seconds_count`,
		`seek_callback_delivery_latency_seconds_count`,
		`controller_runtime_reconcile_total{controller="seekjob-callback",result="success"}`,
	}
	eventually(t, "metrics", func(ctx context.Context) (bool, error) {
		status, body, err := httpGet(ctx, "http://"+metricsAddr+"/metrics")
		if err != nil || status != http.StatusOK {
			return false, fmt.Errorf("status %d: %v", status, err)
		}
		for _, line := range want {
			if !strings.Contains(body, line) {
				return false, fmt.Errorf("no %q in /metrics", line)
			}
		}
		return true, nil
	})
}

func httpGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestManagerRestartMidJob(t *testing.T) {
	ns := newNamespace(t)
	w := readyWorker(t, echoWorker(t).FinishedJobs(seekv1alpha1.FinishedJobsRetain).Obj())
	mustCreate(t, testutil.MakeSeekJob("survivor", ns).Worker(w.Name).Obj())
	pod := waitForPod(t, ns, "survivor", 1)
	startPod(t, pod)
	before := waitForState(t, ns, "survivor", seekv1alpha1.JobStateRunning)

	mgrRun.stop()
	finishPod(t, pod, 0, `{"done": true}`) // the worker finishes while no manager runs
	restartManager(t)

	sj := waitForState(t, ns, "survivor", seekv1alpha1.JobStateCompleted)
	if string(sj.Status.Result.Raw) != `{"done":true}` || sj.Status.Attempts != 1 {
		t.Errorf("status after restart = %+v", sj.Status)
	}
	if !sj.Status.StartTime.Equal(before.Status.StartTime) {
		t.Errorf("startTime changed across restart: %v → %v", before.Status.StartTime, sj.Status.StartTime)
	}
	jobs, err := jobsOf(context.Background(), ns)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs = %d (%v), want exactly 1", len(jobs), err)
	}
	pods, _ := podsOf(context.Background(), ns, "survivor")
	if len(pods) != 1 {
		t.Errorf("pods = %d, want 1", len(pods))
	}
}
