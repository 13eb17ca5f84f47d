package stream

import (
	"regexp"
	"time"

	"github.com/eddy-streams/eddy/serde"
)

// Repartitioned configures an explicit repartition: Kafka Streams'
// Repartitioned.
type Repartitioned[K, V any] struct {
	// Name names the topic "<application-id>-<Name>-repartition"; default
	// a generated name.
	Name  string
	Key   serde.Serde[K]
	Value serde.Serde[V]
	// Partitions is the topic's partition count; 0: as many as the
	// upstream source topics have.
	Partitions int32
}

// Repartition writes the stream through a repartition topic, partitioned
// by key (Kafka Streams' repartition()). Later key-based operators read it
// without repartitioning again.
func (s KStream[K, V]) Repartition(r Repartitioned[K, V]) KStream[K, V] {
	ks, vs := r.Key, r.Value
	if ks == nil {
		ks = s.ks
	}
	if vs == nil {
		vs = s.vs
	}
	name := r.Name
	if name == "" {
		name = s.b.newName("KSTREAM-REPARTITION")
	}
	return repartition(s, "repartition", name, ks, vs, r.Partitions, false)
}

// generatedName matches the names Builder.newName generates for KSTREAM
// nodes.
var generatedName = regexp.MustCompile(`^KSTREAM.*-[0-9]{10}$`)

// repartition routes s through the topic name+"-repartition":
// filter (of null keys, when dropNullKeys) → sink → source. As in Kafka
// Streams, the three nodes take generated names when name was generated
// itself, and "<topic>-filter", "<topic>-sink" and "<topic>-source" when it
// was given by the user; the generated numbers are used up either way.
func repartition[K, V any](s KStream[K, V], op, name string, ks serde.Serde[K], vs serde.Serde[V], partitions int32, dropNullKeys bool) KStream[K, V] {
	b := s.b
	topic := name + "-repartition"
	sinkName, filterName, srcName := b.newName("KSTREAM-SINK"), b.newName("KSTREAM-FILTER"), b.newName("KSTREAM-SOURCE")
	if !generatedName.MatchString(name) {
		sinkName, filterName, srcName = topic+"-sink", topic+"-filter", topic+"-source"
	}
	ks, vs = orDefault(ks), orDefault(vs)
	if ks == nil || vs == nil {
		b.errorf(op, s.n.name, "repartition topic %s needs a key and a value serde (Grouped, Repartitioned or Joined)", topic)
		return s
	}
	if _, dup := b.repartitions[topic]; dup {
		b.errorf(op, s.n.name, "repartition topic %s already exists; name the operator", topic)
	}
	b.repartitions[topic] = &repartitionSpec{name: topic, partitions: partitions}
	filter := stateless(b, op, filterName, "KSTREAM-FILTER", s.n, func(ctx *procCtx[K, V], r Record[K, V]) error {
		if dropNullKeys && r.KeyNull {
			ctx.t.dropped(ctx.n.name, "null-key")
			return nil
		}
		ctx.Forward(r)
		return nil
	})
	addSink(b, &node{op: op, name: sinkName, topics: []string{topic}, internal: true}, ks, vs, nil, nil, filter)
	src := addSource(b, Consumed[K, V]{Key: ks, Value: vs, Name: srcName}, op, true, topic)
	return KStream[K, V]{b: b, n: src, ks: ks, vs: vs, sources: []*node{src}}
}

// Grouped gives the serdes (and name) of a grouping: Kafka Streams'
// Grouped. Nil serdes default to the stream's.
type Grouped[K, V any] struct {
	// Name names the repartition topic, if one is needed.
	Name  string
	Key   serde.Serde[K]
	Value serde.Serde[V]
}

// KGroupedStream is a stream grouped by key, ready to aggregate: Kafka
// Streams' KGroupedStream.
type KGroupedStream[K, V any] struct {
	s    KStream[K, V]
	name string
	// repartition is needed before aggregating.
	repartition bool
}

// GroupByKey groups the stream by its current key.
func (s KStream[K, V]) GroupByKey(g Grouped[K, V]) KGroupedStream[K, V] {
	if g.Key != nil {
		s.ks = g.Key
	}
	if g.Value != nil {
		s.vs = g.Value
	}
	return KGroupedStream[K, V]{s: s, name: g.Name, repartition: s.keyChanged}
}

// GroupBy groups the stream by a new key computed by fn (always a
// repartition).
func GroupBy[K, V, K2 any](s KStream[K, V], fn func(K, V) K2, g Grouped[K2, V]) KGroupedStream[K2, V] {
	n := stateless(s.b, "groupBy", "", "KSTREAM-KEY-SELECT", s.n, func(ctx *procCtx[K2, V], r Record[K, V]) error {
		out := withKV(r, fn(r.Key, r.Value), r.Value)
		out.ValueNull = r.ValueNull
		ctx.Forward(out)
		return nil
	})
	vs := g.Value
	if vs == nil {
		vs = s.vs
	}
	s2 := KStream[K2, V]{b: s.b, n: n, ks: g.Key, vs: vs, keyChanged: true, sources: s.sources}
	return KGroupedStream[K2, V]{s: s2, name: g.Name, repartition: true}
}

