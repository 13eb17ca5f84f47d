package runtime

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

// HostInfo is a worker's ApplicationServer address: Kafka Streams'
// HostInfo.
type HostInfo struct {
	Host string
	Port int
}

// String returns "host:port".
func (h HostInfo) String() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// StoreReader reads one store of this worker: the copies held by its
// running active tasks (Kafka Streams' queryable store over all local
// partitions). It sees what the tasks have flushed: writes still in a
// task's record cache show up at the next commit (or at once with caching
// disabled). A global store is read in full from this worker's copy (once
// bootstrapped; it has no cache). Safe for concurrent use.
//
// A key-value store is read with Get, Range and All; a window store
// with FetchWindows and FetchAllWindows; a session store with
// FetchSessions, FindSessions and AllSessions. A method of another kind
// of store returns an error wrapping ErrWrongStoreKind.
type StoreReader struct {
	a      *App
	name   string
	sub    int
	global bool
	kind   stream.StoreKind
}

// ErrWrongStoreKind is returned by a StoreReader method (and the typed
// queries) used on a store of another kind: Get on a window store,
// FetchWindows on a key-value store, and so on.
var ErrWrongStoreKind = errors.New("runtime: wrong kind of store")

// Store returns a reader of store name. The store must exist in the
// topology; this worker may hold none of its tasks (then reads find
// nothing). Every worker holds all of a global store.
func (a *App) Store(name string) (*StoreReader, error) {
	if _, ok := a.plan.globalStore[name]; ok {
		return &StoreReader{a: a, name: name, sub: -1, global: true}, nil
	}
	sub, ok := a.plan.storeSub[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownStore, name)
	}
	return &StoreReader{a: a, name: name, sub: sub, kind: a.plan.storeInfo[name].Kind}, nil
}

// Name returns the store's name.
func (r *StoreReader) Name() string { return r.name }

// Kind returns the store's kind (a global store is a key-value store).
func (r *StoreReader) Kind() stream.StoreKind { return r.kind }

// need checks that the store is of kind k.
func (r *StoreReader) need(k stream.StoreKind) error {
	if r.kind != k {
		return fmt.Errorf("%w: store %q is a %v store, not a %v store", ErrWrongStoreKind, r.name, r.kind, k)
	}
	return nil
}

// queryable is a store registered for interactive queries; readers
// counts the queries reading it, which its close waits for.
type queryable struct {
	id stream.TaskID
	// st is the store; kv, ws and ss are set by its kind.
	st      stream.StateStore
	kv      table.KeyValueStore
	ws      table.WindowStore
	ss      table.SessionStore
	readers sync.WaitGroup
}

// registerQuery makes a task's stores readable: an active task's by
// StoreReader, a standby's by the tests.
func (a *App) registerQuery(ts *taskState) {
	a.qmu.Lock()
	defer a.qmu.Unlock()
	reg := a.qstores
	if ts.standby {
		reg = a.sstores
	}
	for name, st := range ts.stores {
		m := reg[name]
		if m == nil {
			m = map[stream.TaskID]*queryable{}
			reg[name] = m
		}
		q := &queryable{id: ts.id, st: st}
		q.kv, _ = st.(table.KeyValueStore)
		q.ws, _ = st.(table.WindowStore)
		q.ss, _ = st.(table.SessionStore)
		m[ts.id] = q
	}
	ts.queried = true
}

// unregisterQuery withdraws a task's stores and waits for the queries
// reading them, so they can be closed.
func (a *App) unregisterQuery(ts *taskState) {
	if !ts.queried {
		return
	}
	reg := a.qstores
	if ts.standby {
		reg = a.sstores
	}
	var gone []*queryable
	a.qmu.Lock()
	for name := range ts.stores {
		if q := reg[name][ts.id]; q != nil {
			gone = append(gone, q)
			delete(reg[name], ts.id)
		}
	}
	a.qmu.Unlock()
	for _, q := range gone {
		q.readers.Wait()
	}
	ts.queried = false
}

