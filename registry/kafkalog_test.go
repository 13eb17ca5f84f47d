package registry

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker"
)

// kafkaBackend starts a Kafka-compatible cluster on a data directory; the
// Kafka log's tests run against each one.
type kafkaBackend struct {
	name string
	// start starts a cluster on dir and returns its seed addresses and a
	// function that stops it (idempotent, also run at cleanup).
	start func(t *testing.T, dir string) (addrs []string, stop func())
	// compact makes the cluster compact its compacted topics, and reports
	// whether it is done; tests poll it. topicConfigs are the configs the
	// compacted topic is created with.
	compact      func(t *testing.T) bool
	topicConfigs map[string]string
}

// kafkaCluster is the running cluster of a backend, for compact.
type kafkaCluster struct {
	kfake *kfake.Cluster
}

func kafkaBackends(c *kafkaCluster) []kafkaBackend {
	return []kafkaBackend{
		{
			name: "eddy",
			start: func(t *testing.T, dir string) ([]string, func()) {
				cfg := broker.DefaultConfig()
				cfg.DataDir = dir
				cfg.Listen = "127.0.0.1:0"
				cfg.HTTP = ""
				cfg.OffsetsTopicPartitions = 1
				cfg.TransactionTopicPartitions = 1
				cfg.MaintenanceInterval = 10 * time.Millisecond
				srv, err := broker.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := srv.Start(); err != nil {
					t.Fatal(err)
				}
				stop := func() { srv.Close() }
				t.Cleanup(stop)
				return []string{srv.Addr()}, stop
			},
			// eddy's broker compacts on its own, every MaintenanceInterval:
			// segment.ms=1 rolls each segment as soon as it has data, and
			// with no dirty-ratio threshold or tombstone retention every
			// closed segment is cleaned at once.
			compact: func(*testing.T) bool { return true },
			topicConfigs: map[string]string{
				"cleanup.policy":            "compact",
				"segment.ms":                "1",
				"min.cleanable.dirty.ratio": "0",
				"delete.retention.ms":       "0",
			},
		},
		{
			name: "kfake",
			start: func(t *testing.T, dir string) ([]string, func()) {
				k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.DataDir(dir))
				if err != nil {
					t.Fatal(err)
				}
				c.kfake = k
				stopped := false
				stop := func() {
					if !stopped {
						stopped = true
						k.Close()
					}
				}
				t.Cleanup(stop)
				return k.ListenAddrs(), stop
			},
			compact: func(*testing.T) bool { c.kfake.Compact(); return true },
			topicConfigs: map[string]string{
				"cleanup.policy":      "compact",
				"delete.retention.ms": "0",
			},
		},
	}
}

type logRec struct {
	key, value string
	tombstone  bool
}

func (r logRec) String() string {
	if r.tombstone {
		return r.key + "=<nil>"
	}
	return r.key + "=" + r.value
}

func logAppend(t *testing.T, ctx context.Context, l Log, recs ...logRec) {
	t.Helper()
	for _, r := range recs {
		var v []byte
		if !r.tombstone {
			v = []byte(r.value)
		}
		if err := l.Append(ctx, []byte(r.key), v); err != nil {
			t.Fatalf("Append %v: %v", r, err)
		}
	}
}

