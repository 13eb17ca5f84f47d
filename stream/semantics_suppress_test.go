package stream_test

// Semantic tests of KTable.Suppress. Inputs and expected outputs come from
// Kafka Streams' SuppressScenarioTest, KTableSuppressProcessorTest,
// SuppressTopologyTest and SuppressionIntegrationTest, named above each
// case. Where eddy differs, the comment says so.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/table"
	"github.com/eddy-streams/eddy/window"
)

// valueCounts is the table of SuppressScenarioTest: a table of "input"
// (no cache, no changelog) regrouped by value and counted.
func valueCounts(b *stream.Builder) stream.KTable[string, int64] {
	tbl := stream.Table(b, "input", strs, stream.Materialized[string, string]{DisableCaching: true, DisableLogging: true})
	return stream.GroupTable(tbl, func(k, v string) (string, string) { return v, k }, stream.Grouped[string, string]{Key: serde.String(), Value: serde.String()}).
		Count(stream.Materialized[string, int64]{})
}

// suppressedCounts builds valueCounts suppressed by s into
// "output-suppressed", and unsuppressed into "output-raw".
func suppressedCounts(t *testing.T, s stream.Suppressed) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	counts := valueCounts(b)
	counts.Suppress(s).ToStream().To("output-suppressed", stream.Produced[string, int64]{})
	counts.ToStream().To("output-raw", stream.Produced[string, int64]{})
	return build(t, b)
}

// countsDriver opens top and returns the input topic and both outputs.
func countsDriver(t *testing.T, top *stream.Topology, opts ...streamtest.Option) (d *streamtest.Driver, in *streamtest.Input[string, string], raw, sup *streamtest.Output[string, int64]) {
	d = open(t, top, opts...)
	return d, streamtest.InputTopic(d, "input", serde.String(), serde.String()),
		streamtest.OutputTopic(d, "output-raw", serde.String(), serde.Int64()),
		streamtest.OutputTopic(d, "output-suppressed", serde.String(), serde.Int64())
}

// forever is Kafka's ofMillis(Long.MAX_VALUE) time limit.
const forever = time.Duration(math.MaxInt64)

// SuppressScenarioTest.shouldImmediatelyEmitEventsWithZeroEmitAfter: a
// zero time limit emits every update at once.
func TestSuppressZeroTimeLimitEmitsImmediately(t *testing.T) {
	top := suppressedCounts(t, stream.UntilTimeLimit(0, stream.Unbounded()))
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		_, in, raw, sup := countsDriver(t, top, opts...)
		pipe(t, in, "k1", "v1", 0)
		pipe(t, in, "k1", "v2", 1)
		pipe(t, in, "k2", "v1", 2)
		expect(t, raw, "v1=1@0", "v1=0@1", "v2=1@1", "v1=1@2")
		expect(t, sup, "v1=1@0", "v1=0@1", "v2=1@1", "v1=1@2")
		pipe(t, in, "x", "x", 3)
		expect(t, raw, "x=1@3")
		expect(t, sup, "x=1@3")
		pipe(t, in, "x", "y", 4)
		expect(t, raw, "x=0@4", "y=1@4")
		expect(t, sup, "x=0@4", "y=1@4")
	})
}

// SuppressScenarioTest.shouldSuppressIntermediateEventsWithTimeLimit: per
// key, the latest update is emitted once stream time reaches the time of
// the first buffered update plus the limit; the buffer time is not reset
// by later updates of the key.
func TestSuppressIntermediateEventsWithTimeLimit(t *testing.T) {
	top := suppressedCounts(t, stream.UntilTimeLimit(2*time.Millisecond, stream.Unbounded()))
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		_, in, raw, sup := countsDriver(t, top, opts...)
		pipe(t, in, "k1", "v1", 0)
		pipe(t, in, "k1", "v2", 1)
		pipe(t, in, "k2", "v1", 2)
		expect(t, raw, "v1=1@0", "v1=0@1", "v2=1@1", "v1=1@2")
		expect(t, sup, "v1=1@2") // v1 was first buffered at 0
		pipe(t, in, "tick", "tick", 3)
		expect(t, raw, "tick=1@3")
		expect(t, sup, "v2=1@1")
		pipe(t, in, "tick", "tock", 4)
		expect(t, raw, "tick=0@4", "tock=1@4")
		expect(t, sup) // tick was first buffered at 3: due at 5
	})
}

// SuppressScenarioTest.shouldSuppressIntermediateEventsWithRecordLimit: a
// full buffer with EmitEarlyWhenFull emits its oldest entries.
func TestSuppressIntermediateEventsWithRecordLimit(t *testing.T) {
	top := suppressedCounts(t, stream.UntilTimeLimit(forever, stream.BufferConfig{MaxRecords: 1}))
	checkEmitEarly(t, top)
}

// SuppressScenarioTest.shouldSuppressIntermediateEventsWithBytesLimit.
// Kafka's limit is 200 bytes, with entries "a little over 100 bytes", most
// of it the name of the repartition topic, which eddy does not count (see
// BufferConfig). Here entries are 38 or 46 bytes (8 buffer time + 2 key +
// 8 per value + 20 context), and the limit that holds one entry but not
// two is 60.
func TestSuppressIntermediateEventsWithBytesLimit(t *testing.T) {
	top := suppressedCounts(t, stream.UntilTimeLimit(forever, stream.BufferConfig{MaxBytes: 60}))
	checkEmitEarly(t, top)
}

