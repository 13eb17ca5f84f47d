package table

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"iter"
	"math"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/google/btree"
)

// SegmentOptions configures the retention of a WindowStore or SessionStore.
type SegmentOptions struct {
	// Retention is how long, in stream time, an entry stays: an entry whose
	// time t (window start, or session end) satisfies
	// t <= ObservedStreamTime - Retention is expired. Must not be negative.
	// Millisecond resolution.
	Retention time.Duration
	// SegmentInterval is the width of a segment, the unit in which expired
	// entries are removed. Zero means Kafka Streams' default,
	// max(Retention/2, 60 s). Otherwise at least 1 ms.
	SegmentInterval time.Duration
}

// noTime marks an unknown observed stream time (no write yet).
const noTime = math.MinInt64

// segmented is the core shared by the window and session stores: entries
// live in a KeyValueStore under [segment id][user key][suffix], where the
// suffix is suffixLen bytes and starts with the 8-byte segment time. Times
// and segment ids are encoded big-endian with the sign bit flipped, so byte
// order is numeric order, negative values included.
type segmented struct {
	kv        KeyValueStore
	view      func() (segView, error)
	suffixLen int
	retention int64 // ms
	interval  int64 // ms
	observed  atomic.Int64
	expired   atomic.Int64
	closed    atomic.Bool
	once      sync.Once
	err       error
	// dropBelow is the segment id below which every segment is removed;
	// only the writer touches it.
	dropBelow int64
}

func newSegmented(kv KeyValueStore, view func() (segView, error), suffixLen int, o SegmentOptions) (*segmented, error) {
	if o.Retention < 0 {
		return nil, fmt.Errorf("table: store %q: negative retention %v", kv.Name(), o.Retention)
	}
	ret := o.Retention.Milliseconds()
	iv := o.SegmentInterval.Milliseconds()
	if o.SegmentInterval == 0 {
		iv = max(ret/2, 60_000)
	}
	if iv < 1 {
		return nil, fmt.Errorf("table: store %q: segment interval %v below 1 ms", kv.Name(), o.SegmentInterval)
	}
	g := &segmented{kv: kv, view: view, suffixLen: suffixLen, retention: ret, interval: iv, dropBelow: noTime}
	g.observed.Store(noTime)
	return g, nil
}

func encTime(b []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t)^(1<<63))
}

func decTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// segID returns the segment of time t (floor division).
func (g *segmented) segID(t int64) int64 {
	s := t / g.interval
	if t%g.interval < 0 {
		s--
	}
	return s
}

// liveFrom returns the smallest live time for observed stream time obs.
func (g *segmented) liveFrom(obs int64) int64 {
	if obs == noTime || obs < math.MinInt64+g.retention {
		return math.MinInt64
	}
	return obs - g.retention + 1
}

// storeKey builds [segment][key][suffix...].
func (g *segmented) storeKey(key []byte, t int64, rest ...int64) []byte {
	b := make([]byte, 0, 8+len(key)+8+8*len(rest))
	b = encTime(b, g.segID(t))
	b = append(b, key...)
	b = encTime(b, t)
	for _, r := range rest {
		b = encTime(b, r)
	}
	return b
}

// userKey returns the user key inside a stored key.
func (g *segmented) userKey(k []byte) []byte { return k[8 : len(k)-g.suffixLen] }

// timeOf returns the segment time inside a stored key.
func (g *segmented) timeOf(k []byte) int64 { return decTime(k[len(k)-g.suffixLen:]) }

// put writes (or, for a nil value, deletes) the entry with segment time t,
// advancing the observed stream time and removing expired segments. Writes
// of expired entries are counted and skipped.
func (g *segmented) put(k []byte, t int64, v []byte) error {
	if g.closed.Load() {
		return ErrClosed
	}
	obs := max(g.observed.Load(), t)
	g.observed.Store(obs)
	if t < g.liveFrom(obs) {
		g.expired.Add(1)
		return g.expire()
	}
	if err := g.kv.Put(k, v); err != nil {
		return err
	}
	return g.expire()
}

// putAll is put for a batch: one write to the underlying store.
func (g *segmented) putAll(kvs []KeyValue, times []int64) error {
	if g.closed.Load() {
		return ErrClosed
	}
	obs := g.observed.Load()
	for _, t := range times {
		obs = max(obs, t)
	}
	g.observed.Store(obs)
	lf := g.liveFrom(obs)
	live := kvs[:0:0]
	for i, kv := range kvs {
		if times[i] < lf {
			g.expired.Add(1)
			continue
		}
		live = append(live, kv)
	}
	if len(live) > 0 {
		if err := g.kv.PutAll(live); err != nil {
			return err
		}
	}
	return g.expire()
}

// get returns the value stored under k if its time t is live.
func (g *segmented) get(k []byte, t int64) ([]byte, error) {
	if g.closed.Load() {
		return nil, ErrClosed
	}
	obs := g.observed.Load()
	if t < g.liveFrom(obs) || t > obs {
		return nil, nil // expired, or newer than anything written
	}
	return g.kv.Get(k)
}

