package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgBatch encodes recs the way a franz-go producer does, with kmsg's
// encoders (independent of Build), compressing with codec.
func kmsgBatch(t testing.TB, base, firstTs int64, codec int8, recs []Record) []byte {
	t.Helper()
	var raw []byte
	maxTs := firstTs
	for i, r := range recs {
		kr := kmsg.Record{TimestampDelta64: r.Timestamp - firstTs, OffsetDelta: int32(i), Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		body := kr.AppendTo(nil)[1:] // Length 0 encodes as one byte
		kr.Length = int32(len(body))
		raw = kr.AppendTo(raw)
		maxTs = max(maxTs, r.Timestamp)
	}
	raw = compress(t, codec, raw)
	b := kmsg.RecordBatch{
		FirstOffset: base, Magic: 2, Attributes: int16(codec), LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: firstTs, MaxTimestamp: maxTs, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(recs)), Records: raw,
	}
	b.Length = int32(49 + len(raw))
	enc := b.AppendTo(nil)
	binary.BigEndian.PutUint32(enc[17:], crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli)))
	return enc
}

func compress(t testing.TB, codec int8, raw []byte) []byte {
	var buf bytes.Buffer
	switch codec {
	case CompressionNone:
		return raw
	case CompressionGzip:
		w := gzip.NewWriter(&buf)
		w.Write(raw)
		w.Close()
	case CompressionSnappy:
		return s2.EncodeSnappy(nil, raw)
	case CompressionLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(raw)
		w.Close()
	case CompressionZstd:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(raw)
		w.Close()
	default:
		t.Fatalf("codec %d", codec)
	}
	return buf.Bytes()
}

// xerial frames raw in the xerial snappy framing Java clients use, in
// chunks of chunk bytes.
func xerial(raw []byte, chunk int) []byte {
	out := append([]byte{}, xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(raw) > 0 {
		n := min(chunk, len(raw))
		c := snappy.Encode(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(c)))
		out = append(out, c...)
		raw = raw[n:]
	}
	return out
}

func sampleRecords(n int, base, ts int64) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Offset: base + int64(i), Timestamp: ts + int64(i%3), Value: bytes.Repeat([]byte{byte(i)}, 100)}
		if i%2 == 0 {
			recs[i].Key = []byte(fmt.Sprintf("key-%d", i))
		}
		if i%5 == 0 {
			recs[i].Headers = []RecordHeader{{Key: "h", Value: []byte("v")}, {Key: "n", Value: nil}}
		}
		if i%7 == 3 {
			recs[i].Value = nil
		}
	}
	return recs
}

func TestBuildRoundTrip(t *testing.T) {
	recs := sampleRecords(20, 100, 1_700_000_000_000)
	b := Build(BuildOptions{BaseOffset: 100, ProducerID: 7, ProducerEpoch: 2, BaseSequence: 5, Transactional: true}, recs)
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 100 || h.LastOffset() != 119 || h.NumRecords != 20 || !h.Transactional() || h.Control() ||
		h.ProducerID != 7 || h.ProducerEpoch != 2 || h.BaseSequence != 5 || h.MaxTimestamp != 1_700_000_000_002 {
		t.Fatalf("header %+v", h)
	}
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("records differ:\n got %+v\nwant %+v", got[:2], recs[:2])
	}
	// Same bytes as kmsg's independent encoding (kmsg writes an empty
	// header slice as count 0 like Build does).
	kb := kmsgBatch(t, 100, recs[0].Timestamp, CompressionNone, recs)
	kh, _ := ParseHeader(kb)
	if kh.NumRecords != 20 {
		t.Fatal(kh)
	}
	if !bytes.Equal(kb[HeaderSize:], b[HeaderSize:]) {
		t.Fatal("Build's records differ from kmsg's encoding")
	}
}

func TestCodecs(t *testing.T) {
	recs := sampleRecords(50, 0, 1_700_000_000_000)
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			b := kmsgBatch(t, 0, recs[0].Timestamp, codec, recs)
			info, err := Inspect(b)
			if err != nil {
				t.Fatal(err)
			}
			if !info.Contiguous || !info.NullKey || info.Compression() != codec || info.RecordsMaxTimestamp != recs[0].Timestamp+2 {
				t.Fatalf("info %+v", info)
			}
			got, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, recs) {
				t.Fatal("records differ")
			}
		})
	}
}

func TestXerialSnappy(t *testing.T) {
	recs := sampleRecords(30, 0, 5)
	plain := Build(BuildOptions{}, recs)
	b := withRecords(plain, CompressionSnappy, xerial(plain[HeaderSize:], 500))
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatal("records differ")
	}
}

