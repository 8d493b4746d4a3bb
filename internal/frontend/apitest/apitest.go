// Package apitest validates real REST responses against the frontend's OpenAPI document. Handler and
// integration tests use it, so the document cannot drift from what the server answers.
package apitest

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
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
	c.AssertFormat() // date-time, uri, ...: what the document promises, not only the type
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

// errorCodesKey is the extension by which an error response lists the error codes it carries: an
// answer with another code fails, though the Error schema allows every code.
const errorCodesKey = "x-error-codes"

// expected is what the document says of one response: the $ref of its schema ("" for an inline one,
// not validated) and, for an error response, the codes it may carry.
type expected struct {
	ref   string
	codes []string
}

// expect finds what the document says of the response to a request, or the Error schema for routes
// the document does not have (they must still answer in the error shape).
func (v *Validator) expect(method, path string, status int) (expected, error) {
	for _, r := range v.routes {
		if !r.re.MatchString(path) {
			continue
		}
		op, ok := v.doc["paths"].(map[string]any)[r.template].(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			return expected{ref: "#/components/schemas/Error"}, nil // wrong method: 404/405 in the error shape
		}
		responses := op["responses"].(map[string]any)
		// Every status is documented on its own: an answer the document does not list fails.
		resp, ok := responses[strconv.Itoa(status)].(map[string]any)
		if !ok {
			return expected{}, fmt.Errorf("%s %s: status %d is not documented", method, r.template, status)
		}
		resp, _ = v.resolve(resp, nil)
		var exp expected
		for _, c := range asSlice(resp[errorCodesKey]) {
			exp.codes = append(exp.codes, c.(string))
		}
		js, ok := resp["content"].(map[string]any)["application/json"].(map[string]any)
		if !ok {
			return exp, nil // not JSON (the logs' text/plain): its content type is the handler tests' to check
		}
		schema := js["schema"].(map[string]any)
		exp.ref, _ = schema["$ref"].(string) // an inline schema: only /openapi.json, not validated here
		return exp, nil
	}
	return expected{ref: "#/components/schemas/Error"}, nil
}

// Validate checks one response against the document.
func (v *Validator) Validate(method, path string, status int, body []byte) error {
	exp, err := v.expect(method, path, status)
	if err != nil || exp.ref == "" {
		return err
	}
	v.mu.Lock()
	schema, ok := v.cache[exp.ref]
	if !ok {
		if schema, err = v.compiler.Compile(docURL + exp.ref); err != nil {
			v.mu.Unlock()
			return fmt.Errorf("compile %s: %w", exp.ref, err)
		}
		v.cache[exp.ref] = schema
	}
	v.mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %d body is not JSON: %w", method, path, status, err)
	}
	if err := schema.Validate(inst); err != nil {
		return fmt.Errorf("%s %s: %d does not match %s: %v\nbody: %s", method, path, status, exp.ref, err, body)
	}
	if code := errorCode(inst); len(exp.codes) > 0 && !slices.Contains(exp.codes, code) {
		return fmt.Errorf("%s %s: %d carries error code %q; the document lists %v for it\nbody: %s", method, path, status, code, exp.codes, body)
	}
	return nil
}

