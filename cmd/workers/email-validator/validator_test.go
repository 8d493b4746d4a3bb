package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seek-api/seek-operator/pkg/protocol"
	"github.com/seek-api/seek-operator/pkg/worker"
)

// fakeDomain is what fakeResolver answers for one domain.
type fakeDomain struct {
	mx      []string // MX hosts
	hosts   []string // addresses
	mxErr   error    // returned with mx
	hostErr error    // returned with hosts
	hang    bool     // block until the context is done, then time out
}

// fakeResolver answers from a zone, without a network. Domains not in the zone do not exist.
type fakeResolver struct {
	zone map[string]fakeDomain

	mu      sync.Mutex
	queries []string // "MX name" or "HOST name"
}

func (r *fakeResolver) lookup(ctx context.Context, kind, name string) (fakeDomain, error) {
	r.mu.Lock()
	r.queries = append(r.queries, kind+" "+name)
	r.mu.Unlock()
	d, ok := r.zone[strings.TrimSuffix(name, ".")]
	if !ok {
		return d, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	if d.hang {
		<-ctx.Done()
		return d, &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true}
	}
	return d, nil
}

func (r *fakeResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	d, err := r.lookup(ctx, "MX", name)
	if err != nil {
		return nil, err
	}
	if len(d.mx) == 0 && d.mxErr == nil {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	var mxs []*net.MX
	for i, h := range d.mx {
		mxs = append(mxs, &net.MX{Host: h, Pref: uint16(10 * i)})
	}
	return mxs, d.mxErr
}

func (r *fakeResolver) LookupHost(ctx context.Context, name string) ([]string, error) {
	d, err := r.lookup(ctx, "HOST", name)
	if err != nil {
		return nil, err
	}
	if len(d.hosts) == 0 && d.hostErr == nil {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return d.hosts, d.hostErr
}

func newFakeResolver() *fakeResolver {
	servfail := &net.DNSError{Err: "server misbehaving", Name: "x", IsTemporary: true}
	return &fakeResolver{zone: map[string]fakeDomain{
		"example.com":           {mx: []string{"mx1.example.com.", "mx2.example.com."}},
		"gmail.com":             {mx: []string{"gmail-smtp-in.l.google.com."}},
		"mymailinator.com":      {mx: []string{"mx.mymailinator.com."}},
		"xn--bcher-kva.example": {mx: []string{"mx.xn--bcher-kva.example."}},
		"example.xn--p1ai":      {mx: []string{"mx.example.xn--p1ai."}},
		"a-only.example":        {hosts: []string{"192.0.2.1", "2001:db8::1"}},
		"nullmx.example":        {mx: []string{"."}},
		"nothing.example":       {},
		"slow.example":          {hang: true},
		"servfail.example":      {mxErr: servfail},
		"partial.example":       {mx: []string{"mx.partial.example."}, mxErr: &net.DNSError{Err: "cannot unmarshal DNS message"}},
		"hostservfail.example":  {hostErr: servfail},
	}}
}

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	long64 := strings.Repeat("a", 64)
	for _, tc := range []struct {
		email   string
		noMX    bool // check_mx false
		want    result
		queries []string // nil: not checked
	}{
		// Valid addresses.
		{email: "ada@example.com", want: result{Email: "ada@example.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}},
			queries: []string{"MX example.com."}},
		{email: "Ada.Lovelace@Example.COM", want: result{Email: "Ada.Lovelace@example.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "  ada@example.com\n", want: result{Email: "ada@example.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "ada+news@example.com", want: result{Email: "ada+news@example.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "o'brien@example.com", want: result{Email: "o'brien@example.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "a!#$%&'*+/=?^_`{|}~-b@example.com", want: result{Email: "a!#$%&'*+/=?^_`{|}~-b@example.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: long64 + "@example.com", want: result{Email: long64 + "@example.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "ada@example.com", noMX: true, want: result{Email: "ada@example.com", Valid: true, Score: 0.9, Checks: checks{Syntax: true}}, queries: []string{}},
		{email: "jörg@example.com", want: result{Email: "jörg@example.com", Valid: true, Score: 0.9, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "ada@xn--bcher-kva.example", want: result{Email: "ada@xn--bcher-kva.example", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "ada@example.xn--p1ai", want: result{Email: "ada@example.xn--p1ai", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "ada@gmail.com", want: result{Email: "ada@gmail.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},

		// Syntax.
		{email: "", want: result{Email: "", Reason: reasonInvalidSyntax}, queries: []string{}},
		{email: "ada", want: result{Email: "ada", Reason: reasonInvalidSyntax}},
		{email: "ada@", want: result{Email: "ada@", Reason: reasonInvalidSyntax}},
		{email: "@example.com", want: result{Email: "@example.com", Reason: reasonInvalidSyntax}},
		{email: "ada@@example.com", want: result{Email: "ada@@example.com", Reason: reasonInvalidSyntax}},
		{email: "Ada <ada@example.com>", want: result{Email: "Ada <ada@example.com>", Reason: reasonInvalidSyntax}},
		{email: "<ada@example.com>", want: result{Email: "<ada@example.com>", Reason: reasonInvalidSyntax}},
		{email: "ada@example.com (Ada)", want: result{Email: "ada@example.com (Ada)", Reason: reasonInvalidSyntax}},
		{email: `"ada lovelace"@example.com`, want: result{Email: `"ada lovelace"@example.com`, Reason: reasonInvalidSyntax}},
		{email: `"ada"@example.com`, want: result{Email: `"ada"@example.com`, Reason: reasonInvalidSyntax}},
		{email: "ada..lovelace@example.com", want: result{Email: "ada..lovelace@example.com", Reason: reasonInvalidSyntax}},
		{email: ".ada@example.com", want: result{Email: ".ada@example.com", Reason: reasonInvalidSyntax}},
		{email: "ada.@example.com", want: result{Email: "ada.@example.com", Reason: reasonInvalidSyntax}},
		{email: "ada lovelace@example.com", want: result{Email: "ada lovelace@example.com", Reason: reasonInvalidSyntax}},
		{email: "ada@example.com.", want: result{Email: "ada@example.com.", Reason: reasonInvalidSyntax}},
		{email: "ada@example..com", want: result{Email: "ada@example..com", Reason: reasonInvalidSyntax}},
		{email: "ada@exa mple.com", want: result{Email: "ada@exa mple.com", Reason: reasonInvalidSyntax}},
		{email: "ada\x00@example.com", want: result{Email: "ada\x00@example.com", Reason: reasonInvalidSyntax}},
		{email: "a, b@example.com", want: result{Email: "a, b@example.com", Reason: reasonInvalidSyntax}},
		{email: long64 + "a@example.com", want: result{Email: long64 + "a@example.com", Reason: reasonInvalidSyntax}},

		// Domains.
		{email: "ada@localhost", want: result{Email: "ada@localhost", Reason: reasonInvalidDomain}, queries: []string{}},
		{email: "ada@[192.0.2.1]", want: result{Email: "ada@[192.0.2.1]", Reason: reasonInvalidDomain}},
		{email: "ada@192.0.2.1", want: result{Email: "ada@192.0.2.1", Reason: reasonInvalidDomain}},
		{email: "ada@-example.com", want: result{Email: "ada@-example.com", Reason: reasonInvalidDomain}},
		{email: "ada@example-.com", want: result{Email: "ada@example-.com", Reason: reasonInvalidDomain}},
		{email: "ada@exa_mple.com", want: result{Email: "ada@exa_mple.com", Reason: reasonInvalidDomain}},
		{email: "ada@example.c", want: result{Email: "ada@example.c", Reason: reasonInvalidDomain}},
		{email: "ada@example.c0m", want: result{Email: "ada@example.c0m", Reason: reasonInvalidDomain}},
		{email: "ada@" + long64 + ".com", want: result{Email: "ada@" + long64 + ".com", Reason: reasonInvalidDomain}},
		{email: "ada@bücher.example", want: result{Email: "ada@bücher.example", Reason: reasonUnsupportedIDN, Score: 0.5, Checks: checks{Syntax: true}}, queries: []string{}},
		{email: "Info@BÜCHER.example", want: result{Email: "Info@bücher.example", Reason: reasonUnsupportedIDN, Score: 0.5, Checks: checks{Syntax: true, RoleAccount: true}}},

		// Disposable domains and role accounts.
		{email: "ada@mailinator.com", want: result{Email: "ada@mailinator.com", Reason: reasonDisposable, Score: 0.1, Checks: checks{Syntax: true, Disposable: true}}, queries: []string{}},
		{email: "ada@YOPMAIL.com", want: result{Email: "ada@yopmail.com", Reason: reasonDisposable, Score: 0.1, Checks: checks{Syntax: true, Disposable: true}}},
		{email: "ada@inbox.mailinator.com", want: result{Email: "ada@inbox.mailinator.com", Reason: reasonDisposable, Score: 0.1, Checks: checks{Syntax: true, Disposable: true}}},
		{email: "admin@guerrillamail.com", want: result{Email: "admin@guerrillamail.com", Reason: reasonDisposable, Score: 0.1, Checks: checks{Syntax: true, Disposable: true, RoleAccount: true}}},
		{email: "ada@mymailinator.com", want: result{Email: "ada@mymailinator.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "admin@example.com", want: result{Email: "admin@example.com", Valid: true, Score: 0.8, Checks: checks{Syntax: true, RoleAccount: true, MX: ptr(true)}}},
		{email: "NoReply+billing@example.com", want: result{Email: "NoReply+billing@example.com", Valid: true, Score: 0.8, Checks: checks{Syntax: true, RoleAccount: true, MX: ptr(true)}}},
		{email: "postmaster@example.com", noMX: true, want: result{Email: "postmaster@example.com", Valid: true, Score: 0.72, Checks: checks{Syntax: true, RoleAccount: true}}},
		{email: "administrators@example.com", want: result{Email: "administrators@example.com", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},

		// Typos.
		{email: "ada@gmial.com", want: result{Email: "ada@gmial.com", Reason: reasonNoMX, Checks: checks{Syntax: true, MX: ptr(false), TypoSuggestion: ptr("gmail.com")}}},
		{email: "ada@hotmial.com", noMX: true, want: result{Email: "ada@hotmial.com", Valid: true, Score: 0.45, Checks: checks{Syntax: true, TypoSuggestion: ptr("hotmail.com")}}},
		{email: "ada@gmail.con", noMX: true, want: result{Email: "ada@gmail.con", Valid: true, Score: 0.45, Checks: checks{Syntax: true, TypoSuggestion: ptr("gmail.com")}}},
		{email: "ada@yahoo.co", noMX: true, want: result{Email: "ada@yahoo.co", Valid: true, Score: 0.45, Checks: checks{Syntax: true, TypoSuggestion: ptr("yahoo.com")}}},
		{email: "ada@aol.co", noMX: true, want: result{Email: "ada@aol.co", Valid: true, Score: 0.45, Checks: checks{Syntax: true, TypoSuggestion: ptr("aol.com")}}},
		{email: "ada@gamil.com", noMX: true, want: result{Email: "ada@gamil.com", Valid: true, Score: 0.45, Checks: checks{Syntax: true, TypoSuggestion: ptr("gmail.com")}}},
		{email: "ada@outlok.com", noMX: true, want: result{Email: "ada@outlok.com", Valid: true, Score: 0.45, Checks: checks{Syntax: true, TypoSuggestion: ptr("outlook.com")}}},
		{email: "ada@iclod.com", noMX: true, want: result{Email: "ada@iclod.com", Valid: true, Score: 0.45, Checks: checks{Syntax: true, TypoSuggestion: ptr("icloud.com")}}},
		{email: "ada@email.com", noMX: true, want: result{Email: "ada@email.com", Valid: true, Score: 0.9, Checks: checks{Syntax: true}}},
		{email: "ada@hotmail.de", noMX: true, want: result{Email: "ada@hotmail.de", Valid: true, Score: 0.9, Checks: checks{Syntax: true}}},
		{email: "ada@xe.com", noMX: true, want: result{Email: "ada@xe.com", Valid: true, Score: 0.9, Checks: checks{Syntax: true}}},
		{email: "ada@gmail.co.uk", noMX: true, want: result{Email: "ada@gmail.co.uk", Valid: true, Score: 0.9, Checks: checks{Syntax: true}}},

		// DNS.
		{email: "ada@a-only.example", want: result{Email: "ada@a-only.example", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}},
			queries: []string{"MX a-only.example.", "HOST a-only.example."}},
		{email: "ada@nullmx.example", want: result{Email: "ada@nullmx.example", Reason: reasonNullMX, Checks: checks{Syntax: true, MX: ptr(false)}},
			queries: []string{"MX nullmx.example."}},
		{email: "ada@nxdomain.example", want: result{Email: "ada@nxdomain.example", Reason: reasonNoMX, Checks: checks{Syntax: true, MX: ptr(false)}},
			queries: []string{"MX nxdomain.example.", "HOST nxdomain.example."}},
		{email: "ada@nothing.example", want: result{Email: "ada@nothing.example", Reason: reasonNoMX, Checks: checks{Syntax: true, MX: ptr(false)}}},
		{email: "ada@slow.example", want: result{Email: "ada@slow.example", Valid: true, Score: 0.9, Checks: checks{Syntax: true}},
			queries: []string{"MX slow.example."}},
		{email: "ada@servfail.example", want: result{Email: "ada@servfail.example", Valid: true, Score: 0.9, Checks: checks{Syntax: true}},
			queries: []string{"MX servfail.example."}},
		{email: "ada@partial.example", want: result{Email: "ada@partial.example", Valid: true, Score: 1, Checks: checks{Syntax: true, MX: ptr(true)}}},
		{email: "ada@hostservfail.example", want: result{Email: "ada@hostservfail.example", Valid: true, Score: 0.9, Checks: checks{Syntax: true}},
			queries: []string{"MX hostservfail.example.", "HOST hostservfail.example."}},
	} {
		r := newFakeResolver()
		v := newValidator(r, 20*time.Millisecond)
		got, err := v.validate(context.Background(), tc.email, !tc.noMX)
		if err != nil {
			t.Errorf("validate(%q): %v", tc.email, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("validate(%q) (-want +got):\n%s", tc.email, diff)
		}
		if tc.queries != nil && !slices.Equal(r.queries, tc.queries) {
			t.Errorf("validate(%q) queried %q, want %q", tc.email, r.queries, tc.queries)
		}
		if got.Valid != (got.Reason == "") || got.Score < 0 || got.Score > 1 || !got.Valid && got.Score > 0.5 {
			t.Errorf("validate(%q): inconsistent %+v", tc.email, got)
		}
	}
}

func TestValidateLongAddress(t *testing.T) {
	v := newValidator(newFakeResolver(), time.Second)
	for _, email := range []string{
		strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 60) + ".com", // 259 bytes
		strings.Repeat("é", 100000),
	} {
		got, err := v.validate(context.Background(), email, true)
		if err != nil || got.Reason != reasonInvalidSyntax || len(got.Email) > maxAddressBytes || !strings.HasSuffix(got.Email, "…") {
			t.Errorf("validate(%d bytes) = %+v (%v)", len(email), got, err)
		}
	}
}

func TestHandle(t *testing.T) {
	for _, tc := range []struct {
		input  string
		code   int // of the error; 0: a result
		email  string
		mx     *bool
		reason string
	}{
		{input: `{"email": "ada@example.com"}`, email: "ada@example.com", mx: ptr(true)},
		{input: `{"email": "ada@example.com", "check_mx": true}`, email: "ada@example.com", mx: ptr(true)},
		{input: `{"email": "ada@example.com", "check_mx": false}`, email: "ada@example.com"},
		{input: `{"email": "ada@example.com", "callback_id": 7}`, email: "ada@example.com", mx: ptr(true)},
		{input: `{"email": "not an address"}`, email: "not an address", reason: reasonInvalidSyntax},
		{input: `{"email": ""}`, email: "", reason: reasonInvalidSyntax},
		{input: `"ada@example.com"`, code: 65},
		{input: `["ada@example.com"]`, code: 65},
		{input: `42`, code: 65},
		{input: `null`, code: 65},
		{input: `{}`, code: 65},
		{input: `{"email": null}`, code: 65},
		{input: `{"email": 42}`, code: 65},
		{input: `{"email": "ada@example.com", "check_mx": "yes"}`, code: 65},
		{input: ``, code: 65},
	} {
		v := newValidator(newFakeResolver(), time.Second)
		got, err := v.handle(context.Background(), &worker.Job{Input: json.RawMessage(tc.input)})
		if tc.code != 0 {
			if code, reason := worker.Classify(err); code != tc.code || reason != worker.ReasonInvalidInput || got != nil {
				t.Errorf("handle(%s) = %v, %v (%d %q); want an InvalidInput error", tc.input, got, err, code, reason)
			}
			continue
		}
		r, ok := got.(result)
		if err != nil || !ok || r.Email != tc.email || r.Reason != tc.reason || !cmp.Equal(r.Checks.MX, tc.mx) {
			t.Errorf("handle(%s) = %+v, %v", tc.input, got, err)
		}
	}
}

// TestInterrupted checks that a canceled job stops during a DNS lookup and is reported as interrupted.
func TestInterrupted(t *testing.T) {
	dir := t.TempDir()
	input, resultPath := filepath.Join(dir, "input.json"), filepath.Join(dir, "result.json")
	if err := os.WriteFile(input, []byte(`{"email": "ada@slow.example"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(20*time.Millisecond, func() { cancel(errors.New("terminated signal received")) })
	v := newValidator(newFakeResolver(), time.Hour)
	start := time.Now()
	code := worker.Execute(ctx, v.handle, worker.Options{
		InputPath:  input,
		ResultPath: resultPath,
		Getenv:     func(string) string { return "" },
		Log:        &bytes.Buffer{},
	})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the worker stopped %v after the cancelation", d)
	}
	data, err := os.ReadFile(resultPath)
	want := `{"message":"interrupted (terminated signal received): look up the MX records of slow.example: terminated signal received","reason":"Interrupted"}`
	if code != 1 || err != nil || string(data) != want {
		t.Errorf("exit %d, result %s (%v); want exit 1, result %s", code, data, err, want)
	}
}

// TestExecute runs the worker through the SDK, as the container would.
func TestExecute(t *testing.T) {
	for _, tc := range []struct {
		input  string
		code   int
		result string
	}{
		{`{"email": "Ada@Example.com"}`, 0, `{"email":"Ada@example.com","valid":true,"score":1,"reason":"","checks":{"syntax":true,"disposable":false,"role_account":false,"mx":true,"typo_suggestion":null}}`},
		{`{"email": "ada@gmial.com", "check_mx": false}`, 0, `{"email":"ada@gmial.com","valid":true,"score":0.45,"reason":"","checks":{"syntax":true,"disposable":false,"role_account":false,"mx":null,"typo_suggestion":"gmail.com"}}`},
		{`{"email": "<ada@example.com>"}`, 0, `{"email":"<ada@example.com>","valid":false,"score":0,"reason":"invalid_syntax","checks":{"syntax":false,"disposable":false,"role_account":false,"mx":null,"typo_suggestion":null}}`},
		{`{"email": "` + strings.Repeat("x", 100000) + `"}`, 0, `"reason":"invalid_syntax"`},
		{`{"address": "ada@example.com"}`, 65, `{"message":"the input must be an object with an \"email\" string","reason":"InvalidInput"}`},
	} {
		dir := t.TempDir()
		input, resultPath := filepath.Join(dir, "input.json"), filepath.Join(dir, "result.json")
		if err := os.WriteFile(input, []byte(tc.input), 0o600); err != nil {
			t.Fatal(err)
		}
		code := worker.Execute(context.Background(), newValidator(newFakeResolver(), time.Second).handle, worker.Options{
			InputPath:  input,
			ResultPath: resultPath,
			Getenv:     func(string) string { return "" },
			Log:        &bytes.Buffer{},
		})
		data, err := os.ReadFile(resultPath)
		if code != tc.code || err != nil || !strings.Contains(string(data), tc.result) || len(data) > protocol.MaxMessageBytes {
			t.Errorf("%.80s: exit %d, result %s (%v); want exit %d, result %s", tc.input, code, data, err, tc.code, tc.result)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"gmail", "gmail", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"gmial", "gmail", 1},
		{"gmai", "gmail", 1},
		{"gmaill", "gmail", 1},
		{"gnail", "gmail", 1},
		{"hotmial", "hotmail", 1},
		{"hotmal", "hotmail", 1},
		{"hotnial", "hotmail", 2},
		{"ca", "abc", 3}, // optimal string alignment, not full Damerau-Levenshtein (2)
		{"kitten", "sitting", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
}

// TestData checks the embedded lists.
func TestData(t *testing.T) {
	v := newValidator(nil, time.Second)
	for name, list := range map[string][]string{
		"disposable_domains.txt": lines(disposableDomainsText),
		"role_accounts.txt":      lines(roleAccountsText),
		"popular_domains.txt":    lines(popularDomainsText),
	} {
		if len(list) < 40 {
			t.Errorf("%s: only %d entries", name, len(list))
		}
		seen := map[string]bool{}
		for _, item := range list {
			if seen[item] {
				t.Errorf("%s: %q twice", name, item)
			}
			seen[item] = true
			if name == "role_accounts.txt" {
				if _, _, reason := splitAddress(item + "@example.com"); reason != "" {
					t.Errorf("%s: %q is not a local part: %s", name, item, reason)
				}
			} else if !validDomain(item) {
				t.Errorf("%s: %q is not a valid domain", name, item)
			}
		}
	}
	if n := len(v.disposable); n < 100 {
		t.Errorf("%d disposable domains", n)
	}
	for _, p := range v.popular {
		if v.isDisposable(p) {
			t.Errorf("popular domain %q is disposable", p)
		}
		if s, ok := v.suggest(p); ok {
			t.Errorf("popular domain %q gets the suggestion %q", p, s)
		}
	}
}
