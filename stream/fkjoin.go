package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/eddy-streams/eddy/serde"
)

// ForeignKeyJoined configures a foreign-key join: Kafka Streams'
// TableJoined, plus serdes that override the tables' own.
type ForeignKeyJoined[K, V, KO any] struct {
	// Name names the join's processors, its two internal topics
	// ("<application-id>-<Name>-subscription-registration-topic" and
	// "...-subscription-response-topic") and its subscription store;
	// default: generated names, as Kafka Streams generates them.
	Name string
	// Key and Value are the left table's serdes (default: the table's).
	// The key serde encodes primary keys in subscriptions; the value
	// serde hashes left rows to recognize stale responses.
	Key   serde.Serde[K]
	Value serde.Serde[V]
	// ForeignKey is the right table's key serde (default: the table's).
	// Subscriptions are partitioned by the foreign key's bytes, so they
	// must be those of the right table's keys.
	ForeignKey serde.Serde[KO]
	// ForeignKeyPartitioner picks the partition of the right table that
	// holds fk (Kafka's otherPartitioner), for a right table written with
	// a custom partitioner; nil: Kafka's default partitioner on the
	// serialized foreign key.
	ForeignKeyPartitioner func(topic string, fk KO, numPartitions int32) int32
}

// JoinForeignKey joins each row of left with the row of right whose key fk
// extracts from the left row's value (inner join): Kafka Streams'
// KTable.join(other, foreignKeyExtractor, joiner), KIP-213. The result is
// keyed like left.
//
// The tables need not be co-partitioned. Each left row sends a
// subscription, keyed by its foreign key, through an internal topic to the
// right table's partition; the right side keeps subscriptions in a store
// keyed by (foreign key, primary key), answers each one, and re-answers
// every subscriber of a right row when that row changes. Answers travel
// back through a second internal topic to the left row's partition, where
// an answer computed for an older version of the left row (recognized by a
// hash of the row) is discarded.
//
// A left row whose foreign key has no right row has no result; a right
// delete removes the results of every left row referring to it; changing
// a left row's foreign key replaces its result (a tombstone when the new
// key has no right row). A foreign key that serializes to nil (a nil
// pointer with serde.Nullable) is null: such a row has no result and is
// counted as dropped ("null-key").
//
// The result is always materialized (store m.Name, or a generated name),
// so that its updates carry exact old values and no tombstone is emitted
// for a key without a result; its value serde comes from m.Value or is a
// built-in default. Timestamps: a left update gives its own timestamp, or
// the right row's when that is larger; a right update gives the right
// update's timestamp.
func JoinForeignKey[K, V, KO, VO, VR any](left KTable[K, V], right KTable[KO, VO], fk func(V) KO, joiner func(V, VO) VR, opts ForeignKeyJoined[K, V, KO], m Materialized[K, VR]) KTable[K, VR] {
	return foreignKeyJoin(left, right, false, fk, func(v V, vo VO, _ bool) VR { return joiner(v, vo) }, opts, m)
}

// LeftJoinForeignKey is JoinForeignKey keeping every left row (Kafka
// Streams' KTable.leftJoin(other, foreignKeyExtractor, joiner)): the
// joiner gets ok false and VO's zero value when the foreign key is null or
// has no right row.
func LeftJoinForeignKey[K, V, KO, VO, VR any](left KTable[K, V], right KTable[KO, VO], fk func(V) KO, joiner func(v V, vo VO, ok bool) VR, opts ForeignKeyJoined[K, V, KO], m Materialized[K, VR]) KTable[K, VR] {
	return foreignKeyJoin(left, right, true, fk, joiner, opts, m)
}

// What the right side does with a subscription (Kafka's
// SubscriptionWrapper.Instruction).
const (
	// fkDeleteNoPropagate: remove the subscription, answer nothing.
	fkDeleteNoPropagate byte = iota
	// fkDeleteAndPropagate: remove the subscription, answer "no row".
	fkDeleteAndPropagate
	// fkPropagateNullIfNoFK: store it, answer with the row or "no row".
	fkPropagateNullIfNoFK
	// fkPropagateOnlyIfFK: store it, answer only if the row exists.
	fkPropagateOnlyIfFK
)

const fkWireVersion = 0

// fkSubscription is the value of a subscription record; its key is the
// serialized foreign key (null for a null foreign key).
type fkSubscription struct {
	instruction byte
	hash        []byte // of the left row's value; nil: the row was deleted
	partition   int32  // the left row's partition, where answers go
	pk          []byte // the serialized primary key
}

