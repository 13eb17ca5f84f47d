package serde

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// isNil reports whether v holds a nil pointer, map, slice, interface, func
// or channel: the values JSON and Msgpack serialize as a tombstone.
func isNil[T any](v T) bool {
	rv := reflect.ValueOf(&v).Elem()
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

// JSON returns a serde that encodes T with encoding/json.
//
// A nil T (nil pointer, map, slice or interface) serializes to nil, a
// tombstone, rather than to the text null. Deserialize rejects anything
// that is not exactly one JSON value (surrounding white space allowed),
// including trailing data, and returns T's zero value with an error wrapping
// [ErrNull] for nil input. Unknown object fields are ignored, as
// encoding/json does by default.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }

type jsonSerde[T any] struct{}

// Serialize marshals v, or returns nil for a nil v.
func (jsonSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	if isNil(v) {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("json serializer, topic %q: %w", topic, err)
	}
	return b, nil
}

// Deserialize unmarshals exactly one JSON value from b.
func (jsonSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nullError("json", topic)
	}
	// json.Unmarshal validates the whole input, so trailing data is an error.
	if err := json.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("json deserializer, topic %q: %w", topic, err)
	}
	return v, nil
}

// Msgpack returns a serde that encodes T with
// github.com/vmihailenco/msgpack/v5, using that library's defaults (struct
// fields by name, the msgpack struct tag).
//
// A nil T (nil pointer, map, slice or interface) serializes to nil, a
// tombstone, rather than to the msgpack nil byte. Deserialize requires
// exactly one msgpack value: bytes after it are rejected with an error
// wrapping [ErrTrailingData]. Before decoding, the input is checked to be
// one well-formed value whose declared lengths are all backed by input bytes
// and whose arrays and maps nest at most 512 deep, so a forged length cannot
// cause a huge allocation: memory use stays proportional to len(b).
func Msgpack[T any]() Serde[T] { return msgpackSerde[T]{} }

type msgpackSerde[T any] struct{}

// Serialize marshals v, or returns nil for a nil v.
func (msgpackSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	if isNil(v) {
		return nil, nil
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("msgpack serializer, topic %q: %w", topic, err)
	}
	return b, nil
}

// Deserialize unmarshals exactly one msgpack value from b.
func (msgpackSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nullError("msgpack", topic)
	}
	end, err := scanMsgpack(b)
	if err != nil {
		return v, fmt.Errorf("msgpack deserializer, topic %q: %w", topic, err)
	}
	if end < len(b) {
		return v, fmt.Errorf("msgpack deserializer, topic %q: %d bytes left: %w", topic, len(b)-end, ErrTrailingData)
	}
	if err := msgpack.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("msgpack deserializer, topic %q: %w", topic, err)
	}
	return v, nil
}
