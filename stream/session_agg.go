package stream

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/window"
)

// SessionWindowedKStream is a grouped stream cut into session windows,
// ready to aggregate with CountSessions, ReduceSessions or
// AggregateSessions: Kafka Streams' SessionWindowedKStream, computed as
// its KStreamSessionWindowAggregate computes it. Get one with
// KGroupedStream.WindowedBySession.
//
// Each key's records form sessions: a record at t starts the session
// [t, t] and merges with every session of its key in the store that ends
// at or after t-gap and starts at or before t+gap
// (window.SessionWindows.Mergeable). The aggregates of the merged sessions
// are combined with the merger, in session order (by end, then start), the
// record is added, and the merged session [earliest start, latest end]
// replaces the old ones in the store.
//
// The result is a KTable keyed by window.Windowed[K] whose windows include
// both bounds; its key serde is window.SessionWindowedSerde of the key
// serde. The record timestamp of a result is the session end, its largest
// input timestamp. Looking the table up (in a join) finds a session by
// key and exact bounds.
//
// # Late records
//
// Each aggregation keeps its observed stream time, the largest timestamp
// it has seen. A record whose session, after merging, ends before
// observed - grace - gap is late: it is dropped and counted ("late").
// Records with a null key or value are dropped and counted
// ("null-key-or-value"); Kafka drops only null keys and hands null values
// to the aggregator.
//
// # Emitting
//
// With the default EmitOnWindowUpdate every change is forwarded at once:
// a tombstone (a Change with only Old) for each session a merge replaced,
// then the new session's aggregate. A record that falls inside an
// existing session, without extending it, updates that session: with the
// record cache on (Materialized.DisableCaching unset, and a task cache)
// as one update, as Kafka's cached store forwards it; with it off as a
// tombstone and an update, as Kafka's uncached store does. The store
// itself is always written through, since every record searches it.
//
// With EmitOnWindowClose each session is forwarded once, when a record
// moves the close time (observed - grace - gap) past its end; sessions
// closing together are forwarded by end, start, then serialized key, with
// the headers of that record. Merges forward nothing. A later record may
// still merge with a session that was emitted, if the store holds it (a
// retention longer than the default), and the merged session is emitted
// again when it closes, as in Kafka.
//
// # Store
//
// The session store keeps a session until stream time passes end +
// Materialized.Retention; the retention defaults to, and must be at least,
// gap + grace (Kafka's rule). eddy adds one millisecond: its store expires
// a session once end <= stream time - retention (the rule of Kafka's
// in-memory session store; its RocksDB store drops whole segments, later),
// and without it a session ending exactly at the close time would be gone
// before a later record closes and emits it. A record cannot merge with a
// session the store no longer holds.
//
// After a restart the aggregation resumes from the store: its observed
// stream time is the largest session end written, and under
// EmitOnWindowClose the sessions closed at that time count as emitted.
// Kafka keeps the emitted close time in its commit metadata and restarts
// its observed stream time from nothing.
type SessionWindowedKStream[K, V any] struct {
	g    KGroupedStream[K, V]
	w    window.SessionWindows
	emit EmitStrategy
}

// WindowedBySession cuts the grouped stream into session windows (Kafka
// Streams' windowedBy(SessionWindows)). An invalid w (see
// window.SessionWindows.Err) is a Build error.
func (g KGroupedStream[K, V]) WindowedBySession(w window.SessionWindows) SessionWindowedKStream[K, V] {
	return SessionWindowedKStream[K, V]{g: g, w: w}
}

// Emit sets when results are forwarded: EmitOnWindowUpdate (the default)
// forwards every update and every merge tombstone; EmitOnWindowClose
// forwards each session once, when it closes (its end is before observed
// stream time - grace - gap), and nothing for sessions a merge replaced
// before they closed (Kafka's KIP-825 emitStrategy(onWindowClose)).
func (s SessionWindowedKStream[K, V]) Emit(e EmitStrategy) SessionWindowedKStream[K, V] {
	s.emit = e
	return s
}

