package restapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestPage(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	mk := func(name, worker string, age int, state seekv1alpha1.JobState) seekv1alpha1.SeekJob {
		return *testutil.MakeSeekJob(name, "ns").Worker(worker).Created(t0.Add(-time.Duration(age) * time.Second)).State(state).Obj()
	}
	jobs := []seekv1alpha1.SeekJob{
		mk("old", "echo", 50, seekv1alpha1.JobStateCompleted),
		mk("b", "echo", 10, seekv1alpha1.JobStateRunning),
		mk("a", "echo", 10, seekv1alpha1.JobStateQueued), // same second as b: name breaks the tie
		mk("newest", "echo", 0, ""),
		mk("mail", "email", 5, seekv1alpha1.JobStateFailed),
	}
	names := func(page []*seekv1alpha1.SeekJob) []string {
		var out []string
		for _, sj := range page {
			out = append(out, sj.Name)
		}
		return out
	}

	var all []string
	var cursor *Cursor
	for pages := 0; ; pages++ {
		page, next := Page(jobs, "", "", cursor, 2)
		all = append(all, names(page)...)
		if next == nil {
			break
		}
		c, err := ParseCursor(*next)
		if err != nil || pages > 5 {
			t.Fatalf("cursor %q: %v", *next, err)
		}
		cursor = c
	}
	if diff := cmp.Diff([]string{"newest", "mail", "a", "b", "old"}, all); diff != "" {
		t.Errorf("paged order (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		worker, status string
		want           []string
	}{
		{"email", "", []string{"mail"}},
		{"", "queued", []string{"newest", "a"}},
		{"echo", "completed", []string{"old"}},
		{"nope", "", nil},
	} {
		page, next := Page(jobs, tc.worker, tc.status, nil, 10)
		if diff := cmp.Diff(tc.want, names(page)); diff != "" || next != nil {
			t.Errorf("worker %q status %q (-want +got):\n%s next %v", tc.worker, tc.status, diff, next)
		}
	}
}

func TestParseCursor(t *testing.T) {
	for _, bad := range []string{"!!!", "e30", "bm90IGpzb24"} { // not base64; {}; "not json"
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) accepted", bad)
		} else if e, _ := IsAPIError(err); e.Status != http.StatusBadRequest || e.Field != "cursor" {
			t.Errorf("ParseCursor(%q) = %+v, want a 400 naming cursor", bad, e)
		}
	}
	c := Cursor{Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Name: "x"}
	got, err := ParseCursor(c.String())
	if err != nil || !got.Created.Equal(c.Created) || got.Name != "x" {
		t.Errorf("round trip = %+v, %v", got, err)
	}
}
