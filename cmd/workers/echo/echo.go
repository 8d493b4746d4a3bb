package main

import (
	"context"
	"encoding/json"

	"github.com/seek-api/seek-operator/pkg/worker"
)

// result is the echo worker's result.
type result struct {
	// Echo is the input's "message", or the whole input when it has no string "message".
	Echo json.RawMessage `json:"echo"`
	// Job is the job's name, omitted when unknown.
	Job string `json:"job,omitempty"`
}

// echo returns the job's input message, or its input, with the job's name.
func echo(_ context.Context, job *worker.Job) (any, error) {
	r := result{Echo: job.Input, Job: job.Name}
	var in struct {
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(job.Input, &in) == nil && len(in.Message) > 0 && in.Message[0] == '"' {
		r.Echo = in.Message
	}
	return r, nil
}
