package stream

import "github.com/eddy-streams/eddy/serde"

// Joined gives the serdes used if a join must repartition its stream
// side: Kafka Streams' Joined.
type Joined[K, V any] struct {
	// Name names the join processor and its repartition topic.
	Name  string
	Key   serde.Serde[K]
	Value serde.Serde[V]
}

// copartition records that the sources of a and b must be co-partitioned
// (the runtime checks partition counts) and places them in one
// sub-topology.
func (b *Builder) copartition(op string, a, c []*node) {
	g := copartGroup{op: op}
	g.nodes = append(append(g.nodes, a...), c...)
	if len(g.nodes) > 1 {
		b.copart = append(b.copart, g)
	}
}

// streamForJoin repartitions s if its key changed.
func streamForJoin[K, V any](s KStream[K, V], op string, j Joined[K, V]) KStream[K, V] {
	if j.Key != nil {
		s.ks = j.Key
	}
	if j.Value != nil {
		s.vs = j.Value
	}
	if !s.keyChanged {
		return s
	}
	name := j.Name
	if name == "" {
		name = s.b.newName("KSTREAM-JOIN")
	}
	return repartition(s, op, name, s.ks, s.vs, 0, true)
}

// JoinTable joins each stream record with the table's current value for
// its key (inner join): Kafka Streams' KStream.join(KTable). Only stream
// records produce output, with the stream record's timestamp; records with
// a null key or value, or no table row, produce nothing.
func JoinTable[K, V, VT, VR any](s KStream[K, V], t KTable[K, VT], joiner func(K, V, VT) VR, j Joined[K, V]) KStream[K, VR] {
	return streamTableJoin(s, t, "join", false, func(k K, v V, vt VT, _ bool) VR { return joiner(k, v, vt) }, j)
}

// LeftJoinTable is JoinTable where a stream record with no table row still
// produces output: the joiner gets ok false and VT's zero value.
func LeftJoinTable[K, V, VT, VR any](s KStream[K, V], t KTable[K, VT], joiner func(k K, v V, vt VT, ok bool) VR, j Joined[K, V]) KStream[K, VR] {
	return streamTableJoin(s, t, "leftJoin", true, joiner, j)
}

func streamTableJoin[K, V, VT, VR any](s KStream[K, V], t KTable[K, VT], op string, left bool, joiner func(K, V, VT, bool) VR, j Joined[K, V]) KStream[K, VR] {
	b := s.b
	s = streamForJoin(s, op, j)
	getter := t.getter
	n := addFn(b, &node{op: op, name: j.Name, stores: getter.stores}, "KSTREAM-JOIN", func(ctx *procCtx[K, VR]) (func(Record[K, V]) error, error) {
		get, err := getter.make(ctx.t)
		if err != nil {
			return nil, err
		}
		return func(r Record[K, V]) error {
			if r.KeyNull || r.ValueNull {
				ctx.t.dropped(ctx.n.name, "null-key-or-value")
				return nil
			}
			vt, _, ok, err := get(r.Key)
			if err != nil {
				return err
			}
			if !ok && !left {
				return nil
			}
			ctx.Forward(withValue(r, joiner(r.Key, r.Value, vt, ok)))
			return nil
		}, nil
	}, s.n)
	b.copartition(n.name+" ("+op+")", s.sources, t.sources)
	return KStream[K, VR]{b: b, n: n, ks: s.ks, sources: s.sources}
}
