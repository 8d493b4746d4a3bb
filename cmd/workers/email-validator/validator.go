package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/seek-api/seek-operator/pkg/worker"
)

// Embedded data: see each file's header.
var (
	//go:embed disposable_domains.txt
	disposableDomainsText string
	//go:embed role_accounts.txt
	roleAccountsText string
	//go:embed popular_domains.txt
	popularDomainsText string
)

// Reasons an address is not valid, in result.Reason.
const (
	// reasonInvalidSyntax: not a bare RFC 5322 addr-spec (display names, angle brackets, comments and
	// quoted local parts are refused), or too long.
	reasonInvalidSyntax = "invalid_syntax"
	// reasonInvalidDomain: the domain is not a valid host name of at least two labels with an
	// alphabetic (or "xn--") top-level domain; IP address literals are refused.
	reasonInvalidDomain = "invalid_domain"
	// reasonUnsupportedIDN: the domain has non-ASCII characters. Checking it would need IDNA
	// (UTS #46) processing, which the standard library does not have; send the punycode ("xn--") form.
	reasonUnsupportedIDN = "unsupported_idn"
	// reasonDisposable: the domain, or a domain it is under, is a disposable email service.
	reasonDisposable = "disposable"
	// reasonNoMX: the domain has no MX records and no address records, or does not exist.
	reasonNoMX = "no_mx"
	// reasonNullMX: the domain says it accepts no mail with a "null MX" record (RFC 7505).
	reasonNullMX = "null_mx"
)

// Limits of an address, from RFC 5321 section 4.5.3.1 (the 254 bytes are its 256-byte path without
// angle brackets) and RFC 1035.
const (
	maxAddressBytes = 254
	maxLocalBytes   = 64
	maxDomainBytes  = 253
	maxLabelBytes   = 63
)

// defaultLookupTimeout bounds the DNS lookups of one address.
const defaultLookupTimeout = 3 * time.Second

