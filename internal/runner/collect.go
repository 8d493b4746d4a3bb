package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/seek-api/seek-operator/pkg/dispatch"
	"github.com/seek-api/seek-operator/pkg/protocol"
)

// DefaultCollectFor bounds how long the collector tries to upload a large result after the worker
// ended: within the pod's termination grace period (30 s), after which the kubelet kills it.
const DefaultCollectFor = 20 * time.Second

// CollectConfig configures the collector sidecar of a Job mode pod (`seek-runner collect`).
type CollectConfig struct {
	// URL is the dispatch endpoint's base URL. Required.
	URL string
	// TokenPath is the projected token file. Default: dispatch.TokenPath.
	TokenPath string
	// ResultPath is the worker's result file, in a volume the two containers share. Default:
	// protocol.ResultPath.
	ResultPath string
	// ProgressPath is the file the worker may write its progress to, in the same volume. Default:
	// protocol.ProgressPath.
	ProgressPath string
	// Namespace, Name and UID name the job (from $SEEK_JOB_*). Required.
	Namespace, Name, UID string
	// Log receives the collector's log lines. Required.
	Log io.Writer
	// Client makes the HTTP calls. Default: a client of its own that uses no proxy.
	Client *http.Client
	// Clock paces the progress file's polls. Default: the real clock.
	Clock clock.WithTicker
	// CollectFor bounds the upload's retries. Default: DefaultCollectFor.
	CollectFor             time.Duration
	BackoffMin, BackoffMax time.Duration
}

func (cfg CollectConfig) withDefaults() CollectConfig {
	cfg.URL = strings.TrimSuffix(cfg.URL, "/")
	if cfg.TokenPath == "" {
		cfg.TokenPath = dispatch.TokenPath
	}
	if cfg.ResultPath == "" {
		cfg.ResultPath = protocol.ResultPath
	}
	if cfg.ProgressPath == "" {
		cfg.ProgressPath = protocol.ProgressPath
	}
	if cfg.Client == nil {
		cfg.Client = newClient()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.CollectFor <= 0 {
		cfg.CollectFor = DefaultCollectFor
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	return cfg
}

// runner is the collector's client of the dispatch endpoint.
func (cfg CollectConfig) runner(logger *log.Logger) *runner {
	return &runner{cfg: Config{URL: cfg.URL, TokenPath: cfg.TokenPath, Client: cfg.Client,
		BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax}, log: logger}
}

// Collect passes the worker's progress on while it runs, and collects its result once it has ended.
// It waits until ctx ends (the kubelet sends SIGTERM to a sidecar once the pod's worker container has
// exited), meanwhile sending the progress file's changes to the dispatch endpoint for the attempt the
// pod runs, as the runner of a pool pod does (see progressWatch). Then it reads the result file and
// returns the collector's termination message: the file itself when it holds at most
// protocol.MaxMessageBytes, else dispatch.CollectedPrefix and the JSON of dispatch.Collected, after
// uploading a large JSON result to the dispatch endpoint, which stores it in the job's result Secret.
func Collect(ctx context.Context, cfg CollectConfig) string {
	cfg = cfg.withDefaults()
	logger := log.New(cfg.Log, "seek-collector: ", log.LstdFlags|log.LUTC)
	logger.Printf("waiting for the worker to end")
	// Attempt 0: the attempt this pod runs, which only the manager knows.
	ref := dispatch.AttemptRef{Namespace: cfg.Namespace, Name: cfg.Name, UID: cfg.UID}
	w := &progressWatch{clock: cfg.Clock, path: cfg.ProgressPath, send: cfg.runner(logger).progressSender(ref)}
	w.run(ctx)
	<-ctx.Done() // the endpoint may have refused the progress: the result still counts
	return collectNow(cfg, logger)
}

// collectNow is Collect once the worker has ended.
func collectNow(cfg CollectConfig, logger *log.Logger) string {
	collected := func(c dispatch.Collected) string {
		data, _ := json.Marshal(c) // plain fields always encode
		return dispatch.CollectedPrefix + string(data)
	}

	raw, truncated, size, err := readResult(cfg.ResultPath)
	if err != nil {
		logger.Printf("reading the result: %v", err)
		return collected(dispatch.Collected{Error: "reading the result file: " + err.Error()})
	}
	trimmed := bytes.TrimSpace([]byte(raw))
	switch {
	case size == 0:
		return collected(dispatch.Collected{})
	case len(trimmed) <= protocol.MaxMessageBytes && !truncated:
		return string(trimmed)
	case size > protocol.MaxResultBytes:
		logger.Printf("the result file holds %d bytes; at most %d fit", size, protocol.MaxResultBytes)
		return collected(dispatch.Collected{Bytes: size, Error: fmt.Sprintf("the result is %d bytes; at most %d fit", size, protocol.MaxResultBytes)})
	case !json.Valid(trimmed):
		// Not a result: an error text, or a broken result. Its end, as the kubelet keeps it.
		return string(trimmed[len(trimmed)-protocol.MaxMessageBytes:])
	}

	r := cfg.runner(logger)
	upload := dispatch.ResultUpload{Namespace: cfg.Namespace, Name: cfg.Name, UID: cfg.UID, Result: string(trimmed)}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.CollectFor)
	defer cancel()
	b := r.newBackoff()
	for {
		var resp dispatch.ResultResponse
		err := r.call(ctx, dispatch.PathResult, upload, &resp, cfg.CollectFor)
		if err == nil {
			logger.Printf("stored the result of %d bytes in Secret %s", resp.Bytes, resp.SecretName)
			return collected(dispatch.Collected{Bytes: resp.Bytes, SecretName: resp.SecretName, SHA256: resp.SHA256})
		}
		status := statusOf(err)
		retry := status == 0 || status == http.StatusServiceUnavailable || status >= 500 || status == http.StatusTooManyRequests
		if !retry || !sleep(ctx, b.next()) {
			logger.Printf("could not store the result of %d bytes: %v", len(trimmed), err)
			return collected(dispatch.Collected{Bytes: int64(len(trimmed)), Error: "storing the result: " + err.Error()})
		}
		logger.Printf("storing the result: %v; retrying", err)
	}
}
