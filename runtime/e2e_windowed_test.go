package runtime

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/window"
)

// This file runs windowed operators end to end: tumbling-window counts
// (emitted on update, on window close, and suppressed until the window
// closes), session counts and a stream-stream left join, through the
// test driver and through the runtime on a broker with a worker restart
// between the phases of the input (on the same state directory, and on
// a deleted one, so the stores restore from their changelogs); the
// results must be the driver's.

const (
	ewSize      = 10 * time.Second // tumbling windows
	ewGrace     = 5 * time.Second
	ewGap       = 5 * time.Second // sessions
	ewSessGrace = 2 * time.Second
	ewJoin      = 3 * time.Second // join window (before and after)
	ewJoinGrace = 2 * time.Second
)

// ewBase is the time line's origin, aligned to the window size.
var ewBase = e2eBase - e2eBase%ewSize.Milliseconds()

// ew is a record at ewBase+x.
func ew(topic, k, v string, x int64) e2eRec { return str(topic, k, v, ewBase-e2eBase+x) }

// ewOutputs are the topology's outputs; table outputs compare final
// values per key, the others every record (in any order).
type ewOutput struct {
	topic          string
	table, session bool
}

var ewOutputs = []ewOutput{
	{"out-update", true, false},
	{"out-close", false, false},
	{"out-suppressed", false, false},
	{"out-sessions", true, true},
	{"out-join", false, false},
}

