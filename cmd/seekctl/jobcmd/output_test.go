package jobcmd

import (
	"testing"

	"github.com/seek-api/seek-operator/pkg/client"
)

func TestStatusText(t *testing.T) {
	wait := int64(90)
	cases := map[string]struct {
		job  client.Job
		want string
	}{
		"queued in a queue": {job: client.Job{Status: client.StatusQueued, StatusReason: "WaitingForCapacity", Queue: &client.Queue{Position: 3, EstimatedWaitSeconds: &wait}},
			want: "queued (WaitingForCapacity, #3, ~1m30s)"},
		"queued, no estimate":      {job: client.Job{Status: client.StatusQueued, Queue: &client.Queue{Position: 1}}, want: "queued (#1)"},
		"running with progress":    {job: client.Job{Status: client.StatusRunning, Progress: &client.Progress{Fraction: 0.425}}, want: "running (43%)"},
		"completed, progress kept": {job: client.Job{Status: client.StatusCompleted, Progress: &client.Progress{Fraction: 0.5}}, want: "completed"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := statusText(&tc.job); got != tc.want {
				t.Errorf("statusText = %q, want %q", got, tc.want)
			}
		})
	}
}
