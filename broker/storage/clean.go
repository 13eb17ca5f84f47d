package storage

// Compaction (cleanup.policy=compact), following Kafka's log cleaner:
//
//   - The log is split at the cleaner checkpoint into a clean head and a
//     dirty tail. Only closed segments whose newest record is older than
//     min.compaction.lag.ms are cleanable; the active segment never is.
//   - When dirty bytes / (clean + dirty bytes) >= min.cleanable.dirty.ratio
//     (or a dirty segment is older than max.compaction.lag.ms), the cleaner
//     builds key → latest offset over the cleanable dirty part and recopies
//     every segment from the start of the log to the end of that part,
//     dropping records whose key has a later offset.
//   - A tombstone (null value) survives for delete.retention.ms after the
//     cleaning that first copied it: that cleaning stamps the batch's delete
//     horizon (attributes bit 6, the horizon in baseTimestamp), and a later
//     cleaning past the horizon drops it.
//   - Batches that lose nothing are copied byte for byte (still compressed);
//     the others are rebuilt uncompressed from the kept records with their
//     producer fields, original offsets and timestamps. Output batches still
//     cover every offset contiguously (a batch's base offset may precede its
//     first record; an empty batch covers a run of fully dropped batches), so
//     recovery can insist on contiguous offsets.
//   - Transactions: the cleaner never goes past the last stable offset (a
//     segment is cleanable only when it ends at or below it). Records of
//     aborted transactions (found with the aborted-transaction index) never
//     count as a key's latest value and are removed. Control batches
//     (markers) are always kept: simple and safe, since a read_committed
//     consumer that still sees data of the transaction needs its marker;
//     Kafka drops them delete.retention.ms after their data is gone, which
//     eddy does not do yet. The aborted-transaction index entries of a
//     group of segments move to the cleaned segment.
//
// Swap protocol, crash-safe at every step: a group of source segments is
// written to <base>.log.cleaned and fsynced, and their merged
// aborted-transaction index to <base>.txnindex.swap (fsynced); the log is
// renamed to <base>.log.swap (commit point; directory fsynced); the sources
// are renamed to .deleted and their indexes removed; <base>.txnindex.swap
// is renamed to <base>.txnindex, then the .swap to <base>.log; the .deleted
// files are removed. Open finishes an interrupted swap: .cleaned files are
// dropped, a .log.swap replaces every .log (and index) whose base lies in
// its offset range, its .txnindex.swap becomes <base>.txnindex, a
// .txnindex.swap without a .log.swap is dropped, and .deleted files are
// removed.

