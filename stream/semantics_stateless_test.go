package stream_test

// Semantic tests of the stateless KStream operators, KTable sources and
// their stateless operators, stream-table joins and the Processor API,
// through the test driver. Inputs and expected outputs are taken from
// Kafka Streams' own tests (named above each case); where eddy differs on
// purpose, the comment says so and the test asserts eddy's behaviour.

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// ---- helpers ----

func build(t *testing.T, b *stream.Builder) *stream.Topology {
	t.Helper()
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func open(t *testing.T, top *stream.Topology, opts ...streamtest.Option) *streamtest.Driver {
	t.Helper()
	d, err := streamtest.New(top, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// cachingModes runs f with the record cache on and off. The driver
// commits after every input record, so both must give the same results.
func cachingModes(t *testing.T, f func(t *testing.T, opts ...streamtest.Option)) {
	for _, c := range []struct {
		name  string
		bytes int64
	}{{"cache-on", 10 << 20}, {"cache-off", 0}} {
		t.Run(c.name, func(t *testing.T) { f(t, streamtest.WithCacheMaxBytes(c.bytes)) })
	}
}

func pipe[K, V any](t *testing.T, in *streamtest.Input[K, V], k K, v V, ts int64) {
	t.Helper()
	if err := in.Pipe(k, v, ts); err != nil {
		t.Fatal(err)
	}
}

func tombstone[K, V any](t *testing.T, in *streamtest.Input[K, V], k K, ts int64) {
	t.Helper()
	if err := in.PipeTombstone(k, ts); err != nil {
		t.Fatal(err)
	}
}

// expect reads the unread records of o and compares them, printed as
// "key=value@timestamp", with want.
func expect[K, V any](t *testing.T, o *streamtest.Output[K, V], want ...string) {
	t.Helper()
	recs, err := o.ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(recs))
	for i, r := range recs {
		got[i] = r.String()
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("records:\n got %s\nwant %s", strings.Join(got, " "), strings.Join(want, " "))
	}
}

var (
	strs    = stream.With(serde.String(), serde.String())
	intStrs = stream.With(serde.Int32(), serde.String())
)

// ---- filter, filterNot ----

// KStreamFilterTest.testFilter and testFilterNot: keys 1..7, predicate
// "key is a multiple of 3": filter keeps 2 records, filterNot 5.
func TestFilterAndFilterNot(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "topic")
	multipleOf3 := func(k int32, _ string) bool { return k%3 == 0 }
	s.Filter(multipleOf3).To("kept", stream.Produced[int32, string]{})
	s.FilterNot(multipleOf3).To("not", stream.Produced[int32, string]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.Int32(), serde.String())
	for k := int32(1); k <= 7; k++ {
		pipe(t, in, k, "V"+strconv.Itoa(int(k)), 0)
	}
	expect(t, streamtest.OutputTopic(d, "kept", serde.Int32(), serde.String()), "3=V3@0", "6=V6@0")
	expect(t, streamtest.OutputTopic(d, "not", serde.Int32(), serde.String()), "1=V1@0", "2=V2@0", "4=V4@0", "5=V5@0", "7=V7@0")
}

// ---- map, mapValues, flatMap, flatMapValues, selectKey ----

// KStreamMapValuesTest.testFlatMapValues (which maps values to their
// length) and testMapValuesWithKeys: timestamps are key/2.
func TestMapValues(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "topic")
	stream.MapValues(s, func(_ int32, v string) int32 { return int32(len(v)) }).To("len", stream.Produced[int32, int32]{})
	stream.MapValues(s, func(k int32, v string) int32 { return int32(len(v)) + k }).To("lenkey", stream.Produced[int32, int32]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.Int32(), serde.String())
	for _, k := range []int32{1, 10, 100, 1000} {
		pipe(t, in, k, strconv.Itoa(int(k)), int64(k/2))
	}
	expect(t, streamtest.OutputTopic(d, "len", serde.Int32(), serde.Int32()), "1=1@0", "10=2@5", "100=3@50", "1000=4@500")
	expect(t, streamtest.OutputTopic(d, "lenkey", serde.Int32(), serde.Int32()), "1=2@0", "10=12@5", "100=103@50", "1000=1004@500")
}

// KStreamMapTest.testMap: swap key and value; timestamps 10-key are kept.
func TestMap(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "topic")
	stream.Map(s, func(k int32, v string) (string, int32) { return v, k }).To("out", stream.Produced[string, int32]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.Int32(), serde.String())
	for k := int32(0); k < 4; k++ {
		pipe(t, in, k, "V"+strconv.Itoa(int(k)), int64(10-k))
	}
	expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.Int32()), "V0=0@10", "V1=1@9", "V2=2@8", "V3=3@7")
}

// KStreamFlatMapTest.testFlatMap: key k becomes k records keyed k*10+i.
func TestFlatMap(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "topic")
	stream.FlatMap(s, func(k int32, v string) []stream.KeyValue[string, string] {
		var out []stream.KeyValue[string, string]
		for i := int32(0); i < k; i++ {
			out = append(out, stream.KeyValue[string, string]{Key: strconv.Itoa(int(k*10 + i)), Value: v})
		}
		return out
	}).To("out", stream.Produced[string, string]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.Int32(), serde.String())
	for k := int32(0); k < 4; k++ {
		pipe(t, in, k, "V"+strconv.Itoa(int(k)), 0)
	}
	expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.String()), "10=V1@0", "20=V2@0", "21=V2@0", "30=V3@0", "31=V3@0", "32=V3@0")
}

// KStreamFlatMapValuesTest.testFlatMapValues and
// testFlatMapValuesWithKeys.
func TestFlatMapValues(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, stream.With(serde.Int32(), serde.Int32()), "topic")
	stream.FlatMapValues(s, func(_ int32, v int32) []string {
		return []string{fmt.Sprint("v", v), fmt.Sprint("V", v)}
	}).To("values", stream.Produced[int32, string]{})
	stream.FlatMapValues(s, func(k int32, v int32) []string {
		return []string{fmt.Sprint("v", v), fmt.Sprint("k", k)}
	}).To("withkeys", stream.Produced[int32, string]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.Int32(), serde.Int32())
	for k := int32(0); k < 4; k++ {
		pipe(t, in, k, k, 0)
	}
	expect(t, streamtest.OutputTopic(d, "values", serde.Int32(), serde.String()),
		"0=v0@0", "0=V0@0", "1=v1@0", "1=V1@0", "2=v2@0", "2=V2@0", "3=v3@0", "3=V3@0")
	expect(t, streamtest.OutputTopic(d, "withkeys", serde.Int32(), serde.String()),
		"0=v0@0", "0=k0@0", "1=v1@0", "1=k1@0", "2=v2@0", "2=k2@0", "3=v3@0", "3=k3@0")
}

