package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
)

// activePoolField indexes the SeekJobs that have not finished by their pool: "namespace/worker". It
// lets the pool controller and the dispatcher find a pool's queued and running jobs without reading
// the finished ones, which may be many more (cost grows with active jobs, not retained ones).
const activePoolField = "seek-api.com/active-pool"

// poolKey names the pool of a worker in a namespace.
func poolKey(namespace, worker string) string {
	return namespace + "/" + worker
}

// activePoolIndexValue is the activePoolField index's value of a SeekJob: its pool while it has not
// finished, none after.
func activePoolIndexValue(o client.Object) []string {
	sj := o.(*seekv1alpha1.SeekJob)
	if sj.Status.State.IsTerminal() {
		return nil
	}
	return []string{poolKey(sj.Namespace, string(sj.Spec.WorkerName))}
}

// poolTemplateHash is a short hash of everything in a worker that shapes its pool pods, and of the
// runner image: pool pods labeled with another hash were built from an outdated template, so they take
// no new jobs and exit, and a new pool Job replaces theirs.
func poolTemplateHash(w *seekv1alpha1.SeekWorker, runnerImage string) string {
	s := &w.Spec
	b, err := json.Marshal([]any{runnerImage, s.Image, s.ImagePullPolicy, s.Command, s.Args, s.Env, s.Resources, s.Isolation})
	if err != nil {
		panic(err) // plain data always encodes
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:10]
}