// acquire returns the registered copies of store in task order, each
// counted as read until release.
func (a *App) acquire(reg map[string]map[stream.TaskID]*queryable, store string) []*queryable {
	a.qmu.RLock()
	defer a.qmu.RUnlock()
	out := make([]*queryable, 0, len(reg[store]))
	for _, q := range reg[store] {
		q.readers.Add(1)
		out = append(out, q)
	}
	slices.SortFunc(out, func(x, y *queryable) int { return compareTasks(x.id, y.id) })
	return out
}

func release(qs []*queryable) {
	for _, q := range qs {
		q.readers.Done()
	}
}

// Get returns the value of key (raw bytes, serialized with the store's
// key serde) without its timestamp; ok is false when no local copy has
// it.
func (r *StoreReader) Get(key []byte) (value []byte, ok bool, err error) {
	if err := r.need(stream.KeyValueKind); err != nil {
		return nil, false, err
	}
	copies := r.keyCopies(key)
	defer release(copies)
	for _, q := range copies {
		raw, err := q.kv.Get(key)
		if err != nil {
			return nil, false, err
		}
		if raw != nil {
			v, _, err := stream.DecodeStoreValue(raw)
			return v, err == nil, err
		}
	}
	return nil, false, nil
}

// keyCopies acquires the local copies of the store for a read of key:
// the key's own task (KeyPartition) first, then the others (a custom
// partitioner may have put the key elsewhere).
func (r *StoreReader) keyCopies(key []byte) []*queryable {
	copies := r.a.acquire(r.a.qstores, r.name)
	if !r.global {
		if p, err := r.a.partitionOf(r.sub, key); err == nil {
			own := stream.TaskID{Subtopology: r.sub, Partition: p}
			if i := slices.IndexFunc(copies, func(q *queryable) bool { return q.id == own }); i > 0 {
				copies[0], copies[i] = copies[i], copies[0]
			}
		}
	}
	return copies
}

// Range iterates the keys in [from, to] (inclusive; nil is open) of every
// local copy, one task after the other in task order: keys are sorted
// within a task, not across tasks (as in Kafka Streams). Values are
// without their timestamp. While the loop runs, the tasks it reads cannot
// close (a rebalance waits for it): do not linger in it.
func (r *StoreReader) Range(from, to []byte) iter.Seq2[table.KeyValue, error] {
	return func(yield func(table.KeyValue, error) bool) {
		if err := r.need(stream.KeyValueKind); err != nil {
			yield(table.KeyValue{}, err)
			return
		}
		copies := r.a.acquire(r.a.qstores, r.name)
		defer release(copies)
		for _, q := range copies {
			for kv, err := range q.kv.Range(from, to) {
				if err != nil {
					yield(table.KeyValue{}, err)
					return
				}
				v, _, err := stream.DecodeStoreValue(kv.Value)
				if err != nil {
					yield(table.KeyValue{}, err)
					return
				}
				if !yield(table.KeyValue{Key: kv.Key, Value: v}, nil) {
					return
				}
			}
		}
	}
}

// All iterates every entry of every local copy (see Range).
func (r *StoreReader) All() iter.Seq2[table.KeyValue, error] { return r.Range(nil, nil) }

// FetchWindows iterates key's windows (raw bytes, serialized with the
// store's key serde) of a window store with from <= window start <= to
// (epoch ms), by start: Kafka Streams' ReadOnlyWindowStore.fetch(key,
// from, to). It reads the copy of the task that owns the key (see
// KeyOwner), or the first local copy that has windows of the key. Like
// every StoreReader read it sees what the tasks flushed; a window store
// keeps window starts only (a window's end is its start plus the
// window size). While the loop runs, the tasks it reads cannot close.
func (r *StoreReader) FetchWindows(key []byte, from, to int64) iter.Seq2[stream.WindowStoreEntry, error] {
	return func(yield func(stream.WindowStoreEntry, error) bool) {
		if err := r.need(stream.WindowKind); err != nil {
			yield(stream.WindowStoreEntry{}, err)
			return
		}
		copies := r.keyCopies(key)
		defer release(copies)
		for _, q := range copies {
			found, more := readWindows(q.ws.FetchRange(key, from, to), yield)
			if found || !more {
				return
			}
		}
	}
}

