package stream

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/window"
)

// EmitStrategy says when a windowed aggregation forwards its results:
// Kafka Streams' EmitStrategy (KIP-825).
type EmitStrategy int

const (
	// EmitOnWindowUpdate forwards every update of a window's result (as
	// the record cache lets through), the default.
	EmitOnWindowUpdate EmitStrategy = iota
	// EmitOnWindowClose forwards only the final result of each window,
	// once, when the window closes: when the aggregation's observed stream
	// time reaches end + grace for tumbling and hopping windows, and passes
	// end + grace for sliding windows (whose end is included). Windows
	// closing together are forwarded by window start, then by serialized
	// key.
	EmitOnWindowClose
)

// String returns "ON_WINDOW_UPDATE" or "ON_WINDOW_CLOSE", Kafka's names.
func (e EmitStrategy) String() string {
	switch e {
	case EmitOnWindowUpdate:
		return "ON_WINDOW_UPDATE"
	case EmitOnWindowClose:
		return "ON_WINDOW_CLOSE"
	}
	return fmt.Sprintf("EmitStrategy(%d)", int(e))
}

// TimeWindowedKStream is a grouped stream cut into tumbling, hopping or
// sliding windows, ready to aggregate per key and window: Kafka Streams'
// TimeWindowedKStream. Build it with KGroupedStream.WindowedBy or
// KGroupedStream.WindowedBySliding.
//
// The aggregations (CountWindowed, ReduceWindowed, AggregateWindowed) follow Kafka's
// KStreamWindowAggregate and KStreamSlidingWindowAggregate:
//
//   - Each processor keeps its own observed stream time, the largest record
//     timestamp it has seen. A window is closed once end <= observed - grace
//     (time windows) or end < observed - grace (sliding windows, whose end
//     is included); a record whose windows are all closed is dropped and
//     counted as "late". Records with a null key or value are dropped and
//     counted as "null-key-or-value".
//   - The result of a window carries the largest timestamp of the records
//     aggregated into it.
//   - Results are kept in a window store (one value per key and window
//     start) whose changelog key is Kafka's window key layout. Its retention
//     is Materialized.Retention, by default the window size plus the grace
//     period (sliding windows: twice the time difference plus the grace
//     period, because a record reaches back that far for its neighbours);
//     a smaller retention is a Build error, as in Kafka.
//   - The resulting table's key serde is window.TimeWindowedSerde of the
//     key serde with the window size (the time difference for sliding
//     windows), so its output topics read like Kafka's.
//
// With EmitOnWindowClose the processor remembers up to which close time it
// has emitted. Kafka keeps that in the task's processor metadata, committed
// with the input offsets; eddy has no such metadata and recomputes it when
// the task starts: the newest window in the store (the largest start) holds
// the largest record timestamp the processor had seen, so the processor
// restores its observed stream time from it, and with it the last close time
// it emitted up to (observed - grace), and does not emit those windows
// again. The observed stream time is restored for EmitOnWindowUpdate too,
// where Kafka starts over from no stream time after a restart (and so may
// accept, until a newer record arrives, late records into windows it had
// closed before).
//
// Emitting on close, the windows a record closes are read and forwarded
// before the record's own windows are written. Kafka writes first, and the
// write can advance the store's time so far that windows it closes have
// already expired from the store (they are then never emitted); eddy
// forwards every closed window.
type TimeWindowedKStream[K, V any] struct {
	g       KGroupedStream[K, V]
	tw      window.TimeWindows
	sw      window.SlidingWindows
	sliding bool
	emit    EmitStrategy
}

// WindowedBy cuts the grouped stream into tumbling or hopping windows
// (Kafka Streams' windowedBy(TimeWindows)). An invalid w is reported by
// Build.
func (g KGroupedStream[K, V]) WindowedBy(w window.TimeWindows) TimeWindowedKStream[K, V] {
	return TimeWindowedKStream[K, V]{g: g, tw: w}
}

