// Package serde holds serializers and deserializers (serdes): the typed
// [Serde] interface, Kafka's byte layouts for bytes, strings and numbers,
// JSON and msgpack codecs, and adapters to and from goka codecs. Avro in
// the Confluent wire format, governed by a schema registry, is in
// package serde/avro; the windowed-key serdes (Kafka Streams' layouts) are
// window.TimeWindowedSerde and window.SessionWindowedSerde. The guide is
// docs/serdes-and-schemas.md.
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
// # goka codecs
//
// [FromGoka] turns a goka codec (github.com/lovoo/goka.Codec) into a
// Serde[T], and [ToGoka] turns a Serde[T] into a goka codec, so one
// codebase can move between goka and eddy topic by topic. [GokaCodec] has
// goka.Codec's method set, so the two interfaces are interchangeable
// without this package importing goka. goka codecs are not told the topic:
// FromGoka uses it only in error messages and ToGoka passes "". A value of the wrong Go type
// fails with [ErrWrongType]. Nulls keep each side's meaning: FromGoka's
// Deserialize reports nil as [ErrNull] without calling the codec, and
// ToGoka's codec maps nil to nil both ways, goka's deletion.
//
// The bytes are the codec's own: goka's codec.String and codec.Bytes write
// what [String] and [Bytes] write, but goka's codec.Int64 writes decimal
// text ("42") where [Int64] writes Kafka's 8 big-endian bytes, so the two
// cannot read each other's records.
//
// # Bad input
//
// Deserializers return errors for any malformed input and never panic; each
// has a fuzz target with a seed corpus under testdata/fuzz/. [Msgpack]
// checks declared lengths against the input before decoding, so memory use
// stays proportional to the input size.
package serde
