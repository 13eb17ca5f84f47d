package serde_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/eddy-streams/eddy/serde"
)

const gokaTopic = "t"

// The adapters' types are interchangeable with goka's own interface.
var (
	_ goka.Codec      = serde.ToGoka(serde.String())
	_ serde.GokaCodec = goka.Codec(new(codec.String))
)

// gokaRecord is a JSON value for the adapter tests.
type gokaRecord struct {
	User  string `json:"user"`
	Count int64  `json:"count"`
}

// fromGokaCase checks that FromGoka[T](c) serializes v to want, the bytes c
// itself encodes, and deserializes them back to v.
func fromGokaCase[T any](t *testing.T, c serde.GokaCodec, v T) {
	t.Helper()
	want, err := c.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	s := serde.FromGoka[T](c)
	b, err := s.Serialize(gokaTopic, v)
	if err != nil || !bytes.Equal(b, want) || b == nil {
		t.Fatalf("Serialize(%#v) = %q, %v; want %q", v, b, err, want)
	}
	got, err := s.Deserialize(gokaTopic, b)
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("Deserialize(%q) = %#v, %v; want %#v", b, got, err, v)
	}
}

func TestFromGokaRoundTrip(t *testing.T) {
	for _, v := range []string{"hello", "", "héllo"} {
		fromGokaCase(t, new(codec.String), v)
	}
	for _, v := range []int64{0, 42, -1, math.MinInt64, math.MaxInt64} {
		fromGokaCase(t, new(codec.Int64), v)
	}
	for _, v := range [][]byte{{1, 2, 3}, {}} {
		fromGokaCase(t, new(codec.Bytes), v)
	}
	// An eddy serde adapted to goka and back behaves like the original.
	fromGokaCase(t, serde.ToGoka(serde.JSON[gokaRecord]()), gokaRecord{User: "u1", Count: 3})
}

// toGokaCase checks that ToGoka(s) encodes v to the bytes s serializes and
// decodes them back to v.
func toGokaCase[T any](t *testing.T, s serde.Serde[T], v T) {
	t.Helper()
	want, err := s.Serialize("", v)
	if err != nil {
		t.Fatal(err)
	}
	c := serde.ToGoka(s)
	b, err := c.Encode(v)
	if err != nil || !bytes.Equal(b, want) || b == nil {
		t.Fatalf("Encode(%#v) = %q, %v; want %q", v, b, err, want)
	}
	got, err := c.Decode(b)
	if err != nil {
		t.Fatalf("Decode(%q): %v", b, err)
	}
	if tv, ok := got.(T); !ok || !reflect.DeepEqual(tv, v) {
		t.Fatalf("Decode(%q) = %#v (%T), want %#v", b, got, got, v)
	}
}

func TestToGokaRoundTrip(t *testing.T) {
	for _, v := range []string{"hello", ""} {
		toGokaCase(t, serde.String(), v)
	}
	for _, v := range []int64{0, 42, -1, math.MinInt64} {
		toGokaCase(t, serde.Int64(), v)
	}
	toGokaCase(t, serde.JSON[gokaRecord](), gokaRecord{User: "u1", Count: 3})
	toGokaCase(t, serde.JSON[gokaRecord](), gokaRecord{})
	// A goka codec adapted to eddy and back behaves like the original.
	toGokaCase(t, serde.FromGoka[int64](new(codec.Int64)), 7)
}

// TestGokaWireFormats pins which goka codecs share eddy's byte layouts:
// strings and bytes do, 64-bit integers do not (decimal text against
// Kafka's 8 big-endian bytes).
func TestGokaWireFormats(t *testing.T) {
	gs, _ := new(codec.String).Encode("héllo")
	es, _ := serde.String().Serialize(gokaTopic, "héllo")
	if !bytes.Equal(gs, es) {
		t.Errorf("string: goka %q, eddy %q; want equal", gs, es)
	}
	gb, _ := new(codec.Bytes).Encode([]byte{0, 1, 0xff})
	eb, _ := serde.Bytes().Serialize(gokaTopic, []byte{0, 1, 0xff})
	if !bytes.Equal(gb, eb) {
		t.Errorf("bytes: goka % x, eddy % x; want equal", gb, eb)
	}

	gi, _ := new(codec.Int64).Encode(int64(42))
	ei, _ := serde.Int64().Serialize(gokaTopic, 42)
	if string(gi) != "42" || !bytes.Equal(ei, []byte{0, 0, 0, 0, 0, 0, 0, 42}) {
		t.Fatalf("int64: goka %q, eddy % x", gi, ei)
	}
	// Neither reads the other's records.
	if _, err := serde.Int64().Deserialize(gokaTopic, gi); !errors.Is(err, serde.ErrBadLength) {
		t.Errorf("eddy Int64 on goka bytes: err = %v, want ErrBadLength", err)
	}
	if _, err := serde.FromGoka[int64](new(codec.Int64)).Deserialize(gokaTopic, ei); err == nil {
		t.Errorf("goka Int64 on eddy bytes: no error")
	}
}