// Materialized configures the store of an aggregation or table: Kafka
// Streams' Materialized. The zero value is a persistent, logged, cached
// store with a generated name and the upstream serdes.
type Materialized[K, V any] struct {
	// Name names the store (and its changelog topic and, for grouped
	// streams without a Grouped name, the repartition topic).
	Name  string
	Key   serde.Serde[K]
	Value serde.Serde[V]
	// InMemory keeps the store in memory.
	InMemory bool
	// DisableLogging turns the changelog off.
	DisableLogging bool
	// DisableCaching forwards every update instead of the latest per key
	// at each commit.
	DisableCaching bool
	// ChangelogConfigs are extra changelog topic configs.
	ChangelogConfigs map[string]string
	// Retention is how long a window or session store keeps a window, in
	// stream time (Kafka's Materialized.withRetention); ignored by
	// key-value stores. Zero: the smallest that works, the window size
	// plus its grace (see docs/windows.md). A retention shorter than that
	// is a Build error.
	Retention time.Duration
}

// As returns Materialized naming the store.
func As[K, V any](name string) Materialized[K, V] { return Materialized[K, V]{Name: name} }

// input prepares the grouped stream for an aggregation whose store is
// storeName: repartitions if needed.
func (g KGroupedStream[K, V]) input(op, storeName string) KStream[K, V] {
	if !g.repartition {
		return g.s
	}
	if g.name == "" {
		return repartition(g.s, op, storeName, g.s.ks, g.s.vs, 0, true)
	}
	// A named grouping aggregated more than once shares one repartition
	// topic, as in Kafka Streams.
	key := groupedKey{g.s.n, g.name}
	if prev, ok := g.s.b.grouped[key]; ok {
		if s, ok := prev.(KStream[K, V]); ok {
			return s
		}
	}
	out := repartition(g.s, op, g.name, g.s.ks, g.s.vs, 0, true)
	if g.s.b.grouped == nil {
		g.s.b.grouped = map[groupedKey]any{}
	}
	g.s.b.grouped[key] = out
	return out
}

// groupedKey identifies a named grouping of one stream node.
type groupedKey struct {
	n    *node
	name string
}

// Count counts records per key; records with a null key or value are
// dropped.
func (g KGroupedStream[K, V]) Count(m Materialized[K, int64]) KTable[K, int64] {
	if m.Value == nil {
		m.Value = serde.Int64()
	}
	return aggregate(g, "count", func(_ K, _ V, agg int64, _ bool) int64 { return agg + 1 }, m)
}

// Reduce combines the values of each key with fn (the first value is
// taken as is).
func (g KGroupedStream[K, V]) Reduce(fn func(agg, v V) V, m Materialized[K, V]) KTable[K, V] {
	if m.Value == nil {
		m.Value = g.s.vs
	}
	return aggregate(g, "reduce", func(_ K, v V, agg V, has bool) V {
		if !has {
			return v
		}
		return fn(agg, v)
	}, m)
}

// Aggregate folds the values of each key into an aggregate of type VA,
// starting from init().
func Aggregate[K, V, VA any](g KGroupedStream[K, V], init func() VA, adder func(K, V, VA) VA, m Materialized[K, VA]) KTable[K, VA] {
	return aggregate(g, "aggregate", func(k K, v V, agg VA, has bool) VA {
		if !has {
			agg = init()
		}
		return adder(k, v, agg)
	}, m)
}

func aggregate[K, V, VA any](g KGroupedStream[K, V], op string, fold func(k K, v V, agg VA, has bool) VA, m Materialized[K, VA]) KTable[K, VA] {
	b := g.s.b
	prefix := "KSTREAM-AGGREGATE"
	if op == "reduce" {
		prefix = "KSTREAM-REDUCE"
	}
	store := m.Name
	if store == "" {
		// Kafka numbers a generated store name before the processor.
		store = b.newName(prefix + "-STATE-STORE")
	}
	nodeName := b.newName(prefix)
	if m.Key == nil {
		m.Key = g.s.ks
	}
	in := g.input(op, store)
	m = declareStore(b, op, nodeName, store, m)
	ks, vs := m.Key, m.Value
	n := addFn(b, &node{op: op, name: nodeName, stores: []string{store}}, prefix, func(ctx *procCtx[K, Change[VA]]) (func(Record[K, V]) error, error) {
		st, err := newTypedStore(ctx.t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		st.forwardChanges(ctx)
		return func(r Record[K, V]) error {
			if r.KeyNull || r.ValueNull {
				ctx.t.dropped(ctx.n.name, "null-key-or-value")
				return nil
			}
			old, oldTS, has, err := st.get(r.Key)
			if err != nil {
				return err
			}
			agg := fold(r.Key, r.Value, old, has)
			ts := r.Timestamp
			if has && oldTS > ts {
				ts = oldTS
			}
			return st.put(r.Key, agg, ts)
		}, nil
	}, in.n)
	return KTable[K, VA]{b: b, n: n, ks: ks, vs: vs, store: store, sources: in.sources, getter: storeGetter(store, ks, vs)}
}

// declareStore fills m's missing serdes with the built-in defaults,
// reports a build error naming the operator when one is still missing, and
// declares the store.
func declareStore[K, V any](b *Builder, op, nodeName, store string, m Materialized[K, V]) Materialized[K, V] {
	m.Key, m.Value = orDefault(m.Key), orDefault(m.Value)
	if m.Key == nil {
		b.errorf(op, nodeName, "no key serde for store %s (Grouped or Materialized)", store)
	}
	if m.Value == nil {
		b.errorf(op, nodeName, "no value serde for store %s (Materialized)", store)
	}
	b.addStore(op, nodeName, m.spec(store))
	return m
}

func (m Materialized[K, V]) spec(name string) *storeSpec {
	return &storeSpec{name: name, inMemory: m.InMemory, logging: !m.DisableLogging, caching: !m.DisableCaching, changelog: m.ChangelogConfigs}
}
