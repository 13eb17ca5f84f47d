package stream_test

// Semantic tests of aggregations: grouped streams (count, reduce,
// aggregate), grouped tables (count, reduce, aggregate with subtractors),
// cogroups, and the topology descriptions they produce. Inputs and
// expected outputs come from Kafka Streams' tests, named above each case;
// each runs with the record cache on and off.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// stored returns the value and timestamp of key in store name.
func stored[K, V any](t *testing.T, d *streamtest.Driver, name string, ks serde.Serde[K], vs serde.Serde[V], key K) string {
	t.Helper()
	if _, err := streamtest.KeyValueStore(d, name, serde.String(), serde.Bytes()); err != nil { // flushes the caches
		t.Fatal(err)
	}
	kb, err := ks.Serialize("", key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := d.Store(name).Get(kb)
	if err != nil {
		t.Fatal(err)
	}
	if raw == nil {
		return "absent"
	}
	vb, ts, err := stream.DecodeStoreValue(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vs.Deserialize("", vb)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%v@%d", v, ts)
}

func describe(t *testing.T, top *stream.Topology, want string) {
	t.Helper()
	if got := top.Describe().String(); got != want {
		t.Errorf("describe:\n%s\nwant:\n%s", got, want)
	}
}

// ---- grouped streams ----

// processData of KGroupedStreamImplTest; the last record has a null value.
func processData(t *testing.T, d *streamtest.Driver) {
	in := streamtest.InputTopic(d, "topic", serde.String(), serde.String())
	pipe(t, in, "1", "A", 5)
	pipe(t, in, "2", "B", 1)
	pipe(t, in, "1", "C", 3)
	pipe(t, in, "1", "D", 10)
	pipe(t, in, "3", "E", 8)
	pipe(t, in, "3", "F", 9)
	tombstone(t, in, "3", 11)
}

// KGroupedStreamImplTest: shouldCountAndMaterializeResults,
// shouldReduceAndMaterializeResults, shouldAggregateAndMaterializeResults,
// shouldAggregateWithDefaultSerdes and shouldLogAndMeasureSkipsIn*: the
// store holds each key's result with the largest timestamp folded in; the
// null value is dropped and counted.
func TestGroupByKeyAggregations(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.Stream(b, strs, "topic").GroupByKey(stream.Grouped[string, string]{Key: serde.String(), Value: serde.String()})
	g.Count(stream.As[string, int64]("count")).ToStream().To("count-out", stream.Produced[string, int64]{})
	g.Reduce(func(agg, v string) string { return agg + "+" + v }, stream.As[string, string]("reduce"))
	stream.Aggregate(g, func() string { return "0" }, func(_ string, v, agg string) string { return agg + "+" + v }, stream.As[string, string]("aggregate")).
		ToStream().To("aggregate-out", stream.Produced[string, string]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		processData(t, d)
		for _, c := range []struct{ key, count, reduce, aggregate string }{
			{"1", "3@10", "A+C+D@10", "0+A+C+D@10"},
			{"2", "1@1", "B@1", "0+B@1"},
			{"3", "2@9", "E+F@9", "0+E+F@9"},
		} {
			if got := stored(t, d, "count", serde.String(), serde.Int64(), c.key); got != c.count {
				t.Errorf("count %s: %s, want %s", c.key, got, c.count)
			}
			if got := stored(t, d, "reduce", serde.String(), serde.String(), c.key); got != c.reduce {
				t.Errorf("reduce %s: %s, want %s", c.key, got, c.reduce)
			}
			if got := stored(t, d, "aggregate", serde.String(), serde.String(), c.key); got != c.aggregate {
				t.Errorf("aggregate %s: %s, want %s", c.key, got, c.aggregate)
			}
		}
		expect(t, streamtest.OutputTopic(d, "count-out", serde.String(), serde.Int64()),
			"1=1@5", "2=1@1", "1=2@5", "1=3@10", "3=1@8", "3=2@9")
		expect(t, streamtest.OutputTopic(d, "aggregate-out", serde.String(), serde.String()),
			"1=0+A@5", "2=0+B@1", "1=0+A+C@5", "1=0+A+C+D@10", "3=0+E@8", "3=0+E+F@9")
		if n := d.Dropped("null-key-or-value"); n != 3 {
			t.Errorf("dropped %d null values, want 3 (one per aggregation)", n)
		}
	})
}

// wordCount is Kafka's WordCountDemo: flatMapValues, groupBy, count.
func wordCount(b *stream.Builder) {
	lines := stream.Stream(b, strs, "streams-plaintext-input")
	words := stream.FlatMapValues(lines, func(_ string, line string) []string {
		return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' })
	})
	stream.GroupBy(words, func(_, w string) string { return w }, stream.Grouped[string, string]{}).
		Count(stream.Materialized[string, int64]{}).
		ToStream().To("streams-wordcount-output", stream.Produced[string, int64]{})
}

// WordCountDemoTest.testOneWord and testCountListOfWords (groupBy
// repartitions; each word's latest count). The description follows
// Kafka's naming: the repartition topic is named after the generated
// store, so its nodes take generated names too.
func TestGroupByCount(t *testing.T) {
	b := stream.NewBuilder()
	wordCount(b)
	top := build(t, b)
	describe(t, top, "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [streams-plaintext-input])\n"+
		"      --> KSTREAM-FLATMAPVALUES-0000000001\n"+
		"    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])\n"+
		"      --> KSTREAM-KEY-SELECT-0000000002\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n"+
		"    Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])\n"+
		"      --> KSTREAM-FILTER-0000000006\n"+
		"      <-- KSTREAM-FLATMAPVALUES-0000000001\n"+
		"    Processor: KSTREAM-FILTER-0000000006 (stores: [])\n"+
		"      --> KSTREAM-SINK-0000000005\n"+
		"      <-- KSTREAM-KEY-SELECT-0000000002\n"+
		"    Sink: KSTREAM-SINK-0000000005 (topic: KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition)\n"+
		"      <-- KSTREAM-FILTER-0000000006\n"+
		"\n"+
		"  Sub-topology: 1\n"+
		"    Source: KSTREAM-SOURCE-0000000007 (topics: [KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition])\n"+
		"      --> KSTREAM-AGGREGATE-0000000004\n"+
		"    Processor: KSTREAM-AGGREGATE-0000000004 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000003])\n"+
		"      --> KTABLE-TOSTREAM-0000000008\n"+
		"      <-- KSTREAM-SOURCE-0000000007\n"+
		"    Processor: KTABLE-TOSTREAM-0000000008 (stores: [])\n"+
		"      --> KSTREAM-SINK-0000000009\n"+
		"      <-- KSTREAM-AGGREGATE-0000000004\n"+
		"    Sink: KSTREAM-SINK-0000000009 (topic: streams-wordcount-output)\n"+
		"      <-- KTABLE-TOSTREAM-0000000008\n\n")
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "streams-plaintext-input", serde.String(), serde.String())
		out := streamtest.OutputTopic(d, "streams-wordcount-output", serde.String(), serde.Int64())
		if err := in.PipeValue("Hello", 0); err != nil {
			t.Fatal(err)
		}
		expect(t, out, "hello=1@0")
		for _, l := range []string{"Apache   Kafka Streams   Example", "Using  \t\t Kafka   Streams\tTest Utils", "Reading and Writing Kafka Topic"} {
			if err := in.PipeValue(l, 0); err != nil {
				t.Fatal(err)
			}
		}
		m, err := streamtest.ReadKeyValuesToMap(out)
		want := map[string]int64{"apache": 1, "kafka": 3, "streams": 2, "example": 1, "using": 1, "test": 1, "utils": 1, "reading": 1, "and": 1, "writing": 1, "topic": 1}
		if err != nil || len(m) != len(want) {
			t.Fatalf("counts %v %v", m, err)
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s: %d, want %d", k, m[k], v)
			}
		}
	})
}

