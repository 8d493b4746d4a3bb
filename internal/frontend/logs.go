package frontend

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/podlogs"
	"github.com/seek-api/seek-operator/internal/restapi"
	"github.com/seek-api/seek-operator/internal/tenants"
	"github.com/seek-api/seek-operator/pkg/joblog"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// Bounds of GET /v1/jobs/{id}/logs.
const (
	// DefaultLogTail and MaxLogTail bound the lines of an answer (the tail query parameter).
	DefaultLogTail = 100
	MaxLogTail     = 10_000
	// MaxLogBytes bounds an answer's body, and a followed stream's: the last lines that fit are kept,
	// and a longer line is cut.
	MaxLogBytes = 1 << 20
	// LogScanBytes bounds what one answer reads of a pod's log: in pooled mode, from a little before the
	// attempt's start; in Job mode, of the tail the kubelet returns.
	LogScanBytes = podlogs.MaxScanBytes
	// LogFollowMax bounds how long a follow=true answer streams; the client asks again to go on.
	LogFollowMax = 5 * time.Minute
	// DefaultMaxLogFollows bounds the follow=true answers one frontend replica streams at once (each
	// holds a log stream from the kubelet through the apiserver); beyond it, 503 with Retry-After.
	DefaultMaxLogFollows = 100
	// logSinceMargin is taken off an attempt's start time (second precision, and the manager's clock,
	// not the node's) when reading a pool pod's log from it.
	logSinceMargin = 10 * time.Second
)

// PodLogs opens a container's log. In production it is the apiserver's pods/log (podlogs.New): the
// frontend never lists or watches pods cluster-wide.
type PodLogs = podlogs.Reader

// logQuery is what a logs request asks for.
type logQuery struct {
	tail   int
	follow bool
}

func parseLogQuery(r *http.Request) (logQuery, error) {
	q := logQuery{tail: DefaultLogTail}
	v := r.URL.Query()
	if s := v.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLogTail {
			return q, &restapi.Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "tail",
				Message: fmt.Sprintf("tail must be a whole number of lines from 1 to %d", MaxLogTail)}
		}
		q.tail = n
	}
	if s := v.Get("follow"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, &restapi.Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "follow", Message: "follow must be true or false"}
		}
		q.follow = b
	}
	return q, nil
}

// logTarget is where a job's log is read: a container of a pod, and in pooled mode the attempt whose
// lines are taken out of it.
type logTarget struct {
	namespace, pod string
	opts           corev1.PodLogOptions
	attempt        *joblog.Attempt
}

// noLogs is the answer when a job has no log to read.
func noLogs(format string, args ...any) error {
	return &restapi.Error{Status: http.StatusConflict, Code: "logs_unavailable", Message: fmt.Sprintf(format, args...)}
}

// logTargetOf finds the pod that ran (or runs) sj's latest attempt. It reads pods from the apiserver
// (one get, or in Job mode one list by the job's UID label, in the tenant's namespace).
func (s *Server) logTargetOf(ctx context.Context, sj *seekv1alpha1.SeekJob) (*logTarget, error) {
	t := &logTarget{namespace: sj.Namespace, opts: corev1.PodLogOptions{Container: protocol.ContainerName}}
	if p := sj.Status.Pool; p != nil {
		if p.PodName == "" {
			return nil, noLogs("the job is waiting for its next attempt")
		}
		pod := &corev1.Pod{}
		err := s.APIReader.Get(ctx, types.NamespacedName{Namespace: sj.Namespace, Name: p.PodName}, pod)
		if apierrors.IsNotFound(err) || (err == nil && string(pod.UID) != p.PodUID) {
			return nil, noLogs("the pool pod that ran the job's last attempt is gone, and its log with it")
		}
		if err != nil {
			return nil, podsError(err)
		}
		since := pod.CreationTimestamp.Time
		if st := sj.Status.StartTime; st != nil && st.After(since) {
			since = st.Time
		}
		t.pod = pod.Name
		t.opts.SinceTime = &metav1.Time{Time: since.Add(-logSinceMargin)}
		t.attempt = &joblog.Attempt{Namespace: sj.Namespace, Name: sj.Name, UID: string(sj.UID), Attempt: sj.Status.Attempts}
		return t, nil
	}
	if sj.Status.JobName == "" {
		return nil, noLogs("the job has not started")
	}
	pods := &corev1.PodList{}
	if err := s.APIReader.List(ctx, pods, client.InNamespace(sj.Namespace), client.MatchingLabels{seekv1alpha1.LabelJobUID: string(sj.UID)}); err != nil {
		return nil, podsError(err)
	}
	latest := podlogs.Newest(pods.Items)
	if latest == nil {
		return nil, noLogs("the job's pod is gone, and its log with it")
	}
	t.pod = latest.Name
	return t, nil
}