func ewTopology(t *testing.T, prefix string) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	clicks := stream.Stream(b, strs, prefix+"clicks")
	views := stream.Stream(b, strs, prefix+"views")
	g := clicks.GroupByKey(stream.Grouped[string, string]{})
	tw := window.Tumbling(ewSize).WithGrace(ewGrace)
	stream.CountWindowed(g.WindowedBy(tw), stream.Materialized[string, int64]{Name: "win-counts", Retention: time.Hour}).
		ToStream().To(prefix+"out-update", stream.Produced[window.Windowed[string], int64]{})
	stream.CountWindowed(g.WindowedBy(tw).Emit(stream.EmitOnWindowClose), stream.As[string, int64]("win-close")).
		ToStream().To(prefix+"out-close", stream.Produced[window.Windowed[string], int64]{})
	stream.CountWindowed(g.WindowedBy(tw), stream.As[string, int64]("win-final")).
		Suppress(stream.UntilWindowCloses(stream.Unbounded())).
		ToStream().To(prefix+"out-suppressed", stream.Produced[window.Windowed[string], int64]{})
	stream.CountSessions(g.WindowedBySession(window.Session(ewGap).WithGrace(ewSessGrace)), stream.As[string, int64]("sess-counts")).
		ToStream().To(prefix+"out-sessions", stream.Produced[window.Windowed[string], int64]{})
	stream.LeftJoinStreams(clicks, views, func(_ string, c, v string, ok bool) string {
		if !ok {
			return c + "+null"
		}
		return c + "+" + v
	}, window.JoinWindowsOf(ewJoin).WithGrace(ewJoinGrace), stream.StreamJoined[string, string, string]{StoreName: "clicks-views"}).
		To(prefix+"out-join", stream.Produced[string, string]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// ewPhases is the input. Within a phase, the records of the two topics
// lie within the join window of each other, so the order in which the
// runtime interleaves the topics cannot change a result; the first
// record of each later phase moves time on (also right after a restart,
// when the operators' observed stream time starts over).
func ewPhases() [][]e2eRec {
	return [][]e2eRec{
		{ // every click but c's finds a view
			ew("clicks", "a", "p1", 0),
			ew("clicks", "b", "p2", 1000),
			ew("views", "a", "v1", 1500),
			ew("clicks", "a", "p3", 2000),
			ew("clicks", "a", "p4", 3000),
			ew("views", "b", "v2", 4000),
			ew("clicks", "c", "p5", 4000),
		},
		{ // window [10 s, 20 s); a late click within grace, merging a's sessions
			ew("clicks", "a", "p6", 12000),
			ew("views", "b", "v3", 12500),
			ew("clicks", "a", "late-ok", 8000),
		},
		{ // window [0, 10 s) closes; a click too late for it
			ew("clicks", "b", "p7", 16000),
			ew("clicks", "b", "too-late", 2000),
			ew("clicks", "a", "p8", 17000),
		},
		{ // everything closes
			ew("clicks", "d", "end", 40000),
		},
	}
}

// ewDecoder decodes the outputs' keys: windowed (time or session) or
// plain strings; windows print relative to ewBase.
func ewDecoder(topic string, session bool) decoder {
	vs := decodeWith(serde.Int64())
	if topic == "out-join" {
		return decStr
	}
	if session {
		ks := window.SessionWindowedSerde(serde.String())
		return decoder{key: func(b []byte) (string, error) {
			w, err := ks.Deserialize("", b)
			return fmt.Sprintf("%s@[%d,%d]", w.Key, w.Window.Start-ewBase, w.Window.End-ewBase), err
		}, value: vs}
	}
	ks := window.TimeWindowedSerde(serde.String(), ewSize)
	return decoder{key: func(b []byte) (string, error) {
		w, err := ks.Deserialize("", b)
		return fmt.Sprintf("%s@[%d,%d)", w.Key, w.Window.Start-ewBase, w.Window.End-ewBase), err
	}, value: vs}
}

// ewResult is what a run produced, comparable between the driver and
// the runtime: per output, the final values per key (table outputs) or
// every record sorted (the others); and the final contents of the
// window store win-counts and the session store sess-counts.
type ewResult struct {
	outputs map[string][]string
	// stores are the stores after each phase.
	stores []ewStores
}

// ewStores are the contents of win-counts and sess-counts, printed and
// sorted.
type ewStores struct {
	windows, sessions []string
}

func (s ewStores) equal(o ewStores) bool {
	return slices.Equal(s.windows, o.windows) && slices.Equal(s.sessions, o.sessions)
}

func (s ewStores) String() string {
	return fmt.Sprintf("windows %v, sessions %v", s.windows, s.sessions)
}

func ewWindow(key string, start, value, ts int64) string {
	return fmt.Sprintf("%s@%d=%d@%d", key, start-ewBase, value, ts-ewBase)
}

func ewSession(key string, start, end, value, ts int64) string {
	return fmt.Sprintf("%s@[%d,%d]=%d@%d", key, start-ewBase, end-ewBase, value, ts-ewBase)
}

// ewSummary turns an output's rows into what is compared.
func ewSummary(rows []e2eRow, table bool) []string {
	if table {
		m := finalTable(rows, false)
		var out []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, k+"="+m[k])
		}
		return out
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

func ewDriver(t *testing.T, appID, prefix string) ewResult {
	t.Helper()
	d, err := streamtest.New(ewTopology(t, prefix), streamtest.WithApplicationID(appID))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res := ewResult{outputs: map[string][]string{}}
	for _, ph := range ewPhases() {
		for _, r := range ph {
			if err := d.PipeRaw(stream.RawRecord{Topic: prefix + r.topic, Key: r.key, Value: r.value, Timestamp: e2eBase + r.ts}); err != nil {
				t.Fatal(err)
			}
		}
		var st ewStores
		ws, err := streamtest.WindowStore(d, "win-counts", serde.String(), serde.Int64())
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			st.windows = append(st.windows, ewWindow(w.Key, w.Start, w.Value, w.Timestamp))
		}
		ss, err := streamtest.SessionStore(d, "sess-counts", serde.String(), serde.Int64())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			st.sessions = append(st.sessions, ewSession(s.Key, s.Start, s.End, s.Value, s.Timestamp))
		}
		slices.Sort(st.windows)
		slices.Sort(st.sessions)
		if len(st.windows) == 0 || len(st.sessions) == 0 {
			t.Fatalf("driver: empty stores: %v", st)
		}
		res.stores = append(res.stores, st)
	}
	for _, o := range ewOutputs {
		var rows []e2eRow
		for _, raw := range d.Records(prefix + o.topic) {
			row, err := decodeRow(ewDecoder(o.topic, o.session), raw.Key, raw.Value, raw.Timestamp)
			if err != nil {
				t.Fatalf("driver %s: %v", o.topic, err)
			}
			rows = append(rows, row)
		}
		if len(rows) == 0 {
			t.Fatalf("driver: output %s is empty", o.topic)
		}
		res.outputs[o.topic] = ewSummary(rows, o.table)
	}
	return res
}

