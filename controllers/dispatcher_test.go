package controllers

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

func TestTransitionRecorderPooled(t *testing.T) {
	queued := testutil.MakeSeekJob("job", "tenant").Worker("echo").UID("job-uid").Created(t0).Obj()
	leased := runningPooledJob(1)
	completed := leased.DeepCopy()
	finish(completed, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, "The worker returned a result", nil, reportTime)
	failed := leased.DeepCopy()
	fail(failed, seekv1alpha1.JobReasonInvalidResult, "not JSON", reportTime)
	jobMode := testutil.MakeSeekJob("job", "tenant").Worker("echo").UID("job-uid").Created(t0).JobName("job").Obj()
	jobModeDone := jobMode.DeepCopy()
	finish(jobModeDone, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, "The worker returned a result", nil, reportTime)

	cases := []struct {
		name          string
		before, after *seekv1alpha1.SeekJob
		want          []string
	}{
		{name: "a pooled job leased: none", before: queued, after: leased},
		{name: "a pooled job completed: no Normal event", before: leased, after: completed},
		{name: "a pooled job failed: the Warning stays", before: leased, after: failed,
			want: []string{corev1.EventTypeWarning + " " + seekv1alpha1.JobReasonInvalidResult + " not JSON"}},
		{name: "a Job-mode job completed: the Normal event stays", before: jobMode, after: jobModeDone,
			want: []string{corev1.EventTypeNormal + " " + seekv1alpha1.JobReasonSucceeded + " The worker returned a result"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := events.NewFakeRecorder(10)
			transitionRecorder{Recorder: rec}.record(context.Background(), tc.before, tc.after)
			close(rec.Events)
			var got []string
			for e := range rec.Events {
				got = append(got, e)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobOfPod(t *testing.T) {
	labeled := testutil.MakePod("p", "ns").Label(batchv1.JobNameLabel, "seek-pool-echo-1").Obj()
	owned := testutil.MakePod("p", "ns").Obj()
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "seek-pool-echo-2", Controller: func() *bool { b := true; return &b }()}}
	for _, tc := range []struct {
		pod  *corev1.Pod
		want string
	}{{labeled, "seek-pool-echo-1"}, {owned, "seek-pool-echo-2"}, {testutil.MakePod("p", "ns").Obj(), ""}} {
		if got := jobOfPod(tc.pod); got != tc.want {
			t.Errorf("jobOfPod = %q, want %q", got, tc.want)
		}
	}
}

// TestUpdateJobConfirmsRefusal: a job the cache shows the caller may not change (the cache lags behind
// another writer, here the job's cancel) is read again from the apiserver before the caller is refused.
func TestUpdateJobConfirmsRefusal(t *testing.T) {
	running := runningPooledJob(1)
	canceled := running.DeepCopy()
	canceled.Status.State = seekv1alpha1.JobStateCanceled
	isCanceled := func(sj *seekv1alpha1.SeekJob) bool { return sj.Status.State == seekv1alpha1.JobStateCanceled }
	key := types.NamespacedName{Namespace: "tenant", Name: "job"}

	cases := []struct {
		name             string
		cache, apiserver *seekv1alpha1.SeekJob
		want             bool
	}{
		{name: "the cache lags: the apiserver's answer counts", cache: running, apiserver: canceled, want: true},
		{name: "both refuse", cache: running, apiserver: running, want: false},
		{name: "the cache allows it: no second read", cache: canceled, apiserver: running, want: true},
		{name: "not in the cache yet", apiserver: canceled, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := func(sj *seekv1alpha1.SeekJob) []client.Object {
				if sj == nil {
					return nil
				}
				return []client.Object{sj.DeepCopy()}
			}
			d := &Dispatcher{
				Client:    fake.NewClientBuilder().WithScheme(newTestScheme(t)).WithObjects(objs(tc.cache)...).Build(),
				APIReader: fake.NewClientBuilder().WithScheme(newTestScheme(t)).WithObjects(objs(tc.apiserver)...).Build(),
				Clock:     clocktesting.NewFakePassiveClock(t0),
				state:     newDispatchState(),
			}
			got, err := d.updateJob(context.Background(), "tenant", key, isCanceled,
				func(*seekv1alpha1.SeekJob, *seekv1alpha1.SeekWorker, time.Time) bool { return false })
			if err != nil || got != tc.want {
				t.Errorf("updateJob: %t, %v; want %t, nil", got, err, tc.want)
			}
		})
	}
}

// TestReleaseLostAfterLeaderChange: the last leader leased job a to a pod as it stopped, and the answer
// never reached the pod's runner, which asked this dispatcher for a job; its informer shows that lease
// only after the call found the pod holding nothing, before or after this dispatcher leased the pod
// job b. Once b is done, the pod's next lease call releases a, which runs again, rather than staying
// running until its timeout.
func TestReleaseLostAfterLeaderChange(t *testing.T) {
	pod := testutil.MakePod("pool-pod", "tenant").UID("pod-uid").Obj()
	leasedTo := func(name string, rv int, at time.Time) *seekv1alpha1.SeekJob {
		sj := testutil.MakeSeekJob(name, "tenant").Worker("echo").UID(name + "-uid").Created(t0).Obj()
		setLeased(sj, "pool-1", pod, at)
		sj.ResourceVersion = strconv.Itoa(rv)
		return sj
	}
	lost, current := leasedTo("a", 10, t0), leasedTo("b", 20, t0.Add(2*time.Second))
	for _, tc := range []struct {
		name     string
		observed []*seekv1alpha1.SeekJob
	}{
		{name: "a shown before b was leased", observed: []*seekv1alpha1.SeekJob{lost, current}},
		{name: "a shown after b was leased", observed: []*seekv1alpha1.SeekJob{current, lost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(newTestScheme(t)).WithStatusSubresource(&seekv1alpha1.SeekJob{}).
				WithObjects(lost.DeepCopy(), current.DeepCopy()).Build()
			d := &Dispatcher{Client: c, APIReader: c, Clock: clocktesting.NewFakePassiveClock(t0.Add(time.Minute)), state: newDispatchState(),
				Recorder: transitionRecorder{Recorder: events.NewFakeRecorder(10)}}
			for _, sj := range tc.observed {
				d.state.observe(sj)
			}
			if diff := cmp.Diff([]string{"a", "b"}, names(d.state.heldBy("pod-uid"))); diff != "" {
				t.Fatalf("heldBy (-want +got):\n%s", diff)
			}
			d.state.observe(version(current, 21, func(sj *seekv1alpha1.SeekJob) { // b's report
				finish(sj, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, "done", nil, t0.Add(3*time.Second))
			}))
			if err := d.releaseLost(context.Background(), &caller{namespace: "tenant", worker: "echo", pod: pod}); err != nil {
				t.Fatal(err)
			}
			got := &seekv1alpha1.SeekJob{}
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(lost), got); err != nil {
				t.Fatal(err)
			}
			if got.Status.Pool.PodUID != "" || got.Status.Attempts != 0 || got.Status.State.IsTerminal() {
				t.Errorf("the lost attempt: pod %q, attempts %d, state %s; want released (no pod, 0 attempts, not finished)",
					got.Status.Pool.PodUID, got.Status.Attempts, got.Status.State)
			}
			if held := d.state.heldBy("pod-uid"); len(held) != 0 {
				t.Errorf("still held after the release: %v", held)
			}
			if diff := cmp.Diff([]string{"a"}, names(d.state.queued(poolKey("tenant", "echo")))); diff != "" {
				t.Errorf("queue after the release (-want +got):\n%s", diff)
			}
		})
	}
}

// leasedJob is job name of the tenant leased to the pod with the given UID (attempt 1), at
// resourceVersion rv.
func leasedJob(name, podUID string, rv int) *seekv1alpha1.SeekJob {
	sj := testutil.MakeSeekJob(name, "tenant").Worker("echo").UID(name + "-uid").Created(t0).Obj()
	setLeased(sj, "pool-1", testutil.MakePod("pod-"+podUID, "tenant").UID(podUID).Obj(), t0)
	sj.ResourceVersion = strconv.Itoa(rv)
	return sj
}

// TestReleaseSilent: an attempt whose pod has said nothing of it for dispatch.SilenceLimit is released
// (not counted) and queued again; one whose pod heartbeats is left alone; one the dispatcher's view
// shows held but the apiserver shows finished (the informer lags) is not written, and the dispatcher
// learns that it finished.
func TestReleaseSilent(t *testing.T) {
	silent, talking := leasedJob("silent", "pod-a", 10), leasedJob("talking", "pod-b", 11)
	done := leasedJob("done", "pod-c", 12)
	doneNow := version(done, 13, func(sj *seekv1alpha1.SeekJob) {
		finish(sj, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, "done", nil, t0)
	})
	apiserver := fake.NewClientBuilder().WithScheme(newTestScheme(t)).WithStatusSubresource(&seekv1alpha1.SeekJob{}).
		WithObjects(silent.DeepCopy(), talking.DeepCopy(), doneNow.DeepCopy()).Build()
	clock := clocktesting.NewFakePassiveClock(t0)
	d := &Dispatcher{Client: apiserver, APIReader: apiserver, Clock: clock, Recorder: transitionRecorder{Recorder: events.NewFakeRecorder(10)}}
	d.init()
	for _, sj := range []*seekv1alpha1.SeekJob{silent, talking, done} {
		d.state.observe(sj)
	}

	clock.SetTime(t0.Add(dispatch.SilenceLimit - time.Second))
	d.state.touch(talking.UID, "pod-b", 1)
	d.releaseSilent(context.Background())
	if diff := cmp.Diff([]string{"silent"}, names(d.state.heldBy("pod-a"))); diff != "" {
		t.Fatalf("released before its time (-want +got):\n%s", diff)
	}

	clock.SetTime(t0.Add(dispatch.SilenceLimit))
	d.releaseSilent(context.Background())
	got := &seekv1alpha1.SeekJob{}
	if err := apiserver.Get(context.Background(), client.ObjectKeyFromObject(silent), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Pool.PodUID != "" || got.Status.Attempts != 0 || got.Status.State.IsTerminal() {
		t.Errorf("silent attempt: pod %q, attempts %d, state %s; want released (no pod, 0 attempts, not finished)",
			got.Status.Pool.PodUID, got.Status.Attempts, got.Status.State)
	}
	if diff := cmp.Diff([]string{"silent"}, names(d.state.queued(poolKey("tenant", "echo")))); diff != "" {
		t.Errorf("queue (-want +got):\n%s", diff)
	}
	if err := apiserver.Get(context.Background(), client.ObjectKeyFromObject(talking), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Pool.PodUID != "pod-b" || got.Status.Attempts != 1 {
		t.Errorf("talking attempt changed: pod %q, attempts %d", got.Status.Pool.PodUID, got.Status.Attempts)
	}
	if held := d.state.heldBy("pod-c"); len(held) != 0 {
		t.Errorf("the finished job is still held: %v", held)
	}
	if err := apiserver.Get(context.Background(), client.ObjectKeyFromObject(done), got); err != nil || got.Status.State != seekv1alpha1.JobStateCompleted {
		t.Errorf("the finished job: %v, state %s; want Completed", err, got.Status.State)
	}
}

// TestHeartbeatConfirmsStop: a heartbeat the dispatcher's view would stop (the informer lags behind
// the attempt's lease, written by another leader) goes on when the apiserver shows the pod holding the
// attempt, and stops when it does not.
func TestHeartbeatConfirmsStop(t *testing.T) {
	queued := queuedJob("tenant", "job", t0, 10)
	queued.Spec.WorkerName = "echo"
	pod := testutil.MakePod("pool-pod", "tenant").UID("pod-uid").Obj()
	leased := version(queued, 12, func(sj *seekv1alpha1.SeekJob) { setLeased(sj, "pool-1", pod, t0) })
	otherPod := version(queued, 12, func(sj *seekv1alpha1.SeekJob) {
		setLeased(sj, "pool-1", testutil.MakePod("other", "tenant").UID("other-uid").Obj(), t0)
	})
	for _, tc := range []struct {
		name      string
		apiserver *seekv1alpha1.SeekJob
		wantStop  bool
	}{
		{name: "the apiserver shows the lease", apiserver: leased, wantStop: false},
		{name: "the apiserver shows another pod's lease", apiserver: otherPod, wantStop: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scheme := newTestScheme(t)
			d := &Dispatcher{
				Client:    fake.NewClientBuilder().WithScheme(scheme).WithObjects(queued.DeepCopy()).Build(),
				APIReader: fake.NewClientBuilder().WithScheme(scheme).WithObjects(tc.apiserver.DeepCopy()).Build(),
				Clock:     clocktesting.NewFakePassiveClock(t0),
			}
			d.init()
			d.state.observe(queued)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			body := []byte(`{"namespace":"tenant","name":"job","uid":"` + string(queued.UID) + `","attempt":1}`)
			got, err := d.heartbeat(ctx, &caller{namespace: "tenant", worker: "echo", pod: pod}, body)
			if err != nil {
				t.Fatal(err)
			}
			if stop := got.(dispatch.HeartbeatResponse).Stop; stop != tc.wantStop {
				t.Errorf("heartbeat: stop %t, want %t", stop, tc.wantStop)
			}
		})
	}
}
