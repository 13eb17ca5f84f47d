package runtime

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// This file is the harness of e2e_topologies_test.go: it runs one
// topology through the test driver and through the runtime on a broker,
// with the same input, and compares what is comparable.

// e2eBase is the timestamp base of every input record: recent, so no
// broker retention applies, and the same for the driver and the runtime.
var e2eBase = time.Now().Add(-2 * time.Hour).Truncate(time.Second).UnixMilli()

// e2eRec is one input record. topic is the case's own name for the topic
// (the run prefixes it); a nil key is a null key, a nil value a
// tombstone; ts is added to e2eBase.
type e2eRec struct {
	topic      string
	key, value []byte
	ts         int64
}

// e2eTopic is an input topic; partitions 0 takes the variant's count.
type e2eTopic struct {
	name       string
	partitions int32
}

// decoder turns a record's key and (non-nil) value into strings.
type decoder struct {
	key, value func([]byte) (string, error)
}

// dec decodes with typed serdes.
func dec[K, V any](ks serde.Serde[K], vs serde.Serde[V]) decoder {
	return decoder{key: decodeWith(ks), value: decodeWith(vs)}
}

func decodeWith[T any](s serde.Serde[T]) func([]byte) (string, error) {
	return func(b []byte) (string, error) {
		v, err := s.Deserialize("", b)
		if err != nil {
			return "", fmt.Errorf("%q: %w", b, err)
		}
		return fmt.Sprint(v), nil
	}
}

// decode decodes a key and a value.
func (d decoder) decode(kb, vb []byte) (string, string, error) {
	k, err := d.key(kb)
	if err != nil {
		return "", "", fmt.Errorf("key %w", err)
	}
	v, err := d.value(vb)
	if err != nil {
		return "", "", fmt.Errorf("value of %s %w", k, err)
	}
	return k, v, nil
}

var (
	decStr   = dec(serde.String(), serde.String())
	decInt64 = dec(serde.String(), serde.Int64())
)

// e2eOutput is an output topic. A table output compares the final value
// (and timestamp) per key, tombstones removing keys; a stream output
// compares every record, in order, per key and origin: records of one
// key that come from different input partitions (or topics) may
// interleave differently end to end, so origin (nil: none) names where a
// record came from, read from its key and value.
type e2eOutput struct {
	topic  string
	table  bool
	dec    decoder
	origin func(key, value string) string
	// noTS compares a table output's values without their timestamps:
	// for results whose timestamp depends on which updates a record
	// cache folded together (see groupTableCase).
	noTS bool
}

// e2eStore is a store whose final contents are compared.
type e2eStore struct {
	name string
	dec  decoder
}

// e2eCase is one topology with its input.
type e2eCase struct {
	name    string
	inputs  []e2eTopic
	outputs []e2eOutput
	stores  []e2eStore
	// build adds the topology to e.b, naming topics with e.topic.
	build func(e *e2eEnv)
	// phases are produced one after the other; after phase i the runtime
	// waits for barriers[i] (so the next phase is processed after it, as
	// in the driver): each names a store, which must hold what the
	// driver's held after that phase, or "out:<topic>", an output, which
	// must have as many records (stream) or the same final values
	// (table) as the driver's had then.
	phases   [][]e2eRec
	barriers [][]string
	// noCache disables record caches in the driver and the runtime.
	noCache bool
	// extra checks the runtime run further (nil: nothing).
	extra func(t *testing.T, brokers []string, appID string)
	// guarantee is the runtime's (empty: the default, at-least-once).
	// Under exactly-once the outputs are read read_committed.
	guarantee Guarantee
}

// e2eEnv is what a topology build sees.
type e2eEnv struct {
	b      *stream.Builder
	prefix string
	// peeked counts the records a peek saw.
	peeked atomic.Int64
}

func (e *e2eEnv) topic(name string) string { return e.prefix + name }

// e2eRow is a decoded output record.
type e2eRow struct {
	key, value string
	ts         int64 // relative to e2eBase
	tombstone  bool
}

func (r e2eRow) String() string {
	if r.tombstone {
		return fmt.Sprintf("%s=null@%d", r.key, r.ts)
	}
	return fmt.Sprintf("%s=%s@%d", r.key, r.value, r.ts)
}

