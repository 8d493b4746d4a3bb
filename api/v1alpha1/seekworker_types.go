package v1alpha1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WorkerName is the name of a SeekWorker: a DNS-1123 label.
//
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type WorkerName string

// Defaults and bounds shared by the API, the controllers and the REST frontend.
const (
	// DefaultMaxInputBytes is the default cap on the serialized size of a SeekJob's input.
	DefaultMaxInputBytes = 64 * 1024
	// MaxInputBytesLimit is the largest input cap a SeekWorker may set: the input travels in a pod
	// annotation, and a pod's annotations may total 256 KiB.
	MaxInputBytesLimit = 128 * 1024
	// DefaultTTLAfterFinished is how long finished jobs are kept when neither job nor worker says.
	DefaultTTLAfterFinished = 24 * time.Hour
	// DefaultTimeout is the execution timeout when neither job nor worker says.
	DefaultTimeout = 10 * time.Minute
	// DefaultQueueTimeout is how long a job of a worker may stay Queued when neither job nor worker says.
	DefaultQueueTimeout = 24 * time.Hour
	// DefaultStartDeadline is how long a job's worker container may take to start when the worker
	// does not say.
	DefaultStartDeadline = 10 * time.Minute
)

// SeekWorkerSpec describes how to run one kind of job.
//
// +kubebuilder:validation:XValidation:rule="!has(self.execution) || !has(self.execution.mode) || self.execution.mode != 'Pooled' || (has(self.command) && size(self.command) > 0)",message="command is required when execution.mode is Pooled: the Seek runner starts it for each job"
// +kubebuilder:validation:XValidation:rule="!has(self.timeouts) || !has(self.timeouts.defaultTimeout) || !has(self.timeouts.maximumTimeout) || duration(self.timeouts.defaultTimeout) <= duration(self.timeouts.maximumTimeout)",message="timeouts.defaultTimeout must not exceed timeouts.maximumTimeout"
type SeekWorkerSpec struct {
	// description is a human-readable summary of what the worker does, shown in the worker catalogue.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// image is the container image that runs each job. Pin it by tag or digest; ":latest" is rejected
	// because jobs must be reproducible.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.endsWith(':latest')",message="image must be pinned to a tag or digest other than :latest"
	Image string `json:"image"`

	// imagePullPolicy is the container's image pull policy. Defaults to IfNotPresent.
	// +optional
	// +kubebuilder:default=IfNotPresent
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// command overrides the image's entrypoint.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command,omitempty"`

	// args are the arguments to the entrypoint.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`

	// env sets environment variables in the worker container. Names starting with SEEK_ are reserved
	// for the worker protocol.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(e, !e.name.startsWith('SEEK_'))",message="env names starting with SEEK_ are reserved for the worker protocol"
	Env []corev1.EnvVar `json:"env,omitempty"`

	// resources are the compute resources of the worker container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// timeouts bound how long one job may take to start and to run.
	// +optional
	// +kubebuilder:default={}
	Timeouts WorkerTimeouts `json:"timeouts,omitempty"`

	// retries is how many times a failed attempt is retried before the job fails. A worker that exits with
	// the protocol's non-retryable exit code is never retried. Defaults to 0: work is not repeated unless
	// the worker says it is safe to.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	Retries int32 `json:"retries,omitempty"`

	// ttlAfterFinished is how long a finished SeekJob (and its result) is kept before it is deleted.
	// A SeekJob may ask for a shorter or longer retention. Defaults to 24h.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	TTLAfterFinished *metav1.Duration `json:"ttlAfterFinished,omitempty"`

	// limits bound the load one worker may put on the cluster.
	// +optional
	// +kubebuilder:default={}
	Limits WorkerLimits `json:"limits,omitempty"`

	// inputSchema is a JSON Schema (draft 2020-12 unless "$schema" says otherwise) that every job input
	// must match. Jobs whose input does not match fail with reason InvalidInput before anything runs.
	// +optional
	InputSchema *JSON `json:"inputSchema,omitempty"`

	// isolation places and confines the worker's pods.
	// +optional
	Isolation WorkerIsolation `json:"isolation,omitempty"`

	// logs says what is kept of a job's output once it finished.
	// +optional
	// +kubebuilder:default={}
	Logs WorkerLogs `json:"logs,omitempty"`

	// execution chooses how jobs run: one Kubernetes Job per SeekJob (mode Job, the default) or a warm
	// pool of pods per tenant namespace that run job after job (mode Pooled). The REST and SeekJob
	// contract is the same in both modes.
	// +optional
	// +kubebuilder:default={}
	Execution WorkerExecution `json:"execution,omitempty"`
}

// ExecutionMode is how a worker's jobs run.
//
// +kubebuilder:validation:Enum=Job;Pooled
type ExecutionMode string

const (
	// ExecutionModeJob runs each SeekJob in its own batch/v1 Job: one pod per attempt.
	ExecutionModeJob ExecutionMode = "Job"
	// ExecutionModePooled runs the SeekJobs of each tenant namespace in one shared batch/v1 Job, a
	// parallel Job with a work queue: each pod runs the Seek runner, which leases job after job from the
	// manager and starts the worker's command as a fresh process for each.
	ExecutionModePooled ExecutionMode = "Pooled"
)

