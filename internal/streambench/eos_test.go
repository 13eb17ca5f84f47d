package streambench

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/runtime"
)

// startTestBroker runs an in-process eddy broker on a random port.
func startTestBroker(t testing.TB) []string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = ""
	s, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return []string{s.Addr()}
}

func count(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// TestVerifyCounts checks the verifier on a topic with a repeat and an
// aborted transaction: it reads committed records only, takes the latest
// count per key, counts repeats, and fails on wrong or unexpected keys.
func TestVerifyCounts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers := startTestBroker(t)
	const topic = "verify"
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.TransactionalID("verify-test"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := createTopics(ctx, kadm.NewClient(cl), 2, topic); err != nil {
		t.Fatal(err)
	}
	txn := func(commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(k string, n int64, p int32) *kgo.Record {
		return &kgo.Record{Key: []byte(k), Value: count(n), Partition: p}
	}
	txn(true, rec("a", 1, 0), rec("a", 2, 0), rec("b", 1, 1))
	txn(false, rec("a", 99, 0), rec("c", 1, 1)) // aborted: invisible
	txn(true, rec("a", 3, 0), rec("b", 1, 1))   // b repeats its count

	v, err := VerifyCounts(ctx, brokers, topic, map[string]int64{"a": 3, "b": 1})
	if err != nil {
		t.Fatal(err)
	}
	if v != (Verified{Records: 5, Keys: 2, Repeats: 1}) {
		t.Fatalf("verified %+v, want 5 records, 2 keys, 1 repeat", v)
	}
	for _, want := range []map[string]int64{
		{"a": 3, "b": 2},         // wrong count
		{"a": 3},                 // unexpected key b
		{"a": 3, "b": 1, "c": 1}, // missing key c (only in the aborted transaction)
	} {
		if _, err := VerifyCounts(ctx, brokers, topic, want); !errors.Is(err, ErrCountsWrong) {
			t.Errorf("want %v: err %v, want ErrCountsWrong", want, err)
		}
	}
}

// TestEddyWordCount runs the word count under both guarantees on a small
// input: every run verifies its output, and exactly-once commits
// transactions.
func TestEddyWordCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := startTestBroker(t)
	cfg := Config{Brokers: brokers, Records: 3000, Keys: 200, Partitions: 3}
	lines, err := FillLines(ctx, cfg, "lines", 4)
	if err != nil {
		t.Fatal(err)
	}
	if lines.Lines != 3000 || lines.Words != 12000 || len(lines.Counts) != 200 {
		t.Fatalf("filled %d lines, %d words, %d distinct", lines.Lines, lines.Words, len(lines.Counts))
	}
	for _, g := range []runtime.Guarantee{runtime.AtLeastOnce, runtime.ExactlyOnce} {
		c := cfg
		c.WorkDir = t.TempDir()
		res, err := EddyWordCount(ctx, c, WordCountRun{In: "lines", Out: "out-" + string(g), AppID: "wc-" + string(g),
			Guarantee: g, CommitInterval: 50 * time.Millisecond}, lines)
		if err != nil {
			t.Fatalf("%s: %v", g, err)
		}
		if res.Words != 12000 || res.LineRate() <= 0 || res.Verify.Keys != 200 || res.Verify.Repeats != 0 {
			t.Fatalf("%s: %+v", g, res)
		}
		if (res.Commits > 0) != (g == runtime.ExactlyOnce) || res.Aborts != 0 {
			t.Fatalf("%s: %d transactions committed, %d aborted", g, res.Commits, res.Aborts)
		}
	}
	// A run against the wrong expectation fails.
	lines.Counts["w00000"]++
	c := cfg
	c.WorkDir = t.TempDir()
	if _, err := EddyWordCount(ctx, c, WordCountRun{In: "lines", Out: "out-wrong", AppID: "wc-wrong", Guarantee: runtime.ExactlyOnce}, lines); !errors.Is(err, ErrCountsWrong) {
		t.Fatalf("wrong expectation: %v, want ErrCountsWrong", err)
	}
}

func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU(0)
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); {
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil || after-before < 100*time.Millisecond {
		t.Fatalf("CPU time %v → %v (%v) after 200ms of spinning", before, after, err)
	}
}

// BenchmarkEddyWordCount runs the word count of `eddy perf eos` per
// guarantee on b.N lines of 5 words over 10,000 words against an
// in-process broker, reporting lines/s (the broker shares the process;
// `eddy perf eos` is the reference).
func BenchmarkEddyWordCount(b *testing.B) {
	for _, m := range []struct {
		name   string
		g      runtime.Guarantee
		commit time.Duration
	}{
		{"alos-100ms", runtime.AtLeastOnce, 100 * time.Millisecond},
		{"alos-30s", runtime.AtLeastOnce, 30 * time.Second},
		{"eos-100ms", runtime.ExactlyOnce, 100 * time.Millisecond},
	} {
		b.Run(m.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cfg := Config{Brokers: startTestBroker(b), Records: max(b.N, 1000), Keys: 10_000, WorkDir: b.TempDir()}
			lines, err := FillLines(ctx, cfg, "lines", 5)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			res, err := EddyWordCount(ctx, cfg, WordCountRun{In: "lines", Out: "out", AppID: "wc", Guarantee: m.g, CommitInterval: m.commit}, lines)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.LineRate(), "lines/s")
		})
	}
}