// podsError turns an error reading pods or their logs into the API's.
func podsError(err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return &restapi.Error{Status: http.StatusServiceUnavailable, Code: "logs_unavailable",
			Message: "the API may not read this tenant's pods: its namespace was set up before job logs (seekctl tenants create, again)"}
	case apierrors.IsNotFound(err):
		return noLogs("the job's pod is gone, and its log with it")
	case apierrors.IsBadRequest(err):
		// The kubelet's answer for a container that has not started: "... is waiting to start: ...".
		return noLogs("the job's container has no log yet: %s", err.Error())
	}
	return err
}

// jobLogs serves GET /v1/jobs/{id}/logs: the last lines of the job's latest attempt, or with
// follow=true those and then its new lines while it runs.
func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request, p *Principal) error {
	sj, err := s.job(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	q, err := parseLogQuery(r)
	if err != nil {
		return err
	}
	if kept := keptLogs(sj); kept != nil {
		// The attempt has ended and the manager kept the end of its output: it is the answer, with or
		// without follow, whether or not the pod is still there.
		tail, err := s.readKept(r.Context(), sj, kept, q.tail)
		if err != nil {
			return err
		}
		writeTextHeader(w)
		_, _ = w.Write(tail.Bytes())
		return nil
	}
	if s.Logs == nil {
		return &restapi.Error{Status: http.StatusServiceUnavailable, Code: "logs_unavailable", Message: "this server does not serve logs"}
	}
	t, err := s.logTargetOf(r.Context(), sj)
	if err != nil {
		return err
	}
	if !q.follow {
		tail, _, _, err := s.readTail(r.Context(), t, q.tail)
		if err != nil {
			return err
		}
		writeTextHeader(w)
		_, _ = w.Write(tail.Bytes())
		return nil
	}
	limit := int32(cmp.Or(s.MaxLogFollows, DefaultMaxLogFollows))
	if s.follows.Add(1) > limit {
		s.follows.Add(-1)
		return &restapi.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", RetryAfter: 5,
			Message: fmt.Sprintf("this server streams %d logs already; retry shortly, or read without follow", limit)}
	}
	defer s.follows.Add(-1)
	return s.followLogs(w, r, t, q.tail)
}

// keptLogs is the kept end of the output of sj's latest attempt, once that attempt has ended: the job
// finished, or (pooled) it waits for its next attempt. Nil otherwise: the pod's log is read.
func keptLogs(sj *seekv1alpha1.SeekJob) *seekv1alpha1.JobLogs {
	kept := sj.Status.Logs
	if kept == nil || kept.Attempt != sj.Status.Attempts {
		return nil
	}
	if sj.Status.State.IsTerminal() || (sj.Status.Pool != nil && sj.Status.Pool.PodName == "") {
		return kept
	}
	return nil
}

// readKept reads the kept output from the Secret kept names (one read from the apiserver; Secrets are
// not cached) and keeps its last lines within the bounds. An attempt that wrote nothing has no Secret.
func (s *Server) readKept(ctx context.Context, sj *seekv1alpha1.SeekJob, kept *seekv1alpha1.JobLogs, lines int) (*joblog.Tail, error) {
	tail := &joblog.Tail{MaxLines: lines, MaxBytes: MaxLogBytes}
	add := func(line []byte) error {
		tail.Add(line)
		return nil
	}
	if kept.SecretName == "" {
		// Inline (or nothing was written).
		return tail, joblog.ReadLines(strings.NewReader(kept.Text), MaxLogBytes, add)
	}
	secret := &corev1.Secret{}
	if err := s.APIReader.Get(ctx, client.ObjectKey{Namespace: sj.Namespace, Name: kept.SecretName}, secret); err != nil {
		return nil, &restapi.Error{Status: http.StatusServiceUnavailable, Code: "logs_unavailable", RetryAfter: 1, Message: fmt.Sprintf(
			"the job's logs are kept in Secret %s, which cannot be read (is the tenant's Role %s missing? run `seekctl tenants create %s`): %v",
			kept.SecretName, tenants.FrontendRoleName, sj.Namespace, err)}
	}
	if secret.Labels[seekv1alpha1.LabelJobUID] != string(sj.UID) || secret.Type != seekv1alpha1.LogsSecretType {
		return nil, noLogs("Secret %s, where the job's logs were kept, is not the job's", kept.SecretName)
	}
	err := joblog.ReadLines(bytes.NewReader(secret.Data[seekv1alpha1.LogsSecretKey]), MaxLogBytes, add)
	if err != nil {
		return nil, fmt.Errorf("read the logs kept in Secret %s/%s: %w", sj.Namespace, kept.SecretName, err)
	}
	return tail, nil
}

