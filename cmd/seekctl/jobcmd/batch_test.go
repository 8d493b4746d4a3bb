package jobcmd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// outcome summarizes a result line: "index@line status-or-error".
func outcomes(t *testing.T, jsonl string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(jsonl, "\n"), "\n") {
		var r struct {
			Index    int                           `json:"index"`
			Line     int                           `json:"line"`
			Status   string                        `json:"status"`
			Result   json.RawMessage               `json:"response_json"`
			APIError *struct{ Code, Field string } `json:"api_error"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("result line %q: %v", l, err)
		}
		switch {
		case r.APIError != nil:
			out = append(out, fmt.Sprintf("%d@%d %s %s", r.Index, r.Line, r.APIError.Code, r.APIError.Field))
		case r.Status == "completed":
			out = append(out, fmt.Sprintf("%d@%d %s", r.Index, r.Line, r.Result))
		default:
			out = append(out, fmt.Sprintf("%d@%d %s", r.Index, r.Line, r.Status))
		}
	}
	return out
}

func TestBatchWritesResultsInInputOrder(t *testing.T) {
	f, url := newFakeSeek(t)
	f.maxBatch = 3 // the key's burst: chunks of 8 are split until they pass
	// Later inputs finish first.
	f.delay = func(in json.RawMessage) time.Duration {
		var v struct{ N int }
		_ = json.Unmarshal(in, &v)
		return time.Duration(12-v.N) * 5 * time.Millisecond
	}
	var in strings.Builder
	for n := range 10 {
		switch n {
		case 2:
			fmt.Fprintf(&in, "{\"n\":%d,\"fail\":true}\n", n)
		case 4:
			fmt.Fprintf(&in, "{\"n\":%d,\"busy\":true}\n", n) // refused for a moment, then accepted
		case 6:
			fmt.Fprintf(&in, "{\"n\":%d,\"bad\":1}\n\n[1,2]\n", n) // refused; a blank line; not an object
		default:
			fmt.Fprintf(&in, "{\"n\":%d}\n", n)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(path, []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(dir, "out.jsonl")
	_, stderr, err := run(t, url, "", "batch", "echo", "-f", path, "--output-file", results, "--chunk-size", "8", "--concurrency", "4")
	if err != nil {
		t.Fatalf("batch: %v\n%s", err, stderr)
	}
	raw, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`0@1 {"echo":{"n":0}}`, `1@2 {"echo":{"n":1}}`, `2@3 failed`, `3@4 {"echo":{"n":3}}`, `4@5 {"echo":{"busy":true,"n":4}}`,
		`5@6 {"echo":{"n":5}}`, `6@7 invalid_input /bad`, `7@9 invalid_json `, `8@10 {"echo":{"n":7}}`, `9@11 {"echo":{"n":8}}`, `10@12 {"echo":{"n":9}}`,
	}
	if diff := cmp.Diff(want, outcomes(t, string(raw))); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	// 8 is refused, then halved to 4 and 2 until a chunk passes; later chunks keep the smaller size.
	if f.batchSizes[0] != 8 || slices.Max(f.batchSizes[1:]) > 4 || !slices.Contains(f.batchSizes, 1) {
		t.Errorf("batch sizes %v", f.batchSizes)
	}
	if len(f.ids) != 9 {
		t.Errorf("%d jobs created, want 9 (one per valid input, none twice)", len(f.ids))
	}
	if !strings.Contains(stderr, "batch: finished in") || !strings.Contains(stderr, "11/11 done: queued 0, running 0, completed 8, failed 1, refused 2") ||
		!strings.Contains(stderr, "3 of 11 inputs did not complete") {
		t.Errorf("stderr:\n%s", stderr)
	}
}

func TestBatchFromStdinToStdout(t *testing.T) {
	_, url := newFakeSeek(t)
	stdout, stderr, err := run(t, url, "{\"n\":1}\n{\"n\":2}", "batch", "echo", "-f", "-", "--quiet")
	if err != nil {
		t.Fatalf("batch: %v\n%s", err, stderr)
	}
	if diff := cmp.Diff([]string{`0@1 {"echo":{"n":1}}`, `1@2 {"echo":{"n":2}}`}, outcomes(t, stdout)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if stderr != "" {
		t.Errorf("--quiet printed %q", stderr)
	}
}

func TestBatchStopsOnAFatalRefusal(t *testing.T) {
	_, url := newFakeSeek(t)
	root := func(args ...string) error {
		_, _, err := run(t, url, "{}\n", args...)
		return err
	}
	if err := root("batch", "echo", "-f", "-", "--chunk-size", "0"); err == nil || !strings.Contains(err.Error(), "--chunk-size") {
		t.Errorf("--chunk-size 0: %v", err)
	}
	_, _, err := run(t, url, "{}\n", "batch", "echo", "-f", "-", "--api-key", "wrong")
	if err == nil || !strings.Contains(err.Error(), "401 unauthenticated") {
		t.Errorf("a wrong key: %v", err)
	}
}
