package stream

import "github.com/eddy-streams/eddy/serde"

// CogroupedStream aggregates several grouped streams with the same key
// type, each with its own value type and adder, into one table: Kafka
// Streams' CogroupedKStream. Start one with Cogroup, add streams with
// CogroupWith and finish with Aggregate.
//
// All inputs fold into one shared store. Each input that needs it is
// repartitioned first (through "<Grouped name or store>-repartition"), and
// the inputs must be co-partitioned.
type CogroupedStream[K, VA any] struct {
	b      *Builder
	ks     serde.Serde[K]
	inputs []cogroupInput[K, VA]
}

// cogroupInput is one grouped stream of a cogroup, its value type hidden
// in closures.
type cogroupInput[K, VA any] struct {
	// prepare repartitions the input if it needs it; store names the
	// repartition topic when the grouping has no name.
	prepare func(store string) (parent *node, sources []*node)
	// attach adds the input's aggregate processor below parent.
	attach func(parent *node, store string, ks serde.Serde[K], vs serde.Serde[VA], init func() VA) *node
}

// Cogroup starts a cogroup with g, whose values adder folds into the
// aggregate (Kafka Streams' KGroupedStream.cogroup).
func Cogroup[K, V, VA any](g KGroupedStream[K, V], adder func(K, V, VA) VA) *CogroupedStream[K, VA] {
	c := &CogroupedStream[K, VA]{b: g.s.b, ks: g.s.ks}
	return CogroupWith(c, g, adder)
}

// CogroupWith adds the grouped stream g, whose values adder folds into the
// aggregate, and returns c.
func CogroupWith[K, V, VA any](c *CogroupedStream[K, VA], g KGroupedStream[K, V], adder func(K, V, VA) VA) *CogroupedStream[K, VA] {
	if c.ks == nil {
		c.ks = g.s.ks
	}
	c.inputs = append(c.inputs, cogroupInput[K, VA]{
		prepare: func(store string) (*node, []*node) {
			in := g.input("cogroup", store)
			return in.n, in.sources
		},
		attach: func(parent *node, store string, ks serde.Serde[K], vs serde.Serde[VA], init func() VA) *node {
			return addFn(c.b, &node{op: "cogroup", stores: []string{store}}, "COGROUPKSTREAM-AGGREGATE", func(ctx *procCtx[K, Change[VA]]) (func(Record[K, V]) error, error) {
				st, err := newTypedStore(ctx.t, store, ks, vs)
				if err != nil {
					return nil, err
				}
				// Every input's processor sets the store's flush listener;
				// they all forward to the same merge node, so any will do.
				st.forwardChanges(ctx)
				return func(r Record[K, V]) error {
					if r.KeyNull || r.ValueNull {
						ctx.t.dropped(ctx.n.name, "null-key-or-value")
						return nil
					}
					agg, oldTS, has, err := st.get(r.Key)
					if err != nil {
						return err
					}
					ts := r.Timestamp
					if !has {
						agg = init()
					} else if oldTS > ts {
						ts = oldTS
					}
					return st.put(r.Key, adder(r.Key, r.Value, agg), ts)
				}, nil
			}, parent)
		},
	})
	return c
}

// Aggregate builds the cogroup: every input's records fold into one
// aggregate per key, starting from init(). The result's updates carry the
// largest timestamp of the records folded in so far, as Kafka Streams'
// aggregations do.
func (c *CogroupedStream[K, VA]) Aggregate(init func() VA, m Materialized[K, VA]) KTable[K, VA] {
	b := c.b
	// Kafka's numbering: a generated store name, the repartitions, one
	// processor per input, then the merge.
	store := m.Name
	if store == "" {
		store = b.newName("COGROUPKSTREAM-AGGREGATE-STATE-STORE")
	}
	parents := make([]*node, len(c.inputs))
	var sources [][]*node
	for i, in := range c.inputs {
		var src []*node
		parents[i], src = in.prepare(store)
		sources = append(sources, src)
	}
	if m.Key == nil {
		m.Key = c.ks
	}
	m.Key, m.Value = orDefault(m.Key), orDefault(m.Value)
	aggs := make([]*node, len(c.inputs))
	for i, in := range c.inputs {
		aggs[i] = in.attach(parents[i], store, m.Key, m.Value, init)
	}
	merge := addFn(b, &node{op: "cogroup"}, "COGROUPKSTREAM-MERGE", func(ctx *procCtx[K, Change[VA]]) (func(Record[K, Change[VA]]) error, error) {
		return func(r Record[K, Change[VA]]) error { ctx.Forward(r); return nil }, nil
	}, aggs...)
	declareStore(b, "cogroup", merge.name, store, m)
	var rest []*node
	for _, src := range sources[1:] {
		rest = append(rest, src...)
	}
	if len(rest) > 0 {
		b.copartition(merge.name+" (cogroup)", sources[0], rest)
	}
	all := append(append([]*node{}, sources[0]...), rest...)
	return KTable[K, VA]{b: b, n: merge, ks: m.Key, vs: m.Value, store: store, sources: all, getter: storeGetter(store, m.Key, m.Value)}
}