// KStreamSelectKeyTest.testSelectKey: records with null keys get a key
// computed from the value.
func TestSelectKey(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, stream.With(serde.String(), serde.Int32()), "topic_key_select")
	names := map[int32]string{1: "ONE", 2: "TWO", 3: "THREE"}
	stream.SelectKey(s, func(_ string, v int32) string { return names[v] }).To("out", stream.Produced[string, int32]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic_key_select", serde.String(), serde.Int32())
	for _, v := range []int32{1, 2, 3} {
		if err := in.PipeValue(v, 0); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.Int32()), "ONE=1@0", "TWO=2@0", "THREE=3@0")
}

// ---- peek, foreach, print ----

// KStreamPeekTest.shouldObserveStreamElements (32 records, seen by peek
// and by the foreach after it, in order) and KStreamForeachTest.testForeach.
func TestPeekAndForeach(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "topic")
	var peeked, seen, upper []string
	s.Peek(func(k int32, v string) { peeked = append(peeked, fmt.Sprint(k, ":", v)) }).
		Foreach(func(k int32, v string) { seen = append(seen, fmt.Sprint(k, ":", v)) })
	s.Foreach(func(k int32, v string) { upper = append(upper, fmt.Sprint(k*2, ":", strings.ToUpper(v))) })
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.Int32(), serde.String())
	var want []string
	for k := int32(0); k < 32; k++ {
		pipe(t, in, k, "V"+strconv.Itoa(int(k)), 0)
		want = append(want, fmt.Sprint(k, ":V", k))
	}
	if !slices.Equal(peeked, want) || !slices.Equal(seen, want) {
		t.Errorf("peek saw %v, foreach %v", peeked, seen)
	}
	b2 := stream.NewBuilder()
	upper = nil
	stream.Stream(b2, intStrs, "topic").Foreach(func(k int32, v string) { upper = append(upper, fmt.Sprint(k*2, ":", strings.ToUpper(v))) })
	d2 := open(t, build(t, b2))
	in2 := streamtest.InputTopic(d2, "topic", serde.Int32(), serde.String())
	for i, v := range []string{"zero", "one", "two", "three"} {
		pipe(t, in2, int32(i), v, 0)
	}
	if want := []string{"0:ZERO", "2:ONE", "4:TWO", "6:THREE"}; !slices.Equal(upper, want) {
		t.Errorf("foreach: got %v, want %v", upper, want)
	}
}

// KStreamPrintTest.testPrintStreamWithProvidedKeyValueMapper: lines
// "[label]: key, value". A null prints as "null", as in Java.
func TestPrint(t *testing.T) {
	b := stream.NewBuilder()
	var out bytes.Buffer
	stream.Stream(b, intStrs, "topic").Print(&out, "test-stream")
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.Int32(), serde.String())
	for i, v := range []string{"zero", "one", "two", "three"} {
		pipe(t, in, int32(i), v, 0)
	}
	if err := in.PipeValue("nokey", 0); err != nil {
		t.Fatal(err)
	}
	want := "[test-stream]: 0, zero\n[test-stream]: 1, one\n[test-stream]: 2, two\n[test-stream]: 3, three\n[test-stream]: null, nokey\n"
	if out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
}

// ---- merge ----

// KStreamImplTest.shouldMergeTwoStreams and shouldMergeMultipleStreams:
// records come out in the order they are processed, timestamps kept.
func TestMerge(t *testing.T) {
	b := stream.NewBuilder()
	src := make([]stream.KStream[string, string], 4)
	for i := range src {
		src[i] = stream.Stream(b, strs, fmt.Sprint("topic-", i+1))
	}
	src[0].Merge(src[1]).To("two", stream.Produced[string, string]{})
	src[0].Merge(src[1]).Merge(src[2]).Merge(src[3]).To("four", stream.Produced[string, string]{})
	d := open(t, build(t, b))
	in := make([]*streamtest.Input[string, string], 4)
	for i := range in {
		in[i] = streamtest.InputTopic(d, fmt.Sprint("topic-", i+1), serde.String(), serde.String())
	}
	for _, p := range []struct {
		topic int
		k, v  string
		ts    int64
	}{{0, "A", "aa", 1}, {1, "B", "bb", 9}, {2, "C", "cc", 2}, {3, "D", "dd", 8}, {3, "E", "ee", 3}, {2, "F", "ff", 7}, {1, "G", "gg", 4}, {0, "H", "hh", 6}} {
		pipe(t, in[p.topic], p.k, p.v, p.ts)
	}
	expect(t, streamtest.OutputTopic(d, "four", serde.String(), serde.String()),
		"A=aa@1", "B=bb@9", "C=cc@2", "D=dd@8", "E=ee@3", "F=ff@7", "G=gg@4", "H=hh@6")
	expect(t, streamtest.OutputTopic(d, "two", serde.String(), serde.String()), "A=aa@1", "B=bb@9", "G=gg@4", "H=hh@6")
}

// ---- split ----

var splitKeys = []int32{-1, 0, 1, 2, 3, 4, 5, 6, 7}

func pipeSplitInput(t *testing.T, d *streamtest.Driver) {
	in := streamtest.InputTopic(d, "topic", serde.Int32(), serde.String())
	for _, k := range splitKeys {
		pipe(t, in, k, "V"+strconv.Itoa(int(k)), 0)
	}
}

func values(t *testing.T, d *streamtest.Driver, topic string) string {
	t.Helper()
	recs, err := streamtest.OutputTopic(d, topic, serde.Int32(), serde.String()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, r := range recs {
		vs = append(vs, r.Value)
	}
	return strings.Join(vs, ",")
}

// KStreamSplitTest.testKStreamSplit: no default branch; a record goes to
// the first branch that matches, unmatched records are dropped.
// (Kafka's Branched.withConsumer has no counterpart: eddy returns every
// branch in the map.)
func TestSplitNoDefaultBranch(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "topic")
	br := s.Split("").
		Branch(func(k int32, _ string) bool { return k%2 == 0 }, "").
		Branch(func(k int32, _ string) bool { return k%3 == 0 }, "").
		Branch(func(k int32, _ string) bool { return k%5 == 0 }, "").
		NoDefaultBranch()
	// Kafka names unnamed branches split name + position, without a separator.
	for i, topic := range []string{"x2", "x3", "x5"} {
		name := fmt.Sprint("KSTREAM-BRANCH-0000000001", i+1)
		bs, ok := br[name]
		if !ok {
			t.Fatalf("no branch %q in %v", name, slices.Sorted(func(yield func(string) bool) {
				for k := range br {
					if !yield(k) {
						return
					}
				}
			}))
		}
		bs.To(topic, stream.Produced[int32, string]{})
	}
	d := open(t, build(t, b))
	pipeSplitInput(t, d)
	for topic, want := range map[string]string{"x2": "V0,V2,V4,V6", "x3": "V3", "x5": "V5"} {
		if got := values(t, d, topic); got != want {
			t.Errorf("%s: got %s, want %s", topic, got, want)
		}
	}
}

