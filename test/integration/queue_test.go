package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

// assertQueueTimedOut checks a job that ran out of queue time: Failed with reason QueueTimeout and a
// message containing each of want, never started, no Job created.
func assertQueueTimedOut(t *testing.T, sj *seekv1alpha1.SeekJob, want ...string) {
	t.Helper()
	if sj.Status.Error == nil || sj.Status.Error.Reason != seekv1alpha1.JobReasonQueueTimeout {
		t.Fatalf("status.error = %+v, want reason QueueTimeout", sj.Status.Error)
	}
	for _, w := range want {
		if !strings.Contains(sj.Status.Error.Message, w) {
			t.Errorf("status.error.message = %q, want it to contain %q", sj.Status.Error.Message, w)
		}
	}
	finished := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobFinished)
	started := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted)
	if finished == nil || finished.Reason != seekv1alpha1.JobReasonQueueTimeout || started == nil || started.Reason != seekv1alpha1.JobReasonNeverStarted {
		t.Errorf("conditions = %+v, want Finished QueueTimeout and Started NeverStarted", sj.Status.Conditions)
	}
	if sj.Status.JobName != "" || sj.Status.StartTime != nil || sj.Status.Attempts != 0 {
		t.Errorf("status = %+v, want a job that never started", sj.Status)
	}
	jobs, err := jobsOf(context.Background(), sj.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Name == sj.Name {
			t.Errorf("Job %s exists, want none", j.Name)
		}
	}
}

// TestQueueTimeout runs queued jobs out of queue time against the manager: each ends Failed with reason
// QueueTimeout and a message naming the cause, without a Job, and frees nothing it did not hold.
func TestQueueTimeout(t *testing.T) {
	t.Run("missing worker, the job's queue timeout", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		worker := uniqueName("absent")
		mustCreate(t, testutil.MakeSeekJob("lost", ns).Worker(worker).QueueTimeout(2*time.Second).Obj())
		sj := waitForState(t, ns, "lost", seekv1alpha1.JobStateFailed)
		// Counted from creationTimestamp, which has whole seconds.
		if waited := sj.Status.CompletionTime.Sub(sj.CreationTimestamp.Time); waited < 2*time.Second {
			t.Errorf("failed %v after creation, before its queue timeout of 2s", waited)
		}
		assertQueueTimedOut(t, sj, "queue timeout of 2s (spec.queueTimeout)", fmt.Sprintf("SeekWorker %q does not exist", worker))
		waitForEvent(t, ns, "lost", seekv1alpha1.JobReasonQueueTimeout)
	})

	t.Run("missing worker, the manager's default", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		worker := uniqueName("absent")
		mustCreate(t, testutil.MakeSeekJob("typo", ns).Worker(worker).Obj())
		sj := waitForState(t, ns, "typo", seekv1alpha1.JobStateQueued)
		if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c == nil || c.Reason != seekv1alpha1.JobReasonWorkerNotFound {
			t.Fatalf("Started condition = %+v, want WorkerNotFound", c)
		}
		sj = waitForState(t, ns, "typo", seekv1alpha1.JobStateFailed)
		if waited := sj.Status.CompletionTime.Sub(sj.CreationTimestamp.Time); waited < suiteDefaultQueueTimeout {
			t.Errorf("failed %v after creation, before the manager's default of %v", waited, suiteDefaultQueueTimeout)
		}
		assertQueueTimedOut(t, sj, fmt.Sprintf("queue timeout of %s (the manager's --default-queue-timeout", suiteDefaultQueueTimeout),
			fmt.Sprintf("SeekWorker %q does not exist", worker))
	})

	t.Run("waiting for capacity, the worker's queue timeout", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).MaxConcurrent(1).QueueTimeout(time.Hour).Obj())
		mustCreate(t, testutil.MakeSeekJob("first", ns).Worker(w.Name).Obj())
		firstPod := waitForPod(t, ns, "first", 1)
		startPod(t, firstPod)
		mustCreate(t, testutil.MakeSeekJob("second", ns).Worker(w.Name).Obj())
		sj := waitForState(t, ns, "second", seekv1alpha1.JobStateQueued)
		if c := meta.FindStatusCondition(sj.Status.Conditions, seekv1alpha1.JobStarted); c == nil || c.Reason != seekv1alpha1.JobReasonWaitingForCapacity {
			t.Fatalf("Started condition = %+v, want WaitingForCapacity", c)
		}

		// Lowering the worker's queue timeout applies to the job already waiting (it would otherwise
		// wait the hour it was given).
		patch := []byte(`{"spec":{"timeouts":{"queueTimeout":"3s"}}}`)
		if err := k8sClient.Patch(context.Background(), w, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatal(err)
		}
		sj = waitForState(t, ns, "second", seekv1alpha1.JobStateFailed)
		assertQueueTimedOut(t, sj, fmt.Sprintf("queue timeout of 3s (timeouts.queueTimeout of SeekWorker %q)", w.Name),
			fmt.Sprintf("All 1 slots of SeekWorker %q are in use", w.Name))
		if first := waitForState(t, ns, "first", seekv1alpha1.JobStateRunning); first.Status.Error != nil {
			t.Errorf("first = %+v, want it running on", first.Status)
		}

		// The timed-out job never held the slot: once the first job finishes, the next one starts.
		finishPod(t, firstPod, 0, `{}`)
		waitForState(t, ns, "first", seekv1alpha1.JobStateCompleted)
		mustCreate(t, testutil.MakeSeekJob("third", ns).Worker(w.Name).Obj())
		finishPod(t, waitForPod(t, ns, "third", 1), 0, `{}`)
		waitForState(t, ns, "third", seekv1alpha1.JobStateCompleted)
		eventually(t, "no slot held", func(ctx context.Context) (bool, error) {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(w), w); err != nil {
				return false, err
			}
			return len(w.Status.ActiveJobs) == 0, fmt.Errorf("activeJobs %+v", w.Status.ActiveJobs)
		})
	})

	t.Run("a job that starts in time is not affected", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		w := readyWorker(t, echoWorker(t).QueueTimeout(2*time.Second).Obj())
		mustCreate(t, testutil.MakeSeekJob("quick", ns).Worker(w.Name).Obj())
		pod := waitForPod(t, ns, "quick", 1)
		startPod(t, pod)
		time.Sleep(3 * time.Second) // past its queue timeout, running
		finishPod(t, pod, 0, `{"ok":true}`)
		if sj := waitForState(t, ns, "quick", seekv1alpha1.JobStateCompleted); sj.Status.Error != nil {
			t.Errorf("status = %+v", sj.Status)
		}
	})
}

