package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// TestKeptOutput: the last whole lines within the limit are kept; a line cut at the start of the tail
// is dropped, unless it is all there is; omitted counts what came before.
func TestKeptOutput(t *testing.T) {
	cases := []struct {
		name        string
		tail        string
		total       int64
		limit       int
		want        string
		wantOmitted int64
	}{
		{"all of it", "a\nb\n", 4, 16, "a\nb\n", 0},
		{"nothing", "", 0, 16, "", 0},
		{"cut to whole lines", "aaaa\nbb\ncc\n", 11, 5, "cc\n", 8},
		{"the limit falls after a newline", "aaaa\nbb\ncc\n", 11, 6, "bb\ncc\n", 5},
		{"the limit falls on a line's start", "aaaa\nbb\ncc\n", 11, 7, "bb\ncc\n", 5},
		{"the tail may begin within a line", "bb\ncc\n", 11, 6, "cc\n", 8},
		{"the tail was cut within a line", "b\ncc\n", 11, 6, "cc\n", 8},
		{"one long line", "xxxxxxxxxx\n", 11, 4, "xxx\n", 7},
		{"total unknown (0)", "a\nb\n", 0, 16, "a\nb\n", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kept, omitted := keptOutput([]byte(tc.tail), tc.total, tc.limit)
			if string(kept) != tc.want || omitted != tc.wantOmitted {
				t.Errorf("keptOutput = %q, %d; want %q, %d", kept, omitted, tc.want, tc.wantOmitted)
			}
		})
	}
}

