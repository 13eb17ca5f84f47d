package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
)

func TestWordCount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 3, "text-lines", "word-counts")
		reg := prometheus.NewRegistry()
		cfg := testConfig(t, "wc", brokers)
		cfg.Registerer = reg
		cfg.NumStreamThreads = 2
		cfg.ApplicationServer = "127.0.0.1:7001"
		app := start(t, wordcount(t), cfg)
		app.waitRunning(t)

		want := map[string]int64{}
		produce(t, brokers, "text-lines", lines(0, 60, want)...)
		out := newReader(t, brokers, "word-counts")
		out.waitFor(t, 30*time.Second, "exact counts", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })

		// Interactive queries see the committed counts.
		eventually(t, 10*time.Second, "queryable counts", func() bool {
			n, ok, err := Query(app.App, "counts", "kafka", serde.String(), serde.Int64())
			return err == nil && ok && n == want["kafka"]
		})
		h, err := app.KeyOwner("counts", []byte("kafka"))
		if err != nil || h.String() != "127.0.0.1:7001" {
			t.Errorf("KeyOwner = %v, %v", h, err)
		}
		got := storeInt64s(t, app.App, "counts")
		if !equalCounts(got, want) {
			t.Errorf("store All = %v, want %v", got, want)
		}
		if _, err := app.Store("nope"); !errors.Is(err, ErrUnknownStore) {
			t.Errorf("Store(nope) = %v", err)
		}
		active, _ := app.Tasks()
		if len(active) != 6 { // 2 sub-topologies × 3 partitions
			t.Errorf("active tasks %v", active)
		}
		if n := metricValue(app.metrics.processed.WithLabelValues("0")) + metricValue(app.metrics.processed.WithLabelValues("1")); n < 60 {
			t.Errorf("records_processed_total = %v", n)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, mf := range mfs {
			names[mf.GetName()] = true
		}
		for _, n := range []string{"eddy_streams_process_latency_seconds", "eddy_streams_commit_latency_seconds", "eddy_streams_store_entries",
			"eddy_streams_end_to_end_latency_seconds", "eddy_streams_records_processed_total", "eddy_streams_active_tasks"} {
			if !names[n] {
				t.Errorf("metric %s not gathered", n)
			}
		}
		app.stop(t)
	})
}

func TestScaleOutAndIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 4, "text-lines", "word-counts")
		top := wordcount(t)
		want := map[string]int64{}
		out := newReader(t, brokers, "word-counts")

		a := start(t, top, testConfig(t, "scale", brokers))
		b := start(t, top, testConfig(t, "scale", brokers))
		produce(t, brokers, "text-lines", lines(0, 40, want)...)
		out.waitFor(t, 30*time.Second, "counts with two workers", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
		eventually(t, 10*time.Second, "tasks split over both workers", func() bool {
			aa, _ := a.Tasks()
			ba, _ := b.Tasks()
			return len(aa) > 0 && len(ba) > 0 && len(aa)+len(ba) == 8
		})

		// Mid-stream: more input, then a graceful stop of one worker.
		produce(t, brokers, "text-lines", lines(40, 40, want)...)
		a.stop(t)
		c := start(t, top, testConfig(t, "scale", brokers))
		produce(t, brokers, "text-lines", lines(80, 40, want)...)
		out.waitFor(t, 40*time.Second, "exact counts after scaling", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
		eventually(t, 10*time.Second, "tasks split over the remaining workers", func() bool {
			ba, _ := b.Tasks()
			ca, _ := c.Tasks()
			return len(ba) > 0 && len(ca) > 0 && len(ba)+len(ca) == 8
		})
		b.stop(t)
		c.stop(t)
	})
}

