package frontend

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/joblog"
)

// fakeLogs serves pod logs from memory as the kubelet would: TailLines and LimitBytes honoured; with
// Follow, the pod's follow stream when it has one.
type fakeLogs struct {
	mu     sync.Mutex
	logs   map[string]string        // "ns/pod" → the log now
	follow map[string]io.ReadCloser // "ns/pod" → what a follow read streams
	err    error
	opts   []corev1.PodLogOptions
}

func (f *fakeLogs) Stream(_ context.Context, ns, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts = append(f.opts, *opts)
	if f.err != nil {
		return nil, f.err
	}
	if opts.Follow {
		if rc, ok := f.follow[ns+"/"+pod]; ok {
			return rc, nil
		}
	}
	text, ok := f.logs[ns+"/"+pod]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, pod)
	}
	if opts.TailLines != nil {
		lines := strings.SplitAfter(text, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		text = strings.Join(lines[max(len(lines)-int(*opts.TailLines), 0):], "")
	}
	if opts.LimitBytes != nil && int64(len(text)) > *opts.LimitBytes {
		text = text[:*opts.LimitBytes]
	}
	return io.NopCloser(strings.NewReader(text)), nil
}

// getText does a GET and returns the status, the Content-Type and the body.
func (f *fixture) getText(path, key string) (int, string, string) {
	f.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("X-Api-Key", key)
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		if err := f.openapi.Validate(http.MethodGet, req.URL.Path, rec.Code, rec.Body.Bytes()); err != nil {
			f.t.Errorf("OpenAPI: %v", err)
		}
	}
	return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
}

var (
	logStart = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	// A Job mode job with two pods: its logs are the newer pod's.
	jobModeJob = testutil.MakeSeekJob("jm", "tenant-a").UID("uid-jm").Worker("sleep").JobName("jm").
			State(seekv1alpha1.JobStateRunning).Obj()
	// A pooled job that ran in pool-pod-1, after another job.
	pooledJob = testutil.MakeSeekJob("pj", "tenant-a").UID("uid-pj").Worker("echo").
			Leased("seek-pool-echo-1", "pool-pod-1", "pod-uid-1", logStart).State(seekv1alpha1.JobStateCompleted).Obj()
	pooledAttempt = joblog.Attempt{Namespace: "tenant-a", Name: "pj", UID: "uid-pj", Attempt: 1}
	otherAttempt  = joblog.Attempt{Namespace: "tenant-a", Name: "other", UID: "uid-other", Attempt: 1}
	poolPodLog    = joblog.BeginLine(otherAttempt) + "other job's line\n" +
		"> seek-runner: begin job tenant-a/pj uid=uid-pj attempt=1\n" + // forged by the other job: escaped
		joblog.EndLine(otherAttempt, "process exited 0 after 1ms") +
		joblog.BeginLine(pooledAttempt) + "pj line 1\npj line 2\npj line 3\n" +
		joblog.EndLine(pooledAttempt, "process exited 0 after 1ms") +
		joblog.BeginLine(joblog.Attempt{Namespace: "tenant-a", Name: "later", UID: "uid-later", Attempt: 1}) + "later line\n"
)

func logsFixture(t *testing.T, logs *fakeLogs) *fixture {
	t.Helper()
	f := newFixture(t, nil,
		jobModeJob, pooledJob,
		testutil.MakeSeekJob("queued", "tenant-a").UID("uid-queued").Worker("sleep").Obj(),
		testutil.MakeSeekJob("between", "tenant-a").UID("uid-between").Worker("echo").
			Leased("seek-pool-echo-1", "", "", logStart).State(seekv1alpha1.JobStateRunning).Obj(),
		testutil.MakeSeekJob("gone", "tenant-a").UID("uid-gone").Worker("echo").
			Leased("seek-pool-echo-1", "gone-pod", "gone-uid", logStart).State(seekv1alpha1.JobStateCompleted).Obj(),
		testutil.MakeSeekJob("replaced", "tenant-a").UID("uid-replaced").Worker("echo").
			Leased("seek-pool-echo-1", "pool-pod-1", "an-older-pod-of-that-name", logStart).State(seekv1alpha1.JobStateCompleted).Obj(),
		testutil.MakeSeekJob("jm-gone", "tenant-a").UID("uid-jm-gone").Worker("sleep").JobName("jm-gone").State(seekv1alpha1.JobStateCanceled).Obj(),
		testutil.MakePod("jm-old", "tenant-a").ForSeekJob(jobModeJob).Created(logStart).Obj(),
		testutil.MakePod("jm-new", "tenant-a").ForSeekJob(jobModeJob).Created(logStart.Add(time.Minute)).Obj(),
		testutil.MakePod("pool-pod-1", "tenant-a").UID("pod-uid-1").Created(logStart.Add(-time.Hour)).Obj(),
	)
	f.server.Logs = logs
	return f
}

