package stream

import (
	"fmt"
	"io"
	"time"

	"github.com/eddy-streams/eddy/serde"
)

// TimestampExtractor returns the event time of a record read from a topic
// (epoch ms). partitionTime is the largest timestamp seen so far on the
// record's partition (-1 before the first). A negative result, or an error,
// makes the timestamp invalid: the source's InvalidTimestampPolicy decides
// what happens to the record.
type TimestampExtractor func(rec *RawRecord, partitionTime int64) (int64, error)

// RecordTimestamp is the default extractor: the record's own timestamp
// (Kafka's record-metadata extractors; what happens to a negative one is
// the InvalidTimestampPolicy's business).
func RecordTimestamp(rec *RawRecord, _ int64) (int64, error) { return rec.Timestamp, nil }

// InvalidTimestampPolicy says what a source does with a record whose
// timestamp is invalid: negative, or not extracted because the
// TimestampExtractor returned an error. The policies are Kafka Streams'
// FailOnInvalidTimestamp, LogAndSkipOnInvalidTimestamp and
// UsePartitionTimeOnInvalidTimestamp.
type InvalidTimestampPolicy int

const (
	// InvalidTimestampDefault is the zero value: in Consumed it means the
	// task's policy (TaskConfig.InvalidTimestamps); in TaskConfig it means
	// FailOnInvalidTimestamp.
	InvalidTimestampDefault InvalidTimestampPolicy = iota
	// FailOnInvalidTimestamp fails the task with a *TaskError of kind
	// "timestamp" naming the source node and the record's position
	// (Kafka's default).
	FailOnInvalidTimestamp
	// SkipOnInvalidTimestamp logs the record and drops it, counted as
	// dropped with reason "invalid-timestamp"; when
	// ErrorHandlers.DeadLetterTopic is set the record is also written there
	// with the error headers (exception "invalid-timestamp").
	SkipOnInvalidTimestamp
	// UsePartitionTimeOnInvalidTimestamp gives the record its partition's
	// time (the largest timestamp seen on the partition so far). Before the
	// partition has a time, the task fails as with FailOnInvalidTimestamp.
	UsePartitionTimeOnInvalidTimestamp
)

// String returns the policy's name.
func (p InvalidTimestampPolicy) String() string {
	switch p {
	case InvalidTimestampDefault:
		return "default"
	case FailOnInvalidTimestamp:
		return "fail"
	case SkipOnInvalidTimestamp:
		return "skip"
	case UsePartitionTimeOnInvalidTimestamp:
		return "use-partition-time"
	}
	return fmt.Sprintf("InvalidTimestampPolicy(%d)", int(p))
}

// Consumed gives the serdes (and options) of a source topic: Kafka
// Streams' Consumed. Build one with With.
type Consumed[K, V any] struct {
	Key   serde.Serde[K]
	Value serde.Serde[V]
	// TimestampExtractor; nil: RecordTimestamp.
	TimestampExtractor TimestampExtractor
	// InvalidTimestamps is what the source does with records whose
	// timestamp is invalid; InvalidTimestampDefault: the task's policy
	// (TaskConfig.InvalidTimestamps). Global tables ignore it (they skip
	// such records).
	InvalidTimestamps InvalidTimestampPolicy
	// Name names the source node.
	Name string
}

// With returns Consumed with the given serdes.
func With[K, V any](key serde.Serde[K], value serde.Serde[V]) Consumed[K, V] {
	return Consumed[K, V]{Key: key, Value: value}
}

// WithName returns c with the source node named name.
func (c Consumed[K, V]) WithName(name string) Consumed[K, V] { c.Name = name; return c }

// WithTimestampExtractor returns c with extractor e.
func (c Consumed[K, V]) WithTimestampExtractor(e TimestampExtractor) Consumed[K, V] {
	c.TimestampExtractor = e
	return c
}

// WithInvalidTimestampPolicy returns c with policy p for records whose
// timestamp is invalid.
func (c Consumed[K, V]) WithInvalidTimestampPolicy(p InvalidTimestampPolicy) Consumed[K, V] {
	c.InvalidTimestamps = p
	return c
}

