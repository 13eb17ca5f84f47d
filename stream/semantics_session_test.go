package stream_test

// Semantic tests of session-window aggregation (CountSessions,
// ReduceSessions, AggregateSessions) with both emit strategies. Inputs and
// expected outputs come from Kafka Streams' tests, named above each case:
// KStreamSessionWindowAggregateProcessorTest, SessionWindowedKStreamImplTest,
// KStreamAggregationIntegrationTest and TopologyTest. Where Kafka's test
// observes something eddy cannot reproduce (a record cache flushed only at
// the end of the test), the comment says what differs.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/table"
	"github.com/eddy-streams/eddy/window"
)

// sessKS is the serde of the session tables' keys.
var sessKS = window.SessionWindowedSerde(serde.String())

// sessEmits runs f with both emit strategies and, for each, with the
// record cache on and off.
func sessEmits(t *testing.T, f func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option)) {
	for _, e := range []stream.EmitStrategy{stream.EmitOnWindowUpdate, stream.EmitOnWindowClose} {
		t.Run(e.String(), func(t *testing.T) {
			cachingModes(t, func(t *testing.T, opts ...streamtest.Option) { f(t, e, opts...) })
		})
	}
}

// sessGrouped is the grouped input topic "input" of string keys and
// values.
func sessGrouped(b *stream.Builder) stream.KGroupedStream[string, string] {
	return stream.Stream(b, strs, "input").GroupByKey(stream.Grouped[string, string]{})
}

// sessCountTopology counts sessions of "input" into "output".
func sessCountTopology(t *testing.T, w window.SessionWindows, emit stream.EmitStrategy, m stream.Materialized[string, int64]) *stream.Topology {
	b := stream.NewBuilder()
	stream.CountSessions(sessGrouped(b).WindowedBySession(w).Emit(emit), m).ToStream().To("output", stream.Produced[window.Windowed[string], int64]{})
	return build(t, b)
}

// sessSessions returns the live sessions of store as the changelog
// records them ("key[start,end]=value", by key, end, start); decode turns a
// value into text.
func sessSessions(t *testing.T, d *streamtest.Driver, store string, decode func([]byte) string) []string {
	t.Helper()
	live := map[string]string{}
	for _, r := range d.Records(stream.ChangelogTopic("test-app", store)) {
		k, start, end, err := stream.SplitSessionStoreKey(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("%s[%d,%d]", k, start, end)
		if r.Value == nil {
			delete(live, id)
			continue
		}
		live[id] = decode(r.Value)
	}
	var out []string
	for id, v := range live {
		out = append(out, id+"="+v)
	}
	slices.Sort(out)
	return out
}

func sessInt64(b []byte) string {
	v, err := serde.Int64().Deserialize("", b)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprint(v)
}

func sessString(b []byte) string { return string(b) }

// sessOrNot returns update under EmitOnWindowUpdate and final under
// EmitOnWindowClose.
func sessOrNot(emit stream.EmitStrategy, update, final []string) []string {
	if emit == stream.EmitOnWindowClose {
		return final
	}
	return update
}

// ---- SessionWindowedKStreamImplTest ----

// sessImplData is SessionWindowedKStreamImplTest.processData; the
// windows have a 500 ms gap and no grace.
func sessImplData(t *testing.T, d *streamtest.Driver) {
	in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
	pipe(t, in, "1", "1", 10)
	pipe(t, in, "1", "2", 15)
	pipe(t, in, "1", "3", 600)
	pipe(t, in, "2", "1", 600)
	pipe(t, in, "2", "2", 599)
}

// SessionWindowedKStreamImplTest.shouldCountSessionWindowedWithCachingEnabled
// and WithCachingDisabled, shouldReduceWindowed,
// shouldAggregateSessionWindowed (both emit strategies): a merge forwards
// the replaced session's tombstone, then the merged session; on window
// close only [10,15] of key 1 closes (at stream time 600).
func TestSessionWindowedKStreamImpl(t *testing.T) {
	w := window.Session(500 * time.Millisecond)
	sessEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		t.Run("count", func(t *testing.T) {
			d := open(t, sessCountTopology(t, w, emit, stream.Materialized[string, int64]{}), opts...)
			sessImplData(t, d)
			expect(t, streamtest.OutputTopic(d, "output", sessKS, serde.Int64()), sessOrNot(emit,
				[]string{"{1 [10,10]}=1@10", "{1 [10,10]}=null@10", "{1 [10,15]}=2@15", "{1 [600,600]}=1@600",
					"{2 [600,600]}=1@600", "{2 [600,600]}=null@600", "{2 [599,600]}=2@600"},
				[]string{"{1 [10,15]}=2@15"})...)
		})
		t.Run("reduce", func(t *testing.T) {
			b := stream.NewBuilder()
			stream.ReduceSessions(sessGrouped(b).WindowedBySession(w).Emit(emit), func(agg, v string) string { return agg + "+" + v },
				stream.Materialized[string, string]{}).ToStream().To("output", stream.Produced[window.Windowed[string], string]{})
			d := open(t, build(t, b), opts...)
			sessImplData(t, d)
			expect(t, streamtest.OutputTopic(d, "output", sessKS, serde.String()), sessOrNot(emit,
				[]string{"{1 [10,10]}=1@10", "{1 [10,10]}=null@10", "{1 [10,15]}=1+2@15", "{1 [600,600]}=3@600",
					"{2 [600,600]}=1@600", "{2 [600,600]}=null@600", "{2 [599,600]}=1+2@600"},
				[]string{"{1 [10,15]}=1+2@15"})...)
		})
		t.Run("aggregate", func(t *testing.T) {
			b := stream.NewBuilder()
			stream.AggregateSessions(sessGrouped(b).WindowedBySession(w).Emit(emit),
				func() string { return "0" },
				func(_ string, v, agg string) string { return agg + "+" + v },
				func(_ string, a, b string) string { return a + "+" + b },
				stream.Materialized[string, string]{Value: serde.String()}).ToStream().To("output", stream.Produced[window.Windowed[string], string]{})
			d := open(t, build(t, b), opts...)
			sessImplData(t, d)
			expect(t, streamtest.OutputTopic(d, "output", sessKS, serde.String()), sessOrNot(emit,
				[]string{"{1 [10,10]}=0+1@10", "{1 [10,10]}=null@10", "{1 [10,15]}=0+0+1+2@15", "{1 [600,600]}=0+3@600",
					"{2 [600,600]}=0+1@600", "{2 [600,600]}=null@600", "{2 [599,600]}=0+0+1+2@600"},
				[]string{"{1 [10,15]}=0+0+1+2@15"})...)
		})
	})
}

