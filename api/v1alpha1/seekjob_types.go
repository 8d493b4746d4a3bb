package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SeekJobSpec is what a client asks for: run this input on that worker.
// Everything but cancelRequest is immutable once the job exists.
//
// +kubebuilder:validation:XValidation:rule="has(self.callback) == has(oldSelf.callback) && has(self.timeout) == has(oldSelf.timeout) && has(self.ttlAfterFinished) == has(oldSelf.ttlAfterFinished)",message="callback, timeout and ttlAfterFinished cannot be added or removed after creation"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cancelRequest) || has(self.cancelRequest)",message="cancelRequest cannot be changed or removed once set"
// +kubebuilder:validation:XValidation:rule="has(self.queueTimeout) == has(oldSelf.queueTimeout)",message="queueTimeout cannot be added or removed after creation"
type SeekJobSpec struct {
	// workerName is the name of the SeekWorker that runs this job. The worker may be created after the
	// job: until it exists the job stays Queued. Where the frontend's admission webhook is installed,
	// such a job needs the annotation seek-api.com/allow-missing-worker: "true".
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="workerName is immutable"
	WorkerName WorkerName `json:"workerName"`

	// input is the JSON value handed to the worker (any JSON type). Its serialized size is capped by the
	// worker's limits.maxInputBytes (default 64 KiB) and it must match the worker's inputSchema; a job
	// breaking either fails with reason InputTooLarge or InvalidInput before anything runs.
	// Immutability of input is enforced by the ValidatingAdmissionPolicy seek-seekjob-input-immutable
	// (config/policy): CRD validation rules cannot see schemaless fields.
	// +optional
	Input *JSON `json:"input,omitempty"`

	// callback asks for the job's result to be pushed to a URL when it finishes.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="callback is immutable"
	Callback *Callback `json:"callback,omitempty"`

	// timeout bounds the job's execution time, counted from when its worker container first starts (time
	// spent pulling the image or waiting for a node does not count: the worker's timeouts.startDeadline
	// bounds that). It must not exceed the worker's timeouts.maximumTimeout. Defaults to the worker's
	// timeouts.defaultTimeout.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="timeout must be at least 1s"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="timeout is immutable"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// ttlAfterFinished is how long the job is kept after it finishes. Defaults to the worker's
	// ttlAfterFinished.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('720h')",message="ttlAfterFinished must be at most 720h (30 days)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="ttlAfterFinished is immutable"
	TTLAfterFinished *metav1.Duration `json:"ttlAfterFinished,omitempty"`

	// queueTimeout bounds how long the job may stay Queued (from its creation) before it fails with
	// reason QueueTimeout. It can only shorten the limit that applies anyway: its worker's
	// timeouts.queueTimeout (default 24h), or, while the worker does not exist, the manager's
	// --default-queue-timeout. The shorter of the two applies.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('720h')",message="queueTimeout must be between 1s and 720h"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="queueTimeout is immutable"
	QueueTimeout *metav1.Duration `json:"queueTimeout,omitempty"`

	// cancelRequest, once set, stops the job: a queued job never starts and a running job's pods are
	// deleted. It cannot be removed. Has no effect on a finished job.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cancelRequest cannot be changed or removed once set"
	CancelRequest *CancelRequest `json:"cancelRequest,omitempty"`
}

// CallbackEvent is a job event that can be delivered to a callback URL.
//
// +kubebuilder:validation:Enum=Started;Finished;Progress
type CallbackEvent string

const (
	// CallbackEventStarted is sent when the job's first attempt starts.
	CallbackEventStarted CallbackEvent = "Started"
	// CallbackEventFinished is sent once when the job reaches a terminal state.
	CallbackEventFinished CallbackEvent = "Finished"
	// CallbackEventProgress is sent when the worker's progress (status.progress) changes, at most once
	// every 5 seconds: the latest report only, best effort (one not yet delivered when the next comes
	// or the job ends is dropped).
	CallbackEventProgress CallbackEvent = "Progress"
)

// Callback is where to push job events.
type Callback struct {
	// url receives a POST for each event. Only http and https are allowed; private and loopback
	// addresses are refused at delivery time unless the operator allowlists them.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="url must be an absolute http or https URL"
	URL string `json:"url"`

	// events to deliver. Defaults to [Finished].
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:default={Finished}
	Events []CallbackEvent `json:"events,omitempty"`
}