// TopologyTest.kGroupedStreamZeroArgCountShouldPreserveTopologyStructure
// and kGroupedStreamNamedMaterializedCountShouldPreserveTopologyStructure.
func TestDescribeGroupedStreamCount(t *testing.T) {
	b := stream.NewBuilder()
	stream.Stream(b, strs, "input-topic").GroupByKey(stream.Grouped[string, string]{}).Count(stream.Materialized[string, int64]{})
	describe(t, build(t, b), "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n"+
		"      --> KSTREAM-AGGREGATE-0000000002\n"+
		"    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n"+
		"      --> none\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n\n")
	b = stream.NewBuilder()
	stream.Stream(b, strs, "input-topic").GroupByKey(stream.Grouped[string, string]{}).
		Count(stream.Materialized[string, int64]{Name: "count-store", InMemory: true})
	describe(t, build(t, b), "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n"+
		"      --> KSTREAM-AGGREGATE-0000000001\n"+
		"    Processor: KSTREAM-AGGREGATE-0000000001 (stores: [count-store])\n"+
		"      --> none\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n\n")
}

// KStreamImplTest.shouldSupportStreamTableJoinWithKStreamToKTable: the
// description (nodes ordered as Kafka orders them) and the joins.
func TestDescribeStreamTableJoin(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, strs, "streamTopic")
	table := stream.Stream(b, strs, "tableTopic").ToTable(stream.Materialized[string, string]{})
	stream.JoinTable(s, table, func(_ string, v, vt string) string { return v + "+" + vt }, stream.Joined[string, string]{}).
		To("output", stream.Produced[string, string]{})
	top := build(t, b)
	describe(t, top, "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [streamTopic])\n"+
		"      --> KSTREAM-JOIN-0000000004\n"+
		"    Processor: KSTREAM-JOIN-0000000004 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000003])\n"+
		"      --> KSTREAM-SINK-0000000005\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n"+
		"    Source: KSTREAM-SOURCE-0000000001 (topics: [tableTopic])\n"+
		"      --> KSTREAM-TOTABLE-0000000002\n"+
		"    Sink: KSTREAM-SINK-0000000005 (topic: output)\n"+
		"      <-- KSTREAM-JOIN-0000000004\n"+
		"    Processor: KSTREAM-TOTABLE-0000000002 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000003])\n"+
		"      --> none\n"+
		"      <-- KSTREAM-SOURCE-0000000001\n\n")
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		left := streamtest.InputTopic(d, "streamTopic", serde.String(), serde.String())
		right := streamtest.InputTopic(d, "tableTopic", serde.String(), serde.String())
		out := streamtest.OutputTopic(d, "output", serde.String(), serde.String())
		pipe(t, right, "lhs1", "rhsValue1", 0)
		pipe(t, right, "rhs2", "rhsValue2", 0)
		pipe(t, right, "lhs3", "rhsValue3", 0)
		expect(t, out)
		pipe(t, left, "lhs1", "lhsValue1", 0)
		pipe(t, left, "lhs2", "lhsValue2", 0)
		expect(t, out, "lhs1=lhsValue1+rhsValue1@0")
		pipe(t, left, "lhs3", "lhsValue3", 0)
		expect(t, out, "lhs3=lhsValue3+rhsValue3@0")
		pipe(t, left, "lhs1", "lhsValue4", 0)
		expect(t, out, "lhs1=lhsValue4+rhsValue1@0")
	})
}

