package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/window"
)

// StreamJoined configures a stream-stream join: Kafka Streams'
// StreamJoined. Nil serdes default to the joined streams' own (and to the
// built-in defaults for string, []byte and number types).
type StreamJoined[K, V1, V2 any] struct {
	// Name names the join's processors (Name+"-this-windowed",
	// Name+"-this-join", Name+"-merge", ...) and, when a side must be
	// repartitioned, its repartition topic (Name+"-left-repartition",
	// Name+"-right-repartition"), as Kafka's StreamJoined.withName does.
	// Empty: generated names (KSTREAM-WINDOWED-0000000003, ...).
	Name string
	// StoreName is the base name of the join's stores, as Kafka's
	// StreamJoined.withStoreName: StoreName+"-this-join-store" and
	// StoreName+"-other-join-store" ("-outer-this-join-store" and
	// "-outer-other-join-store" for the sides whose unmatched records a
	// left or outer join emits), and StoreName+"-left-shared-join-store"
	// (left join) or StoreName+"-outer-shared-join-store" (outer join) for
	// the unmatched records. Empty: names generated from the processors'
	// (KSTREAM-JOINTHIS-0000000004-store, KSTREAM-OUTERSHARED-0000000004-store,
	// ...).
	StoreName string
	// Key is the key serde of both sides' stores.
	Key serde.Serde[K]
	// Value is the left stream's value serde.
	Value serde.Serde[V1]
	// OtherValue is the right stream's value serde.
	OtherValue serde.Serde[V2]
	// InMemory keeps the join's stores in memory.
	InMemory bool
	// DisableLogging turns the stores' changelogs off.
	DisableLogging bool
}

// JoinStreams joins two streams on their key within a time window (inner
// join): Kafka Streams' KStream.join(KStream, ValueJoiner, JoinWindows,
// StreamJoined).
//
// A left record at tL and a right record at tR of the same key join when
// w.Matches(tL, tR): tL - before <= tR <= tL + after, both bounds
// included. Each side keeps its records in a window store for
// w.Retention() (before + after + grace) of stream time; a record of
// either side is joined with every stored record of the other side in its
// range, in timestamp order (records of one timestamp in arrival order),
// and each match emits joiner's result with timestamp max(tL, tR) and the
// arriving record's headers. Several records of a key with the same
// timestamp are all kept and all joined.
//
// Records with a null key or value are dropped (counted as
// "null-key-or-value"). A record too old for its own side's store (its
// timestamp <= the store's observed stream time - retention) still joins
// with what the other side holds, but is not stored; it is counted as
// "late", as Kafka counts the store's skipped write in dropped-records.
//
// The two streams must be co-partitioned; a stream whose key changed is
// repartitioned first (through "<Name>-left-repartition", or, without a
// Name, a topic named after the stream's last processor).
func JoinStreams[K, V1, V2, VR any](left KStream[K, V1], right KStream[K, V2], joiner func(k K, v1 V1, v2 V2) VR, w window.JoinWindows, j StreamJoined[K, V1, V2]) KStream[K, VR] {
	return joinStreams(left, right, innerJoin, func(k K, v1 V1, _ bool, v2 V2, _ bool) VR { return joiner(k, v1, v2) }, w, j)
}

