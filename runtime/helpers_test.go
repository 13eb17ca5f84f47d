package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
)

// backend is a Kafka-protocol cluster the runtime tests run against.
type backend struct {
	name  string
	start func(t *testing.T) []string // returns the bootstrap brokers
}

var backends = []backend{
	{"eddy", func(t *testing.T) []string {
		cfg := broker.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.Listen = "127.0.0.1:0"
		cfg.HTTP = ""
		cfg.OffsetsTopicPartitions = 3
		cfg.TransactionTopicPartitions = 1
		s, err := broker.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return []string{s.Addr()}
	}},
	{"kfake", func(t *testing.T) []string {
		c, err := kfake.NewCluster(kfake.NumBrokers(3))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()
	}},
}

// forEachBackend runs fn as a subtest per backend, in parallel.
func forEachBackend(t *testing.T, fn func(t *testing.T, brokers []string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.start(t))
		})
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("EDDY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

// testConfig is a worker config with fast commits and rebalances.
func testConfig(t *testing.T, app string, brokers []string) Config {
	cfg := DefaultConfig(app, brokers...)
	cfg.StateDir = t.TempDir()
	cfg.CommitInterval = 100 * time.Millisecond
	cfg.Logger = testLogger()
	cfg.ClientOptions = []kgo.Opt{
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}
	if os.Getenv("EDDY_NO_SESSIONS") != "" {
		cfg.ClientOptions = append(cfg.ClientOptions, kgo.DisableFetchSessions())
	}
	return cfg
}

func createTopics(t *testing.T, brokers []string, partitions int32, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatal(err)
	}
}

// produce writes records (key, value) synchronously.
func produce(t *testing.T, brokers []string, topic string, kvs ...[2]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, kv := range kvs {
		r := &kgo.Record{Topic: topic, Value: []byte(kv[1])}
		if kv[0] != "" {
			r.Key = []byte(kv[0])
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// reader consumes a topic from the start.
type reader struct {
	cl   *kgo.Client
	recs []*kgo.Record
}

func newReader(t *testing.T, brokers []string, topic string) *reader {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &reader{cl: cl}
}

// waitFor polls until cond holds on everything read so far, or fails the
// test at the deadline.
func (r *reader) waitFor(t *testing.T, d time.Duration, what string, cond func(recs []*kgo.Record) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond(r.recs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%d records read)", what, len(r.recs))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		f := r.cl.PollFetches(ctx)
		cancel()
		f.EachRecord(func(rec *kgo.Record) { r.recs = append(r.recs, rec) })
	}
}

// latest returns the last value per key, decoded as int64.
func latest(t *testing.T, recs []*kgo.Record) map[string]int64 {
	m := map[string]int64{}
	for _, r := range recs {
		v, err := serde.Int64().Deserialize("", r.Value)
		if err != nil {
			t.Errorf("bad count %x for %s: %v", r.Value, r.Key, err)
			continue
		}
		m[string(r.Key)] = v
	}
	return m
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds or fails the test.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

func splitWords(line string) []string {
	return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// wordcount is the wordcount topology: text-lines → word-counts, with the
// store "counts".
func wordcount(t *testing.T) *stream.Topology {
	b := stream.NewBuilder()
	lines := stream.Stream(b, stream.With(serde.String(), serde.String()), "text-lines")
	words := stream.FlatMapValues(lines, func(_ string, line string) []string { return splitWords(line) })
	counts := stream.GroupBy(words, func(_ string, w string) string { return w }, stream.Grouped[string, string]{Key: serde.String()}).
		Count(stream.As[string, int64]("counts"))
	counts.ToStream().To("word-counts", stream.Produced[string, int64]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// lines produces n lines numbered from first, and adds their words to
// want.
func lines(first, n int, want map[string]int64) [][2]string {
	vocab := []string{"kafka", "streams", "eddy", "go", "broker", "table", "join", "window"}
	var out [][2]string
	for i := first; i < first+n; i++ {
		line := fmt.Sprintf("%s %s %s", vocab[i%len(vocab)], vocab[(i*3+1)%len(vocab)], vocab[(i*5+2)%len(vocab)])
		for _, w := range splitWords(line) {
			want[w]++
		}
		out = append(out, [2]string{fmt.Sprintf("k%d", i), line})
	}
	return out
}

// running is an App running in the background.
type running struct {
	*App
	errc    chan error
	checked bool // the test consumed Run's result
}

func start(t *testing.T, top *stream.Topology, cfg Config) *running {
	t.Helper()
	a, err := New(top, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{App: a, errc: make(chan error, 1)}
	go func() { r.errc <- a.Run(context.Background()) }()
	t.Cleanup(func() {
		a.Close()
		if r.checked {
			return
		}
		select {
		case err := <-r.errc:
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
	return r
}

func (r *running) waitRunning(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitRunning(ctx); err != nil {
		t.Fatal("WaitRunning:", err)
	}
}

// stop closes the app and checks Run returned nil.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r.checked = true
	select {
	case err := <-r.errc:
		if err != nil {
			t.Fatal("Run:", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
}

// storeInt64s reads every entry of this worker's key-value store name,
// decoding the values as int64.
func storeInt64s(t *testing.T, a *App, name string) map[string]int64 {
	t.Helper()
	r, err := a.Store(name)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for kv, err := range r.All() {
		if err != nil {
			t.Fatal(err)
		}
		got[string(kv.Key)], _ = serde.Int64().Deserialize("", kv.Value)
	}
	return got
}
