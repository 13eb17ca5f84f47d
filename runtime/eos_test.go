package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
)

// committedReader consumes a topic from the start, read_committed.
func committedReader(t *testing.T, brokers []string, topic string) *reader {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &reader{cl: cl}
}

// strictlyIncreasing checks that every key's counts only grow in recs (no
// value repeated, none going back): what exactly-once promises for a
// count read read_committed.
func strictlyIncreasing(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	last := map[string]int64{}
	bad := 0
	for _, r := range recs {
		v, err := serde.Int64().Deserialize("", r.Value)
		if err != nil {
			t.Errorf("bad count %x at %s-%d@%d", r.Value, r.Topic, r.Partition, r.Offset)
			continue
		}
		k := string(r.Key)
		if p, ok := last[k]; ok && v <= p {
			if bad++; bad <= 10 {
				t.Errorf("key %q: count %d after %d (%s-%d@%d)", k, v, p, r.Topic, r.Partition, r.Offset)
			}
		}
		last[k] = v
	}
}

func eosConfig(t *testing.T, app string, brokers []string) Config {
	cfg := testConfig(t, app, brokers)
	cfg.Guarantee = ExactlyOnce
	cfg.CommitInterval = 0 // the exactly-once default
	return cfg
}

// TestExactlyOnceWordCount runs wordcount under exactly-once on both
// backends: the counts read read_committed are exact and strictly
// increasing, transactions commit, the stores are queryable, and a restart
// on the same state directory resumes from the checkpoints (no restore
// from scratch).
func TestExactlyOnceWordCount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 3, "text-lines", "word-counts")
		cfg := eosConfig(t, "wc-eos", brokers)
		cfg.NumStreamThreads = 2
		if err := cfg.Validate(); err != nil || cfg.CommitInterval != DefaultExactlyOnceCommitInterval {
			t.Fatalf("commit interval %v, %v", cfg.CommitInterval, err)
		}
		app := start(t, wordcount(t), cfg)
		app.waitRunning(t)

		want := map[string]int64{}
		produce(t, brokers, "text-lines", lines(0, 200, want)...)
		out := committedReader(t, brokers, "word-counts")
		out.waitFor(t, 30*time.Second, "exact counts", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
		strictlyIncreasing(t, out.recs)
		commits := metricValue(app.metrics.txnCommits.WithLabelValues("0")) + metricValue(app.metrics.txnCommits.WithLabelValues("1"))
		if commits == 0 {
			t.Error("no transaction committed")
		}
		if a := metricValue(app.metrics.txnAborts.WithLabelValues("0")) + metricValue(app.metrics.txnAborts.WithLabelValues("1")); a != 0 {
			t.Errorf("%v transactions aborted", a)
		}
		eventually(t, 10*time.Second, "queryable counts", func() bool {
			n, ok, err := Query(app.App, "counts", "kafka", serde.String(), serde.Int64())
			return err == nil && ok && n == want["kafka"]
		})
		app.stop(t)

		// Restart on the same state: the checkpoints are used, nothing
		// is restored from scratch, and counting goes on exactly.
		before := metricValue(app.metrics.restored.WithLabelValues("counts"))
		app2 := start(t, wordcount(t), cfg)
		app2.waitRunning(t)
		if got := metricValue(app2.metrics.restored.WithLabelValues("counts")) - before; got != 0 {
			t.Errorf("restart restored %v records; want 0 after a clean stop", got)
		}
		produce(t, brokers, "text-lines", lines(200, 100, want)...)
		out.waitFor(t, 30*time.Second, "exact counts after restart", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
		strictlyIncreasing(t, out.recs)
		app2.stop(t)
	})
}

// TestExactlyOnceAbortRewinds makes commits fail at random (a hook in the
// commit path) while wordcount runs: each failed commit aborts its
// transaction and rewinds the tasks. The committed output must still be
// exact and strictly increasing, and the stores must hold the exact
// counts: nothing of an aborted transaction survives anywhere.
func TestExactlyOnceAbortRewinds(t *testing.T) {
	var fails atomic.Int64
	var mu sync.Mutex
	n := 0
	testHookCommit = func(*thread) error {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%3 == 0 && fails.Load() < 12 {
			fails.Add(1)
			return errors.New("injected commit failure")
		}
		return nil
	}
	t.Cleanup(func() { testHookCommit = nil })
	brokers := backends[0].start(t) // eddy's broker; the hook is process-wide
	createTopics(t, brokers, 3, "text-lines", "word-counts")
	cfg := eosConfig(t, "wc-abort", brokers)
	app := start(t, wordcount(t), cfg)
	app.waitRunning(t)
	want := map[string]int64{}
	out := committedReader(t, brokers, "word-counts")
	for round := range 6 {
		produce(t, brokers, "text-lines", lines(round*100, 100, want)...)
		out.waitFor(t, 60*time.Second, fmt.Sprintf("exact counts after round %d", round), func(recs []*kgo.Record) bool {
			return equalCounts(latest(t, recs), want)
		})
	}
	strictlyIncreasing(t, out.recs)
	if fails.Load() == 0 || metricValue(app.metrics.txnAborts.WithLabelValues("0")) == 0 {
		t.Fatalf("no commit failed (%d injected, %v aborts): the test tested nothing", fails.Load(), metricValue(app.metrics.txnAborts.WithLabelValues("0")))
	}
	got := storeInt64s(t, app.App, "counts")
	if !equalCounts(got, want) {
		t.Errorf("store = %v, want %v", got, want)
	}
	app.stop(t)
	// The task directories are still there after the rewinds.
	entries, _ := os.ReadDir(filepath.Join(cfg.StateDir, "wc-abort"))
	if len(entries) == 0 {
		t.Error("no task directories")
	}
}