func checkEmitEarly(t *testing.T, top *stream.Topology) {
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		_, in, raw, sup := countsDriver(t, top, opts...)
		pipe(t, in, "k1", "v1", 0)
		pipe(t, in, "k1", "v2", 1)
		pipe(t, in, "k2", "v1", 2)
		expect(t, raw, "v1=1@0", "v1=0@1", "v2=1@1", "v1=1@2")
		// Consecutive updates of v1 are merged; the last one stays
		// buffered until another key comes along.
		expect(t, sup, "v1=0@1", "v2=1@1")
		pipe(t, in, "x", "x", 3)
		expect(t, raw, "x=1@3")
		expect(t, sup, "v1=1@2")
	})
}

// SuppressionIntegrationTest.shouldShutdownWhenRecordConstraintIsViolated
// and shouldShutdownWhenBytesConstraintIsViolated (and
// KTableSuppressProcessorTest.suppressShouldShutDownWhenOverRecordCapacity
// / OverByteCapacity): a full buffer with ShutDownWhenFull fails the task.
// Here the second input record already fills it (v1 and v2 buffered).
func TestSuppressShutsDownWhenFull(t *testing.T) {
	for _, c := range []struct {
		name string
		buf  stream.BufferConfig
	}{
		{"records", stream.BufferConfig{MaxRecords: 1, OnFull: stream.ShutDownWhenFull}},
		{"bytes", stream.BufferConfig{MaxBytes: 60, OnFull: stream.ShutDownWhenFull}},
	} {
		t.Run(c.name, func(t *testing.T) {
			top := suppressedCounts(t, stream.UntilTimeLimit(forever, c.buf))
			d, in, _, sup := countsDriver(t, top)
			pipe(t, in, "k1", "v1", 0)
			err := in.Pipe("k1", "v2", 1)
			var te *stream.TaskError
			if !errors.Is(err, stream.ErrSuppressBufferFull) || !errors.As(err, &te) {
				t.Fatalf("err = %v, want a TaskError wrapping ErrSuppressBufferFull", err)
			}
			if te.Node != "KTABLE-SUPPRESS-0000000008" || te.Kind != "processing" {
				t.Errorf("TaskError node %q kind %q", te.Node, te.Kind)
			}
			if !strings.Contains(err.Error(), "exceeded its capacity") {
				t.Errorf("error %q does not say the buffer is full", err)
			}
			if err := in.Pipe("x", "x", 3); !errors.Is(err, stream.ErrSuppressBufferFull) {
				t.Errorf("after the failure: %v", err)
			}
			if !sup.IsEmpty() {
				t.Error("a failed suppression emitted records")
			}
			if !errors.Is(d.Err(), stream.ErrSuppressBufferFull) {
				t.Errorf("driver error %v", d.Err())
			}
		})
	}
}

// tableSuppress builds table "input" suppressed by s into "output".
func tableSuppress(t *testing.T, s stream.Suppressed) (in *streamtest.Input[string, string], out *streamtest.Output[string, string]) {
	t.Helper()
	b := stream.NewBuilder()
	stream.Table(b, "input", strs, stream.Materialized[string, string]{}).Suppress(s).ToStream().To("output", stream.Produced[string, string]{})
	d := open(t, build(t, b))
	return streamtest.InputTopic(d, "input", serde.String(), serde.String()), streamtest.OutputTopic(d, "output", serde.String(), serde.String())
}

// KTableSuppressProcessorTest, through a source table instead of a mock
// context. Kafka's maxRecords(0) is a buffer that is always full; eddy's 0
// is no limit, so the tombstone cases use a zero time limit alone.
func TestSuppressProcessorCases(t *testing.T) {
	day := 24 * time.Hour
	t.Run("zeroTimeLimitShouldImmediatelyEmit", func(t *testing.T) {
		in, out := tableSuppress(t, stream.UntilTimeLimit(0, stream.Unbounded()))
		pipe(t, in, "hey", "7", 5)
		expect(t, out, "hey=7@5")
	})
	t.Run("intermediateSuppressionShouldBufferAndEmitLater", func(t *testing.T) {
		in, out := tableSuppress(t, stream.UntilTimeLimit(time.Millisecond, stream.Unbounded()))
		pipe(t, in, "hey", "1", 0)
		expect(t, out)
		pipe(t, in, "tick", "x", 1)
		expect(t, out, "hey=1@0")
	})
	t.Run("suppressShouldNotDropTombstonesForKTable", func(t *testing.T) {
		in, out := tableSuppress(t, stream.UntilTimeLimit(0, stream.Unbounded()))
		pipe(t, in, "hey", "5", 100)
		tombstone(t, in, "hey", 100)
		expect(t, out, "hey=5@100", "hey=null@100")
	})
	t.Run("tombstoneReplacesBufferedUpdate", func(t *testing.T) {
		// Untimed suppression keeps only the latest update of a key, a
		// delete included, and emits the delete.
		in, out := tableSuppress(t, stream.UntilTimeLimit(10*time.Millisecond, stream.Unbounded()))
		pipe(t, in, "hey", "5", 0)
		tombstone(t, in, "hey", 3)
		pipe(t, in, "tick", "x", 10)
		expect(t, out, "hey=null@3")
	})
	t.Run("suppressShouldEmitWhenOverRecordCapacity", func(t *testing.T) {
		in, out := tableSuppress(t, stream.UntilTimeLimit(100*day, stream.BufferConfig{MaxRecords: 1}))
		pipe(t, in, "hey", "5", 100)
		pipe(t, in, "dummyKey", "5", 101)
		expect(t, out, "hey=5@100")
	})
	t.Run("suppressShouldEmitWhenOverByteCapacity", func(t *testing.T) {
		// hey: 8 + 3 + 1 + 20 = 32 bytes; dummyKey: 37.
		in, out := tableSuppress(t, stream.UntilTimeLimit(100*day, stream.BufferConfig{MaxBytes: 60}))
		pipe(t, in, "hey", "5", 100)
		expect(t, out)
		pipe(t, in, "dummyKey", "5", 101)
		expect(t, out, "hey=5@100")
	})
	t.Run("emitsInBufferTimeThenKeyOrder", func(t *testing.T) {
		in, out := tableSuppress(t, stream.UntilTimeLimit(10*time.Millisecond, stream.Unbounded()))
		pipe(t, in, "b", "1", 0)
		pipe(t, in, "a", "1", 0)
		pipe(t, in, "c", "1", 1)
		pipe(t, in, "b", "2", 5) // keeps b's place (buffer time 0)
		pipe(t, in, "tick", "x", 11)
		expect(t, out, "a=1@0", "b=2@5", "c=1@1")
	})
}

