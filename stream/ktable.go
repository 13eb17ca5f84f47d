package stream

import (
	"fmt"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/window"
)

// KTable is a changelog stream seen as a table: Kafka Streams' KTable<K, V>.
// Internally its updates flow as Record[K, Change[V]].
type KTable[K, V any] struct {
	b  *Builder
	n  *node
	ks serde.Serde[K]
	vs serde.Serde[V]
	// store is the table's materialized store ("" when it is computed
	// from its parent's on lookup).
	store   string
	sources []*node
	getter  *tableGetter[K, V]
	// finalAt is set on windowed tables (keys of type window.Windowed):
	// the stream time at which a window's result is final, which
	// Suppress(UntilWindowCloses) waits for. Nil on other tables.
	finalAt func(w window.Window) int64
}

// Node returns the name of the processor producing the table's updates.
func (t KTable[K, V]) Node() string { return t.n.name }

// StoreName returns the name of the store holding the table ("" when the
// table is not materialized), for interactive queries.
func (t KTable[K, V]) StoreName() string { return t.store }

// tableGetter looks up a table's current value by key inside a task:
// Kafka Streams' KTableValueGetter. stores are the stores it reads, which
// a processor using it must be connected to.
type tableGetter[K, V any] struct {
	stores []string
	make   func(t *Task) (func(k K) (v V, ts int64, ok bool, err error), error)
}

