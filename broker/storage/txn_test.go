package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnBatch is a transactional batch of n records keyed key0.. with values
// tag-0...
func txnBatch(n int, pid int64, epoch int16, seq int32, tag string, ts int64) []byte {
	recs := make([]recordbatch.Record, n)
	for i := range recs {
		recs[i] = recordbatch.Record{Offset: int64(i), Timestamp: ts, Key: fmt.Appendf(nil, "key%d", i), Value: fmt.Appendf(nil, "%s-%d", tag, i)}
	}
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: true}, recs)
}

// marker is a transaction marker as the coordinator writes it.
func marker(pid int64, epoch int16, commit bool, ts int64) []byte {
	k := kmsg.NewControlRecordKey()
	k.Type = kmsg.ControlRecordKeyTypeAbort
	if commit {
		k.Type = kmsg.ControlRecordKeyTypeCommit
	}
	v := kmsg.NewEndTxnMarker()
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1, Transactional: true, Control: true},
		[]recordbatch.Record{{Timestamp: ts, Key: k.AppendTo(nil), Value: v.AppendTo(nil)}})
}

func mustAppendAt(t *testing.T, l *Log, b []byte, control bool, first int64) {
	t.Helper()
	var (
		info AppendInfo
		err  error
	)
	if control {
		info, err = l.AppendControl(b)
	} else {
		info, err = l.Append(b)
	}
	if err != nil || (first >= 0 && info.FirstOffset != first) {
		t.Fatalf("append: %+v %v, want first offset %d", info, err, first)
	}
}

func checkLSO(t *testing.T, l *Log, want int64) {
	t.Helper()
	if got := l.LastStableOffset(); got != want {
		t.Fatalf("LSO %d, want %d (end %d)", got, want, l.EndOffset())
	}
}

func TestLastStableOffsetInterleaved(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), nil)
	const a, b = 1, 2
	checkLSO(t, l, 0)
	mustAppendAt(t, l, batch(2, "plain", 1), false, 0)
	checkLSO(t, l, 2)
	mustAppendAt(t, l, txnBatch(2, a, 0, 0, "a1", 1), false, 2)
	checkLSO(t, l, 2)
	mustAppendAt(t, l, txnBatch(1, b, 0, 0, "b1", 1), false, 4)
	mustAppendAt(t, l, batch(1, "plain", 1), false, 5)
	mustAppendAt(t, l, txnBatch(1, a, 0, 2, "a1", 1), false, 6) // continues a's transaction
	checkLSO(t, l, 2)
	mustAppendAt(t, l, marker(a, 0, true, 1), true, 7)
	checkLSO(t, l, 4) // b's transaction is still open
	mustAppendAt(t, l, txnBatch(1, a, 0, 3, "a2", 1), false, 8)
	checkLSO(t, l, 4)
	mustAppendAt(t, l, marker(b, 0, false, 1), true, 9)
	checkLSO(t, l, 8)
	mustAppendAt(t, l, marker(a, 0, false, 1), true, 10)
	checkLSO(t, l, 11)
	mustAppendAt(t, l, marker(a, 0, false, 1), true, 11) // a retried marker ends nothing
	checkLSO(t, l, 12)

	wantIdx := []abortedEntry{{pid: b, first: 4, last: 9, lso: 8}, {pid: a, first: 8, last: 10, lso: 11}}
	check := func(l *Log) {
		t.Helper()
		checkLSO(t, l, 12)
		var got []abortedEntry
		for _, s := range l.segs {
			got = append(got, s.aborted...)
		}
		if !slices.Equal(got, wantIdx) {
			t.Fatalf("aborted index %+v, want %+v", got, wantIdx)
		}
		for _, c := range []struct {
			from, to int64
			want     []AbortedTxn
		}{
			{0, 12, []AbortedTxn{{b, 4}, {a, 8}}},
			{0, 4, nil},
			{5, 8, []AbortedTxn{{b, 4}}}, // stops at b's entry: its LSO 8 >= 8
			{9, 11, []AbortedTxn{{b, 4}, {a, 8}}},
			{8, 9, []AbortedTxn{{b, 4}, {a, 8}}},
			{10, 12, []AbortedTxn{{a, 8}}},
			{11, 12, nil},
		} {
			if got := l.AbortedTransactions(c.from, c.to); !slices.Equal(got, c.want) {
				t.Fatalf("AbortedTransactions(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
			}
		}
		// The .txnindex files hold exactly the entries.
		var onDisk []abortedEntry
		files, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix))
		slices.Sort(files)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil || len(raw)%txnEntrySize != 0 {
				t.Fatal(f, len(raw), err)
			}
			for p := 0; p < len(raw); p += txnEntrySize {
				onDisk = append(onDisk, abortedEntry{int64(binary.BigEndian.Uint64(raw[p:])), int64(binary.BigEndian.Uint64(raw[p+8:])),
					int64(binary.BigEndian.Uint64(raw[p+16:])), int64(binary.BigEndian.Uint64(raw[p+24:]))})
			}
		}
		if !slices.Equal(onDisk, wantIdx) {
			t.Fatalf(".txnindex files hold %+v, want %+v", onDisk, wantIdx)
		}
	}
	check(l)
	l.Close()
	l = openT(t, dir, testConfig(), nil)
	check(l)
	crash(l)
	l = openT(t, dir, testConfig(), nil)
	check(l)
	// Without any snapshot or index file the replay rebuilds it all.
	crash(l)
	for _, pat := range []string{"*" + snapshotSuffix, "*" + txnIndexSuffix} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		for _, f := range m {
			os.Remove(f)
		}
	}
	l = openT(t, dir, testConfig(), nil)
	check(l)
	// A corrupt index file is detected and rebuilt.
	l.Close()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix))
	if len(m) == 0 {
		t.Fatal("no .txnindex file")
	}
	os.WriteFile(m[0], []byte("garbage"), 0o644)
	l = openT(t, dir, testConfig(), nil)
	check(l)
	l.Close()
}

