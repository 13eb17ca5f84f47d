package recordbatch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Attribute bits of a RecordBatch v2.
const (
	AttrCompressionMask = 0x07 // bits 0–2: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	AttrLogAppendTime   = 0x08 // bit 3: timestamp type LogAppendTime
	AttrTransactional   = 0x10 // bit 4
	AttrControl         = 0x20 // bit 5
	AttrDeleteHorizon   = 0x40 // bit 6: baseTimestamp holds the delete horizon (set by compaction)
)

// Compression codecs as stored in the attributes.
const (
	CompressionNone   int8 = 0
	CompressionGzip   int8 = 1
	CompressionSnappy int8 = 2
	CompressionLZ4    int8 = 3
	CompressionZstd   int8 = 4
)

// Byte offsets of header fields.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// LengthFieldEnd is the number of bytes before a batch's BatchLength
	// counts: baseOffset and batchLength themselves. A batch occupies
	// LengthFieldEnd+BatchLength bytes.
	LengthFieldEnd = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Compression returns the compression codec (attributes bits 0–2).
func (h Header) Compression() int8 { return int8(h.Attributes & AttrCompressionMask) }

// Transactional reports attributes bit 4.
func (h Header) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// Control reports attributes bit 5 (a transaction marker batch).
func (h Header) Control() bool { return h.Attributes&AttrControl != 0 }

// LogAppendTime reports attributes bit 3: timestamps are the broker's
// append time, held in MaxTimestamp.
func (h Header) LogAppendTime() bool { return h.Attributes&AttrLogAppendTime != 0 }

// HasDeleteHorizon reports attributes bit 6: BaseTimestamp is the time after
// which compaction may drop the batch's tombstones.
func (h Header) HasDeleteHorizon() bool { return h.Attributes&AttrDeleteHorizon != 0 }

// LastOffset is the offset of the batch's last record (BaseOffset+LastOffsetDelta).
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size is the batch's total size in bytes, header included.
func (h Header) Size() int { return LengthFieldEnd + int(h.BatchLength) }

func corrupt(format string, args ...any) error {
	return fmt.Errorf("record batch: %s: %w", fmt.Sprintf(format, args...), kerr.CorruptMessage)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("record batch: %s: %w", fmt.Sprintf(format, args...), kerr.InvalidRecord)
}

// ParseHeader decodes the fixed header at the start of b. It only checks
// that b holds HeaderSize bytes; Validate checks the rest.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, corrupt("%d bytes, header needs %d", len(b), HeaderSize)
	}
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}, nil
}

// Info is what Inspect learns about a batch beyond its header.
type Info struct {
	Header
	// RecordsMaxTimestamp is the largest record timestamp (CreateTime),
	// -1 when the batch has no records.
	RecordsMaxTimestamp int64
	// RecordsMinTimestamp is the smallest record timestamp (CreateTime),
	// math.MaxInt64 when the batch has no records.
	RecordsMinTimestamp int64
	// Contiguous is true when the records' offset deltas are exactly
	// 0, 1, …, NumRecords-1 and LastOffsetDelta is NumRecords-1, as every
	// producer writes them (compaction leaves gaps in stored batches).
	Contiguous bool
	// NullKey is true when some record has a null key.
	NullKey bool
}

// Validate checks one complete batch: b must be exactly one batch. It checks
// the lengths, magic 2, the CRC-32C, and walks every record (decompressing
// a compressed batch, with a size limit) checking the record framing, the
// record count, the offset deltas (increasing, within LastOffsetDelta) and
// the timestamps. Errors wrap kerr.CorruptMessage or kerr.InvalidRecord.
func Validate(b []byte) (Header, error) {
	info, err := Inspect(b)
	return info.Header, err
}

// Inspect validates b like Validate and also reports what the records say.
func Inspect(b []byte) (Info, error) {
	h, err := checkFrame(b)
	if err != nil {
		return Info{Header: h}, err
	}
	if c := crc32.Checksum(b[offAttributes:], castagnoli); c != h.CRC {
		return Info{Header: h}, corrupt("crc mismatch: header %08x, computed %08x", h.CRC, c)
	}
	info := Info{Header: h}
	if h.Compression() == CompressionNone {
		err = walk(b[HeaderSize:], &info, nil)
		return info, err
	}
	buf := getBuf()
	defer putBuf(buf)
	raw, err := decompress(h.Compression(), b[HeaderSize:], (*buf)[:0])
	*buf = raw[:0]
	if err != nil {
		return info, err
	}
	err = walk(raw, &info, nil)
	return info, err
}