// TestRetentionOfJobsThatNeverStarted: a finished job whose callback asks only for Started, an event
// that never happens when the job ends before it starts, is still deleted when its retention passes.
func TestRetentionOfJobsThatNeverStarted(t *testing.T) {
	cases := map[string]*testutil.SeekJobWrapper{
		"queue timeout":         testutil.MakeSeekJob("timed-out", "").QueueTimeout(time.Second),
		"canceled while queued": testutil.MakeSeekJob("canceled", "").Cancel("not needed"),
	}
	for name, job := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			rc := newReceiver(t, nil)
			sj := job.Clone().Worker(uniqueName("absent")).TTL(time.Second).Callback(rc.url(), seekv1alpha1.CallbackEventStarted).Obj()
			sj.Namespace = ns
			mustCreate(t, sj)
			eventually(t, "SeekJob finished and deleted", func(ctx context.Context) (bool, error) {
				got := &seekv1alpha1.SeekJob{}
				err := k8sClient.Get(ctx, client.ObjectKeyFromObject(sj), got)
				if apierrors.IsNotFound(err) {
					return true, nil
				}
				if err != nil {
					return false, err
				}
				return false, fmt.Errorf("still there: state %q, completed %v, callback %+v", got.Status.State, got.Status.CompletionTime, got.Status.Callback)
			})
			if calls := rc.received(); len(calls) != 0 {
				t.Errorf("receiver got %d calls, want none (the job never started)", len(calls))
			}
		})
	}
}

// TestQueueTimeoutValidation checks the API's bounds and immutability of the queue timeouts.
func TestQueueTimeoutValidation(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()

	for _, tc := range []struct {
		value   string
		wantErr string
	}{
		{"1s", ""},
		{"720h", ""},
		{"500ms", "queueTimeout must be between 1s and 720h"},
		{"721h", "queueTimeout must be between 1s and 720h"},
		{"soon", "queueTimeout"},
	} {
		sj := object(t, jobHead+"spec:\n  workerName: nonexistent-worker\n  queueTimeout: "+tc.value+"\n", ns)
		err := k8sClient.Create(ctx, sj)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("SeekJob queueTimeout %s rejected: %v", tc.value, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("SeekJob queueTimeout %s: error = %v, want one containing %q", tc.value, err, tc.wantErr)
		}

		w := object(t, workerHead+"spec:\n  image: example.com/w:v1\n  timeouts: {queueTimeout: "+tc.value+"}\n", "")
		err = k8sClient.Create(ctx, w)
		if err == nil {
			_ = k8sClient.Delete(ctx, w)
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("SeekWorker queueTimeout %s rejected: %v", tc.value, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("SeekWorker queueTimeout %s: error = %v, want one containing %q", tc.value, err, tc.wantErr)
		}
	}

	t.Run("worker default", func(t *testing.T) {
		w := testutil.MakeSeekWorker(uniqueName("q")).Obj()
		mustCreate(t, w)
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), w) })
		if got := w.Spec.Timeouts.QueueTimeout; got == nil || got.Duration != seekv1alpha1.DefaultQueueTimeout {
			t.Errorf("timeouts.queueTimeout = %v, want the default %v", got, seekv1alpha1.DefaultQueueTimeout)
		}
	})

	t.Run("immutable", func(t *testing.T) {
		for patch, wantErr := range map[string]string{
			`{"spec":{"queueTimeout":"2m"}}`: "queueTimeout is immutable",
			`{"spec":{"queueTimeout":null}}`: "queueTimeout cannot be added or removed after creation",
		} {
			sj := testutil.MakeSeekJob(uniqueName("q"), ns).Worker("nonexistent-worker").QueueTimeout(time.Minute).Obj()
			mustCreate(t, sj)
			err := k8sClient.Patch(ctx, sj, client.RawPatch(types.MergePatchType, []byte(patch)))
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("patch %s: error = %v, want one containing %q", patch, err, wantErr)
			}
		}
		sj := testutil.MakeSeekJob(uniqueName("q"), ns).Worker("nonexistent-worker").Obj()
		mustCreate(t, sj)
		err := k8sClient.Patch(ctx, sj, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"queueTimeout":"1m"}}`)))
		if want := "queueTimeout cannot be added or removed after creation"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("adding queueTimeout: error = %v, want one containing %q", err, want)
		}
	})
}
