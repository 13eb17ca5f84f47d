// Package stream is the Kafka-Streams-like DSL: typed KStream and KTable
// operators that compile to a Topology, and the low-level Processor API.
//
// It is being built (see the streams issues); today it holds only this
// description.
package stream
