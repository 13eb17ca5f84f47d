package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/eddy-streams/eddy/serde"
)

// KGroupedTable is a table re-grouped by a new key, ready to aggregate:
// Kafka Streams' KGroupedTable. Create one with GroupTable.
//
// Every update of the source table is turned into a "subtract" of its old
// row, under the key the old row maps to, and an "add" of its new row,
// under the key the new row maps to. Both travel through the repartition
// topic "<name>-repartition" (name: the Grouped name, else the store name)
// to the aggregation, which applies the subtract first. When the old and
// the new row map to the same key they travel as one record and are
// applied together, subtract then add, producing one update (Kafka Streams
// 3.5+, KIP-904).
type KGroupedTable[K, V any] struct {
	b  *Builder
	n  *node // the KTABLE-SELECT node, emitting Record[K, Change[V]]
	ks serde.Serde[K]
	vs serde.Serde[V]
	// name is the Grouped name ("": the repartition topic is named after
	// the store).
	name string
	// shared holds the repartition source of a named grouping, which all
	// its aggregations read (as in Kafka Streams; an unnamed grouping
	// repartitions once per aggregation, through a topic named after the
	// aggregation's store).
	shared **node
}

// GroupTable re-groups table t by the key and value fn computes from each
// row: Kafka Streams' KTable.groupBy. g gives the serdes of the new key
// and value (nil: the built-in serde for the type, if there is one) and
// optionally names the repartition topic.
//
// A row whose new key is null — the key serde encodes it as nil, as
// serde.Nullable does for a nil pointer — is left out of the aggregation;
// so is a row whose new value is null.
func GroupTable[K, V, K2, V2 any](t KTable[K, V], fn func(K, V) (K2, V2), g Grouped[K2, V2]) KGroupedTable[K2, V2] {
	b := t.b
	ks, vs := orDefault(g.Key), orDefault(g.Value)
	n := &node{op: "groupBy"}
	addFn(b, n, "KTABLE-SELECT", func(ctx *procCtx[K2, Change[V2]]) (func(Record[K, Change[V]]) error, error) {
		topic := n.name // serdes see the repartition topic the keys go to
		for _, c := range n.children {
			if c.kind == kindSink && c.internal {
				topic = internalName(ctx.t.cfg.ApplicationID, c.topics[0])
				break
			}
		}
		// selectRow maps a row; has is false for an absent row or a null
		// new key.
		selectRow := func(k K, present bool, v V) (p selected[K2, V2], err error) {
			if !present {
				return p, nil
			}
			p.k, p.v = fn(k, v)
			if p.kb, err = ks.Serialize(topic, p.k); err != nil {
				return p, fmt.Errorf("groupBy: serialize key: %w", err)
			}
			p.has = p.kb != nil
			return p, nil
		}
		return func(r Record[K, Change[V]]) error {
			c := r.Value
			oldP, err := selectRow(r.Key, c.HasOld, c.Old)
			if err != nil {
				return err
			}
			newP, err := selectRow(r.Key, c.HasNew, c.New)
			if err != nil {
				return err
			}
			if (c.HasOld && !oldP.has) || (c.HasNew && !newP.has) {
				ctx.t.dropped(ctx.n.name, "null-key")
			}
			out := func(k K2, ch Change[V2]) {
				ctx.Forward(Record[K2, Change[V2]]{Key: k, Value: ch, Timestamp: r.Timestamp, Headers: r.Headers})
			}
			switch {
			case oldP.has && newP.has && bytes.Equal(oldP.kb, newP.kb):
				out(newP.k, Change[V2]{New: newP.v, Old: oldP.v, HasNew: true, HasOld: true})
			default:
				// The subtract goes first, as in Kafka Streams.
				if oldP.has {
					out(oldP.k, Change[V2]{Old: oldP.v, HasOld: true})
				}
				if newP.has {
					out(newP.k, Change[V2]{New: newP.v, HasNew: true})
				}
			}
			return nil
		}, nil
	}, t.n)
	if ks == nil {
		b.errorf("groupBy", n.name, "the grouped table needs a key serde (Grouped.Key)")
	}
	if vs == nil {
		b.errorf("groupBy", n.name, "the grouped table needs a value serde (Grouped.Value)")
	}
	return KGroupedTable[K2, V2]{b: b, n: n, ks: ks, vs: vs, name: g.Name, shared: new(*node)}
}

