package restapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/jobview"
)

// Cursor is a position in the newest-first order: the last job of the previous page.
type Cursor struct {
	Created time.Time `json:"c"`
	Name    string    `json:"n"`
}

// ParseCursor decodes an opaque cursor; empty means the first page.
func ParseCursor(s string) (*Cursor, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	c := &Cursor{}
	if err != nil || json.Unmarshal(raw, c) != nil || c.Name == "" {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: "cursor", Message: "cursor is not one this API returned"}
	}
	return c, nil
}

func (c Cursor) String() string {
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// newerFirst orders jobs newest first, by name among equals: a total order, so pages never overlap.
func newerFirst(a, b *seekv1alpha1.SeekJob) int {
	if c := b.CreationTimestamp.Compare(a.CreationTimestamp.Time); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// Page filters jobs by worker and status (empty matches all), orders them newest first and returns the
// page after the cursor, with the cursor of the next page (nil on the last page).
func Page(jobs []seekv1alpha1.SeekJob, worker, status string, after *Cursor, limit int) ([]*seekv1alpha1.SeekJob, *string) {
	var matched []*seekv1alpha1.SeekJob
	for i := range jobs {
		sj := &jobs[i]
		if (worker == "" || string(sj.Spec.WorkerName) == worker) && (status == "" || jobview.Status(sj.Status.State) == status) {
			matched = append(matched, sj)
		}
	}
	slices.SortFunc(matched, newerFirst)
	if after != nil {
		pos := &seekv1alpha1.SeekJob{}
		pos.Name, pos.CreationTimestamp.Time = after.Name, after.Created
		i, _ := slices.BinarySearchFunc(matched, pos, newerFirst)
		for i < len(matched) && newerFirst(matched[i], pos) <= 0 {
			i++
		}
		matched = matched[i:]
	}
	if len(matched) <= limit {
		return matched, nil
	}
	last := matched[limit-1]
	next := Cursor{Created: last.CreationTimestamp.Time, Name: last.Name}.String()
	return matched[:limit], &next
}
