// Package testutil holds builders of the objects the Seek operator reads and writes, for unit and
// integration tests. They follow the wrapper style of Kueue's testing package:
//
//	sj := testutil.MakeSeekJob("a", "ns").Worker("echo").Input(`{"x":1}`).Timeout(time.Minute).Obj()
//	w := testutil.MakeSeekWorker("echo").Image("example.com/echo:v1").MaxConcurrent(3).Ready().Obj()
//
// Every builder starts from an object the apiserver accepts (names, namespace, a pinned image, the
// labels of the api package), so the same objects can be created in envtest. Status set through a
// builder is kept by fake clients but dropped by a real apiserver on create: write it through the
// status subresource there. Obj returns a deep copy, so one wrapper can produce several objects.
package testutil

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// DefaultImage is the image of workers, Jobs and pods built here unless a test sets another one.
const DefaultImage = "registry.example.com/seek/worker:v1"

// SeekJobWrapper builds a SeekJob.
type SeekJobWrapper struct {
	seekv1alpha1.SeekJob
}

// MakeSeekJob starts a SeekJob named name in namespace ns. Set its worker with Worker: the API
// requires spec.workerName.
func MakeSeekJob(name, ns string) *SeekJobWrapper {
	return &SeekJobWrapper{seekv1alpha1.SeekJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
	}}
}

// Obj returns a copy of the SeekJob built so far.
func (w *SeekJobWrapper) Obj() *seekv1alpha1.SeekJob {
	return w.DeepCopy()
}

// Clone returns an independent copy of the wrapper.
func (w *SeekJobWrapper) Clone() *SeekJobWrapper {
	return &SeekJobWrapper{*w.DeepCopy()}
}

// Worker sets spec.workerName.
func (w *SeekJobWrapper) Worker(name string) *SeekJobWrapper {
	w.Spec.WorkerName = seekv1alpha1.WorkerName(name)
	return w
}

// Input sets spec.input to the given JSON text (not validated, so tests can pass malformed input).
func (w *SeekJobWrapper) Input(raw string) *SeekJobWrapper {
	w.Spec.Input = seekv1alpha1.NewJSON([]byte(raw))
	return w
}

// Timeout sets spec.timeout.
func (w *SeekJobWrapper) Timeout(d time.Duration) *SeekJobWrapper {
	w.Spec.Timeout = &metav1.Duration{Duration: d}
	return w
}

// TTL sets spec.ttlAfterFinished.
func (w *SeekJobWrapper) TTL(d time.Duration) *SeekJobWrapper {
	w.Spec.TTLAfterFinished = &metav1.Duration{Duration: d}
	return w
}

// Callback sets spec.callback. Without events the API defaults them to [Finished].
func (w *SeekJobWrapper) Callback(url string, events ...seekv1alpha1.CallbackEvent) *SeekJobWrapper {
	w.Spec.Callback = &seekv1alpha1.Callback{URL: url, Events: events}
	return w
}

// Cancel sets spec.cancelRequest with the given reason.
func (w *SeekJobWrapper) Cancel(reason string) *SeekJobWrapper {
	w.Spec.CancelRequest = &seekv1alpha1.CancelRequest{Reason: reason}
	return w
}

// UID sets metadata.uid (the apiserver assigns its own on create).
func (w *SeekJobWrapper) UID(uid string) *SeekJobWrapper {
	w.ObjectMeta.UID = types.UID(uid)
	return w
}

// Created sets metadata.creationTimestamp (the apiserver assigns its own on create).
func (w *SeekJobWrapper) Created(t time.Time) *SeekJobWrapper {
	w.CreationTimestamp = metav1.NewTime(t)
	return w
}

// Generation sets metadata.generation.
func (w *SeekJobWrapper) Generation(g int64) *SeekJobWrapper {
	w.ObjectMeta.Generation = g
	return w
}

// Label sets a label.
func (w *SeekJobWrapper) Label(key, value string) *SeekJobWrapper {
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	w.Labels[key] = value
	return w
}

// Annotation sets an annotation.
func (w *SeekJobWrapper) Annotation(key, value string) *SeekJobWrapper {
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[key] = value
	return w
}