// Two cached stores in a row in one sub-topology (count → toStream →
// toTable): the first store's flush writes into the second while the
// cache is flushing. Results must be those without a cache.
func TestChainedCachedStores(t *testing.T) {
	b := stream.NewBuilder()
	stream.Stream(b, strs, "in").GroupByKey(stream.Grouped[string, string]{}).
		Count(stream.Materialized[string, int64]{}).ToStream().
		ToTable(stream.As[string, int64]("latest")).ToStream().
		To("out", stream.Produced[string, int64]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "in", serde.String(), serde.String())
		pipe(t, in, "a", "x", 1)
		pipe(t, in, "b", "x", 2)
		pipe(t, in, "a", "x", 3)
		expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.Int64()), "a=1@1", "b=1@2", "a=2@3")
		if got := stored(t, d, "latest", serde.String(), serde.Int64(), "a"); got != "2@3" {
			t.Errorf("latest a: %s", got)
		}
	})
}

// ---- grouped tables ----

func appendAdder(_ string, v, agg string) string   { return agg + "+" + v }
func appendRemover(_ string, v, agg string) string { return agg + "-" + v }

// KTableAggregateTest.testAggBasic: the key does not change, so each
// update subtracts and adds in one step (one output per update).
func TestTableAggregateBasic(t *testing.T) {
	b := stream.NewBuilder()
	table := stream.Table(b, "topic1", strs, stream.Materialized[string, string]{})
	g := stream.GroupTable(table, func(k, v string) (string, string) { return k, v }, stream.Grouped[string, string]{})
	stream.AggregateTable(g, func() string { return "0" }, appendAdder, appendRemover, stream.As[string, string]("topic1-Canonized")).
		ToStream().To("out", stream.Produced[string, string]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "topic1", serde.String(), serde.String())
		for _, r := range []struct {
			k, v string
			ts   int64
		}{{"A", "1", 10}, {"B", "2", 15}, {"A", "3", 20}, {"B", "4", 18}, {"C", "5", 5}, {"D", "6", 25}, {"B", "7", 15}, {"C", "8", 10}} {
			pipe(t, in, r.k, r.v, r.ts)
		}
		expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.String()),
			"A=0+1@10", "B=0+2@15", "A=0+1-1+3@20", "B=0+2-2+4@18", "C=0+5@5", "D=0+6@25", "B=0+2-2+4-4+7@18", "C=0+5-5+8@10")
	})
}

// KTableAggregateTest.testAggRepartition: rows re-keyed by value; a tombstone
// subtracts; keys from different rows move between groups; a null key
// (here a nil *string with a Nullable serde) and a row the mapper rejects
// are left out.
func TestTableAggregateRepartition(t *testing.T) {
	b := stream.NewBuilder()
	table := stream.Table(b, "topic1", strs, stream.Materialized[string, string]{})
	g := stream.GroupTable(table, func(k, v string) (*string, string) {
		if k == "null" || k == "NULL" {
			return nil, v
		}
		return &v, v
	}, stream.Grouped[*string, string]{Key: serde.Nullable(serde.String())})
	stream.AggregateTable(g, func() string { return "0" },
		func(_ *string, v, agg string) string { return agg + "+" + v },
		func(_ *string, v, agg string) string { return agg + "-" + v },
		stream.As[*string, string]("topic1-Canonized")).
		ToStream().To("out", stream.Produced[*string, string]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "topic1", serde.String(), serde.String())
		pipe(t, in, "A", "1", 10)
		tombstone(t, in, "A", 15)
		pipe(t, in, "A", "1", 12)
		pipe(t, in, "B", "2", 20)
		pipe(t, in, "null", "3", 25)
		pipe(t, in, "B", "4", 23)
		pipe(t, in, "NULL", "5", 24)
		pipe(t, in, "B", "7", 22)
		expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.String()),
			"1=0+1@10", "1=0+1-1@15", "1=0+1-1+1@15", "2=0+2@20", "2=0+2-2@23", "4=0+4@23", "4=0+4-4@23", "7=0+7@22")
		if n := d.Dropped("null-key"); n != 2 {
			t.Errorf("null-key drops %d, want 2", n)
		}
	})
}

// KTableAggregateTest.testCount and testCountWithInternalStore, and
// KStreamImplTest.shouldSupportGroupByCountWithKStreamToKTable with its
// description.
func TestTableCount(t *testing.T) {
	b := stream.NewBuilder()
	stream.GroupTable(stream.Stream(b, strs, "input").ToTable(stream.Materialized[string, string]{}),
		func(_, v string) (string, string) { return v, v }, stream.Grouped[string, string]{Key: serde.String(), Value: serde.String()}).
		Count(stream.Materialized[string, int64]{}).
		ToStream().To("output", stream.Produced[string, int64]{})
	top := build(t, b)
	describe(t, top, "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n"+
		"      --> KSTREAM-TOTABLE-0000000001\n"+
		"    Processor: KSTREAM-TOTABLE-0000000001 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000002])\n"+
		"      --> KTABLE-SELECT-0000000003\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n"+
		"    Processor: KTABLE-SELECT-0000000003 (stores: [])\n"+
		"      --> KSTREAM-SINK-0000000005\n"+
		"      <-- KSTREAM-TOTABLE-0000000001\n"+
		"    Sink: KSTREAM-SINK-0000000005 (topic: KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition)\n"+
		"      <-- KTABLE-SELECT-0000000003\n"+
		"\n"+
		"  Sub-topology: 1\n"+
		"    Source: KSTREAM-SOURCE-0000000006 (topics: [KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition])\n"+
		"      --> KTABLE-AGGREGATE-0000000007\n"+
		"    Processor: KTABLE-AGGREGATE-0000000007 (stores: [KTABLE-AGGREGATE-STATE-STORE-0000000004])\n"+
		"      --> KTABLE-TOSTREAM-0000000008\n"+
		"      <-- KSTREAM-SOURCE-0000000006\n"+
		"    Processor: KTABLE-TOSTREAM-0000000008 (stores: [])\n"+
		"      --> KSTREAM-SINK-0000000009\n"+
		"      <-- KTABLE-AGGREGATE-0000000007\n"+
		"    Sink: KSTREAM-SINK-0000000009 (topic: output)\n"+
		"      <-- KTABLE-TOSTREAM-0000000008\n\n")
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
		pipe(t, in, "A", "green", 10)
		pipe(t, in, "B", "green", 9)
		pipe(t, in, "A", "blue", 12)
		pipe(t, in, "C", "yellow", 15)
		pipe(t, in, "D", "green", 11)
		expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.Int64()),
			"green=1@10", "green=2@10", "green=1@12", "blue=1@12", "yellow=1@15", "green=2@12")
		// Counts never go below zero: a tombstone for a row that was never
		// counted subtracts nothing; the last row leaving keeps count 0.
		tombstone(t, in, "X", 16)
		tombstone(t, in, "C", 17)
		expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.Int64()), "yellow=0@17")
		tombstone(t, in, "C", 18)
		expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.Int64()))
	})
}

