package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	eddyruntime "github.com/eddy-streams/eddy/runtime"

	"github.com/eddy-streams/eddy/internal/streambench"
)

// perfEOSConfig configures `eddy perf eos`.
type perfEOSConfig struct {
	// Throughput: wordcount under each guarantee.
	Throughput   bool
	Lines        int
	WordsPerLine int
	Words        int
	Partitions   int32
	Threads      int
	Runs         int
	CPUProfile   string
	// Restart after kill -9.
	Restart        bool
	RestartRecords int
	RestartCPU     string
	RestartKeys    int
	RestartParts   int32
	KillAt         float64
	SessionTimeout time.Duration
	ALOSRestart    bool
	ALOSCommit     time.Duration
	WorkDir        string
}

// eosTarget is the throughput target: exactly-once at a 100 ms
// commit interval at least this fraction of at-least-once.
const eosTarget = 0.85

// wordCountMode is one guarantee and commit interval of the throughput
// comparison.
type wordCountMode struct {
	name      string
	guarantee eddyruntime.Guarantee
	commit    time.Duration
}

var wordCountModes = []wordCountMode{
	{"at_least_once, commit 100ms", eddyruntime.AtLeastOnce, 100 * time.Millisecond},
	{"at_least_once, commit 30s", eddyruntime.AtLeastOnce, eddyruntime.DefaultCommitInterval},
	{"exactly_once, commit 100ms", eddyruntime.ExactlyOnce, eddyruntime.DefaultExactlyOnceCommitInterval},
}

