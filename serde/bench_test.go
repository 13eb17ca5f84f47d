package serde

import (
	"testing"

	"github.com/lovoo/goka/codec"
)

// benchSerde reports encode and decode costs of s for v.
func benchSerde[T any](b *testing.B, s Serde[T], v T) {
	enc, err := s.Serialize(topic, v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := s.Serialize(topic, v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := s.Deserialize(topic, enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchRecord is a small page-view-like record, typical of stream values.
type benchRecord struct {
	User      string            `json:"user" msgpack:"user"`
	Page      string            `json:"page" msgpack:"page"`
	Timestamp int64             `json:"ts" msgpack:"ts"`
	Duration  float64           `json:"dur" msgpack:"dur"`
	Tags      []string          `json:"tags" msgpack:"tags"`
	Attrs     map[string]string `json:"attrs" msgpack:"attrs"`
}

var record = benchRecord{
	User: "user-4711", Page: "/products/42", Timestamp: 1_700_000_000_000, Duration: 12.5,
	Tags: []string{"mobile", "eu"}, Attrs: map[string]string{"ref": "search"},
}

// BenchmarkBytes and the following benchmarks measure each serde's encode and decode.
func BenchmarkBytes(b *testing.B)   { benchSerde(b, Bytes(), []byte("0123456789abcdef")) }
func BenchmarkString(b *testing.B)  { benchSerde(b, String(), "user-4711/products/42") }
func BenchmarkInt64(b *testing.B)   { benchSerde(b, Int64(), int64(-1234567890123)) }
func BenchmarkInt32(b *testing.B)   { benchSerde(b, Int32(), int32(-1234567)) }
func BenchmarkInt16(b *testing.B)   { benchSerde(b, Int16(), int16(-1234)) }
func BenchmarkFloat64(b *testing.B) { benchSerde(b, Float64(), 3.14159) }
func BenchmarkFloat32(b *testing.B) { benchSerde(b, Float32(), float32(3.14159)) }
func BenchmarkJSON(b *testing.B)    { benchSerde(b, JSON[benchRecord](), record) }
func BenchmarkMsgpack(b *testing.B) { benchSerde(b, Msgpack[benchRecord](), record) }

// benchCodec reports encode and decode costs of the goka codec c for v.
func benchCodec(b *testing.B, c GokaCodec, v any) {
	enc, err := c.Encode(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := c.Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := c.Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFromGoka measures goka's built-in codecs behind FromGoka.
func BenchmarkFromGoka(b *testing.B) {
	b.Run("Bytes", func(b *testing.B) { benchSerde(b, FromGoka[[]byte](new(codec.Bytes)), []byte("0123456789abcdef")) })
	b.Run("String", func(b *testing.B) { benchSerde(b, FromGoka[string](new(codec.String)), "user-4711/products/42") })
	b.Run("Int64", func(b *testing.B) { benchSerde(b, FromGoka[int64](new(codec.Int64)), int64(-1234567890123)) })
}

// BenchmarkToGoka measures eddy serdes behind ToGoka, as goka calls them.
func BenchmarkToGoka(b *testing.B) {
	b.Run("Bytes", func(b *testing.B) { benchCodec(b, ToGoka(Bytes()), []byte("0123456789abcdef")) })
	b.Run("String", func(b *testing.B) { benchCodec(b, ToGoka(String()), "user-4711/products/42") })
	b.Run("Int64", func(b *testing.B) { benchCodec(b, ToGoka(Int64()), int64(-1234567890123)) })
	b.Run("JSON", func(b *testing.B) { benchCodec(b, ToGoka(JSON[benchRecord]()), record) })
}
