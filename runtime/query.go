package runtime

import (
	"fmt"
	"iter"
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
type StoreReader struct {
	a      *App
	name   string
	sub    int
	global bool
}

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
	return &StoreReader{a: a, name: name, sub: sub}, nil
}

// queryable is a store registered for interactive queries; readers
// counts the queries reading it, which its close waits for.
type queryable struct {
	id      stream.TaskID
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
	copies := r.a.acquire(r.a.qstores, r.name)
	defer release(copies)
	// The key's own task first; then the others (a custom partitioner may
	// have put it elsewhere).
	if !r.global {
		if p, err := r.a.partitionOf(r.sub, key); err == nil {
			own := stream.TaskID{Subtopology: r.sub, Partition: p}
			if i := slices.IndexFunc(copies, func(q *queryable) bool { return q.id == own }); i > 0 {
				copies[0], copies[i] = copies[i], copies[0]
			}
		}
	}
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

// Range iterates the keys in [from, to] (inclusive; nil is open) of every
// local copy, one task after the other in task order: keys are sorted
// within a task, not across tasks (as in Kafka Streams). Values are
// without their timestamp. While the loop runs, the tasks it reads cannot
// close (a rebalance waits for it): do not linger in it.
func (r *StoreReader) Range(from, to []byte) iter.Seq2[table.KeyValue, error] {
	return func(yield func(table.KeyValue, error) bool) {
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

// Query gets key from store with typed serdes: the key is serialized with
// ks, the value deserialized with vs (both as for the store's changelog
// topic; for a global store, its topic).
func Query[K, V any](a *App, store string, key K, ks serde.Serde[K], vs serde.Serde[V]) (V, bool, error) {
	var zero V
	r, err := a.Store(store)
	if err != nil {
		return zero, false, err
	}
	topic := stream.ChangelogTopic(a.cfg.ApplicationID, store)
	if g, ok := a.plan.globalStore[store]; ok {
		topic = g.Topic
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
