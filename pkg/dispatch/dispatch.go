// Package dispatch is the wire protocol between the Seek runner, which runs in every pod of a pooled
// worker, and the manager's dispatch endpoint, which hands out jobs. It imports nothing but the
// standard library: the runner has no Kubernetes code. See docs/pooled-execution.md.
//
// Every request carries "Authorization: Bearer <token>", a projected ServiceAccount token of the
// audience Audience read from the file named by EnvTokenPath (re-read for every request: the kubelet
// rotates it). The manager verifies it with a TokenReview and binds it to the pod it was issued for;
// a pod may lease only queued jobs of its own worker and namespace, and report only attempts it holds.
//
// The calls, all JSON over HTTP POST:
//
//	PathLease      LeaseRequest  -> LeaseResponse   (long poll: waits up to LeaseWait for a job)
//	PathHeartbeat  AttemptRef    -> HeartbeatResponse (long poll: answers at once if the attempt must stop)
//	PathReport     Report        -> ReportResponse
//	PathProgress   ProgressRequest -> ProgressResponse (both: a pool pod, or a Job mode pod's collector)
//	PathResult     ResultUpload  -> ResultResponse  (Job mode: the collector sidecar of a job's pod)
//
// Error answers are a non-2xx status with an ErrorResponse body. 401 and 403 mean the token or pod
// is not accepted; 409 on a heartbeat or report means the attempt is no longer this pod's (canceled,
// timed out, or taken away): the runner stops it and drops its outcome. 429 on a progress call means
// the job's last progress is younger than its interval: send the latest again after Retry-After. 503 means the manager is not
// ready (starting, or not the leader): retry with backoff.
//
// A pod that holds an attempt must keep speaking of it: a heartbeat call open (each one sent as the
// last one answers), progress, and in the end its report. An attempt its pod says nothing of for
// SilenceLimit is taken away and leased again (the answer to its lease may never have arrived, or the
// runner hangs); the pod's next heartbeat for it answers stop.
package dispatch

import (
	"encoding/json"
	"time"

	"github.com/seek-api/seek-operator/pkg/protocol"
)

// Audience is the audience of the runner's projected ServiceAccount token. The apiserver accepts only
// tokens of its own audiences, so this token cannot be used against it.
const Audience = "dispatch.seek-api.com"

// Environment of the runner (set on the pool pod's container; not passed on to the worker's process).
const (
	// EnvURL is the base URL of the dispatch endpoint, such as http://10.96.0.20:8090.
	EnvURL = "SEEK_DISPATCH_URL"
	// EnvTokenPath is the path of the projected token file.
	EnvTokenPath = "SEEK_DISPATCH_TOKEN_PATH"
)

// Paths of the pool pod (besides the protocol's input and result paths).
const (
	// TokenDir is where the projected token volume is mounted.
	TokenDir = "/var/run/seek-api.com/dispatch"
	// TokenPath is the token file in TokenDir.
	TokenPath = TokenDir + "/token"
	// BinDir is the volume the init container copies the runner binary into.
	BinDir = "/seek/bin"
	// RunnerPath is the runner binary in BinDir: the pool pod's worker container's entrypoint.
	RunnerPath = BinDir + "/seek-runner"
)

// Endpoint paths.
const (
	PathLease     = "/v1/lease"
	PathHeartbeat = "/v1/heartbeat"
	PathReport    = "/v1/report"
	PathProgress  = "/v1/progress"
	PathResult    = "/v1/result"
)

// Timing of the long polls. A client's HTTP timeout must exceed them.
const (
	// LeaseWait is the longest a lease call waits for a job before answering with none.
	LeaseWait = 20 * time.Second
	// HeartbeatWait is the longest a heartbeat call waits before answering "continue".
	HeartbeatWait = 10 * time.Second
	// SilenceLimit is how long the pod holding an attempt may say nothing of it before the manager
	// takes it away: well over a heartbeat call's wait, a client's slack over it, and a retry.
	SilenceLimit = time.Minute
	// ProgressInterval is the shortest time between two progress writes of one job: a worker that
	// reports progress in a loop costs the apiserver one write of its job per interval at most.
	ProgressInterval = 5 * time.Second
)