// errorCode is the code of a body in the Error shape, "" for any other.
func errorCode(body any) string {
	obj, _ := body.(map[string]any)
	e, _ := obj["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// CheckErrorCodes checks that every error response lists the codes it carries (x-error-codes), each a
// value of the ErrorCode enum, and that every value of the enum is carried by some response.
func (v *Validator) CheckErrorCodes() error {
	components := v.doc["components"].(map[string]any)
	var enum []string
	for _, c := range asSlice(components["schemas"].(map[string]any)["ErrorCode"].(map[string]any)["enum"]) {
		enum = append(enum, c.(string))
	}
	var errs []error
	used := map[string]bool{}
	responses := components["responses"].(map[string]any)
	for _, name := range sortedKeys(responses) {
		codes := asSlice(responses[name].(map[string]any)[errorCodesKey])
		if len(codes) == 0 {
			errs = append(errs, fmt.Errorf("response %s lists no %s", name, errorCodesKey))
		}
		for _, c := range codes {
			code, _ := c.(string)
			if !slices.Contains(enum, code) {
				errs = append(errs, fmt.Errorf("response %s: %v is not an ErrorCode", name, c))
			}
			used[code] = true
		}
	}
	for _, code := range enum {
		if !used[code] {
			errs = append(errs, fmt.Errorf("ErrorCode %s: no response carries it", code))
		}
	}
	return errors.Join(errs...)
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

// CheckExamples validates every example of the document (parameters, request bodies and responses,
// components/examples included through their $ref) against the schema it illustrates, so the examples
// clients copy are answers the server can give.
func (v *Validator) CheckExamples() error {
	var errs []error
	paths := v.doc["paths"].(map[string]any)
	for _, template := range sortedKeys(paths) {
		item := paths[template].(map[string]any)
		for _, method := range sortedKeys(item) {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			at := pointer{"paths", template, method}
			for i, p := range asSlice(op["parameters"]) {
				param, ptr := v.resolve(p.(map[string]any), at.with("parameters", strconv.Itoa(i)))
				if ex, ok := param["example"]; ok {
					errs = append(errs, v.checkExample(ptr.with("schema"), ptr.with("example").String(), ex))
				}
			}
			if body, ok := op["requestBody"].(map[string]any); ok {
				body, ptr := v.resolve(body, at.with("requestBody"))
				errs = append(errs, v.checkContent(body, ptr)...)
			}
			responses := op["responses"].(map[string]any)
			for _, status := range sortedKeys(responses) {
				resp, ptr := v.resolve(responses[status].(map[string]any), at.with("responses", status))
				errs = append(errs, v.checkContent(resp, ptr)...)
			}
		}
	}
	return joinUnique(errs)
}

// joinUnique joins errors, each message once: a shared parameter's example is checked for every
// operation that uses it.
func joinUnique(errs []error) error {
	var unique []error
	seen := map[string]bool{}
	for _, err := range errs {
		if err != nil && !seen[err.Error()] {
			seen[err.Error()] = true
			unique = append(unique, err)
		}
	}
	return errors.Join(unique...)
}

// checkContent validates the examples of a request body's or response's media types.
func (v *Validator) checkContent(obj map[string]any, at pointer) []error {
	var errs []error
	content, _ := obj["content"].(map[string]any)
	for _, mt := range sortedKeys(content) {
		media := content[mt].(map[string]any)
		ptr := at.with("content", mt)
		values := map[string]any{} // where each example's value is → the value
		if value, ok := media["example"]; ok {
			values[ptr.with("example").String()] = value
		}
		examples, _ := media["examples"].(map[string]any)
		for _, name := range sortedKeys(examples) {
			ex, exPtr := v.resolve(examples[name].(map[string]any), ptr.with("examples", name))
			value, ok := ex["value"]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: an example without a value", exPtr))
				continue
			}
			values[exPtr.with("value").String()] = value
		}
		for _, at := range sortedKeys(values) {
			errs = append(errs, v.checkExample(ptr.with("schema"), at, values[at]))
			if codes := asSlice(obj[errorCodesKey]); len(codes) > 0 && !slices.Contains(codes, any(errorCode(values[at]))) {
				errs = append(errs, fmt.Errorf("example %s: error code %q is not among %s %v", at, errorCode(values[at]), errorCodesKey, codes))
			}
		}
	}
	return errs
}

func (v *Validator) checkExample(schemaAt pointer, exampleAt string, value any) error {
	schema, err := v.compiler.Compile(docURL + "#" + schemaAt.String())
	if err != nil {
		return fmt.Errorf("compile %s: %w", schemaAt, err)
	}
	if err := schema.Validate(value); err != nil {
		return fmt.Errorf("example %s does not match its schema %s: %v", exampleAt, schemaAt, err)
	}
	return nil
}

// resolve follows a local $ref (to components) and returns the object and where it is.
func (v *Validator) resolve(obj map[string]any, at pointer) (map[string]any, pointer) {
	ref, ok := obj["$ref"].(string)
	if !ok {
		return obj, at
	}
	var ptr pointer
	var cur any = v.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		ptr = append(ptr, tok)
		cur = cur.(map[string]any)[tok]
	}
	return cur.(map[string]any), ptr
}

// pointer is a JSON pointer into the document, one unescaped token per element.
type pointer []string

func (p pointer) with(tokens ...string) pointer { return append(slices.Clip(p), tokens...) }

// String is the pointer as a URL fragment.
func (p pointer) String() string {
	var b strings.Builder
	for _, tok := range p {
		b.WriteString("/" + url.PathEscape(strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)))
	}
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
