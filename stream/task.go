package stream

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/eddy-streams/eddy/table"
)

// TaskEnv is what a task needs from whoever runs it: the runtime (a Kafka
// client) or the test driver. Its methods are called from the task's
// goroutine only.
type TaskEnv interface {
	// OpenStore returns the task's copy of a store, already restored from
	// its changelog. The task closes it in Task.Close.
	// The store is of info.Kind: a table.KeyValueStore, WindowStore or
	// SessionStore (OpenStateStore opens any of them).
	OpenStore(info StoreInfo) (StateStore, error)
	// Send writes rec to rec.Topic. rec.Partition < 0 asks for Kafka's
	// default partitioner (murmur2 of the key bytes; null keys spread).
	// Errors returned here are synchronous failures; the runtime reports
	// asynchronous delivery failures itself.
	Send(rec RawRecord) error
}

// TaskHooks receives a task's events for metrics. Nil fields are skipped.
type TaskHooks struct {
	// Dropped is called once per dropped record with the reason:
	// "null-key", "deserialization", "processing", "production",
	// "invalid-timestamp", "late".
	Dropped func(node, reason string)
	// Processed is called with the processing time of one input record in
	// 64 (reading the clock for every record would cost as much as a
	// simple operator).
	Processed func(d time.Duration)
	// Lateness is called for each input record whose timestamp is below
	// the task's stream time, with how far below (Kafka's record-lateness;
	// in-order records are not reported), by the source node that read it.
	Lateness func(node string, lateness time.Duration)
}

// TaskConfig configures a task.
type TaskConfig struct {
	// ApplicationID prefixes internal topics. Required.
	ApplicationID string
	// ID is the task: its sub-topology and partition.
	ID TaskID
	// Env opens stores and sends records. Required.
	Env TaskEnv
	// Logger; nil discards.
	Logger *slog.Logger
	// CacheMaxBytes bounds the task's record cache; 0 disables caching
	// (every update is written through and forwarded).
	CacheMaxBytes int64
	// Errors are the error handlers.
	Errors ErrorHandlers
	// Clock returns the wall-clock time in epoch ms; nil: time.Now.
	Clock func() int64
	// Hooks receive metrics events.
	Hooks TaskHooks
	// InvalidTimestamps is the policy for input records whose timestamp is
	// negative or cannot be extracted, for sources whose Consumed does not
	// set one. Default (zero): FailOnInvalidTimestamp, as in Kafka Streams.
	InvalidTimestamps InvalidTimestampPolicy
	// GlobalStores returns the process's global store called name (see
	// Topology.GlobalStores and GlobalTask.Store), which the task only
	// reads; nil when the topology has no global tables.
	GlobalStores func(name string) *StoreHandle
	// DeferStoreFlush makes Flush leave the stores' own Flush to the
	// caller. The runtime sets it under exactly-once: its transactional
	// stores must take a commit's writes only after the transaction
	// committed.
	DeferStoreFlush bool
}

// Task runs one sub-topology for one partition: Kafka Streams' StreamTask.
// It buffers input records per partition, processes them in timestamp
// order, keeps stream time, fires punctuators, and owns the task's stores
// and record cache. A Task is used by one goroutine.
type Task struct {
	top   *Topology
	cfg   TaskConfig
	sub   *subtopology
	log   *slog.Logger
	clock func() int64

	instances map[*node]any
	sources   map[string]rawInput // full topic name → source
	inits     []func() error
	closers   []func() error
	stores    map[string]*StoreHandle
	cache     *table.Cache

	queues   map[topicPart]*partQueue
	heads    queueHeap
	buffered int
	curQueue *partQueue
	sample   uint64

	streamTime int64
	current    *RawRecord
	recordTS   int64 // timestamp of the record a Processor is processing; -1 in punctuators
	punct      punctQueue
	commitReq  bool
	fatal      error
	closed     bool
	// flushing counts the cache flush listeners running; held says a
	// store holds writes made meanwhile (see StoreHandle.hold).
	flushing int
	held     bool
}

