package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ApplyManifests creates every object of every YAML file in dir (kustomization.yaml excepted).
func ApplyManifests(ctx context.Context, c client.Client, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		if err := ApplyManifestFile(ctx, c, f); err != nil {
			return err
		}
	}
	return nil
}

// ApplyManifestFile creates every object of a YAML file; objects that already exist are left alone.
func ApplyManifestFile(ctx context.Context, c client.Client, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("apply %s %s from %s: %w", u.GetKind(), u.GetName(), file, err)
		}
	}
	return nil
}

// installPolicies applies the ValidatingAdmissionPolicies and waits until the apiserver enforces them:
// a probe SeekJob's input change must be refused.
func installPolicies(cfg *rest.Config, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	if err := ApplyManifests(ctx, c, dir); err != nil {
		return err
	}
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "seek-api.com/v1alpha1", "kind": "SeekJob",
		"metadata": map[string]any{"name": "policy-probe", "namespace": corev1.NamespaceDefault},
		"spec":     map[string]any{"workerName": "policy-probe", "input": map[string]any{"probe": 1}},
	}}
	// The CRD may take a moment to be served after envtest installed it.
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return c.Create(ctx, probe) == nil, nil
	})
	if err != nil {
		return fmt.Errorf("create policy probe: %w", err)
	}
	defer func() { _ = c.Delete(context.Background(), probe) }()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"input":{"probe":2}}}`))
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		err := c.Patch(ctx, probe.DeepCopy(), patch, client.DryRunAll)
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), nil
	})
	if err != nil {
		return fmt.Errorf("the admission policies in %s were not enforced within a minute: %w", dir, err)
	}
	return nil
}