// LeaseRequest asks for the next job of the pod's worker and namespace.
type LeaseRequest struct {
	// IdleSeconds is how long the runner has been without a job: the manager tells it to exit once it
	// has been idle for the worker's pool idleTimeout and the pool may shrink.
	IdleSeconds float64 `json:"idleSeconds"`
}

// LeaseResponse carries a job, or tells the runner to exit, or neither (ask again).
type LeaseResponse struct {
	// Job is the leased job, nil if none is waiting.
	Job *Job `json:"job,omitempty"`
	// Exit tells the runner to exit 0: it has been idle long enough, or its pod template is outdated.
	Exit bool `json:"exit,omitempty"`
}

// AttemptRef names one attempt of one job.
type AttemptRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// Attempt is the attempt's number, from 1.
	Attempt int32 `json:"attempt"`
}

// Job is a leased attempt: what the runner needs to run it.
type Job struct {
	AttemptRef
	// Worker is the SeekWorker's name.
	Worker string `json:"worker"`
	// Input is the job's input, JSON ("null" when it has none), written to the protocol's input file.
	Input json.RawMessage `json:"input"`
	// TimeoutMillis is how long this attempt may run: what is left of the job's timeout, which counts
	// from the first attempt's start.
	TimeoutMillis int64 `json:"timeoutMillis"`
	// GraceMillis is how long the worker has after SIGTERM (timeout, cancel) before SIGKILL.
	GraceMillis int64 `json:"graceMillis"`
	// LogBytes is how much of the end of the attempt's output the report's LogTail carries when it is
	// more than LogTailBytes (the worker keeps that much with the job; at most MaxLogTailBytes).
	LogBytes int32 `json:"logBytes,omitempty"`
}