// selected is a row mapped by a KGroupedTable's function: its new key
// (and the key's bytes, nil for a null key) and value.
type selected[K, V any] struct {
	k   K
	v   V
	kb  []byte
	has bool
}

// Count counts the rows per key: each add counts one, each subtract one
// less. A key whose count falls to 0 stays in the table with count 0, as
// in Kafka Streams.
func (g KGroupedTable[K, V]) Count(m Materialized[K, int64]) KTable[K, int64] {
	if m.Value == nil {
		m.Value = serde.Int64()
	}
	return tableAggregate(g, "count", "KTABLE-AGGREGATE", m,
		func(_ K, _ V, agg int64, _ bool) int64 { return agg + 1 },
		func(_ K, _ V, agg int64) int64 { return agg - 1 })
}

// Reduce combines the rows of each key: adder folds a new row in (the
// first row is taken as is), subtractor takes an old row out. When the
// result encodes as null (a nil pointer with a serde.Nullable value serde)
// the key is deleted and a tombstone flows downstream, as Kafka Streams'
// KTableReduce does.
func (g KGroupedTable[K, V]) Reduce(adder, subtractor func(agg, v V) V, m Materialized[K, V]) KTable[K, V] {
	if m.Value == nil {
		m.Value = g.vs
	}
	return tableAggregate(g, "reduce", "KTABLE-REDUCE", m,
		func(_ K, v V, agg V, has bool) V {
			if !has {
				return v
			}
			return adder(agg, v)
		},
		func(_ K, v V, agg V) V { return subtractor(agg, v) })
}

// AggregateTable folds the rows of each key of a grouped table into an
// aggregate of type VA starting from init(): adder folds a new row in,
// subtractor takes an old row out (Kafka Streams' KGroupedTable.aggregate).
// As with Reduce, an aggregate that encodes as null deletes its key.
func AggregateTable[K, V, VA any](g KGroupedTable[K, V], init func() VA, adder, subtractor func(K, V, VA) VA, m Materialized[K, VA]) KTable[K, VA] {
	return tableAggregate(g, "aggregate", "KTABLE-AGGREGATE", m,
		func(k K, v V, agg VA, has bool) VA {
			if !has {
				agg = init()
			}
			return adder(k, v, agg)
		},
		subtractor)
}

