package serde

import (
	"errors"
	"fmt"
)

// Serde turns values of type T into record bytes and back, the Go
// counterpart of Kafka's Serializer/Deserializer pair.
//
// The topic argument names the topic the bytes are written to or read from;
// most serdes ignore it, while schema-aware serdes use it to pick a subject.
//
// # Null values and tombstones
//
// In Kafka a null value (a nil []byte here) is a tombstone: it deletes the
// key from a compacted topic and from tables. Every serde in this package
// follows one rule:
//
//   - Deserialize(topic, nil) returns T's zero value and an error wrapping
//     [ErrNull], never a decoded value. Callers that expect tombstones test
//     for it with errors.Is(err, serde.ErrNull), or wrap the serde with
//     [Nullable] to get a nil *T instead.
//   - Serialize returns nil only for a value that is itself nil (a nil
//     []byte for [Bytes]; a nil pointer, map, slice or interface for [JSON]
//     and [Msgpack]; a nil *T for [Nullable]). Every other value, including
//     an empty string or empty slice, serializes to non-nil bytes, so it is
//     never mistaken for a tombstone.
//
// An empty, non-nil []byte is not null: it is an ordinary value that the
// fixed-width serdes reject with [ErrBadLength].
//
// Implementations must be safe for concurrent use by multiple goroutines.
type Serde[T any] interface {
	// Serialize encodes v for topic. A nil result is a tombstone.
	Serialize(topic string, v T) ([]byte, error)
	// Deserialize decodes b read from topic. A nil b yields T's zero value
	// and an error wrapping ErrNull. Errors never panic on bad input.
	Deserialize(topic string, b []byte) (T, error)
}

// ErrNull is wrapped by the error Deserialize returns when given a nil
// []byte, Kafka's null value (a tombstone). Use [Nullable] to map it to a
// nil pointer instead of an error.
var ErrNull = errors.New("serde: null value (tombstone)")

// ErrBadLength is wrapped by the error a fixed-width serde (the Kafka number
// layouts such as [Int64] and [Float32]) returns when the input does not
// have exactly the width the type needs.
var ErrBadLength = errors.New("serde: wrong data length")

// ErrTrailingData is wrapped by the error a self-delimiting format such as
// [Msgpack] returns when bytes remain after one complete value.
var ErrTrailingData = errors.New("serde: trailing data after value")

// nullError reports a nil input to Deserialize.
func nullError(name, topic string) error {
	return fmt.Errorf("%s deserializer, topic %q: %w", name, topic, ErrNull)
}

// funcSerde is the Serde built by Func.
type funcSerde[T any] struct {
	ser func(topic string, v T) ([]byte, error)
	de  func(topic string, b []byte) (T, error)
}

// Func builds a Serde from a serialize and a deserialize function.
//
// The returned serde applies the package's null rule itself: Deserialize
// with a nil []byte returns T's zero value and an error wrapping [ErrNull]
// without calling de, so de only ever sees non-nil input. ser is called for
// every value; it returns nil to write a tombstone. Both functions must be
// safe for concurrent use.
func Func[T any](ser func(topic string, v T) ([]byte, error), de func(topic string, b []byte) (T, error)) Serde[T] {
	return funcSerde[T]{ser: ser, de: de}
}

// Serialize calls the serialize function.
func (f funcSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	return f.ser(topic, v)
}

// Deserialize maps nil to ErrNull, else calls the deserialize function.
func (f funcSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	if b == nil {
		var zero T
		return zero, nullError("func", topic)
	}
	return f.de(topic, b)
}

// nullable is the Serde built by Nullable.
type nullable[T any] struct{ inner Serde[T] }

// Nullable wraps s so that Kafka's null value maps to a nil pointer instead
// of an error: Serialize(topic, nil) returns nil (a tombstone) and
// Deserialize(topic, nil) returns (nil, nil). Non-nil values are handed to
// s unchanged.
func Nullable[T any](s Serde[T]) Serde[*T] {
	return nullable[T]{inner: s}
}

// Serialize returns nil for a nil pointer, else serializes *v with the
// wrapped serde.
func (n nullable[T]) Serialize(topic string, v *T) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return n.inner.Serialize(topic, *v)
}

// Deserialize returns a nil pointer for nil input, else a pointer to the
// value the wrapped serde decodes.
func (n nullable[T]) Deserialize(topic string, b []byte) (*T, error) {
	if b == nil {
		return nil, nil
	}
	v, err := n.inner.Deserialize(topic, b)
	if err != nil {
		return nil, err
	}
	return &v, nil
}