// Produced gives the serdes of a sink topic: Kafka Streams' Produced. Nil
// serdes default to the stream's own, when it has them.
type Produced[K, V any] struct {
	Key   serde.Serde[K]
	Value serde.Serde[V]
	// Partitioner picks the partition of each record (numPartitions is the
	// topic's count); nil: Kafka's default partitioner on the key bytes.
	Partitioner func(topic string, key K, value V, numPartitions int32) int32
	// Name names the sink node.
	Name string
}

// KStream is a typed record stream: Kafka Streams' KStream<K, V>.
// Operators that keep K and V are methods; those that change a type are
// package functions (Go methods cannot have type parameters).
type KStream[K, V any] struct {
	b  *Builder
	n  *node
	ks serde.Serde[K]
	vs serde.Serde[V]
	// keyChanged: a key-changing operator ran since the last source, so
	// key-based operators must repartition first.
	keyChanged bool
	// sources are the source nodes this stream reads (for co-partitioning).
	sources []*node
}

// Node returns the name of the processor that produces this stream.
func (s KStream[K, V]) Node() string { return s.n.name }

func (s KStream[K, V]) derive(n *node) KStream[K, V] {
	s.n = n
	return s
}

// Stream adds a source reading topics: Kafka Streams' builder.stream. Its
// records' keys and values are decoded with c's serdes; a null key or value
// (nil bytes) is not decoded but flagged (Record.KeyNull / ValueNull).
func Stream[K, V any](b *Builder, c Consumed[K, V], topics ...string) KStream[K, V] {
	n := addSource(b, c, "stream", false, topics...)
	return KStream[K, V]{b: b, n: n, ks: c.Key, vs: c.Value, sources: []*node{n}}
}

// sourceInstance decodes raw records and forwards them.
type sourceInstance[K, V any] struct {
	t   *Task
	n   *node
	ks  serde.Serde[K]
	vs  serde.Serde[V]
	ext TimestampExtractor
	// policy for invalid timestamps (resolved: never the default).
	policy InvalidTimestampPolicy
	ctx    *procCtx[K, V]
}

func addSource[K, V any](b *Builder, c Consumed[K, V], op string, internal bool, topics ...string) *node {
	n := b.addNode(&node{kind: kindSource, op: op, name: c.Name, topics: topics, internal: internal}, "KSTREAM-SOURCE")
	if len(topics) == 0 {
		b.errorf(op, n.name, "a source needs at least one topic")
	}
	c.Key, c.Value = orDefault(c.Key), orDefault(c.Value)
	if c.Key == nil || c.Value == nil {
		b.errorf(op, n.name, "source of %v needs a key and a value serde (Consumed)", topics)
	}
	ext := c.TimestampExtractor
	if ext == nil {
		ext = RecordTimestamp
	}
	if c.InvalidTimestamps < InvalidTimestampDefault || c.InvalidTimestamps > UsePartitionTimeOnInvalidTimestamp {
		b.errorf(op, n.name, "unknown invalid-timestamp policy %v", c.InvalidTimestamps)
	}
	n.newInstance = func(t *Task, children []any) (any, error) {
		ctx, err := newProcCtx[K, V](t, n, children)
		if err != nil {
			return nil, err
		}
		policy := c.InvalidTimestamps
		if policy == InvalidTimestampDefault {
			policy = t.cfg.InvalidTimestamps
		}
		if policy == InvalidTimestampDefault {
			policy = FailOnInvalidTimestamp
		}
		return &sourceInstance[K, V]{t: t, n: n, ks: c.Key, vs: c.Value, ext: ext, policy: policy, ctx: ctx}, nil
	}
	return n
}

