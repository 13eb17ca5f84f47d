package window

import (
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
)

// benchWindowed measures one serialize and one deserialize of v per op
// pair, reporting encode and decode as sub-benchmarks.
func benchWindowed(b *testing.B, s serde.Serde[Windowed[string]], v Windowed[string]) {
	enc, err := s.Serialize("t", v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Serialize("t", v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Deserialize("t", enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkTimeWindowedSerde(b *testing.B) {
	s := TimeWindowedSerde(serde.String(), 5*time.Minute)
	benchWindowed(b, s, Windowed[string]{Key: "user-4711", Window: Window{Start: 1_700_000_100_000, End: 1_700_000_400_000}})
}

func BenchmarkSessionWindowedSerde(b *testing.B) {
	s := SessionWindowedSerde(serde.String())
	benchWindowed(b, s, Windowed[string]{Key: "user-4711", Window: Window{Start: 1_700_000_100_000, End: 1_700_000_160_000}})
}