// WindowedBySliding cuts the grouped stream into sliding windows (Kafka
// Streams' windowedBy(SlidingWindows)). An invalid w is reported by Build.
func (g KGroupedStream[K, V]) WindowedBySliding(w window.SlidingWindows) TimeWindowedKStream[K, V] {
	return TimeWindowedKStream[K, V]{g: g, sw: w, sliding: true}
}

// Emit returns w with the given emit strategy (Kafka Streams'
// emitStrategy); the default is EmitOnWindowUpdate.
func (w TimeWindowedKStream[K, V]) Emit(e EmitStrategy) TimeWindowedKStream[K, V] {
	w.emit = e
	return w
}

// CountWindowed counts the records of each key and window (Kafka Streams'
// TimeWindowedKStream.count). m's Key serde is the inner key's (default:
// the grouping's); its Value serde defaults to serde.Int64.
//
// It is a function rather than a method of TimeWindowedKStream, as are
// ReduceWindowed and AggregateWindowed: it changes the key type to
// window.Windowed[K], and Go rejects a method of a generic type that
// returns its type parameter wrapped (KStream[K] → ... → KTable[Windowed[K]]
// → KStream[Windowed[K]] → ... is an instantiation cycle).
func CountWindowed[K, V any](w TimeWindowedKStream[K, V], m Materialized[K, int64]) KTable[window.Windowed[K], int64] {
	if m.Value == nil {
		m.Value = serde.Int64()
	}
	return windowedAggregate(w, "count", func(_ K, _ V, agg int64, _ bool) int64 { return agg + 1 }, m)
}

// ReduceWindowed combines the values of each key and window with fn
// (Kafka Streams' TimeWindowedKStream.reduce); the first value of a window
// is taken as is. m's Value serde defaults to the grouping's.
func ReduceWindowed[K, V any](w TimeWindowedKStream[K, V], fn func(agg, v V) V, m Materialized[K, V]) KTable[window.Windowed[K], V] {
	if m.Value == nil {
		m.Value = w.g.s.vs
	}
	return windowedAggregate(w, "reduce", func(_ K, v V, agg V, has bool) V {
		if !has {
			return v
		}
		return fn(agg, v)
	}, m)
}

// AggregateWindowed folds the values of each key and window into an
// aggregate of type VA, starting from init() in every new window (Kafka
// Streams' TimeWindowedKStream.aggregate).
func AggregateWindowed[K, V, VA any](w TimeWindowedKStream[K, V], init func() VA, adder func(K, V, VA) VA, m Materialized[K, VA]) KTable[window.Windowed[K], VA] {
	return windowedAggregate(w, "aggregate", func(k K, v V, agg VA, has bool) VA {
		if !has {
			agg = init()
		}
		return adder(k, v, agg)
	}, m)
}

// windowGeometry is what the aggregation needs to know of its windows.
type windowGeometry struct {
	size, grace int64 // size: the time difference for sliding windows
	// inclusive: the window end is included (sliding windows).
	inclusive bool
	retention int64 // default retention
}

// geometry returns w's window arithmetic and the first validation error.
func (w TimeWindowedKStream[K, V]) geometry() (windowGeometry, error) {
	if w.sliding {
		if err := w.sw.Err(); err != nil {
			return windowGeometry{}, err
		}
		d, g := w.sw.TimeDifferenceMs(), w.sw.GraceMs()
		return windowGeometry{size: d, grace: g, inclusive: true, retention: 2*d + g}, nil
	}
	if err := w.tw.Err(); err != nil {
		return windowGeometry{}, err
	}
	s, g := w.tw.SizeMs(), w.tw.GraceMs()
	return windowGeometry{size: s, grace: g, retention: s + g}, nil
}

// window returns the window starting at start.
func (g windowGeometry) window(start int64) window.Window {
	end := start + g.size
	if end < start {
		end = math.MaxInt64
	}
	return window.Window{Start: start, End: end}
}

// closeTime returns the stream time at which a window's result is final:
// when no record can update it any more.
func (g windowGeometry) closeTime(w window.Window) int64 {
	t := w.End + g.grace
	if g.inclusive {
		t++ // a sliding window still takes records while end >= observed - grace
	}
	if t < w.End {
		return math.MaxInt64
	}
	return t
}

