package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

var testPoolOptions = PoolOptions{RunnerImage: "registry.example.com/seek/runner:v1", DispatchURL: "http://10.96.0.20:8090"}

func TestBuildPoolJob(t *testing.T) {
	w := testutil.MakeSeekWorker("echo").UID("w1").Pooled(8).Command("/echo", "--json").Args("-v").Env("MODE", "fast").
		ServiceAccount("runner").RuntimeClass("gvisor").NodeSelector("pool", "untrusted").
		Resources(corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}).Obj()
	hash := poolTemplateHash(w, testPoolOptions.RunnerImage)
	labels := map[string]string{
		seekv1alpha1.LabelWorker:       "echo",
		seekv1alpha1.LabelPool:         "echo",
		seekv1alpha1.LabelPoolTemplate: hash,
	}
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Privileged:               ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	tmp := resource.MustParse("1Gi")
	want := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "seek-pool-echo-" + hash + "-3",
			Namespace: "tenant",
			Labels:    labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "seek-api.com/v1alpha1", Kind: "SeekWorker", Name: "echo", UID: "w1",
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: batchv1.JobSpec{
			Parallelism:             ptr.To[int32](5),
			BackoffLimit:            ptr.To[int32](10),
			TTLSecondsAfterFinished: ptr.To[int32](3600),
			PodReplacementPolicy:    ptr.To(batchv1.Failed),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:          batchv1.PodFailurePolicyActionIgnore,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					TerminationGracePeriodSeconds: ptr.To[int64](35),
					ServiceAccountName:            "runner",
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					RuntimeClassName:              ptr.To("gvisor"),
					NodeSelector:                  map[string]string{"pool": "untrusted"},
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](65532),
						RunAsGroup:     ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					InitContainers: []corev1.Container{{
						Name:            "seek-runner-install",
						Image:           "registry.example.com/seek/runner:v1",
						Command:         []string{"/seek-runner", "install", "/seek/bin/seek-runner"},
						Resources:       w.Spec.Resources,
						VolumeMounts:    []corev1.VolumeMount{{Name: "seek-bin", MountPath: "/seek/bin"}},
						SecurityContext: sc,
					}},
					Containers: []corev1.Container{{
						Name:    "worker",
						Image:   testutil.DefaultImage,
						Command: []string{"/seek/bin/seek-runner", "run", "--", "/echo", "--json"},
						Args:    []string{"-v"},
						Env: []corev1.EnvVar{
							{Name: "SEEK_PROTOCOL", Value: "v1"},
							{Name: "SEEK_WORKER", Value: "echo"},
							{Name: "SEEK_INPUT_PATH", Value: "/seek/input/input.json"},
							{Name: "SEEK_RESULT_PATH", Value: "/seek/result.json"},
							{Name: "SEEK_DISPATCH_URL", Value: "http://10.96.0.20:8090"},
							{Name: "SEEK_DISPATCH_TOKEN_PATH", Value: "/var/run/seek-api.com/dispatch/token"},
							{Name: "MODE", Value: "fast"},
						},
						Resources:                w.Spec.Resources,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						VolumeMounts: []corev1.VolumeMount{
							{Name: "seek-run", MountPath: "/seek"},
							{Name: "seek-bin", MountPath: "/seek/bin", ReadOnly: true},
							{Name: "seek-tmp", MountPath: "/tmp"},
							{Name: "seek-dispatch-token", MountPath: "/var/run/seek-api.com/dispatch", ReadOnly: true},
						},
						SecurityContext: sc,
					}},
					Volumes: []corev1.Volume{
						{Name: "seek-run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "seek-bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "seek-tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &tmp}}},
						{Name: "seek-dispatch-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
							Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
								Audience: "dispatch.seek-api.com", ExpirationSeconds: ptr.To[int64](600), Path: "token",
							}}},
						}}},
					},
				},
			},
		},
	}
	got := buildPoolJob(w, "tenant", 3, 5, testPoolOptions)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("buildPoolJob (-want +got):\n%s", diff)
	}
	// Without an isolation ServiceAccount the pods name the namespace's default one, as the projected
	// token requires.
	w.Spec.Isolation.ServiceAccountName = ""
	if sa := buildPoolJob(w, "tenant", 3, 5, testPoolOptions).Spec.Template.Spec.ServiceAccountName; sa != "default" {
		t.Errorf("serviceAccountName = %q, want default", sa)
	}
	// The worker's command is copied, not aliased: building must not change the worker.
	if diff := cmp.Diff([]string{"/echo", "--json"}, w.Spec.Command); diff != "" {
		t.Errorf("worker command changed (-want +got):\n%s", diff)
	}
}