// SessionWindowedKStreamImplTest.shouldMaterializeCount,
// shouldMaterializeReduced and shouldMaterializeAggregated: the named
// stores hold the merged sessions, and the changelog records them.
//
// Kafka reads the store itself, where, under EmitOnWindowClose, [10,15]
// has expired (its end is before stream time 600 - retention 500), while
// under EmitOnWindowUpdate its RocksDB store only drops whole 60 s
// segments and still returns it. eddy's session store expires entries
// one by one, like Kafka's in-memory session store; the test reads the
// changelog, which holds all three sessions in both modes, and checks the
// store's expiry in TestSessionStoreRetention.
func TestSessionMaterialized(t *testing.T) {
	w := window.Session(500 * time.Millisecond)
	sessEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		b := stream.NewBuilder()
		ws := sessGrouped(b).WindowedBySession(w).Emit(emit)
		stream.CountSessions(ws, stream.As[string, int64]("count-store"))
		stream.ReduceSessions(ws, func(agg, v string) string { return agg + "+" + v }, stream.As[string, string]("reduced"))
		stream.AggregateSessions(ws, func() string { return "0" },
			func(_ string, v, agg string) string { return agg + "+" + v },
			func(_ string, a, b string) string { return a + "+" + b },
			stream.Materialized[string, string]{Name: "aggregated", Value: serde.String()})
		d := open(t, build(t, b), opts...)
		sessImplData(t, d)
		for _, c := range []struct {
			store  string
			decode func([]byte) string
			want   []string
		}{
			{"count-store", sessInt64, []string{"1[10,15]=2", "1[600,600]=1", "2[599,600]=2"}},
			{"reduced", sessString, []string{"1[10,15]=1+2", "1[600,600]=3", "2[599,600]=1+2"}},
			{"aggregated", sessString, []string{"1[10,15]=0+0+1+2", "1[600,600]=0+3", "2[599,600]=0+0+1+2"}},
		} {
			if got := sessSessions(t, d, c.store, c.decode); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.store, got, c.want)
			}
		}
	})
}

// ---- KStreamSessionWindowAggregateProcessorTest ----

// sessGapMs is KStreamSessionWindowAggregateProcessorTest's GAP_MS.
const sessGapMs = 5 * 60 * 1000

type sessIn struct {
	key string
	ts  int64
}