// Resolver looks up the DNS records the mail check needs. *net.Resolver implements it. Names are
// passed fully qualified, with a trailing dot, so that resolv.conf search domains are not tried.
type Resolver interface {
	// LookupMX returns the domain's MX records.
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	// LookupHost returns the domain's addresses (A and AAAA records).
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// input is the worker's input.
type input struct {
	// Email is the address to check. Required.
	Email *string `json:"email"`
	// CheckMX asks for the DNS check. Default: true.
	CheckMX *bool `json:"check_mx"`
}

// result is the worker's result: the verdict on one address.
type result struct {
	// Email is the address with its domain lowercased, or the input, trimmed (and cut to
	// maxAddressBytes), when its syntax is not valid.
	Email string `json:"email"`
	// Valid is true when nothing is known against the address: Reason is then empty.
	Valid bool `json:"valid"`
	// Score is the confidence, from 0 to 1, that the address is a real, personal, working mailbox.
	Score float64 `json:"score"`
	// Reason is why the address is not valid, one of the reason* constants, or empty.
	Reason string `json:"reason"`
	// Checks are the individual checks.
	Checks checks `json:"checks"`
}

// checks are the individual checks of an address.
type checks struct {
	// Syntax is true when the address is a valid bare address with a valid domain.
	Syntax bool `json:"syntax"`
	// Disposable is true when the domain is a disposable email service.
	Disposable bool `json:"disposable"`
	// RoleAccount is true when the local part names a role (admin, info, ...) rather than a person.
	RoleAccount bool `json:"role_account"`
	// MX is true when the domain accepts mail, false when it does not, and nil when that was not
	// checked (check_mx false, or an earlier check failed) or DNS gave no answer.
	MX *bool `json:"mx"`
	// TypoSuggestion is the popular domain the address's domain is probably a typo of, or nil.
	TypoSuggestion *string `json:"typo_suggestion"`
}

// validator checks email addresses.
type validator struct {
	resolver   Resolver
	timeout    time.Duration   // of the DNS lookups of one address
	disposable map[string]bool // disposable domains
	roles      map[string]bool // role accounts' local parts
	popular    []string        // popular domains, most used first
}

// newValidator returns a validator that uses resolver, with timeout for the DNS lookups of an address.
func newValidator(resolver Resolver, timeout time.Duration) *validator {
	return &validator{
		resolver:   resolver,
		timeout:    timeout,
		disposable: setOf(lines(disposableDomainsText)),
		roles:      setOf(lines(roleAccountsText)),
		popular:    lines(popularDomainsText),
	}
}

// handle is the worker's handler.
func (v *validator) handle(ctx context.Context, job *worker.Job) (any, error) {
	var in input
	if err := json.Unmarshal(job.Input, &in); err != nil {
		return nil, worker.Permanent(worker.ReasonInvalidInput, fmt.Errorf("the input must be an object with an \"email\" string: %w", err))
	}
	if in.Email == nil {
		return nil, worker.Permanent(worker.ReasonInvalidInput, errors.New("the input must be an object with an \"email\" string"))
	}
	r, err := v.validate(ctx, *in.Email, in.CheckMX == nil || *in.CheckMX)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// validate checks email. It fails only when ctx is done.
func (v *validator) validate(ctx context.Context, email string, checkMX bool) (result, error) {
	email = strings.TrimSpace(email)
	local, domain, reason := splitAddress(email)
	if reason == reasonInvalidSyntax || reason == reasonInvalidDomain {
		return result{Email: truncate(email, maxAddressBytes), Reason: reason}, nil
	}
	r := result{Email: local + "@" + domain, Checks: checks{Syntax: true, RoleAccount: v.isRole(local)}}
	switch {
	case reason != "": // reasonUnsupportedIDN
		r.Reason, r.Score = reason, 0.5
		return r, nil
	case v.isDisposable(domain):
		r.Checks.Disposable = true
		r.Reason, r.Score = reasonDisposable, 0.1
		return r, nil
	}
	if s, ok := v.suggest(domain); ok {
		r.Checks.TypoSuggestion = &s
	}
	if checkMX {
		accepts, mxReason, err := v.acceptsMail(ctx, domain)
		if err != nil {
			return result{}, err
		}
		r.Checks.MX, r.Reason = accepts, mxReason
	}
	if r.Reason != "" {
		return r, nil
	}
	r.Valid = true
	r.Score = 1
	if r.Checks.RoleAccount {
		r.Score *= 0.8 // reaches a team or a robot, not a person
	}
	if r.Checks.TypoSuggestion != nil {
		r.Score *= 0.5 // probably not the address meant
	}
	if r.Checks.MX == nil {
		r.Score *= 0.9 // not known to accept mail
	}
	if !isASCII(local) {
		r.Score *= 0.9 // needs SMTPUTF8 (RFC 6531) all the way
	}
	r.Score = math.Round(r.Score*100) / 100
	return r, nil
}

// splitAddress splits a bare address into its local part and its lowercased domain. The reason is
// empty for a valid address, reasonUnsupportedIDN for a non-ASCII domain, and reasonInvalidSyntax or
// reasonInvalidDomain (with empty parts) for an invalid one.
func splitAddress(email string) (local, domain, reason string) {
	if email == "" || len(email) > maxAddressBytes || !utf8.ValidString(email) {
		return "", "", reasonInvalidSyntax
	}
	// net/mail parses RFC 5322 address lists; a bare address must come back unchanged, without a
	// display name, angle brackets, comments or quotes.
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "", "", reasonInvalidSyntax
	}
	at := strings.LastIndexByte(email, '@')
	local, domain = email[:at], strings.ToLower(email[at+1:])
	switch {
	case len(local) > maxLocalBytes:
		return "", "", reasonInvalidSyntax
	case !isASCII(domain):
		return local, domain, reasonUnsupportedIDN
	case !validDomain(domain):
		return "", "", reasonInvalidDomain
	}
	return local, domain, ""
}

// validDomain reports whether a lowercase ASCII domain is a host name of at least two labels of
// letters, digits and inner hyphens, with a top-level domain of letters or in punycode ("xn--").
func validDomain(domain string) bool {
	if len(domain) > maxDomainBytes {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > maxLabelBytes || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.HasPrefix(tld, "xn--") {
		return true
	}
	for i := 0; i < len(tld); i++ {
		if tld[i] < 'a' || tld[i] > 'z' {
			return false
		}
	}
	return len(tld) >= 2
}

// isRole reports whether local is a role account's local part, ignoring case and a "+tag".
func (v *validator) isRole(local string) bool {
	local = strings.ToLower(local)
	if i := strings.IndexByte(local, '+'); i >= 0 {
		local = local[:i]
	}
	return v.roles[local]
}

// isDisposable reports whether domain or a domain it is under is disposable.
func (v *validator) isDisposable(domain string) bool {
	for {
		if v.disposable[domain] {
			return true
		}
		i := strings.IndexByte(domain, '.')
		if i < 0 {
			return false
		}
		domain = domain[i+1:]
	}
}

// suggest returns the popular domain that domain is probably a typo of. Domains split into a name
// and a top-level domain at the last dot. With the same name, a top-level domain one edit away is a
// typo ("gmail.con"). With the same top-level domain, a name one edit away is a typo when the
// popular name has at least 4 characters, two edits when it has 6 ("hotmial.com", "gmial.com"); an
// edit is an insertion, a deletion, a substitution or a swap of neighbors.
func (v *validator) suggest(domain string) (string, bool) {
	name, tld := splitTLD(domain)
	best, bestDist := "", math.MaxInt
	for _, p := range v.popular {
		if p == domain {
			return "", false
		}
		pname, ptld := splitTLD(p)
		var d, limit int
		switch {
		case name == pname:
			d, limit = editDistance(tld, ptld), 1
		case tld == ptld:
			d = editDistance(name, pname)
			switch {
			case len(pname) >= 6:
				limit = 2
			case len(pname) >= 4:
				limit = 1
			}
		default:
			continue
		}
		if d <= limit && d < bestDist {
			best, bestDist = p, d
		}
	}
	return best, best != ""
}

// splitTLD splits domain at its last dot.
func splitTLD(domain string) (name, tld string) {
	i := strings.LastIndexByte(domain, '.')
	return domain[:i], domain[i+1:]
}

// editDistance returns the optimal string alignment distance between a and b: the number of byte
// insertions, deletions, substitutions and swaps of adjacent bytes that turn a into b.
func editDistance(a, b string) int {
	// Three rows of the dynamic programming table: i-2, i-1 and i.
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// acceptsMail looks up whether domain accepts mail: it has MX records, or, without any, an address
// (the implicit MX of RFC 5321 section 5.1). It returns true, false with reasonNoMX or reasonNullMX,
// or nil when DNS does not answer within the timeout or fails. Its error is ctx's, when ctx is done.
func (v *validator) acceptsMail(ctx context.Context, domain string) (accepts *bool, reason string, err error) {
	lookupCtx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	fqdn := domain + "."
	yes, no := true, false

	mxs, err := v.resolver.LookupMX(lookupCtx, fqdn)
	if ctx.Err() != nil {
		return nil, "", fmt.Errorf("look up the MX records of %s: %w", domain, context.Cause(ctx))
	}
	// LookupMX may return the valid records with an error about invalid ones.
	nullMX := false
	for _, mx := range mxs {
		if mx.Host == "." || mx.Host == "" {
			nullMX = true
		} else {
			return &yes, "", nil
		}
	}
	switch {
	case nullMX:
		return &no, reasonNullMX, nil
	case err != nil && !isNotFound(err):
		return nil, "", nil
	}

	addrs, err := v.resolver.LookupHost(lookupCtx, fqdn)
	if ctx.Err() != nil {
		return nil, "", fmt.Errorf("look up the addresses of %s: %w", domain, context.Cause(ctx))
	}
	switch {
	case len(addrs) > 0:
		return &yes, "", nil
	case err != nil && !isNotFound(err):
		return nil, "", nil
	}
	return &no, reasonNoMX, nil
}

// isNotFound reports whether err says the name does not exist or has no such records.
func isNotFound(err error) bool {
	dnsErr, ok := errors.AsType[*net.DNSError](err)
	return ok && dnsErr.IsNotFound
}

// lines returns the non-empty lines of text, without comments ('#' to the end of the line),
// surrounding spaces or upper case.
func lines(text string) []string {
	var out []string
	s := bufio.NewScanner(strings.NewReader(text))
	for s.Scan() {
		line, _, _ := strings.Cut(s.Text(), "#")
		if line = strings.ToLower(strings.TrimSpace(line)); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// setOf returns the set of items.
func setOf(items []string) map[string]bool {
	set := make(map[string]bool, len(items))
	for _, item := range items {
		set[item] = true
	}
	return set
}

// isASCII reports whether s is ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
