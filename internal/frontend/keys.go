package frontend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/restapi"
)

// Principal is who a request acts for: the stored API key it presented.
type Principal = apikeys.Key

var errUnauthenticated = &restapi.Error{Status: http.StatusUnauthorized, Code: "unauthenticated",
	Message: "a valid API key is required in the X-Api-Key header (or Authorization: Bearer)"}

// KeyStore authenticates API keys against their Secrets, read through reader (an informer cache, so a
// revoked key stops working as soon as the deletion reaches the cache).
type KeyStore struct {
	Reader client.Reader
	// Namespace is the credentials namespace, where the key Secrets are.
	Namespace string
}

// Authenticate returns the principal of the request's API key.
func (k *KeyStore) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	id, secret, ok := apikeys.Split(key)
	if !ok {
		return nil, errUnauthenticated
	}
	sec := &corev1.Secret{}
	err := k.Reader.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: apikeys.SecretName(id)}, sec)
	if apierrors.IsNotFound(err) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("look up API key: %w", err)
	}
	p, err := apikeys.Verify(sec, secret)
	var invalidKey *apikeys.InvalidError
	switch {
	case errors.As(err, &invalidKey):
		// Only the key's holder sees this: the secret matched.
		return nil, &restapi.Error{Status: http.StatusForbidden, Code: "invalid_api_key",
			Message: invalidKey.Error() + "; an administrator must re-create the key"}
	case err != nil:
		return nil, errUnauthenticated
	}
	return p, nil
}