import (
	"bufio"
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

	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// maxCleanerKeys bounds the cleaner's key map; the dirty range of one round
// is cut short when it holds more distinct keys.
const maxCleanerKeys = 1 << 20

// cleanerStopAfter, when > 0 in tests, makes a cleaning return
// errCleanerStopped after that swap step, simulating a crash there.
var cleanerStopAfter int

var errCleanerStopped = errors.New("storage: cleaner stopped by test hook")

// finishSwaps completes or rolls back a compaction swap interrupted by a crash.
func finishSwaps(dir string, logger *slog.Logger) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return storageErr(err)
	}
	var logs []int64
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, cleanedSuffix), strings.HasSuffix(name, deletedSuffix):
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return storageErr(err)
			}
		default:
			if b, ok := parseSegName(name, logSuffix); ok {
				logs = append(logs, b)
			}
		}
	}
	for _, e := range entries {
		base, ok := parseSegName(e.Name(), logSuffix+swapSuffix)
		if !ok {
			continue
		}
		path := filepath.Join(dir, e.Name())
		last, err := lastOffsetInFile(path)
		if err != nil {
			// A .swap is fsynced before it is named so; it cannot be
			// torn unless the disk lied. Keep the sources instead.
			logger.Error("dropping unreadable compaction swap file", "file", path, "err", err)
			os.Remove(path)
			continue
		}
		txnSwap := segName(dir, base, txnIndexSuffix+swapSuffix)
		_, err = os.Stat(txnSwap)
		haveTxnSwap := err == nil
		for _, b := range logs {
			if b >= base && b <= last {
				for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
					if suf == txnIndexSuffix && b == base && !haveTxnSwap {
						continue // already the merged index
					}
					if err := os.Remove(segName(dir, b, suf)); err != nil && !errors.Is(err, os.ErrNotExist) {
						return storageErr(err)
					}
				}
			}
		}
		if haveTxnSwap {
			if err := os.Rename(txnSwap, segName(dir, base, txnIndexSuffix)); err != nil {
				return storageErr(err)
			}
		}
		if err := os.Rename(path, segName(dir, base, logSuffix)); err != nil {
			return storageErr(err)
		}
		logger.Info("completed interrupted compaction swap", "dir", dir, "base", base, "last_offset", last)
	}
	// An aborted-transaction index for a swap that never committed.
	for _, e := range entries {
		if base, ok := parseSegName(e.Name(), txnIndexSuffix+swapSuffix); ok {
			if _, err := os.Stat(segName(dir, base, logSuffix+swapSuffix)); errors.Is(err, os.ErrNotExist) {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return syncDir(dir)
}

// lastOffsetInFile returns the last offset of the last batch in a segment file.
func lastOffsetInFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	s := &segment{log: f, size: st.Size()}
	last := int64(-1)
	err = s.scanHeaders(0, func(_ int64, h []byte) bool {
		_, last, _ = peekOffsets(h)
		return true
	}, batchPeek)
	if err == nil && last < 0 {
		err = errors.New("empty swap file")
	}
	return last, err
}

// cleanableRange returns the segments the cleaner may rewrite ([0, end))
// and where the dirty part starts among them. Caller holds mu.
func (l *Log) cleanableRange(cfg Config, nowMs int64) (segs []*segment, firstDirty int, force bool) {
	end := len(l.segs) - 1 // never the active segment
	lso := l.lso.Load()
	for i := 0; i < end; i++ {
		if l.segs[i].maxTs > nowMs-cfg.MinCompactionLagMs || l.segs[i].next > lso {
			end = i
			break
		}
	}
	segs = slices.Clone(l.segs[:end])
	firstDirty = len(segs)
	for i, s := range segs {
		if s.base >= l.cleanerOffset {
			firstDirty = i
			break
		}
	}
	for _, s := range segs[firstDirty:] {
		ts := s.firstBatchTs
		if ts < 0 {
			ts = s.createdMs
		}
		if cfg.MaxCompactionLagMs < math.MaxInt64 && nowMs-ts > cfg.MaxCompactionLagMs {
			force = true
		}
	}
	return segs, firstDirty, force
}

// maybeClean compacts the log when its dirty ratio calls for it. Caller
// holds cleanMu (not flushMu or mu).
func (l *Log) maybeClean(cfg Config, nowMs int64) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil
	}
	segs, firstDirty, force := l.cleanableRange(cfg, nowMs)
	l.mu.RUnlock()
	var cleanBytes, dirtyBytes int64
	for i, s := range segs {
		if i < firstDirty {
			cleanBytes += s.size
		} else {
			dirtyBytes += s.size
		}
	}
	if dirtyBytes == 0 {
		return nil
	}
	if ratio := float64(dirtyBytes) / float64(cleanBytes+dirtyBytes); ratio < cfg.MinCleanableDirtyRatio && !force {
		return nil
	}
	return l.clean(cfg, nowMs, segs, firstDirty)
}

// Compact runs one cleaning now, regardless of the dirty ratio (but still
// respecting min.compaction.lag.ms and never touching the active segment).
func (l *Log) Compact() error {
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	cfg := l.Config()
	nowMs := l.now().UnixMilli()
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return errClosed
	}
	segs, firstDirty, _ := l.cleanableRange(cfg, nowMs)
	l.mu.RUnlock()
	if firstDirty == len(segs) {
		return nil
	}
	return l.clean(cfg, nowMs, segs, firstDirty)
}