// CancelRequest asks for a job to be stopped.
type CancelRequest struct {
	// reason is a short human-readable explanation, copied into the job's error message.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Reason string `json:"reason,omitempty"`
}

// JobState is the user-facing summary of a job's lifecycle.
//
// +kubebuilder:validation:Enum=Queued;Running;Completed;Failed;Canceled;TimedOut
type JobState string

const (
	// JobStateQueued means the job waits: for its worker to exist or to have a free slot, or for its
	// worker container to start. The Started condition says which.
	JobStateQueued JobState = "Queued"
	// JobStateRunning means the job's worker container has started and the job has not finished.
	JobStateRunning JobState = "Running"
	// JobStateCompleted means the worker succeeded; status.result holds its output.
	JobStateCompleted JobState = "Completed"
	// JobStateFailed means the job will not succeed; status.error says why.
	JobStateFailed JobState = "Failed"
	// JobStateCanceled means the job was stopped by a cancel request.
	JobStateCanceled JobState = "Canceled"
	// JobStateTimedOut means the job ran past its timeout and was stopped.
	JobStateTimedOut JobState = "TimedOut"
)

// IsTerminal reports whether the state is final.
func (s JobState) IsTerminal() bool {
	switch s {
	case JobStateCompleted, JobStateFailed, JobStateCanceled, JobStateTimedOut:
		return true
	}
	return false
}

// JobError describes why a job did not complete.
type JobError struct {
	// reason is a CamelCase machine-readable cause, such as WorkerError, InvalidInput or RetriesExhausted.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`
	// message is a human-readable explanation, from the worker when it gave one.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
	// exitCode is the worker container's exit code, when it ran.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
	// details is the structured error the worker wrote, when it wrote JSON.
	// +optional
	Details *JSON `json:"details,omitempty"`
}

// SeekJobStatus is the observed state of a SeekJob. The job controller writes all of it but callback,
// which the callback controller writes.
type SeekJobStatus struct {
	// observedGeneration is the generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// state summarises the lifecycle: Queued, Running, Completed, Failed, Canceled or TimedOut.
	// +optional
	State JobState `json:"state,omitempty"`

	// conditions detail the lifecycle: Started and Finished.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// jobName is the name of the batch/v1 Job running this SeekJob, in the same namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	JobName string `json:"jobName,omitempty"`

	// attempts is how many attempts (pods) the job has started: 1 from the moment its Job exists.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// startTime is when the worker container of the job's first attempt started running. The timeout
	// counts from it. Unset while the job is Queued, and for a job that never started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the job reached a terminal state.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// duration is completionTime minus startTime, set when the job finishes after starting.
	// +optional
	// +kubebuilder:validation:Type=string
	Duration *metav1.Duration `json:"duration,omitempty"`

	// result is the JSON the worker returned, when it is at most 4096 bytes. Set when state is
	// Completed, unless the result is larger (see resultRef) or empty.
	// +optional
	Result *JSON `json:"result,omitempty"`

	// resultRef points to the Secret holding the result when it is larger than 4096 bytes (at most
	// 1 MiB): result is then unset. Set when state is Completed.
	// +optional
	ResultRef *ResultRef `json:"resultRef,omitempty"`

	// error says why the job did not complete. Set when state is Failed, Canceled or TimedOut.
	// +optional
	Error *JobError `json:"error,omitempty"`

	// callback is the delivery ledger of spec.callback: one entry per event that happened.
	// +optional
	Callback *CallbackStatus `json:"callback,omitempty"`

	// pool is where the job stands in its worker's pool, for a job that started in Pooled mode:
	// which pool pod runs the current attempt, or when the next attempt may start.
	// +optional
	Pool *PoolAttempt `json:"pool,omitempty"`

	// logs is where the output of the job's latest finished attempt is kept, for reading after its pod
	// is gone. Set when an attempt ends, if the worker keeps logs (spec.logs of the SeekWorker).
	// +optional
	Logs *JobLogs `json:"logs,omitempty"`

	// progress is what the worker last said of the running attempt's progress: the Seek runner passes
	// it on in Pooled mode, the collector sidecar in Job mode. It is written at most once every few
	// seconds per job, and kept when the job ends.
	// +optional
	Progress *JobProgress `json:"progress,omitempty"`
}