func (s *sourceInstance[K, V]) processRaw(raw *RawRecord) {
	t := s.t
	rec := Record[K, V]{Headers: raw.Headers}
	var err error
	if raw.Key == nil {
		rec.KeyNull = true
	} else if rec.Key, err = s.ks.Deserialize(raw.Topic, raw.Key); err != nil {
		t.handle("deserialization", s.n.name, t.cfg.Errors.deser(), fmt.Errorf("key: %w", err))
		return
	}
	if raw.Value == nil {
		rec.ValueNull = true
	} else if rec.Value, err = s.vs.Deserialize(raw.Topic, raw.Value); err != nil {
		t.handle("deserialization", s.n.name, t.cfg.Errors.deser(), fmt.Errorf("value: %w", err))
		return
	}
	pt := int64(-1)
	if q := t.curQueue; q != nil {
		pt = q.partTime
	}
	ts, err := s.ext(raw, pt)
	if err != nil || ts < 0 {
		var ok bool
		if ts, ok = s.invalidTimestamp(raw, ts, pt, err); !ok {
			return
		}
	}
	rec.Timestamp = ts
	if st := t.streamTime; ts < st && t.cfg.Hooks.Lateness != nil {
		t.cfg.Hooks.Lateness(s.n.name, time.Duration(st-ts)*time.Millisecond)
	}
	t.observe(ts)
	s.ctx.Forward(rec)
}

// invalidTimestamp applies the source's policy to raw, whose extracted
// timestamp ts is negative or whose extractor failed with extErr. It
// returns the timestamp to use, or false when the record is not processed
// (skipped, or the task failed).
func (s *sourceInstance[K, V]) invalidTimestamp(raw *RawRecord, ts, partitionTime int64, extErr error) (int64, bool) {
	t := s.t
	var err error
	if extErr != nil {
		err = fmt.Errorf("%w: timestamp extractor: %w", ErrInvalidTimestamp, extErr)
	} else {
		err = fmt.Errorf("%w: negative timestamp %d", ErrInvalidTimestamp, ts)
	}
	switch s.policy {
	case SkipOnInvalidTimestamp:
		// Logs, writes the dead-letter record if configured, and counts
		// the record as dropped with reason "invalid-timestamp".
		t.handle("invalid-timestamp", s.n.name, LogAndContinue, err)
		return 0, false
	case UsePartitionTimeOnInvalidTimestamp:
		if partitionTime >= 0 {
			t.log.Debug("using partition time for a record with an invalid timestamp", "node", s.n.name,
				"partition_time", partitionTime, "err", err, "source", sourceAttr(raw))
			return partitionTime, true
		}
		err = fmt.Errorf("%w; partition time unknown, so it cannot be used instead", err)
	}
	// A copy: the queue clears the records it has processed.
	src := *raw
	t.fail(&TaskError{Task: t.cfg.ID, Node: s.n.name, Kind: "timestamp", Source: &src, Err: err})
	return 0, false
}

// ---- stateless operators ----

// Filter keeps records for which pred is true.
func (s KStream[K, V]) Filter(pred func(K, V) bool) KStream[K, V] {
	return s.filter("filter", pred, false)
}

// FilterNot drops records for which pred is true.
func (s KStream[K, V]) FilterNot(pred func(K, V) bool) KStream[K, V] {
	return s.filter("filterNot", pred, true)
}

func (s KStream[K, V]) filter(op string, pred func(K, V) bool, not bool) KStream[K, V] {
	n := stateless(s.b, op, "", "KSTREAM-FILTER", s.n, func(ctx *procCtx[K, V], r Record[K, V]) error {
		if pred(r.Key, r.Value) != not {
			ctx.Forward(r)
		}
		return nil
	})
	return s.derive(n)
}

// Peek calls fn for each record and passes it on unchanged.
func (s KStream[K, V]) Peek(fn func(K, V)) KStream[K, V] {
	return s.derive(stateless(s.b, "peek", "", "KSTREAM-PEEK", s.n, func(ctx *procCtx[K, V], r Record[K, V]) error {
		fn(r.Key, r.Value)
		ctx.Forward(r)
		return nil
	}))
}

