package main

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"
)

// nodeReport is what the real-node phases measured; nil results were not run.
type nodeReport struct {
	cfg     nodeConfig
	latency *latencyResult
	// jobBurst went through a worker capped at cfg.maxConcurrent, jobBurstUncapped through one
	// without a cap.
	jobBurst, jobBurstUncapped *batchResult
	batchEcho, batchEmail      *batchResult
	b0                         float64 // raw creates/s on the local cluster
}

// percentileMs is the q-quantile of ds (nearest rank below), in milliseconds; 0 for none.
func percentileMs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(ds))
	return float64(sorted[int(q*float64(len(sorted)-1))].Microseconds()) / 1000
}

// rate is jobs per second over d; 0 for no time.
func rate(jobs int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(jobs) / d.Seconds()
}

// column is one measured phase in the writes and CPU table.
type column struct {
	title string
	r     *batchResult
}

func (r *nodeReport) columns() []column {
	var cols []column
	for _, c := range []column{
		{fmt.Sprintf("Job mode, capped at %d", r.cfg.maxConcurrent), r.jobBurst},
		{"Job mode, no cap", r.jobBurstUncapped},
		{"Pooled, echo batch", r.batchEcho},
		{"Pooled, email batch", r.batchEmail},
	} {
		if c.r != nil && c.r.jobs > 0 {
			cols = append(cols, c)
		}
	}
	return cols
}