type topicPart struct {
	topic     string
	partition int32
}

// rawInput is a source node instance.
type rawInput interface{ processRaw(rec *RawRecord) }

// input is the per-task instance of a node taking Record[K, V].
type input[K, V any] interface{ process(rec Record[K, V]) }

// NewTask creates the task cfg.ID. Call Init before processing.
func (t *Topology) NewTask(cfg TaskConfig) (*Task, error) {
	if cfg.ApplicationID == "" || cfg.Env == nil {
		return nil, errors.New("stream: NewTask needs an ApplicationID and an Env")
	}
	if cfg.ID.Subtopology < 0 || cfg.ID.Subtopology >= len(t.subs) {
		return nil, fmt.Errorf("stream: task %s: no sub-topology %d", cfg.ID, cfg.ID.Subtopology)
	}
	tk := &Task{
		top: t, cfg: cfg, sub: t.subs[cfg.ID.Subtopology],
		log:        cfg.Logger,
		clock:      cfg.Clock,
		instances:  map[*node]any{},
		sources:    map[string]rawInput{},
		stores:     map[string]*StoreHandle{},
		cache:      table.NewCache(cfg.CacheMaxBytes),
		queues:     map[topicPart]*partQueue{},
		streamTime: -1,
		recordTS:   -1,
	}
	if tk.log == nil {
		tk.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tk.log = tk.log.With("task", cfg.ID.String())
	if tk.clock == nil {
		tk.clock = func() int64 { return time.Now().UnixMilli() }
	}
	return tk, nil
}

// ID returns the task id.
func (t *Task) ID() TaskID { return t.cfg.ID }

// Init opens the task's stores (through the Env, which restores them) and
// instantiates and initializes its processors.
func (t *Task) Init() error {
	for _, name := range t.sub.stores {
		info := t.top.storeInfo(t.cfg.ApplicationID, name)
		st, err := t.cfg.Env.OpenStore(info)
		if err != nil {
			return fmt.Errorf("stream: task %s: open store %s: %w", t.cfg.ID, name, err)
		}
		h, err := newStoreHandle(t, info, st, t.top.b.stores[name].caching && t.cfg.CacheMaxBytes > 0)
		if err != nil {
			st.Close()
			return fmt.Errorf("stream: task %s: %w", t.cfg.ID, err)
		}
		t.stores[name] = h
		t.cache.Register(name, func(entries []table.DirtyEntry) error {
			t.flushing++
			defer func() { t.flushing-- }()
			return h.flushEntries(entries)
		})
	}
	// Instantiate children before parents.
	for i := len(t.sub.nodes) - 1; i >= 0; i-- {
		if _, err := t.instance(t.sub.nodes[i]); err != nil {
			return err
		}
	}
	for _, n := range t.sub.sources {
		src, ok := t.instances[n].(rawInput)
		if !ok {
			return fmt.Errorf("stream: source %s has no raw input", n.name)
		}
		for _, tp := range n.topics {
			if n.internal {
				tp = internalName(t.cfg.ApplicationID, tp)
			}
			t.sources[tp] = src
		}
	}
	for _, f := range t.inits {
		if err := f(); err != nil {
			return fmt.Errorf("stream: task %s: init: %w", t.cfg.ID, err)
		}
	}
	return nil
}

func (t *Task) instance(n *node) (any, error) {
	if in, ok := t.instances[n]; ok {
		return in, nil
	}
	children := make([]any, len(n.children))
	for i, c := range n.children {
		ci, err := t.instance(c)
		if err != nil {
			return nil, err
		}
		children[i] = ci
	}
	in, err := n.newInstance(t, children)
	if err != nil {
		return nil, fmt.Errorf("stream: task %s: node %s: %w", t.cfg.ID, n.name, err)
	}
	t.instances[n] = in
	return in, nil
}

// Add buffers input records of one of the task's source topics. The
// records are copied; recs may be reused once Add returns.
func (t *Task) Add(recs ...RawRecord) error {
	for len(recs) > 0 {
		// One run of records of the same partition at a time.
		r := &recs[0]
		n := 1
		for n < len(recs) && recs[n].Partition == r.Partition && recs[n].Topic == r.Topic {
			n++
		}
		q, err := t.queue(r.Topic, r.Partition)
		if err != nil {
			return err
		}
		wasEmpty := q.len() == 0
		copy(q.grow(n, t.current == nil), recs[:n])
		t.buffered += n
		if wasEmpty {
			heap.Push(&t.heads, q)
		}
		recs = recs[n:]
	}
	return nil
}

// AddFunc buffers n records of one partition of a source topic, written
// in place by fill: dst has length n, and fill must set every record
// (with this Topic and Partition). It saves the copy Add makes.
func (t *Task) AddFunc(topic string, partition int32, n int, fill func(dst []RawRecord)) error {
	if n <= 0 {
		return nil
	}
	q, err := t.queue(topic, partition)
	if err != nil {
		return err
	}
	wasEmpty := q.len() == 0
	fill(q.grow(n, t.current == nil))
	t.buffered += n
	if wasEmpty {
		heap.Push(&t.heads, q)
	}
	return nil
}

// queue returns the queue of a source partition, creating it.
func (t *Task) queue(topic string, partition int32) (*partQueue, error) {
	tp := topicPart{topic, partition}
	q := t.queues[tp]
	if q == nil {
		src, ok := t.sources[topic]
		if !ok {
			return nil, fmt.Errorf("stream: task %s does not read topic %q", t.cfg.ID, topic)
		}
		q = &partQueue{tp: tp, src: src, partTime: -1, consumed: -1, idx: -1}
		t.queues[tp] = q
	}
	return q, nil
}

// Buffered returns the number of records added but not yet processed.
func (t *Task) Buffered() int { return t.buffered }

// BufferedFor returns the records buffered for one input partition.
func (t *Task) BufferedFor(topic string, partition int32) int {
	if q := t.queues[topicPart{topic, partition}]; q != nil {
		return q.len()
	}
	return 0
}

// Process processes up to max buffered records, each time taking the
// partition whose next record has the smallest timestamp (Kafka's
// PartitionGroup). It returns how many it processed and the error that
// failed the task, if any; after an error the task must be closed.
func (t *Task) Process(max int) (int, error) {
	n := 0
	for n < max && t.heads.Len() > 0 && t.fatal == nil {
		q := t.heads[0]
		rec := &q.recs[q.head]
		q.head++
		t.buffered--
		if q.len() == 0 {
			heap.Pop(&t.heads)
		} else if len(t.heads) > 1 {
			heap.Fix(&t.heads, 0)
		}
		t.processOne(q, rec)
		q.consumed = rec.Offset + 1
		if q.len() == 0 && q.idx < 0 {
			// Drained (and not refilled by processing): reuse the slice,
			// dropping its references to the records' bytes.
			clear(q.recs)
			q.recs, q.head = q.recs[:0], 0
		}
		n++
		if t.fatal == nil {
			t.punctuateStream()
		}
	}
	return n, t.fatal
}

// processOne processes one record. Processing time is measured on one
// record in 64 (reading the clock costs as much as a simple operator).
func (t *Task) processOne(q *partQueue, rec *RawRecord) {
	timed := t.cfg.Hooks.Processed != nil && t.sample&63 == 0
	t.sample++
	var start time.Time
	if timed {
		start = time.Now()
	}
	t.current, t.curQueue = rec, q
	q.src.processRaw(rec)
	t.current, t.curQueue = nil, nil
	if timed {
		t.cfg.Hooks.Processed(time.Since(start))
	}
}

// observe advances the current partition's time and the task's stream time
// to ts, the extracted timestamp of the record being processed.
func (t *Task) observe(ts int64) {
	if q := t.curQueue; q != nil && ts > q.partTime {
		q.partTime = ts
	}
	if ts > t.streamTime {
		t.streamTime = ts
	}
}

// CommitOffsets returns, per input topic-partition, the offset to commit
// (one past the last processed record). Partitions with nothing processed
// are absent.
func (t *Task) CommitOffsets() map[table.TopicPartition]int64 {
	out := make(map[table.TopicPartition]int64, len(t.queues))
	for tp, q := range t.queues {
		if q.consumed >= 0 {
			out[table.TopicPartition{Topic: tp.topic, Partition: tp.partition}] = q.consumed
		}
	}
	return out
}

// StreamTime returns the task's stream time (-1 before the first record).
func (t *Task) StreamTime() int64 { return t.streamTime }

// CommitRequested reports (and clears) whether a processor asked for a
// commit.
func (t *Task) CommitRequested() bool {
	r := t.commitReq
	t.commitReq = false
	return r
}

// Flush flushes the record cache (writing stores and changelogs and
// forwarding cached updates downstream) and then the stores (unless
// TaskConfig.DeferStoreFlush). The runtime
// calls it before it commits; after Flush the caller flushes its producer,
// writes checkpoints and commits CommitOffsets.
func (t *Task) Flush() error {
	if t.fatal != nil {
		return t.fatal
	}
	// Flushing a store forwards its updates, which can write to stores
	// downstream: flush until nothing is left.
	for again := true; again; {
		err := t.cache.Flush()
		if err == nil {
			again = t.held
			err = t.releaseHeld()
		}
		if err != nil {
			t.fail(&TaskError{Task: t.cfg.ID, Node: "cache", Kind: "processing", Err: err})
			return t.fatal
		}
		if t.fatal != nil {
			return t.fatal
		}
	}
	if t.cfg.DeferStoreFlush {
		return nil
	}
	for _, h := range t.stores {
		if err := h.st.Flush(); err != nil {
			return fmt.Errorf("stream: task %s: flush store %s: %w", t.cfg.ID, h.info.Name, err)
		}
	}
	return nil
}

// releaseHeld moves the writes stores held during cache flushes into the
// cache, once no flush is running. A Put can evict and so flush again,
// holding more: it loops until nothing is held.
func (t *Task) releaseHeld() error {
	for t.flushing == 0 && t.held {
		t.held = false
		for _, name := range t.sub.stores {
			h := t.stores[name]
			for len(h.heldKeys) > 0 {
				k := h.heldKeys[0]
				h.heldKeys = h.heldKeys[1:]
				e := h.held[k]
				delete(h.held, k)
				if err := t.cache.Put(name, e.Key, e.Value, e.Timestamp); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Punctuate fires the wall-clock punctuators due at the task's clock.
func (t *Task) Punctuate() error {
	if t.fatal != nil {
		return t.fatal
	}
	t.punct.fire(t, WallClockTime, t.clock())
	return t.fatal
}

func (t *Task) punctuateStream() {
	if t.streamTime >= 0 {
		t.punct.fire(t, StreamTime, t.streamTime)
	}
}

// Close closes processors and stores. Flush first for a clean close; a
// dirty close (after an error) drops the cache.
func (t *Task) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for _, c := range t.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	for name, h := range t.stores {
		t.cache.Drop(name)
		h.held, h.heldKeys = nil, nil
		if err := h.st.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Store returns the task's handle on a store, or nil.
func (t *Task) Store(name string) *StoreHandle { return t.stores[name] }

// Err returns the error that failed the task, if any.
func (t *Task) Err() error { return t.fatal }

func (t *Task) fail(err error) {
	if t.fatal == nil {
		t.fatal = err
		t.log.Error("task failed", "err", err)
	}
}

func (t *Task) dropped(node, reason string) {
	if t.cfg.Hooks.Dropped != nil {
		t.cfg.Hooks.Dropped(node, reason)
	}
}

// handle applies an error handler: kind is "deserialization",
// "processing" or "production".
func (t *Task) handle(kind, node string, h ErrorHandler, err error) {
	// The queue reuses the current record's slot once it is processed:
	// errors and handlers keep a copy.
	var src *RawRecord
	if t.current != nil {
		c := *t.current
		src = &c
	}
	ectx := ErrorContext{Node: node, TaskID: t.cfg.ID, Source: src}
	t.log.Warn(kind+" error", "node", node, "err", err, "source", sourceAttr(t.current))
	if dlq := t.cfg.Errors.DeadLetterTopic; dlq != "" {
		if serr := t.cfg.Env.Send(deadLetter(dlq, kind, node, t.current, err)); serr != nil {
			t.fail(&TaskError{Task: t.cfg.ID, Node: node, Kind: "production", Source: src, Err: fmt.Errorf("dead-letter topic %s: %w", dlq, serr)})
			return
		}
	}
	if h(ectx, err) == Continue {
		t.dropped(node, kind)
		return
	}
	t.fail(&TaskError{Task: t.cfg.ID, Node: node, Kind: kind, Source: src, Err: err})
}

func sourceAttr(r *RawRecord) string {
	if r == nil {
		return "punctuator"
	}
	return fmt.Sprintf("%s-%d@%d", r.Topic, r.Partition, r.Offset)
}

// ---- partition queues ----

type partQueue struct {
	tp       topicPart
	src      rawInput
	recs     []RawRecord
	head     int
	partTime int64 // largest extracted timestamp so far (-1: none)
	consumed int64 // offset to commit (-1: nothing processed)
	idx      int
}

func (q *partQueue) len() int { return len(q.recs) - q.head }

// grow extends the queue by n records and returns them to be
// written. With compact, processed records are dropped first when that
// saves growing the slice, so a queue that never quite empties does not
// grow without bound (nor keep the fetches it held alive); not while a
// record of the queue is being processed (it would move).
func (q *partQueue) grow(n int, compact bool) []RawRecord {
	if compact && q.head > 0 && len(q.recs)+n > cap(q.recs) {
		live := copy(q.recs, q.recs[q.head:])
		clear(q.recs[live:])
		q.recs, q.head = q.recs[:live], 0
	}
	l := len(q.recs)
	q.recs = slices.Grow(q.recs, n)[:l+n]
	return q.recs[l:]
}

type queueHeap []*partQueue

func (h queueHeap) Len() int { return len(h) }
func (h queueHeap) Less(i, j int) bool {
	a, b := h[i].recs[h[i].head].Timestamp, h[j].recs[h[j].head].Timestamp
	if a != b {
		return a < b
	}
	if h[i].tp.topic != h[j].tp.topic {
		return h[i].tp.topic < h[j].tp.topic
	}
	return h[i].tp.partition < h[j].tp.partition
}
func (h queueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *queueHeap) Push(x any)   { q := x.(*partQueue); q.idx = len(*h); *h = append(*h, q) }
func (h *queueHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	*h = old[:len(old)-1]
	q.idx = -1
	return q
}

// ---- store value layout ----

// Store values are Kafka Streams' timestamped layout: an 8-byte big-endian
// timestamp, then the value bytes. Changelog records carry the plain value
// with the timestamp as the record timestamp.

func encodeStoreValue(value []byte, ts int64) []byte {
	if value == nil {
		return nil
	}
	b := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(b, uint64(ts))
	copy(b[8:], value)
	return b
}

// ErrBadStoreValue is returned for a stored value shorter than its 8-byte
// timestamp prefix.
var ErrBadStoreValue = errors.New("stream: stored value shorter than its timestamp")

// DecodeStoreValue splits a value read from a store's underlying
// table.KeyValueStore into its bytes and timestamp.
func DecodeStoreValue(b []byte) (value []byte, ts int64, err error) {
	if b == nil {
		return nil, 0, nil
	}
	if len(b) < 8 {
		return nil, 0, ErrBadStoreValue
	}
	return b[8:], int64(binary.BigEndian.Uint64(b)), nil
}

// ChangelogEntry returns the store entry that a changelog record restores
// (a nil Value deletes the key). The runtime uses it to restore stores and
// to keep standby replicas.
func ChangelogEntry(rec RawRecord) table.KeyValue {
	return table.KeyValue{Key: rec.Key, Value: encodeStoreValue(rec.Value, rec.Timestamp)}
}
