package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// Pure functions of the callback ledger (status.callback). The callback controller reads the job,
// plans with these, makes at most one attempt and writes the ledger back once.

// eventType is the webhook payload type of a job event.
func eventType(sj *seekv1alpha1.SeekJob, ev seekv1alpha1.CallbackEvent) string {
	switch ev {
	case seekv1alpha1.CallbackEventStarted:
		return webhook.EventStarted
	case seekv1alpha1.CallbackEventProgress:
		return webhook.EventProgress
	}
	switch sj.Status.State {
	case seekv1alpha1.JobStateCompleted:
		return webhook.EventCompleted
	case seekv1alpha1.JobStateCanceled:
		return webhook.EventCanceled
	case seekv1alpha1.JobStateTimedOut:
		return webhook.EventTimedOut
	default:
		return webhook.EventFailed
	}
}

// eventTime is when a job event happened: the payload's timestamp, the same on every attempt.
func eventTime(sj *seekv1alpha1.SeekJob, ev seekv1alpha1.CallbackEvent) time.Time {
	if ev == seekv1alpha1.CallbackEventStarted && sj.Status.StartTime != nil {
		return sj.Status.StartTime.Time
	}
	if ev == seekv1alpha1.CallbackEventFinished && sj.Status.CompletionTime != nil {
		return sj.Status.CompletionTime.Time
	}
	if ev == seekv1alpha1.CallbackEventProgress && sj.Status.Progress != nil {
		return sj.Status.Progress.UpdateTime.Time
	}
	return sj.CreationTimestamp.Time
}

// webhookID is the stable webhook-id of a job event: the receiver's deduplication key. Each progress
// report is an event of its own, named by when it was written (whole seconds, at least 5 apart).
func webhookID(sj *seekv1alpha1.SeekJob, ev seekv1alpha1.CallbackEvent) string {
	if ev == seekv1alpha1.CallbackEventProgress && sj.Status.Progress != nil {
		return fmt.Sprintf("msg_%s_progress_%d", sj.UID, sj.Status.Progress.UpdateTime.Unix())
	}
	return fmt.Sprintf("msg_%s_%s", sj.UID, strings.ToLower(string(ev)))
}

// happened lists the events the job asked for that have happened, in order.
func happened(sj *seekv1alpha1.SeekJob) []seekv1alpha1.CallbackEvent {
	cb := sj.Spec.Callback
	if cb == nil {
		return nil
	}
	events := cb.Events
	if len(events) == 0 {
		events = []seekv1alpha1.CallbackEvent{seekv1alpha1.CallbackEventFinished}
	}
	var out []seekv1alpha1.CallbackEvent
	if slices.Contains(events, seekv1alpha1.CallbackEventStarted) && meta.IsStatusConditionTrue(sj.Status.Conditions, seekv1alpha1.JobStarted) {
		out = append(out, seekv1alpha1.CallbackEventStarted)
	}
	if slices.Contains(events, seekv1alpha1.CallbackEventProgress) && sj.Status.Progress != nil && !sj.Status.State.IsTerminal() {
		out = append(out, seekv1alpha1.CallbackEventProgress)
	}
	if slices.Contains(events, seekv1alpha1.CallbackEventFinished) && sj.Status.State.IsTerminal() {
		out = append(out, seekv1alpha1.CallbackEventFinished)
	}
	return out
}

// supersedeProgress keeps the ledger's progress delivery on the job's latest report: a newer report
// replaces the entry, due now, whatever became of the older one (best effort: only the latest
// counts). Once the job has finished, an entry still pending is dropped: the finished event says more,
// and must not be followed by an older progress.
func supersedeProgress(sj *seekv1alpha1.SeekJob, ledger *seekv1alpha1.CallbackStatus, at metav1.Time) {
	i := slices.IndexFunc(ledger.Deliveries, func(d seekv1alpha1.CallbackDelivery) bool {
		return d.Event == seekv1alpha1.CallbackEventProgress
	})
	switch {
	case i < 0:
	case sj.Status.State.IsTerminal():
		if ledger.Deliveries[i].State == seekv1alpha1.CallbackPending {
			ledger.Deliveries = slices.Delete(ledger.Deliveries, i, i+1)
		}
	case ledger.Deliveries[i].ID != webhookID(sj, seekv1alpha1.CallbackEventProgress):
		ledger.Deliveries[i] = seekv1alpha1.CallbackDelivery{Event: seekv1alpha1.CallbackEventProgress,
			ID: webhookID(sj, seekv1alpha1.CallbackEventProgress), Type: webhook.EventProgress, State: seekv1alpha1.CallbackPending, NextAttemptTime: &at}
	}
}

