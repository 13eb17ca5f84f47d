package table

import (
	"bytes"
	"iter"
	"sync"

	"github.com/google/btree"
)

// InMemoryStore is a KeyValueStore held in a B-tree in memory, the
// equivalent of Kafka Streams' in-memory key-value store. It is not durable:
// its contents come back only by restoring from the changelog.
//
// Writes take a lock; iterators run over a copy-on-write clone of the tree,
// so a long Range never blocks the writer. PutAll is atomic for readers.
type InMemoryStore struct {
	name   string
	mu     sync.RWMutex
	tree   *btree.BTreeG[KeyValue]
	closed bool
}

var _ KeyValueStore = (*InMemoryStore)(nil)

func lessKV(a, b KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }

// NewInMemory returns an empty in-memory store called name.
func NewInMemory(name string) *InMemoryStore {
	return &InMemoryStore{name: name, tree: btree.NewG(32, lessKV)}
}

// Name returns the store's name.
func (s *InMemoryStore) Name() string { return s.name }

// Get returns a copy of the value of key, or nil if absent.
func (s *InMemoryStore) Get(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	kv, ok := s.tree.Get(KeyValue{Key: key})
	if !ok {
		return nil, nil
	}
	return append(make([]byte, 0, len(kv.Value)), kv.Value...), nil
}

// Put stores a copy of value under key; a nil value deletes key.
func (s *InMemoryStore) Put(key, value []byte) error {
	return s.PutAll([]KeyValue{{Key: key, Value: value}})
}

// PutAll applies entries in order under one lock.
func (s *InMemoryStore) PutAll(entries []KeyValue) error {
	for _, e := range entries {
		if len(e.Key) == 0 {
			return ErrEmptyKey
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, e := range entries {
		if e.Value == nil {
			s.tree.Delete(KeyValue{Key: e.Key})
			continue
		}
		s.tree.ReplaceOrInsert(KeyValue{Key: clone(e.Key), Value: append(make([]byte, 0, len(e.Value)), e.Value...)})
	}
	return nil
}

// Delete removes key and returns its previous value.
func (s *InMemoryStore) Delete(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	old, ok := s.tree.Delete(KeyValue{Key: key})
	if !ok {
		return nil, nil
	}
	return old.Value, nil
}

// snapshot returns a copy-on-write clone of the tree.
func (s *InMemoryStore) snapshot() (*btree.BTreeG[KeyValue], error) {
	// Clone mutates internal copy-on-write state, so it needs the write lock.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return s.tree.Clone(), nil
}

// Range iterates keys in [from, to], both inclusive; nil bounds are open.
func (s *InMemoryStore) Range(from, to []byte) iter.Seq2[KeyValue, error] {
	return func(yield func(KeyValue, error) bool) {
		if emptyRange(from, to) {
			return
		}
		t, err := s.snapshot()
		if err != nil {
			yield(KeyValue{}, err)
			return
		}
		visit := func(kv KeyValue) bool {
			if afterTo(kv.Key, to) {
				return false
			}
			return yield(KeyValue{Key: clone(kv.Key), Value: clone(kv.Value)}, nil)
		}
		if from == nil {
			t.Ascend(visit)
		} else {
			t.AscendGreaterOrEqual(KeyValue{Key: from}, visit)
		}
	}
}

// All iterates every entry in key order.
func (s *InMemoryStore) All() iter.Seq2[KeyValue, error] { return s.Range(nil, nil) }

// ApproximateNumEntries returns the exact number of keys.
func (s *InMemoryStore) ApproximateNumEntries() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(s.tree.Len())
}

// Flush does nothing: an in-memory store has nothing to make durable.
func (s *InMemoryStore) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Close drops the contents; it is idempotent.
func (s *InMemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.tree = btree.NewG(2, lessKV)
	return nil
}