// SuppressScenarioTest.shouldWorkBeforeGroupBy.
func TestSuppressBeforeGroupBy(t *testing.T) {
	b := stream.NewBuilder()
	sup := stream.Table(b, "topic", strs, stream.Materialized[string, string]{}).
		Suppress(stream.UntilTimeLimit(10*time.Millisecond, stream.Unbounded()))
	stream.GroupTable(sup, func(k, v string) (string, string) { return k, v }, stream.Grouped[string, string]{}).
		Count(stream.Materialized[string, int64]{}).
		ToStream().To("output", stream.Produced[string, int64]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.String(), serde.String())
	pipe(t, in, "A", "a", 0)
	pipe(t, in, "tick", "tick", 10)
	expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.Int64()), "A=1@0")
}

// SuppressScenarioTest.shouldWorkBeforeJoinRight and
// shouldWorkBeforeJoinLeft: the other side of a join sees a suppressed
// table as it was last emitted (the value before the buffered updates),
// and the parent table for keys not buffered.
func TestSuppressBeforeJoin(t *testing.T) {
	show := func(v string, ok bool) string {
		if !ok {
			return "null"
		}
		return v
	}
	for _, suppressLeft := range []bool{false, true} {
		name := "right"
		if suppressLeft {
			name = "left"
		}
		t.Run(name, func(t *testing.T) {
			b := stream.NewBuilder()
			left := stream.Table(b, "left", strs, stream.Materialized[string, string]{})
			right := stream.Table(b, "right", strs, stream.Materialized[string, string]{})
			sup := stream.UntilTimeLimit(10*time.Millisecond, stream.Unbounded())
			if suppressLeft {
				left = left.Suppress(sup)
			} else {
				right = right.Suppress(sup)
			}
			stream.OuterJoinTables(left, right, func(_, l, r string, okL, okR bool) string {
				return "(" + show(l, okL) + "," + show(r, okR) + ")"
			}, stream.Materialized[string, string]{}).ToStream().To("output", stream.Produced[string, string]{})
			d := open(t, build(t, b))
			sIn := streamtest.InputTopic(d, "right", serde.String(), serde.String())
			oIn := streamtest.InputTopic(d, "left", serde.String(), serde.String())
			pair := func(s, o string) string { return "(" + o + "," + s + ")" } // suppressed side, other side
			if suppressLeft {
				sIn, oIn = oIn, sIn
				pair = func(s, o string) string { return "(" + s + "," + o + ")" }
			}
			out := streamtest.OutputTopic(d, "output", serde.String(), serde.String())
			pipe(t, sIn, "B", "1", 0)
			pipe(t, sIn, "A", "1", 0)
			expect(t, out) // buffered
			pipe(t, sIn, "tick", "tick", 10)
			expect(t, out, "A="+pair("1", "null")+"@0", "B="+pair("1", "null")+"@0")
			pipe(t, sIn, "A", "2", 11)
			expect(t, out) // buffered
			pipe(t, oIn, "A", "a", 12)
			expect(t, out, "A="+pair("1", "a")+"@12") // the emitted value, not the buffered one
			pipe(t, oIn, "B", "b", 12)
			expect(t, out, "B="+pair("1", "b")+"@12") // B is not buffered: the parent's value
			pipe(t, oIn, "A", "b", 13)
			expect(t, out, "A="+pair("1", "b")+"@13")
			pipe(t, sIn, "tick", "tick1", 21)
			expect(t, out, "tick="+pair("tick1", "null")+"@21", "A="+pair("2", "b")+"@13")
		})
	}
}

// SuppressTopologyTest.shouldUseNumberingForAnonymousSuppressionNode and
// shouldApplyNameToSuppressionNode: the processor is KTABLE-SUPPRESS-<n>
// with store KTABLE-SUPPRESS-STATE-STORE-<n+1>, or the given name with
// store name+"-store".
func TestSuppressTopologyNames(t *testing.T) {
	for _, c := range []struct{ name, proc, store, toStream, sink string }{
		{"", "KTABLE-SUPPRESS-0000000003", "KTABLE-SUPPRESS-STATE-STORE-0000000004", "KTABLE-TOSTREAM-0000000005", "KSTREAM-SINK-0000000006"},
		{"asdf", "asdf", "asdf-store", "KTABLE-TOSTREAM-0000000003", "KSTREAM-SINK-0000000004"},
	} {
		b := stream.NewBuilder()
		s := stream.UntilTimeLimit(time.Second, stream.Unbounded())
		if c.name != "" {
			s = s.WithName(c.name)
		}
		stream.Stream(b, strs, "input").GroupByKey(stream.Grouped[string, string]{}).
			Count(stream.Materialized[string, int64]{}).
			Suppress(s).
			ToStream().To("output", stream.Produced[string, int64]{})
		top := build(t, b)
		describe(t, top, "Topologies:\n"+
			"   Sub-topology: 0\n"+
			"    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n"+
			"      --> KSTREAM-AGGREGATE-0000000002\n"+
			"    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n"+
			"      --> "+c.proc+"\n"+
			"      <-- KSTREAM-SOURCE-0000000000\n"+
			"    Processor: "+c.proc+" (stores: ["+c.store+"])\n"+
			"      --> "+c.toStream+"\n"+
			"      <-- KSTREAM-AGGREGATE-0000000002\n"+
			"    Processor: "+c.toStream+" (stores: [])\n"+
			"      --> "+c.sink+"\n"+
			"      <-- "+c.proc+"\n"+
			"    Sink: "+c.sink+" (topic: output)\n"+
			"      <-- "+c.toStream+"\n\n")
		var info *stream.StoreInfo
		for _, si := range top.Subtopologies("app")[0].Stores {
			if si.Name == c.store {
				info = &si
			}
		}
		if info == nil || !info.Logged || !info.InMemory || info.Kind != stream.KeyValueKind ||
			info.Changelog.Name != "app-"+c.store+"-changelog" || info.Changelog.Configs["cleanup.policy"] != "compact" {
			t.Errorf("buffer store %s: %+v", c.store, info)
		}
	}
}

