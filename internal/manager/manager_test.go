package manager

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestResolveDispatchURL(t *testing.T) {
	svc := func(name, ip string, ports ...corev1.ServicePort) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "seek-system", Name: name},
			Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
	}
	c := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(
		svc("named", "10.96.0.20", corev1.ServicePort{Name: "metrics", Port: 8080}, corev1.ServicePort{Name: "dispatch", Port: 8090}),
		svc("single", "10.96.0.21", corev1.ServicePort{Name: "http", Port: 80}),
		svc("ipv6", "fd00::20", corev1.ServicePort{Port: 8090}),
		svc("unnamed", "10.96.0.22", corev1.ServicePort{Name: "a", Port: 1}, corev1.ServicePort{Name: "b", Port: 2}),
		svc("headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 8090}),
	).Build()
	cases := []struct {
		service, want, wantErr string
	}{
		{service: "seek-system/named", want: "http://10.96.0.20:8090"},
		{service: "seek-system/single", want: "http://10.96.0.21:80"},
		{service: "seek-system/ipv6", want: "http://[fd00::20]:8090"},
		{service: "seek-system/unnamed", wantErr: "has no port named dispatch"},
		{service: "seek-system/headless", wantErr: "has no cluster IP"},
		{service: "seek-system/missing", wantErr: "get the dispatch Service seek-system/missing"},
		{service: "missing-slash", wantErr: "--dispatch-service must be <namespace>/<name>"},
	}
	for _, tc := range cases {
		got, err := resolveDispatchURL(context.Background(), c, tc.service)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.service, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.service, got, err, tc.want)
		}
	}
}
