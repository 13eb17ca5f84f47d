package stream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/table"
)

// globalSpec is one global table: a topic read in full by every worker
// into a global store (no changelog: the topic is its own changelog).
type globalSpec struct {
	sourceName, topic, procName, store string
	inMemory                           bool
	// apply writes one record of topic to the store h; it reports skipped
	// records to g and returns the errors that fail the global task.
	apply func(g *GlobalTask, h *StoreHandle, raw *RawRecord) error
}

// GlobalKTable is a table that every worker reads in full, from every
// partition of its topic: Kafka Streams' GlobalKTable<K, V>. It can only
// be joined with streams (JoinGlobal, LeftJoinGlobal), which then need no
// co-partitioning.
type GlobalKTable[K, V any] struct {
	b    *Builder
	spec *globalSpec
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// StoreName returns the name of the global store holding the table.
func (g GlobalKTable[K, V]) StoreName() string { return g.spec.store }

// GlobalTable adds a global table read from topic: Kafka Streams'
// builder.globalTable. Every worker keeps the whole table in a global
// store (named m.Name, or generated), shared by its tasks, which only read
// it. The store has no changelog; on start it is rebuilt from the topic
// itself. A null value deletes its key; records with a null key are
// dropped. m.DisableLogging and m.DisableCaching do not apply.
func GlobalTable[K, V any](b *Builder, topic string, c Consumed[K, V], m Materialized[K, V]) GlobalKTable[K, V] {
	const op = "globalTable"
	store := m.Name
	if store == "" {
		store = b.newName(topic + "-STATE-STORE")
	}
	src := c.Name
	if src == "" || b.byName[src] != nil {
		if src != "" {
			b.errorf(op, src, "a processor named %q already exists", src)
		}
		src = b.newName("KSTREAM-SOURCE")
	}
	proc := b.newName("KTABLE-SOURCE")
	// Reserve the names; the nodes are not part of any sub-topology.
	b.byName[src] = &node{name: src, kind: kindSource, op: op, topics: []string{topic}}
	b.byName[proc] = &node{name: proc, kind: kindProcessor, op: op, stores: []string{store}}

	if topic == "" {
		b.errorf(op, src, "a global table needs a topic")
	}
	c.Key, c.Value = orDefault(c.Key), orDefault(c.Value)
	if m.Key == nil {
		m.Key = c.Key
	}
	if m.Value == nil {
		m.Value = c.Value
	}
	if c.Key == nil || c.Value == nil || m.Key == nil || m.Value == nil {
		b.errorf(op, proc, "global table of %q needs a key and a value serde (Consumed or Materialized)", topic)
	}
	b.addStore(op, proc, &storeSpec{name: store, inMemory: m.InMemory})
	ext := c.TimestampExtractor
	if ext == nil {
		ext = RecordTimestamp
	}
	cks, cvs, mks, mvs := c.Key, c.Value, m.Key, m.Value
	spec := &globalSpec{sourceName: src, topic: topic, procName: proc, store: store, inMemory: m.InMemory}
	spec.apply = func(g *GlobalTask, h *StoreHandle, raw *RawRecord) error {
		if raw.Key == nil {
			g.dropped(proc, "null-key")
			return nil
		}
		k, err := cks.Deserialize(raw.Topic, raw.Key)
		if err != nil {
			return g.handleDeser(src, raw, fmt.Errorf("key: %w", err))
		}
		var v V
		if raw.Value != nil {
			if v, err = cvs.Deserialize(raw.Topic, raw.Value); err != nil {
				return g.handleDeser(src, raw, fmt.Errorf("value: %w", err))
			}
		}
		tp := topicPart{raw.Topic, raw.Partition}
		pt, seen := g.partTime[tp]
		if !seen {
			pt = -1
		}
		ts, err := ext(raw, pt)
		if err != nil || ts < 0 {
			g.log.Warn("dropping record with an invalid timestamp", "node", src, "timestamp", ts, "err", err, "source", sourceAttr(raw))
			g.dropped(src, "invalid-timestamp")
			return nil
		}
		if ts > pt {
			g.partTime[tp] = ts
		}
		kb, err := mks.Serialize(store, k)
		if err != nil {
			return fmt.Errorf("stream: global store %s: serialize key: %w", store, err)
		}
		if len(kb) == 0 {
			g.dropped(proc, "null-key")
			return nil
		}
		var vb []byte
		if raw.Value != nil {
			if vb, err = mvs.Serialize(store, v); err != nil {
				return fmt.Errorf("stream: global store %s: serialize value: %w", store, err)
			}
		}
		if err := h.Put(kb, vb, ts); err != nil {
			return fmt.Errorf("stream: global store %s: %w", store, err)
		}
		return nil
	}
	b.globals = append(b.globals, spec)
	return GlobalKTable[K, V]{b: b, spec: spec, ks: mks, vs: mvs}
}

// JoinGlobal joins each stream record with the global table's row for the
// key keyMapper computes from it (inner join): Kafka Streams'
// KStream.join(GlobalKTable, keyMapper, joiner). Only stream records
// produce output, with their own timestamp and key; the streams need no
// co-partitioning and no repartition. Records with a null value, or whose
// mapped key is null (serializes to nil) or absent from the table, produce
// nothing; a record with a null key still joins (Kafka does the same).
func JoinGlobal[K, V, GK, GV, VR any](s KStream[K, V], g GlobalKTable[GK, GV], keyMapper func(K, V) GK, joiner func(K, V, GV) VR) KStream[K, VR] {
	return globalJoin(s, g, false, keyMapper, func(k K, v V, gv GV, _ bool) VR { return joiner(k, v, gv) })
}

// LeftJoinGlobal is JoinGlobal where a stream record whose mapped key has
// no row still produces output: the joiner gets ok false and GV's zero
// value. As in Kafka Streams, a record with a null mapped key is dropped
// unless its own key is null too.
func LeftJoinGlobal[K, V, GK, GV, VR any](s KStream[K, V], g GlobalKTable[GK, GV], keyMapper func(K, V) GK, joiner func(k K, v V, gv GV, ok bool) VR) KStream[K, VR] {
	return globalJoin(s, g, true, keyMapper, joiner)
}

func globalJoin[K, V, GK, GV, VR any](s KStream[K, V], g GlobalKTable[GK, GV], left bool, keyMapper func(K, V) GK, joiner func(K, V, GV, bool) VR) KStream[K, VR] {
	op, prefix := "join", "KSTREAM-JOIN"
	if left {
		op, prefix = "leftJoin", "KSTREAM-LEFTJOIN"
	}
	store, topic, ks, vs := g.spec.store, g.spec.topic, g.ks, g.vs
	n := addFn(s.b, &node{op: op}, prefix, func(ctx *procCtx[K, VR]) (func(Record[K, V]) error, error) {
		h, err := ctx.t.globalStore(store)
		if err != nil {
			return nil, err
		}
		return func(r Record[K, V]) error {
			if r.ValueNull {
				ctx.t.dropped(ctx.n.name, "null-key-or-value")
				return nil
			}
			kb, err := ks.Serialize(topic, keyMapper(r.Key, r.Value))
			if err != nil {
				return fmt.Errorf("serialize mapped key: %w", err)
			}
			if kb == nil && !(left && r.KeyNull) {
				ctx.t.dropped(ctx.n.name, "null-key-or-value")
				return nil
			}
			var gv GV
			var ok bool
			if len(kb) > 0 {
				var vb []byte
				if vb, _, ok, err = h.Get(kb); err != nil {
					return err
				}
				if ok {
					if gv, err = vs.Deserialize(topic, vb); err != nil {
						return fmt.Errorf("decode global row: %w", err)
					}
				}
			}
			if !ok && !left {
				return nil
			}
			ctx.Forward(withValue(r, joiner(r.Key, r.Value, gv, ok)))
			return nil
		}, nil
	}, s.n)
	return KStream[K, VR]{b: s.b, n: n, ks: s.ks, keyChanged: s.keyChanged, sources: s.sources}
}

// globalStore returns the process's global store called name.
func (t *Task) globalStore(name string) (*StoreHandle, error) {
	if t.cfg.GlobalStores != nil {
		if h := t.cfg.GlobalStores(name); h != nil {
			return h, nil
		}
	}
	return nil, fmt.Errorf("global store %q is not available to task %s (TaskConfig.GlobalStores)", name, t.cfg.ID)
}

// GlobalStoreInfo describes a global store for the runtime.
type GlobalStoreInfo struct {
	// Name is the store name.
	Name string
	// Topic is the topic the store is built from, read in full (every
	// partition) by every worker. Global topics are user topics: they are
	// not prefixed with the application id.
	Topic string
	// InMemory asks for an in-memory store rather than a persistent one.
	InMemory bool
}

// GlobalStores describes the topology's global stores, in declaration
// order. appID is accepted for symmetry with Subtopologies.
func (t *Topology) GlobalStores(appID string) []GlobalStoreInfo {
	_ = appID
	var out []GlobalStoreInfo
	for _, g := range t.b.globals {
		out = append(out, GlobalStoreInfo{Name: g.store, Topic: g.topic, InMemory: g.inMemory})
	}
	return out
}

// GlobalEnv opens the global stores of a GlobalTask. A TaskEnv is one; if
// the env also has TaskEnv's Send method, dead-letter records of
// undecodable global records are sent through it.
type GlobalEnv interface {
	// OpenStore returns the process's copy of a global store (StoreInfo
	// has Logged false). The GlobalTask closes it in Close.
	OpenStore(info StoreInfo) (StateStore, error)
}

// GlobalTaskConfig configures a GlobalTask.
type GlobalTaskConfig struct {
	// ApplicationID is the application id. Required.
	ApplicationID string
	// Env opens the global stores. Required.
	Env GlobalEnv
	// Logger; nil discards.
	Logger *slog.Logger
	// Errors are the error handlers; only Deserialization (and the
	// dead-letter topic) apply. Handlers see TaskID.Subtopology -1.
	Errors ErrorHandlers
	// Hooks receive metrics events (Dropped only).
	Hooks TaskHooks
}

// GlobalTask keeps a process's global stores: Kafka Streams' global
// state update task. The runtime creates one per process, applies every
// record of the global topics (all partitions; from the beginning, or from
// a checkpoint of Offsets, on start) with Apply, and hands its stores to
// the stream tasks through TaskConfig.GlobalStores; tasks only read them.
// Apply, Flush and Close are called from one goroutine; the stores' Get
// is safe concurrently with Apply.
type GlobalTask struct {
	top      *Topology
	cfg      GlobalTaskConfig
	log      *slog.Logger
	byTopic  map[string]*globalSpec
	stores   map[string]*StoreHandle
	partTime map[topicPart]int64
	offsets  map[topicPart]int64
	fatal    error
	closed   bool
}

// NewGlobalTask creates the global task of the topology. Call Init before
// Apply.
func (t *Topology) NewGlobalTask(cfg GlobalTaskConfig) (*GlobalTask, error) {
	if cfg.ApplicationID == "" || cfg.Env == nil {
		return nil, errors.New("stream: NewGlobalTask needs an ApplicationID and an Env")
	}
	g := &GlobalTask{top: t, cfg: cfg, log: cfg.Logger, byTopic: map[string]*globalSpec{},
		stores: map[string]*StoreHandle{}, partTime: map[topicPart]int64{}, offsets: map[topicPart]int64{}}
	if g.log == nil {
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	g.log = g.log.With("task", "global")
	for _, s := range t.b.globals {
		if _, dup := g.byTopic[s.topic]; dup {
			return nil, fmt.Errorf("stream: topic %q feeds two global tables", s.topic)
		}
		g.byTopic[s.topic] = s
	}
	return g, nil
}

// Init opens the global stores.
func (g *GlobalTask) Init() error {
	for _, s := range g.top.b.globals {
		info := StoreInfo{Name: s.store, InMemory: s.inMemory}
		st, err := g.cfg.Env.OpenStore(info)
		if err != nil {
			return fmt.Errorf("stream: global task: open store %s: %w", s.store, err)
		}
		kv, ok := st.(table.KeyValueStore)
		if !ok {
			st.Close()
			return fmt.Errorf("stream: global task: store %s: the Env opened a %T, not a key-value store", s.store, st)
		}
		g.stores[s.store] = &StoreHandle{info: info, kv: kv, st: kv}
	}
	return nil
}

// Topics returns the global topics, sorted.
func (g *GlobalTask) Topics() []string {
	var out []string
	for tp := range g.byTopic {
		out = append(out, tp)
	}
	slices.Sort(out)
	return out
}

// Apply writes records of the global topics to their stores, in order. It
// returns the error that failed the task, if any (an undecodable record
// under LogAndFail, a store error); after an error the task must be
// closed.
func (g *GlobalTask) Apply(recs ...RawRecord) error {
	for i := range recs {
		if g.fatal != nil {
			break
		}
		r := &recs[i]
		s := g.byTopic[r.Topic]
		if s == nil {
			return fmt.Errorf("stream: global task does not read topic %q", r.Topic)
		}
		if err := s.apply(g, g.stores[s.store], r); err != nil && g.fatal == nil {
			g.fatal = err
			g.log.Error("global task failed", "err", err)
		}
		g.offsets[topicPart{r.Topic, r.Partition}] = r.Offset + 1
	}
	return g.fatal
}

// Offsets returns, per global topic-partition, the offset after the last
// applied record: what the runtime checkpoints with the stores.
func (g *GlobalTask) Offsets() map[table.TopicPartition]int64 {
	out := make(map[table.TopicPartition]int64, len(g.offsets))
	for tp, o := range g.offsets {
		out[table.TopicPartition{Topic: tp.topic, Partition: tp.partition}] = o
	}
	return out
}

// Store returns the global store called name, or nil.
func (g *GlobalTask) Store(name string) *StoreHandle { return g.stores[name] }

// Flush flushes the global stores.
func (g *GlobalTask) Flush() error {
	if g.fatal != nil {
		return g.fatal
	}
	for name, h := range g.stores {
		if err := h.kv.Flush(); err != nil {
			return fmt.Errorf("stream: global store %s: flush: %w", name, err)
		}
	}
	return nil
}

// Close closes the global stores. It is safe to call twice.
func (g *GlobalTask) Close() error {
	if g.closed {
		return nil
	}
	g.closed = true
	var errs []error
	for _, h := range g.stores {
		if err := h.kv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (g *GlobalTask) dropped(node, reason string) {
	if g.cfg.Hooks.Dropped != nil {
		g.cfg.Hooks.Dropped(node, reason)
	}
}

// handleDeser applies the deserialization handler to a global record;
// it returns the error that fails the task, or nil to skip the record.
func (g *GlobalTask) handleDeser(node string, raw *RawRecord, err error) error {
	g.log.Warn("deserialization error", "node", node, "err", err, "source", sourceAttr(raw))
	if dlq := g.cfg.Errors.DeadLetterTopic; dlq != "" {
		if s, ok := g.cfg.Env.(interface{ Send(RawRecord) error }); ok {
			if serr := s.Send(deadLetter(dlq, "deserialization", node, raw, err)); serr != nil {
				return fmt.Errorf("stream: global task: dead-letter topic %s: %w", dlq, serr)
			}
		}
	}
	if g.cfg.Errors.deser()(ErrorContext{Node: node, TaskID: TaskID{Subtopology: -1, Partition: raw.Partition}, Source: raw}, err) == Continue {
		g.dropped(node, "deserialization")
		return nil
	}
	return fmt.Errorf("stream: global task: deserialization error in %s at %s: %w", node, sourceAttr(raw), err)
}