// checkFrame checks the header-level framing of one whole batch.
func checkFrame(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("record batch: magic %d, only magic 2 is supported: %w", h.Magic, kerr.UnsupportedForMessageFormat)
	}
	if h.BatchLength < HeaderSize-LengthFieldEnd || int64(h.BatchLength)+LengthFieldEnd != int64(len(b)) {
		return h, corrupt("batch length %d does not match %d bytes", h.BatchLength, len(b)-LengthFieldEnd)
	}
	if h.NumRecords < 0 {
		return h, corrupt("negative record count %d", h.NumRecords)
	}
	if h.LastOffsetDelta < 0 {
		return h, invalid("negative last offset delta %d", h.LastOffsetDelta)
	}
	if h.Compression() > CompressionZstd {
		return h, corrupt("unknown compression codec %d", h.Compression())
	}
	// Each record needs at least 7 bytes: a compressed batch cannot hold
	// more records than its decompressed size allows, checked in walk.
	if h.Compression() == CompressionNone && int64(h.NumRecords)*7 > int64(len(b)-HeaderSize) {
		return h, corrupt("%d records cannot fit in %d bytes", h.NumRecords, len(b)-HeaderSize)
	}
	return h, nil
}

// walk checks the records in raw against info.Header and fills in info.
// When out is not nil each decoded record is appended to it.
func walk(raw []byte, info *Info, out *[]Record) error {
	h := &info.Header
	info.RecordsMaxTimestamp, info.RecordsMinTimestamp = -1, math.MaxInt64
	info.Contiguous = h.LastOffsetDelta == h.NumRecords-1
	prevDelta := int64(-1)
	p := 0
	for i := int32(0); i < h.NumRecords; i++ {
		length, n := binary.Varint(raw[p:])
		if n <= 0 || length < 0 || length > math.MaxInt32 {
			return corrupt("record %d: bad length", i)
		}
		p += n
		if length > int64(len(raw)-p) {
			return corrupt("record %d: length %d overruns batch", i, length)
		}
		rec := raw[p : p+int(length)]
		p += int(length)
		if len(rec) < 1 {
			return corrupt("record %d: empty", i)
		}
		r := reader{b: rec, p: 1} // skip attributes, unused in v2
		tsDelta := r.varint()
		offDelta := r.varint()
		if r.bad {
			return corrupt("record %d: bad varint", i)
		}
		if offDelta <= prevDelta || offDelta > int64(h.LastOffsetDelta) {
			return invalid("record %d: offset delta %d not increasing within last offset delta %d", i, offDelta, h.LastOffsetDelta)
		}
		if offDelta != int64(i) {
			info.Contiguous = false
		}
		prevDelta = offDelta
		ts := h.BaseTimestamp + tsDelta
		if (tsDelta > 0 && ts < h.BaseTimestamp) || (tsDelta < 0 && ts > h.BaseTimestamp) {
			return invalid("record %d: timestamp overflows", i)
		}
		info.RecordsMaxTimestamp = max(info.RecordsMaxTimestamp, ts)
		info.RecordsMinTimestamp = min(info.RecordsMinTimestamp, ts)
		key := r.bytes()
		if key == nil {
			info.NullKey = true
		}
		value := r.bytes()
		nh := r.varint()
		if r.bad || nh < 0 || nh > int64(len(rec)) {
			return corrupt("record %d: bad key, value or header count", i)
		}
		var hdrs []RecordHeader
		if out != nil && nh > 0 {
			hdrs = make([]RecordHeader, 0, nh)
		}
		for j := int64(0); j < nh; j++ {
			hk := r.bytes()
			hv := r.bytes()
			if r.bad || hk == nil {
				return corrupt("record %d: bad header %d", i, j)
			}
			if out != nil {
				hdrs = append(hdrs, RecordHeader{Key: string(hk), Value: hv})
			}
		}
		if r.p != len(rec) {
			return corrupt("record %d: %d trailing bytes", i, len(rec)-r.p)
		}
		if out != nil {
			*out = append(*out, Record{Offset: h.BaseOffset + offDelta, Timestamp: ts, Key: key, Value: value, Headers: hdrs})
		}
	}
	if p != len(raw) {
		return corrupt("%d bytes after the last of %d records", len(raw)-p, h.NumRecords)
	}
	return nil
}

// reader reads zig-zag varints and varint-length byte strings; bad sticks.
type reader struct {
	b   []byte
	p   int
	bad bool
}

