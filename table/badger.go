package table

import (
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Memory budget of one BadgerStore; see "Memory budget" in the package doc.
const (
	badgerMemTableSize   = 2 << 20
	badgerNumMemtables   = 2
	badgerBlockCacheSize = 4 << 20
	badgerIndexCacheSize = 2 << 20
	badgerValueThreshold = 32 << 10
	badgerValueLogSize   = 16 << 20
	badgerBaseTableSize  = 2 << 20
)

// BadgerOptions configures OpenBadger.
type BadgerOptions struct {
	// Logger receives badger's log lines (info as debug). Nil disables them.
	Logger *slog.Logger
	// SyncWrites makes every write fsync before it returns. Default false:
	// durability comes from the changelog, and Flush syncs at commit.
	SyncWrites bool
}

// BadgerStore is a persistent KeyValueStore backed by badger, sized for one
// instance per task (see the package doc for the memory budget).
//
// Put, Delete and PutAll each commit one badger transaction; PutAll splits
// into several transactions when it exceeds badger's transaction size, so it
// is atomic for readers only up to that size. Iterators read a badger
// snapshot.
type BadgerStore struct {
	name   string
	db     *badger.DB
	count  atomic.Int64
	closed atomic.Bool
	once   sync.Once
	err    error
}

var _ KeyValueStore = (*BadgerStore)(nil)

// badgerOptions returns the memory-bounded badger options for dir.
func badgerOptions(dir string, o BadgerOptions) badger.Options {
	opts := badger.DefaultOptions(dir).
		WithMemTableSize(badgerMemTableSize).
		WithNumMemtables(badgerNumMemtables).
		WithBlockCacheSize(badgerBlockCacheSize).
		WithIndexCacheSize(badgerIndexCacheSize).
		WithValueThreshold(badgerValueThreshold).
		WithValueLogFileSize(badgerValueLogSize).
		WithBaseTableSize(badgerBaseTableSize).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithNumCompactors(2).
		WithCompression(options.None).
		WithDetectConflicts(false).
		WithSyncWrites(o.SyncWrites).
		WithMetricsEnabled(false).
		WithLogger(nil)
	if o.Logger != nil {
		opts = opts.WithLogger(slogBadger{o.Logger.With("component", "badger", "dir", dir)})
	}
	return opts
}

// OpenBadger opens (creating if needed) the badger store called name in dir.
// Only one BadgerStore may have dir open at a time.
func OpenBadger(name, dir string, o BadgerOptions) (*BadgerStore, error) {
	db, err := badger.Open(badgerOptions(dir, o))
	if err != nil {
		return nil, fmt.Errorf("table: open badger store %q in %s: %w", name, dir, err)
	}
	s := &BadgerStore{name: name, db: db}
	// Count keys once at open (keys only, no value reads).
	var n int64
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("table: count keys of store %q: %w", name, err)
	}
	s.count.Store(n)
	return s, nil
}

// Name returns the store's name.
func (s *BadgerStore) Name() string { return s.name }

// Get returns the value of key, or nil if absent.
func (s *BadgerStore) Get(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		v, err = getTxn(txn, key)
		return err
	})
	return v, mapErr(err)
}

// getTxn returns the value of key in txn, nil if absent, non-nil if present.
func getTxn(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func mapErr(err error) error {
	if errors.Is(err, badger.ErrDBClosed) {
		return ErrClosed
	}
	return err
}

// Put stores value under key; a nil value deletes key.
func (s *BadgerStore) Put(key, value []byte) error {
	return s.PutAll([]KeyValue{{Key: key, Value: value}})
}

// apply writes one entry in txn and returns the change in key count.
func apply(txn *badger.Txn, e KeyValue) (int64, error) {
	_, err := txn.Get(e.Key)
	existed := err == nil
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return 0, err
	}
	if e.Value == nil {
		if !existed {
			return 0, nil
		}
		return -1, txn.Delete(e.Key)
	}
	// badger keeps the slices until commit; copy so callers may reuse them.
	if err := txn.Set(clone(e.Key), clone(e.Value)); err != nil {
		return 0, err
	}
	if existed {
		return 0, nil
	}
	return 1, nil
}

