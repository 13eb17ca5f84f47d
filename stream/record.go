package stream

import "fmt"

// Header is one record header, as in Kafka.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record flowing through a topology: the counterpart of
// Kafka Streams' Record<K, V>.
//
// Kafka has null keys and null values; Go's typed K and V do not, so a record
// carries two flags. KeyNull is set on records read with a null key (and
// such records are dropped, and counted, by key-based operators, as in Kafka
// Streams). ValueNull marks a tombstone: a sink writes a null value for it,
// whatever the value serde. Operators that compute a new key or value clear
// the matching flag.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp int64 // epoch milliseconds
	Headers   []Header
	KeyNull   bool
	ValueNull bool
}

// WithValue returns r with value v (ValueNull cleared).
func (r Record[K, V]) WithValue(v V) Record[K, V] {
	r.Value, r.ValueNull = v, false
	return r
}

// WithTimestamp returns r with timestamp ts.
func (r Record[K, V]) WithTimestamp(ts int64) Record[K, V] {
	r.Timestamp = ts
	return r
}

// withKV builds a record of other types carrying r's timestamp and headers.
func withKV[K, V, K2, V2 any](r Record[K, V], k K2, v V2) Record[K2, V2] {
	return Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}
}

// withValue builds a record of another value type with r's key, key flag,
// timestamp and headers.
func withValue[K, V, V2 any](r Record[K, V], v V2) Record[K, V2] {
	return Record[K, V2]{Key: r.Key, KeyNull: r.KeyNull, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}
}

// Change is what flows out of a KTable: the new and the old value of a key,
// Kafka Streams' Change<V>. HasNew false means the key was deleted; HasOld
// false means it did not exist before (or the old value is unknown).
type Change[V any] struct {
	New, Old       V
	HasNew, HasOld bool
}

// TaskID identifies a task: a sub-topology and a partition, printed as
// Kafka Streams prints it ("0_3").
type TaskID struct {
	Subtopology int
	Partition   int32
}

// String returns "subtopology_partition".
func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// RecordMetadata is where the record being processed came from. It is only
// known while processing a record read from a topic; records forwarded by a
// punctuator have none.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    int64
}

// RawRecord is a record as read from or written to a topic: bytes, with its
// position. The runtime and the test driver hand RawRecords to a Task.
type RawRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: null key
	Value     []byte // nil: null value (tombstone)
	Timestamp int64
	Headers   []Header
}