func TestReadRangeStable(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig(), nil)
	defer l.Close()
	mustAppendAt(t, l, batch(2, "plain", 1), false, 0)
	mustAppendAt(t, l, batch(2, "plain", 1), false, 2)
	mustAppendAt(t, l, txnBatch(2, 7, 0, 0, "t", 1), false, 4)
	mustAppendAt(t, l, batch(2, "plain", 1), false, 6)
	for _, from := range []int64{0, 2, 3} {
		ri, err := l.ReadRangeStable(from, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if ri.LastStableOffset != 4 || ri.HighWatermark != 8 || ri.Records.NextOffset != 4 {
			t.Fatalf("from %d: %+v", from, ri)
		}
		ri.Records.Release()
	}
	for _, from := range []int64{4, 6, 8} {
		ri, err := l.ReadRangeStable(from, 1<<20)
		if err != nil || ri.Records.Size != 0 {
			t.Fatalf("from %d: %+v %v", from, ri, err)
		}
	}
	if _, err := l.ReadRangeStable(9, 1<<20); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatal(err)
	}
	mustAppendAt(t, l, marker(7, 0, true, 1), true, 8)
	ri, err := l.ReadRangeStable(4, 1<<20)
	if err != nil || ri.Records.NextOffset != 9 || ri.LastStableOffset != 9 {
		t.Fatalf("%+v %v", ri, err)
	}
	ri.Records.Release()
	// Bounded by the LSO across segments and through the sparse index.
	for i := range 40 {
		mustAppendAt(t, l, batch(3, fmt.Sprint("p", i), 1), false, -1)
	}
	mustAppendAt(t, l, txnBatch(1, 8, 0, 0, "t", 1), false, -1)
	lso := l.LastStableOffset()
	for i := range 10 {
		mustAppendAt(t, l, batch(3, fmt.Sprint("q", i), 1), false, -1)
	}
	for from := int64(0); from < lso; {
		ri, err := l.ReadRangeStable(from, 700)
		if err != nil || ri.Records.Size == 0 || ri.Records.NextOffset > lso {
			t.Fatalf("from %d: %+v %v (LSO %d)", from, ri, err, lso)
		}
		from = ri.Records.NextOffset
		ri.Records.Release()
	}
}

