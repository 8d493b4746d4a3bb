package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seek-api/seek-operator/pkg/worker"
)

// TestFail runs the worker through the SDK, as the container would.
func TestFail(t *testing.T) {
	for _, tc := range []struct {
		input  string // "": no input file
		code   int
		result string // or its start, for messages from encoding/json
	}{
		{``, 1, `{"message":"failed as asked","reason":"RequestedFailure"}`},
		{`null`, 1, `{"message":"failed as asked","reason":"RequestedFailure"}`},
		{`{}`, 1, `{"message":"failed as asked","reason":"RequestedFailure"}`},
		{`{"exit_code": 65}`, 65, `{"message":"failed as asked","reason":"RequestedFailure"}`},
		{`{"exit_code": 2, "message": "disk full", "reason": "NoSpace"}`, 2, `{"message":"disk full","reason":"NoSpace"}`},
		{`{"exit_code": 255, "message": ""}`, 255, `{"message":"failed as asked","reason":"RequestedFailure"}`},
		{`{"exit_code": 137, "reason": ""}`, 137, `{"message":"failed as asked"}`},
		{`{"message": "<b>&</b>"}`, 1, `{"message":"<b>&</b>","reason":"RequestedFailure"}`},
		{`{"exit_code": 0}`, 65, `{"message":"input.exit_code is 0; it must be from 1 to 255","reason":"InvalidInput"}`},
		{`{"exit_code": 256}`, 65, `{"message":"input.exit_code is 256; it must be from 1 to 255","reason":"InvalidInput"}`},
		{`{"exit_code": "1"}`, 65, `{"message":"invalid input: json: cannot unmarshal string `},
		{`{"code": 1}`, 65, `{"message":"invalid input: json: unknown field \"code\"","reason":"InvalidInput"}`},
		{`[1]`, 65, `{"message":"invalid input: json: cannot unmarshal array `},
	} {
		dir := t.TempDir()
		input, result := filepath.Join(dir, "input.json"), filepath.Join(dir, "result.json")
		if tc.input != "" {
			if err := os.WriteFile(input, []byte(tc.input), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		code := worker.Execute(context.Background(), fail, worker.Options{
			InputPath:  input,
			ResultPath: result,
			Getenv:     func(string) string { return "" },
			Log:        &bytes.Buffer{},
		})
		data, err := os.ReadFile(result)
		if code != tc.code || err != nil || !strings.HasPrefix(string(data), tc.result) || !json.Valid(data) {
			t.Errorf("%s: exit %d, result %s (%v); want exit %d, result %s", tc.input, code, data, err, tc.code, tc.result)
		}
	}
}