func TestPoolTemplateHashChanges(t *testing.T) {
	base := testutil.MakeSeekWorker("echo").Pooled(4).Command("/echo")
	h := poolTemplateHash(base.Obj(), "runner:v1")
	if got := poolTemplateHash(base.Clone().Pooled(9).MinPods(1).Obj(), "runner:v1"); got != h {
		t.Errorf("pool sizes changed the template hash")
	}
	for name, changed := range map[string]string{
		"image":        poolTemplateHash(base.Clone().Image("registry.example.com/seek/worker:v2").Obj(), "runner:v1"),
		"command":      poolTemplateHash(base.Clone().Command("/echo", "-n").Obj(), "runner:v1"),
		"env":          poolTemplateHash(base.Clone().Env("A", "b").Obj(), "runner:v1"),
		"runner image": poolTemplateHash(base.Obj(), "runner:v2"),
	} {
		if changed == h {
			t.Errorf("a changed %s kept the template hash", name)
		}
	}
}

func TestPoolJobName(t *testing.T) {
	long := strings.Repeat("w", 63)
	cases := []struct {
		worker string
		gen    int
		want   string
	}{
		{"echo", 1, "seek-pool-echo-0123456789-1"},
		{long, 1, "seek-pool-" + strings.Repeat("w", 40) + "-0123456789-1"},
		{long, 12, "seek-pool-" + strings.Repeat("w", 39) + "-0123456789-12"},
		{long, 123456, "seek-pool-" + strings.Repeat("w", 35) + "-0123456789-123456"},
	}
	for _, tc := range cases {
		got := poolJobName(tc.worker, "0123456789", tc.gen)
		if got != tc.want {
			t.Errorf("poolJobName(%d chars, %d) = %q, want %q", len(tc.worker), tc.gen, got, tc.want)
		}
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Errorf("poolJobName(%d chars, %d) = %q: %v", len(tc.worker), tc.gen, got, errs)
		}
		if g := poolGeneration(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: got}}); g != tc.gen {
			t.Errorf("poolGeneration(%q) = %d, want %d", got, g, tc.gen)
		}
		if !poolJobNameOf(got, tc.worker) {
			t.Errorf("poolJobNameOf(%q, %d chars) = false", got, len(tc.worker))
		}
	}
	for _, name := range []string{"a", "seek-pool-echo-0123456789-x", "echo-1"} {
		if g := poolGeneration(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name}}); g != 0 {
			t.Errorf("poolGeneration(%q) = %d, want 0", name, g)
		}
	}
	if poolJobNameOf("seek-pool-echo-0123456789-1", "echo2") || poolJobNameOf("seek-pool-ec-0123456789-1", "echo") {
		t.Errorf("poolJobNameOf matched another worker's pool")
	}
}

func TestClampPods(t *testing.T) {
	cases := []struct{ demand, minPods, maxPods, want int32 }{
		{0, 0, 4, 0},
		{1, 0, 4, 1},
		{10, 0, 4, 4},
		{0, 2, 4, 2},
		{3, 2, 4, 3},
		{4, 4, 4, 4},
	}
	for _, tc := range cases {
		if got := clampPods(tc.demand, tc.minPods, tc.maxPods); got != tc.want {
			t.Errorf("clampPods(%d, %d, %d) = %d, want %d", tc.demand, tc.minPods, tc.maxPods, got, tc.want)
		}
	}
}

func TestPoolDemand(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	idle := 30 * time.Second
	job := testutil.MakeSeekJob("a", "ns").Worker("echo").UID("u1").Created(now.Add(-time.Minute))
	retrying := func(in time.Duration) *seekv1alpha1.SeekJob {
		sj := job.Clone().Leased("pool-1", "p", "pod1", now.Add(-time.Minute)).Obj()
		sj.Status.Pool = &seekv1alpha1.PoolAttempt{JobName: "pool-1", RetryTime: &metav1.Time{Time: now.Add(in)}}
		return sj
	}
	cases := []struct {
		name        string
		jobs        []*seekv1alpha1.SeekJob
		wantDemand  int32
		wantRequeue time.Duration
	}{
		{name: "none"},
		{name: "queued", jobs: []*seekv1alpha1.SeekJob{job.Obj(), job.Obj()}, wantDemand: 2},
		{name: "leased", jobs: []*seekv1alpha1.SeekJob{job.Clone().Leased("pool-1", "p", "pod1", now).Obj()}, wantDemand: 1},
		{name: "leased and canceled keeps its pod busy", jobs: []*seekv1alpha1.SeekJob{job.Clone().Leased("pool-1", "p", "pod1", now).Cancel("x").Obj()}, wantDemand: 1},
		{name: "canceled", jobs: []*seekv1alpha1.SeekJob{job.Clone().Cancel("x").Obj()}},
		{name: "Job mode", jobs: []*seekv1alpha1.SeekJob{job.Clone().JobName("a").Obj()}},
		{name: "finished", jobs: []*seekv1alpha1.SeekJob{job.Clone().Finished(seekv1alpha1.JobStateCompleted, "Succeeded", now).Obj()}},
		{name: "retry soon", jobs: []*seekv1alpha1.SeekJob{retrying(10 * time.Second)}, wantDemand: 1},
		{name: "retry due", jobs: []*seekv1alpha1.SeekJob{retrying(-time.Second)}, wantDemand: 1},
		{name: "retry later: wake when it comes within idle", jobs: []*seekv1alpha1.SeekJob{retrying(5 * time.Minute), retrying(2 * time.Minute)},
			wantRequeue: 90 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var jobs []seekv1alpha1.SeekJob
			for _, sj := range tc.jobs {
				jobs = append(jobs, *sj)
			}
			demand, requeue := poolDemand(jobs, idle, now)
			if demand != tc.wantDemand || requeue != tc.wantRequeue {
				t.Errorf("poolDemand = %d, %s; want %d, %s", demand, requeue, tc.wantDemand, tc.wantRequeue)
			}
		})
	}
}

