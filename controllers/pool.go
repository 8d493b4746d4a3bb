package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
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

const (
	// poolJobPrefix starts the name of every pool Job.
	poolJobPrefix = "seek-pool-"
	// poolWorkerNameMax is the longest part of the worker's name in a pool Job's name.
	poolWorkerNameMax = 40
	// poolBackoffLimit is how many pod failures a pool Job tolerates. A pod fails only when its runner
	// (or its node) does: the worker's own failures are reported, not exits. A runner that keeps
	// crashing fails the Job after this many, each replacement delayed by the Job controller's
	// back-off; the pool controller makes the next generation only while jobs wait.
	poolBackoffLimit = 10
	// poolJobTTL is how long a finished pool Job (and its pods' logs) is kept.
	poolJobTTL = time.Hour

	// defaultServiceAccount runs the pool pods of a worker without isolation.serviceAccountName.
	defaultServiceAccount = "default"

	runnerInstallContainer = "seek-runner-install"
	// runnerInstallPath is where the runner image holds the runner binary.
	runnerInstallPath = "/seek-runner"
	runVolume         = "seek-run"
	binVolume         = "seek-bin"
	tokenVolume       = "seek-dispatch-token"
	// runDir is the pool pod's working directory volume: it holds the protocol's input and result
	// files, which the runner writes and reads for each job.
	runDir = "/seek"
	// dispatchTokenSeconds is the lifetime of the projected dispatch token; the kubelet renews it.
	dispatchTokenSeconds = 600
	// poolTerminationGrace is the pool pod's termination grace period: the runner's stop grace for
	// the worker's process, and a few seconds to report the interrupted attempt.
	poolTerminationGrace = stopGracePeriod + 5*time.Second
)

// poolJobName is the deterministic name of generation gen (from 1) of the pool Job of worker with
// the template hash: seek-pool-<worker, at most 40 characters>-<hash>-<gen>, at most 63 characters
// (the worker's name is cut shorter for very large generations).
func poolJobName(worker, hash string, gen int) string {
	suffix := "-" + hash + "-" + strconv.Itoa(gen)
	keep := min(poolWorkerNameMax, validation.DNS1123LabelMaxLength-len(poolJobPrefix)-len(suffix))
	if len(worker) > keep {
		worker = worker[:keep]
	}
	return poolJobPrefix + worker + suffix
}

// poolGeneration is the generation of a pool Job, read from its name; 0 if it is not a pool Job's.
func poolGeneration(job *batchv1.Job) int {
	i := strings.LastIndexByte(job.Name, '-')
	if !strings.HasPrefix(job.Name, poolJobPrefix) || i < 0 {
		return 0
	}
	n, err := strconv.Atoi(job.Name[i+1:])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// poolLabels are the labels of a pool Job and its pods.
func poolLabels(worker, hash string) map[string]string {
	return map[string]string{
		seekv1alpha1.LabelWorker:       worker,
		seekv1alpha1.LabelPool:         worker,
		seekv1alpha1.LabelPoolTemplate: hash,
	}
}

// buildPoolJob returns generation gen of the pool Job of worker w in namespace ns, with the given
// parallelism: a parallel Job with a work queue (completions unset) whose pods run the Seek runner,
// which leases job after job from the dispatch endpoint and exits 0 when idle. It is a pure function
// of its inputs, owned (controller reference) by the cluster-scoped worker.
func buildPoolJob(w *seekv1alpha1.SeekWorker, ns string, gen int, parallelism int32, opts PoolOptions) *batchv1.Job {
	hash := poolTemplateHash(w, opts.RunnerImage)
	labels := poolLabels(w.Name, hash)
	spec := &w.Spec

	env := []corev1.EnvVar{
		{Name: protocol.EnvProtocol, Value: protocol.Version},
		{Name: protocol.EnvWorker, Value: w.Name},
		{Name: protocol.EnvInputPath, Value: protocol.InputPath},
		{Name: protocol.EnvResultPath, Value: protocol.ResultPath},
		{Name: dispatch.EnvURL, Value: opts.DispatchURL},
		{Name: dispatch.EnvTokenPath, Value: dispatch.TokenPath},
	}
	env = append(env, spec.Env...)

	install := corev1.Container{
		Name:    runnerInstallContainer,
		Image:   opts.RunnerImage,
		Command: []string{runnerInstallPath, "install", dispatch.RunnerPath},
		// As much as the worker asks: an init container's requests do not add to the pod's, and a
		// namespace quota that requires them is met.
		Resources:       spec.Resources,
		VolumeMounts:    []corev1.VolumeMount{{Name: binVolume, MountPath: dispatch.BinDir}},
		SecurityContext: workerSecurityContext(),
	}
	worker := corev1.Container{
		Name:                     protocol.ContainerName,
		Image:                    spec.Image,
		ImagePullPolicy:          spec.ImagePullPolicy,
		Command:                  append([]string{dispatch.RunnerPath, "run", "--"}, spec.Command...),
		Args:                     spec.Args,
		Env:                      env,
		Resources:                spec.Resources,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		VolumeMounts: []corev1.VolumeMount{
			{Name: runVolume, MountPath: runDir},
			{Name: binVolume, MountPath: dispatch.BinDir, ReadOnly: true},
			{Name: tmpVolume, MountPath: protocol.TmpDir},
			{Name: tokenVolume, MountPath: dispatch.TokenDir, ReadOnly: true},
		},
		SecurityContext: workerSecurityContext(),
	}

	podSpec := workerPodSpec(w)
	if podSpec.ServiceAccountName == "" {
		// A projected token needs a named ServiceAccount (admission would name it, but need not run).
		podSpec.ServiceAccountName = defaultServiceAccount
	}
	podSpec.InitContainers = []corev1.Container{install}
	podSpec.Containers = []corev1.Container{worker}
	podSpec.TerminationGracePeriodSeconds = ptr.To(int64(poolTerminationGrace / time.Second))
	podSpec.Volumes = []corev1.Volume{
		{Name: runVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: binVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		tmpVolumeOf(),
		{Name: tokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience:          dispatch.Audience,
				ExpirationSeconds: ptr.To[int64](dispatchTokenSeconds),
				Path:              path.Base(dispatch.TokenPath),
			}}},
		}}},
	}

	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            poolJobName(w.Name, hash, gen),
			Namespace:       ns,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(w, seekv1alpha1.GroupVersion.WithKind("SeekWorker"))},
		},
		Spec: batchv1.JobSpec{
			Parallelism:             ptr.To(parallelism),
			BackoffLimit:            ptr.To[int32](poolBackoffLimit),
			TTLSecondsAfterFinished: ptr.To(int32(poolJobTTL / time.Second)),
			// A pod being deleted is replaced only once it is gone: the pool never holds more pods than
			// its parallelism, and a draining pod's runner has time to hand back its attempt.
			PodReplacementPolicy: ptr.To(batchv1.Failed),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				// Evictions and preemptions are not the runner's fault: they do not use up the back-off limit.
				Action:          batchv1.PodFailurePolicyActionIgnore,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       podSpec,
			},
		},
	}
}