// expire removes every segment that holds only expired times: segments
// below segID(observed - retention), as Kafka Streams does. It deletes the
// segments' keys in batches; readers keep their snapshots.
func (g *segmented) expire() error {
	lf := g.liveFrom(g.observed.Load())
	if lf == math.MinInt64 {
		return nil
	}
	minLive := g.segID(lf - 1)
	if minLive <= g.dropBelow {
		return nil
	}
	v, err := g.view()
	if err != nil {
		return err
	}
	defer v.release()
	bound := encTime(nil, minLive)
	var batch [][]byte
	var werr error
	// Keys below dropBelow are gone already: start there, not at the first
	// key, so the deletes' tombstones are not walked again.
	var from []byte
	if g.dropBelow != noTime {
		from = encTime(nil, g.dropBelow)
	}
	err = v.ascend(from, func(k []byte, _ func() ([]byte, error)) bool {
		if bytes.Compare(k, bound) >= 0 {
			return false
		}
		batch = append(batch, bytes.Clone(k))
		if len(batch) == 1024 {
			werr = g.deleteKeys(batch)
			batch = batch[:0]
		}
		return werr == nil
	})
	if err == nil {
		err = werr
	}
	if err == nil && len(batch) > 0 {
		err = g.deleteKeys(batch)
	}
	if err != nil {
		return err
	}
	g.dropBelow = minLive
	return nil
}

// deleteKeys deletes stored keys that exist (the writer read them from a
// snapshot and nothing else deletes). badger gets a WriteBatch of blind
// deletes: about 2.8 µs a key, 3 times faster than transactions that read
// each key first (BenchmarkWindowStoreExpire). A transactional store gets
// them in its overlay, as blind deletes too.
func (g *segmented) deleteKeys(keys [][]byte) error {
	b, ok := g.kv.(*BadgerStore)
	if !ok {
		kvs := make([]KeyValue, len(keys))
		for i, k := range keys {
			kvs[i].Key = k
		}
		return g.kv.PutAll(kvs)
	}
	if b.closed.Load() {
		return ErrClosed
	}
	if b.txn {
		b.deleteOverlay(keys)
		return nil
	}
	wb := b.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return mapErr(err)
		}
	}
	if err := wb.Flush(); err != nil {
		return mapErr(err)
	}
	b.count.Add(-int64(len(keys)))
	return nil
}

// scan yields the live stored entries with time in [lo, hi], segment by
// segment, from one snapshot. With a non-nil key only that key's entries are
// visited (keyed ranges within each segment); keep filters further on the
// stored key before its value is read.
func (g *segmented) scan(key []byte, lo, hi int64, keep func(k []byte) bool) iter.Seq2[KeyValue, error] {
	return func(yield func(KeyValue, error) bool) {
		if key != nil && len(key) == 0 {
			yield(KeyValue{}, ErrEmptyKey)
			return
		}
		if g.closed.Load() {
			yield(KeyValue{}, ErrClosed)
			return
		}
		v, err := g.view()
		if err != nil {
			yield(KeyValue{}, err)
			return
		}
		defer v.release()
		obs := g.observed.Load()
		if obs == noTime {
			return
		}
		lo, hi = max(lo, g.liveFrom(obs)), min(hi, obs)
		if lo > hi {
			return
		}
		last := g.segID(hi)
		cur := g.segID(lo)
		stopped := false
		for {
			var from, bound []byte
			from = encTime(nil, cur)
			if key != nil {
				from = encTime(append(from, key...), lo)
				bound = encTime(append(encTime(nil, cur), key...), hi)
				bound = append(bound, bytes.Repeat([]byte{0xff}, g.suffixLen-8)...)
			}
			next := int64(noTime)
			err := v.ascend(from, func(k []byte, val func() ([]byte, error)) bool {
				if s := decTime(k); s != cur {
					if s <= last {
						next = s
					}
					return false
				}
				if bound != nil && bytes.Compare(k, bound) > 0 {
					if cur < last {
						next = cur + 1
					}
					return false
				}
				if key != nil && !bytes.Equal(g.userKey(k), key) {
					return true
				}
				if t := g.timeOf(k); t < lo || t > hi {
					return true
				}
				if keep != nil && !keep(k) {
					return true
				}
				value, err := val()
				if err != nil {
					stopped = true
					yield(KeyValue{}, mapErr(err))
					return false
				}
				if !yield(KeyValue{Key: bytes.Clone(k), Value: value}, nil) {
					stopped = true
					return false
				}
				return true
			})
			if err != nil {
				yield(KeyValue{}, mapErr(err))
				return
			}
			if stopped || next == noTime {
				return
			}
			cur = next
		}
	}
}

// close closes the underlying store once.
func (g *segmented) close() error {
	g.once.Do(func() {
		g.closed.Store(true)
		g.err = g.kv.Close()
	})
	return g.err
}

// uncommittedBytes returns the underlying store's UncommittedBytes, or 0.
func (g *segmented) uncommittedBytes() int64 {
	if u, ok := g.kv.(Uncommitted); ok {
		return u.UncommittedBytes()
	}
	return 0
}

