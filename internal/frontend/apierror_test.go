package frontend

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestToAPIErrorForbidden: the apiserver refusing the frontend's own request (a restarted apiserver
// before its RBAC is loaded) is a 503 with Retry-After, not a 500.
func TestToAPIErrorForbidden(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/workers/echo/jobs", nil)
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "seek-api.com", Resource: "seekjobs"}, "", errors.New("RBAC: not loaded"))
	if got := toAPIError(r, forbidden); got.Status != http.StatusServiceUnavailable || got.RetryAfter == 0 {
		t.Errorf("toAPIError(forbidden) = %+v, want 503 with Retry-After", got)
	}
	if got := toAPIError(r, errors.New("boom")); got.Status != http.StatusInternalServerError {
		t.Errorf("toAPIError(other) = %+v, want 500", got)
	}
}

// TestToAPIErrorBrokenConnection: the apiserver's connection reset while the frontend reads its answer
// (a killed apiserver; seen in the chaos test) is a 503 with Retry-After, not a 500.
func TestToAPIErrorBrokenConnection(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/workers/echo/jobs", nil)
	reset := fmt.Errorf("unexpected error when reading response body. Please retry. Original error: %w",
		&net.OpError{Op: "read", Net: "tcp", Err: errors.New("read: connection reset by peer")})
	if got := toAPIError(r, reset); got.Status != http.StatusServiceUnavailable || got.RetryAfter == 0 {
		t.Errorf("toAPIError(reset) = %+v, want 503 with Retry-After", got)
	}
}
