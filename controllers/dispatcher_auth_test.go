package controllers

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/seek-api/seek-operator/pkg/dispatch"
)

func TestIdentityFromReview(t *testing.T) {
	podUser := authenticationv1.UserInfo{
		Username: "system:serviceaccount:tenant:seek-pool",
		Extra: map[string]authenticationv1.ExtraValue{
			extraPodName: {"pool-pod"},
			extraPodUID:  {"pod-uid"},
		},
	}
	review := func(authenticated bool, user authenticationv1.UserInfo, audiences ...string) *authenticationv1.TokenReviewStatus {
		return &authenticationv1.TokenReviewStatus{Authenticated: authenticated, User: user, Audiences: audiences}
	}
	noPod := podUser
	noPod.Extra = nil
	user := authenticationv1.UserInfo{Username: "alice"}
	cases := []struct {
		name       string
		status     *authenticationv1.TokenReviewStatus
		want       tokenIdentity
		wantStatus int
		wantReason string
	}{
		{name: "a pod's token", status: review(true, podUser, dispatch.Audience),
			want: tokenIdentity{namespace: "tenant", serviceAccount: "seek-pool", podName: "pool-pod", podUID: "pod-uid"}},
		{name: "not authenticated", status: &authenticationv1.TokenReviewStatus{Error: "token expired"}, wantStatus: http.StatusUnauthorized, wantReason: "InvalidToken"},
		{name: "another audience", status: review(true, podUser, "https://kubernetes.default.svc"), wantStatus: http.StatusUnauthorized, wantReason: "InvalidToken"},
		{name: "not a ServiceAccount", status: review(true, user, dispatch.Audience), wantStatus: http.StatusForbidden, wantReason: "NotAPodToken"},
		{name: "not bound to a pod", status: review(true, noPod, dispatch.Audience), wantStatus: http.StatusForbidden, wantReason: "NotAPodToken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, herr := identityFromReview(tc.status)
			if tc.wantStatus != 0 {
				if herr == nil || herr.status != tc.wantStatus || herr.body.(dispatch.ErrorResponse).Reason != tc.wantReason {
					t.Fatalf("error %v, want %d %s", herr, tc.wantStatus, tc.wantReason)
				}
				return
			}
			if herr != nil {
				t.Fatalf("error %v", herr)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(tokenIdentity{})); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	jwt := func(payload string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	cases := map[string]time.Time{
		jwt(`{"exp":1767225600,"aud":["x"]}`): time.Unix(1767225600, 0),
		jwt(`{"aud":["x"]}`):                  {},
		jwt(`not json`):                       {},
		"opaque-token":                        {},
	}
	for token, want := range cases {
		if got := tokenExpiry(token); !got.Equal(want) {
			t.Errorf("tokenExpiry(%q) = %s, want %s", token, got, want)
		}
	}
}

func TestTokenCache(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(t0)
	c := newTokenCache(clk)
	id := tokenIdentity{namespace: "tenant", podName: "pod", podUID: "uid"}
	short, long := sha256.Sum256([]byte("short")), sha256.Sum256([]byte("long"))
	c.put(short, id, t0.Add(time.Minute)) // the token expires in a minute
	c.put(long, id, t0.Add(time.Hour))    // trusted for 5 minutes at most
	if _, ok := c.get(short); !ok {
		t.Fatalf("a fresh token is not cached")
	}
	clk.SetTime(t0.Add(time.Minute))
	if _, ok := c.get(short); ok {
		t.Errorf("a token is cached past its expiry")
	}
	if got, ok := c.get(long); !ok || got != id {
		t.Errorf("get = %+v, %v; want the identity", got, ok)
	}
	clk.SetTime(t0.Add(tokenCacheTTL))
	if _, ok := c.get(long); ok {
		t.Errorf("a token is cached past %s", tokenCacheTTL)
	}

	// The cache is bounded.
	for i := range tokenCacheSize + 10 {
		c.put(sha256.Sum256([]byte{byte(i), byte(i >> 8)}), id, time.Time{})
	}
	if n := len(c.entries); n > tokenCacheSize {
		t.Errorf("%d tokens cached, want at most %d", n, tokenCacheSize)
	}
}