// FetchAllWindows iterates the windows of every key with from <= window
// start <= to of every local copy of a window store, one task after the
// other in task order (within a task in table.WindowStore.FetchAll's
// order): Kafka Streams' ReadOnlyWindowStore.fetchAll(from, to) over
// this worker's tasks.
func (r *StoreReader) FetchAllWindows(from, to int64) iter.Seq2[stream.WindowStoreEntry, error] {
	return func(yield func(stream.WindowStoreEntry, error) bool) {
		if err := r.need(stream.WindowKind); err != nil {
			yield(stream.WindowStoreEntry{}, err)
			return
		}
		copies := r.a.acquire(r.a.qstores, r.name)
		defer release(copies)
		for _, q := range copies {
			if _, more := readWindows(q.ws.FetchAll(from, to), yield); !more {
				return
			}
		}
	}
}

// readWindows yields a window store read's entries without their stored
// timestamp prefix; found reports whether there was any, more whether
// the caller may go on.
func readWindows(seq iter.Seq2[table.WindowEntry, error], yield func(stream.WindowStoreEntry, error) bool) (found, more bool) {
	for e, err := range seq {
		if err != nil {
			yield(stream.WindowStoreEntry{}, err)
			return found, false
		}
		v, ts, err := stream.DecodeStoreValue(e.Value)
		if err != nil {
			yield(stream.WindowStoreEntry{}, err)
			return found, false
		}
		found = true
		if !yield(stream.WindowStoreEntry{Key: e.Key, Start: e.Start, Value: v, Timestamp: ts}, nil) {
			return found, false
		}
	}
	return found, true
}

// FetchSessions iterates every session of key (raw bytes) in a session
// store, by end then start: Kafka Streams' ReadOnlySessionStore.fetch(key).
// It reads the owner's copy as FetchWindows does.
func (r *StoreReader) FetchSessions(key []byte) iter.Seq2[stream.SessionStoreEntry, error] {
	return r.FindSessions(key, math.MinInt64, math.MaxInt64)
}

// FindSessions iterates key's sessions that end at or after earliestEnd
// and start at or before latestStart, by end then start: the sessions
// overlapping [earliestEnd, latestStart], as Kafka Streams'
// ReadOnlySessionStore.findSessions(key, earliestSessionEndTime,
// latestSessionStartTime).
func (r *StoreReader) FindSessions(key []byte, earliestEnd, latestStart int64) iter.Seq2[stream.SessionStoreEntry, error] {
	return func(yield func(stream.SessionStoreEntry, error) bool) {
		if err := r.need(stream.SessionKind); err != nil {
			yield(stream.SessionStoreEntry{}, err)
			return
		}
		copies := r.keyCopies(key)
		defer release(copies)
		for _, q := range copies {
			found, more := readSessions(q.ss.FindSessions(key, earliestEnd, latestStart), yield)
			if found || !more {
				return
			}
		}
	}
}

// AllSessions iterates every session of every local copy of a session
// store, one task after the other in task order.
func (r *StoreReader) AllSessions() iter.Seq2[stream.SessionStoreEntry, error] {
	return func(yield func(stream.SessionStoreEntry, error) bool) {
		if err := r.need(stream.SessionKind); err != nil {
			yield(stream.SessionStoreEntry{}, err)
			return
		}
		copies := r.a.acquire(r.a.qstores, r.name)
		defer release(copies)
		for _, q := range copies {
			if _, more := readSessions(q.ss.All(), yield); !more {
				return
			}
		}
	}
}

