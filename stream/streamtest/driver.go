// Package streamtest runs a topology without a broker: the counterpart of
// Kafka Streams' TopologyTestDriver.
//
// Pipe records with timestamps into input topics, read what the topology
// wrote to output topics, inspect stores (typed with KeyValueStore,
// WindowStore and SessionStore) and advance the wall clock.
// Everything runs synchronously in the calling goroutine: each piped record
// is processed to completion (through repartition topics too), then the
// driver commits, which flushes record caches, as Kafka's driver does. Every
// topic has one partition. Records piped into the topic of a global table
// update its global store before any later record is processed.
//
//	d, _ := streamtest.New(topology)
//	in := streamtest.InputTopic(d, "text-lines", serde.String(), serde.String())
//	out := streamtest.OutputTopic(d, "word-counts", serde.String(), serde.Int64())
//	in.PipeValue("hello world", 0)
//	counts, _ := streamtest.ReadKeyValuesToMap(out)
package streamtest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

// Option configures a Driver.
type Option func(*Driver)

// WithApplicationID sets the application id (default "test-app"); it
// prefixes changelog and repartition topics.
func WithApplicationID(id string) Option { return func(d *Driver) { d.appID = id } }

// WithWallClock sets the initial wall-clock time (default 0).
func WithWallClock(t time.Time) Option { return func(d *Driver) { d.wall = t.UnixMilli() } }

// WithCacheMaxBytes sets each task's record cache size (default 10 MiB; 0
// disables caching). The driver commits after every record, so caching does
// not change what is read from output topics.
func WithCacheMaxBytes(n int64) Option { return func(d *Driver) { d.cacheBytes = n } }

// WithErrorHandlers sets the tasks' error handlers (default: fail).
func WithErrorHandlers(h stream.ErrorHandlers) Option { return func(d *Driver) { d.errs = h } }

// WithInvalidTimestampPolicy sets the tasks' policy for records whose
// timestamp is negative or cannot be extracted (default: fail), for
// sources whose Consumed sets none.
func WithInvalidTimestampPolicy(p stream.InvalidTimestampPolicy) Option {
	return func(d *Driver) { d.tsPolicy = p }
}

// WithLogger sets the tasks' logger.
func WithLogger(l *slog.Logger) Option { return func(d *Driver) { d.log = l } }

// Driver runs a topology in memory. It is not safe for concurrent use.
type Driver struct {
	top        *stream.Topology
	appID      string
	wall       int64
	cacheBytes int64
	errs       stream.ErrorHandlers
	tsPolicy   stream.InvalidTimestampPolicy
	log        *slog.Logger

	tasks   []*stream.Task
	readers map[string][]*stream.Task // topic → tasks reading it
	global  *stream.GlobalTask        // nil without global tables
	globals map[string]bool           // global topics
	topics  map[string]*topicLog
	stores  map[string]table.KeyValueStore
	state   map[string]stream.StateStore
	pending []stream.RawRecord
	dropped map[string]int
	err     error
	closed  bool
}

type topicLog struct {
	recs []stream.RawRecord
	read int // next record OutputTopic reads
}

// New creates a driver for top and initializes one task per sub-topology.
func New(top *stream.Topology, opts ...Option) (*Driver, error) {
	d := &Driver{top: top, appID: "test-app", cacheBytes: 10 << 20,
		readers: map[string][]*stream.Task{}, topics: map[string]*topicLog{},
		stores: map[string]table.KeyValueStore{}, state: map[string]stream.StateStore{}, dropped: map[string]int{}, globals: map[string]bool{}}
	for _, o := range opts {
		o(d)
	}
	if gs := top.GlobalStores(d.appID); len(gs) > 0 {
		g, err := top.NewGlobalTask(stream.GlobalTaskConfig{ApplicationID: d.appID, Env: env{d}, Logger: d.log, Errors: d.errs,
			Hooks: stream.TaskHooks{Dropped: func(_, reason string) { d.dropped[reason]++ }}})
		if err != nil {
			return nil, err
		}
		if err := g.Init(); err != nil {
			return nil, err
		}
		d.global = g
		for _, gs := range gs {
			d.globals[gs.Topic] = true
		}
	}
	for _, sub := range top.Subtopologies(d.appID) {
		t, err := top.NewTask(stream.TaskConfig{
			ApplicationID:     d.appID,
			ID:                stream.TaskID{Subtopology: sub.ID},
			Env:               env{d},
			Logger:            d.log,
			CacheMaxBytes:     d.cacheBytes,
			Errors:            d.errs,
			InvalidTimestamps: d.tsPolicy,
			Clock:             func() int64 { return d.wall },
			Hooks:             stream.TaskHooks{Dropped: func(node, reason string) { d.dropped[reason]++ }},
			GlobalStores: func(name string) *stream.StoreHandle {
				if d.global == nil {
					return nil
				}
				return d.global.Store(name)
			},
		})
		if err != nil {
			return nil, err
		}
		if err := t.Init(); err != nil {
			return nil, err
		}
		d.tasks = append(d.tasks, t)
		for _, tp := range sub.SourceTopics {
			d.readers[tp] = append(d.readers[tp], t)
		}
	}
	return d, nil
}