// KStreamSessionWindowAggregateProcessorTest (a count with a 5-minute gap,
// both emit strategies). Kafka's test flushes its record cache once, at
// the end, so it sees one update per session; the driver commits after
// every record, as Kafka's TopologyTestDriver does, so every update is
// forwarded here, and the final value of every session is Kafka's.
func TestSessionAggregateProcessor(t *testing.T) {
	const g = sessGapMs
	w := window.Session(g * time.Millisecond)
	cases := []struct {
		name          string
		in            []sessIn
		update, final []string
		store         []string
	}{{
		// shouldCreateSingleSessionWhenWithinGap
		name:   "single session within gap",
		in:     []sessIn{{"john", 0}, {"john", 500}},
		update: []string{"{john [0,0]}=1@0", "{john [0,0]}=null@0", "{john [0,500]}=2@500"},
		store:  []string{"john[0,500]=2"},
	}, {
		// shouldMergeSessions: the third record bridges the first two
		// sessions.
		name: "merge sessions",
		in:   []sessIn{{"mel", 0}, {"mel", g + 1}, {"mel", g / 2}},
		update: []string{"{mel [0,0]}=1@0", "{mel [300001,300001]}=1@300001",
			"{mel [0,0]}=null@0", "{mel [300001,300001]}=null@300001", "{mel [0,300001]}=3@300001"},
		// [0,0] closes at stream time g+1, and is merged later: the store
		// still holds it.
		final: []string{"{mel [0,0]}=1@0"},
		store: []string{"mel[0,300001]=3"},
	}, {
		// shouldUpdateSessionIfTheSameTime
		name:   "same time",
		in:     []sessIn{{"mel", 0}, {"mel", 0}},
		update: []string{"{mel [0,0]}=1@0", "{mel [0,0]}=2@0"},
		store:  []string{"mel[0,0]=2"},
	}, {
		// shouldHaveMultipleSessionsForSameIdWhenTimestampApartBySessionGap
		// (Kafka's update case shows only the last value of each
		// session: [0,0]=1, [g+1,g+1]=2, [2g+2,2g+2]=3).
		name: "sessions apart by the gap",
		in:   []sessIn{{"mel", 0}, {"mel", g + 1}, {"mel", g + 1}, {"mel", 2*g + 2}, {"mel", 2*g + 2}, {"mel", 2*g + 2}},
		update: []string{"{mel [0,0]}=1@0", "{mel [300001,300001]}=1@300001", "{mel [300001,300001]}=2@300001",
			"{mel [600002,600002]}=1@600002", "{mel [600002,600002]}=2@600002", "{mel [600002,600002]}=3@600002"},
		final: []string{"{mel [0,0]}=1@0", "{mel [300001,300001]}=2@300001"},
		store: []string{"mel[0,0]=1", "mel[300001,300001]=2", "mel[600002,600002]=3"},
	}, {
		// shouldRemoveMergedSessionsFromStateStore and
		// shouldImmediatelyForwardRemovedSessionsWhenMerging (whose gap
		// is irrelevant: 5 ms later merges either way).
		name:   "remove merged sessions",
		in:     []sessIn{{"a", 0}, {"a", 100}},
		update: []string{"{a [0,0]}=1@0", "{a [0,0]}=null@0", "{a [0,100]}=2@100"},
		store:  []string{"a[0,100]=2"},
	}, {
		// shouldImmediatelyForwardNewSessionWhenNonCachedStore
		name:   "forward new sessions",
		in:     []sessIn{{"a", 0}, {"b", 0}, {"c", 0}},
		update: []string{"{a [0,0]}=1@0", "{b [0,0]}=1@0", "{c [0,0]}=1@0"},
		store:  []string{"a[0,0]=1", "b[0,0]=1", "c[0,0]=1"},
	}, {
		// shouldHandleMultipleSessionsAndMerging (Kafka's update case
		// omits d's [0,0] and a's [g+1,g+1], which its cache removed
		// before the flush; its final case is the same). Sessions closing
		// together are emitted by end, start, then key.
		name: "multiple sessions and merging",
		in: []sessIn{{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}, {"d", g / 2}, {"a", g + 1}, {"b", g + 1},
			{"a", g + 1 + g/2}, {"c", g + 1 + g/2}},
		update: []string{"{a [0,0]}=1@0", "{b [0,0]}=1@0", "{c [0,0]}=1@0", "{d [0,0]}=1@0",
			"{d [0,0]}=null@0", "{d [0,150000]}=2@150000", "{a [300001,300001]}=1@300001", "{b [300001,300001]}=1@300001",
			"{a [300001,300001]}=null@300001", "{a [300001,450001]}=2@450001", "{c [450001,450001]}=1@450001"},
		final: []string{"{a [0,0]}=1@0", "{b [0,0]}=1@0", "{c [0,0]}=1@0", "{d [0,150000]}=2@150000"},
		store: []string{"a[0,0]=1", "a[300001,450001]=2", "b[0,0]=1", "b[300001,300001]=1", "c[0,0]=1",
			"c[450001,450001]=1", "d[0,150000]=2"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sessEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
				// Kafka's test store keeps sessions for 3 gaps.
				m := stream.Materialized[string, int64]{Name: "store", Retention: 3 * g * time.Millisecond}
				d := open(t, sessCountTopology(t, w, emit, m), opts...)
				in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
				for _, r := range c.in {
					pipe(t, in, r.key, "v", r.ts)
				}
				expect(t, streamtest.OutputTopic(d, "output", sessKS, serde.Int64()), sessOrNot(emit, c.update, c.final)...)
				if got := sessSessions(t, d, "store", sessInt64); !slices.Equal(got, c.store) {
					t.Errorf("store %v, want %v", got, c.store)
				}
			})
		})
	}
}

// KStreamSessionWindowAggregateProcessorTest.shouldGetAggregatedValuesFromValueGetter:
// the table's getter looks a session up by key and bounds (here through a
// stream-table join); the looked-up value carries the session end.
func TestSessionGetter(t *testing.T) {
	const g = sessGapMs
	for _, emit := range []stream.EmitStrategy{stream.EmitOnWindowUpdate, stream.EmitOnWindowClose} {
		t.Run(emit.String(), func(t *testing.T) {
			b := stream.NewBuilder()
			// Kafka's test store keeps sessions for 3 gaps: [0,0] is
			// still there at stream time g+1.
			counts := stream.CountSessions(sessGrouped(b).WindowedBySession(window.Session(g*time.Millisecond)).Emit(emit),
				stream.Materialized[string, int64]{Retention: 3 * g * time.Millisecond})
			lookups := stream.Stream(b, stream.With(sessKS, serde.String()), "lookups")
			stream.LeftJoinTable(lookups, counts, func(_ window.Windowed[string], _ string, n int64, ok bool) string {
				if !ok {
					return "none"
				}
				return fmt.Sprint(n)
			}, stream.Joined[window.Windowed[string], string]{}).To("found", stream.Produced[window.Windowed[string], string]{})
			d := open(t, build(t, b))
			in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
			pipe(t, in, "a", "1", 0)
			pipe(t, in, "a", "1", g+1)
			pipe(t, in, "a", "2", g+1)
			look := streamtest.InputTopic(d, "lookups", sessKS, serde.String())
			for _, win := range []window.Window{{Start: 0, End: 0}, {Start: g + 1, End: g + 1}, {Start: 0, End: g + 1}} {
				pipe(t, look, window.Windowed[string]{Key: "a", Window: win}, "?", 7)
			}
			expect(t, streamtest.OutputTopic(d, "found", sessKS, serde.String()),
				"{a [0,0]}=1@7", "{a [300001,300001]}=2@7", "{a [0,300001]}=none@7")
		})
	}
}

