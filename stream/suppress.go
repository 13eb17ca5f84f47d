package stream

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/window"
)

// BufferFullStrategy says what a suppression buffer does when a new update
// takes it over its BufferConfig limits.
type BufferFullStrategy int

const (
	// EmitEarlyWhenFull emits the buffered updates with the smallest
	// buffer times, earlier than the suppression asked for, until the
	// buffer is within its limits again (Kafka's emitEarlyWhenFull, the
	// default of a BufferConfig with limits).
	EmitEarlyWhenFull BufferFullStrategy = iota
	// ShutDownWhenFull fails the task with an error wrapping
	// ErrSuppressBufferFull (Kafka's shutDownWhenFull). It is the only
	// strategy UntilWindowCloses accepts, since emitting a window early
	// would break its promise of one final result per window.
	ShutDownWhenFull
)

// String returns "emit-early" or "shut-down".
func (s BufferFullStrategy) String() string {
	switch s {
	case EmitEarlyWhenFull:
		return "emit-early"
	case ShutDownWhenFull:
		return "shut-down"
	}
	return fmt.Sprintf("BufferFullStrategy(%d)", int(s))
}

// BufferConfig bounds a suppression buffer: Kafka Streams'
// Suppressed.BufferConfig. A limit of 0 means no limit; a buffer with no
// limit never fills, whatever OnFull says.
//
// MaxBytes counts, per buffered key, what Kafka's in-memory suppression
// buffer counts: 8 bytes of buffer time, the serialized key, the
// serialized new and old values of the latest update and the value the key
// had before it was first buffered (not counted twice when it is that old
// value), and the record context: 20 bytes plus the headers' keys and
// values. Kafka also counts the name of the source topic the update came
// from; eddy does not, so that the count does not depend on whether the
// update came from a record or from a cache flush.
type BufferConfig struct {
	// MaxRecords is the largest number of keys the buffer holds (0: no
	// limit).
	MaxRecords int64
	// MaxBytes is the largest size of the buffer in bytes, counted as
	// described above (0: no limit).
	MaxBytes int64
	// OnFull is what happens when an update takes the buffer over a
	// limit.
	OnFull BufferFullStrategy
}

// Unbounded returns a buffer without limits (Kafka's
// BufferConfig.unbounded): it keeps every update for as long as the
// suppression asks, using as much memory as that takes.
func Unbounded() BufferConfig { return BufferConfig{OnFull: ShutDownWhenFull} }

func (c BufferConfig) limited() bool { return c.MaxRecords > 0 || c.MaxBytes > 0 }

// Suppressed configures KTable.Suppress: Kafka Streams' Suppressed. Build
// one with UntilWindowCloses or UntilTimeLimit.
type Suppressed struct {
	name        string
	finalResult bool          // UntilWindowCloses
	limit       time.Duration // UntilTimeLimit
	buffer      BufferConfig
}

// UntilWindowCloses suppresses every update of a windowed table until its
// window closes, then emits the window's final result once (Kafka's
// Suppressed.untilWindowCloses). A window closes when the stream time the
// suppression has seen reaches the window's end plus its grace period
// (session windows: the session's end plus the inactivity gap plus the
// grace period). The buffer must be strict: without limits (Unbounded, or
// a zero BufferConfig), or with ShutDownWhenFull; a limited buffer with
// EmitEarlyWhenFull is a Build error, as is using it on a table that is
// not windowed.
func UntilWindowCloses(b BufferConfig) Suppressed {
	return Suppressed{finalResult: true, buffer: b}
}

// UntilTimeLimit holds each key's updates back until d has passed, in
// stream time, since the first update buffered for it, then emits the
// latest (Kafka's Suppressed.untilTimeLimit): a rate limit of one update
// per key per d. A d of zero emits every update at once.
func UntilTimeLimit(d time.Duration, b BufferConfig) Suppressed {
	return Suppressed{limit: d, buffer: b}
}

// WithName names the suppression processor name and its buffer store
// name+"-store" (changelog "<application-id>-<name>-store-changelog")
// instead of generated names.
func (s Suppressed) WithName(name string) Suppressed {
	s.name = name
	return s
}

