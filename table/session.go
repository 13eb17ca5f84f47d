package table

import (
	"fmt"
	"iter"
	"math"
)

// SessionEntry is one session of a SessionStore: the value of Key for the
// session window [Start, End] (epoch milliseconds, both inclusive).
type SessionEntry struct {
	Key        []byte
	Start, End int64
	Value      []byte
}

// SessionStore is a byte-oriented session state store, the equivalent of
// Kafka Streams' SessionStore<Bytes, byte[]>: one value per (key, start,
// end).
//
// Semantics follow KeyValueStore: a nil value deletes, an empty value is a
// value, empty keys are rejected with ErrEmptyKey; a session whose end is
// before its start is rejected with an error.
//
// Retention works as for WindowStore, keyed by session end: the store
// tracks ObservedStreamTime, the largest session end written; a session is
// expired when its end is <= ObservedStreamTime - Retention; writes of
// expired sessions are skipped and counted; segments are by session end.
//
// Order: FindSessions and FetchAllSessions yield one key's sessions by end,
// then start, ascending (as Kafka Streams' findSessions does). All yields by
// segment (of the end), then by the bytes of key, end and start, as
// WindowStore.All does.
//
// Iteration and concurrency are as for KeyValueStore.
type SessionStore interface {
	// Name returns the store's name.
	Name() string
	// Put stores value for key's session [start, end]; a nil value
	// removes it. Writes of expired sessions are skipped (nil error).
	Put(key []byte, start, end int64, value []byte) error
	// Remove removes key's session [start, end].
	Remove(key []byte, start, end int64) error
	// Fetch returns the value of key's session [start, end], or nil if
	// absent or expired.
	Fetch(key []byte, start, end int64) ([]byte, error)
	// FindSessions iterates key's sessions with end >= earliestSessionEnd
	// and start <= latestSessionStart, by end then start.
	FindSessions(key []byte, earliestSessionEnd, latestSessionStart int64) iter.Seq2[SessionEntry, error]
	// FetchAllSessions iterates all of key's live sessions.
	FetchAllSessions(key []byte) iter.Seq2[SessionEntry, error]
	// All iterates every live session.
	All() iter.Seq2[SessionEntry, error]
	// ObservedStreamTime returns the largest session end written, or
	// math.MinInt64 before the first write.
	ObservedStreamTime() int64
	// ExpiredWrites returns how many writes were skipped because their
	// session had expired (since the store was opened).
	ExpiredWrites() int64
	// ApproximateNumEntries returns the number of stored sessions,
	// including expired ones whose segment has not been removed yet.
	ApproximateNumEntries() int64
	// Flush makes previous writes durable (a no-op in memory).
	Flush() error
	// Close releases the store; it is idempotent.
	Close() error
}

// sessionStore implements SessionStore over a segmented KeyValueStore with
// stored keys [segment(end)][key][end][start].
type sessionStore struct{ g *segmented }

var _ Uncommitted = sessionStore{}

// NewInMemorySessionStore returns an empty in-memory SessionStore called
// name.
func NewInMemorySessionStore(name string, o SegmentOptions) (SessionStore, error) {
	s := NewInMemory(name)
	g, err := newSegmented(s, memViewOf(s), 16, o)
	if err != nil {
		return nil, err
	}
	return sessionStore{g}, nil
}

// OpenBadgerSessionStore opens (creating if needed) the persistent
// SessionStore called name in dir, with OpenBadger's memory budget.
func OpenBadgerSessionStore(name, dir string, o SegmentOptions, bo BadgerOptions) (SessionStore, error) {
	g, err := openSegmentedBadger(name, dir, 16, o, bo)
	if err != nil {
		return nil, err
	}
	return sessionStore{g}, nil
}

func checkSession(key []byte, start, end int64) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if end < start {
		return fmt.Errorf("table: session end %d before start %d", end, start)
	}
	return nil
}

func (s sessionStore) Name() string { return s.g.kv.Name() }

func (s sessionStore) Put(key []byte, start, end int64, value []byte) error {
	if err := checkSession(key, start, end); err != nil {
		return err
	}
	return s.g.put(s.g.storeKey(key, end, start), end, value)
}

func (s sessionStore) Remove(key []byte, start, end int64) error {
	return s.Put(key, start, end, nil)
}

func (s sessionStore) Fetch(key []byte, start, end int64) ([]byte, error) {
	if err := checkSession(key, start, end); err != nil {
		return nil, err
	}
	return s.g.get(s.g.storeKey(key, end, start), end)
}

// sessionStart returns the start inside a stored key.
func sessionStart(k []byte) int64 { return decTime(k[len(k)-8:]) }

func (s sessionStore) entries(seq iter.Seq2[KeyValue, error]) iter.Seq2[SessionEntry, error] {
	return func(yield func(SessionEntry, error) bool) {
		for kv, err := range seq {
			if err != nil {
				yield(SessionEntry{}, err)
				return
			}
			e := SessionEntry{Key: s.g.userKey(kv.Key), Start: sessionStart(kv.Key), End: s.g.timeOf(kv.Key), Value: kv.Value}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (s sessionStore) FindSessions(key []byte, earliestSessionEnd, latestSessionStart int64) iter.Seq2[SessionEntry, error] {
	if len(key) == 0 {
		return func(yield func(SessionEntry, error) bool) { yield(SessionEntry{}, ErrEmptyKey) }
	}
	keep := func(k []byte) bool { return sessionStart(k) <= latestSessionStart }
	return s.entries(s.g.scan(key, earliestSessionEnd, math.MaxInt64, keep))
}

func (s sessionStore) FetchAllSessions(key []byte) iter.Seq2[SessionEntry, error] {
	return s.FindSessions(key, math.MinInt64, math.MaxInt64)
}

func (s sessionStore) All() iter.Seq2[SessionEntry, error] {
	return s.entries(s.g.scan(nil, math.MinInt64, math.MaxInt64, nil))
}

func (s sessionStore) ObservedStreamTime() int64    { return s.g.observed.Load() }
func (s sessionStore) ExpiredWrites() int64         { return s.g.expired.Load() }
func (s sessionStore) ApproximateNumEntries() int64 { return s.g.kv.ApproximateNumEntries() }
func (s sessionStore) Flush() error                 { return s.g.flush() }
func (s sessionStore) Close() error                 { return s.g.close() }

// UncommittedBytes returns the bytes written since the last Flush that a
// transactional badger store holds in memory (0 otherwise).
func (s sessionStore) UncommittedBytes() int64 { return s.g.uncommittedBytes() }
