// Package signingkeys keeps each tenant's webhook signing secret in a Secret of the credentials
// namespace (internal/credentials), where the callback controller signs with it and the REST frontend
// shows and rotates it. Tenants never get RBAC on these Secrets: one Role per reader, in that namespace
// only.
package signingkeys

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seek-api/seek-operator/internal/webhook"
)

const (
	// Label marks the signing-secret Secrets (informer caches select on it).
	Label = "seek-api.com/webhook-signing-secret"
	// DefaultGrace is how long the previous secret still signs after a rotation.
	DefaultGrace = 24 * time.Hour

	namePrefix      = "seek-webhook-"
	keyCurrent      = "current"
	keyPrevious     = "previous"
	keyPreviousEnds = "previousExpiresAt"
	keyTenant       = "tenant"
)

// Name is the Secret holding tenant's signing secret.
func Name(tenant string) string { return namePrefix + tenant }

// Keys are a tenant's signing secrets.
type Keys struct {
	// Current signs every delivery.
	Current string
	// Previous also signs deliveries until PreviousExpiresAt, after a rotation.
	Previous          string
	PreviousExpiresAt *time.Time
}

// Signing returns the secrets to sign with at now: the current one, and the previous one during its
// grace period.
func (k *Keys) Signing(now time.Time) []string {
	if k.Previous != "" && k.PreviousExpiresAt != nil && now.Before(*k.PreviousExpiresAt) {
		return []string{k.Current, k.Previous}
	}
	return []string{k.Current}
}

// Store reads, creates and rotates signing secrets.
type Store struct {
	// Client writes Secrets; Reader reads them on the hot path (an informer cache, or the apiserver);
	// Live reads the apiserver, for what a cache may not show yet.
	Client    client.Client
	Reader    client.Reader
	Live      client.Reader
	Namespace string
	Clock     clock.PassiveClock
	// Grace is how long a rotated-out secret keeps signing; DefaultGrace when zero.
	Grace time.Duration
}

// Get returns tenant's keys, creating them on first use. Concurrent first uses agree on one secret:
// the loser of the create race reads the winner's.
func (s *Store) Get(ctx context.Context, tenant string) (*Keys, error) {
	sec := &corev1.Secret{}
	err := s.Reader.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: Name(tenant)}, sec)
	if apierrors.IsNotFound(err) {
		return s.create(ctx, tenant)
	}
	if err != nil {
		return nil, fmt.Errorf("read the webhook signing secret of %s: %w", tenant, err)
	}
	return parse(sec)
}

func (s *Store) create(ctx context.Context, tenant string) (*Keys, error) {
	current, err := webhook.NewSecret()
	if err != nil {
		return nil, err
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: Name(tenant), Namespace: s.Namespace, Labels: map[string]string{Label: "true"}},
		Type:       "seek-api.com/webhook-signing-secret",
		Data:       map[string][]byte{keyCurrent: []byte(current), keyTenant: []byte(tenant)},
	}
	err = s.Client.Create(ctx, sec)
	if apierrors.IsAlreadyExists(err) {
		// Someone else created it first; the cache may not show it yet.
		if err := s.Live.Get(ctx, client.ObjectKeyFromObject(sec), sec); err != nil {
			return nil, fmt.Errorf("read the webhook signing secret of %s: %w", tenant, err)
		}
		return parse(sec)
	}
	if err != nil {
		return nil, fmt.Errorf("create the webhook signing secret of %s: %w", tenant, err)
	}
	return parse(sec)
}

// Rotate makes a new current secret; the old one keeps signing for the grace period. It reads and
// writes the apiserver directly, under optimistic concurrency.
func (s *Store) Rotate(ctx context.Context, tenant string) (*Keys, error) {
	if _, err := s.Get(ctx, tenant); err != nil { // make sure it exists
		return nil, err
	}
	grace := s.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	sec := &corev1.Secret{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := s.Live.Get(ctx, types.NamespacedName{Namespace: s.Namespace, Name: Name(tenant)}, sec); err != nil {
			return err
		}
		next, err := webhook.NewSecret()
		if err != nil {
			return err
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		ends := s.Clock.Now().Add(grace).UTC().Truncate(time.Second)
		sec.Data[keyPrevious] = sec.Data[keyCurrent]
		sec.Data[keyPreviousEnds] = []byte(ends.Format(time.RFC3339))
		sec.Data[keyCurrent] = []byte(next)
		return s.Client.Update(ctx, sec)
	})
	if err != nil {
		return nil, fmt.Errorf("rotate the webhook signing secret of %s: %w", tenant, err)
	}
	return parse(sec)
}

func parse(sec *corev1.Secret) (*Keys, error) {
	k := &Keys{Current: string(sec.Data[keyCurrent]), Previous: string(sec.Data[keyPrevious])}
	if _, err := webhook.ParseSecret(k.Current); err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", sec.Namespace, sec.Name, err)
	}
	if v := sec.Data[keyPreviousEnds]; len(v) > 0 {
		t, err := time.Parse(time.RFC3339, string(v))
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: %s: %w", sec.Namespace, sec.Name, keyPreviousEnds, err)
		}
		k.PreviousExpiresAt = &t
	}
	return k, nil
}