// LeftJoinStreams is JoinStreams keeping every left record: Kafka Streams'
// KStream.leftJoin(KStream) with the spurious-result fix of Kafka 3.1
// (KIP-633 windows).
//
// A left record with no match is not emitted at once: it waits in the
// join's shared store of unmatched records until a right record matches
// it (then only the join results are emitted) or its window closes, when
// the join's observed stream time (the largest timestamp either side has
// seen) passes t + after + grace (w.LeftUnmatchedClosed). It is then
// emitted with its own timestamp, joiner getting ok false and V2's zero
// value. A left record whose window has already ended when it arrives
// (t + after < observed stream time) and that matches nothing is emitted
// at once. Unmatched records are emitted, oldest first, before the
// arriving record's own results, when a record that does not lower the
// observed stream time arrives.
//
// As of Kafka 3.7 (KIP-962), a left record with a null key (and a value)
// is not dropped: it is emitted at once with ok false. Right records with
// a null key or value, and left records with a null value, are dropped.
func LeftJoinStreams[K, V1, V2, VR any](left KStream[K, V1], right KStream[K, V2], joiner func(k K, v1 V1, v2 V2, ok bool) VR, w window.JoinWindows, j StreamJoined[K, V1, V2]) KStream[K, VR] {
	return joinStreams(left, right, leftJoin, func(k K, v1 V1, _ bool, v2 V2, ok2 bool) VR { return joiner(k, v1, v2, ok2) }, w, j)
}

// OuterJoinStreams is LeftJoinStreams keeping the unmatched records of
// both sides: Kafka Streams' KStream.outerJoin(KStream). okLeft and okRight
// say which sides the result has; a missing side is its type's zero value.
// An unmatched right record at t is emitted once the observed stream time
// passes t + before + grace (w.RightUnmatchedClosed). Null-key records
// (with a value) of either side are emitted at once.
func OuterJoinStreams[K, V1, V2, VR any](left KStream[K, V1], right KStream[K, V2], joiner func(k K, v1 V1, v2 V2, okLeft, okRight bool) VR, w window.JoinWindows, j StreamJoined[K, V1, V2]) KStream[K, VR] {
	return joinStreams(left, right, outerJoin, func(k K, v1 V1, ok1 bool, v2 V2, ok2 bool) VR { return joiner(k, v1, v2, ok1, ok2) }, w, j)
}

// Store layouts of a stream-stream join (eddy's own; the changelogs are
// not readable by Kafka Streams):
//
//   - Each side's window store holds, per key and record timestamp (the
//     window start), the list of that side's values of that key and
//     timestamp, in arrival order. A list is a sequence of entries, each a
//     4-byte big-endian length followed by the value bytes.
//   - The shared store of unmatched records is a key-value store whose key
//     is the 8-byte big-endian record timestamp, one side byte (1 left, 0
//     right) and the key bytes, so that it iterates in time order (Kafka's
//     TimestampedKeyAndJoinSide layout); its value is the list of that
//     side's unmatched values, in the same list layout.
//
// Every write carries the whole list of its key to the changelog, so the
// window stores' changelogs keep the usual compact,delete policy (Kafka's
// join-store changelogs carry one record per value, told apart by a
// sequence number, and use delete).

// appendJoinValue appends v to the list encoded in list.
func appendJoinValue(list, v []byte) []byte {
	out := make([]byte, 0, len(list)+4+len(v))
	out = append(out, list...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(v)))
	return append(out, v...)
}

// errBadJoinList reports a corrupt value list in a join store.
var errBadJoinList = errors.New("stream: corrupt value list in a join store")

// joinValues calls fn with each value of an encoded list.
func joinValues(list []byte, fn func(v []byte) error) error {
	for len(list) > 0 {
		if len(list) < 4 {
			return errBadJoinList
		}
		n := binary.BigEndian.Uint32(list)
		if uint64(len(list)-4) < uint64(n) {
			return errBadJoinList
		}
		if err := fn(list[4 : 4+n : 4+n]); err != nil {
			return err
		}
		list = list[4+n:]
	}
	return nil
}

// outerJoinKey is the shared store's key of the unmatched records of one
// side, key and timestamp.
func outerJoinKey(ts int64, left bool, key []byte) []byte {
	b := make([]byte, 9+len(key))
	binary.BigEndian.PutUint64(b, uint64(ts))
	if left {
		b[8] = 1
	}
	copy(b[9:], key)
	return b
}

