package streambench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/serde/avro"
)

// pageViewEnv starts an in-process broker and eddy's registry on it.
func pageViewEnv(tb testing.TB) (string, avro.Registry) {
	tb.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.HTTP = tb.TempDir(), "127.0.0.1:0", ""
	s, err := broker.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url, stop, err := ServeRegistry(ctx, []string{s.Addr()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Error(err)
		}
	})
	reg, err := avro.NewRegistryClient(url)
	if err != nil {
		tb.Fatal(err)
	}
	return s.Addr(), reg
}

// TestPageViews runs the page-view pipeline in both formats on a small
// input: every view is processed, joined with its user and written.
func TestPageViews(t *testing.T) {
	addr, reg := pageViewEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, f := range []Format{JSON, Avro} {
		cfg := Config{Brokers: []string{addr}, Records: 3000, Keys: 50, Partitions: 2, WorkDir: t.TempDir()}
		prefix := "test-" + string(f)
		if err := FillPageViews(ctx, cfg, f, reg, prefix); err != nil {
			t.Fatal(err)
		}
		r, err := EddyPageViews(ctx, cfg, f, reg, prefix)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if r.Records != 3000 || r.Unjoined != 0 || r.Rate() <= 0 {
			t.Errorf("%s: %+v", f, r)
		}
	}
	if err := FillPageViews(ctx, Config{Brokers: []string{addr}}, "xml", reg, "x"); err == nil {
		t.Error("unknown format: no error")
	}
	if _, err := EddyPageViews(ctx, Config{Brokers: []string{addr}}, Avro, nil, "x"); err == nil {
		t.Error("Avro without a registry: no error")
	}
}

// benchPageViews measures the page-view pipeline in format f; b.N page
// views (at least 1000) over 1000 users. STREAMBENCH_CPUPROFILE writes a
// CPU profile of the measured run to the given path.
func benchPageViews(b *testing.B, f Format) {
	addr, reg := pageViewEnv(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := Config{Brokers: []string{addr}, Records: max(b.N, 1000), WorkDir: b.TempDir()}
	prefix := fmt.Sprintf("bench-%s", f)
	if err := FillPageViews(ctx, cfg, f, reg, prefix); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if path := os.Getenv("STREAMBENCH_CPUPROFILE"); path != "" {
		pf, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	r, err := EddyPageViews(ctx, cfg, f, reg, prefix)
	if err != nil {
		b.Fatal(err)
	}
	if r.Unjoined > 0 {
		b.Fatalf("%d views processed before their user was loaded", r.Unjoined)
	}
	b.ReportMetric(r.Rate(), "rec/s")
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(cfg.Records), "cpu-ns/rec")
	}
}

// BenchmarkPageViewsJSON and BenchmarkPageViewsAvro are the avro-pipeline
// example's topology with JSON and with Avro values (`eddy perf avro`
// runs both on a broker in its own process and prints the ratio).
func BenchmarkPageViewsJSON(b *testing.B) { benchPageViews(b, JSON) }

func BenchmarkPageViewsAvro(b *testing.B) { benchPageViews(b, Avro) }