type env struct{ d *Driver }

func (e env) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	if info.Kind != stream.KeyValueKind {
		s, err := stream.OpenStateStore(stream.StoreInfo{Name: info.Name, InMemory: true, Kind: info.Kind, Retention: info.Retention, SegmentInterval: info.SegmentInterval}, "", table.BadgerOptions{})
		if err != nil {
			return nil, err
		}
		e.d.state[info.Name] = s
		return s, nil
	}
	s := table.NewInMemory(info.Name)
	e.d.stores[info.Name] = s
	e.d.state[info.Name] = s
	return s, nil
}

func (e env) Send(rec stream.RawRecord) error {
	rec.Partition = 0
	tl := e.d.topic(rec.Topic)
	rec.Offset = int64(len(tl.recs))
	tl.recs = append(tl.recs, rec)
	if len(e.d.readers[rec.Topic]) > 0 || e.d.globals[rec.Topic] {
		e.d.pending = append(e.d.pending, rec)
	}
	return nil
}

func (e env) Partitions(string) (int32, error) { return 1, nil }

func (d *Driver) topic(name string) *topicLog {
	tl := d.topics[name]
	if tl == nil {
		tl = &topicLog{}
		d.topics[name] = tl
	}
	return tl
}

// ErrClosed is returned after Close; ErrFailed wraps the error that failed
// a task, returned by every later call.
var (
	ErrClosed = errors.New("streamtest: driver closed")
	ErrFailed = errors.New("streamtest: a task failed")
)

// PipeRaw pipes one raw record into its topic and processes it to
// completion, then commits.
func (d *Driver) PipeRaw(rec stream.RawRecord) error {
	if d.closed {
		return ErrClosed
	}
	if d.err != nil {
		return d.err
	}
	if len(d.readers[rec.Topic]) == 0 && !d.globals[rec.Topic] {
		return fmt.Errorf("streamtest: no source reads topic %q", rec.Topic)
	}
	rec.Partition = 0
	tl := d.topic(rec.Topic)
	rec.Offset = int64(len(tl.recs))
	tl.recs = append(tl.recs, rec)
	tl.read = len(tl.recs) // inputs are not read back as outputs
	d.pending = append(d.pending, rec)
	return d.drain(true)
}

// drain processes pending records until none is left, committing (cache
// flush) when commit is set, which can produce more records.
func (d *Driver) drain(commit bool) error {
	for {
		for len(d.pending) > 0 {
			rec := d.pending[0]
			d.pending = d.pending[1:]
			if d.globals[rec.Topic] {
				// Global records update the global store before any
				// later record is processed.
				if err := d.global.Apply(rec); err != nil {
					return d.fail(err)
				}
			}
			for _, t := range d.readers[rec.Topic] {
				if err := t.Add(rec); err != nil {
					return d.fail(err)
				}
				if _, err := t.Process(t.Buffered()); err != nil {
					return d.fail(err)
				}
			}
		}
		if !commit {
			return nil
		}
		for _, t := range d.tasks {
			if err := t.Flush(); err != nil {
				return d.fail(err)
			}
		}
		if d.global != nil {
			if err := d.global.Flush(); err != nil {
				return d.fail(err)
			}
		}
		if len(d.pending) == 0 {
			return nil
		}
	}
}

