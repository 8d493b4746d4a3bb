package restapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/jobview"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestParseSubmit(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		wantInput string
		wantURL   string
		wantEvs   []seekv1alpha1.CallbackEvent
		wantField string // set when an error naming this field is expected
		wantErr   bool
	}{
		{name: "input only", body: `{"email": "a@b.c", "n": 1.50}`, wantInput: `{"email":"a@b.c","n":1.50}`},
		{name: "callback taken out", body: `{"email":"a@b.c","callback_url":"https://app/hook"}`, wantInput: `{"email":"a@b.c"}`, wantURL: "https://app/hook"},
		{name: "empty object", body: `{}`, wantInput: `{}`},
		{name: "not JSON", body: `{"email":`, wantErr: true},
		{name: "array", body: `[1,2]`, wantErr: true},
		{name: "null", body: `null`, wantErr: true},
		{name: "two objects", body: `{} {}`, wantErr: true},
		{name: "trailing garbage", body: `{}x`, wantErr: true},
		{name: "callback not a string", body: `{"callback_url": 5}`, wantErr: true, wantField: "callback_url"},
		{name: "callback empty", body: `{"callback_url": ""}`, wantErr: true, wantField: "callback_url"},
		{name: "callback events taken out", body: `{"a":1,"callback_url":"https://app/hook","callback_events":["started","finished"]}`, wantInput: `{"a":1}`,
			wantURL: "https://app/hook", wantEvs: []seekv1alpha1.CallbackEvent{seekv1alpha1.CallbackEventFinished, seekv1alpha1.CallbackEventStarted}},
		{name: "callback events without a URL", body: `{"callback_events":["started"]}`, wantErr: true, wantField: "callback_events"},
		{name: "callback events unknown", body: `{"callback_url":"https://app/hook","callback_events":["done"]}`, wantErr: true, wantField: "callback_events"},
		{name: "callback events empty", body: `{"callback_url":"https://app/hook","callback_events":[]}`, wantErr: true, wantField: "callback_events"},
		{name: "callback events twice", body: `{"callback_url":"https://app/hook","callback_events":["started","started"]}`, wantErr: true, wantField: "callback_events"},
		{name: "callback events not a list", body: `{"callback_url":"https://app/hook","callback_events":"started"}`, wantErr: true, wantField: "callback_events"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseSubmit("echo", []byte(tc.body))
			if tc.wantErr {
				apiErr, ok := IsAPIError(err)
				if !ok || apiErr.Status != http.StatusBadRequest || apiErr.Field != tc.wantField {
					t.Fatalf("error = %#v, want a 400 naming field %q", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantInput, string(req.Input)); diff != "" {
				t.Errorf("input (-want +got):\n%s", diff)
			}
			if req.CallbackURL != tc.wantURL {
				t.Errorf("callback = %q, want %q", req.CallbackURL, tc.wantURL)
			}
			if diff := cmp.Diff(tc.wantEvs, req.CallbackEvents); diff != "" {
				t.Errorf("callback events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestHash(t *testing.T) {
	hash := func(worker, body string) string {
		req, err := ParseSubmit(worker, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return req.RequestHash
	}
	base := hash("echo", `{"a":1,"b":2}`)
	if got := hash("echo", `{ "b": 2, "a": 1 }`); got != base {
		t.Errorf("key order and spacing changed the hash")
	}
	for name, other := range map[string]string{
		"other worker":   hash("other", `{"a":1,"b":2}`),
		"other input":    hash("echo", `{"a":1,"b":3}`),
		"added callback": hash("echo", `{"a":1,"b":2,"callback_url":"https://x/"}`),
	} {
		if other == base {
			t.Errorf("%s: same hash", name)
		}
	}
}

func TestJobName(t *testing.T) {
	a, err := JobName("ns", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := JobName("ns", "")
	if a == b || len(a) != randomNameLength {
		t.Errorf("random names %q, %q: want distinct, %d characters", a, b, randomNameLength)
	}
	k1, _ := JobName("ns", "key-1")
	k1again, _ := JobName("ns", "key-1")
	k1other, _ := JobName("other", "key-1")
	k2, _ := JobName("ns", "key-2")
	if k1 != k1again || k1 == k1other || k1 == k2 {
		t.Errorf("idempotent names: %q %q %q %q; want equal only for the same namespace and key", k1, k1again, k1other, k2)
	}
	for _, name := range []string{a, k1} {
		if _, err := NameFromID(jobview.IDPrefix + name); err != nil {
			t.Errorf("name %q is not a valid id: %v", name, err)
		}
	}
	if _, err := JobName("ns", strings.Repeat("k", MaxIdempotencyKeyLength+1)); err == nil {
		t.Error("an over-long Idempotency-Key was accepted")
	}
}

func TestNameFromID(t *testing.T) {
	cases := map[string]string{
		"job_abc":        "abc",
		"job_echo-hello": "echo-hello",
	}
	for id, want := range cases {
		if got, err := NameFromID(id); err != nil || got != want {
			t.Errorf("NameFromID(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
	for _, id := range []string{"", "abc", "job_", "job_ABC", "job_a/b", "job_" + strings.Repeat("a", 64), "job_../x"} {
		if _, err := NameFromID(id); err == nil {
			t.Errorf("NameFromID(%q) accepted", id)
		} else if e, _ := IsAPIError(err); e.Status != http.StatusNotFound {
			t.Errorf("NameFromID(%q) status = %d, want 404", id, e.Status)
		}
	}
}

func TestSameRequest(t *testing.T) {
	req, _ := ParseSubmit("echo", []byte(`{"a":1}`))
	sj := NewSeekJob("ns", "n", "echo", req, true)
	if err := SameRequest(sj, req); err != nil {
		t.Errorf("same request: %v", err)
	}
	other, _ := ParseSubmit("echo", []byte(`{"a":2}`))
	if err := SameRequest(sj, other); err != ErrIdempotencyConflict {
		t.Errorf("different request: %v, want the idempotency conflict", err)
	}
}

func TestNewSeekJob(t *testing.T) {
	plain, _ := ParseSubmit("echo", []byte(`{"a":1}`))
	withCallback, _ := ParseSubmit("echo", []byte(`{"a":1,"callback_url":"https://app.example/hook"}`))
	cases := []struct {
		name       string
		req        *SubmitRequest
		idempotent bool
		want       *seekv1alpha1.SeekJob
	}{
		{
			name: "plain: nothing but the spec, like a SeekJob applied with kubectl",
			req:  plain,
			want: testutil.MakeSeekJob("n", "ns").Worker("echo").Input(`{"a":1}`).Obj(),
		},
		{
			name:       "idempotent: the request hash is kept to tell a conflicting repeat",
			req:        plain,
			idempotent: true,
			want:       testutil.MakeSeekJob("n", "ns").Worker("echo").Input(`{"a":1}`).Annotation(AnnotationRequestHash, plain.RequestHash).Obj(),
		},
		{
			name: "callback",
			req:  withCallback,
			want: testutil.MakeSeekJob("n", "ns").Worker("echo").Input(`{"a":1}`).Callback("https://app.example/hook").Obj(),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NewSeekJob("ns", "n", "echo", tc.req, tc.idempotent)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NewSeekJob (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorShape(t *testing.T) {
	got, err := json.Marshal(invalid("email", "email must be a string"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"error":{"code":"invalid_request","message":"email must be a string","field":"email"}}`
	if string(got) != want {
		t.Errorf("error JSON = %s, want %s", got, want)
	}
}
