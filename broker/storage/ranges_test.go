package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// rangeBytes reads r and releases it.
func rangeBytes(t *testing.T, r *FileRange) []byte {
	t.Helper()
	defer r.Release()
	b, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spanOf returns the base offset of the first batch in b and the offset
// after its last batch.
func spanOf(b []byte) (first, next int64) {
	first = int64(binary.BigEndian.Uint64(b))
	for len(b) >= batchPeek {
		_, last, size := peekOffsets(b)
		next = last + 1
		b = b[size:]
	}
	return first, next
}

// TestReadRangeMatchesRead checks that ReadRange locates exactly the bytes
// Read returns, for every offset and a spread of limits, across segments
// and with batches of varied sizes (so both the index jump and the header
// walk are used).
func TestReadRangeMatchesRead(t *testing.T) {
	l := openT(t, t.TempDir(), testConfig(), nil)
	for i := range 120 {
		if _, err := l.Append(batch(1+i%7, fmt.Sprintf("tag%03d", i), 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.segs); n < 5 {
		t.Fatalf("want several segments, have %d", n)
	}
	for off := l.StartOffset(); off <= l.EndOffset(); off++ {
		for _, maxBytes := range []int{0, 1, 100, 300, 700, 1000, 1 << 20} {
			want, err := l.Read(off, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.ReadRange(off, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if got.HighWatermark != want.HighWatermark || got.LogStartOffset != want.LogStartOffset {
				t.Fatalf("offset %d: hw/start %d/%d, Read %d/%d", off, got.HighWatermark, got.LogStartOffset, want.HighWatermark, want.LogStartOffset)
			}
			r := got.Records
			b := rangeBytes(t, &r)
			if !bytes.Equal(b, want.Records) {
				t.Fatalf("offset %d max %d: range %d bytes at %d, Read %d bytes", off, maxBytes, r.Size, r.Pos, len(want.Records))
			}
			if len(b) > 0 {
				if first, next := spanOf(b); r.FirstOffset != first || r.NextOffset != next {
					t.Fatalf("offset %d max %d: offsets [%d, %d), batches span [%d, %d)", off, maxBytes, r.FirstOffset, r.NextOffset, first, next)
				}
			}
		}
	}
	if _, err := l.ReadRange(l.EndOffset()+1, 100); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
}

// TestReadRangeOutlivesSegment checks that a range stays readable while
// retention deletes its segment and that the file is closed on Release.
func TestReadRangeOutlivesSegment(t *testing.T) {
	clk := newClock()
	l := openT(t, t.TempDir(), testConfig(), clk)
	for i := range 40 {
		if _, err := l.Append(batch(3, fmt.Sprintf("r%d", i), clk.Now().UnixMilli())); err != nil {
			t.Fatal(err)
		}
	}
	want, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	info, err := l.ReadRange(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	r := info.Records
	f := r.File()
	path := f.Name()

	cfg := l.Config()
	cfg.RetentionBytes = 1
	l.SetConfig(cfg)
	if err := l.Maintain(clk.Now()); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() == 0 {
		t.Fatal("retention deleted nothing")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment %s not deleted: %v", filepath.Base(path), err)
	}
	if b := rangeBytes(t, &r); !bytes.Equal(b, want.Records) {
		t.Fatal("range bytes changed after the segment was deleted")
	}
	r.Release() // idempotent
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("segment file still open after Release: %v", err)
	}

	// A range taken before Close keeps its file until released.
	clk.Add(time.Second)
	info, err = l.ReadRange(l.StartOffset(), 1<<20)
	if err != nil || info.Records.Size == 0 {
		t.Fatalf("ReadRange: %v, %d bytes", err, info.Records.Size)
	}
	r = info.Records
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAll(); err != nil {
		t.Fatalf("range unreadable after Close: %v", err)
	}
	f = r.File()
	r.Release()
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("segment file still open after Close and Release: %v", err)
	}
}
