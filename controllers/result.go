package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// This file holds the size tiers of a worker's result (docs/worker-protocol.md#result-size-tiers):
// at most MaxInlineResultBytes it is kept inline in status.result; larger, up to MaxResultBytes, it is
// stored in a Secret owned by the SeekJob and status.resultRef points to it; larger still, the job
// fails with reason ResultTooLarge. The Secret is written before the status write that completes the
// job, so a job that says Completed always has its result; a small result costs no extra write.

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update

// resultStorage is where a large result went: the Secret holding it, or why it is not stored.
type resultStorage struct {
	// ref is the Secret holding the result, nil if it is not stored.
	ref *seekv1alpha1.ResultRef
	// reason and message say why a large result is not stored (ref is nil).
	reason, message string
}

// completeWithResult completes sj with the result of a worker that exited 0, or fails it: raw is the
// result file's text (its first bytes when size is larger), size the file's size, storage where a
// result over the inline limit went.
func completeWithResult(sj *seekv1alpha1.SeekJob, raw string, size int64, storage resultStorage, now time.Time) {
	fail := func(reason, msg string) {
		je := &seekv1alpha1.JobError{Reason: reason, Message: truncate(msg, maxMessageBytes), ExitCode: ptr.To[int32](0)}
		finish(sj, seekv1alpha1.JobStateFailed, reason, msg, je, now)
	}
	size = max(size, int64(len(raw)))
	if size > seekv1alpha1.MaxResultBytes {
		fail(seekv1alpha1.JobReasonResultTooLarge, resultTooLargeMessage(size))
		return
	}
	trimmed := bytes.TrimSpace([]byte(raw))
	if len(trimmed) <= seekv1alpha1.MaxInlineResultBytes {
		result, err := parseResult(raw)
		if err != nil {
			fail(seekv1alpha1.JobReasonInvalidResult, err.Error())
			return
		}
		sj.Status.Result, sj.Status.ResultRef = result, nil
		finish(sj, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded, "The worker returned a result", nil, now)
		return
	}
	if !json.Valid(trimmed) {
		_, err := parseResult(raw)
		fail(seekv1alpha1.JobReasonInvalidResult, err.Error())
		return
	}
	if storage.ref == nil {
		reason, msg := storage.reason, storage.message
		if reason == "" {
			reason, msg = seekv1alpha1.JobReasonResultLost, fmt.Sprintf("The worker returned a result of %d bytes but it was not stored", len(trimmed))
		}
		fail(reason, msg)
		return
	}
	sj.Status.Result, sj.Status.ResultRef = nil, storage.ref.DeepCopy()
	finish(sj, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded,
		fmt.Sprintf("The worker returned a result of %d bytes, stored in Secret %s", storage.ref.Bytes, storage.ref.SecretName), nil, now)
}

// resultTooLargeMessage names a result's size and the cap.
func resultTooLargeMessage(size int64) string {
	return fmt.Sprintf("The worker exited 0 with a result of %d bytes; at most %d bytes (1 MiB) fit: return larger outputs by reference",
		size, seekv1alpha1.MaxResultBytes)
}

// largeResult returns the result to store in a Secret: a valid JSON result over the inline limit and
// within the cap, without surrounding whitespace; nil for any other text.
func largeResult(raw string) []byte {
	trimmed := bytes.TrimSpace([]byte(raw))
	if len(trimmed) <= seekv1alpha1.MaxInlineResultBytes || len(trimmed) > seekv1alpha1.MaxResultBytes || !json.Valid(trimmed) {
		return nil
	}
	return trimmed
}

// resultRefFor is the reference to data stored as sj's result.
func resultRefFor(jobName string, data []byte) *seekv1alpha1.ResultRef {
	sum := sha256.Sum256(data)
	return &seekv1alpha1.ResultRef{
		SecretName: seekv1alpha1.ResultSecretName(jobName),
		Bytes:      int64(len(data)),
		SHA256:     hex.EncodeToString(sum[:]),
	}
}

// resultSecret is the Secret holding data as the result of the SeekJob of the given name and UID,
// controlled by it so that it is deleted with it.
func resultSecret(namespace, name string, uid types.UID, data []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      seekv1alpha1.ResultSecretName(name),
			Labels:    map[string]string{seekv1alpha1.LabelJobName: name, seekv1alpha1.LabelJobUID: string(uid)},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: seekv1alpha1.GroupVersion.String(),
				Kind:       "SeekJob",
				Name:       name,
				UID:        uid,
				Controller: ptr.To(true),
			}},
		},
		Type: seekv1alpha1.ResultSecretType,
		Data: map[string][]byte{seekv1alpha1.ResultSecretKey: data},
	}
}

// storeResult writes data, a large result, into the result Secret of the SeekJob (namespace, name,
// uid): one create, idempotent (a Secret of the job already holding it is fine; one holding another
// result, of an earlier attempt, is updated). reader reads from the apiserver (Secrets are not
// cached). A Secret of that name that is not the job's is not touched: the result is then lost.
func storeResult(ctx context.Context, c client.Client, reader client.Reader, namespace, name string, uid types.UID, data []byte) (resultStorage, error) {
	want := resultSecret(namespace, name, uid, data)
	ref := resultRefFor(name, data)
	err := c.Create(ctx, want)
	if err == nil {
		return resultStorage{ref: ref}, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return resultStorage{}, fmt.Errorf("create the result Secret %s: %w", klog.KObj(want), err)
	}
	got := &corev1.Secret{}
	if err := reader.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
		return resultStorage{}, fmt.Errorf("get the result Secret %s: %w", klog.KObj(want), err)
	}
	if owner := metav1.GetControllerOf(got); owner == nil || owner.UID != uid || got.Type != seekv1alpha1.ResultSecretType {
		return resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: fmt.Sprintf(
			"The worker returned a result of %d bytes, but Secret %s, where it would be stored, exists and is not the job's", len(data), want.Name)}, nil
	}
	if bytes.Equal(got.Data[seekv1alpha1.ResultSecretKey], data) {
		return resultStorage{ref: ref}, nil
	}
	got.Data = want.Data
	if err := c.Update(ctx, got); err != nil {
		return resultStorage{}, fmt.Errorf("update the result Secret %s: %w", klog.KObj(want), err)
	}
	return resultStorage{ref: ref}, nil
}
