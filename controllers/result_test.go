package controllers

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

func TestResultLimitsAgree(t *testing.T) {
	if seekv1alpha1.MaxInlineResultBytes != protocol.MaxMessageBytes || seekv1alpha1.MaxResultBytes != protocol.MaxResultBytes ||
		dispatch.MaxReportBytes != protocol.MaxResultBytes+1 {
		t.Errorf("the API's result limits (%d, %d) differ from the protocol's (%d, %d) or the report's (%d)",
			seekv1alpha1.MaxInlineResultBytes, seekv1alpha1.MaxResultBytes, protocol.MaxMessageBytes, protocol.MaxResultBytes, dispatch.MaxReportBytes)
	}
}

func TestLargeResult(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      string
	}{
		{"empty", "", ""},
		{"inline", large(4096), ""},
		{"large, trimmed", " " + large(4097) + "\n", large(4097)},
		{"1 MiB", large(seekv1alpha1.MaxResultBytes), large(seekv1alpha1.MaxResultBytes)},
		{"over 1 MiB", large(seekv1alpha1.MaxResultBytes + 1), ""},
		{"not JSON", large(5000) + "}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(largeResult(tc.raw)); got != tc.want {
				t.Errorf("largeResult = %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

func TestStoreResult(t *testing.T) {
	ctx := context.Background()
	data := []byte(large(5000))
	other := []byte(large(6000))
	uid := types.UID("job-uid")
	ref := resultRefFor("job", data)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "job-result"}, Data: map[string][]byte{"x": []byte("y")}}

	for _, tc := range []struct {
		name     string
		existing []client.Object
		want     resultStorage
		wantData []byte
	}{
		{name: "creates the Secret", want: resultStorage{ref: ref}, wantData: data},
		{name: "the same result already stored is fine", existing: []client.Object{resultSecret("tenant", "job", uid, data)}, want: resultStorage{ref: ref}, wantData: data},
		{name: "an earlier attempt's result is replaced", existing: []client.Object{resultSecret("tenant", "job", uid, other)}, want: resultStorage{ref: ref}, wantData: data},
		{name: "a Secret of a job of the same name before is not the job's", existing: []client.Object{resultSecret("tenant", "job", "old-uid", other)},
			want:     resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: "The worker returned a result of 5000 bytes, but Secret job-result, where it would be stored, exists and is not the job's"},
			wantData: other},
		{name: "a foreign Secret is not touched", existing: []client.Object{foreign},
			want: resultStorage{reason: seekv1alpha1.JobReasonResultLost, message: "The worker returned a result of 5000 bytes, but Secret job-result, where it would be stored, exists and is not the job's"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(newTestScheme(t)).WithObjects(tc.existing...).Build()
			got, err := storeResult(ctx, c, c, "tenant", "job", uid, data)
			if err != nil {
				t.Fatalf("storeResult: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(resultStorage{})); diff != "" {
				t.Errorf("storage (-want +got):\n%s", diff)
			}
			s := &corev1.Secret{}
			if err := c.Get(ctx, types.NamespacedName{Namespace: "tenant", Name: "job-result"}, s); err != nil {
				t.Fatalf("get the Secret: %v", err)
			}
			if tc.wantData != nil {
				if got := s.Data[seekv1alpha1.ResultSecretKey]; string(got) != string(tc.wantData) {
					t.Errorf("the Secret holds %d bytes, want %d", len(got), len(tc.wantData))
				}
				if s.Type != seekv1alpha1.ResultSecretType || s.Labels[seekv1alpha1.LabelJobUID] == "" {
					t.Errorf("the Secret's type %q and labels %v", s.Type, s.Labels)
				}
			}
			if tc.name == "creates the Secret" {
				owner := metav1.GetControllerOf(s)
				if owner == nil || owner.UID != uid || owner.Kind != "SeekJob" {
					t.Errorf("the Secret's controller is %+v, want the SeekJob", owner)
				}
			}
		})
	}
}
