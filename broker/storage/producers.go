package storage

// Idempotent-producer state, as Kafka keeps it beside each partition log:
// for every producer ID its epoch and the sequence and offset ranges of its
// last five batches. Append uses it to answer a retried batch with its
// original offsets instead of writing it twice, and to reject sequence gaps
// (OUT_OF_ORDER_SEQUENCE_NUMBER) and stale epochs (INVALID_PRODUCER_EPOCH).
//
// The state is snapshotted to <offset>.snapshot when a segment rolls and on
// Close; Open loads the newest valid snapshot at or below the log end and
// replays the batch headers after it.
//
// A producer without an open transaction whose last batch (or marker) has a
// timestamp older than producer.id.expiration.ms is forgotten, as in Kafka:
// Maintain drops it (checking every producerExpiryCheckMs), and the next
// snapshot no longer holds it.
// Its next batch is then accepted at any sequence number, which is what
// Kafka does since 2.5 (KIP-360) for a producer it has no state of, instead
// of the UNKNOWN_PRODUCER_ID of earlier releases.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
)

const (
	snapshotSuffix   = ".snapshot"
	producerBatches  = 5 // batches remembered per producer, as in Kafka
	snapshotsKept    = 3
	snapshotMagic    = "EDPS"
	snapshotVersion  = 3 // 2 added the open transactions, 3 the timestamps and coordinator epochs; older ones are ignored (full replay)
	snapshotEntryMin = 8 + 2 + 8 + 4 + 1
	snapshotEntryMax = snapshotEntryMin + producerBatches*24

	// DefaultProducerIDExpirationMs is Kafka's producer.id.expiration.ms
	// default, 1 day; Config.ProducerIDExpirationMs 0 stands for it.
	DefaultProducerIDExpirationMs = 24 * 3600 * 1000
	// producerExpiryCheckMs is how often Maintain looks for expired
	// producers: Kafka's producer.id.expiration.check.interval.ms default.
	producerExpiryCheckMs = 10 * 60 * 1000
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type producerBatch struct {
	firstSeq, lastSeq int32
	firstOff, lastOff int64
}

type producerState struct {
	epoch      int16
	batches    []producerBatch // oldest first, at most producerBatches
	lastTs     int64           // max timestamp of the last batch or marker
	coordEpoch int32           // coordinator epoch of the last marker, -1 before one
}

// ProducerInfo describes one producer whose idempotent state a log keeps,
// as DescribeProducers reports it.
type ProducerInfo struct {
	ProducerID       int64
	ProducerEpoch    int16
	LastSequence     int32 // last sequence of its last batch, -1 when none is remembered
	LastTimestamp    int64 // max timestamp of its last batch or marker
	CoordinatorEpoch int32 // coordinator epoch of its last marker, -1 when none
	TxnStartOffset   int64 // first offset of its open transaction, -1 when none
}

// Producers returns the producers whose state the log keeps, by producer
// ID: every producer that wrote an idempotent batch or had a marker written
// and has not expired (see Config.ProducerIDExpirationMs).
func (l *Log) Producers() []ProducerInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil
	}
	out := make([]ProducerInfo, 0, len(l.producers))
	for _, pid := range slices.Sorted(maps.Keys(l.producers)) {
		st := l.producers[pid]
		pi := ProducerInfo{ProducerID: pid, ProducerEpoch: st.epoch, LastSequence: -1, LastTimestamp: st.lastTs,
			CoordinatorEpoch: st.coordEpoch, TxnStartOffset: -1}
		if n := len(st.batches); n > 0 {
			pi.LastSequence = st.batches[n-1].lastSeq
		}
		if first, ok := l.openTxns[pid]; ok {
			pi.TxnStartOffset = first
		}
		out = append(out, pi)
	}
	return out
}

// producerExpirationMs is the effective producer.id.expiration.ms.
func (c *Config) producerExpirationMs() int64 {
	if c.ProducerIDExpirationMs <= 0 {
		return DefaultProducerIDExpirationMs
	}
	return c.ProducerIDExpirationMs
}

// expireProducers drops the producers without an open transaction whose
// last timestamp is at least producer.id.expiration.ms before nowMs, as
// Kafka's ProducerStateManager does. Caller holds mu (or is loading the
// log).
func (l *Log) expireProducers(cfg *Config, nowMs int64) {
	exp := cfg.producerExpirationMs()
	for pid, st := range l.producers {
		if _, open := l.openTxns[pid]; !open && nowMs-st.lastTs >= exp {
			delete(l.producers, pid)
		}
	}
}