// Finalizers appends finalizers.
func (w *SeekJobWrapper) Finalizers(f ...string) *SeekJobWrapper {
	w.ObjectMeta.Finalizers = append(w.ObjectMeta.Finalizers, f...)
	return w
}

// Deleting sets metadata.deletionTimestamp. Fake clients only accept it with a finalizer.
func (w *SeekJobWrapper) Deleting(t time.Time) *SeekJobWrapper {
	w.DeletionTimestamp = ptr.To(metav1.NewTime(t))
	return w
}

// State sets status.state.
func (w *SeekJobWrapper) State(s seekv1alpha1.JobState) *SeekJobWrapper {
	w.Status.State = s
	return w
}

// JobName sets status.jobName.
func (w *SeekJobWrapper) JobName(name string) *SeekJobWrapper {
	w.Status.JobName = name
	return w
}

// Attempts sets status.attempts.
func (w *SeekJobWrapper) Attempts(n int32) *SeekJobWrapper {
	w.Status.Attempts = n
	return w
}

// StartTime sets status.startTime.
func (w *SeekJobWrapper) StartTime(t time.Time) *SeekJobWrapper {
	w.Status.StartTime = ptr.To(metav1.NewTime(t))
	return w
}

// CompletionTime sets status.completionTime.
func (w *SeekJobWrapper) CompletionTime(t time.Time) *SeekJobWrapper {
	w.Status.CompletionTime = ptr.To(metav1.NewTime(t))
	return w
}

// Result sets status.result to the given JSON text.
func (w *SeekJobWrapper) Result(raw string) *SeekJobWrapper {
	w.Status.Result = seekv1alpha1.NewJSON([]byte(raw))
	return w
}

// Error sets status.error.
func (w *SeekJobWrapper) Error(reason, message string) *SeekJobWrapper {
	w.Status.Error = &seekv1alpha1.JobError{Reason: reason, Message: message}
	return w
}

// Condition sets a status condition (replacing one of the same type). A zero LastTransitionTime
// becomes the creation time, as the API requires one.
func (w *SeekJobWrapper) Condition(c metav1.Condition) *SeekJobWrapper {
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = w.CreationTimestamp
	}
	meta.SetStatusCondition(&w.Status.Conditions, c)
	return w
}

// Finished moves the job to a terminal state at t: status.state, completionTime and a Finished=True
// condition with the given reason.
func (w *SeekJobWrapper) Finished(state seekv1alpha1.JobState, reason string, t time.Time) *SeekJobWrapper {
	return w.State(state).CompletionTime(t).Condition(metav1.Condition{
		Type:               seekv1alpha1.JobFinished,
		Status:             metav1.ConditionTrue,
		Reason:             reason,
		LastTransitionTime: metav1.NewTime(t),
	})
}

// CallbackLedger sets status.callback to the given deliveries, with the summary state they imply.
func (w *SeekJobWrapper) CallbackLedger(state seekv1alpha1.CallbackState, deliveries ...seekv1alpha1.CallbackDelivery) *SeekJobWrapper {
	w.Status.Callback = &seekv1alpha1.CallbackStatus{State: state, Deliveries: deliveries}
	return w
}

// JobRef returns the reference a worker's status.activeJobs uses for sj.
func JobRef(sj *seekv1alpha1.SeekJob) seekv1alpha1.JobReference {
	return seekv1alpha1.JobReference{Namespace: sj.Namespace, Name: sj.Name, UID: string(sj.UID)}
}

// SeekWorkerWrapper builds a SeekWorker.
type SeekWorkerWrapper struct {
	seekv1alpha1.SeekWorker
}

// MakeSeekWorker starts a cluster-scoped SeekWorker named name running DefaultImage.
func MakeSeekWorker(name string) *SeekWorkerWrapper {
	return &SeekWorkerWrapper{seekv1alpha1.SeekWorker{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       seekv1alpha1.SeekWorkerSpec{Image: DefaultImage},
	}}
}

// Obj returns a copy of the SeekWorker built so far.
func (w *SeekWorkerWrapper) Obj() *seekv1alpha1.SeekWorker {
	return w.DeepCopy()
}