// KStreamSplitTest.testResultingMap: branches named "<split><branch>",
// positions as default names, "0" for the default branch.
func TestSplitDefaultBranch(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "topic")
	br := s.Split("foo-").
		Branch(func(k int32, _ string) bool { return k%2 == 0 }, "bar").
		Branch(func(k int32, _ string) bool { return k%3 == 0 }, "").
		Branch(func(k int32, _ string) bool { return k%5 == 0 }, "").
		Branch(func(k int32, _ string) bool { return k < 0 }, "").
		Branch(func(k int32, _ string) bool { return k%7 == 0 }, "").
		DefaultBranch("")
	want := []string{"foo-0", "foo-2", "foo-3", "foo-4", "foo-5", "foo-bar"}
	var got []string
	for name, bs := range br {
		got = append(got, name)
		bs.To(name, stream.Produced[int32, string]{})
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("branches %v, want %v", got, want)
	}
	d := open(t, build(t, b))
	pipeSplitInput(t, d)
	for topic, want := range map[string]string{"foo-bar": "V0,V2,V4,V6", "foo-4": "V-1", "foo-5": "V7", "foo-0": "V1", "foo-2": "V3", "foo-3": "V5"} {
		if got := values(t, d, topic); got != want {
			t.Errorf("%s: got %s, want %s", topic, got, want)
		}
	}
}

// KStreamSplitTest.testBranchingWithNoTerminalOperation: two branches to
// one topic.
func TestSplitBranchesToOneTopic(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "topic")
	br := s.Split("").
		Branch(func(k int32, _ string) bool { return k%2 == 0 }, "even").
		Branch(func(k int32, _ string) bool { return k%5 == 0 }, "five").
		NoDefaultBranch()
	for _, bs := range br {
		bs.To("output", stream.Produced[int32, string]{})
	}
	d := open(t, build(t, b))
	pipeSplitInput(t, d)
	if got := values(t, d, "output"); got != "V0,V2,V4,V5,V6" {
		t.Errorf("got %s", got)
	}
}

// ---- repartition, to, toTable ----

// KStreamImplTest.shouldSendDataThroughRepartitionTopicUsingRepartitioned:
// the record passes through "<app>-<name>-repartition" unchanged.
func TestRepartition(t *testing.T) {
	b := stream.NewBuilder()
	stream.Stream(b, strs, "topic").
		Repartition(stream.Repartitioned[string, string]{Name: "through"}).
		To("out", stream.Produced[string, string]{})
	top := build(t, b)
	if subs := top.Subtopologies("app"); len(subs) != 2 || subs[1].SourceTopics[0] != "app-through-repartition" {
		t.Fatalf("sub-topologies: %+v", subs)
	}
	d := open(t, top, streamtest.WithApplicationID("app"))
	pipe(t, streamtest.InputTopic(d, "topic", serde.String(), serde.String()), "a", "b", 0)
	expect(t, streamtest.OutputTopic(d, "app-through-repartition", serde.String(), serde.String()), "a=b@0")
	expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.String()), "a=b@0")
}

// KStreamImplTest.shouldSendDataToTopicUsingProduced and
// shouldSendDataToDynamicTopics (eddy's chooser sees the key and value,
// not the record context, so the input topic name is spelled out).
func TestToAndToChooser(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, strs, "topic")
	s.To("to-topic", stream.Produced[string, string]{Key: serde.String(), Value: serde.String()})
	s.ToChooser(func(k, v string) string { return "topic-" + k + "-" + v[:1] }, stream.Produced[string, string]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic", serde.String(), serde.String())
	pipe(t, in, "e", "f", 0)
	expect(t, streamtest.OutputTopic(d, "to-topic", serde.String(), serde.String()), "e=f@0")
	pipe(t, in, "a", "v1", 0)
	pipe(t, in, "a", "v2", 0)
	pipe(t, in, "b", "v1", 0)
	expect(t, streamtest.OutputTopic(d, "topic-a-v", serde.String(), serde.String()), "a=v1@0", "a=v2@0")
	expect(t, streamtest.OutputTopic(d, "topic-b-v", serde.String(), serde.String()), "b=v1@0")
	expect(t, streamtest.OutputTopic(d, "topic-e-f", serde.String(), serde.String()), "e=f@0")
}

// KStreamImplTest.shouldMaterializeKTableFromKStream: the latest value per
// key is in the store.
func TestToTable(t *testing.T) {
	b := stream.NewBuilder()
	stream.Stream(b, strs, "input").ToTable(stream.Materialized[string, string]{Name: "store", InMemory: true})
	top := build(t, b)
	want := "Topologies:\n" +
		"   Sub-topology: 0\n" +
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n" +
		"      --> KSTREAM-TOTABLE-0000000001\n" +
		"    Processor: KSTREAM-TOTABLE-0000000001 (stores: [store])\n" +
		"      --> none\n" +
		"      <-- KSTREAM-SOURCE-0000000000\n\n"
	if got := top.Describe().String(); got != want {
		t.Errorf("describe:\n%s\nwant:\n%s", got, want)
	}
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
		pipe(t, in, "A", "01", 0)
		pipe(t, in, "B", "02", 0)
		pipe(t, in, "A", "03", 0)
		m, err := streamtest.KeyValueStore(d, "store", serde.String(), serde.String())
		if err != nil || len(m) != 2 || m["A"] != "03" || m["B"] != "02" {
			t.Errorf("store %v, %v", m, err)
		}
	})
}

