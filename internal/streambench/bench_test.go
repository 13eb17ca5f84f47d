package streambench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/broker"
)

// startBroker runs an in-process eddy broker for the benchmarks.
func startBroker(b *testing.B) string {
	cfg := broker.DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = ""
	s, err := broker.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s.Addr()
}

// benchScenario fills the input and measures run. Environment:
// STREAMBENCH_BROKERS runs on that cluster instead of an in-process eddy
// broker, STREAMBENCH_THREADS sets the eddy worker's stream threads,
// STREAMBENCH_CPUPROFILE and STREAMBENCH_TRACE write a CPU profile and an
// execution trace of the measured phase to the given paths.
func benchScenario(b *testing.B, name string, run func(context.Context, Config, string) (Result, error)) {
	benchScenarioWith(b, name, nil, run)
}

// benchScenarioWith is benchScenario with tweak applied to the Config.
func benchScenarioWith(b *testing.B, name string, tweak func(*Config), run func(context.Context, Config, string) (Result, error)) {
	var addr string
	if brokers := os.Getenv("STREAMBENCH_BROKERS"); brokers != "" {
		// A broker that may have served earlier runs: fresh topics.
		addr = brokers
		name = fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	} else {
		addr = startBroker(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := Config{Brokers: strings.Split(addr, ","), Records: b.N, WorkDir: b.TempDir()}
	if n, err := strconv.Atoi(os.Getenv("STREAMBENCH_THREADS")); err == nil {
		cfg.Threads = n
	}
	if cfg.Records < 1000 {
		cfg.Records = 1000
	}
	if tweak != nil {
		tweak(&cfg)
	}
	if err := Fill(ctx, cfg, name); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if path := os.Getenv("STREAMBENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if path := os.Getenv("STREAMBENCH_TRACE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			b.Fatal(err)
		}
		defer trace.Stop()
	}
	cpu0 := cpuTime()
	r, err := run(ctx, cfg, name)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.Rate(), "rec/s")
	// The process's CPU time per record (broker included): steadier than
	// the rate on a shared machine.
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(cfg.Records), "cpu-ns/rec")
	}
}

// The benchmarks run on an in-process eddy broker; `eddy perf streams`
// runs the broker as a separate process and reports the goka ratio.

func BenchmarkEddyCount(b *testing.B) { benchScenario(b, "count", EddyCount) }

func BenchmarkEddyStateless(b *testing.B) { benchScenario(b, "stateless", EddyStateless) }

func BenchmarkGokaCount(b *testing.B) { benchScenario(b, "goka", GokaCount) }

// windowedInput is `eddy perf streams`' windowed case input: 10,000 keys,
// event time advancing 1 ms a record.
func windowedInput(c *Config) { c.Keys, c.TimestampStep = 10_000, time.Millisecond }

// BenchmarkEddyCount10kKeys is the plain count on the windowed case's
// input (the baseline of BenchmarkEddyWindowedCount).
func BenchmarkEddyCount10kKeys(b *testing.B) {
	benchScenarioWith(b, "count10k", windowedInput, EddyCount)
}

// BenchmarkEddyWindowedCount counts per key in 1-minute tumbling windows
// over 10,000 keys, event time advancing 1 ms a record.
func BenchmarkEddyWindowedCount(b *testing.B) {
	benchScenarioWith(b, "windowed", windowedInput, func(ctx context.Context, c Config, topic string) (Result, error) {
		return EddyWindowedCount(ctx, c, topic, time.Minute)
	})
}