// Defaults and bounds of pooled execution.
const (
	// DefaultPoolMaxPods is the default cap on the pods of one namespace's pool.
	DefaultPoolMaxPods = 4
	// DefaultPoolIdleTimeout is how long a pool pod waits without a job before it exits, by default.
	DefaultPoolIdleTimeout = 30 * time.Second
)

// WorkerExecution chooses how a worker's jobs run.
//
// +kubebuilder:validation:XValidation:rule="!has(self.pool) || (has(self.mode) && self.mode == 'Pooled')",message="pool may only be set when mode is Pooled"
type WorkerExecution struct {
	// mode is Job (the default: one batch/v1 Job, and one pod per attempt, for each SeekJob) or Pooled
	// (a shared Job per tenant namespace whose pods run job after job; requires command). Pooled suits
	// short jobs, whose pod start would otherwise cost more than the work. Changing the mode affects
	// jobs that have not started yet.
	// +optional
	// +kubebuilder:default=Job
	Mode ExecutionMode `json:"mode,omitempty"`

	// pool sizes the pools of a Pooled worker.
	// +optional
	Pool *WorkerPool `json:"pool,omitempty"`
}

// WorkerPool sizes the pools of a Pooled worker: one per tenant namespace with jobs for it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minPods) || !has(self.maxPods) || self.minPods <= self.maxPods",message="minPods must not exceed maxPods"
type WorkerPool struct {
	// maxPods caps the pods of one namespace's pool, each running one job at a time. The pool grows
	// with its queue up to this many pods. limits.maxConcurrentJobs still caps the worker's running
	// jobs across all namespaces. Defaults to 4; 1 to 100.
	// +optional
	// +kubebuilder:default=4
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxPods int32 `json:"maxPods,omitempty"`

	// minPods is the warm minimum: once a namespace has run a job of this worker, its pool keeps this
	// many pods waiting for work, so a job after a quiet period does not wait for a pod to start.
	// Defaults to 0: an idle pool scales to zero.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MinPods int32 `json:"minPods,omitempty"`

	// idleTimeout is how long a pool pod waits without a job before it exits (unless it is one of the
	// minPods). Defaults to 30s; 1s to 1h.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="idleTimeout must be between 1s and 1h"
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
}

// Pooled reports whether the worker's jobs run in pools.
func (w *SeekWorker) Pooled() bool {
	return w.Spec.Execution.Mode == ExecutionModePooled
}

// PoolSize returns the worker's effective pool bounds and idle timeout, defaults applied.
func (w *SeekWorker) PoolSize() (minPods, maxPods int32, idle time.Duration) {
	minPods, maxPods, idle = 0, DefaultPoolMaxPods, DefaultPoolIdleTimeout
	if p := w.Spec.Execution.Pool; p != nil {
		if p.MaxPods > 0 {
			maxPods = p.MaxPods
		}
		minPods = min(p.MinPods, maxPods)
		if p.IdleTimeout != nil && p.IdleTimeout.Duration > 0 {
			idle = p.IdleTimeout.Duration
		}
	}
	return minPods, maxPods, idle
}

// WorkerTimeouts bound how long a job may wait, take to start and run.
type WorkerTimeouts struct {
	// queueTimeout is how long a job of this worker may stay Queued, counted from the job's creation:
	// waiting for the worker to be ready, for a concurrency slot, or for anything else that keeps it
	// from starting. A job still Queued then fails with reason QueueTimeout; nothing ran. A job may ask
	// for less with spec.queueTimeout, never for more. Defaults to 24h; 1s to 720h.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('720h')",message="queueTimeout must be between 1s and 720h"
	QueueTimeout *metav1.Duration `json:"queueTimeout,omitempty"`

	// defaultTimeout applies to jobs that do not set spec.timeout. Defaults to 10m.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="defaultTimeout must be at least 1s"
	DefaultTimeout *metav1.Duration `json:"defaultTimeout,omitempty"`

	// maximumTimeout is the longest spec.timeout a job may ask for. Defaults to 1h.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('168h')",message="maximumTimeout must be between 1s and 168h"
	MaximumTimeout *metav1.Duration `json:"maximumTimeout,omitempty"`

	// startDeadline bounds how long a job's worker container may take to start once its Kubernetes Job
	// exists: pulling the image, scheduling the pod, creating the container. A job whose worker has not
	// started by then fails with the cause seen last (such as ImagePullBackOff or Unschedulable, else
	// StartDeadlineExceeded), and its Job is deleted. The same bound applies to the pod of each retry.
	// The job's timeout counts from the container's start, so time spent starting does not shorten it.
	// Defaults to 10m; between 1s and 24h.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="startDeadline must be between 1s and 24h"
	StartDeadline *metav1.Duration `json:"startDeadline,omitempty"`
}