func perfEOSCmd(a *app) *cobra.Command {
	cfg := perfEOSConfig{}
	c := &cobra.Command{
		Use:   "eos",
		Short: "Cost of exactly-once: wordcount throughput per guarantee, restart time after kill -9",
		Long: `perf eos starts eddy's broker as a subprocess of this binary (fresh
temporary data dir) unless --brokers is given, and measures what
exactly-once costs:

  throughput  fills a topic with --lines lines of --words-per-line words
              drawn from --words distinct words, then runs the word count
              (lines → words → repartition by word → count → output) in
              this process three times on that same input, each as its own
              application: at_least_once with a 100ms commit interval,
              at_least_once with its default 30s, exactly_once with its
              default 100ms. The rate counts words reaching the count
              between the first and the last (under exactly_once they pass
              the repartition topic only once committed). After each run
              the worker stops and the output topic is read read_committed:
              the latest count of every word must be exact, or the command
              fails. --runs repeats the three (rotating their order) and
              prints the medians and the ratios exactly_once/at_least_once;
              --cpuprofile P writes P.exactly_once.prof and
              P.at_least_once.prof (100ms) of the first run.
  restart     fills a topic with --restart-records records over
              --restart-keys keys (--restart-partitions tasks), starts a
              count worker (this binary, hidden "perf eos-worker") under
              exactly_once, kills it with SIGKILL once it processed
              --kill-at of the input, and restarts it (a) on the same
              state directory; once that runs it is stopped and restarted
              (b) with the tasks' state wiped (a full restore from the
              changelogs, as Kafka Streams does after an unclean stop
              under exactly-once; the process id is kept), and
              with --alos-restart (c) the same as (a) under at_least_once
              (commit interval --alos-commit-interval).
              For each it prints the time from starting the process until
              every task runs, split into the group join (the dead
              member's session, --session-timeout, must expire first) and
              the restore, and the changelog records restored.
              --restart-cpuprofile P writes CPU profiles of the restarted
              workers (start to stop) to P.<guarantee>-<same|wiped>.prof.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPerfEOS(cmd.Context(), a, cmd, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.BoolVar(&cfg.Throughput, "throughput", true, "run the throughput comparison")
	f.IntVar(&cfg.Lines, "lines", 300_000, "input lines of the throughput comparison")
	f.IntVar(&cfg.WordsPerLine, "words-per-line", 5, "words per line")
	f.IntVar(&cfg.Words, "words", 10_000, "distinct words")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions of the input, repartition and output topics")
	f.IntVar(&cfg.Threads, "threads", 1, "stream threads of the word count worker")
	f.IntVar(&cfg.Runs, "runs", 3, "times to run the three modes")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write CPU profiles of the first run's exactly_once and at_least_once (100ms) word counts to <this>.exactly_once.prof and <this>.at_least_once.prof")
	f.BoolVar(&cfg.Restart, "restart", true, "run the restart comparison")
	f.IntVar(&cfg.RestartRecords, "restart-records", 1_000_000, "input records of the restart comparison")
	f.IntVar(&cfg.RestartKeys, "restart-keys", 500_000, "distinct keys (count store entries) of the restart comparison")
	f.Int32Var(&cfg.RestartParts, "restart-partitions", 6, "partitions (tasks) of the restart comparison")
	f.Float64Var(&cfg.KillAt, "kill-at", 0.8, "kill the worker once it processed this fraction of the input (0 < f <= 1)")
	f.DurationVar(&cfg.SessionTimeout, "session-timeout", 6*time.Second, "group session timeout of the restart worker (the broker's minimum is 6s)")
	f.BoolVar(&cfg.ALOSRestart, "alos-restart", true, "also restart an at_least_once worker after the same kill")
	f.DurationVar(&cfg.ALOSCommit, "alos-commit-interval", 100*time.Millisecond, "commit interval of the at_least_once restart worker (0: its default, 30s)")
	f.StringVar(&cfg.RestartCPU, "restart-cpuprofile", "", "write CPU profiles of the restarted workers (start until stopped) to <this>.<guarantee>-<same|wiped>.prof")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "parent of the temporary directories (default: $TMPDIR)")
	return c
}

func runPerfEOS(ctx context.Context, a *app, cmd *cobra.Command, cfg perfEOSConfig, out, errw io.Writer) error {
	switch {
	case cfg.Throughput && (cfg.Lines <= 0 || cfg.WordsPerLine <= 0 || cfg.Words <= 0 || cfg.Partitions <= 0 || cfg.Threads <= 0 || cfg.Runs <= 0):
		return errors.New("--lines, --words-per-line, --words, --partitions, --threads and --runs must be positive")
	case cfg.Restart && (cfg.RestartRecords <= 0 || cfg.RestartKeys <= 0 || cfg.RestartParts <= 0 || cfg.KillAt <= 0 || cfg.KillAt > 1):
		return errors.New("--restart-records, --restart-keys and --restart-partitions must be positive, --kill-at in (0, 1]")
	case !cfg.Throughput && !cfg.Restart:
		return errors.New("nothing to do: --throughput=false and --restart=false")
	}
	tmp, err := os.MkdirTemp(cfg.WorkDir, "eddy-perf-eos-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating own binary: %w", err)
	}
	run := func(brokers string, brokerPID int) error {
		fmt.Fprintf(out, "eddy perf eos: broker %s\nhost: %d CPUs, %s %s/%s\n", brokers, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		// Names unique to this invocation: an external cluster may hold
		// an earlier run's topics, and the verification needs exact input.
		id := strconv.FormatInt(time.Now().UnixNano(), 36)
		if cfg.Throughput {
			if err := perfEOSThroughput(ctx, brokers, brokerPID, tmp, id, cfg, out, errw); err != nil {
				return err
			}
		}
		if cfg.Restart {
			return perfEOSRestart(ctx, exe, brokers, tmp, id, cfg, out, errw)
		}
		return nil
	}
	return withPerfBroker(ctx, a, cmd, tmp, run)
}

// perfEOSThroughput runs the word count under each mode cfg.Runs times on
// one input and prints every run, the medians and the ratios; with
// brokerPID > 0, the CPU time of the broker process per word too.
func perfEOSThroughput(ctx context.Context, brokers string, brokerPID int, tmp, id string, cfg perfEOSConfig, out, errw io.Writer) error {
	in := "perf-eos-lines-" + id
	base := streambench.Config{Brokers: []string{brokers}, Records: cfg.Lines, Keys: cfg.Words, Partitions: cfg.Partitions, Threads: cfg.Threads}
	fmt.Fprintf(errw, "== fill %s: %d lines\n", in, cfg.Lines)
	lines, err := streambench.FillLines(ctx, base, in, cfg.WordsPerLine)
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	fmt.Fprintf(out, "\nthroughput: word count of %d lines × %d words (%d words) over %d distinct words, %d partitions, %d stream thread(s); output verified read_committed\n\n",
		lines.Lines, cfg.WordsPerLine, lines.Words, cfg.Words, cfg.Partitions, cfg.Threads)
	fmt.Fprintf(out, "CPU: µs per word of this process (the worker) and of the broker (-: not measured) until the last word counted\n\n")
	fmt.Fprintf(out, "%-4s %-30s %10s %10s %10s %8s %6s %9s %7s %7s %7s\n", "run", "mode", "lines/s", "words/s", "elapsed", "commits", "aborts", "outputs", "repeats", "CPU wkr", "CPU brk")
	rates := make([][]float64, len(wordCountModes)) // [mode][run] lines/s
	for r := 0; r < cfg.Runs; r++ {
		for j := range wordCountModes {
			i := (r + j) % len(wordCountModes) // rotate the order from run to run
			m := wordCountModes[i]
			c := base
			c.WorkDir = filepath.Join(tmp, fmt.Sprintf("wc-%d-%d", r, i))
			app := fmt.Sprintf("perf-eos-wc-%s-%d-%d", id, r, i)
			fmt.Fprintf(errw, "== run %d: %s\n", r+1, m.name)
			run := streambench.WordCountRun{In: in, Out: app + "-out", AppID: app, Guarantee: m.guarantee, CommitInterval: m.commit, BrokerPID: brokerPID}
			res, err := perfEOSWordCount(ctx, c, run, profilePath(cfg.CPUProfile, r, m), lines)
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", r+1, m.name, err)
			}
			rates[i] = append(rates[i], res.LineRate())
			fmt.Fprintf(out, "%-4d %-30s %10.0f %10.0f %10s %8d %6d %9d %7d %7s %7s\n", r+1, m.name, res.LineRate(), res.WordRate(),
				res.Elapsed.Round(time.Millisecond), res.Commits, res.Aborts, res.Verify.Records, res.Verify.Repeats,
				perWord(res.WorkerCPU, res.Words), perWord(res.BrokerCPU, res.Words))
			if m.guarantee == eddyruntime.ExactlyOnce && res.Verify.Repeats > 0 {
				return fmt.Errorf("run %d, %s: %d output records repeat or lower a word's count", r+1, m.name, res.Verify.Repeats)
			}
		}
	}
	fmt.Fprintf(out, "\n%-34s %14s %26s\n", "mode (lines/s)", "median", "range")
	for i, m := range wordCountModes {
		lo, hi := slices.Min(rates[i]), slices.Max(rates[i])
		fmt.Fprintf(out, "%-34s %14.0f %12.0f – %-12.0f\n", m.name, median(rates[i]), lo, hi)
	}
	eos := rates[2]
	for i, name := range []string{"ratio exactly_once/at_least_once(100ms)", "ratio exactly_once/at_least_once(30s)"} {
		ratios := make([]float64, len(eos))
		for r := range eos {
			ratios[r] = eos[r] / rates[i][r]
		}
		verdict := "met"
		if median(ratios) < eosTarget {
			verdict = "MISSED"
		}
		fmt.Fprintf(out, "%-40s %7.2fx (range %.2f–%.2f; target >= %.2fx: %s)\n", name, median(ratios), slices.Min(ratios), slices.Max(ratios), eosTarget, verdict)
	}
	return nil
}

// profilePath returns where to write the CPU profile of run r in mode m
// ("" for none): the first run's exactly_once and at_least_once 100ms.
func profilePath(prefix string, r int, m wordCountMode) string {
	if prefix == "" || r > 0 || m.commit != 100*time.Millisecond {
		return ""
	}
	return prefix + "." + string(m.guarantee) + ".prof"
}

// perWord formats CPU time per word in µs, "-" for none.
func perWord(cpu time.Duration, words int64) string {
	if cpu <= 0 || words <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(cpu.Microseconds())/float64(words))
}

func perfEOSWordCount(ctx context.Context, c streambench.Config, run streambench.WordCountRun, prof string, lines streambench.Lines) (streambench.WordCountResult, error) {
	if prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return streambench.WordCountResult{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return streambench.WordCountResult{}, err
		}
		defer pprof.StopCPUProfile()
	}
	return streambench.EddyWordCount(ctx, c, run, lines)
}

// median returns the median of xs (the mean of the middle two when even).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// restartCase is one measured restart.
type restartCase struct {
	name string
	// Running: from starting the process to every task running, as seen
	// by this process; Assigned and Restore: the worker's own times to
	// its first assignment and from there to running.
	Running, Assigned, Restore time.Duration
	Restored                   int64
	Tasks                      int
}

// perfEOSRestart kills count workers and times their restarts.
func perfEOSRestart(ctx context.Context, exe, brokers, tmp, id string, cfg perfEOSConfig, out, errw io.Writer) error {
	topic := "perf-eos-state-" + id
	fc := streambench.Config{Brokers: []string{brokers}, Records: cfg.RestartRecords, Keys: cfg.RestartKeys, Partitions: cfg.RestartParts}
	fmt.Fprintf(errw, "== fill %s: %d records over %d keys\n", topic, cfg.RestartRecords, cfg.RestartKeys)
	if err := streambench.Fill(ctx, fc, topic); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	killAt := int64(cfg.KillAt * float64(cfg.RestartRecords))
	fmt.Fprintf(out, "\nrestart after kill -9: count per key of %d records over %d keys, %d partitions (tasks), 1 stream thread; killed (SIGKILL) after %d records processed; session timeout %v\n\n",
		cfg.RestartRecords, cfg.RestartKeys, cfg.RestartParts, killAt, cfg.SessionTimeout)
	guarantees := []eddyruntime.Guarantee{eddyruntime.ExactlyOnce}
	if cfg.ALOSRestart {
		guarantees = append(guarantees, eddyruntime.AtLeastOnce)
	}
	var cases []restartCase
	for _, g := range guarantees {
		w := restartWorker{exe: exe, brokers: brokers, topic: topic, guarantee: g, session: cfg.SessionTimeout,
			commit: cfg.ALOSCommit, profile: cfg.RestartCPU,
			appID: fmt.Sprintf("perf-eos-restart-%s-%s", id, g), stateDir: filepath.Join(tmp, "restart-"+string(g))}
		fmt.Fprintf(errw, "== %s: run until %d records processed, then SIGKILL\n", g, killAt)
		if _, err := w.start(ctx, "first", killAt, true); err != nil {
			return err
		}
		fmt.Fprintf(errw, "== %s: restart on the same state directory\n", g)
		same, err := w.start(ctx, "same", 0, false)
		if err != nil {
			return err
		}
		// It was stopped cleanly once running: only its restart counts,
		// and its CPU profile got written.
		same.name = string(g) + ", same state dir"
		if g == eddyruntime.AtLeastOnce {
			same.name += fmt.Sprintf(" (commit %v)", commitOrDefault(cfg.ALOSCommit))
		}
		cases = append(cases, same)
		if g != eddyruntime.ExactlyOnce {
			continue
		}
		// Kafka Streams' way after an unclean stop under exactly-once:
		// wipe the tasks' state, keep the process id (the transactional
		// ids), then restore every store from its changelog.
		if err := wipeTaskState(filepath.Join(w.stateDir, w.appID)); err != nil {
			return err
		}
		fmt.Fprintf(errw, "== %s: restart with the tasks' state wiped\n", g)
		wiped, err := w.start(ctx, "wiped", 0, false)
		if err != nil {
			return err
		}
		wiped.name = string(g) + ", state wiped (full restore)"
		cases = append(cases, wiped)
	}
	fmt.Fprintf(out, "%-46s %12s %12s %12s %10s %6s\n", "restart", "to running", "group join", "restore", "restored", "tasks")
	for _, c := range cases {
		fmt.Fprintf(out, "%-46s %12s %12s %12s %10d %6d\n", c.name, c.Running.Round(time.Millisecond), c.Assigned.Round(time.Millisecond),
			c.Restore.Round(time.Millisecond), c.Restored, c.Tasks)
	}
	if len(cases) >= 2 && cases[0].Restore > 0 {
		// (a) follows a kill, so its join waits for the dead member's
		// session; (b) follows a clean stop: compare the restore phases.
		fmt.Fprintf(out, "%-46s %11.1fx (restore phase)\n", "ratio full restore / same state dir",
			cases[1].Restore.Seconds()/cases[0].Restore.Seconds())
	}
	return nil
}

// wipeTaskState removes everything in an application's state directory
// but its process id.
func wipeTaskState(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == "process.id" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// restartWorker starts `eddy perf eos-worker` subprocesses of one
// application on one state directory.
type restartWorker struct {
	exe, brokers, topic, appID, stateDir string
	guarantee                            eddyruntime.Guarantee
	// session: the group session timeout; commit: the commit interval
	// under at_least_once (exactly_once keeps its default).
	session, commit time.Duration
	// profile: prefix of the restarts' CPU profiles ("": none).
	profile string
}

// start runs a worker until it processed killAt records (0: until it
// runs) and stops it: with SIGKILL when kill, else with SIGTERM, waiting
// for it to exit cleanly. It returns the worker's restart times.
func (w restartWorker) start(ctx context.Context, label string, killAt int64, kill bool) (restartCase, error) {
	logPath := filepath.Join(filepath.Dir(w.stateDir), fmt.Sprintf("worker-%s-%s.log", w.guarantee, label))
	logf, err := os.Create(logPath)
	if err != nil {
		return restartCase{}, err
	}
	defer logf.Close()
	cmd := exec.Command(w.exe, "--brokers", w.brokers, "perf", "eos-worker", "--app-id", w.appID, "--state-dir", w.stateDir,
		"--topic", w.topic, "--guarantee", string(w.guarantee), "--session-timeout", w.session.String())
	if w.guarantee == eddyruntime.AtLeastOnce {
		cmd.Args = append(cmd.Args, "--commit-interval", w.commit.String())
	}
	if w.profile != "" && killAt == 0 {
		cmd.Args = append(cmd.Args, "--cpuprofile", fmt.Sprintf("%s.%s-%s.prof", w.profile, w.guarantee, label))
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return restartCase{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return restartCase{}, fmt.Errorf("start worker: %w", err)
	}
	events := make(chan streambench.WorkerEvent, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev streambench.WorkerEvent
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
	}()
	stop := func(sig os.Signal) error {
		cmd.Process.Signal(sig) //nolint:errcheck // reported by Wait
		for range events {      // drain until the worker's stdout closes
		}
		err := cmd.Wait()
		if sig == os.Kill {
			return nil
		}
		if err != nil {
			return fmt.Errorf("worker %s did not stop cleanly: %w\n%s", label, err, tail(logPath))
		}
		return nil
	}
	timeout := time.NewTimer(5 * time.Minute)
	defer timeout.Stop()
	var res restartCase
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				err := cmd.Wait()
				return res, fmt.Errorf("worker %s exited (%v) before reaching its goal\n%s", label, err, tail(logPath))
			}
			if ev.Event == "running" && res.Running == 0 {
				res.Running = time.Since(start)
				res.Assigned, res.Restore = ev.Assigned, ev.Running-ev.Assigned
				res.Restored, res.Tasks = ev.Restored, ev.Tasks
			}
			if res.Running > 0 && ev.Processed >= killAt {
				sig := os.Signal(os.Kill)
				if !kill {
					sig = os.Interrupt
				}
				return res, stop(sig)
			}
		case <-timeout.C:
			stop(os.Kill) //nolint:errcheck // failing anyway
			return res, fmt.Errorf("worker %s: no progress to %d records within 5 minutes\n%s", label, killAt, tail(logPath))
		case <-ctx.Done():
			stop(os.Kill) //nolint:errcheck // interrupted
			return res, ctx.Err()
		}
	}
}

// perfEOSWorkerCmd is the hidden worker `perf eos` starts and kills.
func perfEOSWorkerCmd(a *app) *cobra.Command {
	var cfg streambench.CountWorkerConfig
	var guarantee, profile string
	c := &cobra.Command{
		Use:    "eos-worker",
		Short:  "Count worker killed and restarted by perf eos (prints JSON events on stdout)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Brokers = strings.Split(a.brokers, ",")
			cfg.Guarantee = eddyruntime.Guarantee(guarantee)
			cfg.Logger = a.clientLog
			if profile != "" {
				f, err := os.Create(profile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			err := streambench.RunCountWorker(cmd.Context(), cfg, func(ev streambench.WorkerEvent) { enc.Encode(ev) }) //nolint:errcheck // the parent sees a closed pipe
			if cmd.Context().Err() != nil {
				return nil // stopped by a signal
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.ApplicationID, "app-id", "", "application id")
	f.StringVar(&cfg.StateDir, "state-dir", "", "state directory")
	f.StringVar(&cfg.Topic, "topic", "", "input topic")
	f.StringVar(&guarantee, "guarantee", string(eddyruntime.ExactlyOnce), "at_least_once or exactly_once")
	f.DurationVar(&cfg.CommitInterval, "commit-interval", 0, "commit interval (0: the guarantee's default)")
	f.DurationVar(&cfg.SessionTimeout, "session-timeout", 0, "group session timeout (0: franz-go's default)")
	f.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	for _, n := range []string{"app-id", "state-dir", "topic"} {
		c.MarkFlagRequired(n) //nolint:errcheck // flag exists
	}
	return c
}

// commitOrDefault returns d, or at_least_once's default commit interval
// when d is 0.
func commitOrDefault(d time.Duration) time.Duration {
	if d == 0 {
		return eddyruntime.DefaultCommitInterval
	}
	return d
}