// splitOuterJoinKey splits an outerJoinKey.
func splitOuterJoinKey(b []byte) (ts int64, left bool, key []byte, err error) {
	if len(b) < 10 {
		return 0, false, nil, fmt.Errorf("stream: join store key of %d bytes is too short", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), b[8] == 1, b[9:], nil
}

// joinTime is the observed stream time shared by both sides of one join
// in one task (Kafka's sharedTimeTracker), with a lower bound of the
// timestamps in the shared store of unmatched records.
type joinTime struct {
	streamTime int64
	// minTime is at most the smallest timestamp in the shared store
	// (math.MaxInt64: the store is empty); minKnown is false until the
	// store has been scanned once, as after a restart.
	minTime  int64
	minKnown bool
	refs     int
}

// joinTimes holds a join's per-task joinTime, shared by its two
// processors. Tasks run on different goroutines, hence the lock.
type joinTimes struct {
	mu sync.Mutex
	m  map[*Task]*joinTime
}

func (j *joinTimes) get(t *Task) *joinTime {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.m == nil {
		j.m = map[*Task]*joinTime{}
	}
	jt := j.m[t]
	if jt == nil {
		jt = &joinTime{streamTime: -1}
		j.m[t] = jt
	}
	jt.refs++
	return jt
}

func (j *joinTimes) release(t *Task) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if jt := j.m[t]; jt != nil {
		if jt.refs--; jt.refs <= 0 {
			delete(j.m, t)
		}
	}
}

// joinAddSat adds without overflowing.
func joinAddSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}

// streamJoinInput repartitions a join side whose key changed, naming the
// topic as Kafka does: name (Name+"-left"/"-right") or the stream's last
// processor. A stream joined twice shares one repartition topic.
func streamJoinInput[K, V any](s KStream[K, V], op, name string, ks serde.Serde[K], vs serde.Serde[V]) KStream[K, V] {
	if !s.keyChanged {
		return s
	}
	if name == "" {
		name = s.n.name
	}
	key := groupedKey{s.n, "join:" + name}
	if prev, ok := s.b.grouped[key]; ok {
		if out, ok := prev.(KStream[K, V]); ok {
			return out
		}
	}
	out := repartition(s, op, name, ks, vs, 0, true)
	if s.b.grouped == nil {
		s.b.grouped = map[groupedKey]any{}
	}
	s.b.grouped[key] = out
	return out
}

// firstSerde returns the first non-nil serde, or the built-in default.
func firstSerde[T any](ss ...serde.Serde[T]) serde.Serde[T] {
	for _, s := range ss {
		if s != nil {
			return s
		}
	}
	return orDefault[T](nil)
}