// SuppressTopologyTest.shouldUseNumberingForAnonymousFinalSuppressionNode
// and shouldApplyNameToFinalSuppressionNode (Kafka maps the windowed keys
// to strings before the sink; this topology writes them as they are).
func TestSuppressFinalTopologyNames(t *testing.T) {
	for _, c := range []struct{ name, proc, store, toStream, sink string }{
		{"", "KTABLE-SUPPRESS-0000000006", "KTABLE-SUPPRESS-STATE-STORE-0000000007", "KTABLE-TOSTREAM-0000000008", "KSTREAM-SINK-0000000009"},
		{"myname", "myname", "myname-store", "KTABLE-TOSTREAM-0000000006", "KSTREAM-SINK-0000000007"},
	} {
		b := stream.NewBuilder()
		s := stream.UntilWindowCloses(stream.Unbounded())
		if c.name != "" {
			s = s.WithName(c.name)
		}
		g := stream.GroupBy(stream.Stream(b, strs, "input"), func(k, _ string) string { return k }, stream.Grouped[string, string]{Key: serde.String(), Value: serde.String()})
		stream.CountSessions(g.WindowedBySession(window.Session(5*time.Millisecond).WithGrace(5*time.Millisecond)), stream.Materialized[string, int64]{Name: "counts", DisableCaching: true}).
			Suppress(s).
			ToStream().To("output-suppressed", stream.Produced[window.Windowed[string], int64]{})
		describe(t, build(t, b), "Topologies:\n"+
			"   Sub-topology: 0\n"+
			"    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n"+
			"      --> KSTREAM-KEY-SELECT-0000000001\n"+
			"    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])\n"+
			"      --> counts-repartition-filter\n"+
			"      <-- KSTREAM-SOURCE-0000000000\n"+
			"    Processor: counts-repartition-filter (stores: [])\n"+
			"      --> counts-repartition-sink\n"+
			"      <-- KSTREAM-KEY-SELECT-0000000001\n"+
			"    Sink: counts-repartition-sink (topic: counts-repartition)\n"+
			"      <-- counts-repartition-filter\n"+
			"\n"+
			"  Sub-topology: 1\n"+
			"    Source: counts-repartition-source (topics: [counts-repartition])\n"+
			"      --> KSTREAM-AGGREGATE-0000000002\n"+
			"    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [counts])\n"+
			"      --> "+c.proc+"\n"+
			"      <-- counts-repartition-source\n"+
			"    Processor: "+c.proc+" (stores: ["+c.store+"])\n"+
			"      --> "+c.toStream+"\n"+
			"      <-- KSTREAM-AGGREGATE-0000000002\n"+
			"    Processor: "+c.toStream+" (stores: [])\n"+
			"      --> "+c.sink+"\n"+
			"      <-- "+c.proc+"\n"+
			"    Sink: "+c.sink+" (topic: output-suppressed)\n"+
			"      <-- "+c.toStream+"\n\n")
	}
}

// Build errors name the operator: UntilWindowCloses needs a windowed table
// (Kafka: "Window close time is only defined for windowed computations")
// and, with limits, a strict buffer (Kafka's type system forbids
// emitEarlyWhenFull there); limits and time limits cannot be negative.
func TestSuppressBuildErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		s    stream.Suppressed
		want string
	}{
		{"not windowed", stream.UntilWindowCloses(stream.Unbounded()), "needs a windowed table"},
		{"negative limit", stream.UntilTimeLimit(-time.Millisecond, stream.Unbounded()), "negative time limit"},
		{"negative records", stream.UntilTimeLimit(0, stream.BufferConfig{MaxRecords: -1}), "negative buffer limit"},
		{"negative bytes", stream.UntilTimeLimit(0, stream.BufferConfig{MaxBytes: -1}), "negative buffer limit"},
		{"bad strategy", stream.UntilTimeLimit(0, stream.BufferConfig{OnFull: 7}), "unknown BufferFullStrategy(7)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := stream.NewBuilder()
			stream.Table(b, "input", strs, stream.Materialized[string, string]{}).Suppress(c.s.WithName("sup"))
			_, err := b.Build()
			if !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), "sup (suppress)") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Build error %v, want one naming sup (suppress) with %q", err, c.want)
			}
		})
	}
}

// ---- final results of windowed tables ----

