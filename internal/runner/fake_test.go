package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// fakeDispatch is a dispatch endpoint for the runner's tests: it hands out the jobs queued with
// add, answers heartbeats "continue" until told to stop an attempt, and records reports. Its long
// polls are short (fakePollWait), so the tests do not wait for the real ones.
type fakeDispatch struct {
	t   *testing.T
	srv *httptest.Server

	jobs chan *dispatch.Job

	mu sync.Mutex
	// token is the bearer token accepted.
	token string
	// exitWhenEmpty makes a lease answer Exit when no job is queued.
	exitWhenEmpty bool
	// fail holds statuses to answer the next calls of a path with, in order.
	fail map[string][]int
	// heartbeatStatus and reportStatus, if set, answer every heartbeat and report.
	heartbeatStatus, reportStatus int
	// reportAccepted is the answer to a report.
	reportAccepted bool
	stops          map[string]chan string

	fakeState
}

// fakeState is what a fakeDispatch saw.
type fakeState struct {
	leases []dispatch.LeaseRequest
	// jobLeases are the indexes in leases of the calls answered with a job.
	jobLeases    []int
	heartbeats   int
	unauthorized int
	reportCalls  int
	// reports are the reports accepted.
	reports []dispatch.Report
	// progress are the progress reports received.
	progress []dispatch.ProgressRequest
}

const fakePollWait = 100 * time.Millisecond

func newFakeDispatch(t *testing.T, token string) *fakeDispatch {
	f := &fakeDispatch{t: t, token: token, jobs: make(chan *dispatch.Job, 100), fail: map[string][]int{},
		reportAccepted: true, stops: map[string]chan string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func attemptKey(ref dispatch.AttemptRef) string {
	return fmt.Sprintf("%s/%s/%s/%d", ref.Namespace, ref.Name, ref.UID, ref.Attempt)
}

// add queues jobs for leasing.
func (f *fakeDispatch) add(jobs ...*dispatch.Job) {
	for _, j := range jobs {
		f.jobs <- j
	}
}

// stop makes the heartbeat of ref answer Stop with reason.
func (f *fakeDispatch) stop(ref dispatch.AttemptRef, reason string) {
	f.stopChan(ref) <- reason
}

func (f *fakeDispatch) stopChan(ref dispatch.AttemptRef) chan string {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := attemptKey(ref)
	if f.stops[k] == nil {
		f.stops[k] = make(chan string, 1)
	}
	return f.stops[k]
}

func (f *fakeDispatch) set(fn func(f *fakeDispatch)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeDispatch) state() fakeState {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.fakeState
	s.leases = append([]dispatch.LeaseRequest(nil), s.leases...)
	s.jobLeases = append([]int(nil), s.jobLeases...)
	s.reports = append([]dispatch.Report(nil), s.reports...)
	s.progress = append([]dispatch.ProgressRequest(nil), s.progress...)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeDispatch) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s %s with Content-Type %q", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
		writeJSON(w, http.StatusMethodNotAllowed, dispatch.ErrorResponse{Reason: "MethodNotAllowed"})
		return
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(http.MaxBytesReader(w, req.Body, dispatch.MaxReportRequestBytes)); err != nil {
		f.t.Errorf("%s: reading the body: %v", req.URL.Path, err)
		writeJSON(w, http.StatusRequestEntityTooLarge, dispatch.ErrorResponse{Reason: "TooLarge"})
		return
	}
	decode := func(v any) bool {
		d := json.NewDecoder(&body)
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			f.t.Errorf("%s: decoding %T: %v", req.URL.Path, v, err)
			writeJSON(w, http.StatusBadRequest, dispatch.ErrorResponse{Reason: "BadRequest", Message: err.Error()})
			return false
		}
		return true
	}

	f.mu.Lock()
	if req.Header.Get("Authorization") != "Bearer "+f.token {
		f.unauthorized++
		f.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, dispatch.ErrorResponse{Reason: "Unauthorized", Message: "token not accepted"})
		return
	}
	if req.URL.Path == dispatch.PathReport {
		f.reportCalls++
	}
	status := 0
	if q := f.fail[req.URL.Path]; len(q) > 0 {
		status, f.fail[req.URL.Path] = q[0], q[1:]
	}
	switch {
	case req.URL.Path == dispatch.PathHeartbeat:
		f.heartbeats++
		if f.heartbeatStatus != 0 {
			status = f.heartbeatStatus
		}
	case req.URL.Path == dispatch.PathReport && status == 0 && f.reportStatus != 0:
		status = f.reportStatus
	}
	exitWhenEmpty, accepted := f.exitWhenEmpty, f.reportAccepted
	f.mu.Unlock()
	if status != 0 {
		writeJSON(w, status, dispatch.ErrorResponse{Reason: http.StatusText(status), Message: "injected"})
		return
	}

	switch req.URL.Path {
	case dispatch.PathLease:
		var lr dispatch.LeaseRequest
		if !decode(&lr) {
			return
		}
		var i int
		f.set(func(f *fakeDispatch) { f.leases, i = append(f.leases, lr), len(f.leases) })
		leased := func(j *dispatch.Job) {
			f.set(func(f *fakeDispatch) { f.jobLeases = append(f.jobLeases, i) })
			writeJSON(w, http.StatusOK, dispatch.LeaseResponse{Job: j})
		}
		select {
		case j := <-f.jobs:
			leased(j)
			return
		default:
		}
		if exitWhenEmpty {
			writeJSON(w, http.StatusOK, dispatch.LeaseResponse{Exit: true})
			return
		}
		select {
		case j := <-f.jobs:
			leased(j)
		case <-time.After(fakePollWait):
			writeJSON(w, http.StatusOK, dispatch.LeaseResponse{})
		case <-req.Context().Done():
		}
	case dispatch.PathHeartbeat:
		var ref dispatch.AttemptRef
		if !decode(&ref) {
			return
		}
		select {
		case reason := <-f.stopChan(ref):
			if reason == "409" {
				writeJSON(w, http.StatusConflict, dispatch.ErrorResponse{Reason: "NotHeld", Message: "the attempt is not this pod's"})
				return
			}
			writeJSON(w, http.StatusOK, dispatch.HeartbeatResponse{Stop: true, Reason: reason})
		case <-time.After(fakePollWait):
			writeJSON(w, http.StatusOK, dispatch.HeartbeatResponse{})
		case <-req.Context().Done():
		}
	case dispatch.PathReport:
		var r dispatch.Report
		if !decode(&r) {
			return
		}
		if accepted {
			f.set(func(f *fakeDispatch) { f.reports = append(f.reports, r) })
		}
		writeJSON(w, http.StatusOK, dispatch.ReportResponse{Accepted: accepted})
	case dispatch.PathProgress:
		var p dispatch.ProgressRequest
		if !decode(&p) {
			return
		}
		f.set(func(f *fakeDispatch) { f.progress = append(f.progress, p) })
		writeJSON(w, http.StatusOK, dispatch.ProgressResponse{Written: true})
	default:
		writeJSON(w, http.StatusNotFound, dispatch.ErrorResponse{Reason: "NotFound", Message: strings.TrimPrefix(req.URL.Path, "/")})
	}
}