// JobProgress is a worker's report of how far a job has come.
type JobProgress struct {
	// fraction is the share of the work done, from "0" to "1" with up to three decimals, such as
	// "0.425".
	// +required
	// +kubebuilder:validation:MaxLength=5
	// +kubebuilder:validation:Pattern=`^(0(\.[0-9]{1,3})?|1(\.0{1,3})?)$`
	Fraction string `json:"fraction"`

	// message says, for people, what the worker is doing, such as "page 3 of 12".
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Message string `json:"message,omitempty"`

	// attempt is the attempt that reported it.
	// +required
	// +kubebuilder:validation:Minimum=1
	Attempt int32 `json:"attempt"`

	// updateTime is when the manager wrote it: the next write waits at least 5 seconds after it.
	// +required
	UpdateTime metav1.Time `json:"updateTime"`
}

// ResultRef names the Secret holding a job's large result: a Secret of type seek-api.com/result in the
// job's namespace, controlled by the SeekJob (deleted with it), whose key result.json holds the result's
// JSON as the worker wrote it (without surrounding whitespace).
type ResultRef struct {
	// secretName is the Secret's name: the SeekJob's name followed by "-result".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`

	// bytes is the result's size in bytes: more than 4096, at most 1048576 (1 MiB).
	// +required
	// +kubebuilder:validation:Minimum=4097
	// +kubebuilder:validation:Maximum=1048576
	Bytes int64 `json:"bytes"`

	// sha256 is the lowercase hex SHA-256 of the result's bytes, to check what the Secret holds.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256"`
}

// JobLogs is the kept end of one attempt's output, its last whole lines as the worker wrote them
// (stdout and stderr in one stream): inline in text when short, else in a Secret of type
// seek-api.com/logs in the job's namespace, controlled by the SeekJob (deleted with it), under the key
// output.log.
type JobLogs struct {
	// secretName is the Secret's name: the SeekJob's name followed by "-logs". Unset when the attempt
	// wrote nothing, or when text holds what is kept (no Secret is made).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName,omitempty"`

	// text is what is kept, when it is at most 1024 bytes of UTF-8 (a line or two, as most fast jobs
	// write): it costs no Secret and no write of its own.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Text string `json:"text,omitempty"`

	// attempt is the attempt whose output is kept.
	// +required
	// +kubebuilder:validation:Minimum=1
	Attempt int32 `json:"attempt"`

	// bytes is the size kept.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=262144
	Bytes int64 `json:"bytes"`

	// omittedBytes is how much output came before what is kept and was dropped (0: all of it is kept).
	// +optional
	// +kubebuilder:validation:Minimum=0
	OmittedBytes int64 `json:"omittedBytes,omitempty"`
}

// Kept logs (see JobLogs).
const (
	// MaxInlineLogBytes is the most kept output held in status.logs.text rather than a Secret.
	MaxInlineLogBytes = 1024
	// LogsSecretType is the type of the Secrets holding a job's kept output.
	LogsSecretType = "seek-api.com/logs"
	// LogsSecretKey is the key of a logs Secret holding the output.
	LogsSecretKey = "output.log"
	// logsSecretSuffix follows the SeekJob's name in its logs Secret's name.
	logsSecretSuffix = "-logs"
)

// LogsSecretName is the name of the Secret holding the kept output of the SeekJob named jobName.
func LogsSecretName(jobName string) string { return jobName + logsSecretSuffix }

// Large results: a result over the inline limit is stored in a Secret (see ResultRef).
const (
	// MaxInlineResultBytes is the largest result kept inline in status.result.
	MaxInlineResultBytes = 4096
	// MaxResultBytes is the largest result a job may return (1 MiB); a larger one fails the job with
	// reason ResultTooLarge.
	MaxResultBytes = 1 << 20
	// ResultSecretType is the type of the Secrets holding large results.
	ResultSecretType = "seek-api.com/result"
	// ResultSecretKey is the key of a result Secret holding the result.
	ResultSecretKey = "result.json"
	// resultSecretSuffix follows the SeekJob's name in its result Secret's name.
	resultSecretSuffix = "-result"
)

// ResultSecretName is the name of the Secret holding the large result of the SeekJob named jobName.
func ResultSecretName(jobName string) string { return jobName + resultSecretSuffix }