// Clone returns an independent copy of the wrapper.
func (w *SeekWorkerWrapper) Clone() *SeekWorkerWrapper {
	return &SeekWorkerWrapper{*w.DeepCopy()}
}

// UID sets metadata.uid.
func (w *SeekWorkerWrapper) UID(uid string) *SeekWorkerWrapper {
	w.ObjectMeta.UID = types.UID(uid)
	return w
}

// Generation sets metadata.generation.
func (w *SeekWorkerWrapper) Generation(g int64) *SeekWorkerWrapper {
	w.ObjectMeta.Generation = g
	return w
}

// Created sets metadata.creationTimestamp.
func (w *SeekWorkerWrapper) Created(t time.Time) *SeekWorkerWrapper {
	w.CreationTimestamp = metav1.NewTime(t)
	return w
}

// Label sets a label.
func (w *SeekWorkerWrapper) Label(key, value string) *SeekWorkerWrapper {
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	w.Labels[key] = value
	return w
}

// Description sets spec.description.
func (w *SeekWorkerWrapper) Description(d string) *SeekWorkerWrapper {
	w.Spec.Description = d
	return w
}

// Image sets spec.image.
func (w *SeekWorkerWrapper) Image(image string) *SeekWorkerWrapper {
	w.Spec.Image = image
	return w
}

// PullPolicy sets spec.imagePullPolicy.
func (w *SeekWorkerWrapper) PullPolicy(p corev1.PullPolicy) *SeekWorkerWrapper {
	w.Spec.ImagePullPolicy = p
	return w
}

// Command sets spec.command.
func (w *SeekWorkerWrapper) Command(cmd ...string) *SeekWorkerWrapper {
	w.Spec.Command = cmd
	return w
}

// Args sets spec.args.
func (w *SeekWorkerWrapper) Args(args ...string) *SeekWorkerWrapper {
	w.Spec.Args = args
	return w
}

// Env appends an environment variable to spec.env.
func (w *SeekWorkerWrapper) Env(name, value string) *SeekWorkerWrapper {
	w.Spec.Env = append(w.Spec.Env, corev1.EnvVar{Name: name, Value: value})
	return w
}

// Resources sets spec.resources.
func (w *SeekWorkerWrapper) Resources(r corev1.ResourceRequirements) *SeekWorkerWrapper {
	w.Spec.Resources = r
	return w
}

// Retries sets spec.retries.
func (w *SeekWorkerWrapper) Retries(n int32) *SeekWorkerWrapper {
	w.Spec.Retries = n
	return w
}

// MaxConcurrent sets spec.limits.maxConcurrentJobs.
func (w *SeekWorkerWrapper) MaxConcurrent(n int32) *SeekWorkerWrapper {
	w.Spec.Limits.MaxConcurrentJobs = ptr.To(n)
	return w
}

// MaxInputBytes sets spec.limits.maxInputBytes.
func (w *SeekWorkerWrapper) MaxInputBytes(n int32) *SeekWorkerWrapper {
	w.Spec.Limits.MaxInputBytes = n
	return w
}

// InputSchema sets spec.inputSchema to the given JSON Schema text (not validated).
func (w *SeekWorkerWrapper) InputSchema(raw string) *SeekWorkerWrapper {
	w.Spec.InputSchema = seekv1alpha1.NewJSON([]byte(raw))
	return w
}

// Timeouts sets spec.timeouts; a zero duration leaves that bound unset.
func (w *SeekWorkerWrapper) Timeouts(defaultTimeout, maximumTimeout time.Duration) *SeekWorkerWrapper {
	w.Spec.Timeouts = seekv1alpha1.WorkerTimeouts{}
	if defaultTimeout != 0 {
		w.Spec.Timeouts.DefaultTimeout = &metav1.Duration{Duration: defaultTimeout}
	}
	if maximumTimeout != 0 {
		w.Spec.Timeouts.MaximumTimeout = &metav1.Duration{Duration: maximumTimeout}
	}
	return w
}

// StartDeadline sets spec.timeouts.startDeadline.
func (w *SeekWorkerWrapper) StartDeadline(d time.Duration) *SeekWorkerWrapper {
	w.Spec.Timeouts.StartDeadline = &metav1.Duration{Duration: d}
	return w
}

