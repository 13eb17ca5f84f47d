package storage

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
)

// FileRange is a byte range of a segment file holding whole record batches,
// as stored, for copying file bytes to a socket without reading them into
// memory (sendfile). It keeps its segment's file open: the bytes stay
// readable even if retention, compaction or DeleteRecords removes the
// segment meanwhile (the file is unlinked but not closed until Release).
// Positions below a segment's size never change while the log is open;
// truncation happens only in recovery inside Open.
//
// The zero FileRange is empty. Release must be called once the range is no
// longer needed; it is idempotent.
type FileRange struct {
	seg *segment
	// Pos is the file position of the first batch.
	Pos int64
	// Size is the number of bytes; 0 when there are no records.
	Size int64
	// FirstOffset is the base offset of the first batch and NextOffset
	// the offset after the last batch: NextOffset-FirstOffset is the
	// number of offsets the range spans (its record count unless
	// compaction left offset gaps).
	FirstOffset, NextOffset int64
}

// File is the segment file to read the range from; nil for an empty or
// released range. Read it only with positional reads (ReadAt, sendfile
// with an explicit offset): the file position is shared.
func (r *FileRange) File() *os.File {
	if r.seg == nil {
		return nil
	}
	return r.seg.log
}

// Release lets the segment file be closed; the range must not be read
// after it.
func (r *FileRange) Release() {
	if r.seg != nil {
		r.seg.release()
		r.seg = nil
	}
}

// ReadAll reads the range's bytes into memory.
func (r *FileRange) ReadAll() ([]byte, error) {
	if r.Size == 0 || r.seg == nil {
		return nil, nil
	}
	b := make([]byte, r.Size)
	if _, err := r.seg.log.ReadAt(b, r.Pos); err != nil {
		return nil, storageErr(err)
	}
	return b, nil
}

// RangeInfo is the result of ReadRange.
type RangeInfo struct {
	Records          FileRange
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
}

// ReadRange is Read without the copy: it locates the same whole batches
// (starting with the one that holds offset, up to maxBytes but at least
// one) and returns where they lie in their segment file. Records.Size is 0
// when there are none. On success the caller owns Records and must Release
// it. Errors are those of Read.
func (l *Log) ReadRange(offset int64, maxBytes int) (RangeInfo, error) {
	return l.readRange(offset, maxBytes, false)
}

// ReadRangeStable is ReadRange for read_committed consumers: it returns
// only whole batches below the last stable offset (none when offset is at
// or above it; an offset up to the high watermark is still in range).
func (l *Log) ReadRangeStable(offset int64, maxBytes int) (RangeInfo, error) {
	return l.readRange(offset, maxBytes, true)
}

func (l *Log) readRange(offset int64, maxBytes int, stable bool) (RangeInfo, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return RangeInfo{}, errClosed
	}
	info := RangeInfo{HighWatermark: l.next.Load(), LastStableOffset: l.lso.Load(), LogStartOffset: l.start.Load()}
	if offset < info.LogStartOffset || offset > info.HighWatermark {
		return info, fmt.Errorf("storage: offset %d outside [%d, %d]: %w", offset, info.LogStartOffset, info.HighWatermark, kerr.OffsetOutOfRange)
	}
	end := int64(math.MaxInt64)
	if stable {
		end = info.LastStableOffset
		if offset >= end {
			return info, nil
		}
	}
	for i := l.segIndex(offset); i < len(l.segs) && l.segs[i].base < end; i++ {
		s := l.segs[i]
		r, err := s.locate(offset, maxBytes, end)
		if err != nil {
			return info, err
		}
		if r.Size > 0 {
			s.acquire()
			r.seg = s
			info.Records = r
			return info, nil
		}
	}
	return info, nil
}

// scanBufs holds the buffers locate reads batch headers into.
var scanBufs = sync.Pool{New: func() any { return new([8 << 10]byte) }}

// locate finds the batches read would return, reading only batch headers
// (and, where the sparse index allows, not even those), stopping before the
// first batch at or after end. Caller holds Log.mu.
func (s *segment) locate(offset int64, maxBytes int, end int64) (FileRange, error) {
	bp := scanBufs.Get().(*[8 << 10]byte)
	defer scanBufs.Put(bp)
	buf := bp[:]

	// walk calls fn with the position, base and last offsets and size of
	// each batch from pos on until fn returns false or the segment ends.
	walk := func(pos int64, fn func(pos, base, last int64, size int) bool) error {
		for pos < s.size {
			n, err := s.log.ReadAt(buf[:min(int64(len(buf)), s.size-pos)], pos)
			if err != nil && !errors.Is(err, io.EOF) {
				return storageErr(err)
			}
			if n < batchPeek {
				return fmt.Errorf("storage: segment %d: truncated batch at %d: %w", s.base, pos, errBadBatch)
			}
			q := 0
			for q+batchPeek <= n {
				base, last, size := peekOffsets(buf[q:])
				at := pos + int64(q)
				if size < recordbatch.HeaderSize || at+int64(size) > s.size {
					return fmt.Errorf("storage: segment %d: bad batch at %d: %w", s.base, at, errBadBatch)
				}
				if !fn(at, base, last, size) {
					return nil
				}
				q += size
			}
			pos += int64(q)
		}
		return nil
	}

	var r FileRange
	err := walk(s.lookup(offset), func(pos, base, last int64, size int) bool {
		if last < offset {
			return true
		}
		if base >= end {
			return false
		}
		r = FileRange{Pos: pos, Size: int64(size), FirstOffset: base, NextOffset: last + 1}
		return false
	})
	if err != nil || r.Size == 0 {
		return FileRange{}, err
	}
	limit := r.Pos + int64(max(maxBytes, 0))
	stop := r.Pos + r.Size
	if s.size <= limit && s.next <= end {
		r.Size, r.NextOffset = s.size-r.Pos, s.next
		return r, nil
	}
	// Jump to the last indexed batch that still fits, then walk on.
	i := sort.Search(len(s.idx), func(i int) bool {
		return int64(s.idx[i].pos) > limit || s.base+int64(s.idx[i].rel) > end
	})
	if i > 0 && int64(s.idx[i-1].pos) > stop {
		stop = int64(s.idx[i-1].pos)
		r.NextOffset = s.base + int64(s.idx[i-1].rel)
	}
	err = walk(stop, func(pos, base, last int64, size int) bool {
		if pos+int64(size) > limit || base >= end {
			r.NextOffset = base
			return false
		}
		stop, r.NextOffset = pos+int64(size), last+1
		return true
	})
	if err != nil {
		return FileRange{}, err
	}
	r.Size = stop - r.Pos
	return r, nil
}