// Foreach calls fn for each record; it ends the stream.
func (s KStream[K, V]) Foreach(fn func(K, V)) {
	stateless(s.b, "foreach", "", "KSTREAM-FOREACH", s.n, func(ctx *procCtx[K, V], r Record[K, V]) error {
		fn(r.Key, r.Value)
		return nil
	})
}

// Print writes each record to w as Kafka's Printed does:
// "[label]: key, value" (label defaults to the node name). It ends the
// stream.
func (s KStream[K, V]) Print(w io.Writer, label string) {
	n := &node{op: "print"}
	addFn(s.b, n, "KSTREAM-PRINTER", func(ctx *procCtx[K, V]) (func(Record[K, V]) error, error) {
		l := label
		if l == "" {
			l = n.name
		}
		return func(r Record[K, V]) error {
			var k, v any = r.Key, r.Value
			if r.KeyNull {
				k = "null" // as Java prints a null
			}
			if r.ValueNull {
				v = "null"
			}
			_, err := fmt.Fprintf(w, "[%s]: %v, %v\n", l, k, v)
			return err
		}, nil
	}, s.n)
}

// Merge returns the records of s and other as one stream.
func (s KStream[K, V]) Merge(other KStream[K, V]) KStream[K, V] {
	n := addFn(s.b, &node{op: "merge"}, "KSTREAM-MERGE", func(ctx *procCtx[K, V]) (func(Record[K, V]) error, error) {
		return func(r Record[K, V]) error { ctx.Forward(r); return nil }, nil
	}, s.n, other.n)
	out := s.derive(n)
	out.keyChanged = s.keyChanged || other.keyChanged
	out.sources = append(append([]*node{}, s.sources...), other.sources...)
	if out.ks == nil {
		out.ks = other.ks
	}
	if out.vs == nil {
		out.vs = other.vs
	}
	return out
}

// WithSerdes returns s with its key and value serdes set, for later
// operators that need them (repartitioning, aggregation, sinks).
func (s KStream[K, V]) WithSerdes(key serde.Serde[K], value serde.Serde[V]) KStream[K, V] {
	if key != nil {
		s.ks = key
	}
	if value != nil {
		s.vs = value
	}
	return s
}

// Map computes a new key and value per record; the key changes, so a later
// key-based operator repartitions.
func Map[K, V, K2, V2 any](s KStream[K, V], fn func(K, V) (K2, V2)) KStream[K2, V2] {
	n := stateless(s.b, "map", "", "KSTREAM-MAP", s.n, func(ctx *procCtx[K2, V2], r Record[K, V]) error {
		k, v := fn(r.Key, r.Value)
		ctx.Forward(withKV(r, k, v))
		return nil
	})
	return KStream[K2, V2]{b: s.b, n: n, keyChanged: true, sources: s.sources}
}

// MapValues computes a new value per record; the key is kept.
func MapValues[K, V, V2 any](s KStream[K, V], fn func(K, V) V2) KStream[K, V2] {
	n := stateless(s.b, "mapValues", "", "KSTREAM-MAPVALUES", s.n, func(ctx *procCtx[K, V2], r Record[K, V]) error {
		ctx.Forward(withValue(r, fn(r.Key, r.Value)))
		return nil
	})
	return KStream[K, V2]{b: s.b, n: n, ks: s.ks, keyChanged: s.keyChanged, sources: s.sources}
}

// FlatMap turns each record into zero or more records with new keys.
func FlatMap[K, V, K2, V2 any](s KStream[K, V], fn func(K, V) []KeyValue[K2, V2]) KStream[K2, V2] {
	n := stateless(s.b, "flatMap", "", "KSTREAM-FLATMAP", s.n, func(ctx *procCtx[K2, V2], r Record[K, V]) error {
		for _, kv := range fn(r.Key, r.Value) {
			ctx.Forward(withKV(r, kv.Key, kv.Value))
		}
		return nil
	})
	return KStream[K2, V2]{b: s.b, n: n, keyChanged: true, sources: s.sources}
}

