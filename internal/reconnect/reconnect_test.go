package reconnect

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// refused is the error a client gets from an apiserver that is not listening.
var refused = &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}

// failing is a ListerWatcher whose first calls fail with errs, in order; then it succeeds.
type failing struct {
	errs  []error
	calls int
}

func (f *failing) next() error {
	f.calls++
	if f.calls <= len(f.errs) {
		return f.errs[f.calls-1]
	}
	return nil
}

func (f *failing) List(metav1.ListOptions) (runtime.Object, error) {
	if err := f.next(); err != nil {
		return nil, err
	}
	return &corev1.PodList{}, nil
}

func (f *failing) Watch(metav1.ListOptions) (watch.Interface, error) {
	if err := f.next(); err != nil {
		return nil, err
	}
	return watch.NewEmptyWatch(), nil
}

func TestListerWatcher(t *testing.T) {
	gone := apierrors.NewResourceExpired("too old")
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("RBAC: not loaded"))
	unavailable := apierrors.NewServiceUnavailable("starting")
	for _, tc := range []struct {
		name      string
		errs      []error
		wantErr   error
		wantCalls int
	}{
		{"succeeds at once", nil, nil, 1},
		{"retries refused connections", []error{refused, refused, refused}, nil, 4},
		{"returns other errors at once", []error{gone, refused}, gone, 1},
		{"returns an error after refused ones", []error{refused, gone}, gone, 2},
		{"retries a starting apiserver's 403 and 503 after a refused connection", []error{refused, forbidden, unavailable}, nil, 4},
		{"returns a 403 at once when the apiserver was not away", []error{forbidden}, forbidden, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, call := range []struct {
				op string
				do func(lw toolscache.ListerWatcherWithContext) error
			}{
				{"list", func(lw toolscache.ListerWatcherWithContext) error {
					_, err := lw.ListWithContext(t.Context(), metav1.ListOptions{})
					return err
				}},
				{"watch", func(lw toolscache.ListerWatcherWithContext) error {
					w, err := lw.WatchWithContext(t.Context(), metav1.ListOptions{})
					if w != nil {
						w.Stop()
					}
					return err
				}},
			} {
				f := &failing{errs: tc.errs}
				err := call.do(ListerWatcher(f, time.Millisecond))
				if !errors.Is(err, tc.wantErr) && !(tc.wantErr != nil && err != nil && apierrors.ReasonForError(err) == apierrors.ReasonForError(tc.wantErr)) {
					t.Errorf("%s: error = %v, want %v", call.op, err, tc.wantErr)
				}
				if f.calls != tc.wantCalls {
					t.Errorf("%s: %d calls, want %d", call.op, f.calls, tc.wantCalls)
				}
			}
		})
	}
}

func TestListerWatcherStopsWithItsContext(t *testing.T) {
	f := &failing{errs: make([]error, 1000)}
	for i := range f.errs {
		f.errs[i] = refused
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ListerWatcher(f, 10*time.Millisecond).ListWithContext(ctx, metav1.ListOptions{})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error = %v, want the refused connection", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned %v after its context ended", d)
	}
	if f.calls < 2 || f.calls > 10 {
		t.Errorf("%d calls in 50 ms at one per 10 ms", f.calls)
	}
}

// TestInformer: an informer whose apiserver refuses connections eight times in a row syncs within the
// retry interval of its return, not after the reflector's back-off (0.8 s doubled seven times).
func TestInformer(t *testing.T) {
	f := &failing{errs: []error{refused, refused, refused, refused, refused, refused, refused, refused}}
	inf := toolscache.NewSharedIndexInformer(ListerWatcher(f, 10*time.Millisecond), &corev1.Pod{}, 0, toolscache.Indexers{})
	go inf.RunWithContext(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("not synced 5 s after the apiserver's return")
	}
}

// TestStartingWindow: a starting apiserver's errors are retried only within the window of a refused
// connection.
func TestStartingWindow(t *testing.T) {
	now := time.Now()
	p := &patient{window: time.Minute, now: func() time.Time { return now }}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("denied"))
	if p.away(forbidden) {
		t.Error("a 403 before any refused connection counts as away")
	}
	if !p.away(refused) {
		t.Error("a refused connection does not count as away")
	}
	now = now.Add(59 * time.Second)
	if !p.away(forbidden) {
		t.Error("a 403 59 s after a refused connection does not count as away")
	}
	now = now.Add(2 * time.Second)
	if p.away(forbidden) {
		t.Error("a 403 61 s after a refused connection counts as away")
	}
	if p.away(apierrors.NewResourceExpired("too old")) {
		t.Error("410 Gone counts as away")
	}
}