func windowedAggregate[K, V, VA any](w TimeWindowedKStream[K, V], op string, fold func(k K, v V, agg VA, has bool) VA, m Materialized[K, VA]) KTable[window.Windowed[K], VA] {
	g := w.g
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
	geo, err := w.geometry()
	if err != nil {
		b.errorf(op, nodeName, "%v", err)
		geo = windowGeometry{size: 1, retention: 1}
	}
	retention := time.Duration(geo.retention) * time.Millisecond
	if m.Retention != 0 {
		retention = m.Retention
		if min := time.Duration(geo.retention) * time.Millisecond; retention < min {
			what := "its window size plus the grace period"
			if w.sliding {
				what = "2 * time difference plus the grace period"
			}
			b.errorf(op, nodeName, "the retention period of the window store %s must be no smaller than %s: got size=%d ms, grace=%d ms, retention=%v",
				store, what, geo.size, geo.grace, retention)
		}
	}
	in := g.input(op, store)
	m = declareWindowedStore(b, op, nodeName, store, m, WindowKind, retention, !w.sliding)
	ks, vs := m.Key, m.Value
	emit := w.emit
	if emit != EmitOnWindowUpdate && emit != EmitOnWindowClose {
		b.errorf(op, nodeName, "unknown emit strategy %v", emit)
	}
	var tks serde.Serde[window.Windowed[K]]
	if ks != nil {
		tks = window.TimeWindowedSerde(ks, time.Duration(geo.size)*time.Millisecond)
	}
	n := addFn(b, &node{op: op, name: nodeName, stores: []string{store}}, prefix, func(ctx *procCtx[window.Windowed[K], Change[VA]]) (func(Record[K, V]) error, error) {
		st, err := newWindowTyped(ctx.t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		p := &windowAggProc[K, V, VA]{ctx: ctx, st: st, geo: geo, emit: emit, fold: fold, tw: w.tw, sw: w.sw, observed: -1, lastEmit: -1}
		if emit == EmitOnWindowUpdate {
			p.forwardChanges()
		}
		if err := p.restoreTime(); err != nil {
			return nil, err
		}
		if w.sliding {
			return p.processSliding, nil
		}
		return p.processTime, nil
	}, in.n)
	getter := &tableGetter[window.Windowed[K], VA]{stores: []string{store}, make: func(t *Task) (func(window.Windowed[K]) (VA, int64, bool, error), error) {
		st, err := newWindowTyped(t, store, ks, vs)
		if err != nil {
			return nil, err
		}
		return func(k window.Windowed[K]) (VA, int64, bool, error) { return st.get(k.Key, k.Window.Start) }, nil
	}}
	return KTable[window.Windowed[K], VA]{b: b, n: n, ks: tks, vs: vs, store: store, sources: in.sources, getter: getter, finalAt: geo.closeTime}
}

// windowAggProc is the per-task state of a windowed aggregation.
type windowAggProc[K, V, VA any] struct {
	ctx  *procCtx[window.Windowed[K], Change[VA]]
	st   *windowTyped[K, VA]
	geo  windowGeometry
	emit EmitStrategy
	fold func(k K, v V, agg VA, has bool) VA
	tw   window.TimeWindows
	sw   window.SlidingWindows
	// observed is the largest timestamp this processor has seen (-1:
	// none); lastEmit the close time up to which final results were
	// emitted (-1: none yet).
	observed, lastEmit int64
	// wrote says the sliding record being processed wrote a window.
	wrote bool
	// scratch holds the windows of the record being processed.
	scratch []window.Window
}

// forwardChanges forwards every write reaching the store as a Change of
// its windowed key.
func (p *windowAggProc[K, V, VA]) forwardChanges() {
	st, ctx := p.st, p.ctx
	st.h.noOld = oldUnused(ctx.n)
	st.h.onFlush = func(kb, vb, oldb []byte, _, ts int64) {
		raw, start, err := SplitWindowStoreKey(kb)
		if err != nil {
			ctx.t.handle("processing", ctx.n.name, ctx.t.cfg.Errors.proc(), fmt.Errorf("decode window key: %w", err))
			return
		}
		k, err := st.ks.Deserialize(st.topic, raw)
		if err != nil {
			ctx.t.handle("processing", ctx.n.name, ctx.t.cfg.Errors.proc(), fmt.Errorf("decode cached key: %w", err))
			return
		}
		c, ok, err := decodeChange(st.vs, st.topic, vb, oldb)
		if err != nil {
			ctx.t.handle("processing", ctx.n.name, ctx.t.cfg.Errors.proc(), err)
			return
		}
		if !ok {
			return
		}
		ctx.Forward(Record[window.Windowed[K], Change[VA]]{Key: window.Windowed[K]{Key: k, Window: p.geo.window(start)}, Value: c, Timestamp: ts})
	}
}

// restoreTime recomputes the observed stream time (and, emitting on close,
// the last close time emitted) from the store when the task starts: the
// record with the largest timestamp m updated a window starting in
// [S - size, S], S being the largest window start in the store, and that
// window's timestamp is m (see TimeWindowedKStream).
func (p *windowAggProc[K, V, VA]) restoreTime() error {
	s := p.st.h.ObservedStreamTime()
	if s < 0 {
		return nil
	}
	for e, err := range p.st.h.FetchAllWindows(max(0, s-p.geo.size), s) {
		if err != nil {
			return fmt.Errorf("restore stream time of %s: %w", p.st.h.Name(), err)
		}
		p.observed = max(p.observed, e.Timestamp)
	}
	if p.emit == EmitOnWindowClose && p.observed >= 0 {
		p.lastEmit = p.observed - p.geo.grace
	}
	return nil
}

// processTime is KStreamWindowAggregate: the record updates each of its
// windows that is still open.
func (p *windowAggProc[K, V, VA]) processTime(r Record[K, V]) error {
	if r.KeyNull || r.ValueNull {
		p.ctx.t.dropped(p.ctx.n.name, "null-key-or-value")
		return nil
	}
	p.observed = max(p.observed, r.Timestamp)
	closeTime := p.observed - p.geo.grace
	// Emitting before writing this record's windows forwards the same
	// windows (the record cannot change a window that closes now) and reads
	// them before the write advances the store's time past their retention.
	if err := p.emitFinal(r, closeTime); err != nil {
		return err
	}
	updated := false
	p.scratch = p.tw.AppendWindowsFor(p.scratch[:0], r.Timestamp)
	for _, w := range p.scratch {
		if w.End <= closeTime {
			continue
		}
		if err := p.update(r, w.Start); err != nil {
			return err
		}
		updated = true
	}
	if !updated {
		p.ctx.t.dropped(p.ctx.n.name, "late")
		p.ctx.t.log.Debug("skipping record for expired windows", "processor", p.ctx.n.name, "timestamp", r.Timestamp, "streamTime", p.observed)
	}
	return nil
}

// update folds r into k's window starting at start (absent: a new one).
func (p *windowAggProc[K, V, VA]) update(r Record[K, V], start int64) error {
	return p.st.modify(r.Key, start, func(old VA, oldTS int64, has bool) (VA, int64) {
		ts := r.Timestamp
		if has && oldTS > ts {
			ts = oldTS
		}
		return p.fold(r.Key, r.Value, old, has), ts
	})
}

// emitFinal forwards, emitting on close, the windows that closed since the
// last emission: those whose close time is in (lastEmit, closeTime].
func (p *windowAggProc[K, V, VA]) emitFinal(r Record[K, V], closeTime int64) error {
	if p.emit != EmitOnWindowClose || (p.lastEmit >= 0 && closeTime <= p.lastEmit) {
		return nil
	}
	// Window starts whose end (+1 when the end is included) is at most
	// closeTime, and above lastEmit.
	span := p.geo.size
	if p.geo.inclusive {
		span++
	}
	upper := closeTime - span
	if upper < 0 {
		return nil
	}
	var lower int64
	if p.lastEmit >= 0 {
		lower = max(0, p.lastEmit-span+1)
	}
	type entry struct {
		key   []byte
		start int64
		value []byte
		ts    int64
	}
	var due []entry
	for e, err := range p.st.h.FetchAllWindows(lower, upper) {
		if err != nil {
			return err
		}
		due = append(due, entry{e.Key, e.Start, e.Value, e.Timestamp})
	}
	slices.SortFunc(due, func(a, b entry) int {
		if a.start != b.start {
			if a.start < b.start {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.key, b.key)
	})
	for _, e := range due {
		k, err := p.st.ks.Deserialize(p.st.topic, e.key)
		if err != nil {
			return fmt.Errorf("decode window key: %w", err)
		}
		v, err := p.st.vs.Deserialize(p.st.topic, e.value)
		if err != nil {
			return fmt.Errorf("decode window value: %w", err)
		}
		p.ctx.Forward(Record[window.Windowed[K], Change[VA]]{Key: window.Windowed[K]{Key: k, Window: p.geo.window(e.start)},
			Value: Change[VA]{New: v, HasNew: true}, Timestamp: e.ts, Headers: r.Headers})
	}
	p.lastEmit = closeTime
	return nil
}

// slidingWindow is one window of k read from the store.
type slidingWindow[VA any] struct {
	start int64
	agg   VA
	ts    int64 // the largest record timestamp in the window
}

// processSliding is KStreamSlidingWindowAggregate: the record updates the
// windows that contain it and creates its left window and, when a later
// record is within the time difference, its right window, and the right
// window of the record before it.
func (p *windowAggProc[K, V, VA]) processSliding(r Record[K, V]) error {
	if r.KeyNull || r.ValueNull {
		p.ctx.t.dropped(p.ctx.n.name, "null-key-or-value")
		return nil
	}
	t, d := r.Timestamp, p.geo.size
	p.observed = max(p.observed, t)
	closeTime := p.observed - p.geo.grace
	if t+d < closeTime {
		p.ctx.t.dropped(p.ctx.n.name, "late")
		p.ctx.t.log.Debug("skipping record for expired windows", "processor", p.ctx.n.name, "timestamp", t, "streamTime", p.observed)
		return nil
	}
	if err := p.emitFinal(r, closeTime); err != nil { // see processTime
		return err
	}
	p.wrote = false
	var err error
	if p.sw.Early(t) {
		err = p.slidingEarly(r, closeTime)
	} else {
		err = p.slidingLate(r, closeTime)
	}
	if err == nil && !p.wrote {
		// Every window the record would have updated or created was
		// closed (Kafka skips them one by one).
		p.ctx.t.dropped(p.ctx.n.name, "late")
	}
	return err
}

// fetchSliding returns k's windows with starts in [from, to], by start.
func (p *windowAggProc[K, V, VA]) fetchSliding(k K, from, to int64) ([]slidingWindow[VA], map[int64]bool, error) {
	kb, err := p.st.ks.Serialize(p.st.topic, k)
	if err != nil {
		return nil, nil, err
	}
	var out []slidingWindow[VA]
	starts := map[int64]bool{}
	for e, err := range p.st.h.FetchWindows(kb, from, to) {
		if err != nil {
			return nil, nil, err
		}
		v, err := p.st.vs.Deserialize(p.st.topic, e.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("decode window value: %w", err)
		}
		out = append(out, slidingWindow[VA]{start: e.Start, agg: v, ts: e.Timestamp})
		starts[e.Start] = true
	}
	return out, starts, nil
}

// slidingUpdate folds r into the window starting at start whose current
// aggregate is agg (has false: a new window), if the window is still open
// (Kafka's updateWindowAndForward).
func (p *windowAggProc[K, V, VA]) slidingUpdate(r Record[K, V], start int64, agg VA, aggTS int64, has bool, closeTime int64) error {
	w := p.geo.window(start)
	if w.End < closeTime {
		p.ctx.t.log.Debug("skipping record for expired window", "processor", p.ctx.n.name, "window", w.String(), "timestamp", r.Timestamp)
		return nil
	}
	ts := r.Timestamp
	if has && aggTS > ts {
		ts = aggTS
	}
	p.wrote = true
	return p.st.put(r.Key, start, p.fold(r.Key, r.Value, agg, has), ts)
}

// slidingLate handles a record at t >= timeDifference, scanning k's
// windows from the latest start down, as Kafka's processReverse.
func (p *windowAggProc[K, V, VA]) slidingLate(r Record[K, V], closeTime int64) error {
	t, d := r.Timestamp, p.geo.size
	from, to := p.sw.LookupRange(t)
	ws, starts, err := p.fetchSliding(r.Key, from, to)
	if err != nil {
		return err
	}
	var (
		leftAgg, rightAgg    *slidingWindow[VA]
		leftExists, rightHas bool
		prevTS               int64 = -1
	)
	for i := len(ws) - 1; i >= 0; i-- {
		w := &ws[i]
		end := w.start + d
		switch {
		case w.start == t+1:
			rightHas = true
		case end > t:
			if rightAgg == nil {
				rightAgg = w
			}
			if err := p.slidingUpdate(r, w.start, w.agg, w.ts, true, closeTime); err != nil {
				return err
			}
		case end == t:
			leftExists = true
			if err := p.slidingUpdate(r, w.start, w.agg, w.ts, true, closeTime); err != nil {
				return err
			}
			if w.ts >= t {
				return nil // an earlier record at t created every window already
			}
			prevTS = w.ts
		default: // end < t
			leftAgg = w
			prevTS = w.ts
		}
		if leftAgg != nil {
			break
		}
	}
	// The right window of the previous record, if it now has a record.
	if prevTS >= 0 {
		prevRight := prevTS + 1
		if !starts[prevRight] && prevRight+d >= t {
			var zero VA
			if err := p.slidingUpdate(r, prevRight, zero, 0, false, closeTime); err != nil {
				return err
			}
		}
	}
	if !leftExists {
		var agg VA
		has := false
		if prevTS >= 0 && t-d <= prevTS && leftAgg != nil {
			agg, has = leftAgg.agg, true
		}
		// A new left window takes the previous record's left aggregate
		// (or starts empty) and the timestamp of this record.
		if err := p.slidingUpdate(r, t-d, agg, t, has, closeTime); err != nil {
			return err
		}
	}
	if !rightHas && rightAgg != nil && rightAgg.ts > t {
		return p.createRight(r, rightAgg)
	}
	return nil
}

// createRight creates the record's right window holding the aggregate of
// the later records within the time difference (without the record).
func (p *windowAggProc[K, V, VA]) createRight(r Record[K, V], rightAgg *slidingWindow[VA]) error {
	p.wrote = true
	return p.st.put(r.Key, r.Timestamp+1, rightAgg.agg, rightAgg.ts)
}

// slidingEarly handles a record at 0 <= t < timeDifference: it goes into
// the window [0, timeDifference] (Kafka's processEarly).
func (p *windowAggProc[K, V, VA]) slidingEarly(r Record[K, V], closeTime int64) error {
	t := r.Timestamp
	ws, starts, err := p.fetchSliding(r.Key, 0, t+1)
	if err != nil {
		return err
	}
	var (
		combined, rightAgg *slidingWindow[VA]
		rightHas           bool
		prevTS             int64 = -1
	)
	for i := range ws {
		w := &ws[i]
		switch {
		case w.start == 0:
			combined = w
			if w.ts < t {
				prevTS = w.ts
			}
		case w.start <= t:
			rightAgg = w
			if err := p.slidingUpdate(r, w.start, w.agg, w.ts, true, closeTime); err != nil {
				return err
			}
		default: // w.start == t+1
			rightHas = true
		}
	}
	if rightAgg == nil && combined != nil && combined.ts > t {
		rightAgg = combined
	}
	if !rightHas && rightAgg != nil && rightAgg.ts > t {
		if err := p.createRight(r, rightAgg); err != nil {
			return err
		}
	}
	if prevTS >= 0 && !starts[prevTS+1] {
		var zero VA
		if err := p.slidingUpdate(r, prevTS+1, zero, 0, false, closeTime); err != nil {
			return err
		}
	}
	if combined == nil {
		var zero VA
		return p.slidingUpdate(r, 0, zero, 0, false, closeTime)
	}
	return p.slidingUpdate(r, 0, combined.agg, combined.ts, true, closeTime)
}
