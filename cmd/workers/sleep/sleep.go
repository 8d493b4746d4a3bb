package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seek-api/seek-operator/pkg/worker"
)

// maxSeconds is the longest sleep.
const maxSeconds = 3600

// progressStep is how long the worker sleeps between two progress reports.
const progressStep = time.Second

// input is the sleep worker's input.
type input struct {
	// Seconds is how long to sleep, 0 to maxSeconds. Required.
	Seconds *float64 `json:"seconds"`
	// ExitCode, if set and not 0, makes the worker fail with that exit code after sleeping.
	ExitCode *int `json:"exit_code"`
}

// result is the sleep worker's result.
type result struct {
	SleptSeconds float64 `json:"slept_seconds"`
}

// sleeper is the sleep worker.
type sleeper struct {
	// wait waits for d or until ctx is done, whichever is first, returning ctx's error in the latter case.
	wait func(ctx context.Context, d time.Duration) error
}

// handle sleeps for the input's seconds, then succeeds or fails with the input's exit code.
func (s sleeper) handle(ctx context.Context, job *worker.Job) (any, error) {
	var in input
	if err := job.Decode(&in); err != nil {
		return nil, err
	}
	switch {
	case in.Seconds == nil:
		return nil, worker.Permanent(worker.ReasonInvalidInput, errors.New("input.seconds is required: a number from 0 to 3600"))
	case *in.Seconds < 0 || *in.Seconds > maxSeconds:
		return nil, worker.Permanent(worker.ReasonInvalidInput, fmt.Errorf("input.seconds is %v; it must be from 0 to %d", *in.Seconds, maxSeconds))
	case in.ExitCode != nil && (*in.ExitCode < 0 || *in.ExitCode > 255):
		return nil, worker.Permanent(worker.ReasonInvalidInput, fmt.Errorf("input.exit_code is %d; it must be from 0 to 255", *in.ExitCode))
	}
	d := time.Duration(*in.Seconds * float64(time.Second))
	// A second at a time, saying how far it got after each (see worker.Progress).
	for slept := time.Duration(0); slept < d; {
		step := min(progressStep, d-slept)
		if err := s.wait(ctx, step); err != nil {
			return nil, fmt.Errorf("sleep %v: %w", d, err)
		}
		slept += step
		// A report that cannot be written does not fail the job: progress is for people watching.
		_ = worker.Progress(ctx, float64(slept)/float64(d), fmt.Sprintf("slept %s of %s", slept, d))
	}
	if in.ExitCode != nil && *in.ExitCode != 0 {
		return nil, worker.ExitCode(*in.ExitCode, "RequestedExitCode",
			fmt.Errorf("slept %v seconds, then failed with exit code %d as asked", *in.Seconds, *in.ExitCode))
	}
	return result{SleptSeconds: *in.Seconds}, nil
}

// wait waits for d or until ctx is done, whichever is first. It returns ctx's error in the latter case.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