// KStreamImplTest.shouldSupportKeyChangeKTableFromKStream: a stream whose
// key changed is repartitioned before toTable. Deviation: eddy always
// materializes the table, so the processor lists its store
// (KSTREAM-TOTABLE-STATE-STORE-0000000003, the name Kafka generates
// without using it); Kafka's lists none.
func TestToTableAfterKeyChange(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Map(stream.Stream(b, strs, "input"), func(k, v string) (int32, string) { return int32(k[0] - 'A'), v })
	s.ToTable(stream.Materialized[int32, string]{Key: serde.Int32()}).ToStream().To("output", stream.Produced[int32, string]{})
	top := build(t, b)
	want := "Topologies:\n" +
		"   Sub-topology: 0\n" +
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [input])\n" +
		"      --> KSTREAM-MAP-0000000001\n" +
		"    Processor: KSTREAM-MAP-0000000001 (stores: [])\n" +
		"      --> KSTREAM-FILTER-0000000005\n" +
		"      <-- KSTREAM-SOURCE-0000000000\n" +
		"    Processor: KSTREAM-FILTER-0000000005 (stores: [])\n" +
		"      --> KSTREAM-SINK-0000000004\n" +
		"      <-- KSTREAM-MAP-0000000001\n" +
		"    Sink: KSTREAM-SINK-0000000004 (topic: KSTREAM-TOTABLE-0000000002-repartition)\n" +
		"      <-- KSTREAM-FILTER-0000000005\n" +
		"\n" +
		"  Sub-topology: 1\n" +
		"    Source: KSTREAM-SOURCE-0000000006 (topics: [KSTREAM-TOTABLE-0000000002-repartition])\n" +
		"      --> KSTREAM-TOTABLE-0000000002\n" +
		"    Processor: KSTREAM-TOTABLE-0000000002 (stores: [KSTREAM-TOTABLE-STATE-STORE-0000000003])\n" +
		"      --> KTABLE-TOSTREAM-0000000007\n" +
		"      <-- KSTREAM-SOURCE-0000000006\n" +
		"    Processor: KTABLE-TOSTREAM-0000000007 (stores: [])\n" +
		"      --> KSTREAM-SINK-0000000008\n" +
		"      <-- KSTREAM-TOTABLE-0000000002\n" +
		"    Sink: KSTREAM-SINK-0000000008 (topic: output)\n" +
		"      <-- KTABLE-TOSTREAM-0000000007\n\n"
	if got := top.Describe().String(); got != want {
		t.Errorf("describe:\n%s\nwant:\n%s", got, want)
	}
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
		for _, r := range []struct {
			k, v string
			ts   int64
		}{{"A", "01", 5}, {"B", "02", 100}, {"C", "03", 0}, {"D", "04", 0}, {"A", "05", 10}, {"A", "06", 8}} {
			pipe(t, in, r.k, r.v, r.ts)
		}
		expect(t, streamtest.OutputTopic(d, "output", serde.Int32(), serde.String()),
			"0=01@5", "1=02@100", "2=03@0", "3=04@0", "0=05@10", "0=06@8")
	})
}

// ---- KTable source, filter, filterNot, mapValues, toStream ----

// KTableSourceTest.testKTable: upserts and tombstones flow through
// toStream with their timestamps.
func TestTableSource(t *testing.T) {
	b := stream.NewBuilder()
	stream.Table(b, "topic1", stream.With(serde.String(), serde.Int32()), stream.Materialized[string, int32]{}).
		ToStream().To("out", stream.Produced[string, int32]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "topic1", serde.String(), serde.Int32())
		pipe(t, in, "A", 1, 10)
		pipe(t, in, "B", 2, 11)
		pipe(t, in, "C", 3, 12)
		pipe(t, in, "D", 4, 13)
		tombstone(t, in, "A", 14)
		tombstone(t, in, "B", 15)
		expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.Int32()),
			"A=1@10", "B=2@11", "C=3@12", "D=4@13", "A=null@14", "B=null@15")
		// Deviation: eddy's table always knows the old value, so a
		// tombstone for a key that is not in the table changes nothing
		// and emits nothing; Kafka's unmaterialized source forwards it.
		tombstone(t, in, "X", 16)
		expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.Int32()))
		// KTableSourceTest.kTableShouldLogAndMeterOnSkippedRecords: a null
		// key is dropped and counted.
		if err := in.PipeValue(5, 17); err != nil {
			t.Fatal(err)
		}
		if d.Dropped("null-key") != 1 {
			t.Errorf("null-key drops: %d", d.Dropped("null-key"))
		}
	})
}

// KTableFilterTest.doTestKTable (filter and filterNot of "value is even").
// Deviation: Kafka without materialization forwards a tombstone for every
// row the predicate rejects, even when the key was never in the filtered
// table (A=null@10, C=null@8, ...); eddy always knows the old value and
// forwards a tombstone only for a row that leaves the filtered table —
// what Kafka does when old values are enabled (doTestSendingOldValue,
// tested below).
func TestTableFilter(t *testing.T) {
	b := stream.NewBuilder()
	t1 := stream.Table(b, "topic1", stream.With(serde.String(), serde.Int32()), stream.Materialized[string, int32]{})
	even := func(_ string, v int32) bool { return v%2 == 0 }
	t1.Filter(even).ToStream().To("filter", stream.Produced[string, int32]{})
	t1.FilterNot(even).ToStream().To("filterNot", stream.Produced[string, int32]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "topic1", serde.String(), serde.Int32())
		pipe(t, in, "A", 1, 10)
		pipe(t, in, "B", 2, 5)
		pipe(t, in, "C", 3, 8)
		pipe(t, in, "D", 4, 14)
		tombstone(t, in, "A", 18)
		tombstone(t, in, "B", 15)
		expect(t, streamtest.OutputTopic(d, "filter", serde.String(), serde.Int32()), "B=2@5", "D=4@14", "B=null@15")
		expect(t, streamtest.OutputTopic(d, "filterNot", serde.String(), serde.Int32()), "A=1@10", "C=3@8", "A=null@18")
	})
}

// KTableFilterTest.doTestSendingOldValue (table2, the filtered table):
// nothing for rows never in the filtered table, the new row when one
// enters, a tombstone when one leaves.
func TestTableFilterOldValues(t *testing.T) {
	b := stream.NewBuilder()
	stream.Table(b, "topic1", stream.With(serde.String(), serde.Int32()), stream.Materialized[string, int32]{}).
		Filter(func(_ string, v int32) bool { return v%2 == 0 }).
		ToStream().To("out", stream.Produced[string, int32]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "topic1", serde.String(), serde.Int32())
		out := streamtest.OutputTopic(d, "out", serde.String(), serde.Int32())
		pipe(t, in, "A", 1, 5)
		pipe(t, in, "B", 1, 10)
		pipe(t, in, "C", 1, 15)
		expect(t, out)
		pipe(t, in, "A", 2, 15)
		pipe(t, in, "B", 2, 8)
		expect(t, out, "A=2@15", "B=2@8")
		pipe(t, in, "A", 3, 20)
		expect(t, out, "A=null@20")
		tombstone(t, in, "A", 10)
		tombstone(t, in, "B", 20)
		expect(t, out, "B=null@20")
	})
}

// KTableFilterTest.doTestValueGetter (getter2, the filtered table): the
// filtered table's lookups see only the rows that pass, here through a
// stream-table join.
func TestTableFilterGetter(t *testing.T) {
	b := stream.NewBuilder()
	table := stream.Table(b, "topic1", stream.With(serde.String(), serde.Int32()), stream.Materialized[string, int32]{}).
		Filter(func(_ string, v int32) bool { return v%2 == 0 })
	stream.LeftJoinTable(stream.Stream(b, stream.With(serde.String(), serde.String()), "lookups"), table,
		func(_ string, _ string, v int32, ok bool) string {
			if !ok {
				return "null"
			}
			return strconv.Itoa(int(v))
		}, stream.Joined[string, string]{}).To("out", stream.Produced[string, string]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "topic1", serde.String(), serde.Int32())
	look := streamtest.InputTopic(d, "lookups", serde.String(), serde.String())
	out := streamtest.OutputTopic(d, "out", serde.String(), serde.String())
	lookup := func(ts int64, want ...string) {
		t.Helper()
		for _, k := range []string{"A", "B", "C"} {
			pipe(t, look, k, "?", ts)
		}
		expect(t, out, want...)
	}
	pipe(t, in, "A", 1, 5)
	pipe(t, in, "B", 1, 10)
	pipe(t, in, "C", 1, 15)
	lookup(20, "A=null@20", "B=null@20", "C=null@20")
	pipe(t, in, "A", 2, 10)
	pipe(t, in, "B", 2, 5)
	lookup(20, "A=2@20", "B=2@20", "C=null@20")
	pipe(t, in, "A", 3, 15)
	lookup(20, "A=null@20", "B=2@20", "C=null@20")
	tombstone(t, in, "A", 10)
	tombstone(t, in, "B", 20)
	lookup(20, "A=null@20", "B=null@20", "C=null@20")
}