// withRecords replaces a batch's records section and codec, fixing length and CRC.
func withRecords(b []byte, codec int8, recs []byte) []byte {
	out := append(append([]byte{}, b[:HeaderSize]...), recs...)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-LengthFieldEnd))
	attrs := binary.BigEndian.Uint16(out[offAttributes:])&^AttrCompressionMask | uint16(codec)
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	fixCRC(out)
	return out
}

func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

func TestZipBomb(t *testing.T) {
	huge := make([]byte, MaxDecompressedSize+1024)
	plain := Build(BuildOptions{}, sampleRecords(1, 0, 0))
	for _, codec := range []int8{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		b := withRecords(plain, codec, compress(t, codec, huge))
		if len(b) > 8<<20 {
			t.Fatalf("codec %d: bomb is %d bytes", codec, len(b))
		}
		if _, err := Validate(b); !errors.Is(err, kerr.CorruptMessage) {
			t.Fatalf("codec %d: got %v", codec, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	good := Build(BuildOptions{BaseOffset: 0}, sampleRecords(5, 0, 10))
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	cases := []struct {
		name string
		b    []byte
		want *kerr.Error
	}{
		{"short", good[:40], kerr.CorruptMessage},
		{"truncated", good[:len(good)-1], kerr.CorruptMessage},
		{"extra", append(append([]byte{}, good...), 0), kerr.CorruptMessage},
		{"crc", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), kerr.CorruptMessage},
		{"magic", mut(func(b []byte) []byte { b[offMagic] = 1; return b }), kerr.UnsupportedForMessageFormat},
		{"count", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offNumRecords:], 6); fixCRC(b); return b }), kerr.CorruptMessage},
		{"fewer", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offNumRecords:], 4); fixCRC(b); return b }), kerr.CorruptMessage},
		{"negative count", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offNumRecords:], 0xffffffff); fixCRC(b); return b }), kerr.CorruptMessage},
		{"last delta", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 2); fixCRC(b); return b }), kerr.InvalidRecord},
		{"codec", mut(func(b []byte) []byte { b[offAttributes+1] |= 7; fixCRC(b); return b }), kerr.CorruptMessage},
		{"bad gzip", withRecords(good, CompressionGzip, []byte("not gzip")), kerr.CorruptMessage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Validate(c.b); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := Records(c.b); err == nil {
				t.Fatal("Records accepted it")
			}
		})
	}
}

func TestGapsAndHorizon(t *testing.T) {
	recs := []Record{{Offset: 10, Timestamp: 5, Key: []byte("a")}, {Offset: 13, Timestamp: 9, Key: []byte("b")}}
	b := Build(BuildOptions{BaseOffset: 10, LastOffsetDelta: 7, DeleteHorizonMs: 1000}, recs)
	info, err := Inspect(b)
	if err != nil {
		t.Fatal(err)
	}
	if info.Contiguous || info.LastOffset() != 17 || !info.HasDeleteHorizon() || info.BaseTimestamp != 1000 || info.MaxTimestamp != 9 {
		t.Fatalf("%+v", info)
	}
	got, _ := Records(b)
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("%+v", got)
	}
	empty := Build(BuildOptions{BaseOffset: 3, LastOffsetDelta: 4}, nil)
	if h, err := Validate(empty); err != nil || h.NumRecords != 0 || h.LastOffset() != 7 {
		t.Fatal(h, err)
	}
}

func TestSplitAndSetters(t *testing.T) {
	a := Build(BuildOptions{}, sampleRecords(3, 0, 1))
	b := Build(BuildOptions{}, sampleRecords(2, 0, 1))
	all := append(append([]byte{}, a...), b...)
	parts, err := Split(all)
	if err != nil || len(parts) != 2 || !bytes.Equal(parts[0], a) || !bytes.Equal(parts[1], b) {
		t.Fatal(len(parts), err)
	}
	if _, err := Split(all[:len(all)-1]); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatal(err)
	}
	if _, err := Split(all[:len(a)+5]); !errors.Is(err, kerr.CorruptMessage) {
		t.Fatal(err)
	}
	SetBaseOffset(parts[1], 42)
	SetPartitionLeaderEpoch(parts[1], 9)
	if h, err := Validate(parts[1]); err != nil || h.BaseOffset != 42 || h.PartitionLeaderEpoch != 9 {
		t.Fatal(h, err)
	}
	SetMaxTimestamp(parts[1], 777, true)
	h, err := Validate(parts[1])
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 777 {
		t.Fatal(h, err)
	}
	recs, _ := Records(parts[1])
	if recs[0].Timestamp != 777 || recs[1].Offset != 43 {
		t.Fatalf("%+v", recs)
	}
}

func BenchmarkValidate(b *testing.B) {
	batch := kmsgBatch(b, 0, 1, CompressionNone, sampleRecords(100, 0, 1))
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateSnappy(b *testing.B) {
	batch := kmsgBatch(b, 0, 1, CompressionSnappy, sampleRecords(100, 0, 1))
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
	}
}
