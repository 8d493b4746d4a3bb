package restapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/seek-api/seek-operator/internal/jobview"
)

// FuzzParseSubmit: any body either parses into a JSON object input, or is a 400; never a panic. An
// accepted input holds the same value as the body, less the fields taken out (every string, key and
// number exactly), is valid UTF-8, and is in the form Kubernetes stores (parsing it again changes
// nothing), so the worker gets what was validated.
func FuzzParseSubmit(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"email":"a@b.c"}`, `{"callback_url":"https://x/"}`, `{"callback_url":5}`, `[]`, `null`, `"x"`, `1e999`,
		`{"a":`, `{"callback_url":"https://x/","callback_events":["started","x"]}`, `{"callback_events":null}`, `{"a":1}{"b":2}`, "{\"a\":\"\xff\"}", `{"__proto__":{}}`, `{"a":{"b":{"c":[1,2,{"d":null}]}}}`, ``,
		// The hostile cases of issue 10: invalid UTF-8, numbers beyond float64 or int64, lone surrogates,
		// duplicate keys, deep nesting.
		"{\"\xc3\":1}", `{"n":1e999}`, `{"n":-1e999}`, `{"n":12345678901234567890}`, `{"n":9007199254740993}`, `{"n":0.1e1}`,
		`{"n":1.0}`, `{"n":-0.0}`, `{"n":-0e5}`, `{"n":0.30000000000000000001}`, `{"n":1e-400}`, `{"n":5e-324}`, `{"n":-0}`, `{"n":1E+2}`,
		`{"s":"\ud800"}`, `{"s":"\udc00\ud800"}`, `{"s":"\ud83d\ude00"}`, `{"s":"\\ud800"}`, `{"a":1,"a":2}`,
		`{"callback_url":"https://a/","callback_url":"https://b/"}`, `{"s":"<&>\u2028"}`,
		`{"a":` + strings.Repeat("[", 120) + strings.Repeat("]", 120) + `}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := ParseSubmit("w", []byte(body), JobOptions{})
		if err != nil {
			if e, ok := IsAPIError(err); !ok || e.Status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if !utf8.Valid(req.Input) {
			t.Fatalf("input %q is not valid UTF-8", req.Input)
		}
		got, err := decodeNumbers(req.Input)
		obj, _ := got.(map[string]any)
		if err != nil || obj == nil {
			t.Fatalf("input %q is not a JSON object (%v)", req.Input, err)
		}
		for _, f := range []string{CallbackURLField, CallbackEventsField} {
			if _, ok := obj[f]; ok {
				t.Fatalf("%s left in the input", f)
			}
		}
		sent, err := decodeNumbers([]byte(body))
		if err != nil {
			t.Fatalf("accepted a body that does not decode: %v", err)
		}
		delete(sent.(map[string]any), CallbackURLField)
		delete(sent.(map[string]any), CallbackEventsField)
		if !sameValue(sent, got) {
			t.Fatalf("body %q became input %q: another value", body, req.Input)
		}
		again, err := ParseSubmit("w", req.Input, JobOptions{})
		if err != nil || !bytes.Equal(again.Input, req.Input) {
			t.Fatalf("input %q is not in stored form: parsing it again gives %q (%v)", req.Input, again.Input, err)
		}
	})
}

func decodeNumbers(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	return v, dec.Decode(&v)
}

// sameValue compares JSON values decoded with UseNumber; numbers by their decimal value.
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if w, ok := b[k]; !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], b[i]) {
				return false
			}
		}
		return true
	case json.Number:
		b, ok := b.(json.Number)
		return ok && sameDecimal(string(a), string(b))
	default:
		return a == b
	}
}

// FuzzNameFromID: an id maps to a valid name or to a 404; never a panic.
func FuzzNameFromID(f *testing.F) {
	for _, seed := range []string{"job_abc", "job_", "", "job_../../x", "job_A", "job_a.b", "job_\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		name, err := NameFromID(id)
		if err != nil {
			if e, ok := IsAPIError(err); !ok || e.Status != http.StatusNotFound {
				t.Fatalf("error %v is not a 404", err)
			}
			return
		}
		if jobview.IDPrefix+name != id || len(name) == 0 || len(name) > 63 {
			t.Fatalf("id %q gave name %q", id, name)
		}
	})
}
