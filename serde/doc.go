// Package serde holds serializers and deserializers (serdes): the typed
// [Serde] interface, Kafka's byte layouts for bytes, strings and numbers,
// and JSON and msgpack codecs. Avro in the Confluent wire format, a
// windowed-key serde and goka codec adapters come next (see the serdes
// issue).
//
// # Use
//
//	s := serde.JSON[PageView]()
//	b, err := s.Serialize("pageviews", v)
//	v, err = s.Deserialize("pageviews", b)
//
// # Kafka layouts
//
// [Bytes], [String], [Int64], [Int32], [Int16], [Float64] and [Float32]
// produce the same bytes as Kafka's ByteArray, String (UTF-8), Long,
// Integer, Short, Double and Float serializers, so eddy applications share
// topics with Java ones. Numbers are big-endian; input of the wrong width
// fails with [ErrBadLength].
//
// # Null values
//
// A nil []byte is Kafka's null, a tombstone. Deserialize on nil returns the
// zero value and an error wrapping [ErrNull]; [Nullable] maps it to a nil
// pointer instead. Only nil values serialize to nil. See [Serde] for the
// full rule.
//
// # Bad input
//
// Deserializers return errors for any malformed input and never panic; each
// has a fuzz target with a seed corpus under testdata/fuzz/. [Msgpack]
// checks declared lengths against the input before decoding, so memory use
// stays proportional to the input size.
package serde