// KStreamSessionWindowAggregateProcessorTest.shouldLogAndMeterWhenSkippingNullKeyWithBuiltInMetrics:
// a null key is dropped and counted; so is a null value (see
// SessionWindowedKStream).
func TestSessionNullKeyAndValue(t *testing.T) {
	sessEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		d := open(t, sessCountTopology(t, window.Session(10*time.Millisecond), emit, stream.Materialized[string, int64]{}), opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
		if err := in.PipeValue("1", 0); err != nil {
			t.Fatal(err)
		}
		tombstone(t, in, "k", 0)
		if got := d.Dropped("null-key-or-value"); got != 2 {
			t.Errorf("dropped %d, want 2", got)
		}
		expect(t, streamtest.OutputTopic(d, "output", sessKS, serde.Int64()))
	})
}

// KStreamSessionWindowAggregateProcessorTest.shouldLogAndMeterWhenSkippingLateRecordWithZeroGrace
// and ...WithNonzeroGrace (gap 10 ms): a record is dropped when its
// session ends before observed stream time - grace - gap, and accepted
// when it ends exactly there.
func TestSessionLateRecords(t *testing.T) {
	for _, c := range []struct {
		name   string
		grace  time.Duration
		in     []sessIn
		update []string
	}{{
		name:   "zero grace",
		grace:  0,
		in:     []sessIn{{"dummy", 0}, {"OnTime1", 0}, {"dummy", 11}, {"Late1", 0}},
		update: []string{"{dummy [0,0]}=1@0", "{OnTime1 [0,0]}=1@0", "{dummy [11,11]}=1@11"},
	}, {
		name:  "nonzero grace",
		grace: time.Millisecond,
		in:    []sessIn{{"dummy", 0}, {"OnTime1", 0}, {"dummy", 11}, {"OnTime2", 0}, {"dummy", 12}, {"Late1", 0}},
		update: []string{"{dummy [0,0]}=1@0", "{OnTime1 [0,0]}=1@0", "{dummy [11,11]}=1@11", "{OnTime2 [0,0]}=1@0",
			"{dummy [11,11]}=null@11", "{dummy [11,12]}=2@12"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
				w := window.Session(10 * time.Millisecond).WithGrace(c.grace)
				d := open(t, sessCountTopology(t, w, stream.EmitOnWindowUpdate, stream.Materialized[string, int64]{}), opts...)
				in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
				for _, r := range c.in {
					pipe(t, in, r.key, "1", r.ts)
				}
				if got := d.Dropped("late"); got != 1 {
					t.Errorf("dropped late %d, want 1", got)
				}
				expect(t, streamtest.OutputTopic(d, "output", sessKS, serde.Int64()), c.update...)
			})
		})
	}
}

// The grace boundary under both strategies (gap 10 ms, grace 5 ms; facts
// from KStreamSessionWindowAggregate's rules, which Kafka's tests above
// check at one point each): a session [s,e] accepts records while e >=
// stream time - 15 and is emitted on close at the first record that makes
// e < stream time - 15.
func TestSessionGraceBoundary(t *testing.T) {
	w := window.Session(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
	sessEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		d := open(t, sessCountTopology(t, w, emit, stream.Materialized[string, int64]{}), opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
		out := streamtest.OutputTopic(d, "output", sessKS, serde.Int64())
		step := func(k string, ts int64, late int, update, final []string) {
			t.Helper()
			pipe(t, in, k, "v", ts)
			expect(t, out, sessOrNot(emit, update, final)...)
			if got := d.Dropped("late"); got != late {
				t.Errorf("after %s@%d: %d late, want %d", k, ts, got, late)
			}
		}
		step("a", 0, 0, []string{"{a [0,0]}=1@0"}, nil)
		step("b", 15, 0, []string{"{b [15,15]}=1@15"}, nil)
		// Stream time 15: [0,0] ends exactly at 15 - 15, still open.
		step("a", 1, 0, []string{"{a [0,0]}=null@0", "{a [0,1]}=2@1"}, nil)
		// Stream time 16: close time 1, [0,1] is still open.
		step("b", 16, 0, []string{"{b [15,15]}=null@15", "{b [15,16]}=2@16"}, nil)
		// Stream time 17: [0,1] closes.
		step("b", 17, 0, []string{"{b [15,16]}=null@16", "{b [15,17]}=3@17"}, []string{"{a [0,1]}=2@1"})
		// A record merging into the closed [0,1] is late.
		step("a", 1, 1, nil, nil)
		// A record ending at the close time is still accepted.
		step("c", 2, 1, []string{"{c [2,2]}=1@2"}, nil)
		// Only the merged session's end counts: a record before the close
		// time is accepted when it merges into an open session...
		step("c", 1, 1, []string{"{c [2,2]}=null@2", "{c [1,2]}=2@2"}, nil)
		// ...and dropped when it does not.
		step("e", 1, 2, nil, nil)
	})
}