// fkResponse is the value of a response record; its key is the serialized
// primary key.
type fkResponse struct {
	hash      []byte // the subscription's hash
	value     []byte // the serialized right row; nil: no row
	partition int32  // not serialized: the sink's partition
}

var errFKWire = errors.New("stream: malformed foreign-key join record")

func appendHash(b, hash []byte) []byte {
	if hash == nil {
		return append(b, 0)
	}
	return append(append(b, 1), hash...)
}

func readHash(b []byte) (hash, rest []byte, err error) {
	if len(b) < 1 || (b[0] == 1 && len(b) < 1+fkHashLen) {
		return nil, nil, errFKWire
	}
	if b[0] == 0 {
		return nil, b[1:], nil
	}
	return slices.Clone(b[1 : 1+fkHashLen]), b[1+fkHashLen:], nil
}

func encodeSubscription(s fkSubscription) []byte {
	b := make([]byte, 0, 8+fkHashLen+len(s.pk))
	b = append(b, fkWireVersion, s.instruction)
	b = appendHash(b, s.hash)
	b = binary.BigEndian.AppendUint32(b, uint32(s.partition))
	return append(b, s.pk...)
}

func decodeSubscription(b []byte) (fkSubscription, error) {
	if len(b) < 2 || b[0] != fkWireVersion {
		return fkSubscription{}, errFKWire
	}
	s := fkSubscription{instruction: b[1]}
	hash, rest, err := readHash(b[2:])
	if err != nil || len(rest) < 4 {
		return fkSubscription{}, errFKWire
	}
	s.hash, s.partition, s.pk = hash, int32(binary.BigEndian.Uint32(rest)), slices.Clone(rest[4:])
	return s, nil
}

func encodeResponse(r fkResponse) []byte {
	b := make([]byte, 0, 3+fkHashLen+len(r.value))
	b = appendHash(append(b, fkWireVersion), r.hash)
	if r.value == nil {
		return append(b, 0)
	}
	return append(append(b, 1), r.value...)
}

func decodeResponse(b []byte) (fkResponse, error) {
	if len(b) < 1 || b[0] != fkWireVersion {
		return fkResponse{}, errFKWire
	}
	hash, rest, err := readHash(b[1:])
	if err != nil || len(rest) < 1 {
		return fkResponse{}, errFKWire
	}
	r := fkResponse{hash: hash}
	if rest[0] == 1 {
		r.value = append([]byte{}, rest[1:]...)
	}
	return r, nil
}

var (
	subscriptionSerde = serde.Func(
		func(_ string, s fkSubscription) ([]byte, error) { return encodeSubscription(s), nil },
		func(_ string, b []byte) (fkSubscription, error) { return decodeSubscription(b) })
	responseSerde = serde.Func(
		func(_ string, r fkResponse) ([]byte, error) { return encodeResponse(r), nil },
		func(_ string, b []byte) (fkResponse, error) { return decodeResponse(b) })
)

const fkHashLen = 16

// valueHash is the 128-bit FNV-1a hash of a serialized left row (nil for
// no row): Kafka uses a 128-bit murmur3 hash the same way.
func valueHash(b []byte) []byte {
	if b == nil {
		return nil
	}
	h := fnv.New128a()
	h.Write(b)
	return h.Sum(nil)
}

// combinedKey is the subscription store key: the foreign key's length
// (4 bytes, big-endian), the foreign key, then the primary key (Kafka's
// CombinedKeySchema layout), so one foreign key's subscriptions are a
// prefix range.
func combinedKey(fk, pk []byte) []byte {
	b := make([]byte, 0, 4+len(fk)+len(pk))
	b = binary.BigEndian.AppendUint32(b, uint32(len(fk)))
	return append(append(b, fk...), pk...)
}