func TestMarkerFencesOldEpoch(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), nil)
	const pid = 5
	mustAppendAt(t, l, txnBatch(1, pid, 0, 0, "t", 1), false, 0)
	// The coordinator aborts with a bumped epoch (e.g. on timeout).
	mustAppendAt(t, l, marker(pid, 1, false, 1), true, 1)
	checkLSO(t, l, 2)
	fails := func(b []byte, control bool, want error) {
		t.Helper()
		end := l.EndOffset()
		var err error
		if control {
			_, err = l.AppendControl(b)
		} else {
			_, err = l.Append(b)
		}
		if !errors.Is(err, want) || l.EndOffset() != end {
			t.Fatalf("got %v, want %v", err, want)
		}
	}
	for round := range 3 {
		fails(txnBatch(1, pid, 0, 1, "zombie", 1), false, kerr.InvalidProducerEpoch)
		fails(idemBatch(1, pid, 0, 1), false, kerr.InvalidProducerEpoch)
		fails(marker(pid, 0, true, 1), true, kerr.InvalidProducerEpoch)
		fails(marker(-1, 0, true, 1), true, kerr.InvalidRecord)
		fails(marker(pid, 1, true, 1), false, kerr.InvalidRecord) // only the broker writes markers
		switch round {
		case 0:
			l.Close()
		case 1:
			crash(l)
		}
		l = openT(t, dir, testConfig(), nil)
	}
	// The new epoch starts at sequence 0.
	fails(txnBatch(1, pid, 1, 5, "t", 1), false, kerr.OutOfOrderSequenceNumber)
	mustAppendAt(t, l, txnBatch(1, pid, 1, 0, "t", 1), false, 2)
	mustAppendAt(t, l, marker(pid, 1, true, 1), true, 3) // same epoch: sequences continue
	mustAppendAt(t, l, txnBatch(1, pid, 1, 1, "t", 1), false, 4)
	l.Close()
}

// TestTxnRecoveryUnclean kills the log mid-transaction at many points,
// across segment rolls, and checks that a reopened log has the same LSO
// and aborted-transaction index, and that open transactions stay open.
func TestTxnRecoveryUnclean(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), nil)
	open := map[int64]bool{}
	seq := map[int64]int32{}
	snapshot := func(l *Log) (int64, []AbortedTxn, map[int64]int64) {
		return l.LastStableOffset(), l.AbortedTransactions(0, l.EndOffset()), maps.Clone(l.openTxns)
	}
	for step := range 300 {
		pid := int64(rng.IntN(4))
		switch r := rng.IntN(10); {
		case r < 5:
			n := 1 + rng.IntN(3)
			mustAppendAt(t, l, txnBatch(n, pid, 0, seq[pid], "t", 1), false, -1)
			seq[pid] += int32(n)
			open[pid] = true
		case r < 8 && open[pid]:
			mustAppendAt(t, l, marker(pid, 0, rng.IntN(2) == 0, 1), true, -1)
			delete(open, pid)
		default:
			mustAppendAt(t, l, batch(2, "plain", 1), false, -1)
		}
		if step%17 == 0 {
			lso, ab, txns := snapshot(l)
			if step%34 == 0 {
				crash(l)
			} else {
				l.Close()
			}
			l = openT(t, dir, testConfig(), nil)
			lso2, ab2, txns2 := snapshot(l)
			if lso != lso2 || !slices.Equal(ab, ab2) || !maps.Equal(txns, txns2) {
				t.Fatalf("step %d: before restart LSO %d aborted %v open %v; after LSO %d aborted %v open %v", step, lso, ab, txns, lso2, ab2, txns2)
			}
			for pid := range open {
				if _, ok := l.openTxns[pid]; !ok {
					t.Fatalf("step %d: open transaction of %d lost", step, pid)
				}
			}
		}
	}
	if len(l.segs) < 5 {
		t.Fatalf("only %d segments: the test should span rolls", len(l.segs))
	}
	// Ending every open transaction makes the log stable to its end.
	for pid := range open {
		mustAppendAt(t, l, marker(pid, 0, true, 1), true, -1)
	}
	checkLSO(t, l, l.EndOffset())
	l.Close()
}

func TestTxnIndexDeletedWithSegments(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, testConfig(), nil)
	defer l.Close()
	for i := range 30 {
		mustAppendAt(t, l, txnBatch(3, 1, 0, int32(3*i), "t", 1), false, -1)
		mustAppendAt(t, l, marker(1, 0, false, 1), true, -1)
	}
	count := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*"+txnIndexSuffix))
		return len(m)
	}
	if n := count(); n < 3 {
		t.Fatalf("%d .txnindex files", n)
	}
	if _, err := l.DeleteRecordsBefore(-1); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d .txnindex files after deleting every record", n)
	}
	if got := l.AbortedTransactions(l.StartOffset(), l.EndOffset()+1); got != nil {
		t.Fatal(got)
	}
}

