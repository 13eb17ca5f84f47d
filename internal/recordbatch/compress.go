package recordbatch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
)

// MaxDecompressedSize bounds the decompressed size of one batch's records,
// so that a small compressed batch cannot make the broker allocate without
// limit. A batch that inflates beyond it is rejected as corrupt.
const MaxDecompressedSize = 64 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 8<<20 {
		bufPool.Put(b)
	}
}

var (
	gzipPool = sync.Pool{}
	lz4Pool  = sync.Pool{New: func() any { return lz4.NewReader(nil) }}

	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdErr  error
)

// xerialMagic starts snappy data in the xerial framing Java clients write.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// decompress inflates src written with codec, appending to dst.
func decompress(codec int8, src, dst []byte) ([]byte, error) {
	var out []byte
	var err error
	switch codec {
	case CompressionGzip:
		out, err = readAllLimited(dst, func() (io.Reader, func(), error) {
			zr, _ := gzipPool.Get().(*gzip.Reader)
			if zr == nil {
				zr = new(gzip.Reader)
			}
			if err := zr.Reset(bytes.NewReader(src)); err != nil {
				return nil, nil, err
			}
			return zr, func() { gzipPool.Put(zr) }, nil
		})
	case CompressionSnappy:
		out, err = unsnappy(src, dst)
	case CompressionLZ4:
		out, err = readAllLimited(dst, func() (io.Reader, func(), error) {
			zr := lz4Pool.Get().(*lz4.Reader)
			zr.Reset(bytes.NewReader(src))
			return zr, func() { lz4Pool.Put(zr) }, nil
		})
	case CompressionZstd:
		zstdOnce.Do(func() {
			zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxDecompressedSize),
				zstd.WithDecoderConcurrency(0))
		})
		if zstdErr != nil {
			return dst, fmt.Errorf("record batch: zstd: %w", zstdErr)
		}
		out, err = zstdDec.DecodeAll(src, dst)
	default:
		return dst, corrupt("unknown compression codec %d", codec)
	}
	if err != nil {
		return dst, fmt.Errorf("record batch: decompressing codec %d: %v: %w", codec, err, kerr.CorruptMessage)
	}
	if len(out)-len(dst) > MaxDecompressedSize {
		return dst, corrupt("decompressed size exceeds %d bytes", MaxDecompressedSize)
	}
	return out, nil
}

// readAllLimited reads a stream opened by open into dst, failing once more
// than MaxDecompressedSize bytes come out.
func readAllLimited(dst []byte, open func() (io.Reader, func(), error)) ([]byte, error) {
	r, done, err := open()
	if err != nil {
		return dst, err
	}
	defer done()
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst)-start > MaxDecompressedSize {
			return dst, fmt.Errorf("more than %d bytes", MaxDecompressedSize)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// unsnappy decodes a raw snappy block or xerial-framed snappy chunks.
func unsnappy(src, dst []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(src, dst)
	}
	if len(src) < 16 {
		return dst, fmt.Errorf("short xerial header")
	}
	src = src[16:] // magic, version, compatible version
	for len(src) > 0 {
		if len(src) < 4 {
			return dst, fmt.Errorf("truncated xerial chunk length")
		}
		n := binary.BigEndian.Uint32(src)
		src = src[4:]
		if uint64(n) > uint64(len(src)) {
			return dst, fmt.Errorf("xerial chunk of %d bytes overruns %d", n, len(src))
		}
		var err error
		if dst, err = snappyBlock(src[:n], dst); err != nil {
			return dst, err
		}
		src = src[n:]
	}
	return dst, nil
}

// snappyBlock appends the decoding of one raw snappy block to dst.
func snappyBlock(src, dst []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if n < 0 || n > MaxDecompressedSize || len(dst)+n > MaxDecompressedSize {
		return dst, fmt.Errorf("decoded length %d exceeds %d", n, MaxDecompressedSize)
	}
	start := len(dst)
	dst = growTo(dst, start+n)
	got, err := snappy.Decode(dst[start:start+n], src)
	if err != nil {
		return dst[:start], err
	}
	if len(got) != n {
		return dst[:start], fmt.Errorf("decoded %d bytes, header said %d", len(got), n)
	}
	return dst, nil
}

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}