// TTL sets spec.ttlAfterFinished.
func (w *SeekWorkerWrapper) TTL(d time.Duration) *SeekWorkerWrapper {
	w.Spec.TTLAfterFinished = &metav1.Duration{Duration: d}
	return w
}

// Pooled sets spec.execution to Pooled mode with at most maxPods pods per pool. Pooled mode requires
// spec.command: set it with Command.
func (w *SeekWorkerWrapper) Pooled(maxPods int32) *SeekWorkerWrapper {
	w.Spec.Execution.Mode = seekv1alpha1.ExecutionModePooled
	if w.Spec.Execution.Pool == nil {
		w.Spec.Execution.Pool = &seekv1alpha1.WorkerPool{}
	}
	w.Spec.Execution.Pool.MaxPods = maxPods
	return w
}

// MinPods sets spec.execution.pool.minPods (with Pooled).
// FinishedJobs sets spec.execution.finishedJobs.
func (w *SeekWorkerWrapper) FinishedJobs(p seekv1alpha1.FinishedJobPolicy) *SeekWorkerWrapper {
	w.Spec.Execution.FinishedJobs = p
	return w
}

// RetainedLogBytes sets spec.logs.retainedBytes.
func (w *SeekWorkerWrapper) RetainedLogBytes(n int32) *SeekWorkerWrapper {
	w.Spec.Logs.RetainedBytes = &n
	return w
}

func (w *SeekWorkerWrapper) MinPods(n int32) *SeekWorkerWrapper {
	if w.Spec.Execution.Pool == nil {
		w.Spec.Execution.Pool = &seekv1alpha1.WorkerPool{}
	}
	w.Spec.Execution.Pool.MinPods = n
	return w
}

// IdleTimeout sets spec.execution.pool.idleTimeout (with Pooled).
func (w *SeekWorkerWrapper) IdleTimeout(d time.Duration) *SeekWorkerWrapper {
	if w.Spec.Execution.Pool == nil {
		w.Spec.Execution.Pool = &seekv1alpha1.WorkerPool{}
	}
	w.Spec.Execution.Pool.IdleTimeout = &metav1.Duration{Duration: d}
	return w
}

// ServiceAccount sets spec.isolation.serviceAccountName.
func (w *SeekWorkerWrapper) ServiceAccount(name string) *SeekWorkerWrapper {
	w.Spec.Isolation.ServiceAccountName = name
	return w
}

// RuntimeClass sets spec.isolation.runtimeClassName.
func (w *SeekWorkerWrapper) RuntimeClass(name string) *SeekWorkerWrapper {
	w.Spec.Isolation.RuntimeClassName = ptr.To(name)
	return w
}

// NodeSelector adds a label to spec.isolation.nodeSelector.
func (w *SeekWorkerWrapper) NodeSelector(key, value string) *SeekWorkerWrapper {
	if w.Spec.Isolation.NodeSelector == nil {
		w.Spec.Isolation.NodeSelector = map[string]string{}
	}
	w.Spec.Isolation.NodeSelector[key] = value
	return w
}

// Toleration appends a toleration to spec.isolation.tolerations.
func (w *SeekWorkerWrapper) Toleration(t corev1.Toleration) *SeekWorkerWrapper {
	w.Spec.Isolation.Tolerations = append(w.Spec.Isolation.Tolerations, t)
	return w
}

// Condition sets a status condition (replacing one of the same type). A zero LastTransitionTime
// becomes the creation time, as the API requires one.
func (w *SeekWorkerWrapper) Condition(c metav1.Condition) *SeekWorkerWrapper {
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = w.CreationTimestamp
	}
	meta.SetStatusCondition(&w.Status.Conditions, c)
	return w
}

// Ready marks the worker Ready=True as its controller does for a valid spec.
func (w *SeekWorkerWrapper) Ready() *SeekWorkerWrapper {
	return w.Condition(metav1.Condition{
		Type:               seekv1alpha1.WorkerReady,
		Status:             metav1.ConditionTrue,
		Reason:             seekv1alpha1.WorkerReasonValid,
		Message:            "The worker accepts jobs",
		ObservedGeneration: w.ObjectMeta.Generation,
	})
}