// TopologyTest.tableZeroArgCountShouldPreserveTopologyStructure and
// tableNamedMaterializedCountShouldPreserveTopologyStructure.
func TestDescribeTableCount(t *testing.T) {
	for _, c := range []struct {
		m    stream.Materialized[string, int64]
		want string
	}{
		{stream.Materialized[string, int64]{}, "Topologies:\n" +
			"   Sub-topology: 0\n" +
			"    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])\n" +
			"      --> KTABLE-SOURCE-0000000002\n" +
			"    Processor: KTABLE-SOURCE-0000000002 (stores: [input-topic-STATE-STORE-0000000000])\n" +
			"      --> KTABLE-SELECT-0000000003\n" +
			"      <-- KSTREAM-SOURCE-0000000001\n" +
			"    Processor: KTABLE-SELECT-0000000003 (stores: [])\n" +
			"      --> KSTREAM-SINK-0000000005\n" +
			"      <-- KTABLE-SOURCE-0000000002\n" +
			"    Sink: KSTREAM-SINK-0000000005 (topic: KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition)\n" +
			"      <-- KTABLE-SELECT-0000000003\n" +
			"\n" +
			"  Sub-topology: 1\n" +
			"    Source: KSTREAM-SOURCE-0000000006 (topics: [KTABLE-AGGREGATE-STATE-STORE-0000000004-repartition])\n" +
			"      --> KTABLE-AGGREGATE-0000000007\n" +
			"    Processor: KTABLE-AGGREGATE-0000000007 (stores: [KTABLE-AGGREGATE-STATE-STORE-0000000004])\n" +
			"      --> none\n" +
			"      <-- KSTREAM-SOURCE-0000000006\n" +
			"\n"},
		{stream.Materialized[string, int64]{Name: "count-store", InMemory: true}, "Topologies:\n" +
			"   Sub-topology: 0\n" +
			"    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic])\n" +
			"      --> KTABLE-SOURCE-0000000002\n" +
			"    Processor: KTABLE-SOURCE-0000000002 (stores: [input-topic-STATE-STORE-0000000000])\n" +
			"      --> KTABLE-SELECT-0000000003\n" +
			"      <-- KSTREAM-SOURCE-0000000001\n" +
			"    Processor: KTABLE-SELECT-0000000003 (stores: [])\n" +
			"      --> KSTREAM-SINK-0000000004\n" +
			"      <-- KTABLE-SOURCE-0000000002\n" +
			"    Sink: KSTREAM-SINK-0000000004 (topic: count-store-repartition)\n" +
			"      <-- KTABLE-SELECT-0000000003\n" +
			"\n" +
			"  Sub-topology: 1\n" +
			"    Source: KSTREAM-SOURCE-0000000005 (topics: [count-store-repartition])\n" +
			"      --> KTABLE-AGGREGATE-0000000006\n" +
			"    Processor: KTABLE-AGGREGATE-0000000006 (stores: [count-store])\n" +
			"      --> none\n" +
			"      <-- KSTREAM-SOURCE-0000000005\n" +
			"\n"},
	} {
		b := stream.NewBuilder()
		table := stream.Table(b, "input-topic", strs, stream.Materialized[string, string]{})
		stream.GroupTable(table, func(k, v string) (string, string) { return k, v }, stream.Grouped[string, string]{}).Count(c.m)
		describe(t, build(t, b), c.want)
	}
}

// KTableAggregateTest.testRemoveOldBeforeAddNew: the subtract is applied
// before the add, also when both land on the same key.
func TestTableAggregateRemoveOldBeforeAddNew(t *testing.T) {
	b := stream.NewBuilder()
	table := stream.Table(b, "count-test-input", strs, stream.Materialized[string, string]{})
	g := stream.GroupTable(table, func(k, _ string) (string, string) { return k[:1], k[1:2] }, stream.Grouped[string, string]{})
	stream.AggregateTable(g, func() string { return "" },
		func(_, v, agg string) string { return agg + v },
		func(_, v, agg string) string { return strings.ReplaceAll(agg, v, "") },
		stream.As[string, string]("someStore")).
		ToStream().To("out", stream.Produced[string, string]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "count-test-input", serde.String(), serde.String())
		pipe(t, in, "11", "A", 10)
		pipe(t, in, "12", "B", 8)
		tombstone(t, in, "11", 12)
		pipe(t, in, "12", "C", 6)
		expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.String()), "1=1@10", "1=12@10", "1=2@12", "1=2@12")
	})
}

// KTableAggregateTest.testShouldNotSendTransientStateIfNotUpgrading (an
// update that keeps its group gives one output, never the transient 0),
// and testNoEqualsAndSameObject. Deviation in eddy's favour: eddy compares
// keys by their serialized bytes, so testNoEqualsAndNotSameObject's keys
// (equal bytes, no equals method in Java) also give one output, where
// Kafka emits the transient 0.
func TestTableCountSameKeyUpdate(t *testing.T) {
	b := stream.NewBuilder()
	stream.GroupTable(stream.Table(b, "input-topic", strs, stream.Materialized[string, string]{}),
		func(k, v string) (string, string) { return k, v }, stream.Grouped[string, string]{}).
		Count(stream.Materialized[string, int64]{}).ToStream().To("output-topic", stream.Produced[string, int64]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "input-topic", serde.String(), serde.String())
		pipe(t, in, "1", "", 8)
		pipe(t, in, "1", "", 9)
		expect(t, streamtest.OutputTopic(d, "output-topic", serde.String(), serde.Int64()), "1=1@8", "1=1@9")
	})
}