// readCommitted reads the log as a read_committed client does: up to the
// LSO, skipping control batches and the batches of aborted transactions
// (known from AbortedTransactions) until their abort marker.
func readCommitted(t *testing.T, l *Log) []recordbatch.Record {
	t.Helper()
	lso := l.LastStableOffset()
	aborted := l.AbortedTransactions(l.StartOffset(), lso)
	skipping := map[int64]bool{}
	var out []recordbatch.Record
	for from := l.StartOffset(); from < lso; {
		ri, err := l.Read(from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := recordbatch.Split(ri.Records)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			h, _ := recordbatch.ParseHeader(b)
			from = h.LastOffset() + 1
			if h.BaseOffset >= lso {
				break
			}
			for len(aborted) > 0 && aborted[0].FirstOffset <= h.LastOffset() {
				skipping[aborted[0].ProducerID] = true
				aborted = aborted[1:]
			}
			if h.Control() {
				if recs, _ := recordbatch.Records(b); len(recs) == 1 && binary.BigEndian.Uint16(recs[0].Key[2:]) == 0 {
					delete(skipping, h.ProducerID)
				}
				continue
			}
			if h.Transactional() && skipping[h.ProducerID] {
				continue
			}
			recs, err := recordbatch.Records(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Offset >= l.StartOffset() {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// TestCompactionTransactions extends the compaction property test with
// transactions: committed values count, aborted values never appear as a
// key's latest value and are removed from the cleaned part, open
// transactions stop the cleaner.
func TestCompactionTransactions(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 42))
		clk := newClock()
		dir := t.TempDir()
		cfg := compactConfig()
		l := openT(t, dir, cfg, clk)
		// Every committed (or non-transactional) record; the expected
		// view as of an LSO applies those below it in offset order.
		var committed []recordbatch.Record
		apply := func(r recordbatch.Record) { committed = append(committed, r) }
		model := func(lso int64) map[string]kv {
			rs := slices.Clone(committed)
			slices.SortFunc(rs, func(a, b recordbatch.Record) int { return int(a.Offset - b.Offset) })
			m := map[string]kv{}
			for _, r := range rs {
				switch {
				case r.Offset >= lso:
				case r.Value == nil:
					delete(m, string(r.Key))
				default:
					m[string(r.Key)] = kv{r.Offset, string(r.Value)}
				}
			}
			return m
		}
		pending := map[int64][]recordbatch.Record{} // open transactions' records, by producer
		seq := map[int64]int32{}
		check := func() {
			t.Helper()
			got := map[string]kv{}
			for _, r := range readCommitted(t, l) {
				if r.Value == nil {
					delete(got, string(r.Key))
				} else {
					got[string(r.Key)] = kv{r.Offset, string(r.Value)}
				}
			}
			// Open transactions' records lie above the LSO; the model
			// holds committed data only.
			if want := model(l.LastStableOffset()); !maps.Equal(got, want) {
				t.Fatalf("seed %d: LSO %d end %d cleaned %d open %v aborted %v committed view\n got %v\nwant %v", seed, l.LastStableOffset(), l.EndOffset(), l.cleanerOffset, l.openTxns, l.AbortedTransactions(0, l.EndOffset()), got, want)
			}
		}
		for round := range 8 {
			for range 40 {
				pid := int64(1 + rng.IntN(3))
				ts := clk.Now().UnixMilli()
				switch r := rng.IntN(10); {
				case r < 4:
					k := 1 + rng.IntN(4)
					recs := make([]recordbatch.Record, k)
					for i := range recs {
						recs[i] = recordbatch.Record{Offset: int64(i), Timestamp: ts, Key: fmt.Append(nil, "key", rng.IntN(25))}
						if rng.IntN(5) > 0 {
							recs[i].Value = fmt.Appendf(nil, "v%d", rng.Int())
						}
					}
					info, err := l.Append(recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs))
					if err != nil {
						t.Fatal(err)
					}
					for i, r := range recs {
						r.Offset = info.FirstOffset + int64(i)
						apply(r)
					}
				case r < 7:
					k := 1 + rng.IntN(4)
					recs := make([]recordbatch.Record, k)
					for i := range recs {
						recs[i] = recordbatch.Record{Offset: int64(i), Timestamp: ts, Key: fmt.Append(nil, "key", rng.IntN(25)), Value: fmt.Appendf(nil, "t%d-%d", pid, rng.Int())}
					}
					b := recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: 0, BaseSequence: seq[pid], Transactional: true}, recs)
					info, err := l.Append(b)
					if err != nil {
						t.Fatal(err)
					}
					seq[pid] += int32(k)
					for i := range recs {
						recs[i].Offset = info.FirstOffset + int64(i)
					}
					pending[pid] = append(pending[pid], recs...)
				default:
					if _, ok := pending[pid]; !ok {
						continue
					}
					commit := rng.IntN(2) == 0
					mustAppendAt(t, l, marker(pid, 0, commit, ts), true, -1)
					if commit {
						for _, r := range pending[pid] {
							apply(r)
						}
					}
					delete(pending, pid)
				}
				clk.Add(100 * time.Millisecond)
			}
			if err := l.Maintain(clk.Now()); err != nil {
				t.Fatal(err)
			}
			if lso := l.LastStableOffset(); l.cleanerOffset > lso {
				t.Fatalf("seed %d round %d: cleaned up to %d past the LSO %d", seed, round, l.cleanerOffset, lso)
			}
			check()
			// Aborted records are gone from the cleaned part.
			ab := l.abortedRanges()
			for from := l.StartOffset(); from < l.cleanerOffset; {
				ri, err := l.Read(from, 1000)
				if err != nil {
					t.Fatal(err)
				}
				bs, _ := recordbatch.Split(ri.Records)
				for _, b := range bs {
					h, _ := recordbatch.ParseHeader(b)
					from = h.LastOffset() + 1
					if !h.Control() && h.Transactional() && h.NumRecords > 0 && inAborted(ab, h.ProducerID, h.BaseOffset) && h.LastOffset() < l.cleanerOffset {
						t.Fatalf("seed %d: aborted batch at %d survived cleaning (cleaned to %d)", seed, h.BaseOffset, l.cleanerOffset)
					}
				}
			}
			if round == 4 {
				l.Close()
				l = openT(t, dir, cfg, clk)
				check()
			}
		}
		for pid := range pending {
			mustAppendAt(t, l, marker(pid, 0, false, clk.Now().UnixMilli()), true, -1)
		}
		clk.Add(time.Minute)
		mustAppendAt(t, l, batch(1, "last", clk.Now().UnixMilli()), false, -1)
		apply(recordbatch.Record{Offset: l.EndOffset() - 1, Key: []byte("k0"), Value: []byte("last-0")})
		if err := l.Compact(); err != nil {
			t.Fatal(err)
		}
		check()
		crash(l)
		l = openT(t, dir, cfg, clk)
		check()
		l.Close()
	}
}

