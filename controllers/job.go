package controllers

import (
	"math"
	"path"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

const (
	// workerUID is the user worker containers run as when the worker does not say: distroless' nonroot.
	workerUID = 65532
	// jobTTLFloor keeps a finished Job at least this long, so the controller can read its pods even if
	// it was down when the Job finished. The SeekJob's own deletion removes the Job earlier.
	jobTTLFloor = time.Hour
	// tmpSizeLimit bounds the writable scratch directory of a worker pod.
	tmpSizeLimit = "1Gi"

	inputVolume = "seek-input"
	tmpVolume   = "seek-tmp"
)

// jobName is the deterministic name of the Job running a SeekJob: the SeekJob's own name, which the
// API bounds to 63 characters so it also fits the job-name labels of the pods.
func jobName(sj *seekv1alpha1.SeekJob) string {
	return sj.Name
}

// effectiveTimeout is the job's execution timeout: its own, else the worker's default.
func effectiveTimeout(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker) time.Duration {
	if sj.Spec.Timeout != nil {
		return sj.Spec.Timeout.Duration
	}
	if w.Spec.Timeouts.DefaultTimeout != nil {
		return w.Spec.Timeouts.DefaultTimeout.Duration
	}
	return seekv1alpha1.DefaultTimeout
}

// effectiveStartDeadline is how long the worker container may take to start: the worker's
// timeouts.startDeadline, else the default.
func effectiveStartDeadline(w *seekv1alpha1.SeekWorker) time.Duration {
	if w.Spec.Timeouts.StartDeadline != nil {
		return w.Spec.Timeouts.StartDeadline.Duration
	}
	return seekv1alpha1.DefaultStartDeadline
}

// jobLimits are the time limits a Job runs under, fixed when it is created.
type jobLimits struct {
	// timeout bounds the run, from the worker container's first start.
	timeout time.Duration
	// startDeadline bounds each attempt's start; 0 for a Job created before start deadlines existed.
	startDeadline time.Duration
}

// limitsOf reads a Job's limits back from its annotations. A Job without them (created by an earlier
// version of the controller) has only its activeDeadlineSeconds, which then is its timeout.
func limitsOf(job *batchv1.Job) jobLimits {
	var l jobLimits
	if d, err := time.ParseDuration(job.Annotations[seekv1alpha1.AnnotationTimeout]); err == nil && d > 0 {
		l.timeout = d
	} else {
		l.timeout = time.Duration(ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0)) * time.Second
	}
	if d, err := time.ParseDuration(job.Annotations[seekv1alpha1.AnnotationStartDeadline]); err == nil && d > 0 {
		l.startDeadline = d
	}
	return l
}

// effectiveTTL is how long a finished job is kept: its own retention, else the worker's, else the default.
// The worker may be nil (deleted).
func effectiveTTL(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker) time.Duration {
	if sj.Spec.TTLAfterFinished != nil {
		return sj.Spec.TTLAfterFinished.Duration
	}
	if w != nil && w.Spec.TTLAfterFinished != nil {
		return w.Spec.TTLAfterFinished.Duration
	}
	return seekv1alpha1.DefaultTTLAfterFinished
}

// jobLabels link a Job and its pods to their SeekJob and worker.
func jobLabels(sj *seekv1alpha1.SeekJob) map[string]string {
	return map[string]string{
		seekv1alpha1.LabelJobName: sj.Name,
		seekv1alpha1.LabelJobUID:  string(sj.UID),
		seekv1alpha1.LabelWorker:  string(sj.Spec.WorkerName),
	}
}

// inputText is the JSON text handed to the worker; an absent input is null.
func inputText(sj *seekv1alpha1.SeekJob) string {
	if sj.Spec.Input == nil || len(sj.Spec.Input.Raw) == 0 {
		return "null"
	}
	return string(sj.Spec.Input.Raw)
}