// FlatMapValues turns each record into zero or more records with the same
// key.
func FlatMapValues[K, V, V2 any](s KStream[K, V], fn func(K, V) []V2) KStream[K, V2] {
	n := stateless(s.b, "flatMapValues", "", "KSTREAM-FLATMAPVALUES", s.n, func(ctx *procCtx[K, V2], r Record[K, V]) error {
		for _, v := range fn(r.Key, r.Value) {
			ctx.Forward(withValue(r, v))
		}
		return nil
	})
	return KStream[K, V2]{b: s.b, n: n, ks: s.ks, keyChanged: s.keyChanged, sources: s.sources}
}

// SelectKey computes a new key per record, keeping the value.
func SelectKey[K, V, K2 any](s KStream[K, V], fn func(K, V) K2) KStream[K2, V] {
	n := stateless(s.b, "selectKey", "", "KSTREAM-KEY-SELECT", s.n, func(ctx *procCtx[K2, V], r Record[K, V]) error {
		out := withKV(r, fn(r.Key, r.Value), r.Value)
		out.ValueNull = r.ValueNull
		ctx.Forward(out)
		return nil
	})
	return KStream[K2, V]{b: s.b, n: n, vs: s.vs, keyChanged: true, sources: s.sources}
}

// Process runs a Processor API processor on every record; the key may
// change. stores names stores (declared with Builder.AddStateStore) the
// processor uses.
func Process[K, V, K2, V2 any](s KStream[K, V], supplier ProcessorSupplier[K, V, K2, V2], stores ...string) KStream[K2, V2] {
	s.checkStores("process", stores)
	n := addProcessor(s.b, &node{op: "process", stores: stores}, "KSTREAM-PROCESSOR", supplier, s.n)
	return KStream[K2, V2]{b: s.b, n: n, keyChanged: true, sources: s.sources}
}

// ProcessValues runs a Processor whose output keeps each input record's
// key (Kafka's FixedKeyProcessor): any key the processor forwards is
// replaced by the input key, so no repartition is needed.
func ProcessValues[K, V, V2 any](s KStream[K, V], supplier ProcessorSupplier[K, V, K, V2], stores ...string) KStream[K, V2] {
	s.checkStores("processValues", stores)
	n := addProcessor(s.b, &node{op: "processValues", stores: stores}, "KSTREAM-PROCESSVALUES", func() Processor[K, V, K, V2] {
		return &fixedKey[K, V, V2]{inner: supplier()}
	}, s.n)
	return KStream[K, V2]{b: s.b, n: n, ks: s.ks, keyChanged: s.keyChanged, sources: s.sources}
}

func (s KStream[K, V]) checkStores(op string, stores []string) {
	for _, st := range stores {
		if _, ok := s.b.stores[st]; !ok {
			s.b.errorf(op, s.n.name, "store %q is not declared (Builder.AddStateStore)", st)
		}
	}
}

// fixedKey restores the input key on every forwarded record.
type fixedKey[K, V, V2 any] struct {
	inner Processor[K, V, K, V2]
	ctx   *fixedKeyCtx[K, V2]
}

type fixedKeyCtx[K, V any] struct {
	*procCtx[K, V]
	key     K
	keyNull bool
}

func (c *fixedKeyCtx[K, V]) Forward(r Record[K, V]) {
	r.Key, r.KeyNull = c.key, c.keyNull
	c.procCtx.Forward(r)
}

func (c *fixedKeyCtx[K, V]) ForwardTo(child string, r Record[K, V]) {
	r.Key, r.KeyNull = c.key, c.keyNull
	c.procCtx.ForwardTo(child, r)
}

func (f *fixedKey[K, V, V2]) Init(ctx ProcessorContext[K, V2]) error {
	f.ctx = &fixedKeyCtx[K, V2]{procCtx: ctx.(*procCtx[K, V2])}
	return f.inner.Init(f.ctx)
}

