package jobcmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/seek-api/seek-operator/pkg/client"
)

// ResultLine is one line of seekctl batch's output: the job of one input, or why there is none.
type ResultLine struct {
	// Index is the input's position among the inputs, from 0.
	Index int `json:"index"`
	// Line is the input's line number in the input file, from 1.
	Line int `json:"line"`
	// Job is the finished job (its fields are inlined); nil when APIError is set.
	*client.Job
	// APIError is why the input has no job: refused at submission (invalid input, ...), not a JSON
	// object (code invalid_json), or its job could not be read.
	APIError *client.APIError `json:"api_error,omitempty"`
}

// input is one input line.
type input struct {
	index, line int
	raw         json.RawMessage
}

// pendingJob is a submitted input's job, to be awaited.
type pendingJob struct {
	input
	id string
}

// batchRun submits a stream of inputs and collects their results in order. Its pipeline: one
// goroutine reads and submits chunks; waiters await the submitted jobs, oldest first; the caller's
// goroutine writes the results in input order. A window of maxPending slots, each taken by an input
// when it is read and given back when its result line is written, bounds how far submission runs
// ahead of the output (and so memory, and the tenant's unfinished jobs).
type batchRun struct {
	c           *client.Client
	worker      string
	opts        client.BatchOptions
	runID       string
	chunkSize   int
	concurrency int
	sampleEvery time.Duration
	window      chan struct{}
	tally       *tally
	// retryBackoff is the first wait before inputs refused for a moment are submitted again.
	retryBackoff time.Duration
}

func newBatchRun(c *client.Client, worker string, fl *batchFlags) (*batchRun, error) {
	runID, err := newRunID()
	if err != nil {
		return nil, err
	}
	return &batchRun{c: c, worker: worker, opts: client.BatchOptions{Timeout: fl.jobTimeout}, runID: runID,
		chunkSize: fl.chunkSize, concurrency: fl.concurrency, sampleEvery: fl.sampleIn,
		window: make(chan struct{}, fl.maxPending), tally: newTally(), retryBackoff: time.Second}, nil
}

// run reads inputs from r, writes result lines to w and reports progress; it returns the final
// counts. An error (unreadable input, a refusal of every request such as an unknown worker or a bad
// key, ctx done) stops it; the lines written until then stand.
func (b *batchRun) run(ctx context.Context, r io.Reader, w io.Writer, rep reporter) (counts, error) {
	results := make(chan ResultLine, cap(b.window))
	toWait := make(chan pendingJob, cap(b.window))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	var producers sync.WaitGroup
	producers.Add(1 + b.concurrency)
	go func() { producers.Wait(); close(results) }()
	g.Go(func() error {
		defer producers.Done()
		defer close(toWait)
		return b.submitAll(gctx, r, toWait, results)
	})
	for range b.concurrency {
		g.Go(func() error {
			defer producers.Done()
			return b.awaitAll(gctx, toWait, results)
		})
	}
	stopSampler := b.sample(gctx)
	stopReporter := reportEvery(b.tally, rep)
	werr := b.writeInOrder(results, w, cancel)
	stopSampler()
	err := g.Wait()
	final := stopReporter()
	if werr != nil {
		return final, werr
	}
	return final, err
}

