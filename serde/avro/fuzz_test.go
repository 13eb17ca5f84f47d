package avro

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/serde"
)

// fuzzV1 exercises every kind of length the decoder reads from its input:
// string, bytes, array and map counts, a union index, an enum index and a
// fixed.
const fuzzV1 = `{"type":"record","name":"Fuzz","namespace":"eddy.test","fields":[
	{"name":"id","type":"long"},
	{"name":"name","type":"string"},
	{"name":"data","type":"bytes"},
	{"name":"tags","type":{"type":"array","items":"string"}},
	{"name":"attrs","type":{"type":"map","values":"long"}},
	{"name":"opt","type":["null","string"]}]}`

// fuzzV2 is the reader: it adds fields with defaults, so records written
// with fuzzV1 (id 1) go through schema resolution, while records written
// with fuzzV2 itself (id 2) do not.
const fuzzV2 = `{"type":"record","name":"Fuzz","namespace":"eddy.test","fields":[
	{"name":"id","type":"long"},
	{"name":"name","type":"string"},
	{"name":"data","type":"bytes"},
	{"name":"tags","type":{"type":"array","items":"string"}},
	{"name":"attrs","type":{"type":"map","values":"long"}},
	{"name":"opt","type":["null","string"]},
	{"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]},"default":"A"},
	{"name":"hash","type":{"type":"fixed","name":"Hash","size":4},"default":"\u0000\u0000\u0000\u0000"},
	{"name":"nested","type":{"type":"array","items":{"type":"array","items":"int"}},"default":[]}]}`

type fuzzT struct {
	ID     int64            `avro:"id"`
	Name   string           `avro:"name"`
	Data   []byte           `avro:"data"`
	Tags   []string         `avro:"tags"`
	Attrs  map[string]int64 `avro:"attrs"`
	Opt    *string          `avro:"opt"`
	Kind   string           `avro:"kind"`
	Hash   [4]byte          `avro:"hash"`
	Nested [][]int32        `avro:"nested"`
}

// FuzzAvroDeserialize feeds arbitrary records to the deserializer. It must
// return a value or an error, never panic, and never allocate more than the
// limits allow (the fuzzer's memory limit catches that).
func FuzzAvroDeserialize(f *testing.F) {
	fake := newFakeRegistry()
	ctx := context.Background()
	if _, err := fake.Register(ctx, "fuzz-value", fuzzV1); err != nil {
		f.Fatal(err)
	}
	if _, err := fake.Register(ctx, "fuzz-value", fuzzV2); err != nil {
		f.Fatal(err)
	}
	s, err := Serde[fuzzT](fake, fuzzV2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Deserialize("fuzz", b)
		if err != nil {
			if v.Name != "" || v.Data != nil || v.Tags != nil || v.Attrs != nil {
				t.Fatalf("non-zero value with error %v", err)
			}
			if b == nil && !errors.Is(err, serde.ErrNull) {
				t.Fatalf("nil input: %v", err)
			}
			return
		}
		if len(v.Data) > DefaultMaxBytesLen || len(v.Name) > DefaultMaxBytesLen || len(v.Tags) > DefaultMaxArrayLen {
			t.Fatalf("decoded past the limits: %d, %d, %d", len(v.Data), len(v.Name), len(v.Tags))
		}
		if len(b) < headerLen || b[0] != 0 {
			t.Fatalf("decoded a record without a valid header: % x", b)
		}
	})
}

// TestFuzzSeeds checks what each seed in the fuzz corpus decodes to, so the
// corpus keeps covering both valid records and each kind of bad input.
func TestFuzzSeeds(t *testing.T) {
	fake := newFakeRegistry()
	ctx := context.Background()
	for _, sch := range []string{fuzzV1, fuzzV2} {
		if _, err := fake.Register(ctx, "fuzz-value", sch); err != nil {
			t.Fatal(err)
		}
	}
	s := mustSerde[fuzzT](t, fake, fuzzV2)
	str := "s"
	tests := []struct {
		file string
		want error // nil: decodes to wantV
		v    fuzzT
	}{
		{"valid_v1_record", nil, fuzzT{ID: 1, Name: "ab", Data: []byte("x"), Tags: []string{"t"}, Attrs: map[string]int64{"k": 3}, Kind: "A", Nested: [][]int32{}}},
		{"valid_v2_record", nil, fuzzT{ID: 1, Name: "ab", Data: []byte("x"), Tags: []string{"t"}, Attrs: map[string]int64{"k": 3}, Opt: &str, Kind: "B", Hash: [4]byte{'a', 'b', 'c', 'd'}, Nested: [][]int32{{1}}}},
		{"truncated", ErrTruncated, fuzzT{}},
		{"short_header", ErrTruncated, fuzzT{}},
		{"bad_magic", ErrBadMagic, fuzzT{}},
		{"unknown_id", ErrUnknownSchema, fuzzT{}},
		{"huge_string_length", ErrTooLarge, fuzzT{}},
		{"huge_array_count", ErrTooLarge, fuzzT{}},
		{"huge_map_count", ErrTruncated, fuzzT{}},
		{"min_int64_block_count", nil, fuzzT{}}, // any error will do
		{"bad_union_index", nil, fuzzT{}},       // any error will do
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzAvroDeserialize", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			lit, ok := strings.CutPrefix(lines[len(lines)-1], "[]byte(")
			if !ok {
				t.Fatalf("bad corpus file %q", raw)
			}
			b, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.Deserialize("fuzz", []byte(b))
			t.Log(err)
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			case tt.want == nil && tt.v.Name != "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.want == nil && tt.v.Name == "" && err == nil:
				t.Fatalf("no error, got %+v", v)
			case tt.v.Name != "" && !reflect.DeepEqual(v, tt.v):
				t.Fatalf("got %+v, want %+v", v, tt.v)
			}
		})
	}
}
