package table

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/google/btree"
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
	// Transactional holds every write in memory until Flush, for
	// exactly-once processing (the idea of Kafka's KIP-892). Put, PutAll
	// and Delete, and the deletes of expired segments in window and session
	// stores, go to an in-memory overlay instead of badger; reads see the
	// overlay over badger. Flush writes the overlay to badger and syncs;
	// Close without Flush discards it, which is the rollback. Default
	// false: every write goes to badger at once. See "Transactional stores"
	// in the package doc.
	Transactional bool
}

// Uncommitted is implemented by stores that hold writes in memory until
// Flush: the badger stores opened with BadgerOptions.Transactional, and
// the window and session stores built on them. UncommittedBytes returns
// the approximate size, in bytes of keys and values, of the writes not yet
// flushed (0 when the store is not transactional), so a runtime can commit
// early when they grow large. It is safe to call concurrently with the
// writer.
type Uncommitted interface {
	UncommittedBytes() int64
}

// BadgerStore is a persistent KeyValueStore backed by badger, sized for one
// instance per task (see the package doc for the memory budget).
//
// By default Put, Delete and PutAll each commit one badger transaction;
// PutAll splits into several transactions when it exceeds badger's
// transaction size, so it is atomic for readers only up to that size.
// Iterators read a badger snapshot.
//
// A transactional store (BadgerOptions.Transactional) keeps its writes in
// an in-memory overlay until Flush, and Close without Flush discards them;
// there PutAll is atomic for readers whatever its size. See "Transactional
// stores" in the package doc.
type BadgerStore struct {
	name  string
	db    *badger.DB
	count atomic.Int64
	// countStale (transactional stores) is set by writes; countMu and
	// counted pace the recounts of ApproximateNumEntries.
	countStale atomic.Bool
	countMu    sync.Mutex
	counted    time.Time
	counting   bool           // a background recount runs
	bg         sync.WaitGroup // the background recount, waited for by Close
	closed     atomic.Bool
	once       sync.Once
	err        error

	// Transactional stores only. txn never changes after open. mu guards
	// the overlay pointer and the tree: readers Get under the read lock and
	// snapshot (Clone) under the write lock, since Clone changes the tree's
	// copy-on-write state; the writer reads under the read lock and
	// changes under the write lock. A nil Value in ov is a pending delete.
	txn     bool
	mu      sync.RWMutex
	ov      *btree.BTreeG[KeyValue]
	pending atomic.Int64 // bytes of keys and values in ov
}

var (
	_ KeyValueStore = (*BadgerStore)(nil)
	_ Uncommitted   = (*BadgerStore)(nil)
)

func newOverlay() *btree.BTreeG[KeyValue] { return btree.NewG(32, lessKV) }

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
	s := &BadgerStore{name: name, db: db, txn: o.Transactional}
	if s.txn {
		// Counted when first asked (see ApproximateNumEntries): opening
		// stays cheap for a task restarting after a crash.
		s.ov = newOverlay()
		s.countStale.Store(true)
		return s, nil
	}
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
	if s.txn {
		s.mu.RLock()
		kv, ok := s.ov.Get(KeyValue{Key: key})
		s.mu.RUnlock()
		if ok {
			return clone(kv.Value), nil // nil for a pending delete
		}
		// Not in the overlay: badger holds the value. A Flush between the
		// two reads writes only keys that were in the overlay, so the
		// value read is the key's value at one moment of this call.
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
	if s.txn {
		return s.putOverlay(entries)
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
	if s.txn {
		old, err := s.Get(key)
		if err != nil || old == nil {
			return nil, err
		}
		s.mu.Lock()
		s.setOverlay(KeyValue{Key: clone(key)})
		s.mu.Unlock()
		s.count.Add(-1)
		return old, nil
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
		if s.txn {
			s.rangeOverlay(from, to, yield)
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
//
// A transactional store does not read badger on every write to keep the
// count. After writes it recounts its keys (keys only, overlay over
// badger) in the background, at most every RecountInterval, and returns
// the last count meanwhile (0 until the first count after open).
func (s *BadgerStore) ApproximateNumEntries() int64 {
	if !s.txn || !s.countStale.Load() {
		return s.count.Load()
	}
	if RecountInterval == 0 {
		// Synchronous (tests).
		s.countMu.Lock()
		defer s.countMu.Unlock()
		s.recount()
		return s.count.Load()
	}
	s.countMu.Lock()
	defer s.countMu.Unlock()
	if s.counting || time.Since(s.counted) < RecountInterval || s.closed.Load() {
		return s.count.Load()
	}
	s.counting = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.recount()
		s.countMu.Lock()
		s.counting, s.counted = false, time.Now()
		s.countMu.Unlock()
	}()
	return s.count.Load()
}

// recount counts the keys; writes made while it counts mark the count
// stale again.
func (s *BadgerStore) recount() {
	s.countStale.Store(false)
	n, err := s.countKeys()
	if err != nil {
		s.countStale.Store(true)
		return
	}
	s.count.Store(n)
}

// RecountInterval bounds how often a transactional BadgerStore recounts
// its keys for ApproximateNumEntries; zero recounts synchronously at every
// call after writes.
var RecountInterval = 10 * time.Second

// countKeys counts the keys readers see (keys only).
func (s *BadgerStore) countKeys() (int64, error) {
	v, err := s.view()
	if err != nil {
		return 0, err
	}
	defer v.release()
	var n int64
	v.merge(nil, nil, func([]byte, func() ([]byte, error)) bool {
		n++
		return true
	})
	return n, nil
}

// Flush syncs badger's memtable and value log writes to disk.
//
// A transactional store first writes its overlay to badger (in as many
// badger transactions as it needs), syncs, then empties the overlay.
// Readers see the same contents throughout. If writing fails, Flush
// returns the error and the overlay stays; badger then holds part of it.
func (s *BadgerStore) Flush() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.txn {
		return s.flushOverlay()
	}
	return mapErr(s.db.Sync())
}

// Close closes badger; it is idempotent and returns the first close error.
// A transactional store discards the writes made since the last Flush:
// Close without Flush is the rollback.
func (s *BadgerStore) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.bg.Wait()
		s.err = s.db.Close()
		if s.txn {
			s.mu.Lock()
			s.ov = newOverlay()
			s.mu.Unlock()
			s.pending.Store(0)
		}
	})
	return s.err
}

