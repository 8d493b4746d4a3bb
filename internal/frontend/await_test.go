package frontend

import (
	"testing"
	"time"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestFinishNotifier(t *testing.T) {
	n := newFinishNotifier()
	a, stopA := n.wait("a")
	defer stopA()
	a2, stopA2 := n.wait("a")
	defer stopA2()
	b, stopB := n.wait("b")

	running := testutil.MakeSeekJob("a", "ns").Obj()
	running.UID = "a"
	running.Status.State = seekv1alpha1.JobStateRunning
	n.observe(running)
	if closed(a) || closed(a2) {
		t.Fatal("a waiter was woken by a job that has not finished")
	}
	done := running.DeepCopy()
	done.Status.State = seekv1alpha1.JobStateCompleted
	n.handler().OnUpdate(running, done)
	if !closed(a) || !closed(a2) {
		t.Error("the waiters of a finished job were not woken")
	}
	if closed(b) {
		t.Error("the waiter of another job was woken")
	}
	stopB()
	n.observe(done) // nothing waits any more: must not panic on a closed channel
	if got := len(n.waiters); got != 0 {
		t.Errorf("%d waiter lists left, want 0", got)
	}
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(10 * time.Millisecond):
		return false
	}
}
