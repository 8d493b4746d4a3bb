// Package reconnect makes informers reconnect to an apiserver that comes back at once, not after
// client-go's reflector back-off.
//
// A reflector whose list or watch finds the apiserver gone (connection refused) waits before it tries
// again, doubling the wait up to 30 s, and with its jitter of 100% up to 60 s: after an apiserver
// restart of 30 s an informer typically sees the apiserver again 10 to 50 s after it is back, and a
// controller does nothing meanwhile. The reflector's back-off cannot be configured through a shared
// informer; its ListerWatcher can. The ListerWatcher here tries again itself, every RetryInterval, as
// long as the apiserver refuses connections, so the reflector does not see those failures and does
// not back off: the informer is back within RetryInterval of the apiserver. Other errors (429, 5xx,
// expired resource versions) reach the reflector as before.
package reconnect

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// RetryInterval is how often a list or watch is tried again while the apiserver refuses connections.
const RetryInterval = time.Second

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
	return &patient{lw: toolscache.ToListerWatcherWithContext(lw), interval: interval}
}

type patient struct {
	lw       toolscache.ListerWatcherWithContext
	interval time.Duration
}

func (p *patient) ListWithContext(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
	return retry(ctx, p.interval, func() (runtime.Object, error) { return p.lw.ListWithContext(ctx, options) })
}

func (p *patient) WatchWithContext(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
	return retry(ctx, p.interval, func() (watch.Interface, error) { return p.lw.WatchWithContext(ctx, options) })
}

// List and Watch make patient a ListerWatcher too, for code that calls those.
func (p *patient) List(options metav1.ListOptions) (runtime.Object, error) {
	return p.ListWithContext(context.Background(), options)
}

func (p *patient) Watch(options metav1.ListOptions) (watch.Interface, error) {
	return p.WatchWithContext(context.Background(), options)
}

// retry calls f until it does not fail with a refused connection, waiting interval between calls,
// and returns its last result; when ctx ends meanwhile, the last error.
func retry[T any](ctx context.Context, interval time.Duration, f func() (T, error)) (T, error) {
	for {
		v, err := f()
		if err == nil || !utilnet.IsConnectionRefused(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(interval):
		}
	}
}