func TestRestoreAfterStateDirLoss(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 2, "text-lines", "word-counts")
		top := wordcount(t)
		want := map[string]int64{}
		out := newReader(t, brokers, "word-counts")
		cfg := testConfig(t, "restore", brokers)

		a := start(t, top, cfg)
		produce(t, brokers, "text-lines", lines(0, 50, want)...)
		out.waitFor(t, 30*time.Second, "first counts", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
		a.stop(t)
		ckpt := filepath.Join(cfg.StateDir, "restore", "1_0", checkpointFile)
		if _, err := os.Stat(ckpt); err != nil {
			t.Fatalf("no checkpoint after a clean stop: %v", err)
		}
		if err := os.RemoveAll(cfg.StateDir); err != nil {
			t.Fatal(err)
		}

		reg := prometheus.NewRegistry()
		cfg.Registerer = reg
		b := start(t, top, cfg)
		b.waitRunning(t)
		// Restored before processing: the store has every count.
		for w, n := range want {
			got, ok, err := Query(b.App, "counts", w, serde.String(), serde.Int64())
			if err != nil || !ok || got != n {
				t.Fatalf("restored count of %s = %d %v %v, want %d", w, got, ok, err, n)
			}
		}
		if n := metricValue(b.metrics.restored.WithLabelValues("counts")); n < float64(len(want)) {
			t.Errorf("restored_records_total = %v, want ≥ %d", n, len(want))
		}
		produce(t, brokers, "text-lines", lines(50, 30, want)...)
		out.waitFor(t, 30*time.Second, "counts continuing after restore", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
		b.stop(t)

		// A clean restart restores nothing: the checkpoint covers the store.
		reg = prometheus.NewRegistry()
		cfg.Registerer = reg
		c := start(t, top, cfg)
		c.waitRunning(t)
		if n := metricValue(c.metrics.restored.WithLabelValues("counts")); n != 0 {
			t.Errorf("restart after a clean stop restored %v records", n)
		}
		c.stop(t)
	})
}

func TestDeadLetterTopic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 1, "numbers", "doubled", "dlq")
		b := stream.NewBuilder()
		nums := stream.Stream(b, stream.With(serde.String(), serde.Int64()), "numbers")
		stream.MapValues(nums, func(_ string, v int64) int64 { return 2 * v }).To("doubled", stream.Produced[string, int64]{})
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(t, "dlq-app", brokers)
		cfg.Errors = stream.ErrorHandlers{Deserialization: stream.LogAndContinue, DeadLetterTopic: "dlq"}
		app := start(t, top, cfg)
		enc := func(v int64) string { b, _ := serde.Int64().Serialize("", v); return string(b) }
		produce(t, brokers, "numbers", [2]string{"a", enc(1)}, [2]string{"bad", "xyz"}, [2]string{"b", enc(5)})

		out := newReader(t, brokers, "doubled")
		out.waitFor(t, 30*time.Second, "good records", func(recs []*kgo.Record) bool {
			m := latest(t, recs)
			return m["a"] == 2 && m["b"] == 10 && len(recs) == 2
		})
		dlq := newReader(t, brokers, "dlq")
		dlq.waitFor(t, 30*time.Second, "dead letter", func(recs []*kgo.Record) bool { return len(recs) == 1 })
		r := dlq.recs[0]
		headers := map[string]string{}
		for _, h := range r.Headers {
			headers[h.Key] = string(h.Value)
		}
		if string(r.Key) != "bad" || string(r.Value) != "xyz" || headers[stream.HeaderErrorException] != "deserialization" ||
			headers[stream.HeaderErrorTopic] != "numbers" || headers[stream.HeaderErrorOffset] != "1" || headers[stream.HeaderErrorMessage] == "" {
			t.Errorf("dead letter %q=%q headers %v", r.Key, r.Value, headers)
		}
		app.stop(t)
	})
}

func TestFatalDeserializationError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 1, "numbers", "doubled")
		b := stream.NewBuilder()
		nums := stream.Stream(b, stream.With(serde.String(), serde.Int64()), "numbers")
		stream.MapValues(nums, func(_ string, v int64) int64 { return 2 * v }).To("doubled", stream.Produced[string, int64]{})
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		app := start(t, top, testConfig(t, "fail-app", brokers)) // default: log and fail
		produce(t, brokers, "numbers", [2]string{"bad", "xyz"})
		app.checked = true
		select {
		case err := <-app.errc:
			var te *stream.TaskError
			if !errors.As(err, &te) || te.Kind != "deserialization" {
				t.Errorf("Run = %v, want a deserialization TaskError", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not fail")
		}
	})
}

func TestTopicErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 2, "left")
		createTopics(t, brokers, 3, "right")
		b := stream.NewBuilder()
		l := stream.Stream(b, stream.With(serde.String(), serde.String()), "left")
		r := stream.Table(b, "right", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{Name: "right-store"})
		stream.JoinTable(l, r, func(_ string, a, b string) string { return a + b }, stream.Joined[string, string]{Name: "my-join"}).
			To("joined", stream.Produced[string, string]{})
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(top, testConfig(t, "copart", brokers))
		if err != nil {
			t.Fatal(err)
		}
		err = a.Run(context.Background())
		if !errors.Is(err, ErrTopics) || !strings.Contains(err.Error(), "join") || !strings.Contains(err.Error(), "left (2 partitions)") ||
			!strings.Contains(err.Error(), "right (3 partitions)") {
			t.Errorf("co-partition mismatch: %v", err)
		}

		a, err = New(wordcount(t), testConfig(t, "missing", brokers))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Run(context.Background()); !errors.Is(err, ErrTopics) || !strings.Contains(err.Error(), "text-lines") {
			t.Errorf("missing source topic: %v", err)
		}
	})
}

