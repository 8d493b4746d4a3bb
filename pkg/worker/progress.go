package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/seek-api/seek-operator/pkg/protocol"
)

// progressPathKey is the context key of the progress file's path.
type progressPathKey struct{}

// Progress reports how far the job has come: fraction is the share done, from 0 to 1 (clamped), and
// message a short text for people, such as "page 3 of 12" (cut to 256 bytes). Call it as often as
// you like with the handler's context: each call replaces the previous report, and Seek passes the
// latest on at most once every few seconds. The job's REST answer and its SeekJob status show it.
//
// Progress reaches Seek where something passes it on and sets $SEEK_PROGRESS_PATH: the Seek runner
// (Pooled mode) or the collector sidecar (Job mode, when the manager runs the dispatch endpoint);
// elsewhere it does nothing and returns nil. It returns an error only when the report cannot be written.
func Progress(ctx context.Context, fraction float64, message string) error {
	path, _ := ctx.Value(progressPathKey{}).(string)
	if path == "" {
		return nil
	}
	if math.IsNaN(fraction) {
		fraction = 0
	}
	p := protocol.Progress{Fraction: min(max(fraction, 0), 1), Message: cut(message, protocol.MaxProgressMessageBytes)}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode progress: %w", err)
	}
	// Replaced whole by a rename: the runner never reads half a report.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".progress-*")
	if err != nil {
		return fmt.Errorf("write progress: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write progress: %w", err)
	}
	return nil
}

// withProgress makes Progress with ctx write to path ("" disables it).
func withProgress(ctx context.Context, path string) context.Context {
	return context.WithValue(ctx, progressPathKey{}, path)
}

// cut returns s shortened to at most n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
