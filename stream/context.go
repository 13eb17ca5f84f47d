package stream

import (
	"container/heap"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// procCtx is the ProcessorContext of one node instance.
type procCtx[K, V any] struct {
	t          *Task
	n          *node
	children   []input[K, V]
	childNames []string
}

func newProcCtx[K, V any](t *Task, n *node, children []any) (*procCtx[K, V], error) {
	c := &procCtx[K, V]{t: t, n: n}
	for i, ch := range children {
		in, ok := ch.(input[K, V])
		if !ok {
			return nil, fmt.Errorf("%w: %s feeds %s records of the wrong type", ErrTopology, n.name, n.children[i].name)
		}
		c.children = append(c.children, in)
		c.childNames = append(c.childNames, n.children[i].name)
	}
	return c, nil
}

func (c *procCtx[K, V]) Forward(rec Record[K, V]) {
	if len(c.children) == 1 {
		if c.t.fatal == nil {
			c.children[0].process(rec)
		}
		return
	}
	for _, ch := range c.children {
		if c.t.fatal != nil {
			return
		}
		ch.process(rec)
	}
}

func (c *procCtx[K, V]) ForwardTo(child string, rec Record[K, V]) {
	i := slices.Index(c.childNames, child)
	if i < 0 {
		c.t.handle("processing", c.n.name, c.t.cfg.Errors.proc(), fmt.Errorf("ForwardTo: %q is not a child of %s", child, c.n.name))
		return
	}
	c.children[i].process(rec)
}

func (c *procCtx[K, V]) Schedule(interval time.Duration, typ PunctuationType, fn func(ts int64)) Cancellable {
	ms := interval.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	p := &punctuator{node: c.n.name, typ: typ, interval: ms, fn: fn}
	if typ == WallClockTime {
		p.next = c.t.clock() + ms
	} else {
		p.next = 0
	}
	heap.Push(&c.t.punct, p)
	return p
}

func (c *procCtx[K, V]) RecordMetadata() (RecordMetadata, bool) {
	r := c.t.current
	if r == nil {
		return RecordMetadata{}, false
	}
	return RecordMetadata{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}, true
}

func (c *procCtx[K, V]) TaskID() TaskID        { return c.t.cfg.ID }
func (c *procCtx[K, V]) ApplicationID() string { return c.t.cfg.ApplicationID }
func (c *procCtx[K, V]) StreamTime() int64     { return c.t.streamTime }
func (c *procCtx[K, V]) WallClockTime() int64  { return c.t.clock() }
func (c *procCtx[K, V]) Commit()               { c.t.commitReq = true }
func (c *procCtx[K, V]) Logger() *slog.Logger  { return c.t.log.With("processor", c.n.name) }

func (c *procCtx[K, V]) Store(name string) (*StoreHandle, error) {
	if !slices.Contains(c.n.stores, name) {
		return nil, fmt.Errorf("stream: processor %s is not connected to store %q", c.n.name, name)
	}
	h := c.t.stores[name]
	if h == nil {
		return nil, fmt.Errorf("stream: store %q is not open in task %s", name, c.t.cfg.ID)
	}
	return h, nil
}

// procInstance runs a Processor inside a node, applying the processing
// error handler to its errors.
type procInstance[KIn, VIn, KOut, VOut any] struct {
	t *Task
	n *node
	p Processor[KIn, VIn, KOut, VOut]
}

func (pi *procInstance[KIn, VIn, KOut, VOut]) process(rec Record[KIn, VIn]) {
	if pi.t.fatal != nil {
		return
	}
	// Store writes of the Processor API take the timestamp of the record
	// being processed (restored after, for writes following a Forward).
	prev := pi.t.recordTS
	pi.t.recordTS = rec.Timestamp
	if err := pi.p.Process(rec); err != nil {
		pi.t.handle("processing", pi.n.name, pi.t.cfg.Errors.proc(), err)
	}
	pi.t.recordTS = prev
}

// addProcessor adds a processor node created per task by supplier.
func addProcessor[KIn, VIn, KOut, VOut any](b *Builder, n *node, prefix string, supplier func() Processor[KIn, VIn, KOut, VOut], parents ...*node) *node {
	n.kind = kindProcessor
	n.newInstance = func(t *Task, children []any) (any, error) {
		ctx, err := newProcCtx[KOut, VOut](t, n, children)
		if err != nil {
			return nil, err
		}
		p := supplier()
		t.inits = append(t.inits, func() error { return p.Init(ctx) })
		t.closers = append(t.closers, p.Close)
		return &procInstance[KIn, VIn, KOut, VOut]{t: t, n: n, p: p}, nil
	}
	return b.addNode(n, prefix, parents...)
}

// fnProcessor adapts a closure-built processor: init receives the context
// and returns the per-record function.
type fnProcessor[KIn, VIn, KOut, VOut any] struct {
	init func(ctx *procCtx[KOut, VOut]) (func(Record[KIn, VIn]) error, error)
	fn   func(Record[KIn, VIn]) error
}

func (f *fnProcessor[KIn, VIn, KOut, VOut]) Init(ctx ProcessorContext[KOut, VOut]) error {
	var err error
	f.fn, err = f.init(ctx.(*procCtx[KOut, VOut]))
	return err
}
func (f *fnProcessor[KIn, VIn, KOut, VOut]) Process(r Record[KIn, VIn]) error { return f.fn(r) }
func (f *fnProcessor[KIn, VIn, KOut, VOut]) Close() error                     { return nil }

// addFn adds a DSL processor from a closure factory.
func addFn[KIn, VIn, KOut, VOut any](b *Builder, n *node, prefix string, init func(ctx *procCtx[KOut, VOut]) (func(Record[KIn, VIn]) error, error), parents ...*node) *node {
	return addProcessor(b, n, prefix, func() Processor[KIn, VIn, KOut, VOut] {
		return &fnProcessor[KIn, VIn, KOut, VOut]{init: init}
	}, parents...)
}

// stateless adds a processor that needs nothing at init. Its per-task
// instance calls fn directly: no Processor, no per-record closure layers
// (they cost as much as a simple operator).
func stateless[KIn, VIn, KOut, VOut any](b *Builder, op, name, prefix string, parent *node, fn func(ctx *procCtx[KOut, VOut], r Record[KIn, VIn]) error) *node {
	n := &node{op: op, name: name, kind: kindProcessor}
	n.newInstance = func(t *Task, children []any) (any, error) {
		ctx, err := newProcCtx[KOut, VOut](t, n, children)
		if err != nil {
			return nil, err
		}
		return &statelessInstance[KIn, VIn, KOut, VOut]{t: t, n: n, ctx: ctx, fn: fn}, nil
	}
	return b.addNode(n, prefix, parent)
}

// statelessInstance is the per-task instance of a stateless node; it
// applies the processing error handler to fn's errors, as procInstance
// does.
type statelessInstance[KIn, VIn, KOut, VOut any] struct {
	t   *Task
	n   *node
	ctx *procCtx[KOut, VOut]
	fn  func(ctx *procCtx[KOut, VOut], r Record[KIn, VIn]) error
}

func (s *statelessInstance[KIn, VIn, KOut, VOut]) process(rec Record[KIn, VIn]) {
	if s.t.fatal != nil {
		return
	}
	if err := s.fn(s.ctx, rec); err != nil {
		s.t.handle("processing", s.n.name, s.t.cfg.Errors.proc(), err)
	}
}

// ---- punctuators ----

type punctuator struct {
	node      string
	typ       PunctuationType
	interval  int64
	next      int64
	fn        func(ts int64)
	cancelled bool
	idx       int
}

func (p *punctuator) Cancel() { p.cancelled = true }

type punctQueue []*punctuator

func (q punctQueue) Len() int           { return len(q) }
func (q punctQueue) Less(i, j int) bool { return q[i].next < q[j].next }
func (q punctQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i]; q[i].idx = i; q[j].idx = j }
func (q *punctQueue) Push(x any)        { p := x.(*punctuator); p.idx = len(*q); *q = append(*q, p) }
func (q *punctQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

// due reports whether a punctuator of type typ is due at now.
func (q punctQueue) due(typ PunctuationType, now int64) bool {
	for _, p := range q {
		if !p.cancelled && p.typ == typ && p.next <= now {
			return true
		}
	}
	return false
}

// fire runs every punctuator of type typ due at now, once each (missed
// intervals fire once; the grid is kept).
func (q *punctQueue) fire(t *Task, typ PunctuationType, now int64) {
	if !q.due(typ, now) {
		return // the common case: stream time is checked after every record
	}
	var due []*punctuator
	keep := (*q)[:0]
	for _, p := range *q {
		switch {
		case p.cancelled:
		case p.typ == typ && p.next <= now:
			due = append(due, p)
		default:
			keep = append(keep, p)
		}
	}
	*q = keep
	heap.Init(q)
	slices.SortStableFunc(due, func(a, b *punctuator) int {
		switch {
		case a.next < b.next:
			return -1
		case a.next > b.next:
			return 1
		}
		return 0
	})
	for _, p := range due {
		missed := (now - p.next) / p.interval
		p.next += (missed + 1) * p.interval
		if t.fatal == nil {
			p.fn(now)
		}
		if !p.cancelled {
			heap.Push(q, p)
		}
	}
}
