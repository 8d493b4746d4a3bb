package workerschema_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seek-api/seek-operator/internal/workerschema"
)

func TestCompile(t *testing.T) {
	// A valid schema on disk: if the compiler could read files, referring to it would succeed.
	dir := t.TempDir()
	onDisk := filepath.Join(dir, "schema.json")
	if err := os.WriteFile(onDisk, []byte(`{"type":"object"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fileURL := "file://" + filepath.ToSlash(onDisk)

	cases := []struct {
		name string
		raw  string
		// wantErr lists substrings of the error; nil means Compile succeeds.
		wantErr []string
	}{
		{name: "empty object accepts anything", raw: `{}`},
		{name: "boolean schema", raw: `true`},
		{name: "object schema", raw: `{"type":"object","required":["email"],"properties":{"email":{"type":"string"}}}`},
		{name: "internal $ref", raw: `{"$defs":{"e":{"type":"string"}},"properties":{"email":{"$ref":"#/$defs/e"}}}`},
		{name: "older draft from its embedded metaschema", raw: `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`},
		{
			name:    "bad JSON",
			raw:     `{"type":`,
			wantErr: []string{"input schema is not valid JSON"},
		},
		{
			name:    "not JSON at all",
			raw:     `type: object`,
			wantErr: []string{"input schema is not valid JSON"},
		},
		{
			name:    "invalid type keyword",
			raw:     `{"type":5}`,
			wantErr: []string{"input schema does not compile", "/type"},
		},
		{
			name:    "unknown type name",
			raw:     `{"type":"text"}`,
			wantErr: []string{"input schema does not compile"},
		},
		{
			name:    "array is not a schema",
			raw:     `[]`,
			wantErr: []string{"input schema does not compile", "got array, want boolean or object"},
		},
		{
			name:    "external $ref over https refused",
			raw:     `{"$ref":"https://example.com/schema.json"}`,
			wantErr: []string{`external $ref "https://example.com/schema.json" is not allowed`, "self-contained"},
		},
		{
			name:    "relative $ref refused",
			raw:     `{"properties":{"a":{"$ref":"other.json"}}}`,
			wantErr: []string{"external $ref", "other.json", "is not allowed"},
		},
		{
			name:    "external metaschema refused",
			raw:     `{"$schema":"https://example.com/my-metaschema"}`,
			wantErr: []string{`external $ref "https://example.com/my-metaschema" is not allowed`},
		},
		{
			name:    "file $ref never read",
			raw:     `{"$ref":"` + fileURL + `"}`,
			wantErr: []string{"external $ref", fileURL, "is not allowed"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := workerschema.Compile([]byte(tc.raw))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Compile() error = %v, want none", err)
				}
				if s == nil {
					t.Fatal("Compile() returned a nil schema without error")
				}
				return
			}
			if err == nil {
				t.Fatalf("Compile() succeeded, want an error containing %q", tc.wantErr)
			}
			if s != nil {
				t.Errorf("Compile() returned a schema along with error %v", err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Compile() error = %q, want it to contain %q", err, want)
				}
			}
			// The internal URL the schema is registered under is an implementation detail.
			if strings.Contains(err.Error(), "seek://worker/input-schema.json") {
				t.Errorf("Compile() error = %q leaks the internal schema URL", err)
			}
		})
	}
}

const personSchema = `{
	"type": "object",
	"required": ["name"],
	"properties": {
		"name": {"type": "string"},
		"email": {"type": "string"},
		"age": {"type": "integer", "minimum": 0},
		"address": {
			"type": "object",
			"required": ["zip"],
			"properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}
		},
		"tags": {"type": "array", "items": {"type": "string"}},
		"a/b~c": {"type": "integer"}
	}
}`

func TestValidate(t *testing.T) {
	s, err := workerschema.Compile([]byte(personSchema))
	if err != nil {
		t.Fatalf("Compile() error = %v", err)
	}
	cases := []struct {
		name  string
		input string
		want  *workerschema.FieldError
		// wantPrefix checks the message by prefix when the parser's wording is not ours.
		wantPrefix bool
	}{
		{name: "valid", input: `{"name":"Ada","email":"ada@example.com","address":{"zip":"12345"},"tags":["x"]}`},
		{name: "valid with surrounding whitespace", input: " \n{\"name\":\"Ada\"}\n "},
		{
			name:  "type mismatch names the field",
			input: `{"name":"Ada","email":5}`,
			want:  &workerschema.FieldError{Field: "/email", Message: "got number, want string"},
		},
		{
			name:  "missing required property",
			input: `{"email":"ada@example.com"}`,
			want:  &workerschema.FieldError{Field: "/name", Message: "is required"},
		},
		{
			name:  "nested property type mismatch",
			input: `{"name":"Ada","address":{"zip":12345}}`,
			want:  &workerschema.FieldError{Field: "/address/zip", Message: "got number, want string"},
		},
		{
			name:  "nested required property",
			input: `{"name":"Ada","address":{}}`,
			want:  &workerschema.FieldError{Field: "/address/zip", Message: "is required"},
		},
		{
			name:  "nested pattern",
			input: `{"name":"Ada","address":{"zip":"abc"}}`,
			want:  &workerschema.FieldError{Field: "/address/zip", Message: "'abc' does not match pattern '^[0-9]{5}$'"},
		},
		{
			name:  "array item",
			input: `{"name":"Ada","tags":["x",2]}`,
			want:  &workerschema.FieldError{Field: "/tags/1", Message: "got number, want string"},
		},
		{
			name:  "minimum",
			input: `{"name":"Ada","age":-1}`,
			want:  &workerschema.FieldError{Field: "/age", Message: "minimum: got -1, want 0"},
		},
		{
			name:  "pointer escapes / and ~",
			input: `{"name":"Ada","a/b~c":"x"}`,
			want:  &workerschema.FieldError{Field: "/a~1b~0c", Message: "got string, want integer"},
		},
		{
			name:  "whole input of the wrong type",
			input: `42`,
			want:  &workerschema.FieldError{Field: "", Message: "got number, want object"},
		},
		{
			name:  "null input",
			input: `null`,
			want:  &workerschema.FieldError{Field: "", Message: "got null, want object"},
		},
		{
			name:       "malformed JSON",
			input:      `{"name":`,
			want:       &workerschema.FieldError{Field: "", Message: "not valid JSON: "},
			wantPrefix: true,
		},
		{
			name:       "trailing data",
			input:      `{"name":"Ada"} {}`,
			want:       &workerschema.FieldError{Field: "", Message: "not valid JSON: "},
			wantPrefix: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Validate([]byte(tc.input))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() error = %v, want none", err)
				}
				return
			}
			var got *workerschema.FieldError
			if !errors.As(err, &got) {
				t.Fatalf("Validate() error = %#v, want a *FieldError", err)
			}
			if tc.wantPrefix {
				if got.Field != tc.want.Field || !strings.HasPrefix(got.Message, tc.want.Message) {
					t.Errorf("Validate() = %#v, want field %q and a message starting %q", got, tc.want.Field, tc.want.Message)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFieldErrorError(t *testing.T) {
	cases := []struct {
		name string
		err  workerschema.FieldError
		want string
	}{
		{name: "whole input", err: workerschema.FieldError{Message: "got number, want object"}, want: "input: got number, want object"},
		{name: "top-level field", err: workerschema.FieldError{Field: "/email", Message: "is required"}, want: "input/email: is required"},
		{name: "nested field", err: workerschema.FieldError{Field: "/address/zip", Message: "got number, want string"}, want: "input/address/zip: got number, want string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

// Compiled schemas are shared between reconciles; validating must not change them.
func TestValidateIsRepeatable(t *testing.T) {
	s, err := workerschema.Compile([]byte(personSchema))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Validate([]byte(`{"name":"Ada"}`)); err != nil {
			t.Fatalf("run %d: Validate() error = %v", i, err)
		}
		if err := s.Validate([]byte(`{}`)); err == nil {
			t.Fatalf("run %d: Validate({}) succeeded, want a missing-name error", i)
		}
	}
}

func TestCompileIsCachedByContent(t *testing.T) {
	doc := []byte(`{"type":"object","required":["cached"]}`)
	a, err := workerschema.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := workerschema.Compile(append([]byte(nil), doc...))
	if a != b {
		t.Error("the same document compiled twice")
	}
	if err := b.Validate([]byte(`{}`)); err == nil {
		t.Error("the cached schema does not validate")
	}
	_, err1 := workerschema.Compile([]byte(`{"type": 12}`))
	_, err2 := workerschema.Compile([]byte(`{"type": 12}`))
	if err1 == nil || err1 != err2 { //nolint:errorlint // the very same error value: compiling is cached
		t.Errorf("compile errors are not cached: %v / %v", err1, err2)
	}
}