// e2eResult is what a run produced.
type e2eResult struct {
	outputs map[string][]e2eRow          // topic (unprefixed) → records
	stores  map[string]map[string]string // store → key → value
	peeked  int64
	// snapshots[i] are the barrier stores after phase i; outCounts[i]
	// the number of records of each output then.
	snapshots []map[string]map[string]string
	outCounts []map[string]int
}

func decodeRow(d decoder, key, value []byte, ts int64) (e2eRow, error) {
	if value == nil {
		k, err := d.key(key)
		return e2eRow{key: k, ts: ts - e2eBase, tombstone: true}, err
	}
	k, v, err := d.decode(key, value)
	return e2eRow{key: k, value: v, ts: ts - e2eBase}, err
}

// finalTable is the last value per key (value@ts), tombstones removing
// keys.
func finalTable(rows []e2eRow, noTS bool) map[string]string {
	m := map[string]string{}
	for _, r := range rows {
		switch {
		case r.tombstone:
			delete(m, r.key)
		case noTS:
			m[r.key] = r.value
		default:
			m[r.key] = fmt.Sprintf("%s@%d", r.value, r.ts)
		}
	}
	return m
}

// streamGroups are the records per key and origin, in order.
func streamGroups(rows []e2eRow, origin func(k, v string) string) map[string][]string {
	m := map[string][]string{}
	for _, r := range rows {
		g := r.key
		if origin != nil {
			g += " from " + origin(r.key, r.value)
		}
		m[g] = append(m[g], r.String())
	}
	return m
}

// diffMaps describes how got differs from want.
func diffMaps[V comparable](want, got map[string]V) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			fmt.Fprintf(&b, "\n  %s: missing, want %v", k, want[k])
		case g != want[k]:
			fmt.Fprintf(&b, "\n  %s: got %v, want %v", k, g, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "\n  %s: unexpected %v", k, got[k])
		}
	}
	return b.String()
}

func diffGroups(want, got map[string][]string) string {
	w, g := map[string]string{}, map[string]string{}
	for k, v := range want {
		w[k] = strings.Join(v, " ")
	}
	for k, v := range got {
		g[k] = strings.Join(v, " ")
	}
	return diffMaps(w, g)
}

func (c *e2eCase) topology(t *testing.T, prefix string) (*stream.Topology, *e2eEnv) {
	t.Helper()
	e := &e2eEnv{b: stream.NewBuilder(), prefix: prefix}
	c.build(e)
	top, err := e.b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top, e
}