// A record inside an existing session rewrites it. Kafka removes the
// session and writes it again; its record cache turns the two writes into
// one update, while without a cache (here the driver's cache turned off)
// both the tombstone and the update are forwarded. Facts from
// KStreamSessionWindowAggregate and CachingSessionStore.
func TestSessionUpdateInsideSession(t *testing.T) {
	w := window.Session(10 * time.Millisecond)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		cached := !strings.HasSuffix(t.Name(), "cache-off")
		for _, disable := range []bool{false, true} {
			d := open(t, sessCountTopology(t, w, stream.EmitOnWindowUpdate, stream.Materialized[string, int64]{DisableCaching: disable}), opts...)
			in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
			pipe(t, in, "a", "v", 0)
			pipe(t, in, "a", "v", 10)
			pipe(t, in, "a", "v", 5)
			want := []string{"{a [0,0]}=1@0", "{a [0,0]}=null@0", "{a [0,10]}=2@10"}
			if cached && !disable {
				want = append(want, "{a [0,10]}=3@10")
			} else {
				want = append(want, "{a [0,10]}=null@10", "{a [0,10]}=3@10")
			}
			expect(t, streamtest.OutputTopic(d, "output", sessKS, serde.Int64()), want...)
		}
	})
}

// The record timestamp and headers of emitted sessions, and the order in
// which sessions closing together are emitted (by end, start, then key,
// the order of Kafka's time-ordered session store that
// KStreamSessionWindowAggregate's emit-on-close reads).
func TestSessionEmitOnCloseOrder(t *testing.T) {
	w := window.Session(10 * time.Millisecond)
	d := open(t, sessCountTopology(t, w, stream.EmitOnWindowClose, stream.Materialized[string, int64]{}))
	in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
	for _, r := range []sessIn{{"a", 4}, {"b", 3}, {"c", 1}, {"a", 5}, {"c", 4}, {"b", 5}} {
		pipe(t, in, r.key, "v", r.ts)
	}
	if err := in.Pipe("z", "v", 100, stream.Header{Key: "h", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	recs, err := streamtest.OutputTopic(d, "output", sessKS, serde.Int64()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.String())
		if len(r.Headers) != 1 || r.Headers[0].Key != "h" {
			t.Errorf("%s: headers %v, want those of the record that closed it", r, r.Headers)
		}
	}
	want := []string{"{c [1,4]}=2@4", "{b [3,5]}=2@5", "{a [4,5]}=2@5"}
	if !slices.Equal(got, want) {
		t.Errorf("emitted %v, want %v", got, want)
	}
}

// Under EmitOnWindowClose, a record that merges a session already emitted
// (possible when the store still holds it: here a long retention) makes a
// new session, emitted again when it closes: KStreamSessionWindowAggregate
// checks only the merged session's end against the close time, and emits
// every session whose end passes it.
func TestSessionEmitOnCloseMergeAfterEmit(t *testing.T) {
	w := window.Session(10 * time.Millisecond)
	d := open(t, sessCountTopology(t, w, stream.EmitOnWindowClose, stream.Materialized[string, int64]{Retention: time.Hour}))
	in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
	out := streamtest.OutputTopic(d, "output", sessKS, serde.Int64())
	pipe(t, in, "a", "v", 0)
	pipe(t, in, "b", "v", 11)
	expect(t, out, "{a [0,0]}=1@0")
	pipe(t, in, "a", "v", 10)
	pipe(t, in, "b", "v", 21)
	expect(t, out, "{a [0,10]}=2@10")
}

// ---- KStreamAggregationIntegrationTest ----

// sessUsers is the input of KStreamAggregationIntegrationTest's session
// cases, for a gap g: four users start at t1, emily resumes at t1+g/2, bob
// and penny come back after the gap at t3 = t1+g+1, bob and jo at
// t4 = t3+g/2, and jo's record at t4-1 arrives last.
func sessUsers(t *testing.T, d *streamtest.Driver, t1, g int64) {
	in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
	t3 := t1 + g + 1
	t4 := t3 + g/2
	for _, r := range []struct {
		k, v string
		ts   int64
	}{
		{"bob", "start", t1}, {"penny", "start", t1}, {"jo", "pause", t1}, {"emily", "pause", t1},
		{"emily", "resume", t1 + g/2},
		{"bob", "pause", t3}, {"penny", "stop", t3},
		{"bob", "resume", t4}, {"jo", "resume", t4},
		{"jo", "late", t4 - 1},
	} {
		pipe(t, in, r.k, r.v, r.ts)
	}
}

// sessWindowed returns key's session [start, end].
func sessWindowed(key string, start, end int64) window.Windowed[string] {
	return window.Windowed[string]{Key: key, Window: window.Window{Start: start, End: end}}
}

// KStreamAggregationIntegrationTest.shouldCountSessionWindows: a 5-minute
// gap; 13 records (Kafka's latch), whose latest values per session are
// Kafka's. t1 is arbitrary (Kafka's mock time minus an hour).
func TestSessionCountIntegration(t *testing.T) {
	const g, t1 = 5 * 60 * 1000, 1_700_000_000_000
	const t2, t3 = t1 + g/2, t1 + g + 1
	const t4 = t3 + g/2
	const t5 = t4 - 1
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, sessCountTopology(t, window.Session(g*time.Millisecond), stream.EmitOnWindowUpdate, stream.Materialized[string, int64]{}), opts...)
		sessUsers(t, d, t1, g)
		recs, err := streamtest.OutputTopic(d, "output", sessKS, serde.Int64()).ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 13 {
			t.Errorf("%d records, want 13: %v", len(recs), recs)
		}
		latest := map[window.Windowed[string]]string{}
		for _, r := range recs {
			latest[r.Key] = fmt.Sprintf("%d@%d", r.Value, r.Timestamp)
			if r.ValueNull {
				latest[r.Key] = fmt.Sprintf("null@%d", r.Timestamp)
			}
		}
		for k, want := range map[window.Windowed[string]]string{
			sessWindowed("bob", t1, t1):   fmt.Sprintf("1@%d", t1),
			sessWindowed("penny", t1, t1): fmt.Sprintf("1@%d", t1),
			sessWindowed("jo", t1, t1):    fmt.Sprintf("1@%d", t1),
			sessWindowed("jo", t5, t4):    fmt.Sprintf("2@%d", t4),
			sessWindowed("emily", t1, t2): fmt.Sprintf("2@%d", t2),
			sessWindowed("bob", t3, t4):   fmt.Sprintf("2@%d", t4),
			sessWindowed("penny", t3, t3): fmt.Sprintf("1@%d", t3),
		} {
			if got := latest[k]; got != want {
				t.Errorf("%v: %s, want %s", k, got, want)
			}
		}
	})
}