func TestGokaWrongType(t *testing.T) {
	_, err := serde.FromGoka[string](new(codec.Int64)).Deserialize(gokaTopic, []byte("42"))
	if !errors.Is(err, serde.ErrWrongType) {
		t.Fatalf("FromGoka decode: err = %v, want ErrWrongType", err)
	}
	for _, part := range []string{"*codec.Int64", `"t"`, "decoded int64, want string"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("FromGoka decode error %q lacks %q", err, part)
		}
	}

	_, err = serde.ToGoka(serde.String()).Encode(42)
	if !errors.Is(err, serde.ErrWrongType) || !strings.Contains(err.Error(), "is int, want string") {
		t.Errorf("ToGoka encode: err = %v, want ErrWrongType naming int and string", err)
	}
	if _, err = serde.ToGoka(serde.Int64()).Encode(int32(1)); !errors.Is(err, serde.ErrWrongType) {
		t.Errorf("ToGoka encode int32 as int64: err = %v, want ErrWrongType", err)
	}

	// goka's codec reports the mismatch on encode; FromGoka wraps it.
	_, err = serde.FromGoka[int64](new(codec.String)).Serialize(gokaTopic, 1)
	if err == nil || !strings.Contains(err.Error(), "*codec.String") || !strings.Contains(err.Error(), "not of type string") {
		t.Errorf("FromGoka encode: err = %v", err)
	}
}

func TestGokaErrorsPassThrough(t *testing.T) {
	// Serde errors reach goka unchanged.
	if _, err := serde.ToGoka(serde.Int64()).Decode([]byte{1, 2}); !errors.Is(err, serde.ErrBadLength) {
		t.Errorf("ToGoka decode: err = %v, want ErrBadLength", err)
	}
	if _, err := serde.ToGoka(serde.JSON[gokaRecord]()).Decode([]byte("{")); err == nil {
		t.Errorf("ToGoka decode of bad JSON: no error")
	}
	// Codec errors are wrapped with the codec and topic.
	boom := errors.New("boom")
	failing := fakeCodec{err: boom}
	if _, err := serde.FromGoka[string](failing).Deserialize(gokaTopic, []byte("x")); !errors.Is(err, boom) {
		t.Errorf("FromGoka decode: err = %v, want boom", err)
	}
	if _, err := serde.FromGoka[string](failing).Serialize(gokaTopic, "x"); !errors.Is(err, boom) {
		t.Errorf("FromGoka encode: err = %v, want boom", err)
	}
	_, err := serde.FromGoka[int64](new(codec.Int64)).Deserialize(gokaTopic, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "*codec.Int64") {
		t.Errorf("FromGoka decode of bad int: err = %v", err)
	}
}

// fakeCodec is a goka codec that counts calls and returns fixed results.
type fakeCodec struct {
	calls *int
	value any
	err   error
}

func (f fakeCodec) Encode(any) ([]byte, error) {
	if f.calls != nil {
		*f.calls++
	}
	return []byte("x"), f.err
}

func (f fakeCodec) Decode([]byte) (any, error) {
	if f.calls != nil {
		*f.calls++
	}
	return f.value, f.err
}

// countingSerde is a Serde that counts calls.
type countingSerde struct{ calls *int }

func (c countingSerde) Serialize(string, string) ([]byte, error) {
	*c.calls++
	return []byte("x"), nil
}

func (c countingSerde) Deserialize(string, []byte) (string, error) {
	*c.calls++
	return "x", nil
}

