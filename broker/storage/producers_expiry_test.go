package storage

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// idemBatchAt is an idempotent (optionally transactional) batch of n
// records whose timestamps are ts, ts+1, ...
func idemBatchAt(n int, pid int64, epoch int16, seq int32, txn bool, ts int64) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Offset: int64(i), Timestamp: ts + int64(i), Key: []byte("k"), Value: []byte("v")}
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: txn}, recs)
}

// markerWithEpoch is a transaction marker carrying a coordinator epoch.
func markerWithEpoch(pid int64, epoch int16, commit bool, coordEpoch int32, ts int64) []byte {
	k := kmsg.NewControlRecordKey()
	k.Type = kmsg.ControlRecordKeyTypeAbort
	if commit {
		k.Type = kmsg.ControlRecordKeyTypeCommit
	}
	v := kmsg.NewEndTxnMarker()
	v.CoordinatorEpoch = coordEpoch
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1, Transactional: true, Control: true},
		[]recordbatch.Record{{Timestamp: ts, Key: k.AppendTo(nil), Value: v.AppendTo(nil)}})
}

func producerIDs(ps []ProducerInfo) []int64 {
	var out []int64
	for _, p := range ps {
		out = append(out, p.ProducerID)
	}
	return out
}

func TestProducersInfo(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	l := openT(t, dir, testConfig(), clk)
	ts := clk.Now().UnixMilli()
	mustAppendAt(t, l, idemBatchAt(3, 1, 0, 0, false, ts), false, 0)
	mustAppendAt(t, l, idemBatchAt(2, 1, 0, 3, false, ts+10), false, 3) // last seq 4, max ts ts+11
	mustAppendAt(t, l, idemBatchAt(1, 2, 3, 0, true, ts+20), false, 5)  // open transaction at 5
	mustAppendAt(t, l, idemBatchAt(2, 4, 1, 0, true, ts+30), false, 6)
	mustAppendAt(t, l, markerWithEpoch(4, 1, true, 7, ts+40), true, 8)
	mustAppendAt(t, l, markerWithEpoch(5, 2, false, 9, ts+50), true, 9) // a marker only: no sequence
	want := []ProducerInfo{
		{ProducerID: 1, ProducerEpoch: 0, LastSequence: 4, LastTimestamp: ts + 11, CoordinatorEpoch: -1, TxnStartOffset: -1},
		{ProducerID: 2, ProducerEpoch: 3, LastSequence: 0, LastTimestamp: ts + 20, CoordinatorEpoch: -1, TxnStartOffset: 5},
		{ProducerID: 4, ProducerEpoch: 1, LastSequence: 1, LastTimestamp: ts + 40, CoordinatorEpoch: 7, TxnStartOffset: -1},
		{ProducerID: 5, ProducerEpoch: 2, LastSequence: -1, LastTimestamp: ts + 50, CoordinatorEpoch: 9, TxnStartOffset: -1},
	}
	check := func(when string) {
		t.Helper()
		if got := l.Producers(); !slices.Equal(got, want) {
			t.Fatalf("%s: producers\n got %+v\nwant %+v", when, got, want)
		}
	}
	check("live")
	// From the snapshot written by Close ...
	l.Close()
	l = openT(t, dir, testConfig(), clk)
	check("after a clean restart")
	// ... and from a full replay of the batch headers.
	crash(l)
	removeSnapshots(t, dir)
	l = openT(t, dir, testConfig(), clk)
	check("after a replay")
	l.Close()
	if l.Producers() != nil {
		t.Fatal("a closed log reports producers")
	}
}

func removeSnapshots(t *testing.T, dir string) {
	t.Helper()
	for _, off := range listSnapshots(dir) {
		if err := os.Remove(segName(dir, off, snapshotSuffix)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestProducerExpiry(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := testConfig() // producer.id.expiration.ms: the default, 1 day
	l := openT(t, dir, cfg, clk)
	t0 := clk.Now()
	ts := t0.UnixMilli()
	day := 24 * time.Hour
	mustAppendAt(t, l, idemBatchAt(2, 1, 0, 0, false, ts), false, 0)        // expires at t0+1d
	mustAppendAt(t, l, idemBatchAt(1, 2, 0, 0, true, ts), false, 2)         // open transaction: kept
	mustAppendAt(t, l, idemBatchAt(1, 3, 0, 0, false, ts+1800e3), false, 3) // written half an hour later
	maintain := func(at time.Time, want ...int64) {
		t.Helper()
		if err := l.Maintain(at); err != nil {
			t.Fatal(err)
		}
		if got := producerIDs(l.Producers()); !slices.Equal(got, want) {
			t.Fatalf("Maintain at t0+%v: producers %v, want %v", at.Sub(t0), got, want)
		}
	}
	maintain(t0.Add(day-time.Millisecond), 1, 2, 3)
	// The expiration is checked every 10 minutes, as Kafka does.
	maintain(t0.Add(day), 1, 2, 3)
	maintain(t0.Add(day+10*time.Minute-2*time.Millisecond), 1, 2, 3)
	maintain(t0.Add(day+10*time.Minute), 2, 3)

	// Expired producers are not in the snapshot either.
	clk.Add(day + 10*time.Minute)
	l.Close()
	l = openT(t, dir, cfg, clk)
	if got := producerIDs(l.Producers()); !slices.Equal(got, []int64{2, 3}) {
		t.Fatalf("after restart: producers %v", got)
	}
	// Producer 1 is unknown now: like Kafka since 2.5 (KIP-360), its next
	// batch is accepted at whatever sequence it carries.
	now := clk.Now().UnixMilli()
	mustAppendAt(t, l, idemBatchAt(1, 1, 0, 2, false, now), false, 4)
	// Producer 3 is still known: a gap is refused.
	if _, err := l.Append(idemBatchAt(1, 3, 0, 5, false, now)); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap from a live producer: %v", err)
	}
	// Once producer 2's transaction ends, its marker's time counts.
	mustAppendAt(t, l, markerWithEpoch(2, 0, true, 0, now), true, 5)
	maintain(clk.Now().Add(day-time.Millisecond), 1, 2)
	maintain(clk.Now().Add(day+10*time.Minute), nil...)
	l.Close()
}

func TestProducerExpiryConfigured(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := testConfig()
	cfg.ProducerIDExpirationMs = 60_000
	l := openT(t, dir, cfg, clk)
	defer l.Close()
	t0 := clk.Now()
	mustAppendAt(t, l, idemBatchAt(1, 1, 0, 0, false, t0.UnixMilli()), false, 0)
	if err := l.Maintain(t0.Add(59 * time.Second)); err != nil || len(l.Producers()) != 1 {
		t.Fatalf("before expiry: %v %v", l.Producers(), err)
	}
	if err := l.Maintain(t0.Add(59*time.Second + 10*time.Minute)); err != nil || len(l.Producers()) != 0 {
		t.Fatalf("after expiry: %v %v", l.Producers(), err)
	}
	cfg.ProducerIDExpirationMs = -1
	if err := cfg.Validate(); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("negative producer.id.expiration.ms: %v", err)
	}
}