// KGroupedTableImplTest.shouldReduce / shouldReduceAndMaterializeResults
// (assertReduced): a table of doubles grouped by key with int values.
func TestTableReduce(t *testing.T) {
	b := stream.NewBuilder()
	table := stream.Table(b, "input", stream.With(serde.String(), serde.Float64()), stream.As[string, float64]("store"))
	stream.GroupTable(table, func(k string, v float64) (string, int32) { return k, int32(v) }, stream.Grouped[string, int32]{}).
		Reduce(func(agg, v int32) int32 { return agg + v }, func(agg, v int32) int32 { return agg - v }, stream.As[string, int32]("reduced")).
		ToStream().To("out", stream.Produced[string, int32]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.Float64())
		out := streamtest.OutputTopic(d, "out", serde.String(), serde.Int32())
		pipe(t, in, "A", 1.1, 10)
		pipe(t, in, "B", 2.2, 11)
		expect(t, out, "A=1@10", "B=2@11")
		pipe(t, in, "A", 2.6, 30)
		pipe(t, in, "B", 1.3, 30)
		pipe(t, in, "A", 5.7, 50)
		pipe(t, in, "B", 6.2, 20)
		expect(t, out, "A=2@30", "B=1@30", "A=5@50", "B=6@30")
		if a, bb := stored(t, d, "reduced", serde.String(), serde.Int32(), "A"), stored(t, d, "reduced", serde.String(), serde.Int32(), "B"); a != "5@50" || bb != "6@30" {
			t.Errorf("store: A %s, B %s", a, bb)
		}
	})
}

// KGroupedTableImplTest.shouldCountAndMaterializeResults and
// shouldAggregateAndMaterializeResults, here from one named grouping,
// which (as KGroupedTableImpl does) repartitions once for both.
func TestTableCountAndAggregateMaterialized(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.GroupTable(stream.Table(b, "input", strs, stream.Materialized[string, string]{}),
		func(_, v string) (string, string) { return v, v }, stream.Grouped[string, string]{Name: "by-value", Key: serde.String(), Value: serde.String()})
	g.Count(stream.Materialized[string, int64]{Name: "count", Key: serde.String(), Value: serde.Int64()})
	stream.AggregateTable(g, func() string { return "0" }, appendAdder, appendRemover, stream.As[string, string]("aggregate"))
	top := build(t, b)
	if subs := top.Subtopologies("app"); len(subs) != 2 || !slices.Equal(subs[1].SourceTopics, []string{"app-by-value-repartition"}) || len(subs[0].RepartitionSinks) != 1 {
		t.Fatalf("sub-topologies %+v", subs)
	}
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
		pipe(t, in, "A", "1", 10)
		pipe(t, in, "B", "1", 50)
		pipe(t, in, "C", "1", 30)
		pipe(t, in, "D", "2", 40)
		pipe(t, in, "E", "2", 60)
		for _, c := range []struct{ store, key, want string }{
			{"count", "1", "3@50"}, {"count", "2", "2@60"},
			{"aggregate", "1", "0+1+1+1@50"}, {"aggregate", "2", "0+2+2@60"},
		} {
			var got string
			if c.store == "count" {
				got = stored(t, d, c.store, serde.String(), serde.Int64(), c.key)
			} else {
				got = stored(t, d, c.store, serde.String(), serde.String(), c.key)
			}
			if got != c.want {
				t.Errorf("%s %s: %s, want %s", c.store, c.key, got, c.want)
			}
		}
	})
}

// KTableReduce removes a key whose aggregate becomes null: in Go, a reduce
// result the value serde encodes as nil (a nil pointer with
// serde.Nullable) deletes the key, and a tombstone flows downstream.
func TestTableReduceToNullDeletes(t *testing.T) {
	b := stream.NewBuilder()
	table := stream.Table(b, "input", stream.With(serde.String(), serde.Int32()), stream.Materialized[string, int32]{})
	ptr := func(v int32) *int32 { return &v }
	stream.GroupTable(table, func(k string, v int32) (string, *int32) { return k[:1], &v },
		stream.Grouped[string, *int32]{Value: serde.Nullable(serde.Int32())}).
		Reduce(func(agg, v *int32) *int32 { return ptr(*agg + *v) },
			func(agg, v *int32) *int32 {
				if *agg == *v {
					return nil // nothing left
				}
				return ptr(*agg - *v)
			}, stream.As[string, *int32]("sums")).
		ToStream().To("out", stream.Produced[string, *int32]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.Int32())
		out := streamtest.OutputTopic(d, "out", serde.String(), serde.Int32())
		pipe(t, in, "a1", 3, 1)
		pipe(t, in, "a2", 4, 2)
		expect(t, out, "a=3@1", "a=7@2")
		tombstone(t, in, "a1", 3)
		tombstone(t, in, "a2", 4)
		expect(t, out, "a=4@3", "a=null@4")
		if got := stored(t, d, "sums", serde.String(), serde.Int32(), "a"); got != "absent" {
			t.Errorf("store holds %s", got)
		}
		// After a subtract to null, the add starts afresh with the value.
		pipe(t, in, "a1", 5, 5)
		pipe(t, in, "a1", 6, 6)
		expect(t, out, "a=5@5", "a=6@6")
	})
}

