package serde

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

// fuzzFixed checks a fixed-width serde: input of the right width decodes and
// re-encodes to the same bytes; any other input fails with ErrBadLength or
// ErrNull, never a panic.
func fuzzFixed[T any](f *testing.F, s Serde[T], width int) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Deserialize(topic, b)
		if len(b) != width {
			if !errors.Is(err, ErrBadLength) {
				t.Fatalf("%d bytes: err = %v, want ErrBadLength", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("% x: %v", b, err)
		}
		out, err := s.Serialize(topic, v)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("% x decoded to %v re-encoded as % x, %v", b, v, out, err)
		}
	})
}

// FuzzInt64 fuzzes the Int64 deserializer; likewise the next four for their types.
func FuzzInt64(f *testing.F)   { fuzzFixed(f, Int64(), 8) }
func FuzzInt32(f *testing.F)   { fuzzFixed(f, Int32(), 4) }
func FuzzInt16(f *testing.F)   { fuzzFixed(f, Int16(), 2) }
func FuzzFloat64(f *testing.F) { fuzzFixed(f, Float64(), 8) }
func FuzzFloat32(f *testing.F) { fuzzFixed(f, Float32(), 4) }

// FuzzString fuzzes the String deserializer: every input round-trips.
func FuzzString(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := String().Deserialize(topic, b)
		if err != nil {
			t.Fatal(err)
		}
		out, err := String().Serialize(topic, s)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("%q re-encoded as %q, %v", b, out, err)
		}
	})
}

// jsonValue is a document shape with nested and optional parts, for fuzzing.
type jsonValue struct {
	S   string             `json:"s" msgpack:"s"`
	I   int64              `json:"i" msgpack:"i"`
	F   float64            `json:"f" msgpack:"f"`
	B   []byte             `json:"b" msgpack:"b"`
	L   []jsonValue        `json:"l" msgpack:"l"`
	M   map[string]float64 `json:"m" msgpack:"m"`
	P   *jsonValue         `json:"p" msgpack:"p"`
	Any any                `json:"any" msgpack:"any"`
}

// FuzzJSON fuzzes the JSON deserializer; decoded values must re-encode and re-decode.
func FuzzJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := JSON[jsonValue]().Deserialize(topic, b)
		if err == nil {
			out, err := JSON[jsonValue]().Serialize(topic, v)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", v, err)
			}
			if _, err := JSON[jsonValue]().Deserialize(topic, out); err != nil {
				t.Fatalf("re-decode %q: %v", out, err)
			}
		}
		_, _ = JSON[any]().Deserialize(topic, b)
	})
}

// FuzzMsgpack fuzzes the Msgpack deserializer and its pre-decode length scan.
func FuzzMsgpack(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Msgpack[jsonValue]().Deserialize(topic, b)
		if err == nil {
			out, err := Msgpack[jsonValue]().Serialize(topic, v)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", v, err)
			}
			v2, err := Msgpack[jsonValue]().Deserialize(topic, out)
			if err != nil {
				t.Fatalf("re-decode % x: %v", out, err)
			}
			if !hasNaN(v) && !reflect.DeepEqual(normalize(v), normalize(v2)) {
				t.Fatalf("round trip changed %+v into %+v", v, v2)
			}
		}
		if _, err := Msgpack[any]().Deserialize(topic, b); err == nil {
			if n, err := scanMsgpack(b); err != nil || n != len(b) {
				t.Fatalf("decoded value failed the scan: %d, %v", n, err)
			}
		}
	})
}

// hasNaN reports whether v holds a NaN, which DeepEqual never equates.
func hasNaN(v jsonValue) bool {
	if math.IsNaN(v.F) || v.Any != nil {
		return true
	}
	for _, x := range v.M {
		if math.IsNaN(x) {
			return true
		}
	}
	for _, e := range v.L {
		if hasNaN(e) {
			return true
		}
	}
	return v.P != nil && hasNaN(*v.P)
}

// normalize maps empty slices and maps to nil, which msgpack does not keep
// apart from nil ones in every case.
func normalize(v jsonValue) jsonValue {
	if len(v.B) == 0 {
		v.B = nil
	}
	if len(v.M) == 0 {
		v.M = nil
	}
	if len(v.L) == 0 {
		v.L = nil
	}
	for i := range v.L {
		v.L[i] = normalize(v.L[i])
	}
	if v.P != nil {
		p := normalize(*v.P)
		v.P = &p
	}
	return v
}
