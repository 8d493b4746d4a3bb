package jobcmd

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/seek-api/seek-operator/pkg/client"
)

// Output formats of -o.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// printer writes what a command shows in the format -o asks for.
type printer struct {
	format string
	// now is time.Now but in tests: tables show ages.
	now func() time.Time
}

func addOutputFlag(cmd *cobra.Command, p *printer) {
	cmd.Flags().StringVarP(&p.format, "output", "o", formatTable, "Output format: table, json or yaml.")
}

func (p *printer) check() error {
	switch p.format {
	case formatTable, formatJSON, formatYAML:
		return nil
	}
	return fmt.Errorf("-o %q: use table, json or yaml", p.format)
}

// structured writes v as JSON (indented) or YAML; it reports false for the table format.
func (p *printer) structured(w io.Writer, v any) (bool, error) {
	switch p.format {
	case formatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case formatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = w.Write(b)
		return true, err
	}
	return false, nil
}

// jobs prints jobs: a table row each, or the list as JSON or YAML ({"jobs": [...]}) — a single job
// as itself.
func (p *printer) jobs(w io.Writer, jobs []*client.Job, single bool) error {
	var v any = map[string]any{"jobs": jobs}
	if single && len(jobs) == 1 {
		v = jobs[0]
	}
	if done, err := p.structured(w, v); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWORKER\tSTATUS\tATTEMPTS\tDURATION\tAGE\tRESULT")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.Worker, statusText(j), j.Attempts, duration(j),
			shortAge(p.now().Sub(j.CreatedAt)), summary(j))
	}
	return tw.Flush()
}

// workers prints the catalogue.
func (p *printer) workers(w io.Writer, workers []client.Worker) error {
	if done, err := p.structured(w, map[string]any{"workers": workers}); done {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDESCRIPTION")
	for _, wk := range workers {
		fmt.Fprintf(tw, "%s\t%s\n", wk.Name, abbreviate(wk.Description, 80))
	}
	return tw.Flush()
}

// statusText is the status, with the reason a queued job waits and its place in the queue, or a
// running job's progress.
func statusText(j *client.Job) string {
	s := string(j.Status)
	var notes []string
	if j.StatusReason != "" {
		notes = append(notes, j.StatusReason)
	}
	if q := j.Queue; q != nil {
		note := fmt.Sprintf("#%d", q.Position)
		if q.EstimatedWaitSeconds != nil {
			note += fmt.Sprintf(", ~%s", time.Duration(*q.EstimatedWaitSeconds)*time.Second)
		}
		notes = append(notes, note)
	}
	if p := j.Progress; p != nil && j.Status == client.StatusRunning {
		notes = append(notes, fmt.Sprintf("%d%%", int(math.Round(p.Fraction*100))))
	}
	if len(notes) > 0 {
		s += " (" + strings.Join(notes, ", ") + ")"
	}
	return s
}

// duration is how long the job ran, or has been running.
func duration(j *client.Job) string {
	if j.StartedAt == nil {
		return ""
	}
	end := time.Now()
	if j.CompletedAt != nil {
		end = *j.CompletedAt
	}
	return end.Sub(*j.StartedAt).Round(100 * time.Millisecond).String()
}

// summary is the result, or the error, on one line.
func summary(j *client.Job) string {
	switch {
	case j.Error != nil:
		return abbreviate(j.Error.Reason+": "+j.Error.Message, 60)
	case len(j.Result) > 0 && string(j.Result) != "null":
		return abbreviate(string(j.Result), 60)
	}
	return ""
}

func abbreviate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// shortAge prints an age as kubectl does: 45s, 12m, 3h, 2d.
func shortAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
