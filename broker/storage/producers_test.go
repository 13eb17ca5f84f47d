package storage

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
)

func idemBatch(n int, pid int64, epoch int16, seq int32) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Offset: int64(i), Timestamp: 1, Key: []byte("k"), Value: []byte("v")}
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, recs)
}

func TestIdempotentProducer(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), nil)
	mustAppend := func(b []byte, first int64) {
		t.Helper()
		info, err := l.Append(b)
		if err != nil || info.FirstOffset != first {
			t.Fatalf("append: %+v %v, want first offset %d", info, err, first)
		}
	}
	mustFail := func(b []byte, want error) {
		t.Helper()
		end := l.EndOffset()
		if _, err := l.Append(b); !errors.Is(err, want) || l.EndOffset() != end {
			t.Fatalf("got %v, want %v", err, want)
		}
	}
	mustAppend(idemBatch(3, 7, 0, 0), 0)
	mustAppend(idemBatch(2, 8, 0, 100), 3) // an unknown producer may start anywhere
	mustAppend(idemBatch(3, 7, 0, 0), 0)   // retry: original offsets, nothing written
	if l.EndOffset() != 5 {
		t.Fatal(l.EndOffset())
	}
	mustAppend(idemBatch(2, 7, 0, 3), 5)
	mustFail(idemBatch(1, 7, 0, 9), kerr.OutOfOrderSequenceNumber)
	mustFail(idemBatch(1, 7, 1, 4), kerr.OutOfOrderSequenceNumber)
	mustAppend(idemBatch(1, 7, 1, 0), 7)
	mustFail(idemBatch(1, 7, 0, 5), kerr.InvalidProducerEpoch)
	// Two batches of one producer in one request chain their sequences.
	mustAppend(append(idemBatch(1, 9, 0, 0), idemBatch(1, 9, 0, 1)...), 8)
	mustFail(append(idemBatch(1, 9, 0, 2), idemBatch(1, 9, 0, 4)...), kerr.OutOfOrderSequenceNumber)
	// Sequences wrap past MaxInt32.
	mustAppend(idemBatch(2, 10, 0, math.MaxInt32), 10)
	mustAppend(idemBatch(1, 10, 0, 1), 12)

	// The state survives a clean restart (snapshot) ...
	l.Close()
	l = openT(t, dir, testConfig(), nil)
	mustAppend(idemBatch(2, 7, 0+1, 1), 13)
	mustAppend(idemBatch(2, 7, 1, 1), 13)
	mustFail(idemBatch(1, 7, 1, 5), kerr.OutOfOrderSequenceNumber)
	// ... and an unclean one (snapshot + replay of the batch headers).
	crash(l)
	l = openT(t, dir, testConfig(), nil)
	mustAppend(idemBatch(2, 7, 1, 1), 13)
	mustAppend(idemBatch(3, 8, 0, 102), 15)
	mustAppend(idemBatch(3, 8, 0, 102), 15)
	l.Close()
}

func TestProducerStateAcrossRolls(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), nil)
	seq := int32(0)
	var lastFirst int64
	for range 60 {
		info, err := l.Append(idemBatch(4, 1, 0, seq))
		if err != nil {
			t.Fatal(err)
		}
		lastFirst = info.FirstOffset
		seq += 4
	}
	if snaps, _ := filepath.Glob(filepath.Join(dir, "*"+snapshotSuffix)); len(snaps) == 0 || len(snaps) > snapshotsKept {
		t.Fatalf("%d snapshot files", len(snaps))
	}
	crash(l)
	l = openT(t, dir, testConfig(), nil)
	defer l.Close()
	if info, err := l.Append(idemBatch(4, 1, 0, seq-4)); err != nil || info.FirstOffset != lastFirst {
		t.Fatal(info, err)
	}
	if _, err := l.Append(idemBatch(4, 1, 0, seq)); err != nil {
		t.Fatal(err)
	}
}
