package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/seek-api/seek-operator/pkg/worker"
)

// result is the echo worker's result.
type result struct {
	// Echo is the input's "message", or the whole input when it has no string "message".
	Echo json.RawMessage `json:"echo"`
	// Job is the job's name, omitted when unknown.
	Job string `json:"job,omitempty"`
}

// maxRepeat bounds the input's "repeat".
const maxRepeat = 1 << 21

// echo returns the job's input message, or its input, with the job's name. A string "message" with
// a "repeat" count n (1 to 2097152) is returned n times over, as one string: a way to make large
// results (up to 1 MiB is returned; a larger one fails with ResultTooLarge).
func echo(_ context.Context, job *worker.Job) (any, error) {
	r := result{Echo: job.Input, Job: job.Name}
	var in struct {
		Message json.RawMessage `json:"message"`
		Repeat  *int            `json:"repeat"`
	}
	if !decodes(job.Input, &in) || len(in.Message) == 0 || in.Message[0] != '"' {
		return r, nil // not an object with a string message: the whole input is echoed
	}
	r.Echo = in.Message
	if in.Repeat == nil {
		return r, nil
	}
	if *in.Repeat < 1 || *in.Repeat > maxRepeat {
		return nil, worker.Permanent("InvalidRepeat", fmt.Errorf("repeat must be between 1 and %d", maxRepeat))
	}
	var msg string
	if err := json.Unmarshal(in.Message, &msg); err != nil {
		return nil, worker.Permanent("InvalidMessage", err)
	}
	if int64(len(msg))*int64(*in.Repeat) > 4*maxRepeat {
		return nil, worker.Permanent("InvalidRepeat", fmt.Errorf("message times repeat must be at most %d bytes", 4*maxRepeat))
	}
	long, err := json.Marshal(strings.Repeat(msg, *in.Repeat))
	if err != nil {
		return nil, worker.Permanent("InvalidMessage", err)
	}
	r.Echo = long
	return r, nil
}

// decodes reports whether input decodes into v.
func decodes(input json.RawMessage, v any) bool {
	return json.Unmarshal(input, v) == nil
}