// The repartition topic of a grouped table carries Kafka's own Change
// layout (ChangedSerializer): value then flag 0 (subtract) or 1 (add), or
// a varint length, the new and the old value, then flag 2 (both). Bytes
// that do not decode go to the deserialization error handler.
func TestTableGroupRepartitionLayout(t *testing.T) {
	b := stream.NewBuilder()
	stream.GroupTable(stream.Table(b, "input", strs, stream.Materialized[string, string]{}),
		func(k, v string) (string, string) { return v[:1], v }, stream.Grouped[string, string]{Name: "by-initial"}).
		Count(stream.As[string, int64]("counts")).ToStream().To("out", stream.Produced[string, int64]{})
	top := build(t, b)
	d := open(t, top, streamtest.WithApplicationID("app"), streamtest.WithErrorHandlers(stream.ErrorHandlers{Deserialization: stream.LogAndContinue}))
	in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
	pipe(t, in, "k", "ab", 1) // add a:ab
	pipe(t, in, "k", "ac", 2) // same group: both
	pipe(t, in, "k", "bd", 3) // subtract a:ac, add b:bd
	tombstone(t, in, "k", 4)  // subtract b:bd
	var got []string
	for _, r := range d.Records("app-by-initial-repartition") {
		got = append(got, fmt.Sprintf("%s:%q", r.Key, r.Value))
	}
	want := []string{`a:"ab\x01"`, `a:"\x04acab\x02"`, `a:"ac\x00"`, `b:"bd\x01"`, `b:"bd\x00"`}
	if !slices.Equal(got, want) {
		t.Errorf("repartition records %v, want %v", got, want)
	}
	expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.Int64()), "a=1@1", "a=1@2", "a=0@3", "b=1@3", "b=0@4")
	for _, bad := range [][]byte{{}, []byte("x\x07"), []byte("\x10ab\x02"), []byte("\x03ab\x02")} {
		if err := d.PipeRaw(stream.RawRecord{Topic: "app-by-initial-repartition", Key: []byte("a"), Value: bad, Timestamp: 5}); err != nil {
			t.Fatal(err)
		}
	}
	if n := d.Dropped("deserialization"); n != 4 {
		t.Errorf("%d undecodable changes dropped, want 4", n)
	}
	expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.Int64()))
}

// ---- cogroup ----

func cogroupDriver(t *testing.T, top *stream.Topology, opts ...streamtest.Option) (*streamtest.Driver, *streamtest.Input[string, string], *streamtest.Input[string, string]) {
	d := open(t, top, opts...)
	return d, streamtest.InputTopic(d, "one", serde.String(), serde.String()), streamtest.InputTopic(d, "two", serde.String(), serde.String())
}

func concat(_ string, v, agg string) string { return agg + v }

// CogroupedKStreamImplTest.shouldCogroupAndAggregateSingleKStreams and
// testCogroupHandleNullValues.
func TestCogroupSingleStream(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.Stream(b, strs, "one").GroupByKey(stream.Grouped[string, string]{})
	stream.Cogroup(g, concat).Aggregate(func() string { return "" }, stream.Materialized[string, string]{}).
		ToStream().To("output", stream.Produced[string, string]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		one := streamtest.InputTopic(d, "one", serde.String(), serde.String())
		pipe(t, one, "k1", "A", 0)
		pipe(t, one, "k2", "B", 0)
		tombstone(t, one, "k2", 0)
		pipe(t, one, "k2", "B", 0)
		pipe(t, one, "k1", "A", 0)
		expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.String()), "k1=A@0", "k2=B@0", "k2=BB@0", "k1=AA@0")
		if d.Dropped("null-key-or-value") != 1 {
			t.Errorf("dropped %d", d.Dropped("null-key-or-value"))
		}
	})
}

// CogroupedKStreamImplTest.shouldCogroupAndAggregateTwoKStreamsWithDistinctKeys
// and shouldCogroupAndAggregateTwoKStreamsWithSharedKeys: both streams fold
// into one aggregate per key; the timestamp is the largest so far.
func TestCogroupTwoStreams(t *testing.T) {
	b := stream.NewBuilder()
	g1 := stream.Stream(b, strs, "one").GroupByKey(stream.Grouped[string, string]{})
	g2 := stream.Stream(b, strs, "two").GroupByKey(stream.Grouped[string, string]{})
	stream.CogroupWith(stream.Cogroup(g1, concat), g2, concat).Aggregate(func() string { return "" }, stream.Materialized[string, string]{}).
		ToStream().To("output", stream.Produced[string, string]{})
	top := build(t, b)
	type in struct {
		two  bool
		k, v string
		ts   int64
	}
	cases := []struct {
		name string
		in   []in
		want []string
	}{
		{"distinct keys", []in{
			{false, "k1", "A", 0}, {false, "k1", "A", 1}, {false, "k1", "A", 10}, {false, "k1", "A", 100},
			{true, "k2", "B", 100}, {true, "k2", "B", 200}, {true, "k2", "B", 1}, {true, "k2", "B", 500}, {true, "k2", "B", 500}, {true, "k2", "B", 100},
		}, []string{"k1=A@0", "k1=AA@1", "k1=AAA@10", "k1=AAAA@100", "k2=B@100", "k2=BB@200", "k2=BBB@200", "k2=BBBB@500", "k2=BBBBB@500", "k2=BBBBBB@500"}},
		{"shared keys", []in{
			{false, "k1", "A", 0}, {false, "k2", "A", 1}, {false, "k1", "A", 10}, {false, "k2", "A", 100},
			{true, "k2", "B", 100}, {true, "k2", "B", 200}, {true, "k1", "B", 1}, {true, "k2", "B", 500}, {true, "k1", "B", 500}, {true, "k2", "B", 500}, {true, "k3", "B", 500}, {true, "k2", "B", 100},
		}, []string{"k1=A@0", "k2=A@1", "k1=AA@10", "k2=AA@100", "k2=AAB@100", "k2=AABB@200", "k1=AAB@10", "k2=AABBB@500", "k1=AABB@500", "k2=AABBBB@500", "k3=B@500", "k2=AABBBBB@500"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
				d, one, two := cogroupDriver(t, top, opts...)
				for _, r := range c.in {
					if r.two {
						pipe(t, two, r.k, r.v, r.ts)
					} else {
						pipe(t, one, r.k, r.v, r.ts)
					}
				}
				expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.String()), c.want...)
			})
		})
	}
}

