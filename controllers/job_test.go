package controllers

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// baseJob is the Job buildJob returns for SeekJob "a" (UID u1, namespace ns, no input) on worker "echo"
// with nothing but an image set.
func baseJob() *batchv1.Job {
	labels := map[string]string{
		"seek-api.com/job-name": "a",
		"seek-api.com/job-uid":  "u1",
		"seek-api.com/worker":   "echo",
	}
	tmp := resource.MustParse("1Gi")
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", Labels: labels,
			Annotations: map[string]string{"seek-api.com/timeout": "10m0s", "seek-api.com/start-deadline": "10m0s"}},
		Spec: batchv1.JobSpec{
			Parallelism:             ptr.To[int32](1),
			Completions:             ptr.To[int32](1),
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   ptr.To[int64](1200), // start deadline + timeout
			TTLSecondsAfterFinished: ptr.To[int32](86400),
			PodReplacementPolicy:    ptr.To(batchv1.Failed),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{
					Action: batchv1.PodFailurePolicyActionFailJob,
					OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
						ContainerName: ptr.To("worker"),
						Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
						Values:        []int32{65},
					},
				},
				{
					Action:          batchv1.PodFailurePolicyActionIgnore,
					OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
				},
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: map[string]string{"seek-api.com/input": "null"},
				},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						RunAsGroup:     ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "worker",
						Image: "example.com/echo:v1",
						Env: []corev1.EnvVar{
							{Name: "SEEK_PROTOCOL", Value: "v1"},
							{Name: "SEEK_JOB_NAME", Value: "a"},
							{Name: "SEEK_JOB_NAMESPACE", Value: "ns"},
							{Name: "SEEK_JOB_UID", Value: "u1"},
							{Name: "SEEK_WORKER", Value: "echo"},
							{Name: "SEEK_INPUT_PATH", Value: "/seek/input/input.json"},
							{Name: "SEEK_RESULT_PATH", Value: "/seek/result.json"},
						},
						TerminationMessagePath:   "/seek/result.json",
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						VolumeMounts: []corev1.VolumeMount{
							{Name: "seek-input", MountPath: "/seek/input", ReadOnly: true},
							{Name: "seek-tmp", MountPath: "/tmp"},
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Privileged:               ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "seek-input", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
							Items: []corev1.DownwardAPIVolumeFile{{
								Path:     "input.json",
								FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['seek-api.com/input']"},
							}},
						}}},
						{Name: "seek-tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &tmp}}},
					},
				},
			},
		},
	}
}