// readStores reads win-counts and sess-counts through interactive
// queries.
func readStores(a *App) (ewStores, error) {
	var st ewStores
	ws, err := QueryAllWindows(a, "win-counts", 0, 1<<62, serde.String(), serde.Int64())
	if err != nil {
		return st, err
	}
	for _, w := range ws {
		st.windows = append(st.windows, ewWindow(w.Key, w.Start, w.Value, w.Timestamp))
	}
	r, err := a.Store("sess-counts")
	if err != nil {
		return st, err
	}
	for s, err := range r.AllSessions() {
		if err != nil {
			return st, err
		}
		n, err := serde.Int64().Deserialize("", s.Value)
		if err != nil {
			return st, err
		}
		st.sessions = append(st.sessions, ewSession(string(s.Key), s.Start, s.End, n, s.Timestamp))
	}
	slices.Sort(st.windows)
	slices.Sort(st.sessions)
	return st, nil
}

// storesReach waits until the app's stores hold want.
func storesReach(t *testing.T, a *App, what string, want ewStores) {
	t.Helper()
	var got ewStores
	var err error
	if !poll(e2eWait, func() bool {
		got, err = readStores(a)
		return err == nil && got.equal(want)
	}) {
		t.Fatalf("%s: stores (err %v)\n  runtime %v\n  driver  %v", what, err, got, want)
	}
}

// waitCommitted waits until group has committed the end offset of every
// partition of topics: everything produced so far was processed, and
// what it wrote flushed.
func waitCommitted(t *testing.T, adm *kadm.Client, group string, topics ...string) {
	t.Helper()
	ok := poll(e2eWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			c, found := committed.Lookup(o.Topic, o.Partition)
			if o.Offset > 0 && (!found || c.At < o.Offset) {
				done = false
			}
		})
		return done
	})
	if !ok {
		t.Fatalf("group %s never committed the end of %v", group, topics)
	}
}