func (r *nodeReport) print(w io.Writer) error {
	fmt.Fprintf(w, "\nReal node: Seek installed by its chart on the local cluster, REST API, %d CPUs; workers copied from the samples (maxConcurrentJobs %d, Pooled: pool.maxPods %d)\n\n",
		runtime.NumCPU(), r.cfg.maxConcurrent, r.cfg.poolMaxPods)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tJob mode\tPooled\ttarget\t")
	if l := r.latency; l != nil {
		fmt.Fprintf(tw, "echo one at a time, Prefer: wait, submit → answer p50 / p90 (ms), %d jobs\t%.0f / %.0f\t%.0f / %.0f\tPooled p50 ≤ 250\t\n",
			len(l.pooled), percentileMs(l.job, 0.5), percentileMs(l.job, 0.9), percentileMs(l.pooled, 0.5), percentileMs(l.pooled, 0.9))
		if p := percentileMs(l.pooled, 0.5); p > 0 {
			fmt.Fprintf(tw, "  Job mode p50 / Pooled p50\t%.1f\t\t\t\n", percentileMs(l.job, 0.5)/p)
		}
	}
	for _, b := range []struct {
		cap string
		r   *batchResult
	}{{fmt.Sprintf("capped at %d", r.cfg.maxConcurrent), r.jobBurst}, {"no cap", r.jobBurstUncapped}} {
		if b.r == nil {
			continue
		}
		fmt.Fprintf(tw, "echo, %d jobs submitted at once (one request each), worker %s: all completed/s\t%.2f\t\t\t\n", b.r.jobs, b.cap, rate(b.r.jobs, b.r.elapsed))
		fmt.Fprintf(tw, "  all completed after (s)\t%.1f\t\t\t\n", b.r.elapsed.Seconds())
	}
	if r.cfg.controlPlaneB0 > 0 {
		fmt.Fprintf(tw, "B0: raw SeekJob creates/s, control-plane phase of this run\t%.0f\t\t\t\n", r.cfg.controlPlaneB0)
	}
	if r.b0 > 0 {
		fmt.Fprintf(tw, "B0: raw SeekJob creates/s on this cluster (tenant quota, concurrency %d)\t%.0f\t\t\t\n", r.cfg.concurrency, r.b0)
	}
	for _, b := range []struct {
		name string
		r    *batchResult
	}{{"echo", r.batchEcho}, {"email-validator (no MX lookups)", r.batchEmail}} {
		if b.r == nil {
			continue
		}
		fmt.Fprintf(tw, "%s, %d jobs in one batch call: the call (s)\t\t%.2f\t≤ 2\t\n", b.name, b.r.jobs+len(b.r.refused), b.r.call.Seconds())
		if len(b.r.refused) > 0 {
			fmt.Fprintf(tw, "  items refused (first: %s)\t\t%d\t0\t\n", b.r.refused[0], len(b.r.refused))
		}
		if r.b0 > 0 {
			fmt.Fprintf(tw, "  ids/s of the call / B0\t\t%.2f\t\t\n", rate(b.r.jobs+len(b.r.refused), b.r.call)/r.b0)
		}
		if b.r.elapsed > 0 {
			fmt.Fprintf(tw, "  submit → last completed: jobs/s\t\t%.1f\t≥ 50\t\n", rate(b.r.jobs, b.r.elapsed))
			if r.b0 > 0 {
				fmt.Fprintf(tw, "  ratio to B0\t\t%.3f\t\t\n", rate(b.r.jobs, b.r.elapsed)/r.b0)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	cols := r.columns()
	if len(cols) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nAPI writes and CPU per job, over each phase: submission to the last job deleted at its retention (%s after it finished), +2 s\n\n", benchRetention)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, value func(b *batchResult) string) {
		fmt.Fprint(tw, label)
		for _, c := range cols {
			fmt.Fprintf(tw, "\t%s", value(c.r))
		}
		fmt.Fprint(tw, "\t\n")
	}
	perJob := func(v float64, b *batchResult) string { return fmt.Sprintf("%.2f", v/float64(b.jobs)) }
	fmt.Fprint(tw, "per job")
	for _, c := range cols {
		fmt.Fprintf(tw, "\t%s", c.title)
	}
	fmt.Fprint(tw, "\t\n")
	row("every write of a job's life, every client: submit to deletion", func(b *batchResult) string { return perJob(b.use.api.total(), b) })
	row("creates + manager writes but the deletion (target for Pooled: ≤ 3)", func(b *batchResult) string {
		return perJob(b.use.api["POST seek-api.com/seekjobs"]+b.use.manager.total()-b.use.manager["DELETE"], b)
	})
	row("manager writes (its client's requests, every resource)", func(b *batchResult) string { return perJob(b.use.manager.total(), b) })
	for _, m := range unionKeys(cols, func(u resourceUse) counts { return u.manager }) {
		row("  "+m, func(b *batchResult) string { return perJob(b.use.manager[m], b) })
	}
	row("apiserver writes, every client", func(b *batchResult) string { return perJob(b.use.api.total(), b) })
	for _, k := range unionKeys(cols, func(u resourceUse) counts { return u.api }) {
		row("  "+k, func(b *batchResult) string { return perJob(b.use.api[k], b) })
	}
	cpuMs := func(g string) func(b *batchResult) string {
		return func(b *batchResult) string {
			v, ok := b.use.cpu[g]
			if !ok {
				return "n/a"
			}
			return fmt.Sprintf("%.1f", v*1000/float64(b.jobs))
		}
	}
	for _, g := range append([]string{"manager", "frontend", "worker pods"}, nodeDaemonGroups...) {
		row("CPU ms, "+g, cpuMs(g))
	}
	row("CPU ms, "+nodeBusyGroup, cpuMs(nodeBusyGroup))
	row("  of it not above (kernel, bench client, other processes)", func(b *batchResult) string {
		rest, ok := b.use.cpu[nodeBusyGroup]
		if !ok {
			return "n/a"
		}
		for _, g := range append([]string{"manager", "frontend", "worker pods"}, nodeDaemonGroups...) {
			rest -= b.use.cpu[g]
		}
		return fmt.Sprintf("%.1f", rest*1000/float64(b.jobs))
	})
	row(fmt.Sprintf("jobs/s %d CPUs carry at this cost per job", runtime.NumCPU()), func(b *batchResult) string {
		busy, ok := b.use.cpu[nodeBusyGroup]
		if !ok || busy <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f", float64(runtime.NumCPU())*float64(b.jobs)/busy)
	})
	return tw.Flush()
}

// unionKeys are the keys of every column's counts.
func unionKeys(cols []column, of func(resourceUse) counts) []string {
	keys := map[string]bool{}
	for _, c := range cols {
		for k := range of(c.r.use) {
			keys[k] = true
		}
	}
	return slices.Sorted(maps.Keys(keys))
}