func TestStandbyPromotion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 2, "text-lines", "word-counts")
		top := wordcount(t)
		want := map[string]int64{}
		out := newReader(t, brokers, "word-counts")
		cfgA, cfgB := testConfig(t, "standby", brokers), testConfig(t, "standby", brokers)
		cfgA.NumStandbyReplicas, cfgB.NumStandbyReplicas = 1, 1
		a := start(t, top, cfgA)
		b := start(t, top, cfgB)
		produce(t, brokers, "text-lines", lines(0, 50, want)...)
		out.waitFor(t, 30*time.Second, "counts", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })

		// Each worker keeps a standby of the other's counting tasks: between
		// them the standbys hold every count.
		eventually(t, 20*time.Second, "standby copies of every count", func() bool {
			_, as := a.Tasks()
			_, bs := b.Tasks()
			if len(as)+len(bs) != 2 { // the two tasks of the counting sub-topology
				return false
			}
			got := standbyCounts(t, a.App, "counts")
			for k, v := range standbyCounts(t, b.App, "counts") {
				got[k] = v
			}
			return equalCounts(got, want)
		})

		a.stop(t)
		eventually(t, 20*time.Second, "b owns every task", func() bool {
			act, _ := b.Tasks()
			return len(act) == 4
		})
		if b.promoted.Load() == 0 {
			t.Error("no standby was promoted")
		}
		produce(t, brokers, "text-lines", lines(50, 30, want)...)
		out.waitFor(t, 30*time.Second, "counts after promotion", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
		b.stop(t)
	})
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		return -1
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// standbyCounts reads the standby copies of store in a.
func standbyCounts(t *testing.T, a *App, store string) map[string]int64 {
	copies := a.acquire(a.sstores, store)
	defer release(copies)
	out := map[string]int64{}
	for _, q := range copies {
		for e, err := range q.kv.All() {
			if err != nil {
				t.Error(err)
				return out
			}
			v, _, err := stream.DecodeStoreValue(e.Value)
			if err != nil {
				t.Error(err)
				return out
			}
			out[string(e.Key)], _ = serde.Int64().Deserialize("", v)
		}
	}
	return out
}

func TestNewErrors(t *testing.T) {
	top := wordcount(t)
	cfg := DefaultConfig("x", "127.0.0.1:1")
	cfg.Guarantee = "exactly_once_beta"
	if _, err := New(top, cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("unknown guarantee: %v", err)
	}
	if _, err := New(top, Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("empty config: %v", err)
	}
	if _, err := New(nil, DefaultConfig("x", "127.0.0.1:1")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil topology: %v", err)
	}
	a, err := New(top, DefaultConfig("x", "127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestProductionErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 1, "in", "dlq")
		b := stream.NewBuilder()
		stream.Stream(b, stream.With(serde.String(), serde.String()), "in").To("no-such-topic", stream.Produced[string, string]{})
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		opts := []kgo.Opt{kgo.UnknownTopicRetries(1)}

		cfg := testConfig(t, "prod-continue", brokers)
		cfg.ClientOptions = append(cfg.ClientOptions, opts...)
		cfg.Errors = stream.ErrorHandlers{Production: stream.LogAndContinue, DeadLetterTopic: "dlq"}
		app := start(t, top, cfg)
		produce(t, brokers, "in", [2]string{"k", "v"})
		dlq := newReader(t, brokers, "dlq")
		dlq.waitFor(t, 30*time.Second, "dead letter", func(recs []*kgo.Record) bool { return len(recs) == 1 })
		if string(dlq.recs[0].Value) != "v" {
			t.Errorf("dead letter value %q", dlq.recs[0].Value)
		}
		eventually(t, 10*time.Second, "dropped count", func() bool {
			return metricValue(app.metrics.dropped.WithLabelValues("0", "production")) == 1
		})
		app.stop(t)

		cfg = testConfig(t, "prod-fail", brokers)
		cfg.ClientOptions = append(cfg.ClientOptions, opts...)
		failing := start(t, top, cfg)
		failing.checked = true
		select {
		case err := <-failing.errc:
			var te *stream.TaskError
			if !errors.As(err, &te) || te.Kind != "production" || !strings.Contains(err.Error(), "no-such-topic") {
				t.Errorf("Run = %v, want a production TaskError", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not fail")
		}
	})
}
