package runner

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seek-api/seek-operator/pkg/dispatch"
)

func TestCollect(t *testing.T) {
	large := `"` + strings.Repeat("r", 5000) + `"`
	envelope := func(c dispatch.Collected) string {
		data, _ := json.Marshal(c)
		return dispatch.CollectedPrefix + string(data)
	}
	for _, tc := range []struct {
		name string
		// file is the result file's content; nil: no file.
		file *string
		// answers are the endpoint's statuses, in turn (the last repeats).
		answers []int
		want    string
		uploads int
	}{
		{name: "no file", want: envelope(dispatch.Collected{})},
		{name: "empty file", file: ptrTo(""), want: envelope(dispatch.Collected{})},
		{name: "a small result verbatim, trimmed", file: ptrTo(" {\"ok\":true}\n"), want: `{"ok":true}`},
		{name: "an error text verbatim", file: ptrTo("disk on fire"), want: "disk on fire"},
		{name: "a large result is uploaded", file: &large, answers: []int{200}, uploads: 1,
			want: envelope(dispatch.Collected{Bytes: 5002, SecretName: "job-result", SHA256: "abc"})},
		{name: "a refused upload is retried", file: &large, answers: []int{503, 200}, uploads: 2,
			want: envelope(dispatch.Collected{Bytes: 5002, SecretName: "job-result", SHA256: "abc"})},
		{name: "a forbidden upload is not", file: &large, answers: []int{403}, uploads: 1,
			want: envelope(dispatch.Collected{Bytes: 5002, Error: "storing the result: HTTP 403 NotTheJobsPod: no"})},
		{name: "a large text: its last 4096 bytes", file: ptrTo(strings.Repeat("a", 5000) + strings.Repeat("b", 4096)), want: strings.Repeat("b", 4096)},
		{name: "over 1 MiB", file: ptrTo(strings.Repeat("1", 2<<20)),
			want: envelope(dispatch.Collected{Bytes: 2 << 20, Error: "the result is 2097152 bytes; at most 1048576 fit"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			token := filepath.Join(dir, "token")
			if err := os.WriteFile(token, []byte("tok\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			result := filepath.Join(dir, "result.json")
			if tc.file != nil {
				if err := os.WriteFile(result, []byte(*tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				var up dispatch.ResultUpload
				if r.URL.Path != dispatch.PathResult || r.Header.Get("Authorization") != "Bearer tok" || json.NewDecoder(r.Body).Decode(&up) != nil ||
					up != (dispatch.ResultUpload{Namespace: "ns", Name: "job", UID: "uid", Result: large}) {
					t.Errorf("unexpected call %s %v", r.URL.Path, r.Header)
				}
				status := tc.answers[min(n, len(tc.answers))-1]
				if status != http.StatusOK {
					writeJSON(w, status, dispatch.ErrorResponse{Reason: "NotTheJobsPod", Message: "no"})
					return
				}
				writeJSON(w, status, dispatch.ResultResponse{SecretName: "job-result", Bytes: 5002, SHA256: "abc"})
			}))
			defer srv.Close()
			ended, cancel := context.WithCancel(context.Background())
			cancel() // the worker has ended
			got := Collect(ended, CollectConfig{URL: srv.URL, TokenPath: token, ResultPath: result, Namespace: "ns", Name: "job", UID: "uid",
				Log: &strings.Builder{}, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond, CollectFor: 5 * time.Second})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("termination message (-want +got):\n%s", diff)
			}
			if n := int(calls.Load()); n != tc.uploads {
				t.Errorf("%d uploads, want %d", n, tc.uploads)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }
