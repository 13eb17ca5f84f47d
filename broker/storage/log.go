package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Log is one partition's durable log. It is safe for concurrent use.
//
// Lock order: cleanMu, flushMu, mu. Append and Read take only mu. Flushes
// take flushMu (and fsync the active file outside mu). Operations that remove
// segments take cleanMu (so the cleaner's segments stay open while it reads
// them without mu) and flushMu (so a flush never sees its file closed).
type Log struct {
	dir     string
	logger  *slog.Logger
	now     func() time.Time
	cfg     atomic.Pointer[Config]
	closing atomic.Bool // Close has started: the cleaner gives up

	cleanMu sync.Mutex
	flushMu sync.Mutex
	mu      sync.RWMutex

	segs      []*segment // by base offset; the last one is active
	dirty     []*segment // rolled segments not yet fsynced
	dirDirty  bool       // directory entries changed since the last fsync
	unflushed int64      // records appended since the last flush
	lastFlush int64      // ms
	closed    bool

	next    atomic.Int64 // log end offset
	start   atomic.Int64 // log start offset
	flushed atomic.Int64 // every offset below it is fsynced

	rpWritten     int64 // last recovery point written to its checkpoint
	cleanerOffset int64 // compaction has cleaned everything below it
	expiryChecked int64 // ms: when Maintain last looked for expired producers

	producers map[int64]*producerState // idempotent producers, by ID
	openTxns  map[int64]int64          // producer ID → first offset of its open transaction
	lso       atomic.Int64             // last stable offset
	txnErr    error                    // a failed .txnindex write: Close leaves no clean-shutdown marker
}

// Open opens (creating if needed) and recovers the log in dir.
//
// After a clean Close the segments and indexes are trusted. Otherwise every
// segment from the one holding the recovery point on is re-validated batch
// by batch (CRC, record framing, increasing offsets); the log is truncated at
// the first invalid batch, later segments are deleted and the indexes of the
// re-validated segments are rebuilt.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, logger: opts.Logger, now: opts.Now}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.cfg.Store(&cfg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, storageErr(err)
	}
	clean := false
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownFile)); err == nil {
		clean = true
		if err := os.Remove(filepath.Join(dir, cleanShutdownFile)); err != nil {
			return nil, storageErr(err)
		}
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	if err := l.load(clean); err != nil {
		for _, s := range l.segs {
			s.close()
		}
		return nil, err
	}
	return l, nil
}

// load opens the segments, recovering them when needed.
func (l *Log) load(clean bool) error {
	cfg := l.Config()
	if err := finishSwaps(l.dir, l.logger); err != nil {
		return err
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return storageErr(err)
	}
	var bases []int64
	logs := map[int64]bool{}
	for _, e := range entries {
		if b, ok := parseSegName(e.Name(), logSuffix); ok {
			bases = append(bases, b)
			logs[b] = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		b, ok1 := parseSegName(name, indexSuffix)
		if !ok1 {
			b, ok1 = parseSegName(name, timeIndexSuffix)
		}
		if !ok1 {
			b, ok1 = parseSegName(name, txnIndexSuffix)
		}
		if (ok1 && !logs[b]) || strings.HasSuffix(name, checkpointTempSuffix) {
			os.Remove(filepath.Join(l.dir, name))
		}
	}
	slices.Sort(bases)
	lso, _ := readCheckpoint(l.dir, logStartOffsetFile)
	rp, _ := readCheckpoint(l.dir, recoveryPointFile)
	l.cleanerOffset, _ = readCheckpoint(l.dir, cleanerOffsetFile)
	recoverFrom := len(bases)
	bound := int64(math.MaxInt64) // producer-state replay must start at or below it
	if !clean {
		recoverFrom = 0
		for i, b := range bases {
			if b <= rp {
				recoverFrom = i
			}
		}
		if recoverFrom < len(bases) {
			bound = bases[recoverFrom]
		}
		if len(bases) > 0 { // a new, empty log has nothing to recover
			l.logger.Info("recovering log after unclean shutdown", "dir", l.dir, "recovery_point", rp, "segments", len(bases)-recoverFrom)
		}
	}
	prevNext := int64(0)
	var recovered []*segment
	for i, base := range bases {
		s, err := openSegmentFile(l.dir, base)
		if err != nil {
			return err
		}
		if i > 0 && base != prevNext {
			l.logger.Warn("segment does not continue the previous one; deleting it and later segments", "dir", l.dir, "base", base, "expected", prevNext)
			s.remove()
			removeSegmentsFrom(l.dir, bases[i+1:])
			break
		}
		l.segs = append(l.segs, s)
		if i < recoverFrom && s.loadIndexes() && s.finishLoad() {
			prevNext = s.next
			continue
		}
		truncated, err := s.recover(prevNext, cfg)
		if err != nil {
			return err
		}
		recovered = append(recovered, s)
		bound = min(bound, base)
		prevNext = s.next
		if truncated {
			l.logger.Warn("truncated log at first invalid batch", "dir", l.dir, "segment", base, "size", s.size, "next_offset", s.next)
			removeSegmentsFrom(l.dir, bases[i+1:])
			break
		}
	}
	nowMs := l.now().UnixMilli()
	if len(l.segs) == 0 {
		s, err := createSegment(l.dir, max(lso, 0), nowMs)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
		recovered = append(recovered, s)
	}
	next := l.segs[len(l.segs)-1].next
	start := max(lso, l.segs[0].base)
	if start > next {
		// Everything below the persisted start offset is gone and so is
		// the data the start offset pointed into: start afresh there.
		l.logger.Warn("log end below log start offset; emptying log", "dir", l.dir, "start", start, "end", next)
		for _, s := range l.segs {
			s.remove()
		}
		s, err := createSegment(l.dir, start, nowMs)
		if err != nil {
			l.segs = nil
			return err
		}
		l.segs = []*segment{s}
		recovered = []*segment{s}
		next = start
	}
	l.next.Store(next)
	l.start.Store(start)
	l.cleanerOffset = min(max(l.cleanerOffset, start), next)
	for _, s := range recovered {
		if err := s.log.Sync(); err != nil {
			return storageErr(err)
		}
		if err := s.syncIndexes(); err != nil {
			return err
		}
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	l.flushed.Store(next)
	l.lastFlush = nowMs
	if err := writeCheckpoint(l.dir, recoveryPointFile, next); err != nil {
		return err
	}
	l.rpWritten = next
	if err := writeCheckpoint(l.dir, logStartOffsetFile, start); err != nil {
		return err
	}
	return l.loadProducers(bound)
}

func removeSegmentsFrom(dir string, bases []int64) {
	for _, b := range bases {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
			os.Remove(segName(dir, b, suf))
		}
	}
}

// recover re-validates every batch of s, rebuilds its indexes and truncates
// it at the first invalid batch (truncated reports that). Batches must
// continue one another without gaps from the segment's base offset (the
// cleaner keeps that true for compacted segments too).
func (s *segment) recover(minBase int64, cfg Config) (truncated bool, err error) {
	s.idx, s.tidx, s.idxWritten, s.tidxWritten = s.idx[:0], s.tidx[:0], 0, 0
	s.next, s.maxTs, s.maxTsOffset, s.sinceIdx, s.firstBatchTs = s.base, -1, -1, 0, -1
	size := s.size
	s.size = 0
	expect := max(minBase, s.base)
	limit := max(int64(cfg.MaxMessageBytes), 64<<20)
	r := io.NewSectionReader(s.log, 0, size)
	var buf []byte
	var hdr [recordbatch.LengthFieldEnd]byte
	pos := int64(0)
	valid := func() bool {
		if _, err := r.ReadAt(hdr[:], pos); err != nil {
			return false
		}
		l := int64(int32(binary.BigEndian.Uint32(hdr[8:])))
		if l < recordbatch.HeaderSize-recordbatch.LengthFieldEnd || l > limit || pos+recordbatch.LengthFieldEnd+l > size {
			return false
		}
		n := int(l) + recordbatch.LengthFieldEnd
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := r.ReadAt(buf, pos); err != nil {
			return false
		}
		info, err := recordbatch.Inspect(buf)
		if err != nil || info.BaseOffset != expect || info.LastOffset()-s.base > math.MaxInt32 {
			return false
		}
		ts := info.RecordsMaxTimestamp
		if info.LogAppendTime() {
			ts = info.MaxTimestamp
		}
		s.addBatch(pos, n, info.BaseOffset, info.LastOffset(), ts, cfg.IndexIntervalBytes)
		if pos == 0 {
			s.firstBatchTs = info.MaxTimestamp
		}
		s.size = pos + int64(n)
		expect = info.LastOffset() + 1
		pos += int64(n)
		return true
	}
	for pos < size && valid() {
	}
	if pos < size {
		if err := s.log.Truncate(pos); err != nil {
			return false, storageErr(err)
		}
		truncated = true
	}
	if s.firstBatchTs >= 0 {
		s.createdMs = s.firstBatchTs
	}
	// Rewrite the index files from scratch.
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := os.WriteFile(segName(s.dir, s.base, suf), nil, 0o644); err != nil {
			return truncated, storageErr(err)
		}
	}
	return truncated, s.writeIndexes()
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

var errClosed = fmt.Errorf("storage: log is closed: %w", kerr.KafkaStorageError)

// Append validates records (one or more RecordBatch v2 batches as in a
// ProduceRequest), assigns offsets by rewriting baseOffset, and appends them.
// Invalid input returns an error wrapping a *kerr.Error (CorruptMessage,
// MessageTooLarge, InvalidRecord, InvalidTimestamp, ...) and leaves the log
// untouched.
//
// Append rewrites the batches in records in place: baseOffset and
// partitionLeaderEpoch (outside the CRC) always, and with
// message.timestamp.type=LogAppendTime the maxTimestamp and timestamp-type
// attribute (recomputing the CRC). Batches are otherwise stored byte for byte.
//
// Control batches (transaction markers) are rejected with INVALID_RECORD:
// only the broker writes them, with AppendControl.
func (l *Log) Append(records []byte) (AppendInfo, error) { return l.append(records, false) }

// AppendControl is Append for the broker's own writes: it also accepts
// control batches (transaction markers).
func (l *Log) AppendControl(records []byte) (AppendInfo, error) { return l.append(records, true) }

func (l *Log) append(records []byte, allowControl bool) (AppendInfo, error) {
	cfg := l.cfg.Load()
	if int64(len(records)) > cfg.SegmentBytes {
		return AppendInfo{}, fmt.Errorf("storage: %d bytes exceed segment.bytes %d: %w", len(records), cfg.SegmentBytes, kerr.RecordListTooLarge)
	}
	batches, err := recordbatch.Split(records)
	if err != nil {
		return AppendInfo{}, err
	}
	if len(batches) == 0 {
		return AppendInfo{}, fmt.Errorf("storage: no record batches: %w", kerr.CorruptMessage)
	}
	var metaBuf [4]batchMeta
	metas := metaBuf[:0]
	logAppend := cfg.MessageTimestampType == TimestampLogAppendTime
	compact := strings.Contains(cfg.CleanupPolicy, CleanupCompact)
	count := int64(0)
	nowMs := l.now().UnixMilli()
	for _, b := range batches {
		if len(b) > int(cfg.MaxMessageBytes) {
			return AppendInfo{}, fmt.Errorf("storage: batch of %d bytes exceeds max.message.bytes %d: %w", len(b), cfg.MaxMessageBytes, kerr.MessageTooLarge)
		}
		info, err := recordbatch.Inspect(b)
		if err != nil {
			return AppendInfo{}, err
		}
		if info.NumRecords == 0 || !info.Contiguous {
			return AppendInfo{}, fmt.Errorf("storage: batch of %d records with last offset delta %d: offset deltas must be 0..n-1: %w", info.NumRecords, info.LastOffsetDelta, kerr.InvalidRecord)
		}
		if info.Control() && !allowControl {
			return AppendInfo{}, fmt.Errorf("storage: control batches are written only by the broker: %w", kerr.InvalidRecord)
		}
		if compact && info.NullKey && !info.Control() {
			return AppendInfo{}, fmt.Errorf("storage: compacted topic requires a key on every record: %w", kerr.InvalidRecord)
		}
		if !logAppend && (distance(nowMs, info.RecordsMinTimestamp) > cfg.MessageTimestampBeforeMaxMs ||
			distance(info.RecordsMaxTimestamp, nowMs) > cfg.MessageTimestampAfterMaxMs) {
			return AppendInfo{}, fmt.Errorf("storage: record timestamps %d..%d outside [now-%d ms, now+%d ms] (message.timestamp.before/after.max.ms): %w",
				info.RecordsMinTimestamp, info.RecordsMaxTimestamp, cfg.MessageTimestampBeforeMaxMs, cfg.MessageTimestampAfterMaxMs, kerr.InvalidTimestamp)
		}
		m := batchMeta{maxTs: info.RecordsMaxTimestamp, pid: info.ProducerID, epoch: info.ProducerEpoch,
			seq: info.BaseSequence, delta: info.LastOffsetDelta, control: info.Control(), txn: info.Transactional()}
		if m.control {
			if m.ctype, m.coordEpoch, err = controlType(b); err != nil {
				return AppendInfo{}, err
			}
		}
		metas = append(metas, m)
		count += int64(info.NumRecords)
	}

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return AppendInfo{}, errClosed
	}
	if t := l.now().UnixMilli(); t > nowMs {
		nowMs = t
	}
	dup, err := l.checkProducers(metas)
	if err != nil || dup != nil {
		start := l.start.Load()
		l.mu.Unlock()
		if err != nil {
			return AppendInfo{}, err
		}
		// A retried batch already in the log: answer with its offsets.
		return AppendInfo{FirstOffset: dup.firstOff, LastOffset: dup.lastOff, LogAppendTime: -1, LogStartOffset: start,
			RecordCount: dup.lastOff - dup.firstOff + 1}, nil
	}
	s := l.active()
	if s.size > 0 && (s.size+int64(len(records)) > cfg.SegmentBytes || nowMs-s.createdMs >= cfg.SegmentMs ||
		s.indexFull(cfg.SegmentIndexBytes) || l.next.Load()+count-s.base > math.MaxInt32) {
		if err := l.roll(nowMs); err != nil {
			l.mu.Unlock()
			return AppendInfo{}, err
		}
		s = l.active()
	}
	first := l.next.Load()
	next := first
	for i, b := range batches {
		recordbatch.SetBaseOffset(b, next)
		recordbatch.SetPartitionLeaderEpoch(b, 0)
		if logAppend {
			recordbatch.SetMaxTimestamp(b, nowMs, true)
			metas[i].maxTs = nowMs
		}
		next += int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
	}
	if _, err := s.log.WriteAt(records, s.size); err != nil {
		s.log.Truncate(s.size)
		l.mu.Unlock()
		return AppendInfo{}, storageErr(err)
	}
	pos, off := s.size, first
	for i, b := range batches {
		last := off + int64(int32(binary.BigEndian.Uint32(b[23:])))
		s.addBatch(pos, len(b), off, last, metas[i].maxTs, cfg.IndexIntervalBytes)
		m := &metas[i]
		if m.idempotent() {
			l.recordProducer(m.pid, m.epoch, m.seq, m.delta, off, m.maxTs)
		}
		if m.control {
			l.recordMarker(m.pid, m.epoch, m.coordEpoch, m.maxTs)
		}
		if m.txn {
			l.trackTxn(s, m.pid, true, m.control, m.ctype, off, last)
		}
		pos += int64(len(b))
		off = last + 1
	}
	s.size = pos
	if err := s.writeTxnEntries(); err != nil {
		// The marker is in the log; the index entry is rebuilt by the
		// replay after an unclean stop, which Close then forces.
		l.logger.Error("writing aborted-transaction index", "dir", l.dir, "segment", s.base, "err", err)
		l.txnErr = err
	}
	l.next.Store(next)
	l.lso.Store(l.computeLSO())
	l.unflushed += count
	needFlush := cfg.SyncWrites || l.unflushed >= cfg.FlushMessages
	info := AppendInfo{FirstOffset: first, LastOffset: next - 1, LogAppendTime: -1, LogStartOffset: l.start.Load(), RecordCount: count}
	if logAppend {
		info.LogAppendTime = nowMs
	}
	l.mu.Unlock()
	if needFlush {
		if err := l.syncTo(next); err != nil {
			return AppendInfo{}, err
		}
	}
	return info, nil
}

// distance is a-b when a > b (saturating at MaxInt64), else 0.
func distance(a, b int64) int64 {
	if a <= b {
		return 0
	}
	if d := a - b; d > 0 {
		return d
	}
	return math.MaxInt64
}

// roll closes the active segment for appends and starts a new one at the
// log end offset. An empty active segment is kept (its clock restarts).
// Caller holds mu.
func (l *Log) roll(nowMs int64) error {
	old := l.active()
	if old.size == 0 {
		old.createdMs = nowMs
		return nil
	}
	old.maybeTimeEntry()
	if err := old.writeIndexes(); err != nil {
		return err
	}
	s, err := createSegment(l.dir, l.next.Load(), nowMs)
	if err != nil {
		return err
	}
	l.dirty = append(l.dirty, old)
	l.segs = append(l.segs, s)
	l.dirDirty = true
	if err := l.writeSnapshot(s.base, false); err != nil {
		l.logger.Warn("writing producer state snapshot", "dir", l.dir, "err", err)
	}
	return nil
}

// syncTo makes every offset below target durable, sharing one fsync among
// concurrent callers (group commit).
func (l *Log) syncTo(target int64) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	if l.flushed.Load() >= target {
		return nil
	}
	return l.flushLocked()
}

// flushLocked fsyncs everything appended so far. Caller holds flushMu.
func (l *Log) flushLocked() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	end := l.next.Load()
	for _, s := range l.dirty {
		if err := s.log.Sync(); err != nil {
			l.mu.Unlock()
			return storageErr(err)
		}
		if err := s.syncIndexes(); err != nil {
			l.mu.Unlock()
			return err
		}
	}
	l.dirty = l.dirty[:0]
	dirDirty := l.dirDirty
	l.dirDirty = false
	f := l.active().log
	l.unflushed = 0
	l.lastFlush = l.now().UnixMilli()
	l.mu.Unlock()
	// The active file stays open: closing or removing a segment needs
	// flushMu, which we hold.
	if err := f.Sync(); err != nil {
		return storageErr(err)
	}
	if dirDirty {
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	l.flushed.Store(end)
	return nil
}

// syncRolled fsyncs the rolled segments and advances the flushed offset to
// the active segment's base. Caller holds flushMu and mu.
func (l *Log) syncRolled() error {
	for _, s := range l.dirty {
		if err := s.log.Sync(); err != nil {
			return storageErr(err)
		}
		if err := s.syncIndexes(); err != nil {
			return err
		}
	}
	l.dirty = l.dirty[:0]
	if l.dirDirty {
		if err := syncDir(l.dir); err != nil {
			return err
		}
		l.dirDirty = false
	}
	if b := l.active().base; b > l.flushed.Load() {
		l.flushed.Store(b)
	}
	return nil
}

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.flushLocked()
}

// Read returns whole batches starting with the one that holds offset, up to
// maxBytes, but always at least one batch if any exists at offset.
// An offset outside [StartOffset, EndOffset] wraps kerr.OffsetOutOfRange;
// offset == EndOffset returns no records. The batches are copied from the
// segment file; records are not decoded.
func (l *Log) Read(offset int64, maxBytes int) (ReadInfo, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ReadInfo{}, errClosed
	}
	info := ReadInfo{HighWatermark: l.next.Load(), LogStartOffset: l.start.Load()}
	if offset < info.LogStartOffset || offset > info.HighWatermark {
		return info, fmt.Errorf("storage: offset %d outside [%d, %d]: %w", offset, info.LogStartOffset, info.HighWatermark, kerr.OffsetOutOfRange)
	}
	interval := l.cfg.Load().IndexIntervalBytes
	for i := l.segIndex(offset); i < len(l.segs); i++ {
		b, err := l.segs[i].read(offset, maxBytes, interval)
		if err != nil {
			return info, err
		}
		if b != nil {
			info.Records = b
			return info, nil
		}
	}
	return info, nil
}

// segIndex returns the index of the segment that would hold offset.
func (l *Log) segIndex(offset int64) int {
	i, _ := slices.BinarySearchFunc(l.segs, offset, func(s *segment, off int64) int {
		switch {
		case s.base > off:
			return 1
		case s.base < off:
			return -1
		}
		return 0
	})
	if i < len(l.segs) && l.segs[i].base == offset {
		return i
	}
	return max(i-1, 0)
}

// OffsetForTimestamp returns the first offset whose timestamp is >= ts and
// that timestamp; ok is false when no such record exists.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, 0, false, errClosed
	}
	start := l.start.Load()
	interval := l.cfg.Load().IndexIntervalBytes
	for _, s := range l.segs {
		if s.maxTs < ts || s.next <= start {
			continue
		}
		from := max(s.lookupTime(ts), start)
		for from < s.next {
			b, err := s.read(from, 1<<20, interval)
			if err != nil || b == nil {
				return 0, 0, false, err
			}
			batches, err := recordbatch.Split(b)
			if err != nil {
				return 0, 0, false, err
			}
			for _, bb := range batches {
				h, err := recordbatch.ParseHeader(bb)
				if err != nil {
					return 0, 0, false, err
				}
				from = h.LastOffset() + 1
				if h.MaxTimestamp < ts && !h.HasDeleteHorizon() {
					continue
				}
				recs, err := recordbatch.Records(bb)
				if err != nil {
					return 0, 0, false, err
				}
				for _, r := range recs {
					if r.Offset >= start && r.Timestamp >= ts {
						return r.Offset, r.Timestamp, true, nil
					}
				}
			}
		}
	}
	return 0, 0, false, nil
}

// StartOffset is the log start offset.
func (l *Log) StartOffset() int64 { return l.start.Load() }

// EndOffset is the next offset to be assigned (the high watermark).
func (l *Log) EndOffset() int64 { return l.next.Load() }

// Size is the bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := int64(0)
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// DeleteRecordsBefore advances the log start offset to offset (DeleteRecords)
// and returns the new log start offset. offset -1 means the log end offset.
// The new start offset is persisted before it returns; segments wholly
// below it are deleted.
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errClosed
	}
	next := l.next.Load()
	if offset == -1 {
		offset = next
	}
	if offset < 0 || offset > next {
		return l.start.Load(), fmt.Errorf("storage: delete records before %d: outside [%d, %d]: %w", offset, l.start.Load(), next, kerr.OffsetOutOfRange)
	}
	if offset <= l.start.Load() {
		return l.start.Load(), nil
	}
	if err := l.setStart(offset); err != nil {
		return l.start.Load(), err
	}
	if offset == next && l.active().size > 0 {
		if err := l.roll(l.now().UnixMilli()); err != nil {
			return offset, err
		}
	}
	return offset, l.removeBelowStart()
}

// setStart persists and then publishes a new log start offset. Caller holds mu.
func (l *Log) setStart(off int64) error {
	if err := writeCheckpoint(l.dir, logStartOffsetFile, off); err != nil {
		return err
	}
	l.start.Store(off)
	return nil
}

// removeBelowStart deletes the closed segments wholly below the log start
// offset. Caller holds flushMu and mu.
func (l *Log) removeBelowStart() error {
	start := l.start.Load()
	n := 0
	for n < len(l.segs)-1 && (l.segs[n].next <= start || l.segs[n+1].base <= start) {
		n++
	}
	return l.removeSegments(n)
}

// removeSegments deletes the n oldest segments (never the active one).
// Caller holds flushMu and mu.
func (l *Log) removeSegments(n int) error {
	n = min(n, len(l.segs)-1)
	if n <= 0 {
		return nil
	}
	var first error
	for _, s := range l.segs[:n] {
		l.dirty = slices.DeleteFunc(l.dirty, func(d *segment) bool { return d == s })
		if err := s.remove(); err != nil && first == nil {
			first = err
		}
	}
	l.segs = slices.Delete(l.segs, 0, n)
	l.dirDirty = true
	return first
}

// Config returns the log's config.
func (l *Log) Config() Config { return *l.cfg.Load() }

// SetConfig changes the log's config. An invalid config is ignored and
// logged; validate it first with Config.Validate or ParseTopicConfig.
func (l *Log) SetConfig(cfg Config) {
	if err := cfg.Validate(); err != nil {
		l.logger.Error("ignoring invalid log config", "dir", l.dir, "err", err)
		return
	}
	l.cfg.Store(&cfg)
}