func TestGokaNull(t *testing.T) {
	// FromGoka: nil input is eddy's null, and the codec is not called.
	calls := 0
	v, err := serde.FromGoka[string](fakeCodec{calls: &calls, value: "x"}).Deserialize(gokaTopic, nil)
	if !errors.Is(err, serde.ErrNull) || v != "" || calls != 0 {
		t.Errorf("FromGoka Deserialize(nil) = %q, %v with %d codec calls; want ErrNull, no calls", v, err, calls)
	}
	// FromGoka passes a nil encoding through as a tombstone.
	b, err := serde.FromGoka[[]byte](new(codec.Bytes)).Serialize(gokaTopic, nil)
	if b != nil || err != nil {
		t.Errorf("FromGoka(Bytes) Serialize(nil) = %v, %v; want nil, nil", b, err)
	}
	// A codec that decodes to nil gives the zero value of nilable types only.
	p, err := serde.FromGoka[*gokaRecord](fakeCodec{}).Deserialize(gokaTopic, []byte("x"))
	if p != nil || err != nil {
		t.Errorf("FromGoka[*T] of a nil decode = %v, %v; want nil, nil", p, err)
	}
	a, err := serde.FromGoka[any](fakeCodec{}).Deserialize(gokaTopic, []byte("x"))
	if a != nil || err != nil {
		t.Errorf("FromGoka[any] of a nil decode = %v, %v; want nil, nil", a, err)
	}
	if _, err := serde.FromGoka[int64](fakeCodec{}).Deserialize(gokaTopic, []byte("x")); !errors.Is(err, serde.ErrWrongType) ||
		!strings.Contains(err.Error(), "decoded nil, want int64") {
		t.Errorf("FromGoka[int64] of a nil decode: err = %v, want ErrWrongType", err)
	}

	// ToGoka: nil means deletion both ways, and the serde is not called.
	calls = 0
	c := serde.ToGoka[string](countingSerde{calls: &calls})
	if b, err := c.Encode(nil); b != nil || err != nil {
		t.Errorf("ToGoka Encode(nil) = %v, %v; want nil, nil", b, err)
	}
	if v, err := c.Decode(nil); v != nil || err != nil {
		t.Errorf("ToGoka Decode(nil) = %v, %v; want nil, nil", v, err)
	}
	if calls != 0 {
		t.Errorf("serde called %d times for nil", calls)
	}
	// An empty, non-nil record is a value, not a deletion.
	if v, err := serde.ToGoka(serde.String()).Decode([]byte{}); v != "" || err != nil {
		t.Errorf(`ToGoka(String) Decode([]byte{}) = %#v, %v; want "", nil`, v, err)
	}
	// A typed nil pointer goes to a Nullable serde, which writes a tombstone.
	if b, err := serde.ToGoka(serde.Nullable(serde.String())).Encode((*string)(nil)); b != nil || err != nil {
		t.Errorf("ToGoka(Nullable) Encode(nil *string) = %v, %v; want nil, nil", b, err)
	}
}

// FuzzGoka fuzzes both adapters' decoders: goka's codec.Int64 through
// FromGoka and eddy's JSON and Int64 through ToGoka. Decoding never
// panics, and every decoded value survives a re-encode and decode.
func FuzzGoka(f *testing.F) {
	fromInt := serde.FromGoka[int64](new(codec.Int64))
	toJSON := serde.ToGoka(serde.JSON[gokaRecord]())
	toInt := serde.ToGoka(serde.Int64())
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := fromInt.Deserialize(gokaTopic, b); err == nil {
			out, err := fromInt.Serialize(gokaTopic, v)
			if err != nil {
				t.Fatal(err)
			}
			if w, err := fromInt.Deserialize(gokaTopic, out); err != nil || w != v {
				t.Fatalf("%q decoded to %d, re-decoded to %d, %v", b, v, w, err)
			}
		}
		if v, err := toJSON.Decode(b); err == nil {
			out, err := toJSON.Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			if w, err := toJSON.Decode(out); err != nil || w != v {
				t.Fatalf("%q decoded to %#v, re-decoded to %#v, %v", b, v, w, err)
			}
		}
		v, err := toInt.Decode(b)
		if len(b) != 8 {
			if !errors.Is(err, serde.ErrBadLength) && !(b == nil && v == nil && err == nil) {
				t.Fatalf("% x: %v, %v", b, v, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if out, err := toInt.Encode(v); err != nil || !bytes.Equal(out, b) {
			t.Fatalf("% x re-encoded as % x, %v", b, out, err)
		}
	})
}

// goka processors take eddy serdes through ToGoka, and eddy topologies
// take goka codecs through FromGoka. Their formats differ for integers.
func ExampleToGoka() {
	// Pass c to goka.Input, goka.Persist or goka.NewEmitter.
	var c goka.Codec = serde.ToGoka(serde.JSON[gokaRecord]())
	b, _ := c.Encode(gokaRecord{User: "u1", Count: 3})
	fmt.Printf("%s\n", b)
	v, _ := c.Decode(b)
	fmt.Printf("%+v\n", v.(gokaRecord))

	// nil is goka's deletion: no bytes, and no value.
	b, _ = c.Encode(nil)
	v, _ = c.Decode(nil)
	fmt.Println(b == nil, v == nil)
	// Output:
	// {"user":"u1","count":3}
	// {User:u1 Count:3}
	// true true
}

func ExampleFromGoka() {
	s := serde.FromGoka[int64](new(codec.Int64))
	b, _ := s.Serialize("counts", 42)
	fmt.Printf("goka Int64: %q\n", b)
	b, _ = serde.Int64().Serialize("counts", 42)
	fmt.Printf("eddy Int64: % x\n", b)

	_, err := s.Deserialize("counts", nil)
	fmt.Println(errors.Is(err, serde.ErrNull))
	_, err = serde.FromGoka[string](new(codec.Int64)).Deserialize("counts", []byte("42"))
	fmt.Println(err)
	// Output:
	// goka Int64: "42"
	// eddy Int64: 00 00 00 00 00 00 00 2a
	// true
	// goka codec *codec.Int64, topic "counts": decoded int64, want string: serde: value of wrong type
}
