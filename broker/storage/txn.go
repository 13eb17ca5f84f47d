package storage

// Transactions at the partition, as Kafka keeps them beside each log:
//
//   - A transactional data batch (attributes bit 4, not a control batch)
//     from producer P opens P's transaction at its base offset if none is
//     open; a control batch (commit or abort marker) from P ends it.
//   - The last stable offset (LSO) is the first offset of the earliest open
//     transaction, or the log end offset when none is open. read_committed
//     consumers read only below it.
//   - An abort marker adds an entry to its segment's aborted-transaction
//     index (<base>.txnindex): producer id, first offset of the transaction,
//     the marker's offset, and the LSO right after the abort. Fetch returns
//     the aborted transactions overlapping the fetched range so that clients
//     skip their records.
//   - A marker bumps the producer's epoch at the partition: later data
//     batches with an older epoch fail with INVALID_PRODUCER_EPOCH (zombie
//     fencing), and so does a marker with an older epoch.
//
// Open transactions are part of the producer-state snapshot; the index
// files are rebuilt by the replay of batch headers after the snapshot.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
)

const (
	txnIndexSuffix = ".txnindex"
	txnEntrySize   = 32 // producer id, first offset, last offset, LSO: int64 each

	// Control record key types (ControlRecordKey.Type).
	controlAbort  int16 = 0
	controlCommit int16 = 1
)

// AbortedTxn is an aborted transaction as Fetch v4+ reports it: records of
// ProducerID at or after FirstOffset, up to the producer's abort marker, are
// to be skipped by a read_committed consumer.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
}

// abortedEntry is one aborted-transaction index entry.
type abortedEntry struct {
	pid   int64
	first int64 // first offset of the transaction
	last  int64 // offset of the abort marker
	lso   int64 // last stable offset right after the abort
}

// controlType returns the type of a control batch's marker (controlAbort or
// controlCommit) and the coordinator epoch of its EndTxnMarker value (-1
// when the value is too short to hold one); other control records are
// rejected with INVALID_RECORD.
func controlType(b []byte) (int16, int32, error) {
	recs, err := recordbatch.Records(b)
	if err != nil {
		return 0, 0, err
	}
	if len(recs) != 1 || len(recs[0].Key) < 4 {
		return 0, 0, fmt.Errorf("storage: control batch must hold one record with a control key, has %d records: %w", len(recs), kerr.InvalidRecord)
	}
	k := recs[0].Key
	if v := int16(binary.BigEndian.Uint16(k)); v < 0 {
		return 0, 0, fmt.Errorf("storage: control record key version %d: %w", v, kerr.InvalidRecord)
	}
	typ := int16(binary.BigEndian.Uint16(k[2:]))
	if typ != controlAbort && typ != controlCommit {
		return 0, 0, fmt.Errorf("storage: control record type %d is not a transaction marker: %w", typ, kerr.InvalidRecord)
	}
	coordEpoch := int32(-1)
	if v := recs[0].Value; len(v) >= 6 {
		coordEpoch = int32(binary.BigEndian.Uint32(v[2:]))
	}
	return typ, coordEpoch, nil
}

// LastStableOffset is the first offset of the earliest open transaction, or
// the log end offset when no transaction is open. Every offset below it
// belongs to a decided (committed or aborted) transaction or to no
// transaction at all.
func (l *Log) LastStableOffset() int64 { return l.lso.Load() }

