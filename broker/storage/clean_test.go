package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/klauspost/compress/s2"
)

// snappyBatch compresses a Build output's records with raw snappy.
func snappyBatch(b []byte) []byte {
	out := append([]byte{}, b[:recordbatch.HeaderSize]...)
	out = append(out, s2.EncodeSnappy(nil, b[recordbatch.HeaderSize:])...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint16(out[21:], binary.BigEndian.Uint16(out[21:])|uint16(recordbatch.CompressionSnappy))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

type kv struct {
	off int64
	val string
}

// latestMap reads the log from its start and applies records in order.
func latestMap(t *testing.T, l *Log) map[string]kv {
	t.Helper()
	recs := readAll(t, l, l.StartOffset())
	m := map[string]kv{}
	prev := int64(-1)
	for _, r := range recs {
		if r.Offset <= prev {
			t.Fatalf("offset %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		if r.Value == nil {
			delete(m, string(r.Key))
		} else {
			m[string(r.Key)] = kv{r.Offset, string(r.Value)}
		}
	}
	return m
}

func compactConfig() Config {
	cfg := testConfig()
	cfg.CleanupPolicy = CleanupCompact
	cfg.MinCleanableDirtyRatio = 0.01
	cfg.DeleteRetentionMs = 10_000
	return cfg
}

// writeRandom appends n random keyed batches, updating model.
func writeRandom(t *testing.T, l *Log, rng *rand.Rand, clk *clock, n int, model map[string]kv) {
	t.Helper()
	for range n {
		k := 1 + rng.IntN(5)
		recs := make([]recordbatch.Record, k)
		for i := range recs {
			recs[i] = recordbatch.Record{Offset: int64(i), Timestamp: clk.Now().UnixMilli(), Key: []byte(fmt.Sprint("key", rng.IntN(25)))}
			if rng.IntN(5) > 0 {
				recs[i].Value = fmt.Appendf(nil, "v%d", rng.Int())
			}
		}
		b := recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
		if rng.IntN(3) == 0 {
			b = snappyBatch(b)
		}
		info, err := l.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.Value == nil {
				delete(model, string(r.Key))
			} else {
				model[string(r.Key)] = kv{info.FirstOffset + int64(i), string(r.Value)}
			}
		}
		clk.Add(100 * time.Millisecond)
	}
}

func checkModel(t *testing.T, l *Log, model map[string]kv) {
	t.Helper()
	got := latestMap(t, l)
	if !maps.Equal(got, model) {
		t.Fatalf("after cleaning the log holds %d keys, want %d:\n got %v\nwant %v", len(got), len(model), got, model)
	}
}

func TestCompactionProperty(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 99))
		clk := newClock()
		dir := t.TempDir()
		cfg := compactConfig()
		l := openT(t, dir, cfg, clk)
		model := map[string]kv{}
		for round := range 6 {
			writeRandom(t, l, rng, clk, 40, model)
			size := l.Size()
			if err := l.Maintain(clk.Now()); err != nil {
				t.Fatal(err)
			}
			checkModel(t, l, model)
			if round > 0 && l.Size() >= size {
				t.Fatalf("seed %d round %d: cleaning did not shrink the log (%d → %d)", seed, round, size, l.Size())
			}
		}
		// Past the delete horizon, a second cleaning drops tombstones.
		clk.Add(time.Minute)
		writeRandom(t, l, rng, clk, 30, model)
		if err := l.Compact(); err != nil {
			t.Fatal(err)
		}
		if err := l.Compact(); err != nil {
			t.Fatal(err)
		}
		checkModel(t, l, model)
		l.Close()
		l = openT(t, dir, cfg, clk)
		checkModel(t, l, model)
		writeRandom(t, l, rng, clk, 10, model)
		checkModel(t, l, model)
		l.Close()
	}
}

func TestCompactionDropsTombstonesAfterHorizon(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	l := openT(t, t.TempDir(), cfg, clk)
	defer l.Close()
	put := func(k string, v []byte) {
		b := recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
			[]recordbatch.Record{{Timestamp: clk.Now().UnixMilli(), Key: []byte(k), Value: v}})
		if _, err := l.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		put(fmt.Sprint("k", i%3), []byte("v"))
	}
	put("k0", nil) // tombstone
	for range 20 {
		put("k1", []byte("w"))
	}
	if err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	countTombstones := func() int {
		n := 0
		for _, r := range readAll(t, l, l.StartOffset()) {
			if r.Value == nil {
				n++
			}
		}
		return n
	}
	if countTombstones() != 1 {
		t.Fatal("tombstone dropped before delete.retention.ms")
	}
	clk.Add(time.Duration(cfg.DeleteRetentionMs+1) * time.Millisecond)
	for range 20 {
		put("k2", []byte("x"))
	}
	if err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	if countTombstones() != 0 {
		t.Fatal("tombstone kept past delete.retention.ms")
	}
	if _, ok := latestMap(t, l)["k0"]; ok {
		t.Fatal("deleted key came back")
	}
}

func TestCompactionRespectsLagAndActiveSegment(t *testing.T) {
	clk := newClock()
	cfg := compactConfig()
	cfg.MinCompactionLagMs = 3_600_000
	l := openT(t, t.TempDir(), cfg, clk)
	defer l.Close()
	model := map[string]kv{}
	rng := rand.New(rand.NewPCG(1, 1))
	writeRandom(t, l, rng, clk, 60, model)
	size := l.Size()
	l.Compact()
	if l.Size() != size {
		t.Fatal("cleaned segments younger than min.compaction.lag.ms")
	}
	clk.Add(2 * time.Hour)
	active := l.active()
	asize := active.size
	l.Compact()
	if l.Size() >= size || l.active() != active || active.size != asize {
		t.Fatal("lag elapsed: expected cleaning of closed segments only")
	}
	checkModel(t, l, model)
}

func TestCompactionCrashMidSwap(t *testing.T) {
	for step := 1; step <= 5; step++ {
		t.Run(fmt.Sprint("step", step), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(step), 5))
			clk := newClock()
			dir := t.TempDir()
			cfg := compactConfig()
			l := openT(t, dir, cfg, clk)
			model := map[string]kv{}
			writeRandom(t, l, rng, clk, 80, model)
			end := l.EndOffset()
			cleanerStopAfter = step
			err := l.Compact()
			cleanerStopAfter = 0
			if !errors.Is(err, errCleanerStopped) {
				t.Fatalf("got %v", err)
			}
			crash(l)
			want := map[int][]string{1: {cleanedSuffix}, 2: {swapSuffix}, 3: {swapSuffix, deletedSuffix}, 4: {swapSuffix, deletedSuffix}, 5: {deletedSuffix}}[step]
			for _, suf := range want {
				if m, _ := filepath.Glob(filepath.Join(dir, "*"+suf)); len(m) == 0 {
					t.Fatalf("no %s file left at step %d", suf, step)
				}
			}
			l = openT(t, dir, cfg, clk)
			if m, _ := filepath.Glob(filepath.Join(dir, "*.*.*")); len(m) != 0 {
				t.Fatalf("leftover files after open: %v", m)
			}
			if l.EndOffset() != end {
				t.Fatalf("end %d, want %d", l.EndOffset(), end)
			}
			checkModel(t, l, model)
			if err := l.Compact(); err != nil {
				t.Fatal(err)
			}
			checkModel(t, l, model)
			writeRandom(t, l, rng, clk, 5, model)
			checkModel(t, l, model)
			l.Close()
		})
	}
}