// KTableMapValuesTest.testKTable: values mapped, timestamps kept.
func TestTableMapValues(t *testing.T) {
	b := stream.NewBuilder()
	t1 := stream.Table(b, "topic1", strs, stream.Materialized[string, string]{})
	stream.MapTableValues(t1, func(_ string, v string) int32 { return int32(v[0]) - 48 }).
		ToStream().To("out", stream.Produced[string, int32]{})
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "topic1", serde.String(), serde.String())
		pipe(t, in, "A", "1", 5)
		pipe(t, in, "B", "2", 25)
		pipe(t, in, "C", "3", 20)
		pipe(t, in, "D", "4", 10)
		tombstone(t, in, "A", 30)
		expect(t, streamtest.OutputTopic(d, "out", serde.String(), serde.Int32()), "A=1@5", "B=2@25", "C=3@20", "D=4@10", "A=null@30")
	})
}

// ---- stream-table join ----

func streamTableJoin(t *testing.T, left bool) (*streamtest.Driver, *stream.Topology, *streamtest.Input[int32, string], *streamtest.Input[int32, string], *streamtest.Output[int32, string]) {
	b := stream.NewBuilder()
	s := stream.Stream(b, intStrs, "streamTopic")
	table := stream.Table(b, "tableTopic", intStrs, stream.Materialized[int32, string]{})
	var joined stream.KStream[int32, string]
	if left {
		joined = stream.LeftJoinTable(s, table, func(_ int32, v, vt string, ok bool) string {
			if !ok {
				vt = "null"
			}
			return v + "+" + vt
		}, stream.Joined[int32, string]{})
	} else {
		joined = stream.JoinTable(s, table, func(_ int32, v, vt string) string { return v + "+" + vt }, stream.Joined[int32, string]{})
	}
	joined.To("out", stream.Produced[int32, string]{})
	top := build(t, b)
	d := open(t, top)
	return d, top, streamtest.InputTopic(d, "streamTopic", serde.Int32(), serde.String()),
		streamtest.InputTopic(d, "tableTopic", serde.Int32(), serde.String()),
		streamtest.OutputTopic(d, "out", serde.Int32(), serde.String())
}

// pushToStream and pushToTable of KStreamKTableJoinTest: stream record i
// has timestamp i; table records get unrelated timestamps (Kafka's are
// random), which must not show in the output.
func pushToStream(t *testing.T, in *streamtest.Input[int32, string], n int, prefix string) {
	for i := range n {
		pipe(t, in, int32(i), prefix+strconv.Itoa(i), int64(i))
	}
}

func pushToTable(t *testing.T, in *streamtest.Input[int32, string], n int, prefix string) {
	for i := range n {
		pipe(t, in, int32(i), prefix+strconv.Itoa(i), int64(1000+37*i))
	}
}

// KStreamKTableJoinTest: shouldNotJoinWithEmptyTableOnStreamUpdates,
// shouldJoinOnlyIfMatchFoundOnStreamUpdates, shouldNotJoinOnTableUpdates,
// shouldClearTableEntryOnNullValueUpdates,
// shouldLogAndMeterWhenSkippingNullLeftKey/Value and
// shouldRequireCopartitionedStreams.
func TestStreamTableJoin(t *testing.T) {
	d, top, st, tb, out := streamTableJoin(t, false)
	pushToStream(t, st, 2, "X")
	expect(t, out)
	pushToTable(t, tb, 2, "Y")
	expect(t, out)
	pushToStream(t, st, 4, "X")
	expect(t, out, "0=X0+Y0@0", "1=X1+Y1@1")
	pushToTable(t, tb, 4, "YY")
	expect(t, out)
	pushToStream(t, st, 4, "X")
	expect(t, out, "0=X0+YY0@0", "1=X1+YY1@1", "2=X2+YY2@2", "3=X3+YY3@3")
	tombstone(t, tb, 0, 5000)
	tombstone(t, tb, 1, 5000)
	expect(t, out)
	pushToStream(t, st, 4, "XX")
	expect(t, out, "2=XX2+YY2@2", "3=XX3+YY3@3")

	if err := st.PipeValue("A", 7); err != nil {
		t.Fatal(err)
	}
	if err := st.PipeTombstone(1, 7); err != nil {
		t.Fatal(err)
	}
	expect(t, out)
	if n := d.Dropped("null-key-or-value"); n != 2 {
		t.Errorf("dropped %d null key or value records, want 2", n)
	}
	cg := top.Subtopologies("app")[0].Copartitioned
	if len(cg) != 1 || !slices.Equal(cg[0].Topics, []string{"streamTopic", "tableTopic"}) {
		t.Errorf("co-partition groups: %+v", cg)
	}
}

// KStreamKTableLeftJoinTest: shouldJoinWithEmptyTableOnStreamUpdates,
// shouldNotJoinOnTableUpdates, shouldJoinRegardlessIfMatchFoundOnStreamUpdates
// and shouldClearTableEntryOnNullValueUpdates.
func TestStreamTableLeftJoin(t *testing.T) {
	_, _, st, tb, out := streamTableJoin(t, true)
	pushToStream(t, st, 2, "X")
	expect(t, out, "0=X0+null@0", "1=X1+null@1")
	pushToTable(t, tb, 2, "Y")
	expect(t, out)
	pushToStream(t, st, 4, "X")
	expect(t, out, "0=X0+Y0@0", "1=X1+Y1@1", "2=X2+null@2", "3=X3+null@3")
	pushToTable(t, tb, 4, "YY")
	expect(t, out)
	pushToStream(t, st, 4, "X")
	expect(t, out, "0=X0+YY0@0", "1=X1+YY1@1", "2=X2+YY2@2", "3=X3+YY3@3")
	tombstone(t, tb, 0, 5000)
	tombstone(t, tb, 1, 5000)
	expect(t, out)
	pushToStream(t, st, 4, "XX")
	expect(t, out, "0=XX0+null@0", "1=XX1+null@1", "2=XX2+YY2@2", "3=XX3+YY3@3")
}

