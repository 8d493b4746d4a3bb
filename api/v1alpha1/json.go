package v1alpha1

import (
	"bytes"
	"encoding/json"
)

// JSON holds an arbitrary JSON value (object, array, string, number, boolean or null), kept verbatim.
//
// +kubebuilder:validation:Schemaless
// +kubebuilder:pruning:PreserveUnknownFields
// +kubebuilder:validation:Type=""
type JSON struct {
	// Raw is the JSON text.
	Raw []byte `json:"-"`
}

// MarshalJSON returns the raw JSON text, or null when empty.
func (j JSON) MarshalJSON() ([]byte, error) {
	if len(j.Raw) == 0 {
		return []byte("null"), nil
	}
	return j.Raw, nil
}

// UnmarshalJSON keeps a copy of the JSON text.
func (j *JSON) UnmarshalJSON(data []byte) error {
	if !json.Valid(data) {
		return &json.SyntaxError{Offset: 0}
	}
	j.Raw = append(j.Raw[:0], data...)
	return nil
}

// IsNull reports whether the value is absent or the JSON literal null.
func (j *JSON) IsNull() bool {
	return j == nil || len(bytes.TrimSpace(j.Raw)) == 0 || bytes.Equal(bytes.TrimSpace(j.Raw), []byte("null"))
}

// NewJSON wraps JSON text. It does not validate it.
func NewJSON(raw []byte) *JSON {
	return &JSON{Raw: raw}
}
