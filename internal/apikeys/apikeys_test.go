package apikeys

import (
	"errors"
	"math"
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
	got, err := Verify(sec, secret)
	if err != nil {
		t.Fatal(err)
	}
	want := &Key{ID: id, Tenant: "team-a", Scopes: []Scope{ScopeSubmit, ScopeRead}, RequestsPerSecond: 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify (-want +got):\n%s", diff)
	}
	if !got.Can(ScopeRead) || got.Can(ScopeCancel) {
		t.Errorf("Can: read %v cancel %v", got.Can(ScopeRead), got.Can(ScopeCancel))
	}
	if k, err := Verify(sec, strings.Repeat("a", len(secret))); k != nil || !errors.Is(err, ErrMismatch) {
		t.Errorf("a wrong secret verified: %v, %v", k, err)
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

func TestNewRefusesUnboundedRates(t *testing.T) {
	for _, rps := range []float64{math.Inf(1), math.Inf(-1), math.NaN(), -1, MaxRequestsPerSecond + 1, 1e300} {
		if _, _, err := New("seek-system", "team-a", Scopes, rps); err == nil {
			t.Errorf("New with rate %g succeeded", rps)
		}
	}
	for rps, want := range map[float64]string{0: "10", 0.5: "0.5", MaxRequestsPerSecond: "10000"} {
		sec, _, err := New("seek-system", "team-a", Scopes, rps)
		if err != nil || string(sec.Data[dataRate]) != want {
			t.Errorf("New with rate %g = %q (%v), want %s", rps, sec.Data[dataRate], err, want)
		}
	}
}

// A stored key whose rate is not a finite, bounded number fails closed: an unlimited key would bypass
// the limiter.
func TestVerifyFailsClosedOnInvalidRate(t *testing.T) {
	sec, key, err := New("seek-system", "team-a", Scopes, 5)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := Split(key)
	for _, rate := range []string{"Inf", "+Inf", "NaN", "1e309", "10001", "0", "-5", "", "fast"} {
		s := sec.DeepCopy()
		s.Data[dataRate] = []byte(rate)
		var invalid *InvalidError
		if k, err := Verify(s, secret); k != nil || !errors.As(err, &invalid) {
			t.Errorf("rate %q: Verify = %+v, %v; want an *InvalidError", rate, k, err)
		}
	}
	s := sec.DeepCopy()
	delete(s.Data, dataRate) // a hand-made Secret without a rate gets the default
	if k, err := Verify(s, secret); err != nil || k.RequestsPerSecond != DefaultRequestsPerSecond {
		t.Errorf("no rate: Verify = %+v, %v; want the default rate", k, err)
	}
	s = sec.DeepCopy()
	delete(s.Data, dataTenant)
	if k, err := Verify(s, secret); k != nil || err == nil {
		t.Errorf("no tenant: Verify = %+v, %v; want an error", k, err)
	}
}
