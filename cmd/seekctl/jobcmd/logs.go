package jobcmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/seek-api/seek-operator/pkg/client"
)

func newLogsCommand(conn *connection) *cobra.Command {
	var tail int
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs JOB-ID [-f] [--tail N]",
		Short: "Print the output of a job's latest attempt",
		Long: "Print the worker's output (stdout and stderr) of the job's latest attempt: its last lines, or with -f those\n" +
			"and then its new lines while it runs. The server returns at most 1 MiB, and ends a stream after 5 minutes.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tail < 0 || tail > client.MaxLogTail {
				return fmt.Errorf("--tail must be from 1 to %d", client.MaxLogTail)
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			opts := &client.LogsOptions{Tail: tail}
			if follow {
				return c.FollowLogs(cmd.Context(), args[0], opts, cmd.OutOrStdout())
			}
			out, err := c.Logs(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), out)
			return err
		},
	}
	cmd.Flags().IntVar(&tail, "tail", 0, "How many of the last lines to print (default: the server's, 100)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "Print new lines as the job writes them, until its attempt ends")
	return cmd
}
