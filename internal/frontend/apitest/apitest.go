// Package apitest validates real REST responses against the frontend's OpenAPI document. Handler and
// integration tests use it, so the document cannot drift from what the server answers.
package apitest

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Validator checks real responses against OpenAPI: every response the handler tests see must
// match the schema the document gives for its route, method and status.
type Validator struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	routes   []route
	mu       sync.Mutex
	cache    map[string]*jsonschema.Schema
}

type route struct {
	template string
	re       *regexp.Regexp
}

const docURL = "seek://openapi.json"

// NewValidator parses an OpenAPI 3.1 document (frontend.OpenAPI).
func NewValidator(t testing.TB, document []byte) *Validator {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(document))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, doc); err != nil {
		t.Fatal(err)
	}
	v := &Validator{doc: doc.(map[string]any), compiler: c, cache: map[string]*jsonschema.Schema{}}
	for template := range v.doc["paths"].(map[string]any) {
		pattern := regexp.QuoteMeta(template)
		pattern = regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(pattern, `[^/]+`)
		v.routes = append(v.routes, route{template: template, re: regexp.MustCompile("^" + pattern + "$")})
	}
	return v
}

// schemaRef finds the $ref of the response schema for a request, or the Error schema for routes the
// document does not have (they must still answer in the error shape).
func (v *Validator) schemaRef(method, path string, status int) (string, error) {
	for _, r := range v.routes {
		if !r.re.MatchString(path) {
			continue
		}
		op, ok := v.doc["paths"].(map[string]any)[r.template].(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			return "#/components/schemas/Error", nil // wrong method: 404/405 in the error shape
		}
		responses := op["responses"].(map[string]any)
		resp, ok := responses[strconv.Itoa(status)].(map[string]any)
		if !ok {
			if resp, ok = responses["default"].(map[string]any); !ok {
				return "", fmt.Errorf("%s %s: status %d is not documented", method, r.template, status)
			}
		}
		if ref, ok := resp["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/components/responses/")
			resp = v.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
		}
		js, ok := resp["content"].(map[string]any)["application/json"].(map[string]any)
		if !ok {
			return "", nil // not JSON (the logs' text/plain): its content type is the handler tests' to check
		}
		schema := js["schema"].(map[string]any)
		ref, ok := schema["$ref"].(string)
		if !ok {
			return "", nil // an inline schema: only /openapi.json, not validated here
		}
		return ref, nil
	}
	return "#/components/schemas/Error", nil
}

// Validate checks one response against the document.
func (v *Validator) Validate(method, path string, status int, body []byte) error {
	ref, err := v.schemaRef(method, path, status)
	if err != nil || ref == "" {
		return err
	}
	v.mu.Lock()
	schema, ok := v.cache[ref]
	if !ok {
		if schema, err = v.compiler.Compile(docURL + ref); err != nil {
			v.mu.Unlock()
			return fmt.Errorf("compile %s: %w", ref, err)
		}
		v.cache[ref] = schema
	}
	v.mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %d body is not JSON: %w", method, path, status, err)
	}
	if err := schema.Validate(inst); err != nil {
		return fmt.Errorf("%s %s: %d does not match %s: %v\nbody: %s", method, path, status, ref, err, body)
	}
	return nil
}

// Version is the document's openapi field.
func (v *Validator) Version() any { return v.doc["openapi"] }

// CheckSchemas compiles every schema under components.
func (v *Validator) CheckSchemas() error {
	for name := range v.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		if _, err := v.compiler.Compile(docURL + "#/components/schemas/" + name); err != nil {
			return fmt.Errorf("schema %s: %w", name, err)
		}
	}
	return nil
}
