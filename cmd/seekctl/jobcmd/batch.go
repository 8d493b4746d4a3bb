package jobcmd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/seek-api/seek-operator/pkg/client"
)

// Bounds of seekctl batch.
const (
	// maxLineBytes bounds one input line; the API's own bound on an input is far smaller.
	maxLineBytes = 4 << 20
	// maxChunkBytes bounds the body of one batch request, well under the API's default of 4 MiB.
	maxChunkBytes = 2 << 20
)

// batchFlags are the flags of seekctl batch.
type batchFlags struct {
	inputFile, outputFile   string
	chunkSize, concurrency  int
	maxPending              int
	jobTimeout, retention   time.Duration
	quiet                   bool
	progressEvery, sampleIn time.Duration
}

func newBatchCommand(conn *connection) *cobra.Command {
	fl := &batchFlags{}
	cmd := &cobra.Command{
		Use:   "batch WORKER -f inputs.jsonl [-o results.jsonl]",
		Short: "Submit one job per input line and collect every result, in input order",
		Long: `Submit one job per line of a JSONL file (each line a JSON object; blank lines are skipped) and
write one result line per input, in input order, as the jobs finish:

  {"index": 0, "line": 1, "job_uuid": "job_...", "status": "completed", "response_json": {...}, ...}
  {"index": 1, "line": 2, "api_error": {"code": "invalid_input", "message": "...", "field": "/email"}}

Inputs are submitted in chunks through the batch endpoint (POST /v1/workers/{worker}/jobs:batch).
A chunk larger than the API key may create at once is split; inputs refused for a moment (rate
limit, the tenant's cap on unfinished jobs, an unavailable store) are submitted again. Each job is
then awaited with a long poll (Prefer: wait), oldest first, a bounded number at a time. Progress goes
to standard error: a live bar on a terminal, a line every few seconds otherwise.`,
		Example: `  seekctl batch email-validator -f emails.jsonl -o results.jsonl
  cat emails.jsonl | seekctl batch email-validator -f - > results.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := fl.check(); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			in, total, closeIn, err := openInputs(cmd, fl.inputFile)
			if err != nil {
				return err
			}
			defer closeIn()
			out, closeOut, err := openOutput(cmd, fl.outputFile)
			if err != nil {
				return err
			}
			run, err := newBatchRun(c, args[0], fl)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("retention") {
				run.opts.Retention = &fl.retention
			}
			if total >= 0 {
				run.tally.setTotal(total)
			}
			var rep reporter = nopReporter{}
			if !fl.quiet {
				rep = newReporter(cmd.ErrOrStderr(), isTerminal(cmd.ErrOrStderr()), total, fl.progressEvery)
			}
			sum, err := run.run(cmd.Context(), in, out, rep)
			if cerr := closeOut(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if sum.refused+sum.failed > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d inputs did not complete: see their result lines\n", sum.refused+sum.failed, sum.inputs)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&fl.inputFile, "file", "f", "", "JSONL file of inputs, one JSON object a line (- for standard input; required).")
	f.StringVarP(&fl.outputFile, "output-file", "o", "", "Write the result lines to this file (default: standard output).")
	f.IntVar(&fl.chunkSize, "chunk-size", 100, fmt.Sprintf("Inputs per batch request, at most %d (halved while the API key cannot create that many at once).", client.MaxBatchInputs))
	f.IntVar(&fl.concurrency, "concurrency", 16, "Jobs awaited at once (one long-poll request each).")
	f.IntVar(&fl.maxPending, "max-pending", 2000, "Inputs submitted ahead of the first result not yet written: bounds memory and the tenant's unfinished jobs.")
	f.DurationVar(&fl.jobTimeout, "job-timeout", 0, "Each job's time limit, whole seconds (default: the worker's).")
	f.DurationVar(&fl.retention, "retention", 0, "How long each finished job is kept, whole seconds (default: the API's).")
	f.BoolVarP(&fl.quiet, "quiet", "q", false, "Show no progress.")
	f.DurationVar(&fl.progressEvery, "progress-interval", 5*time.Second, "How often a progress line is printed when standard error is not a terminal.")
	f.DurationVar(&fl.sampleIn, "sample-interval", 2*time.Second, "How often the running jobs are counted (one listing of the worker's running jobs).")
	_ = f.MarkHidden("sample-interval")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func (fl *batchFlags) check() error {
	switch {
	case fl.chunkSize < 1 || fl.chunkSize > client.MaxBatchInputs:
		return fmt.Errorf("--chunk-size %d: use 1 to %d", fl.chunkSize, client.MaxBatchInputs)
	case fl.concurrency < 1 || fl.concurrency > 1000:
		return fmt.Errorf("--concurrency %d: use 1 to 1000", fl.concurrency)
	case fl.maxPending < fl.chunkSize:
		return fmt.Errorf("--max-pending %d must be at least --chunk-size %d", fl.maxPending, fl.chunkSize)
	case fl.progressEvery <= 0 || fl.sampleIn <= 0:
		return errors.New("--progress-interval and --sample-interval must be positive")
	}
	return nil
}

// openInputs opens the input file (or standard input for -) and counts its inputs when it is a
// regular file; the count is -1 otherwise.
func openInputs(cmd *cobra.Command, path string) (io.Reader, int, func(), error) {
	if path == "-" {
		return cmd.InOrStdin(), -1, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	total := -1
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if total, err = countInputs(f); err != nil {
			f.Close()
			return nil, 0, nil, fmt.Errorf("count the inputs: %w", err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, 0, nil, err
		}
	}
	return f, total, func() { f.Close() }, nil
}

// countInputs counts the non-blank lines of r.
func countInputs(r io.Reader) (int, error) {
	sc := newLineScanner(r)
	n := 0
	for sc.Scan() {
		if !isBlank(sc.Bytes()) {
			n++
		}
	}
	return n, sc.Err()
}

func newLineScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLineBytes)
	return sc
}

// openOutput opens the results file, or standard output.
func openOutput(cmd *cobra.Command, path string) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return cmd.OutOrStdout(), func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newRunID returns a random prefix for the Idempotency-Keys of one run's chunks.
func newRunID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "seekctl-" + hex.EncodeToString(b), nil
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