// ErrSuppressBufferFull is wrapped by the error that fails a task when a
// suppression buffer with ShutDownWhenFull goes over its limits.
var ErrSuppressBufferFull = errors.New("stream: suppression buffer exceeded its capacity")

// Suppress holds the table's updates back and emits only some of them:
// the final result of each window (UntilWindowCloses), or the latest
// update of each key once a time limit has passed (UntilTimeLimit). It is
// Kafka Streams' KTable.suppress.
//
// Per key, only the latest update is kept. The update emitted is that
// latest update, with its own timestamp and headers; it keeps its key's
// place in the buffer, which is ordered by buffer time: the timestamp of
// the first update buffered for the key (UntilTimeLimit), or the time its
// window closes (UntilWindowCloses). Updates are emitted in that order.
//
// Time is stream time as this processor sees it: the largest timestamp of
// the updates it has received. The check runs on every update received,
// so buffered updates wait for a later update (of any key) to be emitted;
// nothing is emitted on wall-clock time, in Kafka Streams either.
//
// UntilWindowCloses never emits deletes: a tombstone still buffered when
// its window closes (a session replaced by a merge) is dropped, as
// nothing was emitted for that window before. UntilTimeLimit emits them.
//
// The buffer is a logged in-memory key-value store, named
// KTABLE-SUPPRESS-STATE-STORE-<n> (or name+"-store" with
// Suppressed.WithName); a restarted task rebuilds it from the changelog
// and emits what was buffered later, once. The processor's stream time
// is not stored: after a restart, as in Kafka, restored updates wait for
// the next update received. The store's values use the layout documented
// at encodeSuppressed.
//
// Looking up the suppressed table (in a join) returns, for a key with a
// buffered update, the value emitted last, which the buffer remembers, and
// the parent table's value otherwise.
func (t KTable[K, V]) Suppress(s Suppressed) KTable[K, V] {
	b := t.b
	const op = "suppress"
	nodeName, store := s.name, s.name+"-store"
	if s.name == "" {
		nodeName = b.newName("KTABLE-SUPPRESS")
		store = b.newName("KTABLE-SUPPRESS-STATE-STORE")
	}
	ks, vs := orDefault(t.ks), orDefault(t.vs)
	if ks == nil {
		b.errorf(op, nodeName, "no key serde for the suppression buffer (set the table's serdes with WithSerdes)")
	}
	if vs == nil {
		b.errorf(op, nodeName, "no value serde for the suppression buffer (set the table's serdes with WithSerdes)")
	}
	if s.buffer.MaxRecords < 0 || s.buffer.MaxBytes < 0 {
		b.errorf(op, nodeName, "negative buffer limit (MaxRecords %d, MaxBytes %d)", s.buffer.MaxRecords, s.buffer.MaxBytes)
	}
	if s.buffer.OnFull != EmitEarlyWhenFull && s.buffer.OnFull != ShutDownWhenFull {
		b.errorf(op, nodeName, "unknown %v", s.buffer.OnFull)
	}
	if s.limit < 0 {
		b.errorf(op, nodeName, "negative time limit %v", s.limit)
	}
	p := suppressParams[K]{limit: s.limit.Milliseconds(), buffer: s.buffer}
	if s.finalResult {
		p.limit, p.dropTombstones = 0, true
		win := windowOf[K]()
		switch {
		case t.finalAt == nil || win == nil:
			b.errorf(op, nodeName, "UntilWindowCloses needs a windowed table (the result of a windowed or session aggregation): only windows close")
		case s.buffer.limited() && s.buffer.OnFull == EmitEarlyWhenFull:
			b.errorf(op, nodeName, "UntilWindowCloses needs a strict buffer: Unbounded or ShutDownWhenFull, not EmitEarlyWhenFull (a window emitted early would not be final)")
		default:
			finalAt := t.finalAt
			p.bufferTime = func(k K, _ int64) int64 { return finalAt(win(k)) }
		}
	} else {
		p.bufferTime = func(_ K, ts int64) int64 { return ts }
	}
	b.addStore(op, nodeName, &storeSpec{name: store, kind: KeyValueKind, inMemory: true, logging: true})
	n := addFn(b, &node{op: op, name: nodeName, stores: []string{store}}, "KTABLE-SUPPRESS", func(ctx *procCtx[K, Change[V]]) (func(Record[K, Change[V]]) error, error) {
		sp, err := newSuppressProc(ctx, store, ks, vs, p)
		if err != nil {
			return nil, err
		}
		return sp.process, nil
	}, t.n)
	out := t
	out.n, out.store, out.getter = n, "", suppressedGetter(t.getter, store, ks, vs)
	return out
}