func writeTextHeader(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// readTail reads t's log as it is now and keeps its last lines within the bounds. In pooled mode it
// also returns how many of the attempt's lines it saw, and whether the attempt's output has ended.
func (s *Server) readTail(ctx context.Context, t *logTarget, lines int) (tail *joblog.Tail, seen int, done bool, err error) {
	tail = &joblog.Tail{MaxLines: lines, MaxBytes: MaxLogBytes}
	opts := t.opts
	opts.LimitBytes = ptr.To(int64(LogScanBytes))
	if t.attempt == nil {
		opts.TailLines = ptr.To(int64(lines))
	}
	rc, err := s.Logs.Stream(ctx, t.namespace, t.pod, &opts)
	if err != nil {
		return nil, 0, false, podsError(err)
	}
	defer rc.Close()
	var f *joblog.Filter
	if t.attempt != nil {
		f = joblog.NewFilter(*t.attempt)
	}
	err = joblog.ReadLines(rc, MaxLogBytes, func(line []byte) error {
		if f == nil {
			tail.Add(line)
			return nil
		}
		keep, done := f.Line(line)
		if keep {
			tail.Add(line)
			seen++
		}
		if done {
			return joblog.ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("read the log of pod %s/%s: %w", t.namespace, t.pod, err)
	}
	return tail, seen, f != nil && f.Done(), nil
}

// followLogs streams t's log: its last lines now, then every new line, until the attempt's output
// ends (pooled mode: its end marker), the container ends, MaxLogBytes were sent, LogFollowMax passes
// or the client goes away.
func (s *Server) followLogs(w http.ResponseWriter, r *http.Request, t *logTarget, lines int) error {
	ctx, cancel := context.WithTimeout(r.Context(), LogFollowMax)
	defer cancel()
	opts := t.opts
	opts.Follow = true
	var f *joblog.Filter
	skip := 0
	var first []byte
	if t.attempt == nil {
		opts.TailLines = ptr.To(int64(lines))
	} else {
		// The pod's log holds other jobs' lines, so the kubelet's tail cannot be used: read the
		// attempt's lines up to now, send the last, then follow from the same start and skip those seen.
		tail, seen, done, err := s.readTail(ctx, t, lines)
		if err != nil {
			return err
		}
		if done {
			writeTextHeader(w)
			_, _ = w.Write(tail.Bytes())
			return nil
		}
		first, skip = tail.Bytes(), seen
		f = joblog.NewFilter(*t.attempt)
	}
	rc, err := s.Logs.Stream(ctx, t.namespace, t.pod, &opts)
	if err != nil {
		return podsError(err)
	}
	defer rc.Close()

	rc2 := http.NewResponseController(w)
	// The server's WriteTimeout is for ordinary answers; a stream has its own bound.
	_ = rc2.SetWriteDeadline(time.Now().Add(LogFollowMax + 10*time.Second))
	writeTextHeader(w)
	sent := 0
	write := func(b []byte) error {
		if sent+len(b) > MaxLogBytes {
			return joblog.ErrStop
		}
		sent += len(b)
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc2.Flush()
	}
	if err := write(first); err != nil {
		return nil //nolint:nilerr // the answer has started: it just ends
	}
	err = joblog.ReadLines(rc, MaxLogBytes-1, func(line []byte) error {
		if f != nil {
			keep, done := f.Line(line)
			if done {
				return joblog.ErrStop
			}
			if !keep {
				return nil
			}
			if skip > 0 {
				skip--
				return nil
			}
		}
		return write(append(append(make([]byte, 0, len(line)+1), line...), '\n'))
	})
	if err != nil && ctx.Err() == nil && r.Context().Err() == nil {
		// The answer has started: it can only end. Say why in the server's log.
		ctrl.LoggerFrom(r.Context()).V(1).Info("Log stream ended", "pod", t.namespace+"/"+t.pod, "error", err)
	}
	return nil
}