func joinStreams[K, V1, V2, VR any](left KStream[K, V1], right KStream[K, V2], kind tableJoinKind, joiner func(K, V1, bool, V2, bool) VR, w window.JoinWindows, j StreamJoined[K, V1, V2]) KStream[K, VR] {
	b := left.b
	op := kind.op()
	leftOuter, rightOuter := kind != innerJoin, kind == outerJoin
	if right.b != b {
		b.errorf(op, j.Name, "the streams come from different Builders")
		return KStream[K, VR]{b: b, n: left.n}
	}
	ks := firstSerde(j.Key, left.ks, right.ks)
	v1s := firstSerde(j.Value, left.vs)
	v2s := firstSerde(j.OtherValue, right.vs)

	leftName, rightName := "", ""
	if j.Name != "" {
		leftName, rightName = j.Name+"-left", j.Name+"-right"
	}
	left = streamJoinInput(left, op, leftName, ks, v1s)
	right = streamJoinInput(right, op, rightName, ks, v2s)

	// Names, generated in Kafka's order.
	named := func(suffix, prefix string) string {
		if j.Name != "" {
			return j.Name + suffix
		}
		return b.newName(prefix)
	}
	thisWinName := named("-this-windowed", "KSTREAM-WINDOWED")
	otherWinName := named("-other-windowed", "KSTREAM-WINDOWED")
	thisPrefix, thisSuffix := "KSTREAM-JOINTHIS", "-this-join"
	if rightOuter {
		thisPrefix, thisSuffix = "KSTREAM-OUTERTHIS", "-outer-this-join"
	}
	otherPrefix, otherSuffix := "KSTREAM-JOINOTHER", "-other-join"
	if leftOuter {
		otherPrefix, otherSuffix = "KSTREAM-OUTEROTHER", "-outer-other-join"
	}
	thisGen, otherGen := b.newName(thisPrefix), b.newName(otherPrefix)
	thisName, otherName := thisGen, otherGen
	if j.Name != "" {
		thisName, otherName = j.Name+thisSuffix, j.Name+otherSuffix
	}
	mergeName := named("-merge", "KSTREAM-MERGE")
	thisStore, otherStore := thisGen+"-store", otherGen+"-store"
	if j.StoreName != "" {
		thisStore, otherStore = j.StoreName+thisSuffix+"-store", j.StoreName+otherSuffix+"-store"
	}
	outerStore := ""
	if leftOuter {
		suffix := "-left-shared-join"
		if rightOuter {
			suffix = "-outer-shared-join"
		}
		if j.StoreName != "" {
			outerStore = j.StoreName + suffix + "-store"
		} else {
			outerStore = "KSTREAM-OUTERSHARED-" + thisGen[strings.LastIndexByte(thisGen, '-')+1:] + "-store"
		}
	}

	// Checks and stores.
	ok := true
	if err := w.Err(); err != nil {
		b.errorf(op, thisName, "join windows: %v", err)
		ok = false
	}
	if ks == nil {
		b.errorf(op, thisName, "no key serde for the join stores (StreamJoined.Key)")
		ok = false
	}
	if v1s == nil {
		b.errorf(op, thisName, "no value serde for the left stream's store %s (StreamJoined.Value)", thisStore)
		ok = false
	}
	if v2s == nil {
		b.errorf(op, thisName, "no value serde for the right stream's store %s (StreamJoined.OtherValue)", otherStore)
		ok = false
	}
	// A zero retention would expire every record at once: keep at least
	// the records of the latest millisecond (JoinWindowsOf(0) joins equal
	// timestamps).
	retention := max(w.Retention(), time.Millisecond)
	if ok {
		declareWindowedStore(b, op, thisWinName, thisStore, Materialized[K, V1]{Key: ks, Value: v1s, InMemory: j.InMemory, DisableLogging: j.DisableLogging, DisableCaching: true}, WindowKind, retention, false)
		declareWindowedStore(b, op, otherWinName, otherStore, Materialized[K, V2]{Key: ks, Value: v2s, InMemory: j.InMemory, DisableLogging: j.DisableLogging, DisableCaching: true}, WindowKind, retention, false)
		if outerStore != "" {
			b.addStore(op, thisName, &storeSpec{name: outerStore, logging: !j.DisableLogging, inMemory: j.InMemory, kind: KeyValueKind})
		}
	}

	// Processors.
	thisWin := addFn(b, &node{op: op, name: thisWinName, stores: []string{thisStore}}, "KSTREAM-WINDOWED", joinWindowFn[K, V1](thisStore, thisStore, ks, v1s, retention), left.n)
	otherWin := addFn(b, &node{op: op, name: otherWinName, stores: []string{otherStore}}, "KSTREAM-WINDOWED", joinWindowFn[K, V2](otherStore, thisStore, ks, v2s, retention), right.n)
	times := &joinTimes{}
	joinStores := func(other string) []string {
		if outerStore == "" {
			return []string{other}
		}
		return []string{other, outerStore}
	}
	before, after, grace := w.BeforeMs(), w.AfterMs(), w.GraceMs()
	thisSide := &joinSide2[K, V1, V2, VR]{
		w: w, left: true, outer: leftOuter, back: before, fwd: after, lookback: after, grace: grace,
		otherStore: otherStore, keyStore: thisStore, outerStore: outerStore, ks: ks, thisVS: v1s, otherVS: v2s, times: times,
		join: joiner,
	}
	otherSide := &joinSide2[K, V2, V1, VR]{
		w: w, left: false, outer: rightOuter, back: after, fwd: before, lookback: before, grace: grace,
		otherStore: thisStore, keyStore: thisStore, outerStore: outerStore, ks: ks, thisVS: v2s, otherVS: v1s, times: times,
		join: func(k K, v2 V2, ok2 bool, v1 V1, ok1 bool) VR { return joiner(k, v1, ok1, v2, ok2) },
	}
	thisJoin := addProcessor(b, &node{op: op, name: thisName, stores: joinStores(otherStore)}, thisPrefix, thisSide.supplier, thisWin)
	otherJoin := addProcessor(b, &node{op: op, name: otherName, stores: joinStores(thisStore)}, otherPrefix, otherSide.supplier, otherWin)
	merge := addFn(b, &node{op: op, name: mergeName}, "KSTREAM-MERGE", func(ctx *procCtx[K, VR]) (func(Record[K, VR]) error, error) {
		return func(r Record[K, VR]) error { ctx.Forward(r); return nil }, nil
	}, thisJoin, otherJoin)
	b.copartition(thisJoin.name+" ("+op+")", left.sources, right.sources)
	sources := append(append([]*node{}, left.sources...), right.sources...)
	return KStream[K, VR]{b: b, n: merge, ks: ks, sources: sources}
}