// windowOf returns a function extracting the window of a key of type K
// when K is a window.Windowed type, or nil.
func windowOf[K any]() func(K) window.Window {
	var zero K
	if _, ok := any(zero).(interface{ Bounds() window.Window }); !ok {
		return nil
	}
	return func(k K) window.Window { return any(k).(interface{ Bounds() window.Window }).Bounds() }
}

// suppressParams is what a suppression processor does, decided at build.
type suppressParams[K any] struct {
	// limit is how long after its buffer time an update is emitted (ms).
	limit int64
	// bufferTime gives the buffer time of a key's first update at ts.
	bufferTime     func(k K, ts int64) int64
	buffer         BufferConfig
	dropTombstones bool
}

// suppressProc is the per-task suppression processor. The store holds one
// entry per buffered key; index orders the keys by buffer time, rebuilt
// from the store at init.
type suppressProc[K, V any] struct {
	ctx      *procCtx[K, Change[V]]
	h        *StoreHandle
	ks       serde.Serde[K]
	vs       serde.Serde[V]
	topic    string
	p        suppressParams[K]
	observed int64
	index    suppressIndex
	byKey    map[string]*suppressEntry
	bytes    int64
}

func newSuppressProc[K, V any](ctx *procCtx[K, Change[V]], store string, ks serde.Serde[K], vs serde.Serde[V], p suppressParams[K]) (*suppressProc[K, V], error) {
	h := ctx.t.stores[store]
	if h == nil {
		return nil, fmt.Errorf("store %s is not open in task %s", store, ctx.t.cfg.ID)
	}
	sp := &suppressProc[K, V]{ctx: ctx, h: h, ks: ks, vs: vs, p: p, observed: -1,
		topic: ChangelogTopic(ctx.t.cfg.ApplicationID, store), byKey: map[string]*suppressEntry{}}
	// Rebuild the time index from the (restored) store.
	for e, err := range h.All() {
		if err != nil {
			return nil, fmt.Errorf("suppression buffer %s: %w", store, err)
		}
		v, err := decodeSuppressed(e.Value)
		if err != nil {
			return nil, fmt.Errorf("suppression buffer %s: key %x: %w", store, e.Key, err)
		}
		sp.track(string(e.Key), v)
	}
	return sp, nil
}

// track adds key to the index, or updates its size.
func (sp *suppressProc[K, V]) track(key string, v *suppressedValue) {
	size := v.size(len(key))
	if e := sp.byKey[key]; e != nil {
		sp.bytes += size - e.size
		e.size = size
		return
	}
	e := &suppressEntry{key: key, time: v.bufferTime, size: size}
	sp.byKey[key] = e
	heap.Push(&sp.index, e)
	sp.bytes += size
}

func (sp *suppressProc[K, V]) process(r Record[K, Change[V]]) error {
	if r.KeyNull {
		sp.ctx.t.dropped(sp.ctx.n.name, "null-key")
		return nil
	}
	sp.observed = max(sp.observed, r.Timestamp)
	if err := sp.buffer(r); err != nil {
		return err
	}
	return sp.enforce()
}