func TestBuildJob(t *testing.T) {
	job := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1")
	worker := testutil.MakeSeekWorker("echo").Image("example.com/echo:v1")
	toleration := corev1.Toleration{Key: "seek-api.com/untrusted", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	resources := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}

	cases := []struct {
		name   string
		sj     *seekv1alpha1.SeekJob
		worker *seekv1alpha1.SeekWorker
		// want changes baseJob into the expected Job.
		want func(*batchv1.Job)
	}{
		{
			name:   "defaults",
			sj:     job.Obj(),
			worker: worker.Obj(),
			want:   func(*batchv1.Job) {},
		},
		{
			name:   "input in the annotation the downward API projects",
			sj:     job.Clone().Input(`{"x": 1, "s": "é"}`).Obj(),
			worker: worker.Obj(),
			want: func(j *batchv1.Job) {
				j.Spec.Template.Annotations["seek-api.com/input"] = `{"x": 1, "s": "é"}`
			},
		},
		{
			name:   "empty input is null",
			sj:     job.Clone().Input(``).Obj(),
			worker: worker.Obj(),
			want:   func(*batchv1.Job) {},
		},
		{
			name:   "worker default timeout",
			sj:     job.Obj(),
			worker: worker.Clone().Timeouts(5*time.Minute, time.Hour).Obj(),
			want: func(j *batchv1.Job) {
				j.Annotations["seek-api.com/timeout"] = "5m0s"
				j.Spec.ActiveDeadlineSeconds = ptr.To[int64](900)
			},
		},
		{
			name:   "job timeout overrides worker default",
			sj:     job.Clone().Timeout(90 * time.Second).Obj(),
			worker: worker.Clone().Timeouts(5*time.Minute, time.Hour).Obj(),
			want: func(j *batchv1.Job) {
				j.Annotations["seek-api.com/timeout"] = "1m30s"
				j.Spec.ActiveDeadlineSeconds = ptr.To[int64](690)
			},
		},
		{
			name:   "fractional timeout rounds up",
			sj:     job.Clone().Timeout(1500 * time.Millisecond).Obj(),
			worker: worker.Obj(),
			want: func(j *batchv1.Job) {
				j.Annotations["seek-api.com/timeout"] = "1.5s"
				j.Spec.ActiveDeadlineSeconds = ptr.To[int64](602)
			},
		},
		{
			name:   "worker start deadline",
			sj:     job.Clone().Timeout(time.Minute).Obj(),
			worker: worker.Clone().StartDeadline(20 * time.Second).Obj(),
			want: func(j *batchv1.Job) {
				j.Annotations["seek-api.com/timeout"] = "1m0s"
				j.Annotations["seek-api.com/start-deadline"] = "20s"
				j.Spec.ActiveDeadlineSeconds = ptr.To[int64](80)
			},
		},
		{
			name:   "retries become the backoff limit",
			sj:     job.Obj(),
			worker: worker.Clone().Retries(3).Obj(),
			want:   func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To[int32](3) },
		},
		{
			name:   "short job TTL is raised to the floor",
			sj:     job.Clone().TTL(10 * time.Minute).Obj(),
			worker: worker.Clone().TTL(48 * time.Hour).Obj(),
			want:   func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](3600) },
		},
		{
			name:   "job TTL above the floor",
			sj:     job.Clone().TTL(48 * time.Hour).Obj(),
			worker: worker.Obj(),
			want:   func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](172800) },
		},
		{
			name:   "worker TTL",
			sj:     job.Obj(),
			worker: worker.Clone().TTL(2 * time.Hour).Obj(),
			want:   func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](7200) },
		},
		{
			// The worker's ttlAfterFinished has no maximum in the API; the Job's TTL is an int32 of seconds.
			name:   "huge worker TTL clamped to the int32 range",
			sj:     job.Obj(),
			worker: worker.Clone().TTL(600000 * time.Hour).Obj(),
			want:   func(j *batchv1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](math.MaxInt32) },
		},
		{
			name: "container and isolation settings copied",
			sj:   job.Obj(),
			worker: worker.Clone().
				PullPolicy(corev1.PullAlways).
				Command("/bin/echo").
				Args("--json").
				Env("LOG_LEVEL", "debug").
				Resources(resources).
				ServiceAccount("echo-runner").
				RuntimeClass("gvisor").
				NodeSelector("pool", "untrusted").
				Toleration(toleration).
				Obj(),
			want: func(j *batchv1.Job) {
				c := &j.Spec.Template.Spec.Containers[0]
				c.ImagePullPolicy = corev1.PullAlways
				c.Command = []string{"/bin/echo"}
				c.Args = []string{"--json"}
				c.Env = append(c.Env, corev1.EnvVar{Name: "LOG_LEVEL", Value: "debug"})
				c.Resources = resources
				ps := &j.Spec.Template.Spec
				ps.ServiceAccountName = "echo-runner"
				ps.RuntimeClassName = ptr.To("gvisor")
				ps.NodeSelector = map[string]string{"pool": "untrusted"}
				ps.Tolerations = []corev1.Toleration{toleration}
			},
		},
		{
			name:   "other namespace, name and worker",
			sj:     testutil.MakeSeekJob("job-2", "team-b").Worker("resize").UID("u2").Obj(),
			worker: testutil.MakeSeekWorker("resize").Image("example.com/echo:v1").Obj(),
			want: func(j *batchv1.Job) {
				labels := map[string]string{"seek-api.com/job-name": "job-2", "seek-api.com/job-uid": "u2", "seek-api.com/worker": "resize"}
				j.Name, j.Namespace, j.Labels, j.Spec.Template.Labels = "job-2", "team-b", labels, labels
				env := j.Spec.Template.Spec.Containers[0].Env
				env[1].Value, env[2].Value, env[3].Value, env[4].Value = "job-2", "team-b", "u2", "resize"
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sjBefore, workerBefore := tc.sj.DeepCopy(), tc.worker.DeepCopy()
			want := baseJob()
			tc.want(want)

			got := buildJob(tc.sj, tc.worker)

			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("buildJob() mismatch (-want +got):\n%s", diff)
			}
			checkRestricted(t, got)
			if len(got.OwnerReferences) != 0 {
				t.Errorf("buildJob() set owner references %v; the caller sets them", got.OwnerReferences)
			}
			if diff := cmp.Diff(sjBefore, tc.sj); diff != "" {
				t.Errorf("buildJob() modified the SeekJob (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(workerBefore, tc.worker); diff != "" {
				t.Errorf("buildJob() modified the SeekWorker (-before +after):\n%s", diff)
			}
		})
	}
}

