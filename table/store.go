package table

import (
	"bytes"
	"errors"
	"iter"
)

// ErrEmptyKey is returned when a key is nil or empty: like Kafka Streams,
// stores do not accept null keys.
var ErrEmptyKey = errors.New("table: key must not be empty")

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("table: store is closed")

// KeyValue is one entry of a store.
type KeyValue struct {
	Key   []byte
	Value []byte
}

// KeyValueStore is a byte-oriented key-value state store, the equivalent of
// Kafka Streams' KeyValueStore<Bytes, byte[]>.
//
// Semantics:
//   - A nil value passed to Put or PutAll deletes the key, as a null value
//     does in Kafka Streams. An empty, non-nil value is a stored value.
//   - Get returns nil when the key is absent and a non-nil slice (possibly of
//     length zero) when it is present.
//   - Keys are ordered by unsigned byte comparison (bytes.Compare), as in
//     Kafka Streams' RocksDB stores.
//   - Range(from, to) is inclusive on both ends, as in Kafka Streams. A nil
//     from starts at the first key; a nil to ends at the last key. When from
//     is greater than to the range is empty.
//
// Iteration: Range and All return Go 1.23 iterators (iter.Seq2). Each yields
// a KeyValue and a nil error per entry; if reading fails it yields one zero
// KeyValue with the error and stops. Breaking out of the loop releases the
// iterator's resources, so there is no Close to forget. An iterator reads a
// consistent snapshot taken when the loop starts; writes made during the loop
// are not seen. Yielded slices belong to the caller.
//
// Concurrency: one goroutine (the task's stream thread) writes (Put, PutAll,
// Delete, Flush). Any number of goroutines may concurrently call Get, Range,
// All, ApproximateNumEntries and Name (interactive queries) while that writer
// writes; they see each write either entirely or not at all. Close must not
// race with other calls; calls after Close return ErrClosed (iterators yield
// it).
type KeyValueStore interface {
	// Name returns the store's name.
	Name() string
	// Get returns the value of key, or nil if absent.
	Get(key []byte) ([]byte, error)
	// Put stores value under key; a nil value deletes key.
	Put(key, value []byte) error
	// PutAll applies entries in order, atomically for readers where the
	// implementation can (see each implementation); nil values delete.
	PutAll(entries []KeyValue) error
	// Delete removes key and returns its previous value (nil if absent).
	Delete(key []byte) ([]byte, error)
	// Range iterates keys in [from, to], both inclusive, in key order.
	Range(from, to []byte) iter.Seq2[KeyValue, error]
	// All iterates every entry in key order.
	All() iter.Seq2[KeyValue, error]
	// ApproximateNumEntries returns the number of keys (exact for both
	// implementations in this package).
	ApproximateNumEntries() int64
	// Flush makes previous writes durable (a no-op in memory).
	Flush() error
	// Close releases the store; it is idempotent.
	Close() error
}

// afterTo reports whether key lies beyond to (nil means unbounded).
func afterTo(key, to []byte) bool {
	return to != nil && bytes.Compare(key, to) > 0
}

// emptyRange reports whether [from, to] is empty because from > to.
func emptyRange(from, to []byte) bool {
	return from != nil && to != nil && bytes.Compare(from, to) > 0
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