func foreignKeyJoin[K, V, KO, VO, VR any](left KTable[K, V], right KTable[KO, VO], leftJoin bool, fk func(V) KO, joiner func(V, VO, bool) VR, opts ForeignKeyJoined[K, V, KO], m Materialized[K, VR]) KTable[K, VR] {
	b := left.b
	op := "join"
	if leftJoin {
		op = "leftJoin"
	}
	name := func(suffix, prefix string) string {
		if opts.Name != "" {
			return opts.Name + suffix
		}
		return b.newName(prefix)
	}
	regTopic := name("-subscription-registration", "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION") + "-topic"
	sendName := name("-subscription-registration-processor", "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION")

	// Serdes: the left table's key and value, the right table's key and value.
	lks, lvs, fks, rvs := opts.Key, opts.Value, opts.ForeignKey, right.vs
	if lks == nil {
		lks = left.ks
	}
	if lvs == nil {
		lvs = left.vs
	}
	if fks == nil {
		fks = right.ks
	}
	lks, lvs, fks, rvs = orDefault(lks), orDefault(lvs), orDefault(fks), orDefault(rvs)
	for _, miss := range []struct {
		missing bool
		what    string
	}{{lks == nil, "the left table's key serde (ForeignKeyJoined.Key)"}, {lvs == nil, "the left table's value serde (ForeignKeyJoined.Value)"},
		{fks == nil, "the right table's key serde (ForeignKeyJoined.ForeignKey)"}, {rvs == nil, "the right table's value serde (KTable.WithSerdes)"}} {
		if miss.missing {
			b.errorf(op, sendName, "a foreign-key join needs %s", miss.what)
		}
	}
	if lks == nil || lvs == nil || fks == nil || rvs == nil {
		return KTable[K, VR]{b: b, n: left.n, sources: left.sources, getter: &tableGetter[K, VR]{}}
	}
	// Serdes inside subscriptions and responses see Kafka-style pseudo topics.
	pkTopic, fkTopic, vhTopic := regTopic+"-pk", regTopic+"-fk", regTopic+"-vh"
	voTopic := regTopic + "-vo"

	// Left side: send a subscription for every left update.
	send := addFn(b, &node{op: op, name: sendName}, "", func(ctx *procCtx[[]byte, fkSubscription]) (func(Record[K, Change[V]]) error, error) {
		return func(r Record[K, Change[V]]) error {
			if r.KeyNull {
				ctx.t.dropped(ctx.n.name, "null-key")
				return nil
			}
			c := r.Value
			pk, err := lks.Serialize(pkTopic, r.Key)
			if err != nil {
				return fmt.Errorf("serialize primary key: %w", err)
			}
			var hash, oldFK, newFK []byte
			if c.HasNew {
				vb, err := lvs.Serialize(vhTopic, c.New)
				if err != nil {
					return fmt.Errorf("serialize value: %w", err)
				}
				hash = valueHash(vb)
				if newFK, err = fks.Serialize(fkTopic, fk(c.New)); err != nil {
					return fmt.Errorf("serialize foreign key: %w", err)
				}
			}
			if c.HasOld {
				if oldFK, err = fks.Serialize(fkTopic, fk(c.Old)); err != nil {
					return fmt.Errorf("serialize old foreign key: %w", err)
				}
			}
			emit := func(fkb []byte, instruction byte) {
				ctx.Forward(Record[[]byte, fkSubscription]{Key: fkb, KeyNull: fkb == nil, Timestamp: r.Timestamp, Headers: r.Headers,
					Value: fkSubscription{instruction: instruction, hash: hash, partition: ctx.t.cfg.ID.Partition, pk: pk}})
			}
			sendSubscriptions(c.HasOld, c.HasNew, oldFK, newFK, leftJoin, emit, func() { ctx.t.dropped(ctx.n.name, "null-key") })
			return nil
		}, nil
	}, left.n)
	var fkPart func(string, []byte, fkSubscription, int32) int32
	if opts.ForeignKeyPartitioner != nil {
		fkPart = func(topic string, fkb []byte, _ fkSubscription, n int32) int32 {
			k, err := fks.Deserialize(fkTopic, fkb)
			if fkb == nil || err != nil {
				return -1
			}
			return opts.ForeignKeyPartitioner(topic, k, n)
		}
	}
	b.internalTopic(op, sendName, regTopic)
	addSink(b, &node{op: op, name: name("-subscription-registration-sink", "KTABLE-SINK"), topics: []string{regTopic}, internal: true},
		serde.Bytes(), subscriptionSerde, nil, fkPart, send)
	regSrc := addSource(b, Consumed[[]byte, fkSubscription]{Key: serde.Bytes(), Value: subscriptionSerde, Name: name("-subscription-registration-source", "KSTREAM-SOURCE")}, op, true, regTopic)
	b.copartition(regSrc.name+" ("+op+")", []*node{regSrc}, right.sources)

	// Right side: keep subscriptions, answer them.
	subStore := name("-subscription-store", "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE")
	b.addStore(op, sendName, &storeSpec{name: subStore, logging: true})
	receive := addFn(b, &node{op: op, name: name("-subscription-receive", "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR"), stores: []string{subStore}}, "",
		func(ctx *procCtx[[]byte, fkSubscription]) (func(Record[[]byte, fkSubscription]) error, error) {
			h, err := ctx.Store(subStore)
			if err != nil {
				return nil, err
			}
			return func(r Record[[]byte, fkSubscription]) error {
				s := r.Value
				if r.KeyNull {
					// Only a left join sends null foreign keys, to be
					// answered "no row"; nothing is stored.
					if s.instruction != fkPropagateNullIfNoFK {
						ctx.t.dropped(ctx.n.name, "null-key")
						return nil
					}
					ctx.Forward(r)
					return nil
				}
				ck := combinedKey(r.Key, s.pk)
				if s.instruction == fkDeleteNoPropagate || s.instruction == fkDeleteAndPropagate {
					err = h.Delete(ck, r.Timestamp)
				} else {
					err = h.Put(ck, encodeSubscription(s), r.Timestamp)
				}
				if err != nil {
					return err
				}
				ctx.Forward(r)
				return nil
			}, nil
		}, regSrc)
	rget := right.getter
	answer := addFn(b, &node{op: op, name: name("-subscription-join-foreign", "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR"), stores: rget.stores}, "",
		func(ctx *procCtx[[]byte, fkResponse]) (func(Record[[]byte, fkSubscription]) error, error) {
			get, err := rget.make(ctx.t)
			if err != nil {
				return nil, err
			}
			return func(r Record[[]byte, fkSubscription]) error {
				s := r.Value
				if s.instruction == fkDeleteNoPropagate {
					return nil
				}
				var value []byte
				ts := r.Timestamp
				if !r.KeyNull {
					ko, err := fks.Deserialize(fkTopic, r.Key)
					if err != nil {
						return fmt.Errorf("decode foreign key: %w", err)
					}
					vo, tsO, ok, err := get(ko)
					if err != nil {
						return err
					}
					if ok {
						if value, err = rvs.Serialize(voTopic, vo); err != nil {
							return fmt.Errorf("serialize right value: %w", err)
						}
						ts = max(ts, tsO)
					}
				}
				switch {
				case s.instruction == fkDeleteAndPropagate:
					value = nil
				case s.instruction == fkPropagateOnlyIfFK && value == nil:
					return nil
				}
				ctx.Forward(Record[[]byte, fkResponse]{Key: s.pk, Timestamp: ts, Headers: r.Headers,
					Value: fkResponse{hash: s.hash, value: value, partition: s.partition}})
				return nil
			}, nil
		}, receive)
	// A right update answers every subscription of its key again.
	rejoin := addFn(b, &node{op: op, name: name("-foreign-join-subscription", "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR"), stores: []string{subStore}}, "",
		func(ctx *procCtx[[]byte, fkResponse]) (func(Record[KO, Change[VO]]) error, error) {
			h, err := ctx.Store(subStore)
			if err != nil {
				return nil, err
			}
			return func(r Record[KO, Change[VO]]) error {
				if r.KeyNull {
					ctx.t.dropped(ctx.n.name, "null-key")
					return nil
				}
				fkb, err := fks.Serialize(fkTopic, r.Key)
				if err != nil {
					return fmt.Errorf("serialize foreign key: %w", err)
				}
				if fkb == nil {
					ctx.t.dropped(ctx.n.name, "null-key")
					return nil
				}
				var value []byte
				if r.Value.HasNew {
					if value, err = rvs.Serialize(voTopic, r.Value.New); err != nil {
						return fmt.Errorf("serialize right value: %w", err)
					}
				}
				prefix := combinedKey(fkb, nil)
				var subs []fkSubscription
				for e, err := range h.Range(prefix, nil) {
					if err != nil {
						return err
					}
					if !bytes.HasPrefix(e.Key, prefix) {
						break
					}
					s, err := decodeSubscription(e.Value)
					if err != nil {
						return err
					}
					subs = append(subs, s)
				}
				for _, s := range subs {
					ctx.Forward(Record[[]byte, fkResponse]{Key: s.pk, Timestamp: r.Timestamp, Headers: r.Headers,
						Value: fkResponse{hash: s.hash, value: value, partition: s.partition}})
				}
				return nil
			}, nil
		}, right.n)

	respTopic := name("-subscription-response", "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE") + "-topic"
	b.internalTopic(op, sendName, respTopic)
	respSink := addSink(b, &node{op: op, name: name("-subscription-response-sink", "KTABLE-SINK"), topics: []string{respTopic}, internal: true},
		serde.Bytes(), responseSerde, nil, func(_ string, _ []byte, v fkResponse, _ int32) int32 { return v.partition }, answer)
	respSink.parents = append(respSink.parents, rejoin)
	rejoin.children = append(rejoin.children, respSink)
	respSrc := addSource(b, Consumed[[]byte, fkResponse]{Key: serde.Bytes(), Value: responseSerde, Name: name("-subscription-response-source", "KSTREAM-SOURCE")}, op, true, respTopic)
	b.copartition(respSrc.name+" ("+op+")", []*node{respSrc}, left.sources)

	// Left side again: resolve answers against the current left row.
	lget := left.getter
	resolve := addFn(b, &node{op: op, name: name("-subscription-response-resolver", "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR"), stores: lget.stores}, "",
		func(ctx *procCtx[K, VR]) (func(Record[[]byte, fkResponse]) error, error) {
			get, err := lget.make(ctx.t)
			if err != nil {
				return nil, err
			}
			return func(r Record[[]byte, fkResponse]) error {
				k, err := lks.Deserialize(pkTopic, r.Key)
				if err != nil {
					return fmt.Errorf("decode primary key: %w", err)
				}
				v, _, ok, err := get(k)
				if err != nil {
					return err
				}
				var cur []byte
				if ok {
					vb, err := lvs.Serialize(vhTopic, v)
					if err != nil {
						return fmt.Errorf("serialize value: %w", err)
					}
					cur = valueHash(vb)
				}
				if !bytes.Equal(cur, r.Value.hash) {
					// An answer to an older version of the left row.
					ctx.t.dropped(ctx.n.name, "stale-fk-response")
					return nil
				}
				out := Record[K, VR]{Key: k, Timestamp: r.Timestamp, Headers: r.Headers}
				if !ok || (r.Value.value == nil && !leftJoin) {
					out.ValueNull = true
				} else {
					var vo VO
					if r.Value.value != nil {
						if vo, err = rvs.Deserialize(voTopic, r.Value.value); err != nil {
							return fmt.Errorf("decode right value: %w", err)
						}
					}
					out.Value = joiner(v, vo, r.Value.value != nil)
				}
				ctx.Forward(out)
				return nil
			}, nil
		}, respSrc)
	if m.Key == nil {
		m.Key = lks
	}
	res := KStream[K, VR]{b: b, n: resolve, ks: lks, sources: append(slices.Clone(left.sources), respSrc)}
	return toTable(res, op, "KTABLE-FK-JOIN-OUTPUT", m)
}