// PoolAttempt is the pooled execution state of a job: the lease of its current attempt on a pool pod.
// The manager sets it when a pool pod leases the job and clears podName when the attempt ends.
type PoolAttempt struct {
	// jobName is the batch/v1 Job (the namespace's pool for the worker) whose pod runs or ran the job.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	JobName string `json:"jobName,omitempty"`

	// podName is the pool pod running the current attempt; unset between attempts.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PodName string `json:"podName,omitempty"`

	// podUID is the UID of that pod: only it may report the attempt's outcome.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	PodUID string `json:"podUID,omitempty"`

	// retryTime is when the next attempt may start, after an attempt failed and retries are left.
	// +optional
	RetryTime *metav1.Time `json:"retryTime,omitempty"`
}

// CallbackState is where a callback delivery stands.
//
// +kubebuilder:validation:Enum=Pending;Delivered;Failed
type CallbackState string

const (
	// CallbackPending means an attempt is due or scheduled.
	CallbackPending CallbackState = "Pending"
	// CallbackDelivered means the receiver answered an attempt with a 2xx status.
	CallbackDelivered CallbackState = "Delivered"
	// CallbackFailed means delivery was given up: the receiver answered 410 Gone, or every scheduled
	// attempt failed.
	CallbackFailed CallbackState = "Failed"
)

// CallbackStatus is the delivery ledger of a job's callback.
type CallbackStatus struct {
	// state summarises the deliveries: Failed if one failed, else Pending if one is pending, else
	// Delivered.
	// +optional
	State CallbackState `json:"state,omitempty"`

	// deliveries holds one entry per event that happened, in the order they happened.
	// +optional
	// +listType=map
	// +listMapKey=event
	// +kubebuilder:validation:MaxItems=2
	Deliveries []CallbackDelivery `json:"deliveries,omitempty"`

	// redeliveryRequest is the value of the seek-api.com/redeliver annotation last acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	RedeliveryRequest string `json:"redeliveryRequest,omitempty"`
}

// CallbackDelivery is the delivery of one event: its attempts so far and what comes next.
type CallbackDelivery struct {
	// event is the job event delivered.
	// +required
	Event CallbackEvent `json:"event"`

	// id is the webhook-id header of every attempt: stable across retries and redeliveries, the
	// receiver's deduplication key.
	// +required
	// +kubebuilder:validation:MaxLength=128
	ID string `json:"id"`

	// type is the payload's type, such as job.started or job.completed.
	// +required
	// +kubebuilder:validation:MaxLength=32
	Type string `json:"type"`

	// state is Pending, Delivered or Failed.
	// +required
	State CallbackState `json:"state"`

	// attempts is how many attempts were made.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// lastAttemptTime is when the last attempt was made.
	// +optional
	LastAttemptTime *metav1.Time `json:"lastAttemptTime,omitempty"`

	// lastStatusCode is the HTTP status of the last attempt's response; unset when it got none.
	// +optional
	LastStatusCode int32 `json:"lastStatusCode,omitempty"`

	// lastError says why the last attempt failed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	LastError string `json:"lastError,omitempty"`

	// nextAttemptTime is when the next attempt is due, while Pending.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`

	// deliveredTime is when the receiver accepted the event.
	// +optional
	DeliveredTime *metav1.Time `json:"deliveredTime,omitempty"`
}

