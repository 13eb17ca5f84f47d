package window

import (
	"bytes"
	"testing"

	"github.com/eddy-streams/eddy/serde"
)

// FuzzTimeWindowedDeserialize checks that the time-windowed deserializer
// never panics and that whatever it accepts serializes back to the same
// bytes.
func FuzzTimeWindowedDeserialize(f *testing.F) {
	f.Add([]byte("key\x00\x00\x00\x00\x00\x00\x00\x32"))
	f.Add([]byte{})
	f.Add(make([]byte, 8))
	s := TimeWindowedSerde(serde.Bytes(), 10*ms)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Deserialize("t", b)
		if err != nil {
			return
		}
		if v.Window.End < v.Window.Start || v.Window.Start < 0 {
			t.Fatalf("bad window %v", v.Window)
		}
		out, err := s.Serialize("t", v)
		if err != nil {
			t.Fatalf("serialize: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %x", b, out)
		}
	})
}

// FuzzSessionWindowedDeserialize checks that the session-windowed
// deserializer never panics and that whatever it accepts serializes back to
// the same bytes.
func FuzzSessionWindowedDeserialize(f *testing.F) {
	f.Add([]byte("key\x00\x00\x00\x00\x00\x00\x00\x64\x00\x00\x00\x00\x00\x00\x00\x32"))
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	s := SessionWindowedSerde(serde.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Deserialize("t", b)
		if err != nil {
			return
		}
		if v.Window.End < v.Window.Start || v.Window.Start < 0 {
			t.Fatalf("bad window %v", v.Window)
		}
		out, err := s.Serialize("t", v)
		if err != nil {
			t.Fatalf("serialize: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %x", b, out)
		}
	})
}