// TestExactlyOnceZombieFenced pauses worker A in the middle of a commit
// (its transaction open, its outputs written) until worker B has taken
// over every task and caught up; then A resumes as a zombie. A must not
// commit: its transaction aborts, and the committed output stays exact
// and strictly increasing.
func TestExactlyOnceZombieFenced(t *testing.T) {
	brokers := backends[0].start(t)
	createTopics(t, brokers, 3, "text-lines", "word-counts")
	var appA atomic.Pointer[App]
	paused := make(chan struct{})
	resume := make(chan struct{})
	var once sync.Once
	testHookCommit = func(th *thread) error {
		if th.app != appA.Load() || th.txnAcked.Load() == 0 {
			return nil
		}
		once.Do(func() {
			close(paused)
			<-resume
		})
		return nil
	}
	t.Cleanup(func() { testHookCommit = nil })

	cfgA := eosConfig(t, "wc-zombie", brokers)
	a := start(t, wordcount(t), cfgA)
	appA.Store(a.App)
	a.waitRunning(t)
	want := map[string]int64{}
	produce(t, brokers, "text-lines", lines(0, 100, want)...)
	select {
	case <-paused:
	case <-time.After(30 * time.Second):
		t.Fatal("worker A never committed")
	}
	// A is stuck with an open transaction. B joins; the group waits for A
	// until the rebalance timeout, then gives B everything.
	b := start(t, wordcount(t), eosConfig(t, "wc-zombie", brokers))
	produce(t, brokers, "text-lines", lines(100, 100, want)...)
	out := committedReader(t, brokers, "word-counts")
	out.waitFor(t, 60*time.Second, "exact counts from B", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
	if active, _ := b.Tasks(); len(active) != 6 {
		t.Fatalf("B has tasks %v, want all 6", active)
	}
	close(resume) // the zombie wakes up and tries to commit
	eventually(t, 30*time.Second, "the zombie's abort", func() bool {
		return metricValue(a.metrics.txnAborts.WithLabelValues("0")) > 0 || a.runErrOrNil() != nil
	})
	// More input: only B's work shows, exactly.
	produce(t, brokers, "text-lines", lines(200, 50, want)...)
	out.waitFor(t, 60*time.Second, "exact counts after the zombie woke", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
	strictlyIncreasing(t, out.recs)
	t.Logf("zombie: aborts %v, client replacements %v", metricValue(a.metrics.txnAborts.WithLabelValues("0")),
		metricValue(a.metrics.clientReplacements.WithLabelValues("0")))
	if err := a.runErrOrNil(); err != nil {
		t.Fatalf("the zombie failed instead of starting over: %v", err)
	}
	// The zombie rejoins as a fresh member and gets a share of the work.
	eventually(t, 60*time.Second, "the old zombie back with tasks", func() bool {
		active, _ := a.Tasks()
		return len(active) > 0
	})
	produce(t, brokers, "text-lines", lines(250, 50, want)...)
	out.waitFor(t, 60*time.Second, "exact counts with both workers", func(recs []*kgo.Record) bool { return equalCounts(latest(t, recs), want) })
	strictlyIncreasing(t, out.recs)
	b.stop(t)
	a.stop(t)
}

// runErrOrNil returns Run's error once Run returned.
func (r *running) runErrOrNil() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runErr
}

// TestExactlyOnceOffsetsWithoutOutput runs a topology that writes nothing
// (every record filtered out): its transactions are empty, and the input
// offsets must still be committed (outside a transaction) on both
// backends.
func TestExactlyOnceOffsetsWithoutOutput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 2, "silent-in", "silent-out")
		b := stream.NewBuilder()
		stream.Stream(b, stream.With(serde.String(), serde.String()), "silent-in").
			Filter(func(string, string) bool { return false }).
			To("silent-out", stream.Produced[string, string]{})
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		cfg := eosConfig(t, "silent", brokers)
		app := start(t, top, cfg)
		app.waitRunning(t)
		produce(t, brokers, "silent-in", lines(0, 40, map[string]int64{})...)
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		eventually(t, 30*time.Second, "committed offsets at the end of the input", func() bool {
			offs, err := adm.FetchOffsets(context.Background(), "silent")
			if err != nil {
				return false
			}
			var sum int64
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == "silent-in" {
					sum += o.At
				}
			})
			return sum == 40
		})
		app.stop(t)
	})
}