// internalTopic registers an internal topic of the foreign-key join (the
// runtime creates every topic of Subtopologies' RepartitionSources/Sinks).
func (b *Builder) internalTopic(op, node, topic string) {
	if _, dup := b.repartitions[topic]; dup {
		b.errorf(op, node, "internal topic %s already exists; name the join (ForeignKeyJoined.Name)", topic)
	}
	b.repartitions[topic] = &repartitionSpec{name: topic}
}

// sendSubscriptions decides which subscriptions a left update sends
// (Kafka's SubscriptionSendProcessorSupplier, with KAFKA-16394 and
// KAFKA-16407 applied): oldFK/newFK are the serialized foreign keys of the
// old and new rows (nil: null), hasOld/hasNew whether those rows exist.
func sendSubscriptions(hasOld, hasNew bool, oldFK, newFK []byte, leftJoin bool, emit func(fk []byte, instruction byte), dropNull func()) {
	if leftJoin {
		switch {
		case !hasNew && !hasOld:
		case !hasNew:
			// The row is deleted: its result (there is always one) goes.
			instruction := fkDeleteAndPropagate
			if oldFK == nil {
				instruction = fkPropagateNullIfNoFK // nothing to unsubscribe
			}
			emit(oldFK, instruction)
		default:
			if hasOld && oldFK != nil && !bytes.Equal(oldFK, newFK) {
				emit(oldFK, fkDeleteNoPropagate)
			}
			emit(newFK, fkPropagateNullIfNoFK)
		}
		return
	}
	oldOK, newOK := hasOld && oldFK != nil, hasNew && newFK != nil
	switch {
	case oldOK && newOK && bytes.Equal(oldFK, newFK):
		emit(newFK, fkPropagateOnlyIfFK)
	case oldOK && newOK:
		emit(oldFK, fkDeleteNoPropagate)
		emit(newFK, fkPropagateNullIfNoFK) // unsets the old result if newFK has no row
	case oldOK:
		emit(oldFK, fkDeleteAndPropagate) // deleted, or the foreign key became null
		if hasNew {
			dropNull()
		}
	case newOK:
		emit(newFK, fkPropagateOnlyIfFK)
	case hasNew:
		dropNull()
	}
}