// CountSessions counts the records of each session (Kafka Streams'
// SessionWindowedKStream.count); merging sessions adds their counts. m's
// Key serde is the inner key's (default: the grouping's); its Value serde
// defaults to serde.Int64.
//
// It is a function rather than a method, as are ReduceSessions and
// AggregateSessions, for the reason given at CountWindowed: a method
// returning a table keyed by window.Windowed[K] would be an instantiation
// cycle.
func CountSessions[K, V any](s SessionWindowedKStream[K, V], m Materialized[K, int64]) KTable[window.Windowed[K], int64] {
	if m.Value == nil {
		m.Value = serde.Int64()
	}
	return sessionAggregate(s, "count", sessionFold[K, V, int64]{
		init:  func() (int64, bool) { return 0, true },
		merge: func(_ K, agg int64, _ bool, other int64) int64 { return agg + other },
		add:   func(_ K, _ V, agg int64, _ bool) int64 { return agg + 1 },
	}, m, "")
}

// ReduceSessions combines the values of each session with fn (Kafka
// Streams' SessionWindowedKStream.reduce); a session's first value is
// taken as is. Merging sessions reduces their aggregates in session
// order: fn(earlier, later). m's Value serde defaults to the grouping's.
// A nil fn is a Build error.
func ReduceSessions[K, V any](s SessionWindowedKStream[K, V], fn func(agg, v V) V, m Materialized[K, V]) KTable[window.Windowed[K], V] {
	if m.Value == nil {
		m.Value = s.g.s.vs
	}
	reduce := func(agg V, has bool, v V) V {
		if !has {
			return v
		}
		return fn(agg, v)
	}
	missing := ""
	if fn == nil {
		missing = "reducer"
	}
	return sessionAggregate(s, "reduce", sessionFold[K, V, V]{
		init:  func() (V, bool) { var zero V; return zero, false },
		merge: func(_ K, agg V, has bool, other V) V { return reduce(agg, has, other) },
		add:   func(_ K, v V, agg V, has bool) V { return reduce(agg, has, v) },
	}, m, missing)
}

// AggregateSessions folds the values of each session into an aggregate of
// type VA, starting from init() (Kafka Streams'
// SessionWindowedKStream.aggregate). When a record merges sessions, the
// new aggregate is init(), merged with each merged session's aggregate in
// session order (merger(key, aggregate so far, session's aggregate)),
// then adder(key, value, aggregate). Nil functions and a missing value
// serde are Build errors.
func AggregateSessions[K, V, VA any](s SessionWindowedKStream[K, V], init func() VA, adder func(K, V, VA) VA, merger func(k K, a, b VA) VA, m Materialized[K, VA]) KTable[window.Windowed[K], VA] {
	missing := ""
	switch {
	case init == nil:
		missing = "initializer"
	case adder == nil:
		missing = "aggregator"
	case merger == nil:
		missing = "session merger"
	}
	return sessionAggregate(s, "aggregate", sessionFold[K, V, VA]{
		init:  func() (VA, bool) { return init(), true },
		merge: func(k K, agg VA, _ bool, other VA) VA { return merger(k, agg, other) },
		add:   func(k K, v V, agg VA, _ bool) VA { return adder(k, v, agg) },
	}, m, missing)
}

// sessionFold is how an operator builds a session's aggregate. has says
// the aggregate holds a value: Reduce's starts without one (Kafka's null
// initial aggregate).
type sessionFold[K, V, VA any] struct {
	init  func() (agg VA, has bool)
	merge func(k K, agg VA, has bool, other VA) VA
	add   func(k K, v V, agg VA, has bool) VA
}