func storeGetter[K, V any](store string, ks serde.Serde[K], vs serde.Serde[V]) *tableGetter[K, V] {
	return &tableGetter[K, V]{stores: []string{store}, make: func(t *Task) (func(K) (V, int64, bool, error), error) {
		st, err := newTypedStore(t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		return st.get, nil
	}}
}

// typedStore is the DSL's typed view of a task's store.
type typedStore[K, V any] struct {
	h     *StoreHandle
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	topic string
}

func newTypedStore[K, V any](t *Task, name string, ks serde.Serde[K], vs serde.Serde[V]) (*typedStore[K, V], error) {
	h := t.stores[name]
	if h == nil {
		return nil, fmt.Errorf("store %s is not open in task %s", name, t.cfg.ID)
	}
	return &typedStore[K, V]{h: h, ks: ks, vs: vs, topic: ChangelogTopic(t.cfg.ApplicationID, name)}, nil
}

func (s *typedStore[K, V]) get(k K) (v V, ts int64, ok bool, err error) {
	kb, err := s.ks.Serialize(s.topic, k)
	if err != nil {
		return v, 0, false, err
	}
	b, ts, ok, err := s.h.Get(kb)
	if err != nil || !ok {
		return v, 0, false, err
	}
	v, err = s.vs.Deserialize(s.topic, b)
	return v, ts, err == nil, err
}

func (s *typedStore[K, V]) put(k K, v V, ts int64) error {
	kb, err := s.ks.Serialize(s.topic, k)
	if err != nil {
		return err
	}
	vb, err := s.vs.Serialize(s.topic, v)
	if err != nil {
		return err
	}
	return s.h.Put(kb, vb, ts) // a nil encoding (a nil pointer) deletes
}

func (s *typedStore[K, V]) delete(k K, ts int64) error {
	kb, err := s.ks.Serialize(s.topic, k)
	if err != nil {
		return err
	}
	return s.h.Put(kb, nil, ts)
}

// decodeChange decodes the new and old value of a write reaching a store
// (nil: absent) into a Change; ok is false when both are absent, a write
// that changes nothing.
func decodeChange[V any](vs serde.Serde[V], topic string, vb, oldb []byte) (c Change[V], ok bool, err error) {
	if vb != nil {
		if c.New, err = vs.Deserialize(topic, vb); err != nil {
			return c, false, fmt.Errorf("decode cached value: %w", err)
		}
		c.HasNew = true
	}
	if oldb != nil {
		if c.Old, err = vs.Deserialize(topic, oldb); err != nil {
			return c, false, fmt.Errorf("decode old value: %w", err)
		}
		c.HasOld = true
	}
	return c, c.HasNew || c.HasOld, nil
}

// forwardChanges makes every write that reaches the store (at cache flush,
// or at once without a cache) forward a Change downstream.
func (s *typedStore[K, V]) forwardChanges(ctx *procCtx[K, Change[V]]) {
	s.h.noOld = oldUnused(ctx.n)
	s.h.onFlush = func(kb, vb, oldb []byte, _, ts int64) {
		k, err := s.ks.Deserialize(s.topic, kb)
		if err != nil {
			ctx.t.handle("processing", ctx.n.name, ctx.t.cfg.Errors.proc(), fmt.Errorf("decode cached key: %w", err))
			return
		}
		c, ok, err := decodeChange(s.vs, s.topic, vb, oldb)
		if err != nil {
			ctx.t.handle("processing", ctx.n.name, ctx.t.cfg.Errors.proc(), err)
			return
		}
		if !ok {
			return // deleting an absent key changes nothing
		}
		ctx.Forward(Record[K, Change[V]]{Key: k, Value: c, Timestamp: ts})
	}
}

// Table adds a table read from topic: Kafka Streams' builder.table. The
// table is always materialized (store named by m.Name, or generated); a
// null value deletes its key; null keys are dropped.
func Table[K, V any](b *Builder, topic string, c Consumed[K, V], m Materialized[K, V]) KTable[K, V] {
	if m.Name == "" {
		// Kafka numbers the store before the source.
		m.Name = b.newName(topic + "-STATE-STORE")
	}
	src := addSource(b, c, "table", false, topic)
	s := KStream[K, V]{b: b, n: src, ks: c.Key, vs: c.Value, sources: []*node{src}}
	return toTable(s, "table", "KTABLE-SOURCE", m)
}

// ToTable turns the stream into a table (each record an upsert, a null
// value a delete): Kafka Streams' toTable. A stream whose key changed is
// repartitioned first, through "<node>-repartition".
func (s KStream[K, V]) ToTable(m Materialized[K, V]) KTable[K, V] {
	return toTable(s, "toTable", "KSTREAM-TOTABLE", m)
}

func toTable[K, V any](s KStream[K, V], op, prefix string, m Materialized[K, V]) KTable[K, V] {
	b := s.b
	if m.Key == nil {
		m.Key = s.ks
	}
	if m.Value == nil {
		m.Value = s.vs
	}
	nodeName := b.newName(prefix)
	if m.Name == "" {
		m.Name = b.newName(prefix + "-STATE-STORE")
	}
	m = declareStore(b, op, nodeName, m.Name, m)
	if m.Key != nil && m.Value != nil && s.keyChanged {
		s = repartition(s, op, nodeName, m.Key, m.Value, 0, true)
	}
	store, ks, vs := m.Name, m.Key, m.Value
	n := addFn(b, &node{op: op, name: nodeName, stores: []string{store}}, prefix, func(ctx *procCtx[K, Change[V]]) (func(Record[K, V]) error, error) {
		st, err := newTypedStore(ctx.t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		st.forwardChanges(ctx)
		return func(r Record[K, V]) error {
			if r.KeyNull {
				ctx.t.dropped(ctx.n.name, "null-key")
				return nil
			}
			if r.ValueNull {
				return st.delete(r.Key, r.Timestamp)
			}
			return st.put(r.Key, r.Value, r.Timestamp)
		}, nil
	}, s.n)
	return KTable[K, V]{b: b, n: n, ks: ks, vs: vs, store: store, sources: s.sources, getter: storeGetter(store, ks, vs)}
}

// Filter keeps the rows for which pred is true; a row that stops matching
// becomes a delete downstream.
func (t KTable[K, V]) Filter(pred func(K, V) bool) KTable[K, V] {
	return t.filter("filter", pred, false)
}

// FilterNot drops the rows for which pred is true.
func (t KTable[K, V]) FilterNot(pred func(K, V) bool) KTable[K, V] {
	return t.filter("filterNot", pred, true)
}

func (t KTable[K, V]) filter(op string, pred func(K, V) bool, not bool) KTable[K, V] {
	keep := func(k K, v V) bool { return pred(k, v) != not }
	n := stateless(t.b, op, "", "KTABLE-FILTER", t.n, func(ctx *procCtx[K, Change[V]], r Record[K, Change[V]]) error {
		c := r.Value
		out := Change[V]{}
		if c.HasNew && keep(r.Key, c.New) {
			out.New, out.HasNew = c.New, true
		}
		if c.HasOld && keep(r.Key, c.Old) {
			out.Old, out.HasOld = c.Old, true
		}
		if !out.HasNew && !out.HasOld {
			return nil // neither side was in the filtered table
		}
		ctx.Forward(withValue(r, out))
		return nil
	})
	out := t
	out.n, out.store = n, ""
	parent := t.getter
	out.getter = &tableGetter[K, V]{stores: parent.stores, make: func(tk *Task) (func(K) (V, int64, bool, error), error) {
		get, err := parent.make(tk)
		if err != nil {
			return nil, err
		}
		return func(k K) (V, int64, bool, error) {
			v, ts, ok, err := get(k)
			if err != nil || !ok || !keep(k, v) {
				var zero V
				return zero, 0, false, err
			}
			return v, ts, true, nil
		}, nil
	}}
	return out
}

// MapTableValues maps each row's value (Kafka Streams' KTable.mapValues);
// deletes stay deletes.
func MapTableValues[K, V, V2 any](t KTable[K, V], fn func(K, V) V2) KTable[K, V2] {
	n := stateless(t.b, "mapValues", "", "KTABLE-MAPVALUES", t.n, func(ctx *procCtx[K, Change[V2]], r Record[K, Change[V]]) error {
		c := r.Value
		var out Change[V2]
		if c.HasNew {
			out.New, out.HasNew = fn(r.Key, c.New), true
		}
		if c.HasOld {
			out.Old, out.HasOld = fn(r.Key, c.Old), true
		}
		ctx.Forward(withValue(r, out))
		return nil
	})
	parent := t.getter
	return KTable[K, V2]{b: t.b, n: n, ks: t.ks, sources: t.sources, finalAt: t.finalAt, getter: &tableGetter[K, V2]{stores: parent.stores, make: func(tk *Task) (func(K) (V2, int64, bool, error), error) {
		get, err := parent.make(tk)
		if err != nil {
			return nil, err
		}
		return func(k K) (V2, int64, bool, error) {
			var zero V2
			v, ts, ok, err := get(k)
			if err != nil || !ok {
				return zero, 0, false, err
			}
			return fn(k, v), ts, true, nil
		}, nil
	}}}
}

// WithSerdes returns t with serdes set for later operators.
func (t KTable[K, V]) WithSerdes(key serde.Serde[K], value serde.Serde[V]) KTable[K, V] {
	if key != nil {
		t.ks = key
	}
	if value != nil {
		t.vs = value
	}
	return t
}

// ToStream returns the table's updates as a stream; a delete becomes a
// record with ValueNull set (a tombstone).
func (t KTable[K, V]) ToStream() KStream[K, V] {
	n := stateless(t.b, "toStream", "", "KTABLE-TOSTREAM", t.n, func(ctx *procCtx[K, V], r Record[K, Change[V]]) error {
		out := withValue(r, r.Value.New)
		out.ValueNull = !r.Value.HasNew
		ctx.Forward(out)
		return nil
	})
	return KStream[K, V]{b: t.b, n: n, ks: t.ks, vs: t.vs, sources: t.sources}
}