// CogroupedKStreamImplTest.shouldCoGroupStreamsWithDifferentInputTypes
// (and shouldAllowDifferentOutputTypeInCoGroup): a string and an int
// stream summed into an int aggregate in store "store1".
func TestCogroupDifferentTypes(t *testing.T) {
	b := stream.NewBuilder()
	g1 := stream.Stream(b, strs, "one").GroupByKey(stream.Grouped[string, string]{})
	g2 := stream.Stream(b, stream.With(serde.String(), serde.Int32()), "two").GroupByKey(stream.Grouped[string, int32]{})
	c := stream.Cogroup(g1, func(_ string, v string, agg int32) int32 {
		n := int32(0)
		fmt.Sscan(v, &n)
		return agg + n
	})
	stream.CogroupWith(c, g2, func(_ string, v int32, agg int32) int32 { return agg + v }).
		Aggregate(func() int32 { return 0 }, stream.Materialized[string, int32]{Name: "store1", Value: serde.Int32()}).
		ToStream().To("output", stream.Produced[string, int32]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		one := streamtest.InputTopic(d, "one", serde.String(), serde.String())
		two := streamtest.InputTopic(d, "two", serde.String(), serde.Int32())
		pipe(t, one, "k1", "1", 0)
		pipe(t, one, "k2", "1", 1)
		pipe(t, one, "k1", "1", 10)
		pipe(t, one, "k2", "1", 100)
		for _, r := range []struct {
			k  string
			v  int32
			ts int64
		}{{"k2", 2, 100}, {"k2", 2, 200}, {"k1", 2, 1}, {"k2", 2, 500}, {"k1", 2, 500}, {"k2", 3, 500}, {"k3", 2, 500}, {"k2", 2, 100}} {
			pipe(t, two, r.k, r.v, r.ts)
		}
		expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.Int32()),
			"k1=1@0", "k2=1@1", "k1=2@10", "k2=2@100", "k2=4@100", "k2=6@200", "k1=4@10", "k2=8@500", "k1=6@500", "k2=11@500", "k3=2@500", "k2=13@500")
		if got := stored(t, d, "store1", serde.String(), serde.Int32(), "k2"); got != "13@500" {
			t.Errorf("store1 k2: %s", got)
		}
	})
}

// CogroupedKStreamImplTest.testCogroupKeyMixedAggregators and
// testCogroupWithThreeGroupedStreams.
func TestCogroupMixedAndThree(t *testing.T) {
	b := stream.NewBuilder()
	g1 := stream.Stream(b, strs, "one").GroupByKey(stream.Grouped[string, string]{})
	g2 := stream.Stream(b, strs, "two").GroupByKey(stream.Grouped[string, string]{})
	stream.CogroupWith(stream.Cogroup(g1, appendRemover), g2, appendAdder).
		Aggregate(func() string { return "0" }, stream.As[string, string]("store1")).
		ToStream().To("mixed", stream.Produced[string, string]{})
	top := build(t, b)
	d, one, two := cogroupDriver(t, top)
	pipe(t, one, "k1", "1", 0)
	pipe(t, one, "k2", "1", 1)
	pipe(t, one, "k1", "1", 10)
	pipe(t, one, "k2", "1", 100)
	pipe(t, two, "k1", "2", 500)
	pipe(t, two, "k2", "2", 500)
	pipe(t, two, "k1", "2", 500)
	pipe(t, two, "k2", "2", 100)
	expect(t, streamtest.OutputTopic(d, "mixed", serde.String(), serde.String()),
		"k1=0-1@0", "k2=0-1@1", "k1=0-1-1@10", "k2=0-1-1@100", "k1=0-1-1+2@500", "k2=0-1-1+2@500", "k1=0-1-1+2+2@500", "k2=0-1-1+2+2@500")

	b = stream.NewBuilder()
	var gs []stream.KGroupedStream[string, string]
	for _, topic := range []string{"one", "two", "three"} {
		gs = append(gs, stream.Stream(b, strs, topic).GroupByKey(stream.Grouped[string, string]{}))
	}
	stream.CogroupWith(stream.CogroupWith(stream.Cogroup(gs[0], concat), gs[1], concat), gs[2], concat).
		Aggregate(func() string { return "" }, stream.Materialized[string, string]{}).
		ToStream().To("output", stream.Produced[string, string]{})
	top = build(t, b)
	if cg := top.Subtopologies("app")[0].Copartitioned; len(cg) != 1 || !slices.Equal(cg[0].Topics, []string{"one", "three", "two"}) {
		t.Errorf("co-partition groups %+v", cg)
	}
	d, one, two = cogroupDriver(t, top)
	three := streamtest.InputTopic(d, "three", serde.String(), serde.String())
	pipe(t, one, "k1", "A", 0)
	pipe(t, one, "k2", "A", 1)
	pipe(t, one, "k1", "A", 10)
	pipe(t, one, "k2", "A", 100)
	pipe(t, two, "k2", "B", 100)
	pipe(t, two, "k2", "B", 200)
	pipe(t, two, "k1", "B", 1)
	pipe(t, two, "k2", "B", 500)
	pipe(t, three, "k1", "B", 500)
	pipe(t, three, "k2", "B", 500)
	pipe(t, three, "k3", "B", 500)
	pipe(t, three, "k2", "B", 100)
	expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.String()),
		"k1=A@0", "k2=A@1", "k1=AA@10", "k2=AA@100", "k2=AAB@100", "k2=AABB@200", "k1=AAB@10", "k2=AABBB@500", "k1=AABB@500", "k2=AABBBB@500", "k3=B@500", "k2=AABBBBB@500")
}

