package apikeys

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewSplitVerify(t *testing.T) {
	sec, key, err := New("seek-system", "team-a", []Scope{ScopeSubmit, ScopeRead}, 5)
	if err != nil {
		t.Fatal(err)
	}
	id, secret, ok := Split(key)
	if !ok || sec.Name != SecretName(id) || sec.Namespace != "seek-system" {
		t.Fatalf("Split(%q) = %q, %q, %v; Secret %s/%s", key, id, secret, ok, sec.Namespace, sec.Name)
	}
	for _, v := range sec.Data {
		if strings.Contains(string(v), secret) {
			t.Fatalf("the Secret stores the key's secret part")
		}
	}
	got := Verify(sec, secret)
	want := &Key{ID: id, Tenant: "team-a", Scopes: []Scope{ScopeSubmit, ScopeRead}, RequestsPerSecond: 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify (-want +got):\n%s", diff)
	}
	if !got.Can(ScopeRead) || got.Can(ScopeCancel) {
		t.Errorf("Can: read %v cancel %v", got.Can(ScopeRead), got.Can(ScopeCancel))
	}
	if Verify(sec, strings.Repeat("a", len(secret))) != nil {
		t.Error("a wrong secret verified")
	}
	if info := Describe(sec); info.ID != id || info.Tenant != "team-a" || info.Scopes != "submit,read" || info.RequestsPerSecond != "5" {
		t.Errorf("Describe = %+v", info)
	}
}

func TestSplitRejectsMalformed(t *testing.T) {
	for _, k := range []string{"", "seek_", "seek_abcdefgh_short", "nope_abcdefgh_" + strings.Repeat("a", 32), "seek_abcdefgh-" + strings.Repeat("a", 32)} {
		if _, _, ok := Split(k); ok {
			t.Errorf("Split(%q) accepted", k)
		}
	}
}
