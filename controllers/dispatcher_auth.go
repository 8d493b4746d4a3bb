package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/pkg/dispatch"
)

// Extras the apiserver puts in the user info of a pod-bound ServiceAccount token.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
	saPrefix     = "system:serviceaccount:"
)

const (
	// tokenCacheTTL bounds how long a reviewed token is trusted without asking the apiserver again.
	tokenCacheTTL = 5 * time.Minute
	// tokenCacheSize bounds the reviewed tokens kept: a few per pool pod (the kubelet rotates them).
	tokenCacheSize = 4096
)

// tokenReviewer asks the apiserver who a token belongs to.
type tokenReviewer interface {
	Review(ctx context.Context, token string) (*authenticationv1.TokenReviewStatus, error)
}

// apiTokenReviewer reviews tokens with TokenReviews of the dispatch audience.
type apiTokenReviewer struct{ client client.Client }

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create

func (r apiTokenReviewer) Review(ctx context.Context, token string) (*authenticationv1.TokenReviewStatus, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{dispatch.Audience}}}
	if err := r.client.Create(ctx, tr); err != nil {
		return nil, fmt.Errorf("create TokenReview: %w", err)
	}
	return &tr.Status, nil
}

// tokenIdentity is who a reviewed token stands for: a pod, through its ServiceAccount.
type tokenIdentity struct {
	namespace, serviceAccount, podName string
	podUID                             types.UID
}

// tokenCache remembers reviewed tokens by their SHA-256 until they expire, for at most tokenCacheTTL.
type tokenCache struct {
	mu      sync.Mutex
	clock   clock.PassiveClock
	entries map[[sha256.Size]byte]tokenCacheEntry
}

type tokenCacheEntry struct {
	id      tokenIdentity
	expires time.Time
}

func newTokenCache(c clock.PassiveClock) *tokenCache {
	return &tokenCache{clock: c, entries: map[[sha256.Size]byte]tokenCacheEntry{}}
}

func (c *tokenCache) get(sum [sha256.Size]byte) (tokenIdentity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sum]
	if !ok {
		return tokenIdentity{}, false
	}
	if !c.clock.Now().Before(e.expires) {
		delete(c.entries, sum)
		return tokenIdentity{}, false
	}
	return e.id, true
}