// HeartbeatResponse says whether the attempt goes on.
type HeartbeatResponse struct {
	// Stop tells the runner to stop the attempt (SIGTERM, then SIGKILL after the grace period) and
	// drop its outcome; Reason says why (Canceled, DeadlineExceeded, ...).
	Stop   bool   `json:"stop,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Report is the outcome of an attempt, as the runner saw it.
type Report struct {
	AttemptRef
	// ExitCode is the worker process's exit code; -1 when it was killed by a signal.
	ExitCode int32 `json:"exitCode"`
	// Signal names the signal that killed the process, if one did (SIGKILL, ...).
	Signal string `json:"signal,omitempty"`
	// Result is what the worker wrote to the result file (at most MaxReportBytes; see ResultTruncated).
	Result string `json:"result,omitempty"`
	// ResultTruncated is true when the file held more than MaxReportBytes: only its first bytes are in
	// Result.
	ResultTruncated bool `json:"resultTruncated,omitempty"`
	// ResultBytes is the result file's size when ResultTruncated is set, so the job's error can name it.
	ResultBytes int64 `json:"resultBytes,omitempty"`
	// LogTail is the end of the process's combined stdout and stderr, whole lines as the pod log shows
	// them (without the runner's escape): at most the larger of LogTailBytes and the lease's LogBytes.
	LogTail string `json:"logTail,omitempty"`
	// OutputBytes is the size of the process's whole output, of which LogTail is the end.
	OutputBytes int64 `json:"outputBytes,omitempty"`
	// OOMKilled is true when the kernel killed the process for exceeding the container's memory limit.
	OOMKilled bool `json:"oomKilled,omitempty"`
	// TimedOut is true when the runner stopped the process because the attempt's timeout passed.
	TimedOut bool `json:"timedOut,omitempty"`
	// Interrupted is true when the runner stopped the process because its pod is shutting down (a
	// deletion, a drain, an eviction): the attempt does not count against the job's retries.
	Interrupted bool `json:"interrupted,omitempty"`
	// StartError is set when the worker's command could not be started at all (not found, not
	// executable); ExitCode is then 127.
	StartError string `json:"startError,omitempty"`
	// Stopped is true when the manager stopped the attempt (a cancel, the job's end): its outcome does
	// not count, and the report carries only the output (LogTail, OutputBytes), which the manager keeps
	// with the job that ended.
	Stopped bool `json:"stopped,omitempty"`
}

// ReportResponse acknowledges a report.
type ReportResponse struct {
	// Accepted is false when the attempt was no longer the pod's (canceled, timed out): the outcome
	// was dropped.
	Accepted bool `json:"accepted"`
}

// ResultUpload is a large result (more than protocol.MaxMessageBytes, at most protocol.MaxResultBytes,
// JSON) that the collector sidecar of a Job mode pod sends for its job: the kubelet's termination
// message cannot carry it. The manager stores it in the job's result Secret. Only the current pod of
// the job (labels seek-api.com/job-name and seek-api.com/job-uid, controlled by the job's Job) may.
type ResultUpload struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	// Result is the result file's content.
	Result string `json:"result"`
}

// ResultResponse names the Secret holding an uploaded result.
type ResultResponse struct {
	SecretName string `json:"secretName"`
	Bytes      int64  `json:"bytes"`
	SHA256     string `json:"sha256"`
}

// The collector sidecar of a Job mode pod (`seek-runner collect`) ends with a termination message that
// is either the result file itself, when it holds at most protocol.MaxMessageBytes, or CollectedPrefix
// followed by the JSON of Collected: for an empty or missing file, a large result it stored, or one it
// could not. A result's JSON never starts with '#'.
const (
	// CollectorContainer is the name of the collector sidecar (a restartable init container).
	CollectorContainer = "seek-collector"
	// CollectedPrefix starts a collector's termination message that is not the result file itself.
	CollectedPrefix = "#seek-collected "
)

// Collected is what the collector did with a result file it did not pass on verbatim.
type Collected struct {
	// Bytes is the file's size (0: empty or missing).
	Bytes int64 `json:"bytes"`
	// SecretName and SHA256 name the stored result, when it was stored.
	SecretName string `json:"secretName,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	// Error says why a result over protocol.MaxMessageBytes was not stored (too large, not JSON, the
	// upload failed).
	Error string `json:"error,omitempty"`
}

// ErrorResponse is the body of a non-2xx answer.
type ErrorResponse struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

const (
	// MaxReportBytes bounds Report.Result: one byte more than the protocol's result limit (1 MiB), so
	// an oversized result is recognised as such. A result over protocol.MaxMessageBytes is stored by
	// the manager in a Secret.
	MaxReportBytes = protocol.MaxResultBytes + 1
	// LogTailBytes is the least a report's LogTail carries (the end of a failed worker's output stands
	// in for the error message it did not write).
	LogTailBytes = 4096
	// MaxLogTailBytes bounds Report.LogTail and Job.LogBytes: seekv1alpha1.MaxRetainedLogBytes.
	MaxLogTailBytes = 256 << 10
	// MaxRequestBytes bounds a request body other than a report's.
	MaxRequestBytes = 64 * 1024
	// MaxReportRequestBytes bounds a report's body: a JSON string escapes a byte into at most six
	// (\u0000), so the result and the log tail fit whatever they hold, with room for the other fields.
	MaxReportRequestBytes = 6*(MaxReportBytes+MaxLogTailBytes) + MaxRequestBytes
)

// ProgressRequest is the worker's latest progress report for the attempt it runs. The collector of a
// Job mode pod sends attempt 0, the attempt its pod runs (which it cannot know), and only its own
// job's (403 otherwise); 409 means its pod no longer runs the job's current attempt.
type ProgressRequest struct {
	AttemptRef
	// Fraction is the share of the work done, from 0 to 1.
	Fraction float64 `json:"fraction"`
	// Message is at most protocol.MaxProgressMessageBytes.
	Message string `json:"message,omitempty"`
}

// ProgressResponse acknowledges a progress report. Written is false when the report said nothing new
// (same fraction and message as the status shows): nothing was written.
type ProgressResponse struct {
	Written bool `json:"written"`
}