// joinWindowFn is the KSTREAM-WINDOWED processor of one side: it passes
// each record on to the side's join processor, then keeps it (key and
// value not null) in the side's window store, appended to the values of
// its key and timestamp. A record too old for the store is not kept and
// is counted as "late". Keys are serialized for keyStore's changelog (the
// left side's), so that both sides' key bytes agree.
func joinWindowFn[K, V any](store, keyStore string, ks serde.Serde[K], vs serde.Serde[V], retention time.Duration) func(ctx *procCtx[K, V]) (func(Record[K, V]) error, error) {
	ret := retention.Milliseconds()
	return func(ctx *procCtx[K, V]) (func(Record[K, V]) error, error) {
		h, err := ctx.Store(store)
		if err != nil {
			return nil, err
		}
		topic := ChangelogTopic(ctx.t.cfg.ApplicationID, store)
		keyTopic := ChangelogTopic(ctx.t.cfg.ApplicationID, keyStore)
		return func(r Record[K, V]) error {
			ctx.Forward(r)
			if r.KeyNull || r.ValueNull {
				return nil
			}
			if obs := h.ObservedStreamTime(); obs >= 0 && r.Timestamp <= obs-ret {
				ctx.t.dropped(ctx.n.name, "late")
				return nil
			}
			kb, err := ks.Serialize(keyTopic, r.Key)
			if err != nil {
				return fmt.Errorf("join store %s: key: %w", store, err)
			}
			vb, err := vs.Serialize(topic, r.Value)
			if err != nil {
				return fmt.Errorf("join store %s: value: %w", store, err)
			}
			if vb == nil {
				return nil // a null value never joins
			}
			old, _, _, err := h.FetchWindow(kb, r.Timestamp)
			if err != nil {
				return err
			}
			return h.PutWindow(kb, r.Timestamp, appendJoinValue(old, vb), r.Timestamp)
		}, nil
	}
}

// joinSide2 is the join processor of one side of a stream-stream join
// (Kafka's KStreamKStreamJoinLeftSide / RightSide): VT is this side's
// value type, VO the other's. join takes this side's value first.
type joinSide2[K, VT, VO, VR any] struct {
	w     window.JoinWindows
	left  bool // this is the left side
	outer bool // this side's unmatched records are emitted
	// back and fwd: a record at t looks up the other side in
	// [t-back, t+fwd]. lookback: this side's unmatched record at t closes
	// when t + lookback + grace < stream time.
	back, fwd, lookback, grace int64
	// otherStore is the other side's window store; keyStore the store
	// whose changelog topic keys are serialized for (the left side's);
	// outerStore the shared store of unmatched records ("" for an inner
	// join).
	otherStore, keyStore, outerStore string
	ks                               serde.Serde[K]
	thisVS                           serde.Serde[VT]
	otherVS                          serde.Serde[VO]
	times                            *joinTimes
	join                             func(k K, vt VT, okT bool, vo VO, okO bool) VR
}

