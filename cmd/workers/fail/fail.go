package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/seek-api/seek-operator/pkg/worker"
)

// Defaults of the fail worker's input.
const (
	defaultExitCode = 1
	defaultMessage  = "failed as asked"
	defaultReason   = "RequestedFailure"
)

// input is the fail worker's input.
type input struct {
	// ExitCode is the exit code, 1 to 255. Default: defaultExitCode.
	ExitCode *int `json:"exit_code"`
	// Message is the error message. Default: defaultMessage.
	Message *string `json:"message"`
	// Reason is the error reason. Default: defaultReason.
	Reason *string `json:"reason"`
}

// fail returns the error its input describes.
func fail(_ context.Context, job *worker.Job) (any, error) {
	in := input{}
	if err := job.Decode(&in); err != nil {
		return nil, err
	}
	code, message, reason := defaultExitCode, defaultMessage, defaultReason
	if in.ExitCode != nil {
		code = *in.ExitCode
	}
	if code < 1 || code > 255 {
		return nil, worker.Permanent(worker.ReasonInvalidInput, fmt.Errorf("input.exit_code is %d; it must be from 1 to 255", code))
	}
	if in.Message != nil && *in.Message != "" {
		message = *in.Message
	}
	if in.Reason != nil {
		reason = *in.Reason // "" leaves the reason out
	}
	return nil, worker.ExitCode(code, reason, errors.New(message))
}