// KStreamAggregationIntegrationTest.shouldReduceSessionWindows: a 1 s gap
// and a 1-minute grace, a reduce into the store "UserSessionsStore", whose
// sessions of bob are [t1,t1] "start" and [t3,t4] "pause:resume".
func TestSessionReduceIntegration(t *testing.T) {
	const g, t1 = 1000, 1_700_000_000_000
	const t2, t3 = t1 + g/2, t1 + g + 1
	const t4 = t3 + g/2
	const t5 = t4 - 1
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		b := stream.NewBuilder()
		ws := sessGrouped(b).WindowedBySession(window.Session(g * time.Millisecond).WithGrace(time.Minute))
		stream.ReduceSessions(ws, func(a, v string) string { return a + ":" + v }, stream.As[string, string]("UserSessionsStore")).
			ToStream().To("output", stream.Produced[window.Windowed[string], string]{})
		d := open(t, build(t, b), opts...)
		sessUsers(t, d, t1, g)
		m, err := streamtest.ReadKeyValuesToMap(streamtest.OutputTopic(d, "output", sessKS, serde.String()))
		if err != nil {
			t.Fatal(err)
		}
		want := map[window.Windowed[string]]string{
			sessWindowed("bob", t1, t1):   "start",
			sessWindowed("penny", t1, t1): "start",
			sessWindowed("jo", t1, t1):    "pause",
			sessWindowed("jo", t5, t4):    "resume:late",
			sessWindowed("emily", t1, t2): "pause:resume",
			sessWindowed("bob", t3, t4):   "pause:resume",
			sessWindowed("penny", t3, t3): "stop",
		}
		if len(m) != len(want) {
			t.Errorf("table %v, want %v", m, want)
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%v: %q, want %q", k, m[k], v)
			}
		}
		var bob []string
		for _, s := range sessSessions(t, d, "UserSessionsStore", sessString) {
			if strings.HasPrefix(s, "bob[") {
				bob = append(bob, s)
			}
		}
		wantBob := []string{fmt.Sprintf("bob[%d,%d]=start", t1, t1), fmt.Sprintf("bob[%d,%d]=pause:resume", t3, t4)}
		if !slices.Equal(bob, wantBob) {
			t.Errorf("bob's sessions %v, want %v", bob, wantBob)
		}
	})
}

// ---- topology, store and build errors ----

// TopologyTest.sessionWindowZeroArgCountShouldPreserveTopologyStructure
// and sessionWindowNamedMaterializedCountShouldPreserveTopologyStructure.
func TestDescribeSessionCount(t *testing.T) {
	w := window.Session(time.Millisecond)
	b := stream.NewBuilder()
	stream.CountSessions(stream.Stream(b, strs, "input-topic").GroupByKey(stream.Grouped[string, string]{}).WindowedBySession(w),
		stream.Materialized[string, int64]{})
	describe(t, build(t, b), "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n"+
		"      --> KSTREAM-AGGREGATE-0000000002\n"+
		"    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n"+
		"      --> none\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n\n")

	b = stream.NewBuilder()
	stream.CountSessions(stream.Stream(b, strs, "input-topic").GroupByKey(stream.Grouped[string, string]{}).WindowedBySession(w),
		stream.Materialized[string, int64]{Name: "count-store", InMemory: true})
	describe(t, build(t, b), "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n"+
		"      --> KSTREAM-AGGREGATE-0000000001\n"+
		"    Processor: KSTREAM-AGGREGATE-0000000001 (stores: [count-store])\n"+
		"      --> none\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n\n")

	// A reduce after a key change: Kafka's KSTREAM-REDUCE names, and the
	// repartition topic named after the store.
	b = stream.NewBuilder()
	g := stream.GroupBy(stream.Stream(b, strs, "input-topic"), func(_, v string) string { return v }, stream.Grouped[string, string]{})
	stream.ReduceSessions(g.WindowedBySession(w), func(a, v string) string { return a + v }, stream.Materialized[string, string]{})
	top := build(t, b)
	got := top.Describe().String()
	for _, want := range []string{
		"Processor: KSTREAM-REDUCE-0000000003 (stores: [KSTREAM-REDUCE-STATE-STORE-0000000002])",
		"(topic: KSTREAM-REDUCE-STATE-STORE-0000000002-repartition)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("describe lacks %q:\n%s", want, got)
		}
	}
}