// Maintain runs time-based work due at now: segment.ms rolls, flush.ms
// flushes, retention, the recovery-point checkpoint, producer-state expiry
// (checked every 10 minutes, Kafka's producer.id.expiration.check.interval.ms)
// and compaction when the dirty ratio calls for it. Call it periodically
// (every second or so).
//
// With cleanup.policy compact, Maintain may take as long as rewriting the
// log takes; Append, Read and Flush proceed meanwhile.
func (l *Log) Maintain(now time.Time) error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.flushMu.Lock()
	cfg := l.Config()
	nowMs := now.UnixMilli()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.flushMu.Unlock()
		return nil
	}
	var errs []error
	if s := l.active(); s.size > 0 && nowMs-s.createdMs >= cfg.SegmentMs {
		errs = append(errs, l.roll(nowMs))
	}
	if strings.Contains(cfg.CleanupPolicy, CleanupDelete) {
		errs = append(errs, l.retain(cfg, nowMs))
	}
	if nowMs-l.expiryChecked >= producerExpiryCheckMs {
		l.expireProducers(&cfg, nowMs)
		l.expiryChecked = nowMs
	}
	flush := l.unflushed > 0 && nowMs-l.lastFlush >= cfg.FlushMs
	if !flush && len(l.dirty) > 0 {
		// Like Kafka, fsync rolled segments soon after the roll so the
		// recovery point advances even when flushing is left to the OS.
		errs = append(errs, l.syncRolled())
	}
	l.mu.Unlock()
	if flush {
		errs = append(errs, l.flushLocked())
	}
	if fl := l.flushed.Load(); fl != l.rpWritten {
		err := writeCheckpoint(l.dir, recoveryPointFile, fl)
		if err == nil {
			l.rpWritten = fl
		}
		errs = append(errs, err)
	}
	l.flushMu.Unlock()
	if strings.Contains(cfg.CleanupPolicy, CleanupCompact) {
		errs = append(errs, l.maybeClean(cfg, nowMs))
	}
	return errors.Join(errs...)
}

// retain deletes segments past retention.ms or retention.bytes. Caller
// holds flushMu and mu.
func (l *Log) retain(cfg Config, nowMs int64) error {
	n := 0
	if cfg.RetentionMs >= 0 {
		for n < len(l.segs) {
			s := l.segs[n]
			ts := s.maxTs
			if ts < 0 {
				ts = s.createdMs
			}
			if s.size == 0 || nowMs-ts <= cfg.RetentionMs {
				break
			}
			if n == len(l.segs)-1 {
				// The whole active segment expired: roll so it can go.
				if err := l.roll(nowMs); err != nil {
					return err
				}
			}
			n++
		}
	}
	if cfg.RetentionBytes >= 0 {
		total := int64(0)
		for _, s := range l.segs {
			total += s.size
		}
		for _, s := range l.segs[:n] {
			total -= s.size
		}
		for n < len(l.segs)-1 && total-l.segs[n].size >= cfg.RetentionBytes {
			total -= l.segs[n].size
			n++
		}
	}
	if n == 0 {
		return nil
	}
	newStart := l.segs[n].base
	if newStart > l.start.Load() {
		if err := l.setStart(newStart); err != nil {
			return err
		}
	}
	l.logger.Debug("retention deleted segments", "dir", l.dir, "segments", n, "log_start_offset", newStart)
	return l.removeSegments(n)
}

// Close flushes, writes the clean-shutdown marker and closes files. It is
// idempotent.
func (l *Log) Close() error {
	l.closing.Store(true)
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	act := l.active()
	act.maybeTimeEntry()
	for _, s := range l.segs {
		if s == act || slices.Contains(l.dirty, s) {
			errs = append(errs, storageErr(s.log.Sync()), s.syncIndexes())
		}
	}
	rp := l.next.Load()
	if l.txnErr != nil {
		rp = 0 // recover and replay everything: rebuilds the aborted-transaction indexes
	}
	errs = append(errs, l.txnErr, writeCheckpoint(l.dir, recoveryPointFile, rp),
		writeCheckpoint(l.dir, logStartOffsetFile, l.start.Load()),
		l.writeSnapshot(l.next.Load(), true))
	for _, s := range l.segs {
		errs = append(errs, storageErr(s.close()))
	}
	if err := errors.Join(errs...); err != nil {
		return err // no marker: the next Open recovers
	}
	if err := os.WriteFile(filepath.Join(l.dir, cleanShutdownFile), nil, 0o644); err != nil {
		return storageErr(err)
	}
	return syncDir(l.dir)
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	err := l.Close()
	if rerr := os.RemoveAll(l.dir); rerr != nil {
		return storageErr(rerr)
	}
	if err != nil && !errors.Is(err, kerr.KafkaStorageError) {
		return err
	}
	return nil
}
