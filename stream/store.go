package stream

import (
	"bytes"
	"fmt"
	"iter"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/table"
)

// StoreSpec declares a key-value store for the Processor API (the
// counterpart of Kafka Streams' StoreBuilder): add it with
// Builder.AddStateStore and connect it to processors by naming it in Process or ProcessValues.
type StoreSpec struct {
	// Name is the store name; it names the changelog topic too.
	Name string
	// InMemory keeps the store in memory (restored from the changelog on
	// every start) instead of on disk.
	InMemory bool
	// DisableLogging turns the changelog off: the store is then lost with
	// its state directory.
	DisableLogging bool
	// DisableCaching writes every update through to the store at once.
	DisableCaching bool
	// ChangelogConfigs are extra configs of the changelog topic.
	ChangelogConfigs map[string]string
	// Kind is the kind of store; the zero value is a key-value store.
	// Window and session stores are reached through the StoreHandle's
	// window and session methods.
	Kind StoreKind
	// Retention is how long window and session entries stay, in stream
	// time. Required for window and session stores.
	Retention time.Duration
}

// AddStateStore declares a store for processors added with Process or
// ProcessValues, which name it.
func (b *Builder) AddStateStore(s StoreSpec) {
	if s.Name == "" {
		b.errorf("addStateStore", "", "a store needs a name")
		return
	}
	if s.Kind != KeyValueKind && s.Retention <= 0 {
		b.errorf("addStateStore", s.Name, "a %v store needs a positive Retention", s.Kind)
		return
	}
	b.addStore("addStateStore", s.Name, &storeSpec{name: s.Name, inMemory: s.InMemory, logging: !s.DisableLogging, caching: !s.DisableCaching, changelog: s.ChangelogConfigs,
		kind: s.Kind, retention: s.Retention})
}

// StoreHandle is a task's byte-level view of one of its stores: the record
// cache (when enabled) over the store, with every write logged to the
// changelog. Processors get it from ProcessorContext.Store; KeyValueStoreOf
// gives typed access.
type StoreHandle struct {
	t    *Task
	info StoreInfo
	// st is the store; exactly one of kv, ws and ss is set too, by kind.
	st     StateStore
	kv     table.KeyValueStore
	ws     table.WindowStore
	ss     table.SessionStore
	cached bool
	// onFlush, when set, receives every write as it reaches the store
	// (cache flush or write-through), with the previous value: the DSL
	// forwards table changes from it.
	onFlush func(key, value, old []byte, oldTS, ts int64)
	// noOld says onFlush's listeners ignore the old value of an update
	// (only KTable.ToStream reads the table): flushEntries then reads the
	// store for it only for deletes, whose listeners need to know whether
	// the key existed. Kafka's caching stores likewise read old values only
	// when a downstream operator asks for them.
	noOld bool
	// held are writes made while the task's cache is handing entries to
	// a flush listener (a cached store upstream forwarding its updates
	// here), which the cache cannot take then. Get sees them; the task
	// moves them into the cache when the flush returns (Task.releaseHeld).
	held     map[string]table.DirtyEntry
	heldKeys []string
}

// hold keeps a write made during a cache flush.
func (h *StoreHandle) hold(key, value []byte, ts int64) {
	if h.held == nil {
		h.held = map[string]table.DirtyEntry{}
	}
	k := string(key)
	if _, ok := h.held[k]; !ok {
		h.heldKeys = append(h.heldKeys, k)
	}
	h.held[k] = table.DirtyEntry{Key: []byte(k), Value: bytes.Clone(value), Timestamp: ts}
	h.t.held = true
}

// Name returns the store name.
func (h *StoreHandle) Name() string { return h.info.Name }

// Kind returns the store's kind.
func (h *StoreHandle) Kind() StoreKind { return h.info.Kind }

// Underlying returns the task's table.KeyValueStore (values in the
// timestamped layout, see DecodeStoreValue), for interactive queries; nil
// for window and session stores.
func (h *StoreHandle) Underlying() table.KeyValueStore { return h.kv }

// newStoreHandle wraps the store s the Env opened for info.
func newStoreHandle(t *Task, info StoreInfo, s StateStore, cached bool) (*StoreHandle, error) {
	h := &StoreHandle{t: t, info: info, st: s, cached: cached}
	ok := false
	switch info.Kind {
	case KeyValueKind:
		h.kv, ok = s.(table.KeyValueStore)
	case WindowKind:
		h.ws, ok = s.(table.WindowStore)
	case SessionKind:
		h.ss, ok = s.(table.SessionStore)
	}
	if !ok {
		return nil, fmt.Errorf("store %s: the Env opened a %T for a %v store", info.Name, s, info.Kind)
	}
	return h, nil
}