// windowedCounts builds a count of "input" by key in windows made by
// count, suppressed by s into "output-suppressed" and unsuppressed into
// "output-raw" (keys in the windowed serde ks).
func windowedCounts(t *testing.T, s stream.Suppressed, count func(g stream.KGroupedStream[string, string], m stream.Materialized[string, int64]) stream.KTable[window.Windowed[string], int64]) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	g := stream.GroupBy(stream.Stream(b, strs, "input"), func(k, _ string) string { return k }, stream.Grouped[string, string]{Key: serde.String(), Value: serde.String()})
	counts := count(g, stream.Materialized[string, int64]{Name: "counts", DisableCaching: true})
	counts.Suppress(s).ToStream().To("output-suppressed", stream.Produced[window.Windowed[string], int64]{})
	counts.ToStream().To("output-raw", stream.Produced[window.Windowed[string], int64]{})
	return build(t, b)
}

func timeWindowed(w window.TimeWindows) func(stream.KGroupedStream[string, string], stream.Materialized[string, int64]) stream.KTable[window.Windowed[string], int64] {
	return func(g stream.KGroupedStream[string, string], m stream.Materialized[string, int64]) stream.KTable[window.Windowed[string], int64] {
		return stream.CountWindowed(g.WindowedBy(w), m)
	}
}

// expectWindows reads o's unread records, printed as Kafka prints
// windowed keys: "[key@start/end]=value@timestamp".
func expectWindows(t *testing.T, o *streamtest.Output[window.Windowed[string], int64], want ...string) {
	t.Helper()
	recs, err := o.ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(recs))
	for i, r := range recs {
		v := fmt.Sprint(r.Value)
		if r.ValueNull {
			v = "null"
		}
		got[i] = fmt.Sprintf("[%s@%d/%d]=%s@%d", r.Key.Key, r.Key.Window.Start, r.Key.Window.End, v, r.Timestamp)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("records:\n got %s\nwant %s", strings.Join(got, " "), strings.Join(want, " "))
	}
}

// windowedDriver opens top; keys are read with ks.
func windowedDriver(t *testing.T, top *stream.Topology, ks serde.Serde[window.Windowed[string]]) (in *streamtest.Input[string, string], raw, sup *streamtest.Output[window.Windowed[string], int64]) {
	d := open(t, top)
	return streamtest.InputTopic(d, "input", serde.String(), serde.String()),
		streamtest.OutputTopic(d, "output-raw", ks, serde.Int64()),
		streamtest.OutputTopic(d, "output-suppressed", ks, serde.Int64())
}

// SuppressScenarioTest.shouldSupportFinalResultsForTimeWindows: one
// result per window, when stream time reaches its end plus grace.
func TestSuppressFinalResultsForTimeWindows(t *testing.T) {
	top := windowedCounts(t, stream.UntilWindowCloses(stream.Unbounded()), timeWindowed(window.Tumbling(2*time.Millisecond).WithGrace(time.Millisecond)))
	in, raw, sup := windowedDriver(t, top, window.TimeWindowedSerde(serde.String(), 2*time.Millisecond))
	for _, ts := range []int64{0, 1, 2, 1, 0, 5, 0} { // the last is out of grace: dropped
		pipe(t, in, "k1", "v1", ts)
	}
	expectWindows(t, raw, "[k1@0/2]=1@0", "[k1@0/2]=2@1", "[k1@2/4]=1@2", "[k1@0/2]=3@1", "[k1@0/2]=4@1", "[k1@4/6]=1@5")
	expectWindows(t, sup, "[k1@0/2]=4@1", "[k1@2/4]=1@2")
}

// SuppressScenarioTest.shouldSupportFinalResultsForTimeWindowsWithLargeJump.
func TestSuppressFinalResultsForTimeWindowsWithLargeJump(t *testing.T) {
	top := windowedCounts(t, stream.UntilWindowCloses(stream.Unbounded()), timeWindowed(window.Tumbling(2*time.Millisecond).WithGrace(2*time.Millisecond)))
	in, raw, sup := windowedDriver(t, top, window.TimeWindowedSerde(serde.String(), 2*time.Millisecond))
	for _, ts := range []int64{0, 1, 2, 0, 3, 0, 4, 0, 30} {
		pipe(t, in, "k1", "v1", ts)
	}
	expectWindows(t, raw, "[k1@0/2]=1@0", "[k1@0/2]=2@1", "[k1@2/4]=1@2", "[k1@0/2]=3@1", "[k1@2/4]=2@3", "[k1@0/2]=4@1", "[k1@4/6]=1@4", "[k1@30/32]=1@30")
	expectWindows(t, sup, "[k1@0/2]=4@1", "[k1@2/4]=2@3", "[k1@4/6]=1@4")
}

// SuppressScenarioTest.shouldSupportFinalResultsForSlidingWindows (the
// suppressed output; the raw updates are the sliding aggregation's
// business): windows are emitted in the order they close.
func TestSuppressFinalResultsForSlidingWindows(t *testing.T) {
	top := windowedCounts(t, stream.UntilWindowCloses(stream.Unbounded()), func(g stream.KGroupedStream[string, string], m stream.Materialized[string, int64]) stream.KTable[window.Windowed[string], int64] {
		return stream.CountWindowed(g.WindowedBySliding(window.Sliding(5*time.Millisecond).WithGrace(15*time.Millisecond)), m)
	})
	in, _, sup := windowedDriver(t, top, window.TimeWindowedSerde(serde.String(), 5*time.Millisecond))
	for _, ts := range []int64{10, 11, 10, 13, 10, 24, 5, 7, 90} {
		pipe(t, in, "k1", "v1", ts)
	}
	expectWindows(t, sup, "[k1@5/10]=5@10", "[k1@6/11]=5@11", "[k1@8/13]=5@13", "[k1@11/16]=2@13", "[k1@12/17]=1@13", "[k1@19/24]=1@24")
}