// Condition types of a SeekJob and their reasons, grouped per condition. The job controller owns both.
const (
	// JobStarted is True once the worker container of the SeekJob's Job has started. While False its
	// reason says why the job waits: for its worker or a slot (before its Job exists), or for the
	// Job's pod to start (JobCreated, or the cause that keeps it from starting). The causes come from
	// the Job controller, the scheduler and the kubelet: besides the reasons below, the reason of the
	// worker container's waiting state is copied as is (ErrImagePull, ImagePullBackOff,
	// CreateContainerConfigError, CreateContainerError, InvalidImageName, ...), and so is the
	// reason of the pod's PodScheduled=False condition (Unschedulable, SchedulingGated).
	JobStarted = "Started"

	// JobReasonWorkerNotFound means the named SeekWorker does not exist (yet).
	JobReasonWorkerNotFound = "WorkerNotFound"
	// JobReasonWorkerNotReady means the SeekWorker exists but is not Ready.
	JobReasonWorkerNotReady = "WorkerNotReady"
	// JobReasonWaitingForCapacity means the worker's maxConcurrentJobs slots are all taken.
	JobReasonWaitingForCapacity = "WaitingForCapacity"
	// JobReasonWaitingForPreviousJob means a Job left by an earlier SeekJob of the same name is still being
	// deleted.
	JobReasonWaitingForPreviousJob = "WaitingForPreviousJob"
	// JobReasonQuotaExceeded means a ResourceQuota of the namespace refused the Kubernetes Job; the
	// controller retries with a growing delay (up to a minute) while the job stays Queued.
	JobReasonQuotaExceeded = "QuotaExceeded"
	// JobReasonJobCreated means the Kubernetes Job exists and nothing is known to keep its pod from
	// starting: it is being created, scheduled, or its image pulled.
	JobReasonJobCreated = "JobCreated"
	// JobReasonUnschedulable means the scheduler finds no node for the pod (its message says why).
	JobReasonUnschedulable = "Unschedulable"
	// JobReasonImagePullBackOff means the kubelet cannot pull the worker image and waits to retry.
	JobReasonImagePullBackOff = "ImagePullBackOff"
	// JobReasonErrImagePull means the kubelet's last pull of the worker image failed.
	JobReasonErrImagePull = "ErrImagePull"
	// JobReasonCreateContainerConfigError means the kubelet cannot build the container's configuration,
	// for example because a referenced Secret or ConfigMap is missing.
	JobReasonCreateContainerConfigError = "CreateContainerConfigError"
	// JobReasonServiceAccountNotFound means the Job controller cannot create the pod because the
	// worker's isolation.serviceAccountName does not exist in the job's namespace.
	JobReasonServiceAccountNotFound = "ServiceAccountNotFound"
	// JobReasonRuntimeClassNotFound means the Job controller cannot create the pod because the
	// worker's isolation.runtimeClassName does not exist.
	JobReasonRuntimeClassNotFound = "RuntimeClassNotFound"
	// JobReasonPodCreationFailed means the Job controller cannot create the pod for another reason (an
	// admission policy, a pod quota, ...); the message is the Job controller's.
	JobReasonPodCreationFailed = "PodCreationFailed"
	// JobReasonContainerWaiting stands for a waiting reason of the kubelet that is not a valid
	// condition reason.
	JobReasonContainerWaiting = "ContainerWaiting"
	// JobReasonWorkerStarted (Started=True) means the worker container started running.
	JobReasonWorkerStarted = "WorkerStarted"
	// JobReasonNeverStarted means the job finished before it started.
	JobReasonNeverStarted = "NeverStarted"

	// JobFinished is True once the job reached a terminal state; its reason says how. A job whose worker
	// did not start within the worker's timeouts.startDeadline fails with the Started reason seen last
	// when it names a cause (ImagePullBackOff, Unschedulable, ServiceAccountNotFound, ...), else with
	// StartDeadlineExceeded.
	JobFinished = "Finished"

	// JobReasonSucceeded means the worker returned a result.
	JobReasonSucceeded = "Succeeded"
	// JobReasonWorkerError means the worker failed with a non-retryable exit code.
	JobReasonWorkerError = "WorkerError"
	// JobReasonRetriesExhausted means every allowed attempt failed.
	JobReasonRetriesExhausted = "RetriesExhausted"
	// JobReasonInvalidResult means the worker exited 0 but its result is not JSON.
	JobReasonInvalidResult = "InvalidResult"
	// JobReasonResultTooLarge means the worker exited 0 with a result larger than MaxResultBytes, or
	// larger than MaxInlineResultBytes in Job mode when the manager cannot collect large results (its
	// dispatch endpoint is off).
	JobReasonResultTooLarge = "ResultTooLarge"
	// JobReasonResultLost means the worker exited 0 with a large result that could not be stored: the
	// collector of a Job mode pod did not deliver it in time, or a Secret of the result's name exists
	// and is not the job's.
	JobReasonResultLost = "ResultLost"
	// JobReasonInvalidInput means the input does not match the worker's inputSchema.
	JobReasonInvalidInput = "InvalidInput"
	// JobReasonInputTooLarge means the input exceeds the worker's limits.maxInputBytes.
	JobReasonInputTooLarge = "InputTooLarge"
	// JobReasonInvalidTimeout means spec.timeout exceeds the worker's timeouts.maximumTimeout.
	JobReasonInvalidTimeout = "InvalidTimeout"
	// JobReasonDeadlineExceeded means the job ran past its timeout.
	JobReasonDeadlineExceeded = "DeadlineExceeded"
	// JobReasonStartDeadlineExceeded means the worker container did not start within the worker's
	// timeouts.startDeadline, and nothing more specific was seen to keep it from starting.
	JobReasonStartDeadlineExceeded = "StartDeadlineExceeded"
	// JobReasonJobRejected means the apiserver refused to create the Kubernetes Job: it is invalid, or
	// an admission policy forbids it. The message is the apiserver's.
	JobReasonJobRejected = "JobRejected"
	// JobReasonCanceled means a cancel request stopped the job.
	JobReasonCanceled = "Canceled"
	// JobReasonJobNotOwned means a Job with the SeekJob's name exists but is not controlled by it.
	JobReasonJobNotOwned = "JobNotOwned"
	// JobReasonJobLost means the Job disappeared before it finished (deleted by someone else).
	JobReasonJobLost = "JobLost"

	// JobReasonQueueTimeout means the job was still Queued when its queue timeout passed: it never
	// started. Its state is Failed, not TimedOut, which means the job ran too long.
	JobReasonQueueTimeout = "QueueTimeout"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=sj,categories=seek
// +kubebuilder:printcolumn:name="Worker",type=string,JSONPath=`.spec.workerName`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.attempts`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.error.reason`,priority=1
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.duration`
// +kubebuilder:printcolumn:name="Callback",type=string,JSONPath=`.status.callback.state`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.workerName`
// +kubebuilder:selectablefield:JSONPath=`.status.state`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters (it names the Job and labels its pods)"

// SeekJob is one asynchronous job: an input for a named SeekWorker. The controller runs it as a
// batch/v1 Job and records the worker's result or error in status.
type SeekJob struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the job request.
	// +required
	Spec SeekJobSpec `json:"spec"`

	// status is the observed state of the job.
	// +optional
	Status SeekJobStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// SeekJobList is a list of SeekJobs.
type SeekJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SeekJob `json:"items"`
}