// UncommittedBytes returns the size of the keys and values written since
// the last Flush, counting a delete as its key (0 unless transactional).
func (s *BadgerStore) UncommittedBytes() int64 { return s.pending.Load() }

// setOverlay puts e (owned by the overlay from now on) into the overlay and
// updates the pending bytes; the caller holds s.mu for writing.
func (s *BadgerStore) setOverlay(e KeyValue) {
	n := int64(len(e.Key) + len(e.Value))
	if old, ok := s.ov.ReplaceOrInsert(e); ok {
		n -= int64(len(old.Key) + len(old.Value))
	}
	s.pending.Add(n)
}

// putOverlay is PutAll for a transactional store: the entries go into the
// overlay under one lock, so readers see the batch entirely or not at all.
// Nothing is read: the key count is refreshed lazily (see
// ApproximateNumEntries), so a write costs an overlay insert only.
func (s *BadgerStore) putOverlay(entries []KeyValue) error {
	s.mu.Lock()
	for _, e := range entries {
		s.setOverlay(KeyValue{Key: clone(e.Key), Value: clone(e.Value)})
	}
	s.mu.Unlock()
	s.countStale.Store(true)
	return nil
}

// deleteOverlay records deletes of keys that readers currently see (the
// caller read them from a snapshot): no existence checks.
func (s *BadgerStore) deleteOverlay(keys [][]byte) {
	s.mu.Lock()
	for _, k := range keys {
		s.setOverlay(KeyValue{Key: clone(k)})
	}
	s.mu.Unlock()
	s.countStale.Store(true)
}

// flushOverlay writes the overlay to badger as blind sets and deletes (the
// key count already follows the overlay), syncs, then empties the overlay.
// Only the writer changes the overlay, so it is read through a snapshot
// without holding the lock while badger writes.
func (s *BadgerStore) flushOverlay() error {
	s.mu.Lock()
	snap := s.ov.Clone()
	s.mu.Unlock()
	if snap.Len() > 0 {
		// A WriteBatch commits a new transaction whenever one would
		// exceed badger's transaction size.
		wb := s.db.NewWriteBatch()
		defer wb.Cancel()
		var err error
		snap.Ascend(func(e KeyValue) bool {
			if e.Value == nil {
				err = wb.Delete(e.Key)
			} else {
				err = wb.Set(e.Key, e.Value)
			}
			return err == nil
		})
		if err == nil {
			err = wb.Flush()
		}
		if err != nil {
			return fmt.Errorf("table: flush store %q: %w", s.name, mapErr(err))
		}
	}
	if err := s.db.Sync(); err != nil {
		return mapErr(err)
	}
	// Badger now holds what the overlay shadowed: readers see the same
	// contents with or without it.
	s.mu.Lock()
	s.ov = newOverlay()
	s.mu.Unlock()
	s.pending.Store(0)
	return nil
}

// view returns a read snapshot: a badger transaction and, for a
// transactional store, a clone of the overlay, taken together under the
// lock so that no Flush empties the overlay between the two. (While a
// Flush writes badger the overlay still holds every key it writes, so
// overlay over badger reads the same at any point of it.)
func (s *BadgerStore) view() (badgerView, error) {
	if s.closed.Load() {
		return badgerView{}, ErrClosed
	}
	if !s.txn {
		return badgerView{txn: s.db.NewTransaction(false)}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return badgerView{txn: s.db.NewTransaction(false), ov: s.ov.Clone()}, nil
}

// rangeOverlay is Range for a transactional store.
func (s *BadgerStore) rangeOverlay(from, to []byte, yield func(KeyValue, error) bool) {
	v, err := s.view()
	if err != nil {
		yield(KeyValue{}, err)
		return
	}
	defer v.release()
	v.merge(from, to, func(k []byte, val func() ([]byte, error)) bool {
		if afterTo(k, to) {
			return false
		}
		value, err := val()
		if err != nil {
			yield(KeyValue{}, mapErr(err))
			return false
		}
		return yield(KeyValue{Key: bytes.Clone(k), Value: value}, nil)
	})
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