func (s *joinSide2[K, VT, VO, VR]) supplier() Processor[K, VT, K, VR] {
	return &joinProc[K, VT, VO, VR]{s: s}
}

// joinProc is one task's instance of a joinSide2.
type joinProc[K, VT, VO, VR any] struct {
	s     *joinSide2[K, VT, VO, VR]
	ctx   *procCtx[K, VR]
	other *StoreHandle
	outer *StoreHandle // nil for an inner join
	tt    *joinTime
	// Topics handed to the serdes: keyTopic for keys, otherTopic for the
	// other side's stored values, outerTopic for unmatched values.
	keyTopic, otherTopic, outerTopic string
}

func (p *joinProc[K, VT, VO, VR]) Init(c ProcessorContext[K, VR]) error {
	ctx, ok := c.(*procCtx[K, VR])
	if !ok {
		return fmt.Errorf("stream: join processor given a %T", c)
	}
	p.ctx = ctx
	var err error
	if p.other, err = ctx.Store(p.s.otherStore); err != nil {
		return err
	}
	if p.s.outerStore != "" {
		if p.outer, err = ctx.Store(p.s.outerStore); err != nil {
			return err
		}
	}
	app := ctx.t.cfg.ApplicationID
	p.keyTopic = ChangelogTopic(app, p.s.keyStore)
	p.otherTopic = ChangelogTopic(app, p.s.otherStore)
	p.outerTopic = ChangelogTopic(app, p.s.outerStore)
	p.tt = p.s.times.get(ctx.t)
	return nil
}

func (p *joinProc[K, VT, VO, VR]) Close() error {
	if p.ctx != nil {
		p.s.times.release(p.ctx.t)
	}
	return nil
}