func logReplay(t *testing.T, ctx context.Context, l Log) []logRec {
	t.Helper()
	var got []logRec
	err := l.Replay(ctx, func(k, v []byte) error {
		got = append(got, logRec{key: string(k), value: string(v), tombstone: v == nil})
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}

func newTestKafkaLog(t *testing.T, ctx context.Context, addrs []string, topic string) Log {
	t.Helper()
	l, err := NewKafkaLog(ctx, addrs, topic)
	if err != nil {
		t.Fatalf("NewKafkaLog: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func logTestCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func forEachBackend(t *testing.T, f func(t *testing.T, b kafkaBackend)) {
	var c kafkaCluster
	for _, b := range kafkaBackends(&c) {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// TestKafkaLogRoundTrip appends records, tombstones among them, and
// replays them in order; records appended while a replay runs are left
// for the next one.
func TestKafkaLogRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b kafkaBackend) {
		ctx := logTestCtx(t)
		addrs, _ := b.start(t, t.TempDir())
		l := newTestKafkaLog(t, ctx, addrs, DefaultTopic)
		if got := logReplay(t, ctx, l); len(got) != 0 {
			t.Fatalf("replay of a new topic: %v, want nothing", got)
		}
		want := []logRec{
			{key: `{"k":1}`, value: "one"},
			{key: `{"k":2}`, value: "two"},
			{key: `{"k":1}`, tombstone: true},
			{key: `{"k":3}`, value: strings.Repeat("x", 100<<10)},
			{key: `{"k":2}`, value: "two again"},
		}
		logAppend(t, ctx, l, want...)
		if got := logReplay(t, ctx, l); !reflect.DeepEqual(got, want) {
			t.Fatalf("replay:\n got %v\nwant %v", got, want)
		}

		// The end is the high watermark at the call: a record appended by
		// apply is not replayed now, but next time.
		n := 0
		err := l.Replay(ctx, func(k, v []byte) error {
			if n == 0 {
				if err := l.Append(ctx, []byte("late"), []byte("v")); err != nil {
					return err
				}
			}
			n++
			return nil
		})
		if err != nil || n != len(want) {
			t.Fatalf("replay with an append in apply: %d records, err %v; want %d", n, err, len(want))
		}
		want = append(want, logRec{key: "late", value: "v"})
		if got := logReplay(t, ctx, l); !reflect.DeepEqual(got, want) {
			t.Fatalf("replay after late append:\n got %v\nwant %v", got, want)
		}

		// apply's error stops the replay and is returned as is.
		stop := errors.New("stop")
		n = 0
		err = l.Replay(ctx, func(k, v []byte) error { n++; return stop })
		if err != stop || n != 1 {
			t.Fatalf("replay with a failing apply: %d calls, err %v; want 1, %v", n, err, stop)
		}

		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// TestKafkaLogRestart replays, on a fresh Log, what was written before the
// cluster restarted on the same data directory.
func TestKafkaLogRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b kafkaBackend) {
		ctx := logTestCtx(t)
		dir := t.TempDir()
		addrs, stop := b.start(t, dir)
		l := newTestKafkaLog(t, ctx, addrs, "reg")
		var want []logRec
		for i := range 20 {
			r := logRec{key: fmt.Sprintf("k%d", i%7), value: fmt.Sprint(i)}
			if i%5 == 4 {
				r = logRec{key: fmt.Sprintf("k%d", i%7), tombstone: true}
			}
			want = append(want, r)
		}
		logAppend(t, ctx, l, want...)
		l.Close()
		stop()

		addrs, _ = b.start(t, dir)
		l = newTestKafkaLog(t, ctx, addrs, "reg")
		l.(*kafkaLog).fetchBytes = 1 // one batch per fetch: many fetches
		if got := logReplay(t, ctx, l); !reflect.DeepEqual(got, want) {
			t.Fatalf("replay after restart:\n got %v\nwant %v", got, want)
		}
		logAppend(t, ctx, l, logRec{key: "after", value: "restart"})
		want = append(want, logRec{key: "after", value: "restart"})
		if got := logReplay(t, ctx, l); !reflect.DeepEqual(got, want) {
			t.Fatalf("replay after restart and append:\n got %v\nwant %v", got, want)
		}
	})
}

// TestKafkaLogCompacted replays a topic whose older records compaction
// removed: the latest value of every key comes back, in order, and the
// offset gaps are skipped.
func TestKafkaLogCompacted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b kafkaBackend) {
		ctx := logTestCtx(t)
		addrs, _ := b.start(t, t.TempDir())
		createTestTopic(t, ctx, addrs, "compacted", 1, b.topicConfigs)
		l := newTestKafkaLog(t, ctx, addrs, "compacted")
		var all []logRec
		for round := range 5 {
			for k := range 4 {
				all = append(all, logRec{key: fmt.Sprintf("k%d", k), value: fmt.Sprintf("r%d", round)})
			}
		}
		all = append(all,
			logRec{key: "k1", tombstone: true},
			logRec{key: "gone", value: "soon"},
			logRec{key: "gone", tombstone: true},
			logRec{key: "k2", value: "last"},
		)
		logAppend(t, ctx, l, all...)
		want := logState(all)

		deadline := time.Now().Add(20 * time.Second)
		var got []logRec
		for {
			if b.compact(t) {
				got = logReplay(t, ctx, l)
				if len(got) < len(all) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("topic not compacted after 20s: replay has %d of %d records", len(got), len(all))
			}
			time.Sleep(20 * time.Millisecond) // poll interval
		}
		if state := logState(got); !reflect.DeepEqual(state, want) {
			t.Fatalf("state after compaction:\n got %v\nwant %v\n(replayed %v)", state, want, got)
		}
		if !inOrder(got, all) {
			t.Fatalf("compacted replay %v is not in append order of %v", got, all)
		}
		// Appends still work after compaction.
		logAppend(t, ctx, l, logRec{key: "k0", value: "new"})
		got = logReplay(t, ctx, l)
		if last := got[len(got)-1]; last != (logRec{key: "k0", value: "new"}) {
			t.Fatalf("last record after append: %v", last)
		}
	})
}

