package controllers

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/internal/webhook"
)

func mt(t time.Time) *metav1.Time { v := metav1.NewTime(t); return &v }

func TestPlanDeliveries(t *testing.T) {
	const url = "https://app.example/hook"
	job := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Created(t0)
	started := func(w *testutil.SeekJobWrapper) *testutil.SeekJobWrapper {
		return w.State(seekv1alpha1.JobStateRunning).StartTime(t0).Condition(metav1.Condition{Type: seekv1alpha1.JobStarted, Status: metav1.ConditionTrue, Reason: seekv1alpha1.JobReasonJobCreated})
	}
	pending := func(ev seekv1alpha1.CallbackEvent, typ string) seekv1alpha1.CallbackDelivery {
		id := "msg_u1_finished"
		if ev == seekv1alpha1.CallbackEventStarted {
			id = "msg_u1_started"
		}
		return seekv1alpha1.CallbackDelivery{Event: ev, ID: id, Type: typ, State: seekv1alpha1.CallbackPending, NextAttemptTime: mt(now)}
	}
	delivered := pending(seekv1alpha1.CallbackEventFinished, webhook.EventCompleted)
	delivered.State, delivered.Attempts, delivered.NextAttemptTime, delivered.DeliveredTime, delivered.LastStatusCode = seekv1alpha1.CallbackDelivered, 2, nil, mt(t0), 200

	cases := []struct {
		name string
		sj   *seekv1alpha1.SeekJob
		want *seekv1alpha1.CallbackStatus
	}{
		{
			name: "running, only Finished asked for: nothing to deliver yet",
			sj:   started(job.Clone().Callback(url)).Obj(),
		},
		{
			name: "running, Started asked for",
			sj:   started(job.Clone().Callback(url, seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackEventFinished)).Obj(),
			want: &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackPending, Deliveries: []seekv1alpha1.CallbackDelivery{
				pending(seekv1alpha1.CallbackEventStarted, webhook.EventStarted)}},
		},
		{
			name: "completed: the terminal event is due now",
			sj:   started(job.Clone().Callback(url)).Finished(seekv1alpha1.JobStateCompleted, "Succeeded", t0).Obj(),
			want: &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackPending, Deliveries: []seekv1alpha1.CallbackDelivery{
				pending(seekv1alpha1.CallbackEventFinished, webhook.EventCompleted)}},
		},
		{
			name: "started and finished before the first reconcile: both, in order",
			sj: started(job.Clone().Callback(url, seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackEventFinished)).
				Finished(seekv1alpha1.JobStateFailed, "WorkerError", t0).Obj(),
			want: &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackPending, Deliveries: []seekv1alpha1.CallbackDelivery{
				pending(seekv1alpha1.CallbackEventStarted, webhook.EventStarted), pending(seekv1alpha1.CallbackEventFinished, webhook.EventFailed)}},
		},
		{
			name: "canceled before it started: no started event, one terminal event",
			sj: job.Clone().Callback(url, seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackEventFinished).
				Finished(seekv1alpha1.JobStateCanceled, "Canceled", t0).Obj(),
			want: &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackPending, Deliveries: []seekv1alpha1.CallbackDelivery{
				pending(seekv1alpha1.CallbackEventFinished, webhook.EventCanceled)}},
		},
		{
			name: "timed out",
			sj:   started(job.Clone().Callback(url)).Finished(seekv1alpha1.JobStateTimedOut, "DeadlineExceeded", t0).Obj(),
			want: &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackPending, Deliveries: []seekv1alpha1.CallbackDelivery{
				pending(seekv1alpha1.CallbackEventFinished, webhook.EventTimedOut)}},
		},
		{
			name: "already delivered: unchanged",
			sj: started(job.Clone().Callback(url)).Finished(seekv1alpha1.JobStateCompleted, "Succeeded", t0).
				CallbackLedger(seekv1alpha1.CallbackDelivered, delivered).Obj(),
			want: &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackDelivered, Deliveries: []seekv1alpha1.CallbackDelivery{delivered}},
		},
		{
			name: "redeliver annotation: reopened with a fresh schedule, the same id",
			sj: started(job.Clone().Callback(url)).Finished(seekv1alpha1.JobStateCompleted, "Succeeded", t0).
				Annotation(seekv1alpha1.AnnotationRedeliver, "1").CallbackLedger(seekv1alpha1.CallbackDelivered, delivered).Obj(),
			want: &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackPending, RedeliveryRequest: "1", Deliveries: []seekv1alpha1.CallbackDelivery{
				func() seekv1alpha1.CallbackDelivery {
					d := delivered
					d.State, d.Attempts, d.NextAttemptTime, d.DeliveredTime = seekv1alpha1.CallbackPending, 0, mt(now), nil
					return d
				}()}},
		},
		{
			name: "redeliver annotation already acted on: unchanged",
			sj: func() *seekv1alpha1.SeekJob {
				sj := started(job.Clone().Callback(url)).Finished(seekv1alpha1.JobStateCompleted, "Succeeded", t0).
					Annotation(seekv1alpha1.AnnotationRedeliver, "1").CallbackLedger(seekv1alpha1.CallbackDelivered, delivered).Obj()
				sj.Status.Callback.RedeliveryRequest = "1"
				return sj
			}(),
			want: &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackDelivered, RedeliveryRequest: "1", Deliveries: []seekv1alpha1.CallbackDelivery{delivered}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, planDeliveries(tc.sj, now)); diff != "" {
				t.Errorf("planDeliveries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDue(t *testing.T) {
	later := seekv1alpha1.CallbackDelivery{Event: seekv1alpha1.CallbackEventStarted, State: seekv1alpha1.CallbackPending, NextAttemptTime: mt(now.Add(time.Minute))}
	sooner := seekv1alpha1.CallbackDelivery{Event: seekv1alpha1.CallbackEventFinished, State: seekv1alpha1.CallbackPending, NextAttemptTime: mt(now.Add(5 * time.Second))}
	dueNow := seekv1alpha1.CallbackDelivery{Event: seekv1alpha1.CallbackEventFinished, State: seekv1alpha1.CallbackPending, NextAttemptTime: mt(now)}
	done := seekv1alpha1.CallbackDelivery{Event: seekv1alpha1.CallbackEventStarted, State: seekv1alpha1.CallbackDelivered}
	cases := []struct {
		name      string
		ds        []seekv1alpha1.CallbackDelivery
		wantEvent seekv1alpha1.CallbackEvent
		wantWait  time.Duration
	}{
		{name: "empty"},
		{name: "all settled", ds: []seekv1alpha1.CallbackDelivery{done}},
		{name: "one due", ds: []seekv1alpha1.CallbackDelivery{done, dueNow}, wantEvent: seekv1alpha1.CallbackEventFinished},
		{name: "none due: the sooner one", ds: []seekv1alpha1.CallbackDelivery{later, sooner}, wantWait: 5 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, wait := due(&seekv1alpha1.CallbackStatus{Deliveries: tc.ds}, now)
			var got seekv1alpha1.CallbackEvent
			if d != nil {
				got = d.Event
			}
			if got != tc.wantEvent || wait != tc.wantWait {
				t.Errorf("due = %q, %v; want %q, %v", got, wait, tc.wantEvent, tc.wantWait)
			}
		})
	}
}

