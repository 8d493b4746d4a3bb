package jobview

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	seekv1alpha1 "github.com/seek-api/seek-operator/api/v1alpha1"
	"github.com/seek-api/seek-operator/internal/testutil"
)

func TestToResponse(t *testing.T) {
	created := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	startedAt, doneAt := created.Add(time.Second), created.Add(3*time.Second)
	base := testutil.MakeSeekJob("abc", "ns").Worker("echo").Created(created)
	cases := []struct {
		name string
		sj   *seekv1alpha1.SeekJob
		want string
	}{
		{
			name: "new",
			sj:   base.Obj(),
			want: `{"job_uuid":"job_abc","worker":"echo","status":"queued","status_reason":null,"status_message":null,"response_json":null,"error":null,
				"created_at":"2026-11-29T10:00:00Z","started_at":null,"completed_at":null,"attempts":0,"callback":null,"progress":null}`,
		},
		{
			name: "callback, no event yet",
			sj:   base.Clone().Callback("https://app.example/hook").Obj(),
			want: `{"job_uuid":"job_abc","worker":"echo","status":"queued","status_reason":null,"status_message":null,"response_json":null,"error":null,
				"created_at":"2026-11-29T10:00:00Z","started_at":null,"completed_at":null,"attempts":0,
				"callback":{"url":"https://app.example/hook","state":"waiting","attempts":0,"last_status_code":null,"last_error":null,"next_attempt_at":null,"delivered_at":null},"progress":null}`,
		},
		{
			name: "callback retrying: the terminal event's delivery is shown",
			sj: func() *seekv1alpha1.SeekJob {
				sj := base.Clone().Callback("https://app.example/hook").State(seekv1alpha1.JobStateCompleted).Obj()
				next := metav1.NewTime(doneAt.Add(5 * time.Second))
				sj.Status.Callback = &seekv1alpha1.CallbackStatus{State: seekv1alpha1.CallbackPending, Deliveries: []seekv1alpha1.CallbackDelivery{
					{Event: seekv1alpha1.CallbackEventStarted, State: seekv1alpha1.CallbackDelivered, Attempts: 1},
					{Event: seekv1alpha1.CallbackEventFinished, State: seekv1alpha1.CallbackPending, Attempts: 2, LastStatusCode: 503, LastError: "HTTP 503: busy", NextAttemptTime: &next},
				}}
				return sj
			}(),
			want: `{"job_uuid":"job_abc","worker":"echo","status":"completed","status_reason":null,"status_message":null,"response_json":null,"error":null,
				"created_at":"2026-11-29T10:00:00Z","started_at":null,"completed_at":null,"attempts":0,
				"callback":{"url":"https://app.example/hook","state":"pending","attempts":2,"last_status_code":503,"last_error":"HTTP 503: busy",
					"next_attempt_at":"2026-11-29T10:00:08Z","delivered_at":null},"progress":null}`,
		},
		{
			name: "queued, its pod cannot start: the reason is shown",
			sj: base.Clone().State(seekv1alpha1.JobStateQueued).Attempts(1).Condition(metav1.Condition{
				Type: seekv1alpha1.JobStarted, Status: metav1.ConditionFalse, Reason: "ImagePullBackOff", Message: `Back-off pulling image "example.com/nope:v1"`,
			}).Obj(),
			want: `{"job_uuid":"job_abc","worker":"echo","status":"queued","status_reason":"ImagePullBackOff",
				"status_message":"Back-off pulling image \"example.com/nope:v1\"","response_json":null,"error":null,
				"created_at":"2026-11-29T10:00:00Z","started_at":null,"completed_at":null,"attempts":1,"callback":null,"progress":null}`,
		},
		{
			name: "running: no reason",
			sj: base.Clone().State(seekv1alpha1.JobStateRunning).Attempts(1).StartTime(startedAt).Condition(metav1.Condition{
				Type: seekv1alpha1.JobStarted, Status: metav1.ConditionTrue, Reason: "WorkerStarted", Message: "The worker container started",
			}).Obj(),
			want: `{"job_uuid":"job_abc","worker":"echo","status":"running","status_reason":null,"status_message":null,"response_json":null,"error":null,
				"created_at":"2026-11-29T10:00:00Z","started_at":"2026-11-29T10:00:01Z","completed_at":null,"attempts":1,"callback":null,"progress":null}`,
		},
		{
			name: "running with progress",
			sj: func() *seekv1alpha1.SeekJob {
				sj := base.Clone().State(seekv1alpha1.JobStateRunning).Attempts(1).StartTime(startedAt).Obj()
				sj.Status.Progress = &seekv1alpha1.JobProgress{Fraction: "0.425", Message: "page 3 of 12", Attempt: 1, UpdateTime: metav1.NewTime(doneAt)}
				return sj
			}(),
			want: `{"job_uuid":"job_abc","worker":"echo","status":"running","status_reason":null,"status_message":null,"response_json":null,"error":null,
				"created_at":"2026-11-29T10:00:00Z","started_at":"2026-11-29T10:00:01Z","completed_at":null,"attempts":1,"callback":null,
				"progress":{"fraction":0.425,"message":"page 3 of 12","updated_at":"2026-11-29T10:00:03Z"}}`,
		},
		{
			name: "completed",
			sj: base.Clone().State(seekv1alpha1.JobStateCompleted).Attempts(1).StartTime(startedAt).CompletionTime(doneAt).
				Result(`{"valid":true,"score":0.97}`).Obj(),
			want: `{"job_uuid":"job_abc","worker":"echo","status":"completed","status_reason":null,"status_message":null,"response_json":{"valid":true,"score":0.97},"error":null,
				"created_at":"2026-11-29T10:00:00Z","started_at":"2026-11-29T10:00:01Z","completed_at":"2026-11-29T10:00:03Z","attempts":1,"callback":null,"progress":null}`,
		},
		{
			name: "timed out",
			sj: func() *seekv1alpha1.SeekJob {
				sj := base.Clone().State(seekv1alpha1.JobStateTimedOut).Attempts(1).StartTime(startedAt).CompletionTime(doneAt).Obj()
				sj.Status.Error = &seekv1alpha1.JobError{Reason: "DeadlineExceeded", Message: "too slow", ExitCode: ptr.To[int32](137),
					Details: seekv1alpha1.NewJSON([]byte(`{"message":"too slow"}`))}
				return sj
			}(),
			want: `{"job_uuid":"job_abc","worker":"echo","status":"timed_out","status_reason":null,"status_message":null,"response_json":null,
				"error":{"reason":"DeadlineExceeded","message":"too slow","exit_code":137,"details":{"message":"too slow"}},
				"created_at":"2026-11-29T10:00:00Z","started_at":"2026-11-29T10:00:01Z","completed_at":"2026-11-29T10:00:03Z","attempts":1,"callback":null,"progress":null}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(ToResponse(tc.sj))
			if err != nil {
				t.Fatal(err)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &wantV); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantV, gotV); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLargeResult: a result stored in a Secret is omitted (with its size) until SetLargeResult puts it
// in, as GET of the job does; webhook payloads and lists keep it omitted.
func TestLargeResult(t *testing.T) {
	sj := testutil.MakeSeekJob("abc", "ns").Worker("echo").Created(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)).Obj()
	sj.Status.State = seekv1alpha1.JobStateCompleted
	sj.Status.ResultRef = &seekv1alpha1.ResultRef{SecretName: "abc-result", Bytes: 5000, SHA256: "00"}
	r := ToResponse(sj)
	if string(r.ResponseJSON) != "null" || !r.ResponseOmitted || r.ResponseBytes != 5000 {
		t.Errorf("omitted: response_json %s, response_omitted %v, response_bytes %d; want null, true, 5000", r.ResponseJSON, r.ResponseOmitted, r.ResponseBytes)
	}
	r.SetLargeResult([]byte(`{"big":true}`))
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"big": true}, got["response_json"]); diff != "" || got["response_omitted"] != nil || got["response_bytes"] != float64(5000) {
		t.Errorf("inline: %s", data)
	}
}