// buffer puts r's update in the buffer, keeping the key's buffer time and
// prior value when it is buffered already.
func (sp *suppressProc[K, V]) buffer(r Record[K, Change[V]]) error {
	kb, err := sp.ks.Serialize(sp.topic, r.Key)
	if err != nil {
		return fmt.Errorf("suppress: serialize key: %w", err)
	}
	if kb == nil {
		return errors.New("suppress: key serializes to null")
	}
	v := &suppressedValue{recordTS: r.Timestamp, headers: r.Headers}
	if r.Value.HasNew {
		if v.newV, err = sp.vs.Serialize(sp.topic, r.Value.New); err != nil {
			return fmt.Errorf("suppress: serialize new value: %w", err)
		}
	}
	if r.Value.HasOld {
		if v.oldV, err = sp.vs.Serialize(sp.topic, r.Value.Old); err != nil {
			return fmt.Errorf("suppress: serialize old value: %w", err)
		}
	}
	if sp.byKey[string(kb)] != nil {
		prev, err := sp.stored(kb)
		if err != nil {
			return err
		}
		v.bufferTime, v.prior = prev.bufferTime, prev.prior
	} else {
		v.bufferTime, v.prior, v.priorIsOld = sp.p.bufferTime(r.Key, r.Timestamp), v.oldV, true
	}
	if err := sp.h.Put(kb, encodeSuppressed(v), r.Timestamp); err != nil {
		return err
	}
	sp.track(string(kb), v)
	return nil
}

// stored reads and decodes the buffered value of key.
func (sp *suppressProc[K, V]) stored(key []byte) (*suppressedValue, error) {
	raw, _, ok, err := sp.h.Get(key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("suppress: buffered key %x missing from store %s", key, sp.h.Name())
	}
	return decodeSuppressed(raw)
}

// enforce emits what is due, then applies the buffer limits.
func (sp *suppressProc[K, V]) enforce() error {
	expiry := sp.observed - sp.p.limit
	for len(sp.index) > 0 && sp.index[0].time <= expiry {
		if err := sp.emitOldest(); err != nil {
			return err
		}
	}
	if !sp.overCapacity() {
		return nil
	}
	if sp.p.buffer.OnFull == ShutDownWhenFull {
		t := sp.ctx.t
		var src *RawRecord
		if t.current != nil {
			c := *t.current
			src = &c
		}
		t.fail(&TaskError{Task: t.cfg.ID, Node: sp.ctx.n.name, Kind: "processing", Source: src,
			Err: fmt.Errorf("%w: %s holds %d records (max %d) and %d bytes (max %d); 0 is no limit",
				ErrSuppressBufferFull, sp.ctx.n.name, len(sp.byKey), sp.p.buffer.MaxRecords, sp.bytes, sp.p.buffer.MaxBytes)})
		return nil
	}
	for sp.overCapacity() && len(sp.index) > 0 {
		if err := sp.emitOldest(); err != nil {
			return err
		}
	}
	return nil
}

func (sp *suppressProc[K, V]) overCapacity() bool {
	c := sp.p.buffer
	return (c.MaxRecords > 0 && int64(len(sp.byKey)) > c.MaxRecords) || (c.MaxBytes > 0 && sp.bytes > c.MaxBytes)
}

// emitOldest forwards the update with the smallest buffer time and then
// removes it from the buffer (a tombstone in the changelog). As in Kafka,
// a lookup of the key made downstream while the update is forwarded
// still sees the buffered prior value.
func (sp *suppressProc[K, V]) emitOldest() error {
	e := heap.Pop(&sp.index).(*suppressEntry)
	delete(sp.byKey, e.key)
	sp.bytes -= e.size
	kb := []byte(e.key)
	v, err := sp.stored(kb)
	if err != nil {
		return err
	}
	if v.newV != nil || !sp.p.dropTombstones {
		if err := sp.forward(kb, v); err != nil {
			return err
		}
	}
	return sp.h.Put(kb, nil, v.recordTS)
}

