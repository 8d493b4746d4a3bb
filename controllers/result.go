package controllers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/dispatch"
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
	switch {
	case size > seekv1alpha1.MaxResultBytes:
		fail(seekv1alpha1.JobReasonResultTooLarge, resultTooLargeMessage(size))
		return
	case storage.ref != nil:
		sj.Status.Result, sj.Status.ResultRef = nil, storage.ref.DeepCopy()
		finish(sj, seekv1alpha1.JobStateCompleted, seekv1alpha1.JobReasonSucceeded,
			fmt.Sprintf("The worker returned a result of %d bytes, stored in Secret %s", storage.ref.Bytes, storage.ref.SecretName), nil, now)
		return
	case storage.reason != "":
		fail(storage.reason, storage.message)
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
	fail(seekv1alpha1.JobReasonResultLost, fmt.Sprintf("The worker returned a result of %d bytes but it was not stored", len(trimmed)))
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
			Namespace:       namespace,
			Name:            seekv1alpha1.ResultSecretName(name),
			Labels:          map[string]string{seekv1alpha1.LabelJobName: name, seekv1alpha1.LabelJobUID: string(uid)},
			OwnerReferences: []metav1.OwnerReference{jobOwnerRef(name, uid)},
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
	stored, err := putOwnedSecret(ctx, c, reader, want, seekv1alpha1.ResultSecretKey)
	switch {
	case err != nil:
		return resultStorage{}, fmt.Errorf("store the result: %w", err)
	case !stored:
		return resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: fmt.Sprintf(
			"The worker returned a result of %d bytes, but Secret %s, where it would be stored, exists and is not the job's", len(data), want.Name)}, nil
	}
	return resultStorage{ref: resultRefFor(name, data)}, nil
}

// podResult is what the pod's worker, which exited 0 (term), returned: the text, size and storage
// completeWithResult takes. Without a collector sidecar it is the worker's termination message (at
// most 4096 bytes: the kubelet keeps the end of a longer file). With one, it is what the collector
// said once it ended; ok is false until then, or true with a lost result once collectorWait has passed
// since the worker ended (the kubelet kills the collector long before).
func podResult(pod *corev1.Pod, term *corev1.ContainerStateTerminated, now time.Time) (raw string, size int64, storage resultStorage, ok bool) {
	if !hasCollector(pod) {
		msg := term.Message
		if len(msg) >= seekv1alpha1.MaxInlineResultBytes && !json.Valid(bytes.TrimSpace([]byte(msg))) {
			storage = resultStorage{reason: seekv1alpha1.JobReasonResultTooLarge, message: fmt.Sprintf(
				"The worker exited 0 but its result is not valid JSON: the kubelet keeps the last %d bytes of a result file, and a larger result needs the manager's dispatch endpoint (it is off) to be collected",
				seekv1alpha1.MaxInlineResultBytes)}
		}
		return msg, int64(len(msg)), storage, true
	}
	lost := func(format string, args ...any) resultStorage {
		return resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: fmt.Sprintf(format, args...)}
	}
	ct := collectorTermination(pod)
	if ct == nil {
		if !term.FinishedAt.IsZero() && !now.Before(term.FinishedAt.Add(collectorWait)) {
			return "", 0, lost("The worker exited 0 but the result collector did not end within %s", collectorWait), true
		}
		return "", 0, resultStorage{}, false
	}
	if ct.ExitCode != 0 {
		// Its message is no verdict: the container runtime's error when it could not start (seen when
		// the node is loaded or its kubelet restarts), or its own failure. The worker's termination
		// message does not hold the result with a collector (see withCollector).
		return "", 0, lost("The worker exited 0 but the result collector failed (exit code %d, %s): %s", ct.ExitCode, ct.Reason,
			truncate(cmp.Or(ct.Message, "no message"), 1024)), true
	}
	msg := ct.Message
	rest, envelope := strings.CutPrefix(msg, dispatch.CollectedPrefix)
	if msg == "" {
		return "", 0, lost("The worker exited 0 but the result collector ended without saying what it read (exit code %d, %s)", ct.ExitCode, ct.Reason), true
	}
	if !envelope {
		return msg, int64(len(msg)), resultStorage{}, true
	}
	var c dispatch.Collected
	if err := json.Unmarshal([]byte(rest), &c); err != nil {
		return "", 0, lost("The worker exited 0 but the result collector's message is not understood: %v", err), true
	}
	switch {
	case c.Bytes > seekv1alpha1.MaxResultBytes:
		return "", c.Bytes, resultStorage{}, true
	case c.SecretName != "":
		ref := &seekv1alpha1.ResultRef{SecretName: c.SecretName, Bytes: c.Bytes, SHA256: c.SHA256}
		if ref.SecretName != seekv1alpha1.ResultSecretName(pod.Labels[seekv1alpha1.LabelJobName]) ||
			ref.Bytes <= seekv1alpha1.MaxInlineResultBytes || len(ref.SHA256) != sha256.Size*2 {
			return "", 0, lost("The worker exited 0 but the result collector names an unexpected Secret %q (%d bytes)", c.SecretName, c.Bytes), true
		}
		return "", c.Bytes, resultStorage{ref: ref}, true
	case c.Error != "":
		return "", 0, lost("The worker returned a result of %d bytes but it could not be stored: %s", c.Bytes, truncate(c.Error, 1024)), true
	}
	return "", 0, resultStorage{}, true // no result
}

// collectorPending is how long until the wait for a collector's verdict ends, for the pods whose worker
// exited 0 and whose collector has not ended yet; 0 if none waits.
func collectorPending(pods []corev1.Pod, now time.Time) time.Duration {
	var soonest time.Duration
	for i := range pods {
		p := &pods[i]
		term := workerTermination(p)
		if term == nil || term.ExitCode != 0 || !hasCollector(p) || collectorTermination(p) != nil || term.FinishedAt.IsZero() {
			continue
		}
		if wait := term.FinishedAt.Add(collectorWait).Sub(now); wait > 0 && (soonest == 0 || wait < soonest) {
			soonest = wait
		}
	}
	return soonest
}

// workerMessage is what the pod's worker wrote to its result file, else its log tail: the worker's
// termination message, or with a collector sidecar, the collector's when it is the file itself.
func workerMessage(pod *corev1.Pod, term *corev1.ContainerStateTerminated) string {
	if hasCollector(pod) {
		if ct := collectorTermination(pod); ct != nil && ct.Message != "" && !strings.HasPrefix(ct.Message, dispatch.CollectedPrefix) {
			return ct.Message
		}
	}
	return term.Message
}
