// Package serde holds serializers and deserializers: bytes, strings, Kafka
// number layouts, JSON, msgpack, Avro in the Confluent wire format, and goka
// codec adapters.
//
// It is being built (see the serdes issue); today it holds only this
// description.
package serde
