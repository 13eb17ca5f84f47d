package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/internal/streambench"
)

// errSoakUnbounded is returned (exit status 1) when the soak's verdict is
// not bounded.
var errSoakUnbounded = errors.New("perf soak: window store usage not bounded (see the verdict)")

// perfSoakConfig configures `eddy perf soak`.
type perfSoakConfig struct {
	Duration       time.Duration
	Rate           int
	Keys           int
	Partitions     int32
	Window         time.Duration
	Retention      time.Duration
	Interval       time.Duration
	CommitInterval time.Duration
	MemoryLimit    int64
	WorkDir        string
}

func perfSoakCmd(a *app) *cobra.Command {
	cfg := perfSoakConfig{}
	c := &cobra.Command{
		Use:   "soak",
		Short: "Soak a windowed count worker at a steady rate and check that its store stays bounded by retention",
		Long: `perf soak starts eddy's broker as a subprocess of this binary (fresh
temporary data dir) unless --brokers is given, and runs in this process a
worker counting records per key in --window tumbling windows (store
retention --retention) while producing --rate records/s over --keys keys
(event time: wall clock) for --duration. Every --interval it prints a
sample: records produced and processed, lag, this process's RSS (worker,
load generator and sampler), the Go heap (live after the last GC, and in
use), the window store's entries (summed over tasks, as the runtime
samples them at each commit) and its directories' size on disk, and the
records dropped as late. At the end it prints a verdict (see
docs/benchmarks.md): the store's entries never exceed what retention
allows, they fall when segments expire, and after the warm-up (retention
+ one segment) the second half of the samples does not exceed the first
half's maximum by more than a stated tolerance (entries, disk, RSS, live
heap); the worker keeps up. Exits with status 1 when not bounded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPerfSoak(cmd.Context(), a, cmd, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.DurationVar(&cfg.Duration, "duration", time.Hour, "length of the run")
	f.IntVar(&cfg.Rate, "rate", 2000, "input records per second")
	f.IntVar(&cfg.Keys, "keys", 10_000, "distinct keys (round-robin)")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions of the input topic (tasks)")
	f.DurationVar(&cfg.Window, "window", time.Minute, "tumbling window size")
	f.DurationVar(&cfg.Retention, "retention", 5*time.Minute, "window store retention (Materialized.Retention)")
	f.DurationVar(&cfg.Interval, "interval", 30*time.Second, "time between samples")
	f.DurationVar(&cfg.CommitInterval, "commit-interval", 0, "worker commit interval (0: the runtime's default, 30s); store entries are sampled at commits")
	f.Int64Var(&cfg.MemoryLimit, "memory-limit", 0, "Go soft memory limit (bytes) of this process, as a worker may set it (GOMEMLIMIT); 0 leaves Go's default")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "parent of the temporary directories (default: $TMPDIR)")
	return c
}

func runPerfSoak(ctx context.Context, a *app, cmd *cobra.Command, cfg perfSoakConfig, out, errw io.Writer) error {
	if cfg.Duration <= 0 || cfg.Interval <= 0 || cfg.Rate <= 0 || cfg.Keys <= 0 || cfg.Partitions <= 0 || cfg.CommitInterval < 0 {
		return fmt.Errorf("--duration, --interval, --rate, --keys and --partitions must be positive, --commit-interval not negative")
	}
	if cfg.Window < time.Millisecond || cfg.Retention < cfg.Window {
		return fmt.Errorf("--window %v, --retention %v: want a window of at least 1ms and a retention of at least the window", cfg.Window, cfg.Retention)
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	tmp, err := os.MkdirTemp(cfg.WorkDir, "eddy-perf-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return withPerfBroker(ctx, a, cmd, tmp, func(brokers string, _ int) error {
		return perfSoakOn(ctx, brokers, tmp, cfg, out, errw)
	})
}

func perfSoakOn(ctx context.Context, brokers, tmp string, cfg perfSoakConfig, out, errw io.Writer) error {
	sc := streambench.SoakConfig{
		Brokers:        []string{brokers},
		WorkDir:        filepath.Join(tmp, "worker"),
		Duration:       cfg.Duration,
		Rate:           cfg.Rate,
		Keys:           cfg.Keys,
		Partitions:     cfg.Partitions,
		Window:         cfg.Window,
		Retention:      cfg.Retention,
		Interval:       cfg.Interval,
		CommitInterval: cfg.CommitInterval,
		OnSample:       func(s streambench.SoakSample) { streambench.WriteSoakSample(out, s) },
	}
	limit := "none"
	if cfg.MemoryLimit > 0 {
		limit = fmt.Sprintf("%d MiB", cfg.MemoryLimit>>20)
	}
	commit := "default (30s)"
	if cfg.CommitInterval > 0 {
		commit = cfg.CommitInterval.String()
	}
	fmt.Fprintf(out, "eddy perf soak: %v at %d rec/s over %d keys, %d partitions; %v tumbling windows, retention %v (segment %v); commit %s; Go memory limit %s; broker %s\n",
		cfg.Duration, cfg.Rate, cfg.Keys, cfg.Partitions, cfg.Window, cfg.Retention, sc.SegmentInterval(), commit, limit, brokers)
	fmt.Fprintf(out, "host: %d CPUs, %s %s/%s; store entries bound %d, warm-up %v\n\n",
		runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, sc.EntryBound(), sc.WarmUp())
	streambench.WriteSoakHeader(out)
	res, err := streambench.Soak(ctx, sc)
	if err != nil {
		if len(res.Samples) > 0 {
			// Interrupted or failed: judge what was sampled all the same.
			fmt.Fprintf(out, "\nstopped after %v; verdict of the samples taken:\n", res.Samples[len(res.Samples)-1].Elapsed)
			streambench.WriteSoakVerdict(out, res.Verdict)
		}
		return fmt.Errorf("perf soak: %w", err)
	}
	fmt.Fprintln(out)
	streambench.WriteSoakVerdict(out, res.Verdict)
	if !res.Verdict.Bounded {
		return errSoakUnbounded
	}
	return nil
}
