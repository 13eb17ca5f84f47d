package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// File name suffixes inside a partition directory.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	cleanedSuffix   = ".cleaned" // compaction output being written
	swapSuffix      = ".swap"    // compaction output complete, replacing segments
	deletedSuffix   = ".deleted" // segment files being removed
)

const (
	idxEntrySize  = 8  // relative offset int32, position int32
	tidxEntrySize = 12 // timestamp int64, relative offset int32
	// batchPeek is the number of header bytes needed to know a batch's
	// offsets: baseOffset, batchLength, leader epoch, magic, crc,
	// attributes, lastOffsetDelta.
	batchPeek = 27
)

type idxEntry struct{ rel, pos int32 }

type tidxEntry struct {
	ts  int64
	rel int32
}

// segment is one .log file with its in-memory sparse indexes. Its fields
// are guarded by Log.mu.
type segment struct {
	base int64
	dir  string
	log  *os.File
	size int64
	next int64 // offset after the segment's last batch (base when empty)

	idx          []idxEntry
	tidx         []tidxEntry
	idxWritten   int // entries already in the .index file
	tidxWritten  int
	sinceIdx     int64 // bytes appended since the last index entry
	maxTs        int64 // largest batch max timestamp, -1 when none
	maxTsOffset  int64
	createdMs    int64 // time base for segment.ms
	firstBatchTs int64

	aborted    []abortedEntry // aborted-transaction index, by marker offset
	txnWritten int            // entries already in the .txnindex file

	// refMu guards refs and closing: outstanding FileRanges keep the file
	// open after close (see FileRange).
	refMu   sync.Mutex
	refs    int
	closing bool
}

func segName(dir string, base int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, suffix))
}

