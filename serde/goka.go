package serde

import (
	"errors"
	"fmt"
	"reflect"
)

// GokaCodec has the method set of goka's Codec interface
// (github.com/lovoo/goka.Codec). Go interfaces are satisfied structurally,
// so every goka.Codec, such as goka's codec.String, is a GokaCodec and the
// codec [ToGoka] returns is accepted wherever goka wants a goka.Codec. This
// package declares its own copy so that it does not link goka and its Kafka
// client into programs that only need serdes.
type GokaCodec interface {
	// Encode turns value into bytes.
	Encode(value any) (data []byte, err error)
	// Decode turns bytes into a value.
	Decode(data []byte) (value any, err error)
}

// ErrWrongType is wrapped by the error the goka adapters ([FromGoka] and
// [ToGoka]) return when a value crossing between goka's untyped interface{}
// values and a typed serde does not have the expected Go type.
var ErrWrongType = errors.New("serde: value of wrong type")

// gokaSerde is the Serde built by FromGoka.
type gokaSerde[T any] struct{ c GokaCodec }

// FromGoka returns a Serde that encodes and decodes with the goka codec c,
// so codecs written for goka processors serve eddy topologies unchanged.
//
// Serialize calls c.Encode(v) and returns its bytes as they are: a codec
// that encodes a value to nil writes a tombstone. Deserialize calls
// c.Decode and asserts the result to T; a result of another type is an
// error wrapping [ErrWrongType] that names the codec's type, the decoded
// type and T. A nil result is accepted as T's zero value when T is a
// pointer, interface, map, slice, channel or function type. Codec errors
// are wrapped with %w.
//
// The package's null rule holds: Deserialize(topic, nil) returns T's zero
// value and an error wrapping [ErrNull] without calling c, as goka itself
// never hands a tombstone to a codec. goka codecs have no notion of topic,
// so the topic argument only appears in error messages.
//
// Wire formats are the codec's, not Kafka's: goka's codec.Int64 writes
// decimal text ("42"), whereas [Int64] writes Kafka's 8 big-endian bytes,
// so the two cannot read each other's records.
func FromGoka[T any](c GokaCodec) Serde[T] { return gokaSerde[T]{c: c} }

// Serialize encodes v with the goka codec.
func (g gokaSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	b, err := g.c.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("goka codec %T, topic %q: encode: %w", g.c, topic, err)
	}
	return b, nil
}

// Deserialize decodes b with the goka codec and asserts the result to T.
func (g gokaSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	var zero T
	if b == nil {
		return zero, nullError(fmt.Sprintf("goka codec %T", g.c), topic)
	}
	v, err := g.c.Decode(b)
	if err != nil {
		return zero, fmt.Errorf("goka codec %T, topic %q: decode: %w", g.c, topic, err)
	}
	if t, ok := v.(T); ok {
		return t, nil
	}
	if v == nil && nilable(reflect.TypeFor[T]()) {
		return zero, nil
	}
	return zero, fmt.Errorf("goka codec %T, topic %q: decoded %s, want %s: %w",
		g.c, topic, typeName(v), reflect.TypeFor[T](), ErrWrongType)
}

// gokaCodec is the codec built by ToGoka.
type gokaCodec[T any] struct{ s Serde[T] }

// ToGoka returns a goka codec (assignable to goka.Codec) that encodes and
// decodes with s, so eddy serdes serve goka processors, views and
// emitters. Both methods call s with the empty topic, since goka codecs are
// not told the topic; topic-dependent serdes, such as those choosing a
// schema-registry subject by topic name, need a fixed topic and do not fit.
//
// Encode asserts value to T; a value of another type is an error wrapping
// [ErrWrongType] that names both types. Encode(nil) returns (nil, nil), a
// tombstone, as goka emits a nil value as a deletion (its Emit and Emitter
// skip the codec for nil). Decode(nil) returns (nil, nil): goka reads a nil
// record as "no value" and never decodes it, so this keeps goka's meaning
// instead of surfacing eddy's [ErrNull]. goka's own codecs are not uniform
// here (codec.String decodes nil to "", codec.Int64 fails). Errors from s
// are returned unchanged.
func ToGoka[T any](s Serde[T]) GokaCodec { return gokaCodec[T]{s: s} }

// Encode serializes value, which must be a T or nil.
func (g gokaCodec[T]) Encode(value any) ([]byte, error) {
	if value == nil {
		return nil, nil
	}
	v, ok := value.(T)
	if !ok {
		return nil, fmt.Errorf("goka adapter: value to encode is %s, want %s: %w",
			typeName(value), reflect.TypeFor[T](), ErrWrongType)
	}
	return g.s.Serialize("", v)
}

// Decode deserializes data into a T, or returns nil for nil data.
func (g gokaCodec[T]) Decode(data []byte) (any, error) {
	if data == nil {
		return nil, nil
	}
	v, err := g.s.Deserialize("", data)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// nilable reports whether t's zero value is nil.
func nilable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func:
		return true
	}
	return false
}

// typeName names the dynamic type of v, or "nil".
func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}