// batchMeta is what Append needs to know about each batch of a request.
type batchMeta struct {
	maxTs   int64
	pid     int64
	epoch   int16
	seq     int32
	delta   int32
	control bool
	txn     bool  // transactional bit
	ctype   int16 // control batches: controlAbort or controlCommit

	coordEpoch int32 // control batches: the marker's coordinator epoch
}

func (m *batchMeta) idempotent() bool { return m.pid >= 0 && m.seq >= 0 && !m.control }

// addSeq adds n to a sequence number, wrapping past MaxInt32 to 0 as Kafka does.
func addSeq(seq, n int32) int32 {
	return int32((int64(seq) + int64(n)) % (math.MaxInt32 + 1))
}

// checkProducers validates the sequence numbers of a request's batches
// against the producer state. dup is set when the request is a single batch
// already in the log. Caller holds mu.
func (l *Log) checkProducers(metas []batchMeta) (dup *producerBatch, err error) {
	for i := range metas {
		m := &metas[i]
		if m.control {
			if err := l.checkMarker(metas[:i], m); err != nil {
				return nil, err
			}
			continue
		}
		if !m.idempotent() {
			continue
		}
		last := addSeq(m.seq, m.delta)
		// An earlier batch of the same producer in this request sets the
		// expectation; otherwise the stored state does.
		var expect int32 = -1
		epoch, known := m.epoch, false
		for j := i - 1; j >= 0; j-- {
			if p := &metas[j]; p.idempotent() && p.pid == m.pid {
				expect, epoch, known = addSeq(p.seq, p.delta+1), p.epoch, true
				break
			}
		}
		if st := l.producers[m.pid]; !known && st != nil {
			known, epoch = true, st.epoch
			if m.epoch == st.epoch {
				for k := range st.batches {
					if b := &st.batches[k]; b.firstSeq == m.seq && b.lastSeq == last {
						if len(metas) == 1 {
							return b, nil
						}
						return nil, fmt.Errorf("storage: producer %d: batch with sequences %d..%d is a duplicate: %w", m.pid, m.seq, last, kerr.DuplicateSequenceNumber)
					}
				}
				if n := len(st.batches); n > 0 {
					expect = addSeq(st.batches[n-1].lastSeq, 1)
				} else {
					expect = 0 // the epoch came from a marker: sequences start over
				}
			}
		}
		switch {
		case !known:
		case m.epoch < epoch:
			return nil, fmt.Errorf("storage: producer %d: epoch %d is older than %d: %w", m.pid, m.epoch, epoch, kerr.InvalidProducerEpoch)
		case m.epoch > epoch:
			if m.seq != 0 {
				return nil, fmt.Errorf("storage: producer %d: new epoch %d must start at sequence 0, got %d: %w", m.pid, m.epoch, m.seq, kerr.OutOfOrderSequenceNumber)
			}
		case expect >= 0 && m.seq != expect:
			return nil, fmt.Errorf("storage: producer %d epoch %d: sequence %d, expected %d: %w", m.pid, m.epoch, m.seq, expect, kerr.OutOfOrderSequenceNumber)
		}
	}
	return nil, nil
}

// checkMarker rejects a control batch without a producer or with an epoch
// older than the producer's (from earlier batches of the request or the
// stored state). Caller holds mu.
func (l *Log) checkMarker(earlier []batchMeta, m *batchMeta) error {
	if m.pid < 0 || !m.txn {
		return fmt.Errorf("storage: control batch without a transactional producer (id %d): %w", m.pid, kerr.InvalidRecord)
	}
	epoch, known := int16(0), false
	for j := len(earlier) - 1; j >= 0; j-- {
		if p := &earlier[j]; p.pid == m.pid && (p.control || p.idempotent()) {
			epoch, known = p.epoch, true
			break
		}
	}
	if st := l.producers[m.pid]; !known && st != nil {
		epoch, known = st.epoch, true
	}
	if known && m.epoch < epoch {
		return fmt.Errorf("storage: producer %d: marker epoch %d is older than %d: %w", m.pid, m.epoch, epoch, kerr.InvalidProducerEpoch)
	}
	return nil
}

