package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seek-api/seek-operator/pkg/protocol"
	"github.com/seek-api/seek-operator/pkg/worker"
)

func TestEcho(t *testing.T) {
	for _, tc := range []struct {
		input string
		job   string
		want  string
	}{
		{`{"message": "hello"}`, "job-1", `{"echo":"hello","job":"job-1"}`},
		{`{"message": "<&>"}`, "job-1", `{"echo":"<&>","job":"job-1"}`},
		{`{"message": "hello", "lang": "en"}`, "job-1", `{"echo":"hello","job":"job-1"}`},
		{`{"message": 42}`, "job-1", `{"echo":{"message":42},"job":"job-1"}`},
		{`{"text": "hi"}`, "", `{"echo":{"text":"hi"}}`},
		{`[1, "two"]`, "j", `{"echo":[1,"two"],"job":"j"}`},
		{`"just a string"`, "j", `{"echo":"just a string","job":"j"}`},
		{`null`, "j", `{"echo":null,"job":"j"}`},
		{`{"message": "ab", "repeat": 3}`, "j", `{"echo":"ababab","job":"j"}`},
		{`{"message": 1, "repeat": 3}`, "j", `{"echo":{"message":1,"repeat":3},"job":"j"}`},
	} {
		r, err := echo(context.Background(), &worker.Job{Name: tc.job, Input: json.RawMessage(tc.input)})
		if err != nil {
			t.Errorf("echo(%s): %v", tc.input, err)
			continue
		}
		var got strings.Builder
		enc := json.NewEncoder(&got)
		enc.SetEscapeHTML(false) // as the SDK writes results
		if err := enc.Encode(r); err != nil || strings.TrimSpace(got.String()) != tc.want {
			t.Errorf("echo(%s) = %s (%v), want %s", tc.input, got.String(), err, tc.want)
		}
	}
}

// TestEchoExecute runs the worker as the container would, through the SDK.
func TestEchoExecute(t *testing.T) {
	for _, tc := range []struct {
		name   string
		input  string
		code   int
		result string
	}{
		{"message", `{"message": "hello"}`, 0, `{"echo":"hello","job":"job-1"}`},
		{"512 KiB", `{"message": "x", "repeat": 524288}`, 0, `{"echo":"` + strings.Repeat("x", 524288) + `","job":"job-1"}`},
		{"too large", `{"message": "xx", "repeat": 524288}`, protocol.ExitCodeNoRetry, `"reason":"ResultTooLarge"`},
		{"repeat out of range", `{"message": "x", "repeat": 0}`, protocol.ExitCodeNoRetry, `"reason":"InvalidRepeat"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{
				protocol.EnvInputPath:  filepath.Join(dir, "input.json"),
				protocol.EnvResultPath: filepath.Join(dir, "result.json"),
				protocol.EnvJobName:    "job-1",
			}
			if err := os.WriteFile(env[protocol.EnvInputPath], []byte(tc.input), 0o600); err != nil {
				t.Fatal(err)
			}
			code := worker.Execute(context.Background(), echo, worker.Options{
				Getenv: func(k string) string { return env[k] },
				Log:    &bytes.Buffer{},
			})
			data, err := os.ReadFile(env[protocol.EnvResultPath])
			if code != tc.code || err != nil || !strings.Contains(string(data), tc.result) {
				t.Errorf("exit %d, result %s (%v); want exit %d, result with %s", code, data, err, tc.code, tc.result)
			}
		})
	}
}
