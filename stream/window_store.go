package stream

import (
	"fmt"
	"iter"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/table"
)

// WindowStoreEntry is one entry of a window store read.
type WindowStoreEntry struct {
	Key       []byte
	Start     int64 // the window start
	Value     []byte
	Timestamp int64
}

// SessionStoreEntry is one session of a session store read.
type SessionStoreEntry struct {
	Key        []byte
	Start, End int64 // the session's bounds, both included
	Value      []byte
	Timestamp  int64
}

// Window returns the task's table.WindowStore (values in the timestamped
// layout, see DecodeStoreValue), for interactive queries; nil unless the
// store is a window store.
func (h *StoreHandle) Window() table.WindowStore { return h.ws }

// Session returns the task's table.SessionStore (values in the timestamped
// layout), for interactive queries; nil unless the store is a session
// store.
func (h *StoreHandle) Session() table.SessionStore { return h.ss }

func (h *StoreHandle) need(k StoreKind) error {
	if h.info.Kind != k {
		return fmt.Errorf("store %s is a %v store, not a %v store", h.info.Name, h.info.Kind, k)
	}
	return nil
}

// FetchWindow returns key's value in the window starting at start (seeing
// cached writes); ok is false when absent or expired.
func (h *StoreHandle) FetchWindow(key []byte, start int64) (value []byte, ts int64, ok bool, err error) {
	if err := h.need(WindowKind); err != nil {
		return nil, 0, false, err
	}
	return h.Get(WindowStoreKey(key, start))
}

// PutWindow writes key's value (nil deletes) in the window starting at
// start, with timestamp ts, through the cache and the changelog. A write
// to an expired window is skipped by the store.
func (h *StoreHandle) PutWindow(key []byte, start int64, value []byte, ts int64) error {
	if err := h.need(WindowKind); err != nil {
		return err
	}
	if len(key) == 0 {
		return table.ErrEmptyKey
	}
	return h.Put(WindowStoreKey(key, start), value, ts)
}

// FetchWindows iterates key's windows with from <= start <= to, by start.
// It writes the store's cached entries to the store first, so it sees
// them.
func (h *StoreHandle) FetchWindows(key []byte, from, to int64) iter.Seq2[WindowStoreEntry, error] {
	return h.windows(func() iter.Seq2[table.WindowEntry, error] { return h.ws.FetchRange(key, from, to) })
}

// FetchAllWindows iterates every key's windows with from <= start <= to
// (in table.WindowStore.FetchAll's order), seeing cached writes.
func (h *StoreHandle) FetchAllWindows(from, to int64) iter.Seq2[WindowStoreEntry, error] {
	return h.windows(func() iter.Seq2[table.WindowEntry, error] { return h.ws.FetchAll(from, to) })
}

func (h *StoreHandle) windows(read func() iter.Seq2[table.WindowEntry, error]) iter.Seq2[WindowStoreEntry, error] {
	return func(yield func(WindowStoreEntry, error) bool) {
		if err := h.need(WindowKind); err != nil {
			yield(WindowStoreEntry{}, err)
			return
		}
		if err := h.syncCache(); err != nil {
			yield(WindowStoreEntry{}, err)
			return
		}
		for e, err := range read() {
			if err != nil {
				yield(WindowStoreEntry{}, err)
				return
			}
			v, ts, err := DecodeStoreValue(e.Value)
			if !yield(WindowStoreEntry{Key: e.Key, Start: e.Start, Value: v, Timestamp: ts}, err) || err != nil {
				return
			}
		}
	}
}

// FetchSession returns the value of key's session [start, end] (seeing
// cached writes); ok is false when absent or expired.
func (h *StoreHandle) FetchSession(key []byte, start, end int64) (value []byte, ts int64, ok bool, err error) {
	if err := h.need(SessionKind); err != nil {
		return nil, 0, false, err
	}
	return h.Get(SessionStoreKey(key, start, end))
}

// PutSession writes the value of key's session [start, end] (nil removes
// it) with timestamp ts, through the cache and the changelog.
func (h *StoreHandle) PutSession(key []byte, start, end int64, value []byte, ts int64) error {
	if err := h.need(SessionKind); err != nil {
		return err
	}
	if len(key) == 0 {
		return table.ErrEmptyKey
	}
	if end < start {
		return fmt.Errorf("store %s: session end %d before start %d", h.info.Name, end, start)
	}
	return h.Put(SessionStoreKey(key, start, end), value, ts)
}