// recordProducer updates the state with a batch now in the log. Caller
// holds mu (or is loading the log).
func (l *Log) recordProducer(pid int64, epoch int16, seq, delta int32, firstOff, maxTs int64) {
	st := l.producers[pid]
	if st == nil {
		st = &producerState{epoch: epoch, batches: make([]producerBatch, 0, producerBatches), coordEpoch: -1}
		l.producers[pid] = st
	}
	st.lastTs = maxTs
	if epoch != st.epoch {
		st.epoch, st.batches = epoch, st.batches[:0]
	}
	if len(st.batches) == producerBatches {
		copy(st.batches, st.batches[1:])
		st.batches = st.batches[:producerBatches-1]
	}
	st.batches = append(st.batches, producerBatch{firstSeq: seq, lastSeq: addSeq(seq, delta), firstOff: firstOff, lastOff: firstOff + int64(delta)})
}

// writeSnapshot saves the producer state as of offset. With durable it is
// fsynced; otherwise a torn snapshot is detected by its CRC and skipped.
// Caller holds mu.
func (l *Log) writeSnapshot(offset int64, durable bool) error {
	b := make([]byte, 0, 17+len(l.producers)*snapshotEntryMax+4+len(l.openTxns)*16+4)
	b = append(b, snapshotMagic...)
	b = append(b, snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.producers)))
	for _, pid := range slices.Sorted(maps.Keys(l.producers)) {
		st := l.producers[pid]
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(st.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(st.lastTs))
		b = binary.BigEndian.AppendUint32(b, uint32(st.coordEpoch))
		b = append(b, byte(len(st.batches)))
		for _, pb := range st.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(pb.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(pb.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.firstOff))
			b = binary.BigEndian.AppendUint64(b, uint64(pb.lastOff))
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.openTxns)))
	for _, pid := range slices.Sorted(maps.Keys(l.openTxns)) {
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint64(b, uint64(l.openTxns[pid]))
	}
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	path := segName(l.dir, offset, snapshotSuffix)
	tmp := path + checkpointTempSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return storageErr(err)
	}
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return storageErr(err)
	}
	// Keep the newest few.
	snaps := listSnapshots(l.dir)
	for i := 0; i < len(snaps)-snapshotsKept; i++ {
		os.Remove(segName(l.dir, snaps[i], snapshotSuffix))
	}
	return nil
}

// listSnapshots returns the offsets of the snapshot files, ascending.
func listSnapshots(dir string) []int64 {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+snapshotSuffix))
	var offs []int64
	for _, p := range m {
		if o, ok := parseSegName(filepath.Base(p), snapshotSuffix); ok {
			offs = append(offs, o)
		}
	}
	slices.Sort(offs)
	return offs
}

var (
	errBadSnapshot = errors.New("storage: bad producer state snapshot")
	errOldSnapshot = errors.New("storage: producer state snapshot of an older version")
)

// readSnapshot parses a snapshot file: its offset, producers and open
// transactions.
func readSnapshot(path string) (int64, map[int64]*producerState, map[int64]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, nil, err
	}
	if len(b) >= 5 && string(b[:4]) == snapshotMagic && b[4] < snapshotVersion {
		return 0, nil, nil, errOldSnapshot
	}
	if len(b) < 25 || string(b[:4]) != snapshotMagic || b[4] != snapshotVersion ||
		crc32.Checksum(b[:len(b)-4], crcTable) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return 0, nil, nil, errBadSnapshot
	}
	offset := int64(binary.BigEndian.Uint64(b[5:]))
	n := binary.BigEndian.Uint32(b[13:])
	p := b[17 : len(b)-4]
	out := make(map[int64]*producerState, min(int(n), len(p)/snapshotEntryMin))
	for range n {
		if len(p) < snapshotEntryMin {
			return 0, nil, nil, errBadSnapshot
		}
		pid := int64(binary.BigEndian.Uint64(p))
		st := &producerState{epoch: int16(binary.BigEndian.Uint16(p[8:])),
			lastTs: int64(binary.BigEndian.Uint64(p[10:])), coordEpoch: int32(binary.BigEndian.Uint32(p[18:]))}
		nb := int(p[22])
		p = p[snapshotEntryMin:]
		if nb > producerBatches || len(p) < nb*24 {
			return 0, nil, nil, errBadSnapshot
		}
		st.batches = make([]producerBatch, nb, producerBatches)
		for i := range nb {
			st.batches[i] = producerBatch{
				firstSeq: int32(binary.BigEndian.Uint32(p)), lastSeq: int32(binary.BigEndian.Uint32(p[4:])),
				firstOff: int64(binary.BigEndian.Uint64(p[8:])), lastOff: int64(binary.BigEndian.Uint64(p[16:])),
			}
			p = p[24:]
		}
		out[pid] = st
	}
	if len(p) < 4 {
		return 0, nil, nil, errBadSnapshot
	}
	nt := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(len(p)) != uint64(nt)*16 {
		return 0, nil, nil, errBadSnapshot
	}
	txns := make(map[int64]int64, nt)
	for range nt {
		pid, first := int64(binary.BigEndian.Uint64(p)), int64(binary.BigEndian.Uint64(p[8:]))
		if pid < 0 || first < 0 || first >= offset {
			return 0, nil, nil, errBadSnapshot
		}
		txns[pid] = first
		p = p[16:]
	}
	return offset, out, txns, nil
}

