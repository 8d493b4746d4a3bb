package restapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/seek-api/seek-operator/internal/jobview"
)

// FuzzParseSubmit: any body either parses into a JSON object input, or is a 400; never a panic.
func FuzzParseSubmit(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"email":"a@b.c"}`, `{"callback_url":"https://x/"}`, `{"callback_url":5}`, `[]`, `null`, `"x"`, `1e999`,
		`{"a":`, `{"callback_url":"https://x/","callback_events":["started","x"]}`, `{"callback_events":null}`, `{"a":1}{"b":2}`, "{\"a\":\"\xff\"}", `{"__proto__":{}}`, `{"a":{"b":{"c":[1,2,{"d":null}]}}}`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := ParseSubmit("w", []byte(body))
		if err != nil {
			if e, ok := IsAPIError(err); !ok || e.Status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(req.Input, &obj) != nil || obj == nil {
			t.Fatalf("input %q is not a JSON object", req.Input)
		}
		if _, ok := obj[CallbackURLField]; ok {
			t.Fatalf("callback_url left in the input")
		}
		if _, ok := obj[CallbackEventsField]; ok {
			t.Fatalf("callback_events left in the input")
		}
	})
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
