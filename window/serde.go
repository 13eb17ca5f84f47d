package window

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/eddy-streams/eddy/serde"
)

// Windowed is a key together with the window it was aggregated in: the key
// type of windowed tables and of their output topics (Kafka's Windowed<K>).
type Windowed[K any] struct {
	// Key is the record key.
	Key K
	// Window is the window; its bound rules follow the window type.
	Window Window
}

// Bounds returns w.Window. Code that only knows a key's type as a type
// parameter reaches the window of a windowed key through it.
func (w Windowed[K]) Bounds() Window { return w.Window }

// timeWindowedSerde is the Serde built by TimeWindowedSerde.
type timeWindowedSerde[K any] struct {
	inner serde.Serde[K]
	size  int64
	err   error
}

// TimeWindowedSerde returns a serde for keys of tumbling and hopping windows
// in Kafka Streams' layout (TimeWindowedSerializer): the inner key's bytes
// followed by the window start as an 8-byte big-endian int64. The end is
// not written; the deserializer computes it as start + windowSize (clamped
// to math.MaxInt64 on overflow, as Kafka does), so windowSize must equal the
// size of the windows that were written.
//
// Deserialize follows serde's null rule (nil input gives an error wrapping
// [serde.ErrNull]), rejects input shorter than 8 bytes with an error wrapping
// [serde.ErrBadLength], and rejects a negative start with
// [ErrInvalidWindow]. The key bytes handed to the inner serde are never nil,
// even when empty. Serialize fails if the inner serde returns nil (a null
// key cannot be windowed). A windowSize below one millisecond makes every
// call fail with an error wrapping [ErrInvalid].
func TimeWindowedSerde[K any](inner serde.Serde[K], windowSize time.Duration) serde.Serde[Windowed[K]] {
	s := timeWindowedSerde[K]{inner: inner, size: millis(windowSize)}
	if s.size <= 0 {
		s.err = invalid("time-windowed serde: window size must be at least 1ms, got %v", windowSize)
	}
	return s
}

// Serialize writes key bytes + 8-byte big-endian start.
func (s timeWindowedSerde[K]) Serialize(topic string, v Windowed[K]) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	kb, err := innerKey(s.inner, "time-windowed", topic, v.Key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(kb)+8)
	copy(out, kb)
	binary.BigEndian.PutUint64(out[len(kb):], uint64(v.Window.Start))
	return out, nil
}

// Deserialize reads key bytes + 8-byte big-endian start.
func (s timeWindowedSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	var zero Windowed[K]
	if s.err != nil {
		return zero, s.err
	}
	if b == nil {
		return zero, fmt.Errorf("time-windowed deserializer, topic %q: %w", topic, serde.ErrNull)
	}
	if len(b) < 8 {
		return zero, fmt.Errorf("time-windowed deserializer, topic %q: need at least 8 bytes for the window start, got %d: %w", topic, len(b), serde.ErrBadLength)
	}
	n := len(b) - 8
	start := int64(binary.BigEndian.Uint64(b[n:]))
	if start < 0 {
		return zero, fmt.Errorf("time-windowed deserializer, topic %q: negative window start %d: %w", topic, start, ErrInvalidWindow)
	}
	k, err := s.inner.Deserialize(topic, b[:n:n])
	if err != nil {
		return zero, fmt.Errorf("time-windowed deserializer, topic %q: key: %w", topic, err)
	}
	end := start + s.size
	if end < 0 {
		end = math.MaxInt64
	}
	return Windowed[K]{Key: k, Window: Window{Start: start, End: end}}, nil
}

// sessionWindowedSerde is the Serde built by SessionWindowedSerde.
type sessionWindowedSerde[K any] struct {
	inner serde.Serde[K]
}

// SessionWindowedSerde returns a serde for session keys in Kafka Streams'
// layout (SessionWindowedSerializer, SessionKeySchema.toBinary): the inner
// key's bytes, then the session end, then the session start, each an 8-byte
// big-endian int64.
//
// Deserialize follows serde's null rule, rejects input shorter than 16
// bytes with an error wrapping [serde.ErrBadLength], and rejects a negative
// start or an end before the start with [ErrInvalidWindow]. Serialize fails
// if the inner serde returns nil.
func SessionWindowedSerde[K any](inner serde.Serde[K]) serde.Serde[Windowed[K]] {
	return sessionWindowedSerde[K]{inner: inner}
}

// Serialize writes key bytes + 8-byte end + 8-byte start.
func (s sessionWindowedSerde[K]) Serialize(topic string, v Windowed[K]) ([]byte, error) {
	kb, err := innerKey(s.inner, "session-windowed", topic, v.Key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(kb)+16)
	copy(out, kb)
	binary.BigEndian.PutUint64(out[len(kb):], uint64(v.Window.End))
	binary.BigEndian.PutUint64(out[len(kb)+8:], uint64(v.Window.Start))
	return out, nil
}

// Deserialize reads key bytes + 8-byte end + 8-byte start.
func (s sessionWindowedSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	var zero Windowed[K]
	if b == nil {
		return zero, fmt.Errorf("session-windowed deserializer, topic %q: %w", topic, serde.ErrNull)
	}
	if len(b) < 16 {
		return zero, fmt.Errorf("session-windowed deserializer, topic %q: need at least 16 bytes for the session end and start, got %d: %w", topic, len(b), serde.ErrBadLength)
	}
	n := len(b) - 16
	end := int64(binary.BigEndian.Uint64(b[n:]))
	start := int64(binary.BigEndian.Uint64(b[n+8:]))
	if start < 0 || end < start {
		return zero, fmt.Errorf("session-windowed deserializer, topic %q: bad session bounds start=%d end=%d: %w", topic, start, end, ErrInvalidWindow)
	}
	k, err := s.inner.Deserialize(topic, b[:n:n])
	if err != nil {
		return zero, fmt.Errorf("session-windowed deserializer, topic %q: key: %w", topic, err)
	}
	return Windowed[K]{Key: k, Window: Window{Start: start, End: end}}, nil
}

// innerKey serializes a windowed key's key and refuses a null result.
func innerKey[K any](inner serde.Serde[K], name, topic string, k K) ([]byte, error) {
	kb, err := inner.Serialize(topic, k)
	if err != nil {
		return nil, fmt.Errorf("%s serializer, topic %q: key: %w", name, topic, err)
	}
	if kb == nil {
		return nil, fmt.Errorf("%s serializer, topic %q: the key serialized to null; windowed keys cannot be null", name, topic)
	}
	return kb, nil
}