// TestReportedLogs: what a report leaves in status.logs.
func TestReportedLogs(t *testing.T) {
	keeps := testutil.MakeSeekWorker("echo").Obj()
	keepsNone := testutil.MakeSeekWorker("echo").Obj()
	keepsNone.Spec.Logs.RetainedBytes = ptr.To[int32](0)
	stored := &seekv1alpha1.JobLogs{SecretName: "j-logs", Attempt: 2, Bytes: 3}
	ref := dispatch.AttemptRef{Namespace: "ns", Name: "j", UID: "u", Attempt: 2}
	cases := []struct {
		name   string
		report dispatch.Report
		w      *seekv1alpha1.SeekWorker
		stored *seekv1alpha1.JobLogs
		want   *seekv1alpha1.JobLogs
	}{
		{"stored", dispatch.Report{AttemptRef: ref, LogTail: "a\n"}, keeps, stored, stored},
		{"wrote nothing", dispatch.Report{AttemptRef: ref}, keeps, nil, &seekv1alpha1.JobLogs{Attempt: 2}},
		{"not stored (the Secret is another's)", dispatch.Report{AttemptRef: ref, LogTail: "a\n"}, keeps, nil, nil},
		{"interrupted", dispatch.Report{AttemptRef: ref, Interrupted: true}, keeps, nil, nil},
		{"the worker keeps no logs", dispatch.Report{AttemptRef: ref}, keepsNone, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, reportedLogs(&tc.report, tc.w, tc.stored)); diff != "" {
				t.Errorf("reportedLogs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRetainedLogBytes: the default applies when unset.
func TestRetainedLogBytes(t *testing.T) {
	w := testutil.MakeSeekWorker("echo").Obj()
	if got := retainedLogBytes(w); got != seekv1alpha1.DefaultRetainedLogBytes {
		t.Errorf("unset: %d, want %d", got, seekv1alpha1.DefaultRetainedLogBytes)
	}
	w.Spec.Logs.RetainedBytes = ptr.To[int32](100)
	if got := retainedLogBytes(w); got != 100 {
		t.Errorf("set: %d, want 100", got)
	}
}

// TestStoppedHere: only the pod that ran a pooled job's last attempt, once the job has ended, and
// before that attempt's output is kept, may send the output of the stopped attempt.
func TestStoppedHere(t *testing.T) {
	ref := dispatch.AttemptRef{Namespace: "ns", Name: "j", UID: "u", Attempt: 1}
	ended := func(edit func(sj *seekv1alpha1.SeekJob)) *seekv1alpha1.SeekJob {
		sj := testutil.MakeSeekJob("j", "ns").UID("u").Worker("echo").Leased("pool-1", "pod", "pod-uid", time.Time{}).
			State(seekv1alpha1.JobStateCanceled).Obj()
		sj.Status.Attempts = 1
		if edit != nil {
			edit(sj)
		}
		return sj
	}
	cases := []struct {
		name string
		sj   *seekv1alpha1.SeekJob
		pod  string
		ref  dispatch.AttemptRef
		want bool
	}{
		{"the canceled job's pod", ended(nil), "pod-uid", ref, true},
		{"another pod", ended(nil), "other", ref, false},
		{"the job still runs", ended(func(sj *seekv1alpha1.SeekJob) { sj.Status.State = seekv1alpha1.JobStateRunning }), "pod-uid", ref, false},
		{"another attempt", ended(func(sj *seekv1alpha1.SeekJob) { sj.Status.Attempts = 2 }), "pod-uid", ref, false},
		{"a job of the same name made again", ended(func(sj *seekv1alpha1.SeekJob) { sj.UID = "u2" }), "pod-uid", ref, false},
		{"its output kept already", ended(func(sj *seekv1alpha1.SeekJob) { sj.Status.Logs = &seekv1alpha1.JobLogs{Attempt: 1} }), "pod-uid", ref, false},
		{"an earlier attempt's output kept", ended(func(sj *seekv1alpha1.SeekJob) {
			sj.Status.Attempts, sj.Status.Logs = 2, &seekv1alpha1.JobLogs{Attempt: 1}
		}), "pod-uid", dispatch.AttemptRef{Namespace: "ns", Name: "j", UID: "u", Attempt: 2}, true},
		{"Job mode", ended(func(sj *seekv1alpha1.SeekJob) { sj.Status.Pool = nil }), "pod-uid", ref, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := stoppedHere(tc.sj, tc.pod, tc.ref); got != tc.want {
				t.Errorf("stoppedHere = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestStoreLogsInline: short UTF-8 output is kept inline (no Secret, no write); longer output, or bytes
// that are not UTF-8, go to the Secret.
func TestStoreLogsInline(t *testing.T) {
	w := testutil.MakeSeekWorker("echo").Obj()
	sj := testutil.MakeSeekJob("j", "ns").UID("u").Worker("echo").Obj()
	long := []byte(strings.Repeat("x", seekv1alpha1.MaxInlineLogBytes) + "\n")
	cases := []struct {
		name       string
		tail       []byte
		want       *seekv1alpha1.JobLogs
		wantSecret bool
	}{
		{"nothing", nil, &seekv1alpha1.JobLogs{Attempt: 1}, false},
		{"short text", []byte("done\n"), &seekv1alpha1.JobLogs{Attempt: 1, Bytes: 5, Text: "done\n"}, false},
		{"longer than the inline limit", long, &seekv1alpha1.JobLogs{SecretName: "j-logs", Attempt: 1, Bytes: int64(len(long))}, true},
		{"not UTF-8", []byte("\xff\xfe\n"), &seekv1alpha1.JobLogs{SecretName: "j-logs", Attempt: 1, Bytes: 3}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(newTestScheme(t)).Build()
			got, err := storeLogs(context.Background(), c, c, sj, w, 1, tc.tail, int64(len(tc.tail)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("status.logs (-want +got):\n%s", diff)
			}
			s := &corev1.Secret{}
			err = c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: "j-logs"}, s)
			if exists := err == nil; exists != tc.wantSecret {
				t.Fatalf("Secret exists = %v, want %v", exists, tc.wantSecret)
			}
			if tc.wantSecret && string(s.Data[seekv1alpha1.LogsSecretKey]) != string(tc.tail) {
				t.Errorf("Secret holds %q, want %q", s.Data[seekv1alpha1.LogsSecretKey], tc.tail)
			}
		})
	}
}