// SuppressScenarioTest.shouldSupportFinalResultsForSessionWindows: a
// session closes at its end plus gap plus grace; the tombstones of merged
// sessions are not emitted (KTableSuppressProcessorTest.
// finalResultsShouldDropTombstonesForSessionWindows).
func TestSuppressFinalResultsForSessionWindows(t *testing.T) {
	top := windowedCounts(t, stream.UntilWindowCloses(stream.Unbounded()), func(g stream.KGroupedStream[string, string], m stream.Materialized[string, int64]) stream.KTable[window.Windowed[string], int64] {
		return stream.CountSessions(g.WindowedBySession(window.Session(5*time.Millisecond)), m)
	})
	in, raw, sup := windowedDriver(t, top, window.SessionWindowedSerde(serde.String()))
	pipe(t, in, "k1", "v1", 0)
	pipe(t, in, "k1", "v1", 5)
	pipe(t, in, "k1", "v1", 1)  // disordered but the session is open
	pipe(t, in, "k2", "v1", 11) // advances stream time
	pipe(t, in, "k1", "v1", 5)  // late: the first session is closed
	pipe(t, in, "k1", "v1", 30)
	expectWindows(t, raw, "[k1@0/0]=1@0", "[k1@0/0]=null@0", "[k1@0/5]=2@5", "[k1@0/5]=null@5", "[k1@0/5]=3@5", "[k2@11/11]=1@11", "[k1@30/30]=1@30")
	expectWindows(t, sup, "[k1@0/5]=3@5", "[k2@11/11]=1@11")
}

// KTableSuppressProcessorTest.finalResultsSuppressionShouldBufferAndEmitAtGraceExpiration
// and finalResultsWithZeroGraceShouldStillBufferUntilTheWindowEnd, through
// a windowed count: a window waits for its end plus grace, even when the
// record is old.
func TestSuppressFinalResultsWaitForWindowEndPlusGrace(t *testing.T) {
	t.Run("grace", func(t *testing.T) {
		top := windowedCounts(t, stream.UntilWindowCloses(stream.Unbounded()), timeWindowed(window.Tumbling(time.Millisecond).WithGrace(time.Millisecond)))
		in, _, sup := windowedDriver(t, top, window.TimeWindowedSerde(serde.String(), time.Millisecond))
		pipe(t, in, "hey", "v", 99)
		pipe(t, in, "dummyKey1", "v", 100) // stream time 100 = window end: still open for 1 ms
		expectWindows(t, sup)
		pipe(t, in, "dummyKey2", "v", 101)
		expectWindows(t, sup, "[hey@99/100]=1@99")
	})
	t.Run("zeroGrace", func(t *testing.T) {
		top := windowedCounts(t, stream.UntilWindowCloses(stream.Unbounded()), timeWindowed(window.Tumbling(100*time.Millisecond)))
		in, _, sup := windowedDriver(t, top, window.TimeWindowedSerde(serde.String(), 100*time.Millisecond))
		pipe(t, in, "hey", "v", 5)
		expectWindows(t, sup)
		pipe(t, in, "dummyKey", "v", 100)
		expectWindows(t, sup, "[hey@0/100]=1@5")
	})
}

// UntilWindowCloses needs a strict buffer: a limited EmitEarlyWhenFull one
// is a Build error; a ShutDownWhenFull one fails the task when it fills.
func TestSuppressFinalResultsBufferLimits(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.Stream(b, strs, "input").GroupByKey(stream.Grouped[string, string]{})
	stream.CountWindowed(g.WindowedBy(window.Tumbling(10*time.Millisecond)), stream.Materialized[string, int64]{}).
		Suppress(stream.UntilWindowCloses(stream.BufferConfig{MaxRecords: 10}).WithName("final"))
	if _, err := b.Build(); !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), "final (suppress)") || !strings.Contains(err.Error(), "strict buffer") {
		t.Errorf("Build error %v", err)
	}

	top := windowedCounts(t, stream.UntilWindowCloses(stream.BufferConfig{MaxRecords: 2, OnFull: stream.ShutDownWhenFull}), timeWindowed(window.Tumbling(10*time.Millisecond)))
	in, _, sup := windowedDriver(t, top, window.TimeWindowedSerde(serde.String(), 10*time.Millisecond))
	pipe(t, in, "a", "v", 1)
	pipe(t, in, "b", "v", 2)
	pipe(t, in, "a", "v", 3) // updates a: still two windows
	if err := in.Pipe("c", "v", 4); !errors.Is(err, stream.ErrSuppressBufferFull) {
		t.Errorf("third window: %v, want ErrSuppressBufferFull", err)
	}
	expectWindows(t, sup)
}

// ---- restart ----

// memEnv is a TaskEnv keeping stores in memory and every record sent.
type memEnv struct {
	sent     []stream.RawRecord
	restore  map[string][]stream.RawRecord // changelog records to restore stores from
	restored map[string]int                // records restored per store
}

func (e *memEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	info.InMemory = true
	s, err := stream.OpenStateStore(info, "", table.BadgerOptions{})
	if err != nil {
		return nil, err
	}
	if recs := e.restore[info.Changelog.Name]; len(recs) > 0 {
		if err := stream.RestoreChangelog(info, s, recs); err != nil {
			return nil, err
		}
		e.restored[info.Name] = len(recs)
	}
	return s, nil
}

func (e *memEnv) Send(rec stream.RawRecord) error {
	rec.Offset = int64(len(e.sent))
	e.sent = append(e.sent, rec)
	return nil
}