func (c *tokenCache) put(sum [sha256.Size]byte, id tokenIdentity, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if limit := now.Add(tokenCacheTTL); expires.IsZero() || expires.After(limit) {
		expires = limit
	}
	if len(c.entries) >= tokenCacheSize {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries { // still full: forget any (it is reviewed again when used)
			if len(c.entries) < tokenCacheSize {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[sum] = tokenCacheEntry{id: id, expires: expires}
}

// tokenExpiry reads the expiry ("exp") of a JWT the apiserver has just verified; zero if it has none.
func tokenExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}

// identityFromReview checks a TokenReview's answer: an authenticated ServiceAccount token of the
// dispatch audience, bound to a pod.
func identityFromReview(st *authenticationv1.TokenReviewStatus) (tokenIdentity, *httpError) {
	if !st.Authenticated {
		msg := "the token is not valid for the dispatch audience " + dispatch.Audience
		if st.Error != "" {
			msg += ": " + st.Error
		}
		return tokenIdentity{}, errorf(http.StatusUnauthorized, "InvalidToken", "%s", msg)
	}
	if !slices.Contains(st.Audiences, dispatch.Audience) {
		return tokenIdentity{}, errorf(http.StatusUnauthorized, "InvalidToken", "the token is not of the audience %s", dispatch.Audience)
	}
	ns, sa, ok := strings.Cut(strings.TrimPrefix(st.User.Username, saPrefix), ":")
	if !strings.HasPrefix(st.User.Username, saPrefix) || !ok || ns == "" || sa == "" {
		return tokenIdentity{}, errorf(http.StatusForbidden, "NotAPodToken", "the token is not a ServiceAccount's")
	}
	podName, podUID := st.User.Extra[extraPodName], st.User.Extra[extraPodUID]
	if len(podName) != 1 || len(podUID) != 1 {
		return tokenIdentity{}, errorf(http.StatusForbidden, "NotAPodToken", "the token is not bound to a pod")
	}
	return tokenIdentity{namespace: ns, serviceAccount: sa, podName: podName[0], podUID: types.UID(podUID[0])}, nil
}

// caller is an authenticated pool pod, or Job mode pod (its collector sidecar).
type caller struct {
	namespace string
	worker    string
	pod       *corev1.Pod
	// jobPod says the pod is a Job mode job's pod, not a pool pod.
	jobPod bool
}

func (c *caller) podUID() string { return string(c.pod.UID) }

// runs reports whether the caller runs the attempt ref of sj: a pool pod holds it, or a Job mode pod
// runs sj's current attempt (see jobPodRuns).
func (c *caller) runs(sj *seekv1alpha1.SeekJob, ref dispatch.AttemptRef) bool {
	if c.jobPod {
		return jobPodRuns(sj, c.pod, ref)
	}
	return holds(sj, c.podUID(), ref)
}

// jobPodRuns reports whether pod, a Job mode pod, runs the attempt ref of sj: sj runs in Job mode and
// has not ended or been told to stop, pod is a live pod of sj's Job (the Job runs one pod at a time,
// and replaces a failed one only once it has ended), and the attempt is sj's current one. Attempt 0
// stands for the pod's own, which the pod cannot know.
func jobPodRuns(sj *seekv1alpha1.SeekJob, pod *corev1.Pod, ref dispatch.AttemptRef) bool {
	owner := metav1.GetControllerOf(pod)
	return !pooled(sj) && !sj.Status.State.IsTerminal() && sj.DeletionTimestamp == nil && sj.Spec.CancelRequest == nil &&
		string(sj.UID) == ref.UID && sj.Name == ref.Name && sj.Namespace == ref.Namespace &&
		pod.Namespace == sj.Namespace && pod.Labels[seekv1alpha1.LabelJobName] == sj.Name && pod.Labels[seekv1alpha1.LabelJobUID] == string(sj.UID) &&
		owner != nil && owner.Kind == "Job" && owner.Name == jobName(sj) &&
		pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed &&
		(ref.Attempt == 0 || ref.Attempt == sj.Status.Attempts)
}

// callers says which pods may call an endpoint.
type callers int

const (
	// poolPods are the pods of pooled workers' pools.
	poolPods callers = iota
	// jobPods are the pods of Job mode jobs (their collector sidecar).
	jobPods
	// allPods are both.
	allPods
)

// authenticate finds the pod that sent r: its bearer token, reviewed by the apiserver (or found in the
// cache of reviewed tokens), must be bound to a pod that exists with that UID, of a pool or a Job mode
// job as who says. A terminating pod is accepted: it may still heartbeat and report its attempt
// (Interrupted); it is told to exit when it asks for a job.
func (d *Dispatcher) authenticate(ctx context.Context, r *http.Request, who callers) (*caller, *httpError) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, errorf(http.StatusUnauthorized, "Unauthorized", "a bearer token (the pod's projected ServiceAccount token of audience %s) is required", dispatch.Audience)
	}
	sum := sha256.Sum256([]byte(token))
	id, ok := d.tokens.get(sum)
	if !ok {
		st, err := d.Reviewer.Review(ctx, token)
		if err != nil {
			return nil, errorf(http.StatusServiceUnavailable, "TokenReviewFailed", "the token could not be reviewed: %v", err)
		}
		var herr *httpError
		if id, herr = identityFromReview(st); herr != nil {
			return nil, herr
		}
		d.tokens.put(sum, id, tokenExpiry(token))
	}
	pod := &corev1.Pod{}
	key := types.NamespacedName{Namespace: id.namespace, Name: id.podName}
	err := d.Client.Get(ctx, key, pod)
	if apierrors.IsNotFound(err) {
		// Not in the cache yet (it only holds pods with the worker label; a new pod may lag).
		err = d.APIReader.Get(ctx, key, pod)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, errorf(http.StatusForbidden, "PodNotFound", "pod %s does not exist", key)
	case err != nil:
		return nil, errorf(http.StatusServiceUnavailable, "PodUnavailable", "get pod %s: %v", key, err)
	case pod.UID != id.podUID:
		return nil, errorf(http.StatusForbidden, "PodNotFound", "pod %s with UID %s does not exist", key, id.podUID)
	}
	// A Job mode pod: its collector sidecar uploads its job's large result and passes its progress on.
	isJobPod := pod.Labels[seekv1alpha1.LabelPool] == "" && pod.Labels[seekv1alpha1.LabelJobUID] != ""
	switch {
	case isJobPod && who != poolPods:
		return &caller{namespace: pod.Namespace, worker: pod.Labels[seekv1alpha1.LabelWorker], pod: pod, jobPod: true}, nil
	case who == jobPods:
		return nil, errorf(http.StatusForbidden, "NotAJobPod", "pod %s is not the pod of a Job mode job (label %s)", key, seekv1alpha1.LabelJobUID)
	}
	worker := pod.Labels[seekv1alpha1.LabelPool]
	if worker == "" || pod.Labels[seekv1alpha1.LabelWorker] != worker {
		return nil, errorf(http.StatusForbidden, "NotAPoolPod", "pod %s is not a pool pod (labels %s and %s)", key, seekv1alpha1.LabelPool, seekv1alpha1.LabelWorker)
	}
	return &caller{namespace: pod.Namespace, worker: worker, pod: pod}, nil
}