// submitAll reads the inputs and submits them in chunks, sending each job to toWait, and each input
// that gets no job straight to results.
func (b *batchRun) submitAll(ctx context.Context, r io.Reader, toWait chan<- pendingJob, results chan<- ResultLine) error {
	sc := newLineScanner(r)
	var chunk, retry []input
	chunkBytes, line, index, seq := 0, 0, 0, 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		refused, err := b.submitChunk(ctx, chunk, &seq, toWait, results)
		chunk, chunkBytes = nil, 0
		retry = append(retry, refused...)
		return err
	}
	backoff := b.retryBackoff
	for {
		// Inputs refused for a moment go first, after a pause that grows while they keep being refused.
		if len(retry) > 0 {
			if err := flush(); err != nil {
				return err
			}
			if err := sleepCtx(ctx, backoff); err != nil {
				return err
			}
			again := retry
			retry = nil
			for len(again) > 0 {
				n := min(len(again), b.chunkSize)
				chunk, again = again[:n], again[n:]
				if err := flush(); err != nil {
					return err
				}
			}
			if len(retry) > 0 {
				backoff = min(2*backoff, 30*time.Second)
			} else {
				backoff = b.retryBackoff
			}
			continue
		}
		if !sc.Scan() {
			break
		}
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		in := input{index: index, line: line, raw: append(json.RawMessage(nil), raw...)}
		index++
		if err := b.takeSlot(ctx, flush); err != nil {
			return err
		}
		b.tally.read()
		if raw[0] != '{' || !json.Valid(raw) {
			results <- ResultLine{Index: in.index, Line: in.line, APIError: &client.APIError{Code: "invalid_json",
				Message: fmt.Sprintf("line %d is not a JSON object", in.line)}}
			continue
		}
		if len(chunk) > 0 && chunkBytes+len(raw) > maxChunkBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		chunk, chunkBytes = append(chunk, in), chunkBytes+len(raw)+1
		if len(chunk) >= b.chunkSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the inputs (line %d): %w", line+1, err)
	}
	b.tally.setTotal(index)
	if err := flush(); err != nil {
		return err
	}
	for len(retry) > 0 { // the last inputs refused for a moment
		again := retry
		retry = nil
		if err := sleepCtx(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 30*time.Second)
		for len(again) > 0 {
			n := min(len(again), b.chunkSize)
			chunk, again = again[:n], again[n:]
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// takeSlot takes a window slot for a new input; when none is free it first submits the chunk being
// gathered, whose inputs may be what the window waits for.
func (b *batchRun) takeSlot(ctx context.Context, flush func() error) error {
	select {
	case b.window <- struct{}{}:
		return nil
	default:
	}
	if err := flush(); err != nil {
		return err
	}
	select {
	case b.window <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxChunkFailures bounds the attempts of one chunk that get no answer at all, after the SDK's own
// retries.
const maxChunkFailures = 5

// submitChunk submits one chunk, under one Idempotency-Key for all its attempts (so a chunk whose
// answer was lost is not created twice), and returns the inputs refused for a moment. A chunk too
// large for the API key or the server is split in halves, and the chunk size lowered for the rest.
func (b *batchRun) submitChunk(ctx context.Context, chunk []input, seq *int, toWait chan<- pendingJob, results chan<- ResultLine) ([]input, error) {
	*seq++
	opts := b.opts
	opts.IdempotencyKey = fmt.Sprintf("%s-%d", b.runID, *seq)
	raws := make([]json.RawMessage, len(chunk))
	for i, in := range chunk {
		raws[i] = in.raw
	}
	var items []client.BatchItem
	for failures := 0; ; failures++ {
		var err error
		if items, err = b.c.SubmitBatch(ctx, b.worker, raws, &opts); err == nil {
			break
		}
		var apiErr *client.APIError
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.As(err, &apiErr) && tooLarge(apiErr) && len(chunk) > 1:
			b.chunkSize = max(1, min(b.chunkSize, len(chunk)/2))
			half := len(chunk) / 2
			first, err := b.submitChunk(ctx, chunk[:half], seq, toWait, results)
			if err != nil {
				return nil, err
			}
			second, err := b.submitChunk(ctx, chunk[half:], seq, toWait, results)
			return append(first, second...), err
		case errors.As(err, &apiErr) && !apiErr.Temporary():
			if len(chunk) == 1 && apiErr.StatusCode == http.StatusRequestEntityTooLarge {
				results <- ResultLine{Index: chunk[0].index, Line: chunk[0].line, APIError: apiErr}
				return nil, nil
			}
			return nil, fmt.Errorf("submit inputs %d to %d: %w", chunk[0].index, chunk[len(chunk)-1].index, err)
		case failures+1 >= maxChunkFailures:
			return nil, fmt.Errorf("submit inputs %d to %d: %w", chunk[0].index, chunk[len(chunk)-1].index, err)
		}
		pause := b.retryBackoff << failures
		if errors.As(err, &apiErr) {
			pause = max(pause, apiErr.RetryAfter)
		}
		if err := sleepCtx(ctx, pause); err != nil {
			return nil, err
		}
	}
	var refused []input
	for i, item := range items {
		switch {
		case item.Job != nil:
			b.tally.submitted(item.Job.ID)
			toWait <- pendingJob{input: chunk[i], id: item.Job.ID}
		case item.Err.Temporary():
			refused = append(refused, chunk[i])
		default:
			results <- ResultLine{Index: chunk[i].index, Line: chunk[i].line, APIError: item.Err}
		}
	}
	return refused, nil
}

// tooLarge reports whether a batch was refused for its size: more jobs than the key may create at
// once (400 naming inputs), or a body over the server's limit (413).
func tooLarge(e *client.APIError) bool {
	return (e.StatusCode == http.StatusBadRequest && e.Field == "inputs") || e.Code == client.CodeBodyTooLarge
}

// awaitAll waits for jobs, in the order they were submitted, until toWait is closed.
func (b *batchRun) awaitAll(ctx context.Context, toWait <-chan pendingJob, results chan<- ResultLine) error {
	for p := range toWait {
		line := ResultLine{Index: p.index, Line: p.line}
		backoff := b.retryBackoff
		for {
			job, err := b.c.Wait(ctx, p.id)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var apiErr *client.APIError
			if err == nil {
				line.Job = job
			} else if errors.As(err, &apiErr) && !apiErr.Temporary() {
				line.APIError = apiErr
			} else { // no answer, even after the SDK's retries: try again later
				if err := sleepCtx(ctx, backoff); err != nil {
					return err
				}
				backoff = min(2*backoff, 30*time.Second)
				continue
			}
			break
		}
		b.tally.finished(p.id, line.Job)
		results <- line
	}
	return nil
}

// writeInOrder writes each result line as soon as every earlier input's is written, and gives its
// window slot back.
// A write error stops the run (stop) and is returned once the producers are done.
func (b *batchRun) writeInOrder(results <-chan ResultLine, w io.Writer, stop func()) error {
	bw := bufio.NewWriter(w)
	held := map[int]ResultLine{}
	next := 0
	var werr error
	for r := range results {
		if r.APIError != nil {
			b.tally.refused()
		}
		held[r.Index] = r
		for {
			line, ok := held[next]
			if !ok {
				break
			}
			delete(held, next)
			next++
			<-b.window
			if werr == nil {
				werr = writeLine(bw, line)
			}
		}
		if werr == nil {
			werr = bw.Flush()
		}
		if werr != nil {
			stop()
		}
	}
	if werr != nil {
		return fmt.Errorf("write the results: %w", werr)
	}
	if len(held) > 0 {
		return fmt.Errorf("internal error: %d results after a missing one", len(held))
	}
	return nil
}

func writeLine(w io.Writer, line ResultLine) error {
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// maxSamplePages bounds the pages of running jobs one sample reads.
const maxSamplePages = 3

// sample counts, every sampleEvery, how many of the run's pending jobs are running: one listing of
// the worker's running jobs (a page of 100, at most maxSamplePages). It is only for the progress
// display: the results come from the waits. The returned func stops it.
func (b *batchRun) sample(ctx context.Context) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(b.sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if b.tally.pendingCount() == 0 {
				continue
			}
			var running []string
			for job, err := range b.c.List(ctx, &client.ListOptions{Worker: b.worker, Status: client.StatusRunning, PageSize: 100}) {
				if err != nil {
					running = nil
					break
				}
				if running = append(running, job.ID); len(running) >= maxSamplePages*100 {
					break
				}
			}
			b.tally.sawRunning(running)
		}
	}()
	return func() { cancel(); <-done }
}