// TestBuildJobLargestInputFits guards the input transport: the input travels in a pod template
// annotation, and the apiserver caps an object's annotations at 256 KiB, keys included. An input of the
// largest size a worker may accept must still make a Job the apiserver admits.
func TestBuildJobLargestInputFits(t *testing.T) {
	input := `"` + strings.Repeat("a", seekv1alpha1.MaxInputBytesLimit-2) + `"`
	sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Input(input).Obj()
	w := testutil.MakeSeekWorker("echo").MaxInputBytes(seekv1alpha1.MaxInputBytesLimit).Obj()
	if reason, msg := validateAgainstWorker(sj, w); reason != "" {
		t.Fatalf("validateAgainstWorker() = %s: %s, want the input accepted", reason, msg)
	}
	job := buildJob(sj, w)
	if errs := apivalidation.ValidateAnnotations(job.Spec.Template.Annotations, field.NewPath("spec", "template", "metadata", "annotations")); len(errs) > 0 {
		t.Errorf("the pod template annotations of a %d-byte input are invalid: %v", len(input), errs.ToAggregate())
	}
}

// checkRestricted asserts what the restricted Pod Security Standard and the worker protocol need,
// independently of the golden Job above.
func checkRestricted(t *testing.T, job *batchv1.Job) {
	t.Helper()
	ps := job.Spec.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %q, want Never", ps.RestartPolicy)
	}
	if !ptr.Deref(ps.SecurityContext.RunAsNonRoot, false) {
		t.Error("pod runAsNonRoot is not true")
	}
	if ptr.Deref(ps.AutomountServiceAccountToken, true) {
		t.Error("the service account token is mounted")
	}
	if len(ps.Containers) != 1 || ps.Containers[0].Name != protocol.ContainerName {
		t.Fatalf("containers = %v, want one named %q", ps.Containers, protocol.ContainerName)
	}
	sc := ps.Containers[0].SecurityContext
	if sc == nil {
		t.Fatal("worker container has no security context")
	}
	if !ptr.Deref(sc.RunAsNonRoot, false) {
		t.Error("container runAsNonRoot is not true")
	}
	if ptr.Deref(sc.AllowPrivilegeEscalation, true) {
		t.Error("container allowPrivilegeEscalation is not false")
	}
	if ptr.Deref(sc.Privileged, true) {
		t.Error("container privileged is not false")
	}
	if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
		t.Error("container readOnlyRootFilesystem is not true")
	}
	if sc.Capabilities == nil || !cmp.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container capabilities = %+v, want drop [ALL] and nothing added", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
	}
	if ptr.Deref(job.Spec.PodReplacementPolicy, "") != batchv1.Failed {
		t.Errorf("podReplacementPolicy = %v, want Failed", job.Spec.PodReplacementPolicy)
	}
	if got := job.Spec.Template.Annotations[seekv1alpha1.AnnotationInput]; got == "" {
		t.Error("the input annotation is empty")
	}
}

