// Package podlogs reads containers' logs through the apiserver's pods/log subresource: the frontend
// serves them, and the manager keeps the end of a Job mode job's output before its pod goes.
package podlogs

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Reader opens a container's log.
type Reader interface {
	Stream(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
}

// New reads logs through the apiserver's pods/log subresource.
func New(cs kubernetes.Interface) Reader { return clientset{cs} }

type clientset struct{ cs kubernetes.Interface }

func (c clientset) Stream(ctx context.Context, namespace, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.cs.CoreV1().Pods(namespace).GetLogs(pod, opts).Stream(ctx)
}

// MaxScanBytes bounds what Tail reads of a log.
const MaxScanBytes = 16 << 20

// Tail reads the log of a container as it is now and returns its last n bytes at most and its size
// (at most MaxScanBytes: of a longer log, the end of its first MaxScanBytes).
func Tail(ctx context.Context, r Reader, namespace, pod, container string, n int) (tail []byte, total int64, err error) {
	rc, err := r.Stream(ctx, namespace, pod, &corev1.PodLogOptions{Container: container, LimitBytes: ptr.To(int64(MaxScanBytes))})
	if err != nil {
		return nil, 0, fmt.Errorf("open the log of pod %s/%s: %w", namespace, pod, err)
	}
	defer rc.Close()
	buf := make([]byte, 0, 2*n+32<<10)
	chunk := make([]byte, 32<<10)
	for {
		k, err := rc.Read(chunk)
		total += int64(k)
		buf = append(buf, chunk[:k]...)
		if len(buf) > 2*n {
			buf = append(buf[:0], buf[len(buf)-n:]...)
		}
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, 0, fmt.Errorf("read the log of pod %s/%s: %w", namespace, pod, err)
		}
	}
	if len(buf) > n {
		buf = buf[len(buf)-n:]
	}
	return buf, total, nil
}

// Newest is the pod created last (of equal creation times, the greatest name): of a Job mode job's
// pods, its latest attempt's. Nil when there is none.
func Newest(pods []corev1.Pod) *corev1.Pod {
	var newest *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if newest == nil || newest.CreationTimestamp.Before(&p.CreationTimestamp) ||
			(newest.CreationTimestamp.Equal(&p.CreationTimestamp) && p.Name > newest.Name) {
			newest = p
		}
	}
	return newest
}