func (p *joinProc[K, VT, VO, VR]) Process(r Record[K, VT]) error {
	s, tt := p.s, p.tt
	tt.streamTime = max(tt.streamTime, r.Timestamp)
	var zeroO VO
	if r.KeyNull && !r.ValueNull && s.outer {
		p.ctx.Forward(withValue(r, s.join(r.Key, r.Value, true, zeroO, false)))
		return nil
	}
	if r.KeyNull || r.ValueNull {
		p.ctx.t.dropped(p.ctx.n.name, "null-key-or-value")
		return nil
	}
	if p.outer != nil && r.Timestamp == tt.streamTime {
		if err := p.emitClosed(r); err != nil {
			return err
		}
	}
	kb, err := s.ks.Serialize(p.keyTopic, r.Key)
	if err != nil {
		return fmt.Errorf("join: key: %w", err)
	}
	from := max(0, joinAddSat(r.Timestamp, -s.back))
	to := max(0, joinAddSat(r.Timestamp, s.fwd))
	matched := false
	for e, err := range p.other.FetchWindows(kb, from, to) {
		if err != nil {
			return err
		}
		err = joinValues(e.Value, func(vb []byte) error {
			matched = true
			if p.outer != nil {
				// The other side's record at e.Start is matched now: it
				// must not be emitted as unmatched.
				if err := p.removeUnmatched(outerJoinKey(e.Start, !s.left, kb), r.Timestamp); err != nil {
					return err
				}
			}
			vo, err := s.otherVS.Deserialize(p.otherTopic, vb)
			if err != nil {
				return fmt.Errorf("join: stored value: %w", err)
			}
			out := withValue(r, s.join(r.Key, r.Value, true, vo, true))
			out.Timestamp = max(r.Timestamp, e.Start)
			p.ctx.Forward(out)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if matched || !s.outer {
		return nil
	}
	if to < tt.streamTime {
		// The record's window has ended already (it is out of order):
		// nothing can match it later but a record within the grace
		// period, and Kafka does not wait for those.
		p.ctx.Forward(withValue(r, s.join(r.Key, r.Value, true, zeroO, false)))
		return nil
	}
	vb, err := s.thisVS.Serialize(p.outerTopic, r.Value)
	if err != nil {
		return fmt.Errorf("join: value: %w", err)
	}
	if vb == nil {
		return nil
	}
	if !tt.minKnown || r.Timestamp < tt.minTime {
		// minKnown stays false until the first scan, which finds older
		// records a restored store may hold.
		tt.minTime = r.Timestamp
	}
	key := outerJoinKey(r.Timestamp, s.left, kb)
	old, _, _, err := p.outer.Get(key)
	if err != nil {
		return err
	}
	return p.outer.Put(key, appendJoinValue(old, vb), r.Timestamp)
}

// removeUnmatched deletes key from the shared store if it is there.
func (p *joinProc[K, VT, VO, VR]) removeUnmatched(key []byte, ts int64) error {
	_, _, ok, err := p.outer.Get(key)
	if err != nil || !ok {
		return err
	}
	return p.outer.Delete(key, ts)
}

// emitClosed emits, oldest first, the unmatched records of the shared
// store whose window has closed at the observed stream time, and removes
// them. As Kafka, it does not look when the oldest unmatched record's
// window is still open as seen from this side (t + this side's lookback +
// grace >= stream time), and it stops at the first record from which on
// both sides' windows are open.
func (p *joinProc[K, VT, VO, VR]) emitClosed(r Record[K, VT]) error {
	s, tt := p.s, p.tt
	st := tt.streamTime
	if tt.minKnown && (tt.minTime == math.MaxInt64 || joinAddSat(joinAddSat(tt.minTime, s.lookback), s.grace) >= st) {
		return nil
	}
	var zeroT VT
	var zeroO VO
	leftOpen, rightOpen := false, false
	newMin := int64(math.MaxInt64)
	var done [][]byte
	for e, err := range p.outer.All() {
		if err != nil {
			return err
		}
		ts, isLeft, kb, err := splitOuterJoinKey(e.Key)
		if err != nil {
			return err
		}
		if leftOpen && rightOpen {
			break
		}
		closed := s.w.RightUnmatchedClosed(ts, st)
		if isLeft {
			closed = s.w.LeftUnmatchedClosed(ts, st)
		}
		if !closed {
			leftOpen = leftOpen || isLeft
			rightOpen = rightOpen || !isLeft
			newMin = min(newMin, ts)
			continue
		}
		k, err := s.ks.Deserialize(p.keyTopic, kb)
		if err != nil {
			return fmt.Errorf("join: stored key: %w", err)
		}
		this := isLeft == s.left
		err = joinValues(e.Value, func(vb []byte) error {
			var out VR
			if this {
				v, err := s.thisVS.Deserialize(p.outerTopic, vb)
				if err != nil {
					return fmt.Errorf("join: stored value: %w", err)
				}
				out = s.join(k, v, true, zeroO, false)
			} else {
				v, err := s.otherVS.Deserialize(p.outerTopic, vb)
				if err != nil {
					return fmt.Errorf("join: stored value: %w", err)
				}
				out = s.join(k, zeroT, false, v, true)
			}
			p.ctx.Forward(Record[K, VR]{Key: k, Value: out, Timestamp: ts, Headers: r.Headers})
			return nil
		})
		if err != nil {
			return err
		}
		done = append(done, e.Key)
	}
	for _, key := range done {
		if err := p.outer.Delete(key, r.Timestamp); err != nil {
			return err
		}
	}
	tt.minTime, tt.minKnown = newMin, true
	return nil
}