// CogroupedKStreamImplTest.shouldNameRepartitionTopic: an input whose key
// changed is repartitioned through its Grouped name; its description is
// Kafka's, and the cogroup's inputs are co-partitioned.
func TestCogroupRepartition(t *testing.T) {
	b := stream.NewBuilder()
	s1 := stream.Stream(b, strs, "one")
	s2 := stream.Stream(b, strs, "two")
	g1 := stream.Map(s1, func(k, v string) (string, string) { return v, k }).GroupByKey(stream.Grouped[string, string]{Name: "repartition-test"})
	g2 := s2.GroupByKey(stream.Grouped[string, string]{})
	stream.CogroupWith(stream.Cogroup(g1, concat), g2, concat).Aggregate(func() string { return "" }, stream.Materialized[string, string]{}).
		ToStream().To("output", stream.Produced[string, string]{})
	top := build(t, b)
	describe(t, top, "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [one])\n"+
		"      --> KSTREAM-MAP-0000000002\n"+
		"    Processor: KSTREAM-MAP-0000000002 (stores: [])\n"+
		"      --> repartition-test-repartition-filter\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n"+
		"    Processor: repartition-test-repartition-filter (stores: [])\n"+
		"      --> repartition-test-repartition-sink\n"+
		"      <-- KSTREAM-MAP-0000000002\n"+
		"    Sink: repartition-test-repartition-sink (topic: repartition-test-repartition)\n"+
		"      <-- repartition-test-repartition-filter\n\n"+
		"  Sub-topology: 1\n"+
		"    Source: KSTREAM-SOURCE-0000000001 (topics: [two])\n"+
		"      --> COGROUPKSTREAM-AGGREGATE-0000000008\n"+
		"    Source: repartition-test-repartition-source (topics: [repartition-test-repartition])\n"+
		"      --> COGROUPKSTREAM-AGGREGATE-0000000007\n"+
		"    Processor: COGROUPKSTREAM-AGGREGATE-0000000007 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])\n"+
		"      --> COGROUPKSTREAM-MERGE-0000000009\n"+
		"      <-- repartition-test-repartition-source\n"+
		"    Processor: COGROUPKSTREAM-AGGREGATE-0000000008 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])\n"+
		"      --> COGROUPKSTREAM-MERGE-0000000009\n"+
		"      <-- KSTREAM-SOURCE-0000000001\n"+
		"    Processor: COGROUPKSTREAM-MERGE-0000000009 (stores: [])\n"+
		"      --> KTABLE-TOSTREAM-0000000010\n"+
		"      <-- COGROUPKSTREAM-AGGREGATE-0000000007, COGROUPKSTREAM-AGGREGATE-0000000008\n"+
		"    Processor: KTABLE-TOSTREAM-0000000010 (stores: [])\n"+
		"      --> KSTREAM-SINK-0000000011\n"+
		"      <-- COGROUPKSTREAM-MERGE-0000000009\n"+
		"    Sink: KSTREAM-SINK-0000000011 (topic: output)\n"+
		"      <-- KTABLE-TOSTREAM-0000000010\n\n")
	if cg := top.Subtopologies("app")[1].Copartitioned; len(cg) != 1 || !slices.Equal(cg[0].Topics, []string{"app-repartition-test-repartition", "two"}) {
		t.Errorf("co-partition groups %+v", cg)
	}
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d, one, two := cogroupDriver(t, top, opts...)
		pipe(t, one, "x", "k1", 1) // re-keyed to k1, value x
		pipe(t, two, "k1", "y", 2)
		pipe(t, one, "z", "k2", 3)
		expect(t, streamtest.OutputTopic(d, "output", serde.String(), serde.String()), "k1=x@1", "k1=xy@2", "k2=z@3")
	})
}

// Two inputs that both need a repartition and have no Grouped name would
// both use "<store>-repartition": Build fails and says to name them
// (Kafka fails the same way, with "topic already registered").
func TestCogroupRepartitionNameClash(t *testing.T) {
	b := stream.NewBuilder()
	rekey := func(k, v string) (string, string) { return v, k }
	g1 := stream.Map(stream.Stream(b, strs, "one"), rekey).GroupByKey(stream.Grouped[string, string]{})
	g2 := stream.Map(stream.Stream(b, strs, "two"), rekey).GroupByKey(stream.Grouped[string, string]{})
	stream.CogroupWith(stream.Cogroup(g1, concat), g2, concat).Aggregate(func() string { return "" }, stream.As[string, string]("store"))
	_, err := b.Build()
	if !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), "store-repartition already exists") {
		t.Errorf("Build: %v", err)
	}
}

// FuzzTableGroupRepartition feeds arbitrary bytes to a grouped table's
// aggregation through its repartition topic: the Change decoder must
// reject what it cannot decode (to the error handler) and never panic.
func FuzzTableGroupRepartition(f *testing.F) {
	b := stream.NewBuilder()
	stream.GroupTable(stream.Table(b, "input", strs, stream.Materialized[string, string]{}),
		func(k, v string) (string, string) { return v, v }, stream.Grouped[string, string]{Name: "g"}).
		Count(stream.Materialized[string, int64]{}).ToStream().To("out", stream.Produced[string, int64]{})
	top, err := b.Build()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"ab\x01", "ab\x00", "\x04acab\x02", "\x00\x02", "", "\x02", "\xff\xff\xff\xff\x0f\x02"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		d, err := streamtest.New(top, streamtest.WithErrorHandlers(stream.ErrorHandlers{Deserialization: stream.LogAndContinue}))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.PipeRaw(stream.RawRecord{Topic: "test-app-g-repartition", Key: []byte("k"), Value: value}); err != nil {
			t.Fatal(err)
		}
	})
}
