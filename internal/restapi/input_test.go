package restapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestExactNumber(t *testing.T) {
	kept := []string{"0", "-0", "1", "-1", "9223372036854775807", "-9223372036854775808", "9007199254740993",
		"0.1", "0.1e1", "1.0", "1.50", "1e2", "1E+2", "100e-2", "1e21", "1e300", "1.7976931348623157e308", "5e-324",
		"100000000000000000000", "0.0000001", "-0.0", "0e99999999999999999999"}
	for _, n := range kept {
		if err := exactNumber(n); err != nil {
			t.Errorf("%s: %v, want kept", n, err)
		}
	}
	refused := []string{"1e999", "-1e999", "1.8e308", "12345678901234567890", "9223372036854775808", "-9223372036854775809",
		"0.30000000000000000001", "1e-400", "2e-324", "1e-99999999999999999999", "9007199254740993.0", "3.141592653589793238"}
	for _, n := range refused {
		if err := exactNumber(n); err == nil {
			t.Errorf("%s: kept, want refused", n)
		}
	}
}

func TestParseJobOptions(t *testing.T) {
	w := testutil.MakeSeekWorker("echo").Timeouts(time.Minute, 2*time.Hour).Obj()
	unset := testutil.MakeSeekWorker("plain").Obj() // maximumTimeout as the CRD defaults it: 1h
	cases := []struct {
		name      string
		worker    *seekv1alpha1.SeekWorker
		query     string
		want      JobOptions
		wantField string
	}{
		{name: "none", worker: w, query: ""},
		{name: "both", worker: w, query: "timeout=90s&retention=1h30m", want: JobOptions{Timeout: ptr.To(90 * time.Second), Retention: ptr.To(90 * time.Minute)}},
		{name: "the worker's maximum", worker: w, query: "timeout=2h", want: JobOptions{Timeout: ptr.To(2 * time.Hour)}},
		{name: "retention 0s and 720h", worker: w, query: "retention=0s", want: JobOptions{Retention: ptr.To(time.Duration(0))}},
		{name: "retention at the bound", worker: w, query: "retention=720h", want: JobOptions{Retention: ptr.To(720 * time.Hour)}},
		{name: "timeout over the worker's maximum", worker: w, query: "timeout=2h1s", wantField: "timeout"},
		{name: "timeout over the default maximum", worker: unset, query: "timeout=61m", wantField: "timeout"},
		{name: "timeout under 1s", worker: w, query: "timeout=0s", wantField: "timeout"},
		{name: "timeout negative", worker: w, query: "timeout=-5s", wantField: "timeout"},
		{name: "fractions of a second", worker: w, query: "timeout=1500ms", wantField: "timeout"},
		{name: "no unit", worker: w, query: "timeout=90", wantField: "timeout"},
		{name: "overflow", worker: w, query: "timeout=9999999999h", wantField: "timeout"},
		{name: "empty", worker: w, query: "timeout=", wantField: "timeout"},
		{name: "twice", worker: w, query: "timeout=1m&timeout=2m", wantField: "timeout"},
		{name: "retention over 720h", worker: w, query: "retention=721h", wantField: "retention"},
		{name: "retention in days", worker: w, query: "retention=1d", wantField: "retention"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseJobOptions(q, tc.worker)
			if tc.wantField != "" {
				if e, ok := IsAPIError(err); !ok || e.Status != http.StatusBadRequest || e.Field != tc.wantField {
					t.Fatalf("error = %v, want a 400 naming %s", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobOptionsReachTheSeekJobAndTheHash(t *testing.T) {
	opts := JobOptions{Timeout: ptr.To(90 * time.Second), Retention: ptr.To(time.Hour)}
	req, err := ParseSubmit("echo", []byte(`{"a":1}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	got := NewSeekJob("ns", "n", "echo", req, false)
	want := testutil.MakeSeekJob("n", "ns").Worker("echo").Input(`{"a":1}`).Timeout(90 * time.Second).Obj()
	want.Spec.TTLAfterFinished = got.Spec.TTLAfterFinished
	if diff := cmp.Diff(want, got); diff != "" || got.Spec.TTLAfterFinished == nil || got.Spec.TTLAfterFinished.Duration != time.Hour {
		t.Errorf("NewSeekJob (-want +got):\n%s ttl %v", diff, got.Spec.TTLAfterFinished)
	}
	plain, _ := ParseSubmit("echo", []byte(`{"a":1}`), JobOptions{})
	shorter, _ := ParseSubmit("echo", []byte(`{"a":1}`), JobOptions{Timeout: ptr.To(90 * time.Second)})
	if plain.RequestHash == req.RequestHash || shorter.RequestHash == req.RequestHash || plain.RequestHash == shorter.RequestHash {
		t.Error("the job options do not change the request hash")
	}
}

func TestParseBatch(t *testing.T) {
	got, err := ParseBatch([]byte(`{"inputs": [{"a":1}, [2], "x"]}`))
	if err != nil || len(got) != 3 || string(got[0]) != `{"a":1}` || string(got[2]) != `"x"` {
		t.Fatalf("ParseBatch = %q, %v", got, err)
	}
	for name, body := range map[string]string{
		"empty":          `{"inputs": []}`,
		"null":           `{"inputs": null}`,
		"missing":        `{}`,
		"too many":       `{"inputs": [` + strings.TrimSuffix(strings.Repeat(`{},`, MaxBatchItems+1), ",") + `]}`,
		"not an object":  `[{}]`,
		"unknown member": `{"inputs": [{}], "callback_url": "https://x.example/"}`,
		"inputs twice":   `{"inputs": [{}], "inputs": [{}, {}]}`,
		"invalid UTF-8":  "{\"inputs\": [{\"a\": \"\xff\"}]}",
		"trailing":       `{"inputs": [{}]} {}`,
	} {
		if _, err := ParseBatch([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if e, ok := IsAPIError(err); !ok || e.Status != http.StatusBadRequest {
			t.Errorf("%s: %v, want a 400", name, err)
		}
	}
}