func TestPlanPool(t *testing.T) {
	const hash = "0123456789"
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	gen := func(n int, uid string, parallelism int32) *testutil.JobWrapper {
		return testutil.MakeJob(poolJobName("echo", hash, n), "ns").UID(uid).ForPool("echo", hash, parallelism)
	}
	podOf := func(name string, job *batchv1.Job) *testutil.PodWrapper {
		return testutil.MakePod(name, "ns").ForPool("echo", job.Labels[seekv1alpha1.LabelPoolTemplate]).ControlledBy(job).Created(now)
	}
	g1 := gen(1, "j1", 2).Obj()
	g2 := gen(2, "j2", 3).Obj()
	outdated := testutil.MakeJob(poolJobName("echo", "abcdefabcd", 4), "ns").UID("j4").ForPool("echo", "abcdefabcd", 2).Obj()
	withSucceeded := gen(2, "j2", 3).SucceededCount(1).Obj()
	finished := gen(2, "j2", 3).Complete(now).Obj()

	cases := []struct {
		name    string
		jobs    []*batchv1.Job
		pods    []*corev1.Pod
		desired int32
		want    poolPlan
	}{
		{name: "nothing wanted, nothing there", want: poolPlan{}},
		{name: "first generation", desired: 1, want: poolPlan{generation: 1, parallelism: 1}},
		{name: "raise the newest", jobs: []*batchv1.Job{g1, g2}, desired: 4, want: poolPlan{raise: g2, parallelism: 4}},
		{name: "never lower", jobs: []*batchv1.Job{g2}, desired: 1, want: poolPlan{}},
		{name: "enough", jobs: []*batchv1.Job{g2}, desired: 3, want: poolPlan{}},
		{name: "scale to zero keeps the Job as is", jobs: []*batchv1.Job{g2}, desired: 0, want: poolPlan{}},
		{name: "live pods of older generations count", jobs: []*batchv1.Job{g1, g2},
			pods:    []*corev1.Pod{podOf("a", g1).Running(now).Obj(), podOf("b", g1).Obj(), podOf("c", g1).Succeeded("", now).Obj(), podOf("d", g2).Running(now).Obj()},
			desired: 6, want: poolPlan{raise: g2, parallelism: 4}},
		{name: "older generations cover the demand", jobs: []*batchv1.Job{g1, g2},
			pods:    []*corev1.Pod{podOf("a", g1).Running(now).Obj(), podOf("b", g1).Running(now).Obj()},
			desired: 2, want: poolPlan{}},
		{name: "a pod exited: next generation", jobs: []*batchv1.Job{g1, withSucceeded},
			pods:    []*corev1.Pod{podOf("a", withSucceeded).Running(now).Obj()},
			desired: 3, want: poolPlan{generation: 3, parallelism: 2}},
		{name: "a pod exited, not counted by the Job yet", jobs: []*batchv1.Job{g2},
			pods:    []*corev1.Pod{podOf("a", g2).Succeeded("", now).Obj(), podOf("b", g2).Running(now).Obj()},
			desired: 3, want: poolPlan{generation: 3, parallelism: 2}},
		{name: "finished: next generation", jobs: []*batchv1.Job{finished}, desired: 1, want: poolPlan{generation: 3, parallelism: 1}},
		{name: "outdated template: next generation", jobs: []*batchv1.Job{g2, outdated},
			pods:    []*corev1.Pod{podOf("a", outdated).Running(now).Obj()},
			desired: 3, want: poolPlan{generation: 5, parallelism: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var jobs []batchv1.Job
			for _, j := range tc.jobs {
				jobs = append(jobs, *j)
			}
			var pods []corev1.Pod
			for _, p := range tc.pods {
				pods = append(pods, *p)
			}
			got := planPool(jobs, pods, hash, tc.desired)
			if got.generation != tc.want.generation || got.parallelism != tc.want.parallelism ||
				(got.raise == nil) != (tc.want.raise == nil) || (got.raise != nil && got.raise.Name != tc.want.raise.Name) {
				t.Errorf("planPool = %+v, want %+v", got, tc.want)
			}
		})
	}
}