// ewRuntime runs the input on a broker, restarting the worker after the
// first phase (deleting its state directory when wipe is set).
func ewRuntime(t *testing.T, brokers []string, appID, prefix string, wipe bool, g Guarantee, want ewResult) {
	t.Helper()
	var topics []string
	for _, o := range ewOutputs {
		topics = append(topics, prefix+o.topic)
	}
	// One partition: the operators' stream time is then the driver's.
	createTopics(t, brokers, 1, append([]string{prefix + "clicks", prefix + "views"}, topics...)...)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cfg := testConfig(t, appID, brokers)
	isolation := kgo.ReadUncommitted()
	if g == ExactlyOnce {
		cfg.Guarantee, cfg.CommitInterval = ExactlyOnce, 0
		isolation = kgo.ReadCommitted()
	}
	phases := ewPhases()

	app := start(t, ewTopology(t, prefix), cfg)
	produceRecs(t, cl, prefix, phases[0])
	waitCommitted(t, adm, appID, prefix+"clicks", prefix+"views")
	storesReach(t, app.App, "after phase 0", want.stores[0])
	app.stop(t)
	if wipe {
		if err := os.RemoveAll(cfg.StateDir); err != nil {
			t.Fatal(err)
		}
	}
	// The new worker restores the stores (from its state directory, or
	// from the changelogs) before it processes anything.
	app = start(t, ewTopology(t, prefix), cfg)
	app.waitRunning(t)
	storesReach(t, app.App, "after the restart", want.stores[0])
	for i, ph := range phases[1:] {
		produceRecs(t, cl, prefix, ph)
		waitCommitted(t, adm, appID, prefix+"clicks", prefix+"views")
		storesReach(t, app.App, fmt.Sprintf("after phase %d", i+1), want.stores[i+1])
	}
	// The too-late click was dropped by the running worker and counted in
	// eddy_streams_dropped_records_total{reason="late"}.
	late := 0.0
	for th := range max(cfg.NumStreamThreads, 1) {
		late += metricValue(app.metrics.dropped.WithLabelValues(fmt.Sprint(th), "late"))
	}
	if late < 1 {
		t.Errorf("dropped late records = %v, want at least 1 (the too-late click)", late)
	}

	// The outputs, read until they match the driver's (or the wait ends).
	rd, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchIsolationLevel(isolation))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rows := map[string][]e2eRow{}
	got := func() map[string][]string {
		m := map[string][]string{}
		for _, o := range ewOutputs {
			m[o.topic] = ewSummary(rows[o.topic], o.table)
		}
		return m
	}
	poll(e2eWait, func() bool {
		if maps.EqualFunc(got(), want.outputs, slices.Equal) {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		f := rd.PollFetches(ctx)
		cancel()
		f.EachRecord(func(r *kgo.Record) {
			topic := strings.TrimPrefix(r.Topic, prefix)
			o := slices.IndexFunc(ewOutputs, func(o ewOutput) bool { return o.topic == topic })
			row, err := decodeRow(ewDecoder(topic, o >= 0 && ewOutputs[o].session), r.Key, r.Value, r.Timestamp.UnixMilli())
			if err != nil {
				t.Errorf("runtime %s: %v", topic, err)
			}
			rows[topic] = append(rows[topic], row)
		})
		return false
	})
	outs := got()
	for _, o := range ewOutputs {
		if !slices.Equal(outs[o.topic], want.outputs[o.topic]) {
			t.Errorf("output %s (runtime vs driver):\n  runtime %v\n  driver  %v", o.topic, outs[o.topic], want.outputs[o.topic])
		}
	}

	// Window and session changelogs are compacted and deleted.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, store := range []string{"win-counts", "win-close", "win-final", "sess-counts"} {
		topic := stream.ChangelogTopic(appID, store)
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("configs of %s: %v %v", topic, err, rc.Err)
		}
		cfgs := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				cfgs[c.Key] = *c.Value
			}
		}
		if cfgs["cleanup.policy"] != "compact,delete" {
			t.Errorf("%s: cleanup.policy %q, want compact,delete", topic, cfgs["cleanup.policy"])
		}
		// retention.ms is the store's retention plus a day.
		if store == "win-counts" && cfgs["retention.ms"] != "90000000" {
			t.Errorf("%s: retention.ms %q, want 90000000 (1 h + 1 day)", topic, cfgs["retention.ms"])
		}
	}
	app.stop(t)
}

func TestE2EWindowedRestart(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t)
			modes := []bool{false, true}
			if b.name != "eddy" {
				modes = []bool{true} // kfake: the restore from the changelog only
			}
			for _, g := range []Guarantee{AtLeastOnce, ExactlyOnce} {
				for _, wipe := range modes {
					name := "same-state"
					if wipe {
						name = "wiped-state"
					}
					name += "-" + string(g)
					t.Run(name, func(t *testing.T) {
						appID := "e2e-windowed-" + name
						prefix := appID + "."
						want := ewDriver(t, appID, prefix)
						ewRuntime(t, brokers, appID, prefix, wipe, g, want)
					})
				}
			}
		})
	}
}