// AbortedTransactions returns the aborted transactions whose records
// overlap [from, to): those whose abort marker lies at or after from and
// whose first offset lies before to, ordered by first offset (clients
// filter in that order). This is what Fetch v4+ returns for read_committed.
func (l *Log) AbortedTransactions(from, to int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed || to <= from {
		return nil
	}
	var out []AbortedTxn
	func() {
		for i := l.segIndex(from); i < len(l.segs); i++ {
			for _, e := range l.segs[i].aborted {
				if e.last >= from && e.first < to {
					out = append(out, AbortedTxn{ProducerID: e.pid, FirstOffset: e.first})
				}
				// A transaction aborted later that started before
				// to was open at this abort: this LSO would be below to.
				if e.lso >= to {
					return
				}
			}
		}
	}()
	slices.SortStableFunc(out, func(a, b AbortedTxn) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	return out
}

// computeLSO is the last stable offset from the open transactions. Caller
// holds mu (or is loading the log).
func (l *Log) computeLSO() int64 {
	lso := l.next.Load()
	for _, first := range l.openTxns {
		lso = min(lso, first)
	}
	return lso
}

// trackTxn updates the open transactions for a batch at [base, last] of s:
// a transactional data batch opens its producer's transaction, a marker
// ends it. An abort is returned as an index entry (already added to s).
// Caller holds mu (or is loading the log).
func (l *Log) trackTxn(s *segment, pid int64, transactional, control bool, ctype int16, base, last int64) (abortedEntry, bool) {
	if pid < 0 || !transactional {
		return abortedEntry{}, false
	}
	if !control {
		if _, ok := l.openTxns[pid]; !ok {
			l.openTxns[pid] = base
		}
		return abortedEntry{}, false
	}
	first, ok := l.openTxns[pid]
	if !ok {
		return abortedEntry{}, false // nothing to end (a retried marker)
	}
	delete(l.openTxns, pid)
	if ctype != controlAbort {
		return abortedEntry{}, false
	}
	e := abortedEntry{pid: pid, first: first, last: base, lso: last + 1}
	for _, f := range l.openTxns {
		e.lso = min(e.lso, f)
	}
	s.aborted = append(s.aborted, e)
	return e, true
}

// recordMarker applies a marker to the producer state: a newer epoch
// fences older ones and restarts the sequence history; the marker's
// coordinator epoch and timestamp become the producer's. Caller holds mu
// (or is loading the log).
func (l *Log) recordMarker(pid int64, epoch int16, coordEpoch int32, ts int64) {
	st := l.producers[pid]
	if st == nil {
		st = &producerState{epoch: epoch, batches: make([]producerBatch, 0, producerBatches)}
		l.producers[pid] = st
	}
	if epoch != st.epoch {
		st.epoch, st.batches = epoch, st.batches[:0]
	}
	st.coordEpoch, st.lastTs = coordEpoch, ts
}

func appendEntry(b []byte, e abortedEntry) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(e.pid))
	b = binary.BigEndian.AppendUint64(b, uint64(e.first))
	b = binary.BigEndian.AppendUint64(b, uint64(e.last))
	return binary.BigEndian.AppendUint64(b, uint64(e.lso))
}

// writeTxnEntries appends the index entries not yet in s's .txnindex file.
func (s *segment) writeTxnEntries() error {
	if s.txnWritten >= len(s.aborted) {
		return nil
	}
	b := make([]byte, 0, (len(s.aborted)-s.txnWritten)*txnEntrySize)
	for _, e := range s.aborted[s.txnWritten:] {
		b = appendEntry(b, e)
	}
	if err := writeAtFile(segName(s.dir, s.base, txnIndexSuffix), b, int64(s.txnWritten)*txnEntrySize); err != nil {
		return err
	}
	s.txnWritten = len(s.aborted)
	return nil
}

// rewriteTxnIndex replaces s's .txnindex file with its in-memory entries
// (removing the file when there are none).
func (s *segment) rewriteTxnIndex() error {
	path := segName(s.dir, s.base, txnIndexSuffix)
	s.txnWritten = 0
	if len(s.aborted) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return storageErr(err)
		}
		return nil
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return storageErr(err)
	}
	return s.writeTxnEntries()
}

// loadTxnIndex reads s's .txnindex file (none means no aborts) and checks
// it against the segment's offsets; it reports false when it is
// inconsistent.
func (s *segment) loadTxnIndex() bool {
	s.aborted, s.txnWritten = s.aborted[:0], 0
	b, err := os.ReadFile(segName(s.dir, s.base, txnIndexSuffix))
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	if err != nil || len(b)%txnEntrySize != 0 {
		return false
	}
	for p := 0; p < len(b); p += txnEntrySize {
		e := abortedEntry{
			pid: int64(binary.BigEndian.Uint64(b[p:])), first: int64(binary.BigEndian.Uint64(b[p+8:])),
			last: int64(binary.BigEndian.Uint64(b[p+16:])), lso: int64(binary.BigEndian.Uint64(b[p+24:])),
		}
		if e.pid < 0 || e.first < 0 || e.first > e.last || e.last < s.base || e.last >= s.next || e.lso < 0 || e.lso > e.last+1 {
			return false
		}
		if n := len(s.aborted); n > 0 && e.last <= s.aborted[n-1].last {
			return false
		}
		s.aborted = append(s.aborted, e)
	}
	s.txnWritten = len(s.aborted)
	return true
}

// abortedRanges maps each producer to the offset ranges [first, marker) of
// its aborted transactions in the log. Caller holds mu.
func (l *Log) abortedRanges() map[int64][][2]int64 {
	m := map[int64][][2]int64{}
	for _, s := range l.segs {
		for _, e := range s.aborted {
			m[e.pid] = append(m[e.pid], [2]int64{e.first, e.last})
		}
	}
	return m
}

// inAborted reports whether a transactional batch of pid at offset off
// belongs to an aborted transaction.
func inAborted(m map[int64][][2]int64, pid, off int64) bool {
	for _, r := range m[pid] {
		if off >= r[0] && off < r[1] {
			return true
		}
	}
	return false
}
