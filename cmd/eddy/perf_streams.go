package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/internal/streambench"
)

// perfStreamsConfig configures `eddy perf streams`.
type perfStreamsConfig struct {
	Records       int
	Keys          int
	Partitions    int32
	MemPartitions int32
	Peer          bool
	WorkDir       string
	MemoryLimit   int64
	// Windowed case: a plain count and a windowed count on one input.
	Windowed   bool
	WindowKeys int
	WindowSize time.Duration
	WindowStep time.Duration
	// WindowCPU is the path of a CPU profile of the windowed count run.
	WindowCPU string
}

func perfStreamsCmd(a *app) *cobra.Command {
	cfg := perfStreamsConfig{}
	c := &cobra.Command{
		Use:   "streams",
		Short: "Benchmark stream processing: eddy's runtime against goka on the same broker",
		Long: `perf streams starts eddy's broker as a subprocess of this binary (fresh
temporary data dir) unless --brokers is given, fills input topics, and
measures, in this process:

  count      groupByKey → count per key (--keys keys, --partitions partitions),
             eddy's runtime with one stream thread, then goka (the peer) on
             the same input, with the ratio eddy/goka;
  stateless  filter → mapValues → to, eddy's runtime, timed until the
             last output record is acknowledged by the broker;
  windowed   on a separate input over --window-keys keys whose event
             timestamps advance --window-step a record (so windows open,
             close and expire during the run): the plain count, then a
             count in --window-size tumbling windows (groupByKey →
             windowedBy → count), with the ratio windowed/plain
             (--windowed-cpuprofile: a CPU profile of that run);
  memory     the count topology over a --mem-partitions topic (one task
             per partition) run first in this fresh process, reporting the
             process's peak resident memory (VmHWM), under the Go soft
             memory limit --memory-limit (what a worker runs with; the
             examples' --memory-limit flag); the other runs, goka's
             included, run without a limit.

Rates count records between the first and the last record processed, so
startup and group joins are excluded for both sides.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPerfStreams(cmd.Context(), a, cmd, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.IntVar(&cfg.Records, "records", 1_000_000, "records per input topic")
	f.IntVar(&cfg.Keys, "keys", 1000, "distinct keys")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions of the count and stateless inputs")
	f.Int32Var(&cfg.MemPartitions, "mem-partitions", 12, "partitions (tasks) of the memory run; 0 skips it")
	f.BoolVar(&cfg.Peer, "peer", true, "also run goka on the count input")
	f.Int64Var(&cfg.MemoryLimit, "memory-limit", 192<<20, "Go soft memory limit (bytes) of this process, as a worker sets it (GOMEMLIMIT); 0 leaves Go's default")
	f.BoolVar(&cfg.Windowed, "windowed", true, "also run the windowed case (plain and windowed count on the --window-keys input)")
	f.IntVar(&cfg.WindowKeys, "window-keys", 10_000, "distinct keys of the windowed case's input")
	f.DurationVar(&cfg.WindowSize, "window-size", time.Minute, "tumbling window size of the windowed case")
	f.DurationVar(&cfg.WindowStep, "window-step", time.Millisecond, "event-time step between consecutive records of the windowed case's input")
	f.StringVar(&cfg.WindowCPU, "windowed-cpuprofile", "", "write a CPU profile of the windowed count run to this file (go tool pprof)")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "parent of the temporary directories (default: $TMPDIR)")
	return c
}

func runPerfStreams(ctx context.Context, a *app, cmd *cobra.Command, cfg perfStreamsConfig, out, errw io.Writer) error {
	if cfg.Windowed && (cfg.WindowKeys <= 0 || cfg.WindowSize < time.Millisecond || cfg.WindowStep < time.Millisecond) {
		return fmt.Errorf("--window-keys %d, --window-size %v, --window-step %v: want a positive key count and durations of at least 1ms", cfg.WindowKeys, cfg.WindowSize, cfg.WindowStep)
	}
	tmp, err := os.MkdirTemp(cfg.WorkDir, "eddy-perf-streams-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return withPerfBroker(ctx, a, cmd, tmp, func(brokers string, _ int) error {
		return perfStreamsOn(ctx, brokers, tmp, cfg, out, errw)
	})
}

func perfStreamsOn(ctx context.Context, brokers, tmp string, cfg perfStreamsConfig, out, errw io.Writer) error {
	limited := cfg.MemoryLimit > 0 && cfg.MemPartitions > 0
	if limited {
		debug.SetMemoryLimit(cfg.MemoryLimit) // for the memory run only
	}
	base := streambench.Config{Brokers: []string{brokers}, Records: cfg.Records, Keys: cfg.Keys, Partitions: cfg.Partitions}
	fmt.Fprintf(out, "eddy perf streams: %d records, %d keys, %d partitions; broker %s\n", cfg.Records, cfg.Keys, cfg.Partitions, brokers)
	fmt.Fprintf(out, "host: %d CPUs, %s %s/%s\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	step := func(name string, fn func(streambench.Config) (streambench.Result, error), c streambench.Config) (streambench.Result, error) {
		c.WorkDir = filepath.Join(tmp, name)
		fmt.Fprintf(errw, "== %s\n", name)
		r, err := fn(c)
		if err != nil {
			return r, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(errw, "   %d records in %s: %.0f rec/s\n", r.Records, r.Elapsed.Round(time.Millisecond), r.Rate())
		return r, nil
	}
	fill := func(topic string, c streambench.Config) error {
		fmt.Fprintf(errw, "== fill %s\n", topic)
		return streambench.Fill(ctx, c, topic)
	}
	var mem streambench.Result
	if cfg.MemPartitions > 0 {
		mc := base
		mc.Partitions = cfg.MemPartitions
		if err := fill("perf-streams-mem", mc); err != nil {
			return err
		}
		r, err := step("memory", func(c streambench.Config) (streambench.Result, error) {
			return streambench.EddyCount(ctx, c, "perf-streams-mem")
		}, mc)
		if err != nil {
			return err
		}
		mem = r
		mem.PeakRSS, _ = peakRSS(os.Getpid())
	}
	// The other runs, goka's included, run without the memory run's limit.
	if limited {
		debug.SetMemoryLimit(math.MaxInt64)
	}
	if err := fill("perf-streams-count", base); err != nil {
		return err
	}
	count, err := step("eddy count", func(c streambench.Config) (streambench.Result, error) {
		return streambench.EddyCount(ctx, c, "perf-streams-count")
	}, base)
	if err != nil {
		return err
	}
	var goka streambench.Result
	if cfg.Peer {
		if goka, err = step("goka count", func(c streambench.Config) (streambench.Result, error) {
			return streambench.GokaCount(ctx, c, "perf-streams-count")
		}, base); err != nil {
			return err
		}
	}
	if err := fill("perf-streams-stateless", base); err != nil {
		return err
	}
	stateless, err := step("eddy stateless", func(c streambench.Config) (streambench.Result, error) {
		return streambench.EddyStateless(ctx, c, "perf-streams-stateless")
	}, base)
	if err != nil {
		return err
	}
	var plainW, windowed streambench.Result
	if cfg.Windowed {
		wc := base
		wc.Keys = cfg.WindowKeys
		wc.TimestampStep = cfg.WindowStep
		if err := fill("perf-streams-windowed", wc); err != nil {
			return err
		}
		if plainW, err = step("eddy count (windowed input)", func(c streambench.Config) (streambench.Result, error) {
			return streambench.EddyCount(ctx, c, "perf-streams-windowed")
		}, wc); err != nil {
			return err
		}
		if windowed, err = step("eddy windowed count", func(c streambench.Config) (streambench.Result, error) {
			if cfg.WindowCPU != "" {
				f, err := os.Create(cfg.WindowCPU)
				if err != nil {
					return streambench.Result{}, err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return streambench.Result{}, err
				}
				defer pprof.StopCPUProfile()
			}
			return streambench.EddyWindowedCount(ctx, c, "perf-streams-windowed", cfg.WindowSize)
		}, wc); err != nil {
			return err
		}
	}

	fmt.Fprintf(out, "%-34s %14s %12s\n", "scenario", "rec/s", "elapsed")
	line := func(name string, r streambench.Result) {
		fmt.Fprintf(out, "%-34s %14.0f %12s\n", name, r.Rate(), r.Elapsed.Round(time.Millisecond))
	}
	line("count per key, eddy", count)
	if cfg.Peer {
		line("count per key, goka", goka)
		if goka.Rate() > 0 {
			fmt.Fprintf(out, "%-34s %13.2fx\n", "count ratio eddy/goka", count.Rate()/goka.Rate())
		}
	}
	line("filter → mapValues → to, eddy", stateless)
	if cfg.Windowed {
		line(fmt.Sprintf("count, %d keys, eddy", cfg.WindowKeys), plainW)
		line(fmt.Sprintf("count, %v tumbling windows", cfg.WindowSize), windowed)
		if plainW.Rate() > 0 {
			fmt.Fprintf(out, "%-34s %13.2fx\n", "windowed ratio windowed/plain", windowed.Rate()/plainW.Rate())
		}
	}
	if cfg.MemPartitions > 0 {
		line(fmt.Sprintf("count, %d tasks (memory run)", cfg.MemPartitions), mem)
		limit := "none"
		if limited {
			limit = fmt.Sprintf("%d MiB", cfg.MemoryLimit>>20)
		}
		fmt.Fprintf(out, "%-34s %10.1f MiB (Go memory limit: %s)\n", "peak RSS after the memory run", float64(mem.PeakRSS)/(1<<20), limit)
	}
	return nil
}
