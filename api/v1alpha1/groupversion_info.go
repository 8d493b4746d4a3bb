// Package v1alpha1 contains the seek-api.com/v1alpha1 API: SeekWorker, a cluster-scoped catalogue entry
// describing how to run one kind of work, and SeekJob, one asynchronous job run by a worker.
//
// This package imports only k8s.io/apimachinery (and k8s.io/api core types), so the REST frontend, the
// controllers and third-party clients can all share it.
//
// +kubebuilder:object:generate=true
// +groupName=seek-api.com
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "seek-api.com", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&SeekWorker{}, &SeekWorkerList{},
		&SeekJob{}, &SeekJobList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