// NotReady marks the worker Ready=False with the given reason and message.
func (w *SeekWorkerWrapper) NotReady(reason, message string) *SeekWorkerWrapper {
	return w.Condition(metav1.Condition{
		Type:               seekv1alpha1.WorkerReady,
		Status:             metav1.ConditionFalse,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: w.ObjectMeta.Generation,
	})
}

// ActiveJobs sets status.activeJobs and status.activeJobCount.
func (w *SeekWorkerWrapper) ActiveJobs(refs ...seekv1alpha1.JobReference) *SeekWorkerWrapper {
	w.Status.ActiveJobs = refs
	w.Status.ActiveJobCount = int32(len(refs))
	return w
}

// seekJobLabels are the labels the controller puts on a SeekJob's Job and pods.
func seekJobLabels(sj *seekv1alpha1.SeekJob) map[string]string {
	return map[string]string{
		seekv1alpha1.LabelJobName: sj.Name,
		seekv1alpha1.LabelJobUID:  string(sj.UID),
		seekv1alpha1.LabelWorker:  string(sj.Spec.WorkerName),
	}
}

func setLabels(m *map[string]string, labels map[string]string) {
	if *m == nil {
		*m = map[string]string{}
	}
	for k, v := range labels {
		(*m)[k] = v
	}
}

// workerContainer is a minimal valid worker container.
func workerContainer() corev1.Container {
	return corev1.Container{
		Name:                     protocol.ContainerName,
		Image:                    DefaultImage,
		TerminationMessagePath:   protocol.ResultPath,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// JobWrapper builds a batch/v1 Job.
type JobWrapper struct {
	batchv1.Job
}

// MakeJob starts a Job running one worker pod (restartPolicy Never, no retries).
func MakeJob(name, ns string) *JobWrapper {
	return &JobWrapper{batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{
			Parallelism:  ptr.To[int32](1),
			Completions:  ptr.To[int32](1),
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{workerContainer()},
				},
			},
		},
	}}
}

// Obj returns a copy of the Job built so far.
func (w *JobWrapper) Obj() *batchv1.Job {
	return w.DeepCopy()
}

// Clone returns an independent copy of the wrapper.
func (w *JobWrapper) Clone() *JobWrapper {
	return &JobWrapper{*w.DeepCopy()}
}

// ForSeekJob puts the SeekJob labels (name, UID, worker) on the Job and its pod template.
func (w *JobWrapper) ForSeekJob(sj *seekv1alpha1.SeekJob) *JobWrapper {
	labels := seekJobLabels(sj)
	setLabels(&w.Labels, labels)
	setLabels(&w.Spec.Template.Labels, labels)
	return w
}

// ControlledBy makes sj the Job's controller. sj needs a UID.
func (w *JobWrapper) ControlledBy(sj *seekv1alpha1.SeekJob) *JobWrapper {
	w.OwnerReferences = append(w.OwnerReferences, *metav1.NewControllerRef(sj, seekv1alpha1.GroupVersion.WithKind("SeekJob")))
	return w
}

// Label sets a label on the Job.
func (w *JobWrapper) Label(key, value string) *JobWrapper {
	setLabels(&w.Labels, map[string]string{key: value})
	return w
}

// UID sets metadata.uid.
func (w *JobWrapper) UID(uid string) *JobWrapper {
	w.ObjectMeta.UID = types.UID(uid)
	return w
}

// Created sets metadata.creationTimestamp.
func (w *JobWrapper) Created(t time.Time) *JobWrapper {
	w.CreationTimestamp = metav1.NewTime(t)
	return w
}

// Annotation sets an annotation.
func (w *JobWrapper) Annotation(key, value string) *JobWrapper {
	setLabels(&w.Annotations, map[string]string{key: value})
	return w
}

// ActiveDeadlineSeconds sets spec.activeDeadlineSeconds.
func (w *JobWrapper) ActiveDeadlineSeconds(s int64) *JobWrapper {
	w.Spec.ActiveDeadlineSeconds = ptr.To(s)
	return w
}

