package localcluster

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestManagerLeads(t *testing.T) {
	managerPod := func(name string, ready corev1.ConditionStatus, deleting bool) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: SystemNamespace, UID: types.UID("uid-" + name[len(name)-1:]),
				Labels: map[string]string{"app.kubernetes.io/instance": releaseName, "app.kubernetes.io/component": "manager"}},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}},
		}
		if deleting {
			p.DeletionTimestamp, p.Finalizers = ptr.To(metav1.Now()), []string{"test"}
		}
		return p
	}
	lease := func(holder string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaderLease, Namespace: SystemNamespace},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder}}
	}
	for _, tc := range []struct {
		name string
		objs []client.Object
		want bool
	}{
		{"a Ready pod holds it", []client.Object{lease("manager-a_uid-a"), managerPod("manager-a", corev1.ConditionTrue, false)}, true},
		{"no Lease", []client.Object{managerPod("manager-a", corev1.ConditionTrue, false)}, false},
		{"held by a pod that is gone", []client.Object{lease("manager-a_uid-a"), managerPod("manager-b", corev1.ConditionTrue, false)}, false},
		// controller-runtime's default identity, <host name>_<UUID>: a process of the pod, maybe an earlier one.
		{"held by another process of the pod", []client.Object{lease("manager-a_5f0c2d1e"), managerPod("manager-a", corev1.ConditionTrue, false)}, false},
		{"held by a pod not Ready", []client.Object{lease("manager-a_uid-a"), managerPod("manager-a", corev1.ConditionFalse, false)}, false},
		{"held by a pod being deleted", []client.Object{lease("manager-a_uid-a"), managerPod("manager-a", corev1.ConditionTrue, true),
			managerPod("manager-b", corev1.ConditionTrue, false)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k8s := fake.NewClientBuilder().WithObjects(tc.objs...).Build()
			if got := managerLeads(context.Background(), k8s); got != tc.want {
				t.Errorf("managerLeads = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKeepLogs(t *testing.T) {
	c := newCluster(Options{Dir: t.TempDir(), Out: io.Discard})
	t.Setenv("TMPDIR", t.TempDir())
	for path, data := range map[string]string{"logs/kubelet.log": "kubelet", "kubelet/pod-logs/seek-system_manager_1/manager/0.log": "manager"} {
		if err := os.MkdirAll(filepath.Dir(c.path(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.path(path), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.keepLogs()
	kept, err := filepath.Glob(filepath.Join(os.TempDir(), "seek-cluster-logs-*"))
	if err != nil || len(kept) != 1 {
		t.Fatalf("kept = %v, %v; want one directory", kept, err)
	}
	for path, want := range map[string]string{"logs/kubelet.log": "kubelet", "pod-logs/seek-system_manager_1/manager/0.log": "manager"} {
		if got, err := os.ReadFile(filepath.Join(kept[0], path)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
}