// The session store: its kind, retention (SessionStoreMaterializer's
// default gap + grace, plus one millisecond, see below) and changelog.
func TestSessionStoreInfo(t *testing.T) {
	w := window.Session(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
	for _, c := range []struct {
		retention, want time.Duration
	}{{0, 16 * time.Millisecond}, {15 * time.Millisecond, 16 * time.Millisecond}, {time.Hour, time.Hour}} {
		top := sessCountTopology(t, w, stream.EmitOnWindowUpdate, stream.Materialized[string, int64]{Name: "s", Retention: c.retention})
		var found bool
		for _, sub := range top.Subtopologies("app") {
			for _, info := range sub.Stores {
				if info.Name != "s" {
					continue
				}
				found = true
				if info.Kind != stream.SessionKind || info.Retention != c.want || !info.Logged || info.Changelog.Name != "app-s-changelog" {
					t.Errorf("retention %v: store %+v, want a logged session store with retention %v", c.retention, info, c.want)
				}
			}
		}
		if !found {
			t.Fatal("no store s")
		}
	}
}

// SessionStoreMaterializer's check (a retention below gap + grace), the
// null checks of SessionWindowedKStreamImplTest
// (shouldThrowNullPointerOn...), a missing value serde and invalid
// session windows are Build errors.
func TestSessionBuildErrors(t *testing.T) {
	w := window.Session(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
	type point struct{ X, Y int }
	add := func(_ string, v, agg string) string { return agg + v }
	merge := func(_ string, a, b string) string { return a + b }
	for _, c := range []struct {
		name, want string
		add        func(ws stream.SessionWindowedKStream[string, string])
	}{
		{"retention too small", "must be no smaller than the inactivity gap plus the grace period (15ms)", func(ws stream.SessionWindowedKStream[string, string]) {
			stream.CountSessions(ws, stream.Materialized[string, int64]{Retention: 14 * time.Millisecond})
		}},
		{"nil reducer", "the reducer must not be nil", func(ws stream.SessionWindowedKStream[string, string]) {
			stream.ReduceSessions(ws, nil, stream.Materialized[string, string]{})
		}},
		{"nil initializer", "the initializer must not be nil", func(ws stream.SessionWindowedKStream[string, string]) {
			stream.AggregateSessions(ws, nil, add, merge, stream.Materialized[string, string]{})
		}},
		{"nil aggregator", "the aggregator must not be nil", func(ws stream.SessionWindowedKStream[string, string]) {
			stream.AggregateSessions(ws, func() string { return "" }, nil, merge, stream.Materialized[string, string]{})
		}},
		{"nil merger", "the session merger must not be nil", func(ws stream.SessionWindowedKStream[string, string]) {
			stream.AggregateSessions(ws, func() string { return "" }, add, nil, stream.Materialized[string, string]{})
		}},
		{"no value serde", "no value serde", func(ws stream.SessionWindowedKStream[string, string]) {
			stream.AggregateSessions(ws, func() point { return point{} }, func(string, string, point) point { return point{} },
				func(_ string, a, _ point) point { return a }, stream.Materialized[string, point]{})
		}},
		{"invalid windows", "session windows", func(stream.SessionWindowedKStream[string, string]) {}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := stream.NewBuilder()
			ws := sessGrouped(b).WindowedBySession(w)
			if c.name == "invalid windows" {
				stream.CountSessions(sessGrouped(b).WindowedBySession(window.SessionWindows{}), stream.Materialized[string, int64]{})
			}
			c.add(ws)
			_, err := b.Build()
			if !errors.Is(err, stream.ErrTopology) || !strings.Contains(fmt.Sprint(err), c.want) {
				t.Errorf("Build: %v, want an ErrTopology containing %q", err, c.want)
			}
		})
	}
}

// ---- store expiry and restarts (through the Task API) ----

// sessEnv is a TaskEnv with in-memory stores restored from the changelog
// records it was given, recording what the task sends.
type sessEnv struct {
	changelog []stream.RawRecord // restored into the store on open
	stores    map[string]stream.StateStore
	sent      []stream.RawRecord
	late      int // records dropped as late
}

func (e *sessEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	info.InMemory = true
	s, err := stream.OpenStateStore(info, "", table.BadgerOptions{})
	if err != nil {
		return nil, err
	}
	if err := stream.RestoreChangelog(info, s, e.changelog); err != nil {
		return nil, err
	}
	if e.stores == nil {
		e.stores = map[string]stream.StateStore{}
	}
	e.stores[info.Name] = s
	return s, nil
}

func (e *sessEnv) Send(r stream.RawRecord) error {
	e.sent = append(e.sent, r)
	return nil
}

// sessTask runs top's only task over env.
type sessTask struct {
	t    *testing.T
	task *stream.Task
	env  *sessEnv
	off  int64
}

func newSessTask(t *testing.T, top *stream.Topology, env *sessEnv) *sessTask {
	t.Helper()
	task, err := top.NewTask(stream.TaskConfig{ApplicationID: "app", Env: env, Hooks: stream.TaskHooks{
		Dropped: func(_, reason string) {
			if reason == "late" {
				env.late++
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	return &sessTask{t: t, task: task, env: env}
}

func (s *sessTask) pipe(key string, ts int64) {
	s.t.Helper()
	if err := s.task.Add(stream.RawRecord{Topic: "input", Offset: s.off, Key: []byte(key), Value: []byte("v"), Timestamp: ts}); err != nil {
		s.t.Fatal(err)
	}
	s.off++
	if _, err := s.task.Process(1); err != nil {
		s.t.Fatal(err)
	}
}

// outputs returns the records sent to topic since the last call, decoded.
func (s *sessTask) outputs(topic string) []string {
	s.t.Helper()
	var out []string
	rest := s.env.sent[:0]
	for _, r := range s.env.sent {
		if r.Topic != topic {
			rest = append(rest, r)
			continue
		}
		k, err := sessKS.Deserialize(topic, r.Key)
		if err != nil {
			s.t.Fatal(err)
		}
		v := "null"
		if r.Value != nil {
			v = sessInt64(r.Value)
		}
		out = append(out, fmt.Sprintf("%s%v=%s@%d", k.Key, k.Window, v, r.Timestamp))
	}
	s.env.sent = rest
	return out
}

// A session that closes exactly as the store's retention (gap + grace)
// would expire it is still emitted: the store keeps sessions one
// millisecond longer than Kafka's default retention. Once closed and past
// the retention, a session is gone from the store (Kafka's in-memory
// session store's rule: end <= stream time - retention), so a later
// record cannot merge with it (compare TestSessionEmitOnCloseMergeAfterEmit).
func TestSessionStoreRetention(t *testing.T) {
	w := window.Session(10 * time.Millisecond)
	top := sessCountTopology(t, w, stream.EmitOnWindowClose, stream.As[string, int64]("s"))
	env := &sessEnv{}
	st := newSessTask(t, top, env)
	defer st.task.Close()
	st.pipe("a", 0)
	st.pipe("b", 10) // [0,0] ends at 10 - gap: open; the store keeps it
	st.pipe("b", 11) // closes [0,0]
	if got, want := st.outputs("output"), []string{"a[0,0]=1@0"}; !slices.Equal(got, want) {
		t.Errorf("emitted %v, want %v", got, want)
	}
	ss := st.task.Store("s")
	var live []string
	for e, err := range ss.AllSessions() {
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, fmt.Sprintf("%s[%d,%d]", e.Key, e.Start, e.End))
	}
	if want := []string{"b[10,11]"}; !slices.Equal(live, want) {
		t.Errorf("store holds %v, want %v", live, want)
	}
	st.pipe("a", 10) // within the gap of the expired [0,0]: a new session
	st.pipe("b", 21) // closes it
	if got, want := st.outputs("output"), []string{"a[10,10]=1@10"}; !slices.Equal(got, want) {
		t.Errorf("emitted %v, want %v", got, want)
	}
}

// After a restart (the store restored from its changelog), the processor
// resumes from the store's stream time: under EmitOnWindowClose the
// sessions it emitted before are not emitted again, and records late for
// that stream time are dropped. Kafka keeps the emitted close time in its
// commit metadata; eddy recomputes it (see SessionWindowedKStream).
func TestSessionRestart(t *testing.T) {
	w := window.Session(10 * time.Millisecond)
	for _, emit := range []stream.EmitStrategy{stream.EmitOnWindowUpdate, stream.EmitOnWindowClose} {
		t.Run(emit.String(), func(t *testing.T) {
			top := sessCountTopology(t, w, emit, stream.As[string, int64]("s"))
			env := &sessEnv{}
			st := newSessTask(t, top, env)
			st.pipe("a", 0)
			st.pipe("b", 12)
			st.pipe("c", 20) // closes a [0,0]; b [12,12] is open
			before := st.outputs("output")
			if err := st.task.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := st.task.Close(); err != nil {
				t.Fatal(err)
			}
			var changelog []stream.RawRecord
			for _, r := range env.sent {
				if r.Topic == "app-s-changelog" {
					changelog = append(changelog, r)
				}
			}
			env2 := &sessEnv{changelog: changelog}
			st2 := newSessTask(t, top, env2)
			defer st2.task.Close()
			st2.pipe("a", 1)  // late at stream time 20 (close time 10)
			st2.pipe("b", 13) // merges into b [12,13]
			st2.pipe("d", 30) // close time 20: b [12,13] closes, c [20,20] not
			after := st2.outputs("output")
			wantBefore := sessOrNot(emit, []string{"a[0,0]=1@0", "b[12,12]=1@12", "c[20,20]=1@20"}, []string{"a[0,0]=1@0"})
			wantAfter := sessOrNot(emit, []string{"b[12,12]=null@12", "b[12,13]=2@13", "d[30,30]=1@30"}, []string{"b[12,13]=2@13"})
			if env2.late != 1 {
				t.Errorf("%d late records after the restart, want 1", env2.late)
			}
			if !slices.Equal(before, wantBefore) || !slices.Equal(after, wantAfter) {
				t.Errorf("before restart %v, want %v; after %v, want %v", before, wantBefore, after, wantAfter)
			}
		})
	}
}
