package window

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
)

func TestJoinGraceKeptByBeforeAfter(t *testing.T) {
	// JoinWindowsTest.beforeShouldNotModifyGrace / afterShouldNotModifyGrace.
	j := JoinWindowsOf(123 * ms).WithGrace(456 * ms).Before(123 * time.Second)
	if j.GraceMs() != 456 {
		t.Fatalf("before changed grace: %d", j.GraceMs())
	}
	j = JoinWindowsOf(123 * ms).WithGrace(456 * ms).After(123 * time.Second)
	if j.GraceMs() != 456 {
		t.Fatalf("after changed grace: %d", j.GraceMs())
	}
}

func TestTimeWindowedSerdeLayout(t *testing.T) {
	// WindowKeySchemaTest: key "key", window [50, 100); the deserializer
	// is given the window size endTime - startTime = 50.
	s := TimeWindowedSerde(serde.String(), 50*ms)
	in := Windowed[string]{Key: "key", Window: Window{50, 100}}
	b, err := s.Serialize("t", in)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{'k', 'e', 'y', 0, 0, 0, 0, 0, 0, 0, 50}
	if !bytes.Equal(b, want) {
		t.Fatalf("bytes = %v, want %v", b, want)
	}
	out, err := s.Deserialize("t", b)
	if err != nil || out != in {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	// The end comes from the configured size, not from the input.
	out, _ = TimeWindowedSerde(serde.String(), time.Hour).Deserialize("t", b)
	if out.Window != (Window{50, 50 + 3600000}) {
		t.Fatalf("window = %v", out.Window)
	}
	// WindowKeySchema.timeWindowForSize clamps an overflowing end to Long.MAX_VALUE.
	big := append([]byte("k"), 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0)
	out, err = s.Deserialize("t", big)
	if err != nil || out.Window.End != math.MaxInt64 {
		t.Fatalf("overflow: %+v, %v", out, err)
	}
}

func TestSessionWindowedSerdeLayout(t *testing.T) {
	// SessionKeySchemaTest: key "key", session [50, 100]; toBinary writes the
	// key, then the end, then the start.
	s := SessionWindowedSerde(serde.String())
	in := Windowed[string]{Key: "key", Window: Window{50, 100}}
	b, err := s.Serialize("t", in)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{'k', 'e', 'y', 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 50}
	if !bytes.Equal(b, want) {
		t.Fatalf("bytes = %v, want %v", b, want)
	}
	out, err := s.Deserialize("t", b)
	if err != nil || out != in {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	// SessionKeySerdeTest.shouldConvertToBinaryAndBack: session [10, 20].
	in = Windowed[string]{Key: "key", Window: Window{10, 20}}
	b, _ = s.Serialize("t", in)
	if out, err := s.Deserialize("t", b); err != nil || out != in {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
}

func TestWindowedSerdeErrors(t *testing.T) {
	ts := TimeWindowedSerde(serde.String(), 10*ms)
	ss := SessionWindowedSerde(serde.String())
	tests := []struct {
		name    string
		de      func([]byte) error
		in      []byte
		wantErr error
	}{
		{"time nil", deErr(ts), nil, serde.ErrNull},
		// Kafka's deserializers map an empty array to null; eddy's rule is
		// that empty non-nil input is not null, and it is too short.
		{"time empty", deErr(ts), []byte{}, serde.ErrBadLength},
		{"time 7 bytes", deErr(ts), make([]byte, 7), serde.ErrBadLength},
		{"time negative start", deErr(ts), []byte{0xff, 0, 0, 0, 0, 0, 0, 0}, ErrInvalidWindow},
		{"session nil", deErr(ss), nil, serde.ErrNull},
		{"session empty", deErr(ss), []byte{}, serde.ErrBadLength},
		{"session 15 bytes", deErr(ss), make([]byte, 15), serde.ErrBadLength},
		{"session end before start", deErr(ss), []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}, ErrInvalidWindow},
		{"session negative start", deErr(ss), []byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0, 0, 0, 0, 2}, ErrInvalidWindow},
	}
	for _, tc := range tests {
		if err := tc.de(tc.in); !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	// Exactly the suffix: an empty key, handed to the inner serde as non-nil.
	if out, err := ts.Deserialize("t", make([]byte, 8)); err != nil || out.Key != "" || out.Window != (Window{0, 10}) {
		t.Fatalf("empty key: %+v, %v", out, err)
	}
	if out, err := SessionWindowedSerde(serde.Bytes()).Deserialize("t", make([]byte, 16)); err != nil || out.Key == nil || len(out.Key) != 0 {
		t.Fatalf("empty key must be non-nil: %+v, %v", out, err)
	}
	// A key serializing to null cannot be windowed.
	if _, err := TimeWindowedSerde(serde.Bytes(), 10*ms).Serialize("t", Windowed[[]byte]{}); err == nil {
		t.Fatal("null key serialized")
	}
	if _, err := SessionWindowedSerde(serde.Bytes()).Serialize("t", Windowed[[]byte]{}); err == nil {
		t.Fatal("null key serialized")
	}
	// A bad window size fails every call.
	bad := TimeWindowedSerde(serde.String(), 0)
	if _, err := bad.Serialize("t", Windowed[string]{Key: "k"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("serialize with size 0: %v", err)
	}
	if _, err := bad.Deserialize("t", make([]byte, 8)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("deserialize with size 0: %v", err)
	}
	// Inner key errors are wrapped.
	if _, err := TimeWindowedSerde(serde.Int64(), 10*ms).Deserialize("t", make([]byte, 11)); !errors.Is(err, serde.ErrBadLength) {
		t.Fatalf("inner error: %v", err)
	}
}

func deErr[K any](s serde.Serde[Windowed[K]]) func([]byte) error {
	return func(b []byte) error {
		_, err := s.Deserialize("t", b)
		return err
	}
}
