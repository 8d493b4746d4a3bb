// Package reconnect makes informers reconnect to an apiserver that comes back at once, not after
// client-go's reflector back-off.
//
// A reflector whose list or watch finds the apiserver gone (connection refused) waits before it tries
// again, doubling the wait up to 30 s, and with its jitter of 100% up to 60 s: after an apiserver
// restart of 30 s an informer typically sees the apiserver again 10 to 50 s after it is back, and a
// controller does nothing meanwhile. The reflector's back-off cannot be configured through a shared
// informer; its ListerWatcher can. The ListerWatcher here tries again itself, every RetryInterval, as
// long as the apiserver refuses connections, so the reflector does not see those failures and does
// not back off: the informer is back within RetryInterval of the apiserver. A restarted apiserver
// serves before it is ready, answering 403 (its RBAC not loaded yet), 429 or 5xx for a while (20 s
// and more, measured on a loaded node): within StartingWindow of a refused connection those are
// tried again every RetryInterval too. Other errors (expired resource versions, a 403 when the
// apiserver was not away) reach the reflector as before.
package reconnect

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

const (
	// RetryInterval is how often a list or watch is tried again while the apiserver is away.
	RetryInterval = time.Second
	// StartingWindow is how long after a refused connection the errors of a starting apiserver are
	// tried again too.
	StartingWindow = 2 * time.Minute
)

// NewInformer is cache.NewSharedIndexInformer with a ListerWatcher that retries refused connections
// (see the package doc). It fits controller-runtime's cache.Options.NewInformer.
func NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(ListerWatcher(lw, RetryInterval), obj, resync, indexers)
}

// ListerWatcher wraps lw: a list or watch that fails because the apiserver refuses connections is
// tried again every interval until it gets through or fails otherwise, or its context ends.
func ListerWatcher(lw toolscache.ListerWatcher, interval time.Duration) interface {
	toolscache.ListerWatcher
	toolscache.ListerWatcherWithContext
} {
	return &patient{lw: toolscache.ToListerWatcherWithContext(lw), interval: interval, window: StartingWindow, now: time.Now}
}

type patient struct {
	lw       toolscache.ListerWatcherWithContext
	interval time.Duration
	window   time.Duration
	now      func() time.Time

	mu sync.Mutex
	// refused is when the apiserver last refused a connection.
	refused time.Time
}

func (p *patient) ListWithContext(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
	return retry(ctx, p.interval, p.away, func() (runtime.Object, error) { return p.lw.ListWithContext(ctx, options) })
}

func (p *patient) WatchWithContext(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
	return retry(ctx, p.interval, p.away, func() (watch.Interface, error) { return p.lw.WatchWithContext(ctx, options) })
}

// away reports whether err says the apiserver is away: it refuses connections, or, within the window
// of a refused connection, answers as a starting apiserver does.
func (p *patient) away(err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if utilnet.IsConnectionRefused(err) {
		p.refused = p.now()
		return true
	}
	starting := apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)
	return starting && !p.refused.IsZero() && p.now().Sub(p.refused) < p.window
}

// List and Watch make patient a ListerWatcher too, for code that calls those.
func (p *patient) List(options metav1.ListOptions) (runtime.Object, error) {
	return p.ListWithContext(context.Background(), options)
}

func (p *patient) Watch(options metav1.ListOptions) (watch.Interface, error) {
	return p.WatchWithContext(context.Background(), options)
}

// retry calls f until it does not fail with an error away accepts, waiting interval between calls,
// and returns its last result; when ctx ends meanwhile, the last error.
func retry[T any](ctx context.Context, interval time.Duration, away func(error) bool, f func() (T, error)) (T, error) {
	for {
		v, err := f()
		if err == nil || !away(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(interval):
		}
	}
}