// FindSessions iterates key's sessions with end >= earliestEnd and start
// <= latestStart, by end then start, seeing cached writes.
func (h *StoreHandle) FindSessions(key []byte, earliestEnd, latestStart int64) iter.Seq2[SessionStoreEntry, error] {
	return h.sessions(func() iter.Seq2[table.SessionEntry, error] { return h.ss.FindSessions(key, earliestEnd, latestStart) })
}

// AllSessions iterates every live session of every key, seeing cached
// writes.
func (h *StoreHandle) AllSessions() iter.Seq2[SessionStoreEntry, error] {
	return h.sessions(func() iter.Seq2[table.SessionEntry, error] { return h.ss.All() })
}

func (h *StoreHandle) sessions(read func() iter.Seq2[table.SessionEntry, error]) iter.Seq2[SessionStoreEntry, error] {
	return func(yield func(SessionStoreEntry, error) bool) {
		if err := h.need(SessionKind); err != nil {
			yield(SessionStoreEntry{}, err)
			return
		}
		if err := h.syncCache(); err != nil {
			yield(SessionStoreEntry{}, err)
			return
		}
		for e, err := range read() {
			if err != nil {
				yield(SessionStoreEntry{}, err)
				return
			}
			v, ts, err := DecodeStoreValue(e.Value)
			if !yield(SessionStoreEntry{Key: e.Key, Start: e.Start, End: e.End, Value: v, Timestamp: ts}, err) || err != nil {
				return
			}
		}
	}
}

// ObservedStreamTime returns the window or session store's observed
// stream time (the largest window start or session end written to the
// store itself, so not counting cached writes), or -1 before any write
// and for key-value stores.
func (h *StoreHandle) ObservedStreamTime() int64 {
	var t int64 = -1
	switch {
	case h.ws != nil:
		t = h.ws.ObservedStreamTime()
	case h.ss != nil:
		t = h.ss.ObservedStreamTime()
	}
	return max(t, -1)
}

// windowTyped is typed access to a window store for the DSL's windowed
// operators.
type windowTyped[K, V any] struct {
	h     *StoreHandle
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	topic string
}

func newWindowTyped[K, V any](t *Task, name string, ks serde.Serde[K], vs serde.Serde[V]) (*windowTyped[K, V], error) {
	h := t.stores[name]
	if h == nil {
		return nil, fmt.Errorf("store %s is not open in task %s", name, t.cfg.ID)
	}
	if err := h.need(WindowKind); err != nil {
		return nil, err
	}
	return &windowTyped[K, V]{h: h, ks: ks, vs: vs, topic: ChangelogTopic(t.cfg.ApplicationID, name)}, nil
}

// get returns k's value in the window starting at start.
func (s *windowTyped[K, V]) get(k K, start int64) (v V, ts int64, ok bool, err error) {
	kb, err := s.ks.Serialize(s.topic, k)
	if err != nil {
		return v, 0, false, err
	}
	b, ts, ok, err := s.h.FetchWindow(kb, start)
	if err != nil || !ok {
		return v, 0, false, err
	}
	v, err = s.vs.Deserialize(s.topic, b)
	return v, ts, err == nil, err
}

// put writes k's value in the window starting at start.
func (s *windowTyped[K, V]) put(k K, start int64, v V, ts int64) error {
	kb, err := s.ks.Serialize(s.topic, k)
	if err != nil {
		return err
	}
	vb, err := s.vs.Serialize(s.topic, v)
	if err != nil {
		return err
	}
	return s.h.PutWindow(kb, start, vb, ts)
}

// modify reads k's value in the window starting at start, and writes
// what fn makes of it with the timestamp fn returns; the key is
// serialized and the store key built once for both.
func (s *windowTyped[K, V]) modify(k K, start int64, fn func(old V, oldTS int64, has bool) (V, int64)) error {
	kb, err := s.ks.Serialize(s.topic, k)
	if err != nil {
		return err
	}
	if len(kb) == 0 {
		return table.ErrEmptyKey
	}
	sk := WindowStoreKey(kb, start)
	b, oldTS, has, err := s.h.Get(sk)
	if err != nil {
		return err
	}
	var old V
	if has {
		if old, err = s.vs.Deserialize(s.topic, b); err != nil {
			return err
		}
	}
	v, ts := fn(old, oldTS, has)
	vb, err := s.vs.Serialize(s.topic, v)
	if err != nil {
		return err
	}
	return s.h.Put(sk, vb, ts)
}

// sessionTyped is typed access to a session store for the DSL's session
// operators.
type sessionTyped[K, V any] struct {
	h     *StoreHandle
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	topic string
}