// forward decodes a buffered update and forwards it with its own
// timestamp and headers.
func (sp *suppressProc[K, V]) forward(kb []byte, v *suppressedValue) error {
	k, err := sp.ks.Deserialize(sp.topic, kb)
	if err != nil {
		return fmt.Errorf("suppress: decode buffered key: %w", err)
	}
	var c Change[V]
	if v.newV != nil {
		if c.New, err = sp.vs.Deserialize(sp.topic, v.newV); err != nil {
			return fmt.Errorf("suppress: decode buffered value: %w", err)
		}
		c.HasNew = true
	}
	if v.oldV != nil {
		if c.Old, err = sp.vs.Deserialize(sp.topic, v.oldV); err != nil {
			return fmt.Errorf("suppress: decode buffered old value: %w", err)
		}
		c.HasOld = true
	}
	sp.ctx.Forward(Record[K, Change[V]]{Key: k, Value: c, Timestamp: v.recordTS, Headers: v.headers})
	return nil
}

// suppressedGetter looks the suppressed table up: a buffered key's prior
// value (what was emitted last), else the parent's value (Kafka's
// KTableSuppressProcessorSupplier view). The prior value's timestamp is
// not kept: lookups of buffered keys return -1, Kafka's unknown timestamp.
func suppressedGetter[K, V any](parent *tableGetter[K, V], store string, ks serde.Serde[K], vs serde.Serde[V]) *tableGetter[K, V] {
	if parent == nil {
		return nil
	}
	stores := append([]string{store}, parent.stores...)
	return &tableGetter[K, V]{stores: stores, make: func(t *Task) (func(K) (V, int64, bool, error), error) {
		get, err := parent.make(t)
		if err != nil {
			return nil, err
		}
		h := t.stores[store]
		if h == nil {
			return nil, fmt.Errorf("store %s is not open in task %s", store, t.cfg.ID)
		}
		topic := ChangelogTopic(t.cfg.ApplicationID, store)
		return func(k K) (V, int64, bool, error) {
			var zero V
			kb, err := ks.Serialize(topic, k)
			if err != nil {
				return zero, 0, false, err
			}
			raw, _, ok, err := h.Get(kb)
			if err != nil {
				return zero, 0, false, err
			}
			if !ok {
				return get(k)
			}
			sv, err := decodeSuppressed(raw)
			if err != nil {
				return zero, 0, false, err
			}
			if sv.prior == nil {
				return zero, 0, false, nil
			}
			v, err := vs.Deserialize(topic, sv.prior)
			return v, -1, err == nil, err
		}, nil
	}}
}

// ---- the time index ----

// suppressEntry is one buffered key in the time index.
type suppressEntry struct {
	key  string
	time int64 // buffer time
	size int64 // bytes counted against MaxBytes
}

// suppressIndex is a min-heap of buffered keys by buffer time, then by
// key bytes (the order Kafka's buffer emits in).
type suppressIndex []*suppressEntry

func (q suppressIndex) Len() int { return len(q) }
func (q suppressIndex) Less(i, j int) bool {
	if q[i].time != q[j].time {
		return q[i].time < q[j].time
	}
	return q[i].key < q[j].key
}
func (q suppressIndex) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *suppressIndex) Push(x any)   { *q = append(*q, x.(*suppressEntry)) }
func (q *suppressIndex) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// ---- the buffer's value layout ----

// suppressedValue is one buffered update: the latest Change of a key (new
// and old serialized values, nil when absent), its buffer time, the
// timestamp and headers of the update, and the prior value
// (the key's value before its first buffered update, what downstream saw
// last).
type suppressedValue struct {
	bufferTime int64
	recordTS   int64
	newV, oldV []byte
	prior      []byte
	priorIsOld bool // prior is oldV: the key was buffered by this update
	headers    []Header
}

