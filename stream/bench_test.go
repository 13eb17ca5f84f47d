package stream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
	"github.com/eddy-streams/eddy/window"
)

// benchEnv is a TaskEnv that drops sends and keeps stores in memory.
type benchEnv struct{ sent int }

func (e *benchEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	info.InMemory = true // any kind: key-value, window or session
	return stream.OpenStateStore(info, "", table.BadgerOptions{})
}
func (e *benchEnv) Send(stream.RawRecord) error { e.sent++; return nil }

// benchTask runs b.N records with keys cycling over 1,000 keys through one
// task of top, flushing every 10,000 records (a commit).
func benchTask(b *testing.B, top *stream.Topology, topic string) {
	benchTaskKeys(b, top, topic, 1000)
}

// benchTaskKeys is benchTask over nkeys keys. Record i has timestamp i
// (milliseconds): event time advances 1 s every 1,000 records.
func benchTaskKeys(b *testing.B, top *stream.Topology, topic string, nkeys int) {
	env := &benchEnv{}
	task, err := top.NewTask(stream.TaskConfig{ApplicationID: "bench", Env: env, CacheMaxBytes: 10 << 20})
	if err != nil {
		b.Fatal(err)
	}
	if err := task.Init(); err != nil {
		b.Fatal(err)
	}
	keys := make([][]byte, nkeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%04d", i)
	}
	val := []byte("vvvvvvvvvvvvvvvvvvvv")
	batch := make([]stream.RawRecord, 0, 500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch = append(batch, stream.RawRecord{Topic: topic, Offset: int64(i), Key: keys[i%len(keys)], Value: val, Timestamp: int64(i)})
		if len(batch) == cap(batch) || i == b.N-1 {
			if err := task.Add(batch...); err != nil {
				b.Fatal(err)
			}
			if _, err := task.Process(len(batch)); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
		if i%10000 == 9999 {
			if err := task.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := task.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rec/s")
	_ = task.Close()
}

// BenchmarkTaskCount is the engine's share of count-per-key: decode,
// cache lookup, aggregate, cache write (no Kafka client).
func BenchmarkTaskCount(b *testing.B) {
	bld := stream.NewBuilder()
	stream.Stream(bld, stream.With(serde.Bytes(), serde.Bytes()), "in").
		GroupByKey(stream.Grouped[[]byte, []byte]{}).
		Count(stream.As[[]byte, int64]("counts"))
	top, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	benchTask(b, top, "in")
}

// BenchmarkTaskStateless is filter → mapValues → to (no Kafka client).
func BenchmarkTaskStateless(b *testing.B) {
	bld := stream.NewBuilder()
	in := stream.Stream(bld, stream.With(serde.Bytes(), serde.Bytes()), "in").
		Filter(func(_, v []byte) bool { return len(v) > 0 })
	stream.MapValues(in, func(_ []byte, v []byte) []byte { return v[:len(v)/2] }).
		To("out", stream.Produced[[]byte, []byte]{})
	top, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	benchTask(b, top, "in")
}

// BenchmarkTaskWindowedCount compares, over 10,000 keys, count per key
// with count per key in 1-minute tumbling windows (in-memory stores, no
// Kafka client). Event time advances 1 ms a record, so a window holds
// 60,000 records (6 per key) and windows open, close and expire (the
// store's retention is the window size) throughout the run, as in `eddy
// perf streams`' windowed case; the figure to read is the ratio of the two
// rec/s.
func BenchmarkTaskWindowedCount(b *testing.B) {
	const keys = 10_000
	b.Run("plain", func(b *testing.B) {
		bld := stream.NewBuilder()
		stream.Stream(bld, stream.With(serde.Bytes(), serde.Bytes()), "in").
			GroupByKey(stream.Grouped[[]byte, []byte]{}).
			Count(stream.As[[]byte, int64]("counts"))
		top, err := bld.Build()
		if err != nil {
			b.Fatal(err)
		}
		benchTaskKeys(b, top, "in", keys)
	})
	b.Run("windowed", func(b *testing.B) {
		bld := stream.NewBuilder()
		stream.CountWindowed(stream.Stream(bld, stream.With(serde.Bytes(), serde.Bytes()), "in").
			GroupByKey(stream.Grouped[[]byte, []byte]{}).
			WindowedBy(window.Tumbling(time.Minute)), stream.As[[]byte, int64]("counts"))
		top, err := bld.Build()
		if err != nil {
			b.Fatal(err)
		}
		benchTaskKeys(b, top, "in", keys)
	})
}