func TestEffectiveTimeout(t *testing.T) {
	cases := []struct {
		name   string
		sj     *seekv1alpha1.SeekJob
		worker *seekv1alpha1.SeekWorker
		want   time.Duration
	}{
		{
			name:   "neither sets one",
			sj:     testutil.MakeSeekJob("a", "ns").Worker("echo").Obj(),
			worker: testutil.MakeSeekWorker("echo").Obj(),
			want:   10 * time.Minute,
		},
		{
			name:   "worker maximum alone is not a default",
			sj:     testutil.MakeSeekJob("a", "ns").Worker("echo").Obj(),
			worker: testutil.MakeSeekWorker("echo").Timeouts(0, 2*time.Hour).Obj(),
			want:   10 * time.Minute,
		},
		{
			name:   "worker default",
			sj:     testutil.MakeSeekJob("a", "ns").Worker("echo").Obj(),
			worker: testutil.MakeSeekWorker("echo").Timeouts(3*time.Minute, time.Hour).Obj(),
			want:   3 * time.Minute,
		},
		{
			name:   "job timeout wins",
			sj:     testutil.MakeSeekJob("a", "ns").Worker("echo").Timeout(45 * time.Second).Obj(),
			worker: testutil.MakeSeekWorker("echo").Timeouts(3*time.Minute, time.Hour).Obj(),
			want:   45 * time.Second,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := effectiveTimeout(tc.sj, tc.worker); got != tc.want {
				t.Errorf("effectiveTimeout() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEffectiveTTL(t *testing.T) {
	cases := []struct {
		name   string
		sj     *seekv1alpha1.SeekJob
		worker *seekv1alpha1.SeekWorker
		want   time.Duration
	}{
		{
			name:   "neither sets one",
			sj:     testutil.MakeSeekJob("a", "ns").Worker("echo").Obj(),
			worker: testutil.MakeSeekWorker("echo").Obj(),
			want:   24 * time.Hour,
		},
		{
			name: "worker deleted",
			sj:   testutil.MakeSeekJob("a", "ns").Worker("echo").Obj(),
			want: 24 * time.Hour,
		},
		{
			name:   "worker TTL",
			sj:     testutil.MakeSeekJob("a", "ns").Worker("echo").Obj(),
			worker: testutil.MakeSeekWorker("echo").TTL(2 * time.Hour).Obj(),
			want:   2 * time.Hour,
		},
		{
			name:   "job TTL wins, even when shorter",
			sj:     testutil.MakeSeekJob("a", "ns").Worker("echo").TTL(5 * time.Minute).Obj(),
			worker: testutil.MakeSeekWorker("echo").TTL(2 * time.Hour).Obj(),
			want:   5 * time.Minute,
		},
		{
			name: "job TTL without worker",
			sj:   testutil.MakeSeekJob("a", "ns").Worker("echo").TTL(72 * time.Hour).Obj(),
			want: 72 * time.Hour,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := effectiveTTL(tc.sj, tc.worker); got != tc.want {
				t.Errorf("effectiveTTL() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestProgressPathWithCollector: the worker container learns where to report progress only when the
// collector sidecar, which passes it on, shares its /seek volume; both name the same file.
func TestProgressPathWithCollector(t *testing.T) {
	// seekEnv is a container's SEEK_RESULT_PATH and SEEK_PROGRESS_PATH, by name.
	seekEnv := func(c corev1.Container) map[string]string {
		env := map[string]string{}
		for _, e := range c.Env {
			if e.Name == protocol.EnvProgressPath || e.Name == protocol.EnvResultPath {
				env[e.Name] = e.Value
			}
		}
		return env
	}
	for _, tc := range []struct {
		name                 string
		collector            bool
		worker, collectorEnv map[string]string
	}{
		{name: "without the collector", worker: map[string]string{"SEEK_RESULT_PATH": "/seek/result.json"}},
		{name: "with the collector", collector: true,
			worker:       map[string]string{"SEEK_RESULT_PATH": "/seek/result.json", "SEEK_PROGRESS_PATH": "/seek/progress.json"},
			collectorEnv: map[string]string{"SEEK_RESULT_PATH": "/seek/result.json", "SEEK_PROGRESS_PATH": "/seek/progress.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sj := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Obj()
			job := buildJob(sj, testutil.MakeSeekWorker("echo").Env("GREETING", "hi").Obj())
			if tc.collector {
				withCollector(job, PoolOptions{RunnerImage: "example.com/runner:v1", DispatchURL: "http://10.0.0.1:8090"})
			}
			spec := job.Spec.Template.Spec
			if diff := cmp.Diff(tc.worker, seekEnv(spec.Containers[0])); diff != "" {
				t.Errorf("worker env (-want +got):\n%s", diff)
			}
			var collectorEnv map[string]string
			for _, c := range spec.InitContainers {
				collectorEnv = seekEnv(c)
			}
			if diff := cmp.Diff(tc.collectorEnv, collectorEnv); diff != "" {
				t.Errorf("collector env (-want +got):\n%s", diff)
			}
			if env := spec.Containers[0].Env; env[len(env)-1].Name != "GREETING" {
				t.Errorf("worker env %+v: the worker's own variables must come last (they win)", env)
			}
		})
	}
}