// size is what the entry counts against MaxBytes: Kafka's estimate of a
// buffered record (see BufferConfig).
func (v *suppressedValue) size(keyLen int) int64 {
	n := int64(8 + keyLen + len(v.newV) + len(v.oldV) + 8 + 8 + 4)
	if !v.priorIsOld {
		n += int64(len(v.prior))
	}
	for _, h := range v.headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

const (
	suppressedVersion = 1

	flagNew        = 1 << 0
	flagOld        = 1 << 1
	flagPrior      = 1 << 2
	flagPriorIsOld = 1 << 3
)

// encodeSuppressed writes v in the suppression buffer's store layout
// (also its changelog values):
//
//	version     1 byte, 1
//	buffer time 8 bytes, big-endian
//	record ts   8 bytes, big-endian: the timestamp of the latest update
//	flags       1 byte: 1 new value present, 2 old value present,
//	            4 prior value present, 8 prior value is the old value
//	new value   4-byte length + bytes, if present
//	old value   4-byte length + bytes, if present
//	prior value 4-byte length + bytes, if present and not the old value
//	headers     4-byte count, then per header a 4-byte length + key bytes
//	            and a 4-byte length + value bytes (0xFFFFFFFF: null value)
//
// Lengths are big-endian uint32.
func encodeSuppressed(v *suppressedValue) []byte {
	var flags byte
	n := 1 + 8 + 8 + 1 + 4
	add := func(p []byte, f byte) {
		if p != nil {
			flags |= f
			n += 4 + len(p)
		}
	}
	add(v.newV, flagNew)
	add(v.oldV, flagOld)
	if v.priorIsOld {
		flags |= flagPriorIsOld
		if v.oldV != nil {
			flags |= flagPrior
		}
	} else {
		add(v.prior, flagPrior)
	}
	for _, h := range v.headers {
		n += 8 + len(h.Key) + len(h.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, suppressedVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(v.bufferTime))
	b = binary.BigEndian.AppendUint64(b, uint64(v.recordTS))
	b = append(b, flags)
	putBytes := func(p []byte) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		return append(b, p...)
	}
	if v.newV != nil {
		b = putBytes(v.newV)
	}
	if v.oldV != nil {
		b = putBytes(v.oldV)
	}
	if !v.priorIsOld && v.prior != nil {
		b = putBytes(v.prior)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(v.headers)))
	for _, h := range v.headers {
		b = putBytes([]byte(h.Key))
		if h.Value == nil {
			b = binary.BigEndian.AppendUint32(b, 0xFFFFFFFF)
		} else {
			b = putBytes(h.Value)
		}
	}
	return b
}

// errBadSuppressed is returned for a buffer entry that does not follow
// the layout of encodeSuppressed.
var errBadSuppressed = errors.New("stream: malformed suppression buffer entry")

// decodeSuppressed reads an entry written by encodeSuppressed.
func decodeSuppressed(b []byte) (*suppressedValue, error) {
	if len(b) < 18 || b[0] != suppressedVersion {
		return nil, errBadSuppressed
	}
	v := &suppressedValue{
		bufferTime: int64(binary.BigEndian.Uint64(b[1:])),
		recordTS:   int64(binary.BigEndian.Uint64(b[9:])),
	}
	flags := b[17]
	b = b[18:]
	bad := false
	u32 := func() uint32 {
		if len(b) < 4 {
			bad = true
			return 0
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		return n
	}
	next := func() []byte {
		n := u32()
		if bad || uint64(n) > uint64(len(b)) {
			bad = true
			return nil
		}
		p := bytes.Clone(b[:n])
		if p == nil {
			p = []byte{} // present but empty
		}
		b = b[n:]
		return p
	}
	if flags&flagNew != 0 {
		v.newV = next()
	}
	if flags&flagOld != 0 {
		v.oldV = next()
	}
	if flags&flagPriorIsOld != 0 {
		v.priorIsOld, v.prior = true, v.oldV
	} else if flags&flagPrior != 0 {
		v.prior = next()
	}
	count := u32()
	if !bad && uint64(count)*8 > uint64(len(b)) {
		bad = true
	}
	for i := uint32(0); i < count && !bad; i++ {
		h := Header{Key: string(next())}
		n := u32()
		switch {
		case bad:
		case n == 0xFFFFFFFF:
		case uint64(n) > uint64(len(b)):
			bad = true
		default:
			h.Value = bytes.Clone(b[:n])
			if h.Value == nil {
				h.Value = []byte{}
			}
			b = b[n:]
		}
		v.headers = append(v.headers, h)
	}
	if bad || len(b) != 0 {
		return nil, errBadSuppressed
	}
	return v, nil
}