// KStreamKTableJoinTest.shouldCreateRepartitionTopicsWithUserProvidedName:
// a stream whose key changed is repartitioned before the join, through
// "<join name>-repartition", and the join is co-partitioned with the
// table. Deviation: Kafka numbers the join's sink 12, eddy 11 (Kafka uses
// up one more generated name); the rest of the description is Kafka's.
func TestJoinAfterKeyChangeRepartitions(t *testing.T) {
	b := stream.NewBuilder()
	a := stream.Stream(b, strs, "topic")
	tableB := stream.Table(b, "topic2", strs, stream.Materialized[string, string]{})
	tableC := stream.Table(b, "topic3", strs, stream.Materialized[string, string]{})
	rekeyed := stream.Map(a, func(k, v string) (string, string) { return v, k })
	joiner := func(_ string, v1, v2 string) string { return v1 + v2 }
	stream.JoinTable(rekeyed, tableB, joiner, stream.Joined[string, string]{Name: "first-join", Key: serde.String(), Value: serde.String()}).
		To("out-one", stream.Produced[string, string]{})
	stream.JoinTable(rekeyed, tableC, joiner, stream.Joined[string, string]{Name: "second-join", Key: serde.String(), Value: serde.String()}).
		To("out-two", stream.Produced[string, string]{})
	top := build(t, b)
	want := "Topologies:\n" +
		"   Sub-topology: 0\n" +
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])\n" +
		"      --> KSTREAM-MAP-0000000007\n" +
		"    Processor: KSTREAM-MAP-0000000007 (stores: [])\n" +
		"      --> first-join-repartition-filter, second-join-repartition-filter\n" +
		"      <-- KSTREAM-SOURCE-0000000000\n" +
		"    Processor: first-join-repartition-filter (stores: [])\n" +
		"      --> first-join-repartition-sink\n" +
		"      <-- KSTREAM-MAP-0000000007\n" +
		"    Processor: second-join-repartition-filter (stores: [])\n" +
		"      --> second-join-repartition-sink\n" +
		"      <-- KSTREAM-MAP-0000000007\n" +
		"    Sink: first-join-repartition-sink (topic: first-join-repartition)\n" +
		"      <-- first-join-repartition-filter\n" +
		"    Sink: second-join-repartition-sink (topic: second-join-repartition)\n" +
		"      <-- second-join-repartition-filter\n" +
		"\n" +
		"  Sub-topology: 1\n" +
		"    Source: first-join-repartition-source (topics: [first-join-repartition])\n" +
		"      --> first-join\n" +
		"    Source: KSTREAM-SOURCE-0000000002 (topics: [topic2])\n" +
		"      --> KTABLE-SOURCE-0000000003\n" +
		"    Processor: first-join (stores: [topic2-STATE-STORE-0000000001])\n" +
		"      --> KSTREAM-SINK-0000000011\n" +
		"      <-- first-join-repartition-source\n" +
		"    Sink: KSTREAM-SINK-0000000011 (topic: out-one)\n" +
		"      <-- first-join\n" +
		"    Processor: KTABLE-SOURCE-0000000003 (stores: [topic2-STATE-STORE-0000000001])\n" +
		"      --> none\n" +
		"      <-- KSTREAM-SOURCE-0000000002\n" +
		"\n" +
		"  Sub-topology: 2\n" +
		"    Source: second-join-repartition-source (topics: [second-join-repartition])\n" +
		"      --> second-join\n" +
		"    Source: KSTREAM-SOURCE-0000000005 (topics: [topic3])\n" +
		"      --> KTABLE-SOURCE-0000000006\n" +
		"    Processor: second-join (stores: [topic3-STATE-STORE-0000000004])\n" +
		"      --> KSTREAM-SINK-0000000015\n" +
		"      <-- second-join-repartition-source\n" +
		"    Sink: KSTREAM-SINK-0000000015 (topic: out-two)\n" +
		"      <-- second-join\n" +
		"    Processor: KTABLE-SOURCE-0000000006 (stores: [topic3-STATE-STORE-0000000004])\n" +
		"      --> none\n" +
		"      <-- KSTREAM-SOURCE-0000000005\n\n"
	if got := top.Describe().String(); got != want {
		t.Errorf("describe:\n%s\nwant:\n%s", got, want)
	}
	sub := top.Subtopologies("app")[1]
	if len(sub.Copartitioned) != 1 || !slices.Equal(sub.Copartitioned[0].Topics, []string{"app-first-join-repartition", "topic2"}) {
		t.Errorf("co-partition groups: %+v", sub.Copartitioned)
	}
	d := open(t, top, streamtest.WithApplicationID("app"))
	pipe(t, streamtest.InputTopic(d, "topic2", serde.String(), serde.String()), "k", "B", 0)
	pipe(t, streamtest.InputTopic(d, "topic", serde.String(), serde.String()), "x", "k", 3)
	expect(t, streamtest.OutputTopic(d, "app-first-join-repartition", serde.String(), serde.String()), "k=x@3")
	expect(t, streamtest.OutputTopic(d, "out-one", serde.String(), serde.String()), "k=xB@3")
	expect(t, streamtest.OutputTopic(d, "out-two", serde.String(), serde.String()))
}

// ---- process, processValues, stores, punctuators ----

// maxAggregator is TopologyTestDriverTest's CustomMaxAggregator: it keeps
// the largest value per key and forwards the whole store every minute of
// wall-clock time and every 10 s of stream time.
type maxAggregator struct {
	ctx   stream.ProcessorContext[string, int64]
	store *stream.KeyValueStore[string, int64]
}

func (p *maxAggregator) Init(ctx stream.ProcessorContext[string, int64]) error {
	p.ctx = ctx
	var err error
	if p.store, err = stream.KeyValueStoreOf(ctx, "aggStore", serde.String(), serde.Int64()); err != nil {
		return err
	}
	ctx.Schedule(time.Minute, stream.WallClockTime, p.flush)
	ctx.Schedule(10*time.Second, stream.StreamTime, p.flush)
	return nil
}

func (p *maxAggregator) Process(r stream.Record[string, int64]) error {
	old, ok, err := p.store.Get(r.Key)
	if err != nil {
		return err
	}
	if !ok || r.Value > old {
		return p.store.Put(r.Key, r.Value)
	}
	return nil
}

func (p *maxAggregator) flush(ts int64) {
	for kv, err := range p.store.All() {
		if err != nil {
			p.ctx.Logger().Error("flush", "err", err)
			return
		}
		p.ctx.Forward(stream.Record[string, int64]{Key: kv.Key, Value: kv.Value, Timestamp: ts})
	}
}

func (p *maxAggregator) Close() error { return nil }