// readSessions is readWindows for sessions.
func readSessions(seq iter.Seq2[table.SessionEntry, error], yield func(stream.SessionStoreEntry, error) bool) (found, more bool) {
	for e, err := range seq {
		if err != nil {
			yield(stream.SessionStoreEntry{}, err)
			return found, false
		}
		v, ts, err := stream.DecodeStoreValue(e.Value)
		if err != nil {
			yield(stream.SessionStoreEntry{}, err)
			return found, false
		}
		found = true
		if !yield(stream.SessionStoreEntry{Key: e.Key, Start: e.Start, End: e.End, Value: v, Timestamp: ts}, nil) {
			return found, false
		}
	}
	return found, true
}

// WindowValue is a typed entry of a window store: the key, the window's
// start (a window store keeps no ends), the value and the timestamp of
// the record that wrote it.
type WindowValue[K, V any] struct {
	Key       K
	Start     int64
	Value     V
	Timestamp int64
}

// SessionValue is a typed session of a session store: the key, the
// session's bounds (both included), its value and the timestamp of the
// record that wrote it.
type SessionValue[K, V any] struct {
	Key        K
	Start, End int64
	Value      V
	Timestamp  int64
}

// QueryWindows returns key's windows in a window store with from <=
// window start <= to, by start, typed (see FetchWindows): the key is
// serialized with ks, values deserialized with vs, as for the store's
// changelog topic. Windows are read from this worker's copies: ask
// KeyOwner which worker to call for a key held elsewhere (or use
// QueryHandler, which forwards).
func QueryWindows[K, V any](a *App, store string, key K, from, to int64, ks serde.Serde[K], vs serde.Serde[V]) ([]WindowValue[K, V], error) {
	r, topic, err := typedReader(a, store)
	if err != nil {
		return nil, err
	}
	kb, err := ks.Serialize(topic, key)
	if err != nil {
		return nil, err
	}
	var out []WindowValue[K, V]
	for e, err := range r.FetchWindows(kb, from, to) {
		if err != nil {
			return nil, err
		}
		v, err := vs.Deserialize(topic, e.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, WindowValue[K, V]{Key: key, Start: e.Start, Value: v, Timestamp: e.Timestamp})
	}
	return out, nil
}

// QueryAllWindows returns every key's windows with from <= window start
// <= to held by this worker (see FetchAllWindows), typed.
func QueryAllWindows[K, V any](a *App, store string, from, to int64, ks serde.Serde[K], vs serde.Serde[V]) ([]WindowValue[K, V], error) {
	r, topic, err := typedReader(a, store)
	if err != nil {
		return nil, err
	}
	var out []WindowValue[K, V]
	for e, err := range r.FetchAllWindows(from, to) {
		if err != nil {
			return nil, err
		}
		k, err := ks.Deserialize(topic, e.Key)
		if err != nil {
			return nil, err
		}
		v, err := vs.Deserialize(topic, e.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, WindowValue[K, V]{Key: k, Start: e.Start, Value: v, Timestamp: e.Timestamp})
	}
	return out, nil
}

// QuerySessions returns key's sessions in a session store, by end then
// start, typed (see FetchSessions and QueryWindows).
func QuerySessions[K, V any](a *App, store string, key K, ks serde.Serde[K], vs serde.Serde[V]) ([]SessionValue[K, V], error) {
	r, topic, err := typedReader(a, store)
	if err != nil {
		return nil, err
	}
	kb, err := ks.Serialize(topic, key)
	if err != nil {
		return nil, err
	}
	var out []SessionValue[K, V]
	for e, err := range r.FetchSessions(kb) {
		if err != nil {
			return nil, err
		}
		v, err := vs.Deserialize(topic, e.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, SessionValue[K, V]{Key: key, Start: e.Start, End: e.End, Value: v, Timestamp: e.Timestamp})
	}
	return out, nil
}