// BackoffLimit sets spec.backoffLimit.
func (w *JobWrapper) BackoffLimit(n int32) *JobWrapper {
	w.Spec.BackoffLimit = ptr.To(n)
	return w
}

// StartTime sets status.startTime.
func (w *JobWrapper) StartTime(t time.Time) *JobWrapper {
	w.Status.StartTime = ptr.To(metav1.NewTime(t))
	return w
}

// Active sets status.active.
func (w *JobWrapper) Active(n int32) *JobWrapper {
	w.Status.Active = n
	return w
}

// SucceededCount sets status.succeeded.
func (w *JobWrapper) SucceededCount(n int32) *JobWrapper {
	w.Status.Succeeded = n
	return w
}

// FailedCount sets status.failed.
func (w *JobWrapper) FailedCount(n int32) *JobWrapper {
	w.Status.Failed = n
	return w
}

// Condition sets a status condition (replacing one of the same type).
func (w *JobWrapper) Condition(c batchv1.JobCondition) *JobWrapper {
	for i := range w.Status.Conditions {
		if w.Status.Conditions[i].Type == c.Type {
			w.Status.Conditions[i] = c
			return w
		}
	}
	w.Status.Conditions = append(w.Status.Conditions, c)
	return w
}

func (w *JobWrapper) finished(at time.Time) {
	if w.Status.StartTime == nil {
		w.StartTime(at)
	}
	w.Status.Active = 0
	w.Status.Ready = ptr.To[int32](0)
	w.Status.Terminating = ptr.To[int32](0)
}

// Complete marks the Job succeeded at the given time as the Job controller does: SuccessCriteriaMet
// and Complete conditions, completionTime, startTime when unset, no active pods. The apiserver
// rejects a Complete condition without the others.
func (w *JobWrapper) Complete(at time.Time) *JobWrapper {
	w.finished(at)
	w.Status.CompletionTime = ptr.To(metav1.NewTime(at))
	t := metav1.NewTime(at)
	for _, typ := range []batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet, batchv1.JobComplete} {
		w.Condition(batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached,
			Message: "Reached expected number of succeeded pods", LastProbeTime: t, LastTransitionTime: t})
	}
	return w
}

// Failed marks the Job failed at the given time with a reason such as batchv1.JobReasonDeadlineExceeded,
// JobReasonPodFailurePolicy or JobReasonBackoffLimitExceeded, as the Job controller does: FailureTarget
// and Failed conditions, startTime when unset, no active pods.
func (w *JobWrapper) Failed(reason string, at time.Time) *JobWrapper {
	w.finished(at)
	t := metav1.NewTime(at)
	for _, typ := range []batchv1.JobConditionType{batchv1.JobFailureTarget, batchv1.JobFailed} {
		w.Condition(batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason,
			Message: "Job failed: " + reason, LastProbeTime: t, LastTransitionTime: t})
	}
	return w
}

// PodWrapper builds a worker pod.
type PodWrapper struct {
	corev1.Pod
}

// MakePod starts a pod with one worker container and restartPolicy Never, as a SeekJob's Job creates.
func MakePod(name, ns string) *PodWrapper {
	return &PodWrapper{corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{workerContainer()},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}}
}

// Obj returns a copy of the pod built so far.
func (w *PodWrapper) Obj() *corev1.Pod {
	return w.DeepCopy()
}

// Clone returns an independent copy of the wrapper.
func (w *PodWrapper) Clone() *PodWrapper {
	return &PodWrapper{*w.DeepCopy()}
}

// ForSeekJob puts the SeekJob labels (name, UID, worker) on the pod.
func (w *PodWrapper) ForSeekJob(sj *seekv1alpha1.SeekJob) *PodWrapper {
	setLabels(&w.Labels, seekJobLabels(sj))
	return w
}

