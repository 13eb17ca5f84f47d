// Package avro is eddy's Avro serde in the Confluent wire format, governed
// by a Confluent-compatible schema registry.
//
// The smallest use:
//
//	reg, err := avro.NewRegistryClient("http://localhost:8081")
//	// ...
//	s, err := avro.Serde[PageView](reg, pageViewSchema, avro.AutoRegister())
//	b, err := s.Serialize("pageviews", PageView{User: "ann"})
//	v, err := s.Deserialize("pageviews", b)
//
// Values map to Avro as github.com/hamba/avro/v2 maps them: struct fields by
// their avro tag, *T or a union for optional values, and so on.
//
// # Wire format
//
// Every record is one magic byte 0, the schema id as 4 big-endian bytes,
// then the Avro binary encoding of the value (no container file, no
// fingerprint). It is what Confluent's, Redpanda's and franz-go's serdes
// write and read, so eddy pipelines interoperate with them.
//
// # Subject name strategies
//
// Serialize finds the id to write under a subject, named by the
// [SubjectStrategy] option:
//
//   - [TopicName] (default): "<topic>-value", or "<topic>-key" with [IsKey].
//   - [RecordName]: the schema's full name, such as "shop.PageView".
//   - [TopicRecordName]: "<topic>-<full name>".
//
// Without [AutoRegister] the schema must already be registered under the
// subject (Serialize fails with [ErrUnknownSchema] otherwise); with it,
// Serialize registers the schema, which the registry accepts only if it is
// compatible with the subject's earlier versions. The id is asked for once
// per topic and cached.
//
// # Schema evolution
//
// Deserialize reads the id, fetches that writer schema from the registry
// once, and resolves it against the serde's own (reader) schema by Avro's
// rules: fields the writer lacks take the reader's defaults, fields the
// reader lacks are skipped. So a consumer
// on v2 of a schema reads records written with v1 and the other way round,
// as long as the two are compatible; if they are not, the error wraps
// [ErrIncompatible]. Which changes the registry lets through is its
// compatibility mode (BACKWARD by default).
//
// [Generic] reads records of any schema, each with the schema it was
// written with and no reader schema, into maps and slices: for tools that
// print or forward records ("eddy consume --value-format avro" uses it).
//
// # Bad input and limits
//
// A record with the wrong magic byte, an unknown schema id or truncated
// data yields an error wrapping [ErrBadMagic], [ErrUnknownSchema] or
// [ErrTruncated]; bytes after the value wrap serde.ErrTrailingData; a nil
// record (a tombstone) wraps serde.ErrNull, as everywhere in eddy. Serialize
// never writes nil: wrap the serde with serde.Nullable for tombstones.
//
// hamba/avro v2 is archived with decoder advisories left unfixed, so
// decoding runs behind limits: each bytes or string value is at most
// [MaxBytesLen] long (default 1 MiB) and each array at most [MaxArrayLen]
// elements (default 65536); beyond them the error wraps [ErrTooLarge]
// before anything is allocated. Arrays of zero-width items (null, a
// zero-size fixed, a record of only those), whose elements cost no input,
// are refused in both reader and writer schemas ([ErrUnsafeSchema]). A
// decoder panic is recovered and returned as an error. Memory per record
// is then bounded by the input size plus, per level of array nesting, one
// array of MaxArrayLen elements; lower MaxArrayLen for large element types.
//
// # Registry
//
// [Registry] is the small part of the registry API the serde needs.
// [NewRegistryClient] implements it over franz-go's pkg/sr client for any
// Confluent-compatible registry, eddy's own included. Schema references and
// non-Avro schema types are not supported.
package avro
