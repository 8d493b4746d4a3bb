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
          "404": {"$ref": "#/components/responses/NotFound"},
          "410": {"$ref": "#/components/responses/Gone"}
        }
      }
    }
  },
  "components": {
    "parameters": {"id": {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 3}, "example": "abc"}},
    "responses": {"NotFound": {"description": "nf", "x-error-codes": ["not_found"], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"},
      "examples": {"nf": {"value": {"error": {"code": "not_found"}}}}}}},
      "Gone": {"description": "g", "x-error-codes": ["gone"], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    "examples": {"thing": {"value": {"id": "b", "at": "2026-11-29T16:29:55Z"}}},
    "schemas": {
      "Thing": {"type": "object", "additionalProperties": false, "required": ["id", "at"], "properties": {"id": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}},
      "Error": {"type": "object", "additionalProperties": false, "required": ["error"], "properties": {"error": {"type": "object", "required": ["code"], "properties": {"code": {"$ref": "#/components/schemas/ErrorCode"}}}}},
      "ErrorCode": {"enum": ["not_found", "gone"]}
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
		{"documented 404", "GET", "/v1/things/a", 404, `{"error":{"code":"not_found"}}`, ""},
		{"a status not documented", "GET", "/v1/things/a", 500, `{"error":{"code":"not_found"}}`, "status 500 is not documented"},
		{"a member not in the schema", "GET", "/v1/things/a", 200, `{"id":"a","at":"2026-11-29T16:29:54Z","x":1}`, "additional properties 'x'"},
		{"a format the schema names", "GET", "/v1/things/a", 200, `{"id":"a","at":"yesterday"}`, "date-time"},
		{"an error code not in the enum", "GET", "/v1/things/a", 404, `{"error":{"code":"teapot"}}`, "teapot"},
		{"an error code the status does not list", "GET", "/v1/things/a", 404, `{"error":{"code":"gone"}}`, `carries error code "gone"; the document lists [not_found]`},
		{"an unknown route answers in the error shape", "GET", "/nowhere", 404, `{"error":{"code":"not_found"}}`, ""},
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
		{"shared response's example", `{"error": {"code": "not_found"}}}}`, `{"error": {"code": "teapot"}}}}`, "/components/responses/NotFound/content/application~1json/examples/nf/value"},
		{"an error example with a code its response does not list", `{"error": {"code": "not_found"}}}}`, `{"error": {"code": "gone"}}}}`, `error code "gone" is not among x-error-codes [not_found]`},
		{"parameter example", `"example": "abc"`, `"example": "abcd"`, "/components/parameters/id/example"},
		{"a media type's example", `"examples": {"nf": {"value": {"error": {"code": "not_found"}}}}`, `"example": {"error": {"code": 404}}`, "/components/responses/NotFound/content/application~1json/example does not match"},
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

func TestCheckErrorCodes(t *testing.T) {
	if err := NewValidator(t, []byte(doc)).CheckErrorCodes(); err != nil {
		t.Errorf("CheckErrorCodes = %v", err)
	}
	for _, tc := range []struct {
		name, old, new, wantErr string
	}{
		{"a response without codes", `"x-error-codes": ["gone"], `, ``, "response Gone lists no x-error-codes"},
		{"a code outside the enum", `"x-error-codes": ["gone"]`, `"x-error-codes": ["gone", "teapot"]`, "response Gone: teapot is not an ErrorCode"},
		{"an enum value no response carries", `"enum": ["not_found", "gone"]`, `"enum": ["not_found", "gone", "teapot"]`, "ErrorCode teapot: no response carries it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(doc, tc.old, tc.new, 1)
			if bad == doc {
				t.Fatalf("%q is not in the document", tc.old)
			}
			err := NewValidator(t, []byte(bad)).CheckErrorCodes()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CheckErrorCodes = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