// ControlledBy makes job the pod's controller. job needs a UID.
func (w *PodWrapper) ControlledBy(job *batchv1.Job) *PodWrapper {
	w.OwnerReferences = append(w.OwnerReferences, *metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job")))
	return w
}

// Label sets a label.
func (w *PodWrapper) Label(key, value string) *PodWrapper {
	setLabels(&w.Labels, map[string]string{key: value})
	return w
}

// UID sets metadata.uid.
func (w *PodWrapper) UID(uid string) *PodWrapper {
	w.ObjectMeta.UID = types.UID(uid)
	return w
}

// Created sets metadata.creationTimestamp.
func (w *PodWrapper) Created(t time.Time) *PodWrapper {
	w.CreationTimestamp = metav1.NewTime(t)
	return w
}

// Phase sets status.phase.
func (w *PodWrapper) Phase(p corev1.PodPhase) *PodWrapper {
	w.Status.Phase = p
	return w
}

// Condition sets a status condition, such as DisruptionTarget (replacing one of the same type).
func (w *PodWrapper) Condition(typ corev1.PodConditionType, status corev1.ConditionStatus, reason string) *PodWrapper {
	c := corev1.PodCondition{Type: typ, Status: status, Reason: reason, LastTransitionTime: w.CreationTimestamp}
	for i := range w.Status.Conditions {
		if w.Status.Conditions[i].Type == typ {
			w.Status.Conditions[i] = c
			return w
		}
	}
	w.Status.Conditions = append(w.Status.Conditions, c)
	return w
}

// workerStatus returns the worker container's status, adding it when missing.
func (w *PodWrapper) workerStatus() *corev1.ContainerStatus {
	for i := range w.Status.ContainerStatuses {
		if w.Status.ContainerStatuses[i].Name == protocol.ContainerName {
			return &w.Status.ContainerStatuses[i]
		}
	}
	image := DefaultImage
	for _, c := range w.Spec.Containers {
		if c.Name == protocol.ContainerName {
			image = c.Image
		}
	}
	w.Status.ContainerStatuses = append(w.Status.ContainerStatuses, corev1.ContainerStatus{Name: protocol.ContainerName, Image: image})
	return &w.Status.ContainerStatuses[len(w.Status.ContainerStatuses)-1]
}

// Running sets the pod Running with the worker container started at the given time.
func (w *PodWrapper) Running(startedAt time.Time) *PodWrapper {
	w.Status.Phase = corev1.PodRunning
	cs := w.workerStatus()
	cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(startedAt)}}
	cs.Ready = true
	cs.Started = ptr.To(true)
	return w
}

// Waiting sets the worker container waiting with a reason and message, as the kubelet reports an
// image it cannot pull (ErrImagePull, ImagePullBackOff) or a container it cannot create.
func (w *PodWrapper) Waiting(reason, message string) *PodWrapper {
	cs := w.workerStatus()
	cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
	cs.Ready = false
	cs.Started = ptr.To(false)
	return w
}

// Unschedulable sets PodScheduled=False with reason Unschedulable and the scheduler's message.
func (w *PodWrapper) Unschedulable(message string) *PodWrapper {
	w.Condition(corev1.PodScheduled, corev1.ConditionFalse, corev1.PodReasonUnschedulable)
	for i := range w.Status.Conditions {
		if w.Status.Conditions[i].Type == corev1.PodScheduled {
			w.Status.Conditions[i].Message = message
		}
	}
	return w
}

// MemoryLimit sets the worker container's memory limit.
func (w *PodWrapper) MemoryLimit(q string) *PodWrapper {
	for i := range w.Spec.Containers {
		if w.Spec.Containers[i].Name == protocol.ContainerName {
			w.Spec.Containers[i].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(q)}
		}
	}
	return w
}

// Terminated sets the worker container's current state to terminated, without changing the phase.
// message is the termination message: the worker's result or error, or the log tail.
func (w *PodWrapper) Terminated(exitCode int32, reason, message string, finishedAt time.Time) *PodWrapper {
	cs := w.workerStatus()
	cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:   exitCode,
		Reason:     reason,
		Message:    message,
		StartedAt:  w.CreationTimestamp,
		FinishedAt: metav1.NewTime(finishedAt),
	}}
	cs.Ready = false
	cs.Started = ptr.To(false)
	return w
}