// parseSegName returns the base offset of a file named <20 digits><suffix>.
func parseSegName(name, suffix string) (int64, bool) {
	s, ok := strings.CutSuffix(name, suffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// createSegment makes a new empty segment with the given base offset.
func createSegment(dir string, base, nowMs int64) (*segment, error) {
	f, err := os.OpenFile(segName(dir, base, logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, storageErr(err)
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := os.WriteFile(segName(dir, base, suf), nil, 0o644); err != nil {
			f.Close()
			return nil, storageErr(err)
		}
	}
	return &segment{base: base, dir: dir, log: f, next: base, maxTs: -1, maxTsOffset: -1, createdMs: nowMs, firstBatchTs: -1}, nil
}

// openSegmentFile opens an existing .log file; indexes are loaded separately.
func openSegmentFile(dir string, base int64) (*segment, error) {
	f, err := os.OpenFile(segName(dir, base, logSuffix), os.O_RDWR, 0)
	if err != nil {
		return nil, storageErr(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, storageErr(err)
	}
	return &segment{base: base, dir: dir, log: f, size: st.Size(), next: base, maxTs: -1, maxTsOffset: -1,
		createdMs: st.ModTime().UnixMilli(), firstBatchTs: -1}, nil
}

// addBatch records a batch just written at pos in the in-memory indexes.
func (s *segment) addBatch(pos int64, size int, baseOff, lastOff, maxTs int64, interval int32) {
	if s.size == 0 && pos == 0 {
		s.firstBatchTs = maxTs
	}
	if maxTs > s.maxTs {
		s.maxTs, s.maxTsOffset = maxTs, lastOff
	}
	if s.sinceIdx > int64(interval) {
		s.idx = append(s.idx, idxEntry{rel: int32(baseOff - s.base), pos: int32(pos)})
		s.maybeTimeEntry()
		s.sinceIdx = 0
	}
	s.sinceIdx += int64(size)
	s.next = lastOff + 1
}

// maybeTimeEntry appends (max timestamp so far, its offset) to the time
// index when it is larger than the last entry.
func (s *segment) maybeTimeEntry() {
	if s.maxTs < 0 || (len(s.tidx) > 0 && s.tidx[len(s.tidx)-1].ts >= s.maxTs) {
		return
	}
	s.tidx = append(s.tidx, tidxEntry{ts: s.maxTs, rel: int32(s.maxTsOffset - s.base)})
}

// indexFull reports whether either index reached segment.index.bytes.
func (s *segment) indexFull(indexBytes int32) bool {
	return int64(len(s.idx)+1)*idxEntrySize > int64(indexBytes) || int64(len(s.tidx)+1)*tidxEntrySize > int64(indexBytes)
}

// writeIndexes appends the index entries not yet in the index files.
func (s *segment) writeIndexes() error {
	if n := len(s.idx) - s.idxWritten; n > 0 {
		b := make([]byte, 0, n*idxEntrySize)
		for _, e := range s.idx[s.idxWritten:] {
			b = binary.BigEndian.AppendUint32(b, uint32(e.rel))
			b = binary.BigEndian.AppendUint32(b, uint32(e.pos))
		}
		if err := writeAtFile(segName(s.dir, s.base, indexSuffix), b, int64(s.idxWritten)*idxEntrySize); err != nil {
			return err
		}
		s.idxWritten = len(s.idx)
	}
	if n := len(s.tidx) - s.tidxWritten; n > 0 {
		b := make([]byte, 0, n*tidxEntrySize)
		for _, e := range s.tidx[s.tidxWritten:] {
			b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
			b = binary.BigEndian.AppendUint32(b, uint32(e.rel))
		}
		if err := writeAtFile(segName(s.dir, s.base, timeIndexSuffix), b, int64(s.tidxWritten)*tidxEntrySize); err != nil {
			return err
		}
		s.tidxWritten = len(s.tidx)
	}
	return nil
}

// syncIndexes writes and fsyncs both index files.
func (s *segment) syncIndexes() error {
	if err := s.writeIndexes(); err != nil {
		return err
	}
	for _, suf := range []string{indexSuffix, timeIndexSuffix} {
		if err := syncPath(segName(s.dir, s.base, suf)); err != nil {
			return err
		}
	}
	if s.txnWritten > 0 {
		return syncPath(segName(s.dir, s.base, txnIndexSuffix))
	}
	return nil
}

func writeAtFile(path string, b []byte, off int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return storageErr(err)
	}
	if err := f.Truncate(off); err != nil {
		f.Close()
		return storageErr(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return storageErr(err)
	}
	return storageErr(f.Close())
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return storageErr(err)
	}
	err = f.Sync()
	f.Close()
	return storageErr(err)
}

// loadIndexes reads the index files and checks them against the log size;
// it reports false when they are missing or inconsistent.
func (s *segment) loadIndexes() bool {
	ib, err1 := os.ReadFile(segName(s.dir, s.base, indexSuffix))
	tb, err2 := os.ReadFile(segName(s.dir, s.base, timeIndexSuffix))
	if err1 != nil || err2 != nil || len(ib)%idxEntrySize != 0 || len(tb)%tidxEntrySize != 0 {
		return false
	}
	s.idx = s.idx[:0]
	for p := 0; p < len(ib); p += idxEntrySize {
		e := idxEntry{rel: int32(binary.BigEndian.Uint32(ib[p:])), pos: int32(binary.BigEndian.Uint32(ib[p+4:]))}
		if e.rel < 0 || e.pos < 0 || int64(e.pos) >= s.size {
			return false
		}
		if n := len(s.idx); n > 0 && (e.rel <= s.idx[n-1].rel || e.pos <= s.idx[n-1].pos) {
			return false
		}
		s.idx = append(s.idx, e)
	}
	s.tidx = s.tidx[:0]
	for p := 0; p < len(tb); p += tidxEntrySize {
		e := tidxEntry{ts: int64(binary.BigEndian.Uint64(tb[p:])), rel: int32(binary.BigEndian.Uint32(tb[p+8:]))}
		if e.rel < 0 {
			return false
		}
		if n := len(s.tidx); n > 0 && (e.ts <= s.tidx[n-1].ts || e.rel < s.tidx[n-1].rel) {
			return false
		}
		s.tidx = append(s.tidx, e)
	}
	s.idxWritten, s.tidxWritten = len(s.idx), len(s.tidx)
	return true
}

// finishLoad scans the headers after the last index entry to find the
// segment's next offset and the bytes since the last index entry, and reads
// the first batch's timestamp. It reports false when the tail does not parse.
func (s *segment) finishLoad() bool {
	pos := int64(0)
	if n := len(s.idx); n > 0 {
		pos = int64(s.idx[n-1].pos)
		s.next = s.base + int64(s.idx[n-1].rel)
	}
	if n := len(s.tidx); n > 0 {
		s.maxTs, s.maxTsOffset = s.tidx[n-1].ts, s.base+int64(s.tidx[n-1].rel)
	}
	ok := true
	err := s.scanHeaders(pos, func(bpos int64, h []byte) bool {
		base, last, size := peekOffsets(h)
		if base != s.next || last < base {
			ok = false
			return false
		}
		if bpos == 0 {
			s.firstBatchTs = int64(binary.BigEndian.Uint64(h[35:]))
		}
		s.next = last + 1
		s.sinceIdx = bpos + int64(size) - pos
		return true
	}, recordbatch.HeaderSize)
	if err != nil || !ok {
		return false
	}
	if s.firstBatchTs < 0 && s.size > 0 && pos > 0 {
		var h [recordbatch.HeaderSize]byte
		if _, err := s.log.ReadAt(h[:], 0); err != nil {
			return false
		}
		s.firstBatchTs = int64(binary.BigEndian.Uint64(h[35:]))
	}
	if s.firstBatchTs >= 0 {
		s.createdMs = s.firstBatchTs
	}
	return true
}

// peekOffsets reads base offset, last offset and total size from the first
// batchPeek bytes of a batch.
func peekOffsets(h []byte) (base, last int64, size int) {
	base = int64(binary.BigEndian.Uint64(h))
	size = int(int32(binary.BigEndian.Uint32(h[8:]))) + recordbatch.LengthFieldEnd
	last = base + int64(int32(binary.BigEndian.Uint32(h[23:])))
	return
}

// scanHeaders calls fn with the position and the first `need` header bytes of
// each batch from pos to the end of the segment. It fails on a batch whose
// length does not fit the segment.
func (s *segment) scanHeaders(pos int64, fn func(pos int64, hdr []byte) bool, need int) error {
	buf := make([]byte, 256<<10)
	for pos < s.size {
		n, err := s.log.ReadAt(buf[:min(int64(len(buf)), s.size-pos)], pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return storageErr(err)
		}
		chunk := buf[:n]
		q := 0
		for q+need <= len(chunk) {
			l := int32(binary.BigEndian.Uint32(chunk[q+8:]))
			if l < recordbatch.HeaderSize-recordbatch.LengthFieldEnd || pos+int64(q)+int64(l)+recordbatch.LengthFieldEnd > s.size {
				return errBadBatch
			}
			if !fn(pos+int64(q), chunk[q:q+need]) {
				return nil
			}
			q += int(l) + recordbatch.LengthFieldEnd
		}
		if q == 0 {
			return errBadBatch // a header does not fit what is left
		}
		pos += int64(q)
	}
	return nil
}

var errBadBatch = errors.New("storage: batch does not fit its segment")

// lookup returns the file position to start scanning for offset.
func (s *segment) lookup(offset int64) int64 {
	rel := offset - s.base
	if rel > math.MaxInt32 {
		rel = math.MaxInt32
	}
	i := sort.Search(len(s.idx), func(i int) bool { return int64(s.idx[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(s.idx[i-1].pos)
}

// lookupTime returns the offset from which to scan for the first record with
// timestamp >= ts: the offset of the last time-index entry below ts.
func (s *segment) lookupTime(ts int64) int64 {
	i := sort.Search(len(s.tidx), func(i int) bool { return s.tidx[i].ts >= ts })
	if i == 0 {
		return s.base
	}
	return s.base + int64(s.tidx[i-1].rel)
}

// read returns whole batches from the first one whose last offset is >=
// offset, up to maxBytes but at least one batch; nil when the segment has
// no such batch.
func (s *segment) read(offset int64, maxBytes int, interval int32) ([]byte, error) {
	pos := s.lookup(offset)
	maxBytes = max(maxBytes, 0)
	for pos < s.size {
		want := min(s.size-pos, int64(interval)+int64(maxBytes)+16<<10)
		buf := make([]byte, want)
		if _, err := s.log.ReadAt(buf, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, storageErr(err)
		}
		q := 0
		for q+batchPeek <= len(buf) {
			_, last, size := peekOffsets(buf[q:])
			if size < recordbatch.HeaderSize || pos+int64(q)+int64(size) > s.size {
				return nil, fmt.Errorf("storage: segment %d: bad batch at %d: %w", s.base, pos+int64(q), errBadBatch)
			}
			if last < offset {
				q += size
				continue
			}
			// Found the first batch; gather whole batches up to maxBytes.
			start, end := q, q+size
			if end > len(buf) {
				out := make([]byte, size)
				if _, err := s.log.ReadAt(out, pos+int64(q)); err != nil {
					return nil, storageErr(err)
				}
				return out, nil
			}
			for end+batchPeek <= len(buf) {
				_, _, sz := peekOffsets(buf[end:])
				if sz < recordbatch.HeaderSize || end+sz > len(buf) || end+sz-start > maxBytes {
					break
				}
				end += sz
			}
			return buf[start:end:end], nil
		}
		if q == 0 {
			// Fewer than batchPeek bytes of a batch in a full buffer
			// cannot happen unless the segment is corrupt.
			return nil, fmt.Errorf("storage: segment %d: truncated batch at %d: %w", s.base, pos, errBadBatch)
		}
		pos += int64(q)
	}
	return nil, nil
}

// close closes the segment's file, or, while FileRanges of it are
// outstanding, marks it to be closed when the last one is released.
func (s *segment) close() error {
	s.refMu.Lock()
	s.closing = true
	busy := s.refs > 0
	s.refMu.Unlock()
	if busy {
		return nil
	}
	return s.log.Close()
}

// acquire keeps the file open until the matching release. Caller holds
// Log.mu (so the segment is not closed concurrently).
func (s *segment) acquire() {
	s.refMu.Lock()
	s.refs++
	s.refMu.Unlock()
}

// release drops a reference taken by acquire, closing the file if the
// segment was closed meanwhile and this was the last reference.
func (s *segment) release() {
	s.refMu.Lock()
	s.refs--
	last := s.refs == 0 && s.closing
	s.refMu.Unlock()
	if last {
		s.log.Close()
	}
}

// remove closes the segment and deletes its files. An outstanding FileRange
// can still read the unlinked file until it is released.
func (s *segment) remove() error {
	s.close()
	var first error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix, txnIndexSuffix} {
		if err := os.Remove(segName(s.dir, s.base, suf)); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
			first = storageErr(err)
		}
	}
	return first
}