func (g *segmented) flush() error {
	if g.closed.Load() {
		return ErrClosed
	}
	return g.kv.Flush()
}

// segView is one read snapshot of the underlying store.
type segView interface {
	// ascend visits keys >= from (nil: the first key) in order until fn
	// returns false; val reads the current key's value (a copy, non-nil).
	ascend(from []byte, fn func(k []byte, val func() ([]byte, error)) bool) error
	release()
}

type memView struct{ t *btree.BTreeG[KeyValue] }

func (m memView) ascend(from []byte, fn func([]byte, func() ([]byte, error)) bool) error {
	visit := func(kv KeyValue) bool {
		return fn(kv.Key, func() ([]byte, error) { return append(make([]byte, 0, len(kv.Value)), kv.Value...), nil })
	}
	if from == nil {
		m.t.Ascend(visit)
	} else {
		m.t.AscendGreaterOrEqual(KeyValue{Key: from}, visit)
	}
	return nil
}

func (memView) release() {}

func memViewOf(s *InMemoryStore) func() (segView, error) {
	return func() (segView, error) {
		t, err := s.snapshot()
		if err != nil {
			return nil, err
		}
		return memView{t}, nil
	}
}

// badgerView reads a badger snapshot and, for a transactional store, the
// overlay snapshot taken with it (nil otherwise), which shadows badger: an
// overlay entry replaces badger's value of its key, a nil Value hides it.
type badgerView struct {
	txn *badger.Txn
	ov  *btree.BTreeG[KeyValue]
}

func (b badgerView) ascend(from []byte, fn func([]byte, func() ([]byte, error)) bool) error {
	b.merge(from, nil, fn)
	return nil
}

// merge visits the keys >= from of overlay over badger in order until fn
// returns false. With a non-nil to, the overlay is walked only up to to
// (inclusive), so fn must stop at the first key beyond to: keys beyond it
// may be badger keys the overlay deletes or shadows.
func (b badgerView) merge(from, to []byte, fn func([]byte, func() ([]byte, error)) bool) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	it := b.txn.NewIterator(opts)
	defer it.Close()
	if from == nil {
		it.Rewind()
	} else {
		it.Seek(from)
	}
	// drain visits badger's keys below until (all with a nil until); it
	// returns false when fn stopped.
	drain := func(until []byte) bool {
		for ; it.Valid(); it.Next() {
			item := it.Item()
			if until != nil && bytes.Compare(item.Key(), until) >= 0 {
				return true
			}
			val := func() ([]byte, error) {
				v, err := item.ValueCopy(nil)
				if v == nil && err == nil {
					v = []byte{}
				}
				return v, err
			}
			if !fn(item.Key(), val) {
				return false
			}
		}
		return true
	}
	if b.ov == nil || b.ov.Len() == 0 {
		drain(nil)
		return
	}
	stopped := false
	visit := func(e KeyValue) bool {
		if afterTo(e.Key, to) {
			return false
		}
		if !drain(e.Key) {
			stopped = true
			return false
		}
		if it.Valid() && bytes.Equal(it.Item().Key(), e.Key) {
			it.Next() // shadowed
		}
		if e.Value == nil {
			return true // deleted
		}
		val := func() ([]byte, error) { return append(make([]byte, 0, len(e.Value)), e.Value...), nil }
		if !fn(e.Key, val) {
			stopped = true
			return false
		}
		return true
	}
	if from == nil {
		b.ov.Ascend(visit)
	} else {
		b.ov.AscendGreaterOrEqual(KeyValue{Key: from}, visit)
	}
	if !stopped {
		drain(nil)
	}
}

func (b badgerView) release() { b.txn.Discard() }

func badgerViewOf(s *BadgerStore) func() (segView, error) {
	return func() (segView, error) {
		v, err := s.view()
		if err != nil {
			return nil, err
		}
		return v, nil
	}
}

// openSegmentedBadger opens a BadgerStore for a segmented store and restores
// the observed stream time from its greatest key (the latest segment time),
// then removes expired segments.
func openSegmentedBadger(name, dir string, suffixLen int, o SegmentOptions, bo BadgerOptions) (*segmented, error) {
	s, err := OpenBadger(name, dir, bo)
	if err != nil {
		return nil, err
	}
	g, err := newSegmented(s, badgerViewOf(s), suffixLen, o)
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	// The greatest key is in the latest segment, but not necessarily the
	// latest time within it: scan that segment for its largest time.
	obs := int64(noTime)
	err = s.db.View(func(txn *badger.Txn) error {
		opts := badger.IteratorOptions{Reverse: true}
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			return nil
		}
		seg := bytes.Clone(it.Item().Key()[:8])
		for ; it.Valid() && bytes.HasPrefix(it.Item().Key(), seg); it.Next() {
			obs = max(obs, g.timeOf(it.Item().Key()))
		}
		return nil
	})
	if err == nil {
		g.observed.Store(obs)
		err = g.expire()
	}
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("table: open segmented store %q: %w", name, err)
	}
	return g, nil
}