// forEachBatch calls fn with every batch of a closed segment, in order.
func forEachBatch(s *segment, fn func(b []byte) error) error {
	r := bufio.NewReaderSize(io.NewSectionReader(s.log, 0, s.size), 1<<20)
	var hdr [recordbatch.LengthFieldEnd]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return storageErr(err)
		}
		n := int(int32(binary.BigEndian.Uint32(hdr[8:]))) + recordbatch.LengthFieldEnd
		if n < recordbatch.HeaderSize {
			return fmt.Errorf("storage: segment %d: %w", s.base, errBadBatch)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		copy(buf, hdr[:])
		if _, err := io.ReadFull(r, buf[recordbatch.LengthFieldEnd:]); err != nil {
			return storageErr(err)
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
}

// clean compacts segs[:] using the keys of segs[firstDirty:].
func (l *Log) clean(cfg Config, nowMs int64, segs []*segment, firstDirty int) error {
	l.mu.RLock()
	aborted := l.abortedRanges()
	l.mu.RUnlock()
	// Key → latest offset over the dirty part, bounded.
	latest := map[string]int64{}
	endDirty := len(segs)
	for i := firstDirty; i < len(segs); i++ {
		if len(latest) > maxCleanerKeys {
			endDirty = i
			break
		}
		err := forEachBatch(segs[i], func(b []byte) error {
			h, err := recordbatch.ParseHeader(b)
			if err != nil || h.Control() {
				return err
			}
			if h.Transactional() && inAborted(aborted, h.ProducerID, h.BaseOffset) {
				return nil
			}
			recs, err := recordbatch.Records(b)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if r.Key != nil {
					latest[string(r.Key)] = r.Offset
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	segs = segs[:endDirty]
	// Group consecutive segments into outputs bounded like a segment.
	for start := 0; start < len(segs); {
		end, size := start, int64(0)
		for end < len(segs) && (end == start || (size+segs[end].size <= cfg.SegmentBytes &&
			segs[end].next-1-segs[start].base <= math.MaxInt32 &&
			int64(len(segs[start].idx)+len(segs[end].idx)+2)*tidxEntrySize < int64(cfg.SegmentIndexBytes))) {
			size += segs[end].size
			end++
		}
		if l.closing.Load() {
			return errClosed
		}
		if err := l.cleanGroup(cfg, nowMs, segs[start:end], latest, aborted); err != nil {
			return err
		}
		start = end
	}
	newOffset := segs[len(segs)-1].next
	if err := writeCheckpoint(l.dir, cleanerOffsetFile, newOffset); err != nil {
		return err
	}
	l.mu.Lock()
	l.cleanerOffset = newOffset
	l.mu.Unlock()
	l.logger.Debug("compacted log", "dir", l.dir, "segments", len(segs), "cleaned_up_to", newOffset)
	return nil
}

// cleanGroup rewrites the segments of group into one and swaps it in.
func (l *Log) cleanGroup(cfg Config, nowMs int64, group []*segment, latest map[string]int64, aborted map[int64][][2]int64) error {
	base := group[0].base
	cleanedPath := segName(l.dir, base, logSuffix+cleanedSuffix)
	f, err := os.OpenFile(cleanedPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return storageErr(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fail := func(err error) error {
		f.Close()
		os.Remove(cleanedPath)
		return err
	}
	var gapStart, gapEnd int64 = -1, -1
	emit := func(b []byte) error { _, err := w.Write(b); return storageErr(err) }
	flushGap := func() error {
		if gapStart < 0 {
			return nil
		}
		b := recordbatch.Build(recordbatch.BuildOptions{BaseOffset: gapStart, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			LastOffsetDelta: int32(gapEnd - gapStart)}, nil)
		gapStart = -1
		return emit(b)
	}
	var kept []recordbatch.Record
	for _, s := range group {
		err := forEachBatch(s, func(b []byte) error {
			h, err := recordbatch.ParseHeader(b)
			if err != nil {
				return err
			}
			if h.Control() {
				if err := flushGap(); err != nil {
					return err
				}
				return emit(b)
			}
			if h.Transactional() && inAborted(aborted, h.ProducerID, h.BaseOffset) {
				if gapStart < 0 {
					gapStart = h.BaseOffset
				}
				gapEnd = h.LastOffset()
				return nil
			}
			recs, err := recordbatch.Records(b)
			if err != nil {
				return err
			}
			horizon := int64(0)
			if h.HasDeleteHorizon() {
				horizon = h.BaseTimestamp
			}
			kept = kept[:0]
			tombstones := false
			for _, r := range recs {
				if r.Key != nil {
					if off, ok := latest[string(r.Key)]; ok && off > r.Offset {
						continue
					}
				}
				if r.Value == nil {
					if horizon > 0 && nowMs >= horizon {
						continue
					}
					tombstones = true
				}
				kept = append(kept, r)
			}
			if tombstones && horizon == 0 {
				horizon = nowMs + cfg.DeleteRetentionMs
			}
			if !tombstones && !h.HasDeleteHorizon() {
				horizon = 0
			}
			if len(kept) == 0 {
				if gapStart < 0 {
					gapStart = h.BaseOffset
				}
				gapEnd = h.LastOffset()
				return nil
			}
			unchanged := len(kept) == len(recs) && (horizon > 0) == h.HasDeleteHorizon()
			if unchanged && gapStart < 0 {
				return emit(b)
			}
			bo := h.BaseOffset
			if gapStart >= 0 && h.ProducerID < 0 {
				bo, gapStart = gapStart, -1
			} else if err := flushGap(); err != nil {
				return err
			}
			return emit(recordbatch.Build(recordbatch.BuildOptions{
				BaseOffset: bo, ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence,
				Transactional: h.Transactional(), LogAppendTime: h.LogAppendTime(), DeleteHorizonMs: horizon,
				LastOffsetDelta: int32(h.LastOffset() - bo),
			}, kept))
		})
		if err != nil {
			return fail(err)
		}
	}
	if err := flushGap(); err != nil {
		return fail(err)
	}
	if err := w.Flush(); err != nil {
		return fail(storageErr(err))
	}
	if err := f.Sync(); err != nil {
		return fail(storageErr(err))
	}
	st, err := f.Stat()
	if err != nil {
		return fail(storageErr(err))
	}
	// Check the output before it replaces anything.
	expect := base
	err = forEachBatch(&segment{base: base, log: f, size: st.Size()}, func(b []byte) error {
		h, err := recordbatch.Validate(b)
		if err != nil || h.BaseOffset != expect {
			return fmt.Errorf("storage: cleaner wrote an invalid batch at offset %d (expected %d): %v", h.BaseOffset, expect, err)
		}
		expect = h.LastOffset() + 1
		return nil
	})
	if err == nil && expect != group[len(group)-1].next {
		err = fmt.Errorf("storage: cleaned segment ends at %d, sources at %d", expect, group[len(group)-1].next)
	}
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(storageErr(err))
	}
	return l.swap(cfg, group, cleanedPath)
}

// swap replaces group with the cleaned file (see the protocol above).
func (l *Log) swap(cfg Config, group []*segment, cleanedPath string) error {
	base := group[0].base
	swapPath := segName(l.dir, base, logSuffix+swapSuffix)
	step := 0
	stop := func() bool { step++; return cleanerStopAfter > 0 && step >= cleanerStopAfter }
	if stop() { // 1: .cleaned written
		return errCleanerStopped
	}
	// The group's aborted-transaction entries (closed segments: they no
	// longer change) go to the cleaned segment.
	var merged []abortedEntry
	l.mu.RLock()
	for _, s := range group {
		merged = append(merged, s.aborted...)
	}
	l.mu.RUnlock()
	txnSwap := segName(l.dir, base, txnIndexSuffix+swapSuffix)
	var tb []byte
	for _, e := range merged {
		tb = appendEntry(tb, e)
	}
	if err := writeSynced(txnSwap, tb); err != nil {
		return err
	}
	if err := os.Rename(cleanedPath, swapPath); err != nil {
		return storageErr(err)
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	if stop() { // 2: .swap committed
		return errCleanerStopped
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	for i, s := range group {
		s.close()
		if err := os.Rename(segName(l.dir, s.base, logSuffix), segName(l.dir, s.base, logSuffix+deletedSuffix)); err != nil {
			return storageErr(err)
		}
		os.Remove(segName(l.dir, s.base, indexSuffix))
		os.Remove(segName(l.dir, s.base, timeIndexSuffix))
		if s.base != base {
			os.Remove(segName(l.dir, s.base, txnIndexSuffix))
		}
		if i == 0 && stop() { // 3: first source renamed away
			return errCleanerStopped
		}
	}
	if stop() { // 4: all sources renamed away
		return errCleanerStopped
	}
	if err := os.Rename(txnSwap, segName(l.dir, base, txnIndexSuffix)); err != nil {
		return storageErr(err)
	}
	if err := os.Rename(swapPath, segName(l.dir, base, logSuffix)); err != nil {
		return storageErr(err)
	}
	if stop() { // 5: .swap renamed, .deleted files remain
		return errCleanerStopped
	}
	for _, s := range group {
		os.Remove(segName(l.dir, s.base, logSuffix+deletedSuffix))
	}
	if err := syncDir(l.dir); err != nil {
		return err
	}
	ns, err := openSegmentFile(l.dir, base)
	if err != nil {
		return err
	}
	if truncated, err := ns.recover(base, cfg); err != nil || truncated {
		ns.close()
		return fmt.Errorf("storage: compacted segment %d does not validate (truncated=%v): %w", base, truncated, err)
	}
	ns.aborted, ns.txnWritten = merged, len(merged)
	if err := ns.syncIndexes(); err != nil {
		ns.close()
		return err
	}
	i := slices.Index(l.segs, group[0])
	l.segs = slices.Replace(l.segs, i, i+len(group), ns)
	l.dirty = slices.DeleteFunc(l.dirty, func(d *segment) bool { return slices.Contains(group, d) })
	return nil
}

// writeSynced writes b to path and fsyncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return storageErr(err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return storageErr(err)
}