// LastTerminated sets the worker container's last termination state, leaving its current state.
func (w *PodWrapper) LastTerminated(exitCode int32, reason, message string, finishedAt time.Time) *PodWrapper {
	cs := w.workerStatus()
	cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:   exitCode,
		Reason:     reason,
		Message:    message,
		StartedAt:  w.CreationTimestamp,
		FinishedAt: metav1.NewTime(finishedAt),
	}}
	return w
}

// Succeeded sets phase Succeeded with the worker container exited 0 at finishedAt, its termination
// message being result.
func (w *PodWrapper) Succeeded(result string, finishedAt time.Time) *PodWrapper {
	return w.Phase(corev1.PodSucceeded).Terminated(0, "Completed", result, finishedAt)
}

// Failed sets phase Failed with the worker container exited with exitCode at finishedAt, its
// termination message being message.
func (w *PodWrapper) Failed(exitCode int32, message string, finishedAt time.Time) *PodWrapper {
	return w.Phase(corev1.PodFailed).Terminated(exitCode, "Error", message, finishedAt)
}

// QueueTimeout sets spec.queueTimeout of a SeekJob.
func (w *SeekJobWrapper) QueueTimeout(d time.Duration) *SeekJobWrapper {
	w.Spec.QueueTimeout = &metav1.Duration{Duration: d}
	return w
}

// QueueTimeout sets spec.timeouts.queueTimeout of a SeekWorker (set it after Timeouts, which replaces
// spec.timeouts).
func (w *SeekWorkerWrapper) QueueTimeout(d time.Duration) *SeekWorkerWrapper {
	w.Spec.Timeouts.QueueTimeout = &metav1.Duration{Duration: d}
	return w
}

// poolLabels are the labels of a pool Job and its pods.
func poolLabels(worker, hash string) map[string]string {
	return map[string]string{
		seekv1alpha1.LabelWorker:       worker,
		seekv1alpha1.LabelPool:         worker,
		seekv1alpha1.LabelPoolTemplate: hash,
	}
}

// ForPool puts the labels of the pool of worker, built from the template hash, on the Job and its pod
// template, and makes it a work-queue Job (completions unset) of the given parallelism.
func (w *JobWrapper) ForPool(worker, hash string, parallelism int32) *JobWrapper {
	labels := poolLabels(worker, hash)
	setLabels(&w.Labels, labels)
	setLabels(&w.Spec.Template.Labels, labels)
	w.Spec.Completions = nil
	w.Spec.Parallelism = ptr.To(parallelism)
	return w
}

// ForPool puts the labels of the pool of worker, built from the template hash, on the pod.
func (w *PodWrapper) ForPool(worker, hash string) *PodWrapper {
	setLabels(&w.Labels, poolLabels(worker, hash))
	return w
}

// InitWaiting adds an init container status waiting with a reason and message, as the kubelet
// reports a pool pod whose runner image it cannot pull.
func (w *PodWrapper) InitWaiting(name, reason, message string) *PodWrapper {
	w.Status.InitContainerStatuses = append(w.Status.InitContainerStatuses, corev1.ContainerStatus{
		Name: name, Image: DefaultImage,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
	})
	return w
}

// Leased sets the status a dispatcher writes when the pool pod podName (UID podUID) of the pool Job
// jobName leases the job's next attempt at t: Running, started (the first time) at t, one more
// attempt, status.pool naming the pod.
func (w *SeekJobWrapper) Leased(jobName, podName, podUID string, t time.Time) *SeekJobWrapper {
	w.Status.Attempts++
	w.Status.Pool = &seekv1alpha1.PoolAttempt{JobName: jobName, PodName: podName, PodUID: podUID}
	w.Status.State = seekv1alpha1.JobStateRunning
	if w.Status.StartTime == nil {
		w.Status.StartTime = ptr.To(metav1.NewTime(t))
	}
	return w.Condition(metav1.Condition{
		Type:               seekv1alpha1.JobStarted,
		Status:             metav1.ConditionTrue,
		Reason:             seekv1alpha1.JobReasonWorkerStarted,
		Message:            "The worker container started",
		ObservedGeneration: w.ObjectMeta.Generation,
		LastTransitionTime: metav1.NewTime(t),
	})
}
