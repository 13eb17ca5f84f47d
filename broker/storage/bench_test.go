package storage

import (
	"bytes"
	"testing"

	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// benchBatch is a producer batch of n records with 100-byte values.
func benchBatch(n int) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Offset: int64(i), Timestamp: 1_700_000_000_000, Value: bytes.Repeat([]byte{'v'}, 100)}
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
}

func benchLog(b *testing.B) *Log {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 64 << 20
	l, err := Open(b.TempDir(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkAppend appends 100-record batches of 100-byte values; the
// records/s metric is the one the produce target is stated in.
func BenchmarkAppend(b *testing.B) {
	l := benchLog(b)
	batch := benchBatch(100)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRead reads 1 MiB fetches from random-ish positions of a log.
func BenchmarkRead(b *testing.B) {
	l := benchLog(b)
	batch := benchBatch(100)
	for range 2000 {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	end := l.EndOffset()
	b.ReportAllocs()
	off := int64(0)
	n := 0
	for b.Loop() {
		ri, err := l.Read(off, 1<<20)
		if err != nil || len(ri.Records) == 0 {
			b.Fatal(err)
		}
		n += len(ri.Records)
		off = (off + 7919) % end
	}
	b.SetBytes(int64(n / b.N))
}

// BenchmarkReadTail reads the newest batch, as a caught-up consumer does.
func BenchmarkReadTail(b *testing.B) {
	l := benchLog(b)
	batch := benchBatch(100)
	for range 200 {
		l.Append(batch)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Read(l.EndOffset()-1, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendSnappy appends snappy-compressed batches, franz-go's
// default codec: validation decompresses each batch to walk its records.
func BenchmarkAppendSnappy(b *testing.B) {
	l := benchLog(b)
	batch := snappyBatch(benchBatch(100))
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendSyncWrites appends with an fsync per append (no
// concurrency, so no group commit): the floor for --sync-writes.
func BenchmarkAppendSyncWrites(b *testing.B) {
	l := benchLog(b)
	cfg := l.Config()
	cfg.SyncWrites = true
	l.SetConfig(cfg)
	batch := benchBatch(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
}