// PutAll applies entries in order; nil values delete.
func (s *BadgerStore) PutAll(entries []KeyValue) error {
	for _, e := range entries {
		if len(e.Key) == 0 {
			return ErrEmptyKey
		}
	}
	if s.closed.Load() {
		return ErrClosed
	}
	for len(entries) > 0 {
		txn := s.db.NewTransaction(true)
		var delta int64
		i := 0
		for ; i < len(entries); i++ {
			d, err := apply(txn, entries[i])
			if errors.Is(err, badger.ErrTxnTooBig) && i > 0 {
				break // commit what fits, continue in a new transaction
			}
			if err != nil {
				txn.Discard()
				return mapErr(err)
			}
			delta += d
		}
		if err := txn.Commit(); err != nil {
			return mapErr(err)
		}
		s.count.Add(delta)
		entries = entries[i:]
	}
	return nil
}

// Delete removes key and returns its previous value.
func (s *BadgerStore) Delete(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyKey
	}
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var old []byte
	err := s.db.Update(func(txn *badger.Txn) error {
		var err error
		if old, err = getTxn(txn, key); err != nil || old == nil {
			return err
		}
		return txn.Delete(clone(key))
	})
	if err != nil {
		return nil, mapErr(err)
	}
	if old != nil {
		s.count.Add(-1)
	}
	return old, nil
}

// Range iterates keys in [from, to], both inclusive; nil bounds are open.
func (s *BadgerStore) Range(from, to []byte) iter.Seq2[KeyValue, error] {
	return func(yield func(KeyValue, error) bool) {
		if emptyRange(from, to) {
			return
		}
		if s.closed.Load() {
			yield(KeyValue{}, ErrClosed)
			return
		}
		txn := s.db.NewTransaction(false)
		defer txn.Discard()
		opts := badger.DefaultIteratorOptions
		opts.PrefetchSize = 16
		it := txn.NewIterator(opts)
		defer it.Close()
		if from == nil {
			it.Rewind()
		} else {
			it.Seek(from)
		}
		for ; it.Valid(); it.Next() {
			item := it.Item()
			if afterTo(item.Key(), to) {
				return
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				yield(KeyValue{}, mapErr(err))
				return
			}
			if v == nil {
				v = []byte{}
			}
			if !yield(KeyValue{Key: item.KeyCopy(nil), Value: v}, nil) {
				return
			}
		}
	}
}

// All iterates every entry in key order.
func (s *BadgerStore) All() iter.Seq2[KeyValue, error] { return s.Range(nil, nil) }

// ApproximateNumEntries returns the number of keys, counted at open and
// maintained by every write.
func (s *BadgerStore) ApproximateNumEntries() int64 { return s.count.Load() }

// Flush syncs badger's memtable and value log writes to disk.
func (s *BadgerStore) Flush() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return mapErr(s.db.Sync())
}

// Close closes badger; it is idempotent and returns the first close error.
func (s *BadgerStore) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.err = s.db.Close()
	})
	return s.err
}

// slogBadger adapts a *slog.Logger to badger.Logger.
type slogBadger struct{ l *slog.Logger }

func (b slogBadger) Errorf(f string, a ...any)   { b.l.Error(trim(fmt.Sprintf(f, a...))) }
func (b slogBadger) Warningf(f string, a ...any) { b.l.Warn(trim(fmt.Sprintf(f, a...))) }
func (b slogBadger) Infof(f string, a ...any)    { b.l.Debug(trim(fmt.Sprintf(f, a...))) }
func (b slogBadger) Debugf(f string, a ...any)   { b.l.Debug(trim(fmt.Sprintf(f, a...))) }

func trim(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