// typedReader returns store's reader and the topic its serdes see.
func typedReader(a *App, store string) (*StoreReader, string, error) {
	r, err := a.Store(store)
	if err != nil {
		return nil, "", err
	}
	topic := stream.ChangelogTopic(a.cfg.ApplicationID, store)
	if g, ok := a.plan.globalStore[store]; ok {
		topic = g.Topic
	}
	return r, topic, nil
}

// Query gets key from store with typed serdes: the key is serialized with
// ks, the value deserialized with vs (both as for the store's changelog
// topic; for a global store, its topic).
func Query[K, V any](a *App, store string, key K, ks serde.Serde[K], vs serde.Serde[V]) (V, bool, error) {
	var zero V
	r, topic, err := typedReader(a, store)
	if err != nil {
		return zero, false, err
	}
	kb, err := ks.Serialize(topic, key)
	if err != nil {
		return zero, false, err
	}
	vb, ok, err := r.Get(kb)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := vs.Deserialize(topic, vb)
	if err != nil {
		return zero, false, err
	}
	return v, true, nil
}

// KeyOwner returns the worker (its ApplicationServer) whose active task
// holds key (raw bytes, serialized with the store's key serde) in store:
// the task's partition is Kafka's default partitioner applied to the key
// (murmur2, over the sub-topology's partition count), and the owner comes
// from the assignment every member receives. For a global store, which
// every worker holds in full, it is this worker. It returns
// ErrNotAvailable before the first assignment, or when the owner has no
// ApplicationServer.
func (a *App) KeyOwner(store string, key []byte) (HostInfo, error) {
	if _, ok := a.plan.globalStore[store]; ok {
		if a.cfg.ApplicationServer == "" {
			return HostInfo{}, fmt.Errorf("%w: this worker has no application server", ErrNotAvailable)
		}
		return parseHost(a.cfg.ApplicationServer)
	}
	sub, ok := a.plan.storeSub[store]
	if !ok {
		return HostInfo{}, fmt.Errorf("%w %q", ErrUnknownStore, store)
	}
	p, err := a.partitionOf(sub, key)
	if err != nil {
		return HostInfo{}, err
	}
	id := stream.TaskID{Subtopology: sub, Partition: p}
	a.hostsMu.RLock()
	defer a.hostsMu.RUnlock()
	for host, ids := range a.hosts {
		if slices.Contains(ids, id) {
			return parseHost(host)
		}
	}
	return HostInfo{}, fmt.Errorf("%w: no worker with an application server holds task %s", ErrNotAvailable, id)
}

// parseHost parses an ApplicationServer address.
func parseHost(host string) (HostInfo, error) {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return HostInfo{}, fmt.Errorf("runtime: bad application server %q: %w", host, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return HostInfo{}, fmt.Errorf("runtime: bad application server %q: %w", host, err)
	}
	return HostInfo{Host: h, Port: n}, nil
}

// partitionOf is the partition of key among sub-topology sub's tasks.
func (a *App) partitionOf(sub int, key []byte) (int32, error) {
	a.mu.Lock()
	n := a.taskCounts[sub]
	a.mu.Unlock()
	if n <= 0 {
		return 0, fmt.Errorf("%w: the application is not running", ErrNotAvailable)
	}
	return KeyPartition(key, n), nil
}

// keyPartitioner is kgo's murmur2 key partitioner, Kafka's default for
// keyed records.
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// KeyPartition returns the partition Kafka's default partitioner picks
// for a record with key (non-nil) among n partitions:
// toPositive(murmur2(key)) % n.
func KeyPartition(key []byte, n int32) int32 {
	if key == nil {
		key = []byte{}
	}
	return int32(keyPartitioner.Partition(&kgo.Record{Key: key}, int(n)))
}