func (d *Driver) fail(err error) error {
	d.err = fmt.Errorf("%w: %w", ErrFailed, err)
	return d.err
}

// AdvanceWallClockTime moves the wall clock forward by by and fires the
// wall-clock punctuators that became due, then commits.
func (d *Driver) AdvanceWallClockTime(by time.Duration) error {
	if d.closed {
		return ErrClosed
	}
	if d.err != nil {
		return d.err
	}
	d.wall += by.Milliseconds()
	for _, t := range d.tasks {
		if err := t.Punctuate(); err != nil {
			return d.fail(err)
		}
	}
	return d.drain(true)
}

// Err returns the error that failed a task, if any.
func (d *Driver) Err() error { return d.err }

// Dropped returns how many records were dropped for reason ("null-key",
// "deserialization", "processing", ...).
func (d *Driver) Dropped(reason string) int { return d.dropped[reason] }

// Records returns every record written to topic so far (including
// changelog and repartition topics, named with the application id prefix).
func (d *Driver) Records(topic string) []stream.RawRecord {
	if tl := d.topics[topic]; tl != nil {
		return append([]stream.RawRecord(nil), tl.recs...)
	}
	return nil
}

// Store returns the underlying store called name (values in the
// timestamped layout, see stream.DecodeStoreValue), or nil.
func (d *Driver) Store(name string) table.KeyValueStore { return d.stores[name] }

