package frontend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// openAPIValidator checks real responses against OpenAPI: every response the handler tests see must
// match the schema the document gives for its route, method and status.
type openAPIValidator struct {
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

func newOpenAPIValidator(t testing.TB) *openAPIValidator {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(OpenAPI))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, doc); err != nil {
		t.Fatal(err)
	}
	v := &openAPIValidator{doc: doc.(map[string]any), compiler: c, cache: map[string]*jsonschema.Schema{}}
	for template := range v.doc["paths"].(map[string]any) {
		pattern := regexp.QuoteMeta(template)
		pattern = regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(pattern, `[^/]+`)
		v.routes = append(v.routes, route{template: template, re: regexp.MustCompile("^" + pattern + "$")})
	}
	return v
}

// schemaRef finds the $ref of the response schema for a request, or the Error schema for routes the
// document does not have (they must still answer in the error shape).
func (v *openAPIValidator) schemaRef(method, path string, status int) (string, error) {
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
		schema := resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
		ref, ok := schema["$ref"].(string)
		if !ok {
			return "", nil // an inline schema: only /openapi.json, not validated here
		}
		return ref, nil
	}
	return "#/components/schemas/Error", nil
}

func (v *openAPIValidator) validate(method, path string, status int, body []byte) error {
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

func TestOpenAPIDocument(t *testing.T) {
	v := newOpenAPIValidator(t)
	if v.doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v.doc["openapi"])
	}
	// Every schema in components compiles.
	for name := range v.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		if _, err := v.compiler.Compile(docURL + "#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
	// The document is served as is.
	f := newFixture(t, nil)
	code, body := f.do("GET", "/openapi.json", "", "")
	var served any
	_ = json.Unmarshal(OpenAPI, &served)
	if code != 200 || fmt.Sprint(body) != fmt.Sprint(served) {
		t.Errorf("GET /openapi.json = %d, not the embedded document", code)
	}
}
