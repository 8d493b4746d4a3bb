package signingkeys

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/seek-api/seek-operator/internal/webhook"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T, funcs *interceptor.Funcs) (*Store, *clocktesting.FakeClock) {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(s)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	c := b.Build()
	clk := clocktesting.NewFakeClock(t0)
	return &Store{Client: c, Reader: c, Live: c, Namespace: "seek-system", Clock: clk}, clk
}

func TestGetCreatesOnce(t *testing.T) {
	store, _ := newStore(t, nil)
	ctx := context.Background()
	a, err := store.Get(ctx, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.ParseSecret(a.Current); err != nil {
		t.Errorf("current secret %q: %v", a.Current, err)
	}
	again, err := store.Get(ctx, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, again); diff != "" {
		t.Errorf("second Get (-first +second):\n%s", diff)
	}
	other, err := store.Get(ctx, "team-b")
	if err != nil {
		t.Fatal(err)
	}
	if other.Current == a.Current {
		t.Error("two tenants share a secret")
	}
	sec := &corev1.Secret{}
	if err := store.Client.Get(ctx, client.ObjectKey{Namespace: "seek-system", Name: "seek-webhook-team-a"}, sec); err != nil {
		t.Fatal(err)
	}
	if sec.Labels[Label] != "true" {
		t.Errorf("labels = %v", sec.Labels)
	}
}

func TestGetLosesTheCreateRace(t *testing.T) {
	// The reader (a cache) has not seen the Secret another replica just created.
	winner, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	store, _ := newStore(t, &interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			sec := obj.(*corev1.Secret).DeepCopy()
			sec.Data[keyCurrent] = []byte(winner)
			if err := c.Create(ctx, sec); err != nil {
				return err
			}
			return apierrors.NewAlreadyExists(schema.GroupResource{Resource: "secrets"}, sec.Name)
		},
	})
	k, err := store.Get(context.Background(), "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if k.Current != winner {
		t.Errorf("current = %q, want the winner's %q", k.Current, winner)
	}
}

func TestRotate(t *testing.T) {
	store, clk := newStore(t, nil)
	ctx := context.Background()
	before, err := store.Get(ctx, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	after, err := store.Rotate(ctx, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	ends := t0.Add(DefaultGrace)
	if after.Current == before.Current || after.Previous != before.Current || after.PreviousExpiresAt == nil || !after.PreviousExpiresAt.Equal(ends) {
		t.Fatalf("rotated = %+v", after)
	}
	if got, _ := store.Get(ctx, "team-a"); got.Current != after.Current {
		t.Errorf("Get after Rotate = %+v", got)
	}
	cases := []struct {
		at   time.Time
		want []string
	}{
		{t0, []string{after.Current, before.Current}},
		{ends.Add(-time.Second), []string{after.Current, before.Current}},
		{ends, []string{after.Current}},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, after.Signing(tc.at)); diff != "" {
			t.Errorf("Signing at %v (-want +got):\n%s", tc.at, diff)
		}
	}
	clk.Step(time.Hour)
	again, err := store.Rotate(ctx, "team-a")
	if err != nil {
		t.Fatal(err)
	}
	if again.Previous != after.Current || !again.PreviousExpiresAt.Equal(t0.Add(time.Hour+DefaultGrace)) {
		t.Errorf("second rotation = %+v", again)
	}
}
