package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// compareConfig configures `eddy perf compare`.
type compareConfig struct {
	NumRecords      int64
	RecordSize      int
	Partitions      int32
	LatencyRate     int64
	LatencyDuration time.Duration
	LatencyWarmup   time.Duration
	SyncWrites      bool
	Targets         []string
	Linger          time.Duration
	WorkDir         string
}

// targetResult holds the measurements taken against one target.
type targetResult struct {
	Name     string
	Produce  perfProduceResult
	Sync     *perfProduceResult // eddy with --sync-writes
	Consume  perfConsumeResult
	Latency  perfLatencyResult
	PeakRSS  int64 // bytes, VmHWM of the server process after the produce run
	RSSAtEnd int64 // bytes, VmHWM at the end of all runs
	SyncRSS  int64
}

func perfCompareCmd(a *app) *cobra.Command {
	cfg := compareConfig{}
	c := &cobra.Command{
		Use:   "compare",
		Short: "Run the broker benchmark against eddy's broker and kfake, side by side",
		Long: `perf compare starts eddy's broker (eddy broker, fresh temporary data dir)
and franz-go's kfake (eddy kfake), each as a subprocess of this binary, and
measures both the same way with the same client: produce --num-records
records of --record-size bytes to a --partitions topic with acks=all; consume
them; end-to-end latency at a steady --latency-rate; and the server's peak
resident memory (VmHWM from /proc/PID/status) after the produce run. With
--sync-writes (default on) the produce run is repeated against a second eddy
broker started with --sync-writes. It prints a table with eddy/kfake ratios.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCompare(cmd.Context(), a, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.Int64Var(&cfg.NumRecords, "num-records", 2_000_000, "records to produce and consume per target")
	f.IntVar(&cfg.RecordSize, "record-size", 100, "value size in bytes")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions of the benchmark topics")
	f.Int64Var(&cfg.LatencyRate, "latency-rate", 50_000, "records/s of the end-to-end latency run")
	f.DurationVar(&cfg.LatencyDuration, "latency-duration", 15*time.Second, "duration of the end-to-end latency run")
	f.DurationVar(&cfg.LatencyWarmup, "latency-warmup", 2*time.Second, "warm-up excluded from the latency statistics")
	f.BoolVar(&cfg.SyncWrites, "sync-writes", true, "also measure produce against eddy with --sync-writes")
	f.StringSliceVar(&cfg.Targets, "targets", []string{"eddy", "kfake"}, "targets to measure: eddy, kfake")
	f.DurationVar(&cfg.Linger, "linger", 10*time.Millisecond, "producer linger of the throughput run")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "parent of the temporary data dirs (default: $TMPDIR); put it on the disk to measure")
	return c
}

func runCompare(ctx context.Context, a *app, cfg compareConfig, out, errw io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating own binary: %w", err)
	}
	tmp, err := os.MkdirTemp(cfg.WorkDir, "eddy-perf-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintf(out, "eddy perf compare: %d records x %d B, %d partitions, acks=all; e2e latency at %d rec/s for %s\n",
		cfg.NumRecords, cfg.RecordSize, cfg.Partitions, cfg.LatencyRate, cfg.LatencyDuration)
	fmt.Fprintf(out, "host: %d CPUs, %s %s/%s\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var results []targetResult
	for _, t := range cfg.Targets {
		var args []string
		switch t {
		case "eddy":
			args = []string{"broker", "--data-dir", filepath.Join(tmp, "eddy"), "--listen", "127.0.0.1:0", "--http", "", "--log-level", "warn"}
		case "kfake":
			args = []string{"kfake", "--listen", "127.0.0.1:0"}
		default:
			return fmt.Errorf("unknown target %q: want eddy or kfake", t)
		}
		fmt.Fprintf(errw, "== %s\n", t)
		r, err := measureTarget(ctx, a, exe, tmp, t, args, cfg, errw)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		if t == "eddy" && cfg.SyncWrites {
			fmt.Fprintln(errw, "== eddy --sync-writes")
			sargs := []string{"broker", "--data-dir", filepath.Join(tmp, "eddy-sync"), "--listen", "127.0.0.1:0", "--http", "", "--log-level", "warn", "--sync-writes"}
			err := withServer(ctx, exe, tmp, "eddy-sync", sargs, func(addr string, pid int) error {
				sa := *a
				sa.brokers = addr
				p, err := runPerfProduce(ctx, &sa, produceCfg(cfg, "compare-produce-sync"), errw)
				if err != nil {
					return err
				}
				r.Sync = &p
				r.SyncRSS, _ = peakRSS(pid)
				return nil
			})
			if err != nil {
				return fmt.Errorf("eddy --sync-writes: %w", err)
			}
		}
		results = append(results, r)
	}
	printCompare(out, results)
	return nil
}

func produceCfg(cfg compareConfig, topic string) perfProduceConfig {
	return perfProduceConfig{Topic: topic, NumRecords: cfg.NumRecords, RecordSize: cfg.RecordSize, Acks: "all",
		Compression: "none", Partitions: cfg.Partitions, Linger: cfg.Linger, ReportInterval: 5 * time.Second, Throughput: -1}
}

// measureTarget starts one server subprocess and runs the produce, consume
// and latency benchmarks against it.
func measureTarget(ctx context.Context, a *app, exe, tmp, name string, args []string, cfg compareConfig, errw io.Writer) (targetResult, error) {
	r := targetResult{Name: name}
	err := withServer(ctx, exe, tmp, name, args, func(addr string, pid int) error {
		ta := *a
		ta.brokers = addr
		var err error
		fmt.Fprintln(errw, "-- produce")
		if r.Produce, err = runPerfProduce(ctx, &ta, produceCfg(cfg, "compare-produce"), errw); err != nil {
			return err
		}
		r.PeakRSS, _ = peakRSS(pid)
		fmt.Fprintln(errw, "-- consume")
		if r.Consume, err = runPerfConsume(ctx, &ta, perfConsumeConfig{Topic: "compare-produce", Messages: r.Produce.Records,
			Timeout: 30 * time.Second, ReportInterval: 5 * time.Second}, errw); err != nil {
			return err
		}
		fmt.Fprintln(errw, "-- end-to-end latency")
		if r.Latency, err = runPerfLatency(ctx, &ta, perfLatencyConfig{Topic: "compare-latency", Rate: cfg.LatencyRate,
			Duration: cfg.LatencyDuration, Warmup: cfg.LatencyWarmup, RecordSize: max(cfg.RecordSize, 8),
			Partitions: cfg.Partitions, Acks: "all", Compression: "none"}); err != nil {
			return err
		}
		r.RSSAtEnd, _ = peakRSS(pid)
		return nil
	})
	return r, err
}

// withPerfBroker calls run with the cluster a perf command measures on: the
// --brokers (or EDDY_BROKERS) cluster when one is given, with pid 0; else
// `eddy broker` from this binary as a subprocess on a fresh data dir in tmp,
// with its pid, stopped when run returns.
func withPerfBroker(ctx context.Context, a *app, cmd *cobra.Command, tmp string, run func(brokers string, pid int) error) error {
	if cmd.Flags().Changed("brokers") || os.Getenv("EDDY_BROKERS") != "" {
		return run(a.brokers, 0)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating own binary: %w", err)
	}
	args := []string{"broker", "--data-dir", filepath.Join(tmp, "broker"), "--listen", "127.0.0.1:0", "--http", "", "--log-level", "warn"}
	return withServer(ctx, exe, tmp, "eddy", args, run)
}

// withServer runs `exe args... --ready-file F` as a subprocess, waits until
// it has written its address to F, calls fn, then stops it with SIGTERM
// (SIGKILL after 30 s). The server's output goes to a log file in tmp,
// quoted in the error if it fails.
func withServer(ctx context.Context, exe, tmp, name string, args []string, fn func(addr string, pid int) error) error {
	ready := filepath.Join(tmp, name+".addr")
	logPath := filepath.Join(tmp, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe, append(args, "--ready-file", ready)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited early: %v\n%s", name, err, tail(logPath))
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // reported through Wait
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("%s shutdown: %v\n%s", name, err, tail(logPath))
			}
			return nil
		case <-time.After(30 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // last resort
			<-exited
			return fmt.Errorf("%s did not stop within 30 s of SIGTERM", name)
		}
	}

	addr, err := waitReady(ctx, ready, exited, 60*time.Second)
	if err != nil {
		cmd.Process.Kill() //nolint:errcheck // failed start
		<-exited
		return fmt.Errorf("%s did not become ready: %w\n%s", name, err, tail(logPath))
	}
	ferr := fn(addr, cmd.Process.Pid)
	serr := stop()
	if ferr != nil {
		return ferr
	}
	return serr
}

// waitReady polls for the ready file until deadline, the process exits or
// ctx ends.
func waitReady(ctx context.Context, path string, exited <-chan error, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			if addr := strings.TrimSpace(string(b)); addr != "" {
				return addr, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case err := <-exited:
			return "", fmt.Errorf("process exited: %v", err)
		case <-deadline.C:
			return "", errors.New("timed out")
		case <-tick.C:
		}
	}
}

// peakRSS reads VmHWM (peak resident set size) of pid, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// tail returns the last lines of a log file for error reports.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "server log:\n" + strings.Join(lines, "\n")
}

// printCompare prints one row per metric with a column per target and, when
// both are present, the eddy/kfake ratio.
func printCompare(w io.Writer, rs []targetResult) {
	var eddy, kfake *targetResult
	for i := range rs {
		switch rs[i].Name {
		case "eddy":
			eddy = &rs[i]
		case "kfake":
			kfake = &rs[i]
		}
	}
	tw := table(w)
	fmt.Fprint(tw, "METRIC")
	for _, r := range rs {
		fmt.Fprintf(tw, "\t%s", r.Name)
	}
	if eddy != nil && kfake != nil {
		fmt.Fprint(tw, "\teddy/kfake")
	}
	fmt.Fprintln(tw)
	row := func(name string, get func(r *targetResult) (float64, bool), format string) {
		fmt.Fprint(tw, name)
		for i := range rs {
			if v, ok := get(&rs[i]); ok {
				fmt.Fprintf(tw, "\t"+format, v)
			} else {
				fmt.Fprint(tw, "\t-")
			}
		}
		if eddy != nil && kfake != nil {
			ev, eok := get(eddy)
			kv, kok := get(kfake)
			if eok && kok && kv != 0 {
				fmt.Fprintf(tw, "\t%.2fx", ev/kv)
			} else {
				fmt.Fprint(tw, "\t-")
			}
		}
		fmt.Fprintln(tw)
	}
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	row("produce records/s", func(r *targetResult) (float64, bool) { return r.Produce.recPerSec(), true }, "%.0f")
	row("produce MB/s", func(r *targetResult) (float64, bool) { return r.Produce.mbPerSec(), true }, "%.1f")
	row("produce latency p50 ms", func(r *targetResult) (float64, bool) { return msf(r.Produce.Latency.P50), true }, "%.2f")
	row("produce latency p99 ms", func(r *targetResult) (float64, bool) { return msf(r.Produce.Latency.P99), true }, "%.2f")
	fmt.Fprint(tw, "produce --sync-writes records/s")
	for _, r := range rs {
		if r.Sync != nil {
			fmt.Fprintf(tw, "\t%.0f", r.Sync.recPerSec())
		} else {
			fmt.Fprint(tw, "\t-")
		}
	}
	if eddy != nil && kfake != nil {
		if eddy.Sync != nil && kfake.Produce.recPerSec() > 0 {
			fmt.Fprintf(tw, "\t%.2fx", eddy.Sync.recPerSec()/kfake.Produce.recPerSec())
		} else {
			fmt.Fprint(tw, "\t-")
		}
	}
	fmt.Fprintln(tw)
	row("consume records/s", func(r *targetResult) (float64, bool) { return r.Consume.recPerSec(), true }, "%.0f")
	row("consume MB/s", func(r *targetResult) (float64, bool) { return r.Consume.mbPerSec(), true }, "%.1f")
	row("e2e latency p50 ms", func(r *targetResult) (float64, bool) { return msf(r.Latency.Latency.P50), true }, "%.2f")
	row("e2e latency p99 ms", func(r *targetResult) (float64, bool) { return msf(r.Latency.Latency.P99), true }, "%.2f")
	row("e2e latency p99.9 ms", func(r *targetResult) (float64, bool) { return msf(r.Latency.Latency.P999), true }, "%.2f")
	row("server peak RSS after produce MiB", func(r *targetResult) (float64, bool) {
		return float64(r.PeakRSS) / (1 << 20), r.PeakRSS > 0
	}, "%.0f")
	row("server peak RSS overall MiB", func(r *targetResult) (float64, bool) {
		return float64(r.RSSAtEnd) / (1 << 20), r.RSSAtEnd > 0
	}, "%.0f")
	tw.Flush()
	if eddy != nil && eddy.SyncRSS > 0 {
		fmt.Fprintf(w, "\neddy --sync-writes: server peak RSS %.0f MiB\n", float64(eddy.SyncRSS)/(1<<20))
	}
	fmt.Fprintln(w, "\nThroughput ratios > 1 favour eddy; latency and memory ratios < 1 favour eddy.")
}
