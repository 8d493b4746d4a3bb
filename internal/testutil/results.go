package testutil

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// WithCollector adds the result collector sidecar (a restartable init container) to the pod's spec,
// as the manager builds Job mode pods when its dispatch endpoint is enabled.
func (w *PodWrapper) WithCollector() *PodWrapper {
	w.Spec.InitContainers = append(w.Spec.InitContainers, corev1.Container{
		Name: dispatch.CollectorContainer, Image: DefaultImage, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
	})
	return w
}

// Collected sets the collector sidecar's status: terminated at finishedAt with message.
func (w *PodWrapper) Collected(message string, finishedAt time.Time) *PodWrapper {
	return w.CollectorEnded(0, "Completed", message, finishedAt)
}

// CollectorEnded records the collector sidecar's end with this exit code, reason and termination
// message (a collector that could not start: 128, StartError, the container runtime's error).
func (w *PodWrapper) CollectorEnded(code int32, reason, message string, finishedAt time.Time) *PodWrapper {
	w.Status.InitContainerStatuses = append(w.Status.InitContainerStatuses, corev1.ContainerStatus{
		Name: dispatch.CollectorContainer, Image: DefaultImage,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, Message: message, FinishedAt: metav1.NewTime(finishedAt),
		}},
	})
	return w
}