// runDriver runs the case through the test driver.
func (c *e2eCase) runDriver(t *testing.T, appID, prefix string) e2eResult {
	t.Helper()
	top, e := c.topology(t, prefix)
	opts := []streamtest.Option{streamtest.WithApplicationID(appID)}
	if c.noCache {
		opts = append(opts, streamtest.WithCacheMaxBytes(0))
	}
	d, err := streamtest.New(top, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res := e2eResult{outputs: map[string][]e2eRow{}, stores: map[string]map[string]string{}}
	for i, ph := range c.phases {
		for _, r := range ph {
			if err := d.PipeRaw(stream.RawRecord{Topic: prefix + r.topic, Key: r.key, Value: r.value, Timestamp: e2eBase + r.ts}); err != nil {
				t.Fatalf("driver: piping %s %q=%q: %v", r.topic, r.key, r.value, err)
			}
		}
		snap, counts := map[string]map[string]string{}, map[string]int{}
		if i < len(c.barriers) {
			for _, name := range c.barriers[i] {
				if topic, ok := strings.CutPrefix(name, "out:"); ok {
					counts[topic] = len(d.Records(prefix + topic))
					continue
				}
				snap[name] = driverStore(t, d, name, c.storeDecoder(t, name))
			}
		}
		res.snapshots = append(res.snapshots, snap)
		res.outCounts = append(res.outCounts, counts)
	}
	for _, o := range c.outputs {
		for _, raw := range d.Records(prefix + o.topic) {
			row, err := decodeRow(o.dec, raw.Key, raw.Value, raw.Timestamp)
			if err != nil {
				t.Fatalf("driver: %s: %v", o.topic, err)
			}
			res.outputs[o.topic] = append(res.outputs[o.topic], row)
		}
	}
	for _, o := range c.outputs {
		if len(res.outputs[o.topic]) == 0 {
			t.Fatalf("driver: output %s is empty: the case compares nothing", o.topic)
		}
	}
	for _, s := range c.stores {
		res.stores[s.name] = driverStore(t, d, s.name, s.dec)
		if len(res.stores[s.name]) == 0 {
			t.Fatalf("driver: store %s is empty: the case compares nothing", s.name)
		}
	}
	res.peeked = e.peeked.Load()
	if os.Getenv("EDDY_TEST_LOG") != "" {
		for _, o := range c.outputs {
			t.Logf("driver %s: %d records, %d keys at the end", o.topic, len(res.outputs[o.topic]), len(finalTable(res.outputs[o.topic], true)))
		}
	}
	return res
}

// storeDecoder finds the decoder of a barrier store among c.stores.
func (c *e2eCase) storeDecoder(t *testing.T, name string) decoder {
	for _, s := range c.stores {
		if s.name == name {
			return s.dec
		}
	}
	t.Fatalf("barrier store %s is not among the case's stores", name)
	return decoder{}
}

func driverStore(t *testing.T, d *streamtest.Driver, name string, dc decoder) map[string]string {
	t.Helper()
	s := d.Store(name)
	if s == nil {
		t.Fatalf("driver has no store %s", name)
	}
	m := map[string]string{}
	for kv, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		v, _, err := stream.DecodeStoreValue(kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		k, vs, err := dc.decode(kv.Key, v)
		if err != nil {
			t.Fatalf("driver store %s: %v", name, err)
		}
		m[k] = vs
	}
	return m
}

// runtimeStore reads every local copy of a store of a running app.
func runtimeStore(a *App, name string, dc decoder) (map[string]string, error) {
	r, err := a.Store(name)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for kv, err := range r.All() {
		if err != nil {
			return nil, err
		}
		k, v, err := dc.decode(kv.Key, kv.Value)
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// produceRecs writes records in order, synchronously.
func produceRecs(t *testing.T, cl *kgo.Client, prefix string, recs []e2eRec) {
	t.Helper()
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		out[i] = &kgo.Record{Topic: prefix + r.topic, Key: r.key, Value: r.value, Timestamp: time.UnixMilli(e2eBase + r.ts)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// e2eWait is how long the runtime may take to reach what the driver got.
const e2eWait = 20 * time.Second

// runRuntime runs the case on a broker and compares it with want, the
// driver's result.
func (c *e2eCase) runRuntime(t *testing.T, brokers []string, appID, prefix string, partitions int32, want e2eResult) {
	t.Helper()
	byCount := map[int32][]string{}
	for _, in := range c.inputs {
		n := in.partitions
		if n == 0 {
			n = partitions
		}
		byCount[n] = append(byCount[n], prefix+in.name)
	}
	for _, o := range c.outputs {
		byCount[partitions] = append(byCount[partitions], prefix+o.topic)
	}
	for n, topics := range byCount {
		createTopics(t, brokers, n, topics...)
	}
	top, e := c.topology(t, prefix)
	cfg := testConfig(t, appID, brokers)
	if c.noCache {
		cfg.CacheMaxBytes = 0
	}
	isolation := kgo.ReadUncommitted()
	if c.guarantee == ExactlyOnce {
		cfg.Guarantee, cfg.CommitInterval = ExactlyOnce, 0
		isolation = kgo.ReadCommitted()
	}
	app := start(t, top, cfg)
	// alive fails the test at once when Run has returned.
	alive := func() {
		t.Helper()
		select {
		case err := <-app.errc:
			app.checked = true
			t.Fatalf("Run returned early: %v", err)
		default:
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	outs := map[string]e2eOutput{}
	var topics []string
	for _, o := range c.outputs {
		topics = append(topics, prefix+o.topic)
		outs[o.topic] = o
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchIsolationLevel(isolation))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := map[string][]e2eRow{}
	// readUntil reads the outputs until cond holds or the wait is over.
	readUntil := func(cond func() bool) bool {
		deadline := time.Now().Add(e2eWait)
		for !cond() {
			if time.Now().After(deadline) {
				return false
			}
			alive()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			f := rd.PollFetches(ctx)
			cancel()
			f.EachRecord(func(r *kgo.Record) {
				topic := strings.TrimPrefix(r.Topic, prefix)
				row, err := decodeRow(outs[topic].dec, r.Key, r.Value, r.Timestamp.UnixMilli())
				if err != nil {
					t.Errorf("runtime: %s: %v", r.Topic, err)
				}
				got[topic] = append(got[topic], row)
			})
		}
		return true
	}
	// reached reports whether output o has what the driver's had after
	// its first n records.
	reached := func(o e2eOutput, n int) bool {
		if o.table {
			return maps.Equal(finalTable(got[o.topic], o.noTS), finalTable(want.outputs[o.topic][:n], o.noTS))
		}
		return len(got[o.topic]) >= n
	}

	for i, ph := range c.phases {
		produceRecs(t, cl, prefix, ph)
		if i >= len(c.barriers) {
			continue
		}
		for _, name := range c.barriers[i] {
			if topic, ok := strings.CutPrefix(name, "out:"); ok {
				n := want.outCounts[i][topic]
				if !readUntil(func() bool { return reached(outs[topic], n) }) {
					t.Fatalf("after phase %d, output %s never reached the driver's %d records (%d read)", i, topic, n, len(got[topic]))
				}
				continue
			}
			dc := c.storeDecoder(t, name)
			var m map[string]string
			ok := poll(e2eWait, func() bool {
				alive()
				m, err = runtimeStore(app.App, name, dc)
				return err == nil && maps.Equal(m, want.snapshots[i][name])
			})
			if !ok {
				t.Fatalf("after phase %d, store %s never matched the driver's (err %v):%s", i, name, err, diffMaps(want.snapshots[i][name], m))
			}
		}
	}

	// Outputs: read until every table output equals the driver's and every
	// stream output has as many records.
	readUntil(func() bool {
		for _, o := range c.outputs {
			if !reached(o, len(want.outputs[o.topic])) {
				return false
			}
		}
		return true
	})
	for _, o := range c.outputs {
		if o.table {
			w, g := finalTable(want.outputs[o.topic], o.noTS), finalTable(got[o.topic], o.noTS)
			if !maps.Equal(w, g) {
				t.Errorf("output %s: final values per key differ (runtime vs driver):%s", o.topic, diffMaps(w, g))
			}
			continue
		}
		w, g := streamGroups(want.outputs[o.topic], o.origin), streamGroups(got[o.topic], o.origin)
		if !maps.EqualFunc(w, g, slices.Equal) {
			t.Errorf("output %s: records per key differ (runtime %d records, driver %d):%s", o.topic, len(got[o.topic]), len(want.outputs[o.topic]), diffGroups(w, g))
		}
	}

	// Stores: committed contents converge to the driver's.
	for _, s := range c.stores {
		var m map[string]string
		ok := poll(e2eWait, func() bool {
			alive()
			m, err = runtimeStore(app.App, s.name, s.dec)
			return err == nil && maps.Equal(m, want.stores[s.name])
		})
		if !ok {
			t.Errorf("store %s differs (runtime vs driver; err %v):%s", s.name, err, diffMaps(want.stores[s.name], m))
		}
	}
	if n := e.peeked.Load(); n != want.peeked {
		t.Errorf("peek saw %d records, the driver's %d", n, want.peeked)
	}
	if c.extra != nil {
		c.extra(t, brokers, appID)
	}
	app.stop(t)
}

// poll calls cond until it holds (true) or d passes (false).
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for a condition
	}
	return true
}

// topicPartitions returns the partition count of topic.
func topicPartitions(t *testing.T, brokers []string, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		t.Fatalf("topic %s: %v", topic, d.Err)
	}
	return len(d.Partitions)
}

// Record constructors for the cases.

func str(topic, k, v string, ts int64) e2eRec {
	return e2eRec{topic: topic, key: []byte(k), value: []byte(v), ts: ts}
}

func tomb(topic, k string, ts int64) e2eRec { return e2eRec{topic: topic, key: []byte(k), ts: ts} }

func num(topic, k string, v int64, ts int64) e2eRec {
	b, _ := serde.Int64().Serialize(topic, v)
	return e2eRec{topic: topic, key: []byte(k), value: b, ts: ts}
}