// TestCompactionCrashMidSwapTxn crashes the cleaner at every swap step with
// aborted transactions in the cleaned segments: after the reopen the
// read_committed view is unchanged and no swap files are left.
func TestCompactionCrashMidSwapTxn(t *testing.T) {
	for step := 1; step <= 5; step++ {
		t.Run(fmt.Sprint("step", step), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(step), 11))
			clk := newClock()
			dir := t.TempDir()
			cfg := compactConfig()
			l := openT(t, dir, cfg, clk)
			seq := map[int64]int32{}
			for i := range 60 {
				pid := int64(1 + i%3)
				ts := clk.Now().UnixMilli()
				mustAppendAt(t, l, batch(1+rng.IntN(3), fmt.Sprint("p", i), ts), false, -1)
				mustAppendAt(t, l, txnBatch(2, pid, 0, seq[pid], fmt.Sprint("t", i), ts), false, -1)
				seq[pid] += 2
				mustAppendAt(t, l, marker(pid, 0, rng.IntN(2) == 0, ts), true, -1)
				clk.Add(100 * time.Millisecond)
			}
			mustAppendAt(t, l, batch(1, "end", clk.Now().UnixMilli()), false, -1)
			view := readCommitted(t, l)
			cleanerStopAfter = step
			err := l.Compact()
			cleanerStopAfter = 0
			if !errors.Is(err, errCleanerStopped) {
				t.Fatalf("got %v", err)
			}
			crash(l)
			l = openT(t, dir, cfg, clk)
			if m, _ := filepath.Glob(filepath.Join(dir, "*.*.*")); len(m) != 0 {
				t.Fatalf("leftover files after open: %v", m)
			}
			latest := func(rs []recordbatch.Record) map[string]string {
				m := map[string]string{}
				for _, r := range rs {
					m[string(r.Key)] = string(r.Value)
				}
				return m
			}
			if got := readCommitted(t, l); !maps.Equal(latest(got), latest(view)) {
				t.Fatalf("read_committed view changed by the interrupted swap")
			}
			if err := l.Compact(); err != nil {
				t.Fatal(err)
			}
			if got := readCommitted(t, l); !maps.Equal(latest(got), latest(view)) {
				t.Fatalf("read_committed view changed by compaction")
			}
			l.Close()
			l = openT(t, dir, cfg, clk)
			if got := readCommitted(t, l); !maps.Equal(latest(got), latest(view)) {
				t.Fatalf("read_committed view changed by a restart")
			}
			l.Close()
		})
	}
}