func maxAggregatorTopology(t *testing.T) *stream.Topology {
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "aggStore", InMemory: true})
	stream.Process(stream.Stream(b, stream.With(serde.String(), serde.Int64()), "input-topic"),
		func() stream.Processor[string, int64, string, int64] { return &maxAggregator{} }, "aggStore").
		To("result-topic", stream.Produced[string, int64]{})
	return build(t, b)
}

// TopologyTestDriverTest.shouldPunctuateIfEvenTimeAdvances (with the store
// filled by a first record instead of by hand): the stream-time
// punctuator fires at the first record and then every 10 s of stream time;
// forwarded records carry the punctuation time.
func TestProcessStreamTimePunctuator(t *testing.T) {
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, maxAggregatorTopology(t), opts...)
		in := streamtest.InputTopic(d, "input-topic", serde.String(), serde.Int64())
		out := streamtest.OutputTopic(d, "result-topic", serde.String(), serde.Int64())
		pipe(t, in, "a", 21, 9999)
		expect(t, out, "a=21@9999")
		pipe(t, in, "a", 1, 9999)
		expect(t, out)
		pipe(t, in, "a", 1, 10000)
		expect(t, out, "a=21@10000")
		pipe(t, in, "b", 42, 15000)
		expect(t, out)
		pipe(t, in, "b", 42, 20000)
		expect(t, out, "a=21@20000", "b=42@20000")
		m, err := streamtest.KeyValueStore(d, "aggStore", serde.String(), serde.Int64())
		if err != nil || m["a"] != 21 || m["b"] != 42 {
			t.Errorf("store %v %v", m, err)
		}
	})
}

// TopologyTestDriverTest.shouldPunctuateIfWallClockTimeAdvances: the
// wall-clock punctuator fires when the driver's clock passes a minute.
func TestProcessWallClockPunctuator(t *testing.T) {
	d := open(t, maxAggregatorTopology(t))
	in := streamtest.InputTopic(d, "input-topic", serde.String(), serde.Int64())
	out := streamtest.OutputTopic(d, "result-topic", serde.String(), serde.Int64())
	pipe(t, in, "a", 21, 0)
	expect(t, out, "a=21@0") // the stream-time punctuator's first run
	if err := d.AdvanceWallClockTime(59 * time.Second); err != nil {
		t.Fatal(err)
	}
	expect(t, out)
	if err := d.AdvanceWallClockTime(time.Second); err != nil {
		t.Fatal(err)
	}
	expect(t, out, "a=21@60000")
}

// punctuationRecorder records when its punctuator fires.
type punctuationRecorder struct {
	typ   stream.PunctuationType
	fired *[]int64
}

func (p *punctuationRecorder) Init(ctx stream.ProcessorContext[string, string]) error {
	ctx.Schedule(10*time.Millisecond, p.typ, func(ts int64) { *p.fired = append(*p.fired, ts) })
	return nil
}
func (p *punctuationRecorder) Process(stream.Record[string, string]) error { return nil }
func (p *punctuationRecorder) Close() error                                { return nil }

func punctuationTopology(t *testing.T, typ stream.PunctuationType, fired *[]int64) *stream.Topology {
	b := stream.NewBuilder()
	stream.Process(stream.Stream(b, strs, "input"), func() stream.Processor[string, string, string, string] {
		return &punctuationRecorder{typ: typ, fired: fired}
	})
	return build(t, b)
}

// TopologyTestDriverTest.shouldPunctuateOnStreamsTime: an interval of 10
// on a grid aligned to 0; a punctuation passes the stream time; skipped
// intervals fire once.
func TestStreamTimePunctuationGrid(t *testing.T) {
	var fired []int64
	d := open(t, punctuationTopology(t, stream.StreamTime, &fired))
	in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
	steps := []struct {
		ts   int64
		want []int64
	}{
		{42, []int64{42}}, {42, []int64{42}}, {51, []int64{42, 51}}, {52, []int64{42, 51}},
		{61, []int64{42, 51, 61}}, {65, []int64{42, 51, 61}}, {71, []int64{42, 51, 61, 71}},
		{72, []int64{42, 51, 61, 71}}, {95, []int64{42, 51, 61, 71, 95}},
		{101, []int64{42, 51, 61, 71, 95, 101}}, {102, []int64{42, 51, 61, 71, 95, 101}},
	}
	for _, s := range steps {
		pipe(t, in, "k", "v", s.ts)
		if !slices.Equal(fired, s.want) {
			t.Fatalf("after a record at %d: fired %v, want %v", s.ts, fired, s.want)
		}
	}
}

// TopologyTestDriverTest.shouldPunctuateOnWallClockTime: first at 10 ms
// after the start; a jump fires once and keeps the grid.
func TestWallClockPunctuationGrid(t *testing.T) {
	var fired []int64
	d := open(t, punctuationTopology(t, stream.WallClockTime, &fired))
	for _, s := range []struct {
		by   time.Duration
		want []int64
	}{{5, nil}, {9, []int64{14}}, {1, []int64{14}}, {20, []int64{14, 35}}, {5, []int64{14, 35, 40}}} {
		if err := d.AdvanceWallClockTime(s.by * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fired, s.want) {
			t.Fatalf("fired %v, want %v", fired, s.want)
		}
	}
}

// sumProcessor is KStreamImplTest.shouldProcessWithOldProcessorAndState's
// processor: it adds up value lengths per key in store "sum".
type sumProcessor struct {
	store *stream.KeyValueStore[string, int32]
	ctx   stream.ProcessorContext[string, string]
	meta  []string
}

func (p *sumProcessor) Init(ctx stream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	var err error
	p.store, err = stream.KeyValueStoreOf(ctx, "sum", serde.String(), serde.Int32())
	return err
}

func (p *sumProcessor) Process(r stream.Record[string, string]) error {
	if md, ok := p.ctx.RecordMetadata(); ok {
		p.meta = append(p.meta, fmt.Sprintf("%s-%d@%d", md.Topic, md.Partition, md.Offset))
	}
	n, ok, err := p.store.Get(r.Key)
	if err != nil {
		return err
	}
	if !ok {
		return p.store.Put(r.Key, int32(len(r.Value)))
	}
	return p.store.Put(r.Key, n+int32(len(r.Value)))
}

func (p *sumProcessor) Close() error { return nil }