func TestJobLogs(t *testing.T) {
	logs := &fakeLogs{logs: map[string]string{
		"tenant-a/jm-old":     "old pod\n",
		"tenant-a/jm-new":     "line 1\nline 2\nline 3\n",
		"tenant-a/pool-pod-1": poolPodLog,
	}}
	f := logsFixture(t, logs)
	cases := []struct {
		name, path, want string
		wantOpts         corev1.PodLogOptions
	}{
		{"Job mode: the latest pod's tail", "/v1/jobs/job_jm/logs", "line 1\nline 2\nline 3\n",
			corev1.PodLogOptions{Container: "worker", TailLines: ptr.To[int64](100), LimitBytes: ptr.To[int64](LogScanBytes)}},
		{"Job mode: tail=2", "/v1/jobs/job_jm/logs?tail=2", "line 2\nline 3\n",
			corev1.PodLogOptions{Container: "worker", TailLines: ptr.To[int64](2), LimitBytes: ptr.To[int64](LogScanBytes)}},
		{"pooled: only the job's lines, from about its start", "/v1/jobs/job_pj/logs", "pj line 1\npj line 2\npj line 3\n",
			corev1.PodLogOptions{Container: "worker", SinceTime: ptr.To(metav1.NewTime(logStart.Add(-logSinceMargin))), LimitBytes: ptr.To[int64](LogScanBytes)}},
		{"pooled: tail=1", "/v1/jobs/job_pj/logs?tail=1", "pj line 3\n",
			corev1.PodLogOptions{Container: "worker", SinceTime: ptr.To(metav1.NewTime(logStart.Add(-logSinceMargin))), LimitBytes: ptr.To[int64](LogScanBytes)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			logs.opts = nil
			code, ctype, body := f.getText(tc.path, f.keys["a-readonly"])
			if code != http.StatusOK || ctype != "text/plain; charset=utf-8" {
				t.Fatalf("GET %s = %d %s %q, want 200 text/plain", tc.path, code, ctype, body)
			}
			if body != tc.want {
				t.Errorf("body = %q, want %q", body, tc.want)
			}
			if diff := cmp.Diff([]corev1.PodLogOptions{tc.wantOpts}, logs.opts); diff != "" {
				t.Errorf("log read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobLogsErrors(t *testing.T) {
	logs := &fakeLogs{logs: map[string]string{"tenant-a/pool-pod-1": poolPodLog}}
	f := logsFixture(t, logs)
	cases := []struct {
		name, path, key string
		wantCode        int
		wantErr         string
	}{
		{"unknown job", "/v1/jobs/job_nope/logs", "a", http.StatusNotFound, "not_found"},
		{"another tenant's job", "/v1/jobs/job_pj/logs", "b", http.StatusNotFound, "not_found"},
		{"no read scope", "/v1/jobs/job_pj/logs", "a-slow-submit", http.StatusForbidden, "forbidden"},
		{"no key", "/v1/jobs/job_pj/logs", "", http.StatusUnauthorized, ""},
		{"tail 0", "/v1/jobs/job_pj/logs?tail=0", "a", http.StatusBadRequest, "invalid_request"},
		{"tail too large", "/v1/jobs/job_pj/logs?tail=10001", "a", http.StatusBadRequest, "invalid_request"},
		{"tail not a number", "/v1/jobs/job_pj/logs?tail=all", "a", http.StatusBadRequest, "invalid_request"},
		{"follow not a bool", "/v1/jobs/job_pj/logs?follow=maybe", "a", http.StatusBadRequest, "invalid_request"},
		{"Job mode, not started", "/v1/jobs/job_queued/logs", "a", http.StatusConflict, "logs_unavailable"},
		{"Job mode, pod gone", "/v1/jobs/job_jm-gone/logs", "a", http.StatusConflict, "logs_unavailable"},
		{"pooled, between attempts", "/v1/jobs/job_between/logs", "a", http.StatusConflict, "logs_unavailable"},
		{"pooled, pod gone", "/v1/jobs/job_gone/logs", "a", http.StatusConflict, "logs_unavailable"},
		{"pooled, pod of that name replaced", "/v1/jobs/job_replaced/logs", "a", http.StatusConflict, "logs_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.do(http.MethodGet, tc.path, f.keys[tc.key], "")
			if code != tc.wantCode {
				t.Fatalf("GET %s = %d %v, want %d", tc.path, code, body, tc.wantCode)
			}
			if e := errorOf(body); tc.wantErr != "" && (e == nil || e["code"] != tc.wantErr) {
				t.Errorf("error = %v, want code %q", e, tc.wantErr)
			}
			if strings.HasPrefix(tc.name, "tail") && errorOf(body)["field"] != "tail" {
				t.Errorf("error = %v, want field tail", errorOf(body))
			}
		})
	}

	// The apiserver's answers: RBAC missing in the namespace, a container not started yet.
	logs.err = apierrors.NewForbidden(schema.GroupResource{Resource: "pods/log"}, "pool-pod-1", fmt.Errorf("no"))
	if code, body := f.do(http.MethodGet, "/v1/jobs/job_pj/logs", f.keys["a"], ""); code != http.StatusServiceUnavailable || errorOf(body)["code"] != "logs_unavailable" {
		t.Errorf("forbidden pods/log: %d %v, want 503 logs_unavailable", code, body)
	}
	logs.err = apierrors.NewBadRequest(`container "worker" in pod "pool-pod-1" is waiting to start: ContainerCreating`)
	if code, body := f.do(http.MethodGet, "/v1/jobs/job_pj/logs", f.keys["a"], ""); code != http.StatusConflict || !strings.Contains(fmt.Sprint(errorOf(body)["message"]), "waiting to start") {
		t.Errorf("container not started: %d %v, want 409 naming it", code, body)
	}
	f.server.Logs = nil
	if code, _ := f.do(http.MethodGet, "/v1/jobs/job_pj/logs", f.keys["a"], ""); code != http.StatusServiceUnavailable {
		t.Errorf("no log source: %d, want 503", code)
	}
}

// TestJobLogsByteCap: an answer holds at most MaxLogBytes: the last whole lines that fit.
func TestJobLogsByteCap(t *testing.T) {
	line := strings.Repeat("x", 1000)
	var log strings.Builder
	log.WriteString(joblog.BeginLine(pooledAttempt))
	for i := range 3000 {
		fmt.Fprintf(&log, "%04d %s\n", i, line)
	}
	log.WriteString("last\n")
	log.WriteString(joblog.EndLine(pooledAttempt, "process exited 0 after 1s"))
	f := logsFixture(t, &fakeLogs{logs: map[string]string{"tenant-a/pool-pod-1": log.String()}})

	_, _, body := f.getText("/v1/jobs/job_pj/logs?tail=10000", f.keys["a"])
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(body) > MaxLogBytes || len(body) < MaxLogBytes-2000 || lines[len(lines)-1] != "last" || len(lines[0]) != len(line)+5 {
		t.Errorf("tail=10000: %d bytes, first line %.20q, last %q; want at most %d of whole lines up to the last", len(body), lines[0], lines[len(lines)-1], MaxLogBytes)
	}
	_, _, body = f.getText("/v1/jobs/job_pj/logs?tail=10", f.keys["a"])
	lines = strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 10 || lines[0] != "2991 "+line || lines[9] != "last" {
		t.Errorf("tail=10: %d lines, first %.20q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}

// TestJobLogsFollow: follow sends the attempt's lines so far, then its new lines as they come, and
// ends at its end marker; none of another job's lines, and none twice.
func TestJobLogsFollow(t *testing.T) {
	now := joblog.BeginLine(pooledAttempt) + "first\nsecond\n"
	pr, pw := io.Pipe()
	logs := &fakeLogs{
		logs:   map[string]string{"tenant-a/pool-pod-1": joblog.BeginLine(otherAttempt) + "other\n" + joblog.EndLine(otherAttempt, "done") + now},
		follow: map[string]io.ReadCloser{"tenant-a/pool-pod-1": pr},
	}
	f := logsFixture(t, logs)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs/job_pj/logs?follow=true", nil)
	req.Header.Set("X-Api-Key", f.keys["a"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("follow: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 10)
	go func() {
		_ = joblog.ReadLines(resp.Body, 1<<20, func(l []byte) error { lines <- string(l); return nil })
		close(lines)
	}()
	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no line streamed")
			return ""
		}
	}
	// The lines so far arrive before any new one is written.
	for _, want := range []string{"first", "second"} {
		if got := next(); got != want {
			t.Fatalf("streamed %q, want %q", got, want)
		}
	}
	go func() {
		// The follow read starts again from the attempt's begin: "first" and "second" are skipped.
		_, _ = io.WriteString(pw, joblog.BeginLine(otherAttempt)+"other\n"+joblog.EndLine(otherAttempt, "done")+now+"third\n")
		time.Sleep(50 * time.Millisecond)
		_, _ = io.WriteString(pw, "fourth\n"+joblog.EndLine(pooledAttempt, "process exited 0 after 1s")+"after the end\n")
	}()
	var got []string
	for l := range lines {
		got = append(got, l)
	}
	if diff := cmp.Diff([]string{"third", "fourth"}, got); diff != "" {
		t.Errorf("streamed after the first lines (-want +got):\n%s", diff)
	}
	if len(logs.opts) != 2 || logs.opts[0].Follow || !logs.opts[1].Follow || logs.opts[1].SinceTime == nil {
		t.Errorf("log reads: %+v, want one read, then one follow from the attempt's start", logs.opts)
	}
}

// TestJobLogsFollowJobMode: in Job mode the kubelet tails and follows the pod's container log.
func TestJobLogsFollowJobMode(t *testing.T) {
	logs := &fakeLogs{
		logs:   map[string]string{},
		follow: map[string]io.ReadCloser{"tenant-a/jm-new": io.NopCloser(strings.NewReader("a\nb\n"))},
	}
	f := logsFixture(t, logs)
	code, _, body := f.getText("/v1/jobs/job_jm/logs?follow=true&tail=5", f.keys["a"])
	if code != http.StatusOK || body != "a\nb\n" {
		t.Errorf("follow = %d %q", code, body)
	}
	want := []corev1.PodLogOptions{{Container: "worker", Follow: true, TailLines: ptr.To[int64](5)}}
	if diff := cmp.Diff(want, logs.opts); diff != "" {
		t.Errorf("log reads (-want +got):\n%s", diff)
	}
}

// TestJobLogsFollowCap: beyond MaxLogFollows streams at once, a follow is 503 with Retry-After; a read
// without follow is not counted, and a stream that ended frees its place.
func TestJobLogsFollowCap(t *testing.T) {
	pr, pw := io.Pipe()
	logs := &fakeLogs{
		logs:   map[string]string{"tenant-a/jm-new": "a\n"},
		follow: map[string]io.ReadCloser{"tenant-a/jm-new": pr},
	}
	f := logsFixture(t, logs)
	f.server.MaxLogFollows = 1
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	get := func(query string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs/job_jm/logs"+query, nil)
		req.Header.Set("X-Api-Key", f.keys["a"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := get("?follow=true")
	defer first.Body.Close()
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first follow: %d", first.StatusCode)
	}
	second := get("?follow=true")
	_ = second.Body.Close()
	if second.StatusCode != http.StatusServiceUnavailable || second.Header.Get("Retry-After") != "5" {
		t.Errorf("second follow: %d, Retry-After %q; want 503, 5", second.StatusCode, second.Header.Get("Retry-After"))
	}
	if plain := get(""); plain.StatusCode != http.StatusOK {
		t.Errorf("without follow: %d, want 200", plain.StatusCode)
	} else {
		_ = plain.Body.Close()
	}
	_ = pw.Close() // the first stream ends
	_, _ = io.ReadAll(first.Body)
	logs.mu.Lock()
	logs.follow["tenant-a/jm-new"] = io.NopCloser(strings.NewReader("b\n"))
	logs.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := get("?follow=true")
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follow after the first ended: %d, want 200", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJobLogsKept: once an attempt has ended, its kept output (status.logs, the Secret it names) is the
// answer, with or without follow, and no pod's log is read; a job whose attempt wrote nothing answers
// empty; a Secret that is not the job's is not served.
func TestJobLogsKept(t *testing.T) {
	kept := func(sj *seekv1alpha1.SeekJob, attempts int32, logs *seekv1alpha1.JobLogs) *seekv1alpha1.SeekJob {
		sj.Status.Attempts, sj.Status.Logs = attempts, logs
		return sj
	}
	secret := func(name, uid, text string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: name, Labels: map[string]string{seekv1alpha1.LabelJobUID: uid}},
			Type:       seekv1alpha1.LogsSecretType,
			Data:       map[string][]byte{seekv1alpha1.LogsSecretKey: []byte(text)},
		}
	}
	f := newFixture(t, nil,
		kept(testutil.MakeSeekJob("done", "tenant-a").UID("uid-done").Worker("sleep").JobName("done").State(seekv1alpha1.JobStateCanceled).Obj(),
			1, &seekv1alpha1.JobLogs{SecretName: "done-logs", Attempt: 1, Bytes: 21}),
		secret("done-logs", "uid-done", "line 1\nline 2\nline 3\n"),
		kept(testutil.MakeSeekJob("inline", "tenant-a").UID("uid-inline").Worker("echo").
			Leased("seek-pool-echo-1", "gone-pod", "gone-uid", logStart).State(seekv1alpha1.JobStateCompleted).Obj(),
			1, &seekv1alpha1.JobLogs{Attempt: 1, Bytes: 4, Text: "a\nb\n"}),
		kept(testutil.MakeSeekJob("quiet", "tenant-a").UID("uid-quiet").Worker("echo").
			Leased("seek-pool-echo-1", "gone-pod", "gone-uid", logStart).State(seekv1alpha1.JobStateCompleted).Obj(),
			1, &seekv1alpha1.JobLogs{Attempt: 1}),
		kept(testutil.MakeSeekJob("retrying", "tenant-a").UID("uid-retrying").Worker("echo").
			Leased("seek-pool-echo-1", "", "", logStart).State(seekv1alpha1.JobStateRunning).Obj(),
			1, &seekv1alpha1.JobLogs{SecretName: "retrying-logs", Attempt: 1, Bytes: 7}),
		secret("retrying-logs", "uid-retrying", "failed\n"),
		kept(testutil.MakeSeekJob("foreign", "tenant-a").UID("uid-foreign").Worker("sleep").JobName("foreign").State(seekv1alpha1.JobStateFailed).Obj(),
			1, &seekv1alpha1.JobLogs{SecretName: "foreign-logs", Attempt: 1, Bytes: 4}),
		secret("foreign-logs", "uid-someone-else", "not\n"),
	)
	logs := &fakeLogs{logs: map[string]string{}}
	f.server.Logs = logs
	cases := []struct {
		name, path string
		wantCode   int
		want       string
	}{
		{"the kept tail, the pod gone", "/v1/jobs/job_done/logs", http.StatusOK, "line 1\nline 2\nline 3\n"},
		{"tail=1", "/v1/jobs/job_done/logs?tail=1", http.StatusOK, "line 3\n"},
		{"follow on an ended attempt answers at once", "/v1/jobs/job_done/logs?follow=true", http.StatusOK, "line 1\nline 2\nline 3\n"},
		{"an attempt that wrote nothing", "/v1/jobs/job_quiet/logs", http.StatusOK, ""},
		{"kept inline", "/v1/jobs/job_inline/logs?tail=1", http.StatusOK, "b\n"},
		{"pooled, between attempts: the failed attempt's", "/v1/jobs/job_retrying/logs", http.StatusOK, "failed\n"},
		{"a Secret that is not the job's", "/v1/jobs/job_foreign/logs", http.StatusConflict, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := f.getText(tc.path, f.keys["a-readonly"])
			if code != tc.wantCode {
				t.Fatalf("GET %s = %d %q, want %d", tc.path, code, body, tc.wantCode)
			}
			if code == http.StatusOK && body != tc.want {
				t.Errorf("body = %q, want %q", body, tc.want)
			}
		})
	}
	if len(logs.opts) != 0 {
		t.Errorf("pod logs read: %v, want none", logs.opts)
	}
}
