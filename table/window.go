package table

import (
	"iter"
	"math"
)

// WindowEntry is one entry of a WindowStore: the value of Key in the window
// that starts at Start (epoch milliseconds).
type WindowEntry struct {
	Key   []byte
	Start int64
	Value []byte
}

// WindowStore is a byte-oriented windowed state store, the equivalent of
// Kafka Streams' WindowStore<Bytes, byte[]> (without duplicates): it holds at
// most one value per (key, window start).
//
// Semantics follow KeyValueStore: a nil value deletes, an empty value is a
// value, empty keys are rejected with ErrEmptyKey, time bounds are inclusive.
//
// Retention: the store tracks ObservedStreamTime, the largest window start
// ever written (deletes included). An entry is expired when its start is
// <= ObservedStreamTime - Retention; expired entries are never returned, and
// writes to them are skipped and counted (ExpiredWrites, Kafka's
// "Skipping record for expired segment"), not reported as errors. Storage is
// reclaimed segment by segment (see SegmentOptions): a write that advances
// stream time deletes every segment lying entirely before
// segment(ObservedStreamTime - Retention).
//
// Order: FetchRange yields one key's entries by start ascending. FetchAll and
// All yield by segment, then within a segment by the bytes of the key
// followed by the 8-byte start: by key then start, except that a key which
// is a prefix of another may sort after it ("ab" before "a"+start, since
// start bytes are >= 0x80 for starts >= 0). This is the order of Kafka
// Streams' RocksDB window store, whose fetchAll is likewise ordered by
// segment and then by the stored key bytes; it is ordered by start only
// across segments, not within one. (Kafka's in-memory window store orders
// fetchAll by start, then key: eddy's two implementations share one order.)
//
// Iteration and concurrency are as for KeyValueStore: one writer (Put,
// Flush), any number of concurrent readers; an iteration reads one snapshot.
type WindowStore interface {
	// Name returns the store's name.
	Name() string
	// Put stores value for key in the window starting at windowStart; a nil
	// value deletes it. Writes of expired windows are skipped (nil error).
	Put(key []byte, windowStart int64, value []byte) error
	// PutAll writes a batch of entries (a nil Value deletes) in one write
	// to the underlying store; writes of expired windows are skipped. The
	// observed stream time advances to the batch's largest start first.
	PutAll(entries []WindowEntry) error
	// Fetch returns the value of key in the window starting at
	// windowStart, or nil if absent or expired.
	Fetch(key []byte, windowStart int64) ([]byte, error)
	// FetchRange iterates key's windows with from <= start <= to, by start.
	FetchRange(key []byte, from, to int64) iter.Seq2[WindowEntry, error]
	// FetchAll iterates all keys' windows with from <= start <= to, by
	// segment, key and start.
	FetchAll(from, to int64) iter.Seq2[WindowEntry, error]
	// All iterates every live entry, in FetchAll's order.
	All() iter.Seq2[WindowEntry, error]
	// ObservedStreamTime returns the largest window start written, or
	// math.MinInt64 before the first write.
	ObservedStreamTime() int64
	// ExpiredWrites returns how many writes were skipped because their
	// window had expired (since the store was opened).
	ExpiredWrites() int64
	// ApproximateNumEntries returns the number of stored entries,
	// including expired ones whose segment has not been removed yet.
	ApproximateNumEntries() int64
	// Flush makes previous writes durable (a no-op in memory).
	Flush() error
	// Close releases the store; it is idempotent.
	Close() error
}

// windowStore implements WindowStore over a segmented KeyValueStore with
// stored keys [segment(start)][key][start].
type windowStore struct{ g *segmented }

var _ Uncommitted = windowStore{}

// NewInMemoryWindowStore returns an empty in-memory WindowStore called name,
// held in one B-tree ordered like the badger layout.
func NewInMemoryWindowStore(name string, o SegmentOptions) (WindowStore, error) {
	s := NewInMemory(name)
	g, err := newSegmented(s, memViewOf(s), 8, o)
	if err != nil {
		return nil, err
	}
	return windowStore{g}, nil
}

// OpenBadgerWindowStore opens (creating if needed) the persistent
// WindowStore called name in dir, with OpenBadger's memory budget. The
// observed stream time is restored from the stored entries.
func OpenBadgerWindowStore(name, dir string, o SegmentOptions, bo BadgerOptions) (WindowStore, error) {
	g, err := openSegmentedBadger(name, dir, 8, o, bo)
	if err != nil {
		return nil, err
	}
	return windowStore{g}, nil
}

func (w windowStore) Name() string { return w.g.kv.Name() }

func (w windowStore) Put(key []byte, windowStart int64, value []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	return w.g.put(w.g.storeKey(key, windowStart), windowStart, value)
}

// PutAll writes a batch of entries in one write.
func (w windowStore) PutAll(entries []WindowEntry) error {
	kvs := make([]KeyValue, len(entries))
	starts := make([]int64, len(entries))
	for i, e := range entries {
		if len(e.Key) == 0 {
			return ErrEmptyKey
		}
		kvs[i] = KeyValue{Key: w.g.storeKey(e.Key, e.Start), Value: e.Value}
		starts[i] = e.Start
	}
	return w.g.putAll(kvs, starts)
}

func (w windowStore) Fetch(key []byte, windowStart int64) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	return w.g.get(w.g.storeKey(key, windowStart), windowStart)
}

func (w windowStore) entries(seq iter.Seq2[KeyValue, error]) iter.Seq2[WindowEntry, error] {
	return func(yield func(WindowEntry, error) bool) {
		for kv, err := range seq {
			if err != nil {
				yield(WindowEntry{}, err)
				return
			}
			e := WindowEntry{Key: w.g.userKey(kv.Key), Start: w.g.timeOf(kv.Key), Value: kv.Value}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (w windowStore) FetchRange(key []byte, from, to int64) iter.Seq2[WindowEntry, error] {
	if len(key) == 0 {
		return func(yield func(WindowEntry, error) bool) { yield(WindowEntry{}, ErrEmptyKey) }
	}
	return w.entries(w.g.scan(key, from, to, nil))
}

func (w windowStore) FetchAll(from, to int64) iter.Seq2[WindowEntry, error] {
	return w.entries(w.g.scan(nil, from, to, nil))
}

func (w windowStore) All() iter.Seq2[WindowEntry, error] {
	return w.FetchAll(math.MinInt64, math.MaxInt64)
}

func (w windowStore) ObservedStreamTime() int64    { return w.g.observed.Load() }
func (w windowStore) ExpiredWrites() int64         { return w.g.expired.Load() }
func (w windowStore) ApproximateNumEntries() int64 { return w.g.kv.ApproximateNumEntries() }
func (w windowStore) Flush() error                 { return w.g.flush() }
func (w windowStore) Close() error                 { return w.g.close() }

// UncommittedBytes returns the bytes written since the last Flush that a
// transactional badger store holds in memory (0 otherwise).
func (w windowStore) UncommittedBytes() int64 { return w.g.uncommittedBytes() }