func (f *fixedKey[K, V, V2]) Process(r Record[K, V]) error {
	f.ctx.key, f.ctx.keyNull = r.Key, r.KeyNull
	return f.inner.Process(r)
}

func (f *fixedKey[K, V, V2]) Close() error { return f.inner.Close() }

// ---- sinks ----

// To writes the stream to topic.
func (s KStream[K, V]) To(topic string, p Produced[K, V]) {
	s.to(topic, nil, p)
}

// ToChooser writes each record to the topic chosen by fn (Kafka's
// TopicNameExtractor).
func (s KStream[K, V]) ToChooser(fn func(K, V) string, p Produced[K, V]) {
	s.to("", fn, p)
}

func (s KStream[K, V]) to(topic string, choose func(K, V) string, p Produced[K, V]) {
	ks, vs := p.Key, p.Value
	if ks == nil {
		ks = s.ks
	}
	if vs == nil {
		vs = s.vs
	}
	addSink(s.b, &node{op: "to", name: p.Name, topics: []string{topic}}, ks, vs, choose, p.Partitioner, s.n)
}

// sinkInstance serializes records and sends them.
type sinkInstance[K, V any] struct {
	t      *Task
	n      *node
	topic  string
	ks     serde.Serde[K]
	vs     serde.Serde[V]
	choose func(K, V) string
	part   func(string, K, V, int32) int32
}

func addSink[K, V any](b *Builder, n *node, ks serde.Serde[K], vs serde.Serde[V], choose func(K, V) string, part func(string, K, V, int32) int32, parent *node) *node {
	n.kind = kindSink
	b.addNode(n, "KSTREAM-SINK", parent)
	ks, vs = orDefault(ks), orDefault(vs)
	if ks == nil || vs == nil {
		b.errorf(n.op, n.name, "sink to %q needs a key and a value serde (Produced)", n.topics[0])
	}
	n.newInstance = func(t *Task, _ []any) (any, error) {
		topic := n.topics[0]
		if n.internal {
			topic = internalName(t.cfg.ApplicationID, topic)
		}
		return &sinkInstance[K, V]{t: t, n: n, topic: topic, ks: ks, vs: vs, choose: choose, part: part}, nil
	}
	return n
}

func (s *sinkInstance[K, V]) process(r Record[K, V]) {
	t := s.t
	if t.fatal != nil {
		return
	}
	topic := s.topic
	if s.choose != nil {
		topic = s.choose(r.Key, r.Value)
	}
	out := RawRecord{Topic: topic, Partition: -1, Timestamp: r.Timestamp, Headers: r.Headers}
	var err error
	if !r.KeyNull {
		if out.Key, err = s.ks.Serialize(topic, r.Key); err != nil {
			t.handle("production", s.n.name, t.cfg.Errors.prod(), fmt.Errorf("serialize key for %s: %w", topic, err))
			return
		}
	}
	if !r.ValueNull {
		if out.Value, err = s.vs.Serialize(topic, r.Value); err != nil {
			t.handle("production", s.n.name, t.cfg.Errors.prod(), fmt.Errorf("serialize value for %s: %w", topic, err))
			return
		}
	}
	if s.part != nil {
		out.Partition = partitionWith(t, topic, func(n int32) int32 { return s.part(topic, r.Key, r.Value, n) })
	}
	if err := t.cfg.Env.Send(out); err != nil {
		t.handle("production", s.n.name, t.cfg.Errors.prod(), fmt.Errorf("send to %s: %w", topic, err))
	}
}

// PartitionCounter is implemented by a TaskEnv that knows topics'
// partition counts; custom partitioners need it.
type PartitionCounter interface {
	Partitions(topic string) (int32, error)
}

func partitionWith(t *Task, topic string, fn func(int32) int32) int32 {
	pc, ok := t.cfg.Env.(PartitionCounter)
	if !ok {
		return -1
	}
	n, err := pc.Partitions(topic)
	if err != nil || n <= 0 {
		return -1
	}
	p := fn(n)
	if p < 0 || p >= n {
		return -1
	}
	return p
}
