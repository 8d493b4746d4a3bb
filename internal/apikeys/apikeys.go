// Package apikeys is the model of Seek's REST API keys: how a key is minted, stored as a Secret and
// checked. A key looks like seek_<id>_<secret>; its Secret, named after the id, holds only a SHA-256 of
// the secret part, the tenant namespace, the scopes and a rate limit. The REST frontend authenticates
// with it; seekctl and the local cluster mint keys with it, without importing the HTTP server.
package apikeys

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scope is a permission an API key grants.
type Scope string

const (
	// ScopeSubmit creates jobs and asks for callback redeliveries.
	ScopeSubmit Scope = "submit"
	// ScopeRead reads jobs and the worker catalogue.
	ScopeRead Scope = "read"
	// ScopeCancel cancels jobs.
	ScopeCancel Scope = "cancel"
	// ScopeWebhooks reads and rotates the tenant's webhook signing secret.
	ScopeWebhooks Scope = "webhooks"
)

// Scopes are all the scopes a key can hold.
var Scopes = []Scope{ScopeSubmit, ScopeRead, ScopeCancel, ScopeWebhooks}

const (
	// Label marks a Secret as an API key (value "true").
	Label = "seek-api.com/api-key"
	// SecretType is the type of API-key Secrets.
	SecretType corev1.SecretType = "seek-api.com/api-key"

	keyPrefix    = "seek_"
	idLength     = 8
	secretLength = 32
	secretPrefix = "seek-key-"
	dataHash     = "sha256"
	dataTenant   = "tenant"
	dataScopes   = "scopes"
	dataRate     = "requestsPerSecond"

	// DefaultRequestsPerSecond is a key's rate limit when it was minted without one.
	DefaultRequestsPerSecond = 10
	// MaxRequestsPerSecond bounds a key's rate limit. There is no unlimited key: a rate that is not a
	// finite number from above 0 to this is refused when minted and makes a stored key unusable.
	MaxRequestsPerSecond = 10000
)

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Key is a stored API key, without its secret.
type Key struct {
	ID     string
	Tenant string
	Scopes []Scope
	// RequestsPerSecond is the key's rate limit (token bucket, burst twice the rate).
	RequestsPerSecond float64
}

// Can reports whether the key holds scope.
func (k *Key) Can(scope Scope) bool { return slices.Contains(k.Scopes, scope) }

// New mints a key for tenant with scopes and a rate limit (requests per second, at most
// MaxRequestsPerSecond; 0 means the default): the Secret to store in namespace and the key to show once.
func New(namespace, tenant string, scopes []Scope, requestsPerSecond float64) (*corev1.Secret, string, error) {
	if requestsPerSecond == 0 {
		requestsPerSecond = DefaultRequestsPerSecond
	}
	if err := checkRate(requestsPerSecond); err != nil {
		return nil, "", err
	}
	b := make([]byte, (idLength+secretLength)*5/8+1)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	s := lowerBase32.EncodeToString(b)
	id, secret := s[:idLength], s[idLength:idLength+secretLength]
	sum := sha256.Sum256([]byte(secret))
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: SecretName(id), Namespace: namespace, Labels: map[string]string{Label: "true"}},
		Type:       SecretType,
		Data: map[string][]byte{
			dataHash:   []byte(hex.EncodeToString(sum[:])),
			dataTenant: []byte(tenant),
			dataScopes: []byte(strings.Join(names, ",")),
			dataRate:   []byte(strconv.FormatFloat(requestsPerSecond, 'f', -1, 64)),
		},
	}
	return sec, keyPrefix + id + "_" + secret, nil
}

// SecretName is the name of the Secret that stores the key with this id.
func SecretName(id string) string { return secretPrefix + id }

// Split cuts a presented key into its id and secret part; ok is false when it is not shaped like a key.
func Split(key string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok || len(rest) != idLength+1+secretLength || rest[idLength] != '_' {
		return "", "", false
	}
	return rest[:idLength], rest[idLength+1:], true
}

// Info describes a stored key as text, without anything secret (for listing).
type Info struct {
	ID, Tenant, Scopes, RequestsPerSecond string
}

// Describe reads a key's Secret.
func Describe(s *corev1.Secret) Info {
	return Info{
		ID:                strings.TrimPrefix(s.Name, secretPrefix),
		Tenant:            string(s.Data[dataTenant]),
		Scopes:            string(s.Data[dataScopes]),
		RequestsPerSecond: string(s.Data[dataRate]),
	}
}

// checkRate refuses rate limits that are not a finite number from above 0 to MaxRequestsPerSecond:
// Inf, NaN or an absurd rate would mean no limit at all.
func checkRate(rps float64) error {
	if math.IsNaN(rps) || rps <= 0 || rps > MaxRequestsPerSecond {
		return fmt.Errorf("rate limit %g: must be a number of requests per second above 0 and at most %d", rps, MaxRequestsPerSecond)
	}
	return nil
}

// ErrMismatch means the presented secret is not the key's.
var ErrMismatch = errors.New("the API key does not match")

// InvalidError means the presented secret matches, but its Secret does not describe a usable key: the
// key fails closed until an administrator re-creates it.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return "the API key's Secret is invalid: " + e.Reason }

// Verify checks secret, the secret part of a presented key, against the key's Secret in constant time
// and returns the key it stores: ErrMismatch when the secret does not match (or the Secret is not an API
// key), an *InvalidError when it matches a Secret that does not hold a tenant and a valid rate limit.
func Verify(s *corev1.Secret, secret string) (*Key, error) {
	sum := sha256.Sum256([]byte(secret))
	if s.Labels[Label] != "true" || subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), s.Data[dataHash]) != 1 {
		return nil, ErrMismatch
	}
	k := &Key{ID: strings.TrimPrefix(s.Name, secretPrefix), Tenant: string(s.Data[dataTenant]), RequestsPerSecond: DefaultRequestsPerSecond}
	if raw, ok := s.Data[dataRate]; ok {
		rps, err := strconv.ParseFloat(string(raw), 64)
		if err == nil {
			err = checkRate(rps)
		}
		if err != nil {
			return nil, &InvalidError{Reason: fmt.Sprintf("%s %q is not a number from above 0 to %d", dataRate, raw, MaxRequestsPerSecond)}
		}
		k.RequestsPerSecond = rps
	}
	for _, sc := range strings.Split(string(s.Data[dataScopes]), ",") {
		if sc != "" {
			k.Scopes = append(k.Scopes, Scope(sc))
		}
	}
	if k.Tenant == "" {
		return nil, &InvalidError{Reason: "it names no tenant"}
	}
	return k, nil
}
