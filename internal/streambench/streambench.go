// Package streambench measures stream processing on a Kafka-protocol
// cluster: eddy's runtime against goka (the peer), in the same run, on the
// same broker. It backs `eddy perf streams` and the package benchmarks,
// and `eddy perf soak` (Soak, JudgeSoak): a windowed count worker fed at a
// steady rate, checked for state bounded by its retention.
//
// Each scenario reads a pre-filled input topic from the beginning and
// reports the rate between its first and its last processed record (for
// EddyStateless: until its last output record is written), so group joins
// and startup are not counted for either side.
package streambench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/runtime"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/window"
)

// Config describes one benchmark input.
type Config struct {
	// Brokers of the cluster.
	Brokers []string
	// Records in the input topic. Default 1,000,000.
	Records int
	// Keys: distinct keys, spread round-robin. Default 1,000.
	Keys int
	// Partitions of the input topic. Default 6.
	Partitions int32
	// ValueSize in bytes. Default 20.
	ValueSize int
	// WorkDir holds state directories. Required.
	WorkDir string
	// Threads is the eddy worker's stream threads. Default 1.
	Threads int
	// TimestampStep, when positive, gives Fill's records event timestamps
	// that advance steadily: record i gets base + i×TimestampStep, with base
	// chosen so that the last record is stamped about now (times in the
	// past would let the broker's time-based retention delete them). Zero
	// leaves the producer's timestamps (the time of the produce call).
	TimestampStep time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Records == 0 {
		c.Records = 1_000_000
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.Partitions == 0 {
		c.Partitions = 6
	}
	if c.ValueSize == 0 {
		c.ValueSize = 20
	}
	if c.Threads == 0 {
		c.Threads = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Result is one measured run.
type Result struct {
	Records int64
	Elapsed time.Duration
	// PeakRSS of the process after the run (bytes); set by callers that
	// measure it (eddy perf streams), 0 otherwise.
	PeakRSS int64
}

// Rate returns records per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// Fill creates topic (and topic+"-out" for EddyStateless) and produces cfg.Records records with keys
// "key-0000"… round-robin over cfg.Keys.
func Fill(ctx context.Context, cfg Config, topic string) error {
	cfg.defaults()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range []string{topic, topic + "-out"} {
		if _, err := adm.CreateTopic(ctx, cfg.Partitions, 1, nil, t); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("create %s: %w", t, err)
		}
	}
	// Values are random letters: as compressible as text, not a run of
	// one byte that snappy would shrink a hundredfold.
	rng := rand.New(rand.NewPCG(1, 2))
	var base time.Time
	if cfg.TimestampStep > 0 {
		base = time.Now().Add(-time.Duration(cfg.Records) * cfg.TimestampStep).Truncate(time.Minute)
	}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var failed atomic.Value
	for i := 0; i < cfg.Records; i++ {
		key := fmt.Appendf(nil, "key-%04d", i%cfg.Keys)
		val := make([]byte, cfg.ValueSize)
		for j := range val {
			val[j] = letters[rng.IntN(len(letters))]
		}
		rec := &kgo.Record{Topic: topic, Key: key, Value: val}
		if cfg.TimestampStep > 0 {
			rec.Timestamp = base.Add(time.Duration(i) * cfg.TimestampStep)
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return nil
}

// meter records the first and last processing time and the count.
type meter struct {
	n           atomic.Int64
	first, last atomic.Int64
	target      int64
	done        chan struct{}
}

func newMeter(target int) *meter { return &meter{target: int64(target), done: make(chan struct{})} }

// tick counts one processed record; it reads the clock only for the
// first and the last record (reading it per record would cost as much as
// the operators measured).
func (m *meter) tick() {
	n := m.n.Add(1)
	if n == 1 {
		m.first.Store(time.Now().UnixNano())
	}
	if n == m.target {
		m.last.Store(time.Now().UnixNano())
		close(m.done)
	}
}

func (m *meter) result() Result {
	return Result{Records: m.n.Load(), Elapsed: time.Duration(m.last.Load() - m.first.Load())}
}

func (m *meter) wait(ctx context.Context, errc <-chan error) error {
	select {
	case <-m.done:
		return nil
	case err := <-errc:
		if err == nil {
			err = errors.New("stopped before processing every record")
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("processed %d of %d records: %w", m.n.Load(), m.target, ctx.Err())
	}
}

// runApp runs the topology until m counted every record and, when out is
// not nil, until out saw every output record acknowledged.
func runApp(ctx context.Context, cfg Config, appID string, b *stream.Builder, m *meter, out *outputWatch) (Result, error) {
	top, err := b.Build()
	if err != nil {
		return Result{}, err
	}
	rc := runtime.DefaultConfig(appID, cfg.Brokers...)
	rc.StateDir = filepath.Join(cfg.WorkDir, "state")
	rc.NumStreamThreads = cfg.Threads
	rc.Logger = cfg.Logger
	app, err := runtime.New(top, rc)
	if err != nil {
		return Result{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- app.Run(rctx) }()
	werr := m.wait(ctx, errc)
	if werr == nil && out != nil {
		var last time.Time
		if last, werr = out.wait(ctx, errc); werr == nil {
			m.last.Store(last.UnixNano())
		}
	}
	cancel()
	if werr != nil {
		_ = app.Close()
		return Result{}, werr
	}
	if err := <-errc; err != nil {
		return Result{}, err
	}
	return m.result(), nil
}

// EddyCount counts records per key (groupByKey → count) with eddy's
// runtime (cfg.Threads stream threads).
func EddyCount(ctx context.Context, cfg Config, topic string) (Result, error) {
	cfg.defaults()
	m := newMeter(cfg.Records)
	b := stream.NewBuilder()
	stream.Stream(b, stream.With(serde.Bytes(), serde.Bytes()), topic).
		Peek(func([]byte, []byte) { m.tick() }).
		GroupByKey(stream.Grouped[[]byte, []byte]{}).
		Count(stream.Materialized[[]byte, int64]{Name: "counts"})
	return runApp(ctx, cfg, fmt.Sprintf("bench-count-%d", time.Now().UnixNano()), b, m, nil)
}

// EddyWindowedCount counts records per key in tumbling windows of the
// given size (groupByKey → windowedBy(tumbling) → count, the store's
// retention the default: size, so windows expire as event time moves on)
// with eddy's runtime. Fill the input with Config.TimestampStep set, so
// that windows open and close during the run.
func EddyWindowedCount(ctx context.Context, cfg Config, topic string, size time.Duration) (Result, error) {
	cfg.defaults()
	m := newMeter(cfg.Records)
	b := stream.NewBuilder()
	w := stream.Stream(b, stream.With(serde.Bytes(), serde.Bytes()), topic).
		Peek(func([]byte, []byte) { m.tick() }).
		GroupByKey(stream.Grouped[[]byte, []byte]{}).
		WindowedBy(window.Tumbling(size))
	stream.CountWindowed(w, stream.Materialized[[]byte, int64]{Name: "windowed-counts"})
	return runApp(ctx, cfg, fmt.Sprintf("bench-windowed-%d", time.Now().UnixNano()), b, m, nil)
}

// EddyStateless runs filter → mapValues → to(topic+"-out") and reports the
// rate end to end: from the first record processed to the moment every
// output record is in the output topic (acknowledged by the broker).
func EddyStateless(ctx context.Context, cfg Config, topic string) (Result, error) {
	cfg.defaults()
	out, err := newOutputWatch(ctx, cfg, topic+"-out")
	if err != nil {
		return Result{}, err
	}
	defer out.close()
	m := newMeter(cfg.Records)
	b := stream.NewBuilder()
	in := stream.Stream(b, stream.With(serde.Bytes(), serde.Bytes()), topic).
		Filter(func(k, v []byte) bool { return len(v) > 0 })
	stream.MapValues(in, func(_ []byte, v []byte) []byte { return v[:len(v)/2] }).
		Peek(func([]byte, []byte) { m.tick() }).
		To(topic+"-out", stream.Produced[[]byte, []byte]{})
	return runApp(ctx, cfg, fmt.Sprintf("bench-stateless-%d", time.Now().UnixNano()), b, m, out)
}

// outputWatch waits for records to land in an output topic: it compares
// the topic's end offsets with those it had before the run.
type outputWatch struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string
	base  int64
	want  int64
}

func newOutputWatch(ctx context.Context, cfg Config, topic string) (*outputWatch, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		return nil, err
	}
	w := &outputWatch{cl: cl, adm: kadm.NewClient(cl), topic: topic, want: int64(cfg.Records)}
	if w.base, err = w.end(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	return w, nil
}

func (w *outputWatch) close() { w.cl.Close() }

// end returns the sum of the topic's end offsets.
func (w *outputWatch) end(ctx context.Context) (int64, error) {
	offs, err := w.adm.ListEndOffsets(ctx, w.topic)
	if err != nil {
		return 0, err
	}
	if err := offs.Error(); err != nil {
		return 0, err
	}
	var sum int64
	offs.Each(func(o kadm.ListedOffset) { sum += o.Offset })
	return sum, nil
}

// wait polls the end offsets until every output record is in and returns
// when it saw them (within a millisecond).
func (w *outputWatch) wait(ctx context.Context, errc <-chan error) (time.Time, error) {
	for {
		n, err := w.end(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("end offsets of %s: %w", w.topic, err)
		}
		if n-w.base >= w.want {
			return time.Now(), nil
		}
		select {
		case err := <-errc:
			if err == nil {
				err = errors.New("stopped before producing every record")
			}
			return time.Time{}, err
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d of %d records in %s: %w", n-w.base, w.want, w.topic, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// GokaCount counts records per key with a goka processor (group table
// persisted with goka's codec.Int64, leveldb storage).
func GokaCount(ctx context.Context, cfg Config, topic string) (Result, error) {
	cfg.defaults()
	m := newMeter(cfg.Records)
	sc := goka.DefaultConfig()
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	goka.ReplaceGlobalConfig(sc)
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1
	group := goka.Group(fmt.Sprintf("bench-goka-%d", time.Now().UnixNano()))
	g := goka.DefineGroup(group,
		goka.Input(goka.Stream(topic), new(codec.Bytes), func(gctx goka.Context, _ any) {
			var c int64
			if v := gctx.Value(); v != nil {
				c = v.(int64)
			}
			gctx.SetValue(c + 1)
			m.tick()
		}),
		goka.Persist(new(codec.Int64)),
	)
	dir := filepath.Join(cfg.WorkDir, "goka")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Result{}, err
	}
	p, err := goka.NewProcessor(cfg.Brokers, g,
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(sc, tmc)),
		goka.WithStorageBuilder(storage.DefaultBuilder(dir)),
		goka.WithLogger(gokaLogger{}))
	if err != nil {
		return Result{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- p.Run(rctx) }()
	werr := m.wait(ctx, errc)
	cancel()
	if werr != nil {
		return Result{}, werr
	}
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return Result{}, err
	}
	return m.result(), nil
}

type gokaLogger struct{}

func (gokaLogger) Print(...any)          {}
func (gokaLogger) Println(...any)        {}
func (gokaLogger) Printf(string, ...any) {}
