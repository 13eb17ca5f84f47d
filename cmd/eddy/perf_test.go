package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPerfProduceConsume(t *testing.T) {
	topic := newTopic(t)
	out, errOut, err := run(t, "", "perf", "produce", "--topic", topic, "--num-records", "5000", "--record-size", "50",
		"--partitions", "3", "--report-interval", "1ms", "--throughput", "50000")
	if err != nil {
		t.Fatalf("perf produce: %v\n%s", err, errOut)
	}
	m := regexp.MustCompile(`^5000 records sent, ([0-9.]+) records/sec \(([0-9.]+) MB/sec\), [0-9.]+ ms avg latency, [0-9.]+ ms max latency, [0-9.]+ ms 50th, [0-9.]+ ms 95th, [0-9.]+ ms 99th, [0-9.]+ ms 99.9th.\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("perf produce summary: %q", out)
	}
	// --throughput 50000 for 5000 records takes at least ~0.1 s.
	if rate, _ := strconv.ParseFloat(m[1], 64); rate <= 0 || rate > 60000 {
		t.Fatalf("rate %v outside (0, 60000] with --throughput 50000", rate)
	}
	if !strings.Contains(errOut, "records sent,") {
		t.Fatalf("no progress lines on stderr: %q", errOut)
	}
	desc := mustRun(t, "", "topic", "describe", topic)
	if !strings.Contains(desc, "PARTITIONS  3") {
		t.Fatalf("perf produce did not create a 3-partition topic:\n%s", desc)
	}

	out, errOut, err = run(t, "", "perf", "consume", "--topic", topic, "--messages", "5000")
	if err != nil {
		t.Fatalf("perf consume: %v\n%s", err, errOut)
	}
	if !regexp.MustCompile(`^5000 records received \(0\.24 MB\) in [0-9.]+ s, [0-9.]+ records/sec`).MatchString(out) {
		t.Fatalf("perf consume summary: %q", out)
	}
	out, errOut, err = run(t, "", "perf", "consume", "--topic", topic, "--messages", "5000", "--group", topic+"-g")
	if err != nil || !strings.HasPrefix(out, "5000 records received") {
		t.Fatalf("perf consume --group: %v %q\n%s", err, out, errOut)
	}
	// Asking for more than exists times out with a clear error.
	if _, _, err := run(t, "", "perf", "consume", "--topic", topic, "--messages", "5001", "--timeout", "300ms"); err == nil ||
		!strings.Contains(err.Error(), "after 5000 of 5001") {
		t.Fatalf("perf consume beyond the end: %v", err)
	}
}

func TestPerfLatency(t *testing.T) {
	out := mustRun(t, "", "perf", "latency", "--topic", newTopic(t), "--rate", "2000", "--duration", "500ms", "--warmup", "100ms")
	m := regexp.MustCompile(`^1000 records at 2000 records/sec for 500ms \(([0-9]+) measured after 100ms warm-up\): end-to-end latency [0-9.]+ ms avg, ([0-9.]+) ms 50th`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("perf latency summary: %q", out)
	}
	if n, _ := strconv.Atoi(m[1]); n < 700 || n > 900 {
		t.Fatalf("measured %d records, want about 800 (after warm-up)", n)
	}
}

func TestLatencyRecorder(t *testing.T) {
	l := newLatencyRecorder()
	for i := 1; i <= 1000; i++ {
		l.add(time.Duration(i) * time.Millisecond)
	}
	n, avg, mx := l.window()
	if n != 1000 || avg != 500500*time.Microsecond || mx != time.Second {
		t.Fatalf("window = %d %v %v", n, avg, mx)
	}
	if n, _, _ := l.window(); n != 0 {
		t.Fatal("window not reset")
	}
	s := l.summary()
	if s.Count != 1000 || s.P50 != 501*time.Millisecond || s.P99 != 991*time.Millisecond || s.P999 != time.Second || s.Max != time.Second {
		t.Fatalf("summary = %+v", s)
	}
	// Decimation keeps the distribution.
	d := []uint32{1, 2, 3, 4, 5}
	if got := decimate(d); len(got) != 3 || got[0] != 1 || got[1] != 3 || got[2] != 5 {
		t.Fatalf("decimate = %v", got)
	}
}

// TestPerfCompareKfake runs perf compare end to end against a kfake
// subprocess (the test binary re-executes itself as eddy).
func TestPerfCompareKfake(t *testing.T) {
	t.Setenv(runMainEnv, "1")
	out := mustRun(t, "", "perf", "compare", "--targets", "kfake", "--num-records", "3000",
		"--latency-rate", "2000", "--latency-duration", "300ms", "--latency-warmup", "0s")
	for _, want := range []string{"produce records/s", "consume records/s", "e2e latency p99 ms", "server peak RSS after produce MiB"} {
		if !strings.Contains(out, want) {
			t.Fatalf("compare output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`server peak RSS after produce MiB\s+[1-9][0-9]*`).MatchString(out) {
		t.Fatalf("no RSS measured:\n%s", out)
	}
}

// TestPerfStreamsWindowed runs perf streams' windowed case (plain and
// windowed count on one input) on a small input against the test cluster.
func TestPerfStreamsWindowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errOut, err := runCtx(ctx, "", "perf", "streams", "--records", "3000", "--keys", "10", "--partitions", "2",
		"--mem-partitions", "0", "--peer=false", "--window-keys", "100", "--window-step", "100ms", "--work-dir", t.TempDir(),
		"--windowed-cpuprofile", filepath.Join(t.TempDir(), "cpu.prof"))
	if err != nil {
		t.Fatalf("perf streams: %v\n%s\n%s", err, out, errOut)
	}
	for _, re := range []string{
		`count, 100 keys, eddy\s+[0-9]+`,
		`count, 1m0s tumbling windows\s+[0-9]+`,
		`windowed ratio windowed/plain\s+[0-9.]+x`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("perf streams output lacks %s:\n%s", re, out)
		}
	}
	if _, _, err := run(t, "", "perf", "streams", "--window-keys", "0"); err == nil || !strings.Contains(err.Error(), "--window-keys 0") {
		t.Fatalf("perf streams --window-keys 0: %v", err)
	}
}

// TestPerfSoakShort is the soak's short profile (about 95 s): a windowed
// count with 2 s windows and a 10 s retention, whose store must expire
// segments and stay within the entry bound. It starts its own broker
// subprocess (the test binary re-executes itself as eddy), so the RSS it
// samples is the worker's. Set EDDY_SOAK=1 to run it.
func TestPerfSoakShort(t *testing.T) {
	if os.Getenv("EDDY_SOAK") == "" {
		t.Skip("set EDDY_SOAK=1 to run the soak's short profile (about 95 s)")
	}
	t.Setenv(runMainEnv, "1")
	t.Setenv("EDDY_BROKERS", "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"perf", "soak", "--duration", "90s", "--window", "2s", "--retention", "10s", "--keys", "1000",
		"--rate", "2000", "--interval", "5s", "--commit-interval", "2s", "--work-dir", t.TempDir()})
	err := root.ExecuteContext(ctx)
	t.Logf("perf soak output:\n%s", out.String())
	if err != nil {
		t.Fatalf("perf soak: %v\n%s", err, errb.String())
	}
	rows := regexp.MustCompile(`(?m)^\s+[0-9hms]+\s+[0-9]+\s+[0-9]+\s+-?[0-9]+\s+[0-9.]+`).FindAllString(out.String(), -1)
	if len(rows) < 15 {
		t.Fatalf("%d sample rows, want about 18", len(rows))
	}
	for _, want := range []string{"ok   store entries <= bound", "ok   expiry (entries fell)", "ok   lag (keeps up)", "verdict: BOUNDED"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("perf soak output lacks %q", want)
		}
	}
}
