package apitest

import (
	"strings"
	"testing"
)

// doc is a small OpenAPI 3.1 document: one operation with a 200 and a 404, a parameter and examples.
const doc = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "v1"},
  "paths": {
    "/v1/things/{id}": {
      "get": {
        "parameters": [{"$ref": "#/components/parameters/id"}],
        "responses": {
          "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"},
            "examples": {"inline": {"value": {"id": "a", "at": "2026-11-29T16:29:54Z"}}, "shared": {"$ref": "#/components/examples/thing"}}}}},
          "404": {"$ref": "#/components/responses/NotFound"}
        }
      }
    }
  },
  "components": {
    "parameters": {"id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 3}, "example": "abc"}},
    "responses": {"NotFound": {"description": "nf", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"},
      "examples": {"nf": {"value": {"code": "not_found"}}}}}}},
    "examples": {"thing": {"value": {"id": "b", "at": "2026-11-29T16:29:55Z"}}},
    "schemas": {
      "Thing": {"type": "object", "additionalProperties": false, "required": ["id", "at"], "properties": {"id": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}},
      "Error": {"type": "object", "additionalProperties": false, "required": ["code"], "properties": {"code": {"enum": ["not_found"]}}}
    }
  }
}`

func TestValidate(t *testing.T) {
	v := NewValidator(t, []byte(doc))
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		status  int
		body    string
		wantErr string
	}{
		{"documented 200", "GET", "/v1/things/a", 200, `{"id":"a","at":"2026-11-29T16:29:54Z"}`, ""},
		{"documented 404", "GET", "/v1/things/a", 404, `{"code":"not_found"}`, ""},
		{"a status not documented", "GET", "/v1/things/a", 500, `{"code":"not_found"}`, "status 500 is not documented"},
		{"a member not in the schema", "GET", "/v1/things/a", 200, `{"id":"a","at":"2026-11-29T16:29:54Z","x":1}`, "additional properties 'x'"},
		{"a format the schema names", "GET", "/v1/things/a", 200, `{"id":"a","at":"yesterday"}`, "date-time"},
		{"an error code not in the enum", "GET", "/v1/things/a", 404, `{"code":"gone"}`, "not_found"},
		{"an unknown route answers in the error shape", "GET", "/nowhere", 404, `{"code":"not_found"}`, ""},
		{"an unknown route in another shape", "GET", "/nowhere", 404, `{"error":"x"}`, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Validate(tc.method, tc.path, tc.status, []byte(tc.body))
			if tc.wantErr == "" && err != nil {
				t.Errorf("Validate = %v, want nil", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckExamples(t *testing.T) {
	if err := NewValidator(t, []byte(doc)).CheckExamples(); err != nil {
		t.Errorf("CheckExamples of valid examples = %v", err)
	}
	for _, tc := range []struct {
		name, old, new, wantErr string
	}{
		{"inline response example", `"id": "a", "at"`, `"id": 1, "at"`, "/paths/~1v1~1things~1%7Bid%7D/get/responses/200/content/application~1json/examples/inline/value"},
		{"shared example", `"id": "b", "at": "2026-11-29T16:29:55Z"`, `"id": "b", "at": "later"`, "/components/examples/thing/value"},
		{"shared response's example", `{"code": "not_found"}}}`, `{"code": "gone"}}}`, "/components/responses/NotFound/content/application~1json/examples/nf/value"},
		{"parameter example", `"example": "abc"`, `"example": "abcd"`, "/components/parameters/id/example"},
		{"example instead of examples", `"examples": {"nf": {"value": {"code": "not_found"}}}`, `"example": {"code": "not_found"}`, "use examples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(doc, tc.old, tc.new, 1)
			if bad == doc {
				t.Fatalf("%q is not in the document", tc.old)
			}
			err := NewValidator(t, []byte(bad)).CheckExamples()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CheckExamples = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
