package stream

import "slices"

// tableJoinKind is the kind of a table-table join.
type tableJoinKind int

const (
	innerJoin tableJoinKind = iota
	leftJoin
	outerJoin
)

// op returns the DSL operator name.
func (k tableJoinKind) op() string {
	switch k {
	case leftJoin:
		return "leftJoin"
	case outerJoin:
		return "outerJoin"
	}
	return "join"
}

// exists reports whether a join row exists for a key whose left and right
// rows exist as given.
func (k tableJoinKind) exists(okLeft, okRight bool) bool {
	switch k {
	case leftJoin:
		return okLeft
	case outerJoin:
		return okLeft || okRight
	}
	return okLeft && okRight
}

// JoinTables joins two tables on their key (inner join): Kafka Streams'
// KTable.join(KTable). The result has a row for every key both tables have.
//
// An update on either side looks up the other side's current row and emits
// the new join row (with the old one, for downstream subtraction); its
// timestamp is the larger of both rows' timestamps. A delete on either side
// emits a tombstone only if a join row existed. The tables must be
// co-partitioned. The result is materialized in a store when m.Name is set;
// otherwise lookups (by a later join) compute the join from both tables.
func JoinTables[K, V1, V2, VR any](a KTable[K, V1], b KTable[K, V2], joiner func(K, V1, V2) VR, m Materialized[K, VR]) KTable[K, VR] {
	return joinTables(a, b, innerJoin, func(k K, v1 V1, _ bool, v2 V2, _ bool) VR { return joiner(k, v1, v2) }, m)
}

// LeftJoinTables is JoinTables keeping every row of a (Kafka Streams'
// KTable.leftJoin(KTable)): the joiner gets ok false and V2's zero value
// when b has no row for the key.
func LeftJoinTables[K, V1, V2, VR any](a KTable[K, V1], b KTable[K, V2], joiner func(k K, v1 V1, v2 V2, ok bool) VR, m Materialized[K, VR]) KTable[K, VR] {
	return joinTables(a, b, leftJoin, func(k K, v1 V1, _ bool, v2 V2, ok2 bool) VR { return joiner(k, v1, v2, ok2) }, m)
}

// OuterJoinTables is JoinTables keeping every row of either table (Kafka
// Streams' KTable.outerJoin(KTable)): okLeft and okRight say which sides
// have a row; a missing side is its type's zero value.
func OuterJoinTables[K, V1, V2, VR any](a KTable[K, V1], b KTable[K, V2], joiner func(k K, v1 V1, v2 V2, okLeft, okRight bool) VR, m Materialized[K, VR]) KTable[K, VR] {
	return joinTables(a, b, outerJoin, func(k K, v1 V1, ok1 bool, v2 V2, ok2 bool) VR { return joiner(k, v1, v2, ok1, ok2) }, m)
}

// joinedChange is the join's Change for an update c of one side: exists
// says whether a join row exists when the updated side has a row (ok) or
// not, and join computes it.
func joinedChange[VU, VR any](c Change[VU], exists func(ok bool) bool, join func(v VU, ok bool) VR) (Change[VR], bool) {
	var out Change[VR]
	if exists(c.HasNew) {
		out.New, out.HasNew = join(c.New, c.HasNew), true
	}
	if exists(c.HasOld) {
		out.Old, out.HasOld = join(c.Old, c.HasOld), true
	}
	return out, out.HasNew || out.HasOld
}

// joinSide adds the processor that joins the updates of one table (input
// type VU) with the other's current rows (VO) looked up through getter.
// exists and join take the updated side first.
func joinSide[K, VU, VO, VR any](b *Builder, op, prefix string, parent *node, getter *tableGetter[K, VO], exists func(okU, okO bool) bool, join func(k K, vu VU, okU bool, vo VO, okO bool) VR) *node {
	return addFn(b, &node{op: op, stores: getter.stores}, prefix, func(ctx *procCtx[K, Change[VR]]) (func(Record[K, Change[VU]]) error, error) {
		get, err := getter.make(ctx.t)
		if err != nil {
			return nil, err
		}
		return func(r Record[K, Change[VU]]) error {
			if r.KeyNull {
				ctx.t.dropped(ctx.n.name, "null-key")
				return nil
			}
			vo, tsO, okO, err := get(r.Key)
			if err != nil {
				return err
			}
			out, ok := joinedChange(r.Value,
				func(okU bool) bool { return exists(okU, okO) },
				func(vu VU, okU bool) VR { return join(r.Key, vu, okU, vo, okO) })
			if !ok {
				return nil // no join row before or after
			}
			ts := r.Timestamp
			if okO && tsO > ts {
				ts = tsO
			}
			ctx.Forward(Record[K, Change[VR]]{Key: r.Key, Value: out, Timestamp: ts, Headers: r.Headers})
			return nil
		}, nil
	}, parent)
}

