// Package credentials is where Seek keeps its credentials: the REST API's key Secrets (internal/apikeys)
// and the tenants' webhook signing Secrets (internal/signingkeys) live in a namespace of their own, the
// credentials namespace, which holds nothing else. The frontend and the manager get Secret rights there
// and nowhere else, so neither can read the Helm release's Secrets or any other Secret of the cluster.
//
// Migrate moves the credentials of releases made before that namespace existed (they kept them in the
// release namespace, seek-system) into it; `seekctl credentials migrate` runs it with the
// administrator's rights, so no Seek component ever needs Secret rights in the old location.
package credentials

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/seek-api/seek-operator/internal/apikeys"
	"github.com/seek-api/seek-operator/internal/signingkeys"
)

// DefaultNamespace is the credentials namespace unless configured otherwise (the chart's
// credentials.namespace, the --credentials-namespace flag of the manager, the frontend and seekctl).
const DefaultNamespace = "seek-credentials"

// LegacyNamespace is where releases before the credentials namespace kept their credentials.
const LegacyNamespace = "seek-system"

// Labels are the labels that mark a Secret as a Seek credential; Migrate moves exactly these.
var Labels = []string{apikeys.Label, signingkeys.Label}

// Moved is one Secret Migrate moved.
type Moved struct {
	// Name is the Secret's name (the same in both namespaces).
	Name string
	// Label is the credential label it carries (apikeys.Label or signingkeys.Label).
	Label string
	// Replaced is true when the destination already had a Secret of that name with other contents
	// (a signing secret the manager made for the tenant after the upgrade, before the migration): the
	// moved one replaces it, as it is the one the tenant's receivers know.
	Replaced bool
}

// Migrate moves every Seek credential Secret (labelled with one of Labels) from namespace from to
// namespace to: it creates (or replaces) the copy, then deletes the original, so it is safe to run
// again after an interruption and a second run moves nothing. The destination namespace must exist (the
// chart creates it); Migrate never creates it, so it never conflicts with Helm's ownership of it.
func Migrate(ctx context.Context, c client.Client, from, to string) ([]Moved, error) {
	if from == to {
		return nil, fmt.Errorf("the source and destination namespaces are both %s", from)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: to}, &corev1.Namespace{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("namespace %s does not exist: install or upgrade the chart first, it creates it", to)
		}
		return nil, fmt.Errorf("read namespace %s: %w", to, err)
	}
	var moved []Moved
	for _, label := range Labels {
		list := &corev1.SecretList{}
		if err := c.List(ctx, list, client.InNamespace(from), client.MatchingLabels{label: "true"}); err != nil {
			return moved, fmt.Errorf("list the Secrets labelled %s in %s: %w", label, from, err)
		}
		slices.SortFunc(list.Items, func(a, b corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
		for i := range list.Items {
			m, err := move(ctx, c, &list.Items[i], to, label)
			if err != nil {
				return moved, err
			}
			moved = append(moved, m)
		}
	}
	return moved, nil
}

func move(ctx context.Context, c client.Client, src *corev1.Secret, to, label string) (Moved, error) {
	m := Moved{Name: src.Name, Label: label}
	dst := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: src.Name, Namespace: to, Labels: maps.Clone(src.Labels)},
		Type:       src.Type,
		Data:       src.Data,
	}
	err := c.Create(ctx, dst)
	if apierrors.IsAlreadyExists(err) {
		existing := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(dst), existing); err != nil {
			return m, fmt.Errorf("read Secret %s/%s: %w", to, src.Name, err)
		}
		if !sameData(existing.Data, src.Data) || existing.Type != src.Type {
			existing.Labels, existing.Data = maps.Clone(src.Labels), src.Data
			if existing.Type != src.Type { // type is immutable: replace the object
				if err := c.Delete(ctx, existing, client.Preconditions{UID: &existing.UID}); client.IgnoreNotFound(err) != nil {
					return m, fmt.Errorf("replace Secret %s/%s: %w", to, src.Name, err)
				}
				err = c.Create(ctx, dst)
			} else {
				err = c.Update(ctx, existing)
			}
			if err != nil {
				return m, fmt.Errorf("replace Secret %s/%s: %w", to, src.Name, err)
			}
			m.Replaced = true
		}
	} else if err != nil {
		return m, fmt.Errorf("copy Secret %s/%s to %s: %w", src.Namespace, src.Name, to, err)
	}
	// Delete the original only as it was copied: a Secret changed in the meantime stays, and the next
	// run moves it.
	err = c.Delete(ctx, src, client.Preconditions{UID: &src.UID, ResourceVersion: &src.ResourceVersion})
	if apierrors.IsConflict(err) {
		return m, fmt.Errorf("secret %s/%s changed while it was copied: run the migration again", src.Namespace, src.Name)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return m, fmt.Errorf("delete Secret %s/%s after copying it: %w", src.Namespace, src.Name, err)
	}
	return m, nil
}

func sameData(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, bytes.Equal)
}
