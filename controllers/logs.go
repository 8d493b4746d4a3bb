package controllers

import (
	"bytes"
	"context"
	"fmt"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/podlogs"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// This file keeps the end of a job's output once an attempt ends (docs/api.md#logs), so that its logs
// outlive the pod that wrote them: the last whole lines within the worker's spec.logs.retainedBytes,
// inline in status.logs when short (at most MaxInlineLogBytes of UTF-8: no write of its own), else in
// a Secret owned by the SeekJob, written before the status write that records the attempt's end. Pooled mode takes the output from the
// runner's report; Job mode reads it from the pod's log through the apiserver before the pod goes.

// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get

// retainedLogBytes is how much of the end of a job's output w keeps.
func retainedLogBytes(w *seekv1alpha1.SeekWorker) int {
	return int(ptr.Deref(w.Spec.Logs.RetainedBytes, seekv1alpha1.DefaultRetainedLogBytes))
}

// keptOutput is what is kept of an output of total bytes whose end is tail: its last whole lines
// within limit bytes (a single longer line: its end), and how many bytes before them are not kept.
func keptOutput(tail []byte, total int64, limit int) (kept []byte, omitted int64) {
	total = max(total, int64(len(tail)))
	kept = tail
	if len(kept) > limit {
		kept = kept[len(kept)-limit:]
	}
	if int64(len(kept)) < total {
		// kept may start within a line: unless the byte before it is known to end one, drop that
		// line's end (when another line follows).
		atLineStart := len(kept) < len(tail) && tail[len(tail)-len(kept)-1] == '\n'
		if i := bytes.IndexByte(kept, '\n'); !atLineStart && i >= 0 && i < len(kept)-1 {
			kept = kept[i+1:]
		}
	}
	return kept, total - int64(len(kept))
}

// logsSecret is the Secret holding data, the kept output of the SeekJob sj, controlled by it so that it
// is deleted with it.
func logsSecret(sj *seekv1alpha1.SeekJob, data []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       sj.Namespace,
			Name:            seekv1alpha1.LogsSecretName(sj.Name),
			Labels:          map[string]string{seekv1alpha1.LabelJobName: sj.Name, seekv1alpha1.LabelJobUID: string(sj.UID)},
			OwnerReferences: []metav1.OwnerReference{jobOwnerRef(sj.Name, sj.UID)},
		},
		Type: seekv1alpha1.LogsSecretType,
		Data: map[string][]byte{seekv1alpha1.LogsSecretKey: data},
	}
}

// jobOwnerRef is the controller reference of the SeekJob of the given name and UID.
func jobOwnerRef(name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: seekv1alpha1.GroupVersion.String(),
		Kind:       "SeekJob",
		Name:       name,
		UID:        uid,
		Controller: ptr.To(true),
	}
}

// storeLogs keeps the end of the output of sj's attempt (tail, the end of total bytes) as w says, and
// returns the status.logs that records it: nil when w keeps no logs, or when a Secret of that name
// exists that is not the job's (nothing is stored; the logs then live only with the pod). reader reads
// from the apiserver (Secrets are not cached).
func storeLogs(ctx context.Context, c client.Client, reader client.Reader, sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker,
	attempt int32, tail []byte, total int64) (*seekv1alpha1.JobLogs, error) {
	limit := retainedLogBytes(w)
	if limit == 0 || attempt < 1 {
		return nil, nil
	}
	kept, omitted := keptOutput(tail, total, limit)
	logs := &seekv1alpha1.JobLogs{Attempt: attempt, Bytes: int64(len(kept)), OmittedBytes: omitted}
	if len(kept) == 0 {
		return logs, nil
	}
	if len(kept) <= seekv1alpha1.MaxInlineLogBytes && utf8.Valid(kept) {
		// Short text rides in the status write that ends the attempt: no write of its own. (A JSON
		// string holds UTF-8 only: other bytes would be altered.)
		logs.Text = string(kept)
		return logs, nil
	}
	stored, err := putOwnedSecret(ctx, c, reader, logsSecret(sj, kept), seekv1alpha1.LogsSecretKey)
	if err != nil || !stored {
		return nil, err
	}
	logs.SecretName = seekv1alpha1.LogsSecretName(sj.Name)
	return logs, nil
}

// putOwnedSecret creates want, or updates the Secret of its name to hold want's data under key when
// that Secret has the same controller and type. It reports false, and changes nothing, when a Secret
// of that name belongs to something else.
func putOwnedSecret(ctx context.Context, c client.Client, reader client.Reader, want *corev1.Secret, key string) (bool, error) {
	err := c.Create(ctx, want)
	if err == nil {
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create Secret %s: %w", klog.KObj(want), err)
	}
	got := &corev1.Secret{}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
		return false, fmt.Errorf("get Secret %s: %w", klog.KObj(want), err)
	}
	owner := metav1.GetControllerOf(got)
	if owner == nil || owner.UID != want.OwnerReferences[0].UID || got.Type != want.Type {
		return false, nil
	}
	if bytes.Equal(got.Data[key], want.Data[key]) {
		return true, nil
	}
	got.Data = want.Data
	if err := c.Update(ctx, got); err != nil {
		return false, fmt.Errorf("update Secret %s: %w", klog.KObj(want), err)
	}
	return true, nil
}

// keepPodLogs keeps the end of the worker container's log of pod, the pod of sj's latest attempt in
// Job mode, read through the apiserver's pods/log before the pod goes. A log that cannot be read (the
// pod is gone, its node does not answer) is not kept: nil, and the job ends all the same.
func keepPodLogs(ctx context.Context, c client.Client, reader client.Reader, logs podlogs.Reader,
	sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker, pod *corev1.Pod) (*seekv1alpha1.JobLogs, error) {
	limit := retainedLogBytes(w)
	if limit == 0 || logs == nil || pod == nil {
		return nil, nil
	}
	tail, total, err := podlogs.Tail(ctx, logs, pod.Namespace, pod.Name, protocol.ContainerName, limit)
	if err != nil {
		ctrl.LoggerFrom(ctx).V(2).Info("Job logs not kept: the pod's log cannot be read", "pod", klog.KObj(pod), "error", err.Error())
		return nil, nil
	}
	return storeLogs(ctx, c, reader, sj, w, max(sj.Status.Attempts, 1), tail, total)
}

// reportedLogs is the status.logs a runner's report r of an attempt of a job of w leaves: stored, what
// storeReportOutputs kept, or for an attempt that wrote nothing a record saying so (no Secret); nil
// leaves status.logs as it was (an interrupted attempt does not count; w keeps no logs).
func reportedLogs(r *dispatch.Report, w *seekv1alpha1.SeekWorker, stored *seekv1alpha1.JobLogs) *seekv1alpha1.JobLogs {
	switch {
	case stored != nil:
		return stored
	case r.Interrupted || r.LogTail != "" || retainedLogBytes(w) == 0:
		return nil
	}
	return &seekv1alpha1.JobLogs{Attempt: r.Attempt}
}

// stoppedHere reports whether the pod with the given UID ran the attempt ref names of sj, a pooled
// job that has ended while it ran (the manager stopped it), and that attempt's output is not kept yet.
func stoppedHere(sj *seekv1alpha1.SeekJob, podUID string, ref dispatch.AttemptRef) bool {
	return sj.Status.State.IsTerminal() && sj.Status.Pool != nil && sj.Status.Pool.PodUID == podUID &&
		string(sj.UID) == ref.UID && sj.Status.Attempts == ref.Attempt &&
		(sj.Status.Logs == nil || sj.Status.Logs.Attempt < ref.Attempt)
}