func joinTables[K, V1, V2, VR any](a KTable[K, V1], o KTable[K, V2], kind tableJoinKind, joiner func(K, V1, bool, V2, bool) VR, m Materialized[K, VR]) KTable[K, VR] {
	b := a.b
	op := kind.op()
	this := joinSide(b, op, "KTABLE-JOINTHIS", a.n, o.getter, kind.exists, joiner)
	other := joinSide(b, op, "KTABLE-JOINOTHER", o.n, a.getter,
		func(okU, okO bool) bool { return kind.exists(okO, okU) },
		func(k K, v2 V2, ok2 bool, v1 V1, ok1 bool) VR { return joiner(k, v1, ok1, v2, ok2) })
	b.copartition(this.name+" ("+op+")", a.sources, o.sources)

	out := KTable[K, VR]{b: b, ks: a.ks, sources: append(slices.Clone(a.sources), o.sources...)}
	mergeName := b.newName("KTABLE-MERGE")
	if m.Name == "" {
		out.n = addFn(b, &node{op: op, name: mergeName}, "KTABLE-MERGE", func(ctx *procCtx[K, Change[VR]]) (func(Record[K, Change[VR]]) error, error) {
			return func(r Record[K, Change[VR]]) error { ctx.Forward(r); return nil }, nil
		}, this, other)
		out.getter = joinGetter(a.getter, o.getter, kind, joiner)
		return out
	}
	if m.Key == nil {
		m.Key = a.ks
	}
	m = declareStore(b, op, mergeName, m.Name, m)
	store, ks, vs := m.Name, m.Key, m.Value
	out.n = addFn(b, &node{op: op, name: mergeName, stores: []string{store}}, "KTABLE-MERGE", func(ctx *procCtx[K, Change[VR]]) (func(Record[K, Change[VR]]) error, error) {
		st, err := newTypedStore(ctx.t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		st.forwardChanges(ctx)
		return func(r Record[K, Change[VR]]) error {
			if r.Value.HasNew {
				return st.put(r.Key, r.Value.New, r.Timestamp)
			}
			return st.delete(r.Key, r.Timestamp)
		}, nil
	}, this, other)
	out.ks, out.vs, out.store, out.getter = ks, vs, store, storeGetter(store, ks, vs)
	return out
}

// joinGetter computes a join row on lookup from both tables' getters (the
// result of a join that is not materialized).
func joinGetter[K, V1, V2, VR any](a *tableGetter[K, V1], o *tableGetter[K, V2], kind tableJoinKind, joiner func(K, V1, bool, V2, bool) VR) *tableGetter[K, VR] {
	stores := slices.Clone(a.stores)
	for _, s := range o.stores {
		if !slices.Contains(stores, s) {
			stores = append(stores, s)
		}
	}
	return &tableGetter[K, VR]{stores: stores, make: func(t *Task) (func(K) (VR, int64, bool, error), error) {
		getA, err := a.make(t)
		if err != nil {
			return nil, err
		}
		getO, err := o.make(t)
		if err != nil {
			return nil, err
		}
		return func(k K) (VR, int64, bool, error) {
			var zero VR
			v1, ts1, ok1, err := getA(k)
			if err != nil {
				return zero, 0, false, err
			}
			v2, ts2, ok2, err := getO(k)
			if err != nil {
				return zero, 0, false, err
			}
			if !kind.exists(ok1, ok2) {
				return zero, 0, false, nil
			}
			ts := int64(-1)
			if ok1 {
				ts = ts1
			}
			if ok2 && ts2 > ts {
				ts = ts2
			}
			return joiner(k, v1, ok1, v2, ok2), ts, true, nil
		}, nil
	}}
}