// sessionAggregate adds a session aggregation: Kafka's
// SessionWindowedKStreamImpl building a KStreamSessionWindowAggregate.
// missing names a nil user function (a Build error).
func sessionAggregate[K, V, VA any](s SessionWindowedKStream[K, V], op string, fold sessionFold[K, V, VA], m Materialized[K, VA], missing string) KTable[window.Windowed[K], VA] {
	g, w := s.g, s.w
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
	if missing != "" {
		b.errorf(op, nodeName, "the %s must not be nil", missing)
	}
	in := g.input(op, store)

	gap, grace := w.GapMs(), w.GraceMs()
	// Kafka's SessionStoreMaterializer: the retention defaults to, and
	// must be at least, gap + grace.
	minRetention := time.Duration(gap+grace) * time.Millisecond
	retention := m.Retention
	if err := w.Err(); err != nil {
		b.errorf(op, nodeName, "session windows: %v", err)
	} else if retention == 0 {
		retention = minRetention
	} else if retention < minRetention {
		b.errorf(op, nodeName, "the retention of session store %s (%v) must be no smaller than the inactivity gap plus the grace period (%v)", store, retention, minRetention)
	}
	// The store expires a session once its end <= stream time - retention,
	// Kafka's in-memory session store's rule; a session is open while its
	// end >= stream time - gap - grace. One more millisecond keeps an open
	// session in the store until it has closed (and been emitted), as
	// Kafka's segmented RocksDB store does.
	retention = max(retention, minRetention+time.Millisecond)
	// Session stores are searched on every record: written through.
	m = declareWindowedStore(b, op, nodeName, store, m, SessionKind, retention, false)
	ks, vs := m.Key, m.Value
	emitFinal := s.emit == EmitOnWindowClose
	// With a record cache, Kafka's remove-then-put of an unchanged session
	// collapses into one update; without one, both are forwarded.
	cachingWanted := !m.DisableCaching

	n := addFn(b, &node{op: op, name: nodeName, stores: []string{store}}, prefix, func(ctx *procCtx[window.Windowed[K], Change[VA]]) (func(Record[K, V]) error, error) {
		st, err := newSessionTyped(ctx.t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		p := &sessionAggProc[K, V, VA]{ctx: ctx, st: st, w: w, fold: fold, emitFinal: emitFinal,
			collapse: cachingWanted && ctx.t.cfg.CacheMaxBytes > 0, observed: -1, lastEmit: -1}
		if err := p.init(); err != nil {
			return nil, err
		}
		return p.process, nil
	}, in.n)

	out := KTable[window.Windowed[K], VA]{b: b, n: n, vs: vs, store: store, sources: in.sources,
		getter:  sessionGetter(store, ks, vs),
		finalAt: func(win window.Window) int64 { return win.End + gap + grace },
	}
	if ks != nil {
		out.ks = window.SessionWindowedSerde(ks)
	}
	return out
}

// sessionGetter looks a session up by key and bounds (Kafka's
// KTableSessionWindowValueGetter); the timestamp is the session end.
func sessionGetter[K, VA any](store string, ks serde.Serde[K], vs serde.Serde[VA]) *tableGetter[window.Windowed[K], VA] {
	return &tableGetter[window.Windowed[K], VA]{stores: []string{store}, make: func(t *Task) (func(window.Windowed[K]) (VA, int64, bool, error), error) {
		st, err := newSessionTyped(t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		return func(k window.Windowed[K]) (VA, int64, bool, error) {
			v, ok, err := st.fetch(k.Key, k.Window)
			return v, k.Window.End, ok, err
		}, nil
	}}
}

// sessionAggProc is one task's instance of a session aggregation: Kafka's
// KStreamSessionWindowAggregateProcessor.
type sessionAggProc[K, V, VA any] struct {
	ctx       *procCtx[window.Windowed[K], Change[VA]]
	st        *sessionTyped[K, VA]
	w         window.SessionWindows
	fold      sessionFold[K, V, VA]
	emitFinal bool
	// collapse writes an updated session over itself instead of removing
	// it and writing it again (what Kafka's record cache turns the two
	// writes into).
	collapse bool
	// observed is the largest timestamp this processor has seen (-1:
	// none).
	observed int64
	// lastEmit is the close time up to which EmitOnWindowClose has
	// emitted (-1: never).
	lastEmit int64
	// open holds every session written (EmitOnWindowClose only), by end,
	// start and key, to emit each once it closes. Sessions a merge
	// removed stay until popped, then are skipped.
	open sessionHeap
	// merged is scratch space for the sessions a record merges.
	merged []sessionAgg[VA]
}

// sessionAgg is a stored session and its aggregate.
type sessionAgg[VA any] struct {
	w   window.Window
	agg VA
}

// init resumes from the store after a restart: the observed stream time
// is the largest session end written (the largest timestamp of any
// accepted record), and under EmitOnWindowClose the sessions closed at
// that time were emitted before.
func (p *sessionAggProc[K, V, VA]) init() error {
	h := p.st.h
	p.observed = h.ObservedStreamTime()
	if !p.emitFinal {
		h.onFlush = p.forwardUpdate
		return nil
	}
	if p.observed >= 0 {
		p.lastEmit = p.closeTime()
	}
	for e, err := range h.AllSessions() {
		if err != nil {
			return err
		}
		if e.End >= p.lastEmit {
			p.open = append(p.open, sessionRef{key: string(e.Key), start: e.Start, end: e.End})
		}
	}
	heap.Init(&p.open)
	return nil
}

// closeTime is Kafka's windowCloseTime: a session ending before it is
// closed.
func (p *sessionAggProc[K, V, VA]) closeTime() int64 {
	return p.observed - p.w.GraceMs() - p.w.GapMs()
}

func (p *sessionAggProc[K, V, VA]) process(r Record[K, V]) error {
	if r.KeyNull || r.ValueNull {
		p.ctx.t.dropped(p.ctx.n.name, "null-key-or-value")
		return nil
	}
	t := r.Timestamp
	p.observed = max(p.observed, t)
	closeTime := p.closeTime()
	if p.emitFinal {
		// Kafka emits after writing the record's session; emitting first
		// gives the same records (a record that advances the close time
		// merges no session that closes with it) and reads the closing
		// sessions before the write advances the store's expiry.
		if err := p.emitClosed(closeTime, r.Headers); err != nil {
			return err
		}
	}
	kb, err := p.st.keyBytes(r.Key)
	if err != nil {
		return err
	}
	agg, has := p.fold.init()
	newWin := p.w.NewSession(t)
	win := newWin
	earliestEnd, latestStart := p.w.MergeRange(t)
	if p.merged, err = p.st.find(kb, earliestEnd, latestStart, p.merged[:0]); err != nil {
		return err
	}
	known := false // win is a session already in the store
	for _, s := range p.merged {
		agg, has = p.fold.merge(r.Key, agg, has, s.agg), true
		win = win.Span(s.w)
	}
	if win.End < closeTime {
		p.ctx.t.dropped(p.ctx.n.name, "late")
		return nil
	}
	for _, s := range p.merged {
		if s.w == win {
			known = true
		}
		// Kafka removes every merged session when the record changes the
		// session, then writes the new one.
		if win == newWin || (p.collapse && s.w == win) {
			continue
		}
		if err := p.st.h.PutSession(kb, s.w.Start, s.w.End, nil, t); err != nil {
			return err
		}
	}
	agg = p.fold.add(r.Key, r.Value, agg, has)
	if err := p.st.put(kb, win, agg); err != nil {
		return err
	}
	if p.emitFinal && !known {
		heap.Push(&p.open, sessionRef{key: string(kb), start: win.Start, end: win.End})
	}
	return nil
}

// emitClosed forwards, once, every session that closed since the last
// emission, by end, start and key (the order of Kafka's time-ordered
// session store), with the session end as timestamp.
func (p *sessionAggProc[K, V, VA]) emitClosed(closeTime int64, headers []Header) error {
	if p.lastEmit != -1 && p.lastEmit >= closeTime {
		return nil // the close time did not advance
	}
	// Sessions include their end: those ending at or before upper closed.
	upper, lower := closeTime-1, max(0, p.lastEmit)
	if upper < 0 || upper < lower {
		return nil
	}
	var prev *sessionRef
	for len(p.open) > 0 && p.open[0].end <= upper {
		ref := heap.Pop(&p.open).(sessionRef)
		if ref.end < lower || (prev != nil && *prev == ref) {
			continue
		}
		prev = &ref
		kb := []byte(ref.key)
		vb, _, ok, err := p.st.h.FetchSession(kb, ref.start, ref.end)
		if err != nil {
			return err
		}
		if !ok {
			continue // replaced by a merge
		}
		k, err := p.st.ks.Deserialize(p.st.topic, kb)
		if err != nil {
			return fmt.Errorf("decode session key: %w", err)
		}
		v, err := p.st.vs.Deserialize(p.st.topic, vb)
		if err != nil {
			return fmt.Errorf("decode session aggregate: %w", err)
		}
		p.ctx.Forward(Record[window.Windowed[K], Change[VA]]{
			Key:       window.Windowed[K]{Key: k, Window: window.Window{Start: ref.start, End: ref.end}},
			Value:     Change[VA]{New: v, HasNew: true},
			Timestamp: ref.end,
			Headers:   headers,
		})
	}
	p.lastEmit = closeTime
	return nil
}

// forwardUpdate is the store's onFlush under EmitOnWindowUpdate: every
// write of a session (a removal is a tombstone) is forwarded, timestamped
// with the session end.
func (p *sessionAggProc[K, V, VA]) forwardUpdate(key, value, old []byte, _, _ int64) {
	ctx := p.ctx
	fail := func(what string, err error) {
		ctx.t.handle("processing", ctx.n.name, ctx.t.cfg.Errors.proc(), fmt.Errorf("%s: %w", what, err))
	}
	kb, start, end, err := SplitSessionStoreKey(key)
	if err != nil {
		fail("decode session store key", err)
		return
	}
	k, err := p.st.ks.Deserialize(p.st.topic, kb)
	if err != nil {
		fail("decode session key", err)
		return
	}
	c, ok, err := decodeChange(p.st.vs, p.st.topic, value, old)
	if err != nil {
		fail("session aggregate", err)
		return
	}
	if !ok {
		return // removing an absent session changes nothing
	}
	ctx.Forward(Record[window.Windowed[K], Change[VA]]{
		Key:       window.Windowed[K]{Key: k, Window: window.Window{Start: start, End: end}},
		Value:     c,
		Timestamp: end,
	})
}

// keyBytes serializes k; a nil encoding cannot be stored.
func (s *sessionTyped[K, V]) keyBytes(k K) ([]byte, error) {
	kb, err := s.ks.Serialize(s.topic, k)
	if err != nil {
		return nil, err
	}
	if len(kb) == 0 {
		return nil, fmt.Errorf("store %s: key serializes to no bytes", s.h.Name())
	}
	return kb, nil
}

// fetch returns k's aggregate of session w.
func (s *sessionTyped[K, V]) fetch(k K, w window.Window) (v V, ok bool, err error) {
	kb, err := s.keyBytes(k)
	if err != nil {
		return v, false, err
	}
	b, _, ok, err := s.h.FetchSession(kb, w.Start, w.End)
	if err != nil || !ok {
		return v, false, err
	}
	v, err = s.vs.Deserialize(s.topic, b)
	return v, err == nil, err
}

// find appends to dst the sessions of kb with end >= earliestEnd and start
// <= latestStart, by end then start.
func (s *sessionTyped[K, V]) find(kb []byte, earliestEnd, latestStart int64, dst []sessionAgg[V]) ([]sessionAgg[V], error) {
	for e, err := range s.h.FindSessions(kb, earliestEnd, latestStart) {
		if err != nil {
			return dst, err
		}
		v, err := s.vs.Deserialize(s.topic, e.Value)
		if err != nil {
			return dst, fmt.Errorf("decode session aggregate: %w", err)
		}
		dst = append(dst, sessionAgg[V]{w: window.Window{Start: e.Start, End: e.End}, agg: v})
	}
	return dst, nil
}

// put writes v as the aggregate of session w, timestamped with the
// session end (its largest input timestamp).
func (s *sessionTyped[K, V]) put(kb []byte, w window.Window, v V) error {
	vb, err := s.vs.Serialize(s.topic, v)
	if err != nil {
		return err
	}
	if vb == nil {
		return fmt.Errorf("store %s: a session aggregate must not serialize to null", s.h.Name())
	}
	return s.h.PutSession(kb, w.Start, w.End, vb, w.End)
}

// sessionRef names a stored session.
type sessionRef struct {
	key        string
	start, end int64
}

// sessionHeap orders sessions by end, start, then key bytes.
type sessionHeap []sessionRef

func (h sessionHeap) Len() int { return len(h) }
func (h sessionHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.end != b.end {
		return a.end < b.end
	}
	if a.start != b.start {
		return a.start < b.start
	}
	return a.key < b.key // byte order
}
func (h sessionHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *sessionHeap) Push(x any)   { *h = append(*h, x.(sessionRef)) }
func (h *sessionHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