func (r *reader) varint() int64 {
	if r.p < len(r.b) && r.b[r.p] < 0x80 { // one-byte fast path
		u := int64(r.b[r.p])
		r.p++
		return u>>1 ^ -(u & 1)
	}
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b[r.p:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.p += n
	return v
}

// bytes reads a length-prefixed string; length -1 is null (nil).
func (r *reader) bytes() []byte {
	l := r.varint()
	if r.bad {
		return nil
	}
	if l == -1 {
		return nil
	}
	if l < -1 || l > int64(len(r.b)-r.p) {
		r.bad = true
		return nil
	}
	v := r.b[r.p : r.p+int(l) : r.p+int(l)]
	r.p += int(l)
	return v
}

// Records decodes all records of one batch, decompressing it if needed.
// For an uncompressed batch the keys and values alias b.
func Records(b []byte) ([]Record, error) {
	h, err := checkFrame(b)
	if err != nil {
		return nil, err
	}
	if c := crc32.Checksum(b[offAttributes:], castagnoli); c != h.CRC {
		return nil, corrupt("crc mismatch: header %08x, computed %08x", h.CRC, c)
	}
	raw := b[HeaderSize:]
	if h.Compression() != CompressionNone {
		if raw, err = decompress(h.Compression(), raw, nil); err != nil {
			return nil, err
		}
	}
	info := Info{Header: h}
	recs := make([]Record, 0, min(int(h.NumRecords), len(raw)/7+1))
	if err := walk(raw, &info, &recs); err != nil {
		return nil, err
	}
	if h.LogAppendTime() {
		for i := range recs {
			recs[i].Timestamp = h.MaxTimestamp
		}
	}
	return recs, nil
}

// SetBaseOffset rewrites the batch's baseOffset in place; the CRC does not
// cover it. b must hold at least 8 bytes.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the batch's partitionLeaderEpoch in place
// (not covered by the CRC). b must hold a whole header.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetMaxTimestamp rewrites the batch's maxTimestamp, sets or clears the
// LogAppendTime attribute, and recomputes the CRC. b must be a whole batch.
func SetMaxTimestamp(b []byte, ts int64, logAppendTime bool) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:])
	if logAppendTime {
		attrs |= AttrLogAppendTime
	} else {
		attrs &^= AttrLogAppendTime
	}
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// Split splits concatenated batches (as in a ProduceRequest's records) into
// one slice per batch, aliasing b. It checks only the length fields:
// every batch must lie wholly inside b and be at least a header long.
func Split(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		n, err := nextBatchLen(b)
		if err != nil {
			return nil, err
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out, nil
}

// nextBatchLen returns the size of the batch at the start of b.
func nextBatchLen(b []byte) (int, error) {
	if len(b) < HeaderSize {
		return 0, corrupt("%d trailing bytes are not a whole batch", len(b))
	}
	l := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if l < HeaderSize-LengthFieldEnd || int64(l) > int64(len(b)-LengthFieldEnd) {
		return 0, corrupt("batch length %d does not fit %d bytes", l, len(b)-LengthFieldEnd)
	}
	return int(l) + LengthFieldEnd, nil
}

// Build encodes recs as one uncompressed batch with a correct CRC. Record
// offsets and timestamps are absolute; offsetDelta is rec.Offset-opts.BaseOffset
// and the batch's baseTimestamp is the first record's timestamp (or
// opts.DeleteHorizonMs when set). With no records the batch has
// NumRecords 0 and LastOffsetDelta opts.LastOffsetDelta.
func Build(opts BuildOptions, recs []Record) []byte {
	baseTs, maxTs := int64(-1), int64(-1)
	if len(recs) > 0 {
		baseTs = recs[0].Timestamp
	}
	for _, r := range recs {
		maxTs = max(maxTs, r.Timestamp)
	}
	attrs := uint16(0)
	if opts.DeleteHorizonMs > 0 {
		baseTs = opts.DeleteHorizonMs
		attrs |= AttrDeleteHorizon
	}
	if opts.Transactional {
		attrs |= AttrTransactional
	}
	if opts.Control {
		attrs |= AttrControl
	}
	if opts.LogAppendTime {
		attrs |= AttrLogAppendTime
	}
	lastDelta := opts.LastOffsetDelta
	if len(recs) > 0 {
		lastDelta = max(lastDelta, int32(recs[len(recs)-1].Offset-opts.BaseOffset))
	}
	b := make([]byte, HeaderSize, HeaderSize+len(recs)*32)
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(opts.BaseOffset))
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint32(b[offLastOffsetDelta:], uint32(lastDelta))
	be.PutUint64(b[offBaseTimestamp:], uint64(baseTs))
	be.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
	be.PutUint64(b[offProducerID:], uint64(opts.ProducerID))
	be.PutUint16(b[offProducerEpoch:], uint16(opts.ProducerEpoch))
	be.PutUint32(b[offBaseSequence:], uint32(opts.BaseSequence))
	be.PutUint32(b[offNumRecords:], uint32(len(recs)))
	for _, r := range recs {
		tsDelta := r.Timestamp - baseTs
		offDelta := r.Offset - opts.BaseOffset
		size := 1 + varintLen(tsDelta) + varintLen(offDelta) + bytesLen(r.Key) + bytesLen(r.Value) + varintLen(int64(len(r.Headers)))
		for _, hd := range r.Headers {
			size += varintLen(int64(len(hd.Key))) + len(hd.Key) + bytesLen(hd.Value)
		}
		b = binary.AppendVarint(b, int64(size))
		b = append(b, 0)
		b = binary.AppendVarint(b, tsDelta)
		b = binary.AppendVarint(b, offDelta)
		b = appendBytes(b, r.Key)
		b = appendBytes(b, r.Value)
		b = binary.AppendVarint(b, int64(len(r.Headers)))
		for _, hd := range r.Headers {
			b = binary.AppendVarint(b, int64(len(hd.Key)))
			b = append(b, hd.Key...)
			b = appendBytes(b, hd.Value)
		}
	}
	be.PutUint32(b[offBatchLength:], uint32(len(b)-LengthFieldEnd))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func bytesLen(v []byte) int {
	if v == nil {
		return 1
	}
	return varintLen(int64(len(v))) + len(v)
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	b = binary.AppendVarint(b, int64(len(v)))
	return append(b, v...)
}