// loadProducers rebuilds the producer state, the open transactions and the
// aborted-transaction indexes at open: the newest valid snapshot at or below
// both the log end and bound (where recovery re-validated the log from),
// then the batch headers after it. Index entries of the replayed part are
// rebuilt; a .txnindex that fails its checks forces a replay of the whole
// log.
func (l *Log) loadProducers(bound int64) error {
	next := l.next.Load()
	from := l.segs[0].base
	l.producers = map[int64]*producerState{}
	l.openTxns = map[int64]int64{}
	indexesOK := true
	for _, s := range l.segs {
		if !s.loadTxnIndex() {
			l.logger.Warn("rebuilding bad aborted-transaction index", "dir", l.dir, "segment", s.base)
			indexesOK = false
		}
	}
	snaps := listSnapshots(l.dir)
	for i := len(snaps) - 1; i >= 0 && indexesOK; i-- {
		path := segName(l.dir, snaps[i], snapshotSuffix)
		if snaps[i] > next {
			os.Remove(path) // the log was truncated below it
			continue
		}
		if snaps[i] > bound {
			continue // the replay must cover every recovered segment
		}
		off, st, txns, err := readSnapshot(path)
		if err != nil || off != snaps[i] {
			if errors.Is(err, errOldSnapshot) {
				l.logger.Info("replaying log instead of old-format producer state snapshot", "file", path)
			} else {
				l.logger.Warn("ignoring bad producer state snapshot", "file", path, "err", err)
			}
			os.Remove(path)
			continue
		}
		from, l.producers, l.openTxns = max(off, from), st, txns
		break
	}
	for _, s := range l.segs[l.segIndex(from):] {
		s.aborted = slices.DeleteFunc(s.aborted, func(e abortedEntry) bool { return e.last >= from })
	}
	var buf []byte
	for i := l.segIndex(from); i < len(l.segs) && from < next; i++ {
		s := l.segs[i]
		var rerr error
		err := s.scanHeaders(s.lookup(from), func(pos int64, h []byte) bool {
			hd, _ := recordbatch.ParseHeader(h)
			if hd.LastOffset() < from {
				return true
			}
			switch {
			case hd.Control() && hd.ProducerID >= 0:
				size := hd.Size()
				if size > 1<<20 {
					rerr = fmt.Errorf("storage: control batch of %d bytes at %d", size, hd.BaseOffset)
					return false
				}
				buf = slices.Grow(buf[:0], size)[:size]
				if _, err := s.log.ReadAt(buf, pos); err != nil {
					rerr = storageErr(err)
					return false
				}
				typ, coordEpoch, err := controlType(buf)
				if err != nil {
					return true // not a transaction marker
				}
				l.recordMarker(hd.ProducerID, hd.ProducerEpoch, coordEpoch, hd.MaxTimestamp)
				l.trackTxn(s, hd.ProducerID, hd.Transactional(), true, typ, hd.BaseOffset, hd.LastOffset())
			case hd.Control():
			default:
				if hd.ProducerID >= 0 && hd.BaseSequence >= 0 {
					l.recordProducer(hd.ProducerID, hd.ProducerEpoch, hd.BaseSequence, hd.LastOffsetDelta, hd.BaseOffset, hd.MaxTimestamp)
				}
				l.trackTxn(s, hd.ProducerID, hd.Transactional(), false, 0, hd.BaseOffset, hd.LastOffset())
			}
			return true
		}, recordbatch.HeaderSize)
		if err == nil {
			err = rerr
		}
		if err == nil {
			err = s.rewriteTxnIndex()
		}
		if err != nil {
			return fmt.Errorf("storage: replaying producer state from segment %d: %w", s.base, err)
		}
	}
	l.lso.Store(l.computeLSO())
	return nil
}
