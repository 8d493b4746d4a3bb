package frontend

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/seek-api/seek-operator/internal/frontend/apitest"
)

func TestOpenAPIDocument(t *testing.T) {
	v := apitest.NewValidator(t, OpenAPI)
	if v.Version() != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v.Version())
	}
	if err := v.CheckSchemas(); err != nil {
		t.Error(err)
	}
	if err := v.CheckExamples(); err != nil {
		t.Error(err)
	}
	if err := v.CheckErrorCodes(); err != nil {
		t.Error(err)
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