// WorkerLimits bound the load of one worker.
type WorkerLimits struct {
	// maxConcurrentJobs caps how many of this worker's jobs run at once, across all namespaces. Further
	// jobs wait in state Queued, oldest first. Unset means no cap. In Job mode the worker controller
	// grants the slots (status.activeJobs); in Pooled mode the dispatcher leases a job only while fewer
	// than this many of the worker's jobs are leased, and status.activeJobs stays empty.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	MaxConcurrentJobs *int32 `json:"maxConcurrentJobs,omitempty"`

	// maxInputBytes caps the serialized size of a job's input. Larger inputs fail with reason
	// InputTooLarge. Defaults to 65536 (64 KiB); at most 131072 (128 KiB).
	// +optional
	// +kubebuilder:default=65536
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=131072
	MaxInputBytes int32 `json:"maxInputBytes,omitempty"`
}

// WorkerLogs says what is kept of a finished job's output (its stdout and stderr), so that the job's
// logs can be read for as long as the job is retained, after the pod that wrote them is gone.
type WorkerLogs struct {
	// retainedBytes is how much of the end of a job's output is kept when an attempt ends: the last
	// whole lines within this many bytes, in a Secret owned by the SeekJob (status.logs names it).
	// A job that wrote nothing costs no Secret. 0 keeps nothing: the logs then live only as long as the
	// pod. Defaults to 16384 (16 KiB); at most 262144 (256 KiB). Mind etcd: the worst case is this
	// times the jobs retained.
	// +optional
	// +kubebuilder:default=16384
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=262144
	RetainedBytes *int32 `json:"retainedBytes,omitempty"`
}

// Bounds of WorkerLogs.RetainedBytes.
const (
	// DefaultRetainedLogBytes is retainedBytes when unset.
	DefaultRetainedLogBytes = 16 << 10
	// MaxRetainedLogBytes is the largest retainedBytes.
	MaxRetainedLogBytes = 256 << 10
)

// WorkerIsolation confines the worker's pods: who they run as, where and with which runtime.
type WorkerIsolation struct {
	// serviceAccountName runs the worker's pods as this ServiceAccount of the job's namespace (for
	// example to match a PodSecurity or network policy). Its API token is never mounted into workers.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// runtimeClassName runs the pods with this RuntimeClass, for example a sandboxed runtime such as
	// gVisor or Kata for untrusted workers.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`

	// nodeSelector restricts the pods to nodes with these labels.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the pods run on tainted nodes, such as a pool dedicated to untrusted work.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
}

// SeekWorkerStatus is the observed state of a SeekWorker.
type SeekWorkerStatus struct {
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the worker. Ready is True when jobs can run on it.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// activeJobs are the jobs holding one of the worker's limits.maxConcurrentJobs slots. Only set when
	// the worker has a concurrency limit and runs in Job mode. The worker controller owns this list; the
	// job controller starts a job only once it is listed here. A Pooled worker's jobs take no slots here:
	// the dispatcher enforces the limit as it leases them, so the list stays empty.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1000
	ActiveJobs []JobReference `json:"activeJobs,omitempty"`

	// activeJobCount is the number of entries in activeJobs.
	// +optional
	ActiveJobCount int32 `json:"activeJobCount,omitempty"`
}

// JobReference names a SeekJob.
type JobReference struct {
	// namespace of the SeekJob.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// name of the SeekJob.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// uid of the SeekJob, so a re-created SeekJob of the same name does not inherit the slot.
	// +required
	// +kubebuilder:validation:MaxLength=36
	UID string `json:"uid"`
}

// Condition types and reasons of a SeekWorker.
const (
	// WorkerReady is True when the worker's spec is usable: its input schema compiles.
	WorkerReady = "Ready"

	// WorkerReasonValid means the worker spec is valid and jobs can run.
	WorkerReasonValid = "Valid"
	// WorkerReasonInvalidInputSchema means spec.inputSchema is not a valid JSON Schema.
	WorkerReasonInvalidInputSchema = "InvalidInputSchema"
	// WorkerReasonPooledExecutionDisabled means the worker is Pooled but the manager serves no dispatch
	// endpoint (--dispatch-bind-address=0), so no pool pod could lease its jobs: they wait, Queued.
	WorkerReasonPooledExecutionDisabled = "PooledExecutionDisabled"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=sw,categories=seek
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.execution.mode`
// +kubebuilder:printcolumn:name="MaxPods",type=integer,JSONPath=`.spec.execution.pool.maxPods`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Limit",type=integer,JSONPath=`.spec.limits.maxConcurrentJobs`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.activeJobCount`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="oldSelf.hasValue() || (self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))",optionalOldSelf=true,message="metadata.name must be a DNS-1123 label (at most 63 lowercase letters, digits and '-', no '.'): a SeekJob's spec.workerName could never name this worker"

// SeekWorker is a catalogue entry: a named kind of work, the container image that does it and the
// limits it runs under. Jobs in any namespace refer to a worker by name.
type SeekWorker struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the worker.
	// +required
	Spec SeekWorkerSpec `json:"spec"`

	// status is the observed state of the worker.
	// +optional
	Status SeekWorkerStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// SeekWorkerList is a list of SeekWorkers.
type SeekWorkerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SeekWorker `json:"items"`
}
