package frontend

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestFinishWaiters(t *testing.T) {
	f := newFinishWaiters()
	key := types.NamespacedName{Namespace: "tenant-a", Name: "j"}
	ch, unsubscribe := f.subscribe(key)
	other, unsubscribeOther := f.subscribe(types.NamespacedName{Namespace: "tenant-b", Name: "j"})
	defer unsubscribeOther()
	woken := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	f.notify(testutil.MakeSeekJob("j", "tenant-a").State(seekv1alpha1.JobStateRunning).Obj())
	if woken(ch) {
		t.Error("woken by a job still running")
	}
	done := testutil.MakeSeekJob("j", "tenant-a").State(seekv1alpha1.JobStateCompleted).Obj()
	f.handler().OnUpdate(nil, done)
	f.handler().OnAdd(done, false) // twice: the second wake-up is dropped, not blocking
	if !woken(ch) || woken(other) {
		t.Error("the finished job woke the wrong waiters")
	}
	unsubscribe()
	f.notify(done)
	if woken(ch) || len(f.waiters) != 1 {
		t.Errorf("woken after unsubscribing; %d keys left, want 1", len(f.waiters))
	}
}

// TestAwaitFinishedWokenByInformer: a Prefer: wait answers when the informer sees the job finish, not
// at the next poll (a second with the informer's wake-ups).
func TestAwaitFinishedWokenByInformer(t *testing.T) {
	f := newFixture(t, nil, testutil.MakeSeekJob("j", "tenant-a").Worker("email-validator").UID("u1").Obj())
	s := &Server{Client: f.client, finished: newFinishWaiters()}
	sj := &seekv1alpha1.SeekJob{}
	if err := f.client.Get(context.Background(), client.ObjectKey{Namespace: "tenant-a", Name: "j"}, sj); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		done := sj.DeepCopy()
		done.Status.State = seekv1alpha1.JobStateCompleted
		if err := f.client.Update(context.Background(), done); err != nil {
			t.Error(err)
		}
		s.finished.notify(done)
	}()
	start := time.Now()
	got := s.awaitFinished(context.Background(), sj, 5*time.Second)
	if got == nil || got.Status.State != seekv1alpha1.JobStateCompleted {
		t.Fatalf("awaitFinished = %v, want the completed job", got)
	}
	if d := time.Since(start); d > awaitPollBackup/2 {
		t.Errorf("answered after %s: not woken by the informer", d)
	}
	// A job that does not finish: nil once the wait is over.
	start = time.Now()
	other := testutil.MakeSeekJob("never", "tenant-a").UID("u2").Obj()
	if got := s.awaitFinished(context.Background(), other, 200*time.Millisecond); got != nil || time.Since(start) > time.Second {
		t.Errorf("awaitFinished of a job that does not finish = %v after %s", got, time.Since(start))
	}
}