// Get returns the value of key and its timestamp; ok is false when absent.
func (h *StoreHandle) Get(key []byte) (value []byte, ts int64, ok bool, err error) {
	if h.cached {
		if e, ok := h.held[string(key)]; ok {
			return e.Value, e.Timestamp, e.Value != nil, nil
		}
		if v, ts, found := h.t.cache.Get(h.info.Name, key); found {
			return v, ts, v != nil, nil
		}
	}
	raw, err := h.stored(key)
	if err != nil || raw == nil {
		return nil, 0, false, err
	}
	v, ts, err := DecodeStoreValue(raw)
	return v, ts, err == nil, err
}

// stored reads key (a WindowStoreKey or SessionStoreKey for those kinds)
// from the store itself, in the timestamped layout.
func (h *StoreHandle) stored(key []byte) ([]byte, error) {
	switch {
	case h.kv != nil:
		return h.kv.Get(key)
	case h.ws != nil:
		k, start, err := SplitWindowStoreKey(key)
		if err != nil {
			return nil, err
		}
		return h.ws.Fetch(k, start)
	default:
		k, start, end, err := SplitSessionStoreKey(key)
		if err != nil {
			return nil, err
		}
		return h.ss.Fetch(k, start, end)
	}
}

// write writes entries to the store itself, in the timestamped layout.
func (h *StoreHandle) write(entries []table.DirtyEntry) error {
	switch {
	case h.kv != nil:
		if len(entries) == 1 {
			return h.kv.Put(entries[0].Key, encodeStoreValue(entries[0].Value, entries[0].Timestamp))
		}
		kvs := make([]table.KeyValue, len(entries))
		for i, e := range entries {
			kvs[i] = table.KeyValue{Key: e.Key, Value: encodeStoreValue(e.Value, e.Timestamp)}
		}
		return h.kv.PutAll(kvs)
	case h.ws != nil:
		if len(entries) > 1 {
			batch := make([]table.WindowEntry, len(entries))
			for i, e := range entries {
				k, start, err := SplitWindowStoreKey(e.Key)
				if err != nil {
					return err
				}
				batch[i] = table.WindowEntry{Key: k, Start: start, Value: encodeStoreValue(e.Value, e.Timestamp)}
			}
			return h.ws.PutAll(batch)
		}
		for _, e := range entries {
			k, start, err := SplitWindowStoreKey(e.Key)
			if err != nil {
				return err
			}
			if err := h.ws.Put(k, start, encodeStoreValue(e.Value, e.Timestamp)); err != nil {
				return err
			}
		}
	default:
		for _, e := range entries {
			k, start, end, err := SplitSessionStoreKey(e.Key)
			if err != nil {
				return err
			}
			if err := h.ss.Put(k, start, end, encodeStoreValue(e.Value, e.Timestamp)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Put writes value (nil deletes) for key with timestamp ts.
func (h *StoreHandle) Put(key, value []byte, ts int64) error {
	if len(key) == 0 {
		return table.ErrEmptyKey
	}
	if h.cached {
		if h.t.flushing > 0 {
			h.hold(key, value, ts)
			return nil
		}
		if err := h.t.cache.Put(h.info.Name, key, value, ts); err != nil {
			return err
		}
		return h.t.releaseHeld() // an eviction may have flushed
	}
	return h.flushEntries([]table.DirtyEntry{{Key: key, Value: value, Timestamp: ts}})
}

// Delete deletes key (a tombstone with timestamp ts).
func (h *StoreHandle) Delete(key []byte, ts int64) error { return h.Put(key, nil, ts) }

// flushEntries writes entries to the store, logs them and hands them to
// onFlush: the cache's flush listener and the write-through path.
//
// oldUnused reports whether n's updates reach only operators that ignore
// old values (KTable.ToStream), so its store handle may set noOld.
func oldUnused(n *node) bool {
	for _, c := range n.children {
		if c.op != "toStream" {
			return false
		}
	}
	return true
}

func (h *StoreHandle) flushEntries(entries []table.DirtyEntry) error {
	var olds [][]byte
	if h.onFlush != nil {
		olds = make([][]byte, len(entries))
		for i, e := range entries {
			if h.noOld && e.Value != nil {
				continue
			}
			raw, err := h.stored(e.Key)
			if err != nil {
				return fmt.Errorf("store %s: %w", h.info.Name, err)
			}
			olds[i] = raw
		}
	}
	if err := h.write(entries); err != nil {
		return fmt.Errorf("store %s: %w", h.info.Name, err)
	}
	if h.info.Logged {
		for _, e := range entries {
			rec := RawRecord{Topic: h.info.Changelog.Name, Partition: h.t.cfg.ID.Partition, Key: e.Key, Value: e.Value, Timestamp: e.Timestamp}
			if err := h.t.cfg.Env.Send(rec); err != nil {
				return fmt.Errorf("store %s: changelog: %w", h.info.Name, err)
			}
		}
	}
	if h.onFlush != nil {
		for i, e := range entries {
			var old []byte
			var oldTS int64
			if olds != nil && olds[i] != nil {
				old, oldTS, _ = DecodeStoreValue(olds[i])
			}
			h.onFlush(e.Key, e.Value, old, oldTS, e.Timestamp)
		}
	}
	return nil
}

// StoreEntry is one entry of a Range or All iteration.
type StoreEntry struct {
	Key, Value []byte
	Timestamp  int64
}

// syncCache writes the store's cached writes to the store, so that a
// range read of the store sees them.
func (h *StoreHandle) syncCache() error {
	if !h.cached {
		return nil
	}
	if err := h.t.cache.FlushNamespace(h.info.Name); err != nil {
		return err
	}
	return h.t.releaseHeld()
}

// Range iterates keys in [from, to] (both inclusive; nil is open) of a
// key-value store. It flushes the store's cached writes first, so it sees
// them.
func (h *StoreHandle) Range(from, to []byte) iter.Seq2[StoreEntry, error] {
	return func(yield func(StoreEntry, error) bool) {
		if h.kv == nil {
			yield(StoreEntry{}, fmt.Errorf("store %s: Range on a %v store", h.info.Name, h.info.Kind))
			return
		}
		if err := h.syncCache(); err != nil {
			yield(StoreEntry{}, err)
			return
		}
		for kv, err := range h.kv.Range(from, to) {
			if err != nil {
				yield(StoreEntry{}, err)
				return
			}
			v, ts, err := DecodeStoreValue(kv.Value)
			if !yield(StoreEntry{Key: kv.Key, Value: v, Timestamp: ts}, err) || err != nil {
				return
			}
		}
	}
}

// All iterates every entry in key order.
func (h *StoreHandle) All() iter.Seq2[StoreEntry, error] { return h.Range(nil, nil) }

// ApproximateNumEntries returns the number of keys in the store (cached
// writes not yet flushed are not counted).
func (h *StoreHandle) ApproximateNumEntries() int64 { return h.st.ApproximateNumEntries() }

// KeyValueStore is typed access to a store for the Processor API: Kafka
// Streams' KeyValueStore<K, V>. Writes take the timestamp of the record
// being processed (the task's stream time inside a punctuator).
type KeyValueStore[K, V any] struct {
	*typedStore[K, V] // the DSL's typed view; this adds timestamps and iteration
}

// KeyValue is one typed entry.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// storeAccessor is implemented by every ProcessorContext.
type storeAccessor interface {
	Store(name string) (*StoreHandle, error)
}

// KeyValueStoreOf returns typed access to the store called name, connected
// to the processor whose context is ctx.
func KeyValueStoreOf[K, V any](ctx storeAccessor, name string, keySerde serde.Serde[K], valueSerde serde.Serde[V]) (*KeyValueStore[K, V], error) {
	h, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	if keySerde == nil || valueSerde == nil {
		return nil, fmt.Errorf("stream: store %s: nil serde", name)
	}
	return &KeyValueStore[K, V]{&typedStore[K, V]{h: h, ks: keySerde, vs: valueSerde, topic: ChangelogTopic(h.t.cfg.ApplicationID, name)}}, nil
}

func (s *KeyValueStore[K, V]) now() int64 {
	if ts := s.h.t.recordTS; ts >= 0 {
		return ts
	}
	return s.h.t.streamTime
}

// Get returns the value of k; ok is false when absent.
func (s *KeyValueStore[K, V]) Get(k K) (v V, ok bool, err error) {
	v, _, ok, err = s.get(k)
	return v, ok, err
}

// Put stores v under k (a value that serializes to nil, such as a nil
// pointer, deletes k).
func (s *KeyValueStore[K, V]) Put(k K, v V) error { return s.put(k, v, s.now()) }

// Delete removes k.
func (s *KeyValueStore[K, V]) Delete(k K) error { return s.delete(k, s.now()) }

// Range iterates keys in [from, to] in serialized-key order.
func (s *KeyValueStore[K, V]) Range(from, to K) iter.Seq2[KeyValue[K, V], error] {
	return func(yield func(KeyValue[K, V], error) bool) {
		fb, err := s.ks.Serialize(s.topic, from)
		if err != nil {
			yield(KeyValue[K, V]{}, err)
			return
		}
		tb, err := s.ks.Serialize(s.topic, to)
		if err != nil {
			yield(KeyValue[K, V]{}, err)
			return
		}
		s.iterate(s.h.Range(fb, tb), yield)
	}
}

// All iterates every entry.
func (s *KeyValueStore[K, V]) All() iter.Seq2[KeyValue[K, V], error] {
	return func(yield func(KeyValue[K, V], error) bool) { s.iterate(s.h.All(), yield) }
}

func (s *KeyValueStore[K, V]) iterate(seq iter.Seq2[StoreEntry, error], yield func(KeyValue[K, V], error) bool) {
	for e, err := range seq {
		if err != nil {
			yield(KeyValue[K, V]{}, err)
			return
		}
		k, err := s.ks.Deserialize(s.topic, e.Key)
		if err != nil {
			yield(KeyValue[K, V]{}, err)
			return
		}
		v, err := s.vs.Deserialize(s.topic, e.Value)
		if err != nil {
			yield(KeyValue[K, V]{}, err)
			return
		}
		if !yield(KeyValue[K, V]{Key: k, Value: v}, nil) {
			return
		}
	}
}