func TestRecordAttempt(t *testing.T) {
	policy := retryPolicy{schedule: []time.Duration{0, 5 * time.Second, 5 * time.Minute}, jitter: 0.1, random: func() float64 { return 0.5 }}
	fresh := seekv1alpha1.CallbackDelivery{Event: seekv1alpha1.CallbackEventFinished, ID: "msg", Type: webhook.EventCompleted, State: seekv1alpha1.CallbackPending, NextAttemptTime: mt(now)}
	after := func(attempts int32, f func(d *seekv1alpha1.CallbackDelivery)) seekv1alpha1.CallbackDelivery {
		d := fresh
		d.Attempts, d.LastAttemptTime, d.NextAttemptTime = attempts, mt(now), nil
		f(&d)
		return d
	}
	cases := []struct {
		name  string
		prior int32
		res   attemptResult
		want  seekv1alpha1.CallbackDelivery
	}{
		{
			name: "2xx: delivered",
			res:  attemptResult{outcome: webhook.Delivered, statusCode: 204},
			want: after(1, func(d *seekv1alpha1.CallbackDelivery) {
				d.State, d.LastStatusCode, d.DeliveredTime = seekv1alpha1.CallbackDelivered, 204, mt(now)
			}),
		},
		{
			name: "500 on the first attempt: the second is 5s later",
			res:  attemptResult{outcome: webhook.Retry, statusCode: 500, err: "HTTP 500: oops"},
			want: after(1, func(d *seekv1alpha1.CallbackDelivery) {
				d.LastStatusCode, d.LastError, d.NextAttemptTime = 500, "HTTP 500: oops", mt(now.Add(5*time.Second))
			}),
		},
		{
			name: "503 with a longer Retry-After: honoured",
			res:  attemptResult{outcome: webhook.Retry, statusCode: 503, err: "HTTP 503", retryAfter: time.Minute},
			want: after(1, func(d *seekv1alpha1.CallbackDelivery) {
				d.LastStatusCode, d.LastError, d.NextAttemptTime = 503, "HTTP 503", mt(now.Add(time.Minute))
			}),
		},
		{
			name: "429 with a shorter Retry-After: the schedule wins",
			res:  attemptResult{outcome: webhook.Retry, statusCode: 429, err: "HTTP 429", retryAfter: time.Second},
			want: after(1, func(d *seekv1alpha1.CallbackDelivery) {
				d.LastStatusCode, d.LastError, d.NextAttemptTime = 429, "HTTP 429", mt(now.Add(5*time.Second))
			}),
		},
		{
			name: "connection refused: retried, no status code",
			res:  attemptResult{outcome: webhook.Retry, err: "dial tcp: connection refused"},
			want: after(1, func(d *seekv1alpha1.CallbackDelivery) {
				d.LastError, d.NextAttemptTime = "dial tcp: connection refused", mt(now.Add(5*time.Second))
			}),
		},
		{
			name: "410: given up at once",
			res:  attemptResult{outcome: webhook.Gone, statusCode: 410, err: "HTTP 410"},
			want: after(1, func(d *seekv1alpha1.CallbackDelivery) {
				d.State, d.LastStatusCode, d.LastError = seekv1alpha1.CallbackFailed, 410, "HTTP 410"
			}),
		},
		{
			name:  "last scheduled attempt fails: given up",
			prior: 2,
			res:   attemptResult{outcome: webhook.Retry, statusCode: 500, err: "HTTP 500"},
			want: after(3, func(d *seekv1alpha1.CallbackDelivery) {
				d.State, d.LastStatusCode, d.LastError = seekv1alpha1.CallbackFailed, 500, "HTTP 500"
			}),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := fresh
			d.Attempts = tc.prior
			recordAttempt(&d, tc.res, now, policy)
			if diff := cmp.Diff(tc.want, d); diff != "" {
				t.Errorf("delivery (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	p := seekv1alpha1.CallbackDelivery{State: seekv1alpha1.CallbackPending}
	d := seekv1alpha1.CallbackDelivery{State: seekv1alpha1.CallbackDelivered}
	f := seekv1alpha1.CallbackDelivery{State: seekv1alpha1.CallbackFailed}
	cases := []struct {
		ds   []seekv1alpha1.CallbackDelivery
		want seekv1alpha1.CallbackState
	}{
		{nil, ""},
		{[]seekv1alpha1.CallbackDelivery{d}, seekv1alpha1.CallbackDelivered},
		{[]seekv1alpha1.CallbackDelivery{d, p}, seekv1alpha1.CallbackPending},
		{[]seekv1alpha1.CallbackDelivery{f, p}, seekv1alpha1.CallbackFailed},
		{[]seekv1alpha1.CallbackDelivery{d, f}, seekv1alpha1.CallbackFailed},
	}
	for _, tc := range cases {
		if got := summarize(tc.ds); got != tc.want {
			t.Errorf("summarize(%v) = %q, want %q", tc.ds, got, tc.want)
		}
	}
}

func TestPlanDeliveriesProgress(t *testing.T) {
	const url = "https://app.example/hook"
	withProgress := func(w *testutil.SeekJobWrapper, at time.Time) *testutil.SeekJobWrapper {
		w.Status.Progress = &seekv1alpha1.JobProgress{Fraction: "0.5", Attempt: 1, UpdateTime: metav1.NewTime(at)}
		return w
	}
	running := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Created(t0).State(seekv1alpha1.JobStateRunning).
		Callback(url, seekv1alpha1.CallbackEventProgress, seekv1alpha1.CallbackEventFinished)
	progress := func(at time.Time, state seekv1alpha1.CallbackState) seekv1alpha1.CallbackDelivery {
		d := seekv1alpha1.CallbackDelivery{Event: seekv1alpha1.CallbackEventProgress, ID: fmt.Sprintf("msg_u1_progress_%d", at.Unix()),
			Type: webhook.EventProgress, State: state, NextAttemptTime: mt(now)}
		if state == seekv1alpha1.CallbackDelivered {
			d.NextAttemptTime, d.Attempts, d.DeliveredTime = nil, 1, mt(t0)
		}
		return d
	}
	ledger := func(ds ...seekv1alpha1.CallbackDelivery) *seekv1alpha1.CallbackStatus {
		return &seekv1alpha1.CallbackStatus{State: summarize(ds), Deliveries: ds}
	}
	t1, t2 := t0.Add(10*time.Second), t0.Add(15*time.Second)
	finished := seekv1alpha1.CallbackDelivery{Event: seekv1alpha1.CallbackEventFinished, ID: "msg_u1_finished", Type: webhook.EventCompleted,
		State: seekv1alpha1.CallbackPending, NextAttemptTime: mt(now)}

	cases := []struct {
		name string
		sj   *seekv1alpha1.SeekJob
		want *seekv1alpha1.CallbackStatus
	}{
		{name: "no progress yet", sj: running.Clone().Obj()},
		{name: "a report: due now", sj: withProgress(running.Clone(), t1).Obj(), want: ledger(progress(t1, seekv1alpha1.CallbackPending))},
		{
			name: "a newer report replaces a delivered one",
			sj:   withProgress(running.Clone().CallbackLedger(seekv1alpha1.CallbackDelivered, progress(t1, seekv1alpha1.CallbackDelivered)), t2).Obj(),
			want: ledger(progress(t2, seekv1alpha1.CallbackPending)),
		},
		{
			name: "the same report, delivered: nothing to do",
			sj:   withProgress(running.Clone().CallbackLedger(seekv1alpha1.CallbackDelivered, progress(t1, seekv1alpha1.CallbackDelivered)), t1).Obj(),
			want: ledger(progress(t1, seekv1alpha1.CallbackDelivered)),
		},
		{
			name: "finished: a pending report is dropped, the finished event is due",
			sj: withProgress(running.Clone().CallbackLedger(seekv1alpha1.CallbackPending, progress(t1, seekv1alpha1.CallbackPending)), t1).
				Finished(seekv1alpha1.JobStateCompleted, "Succeeded", t2).Obj(),
			want: ledger(finished),
		},
		{
			name: "finished: a delivered report stays in the ledger",
			sj: withProgress(running.Clone().CallbackLedger(seekv1alpha1.CallbackDelivered, progress(t1, seekv1alpha1.CallbackDelivered)), t1).
				Finished(seekv1alpha1.JobStateCompleted, "Succeeded", t2).Obj(),
			want: ledger(progress(t1, seekv1alpha1.CallbackDelivered), finished),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, planDeliveries(tc.sj, now)); diff != "" {
				t.Errorf("ledger (-want +got):\n%s", diff)
			}
		})
	}
	sj := withProgress(running.Clone(), t1).Obj()
	if got := eventType(sj, seekv1alpha1.CallbackEventProgress); got != webhook.EventProgress {
		t.Errorf("eventType = %q", got)
	}
	if got := eventTime(sj, seekv1alpha1.CallbackEventProgress); !got.Equal(t1) {
		t.Errorf("eventTime = %v, want %v", got, t1)
	}
}