// Labels and annotations on the objects the controller creates.
const (
	// LabelJobName links a batch/v1 Job and its pods to their SeekJob (value: the SeekJob's name).
	LabelJobName = "seek-api.com/job-name"
	// LabelJobUID links a batch/v1 Job and its pods to their SeekJob (value: the SeekJob's UID).
	LabelJobUID = "seek-api.com/job-uid"
	// LabelWorker names the SeekWorker of a Job and its pods. (SeekJobs are selected by the field
	// spec.workerName: kubectl get seekjobs --field-selector spec.workerName=NAME.)
	LabelWorker = "seek-api.com/worker"
	// AnnotationRedeliver, set or changed on a SeekJob, asks for its callback's events to be delivered
	// again (same webhook-id, a fresh schedule). Any value up to 64 characters, e.g. a timestamp.
	AnnotationRedeliver = "seek-api.com/redeliver"
	// AnnotationAllowMissingWorker set to "true" on a SeekJob lets it be created before its SeekWorker
	// exists: the admission webhook refuses such a job otherwise. It waits Queued for the worker, at
	// most its queue timeout.
	AnnotationAllowMissingWorker = "seek-api.com/allow-missing-worker"
	// AnnotationInput carries the job input on the pod template; the downward API projects it into the
	// container as a file.
	AnnotationInput = "seek-api.com/input"
	// AnnotationTimeout on a Job is the job's timeout (a Go duration) when the Job was created: the
	// controller enforces it from the worker container's start.
	AnnotationTimeout = "seek-api.com/timeout"
	// AnnotationStartDeadline on a Job is the worker's timeouts.startDeadline (a Go duration) when the
	// Job was created.
	AnnotationStartDeadline = "seek-api.com/start-deadline"
	// LabelPool marks a pooled worker's pool Job and its pods (value: the SeekWorker's name).
	LabelPool = "seek-api.com/pool"
	// LabelPoolTemplate on a pool Job and its pods is the hash of the pod template it was built from:
	// pods of an outdated template take no new jobs and exit.
	LabelPoolTemplate = "seek-api.com/pool-template"
)
