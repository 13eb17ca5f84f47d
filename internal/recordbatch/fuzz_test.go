package recordbatch

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// FuzzValidate checks that Validate, Inspect and Split never panic and that
// whatever Validate accepts, Records decodes consistently.
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if parts, err := Split(b); err == nil {
			n := 0
			for _, p := range parts {
				n += len(p)
			}
			if n != len(b) {
				t.Fatalf("split covered %d of %d bytes", n, len(b))
			}
		}
		h, err := Validate(b)
		if err != nil {
			return
		}
		recs, err := Records(b)
		if err != nil {
			t.Fatalf("Validate accepted, Records failed: %v", err)
		}
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
	})
}

// FuzzRecords checks that Records never panics and that decoded records
// survive a Build round trip. It fixes up the batch length and CRC first so
// that the fuzzer explores the record framing rather than the checksum.
func FuzzRecords(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= HeaderSize {
			binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-LengthFieldEnd))
			b[offMagic] = 2
			fixCRC(b)
		}
		recs, err := Records(b)
		if err != nil {
			return
		}
		h, _ := ParseHeader(b)
		if h.LogAppendTime() || h.HasDeleteHorizon() {
			return // timestamps are not reproducible from records alone
		}
		for _, r := range recs {
			if d := r.Timestamp - recs[0].Timestamp; (d > 0) != (r.Timestamp > recs[0].Timestamp) {
				return // timestamp span overflows int64
			}
		}
		nb := Build(BuildOptions{BaseOffset: h.BaseOffset, ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch,
			BaseSequence: h.BaseSequence, LastOffsetDelta: h.LastOffsetDelta}, recs)
		again, err := Records(nb)
		if err != nil {
			t.Fatalf("rebuilt batch invalid: %v", err)
		}
		if len(recs) == 0 {
			return
		}
		if !reflect.DeepEqual(again, recs) {
			t.Fatalf("round trip changed records")
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz seeds when EDDY_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("EDDY_WRITE_SEEDS") == "" {
		t.Skip("set EDDY_WRITE_SEEDS=1 to regenerate the fuzz seed corpus")
	}
	recs := sampleRecords(6, 0, 1_700_000_000_000)
	plain := Build(BuildOptions{BaseOffset: 5, ProducerID: 1, ProducerEpoch: 0, BaseSequence: 0}, recs)
	seeds := map[string][]byte{
		"plain":   plain,
		"empty":   Build(BuildOptions{BaseOffset: 3, LastOffsetDelta: 2}, nil),
		"horizon": Build(BuildOptions{DeleteHorizonMs: 99, LastOffsetDelta: 9}, []Record{{Offset: 2, Key: []byte("k")}, {Offset: 7, Key: []byte("k2")}}),
		"control": Build(BuildOptions{Control: true, Transactional: true, ProducerID: 4}, []Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}}),
		"xerial":  withRecords(plain, CompressionSnappy, xerial(plain[HeaderSize:], 64)),
		"torn":    plain[:len(plain)-3],
	}
	for _, c := range []int8{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		seeds["codec"+strconv.Itoa(int(c))] = kmsgBatch(t, 0, 1_700_000_000_000, c, recs)
	}
	for _, target := range []string{"FuzzValidate", "FuzzRecords"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