// topic returns the records sent to topic.
func (e *memEnv) topic(name string) []stream.RawRecord {
	var out []stream.RawRecord
	for _, r := range e.sent {
		if r.Topic == name {
			out = append(out, r)
		}
	}
	return out
}

// runTask feeds "input" records (key=value@ts) to a new task over env and
// closes it cleanly.
func runTask(t *testing.T, top *stream.Topology, env *memEnv, offset int64, recs ...string) error {
	t.Helper()
	task, err := top.NewTask(stream.TaskConfig{ApplicationID: "app", Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		return err
	}
	for i, r := range recs {
		var k, v string
		var ts int64
		if _, err := fmt.Sscanf(strings.Replace(strings.Replace(r, "=", " ", 1), "@", " ", 1), "%s %s %d", &k, &v, &ts); err != nil {
			t.Fatal(err)
		}
		if err := task.Add(stream.RawRecord{Topic: "input", Offset: offset + int64(i), Key: []byte(k), Value: []byte(v), Timestamp: ts}); err != nil {
			t.Fatal(err)
		}
		if _, err := task.Process(1); err != nil {
			t.Fatal(err)
		}
	}
	if err := task.Flush(); err != nil {
		t.Fatal(err)
	}
	return task.Close()
}

// outputs decodes the records of topic as key=value@ts.
func outputs(recs []stream.RawRecord) string {
	var out []string
	for _, r := range recs {
		v := string(r.Value)
		if r.Value == nil {
			v = "null"
		}
		out = append(out, fmt.Sprintf("%s=%s@%d", r.Key, v, r.Timestamp))
	}
	return strings.Join(out, " ")
}

// A task that closes with a non-empty buffer leaves it in the changelog; a
// new task restored from the changelog emits the buffered updates when
// stream time reaches them, exactly once (Kafka's
// SuppressionDurabilityIntegrationTest, without a broker).
func TestSuppressBufferSurvivesRestart(t *testing.T) {
	b := stream.NewBuilder()
	stream.Table(b, "input", strs, stream.Materialized[string, string]{Name: "tbl"}).
		Suppress(stream.UntilTimeLimit(10*time.Millisecond, stream.Unbounded()).WithName("sup")).
		ToStream().To("output", stream.Produced[string, string]{})
	top := build(t, b)
	const changelog = "app-sup-store-changelog"

	first := &memEnv{}
	if err := runTask(t, top, first, 0, "A=a1@0", "B=b@1", "A=a2@2"); err != nil {
		t.Fatal(err)
	}
	if got := outputs(first.topic("output")); got != "" {
		t.Fatalf("first task emitted %s", got)
	}
	log := first.topic(changelog)
	if len(log) != 3 {
		t.Fatalf("changelog has %d records, want 3 (one per update)", len(log))
	}

	// Restore from the changelog, as the runtime does on another worker.
	second := &memEnv{restore: map[string][]stream.RawRecord{changelog: log, "app-tbl-changelog": first.topic("app-tbl-changelog")}, restored: map[string]int{}}
	if err := runTask(t, top, second, 3, "C=c@11", "D=d@30"); err != nil {
		t.Fatal(err)
	}
	if second.restored["sup-store"] != 3 {
		t.Errorf("restored %d buffer records", second.restored["sup-store"])
	}
	// A (buffered at 0, latest a2@2) and B (1) are due at 11; C at 21.
	if got, want := outputs(second.topic("output")), "A=a2@2 B=b@1 C=c@11"; got != want {
		t.Errorf("after restart: %s, want %s", got, want)
	}
	// Emitting deletes the entries: tombstones in the changelog.
	if got, want := changelogShape(second.topic(changelog)), "C=?@11 A=null@2 B=null@1 D=?@30 C=null@11"; got != want {
		t.Errorf("second changelog: %s, want %s", got, want)
	}

	// A third task restored from both changelogs emits only D.
	third := &memEnv{restore: map[string][]stream.RawRecord{changelog: append(log, second.topic(changelog)...)}, restored: map[string]int{}}
	if err := runTask(t, top, third, 5, "E=e@100"); err != nil {
		t.Fatal(err)
	}
	if got, want := outputs(third.topic("output")), "D=d@30"; got != want {
		t.Errorf("after second restart: %s, want %s", got, want)
	}
}

// A windowed count suppressed until its windows close, restarted with
// windows still open: the new task, restored from the changelogs, emits
// each window's final result once.
func TestSuppressFinalResultsSurviveRestart(t *testing.T) {
	b := stream.NewBuilder()
	counts := stream.CountWindowed(stream.Stream(b, strs, "input").GroupByKey(stream.Grouped[string, string]{}).
		WindowedBy(window.Tumbling(10*time.Millisecond)), stream.Materialized[string, int64]{Name: "counts"})
	final := counts.Suppress(stream.UntilWindowCloses(stream.Unbounded()).WithName("final"))
	stream.Map(final.ToStream(), func(k window.Windowed[string], v int64) (string, string) {
		return fmt.Sprintf("[%s@%d/%d]", k.Key, k.Window.Start, k.Window.End), fmt.Sprint(v)
	}).To("output", stream.Produced[string, string]{})
	top := build(t, b)
	logs := []string{"app-counts-changelog", "app-final-store-changelog"}

	first := &memEnv{}
	if err := runTask(t, top, first, 0, "A=x@1", "B=x@3", "A=x@5"); err != nil {
		t.Fatal(err)
	}
	if got := outputs(first.topic("output")); got != "" {
		t.Fatalf("first task emitted %s", got)
	}
	restore := func(envs ...*memEnv) *memEnv {
		e := &memEnv{restore: map[string][]stream.RawRecord{}, restored: map[string]int{}}
		for _, prev := range envs {
			for _, l := range logs {
				e.restore[l] = append(e.restore[l], prev.topic(l)...)
			}
		}
		return e
	}
	second := restore(first)
	if err := runTask(t, top, second, 3, "A=x@12", "B=x@15"); err != nil {
		t.Fatal(err)
	}
	if got, want := outputs(second.topic("output")), "[A@0/10]=2@5 [B@0/10]=1@3"; got != want {
		t.Errorf("after restart: %s, want %s", got, want)
	}
	third := restore(first, second)
	if err := runTask(t, top, third, 5, "C=x@25"); err != nil {
		t.Fatal(err)
	}
	if got, want := outputs(third.topic("output")), "[A@10/20]=1@12 [B@10/20]=1@15"; got != want {
		t.Errorf("after second restart: %s, want %s", got, want)
	}
}

// changelogShape prints records as key=?@ts, or key=null@ts for
// tombstones.
func changelogShape(recs []stream.RawRecord) string {
	var out []string
	for _, r := range recs {
		v := "?"
		if r.Value == nil {
			v = "null"
		}
		out = append(out, fmt.Sprintf("%s=%s@%d", r.Key, v, r.Timestamp))
	}
	return strings.Join(out, " ")
}

// A changelog value that is not a buffer entry fails the task's Init with
// an error naming the store, not a panic.
func TestSuppressMalformedChangelog(t *testing.T) {
	b := stream.NewBuilder()
	stream.Table(b, "input", strs, stream.Materialized[string, string]{}).
		Suppress(stream.UntilTimeLimit(time.Millisecond, stream.Unbounded()).WithName("sup")).
		ToStream().To("output", stream.Produced[string, string]{})
	top := build(t, b)
	for _, v := range [][]byte{{}, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, append(make([]byte, 18), 0xff, 0xff)} {
		env := &memEnv{restore: map[string][]stream.RawRecord{"app-sup-store-changelog": {{Key: []byte("k"), Value: v}}}, restored: map[string]int{}}
		err := runTask(t, top, env, 0)
		if err == nil || !strings.Contains(err.Error(), "sup-store") {
			t.Errorf("value %x: Init error %v", v, err)
		}
	}
}

// FuzzSuppressChangelog restores a suppression buffer from one arbitrary
// changelog value and runs a record through it: a malformed value must
// fail Init with an error, never panic; a well-formed one must be emitted
// exactly when due.
func FuzzSuppressChangelog(f *testing.F) {
	b := stream.NewBuilder()
	stream.Table(b, "input", strs, stream.Materialized[string, string]{}).
		Suppress(stream.UntilTimeLimit(time.Millisecond, stream.Unbounded()).WithName("sup")).
		ToStream().To("output", stream.Produced[string, string]{})
	top, err := b.Build()
	if err != nil {
		f.Fatal(err)
	}
	// A real entry: the changelog of a task that buffered A=a@0 with a
	// header, then B=b@0 (its prior value is a's).
	seed := &memEnv{}
	task, err := top.NewTask(stream.TaskConfig{ApplicationID: "app", Env: seed})
	if err != nil {
		f.Fatal(err)
	}
	if err := task.Init(); err != nil {
		f.Fatal(err)
	}
	_ = task.Add(stream.RawRecord{Topic: "input", Key: []byte("A"), Value: []byte("a"), Headers: []stream.Header{{Key: "h", Value: []byte("v")}, {Key: "n"}}})
	_ = task.Add(stream.RawRecord{Topic: "input", Offset: 1, Key: []byte("A"), Value: []byte("b")})
	if _, err := task.Process(2); err != nil {
		f.Fatal(err)
	}
	_ = task.Close()
	for _, r := range seed.topic("app-sup-store-changelog") {
		f.Add(r.Value)
	}
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		env := &memEnv{restore: map[string][]stream.RawRecord{"app-sup-store-changelog": {{Key: []byte("k"), Value: v, Timestamp: 0}}}, restored: map[string]int{}}
		if err := runTask(t, top, env, 0, "tick=x@1000"); err != nil {
			if !strings.Contains(err.Error(), "sup-store") {
				t.Errorf("Init error does not name the store: %v", err)
			}
			return
		}
		// Well-formed: due when its buffer time (bytes 1-8) is at most
		// 1000 - 1 ms.
		due := int64(binary.BigEndian.Uint64(v[1:9])) <= 999
		if out := env.topic("output"); due != (len(out) > 0 && string(out[0].Key) == "k") {
			t.Errorf("restored entry due %v, emitted %s", due, outputs(out))
		}
	})
}

// Suppress a table of clicks so that each user's count is emitted at most
// once per 10 ms of stream time.
func ExampleKTable_Suppress() {
	b := stream.NewBuilder()
	stream.Stream(b, stream.With(serde.String(), serde.String()), "clicks").
		GroupByKey(stream.Grouped[string, string]{}).
		Count(stream.Materialized[string, int64]{}).
		Suppress(stream.UntilTimeLimit(10*time.Millisecond, stream.Unbounded())).
		ToStream().To("click-counts", stream.Produced[string, int64]{})
	top, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := streamtest.New(top)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	in := streamtest.InputTopic(d, "clicks", serde.String(), serde.String())
	out := streamtest.OutputTopic(d, "click-counts", serde.String(), serde.Int64())
	for _, ts := range []int64{0, 3, 7} {
		_ = in.Pipe("alice", "/home", ts)
	}
	_ = in.Pipe("bob", "/home", 12) // stream time 12: alice's first update (at 0) is due
	printRecords(out)
	// Output:
	// alice=3@7
}
