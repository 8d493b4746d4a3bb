package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/signingkeys"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/internal/webhook"
)

// receiver is a local webhook endpoint: it answers each call as script says and records what it got.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []hookCall
	script func(n int, w http.ResponseWriter) // n counts calls from 1
}

type hookCall struct {
	header http.Header
	body   []byte
	at     time.Time
}

func (r hookCall) id() string { return r.header.Get("webhook-id") }

// payload decodes the Standard Webhooks body.
func (r hookCall) payload(t *testing.T) (typ string, data map[string]any) {
	t.Helper()
	var p struct {
		Type      string         `json:"type"`
		Timestamp time.Time      `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("payload %s: %v", r.body, err)
	}
	if p.Timestamp.IsZero() {
		t.Errorf("payload without timestamp: %s", r.body)
	}
	return p.Type, p.Data
}

func newReceiver(t *testing.T, script func(n int, w http.ResponseWriter)) *receiver {
	t.Helper()
	rc := &receiver{t: t, script: script}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.calls = append(rc.calls, hookCall{header: r.Header.Clone(), body: body, at: time.Now()})
		n := len(rc.calls)
		rc.mu.Unlock()
		if rc.script != nil {
			rc.script(n, w)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url() string { return rc.srv.URL + "/hook" }

func (rc *receiver) received() []hookCall {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookCall(nil), rc.calls...)
}

// waitCalls waits until the receiver got at least n calls and returns them.
func (rc *receiver) waitCalls(n int) []hookCall {
	rc.t.Helper()
	eventually(rc.t, fmt.Sprintf("%d webhook calls", n), func(context.Context) (bool, error) {
		return len(rc.received()) >= n, nil
	})
	return rc.received()
}

// always answers every call with status.
func always(status int) func(int, http.ResponseWriter) {
	return func(_ int, w http.ResponseWriter) { w.WriteHeader(status) }
}

// canceledJob is a SeekJob with a callback that finishes (Canceled) at once: its worker does not exist
// and it is created with a cancel request.
func canceledJob(ns, name, url string) *seekv1alpha1.SeekJob {
	return testutil.MakeSeekJob(name, ns).Worker("no-such-worker").Callback(url).Cancel("test").Obj()
}

// waitForCallback waits until the job's callback ledger reaches state.
func waitForCallback(t *testing.T, ns, name string, state seekv1alpha1.CallbackState) *seekv1alpha1.SeekJob {
	t.Helper()
	sj := &seekv1alpha1.SeekJob{}
	eventually(t, fmt.Sprintf("callback of %s/%s %s", ns, name, state), func(ctx context.Context) (bool, error) {
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sj); err != nil {
			return false, err
		}
		return sj.Status.Callback != nil && sj.Status.Callback.State == state, nil
	})
	return sj
}

// signingKeys reads a tenant's webhook signing secrets as the controller does.
func signingKeys(t *testing.T, tenant string) *signingkeys.Keys {
	t.Helper()
	store := &signingkeys.Store{Client: k8sClient, Reader: k8sClient, Live: k8sClient, Namespace: credentialsNamespace, Clock: clock.RealClock{}}
	k, err := store.Get(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verify checks a call's signature with the Standard Webhooks library.
func verify(t *testing.T, secret string, r hookCall) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh.Verify(r.body, r.header)
}

func TestCallbacks(t *testing.T) {

	t.Run("completed job: one signed delivery carrying the GET shape", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		rc := newReceiver(t, nil)
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("done", ns).Worker(w.Name).Callback(rc.url()).Obj())
		finishPod(t, waitForPod(t, ns, "done", 1), 0, `{"valid": true}`)
		sj := waitForCallback(t, ns, "done", seekv1alpha1.CallbackDelivered)

		calls := rc.received()
		if len(calls) != 1 {
			t.Fatalf("receiver got %d calls, want 1", len(calls))
		}
		call := calls[0]
		if err := verify(t, signingKeys(t, ns).Current, call); err != nil {
			t.Errorf("signature does not verify: %v (headers %v)", err, call.header)
		}
		typ, data := call.payload(t)
		if typ != "job.completed" || data["job_uuid"] != "job_done" || data["status"] != "completed" {
			t.Errorf("payload = %s", call.body)
		}
		if got := data["response_json"]; fmt.Sprint(got) != "map[valid:true]" {
			t.Errorf("response_json = %v", got)
		}
		d := sj.Status.Callback.Deliveries
		if len(d) != 1 || d[0].ID != call.id() || d[0].Attempts != 1 || d[0].LastStatusCode != 204 || d[0].DeliveredTime == nil || d[0].Type != "job.completed" {
			t.Errorf("ledger = %+v", sj.Status.Callback)
		}
	})

	t.Run("started and finished events, in order", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		rc := newReceiver(t, nil)
		w := readyWorker(t, echoWorker(t).Obj())
		mustCreate(t, testutil.MakeSeekJob("both", ns).Worker(w.Name).
			Callback(rc.url(), seekv1alpha1.CallbackEventStarted, seekv1alpha1.CallbackEventFinished).Obj())
		pod := waitForPod(t, ns, "both", 1)
		startPod(t, pod) // the job starts when its worker container does
		if typ, _ := rc.waitCalls(1)[0].payload(t); typ != "job.started" {
			t.Errorf("first event = %s, want job.started", typ)
		}
		finishPod(t, pod, 3, `{"message": "no"}`)
		waitForCallback(t, ns, "both", seekv1alpha1.CallbackDelivered)
		calls := rc.waitCalls(2)
		if typ, _ := calls[1].payload(t); typ != "job.failed" || calls[0].id() == calls[1].id() {
			t.Errorf("second event = %s (ids %s, %s), want job.failed with its own id", typ, calls[0].id(), calls[1].id())
		}
	})

	t.Run("fails twice, then succeeds: same webhook-id on every attempt", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		rc := newReceiver(t, func(n int, w http.ResponseWriter) {
			switch n {
			case 1:
				w.WriteHeader(http.StatusInternalServerError)
			case 2:
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
			default:
				w.WriteHeader(http.StatusOK)
			}
		})
		mustCreate(t, canceledJob(ns, "flaky", rc.url()))
		sj := waitForCallback(t, ns, "flaky", seekv1alpha1.CallbackDelivered)
		calls := rc.received()
		if len(calls) != 3 {
			t.Fatalf("receiver got %d calls, want 3", len(calls))
		}
		for _, c := range calls[1:] {
			if c.id() != calls[0].id() {
				t.Errorf("webhook-id changed across attempts: %s, %s", calls[0].id(), c.id())
			}
		}
		if gap := calls[2].at.Sub(calls[1].at); gap < 900*time.Millisecond {
			t.Errorf("third attempt %v after the 503, want Retry-After (1s) honoured", gap)
		}
		if d := sj.Status.Callback.Deliveries[0]; d.Attempts != 3 || d.LastStatusCode != 200 {
			t.Errorf("ledger = %+v", d)
		}
	})

	t.Run("410 Gone stops retries", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		rc := newReceiver(t, always(http.StatusGone))
		mustCreate(t, canceledJob(ns, "gone", rc.url()))
		sj := waitForCallback(t, ns, "gone", seekv1alpha1.CallbackFailed)
		waitForEvent(t, ns, "gone", "CallbackFailed")
		time.Sleep(time.Second) // longer than the next scheduled attempt would wait
		if n := len(rc.received()); n != 1 {
			t.Errorf("receiver got %d calls, want 1", n)
		}
		if d := sj.Status.Callback.Deliveries[0]; d.Attempts != 1 || d.LastStatusCode != 410 || d.NextAttemptTime != nil {
			t.Errorf("ledger = %+v", d)
		}
	})

	t.Run("every attempt fails: given up after the schedule", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		rc := newReceiver(t, always(http.StatusBadGateway))
		mustCreate(t, canceledJob(ns, "down", rc.url()))
		sj := waitForCallback(t, ns, "down", seekv1alpha1.CallbackFailed)
		if d := sj.Status.Callback.Deliveries[0]; d.Attempts != int32(len(callbackSchedule)) || d.LastStatusCode != 502 || !strings.Contains(d.LastError, "502") {
			t.Errorf("ledger = %+v, want %d attempts", d, len(callbackSchedule))
		}
		if n := len(rc.received()); n != len(callbackSchedule) {
			t.Errorf("receiver got %d calls, want %d", n, len(callbackSchedule))
		}
	})

	t.Run("a slow receiver times out and delays no other delivery", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		release := make(chan struct{})
		slow := newReceiver(t, func(n int, w http.ResponseWriter) {
			if n == 1 {
				select { // longer than the attempt timeout
				case <-time.After(2 * callbackTimeout):
				case <-release:
				}
			}
			w.WriteHeader(http.StatusOK)
		})
		defer close(release)
		fast := newReceiver(t, nil)
		mustCreate(t, canceledJob(ns, "slow", slow.url()))
		slow.waitCalls(1)
		start := time.Now()
		mustCreate(t, canceledJob(ns, "fast", fast.url()))
		waitForCallback(t, ns, "fast", seekv1alpha1.CallbackDelivered)
		if took := time.Since(start); took >= callbackTimeout {
			t.Errorf("the fast delivery took %v, waiting behind the slow receiver", took)
		}
		sj := waitForCallback(t, ns, "slow", seekv1alpha1.CallbackDelivered)
		if d := sj.Status.Callback.Deliveries[0]; d.Attempts != 2 {
			t.Errorf("slow ledger = %+v, want the first attempt timed out and the second delivered", d)
		}
	})

	t.Run("redirects are not followed", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		target := newReceiver(t, nil)
		rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
			w.Header().Set("Location", target.url())
			w.WriteHeader(http.StatusFound)
		})
		mustCreate(t, canceledJob(ns, "moved", rc.url()))
		sj := waitForCallback(t, ns, "moved", seekv1alpha1.CallbackFailed)
		if n := len(target.received()); n != 0 {
			t.Errorf("the redirect target got %d calls", n)
		}
		if d := sj.Status.Callback.Deliveries[0]; d.LastStatusCode != 302 {
			t.Errorf("ledger = %+v, want 302 recorded", d)
		}
	})

	t.Run("a private address set with kubectl is refused, never dialled", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		// 10/8 is not allowlisted (only loopback is). The frontend would have answered 400; a SeekJob
		// applied directly is held to the same rule at delivery, and given up at once.
		mustCreate(t, canceledJob(ns, "private", "http://10.255.255.1:8080/hook"))
		sj := waitForCallback(t, ns, "private", seekv1alpha1.CallbackFailed)
		if d := sj.Status.Callback.Deliveries[0]; !strings.Contains(d.LastError, "invalid callback URL") || d.LastStatusCode != 0 || d.Attempts != 1 {
			t.Errorf("ledger = %+v, want one refused attempt", d)
		}
	})

	t.Run("a name resolving to a private address: refused, and the tenant is not told the address", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		for name, host := range map[string]string{"svc": "service.seek.test", "lo": "loopback.seek.test"} {
			mustCreate(t, canceledJob(ns, name, "http://"+host+":8080/hook"))
		}
		for name, host := range map[string]string{"svc": "service.seek.test", "lo": "loopback.seek.test"} {
			sj := waitForCallback(t, ns, name, seekv1alpha1.CallbackFailed)
			d := sj.Status.Callback.Deliveries[0]
			if d.LastError != webhook.DestinationNotAllowedMessage || d.Attempts != int32(len(callbackSchedule)) || d.LastStatusCode != 0 {
				t.Errorf("ledger of %s = %+v, want %d refused attempts saying %q", host, d, len(callbackSchedule), webhook.DestinationNotAllowedMessage)
			}
			ev := waitForEvent(t, ns, name, "CallbackFailed")
			for _, addr := range testNames[host] {
				for what, text := range map[string]string{"lastError": d.LastError, "event": ev.Note} {
					if strings.Contains(text, addr.String()) {
						t.Errorf("%s of %s names the address it resolved to: %q", what, host, text)
					}
				}
			}
		}
		eventually(t, "the refusals counted by reason", func(ctx context.Context) (bool, error) {
			_, body, err := httpGet(ctx, "http://"+metricsAddr+"/metrics")
			return strings.Contains(body, `seek_callback_attempt_failures_total{reason="destination_not_allowed"}`), err
		})
	})

	t.Run("secret rotation: both signatures during the grace period", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t)
		rc := newReceiver(t, nil)
		old := signingKeys(t, ns).Current
		store := &signingkeys.Store{Client: k8sClient, Reader: k8sClient, Live: k8sClient, Namespace: credentialsNamespace, Clock: clock.RealClock{}}
		rotated, err := store.Rotate(context.Background(), ns)
		if err != nil {
			t.Fatal(err)
		}
		if rotated.Current == old || rotated.Previous != old {
			t.Fatalf("rotation: %+v", rotated)
		}
		// The controller reads secrets from its cache: wait until it signs with the new one.
		for i := 0; ; i++ {
			name := fmt.Sprintf("r%d", i)
			mustCreate(t, canceledJob(ns, name, rc.url()))
			waitForCallback(t, ns, name, seekv1alpha1.CallbackDelivered)
			calls := rc.received()
			last := calls[len(calls)-1]
			if verify(t, rotated.Current, last) != nil {
				if i == 20 {
					t.Fatal("deliveries never signed with the rotated secret")
				}
				continue
			}
			if err := verify(t, old, last); err != nil {
				t.Errorf("the previous secret no longer verifies during the grace period: %v", err)
			}
			if sigs := strings.Fields(last.header.Get("webhook-signature")); len(sigs) != 2 {
				t.Errorf("webhook-signature = %q, want two signatures", last.header.Get("webhook-signature"))
			}
			break
		}
	})
}

// TestCallbackFairness points one tenant's many jobs at a receiver that never answers: that tenant
// holds no more than its share of the delivery workers, and another tenant's deliveries go through
// meanwhile without waiting for any of its attempts to time out.
func TestCallbackFairness(t *testing.T) {
	const hanging, fast = 64, 20
	slowTenant, fastTenant := newNamespace(t), newNamespace(t)
	var inFlight, peak, attempts atomic.Int32
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client hanging up
		attempts.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select { // until the attempt times out
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	for i := range hanging {
		mustCreate(t, canceledJob(slowTenant, fmt.Sprintf("slow-%02d", i), hang.URL+"/hook"))
	}
	eventually(t, "the hanging receiver holding its tenant's share of the workers", func(context.Context) (bool, error) {
		return int(inFlight.Load()) >= callbackTenantConcurrency, fmt.Errorf("%d attempts in flight", inFlight.Load())
	})

	rc := newReceiver(t, nil)
	created := map[string]time.Time{}
	for i := range fast {
		name := fmt.Sprintf("fast-%02d", i)
		created["job_"+name] = time.Now()
		mustCreate(t, canceledJob(fastTenant, name, rc.url()))
	}
	calls := rc.waitCalls(fast)
	for _, c := range calls {
		_, data := c.payload(t)
		id := fmt.Sprint(data["job_uuid"])
		if took := c.at.Sub(created[id]); took >= callbackTimeout {
			t.Errorf("%s delivered %v after it was created, waiting behind the hanging receiver (attempt timeout %v)", id, took, callbackTimeout)
		}
	}
	// Three rounds of attempts timing out and making room for the next ones, all within the cap.
	eventually(t, "three rounds of hanging attempts", func(context.Context) (bool, error) {
		return int(attempts.Load()) >= 3*callbackTenantConcurrency, fmt.Errorf("%d attempts", attempts.Load())
	})
	if p := int(peak.Load()); p > callbackTenantConcurrency {
		t.Errorf("the hanging receiver had %d attempts in flight at once, want at most %d", p, callbackTenantConcurrency)
	}
	eventually(t, "waiting attempts counted", func(ctx context.Context) (bool, error) {
		_, body, err := httpGet(ctx, "http://"+metricsAddr+"/metrics")
		return strings.Contains(body, "seek_callback_attempts_waited_total"), err
	})
}

// TestCallbackManagerRestart stops the manager between two attempts of one delivery: the ledger in
// status carries the delivery over, and the receiver sees the same webhook-id again.
func TestCallbackManagerRestart(t *testing.T) {
	ns := newNamespace(t)
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mustCreate(t, canceledJob(ns, "restart", rc.url()))
	first := rc.waitCalls(1)[0]
	eventually(t, "first attempt recorded", func(ctx context.Context) (bool, error) {
		sj := &seekv1alpha1.SeekJob{}
		err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "restart"}, sj)
		return err == nil && sj.Status.Callback != nil && len(sj.Status.Callback.Deliveries) == 1 && sj.Status.Callback.Deliveries[0].Attempts == 1, err
	})
	mgrRun.stop()
	restartManager(t)
	sj := waitForCallback(t, ns, "restart", seekv1alpha1.CallbackDelivered)
	calls := rc.received()
	if len(calls) != 2 || calls[1].id() != first.id() {
		t.Fatalf("calls = %d, ids %v; want 2 with the same webhook-id", len(calls), calls)
	}
	if d := sj.Status.Callback.Deliveries[0]; d.Attempts != 2 || calls[1].at.Sub(first.at) < 3*time.Second {
		t.Errorf("ledger = %+v, second attempt %v after the first (Retry-After 3s)", d, calls[1].at.Sub(first.at))
	}
}

// TestCallbacksAtScale delivers the callbacks of 1,000 jobs, each exactly once.
func TestCallbacksAtScale(t *testing.T) {
	const n = 1000
	ns := newNamespace(t)
	rc := newReceiver(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := k8sClient.Create(context.Background(), canceledJob(ns, fmt.Sprintf("j%04d", i), rc.url())); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(t, "1,000 callbacks delivered", func(ctx context.Context) (bool, error) {
		list := &seekv1alpha1.SeekJobList{}
		if err := k8sClient.List(ctx, list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, sj := range list.Items {
			if sj.Status.Callback == nil || sj.Status.Callback.State != seekv1alpha1.CallbackDelivered {
				return false, nil
			}
		}
		return len(list.Items) == n, nil
	})
	ids := map[string]int{}
	for _, c := range rc.received() {
		ids[c.id()]++
	}
	if len(ids) != n {
		t.Errorf("receiver saw %d distinct webhook-ids, want %d", len(ids), n)
	}
	for id, count := range ids {
		if count != 1 {
			t.Errorf("webhook-id %s delivered %d times", id, count)
		}
	}
}