// latest returns the live key → value state the records leave, as sorted
// "k=v" strings.
func logState(recs []logRec) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		if r.tombstone {
			delete(m, r.key)
		} else {
			m[r.key] = r.value
		}
	}
	return m
}

// inOrder reports whether sub appears in all in order.
func inOrder(sub, all []logRec) bool {
	i := 0
	for _, r := range all {
		if i < len(sub) && sub[i] == r {
			i++
		}
	}
	return i == len(sub)
}

func createTestTopic(t *testing.T, ctx context.Context, addrs []string, topic string, partitions int32, configs map[string]string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ptrs := map[string]*string{}
	for k, v := range configs {
		ptrs[k] = &v
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, ptrs, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// TestKafkaLogBadTopic refuses an existing topic that is not compacted or
// has more than one partition, and accepts an existing compacted one.
func TestKafkaLogBadTopic(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b kafkaBackend) {
		ctx := logTestCtx(t)
		addrs, _ := b.start(t, t.TempDir())
		createTestTopic(t, ctx, addrs, "plain", 1, nil)
		createTestTopic(t, ctx, addrs, "both", 1, map[string]string{"cleanup.policy": "compact,delete"})
		createTestTopic(t, ctx, addrs, "wide", 3, map[string]string{"cleanup.policy": "compact"})
		createTestTopic(t, ctx, addrs, "fine", 1, map[string]string{"cleanup.policy": "compact"})
		for topic, want := range map[string]string{
			"plain": "cleanup.policy=delete, want compact",
			"both":  "cleanup.policy=compact,delete, want compact",
			"wide":  "has 3 partitions, want 1",
		} {
			l, err := NewKafkaLog(ctx, addrs, topic)
			if !errors.Is(err, ErrBadLogTopic) || !strings.Contains(err.Error(), want) {
				if l != nil {
					l.Close()
				}
				t.Errorf("NewKafkaLog on %s: %v, want %v with %q", topic, err, ErrBadLogTopic, want)
			}
		}
		l := newTestKafkaLog(t, ctx, addrs, "fine")
		logAppend(t, ctx, l, logRec{key: "a", value: "b"})
		if got := logReplay(t, ctx, l); len(got) != 1 {
			t.Fatalf("replay: %v", got)
		}
		// The log created the topic it was given with cleanup.policy=compact.
		newTestKafkaLog(t, ctx, addrs, "created")
		if _, err := NewKafkaLog(ctx, addrs, ""); err == nil {
			t.Error("NewKafkaLog with an empty topic: no error")
		}
	})
}

// TestKafkaLogDeadline fails Replay and Append with ctx's error once the
// kafkaCluster is gone, instead of hanging.
func TestKafkaLogDeadline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b kafkaBackend) {
		ctx := logTestCtx(t)
		addrs, stop := b.start(t, t.TempDir())
		l := newTestKafkaLog(t, ctx, addrs, DefaultTopic)
		logAppend(t, ctx, l, logRec{key: "a", value: "b"})
		stop()
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if err := l.Replay(short, func(k, v []byte) error { return nil }); err == nil {
			t.Error("Replay with the cluster stopped: no error")
		}
		short2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel2()
		if err := l.Append(short2, []byte("k"), []byte("v")); err == nil {
			t.Error("Append with the cluster stopped: no error")
		}
	})
}

// TestKafkaLogCompactedTail replays a log whose last records compaction
// removed, which neither eddy's broker nor kfake produce on their own (both
// keep the last batch): a fake answers fetches past offset 2 with no batch
// below the high watermark, as Kafka does when nothing is left there.
func TestKafkaLogCompactedTail(t *testing.T) {
	ctx := logTestCtx(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := newTestKafkaLog(t, ctx, c.ListenAddrs(), "tail")
	var all []logRec
	for i := range 5 {
		all = append(all, logRec{key: fmt.Sprint(i), value: "v"})
	}
	logAppend(t, ctx, l, all...)
	l.(*kafkaLog).fetchBytes = 1 // one batch (of one record) per fetch

	var tailFetches atomic.Int64
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.FetchRequest)
		if len(req.Topics) != 1 || len(req.Topics[0].Partitions) != 1 || req.Topics[0].Partitions[0].FetchOffset < 3 {
			return nil, nil, false
		}
		c.KeepControl()
		tailFetches.Add(1)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		resp.Version = req.Version
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = req.Topics[0].Topic, req.Topics[0].TopicID
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = 5, 5, 0
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	if got := logReplay(t, ctx, l); !reflect.DeepEqual(got, all[:3]) {
		t.Fatalf("replay with the tail compacted away: %v, want %v", got, all[:3])
	}
	if n := tailFetches.Load(); n != 1 {
		t.Fatalf("%d fetches past the kept records, want 1", n)
	}
}
