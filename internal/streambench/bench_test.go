package streambench

import (
	"context"
	"os"
	"runtime/pprof"
	"strconv"
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

func benchScenario(b *testing.B, name string, run func(context.Context, Config, string) (Result, error)) {
	addr := startBroker(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := Config{Brokers: []string{addr}, Records: b.N, WorkDir: b.TempDir()}
	if n, err := strconv.Atoi(os.Getenv("STREAMBENCH_THREADS")); err == nil {
		cfg.Threads = n
	}
	if cfg.Records < 1000 {
		cfg.Records = 1000
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
	r, err := run(ctx, cfg, name)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.Rate(), "rec/s")
}

// The benchmarks run on an in-process eddy broker; `eddy perf streams`
// runs the broker as a separate process and reports the goka ratio.

func BenchmarkEddyCount(b *testing.B) { benchScenario(b, "count", EddyCount) }

func BenchmarkEddyStateless(b *testing.B) { benchScenario(b, "stateless", EddyStateless) }

func BenchmarkGokaCount(b *testing.B) { benchScenario(b, "goka", GokaCount) }
