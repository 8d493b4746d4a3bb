// Package workerschema compiles a SeekWorker's input JSON Schema and validates job inputs against it.
// The job controller and the REST frontend share it, so both reject the same inputs with the same words.
package workerschema

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

const schemaURL = "seek://worker/input-schema.json"

var printer = message.NewPrinter(language.English)

// Schema is a compiled input schema.
type Schema struct {
	compiled *jsonschema.Schema
}

// noLoader refuses every external reference: a worker's schema must be self-contained, and the
// controller must never read files or URLs named by a schema.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not allowed: input schemas must be self-contained", url)
}

// maxCached bounds the compiled-schema cache; there is one schema per worker, so it rarely fills.
const maxCached = 512

type cached struct {
	schema *Schema
	err    error
}

var (
	cacheMu sync.Mutex
	cache   = map[[sha256.Size]byte]cached{}
)

// Compile parses and compiles a JSON Schema document (draft 2020-12 unless it says otherwise). Results
// are cached by the document's content: every job start and every REST submission checks its input, and
// compiling on each would be the most expensive step of both. A compiled Schema is safe for concurrent use.
func Compile(raw []byte) (*Schema, error) {
	key := sha256.Sum256(raw)
	cacheMu.Lock()
	c, ok := cache[key]
	cacheMu.Unlock()
	if ok {
		return c.schema, c.err
	}
	schema, err := compile(raw)
	cacheMu.Lock()
	if len(cache) >= maxCached {
		clear(cache)
	}
	cache[key] = cached{schema, err}
	cacheMu.Unlock()
	return schema, err
}

func compile(raw []byte) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("input schema is not valid JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("input schema does not compile: %s", strings.ReplaceAll(err.Error(), schemaURL, "schema"))
	}
	return &Schema{compiled: s}, nil
}

// FieldError is an input that does not match the schema. Field is a JSON pointer into the input
// ("/email"; "" for the whole input).
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return "input: " + e.Message
	}
	return "input" + e.Field + ": " + e.Message
}

// Validate checks JSON text against the schema. A mismatch is a *FieldError naming the first offending
// field; malformed JSON is a *FieldError for the whole input.
func (s *Schema) Validate(raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &FieldError{Message: "not valid JSON: " + err.Error()}
	}
	err = s.compiled.Validate(inst)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return fieldError(ve)
	}
	return err
}

// fieldError reduces a validation error tree to its first leaf: the most specific complaint.
func fieldError(ve *jsonschema.ValidationError) *FieldError {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	loc := ve.InstanceLocation
	if req, ok := ve.ErrorKind.(*kind.Required); ok && len(req.Missing) > 0 {
		loc = append(append([]string(nil), loc...), req.Missing[0])
		return &FieldError{Field: pointer(loc), Message: "is required"}
	}
	return &FieldError{Field: pointer(loc), Message: ve.ErrorKind.LocalizedString(printer)}
}

func pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return sb.String()
}

// InputProblem is what CheckInput found wrong with an input.
type InputProblem int

const (
	// InputTooLarge means the input exceeds the worker's limits.maxInputBytes.
	InputTooLarge InputProblem = iota + 1
	// InputInvalid means the input does not match the worker's schema (Field says where).
	InputInvalid
	// SchemaBroken means the worker's own input schema does not compile.
	SchemaBroken
)

// InputError is an input a worker does not accept. Callers word it for their audience (a SeekJob
// condition, an HTTP response).
type InputError struct {
	Problem     InputProblem
	Size, Limit int         // for InputTooLarge
	Field       *FieldError // for InputInvalid
	Err         error       // for SchemaBroken
}

// CheckInput applies a worker's input rules, shared by the job controller and the REST frontend:
// the size cap (limits.maxInputBytes, default 64 KiB), then the input schema.
func CheckInput(w *seekv1alpha1.SeekWorker, input []byte) *InputError {
	limit := int(w.Spec.Limits.MaxInputBytes)
	if limit == 0 {
		limit = seekv1alpha1.DefaultMaxInputBytes
	}
	if len(input) > limit {
		return &InputError{Problem: InputTooLarge, Size: len(input), Limit: limit}
	}
	if w.Spec.InputSchema == nil {
		return nil
	}
	schema, err := Compile(w.Spec.InputSchema.Raw)
	if err != nil {
		return &InputError{Problem: SchemaBroken, Err: err}
	}
	var fe *FieldError
	if err := schema.Validate(input); errors.As(err, &fe) {
		return &InputError{Problem: InputInvalid, Field: fe}
	} else if err != nil {
		return &InputError{Problem: InputInvalid, Field: &FieldError{Message: err.Error()}}
	}
	return nil
}
