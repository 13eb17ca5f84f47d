package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/eddy-streams/eddy/table"
)

// StoreKind is the kind of a state store.
type StoreKind int

const (
	// KeyValueKind is a key-value store (table.KeyValueStore).
	KeyValueKind StoreKind = iota
	// WindowKind is a window store (table.WindowStore): one value per
	// (key, window start).
	WindowKind
	// SessionKind is a session store (table.SessionStore): one value per
	// (key, session start, session end).
	SessionKind
)

// String returns "key-value", "window" or "session".
func (k StoreKind) String() string {
	switch k {
	case KeyValueKind:
		return "key-value"
	case WindowKind:
		return "window"
	case SessionKind:
		return "session"
	}
	return "StoreKind(" + strconv.Itoa(int(k)) + ")"
}

// StateStore is what every kind of store has in common: table's
// KeyValueStore, WindowStore and SessionStore all implement it. A task's
// Env opens stores of the kind StoreInfo.Kind asks for.
type StateStore interface {
	Name() string
	Flush() error
	Close() error
	ApproximateNumEntries() int64
}

// windowChangelogExtra is how much longer a window or session store's
// changelog keeps records than the store itself: Kafka Streams'
// windowstore.changelog.additional.retention.ms default, one day.
const windowChangelogExtra = 24 * time.Hour

// OpenStateStore opens the store info describes: in memory, or persistent
// in dir with badger options bo. The runtime uses it for every task store.
func OpenStateStore(info StoreInfo, dir string, bo table.BadgerOptions) (StateStore, error) {
	so := table.SegmentOptions{Retention: info.Retention, SegmentInterval: info.SegmentInterval}
	switch info.Kind {
	case KeyValueKind:
		if info.InMemory {
			return table.NewInMemory(info.Name), nil
		}
		return table.OpenBadger(info.Name, dir, bo)
	case WindowKind:
		if info.InMemory {
			return table.NewInMemoryWindowStore(info.Name, so)
		}
		return table.OpenBadgerWindowStore(info.Name, dir, so, bo)
	case SessionKind:
		if info.InMemory {
			return table.NewInMemorySessionStore(info.Name, so)
		}
		return table.OpenBadgerSessionStore(info.Name, dir, so, bo)
	}
	return nil, fmt.Errorf("stream: store %s: unknown kind %v", info.Name, info.Kind)
}

// ErrBadChangelogKey is returned for a window or session changelog record
// whose key is too short for its layout.
var ErrBadChangelogKey = errors.New("stream: changelog key too short for a window or session store")

// WindowStoreKey returns the key of a window store entry as it appears in
// the store's changelog and record cache: Kafka Streams' window store key
// layout, key bytes + 8-byte big-endian window start + 4-byte sequence
// number (always 0: eddy's window stores hold no duplicates).
func WindowStoreKey(key []byte, start int64) []byte {
	b := make([]byte, len(key)+12)
	copy(b, key)
	binary.BigEndian.PutUint64(b[len(key):], uint64(start))
	return b
}

// SplitWindowStoreKey splits a WindowStoreKey.
func SplitWindowStoreKey(b []byte) (key []byte, start int64, err error) {
	if len(b) < 13 {
		return nil, 0, ErrBadChangelogKey
	}
	n := len(b) - 12
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n:])), nil
}

// SessionStoreKey returns the key of a session store entry as it appears
// in the store's changelog and record cache: Kafka Streams' session key
// layout, key bytes + 8-byte big-endian session end + 8-byte start.
func SessionStoreKey(key []byte, start, end int64) []byte {
	b := make([]byte, len(key)+16)
	copy(b, key)
	binary.BigEndian.PutUint64(b[len(key):], uint64(end))
	binary.BigEndian.PutUint64(b[len(key)+8:], uint64(start))
	return b
}

// SplitSessionStoreKey splits a SessionStoreKey.
func SplitSessionStoreKey(b []byte) (key []byte, start, end int64, err error) {
	if len(b) < 17 {
		return nil, 0, 0, ErrBadChangelogKey
	}
	n := len(b) - 16
	return b[:n:n], int64(binary.BigEndian.Uint64(b[n+8:])), int64(binary.BigEndian.Uint64(b[n:])), nil
}

// RestoreChangelog applies changelog records, in order, to a store of
// info's kind: what the runtime does to restore a store and to keep a
// standby replica. Values are stored with their record's timestamp (see
// DecodeStoreValue); a null value deletes.
func RestoreChangelog(info StoreInfo, s StateStore, recs []RawRecord) error {
	switch st := s.(type) {
	case table.KeyValueStore:
		kvs := make([]table.KeyValue, len(recs))
		for i, r := range recs {
			kvs[i] = ChangelogEntry(r)
		}
		return st.PutAll(kvs)
	case table.WindowStore:
		batch := make([]table.WindowEntry, len(recs))
		for i, r := range recs {
			k, start, err := SplitWindowStoreKey(r.Key)
			if err != nil {
				return fmt.Errorf("store %s: offset %d: %w", info.Name, r.Offset, err)
			}
			batch[i] = table.WindowEntry{Key: k, Start: start, Value: encodeStoreValue(r.Value, r.Timestamp)}
		}
		if err := st.PutAll(batch); err != nil {
			return fmt.Errorf("store %s: %w", info.Name, err)
		}
		return nil
	case table.SessionStore:
		for _, r := range recs {
			k, start, end, err := SplitSessionStoreKey(r.Key)
			if err != nil {
				return fmt.Errorf("store %s: offset %d: %w", info.Name, r.Offset, err)
			}
			if end < start {
				return fmt.Errorf("store %s: offset %d: session end %d before start %d", info.Name, r.Offset, end, start)
			}
			if err := st.Put(k, start, end, encodeStoreValue(r.Value, r.Timestamp)); err != nil {
				return fmt.Errorf("store %s: %w", info.Name, err)
			}
		}
		return nil
	}
	return fmt.Errorf("stream: store %s: cannot restore a %T", info.Name, s)
}