// buildJob returns the batch/v1 Job that runs a SeekJob on a worker. It is a pure function of its
// inputs; the caller sets the controller reference.
func buildJob(sj *seekv1alpha1.SeekJob, w *seekv1alpha1.SeekWorker) *batchv1.Job {
	labels := jobLabels(sj)
	timeout, startDeadline := effectiveTimeout(sj, w), effectiveStartDeadline(w)
	// The Job counts its TTL in int32 seconds, and a worker's ttlAfterFinished has no maximum.
	ttl := min(max(effectiveTTL(sj, w), jobTTLFloor), math.MaxInt32*time.Second)
	spec := &w.Spec

	env := []corev1.EnvVar{
		{Name: protocol.EnvProtocol, Value: protocol.Version},
		{Name: protocol.EnvJobName, Value: sj.Name},
		{Name: protocol.EnvJobNamespace, Value: sj.Namespace},
		{Name: protocol.EnvJobUID, Value: string(sj.UID)},
		{Name: protocol.EnvWorker, Value: w.Name},
		{Name: protocol.EnvInputPath, Value: protocol.InputPath},
		{Name: protocol.EnvResultPath, Value: protocol.ResultPath},
	}
	env = append(env, spec.Env...)

	container := corev1.Container{
		Name:                     protocol.ContainerName,
		Image:                    spec.Image,
		ImagePullPolicy:          spec.ImagePullPolicy,
		Command:                  spec.Command,
		Args:                     spec.Args,
		Env:                      env,
		Resources:                spec.Resources,
		TerminationMessagePath:   protocol.ResultPath,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		VolumeMounts: []corev1.VolumeMount{
			{Name: inputVolume, MountPath: protocol.InputDir, ReadOnly: true},
			{Name: tmpVolume, MountPath: protocol.TmpDir},
		},
		SecurityContext: workerSecurityContext(),
	}

	podSpec := workerPodSpec(w)
	podSpec.Containers = []corev1.Container{container}
	podSpec.Volumes = []corev1.Volume{
		{Name: inputVolume, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{
				Path:     protocol.InputFile,
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + seekv1alpha1.AnnotationInput + "']"},
			}},
		}}},
		tmpVolumeOf(),
	}

	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:      jobName(sj),
			Namespace: sj.Namespace,
			Labels:    labels,
			Annotations: map[string]string{
				seekv1alpha1.AnnotationTimeout:       timeout.String(),
				seekv1alpha1.AnnotationStartDeadline: startDeadline.String(),
			},
		},
		Spec: batchv1.JobSpec{
			Parallelism:  ptr.To[int32](1),
			Completions:  ptr.To[int32](1),
			BackoffLimit: ptr.To(spec.Retries),
			// The controller enforces both limits itself, the timeout from the container's start; this
			// backstop stops the Job should the controller be down.
			ActiveDeadlineSeconds:   ptr.To(int64((startDeadline + timeout + time.Second - 1) / time.Second)),
			TTLSecondsAfterFinished: ptr.To(int32(ttl / time.Second)),
			PodReplacementPolicy:    ptr.To(batchv1.Failed),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{
					Action: batchv1.PodFailurePolicyActionFailJob,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
						ContainerName: ptr.To(protocol.ContainerName),
						Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
						Values:        []int32{protocol.ExitCodeNoRetry},
					},
				},
				{
					// Evictions and preemptions are not the worker's fault: they do not use up retries.
					Action:          batchv1.PodFailurePolicyActionIgnore,
					OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
				},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: map[string]string{seekv1alpha1.AnnotationInput: inputText(sj)},
				},
				Spec: podSpec,
			},
		},
	}
}

// workerSecurityContext confines a container of a worker pod: no privileges, a read-only root file
// system, non-root, no capabilities, the runtime's default seccomp profile.
func workerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Privileged:               ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// workerPodSpec is what every worker pod shares, in Job and Pooled mode: it never restarts in place,
// runs as the worker's isolation ServiceAccount without its API token, as a non-root user, where and
// with the runtime the worker's isolation says. The caller adds containers and volumes.
func workerPodSpec(w *seekv1alpha1.SeekWorker) corev1.PodSpec {
	iso := &w.Spec.Isolation
	return corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		ServiceAccountName:           iso.ServiceAccountName,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		RuntimeClassName:             iso.RuntimeClassName,
		NodeSelector:                 iso.NodeSelector,
		Tolerations:                  iso.Tolerations,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To[int64](workerUID),
			RunAsGroup:     ptr.To[int64](workerUID),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

// tmpVolumeOf is the worker's bounded scratch directory, mounted at protocol.TmpDir.
func tmpVolumeOf() corev1.Volume {
	limit := resource.MustParse(tmpSizeLimit)
	return corev1.Volume{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &limit}}}
}

