package serde

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Bytes returns the identity serde, Kafka's ByteArraySerializer and
// ByteArrayDeserializer: Serialize returns v itself and Deserialize returns b
// itself, without copying, so the result aliases the caller's buffer. A nil
// v serializes to nil (a tombstone); a nil b deserializes to nil and an
// error wrapping [ErrNull], as for every serde in this package.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type bytesSerde struct{}

// Serialize returns v unchanged.
func (bytesSerde) Serialize(_ string, v []byte) ([]byte, error) { return v, nil }

// Deserialize returns b unchanged, or ErrNull for nil.
func (bytesSerde) Deserialize(topic string, b []byte) ([]byte, error) {
	if b == nil {
		return nil, nullError("bytes", topic)
	}
	return b, nil
}

// String returns the serde of Kafka's StringSerializer and
// StringDeserializer with their default UTF-8 encoding: the bytes of the
// string, no length prefix. Like Kafka's deserializer it does not validate
// UTF-8; invalid sequences are kept as they are in the Go string. The empty
// string serializes to an empty, non-nil slice.
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

// Serialize returns the bytes of v; never nil.
func (stringSerde) Serialize(_ string, v string) ([]byte, error) {
	return append(make([]byte, 0, len(v)), v...), nil
}

// Deserialize returns b as a string, or ErrNull for nil.
func (stringSerde) Deserialize(topic string, b []byte) (string, error) {
	if b == nil {
		return "", nullError("string", topic)
	}
	return string(b), nil
}

// fixed checks b against a fixed width and the null rule.
func fixed(name, topic string, b []byte, width int) error {
	if b == nil {
		return nullError(name, topic)
	}
	if len(b) != width {
		return fmt.Errorf("%s deserializer, topic %q: got %d bytes, want %d: %w", name, topic, len(b), width, ErrBadLength)
	}
	return nil
}

// Int64 returns the serde of Kafka's LongSerializer and LongDeserializer:
// eight bytes, big-endian two's complement. Input of any other length is
// rejected with an error wrapping [ErrBadLength].
func Int64() Serde[int64] { return int64Serde{} }

type int64Serde struct{}

// Serialize encodes v as 8 big-endian bytes.
func (int64Serde) Serialize(_ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
}

// Deserialize decodes 8 big-endian bytes.
func (int64Serde) Deserialize(topic string, b []byte) (int64, error) {
	if err := fixed("int64", topic, b, 8); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// Int32 returns the serde of Kafka's IntegerSerializer and
// IntegerDeserializer: four bytes, big-endian two's complement. Input of any
// other length is rejected with an error wrapping [ErrBadLength].
func Int32() Serde[int32] { return int32Serde{} }

type int32Serde struct{}

// Serialize encodes v as 4 big-endian bytes.
func (int32Serde) Serialize(_ string, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(v)), nil
}

// Deserialize decodes 4 big-endian bytes.
func (int32Serde) Deserialize(topic string, b []byte) (int32, error) {
	if err := fixed("int32", topic, b, 4); err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}

// Int16 returns the serde of Kafka's ShortSerializer and ShortDeserializer:
// two bytes, big-endian two's complement. Input of any other length is
// rejected with an error wrapping [ErrBadLength].
func Int16() Serde[int16] { return int16Serde{} }

type int16Serde struct{}

// Serialize encodes v as 2 big-endian bytes.
func (int16Serde) Serialize(_ string, v int16) ([]byte, error) {
	return binary.BigEndian.AppendUint16(make([]byte, 0, 2), uint16(v)), nil
}

// Deserialize decodes 2 big-endian bytes.
func (int16Serde) Deserialize(topic string, b []byte) (int16, error) {
	if err := fixed("int16", topic, b, 2); err != nil {
		return 0, err
	}
	return int16(binary.BigEndian.Uint16(b)), nil
}

// Float64 returns the serde of Kafka's DoubleSerializer and
// DoubleDeserializer: the IEEE-754 binary64 bits, big-endian, with NaN
// payloads kept as they are (Java's doubleToRawLongBits). Input of any other
// length than 8 is rejected with an error wrapping [ErrBadLength].
func Float64() Serde[float64] { return float64Serde{} }

type float64Serde struct{}

// Serialize encodes the bits of v as 8 big-endian bytes.
func (float64Serde) Serialize(_ string, v float64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(v)), nil
}

// Deserialize decodes 8 big-endian bytes as IEEE-754 binary64.
func (float64Serde) Deserialize(topic string, b []byte) (float64, error) {
	if err := fixed("float64", topic, b, 8); err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

// Float32 returns the serde of Kafka's FloatSerializer and
// FloatDeserializer: the IEEE-754 binary32 bits, big-endian, with NaN
// payloads kept as they are (Java's floatToRawIntBits). Input of any other
// length than 4 is rejected with an error wrapping [ErrBadLength].
func Float32() Serde[float32] { return float32Serde{} }

type float32Serde struct{}

// Serialize encodes the bits of v as 4 big-endian bytes.
func (float32Serde) Serialize(_ string, v float32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), math.Float32bits(v)), nil
}

// Deserialize decodes 4 big-endian bytes as IEEE-754 binary32.
func (float32Serde) Deserialize(topic string, b []byte) (float32, error) {
	if err := fixed("float32", topic, b, 4); err != nil {
		return 0, err
	}
	return math.Float32frombits(binary.BigEndian.Uint32(b)), nil
}
