package frontend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seek-api/seek-operator/internal/restapi"
)

// Scope is a permission an API key grants.
type Scope string

const (
	ScopeSubmit Scope = "submit"
	ScopeRead   Scope = "read"
	ScopeCancel Scope = "cancel"
	// ScopeWebhooks reads and rotates the tenant's webhook signing secret.
	ScopeWebhooks Scope = "webhooks"
)

// Scopes are all the scopes a key can hold.
var Scopes = []Scope{ScopeSubmit, ScopeRead, ScopeCancel, ScopeWebhooks}

// API keys are Secrets in the system namespace: the key's id names the Secret, and the Secret holds
// only a hash of the key's secret part, the tenant namespace and the scopes.
const (
	keyPrefix     = "seek_"
	keyIDLength   = 8
	secretLength  = 32
	secretPrefix  = "seek-key-"
	LabelAPIKey   = "seek-api.com/api-key"
	keyDataHash   = "sha256"
	keyDataTenant = "tenant"
	keyDataScopes = "scopes"
	keyDataRate   = "requestsPerSecond"

	// DefaultRequestsPerSecond is a key\'s rate limit when it was minted without one.
	DefaultRequestsPerSecond = 10
)

// Principal is who a request acts for.
type Principal struct {
	KeyID  string
	Tenant string
	Scopes []Scope
	// RequestsPerSecond is the key's rate limit (token bucket, burst twice the rate).
	RequestsPerSecond float64
}

// Can reports whether the principal holds scope.
func (p *Principal) Can(scope Scope) bool { return slices.Contains(p.Scopes, scope) }

var errUnauthenticated = &restapi.Error{Status: http.StatusUnauthorized, Code: "unauthenticated",
	Message: "a valid API key is required in the X-Api-Key header (or Authorization: Bearer)"}

// NewKey mints a key for tenant with scopes and a rate limit (requests per second; 0 means the
// default): the Secret to store and the key to show once.
func NewKey(systemNamespace, tenant string, scopes []Scope, requestsPerSecond float64) (*corev1.Secret, string, error) {
	if requestsPerSecond <= 0 {
		requestsPerSecond = DefaultRequestsPerSecond
	}
	b := make([]byte, (keyIDLength+secretLength)*5/8+1)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	s := restapi.LowerBase32.EncodeToString(b)
	id, secret := s[:keyIDLength], s[keyIDLength:keyIDLength+secretLength]
	sum := sha256.Sum256([]byte(secret))
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretPrefix + id, Namespace: systemNamespace, Labels: map[string]string{LabelAPIKey: "true"}},
		Type:       "seek-api.com/api-key",
		Data: map[string][]byte{
			keyDataHash:   []byte(hex.EncodeToString(sum[:])),
			keyDataTenant: []byte(tenant),
			keyDataScopes: []byte(strings.Join(names, ",")),
			keyDataRate:   []byte(strconv.FormatFloat(requestsPerSecond, 'f', -1, 64)),
		},
	}
	return sec, keyPrefix + id + "_" + secret, nil
}

// KeySecretName is the name of the Secret that stores the key with this id.
func KeySecretName(id string) string { return secretPrefix + id }

// KeyInfo describes a stored key, without anything secret.
type KeyInfo struct {
	ID, Tenant, Scopes, RequestsPerSecond string
}

// DescribeKey reads a key's Secret.
func DescribeKey(s *corev1.Secret) KeyInfo {
	return KeyInfo{
		ID:                strings.TrimPrefix(s.Name, secretPrefix),
		Tenant:            string(s.Data[keyDataTenant]),
		Scopes:            string(s.Data[keyDataScopes]),
		RequestsPerSecond: string(s.Data[keyDataRate]),
	}
}

// KeyStore authenticates API keys against their Secrets, read through reader (an informer cache, so a
// revoked key stops working as soon as the deletion reaches the cache).
type KeyStore struct {
	Reader          client.Reader
	SystemNamespace string
}

// Authenticate returns the principal of the request's API key.
func (k *KeyStore) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok || len(rest) != keyIDLength+1+secretLength || rest[keyIDLength] != '_' {
		return nil, errUnauthenticated
	}
	id, secret := rest[:keyIDLength], rest[keyIDLength+1:]
	sec := &corev1.Secret{}
	err := k.Reader.Get(ctx, types.NamespacedName{Namespace: k.SystemNamespace, Name: secretPrefix + id}, sec)
	if apierrors.IsNotFound(err) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("look up API key: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	want := sec.Data[keyDataHash]
	if sec.Labels[LabelAPIKey] != "true" || subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), want) != 1 {
		return nil, errUnauthenticated
	}
	p := &Principal{KeyID: id, Tenant: string(sec.Data[keyDataTenant]), RequestsPerSecond: DefaultRequestsPerSecond}
	if rps, err := strconv.ParseFloat(string(sec.Data[keyDataRate]), 64); err == nil && rps > 0 {
		p.RequestsPerSecond = rps
	}
	for _, s := range strings.Split(string(sec.Data[keyDataScopes]), ",") {
		if s != "" {
			p.Scopes = append(p.Scopes, Scope(s))
		}
	}
	if p.Tenant == "" {
		return nil, errUnauthenticated
	}
	return p, nil
}