// Collector sidecar of Job mode pods (docs/worker-protocol.md#result-size-tiers).
const (
	// resultVolume is the directory /seek that the worker and the collector share: the worker writes
	// protocol.ResultPath there, which the collector reads once it has exited, and
	// protocol.ProgressPath, which the collector reads while it runs.
	resultVolume = "seek-result"
	// resultDir is where it is mounted.
	resultDir = "/seek"
	// resultVolumeLimit bounds it: a result over 1 MiB fails anyway.
	resultVolumeLimit = "64Mi"
	// collectorWait bounds how long the controller waits for the collector's verdict after the worker
	// container exited 0. A healthy kubelet ends the sidecar at once (after the pod's 30 s grace period
	// at most), but one that was just restarted, backs off from an apiserver outage (docs/chaos.md) or
	// tends 150 pods on 2 cores (`make bench`'s Job mode burst without a cap) reports its end minutes
	// late. The wait costs nothing when the collector ends, and the job's timeout (the Job's
	// activeDeadlineSeconds) still bounds the attempt: it only keeps a result that exists from being
	// called lost.
	collectorWait = 10 * time.Minute
)

// withCollector adds the collector sidecar to a Job mode Job, so that a result over the termination
// message's 4 KiB and the worker's progress reach the manager: a restartable init container (a native
// sidecar, Kubernetes 1.29+) running `seek-runner collect` from the runner image, with the pod's
// projected dispatch token (mounted in the collector only), reading the result file and the progress
// file ($SEEK_PROGRESS_PATH, set on the worker only with the collector) from a volume it shares with
// the worker.
// The worker's result file then is not its termination message, whose path goes back to the default
// (a failed worker's message is its log tail; what it wrote comes through the collector).
func withCollector(job *batchv1.Job, opts PoolOptions) {
	spec := &job.Spec.Template.Spec
	if spec.ServiceAccountName == "" {
		// A projected token needs a named ServiceAccount (admission would name it, but need not run).
		spec.ServiceAccountName = defaultServiceAccount
	}
	limit := resource.MustParse(resultVolumeLimit)
	spec.Volumes = append(spec.Volumes,
		corev1.Volume{Name: resultVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &limit}}},
		corev1.Volume{Name: tokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience:          dispatch.Audience,
				ExpirationSeconds: ptr.To[int64](dispatchTokenSeconds),
				Path:              path.Base(dispatch.TokenPath),
			}}},
		}}},
	)
	worker := &spec.Containers[0]
	worker.TerminationMessagePath = corev1.TerminationMessagePathDefault
	worker.VolumeMounts = append([]corev1.VolumeMount{{Name: resultVolume, MountPath: resultDir}}, worker.VolumeMounts...)
	// The worker may report its progress to a file of the shared volume; the collector passes it on.
	progress := corev1.EnvVar{Name: protocol.EnvProgressPath, Value: protocol.ProgressPath}
	worker.Env = slices.Insert(worker.Env, slices.IndexFunc(worker.Env, func(e corev1.EnvVar) bool { return e.Name == protocol.EnvResultPath })+1, progress)
	env := []corev1.EnvVar{
		{Name: dispatch.EnvURL, Value: opts.DispatchURL},
		{Name: dispatch.EnvTokenPath, Value: dispatch.TokenPath},
		{Name: protocol.EnvResultPath, Value: protocol.ResultPath},
		progress,
	}
	for _, e := range worker.Env {
		switch e.Name {
		case protocol.EnvJobName, protocol.EnvJobNamespace, protocol.EnvJobUID:
			env = append(env, e)
		}
	}
	spec.InitContainers = append(spec.InitContainers, corev1.Container{
		Name:          dispatch.CollectorContainer,
		Image:         opts.RunnerImage,
		Command:       []string{runnerInstallPath, "collect"},
		Env:           env,
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: resultVolume, MountPath: resultDir, ReadOnly: true},
			{Name: tokenVolume, MountPath: dispatch.TokenDir, ReadOnly: true},
		},
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		SecurityContext:          workerSecurityContext(),
	})
}

// hasCollector reports whether the pod has the collector sidecar.
func hasCollector(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == dispatch.CollectorContainer {
			return true
		}
	}
	return false
}

// collectorTermination is the terminated state of the pod's collector, or nil.
func collectorTermination(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	for i := range pod.Status.InitContainerStatuses {
		cs := &pod.Status.InitContainerStatuses[i]
		if cs.Name == dispatch.CollectorContainer {
			if cs.State.Terminated != nil {
				return cs.State.Terminated
			}
			return cs.LastTerminationState.Terminated
		}
	}
	return nil
}
