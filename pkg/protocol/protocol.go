// Package protocol defines worker protocol v1: how a Seek worker container receives its input and
// returns its result. It is shared by the controller, which builds the pods, and by the worker SDK,
// which runs inside them. It imports nothing but the standard library. See docs/worker-protocol.md.
package protocol

// Version is the protocol version announced to workers in EnvProtocol.
const Version = "v1"

// Environment variables set in every worker container.
const (
	// EnvProtocol holds the protocol version ("v1").
	EnvProtocol = "SEEK_PROTOCOL"
	// EnvJobName holds the SeekJob's name (its job id within the namespace).
	EnvJobName = "SEEK_JOB_NAME"
	// EnvJobNamespace holds the SeekJob's namespace.
	EnvJobNamespace = "SEEK_JOB_NAMESPACE"
	// EnvJobUID holds the SeekJob's UID.
	EnvJobUID = "SEEK_JOB_UID"
	// EnvWorker holds the SeekWorker's name.
	EnvWorker = "SEEK_WORKER"
	// EnvInputPath holds the path of the input file.
	EnvInputPath = "SEEK_INPUT_PATH"
	// EnvResultPath holds the path the worker writes its result or error to.
	EnvResultPath = "SEEK_RESULT_PATH"
	// EnvProgressPath holds the path the worker may write its progress to (Progress). It is set only
	// where something reads the file: in Pooled mode by the Seek runner, in Job mode when the pod has
	// the collector sidecar (the manager runs the dispatch endpoint).
	EnvProgressPath = "SEEK_PROGRESS_PATH"
)

// Paths inside the worker container.
const (
	// InputDir is the read-only directory holding the input file.
	InputDir = "/seek/input"
	// InputFile is the name of the input file in InputDir.
	InputFile = "input.json"
	// InputPath is the full path of the input file: the job input as JSON text.
	InputPath = InputDir + "/" + InputFile
	// ResultPath is where the worker writes its result (exit 0) or error (non-zero exit) as JSON.
	// It is the container's termination message path; see MaxMessageBytes and MaxResultBytes.
	ResultPath = "/seek/result.json"
	// TmpDir is a writable scratch directory; the root filesystem is read-only.
	TmpDir = "/tmp"
	// ProgressPath is where a job's progress is read from: by the Seek runner (Pooled mode), or by the
	// collector sidecar, which shares /seek with the worker (Job mode).
	ProgressPath = "/seek/progress.json"
)

const (
	// MaxMessageBytes is the largest error the kubelet keeps (its termination message limit), and the
	// largest result kept inline in the SeekJob's status. A larger result is stored in a Secret.
	MaxMessageBytes = 4096
	// MaxResultBytes is the largest result a worker may return (1 MiB). In Job mode a result over
	// MaxMessageBytes needs the manager's dispatch endpoint (its collector sidecar carries it).
	MaxResultBytes = 1 << 20

	// ExitCodeNoRetry tells the controller the failure is permanent (for example the input is wrong):
	// the job fails at once, whatever retries the worker allows. 65 is EX_DATAERR from sysexits.h.
	ExitCodeNoRetry = 65

	// ContainerName is the name of the worker container in the pod.
	ContainerName = "worker"
)

// Error is the JSON a failing worker writes to ResultPath before exiting non-zero.
type Error struct {
	// Message explains the failure to the job's owner.
	Message string `json:"message"`
	// Reason is an optional CamelCase cause, such as "InvalidEmail".
	Reason string `json:"reason,omitempty"`
}

// Progress is what a worker writes to $SEEK_PROGRESS_PATH, replacing the file (write a temporary file
// in the same directory and rename it over), as often as it likes: the runner (Pooled mode) or the
// collector sidecar (Job mode) reads the file about twice a second and passes the latest content on,
// at most once every few seconds.
type Progress struct {
	// Fraction is the share of the work done, from 0 to 1; it is kept to three decimals.
	Fraction float64 `json:"fraction"`
	// Message says, for people, what the worker is doing; at most MaxProgressMessageBytes are kept.
	Message string `json:"message,omitempty"`
}

const (
	// MaxProgressBytes bounds the progress file: a larger one is ignored.
	MaxProgressBytes = 1024
	// MaxProgressMessageBytes bounds the kept part of Progress.Message.
	MaxProgressMessageBytes = 256
)