func newSessionTyped[K, V any](t *Task, name string, ks serde.Serde[K], vs serde.Serde[V]) (*sessionTyped[K, V], error) {
	h := t.stores[name]
	if h == nil {
		return nil, fmt.Errorf("store %s is not open in task %s", name, t.cfg.ID)
	}
	if err := h.need(SessionKind); err != nil {
		return nil, err
	}
	return &sessionTyped[K, V]{h: h, ks: ks, vs: vs, topic: ChangelogTopic(t.cfg.ApplicationID, name)}, nil
}

// declareWindowedStore is declareStore for a window or session store:
// it fills m's missing serdes with the built-in defaults, reports a build
// error naming the operator when one is still missing, and declares the
// store with its kind and retention. cacheable says the operator can use
// the record cache (its reads are point lookups); otherwise the store is
// written through whatever m says.
func declareWindowedStore[K, V any](b *Builder, op, nodeName, store string, m Materialized[K, V], kind StoreKind, retention time.Duration, cacheable bool) Materialized[K, V] {
	m.Key, m.Value = orDefault(m.Key), orDefault(m.Value)
	if m.Key == nil {
		b.errorf(op, nodeName, "no key serde for store %s (Grouped or Materialized)", store)
	}
	if m.Value == nil {
		b.errorf(op, nodeName, "no value serde for store %s (Materialized)", store)
	}
	if retention <= 0 {
		b.errorf(op, nodeName, "store %s needs a positive retention", store)
	}
	sp := m.spec(store)
	sp.kind, sp.retention = kind, retention
	sp.caching = sp.caching && cacheable
	b.addStore(op, nodeName, sp)
	return m
}

// WindowStore is typed access to a window store for the Processor API:
// Kafka Streams' WindowStore<K, V>. Declare the store with AddStateStore
// (StoreSpec.Kind WindowKind and a Retention) and name it in Process or
// ProcessValues. Writes take the timestamp of the record being processed
// (the task's stream time inside a punctuator).
type WindowStore[K, V any] struct {
	s *windowTyped[K, V]
}

// WindowStoreOf returns typed access to the window store called name,
// connected to the processor whose context is ctx.
func WindowStoreOf[K, V any](ctx storeAccessor, name string, keySerde serde.Serde[K], valueSerde serde.Serde[V]) (*WindowStore[K, V], error) {
	h, err := ctx.Store(name)
	if err != nil {
		return nil, err
	}
	if keySerde == nil || valueSerde == nil {
		return nil, fmt.Errorf("stream: store %s: nil serde", name)
	}
	if err := h.need(WindowKind); err != nil {
		return nil, err
	}
	return &WindowStore[K, V]{&windowTyped[K, V]{h: h, ks: keySerde, vs: valueSerde, topic: ChangelogTopic(h.t.cfg.ApplicationID, name)}}, nil
}

func (w *WindowStore[K, V]) now() int64 {
	if ts := w.s.h.t.recordTS; ts >= 0 {
		return ts
	}
	return w.s.h.t.streamTime
}

// Fetch returns k's value in the window starting at start; ok is false
// when absent or expired.
func (w *WindowStore[K, V]) Fetch(k K, start int64) (v V, ok bool, err error) {
	v, _, ok, err = w.s.get(k, start)
	return v, ok, err
}

// Put stores v as k's value in the window starting at start. A value
// that serializes to nil deletes it; a window already expired from the
// store is skipped.
func (w *WindowStore[K, V]) Put(k K, start int64, v V) error { return w.s.put(k, start, v, w.now()) }

// WindowValue is one typed window of a WindowStore read.
type WindowValue[K, V any] struct {
	Key       K
	Start     int64 // the window start
	Value     V
	Timestamp int64
}

// FetchRange iterates k's windows with from <= start <= to, by start.
func (w *WindowStore[K, V]) FetchRange(k K, from, to int64) iter.Seq2[WindowValue[K, V], error] {
	return func(yield func(WindowValue[K, V], error) bool) {
		kb, err := w.s.ks.Serialize(w.s.topic, k)
		if err != nil {
			yield(WindowValue[K, V]{}, err)
			return
		}
		for e, err := range w.s.h.FetchWindows(kb, from, to) {
			if err != nil {
				yield(WindowValue[K, V]{}, err)
				return
			}
			v, err := w.s.vs.Deserialize(w.s.topic, e.Value)
			if err != nil {
				yield(WindowValue[K, V]{}, err)
				return
			}
			if !yield(WindowValue[K, V]{Key: k, Start: e.Start, Value: v, Timestamp: e.Timestamp}, nil) {
				return
			}
		}
	}
}