// txnFixture writes a small log with committed, aborted and open
// transactions to dir and closes it cleanly.
func txnFixture(t testing.TB, dir string) {
	l := openT(t, dir, testConfig(), nil)
	for i := range 8 {
		pid := int64(i % 3)
		l.Append(txnBatch(2, pid, 0, int32(2*(i/3)), "t", 1))
		if i%3 != 2 {
			l.AppendControl(marker(pid, 0, i%2 == 0, 1))
		}
	}
	l.Close()
}

// FuzzTxnFiles feeds arbitrary aborted-transaction index and producer
// snapshot bytes to Open over a valid transactional log, with and without
// the clean-shutdown marker: Open must not panic, and the log must keep
// LSO <= end and take appends and markers at its end.
func FuzzTxnFiles(f *testing.F) {
	f.Fuzz(func(t *testing.T, txnIndex, snapshot []byte, clean bool) {
		dir := t.TempDir()
		txnFixture(t, dir)
		if !clean {
			os.Remove(filepath.Join(dir, cleanShutdownFile))
		}
		os.WriteFile(segName(dir, 0, txnIndexSuffix), txnIndex, 0o644)
		snaps := listSnapshots(dir)
		if len(snaps) > 0 {
			os.WriteFile(segName(dir, snaps[len(snaps)-1], snapshotSuffix), snapshot, 0o644)
		}
		l, err := Open(dir, testConfig(), Options{})
		if err != nil {
			return
		}
		defer l.Close()
		if lso := l.LastStableOffset(); lso > l.EndOffset() || lso < 0 {
			t.Fatalf("LSO %d, end %d", lso, l.EndOffset())
		}
		l.AbortedTransactions(0, l.EndOffset())
		end := l.EndOffset()
		if info, err := l.Append(batch(1, "f", 1)); err != nil || info.FirstOffset != end {
			t.Fatalf("append after open: %+v %v (end %d)", info, err, end)
		}
		if _, err := l.AppendControl(marker(99, 0, false, 1)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriteTxnFuzzSeeds regenerates testdata/fuzz/FuzzTxnFiles when
// EDDY_WRITE_SEEDS=1.
func TestWriteTxnFuzzSeeds(t *testing.T) {
	if os.Getenv("EDDY_WRITE_SEEDS") == "" {
		t.Skip("set EDDY_WRITE_SEEDS=1 to regenerate the fuzz seed corpus")
	}
	dir := t.TempDir()
	txnFixture(t, dir)
	idx, _ := os.ReadFile(segName(dir, 0, txnIndexSuffix))
	snaps := listSnapshots(dir)
	snap, _ := os.ReadFile(segName(dir, snaps[len(snaps)-1], snapshotSuffix))
	out := filepath.Join("testdata", "fuzz", "FuzzTxnFiles")
	os.MkdirAll(out, 0o755)
	q := func(b []byte) string { return "[]byte(" + strconv.Quote(string(b)) + ")" }
	seeds := map[string]string{
		"clean":     q(idx) + "\n" + q(snap) + "\nbool(true)",
		"unclean":   q(idx) + "\n" + q(snap) + "\nbool(false)",
		"tornindex": q(idx[:len(idx)-5]) + "\n" + q(snap) + "\nbool(true)",
		"badsnap":   q(idx) + "\n" + q(snap[:len(snap)-3]) + "\nbool(true)",
		"empty":     q(nil) + "\n" + q(nil) + "\nbool(true)",
	}
	for name, body := range seeds {
		if err := os.WriteFile(filepath.Join(out, name), []byte("go test fuzz v1\n"+body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
