package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/credentials"
	"github.com/seek-api/seek-operator/internal/frontend"
)

func run(t *testing.T, c client.Client, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand(func() (client.Client, error) { return c, nil })
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestKeys(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()

	out, err := run(t, c, "keys", "create", "--tenant", "team-a", "--scopes", "read,submit", "--rate", "5")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-Api-Key", key)
	store := &frontend.KeyStore{Reader: c, Namespace: credentials.DefaultNamespace}
	p, err := store.Authenticate(context.Background(), req)
	if err != nil || p.Tenant != "team-a" || !p.Can(apikeys.ScopeSubmit) || p.Can(apikeys.ScopeCancel) || p.RequestsPerSecond != 5 {
		t.Fatalf("the printed key authenticates as %+v (%v)", p, err)
	}

	out, err = run(t, c, "keys", "list")
	if err != nil || !strings.Contains(out, p.ID) || !strings.Contains(out, "team-a") || strings.Contains(out, key) {
		t.Errorf("list = %q (%v): want the id and tenant, never the key", out, err)
	}

	if _, err := run(t, c, "keys", "revoke", p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Authenticate(context.Background(), req); err == nil {
		t.Error("the revoked key still authenticates")
	}
	if _, err := run(t, c, "keys", "revoke", p.ID); err == nil || !strings.Contains(err.Error(), "no key") {
		t.Errorf("revoking twice: %v", err)
	}

	for _, args := range [][]string{
		{"keys", "create"},
		{"keys", "create", "--tenant", "Team_A"},
		{"keys", "create", "--tenant", "team-a", "--scopes", "read,admin"},
		{"keys", "create", "--tenant", "team-a", "--rate", "Inf"},
		{"keys", "create", "--tenant", "team-a", "--rate", "NaN"},
		{"keys", "create", "--tenant", "team-a", "--rate", "1e12"},
		{"keys", "create", "--tenant", "team-a", "--rate", "-1"},
	} {
		if _, err := run(t, c, args...); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	secrets := &corev1.SecretList{}
	if err := c.List(context.Background(), secrets); err != nil || len(secrets.Items) != 0 {
		t.Errorf("refused creates stored %d Secrets (%v)", len(secrets.Items), err)
	}
}