// Close closes every task. It is safe to call twice.
func (d *Driver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, t := range d.tasks {
		if d.err == nil {
			if err := t.Flush(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := t.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if d.global != nil {
		if err := d.global.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ---- typed topics ----

// Input is a typed input topic (Kafka's TestInputTopic).
type Input[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// InputTopic returns a typed handle for piping records into topic.
func InputTopic[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) *Input[K, V] {
	return &Input[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// Pipe pipes one record with key k, value v and timestamp ts (epoch ms).
func (in *Input[K, V]) Pipe(k K, v V, ts int64, headers ...stream.Header) error {
	kb, err := in.ks.Serialize(in.topic, k)
	if err != nil {
		return err
	}
	vb, err := in.vs.Serialize(in.topic, v)
	if err != nil {
		return err
	}
	return in.d.PipeRaw(stream.RawRecord{Topic: in.topic, Key: kb, Value: vb, Timestamp: ts, Headers: headers})
}

// PipeValue pipes a record with a null key.
func (in *Input[K, V]) PipeValue(v V, ts int64) error {
	vb, err := in.vs.Serialize(in.topic, v)
	if err != nil {
		return err
	}
	return in.d.PipeRaw(stream.RawRecord{Topic: in.topic, Value: vb, Timestamp: ts})
}

// PipeTombstone pipes a record with key k and a null value.
func (in *Input[K, V]) PipeTombstone(k K, ts int64) error {
	kb, err := in.ks.Serialize(in.topic, k)
	if err != nil {
		return err
	}
	return in.d.PipeRaw(stream.RawRecord{Topic: in.topic, Key: kb, Timestamp: ts})
}

// TestRecord is a record read from an output topic.
type TestRecord[K, V any] struct {
	Key       K
	Value     V
	Timestamp int64
	Headers   []stream.Header
	KeyNull   bool
	ValueNull bool
}

// String prints "key=value@ts" (null for null keys and values).
func (r TestRecord[K, V]) String() string {
	var k, v any = r.Key, r.Value
	if r.KeyNull {
		k = "null"
	}
	if r.ValueNull {
		v = "null"
	}
	return fmt.Sprintf("%v=%v@%d", k, v, r.Timestamp)
}

// Output is a typed output topic (Kafka's TestOutputTopic). Each record is
// read once.
type Output[K, V any] struct {
	d     *Driver
	topic string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
}

// OutputTopic returns a typed handle for reading what was written to topic.
func OutputTopic[K, V any](d *Driver, topic string, ks serde.Serde[K], vs serde.Serde[V]) *Output[K, V] {
	return &Output[K, V]{d: d, topic: topic, ks: ks, vs: vs}
}

// ReadRecords returns the records not read yet, decoding them.
func (o *Output[K, V]) ReadRecords() ([]TestRecord[K, V], error) {
	tl := o.d.topic(o.topic)
	var out []TestRecord[K, V]
	for ; tl.read < len(tl.recs); tl.read++ {
		raw := tl.recs[tl.read]
		r := TestRecord[K, V]{Timestamp: raw.Timestamp, Headers: raw.Headers, KeyNull: raw.Key == nil, ValueNull: raw.Value == nil}
		var err error
		if raw.Key != nil {
			if r.Key, err = o.ks.Deserialize(o.topic, raw.Key); err != nil {
				return out, fmt.Errorf("streamtest: %s offset %d key: %w", o.topic, raw.Offset, err)
			}
		}
		if raw.Value != nil {
			if r.Value, err = o.vs.Deserialize(o.topic, raw.Value); err != nil {
				return out, fmt.Errorf("streamtest: %s offset %d value: %w", o.topic, raw.Offset, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadKeyValuesToMap reads the records of o not read yet into a map of the
// latest value per key; tombstones remove keys; null keys are skipped.
func ReadKeyValuesToMap[K comparable, V any](o *Output[K, V]) (map[K]V, error) {
	recs, err := o.ReadRecords()
	m := map[K]V{}
	for _, r := range recs {
		if r.KeyNull {
			continue
		}
		if r.ValueNull {
			delete(m, r.Key)
			continue
		}
		m[r.Key] = r.Value
	}
	return m, err
}

// IsEmpty reports whether every record was read.
func (o *Output[K, V]) IsEmpty() bool {
	tl := o.d.topic(o.topic)
	return tl.read >= len(tl.recs)
}

// KeyValueStore returns the typed content of store name (decoded with ks
// and vs), or an error if there is no such store.
func KeyValueStore[K comparable, V any](d *Driver, name string, ks serde.Serde[K], vs serde.Serde[V]) (map[K]V, error) {
	switch {
	case d.closed:
		return nil, ErrClosed
	case d.err != nil:
		return nil, d.err
	}
	s := d.stores[name]
	if s == nil {
		return nil, d.noStore(name, stream.KeyValueKind)
	}
	// Commit (flush caches), processing whatever that writes to
	// repartition topics, as after a piped record.
	if err := d.drain(true); err != nil {
		return nil, err
	}
	topic := stream.ChangelogTopic(d.appID, name) // the topic the engine's serdes see
	out := map[K]V{}
	for kv, err := range s.All() {
		if err != nil {
			return nil, err
		}
		k, err := ks.Deserialize(topic, kv.Key)
		if err != nil {
			return nil, err
		}
		vb, _, err := stream.DecodeStoreValue(kv.Value)
		if err != nil {
			return nil, err
		}
		v, err := vs.Deserialize(topic, vb)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// noStore is the error for a store that is missing or of another kind
// than want.
func (d *Driver) noStore(name string, want stream.StoreKind) error {
	if s := d.state[name]; s != nil {
		return fmt.Errorf("streamtest: store %q is not a %v store", name, want)
	}
	return fmt.Errorf("streamtest: no store %q", name)
}

// committed checks the driver can read a store and commits first
// (flushing caches and processing what that writes), as after a piped
// record.
func (d *Driver) committed() error {
	switch {
	case d.closed:
		return ErrClosed
	case d.err != nil:
		return d.err
	}
	return d.drain(true)
}

// WindowEntry is a typed entry of a window store (see WindowStore): the
// value of Key in the window starting at Start, with the timestamp of the
// record that wrote it. A window store keeps window starts only; a
// window's end is its start plus the window size.
type WindowEntry[K, V any] struct {
	Key       K
	Start     int64
	Value     V
	Timestamp int64
}

// String prints "key@start=value@ts".
func (e WindowEntry[K, V]) String() string {
	return fmt.Sprintf("%v@%d=%v@%d", e.Key, e.Start, e.Value, e.Timestamp)
}

// SessionEntry is a typed session of a session store (see SessionStore):
// the value of Key's session [Start, End] (both included), with the
// timestamp of the record that wrote it.
type SessionEntry[K, V any] struct {
	Key        K
	Start, End int64
	Value      V
	Timestamp  int64
}

// String prints "key@[start,end]=value@ts".
func (e SessionEntry[K, V]) String() string {
	return fmt.Sprintf("%v@[%d,%d]=%v@%d", e.Key, e.Start, e.End, e.Value, e.Timestamp)
}

// WindowStore returns the live entries of the window store name (a
// windowed aggregation's store, or a Processor API store declared with
// stream.WindowKind), decoded with ks (the inner, unwindowed key serde)
// and vs, sorted by serialized key, then window start. Like
// KeyValueStore, it commits first, so cached writes are included;
// expired windows (older than the store's retention) are not. It is an
// error if there is no such store or it is not a window store.
func WindowStore[K, V any](d *Driver, name string, ks serde.Serde[K], vs serde.Serde[V]) ([]WindowEntry[K, V], error) {
	if err := d.committed(); err != nil {
		return nil, err
	}
	s, ok := d.state[name].(table.WindowStore)
	if !ok {
		return nil, d.noStore(name, stream.WindowKind)
	}
	type raw struct {
		key   []byte
		entry WindowEntry[K, V]
	}
	topic := stream.ChangelogTopic(d.appID, name)
	var rows []raw
	for e, err := range s.All() {
		if err != nil {
			return nil, err
		}
		k, v, ts, err := decodeEntry(topic, e.Key, e.Value, ks, vs)
		if err != nil {
			return nil, fmt.Errorf("streamtest: store %s: window %d: %w", name, e.Start, err)
		}
		rows = append(rows, raw{e.Key, WindowEntry[K, V]{Key: k, Start: e.Start, Value: v, Timestamp: ts}})
	}
	slices.SortFunc(rows, func(x, y raw) int {
		if c := bytes.Compare(x.key, y.key); c != 0 {
			return c
		}
		return cmp.Compare(x.entry.Start, y.entry.Start)
	})
	out := make([]WindowEntry[K, V], len(rows))
	for i, r := range rows {
		out[i] = r.entry
	}
	return out, nil
}

// SessionStore returns the live sessions of the session store name (a
// session aggregation's store, or a Processor API store declared with
// stream.SessionKind), decoded with ks (the inner key serde) and vs,
// sorted by serialized key, then start, then end. It commits first, as
// WindowStore does.
func SessionStore[K, V any](d *Driver, name string, ks serde.Serde[K], vs serde.Serde[V]) ([]SessionEntry[K, V], error) {
	if err := d.committed(); err != nil {
		return nil, err
	}
	s, ok := d.state[name].(table.SessionStore)
	if !ok {
		return nil, d.noStore(name, stream.SessionKind)
	}
	type raw struct {
		key   []byte
		entry SessionEntry[K, V]
	}
	topic := stream.ChangelogTopic(d.appID, name)
	var rows []raw
	for e, err := range s.All() {
		if err != nil {
			return nil, err
		}
		k, v, ts, err := decodeEntry(topic, e.Key, e.Value, ks, vs)
		if err != nil {
			return nil, fmt.Errorf("streamtest: store %s: session [%d,%d]: %w", name, e.Start, e.End, err)
		}
		rows = append(rows, raw{e.Key, SessionEntry[K, V]{Key: k, Start: e.Start, End: e.End, Value: v, Timestamp: ts}})
	}
	slices.SortFunc(rows, func(x, y raw) int {
		if c := bytes.Compare(x.key, y.key); c != 0 {
			return c
		}
		if c := cmp.Compare(x.entry.Start, y.entry.Start); c != 0 {
			return c
		}
		return cmp.Compare(x.entry.End, y.entry.End)
	})
	out := make([]SessionEntry[K, V], len(rows))
	for i, r := range rows {
		out[i] = r.entry
	}
	return out, nil
}

// decodeEntry decodes a stored key and timestamped value.
func decodeEntry[K, V any](topic string, kb, stored []byte, ks serde.Serde[K], vs serde.Serde[V]) (k K, v V, ts int64, err error) {
	if k, err = ks.Deserialize(topic, kb); err != nil {
		return k, v, 0, fmt.Errorf("key: %w", err)
	}
	vb, ts, err := stream.DecodeStoreValue(stored)
	if err != nil {
		return k, v, 0, err
	}
	if v, err = vs.Deserialize(topic, vb); err != nil {
		return k, v, 0, fmt.Errorf("value: %w", err)
	}
	return k, v, ts, nil
}
