package jobcmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/seek-api/seek-operator/pkg/client"
)

// maxInputBytes bounds an input read from -d or -f; the API refuses far smaller ones.
const maxInputBytes = 4 << 20

// AddTo adds the job commands and the flags saying where the API is (--url, --api-key, --config) to
// root.
func AddTo(root *cobra.Command) {
	conn := &connection{getenv: os.Getenv, userConfigDir: os.UserConfigDir}
	conn.addFlags(root)
	root.AddCommand(newSubmitCommand(conn), newGetCommand(conn), newListCommand(conn), newWaitCommand(conn),
		newCancelCommand(conn), newWorkersCommand(conn), newBatchCommand(conn), newLogsCommand(conn))
}

func newSubmitCommand(conn *connection) *cobra.Command {
	var data, file, idempotencyKey, callbackURL string
	var wait bool
	var waitTimeout, jobTimeout, retention time.Duration
	p := &printer{now: time.Now}
	cmd := &cobra.Command{
		Use:   "submit WORKER [-d JSON | -f FILE] [--wait]",
		Short: "Submit a job to a worker",
		Example: `  seekctl submit email-validator -d '{"email": "hello@example.com"}' --wait
  seekctl submit pdf-extract -f input.json -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := p.check(); err != nil {
				return err
			}
			input, err := readInput(cmd, data, file)
			if err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			opts := &client.SubmitOptions{IdempotencyKey: idempotencyKey, Timeout: jobTimeout, CallbackURL: callbackURL}
			if cmd.Flags().Changed("retention") {
				opts.Retention = &retention
			}
			ctx, cancel := withOptionalTimeout(cmd.Context(), waitTimeout)
			defer cancel()
			if wait {
				opts.Wait = client.MaxWait
			}
			job, err := c.Submit(ctx, args[0], input, opts)
			if err != nil {
				return err
			}
			if wait && !job.Status.IsTerminal() {
				if job, err = waitFor(ctx, c, job); err != nil {
					return err
				}
			}
			return p.jobs(cmd.OutOrStdout(), []*client.Job{job}, true)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&data, "data", "d", "", "The input, a JSON object (default {}).")
	f.StringVarP(&file, "file", "f", "", "Read the input from this file (- for standard input).")
	cmd.MarkFlagsMutuallyExclusive("data", "file")
	f.BoolVar(&wait, "wait", false, "Wait until the job finishes and show its outcome.")
	f.DurationVar(&waitTimeout, "wait-timeout", 0, "Give up waiting after this long (0: no limit).")
	f.StringVar(&idempotencyKey, "idempotency-key", "", "Make repeats of this submission return the same job (default: a key per run).")
	f.DurationVar(&jobTimeout, "job-timeout", 0, "The job's time limit, whole seconds (default: the worker's).")
	f.DurationVar(&retention, "retention", 0, "How long the finished job is kept, whole seconds (default: the API's).")
	f.StringVar(&callbackURL, "callback-url", "", "Deliver the job's events to this URL.")
	addOutputFlag(cmd, p)
	return cmd
}

// readInput returns the input of -d or -f, or {} with neither.
func readInput(cmd *cobra.Command, data, file string) ([]byte, error) {
	switch {
	case data != "":
		return []byte(data), nil
	case file == "":
		return []byte("{}"), nil
	}
	r := cmd.InOrStdin()
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the input: %w", err)
	}
	if len(b) > maxInputBytes {
		return nil, fmt.Errorf("the input is larger than %d bytes", maxInputBytes)
	}
	return b, nil
}

func newGetCommand(conn *connection) *cobra.Command {
	return perJobCommand(conn, "get JOB-ID...", "Show jobs", (*client.Client).Get)
}

// perJobCommand is a command that calls the API once per job id and shows the jobs it answered.
func perJobCommand(conn *connection, use, short string, call func(*client.Client, context.Context, string) (*client.Job, error)) *cobra.Command {
	p := &printer{now: time.Now}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := p.check(); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			jobs := make([]*client.Job, 0, len(args))
			for _, id := range args {
				job, err := call(c, cmd.Context(), id)
				if err != nil {
					return err
				}
				jobs = append(jobs, job)
			}
			return p.jobs(cmd.OutOrStdout(), jobs, true)
		},
	}
	addOutputFlag(cmd, p)
	return cmd
}

func newListCommand(conn *connection) *cobra.Command {
	var worker, status string
	var limit int
	p := &printer{now: time.Now}
	cmd := &cobra.Command{
		Use:   "list [--worker NAME] [--status STATUS]",
		Short: "List the tenant's jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.check(); err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: use 0 for all, or a positive number", limit)
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			opts := &client.ListOptions{Worker: worker, Status: client.JobStatus(status), PageSize: 100}
			if limit > 0 {
				opts.PageSize = min(limit, 100)
			}
			var jobs []*client.Job
			for job, err := range c.List(cmd.Context(), opts) {
				if err != nil {
					return err
				}
				if jobs = append(jobs, job); len(jobs) == limit {
					break
				}
			}
			return p.jobs(cmd.OutOrStdout(), jobs, false)
		},
	}
	f := cmd.Flags()
	f.StringVar(&worker, "worker", "", "Only this worker's jobs.")
	f.StringVar(&status, "status", "", "Only jobs in this status: queued, running, completed, failed, canceled or timed_out.")
	f.IntVar(&limit, "limit", 50, "Show at most this many jobs (0: all).")
	addOutputFlag(cmd, p)
	return cmd
}

func newWaitCommand(conn *connection) *cobra.Command {
	var timeout time.Duration
	p := &printer{now: time.Now}
	cmd := &cobra.Command{
		Use:   "wait JOB-ID...",
		Short: "Wait until jobs finish and show them",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := p.check(); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx, cancel := withOptionalTimeout(cmd.Context(), timeout)
			defer cancel()
			jobs := make([]*client.Job, 0, len(args))
			for _, id := range args {
				job, err := waitFor(ctx, c, &client.Job{ID: id})
				if err != nil {
					return err
				}
				jobs = append(jobs, job)
			}
			return p.jobs(cmd.OutOrStdout(), jobs, true)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "Give up after this long (0: no limit).")
	addOutputFlag(cmd, p)
	return cmd
}

// waitFor waits for a job, saying where it stands when the wait ends first.
func waitFor(ctx context.Context, c *client.Client, job *client.Job) (*client.Job, error) {
	done, err := c.Wait(ctx, job.ID)
	if err != nil && done != nil {
		return nil, fmt.Errorf("job %s is still %s: %w", job.ID, done.Status, err)
	}
	return done, err
}

func newCancelCommand(conn *connection) *cobra.Command {
	return perJobCommand(conn, "cancel JOB-ID...", "Cancel jobs (a finished job is left as it is)", (*client.Client).Cancel)
}

func newWorkersCommand(conn *connection) *cobra.Command {
	p := &printer{now: time.Now}
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List the workers jobs can be submitted to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.check(); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			workers, err := c.Workers(cmd.Context())
			if err != nil {
				return err
			}
			return p.workers(cmd.OutOrStdout(), workers)
		},
	}
	addOutputFlag(cmd, p)
	return cmd
}

func withOptionalTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
