package restapi

import (
	"encoding/json"
	"errors"
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
		{name: "input only, in the form Kubernetes stores", body: `{"n": 1.50, "email": "a@b.c"}`, wantInput: `{"email":"a@b.c","n":1.5}`},
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
		{name: "callback events not strings", body: `{"callback_url":"https://app/hook","callback_events":[1]}`, wantErr: true, wantField: "callback_events"},

		// Every number is kept as the same value, or refused naming the field.
		{name: "numbers Kubernetes keeps", body: `{"i":9007199254740993,"max":9223372036854775807,"min":-9223372036854775808,"f":0.1,"e":0.1e1,"one":1.0,"big":1e300,"tiny":5e-324,"z":-0,"zf":-0.0}`,
			wantInput: `{"big":1e+300,"e":1,"f":0.1,"i":9007199254740993,"max":9223372036854775807,"min":-9223372036854775808,"one":1,"tiny":5e-324,"z":0,"zf":0}`},
		{name: "1e999 is beyond float64", body: `{"a":{"b":[1e999]}}`, wantErr: true, wantField: "/a/b/0"},
		{name: "integer beyond int64 and float64 precision", body: `{"id":12345678901234567890}`, wantErr: true, wantField: "/id"},
		{name: "integer beyond int64 but exact as a float", body: `{"id":100000000000000000000}`, wantInput: `{"id":100000000000000000000}`},
		{name: "decimal beyond float64 precision", body: `{"p":0.30000000000000000001}`, wantErr: true, wantField: "/p"},
		{name: "underflow", body: `{"p":1e-400}`, wantErr: true, wantField: "/p"},
		{name: "huge negative exponent", body: `{"p":1e-99999999999999999999}`, wantErr: true, wantField: "/p"},
		{name: "zero with a huge exponent is zero", body: `{"p":0e99999999999999999999}`, wantInput: `{"p":0}`},

		// Strings: what Kubernetes would replace is refused.
		{name: "invalid UTF-8", body: "{\"a\":\"\xff\"}", wantErr: true},
		{name: "invalid UTF-8 in a key", body: "{\"\xc3\":1}", wantErr: true},
		{name: "lone high surrogate", body: `{"a":["x","\ud800"]}`, wantErr: true, wantField: "/a/1"},
		{name: "lone low surrogate", body: `{"a":"\udc00x"}`, wantErr: true, wantField: "/a"},
		{name: "lone surrogate in a key", body: `{"o":{"\ud83d":1}}`, wantErr: true, wantField: "/o"},
		{name: "surrogate pair and escapes are characters", body: `{"a":"\ud83d\ude00 \u00e9 \\ud800 \ufffd <&>"}`, wantInput: `{"a":"😀 é \\ud800 � \u003c\u0026\u003e"}`},
		{name: "duplicate key", body: `{"a":1,"b":{"c":1,"c":2}}`, wantErr: true, wantField: "/b/c"},
		{name: "duplicate callback_url", body: `{"callback_url":"https://a/","callback_url":"https://b/"}`, wantErr: true, wantField: "/callback_url"},
		{name: "too deep", body: `{"a":` + strings.Repeat("[", MaxInputDepth) + strings.Repeat("]", MaxInputDepth) + `}`, wantErr: true, wantField: "/a" + strings.Repeat("/0", MaxInputDepth-1)},
		{name: "deep enough", body: `{"a":` + strings.Repeat("[", MaxInputDepth-1) + strings.Repeat("]", MaxInputDepth-1) + `}`,
			wantInput: `{"a":` + strings.Repeat("[", MaxInputDepth-1) + strings.Repeat("]", MaxInputDepth-1) + `}`},
		{name: "empty", body: ``, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseSubmit("echo", []byte(tc.body), JobOptions{})
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
		req, err := ParseSubmit(worker, []byte(body), JobOptions{})
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
	req, _ := ParseSubmit("echo", []byte(`{"a":1}`), JobOptions{})
	sj := NewSeekJob("ns", "n", "echo", req, true)
	if err := SameRequest(sj, req); err != nil {
		t.Errorf("same request: %v", err)
	}
	other, _ := ParseSubmit("echo", []byte(`{"a":2}`), JobOptions{})
	if err := SameRequest(sj, other); !errors.Is(err, ErrIdempotencyConflict) {
		t.Errorf("different request: %v, want the idempotency conflict", err)
	}
}

func TestNewSeekJob(t *testing.T) {
	plain, _ := ParseSubmit("echo", []byte(`{"a":1}`), JobOptions{})
	withCallback, _ := ParseSubmit("echo", []byte(`{"a":1,"callback_url":"https://app.example/hook"}`), JobOptions{})
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