// KStreamImplTest.shouldProcessWithOldProcessorAndState: a processor with
// a store; plus the record metadata a processor sees.
func TestProcessWithStore(t *testing.T) {
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "sum", InMemory: true})
	var proc *sumProcessor
	stream.Process(stream.Stream(b, strs, "input"), func() stream.Processor[string, string, string, string] {
		proc = &sumProcessor{}
		return proc
	}, "sum")
	top := build(t, b)
	cachingModes(t, func(t *testing.T, opts ...streamtest.Option) {
		d := open(t, top, opts...)
		in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
		for _, r := range []struct {
			k, v string
			ts   int64
		}{{"A", "0", 5}, {"B", "00", 100}, {"C", "000", 0}, {"D", "0000", 0}, {"A", "00000", 10}, {"A", "000000", 8}} {
			pipe(t, in, r.k, r.v, r.ts)
		}
		m, err := streamtest.KeyValueStore(d, "sum", serde.String(), serde.Int32())
		if err != nil || m["A"] != 12 || m["B"] != 2 || m["C"] != 3 || m["D"] != 4 {
			t.Errorf("store %v %v", m, err)
		}
		if want := []string{"input-0@0", "input-0@1", "input-0@2", "input-0@3", "input-0@4", "input-0@5"}; !slices.Equal(proc.meta, want) {
			t.Errorf("metadata %v", proc.meta)
		}
		// The store's changelog holds every update, with its record's
		// timestamp.
		var log []string
		for _, r := range d.Records("test-app-sum-changelog") {
			v, _ := serde.Int32().Deserialize("", r.Value)
			log = append(log, fmt.Sprintf("%s=%d@%d", r.Key, v, r.Timestamp))
		}
		if want := "A=1@5 B=2@100 C=3@0 D=4@0 A=6@10 A=12@8"; strings.Join(log, " ") != want {
			t.Errorf("changelog %s, want %s", strings.Join(log, " "), want)
		}
	})
}

// lengthProcessor forwards each value's length, trying to change the key.
type lengthProcessor struct {
	ctx stream.ProcessorContext[string, int32]
}

func (p *lengthProcessor) Init(ctx stream.ProcessorContext[string, int32]) error {
	p.ctx = ctx
	return nil
}
func (p *lengthProcessor) Process(r stream.Record[string, string]) error {
	p.ctx.Forward(stream.Record[string, int32]{Key: "changed", Value: int32(len(r.Value)), Timestamp: r.Timestamp})
	return nil
}
func (p *lengthProcessor) Close() error { return nil }

// KStreamImplTest.shouldProcessValues and shouldBindStateWithOldProcessor:
// processValues keeps the input key whatever key the processor forwards;
// process forwards what the processor gives.
func TestProcessAndProcessValues(t *testing.T) {
	b := stream.NewBuilder()
	s := stream.Stream(b, strs, "input")
	supplier := func() stream.Processor[string, string, string, int32] { return &lengthProcessor{} }
	stream.ProcessValues(s, supplier).To("values", stream.Produced[string, int32]{})
	stream.Process(s, supplier).To("any", stream.Produced[string, int32]{})
	d := open(t, build(t, b))
	in := streamtest.InputTopic(d, "input", serde.String(), serde.String())
	for _, r := range []struct {
		k, v string
		ts   int64
	}{{"A", "0", 5}, {"B", "00", 100}, {"C", "000", 0}, {"D", "0000", 0}, {"A", "00000", 10}, {"A", "000000", 8}} {
		pipe(t, in, r.k, r.v, r.ts)
	}
	expect(t, streamtest.OutputTopic(d, "values", serde.String(), serde.Int32()), "A=1@5", "B=2@100", "C=3@0", "D=4@0", "A=5@10", "A=6@8")
	expect(t, streamtest.OutputTopic(d, "any", serde.String(), serde.Int32()),
		"changed=1@5", "changed=2@100", "changed=3@0", "changed=4@0", "changed=5@10", "changed=6@8")
}

// A processor must name the stores it uses: an undeclared store fails
// Build, an unconnected one fails at Init.
func TestProcessStoreChecks(t *testing.T) {
	b := stream.NewBuilder()
	stream.Process(stream.Stream(b, strs, "input"), func() stream.Processor[string, string, string, string] { return &sumProcessor{} }, "nope")
	if _, err := b.Build(); !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), `store "nope" is not declared`) {
		t.Errorf("Build: %v", err)
	}
	b = stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "sum"})
	stream.Process(stream.Stream(b, strs, "input"), func() stream.Processor[string, string, string, string] { return &sumProcessor{} })
	if _, err := streamtest.New(build(t, b)); err == nil || !strings.Contains(err.Error(), `not connected to store "sum"`) {
		t.Errorf("New: %v", err)
	}
}

// ---- build errors ----

type point struct{ X, Y int }

// A topology that cannot work fails Build with ErrTopology and a message
// naming the operator (Kafka Streams fails such topologies at run time,
// with a ClassCastException from a default serde).
func TestMissingSerdeFailsBuild(t *testing.T) {
	pointSerde := serde.JSON[point]()
	cases := []struct {
		name  string
		build func(b *stream.Builder)
		want  string // operator, as "(op)"
	}{
		{"source", func(b *stream.Builder) {
			stream.Stream(b, stream.Consumed[string, point]{}, "in")
		}, "(stream)"},
		{"to", func(b *stream.Builder) {
			s := stream.Stream(b, stream.With(serde.String(), pointSerde), "in")
			stream.MapValues(s, func(_ string, p point) point { return p }).To("out", stream.Produced[string, point]{})
		}, "(to)"},
		{"groupBy", func(b *stream.Builder) {
			s := stream.Stream(b, stream.With(serde.String(), pointSerde), "in")
			stream.GroupBy(stream.MapValues(s, func(_ string, p point) point { return p }),
				func(k string, _ point) string { return k }, stream.Grouped[string, point]{}).Count(stream.Materialized[string, int64]{})
		}, "(count)"},
		{"aggregate", func(b *stream.Builder) {
			s := stream.Stream(b, strs, "in")
			stream.Aggregate(s.GroupByKey(stream.Grouped[string, string]{}), func() point { return point{} },
				func(_ string, _ string, p point) point { return p }, stream.Materialized[string, point]{})
		}, "(aggregate)"},
		{"join", func(b *stream.Builder) {
			s := stream.Map(stream.Stream(b, stream.With(serde.String(), pointSerde), "in"), func(k string, p point) (string, point) { return k, p })
			table := stream.Table(b, "t", strs, stream.Materialized[string, string]{})
			stream.JoinTable(s, table, func(_ string, p point, _ string) point { return p }, stream.Joined[string, point]{})
		}, "(join)"},
		{"table groupBy", func(b *stream.Builder) {
			table := stream.Table(b, "t", strs, stream.Materialized[string, string]{})
			stream.GroupTable(table, func(k, v string) (string, point) { return k, point{} }, stream.Grouped[string, point]{}).
				Count(stream.Materialized[string, int64]{})
		}, "(groupBy)"},
		{"cogroup", func(b *stream.Builder) {
			g := stream.Stream(b, strs, "in").GroupByKey(stream.Grouped[string, string]{})
			stream.Cogroup(g, func(_ string, _ string, p point) point { return p }).Aggregate(func() point { return point{} }, stream.Materialized[string, point]{})
		}, "(cogroup)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := stream.NewBuilder()
			c.build(b)
			_, err := b.Build()
			if !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "serde") {
				t.Errorf("Build error %v, want one naming %s and the serde", err, c.want)
			}
		})
	}
}