// planDeliveries returns the ledger the job should have now: an entry, due now, for every event that
// happened and has none yet, and every settled entry reopened when the redeliver annotation changed.
// It returns nil while there is nothing to deliver and nothing was.
func planDeliveries(sj *seekv1alpha1.SeekJob, now time.Time) *seekv1alpha1.CallbackStatus {
	ledger := &seekv1alpha1.CallbackStatus{}
	if sj.Status.Callback != nil {
		ledger = sj.Status.Callback.DeepCopy()
	}
	at := metav1.NewTime(now)
	supersedeProgress(sj, ledger, at)
	for _, ev := range happened(sj) {
		if slices.ContainsFunc(ledger.Deliveries, func(d seekv1alpha1.CallbackDelivery) bool { return d.Event == ev }) {
			continue
		}
		ledger.Deliveries = append(ledger.Deliveries, seekv1alpha1.CallbackDelivery{
			Event: ev, ID: webhookID(sj, ev), Type: eventType(sj, ev), State: seekv1alpha1.CallbackPending, NextAttemptTime: &at,
		})
	}
	if want := sj.Annotations[seekv1alpha1.AnnotationRedeliver]; want != "" && want != ledger.RedeliveryRequest {
		ledger.RedeliveryRequest = want
		for i := range ledger.Deliveries {
			d := &ledger.Deliveries[i]
			if d.State != seekv1alpha1.CallbackPending {
				d.State, d.Attempts, d.NextAttemptTime, d.DeliveredTime = seekv1alpha1.CallbackPending, 0, &at, nil
			}
		}
	}
	if len(ledger.Deliveries) == 0 && ledger.RedeliveryRequest == "" {
		return nil
	}
	ledger.State = summarize(ledger.Deliveries)
	return ledger
}

// summarize is the ledger's overall state: Failed if one failed, else Pending if one is pending, else
// Delivered.
func summarize(ds []seekv1alpha1.CallbackDelivery) seekv1alpha1.CallbackState {
	state := seekv1alpha1.CallbackDelivered
	for _, d := range ds {
		switch d.State {
		case seekv1alpha1.CallbackFailed:
			return seekv1alpha1.CallbackFailed
		case seekv1alpha1.CallbackPending:
			state = seekv1alpha1.CallbackPending
		}
	}
	if len(ds) == 0 {
		return ""
	}
	return state
}

// due returns the first pending delivery whose attempt is due at now, or nil and how long until the
// next one is (zero when none is pending).
func due(ledger *seekv1alpha1.CallbackStatus, now time.Time) (*seekv1alpha1.CallbackDelivery, time.Duration) {
	var wait time.Duration
	for i := range ledger.Deliveries {
		d := &ledger.Deliveries[i]
		if d.State != seekv1alpha1.CallbackPending {
			continue
		}
		if d.NextAttemptTime == nil || !d.NextAttemptTime.After(now) {
			return d, 0
		}
		if left := d.NextAttemptTime.Sub(now); wait == 0 || left < wait {
			wait = left
		}
	}
	return nil, wait
}

// attemptResult is what one HTTP attempt gave.
type attemptResult struct {
	outcome    webhook.Outcome
	statusCode int
	err        string // why it failed, empty on success; the tenant sees it, so it names no address
	reason     string // why it failed, from a fixed set (webhook.FailureReason, failure*), empty on success
	retryAfter time.Duration
}

// retryPolicy is the schedule of attempts.
type retryPolicy struct {
	schedule []time.Duration
	jitter   float64
	random   func() float64
}

// recordAttempt writes an attempt's result into its delivery: delivered, given up, or scheduled again.
func recordAttempt(d *seekv1alpha1.CallbackDelivery, res attemptResult, now time.Time, p retryPolicy) {
	at := metav1.NewTime(now)
	d.Attempts++
	d.LastAttemptTime, d.LastStatusCode, d.LastError, d.NextAttemptTime = &at, int32(res.statusCode), truncate(res.err, 1024), nil
	switch res.outcome {
	case webhook.Delivered:
		d.State, d.DeliveredTime = seekv1alpha1.CallbackDelivered, &at
	case webhook.Gone:
		d.State = seekv1alpha1.CallbackFailed
	default:
		delay, ok := webhook.Backoff(p.schedule, int(d.Attempts)+1, p.jitter, p.random)
		if !ok {
			d.State = seekv1alpha1.CallbackFailed
			return
		}
		// Status times have whole seconds: round up, so no attempt comes early (Retry-After).
		next := metav1.NewTime(ceilSecond(now.Add(max(delay, res.retryAfter))))
		d.NextAttemptTime = &next
	}
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