// tableAggregate builds repartition sink → source → aggregate. add
// receives has false when the key has no aggregate yet (or the subtract
// just made it null).
func tableAggregate[K, V, VA any](g KGroupedTable[K, V], op, prefix string, m Materialized[K, VA], add func(k K, v V, agg VA, has bool) VA, sub func(k K, v V, agg VA) VA) KTable[K, VA] {
	b := g.b
	// Kafka numbers a generated store name first, then the repartition
	// sink and source, then the processor.
	store := m.Name
	if store == "" {
		store = b.newName("KTABLE-AGGREGATE-STATE-STORE")
	}
	sinkName, srcName := b.newName("KSTREAM-SINK"), b.newName("KSTREAM-SOURCE")
	nodeName := b.newName(prefix)
	topic := g.name
	if topic == "" {
		topic = store
	}
	topic += "-repartition"
	src := *g.shared // a named grouping aggregated again reads the same topic
	if src == nil {
		if b.repartitions[topic] != nil {
			b.errorf(op, nodeName, "repartition topic %s already exists; name the grouping (Grouped.Name) or the store", topic)
		}
		b.repartitions[topic] = &repartitionSpec{name: topic}
		if g.ks != nil && g.vs != nil {
			cs := changeSerde[V]{inner: g.vs}
			addSink(b, &node{op: op, name: sinkName, topics: []string{topic}, internal: true}, g.ks, cs, nil, nil, g.n)
			src = addSource(b, Consumed[K, Change[V]]{Key: g.ks, Value: cs, Name: srcName}, op, true, topic)
		} else {
			// GroupTable reported the missing serde; Build fails, so the
			// source is only a placeholder in the graph.
			src = b.addNode(&node{kind: kindSource, op: op, name: srcName, topics: []string{topic}, internal: true}, "KSTREAM-SOURCE")
		}
		if g.name != "" {
			*g.shared = src
		}
	}

	if m.Key == nil {
		m.Key = g.ks
	}
	m = declareStore(b, op, nodeName, store, m)
	ks, vs := m.Key, m.Value
	n := addFn(b, &node{op: op, name: nodeName, stores: []string{store}}, prefix, func(ctx *procCtx[K, Change[VA]]) (func(Record[K, Change[V]]) error, error) {
		st, err := newTypedStore(ctx.t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		st.forwardChanges(ctx)
		return func(r Record[K, Change[V]]) error {
			if r.KeyNull {
				ctx.t.dropped(ctx.n.name, "null-key")
				return nil
			}
			c := r.Value
			if r.ValueNull || (!c.HasOld && !c.HasNew) {
				return nil // nothing to add or take out
			}
			agg, oldTS, has, err := st.get(r.Key)
			if err != nil {
				return err
			}
			ts := r.Timestamp
			if has && oldTS > ts {
				ts = oldTS
			}
			if c.HasOld && has {
				agg = sub(r.Key, c.Old, agg)
				if c.HasNew {
					// A subtract that yields null starts the add afresh.
					ab, err := vs.Serialize(st.topic, agg)
					if err != nil {
						return err
					}
					has = ab != nil
				}
			}
			if c.HasNew {
				agg = add(r.Key, c.New, agg, has)
			} else if !has {
				return nil // a subtract from a key with no aggregate
			}
			return st.put(r.Key, agg, ts)
		}, nil
	}, src)
	return KTable[K, VA]{b: b, n: n, ks: ks, vs: vs, store: store, sources: []*node{src}, getter: storeGetter(store, ks, vs)}
}

// The flags ending a repartitioned Change.
const (
	changeOldOnly byte = 0
	changeNewOnly byte = 1
	changeBoth    byte = 2
)

// errBadChange is returned when decoding a malformed repartitioned Change.
var errBadChange = errors.New("stream: malformed repartitioned table change")

// changeSerde encodes the Change records of a KGroupedTable's repartition
// topic in Kafka Streams' own layout (its ChangedSerializer), so eddy and
// Java applications can read each other's topics:
//
//	old only:  <old value bytes> 0x00
//	new only:  <new value bytes> 0x01
//	both:      <varint length of the new value> <new value bytes> <old value bytes> 0x02
//
// The varint is Kafka's zig-zag variable-length int (the same bytes as
// encoding/binary's Varint for lengths). A side whose value serializes to
// nil (a null) counts as absent; a Change with neither side encodes as nil,
// which the aggregation ignores.
type changeSerde[V any] struct{ inner serde.Serde[V] }

func (s changeSerde[V]) Serialize(topic string, c Change[V]) ([]byte, error) {
	var nb, ob []byte
	var err error
	if c.HasNew {
		if nb, err = s.inner.Serialize(topic, c.New); err != nil {
			return nil, err
		}
	}
	if c.HasOld {
		if ob, err = s.inner.Serialize(topic, c.Old); err != nil {
			return nil, err
		}
	}
	switch {
	case nb != nil && ob != nil:
		out := binary.AppendVarint(make([]byte, 0, binary.MaxVarintLen32+len(nb)+len(ob)+1), int64(len(nb)))
		return append(append(append(out, nb...), ob...), changeBoth), nil
	case nb != nil:
		return append(append(make([]byte, 0, len(nb)+1), nb...), changeNewOnly), nil
	case ob != nil:
		return append(append(make([]byte, 0, len(ob)+1), ob...), changeOldOnly), nil
	}
	return nil, nil
}

func (s changeSerde[V]) Deserialize(topic string, b []byte) (Change[V], error) {
	var c Change[V]
	if len(b) == 0 {
		if b == nil {
			return c, fmt.Errorf("stream: table change: %w", serde.ErrNull)
		}
		return c, errBadChange
	}
	body, flag := b[:len(b)-1], b[len(b)-1]
	var nb, ob []byte
	switch flag {
	case changeOldOnly:
		ob = body
	case changeNewOnly:
		nb = body
	case changeBoth:
		l, n := binary.Varint(body)
		if n <= 0 || l < 0 || l > int64(len(body)-n) {
			return c, errBadChange
		}
		nb, ob = body[n:n+int(l)], body[n+int(l):]
	default:
		return c, errBadChange
	}
	var err error
	if nb != nil {
		if c.New, err = s.inner.Deserialize(topic, nb); err != nil {
			return c, err
		}
		c.HasNew = true
	}
	if ob != nil {
		if c.Old, err = s.inner.Deserialize(topic, ob); err != nil {
			return c, err
		}
		c.HasOld = true
	}
	return c, nil
}
