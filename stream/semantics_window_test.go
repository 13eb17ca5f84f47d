package stream_test

// Semantic tests of time-windowed aggregations: tumbling, hopping and
// sliding windows, emitting on update and on window close. Inputs and
// expected outputs come from Kafka Streams' tests (KStreamWindowAggregateTest,
// TimeWindowedKStreamImplTest, KStreamSlidingWindowAggregateTest,
// SlidingWindowedKStreamImplTest), named above each case; the cached
// variants run with the record cache on and off.

import (
	"errors"
	"fmt"
	"math/rand"
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

// wFixture is a topology with one windowed aggregation of string records
// read from "input", whose table is written to "output".
type wFixture struct {
	d   *streamtest.Driver
	in  *streamtest.Input[string, string]
	out *streamtest.Output[window.Windowed[string], string]
}

// wBuild builds the topology agg makes from the grouped "input" stream,
// writing its table (values formatted with %v) to "output".
func wBuild[VA any](t *testing.T, size time.Duration, agg func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], VA]) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	g := stream.Stream(b, stream.With(serde.String(), serde.String()), "input").
		GroupByKey(stream.Grouped[string, string]{Key: serde.String(), Value: serde.String()})
	table := agg(g)
	stream.MapValues(table.ToStream(), func(_ window.Windowed[string], v VA) string { return fmt.Sprint(v) }).
		To("output", stream.Produced[window.Windowed[string], string]{Key: window.TimeWindowedSerde(serde.String(), size), Value: serde.String()})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

func wStart(t *testing.T, top *stream.Topology, size time.Duration, opts ...streamtest.Option) *wFixture {
	t.Helper()
	d, err := streamtest.New(top, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &wFixture{d: d,
		in:  streamtest.InputTopic(d, "input", serde.String(), serde.String()),
		out: streamtest.OutputTopic(d, "output", window.TimeWindowedSerde(serde.String(), size), serde.String())}
}

func (f *wFixture) pipe(t *testing.T, k, v string, ts int64) {
	t.Helper()
	if err := f.in.Pipe(k, v, ts); err != nil {
		t.Fatal(err)
	}
}

// read returns the unread output records as "key[start,end]=value@ts".
func (f *wFixture) read(t *testing.T) []string {
	t.Helper()
	recs, err := f.out.ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, r := range recs {
		v := r.Value
		if r.ValueNull {
			v = "null"
		}
		out = append(out, fmt.Sprintf("%s%v=%s@%d", r.Key.Key, r.Key.Window, v, r.Timestamp))
	}
	return out
}

func (f *wFixture) expect(t *testing.T, step string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := f.read(t); !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", step, got, want)
	}
}

// wCaches runs f with the record cache off and on.
func wCaches(t *testing.T, f func(t *testing.T, opts ...streamtest.Option)) {
	for _, c := range []int64{0, 10 << 20} {
		t.Run(fmt.Sprintf("cache=%d", c), func(t *testing.T) { f(t, streamtest.WithCacheMaxBytes(c)) })
	}
}

// wEmits runs f for both emit strategies, cache off and on.
func wEmits(t *testing.T, f func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option)) {
	for _, e := range []stream.EmitStrategy{stream.EmitOnWindowUpdate, stream.EmitOnWindowClose} {
		t.Run(e.String(), func(t *testing.T) {
			wCaches(t, func(t *testing.T, opts ...streamtest.Option) { f(t, e, opts...) })
		})
	}
}

func toStringAdder(_ string, v, agg string) string { return agg + "+" + v }

// ---- tumbling and hopping windows ----

// KStreamWindowAggregateTest.testAggBasic: hopping windows of 10 ms
// advancing by 5 with 100 ms grace; every record updates both its windows,
// out-of-order records (at 3, 2, 9 after 14) still update their open
// windows and the result keeps the largest timestamp. Emitting on close
// forwards nothing: no window closes within the grace period.
func TestWindowedAggBasic(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		w := window.Hopping(10*time.Millisecond, 5*time.Millisecond).WithGrace(100 * time.Millisecond)
		top := wBuild(t, 10*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.AggregateWindowed(g.WindowedBy(w).Emit(emit), func() string { return "0" }, toStringAdder,
				stream.Materialized[string, string]{Name: "topic1-Canonized", Value: serde.String()})
		})
		f := wStart(t, top, 10*time.Millisecond, opts...)
		for _, r := range []struct {
			k, v string
			ts   int64
		}{
			{"A", "1", 0}, {"B", "2", 1}, {"C", "3", 2}, {"D", "4", 3}, {"A", "1", 4},
			{"A", "1", 5}, {"B", "2", 6}, {"D", "4", 7}, {"B", "2", 8}, {"C", "3", 9},
			{"A", "1", 10}, {"B", "2", 11}, {"D", "4", 12}, {"B", "2", 13}, {"C", "3", 14},
			{"B", "1", 3}, {"B", "2", 2}, {"B", "3", 9},
		} {
			f.pipe(t, r.k, r.v, r.ts)
		}
		if emit == stream.EmitOnWindowClose {
			f.expect(t, "emit on close")
			return
		}
		f.expect(t, "updates",
			"A[0,10]=0+1@0", "B[0,10]=0+2@1", "C[0,10]=0+3@2", "D[0,10]=0+4@3", "A[0,10]=0+1+1@4",
			"A[0,10]=0+1+1+1@5", "A[5,15]=0+1@5", "B[0,10]=0+2+2@6", "B[5,15]=0+2@6",
			"D[0,10]=0+4+4@7", "D[5,15]=0+4@7", "B[0,10]=0+2+2+2@8", "B[5,15]=0+2+2@8",
			"C[0,10]=0+3+3@9", "C[5,15]=0+3@9", "A[5,15]=0+1+1@10", "A[10,20]=0+1@10",
			"B[5,15]=0+2+2+2@11", "B[10,20]=0+2@11", "D[5,15]=0+4+4@12", "D[10,20]=0+4@12",
			"B[5,15]=0+2+2+2+2@13", "B[10,20]=0+2+2@13", "C[5,15]=0+3+3@14", "C[10,20]=0+3@14",
			"B[0,10]=0+2+2+2+1@8", "B[0,10]=0+2+2+2+1+2@8", "B[0,10]=0+2+2+2+1+2+3@9", "B[5,15]=0+2+2+2+2+3@13")
	})
}

// wCase is one input record and, after it, the expected output records.
type wCase struct {
	k, v string
	ts   int64
	want []string
}

func (f *wFixture) run(t *testing.T, cases []wCase) {
	t.Helper()
	for _, c := range cases {
		f.pipe(t, c.k, c.v, c.ts)
		f.expect(t, fmt.Sprintf("after %s=%s@%d", c.k, c.v, c.ts), c.want...)
	}
}

// pick returns a when emitting on close, else u.
func pick[T any](emit stream.EmitStrategy, u, c T) T {
	if emit == stream.EmitOnWindowClose {
		return c
	}
	return u
}

func w(s ...string) []string { return s }

// hoppingAgg aggregates "input" into hopping windows of 10 ms advancing by
// 5 with 5 ms grace, appending values to "0".
func hoppingAgg(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) *wFixture {
	win := window.Hopping(10*time.Millisecond, 5*time.Millisecond).WithGrace(5 * time.Millisecond)
	top := wBuild(t, 10*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
		return stream.AggregateWindowed(g.WindowedBy(win).Emit(emit), func() string { return "0" }, toStringAdder,
			stream.Materialized[string, string]{Name: "window-store", Value: serde.String()})
	})
	return wStart(t, top, 10*time.Millisecond, opts...)
}

// KStreamWindowAggregateTest.shouldNotEmitFinalIfNotProgressEnough:
// hopping windows (10, advance 5, grace 5). C@15 closes [0,10) (15 - 5 >=
// 10): A's and B's results are emitted once, by key; D@15 and E@19 do not
// move the close time past another window end.
func TestWindowedEmitFinalNotProgressEnough(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := hoppingAgg(t, emit, opts...)
		f.run(t, []wCase{
			{"A", "1", 0, pick(emit, w("A[0,10]=0+1@0"), nil)},
			{"B", "2", 5, pick(emit, w("B[0,10]=0+2@5", "B[5,15]=0+2@5"), nil)},
			{"C", "3", 15, pick(emit, w("C[10,20]=0+3@15", "C[15,25]=0+3@15"), w("A[0,10]=0+1@0", "B[0,10]=0+2@5"))},
			{"D", "4", 15, pick(emit, w("D[10,20]=0+4@15", "D[15,25]=0+4@15"), nil)},
			{"E", "5", 19, pick(emit, w("E[10,20]=0+5@19", "E[15,25]=0+5@19"), nil)},
		})
	})
}

// KStreamWindowAggregateTest.shouldEmitWithInterval0: D@20 closes [0,10)
// and [5,15) at once; they are emitted in window order.
func TestWindowedEmitFinalInWindowOrder(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := hoppingAgg(t, emit, opts...)
		f.run(t, []wCase{
			{"A", "1", 0, pick(emit, w("A[0,10]=0+1@0"), nil)},
			{"A", "1", 5, pick(emit, w("A[0,10]=0+1+1@5", "A[5,15]=0+1@5"), nil)},
			{"B", "2", 10, pick(emit, w("B[5,15]=0+2@10", "B[10,20]=0+2@10"), nil)},
			{"C", "3", 15, pick(emit, w("C[10,20]=0+3@15", "C[15,25]=0+3@15"), w("A[0,10]=0+1+1@5"))},
			{"D", "4", 20, pick(emit, w("D[15,25]=0+4@20", "D[20,30]=0+4@20"), w("A[5,15]=0+1@5", "B[5,15]=0+2@10"))},
		})
	})
}

// KStreamWindowAggregateTest.shouldEmitWithLargeInterval (eddy has no
// emit interval: with 0 the results are those of shouldEmitWithInterval0)
// ends with E@40 closing [10,20), [15,25) and [20,30) together, in window
// order then key order.
func TestWindowedEmitFinalSeveralWindowsAtOnce(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := hoppingAgg(t, emit, opts...)
		for _, r := range []struct {
			k  string
			ts int64
		}{{"A", 0}, {"A", 5}, {"B", 10}, {"C", 15}, {"D", 20}} {
			f.pipe(t, r.k, "1", r.ts)
		}
		f.read(t)
		f.pipe(t, "E", "5", 40)
		f.expect(t, "E@40", pick(emit, w("E[35,45]=0+5@40", "E[40,50]=0+5@40"),
			w("B[10,20]=0+1@10", "C[10,20]=0+1@15", "C[15,25]=0+1@15", "D[15,25]=0+1@20", "D[20,30]=0+1@20"))...)
	})
}

// ---- TimeWindowedKStreamImplTest ----

// twProcessData is TimeWindowedKStreamImplTest.processData.
func twProcessData(t *testing.T, f *wFixture) {
	t.Helper()
	f.pipe(t, "1", "1", 10)
	f.pipe(t, "1", "2", 15)
	f.pipe(t, "1", "3", 500)
	f.pipe(t, "2", "10", 550)
	f.pipe(t, "2", "20", 500)
	f.pipe(t, "2", "30", 1000)
}

// TimeWindowedKStreamImplTest.shouldCountWindowed, shouldReduceWindowed
// and shouldAggregateWindowed: tumbling 500 ms windows without grace.
// Emitting on close, [0,500) is emitted at 1@500 and both keys' [500,1000)
// at 2@1000; 2@500 arrives after 2@550 and the result keeps 550.
func TestWindowedCountReduceAggregate(t *testing.T) {
	const size = 500 * time.Millisecond
	win := window.Tumbling(size)
	for _, tc := range []struct {
		name         string
		agg          func(g stream.KGroupedStream[string, string], emit stream.EmitStrategy) stream.KTable[window.Windowed[string], string]
		update, done []string
	}{
		{"count", func(g stream.KGroupedStream[string, string], emit stream.EmitStrategy) stream.KTable[window.Windowed[string], string] {
			counts := stream.CountWindowed(g.WindowedBy(win).Emit(emit), stream.Materialized[string, int64]{})
			return stream.MapTableValues(counts, func(_ window.Windowed[string], n int64) string { return fmt.Sprint(n) })
		},
			w("1[0,500]=1@10", "1[0,500]=2@15", "1[500,1000]=1@500", "2[500,1000]=1@550", "2[500,1000]=2@550", "2[1000,1500]=1@1000"),
			w("1[0,500]=2@15", "1[500,1000]=1@500", "2[500,1000]=2@550")},
		{"reduce", func(g stream.KGroupedStream[string, string], emit stream.EmitStrategy) stream.KTable[window.Windowed[string], string] {
			return stream.ReduceWindowed(g.WindowedBy(win).Emit(emit), func(agg, v string) string { return agg + "+" + v }, stream.Materialized[string, string]{})
		},
			w("1[0,500]=1@10", "1[0,500]=1+2@15", "1[500,1000]=3@500", "2[500,1000]=10@550", "2[500,1000]=10+20@550", "2[1000,1500]=30@1000"),
			w("1[0,500]=1+2@15", "1[500,1000]=3@500", "2[500,1000]=10+20@550")},
		{"aggregate", func(g stream.KGroupedStream[string, string], emit stream.EmitStrategy) stream.KTable[window.Windowed[string], string] {
			return stream.AggregateWindowed(g.WindowedBy(win).Emit(emit), func() string { return "0" }, toStringAdder,
				stream.Materialized[string, string]{Key: serde.String(), Value: serde.String()})
		},
			w("1[0,500]=0+1@10", "1[0,500]=0+1+2@15", "1[500,1000]=0+3@500", "2[500,1000]=0+10@550", "2[500,1000]=0+10+20@550", "2[1000,1500]=0+30@1000"),
			w("1[0,500]=0+1+2@15", "1[500,1000]=0+3@500", "2[500,1000]=0+10+20@550")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
				top := wBuild(t, size, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
					return tc.agg(g, emit)
				})
				f := wStart(t, top, size, opts...)
				twProcessData(t, f)
				f.expect(t, "output", pick(emit, tc.update, tc.done)...)
			})
		})
	}
}

// KStreamWindowAggregateTest.shouldLogAndMeterWhenSkippingNullKey, and
// the null-value rule of eddy's grouped aggregations: both are dropped and
// counted; a null value does not count as a record.
func TestWindowedDropsNullKeyAndValue(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := hoppingAgg(t, emit, opts...)
		if err := f.in.PipeValue("1", 0); err != nil {
			t.Fatal(err)
		}
		if err := f.in.PipeTombstone("k", 1); err != nil {
			t.Fatal(err)
		}
		if got := f.d.Dropped("null-key-or-value"); got != 2 {
			t.Errorf("dropped null-key-or-value = %d, want 2", got)
		}
		f.expect(t, "output")
	})
}

// KStreamWindowAggregateTest.shouldLogAndMeterWhenSkippingExpiredWindow:
// hopping 10/5 with 90 ms grace and a 100 ms retention. After k@100 the
// close time is 10: records at 0..4 fall only into the closed [0,10) and
// are dropped; 5 and 6 still update [5,15). Kafka's dropped-records counts
// each skipped window (7 here); eddy counts a record once, when all its
// windows are closed (5).
func TestWindowedSkipsExpiredWindow(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		win := window.Hopping(10*time.Millisecond, 5*time.Millisecond).WithGrace(90 * time.Millisecond)
		top := wBuild(t, 10*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.AggregateWindowed(g.WindowedBy(win).Emit(emit), func() string { return "" }, toStringAdder,
				stream.Materialized[string, string]{Name: "topic1-Canonicalized", Value: serde.String(), DisableLogging: true, Retention: 100 * time.Millisecond})
		})
		f := wStart(t, top, 10*time.Millisecond, opts...)
		for _, ts := range []int64{100, 0, 1, 2, 3, 4, 5, 6, 105, 106} {
			f.pipe(t, "k", fmt.Sprint(ts), ts)
		}
		if got := f.d.Dropped("late"); got != 5 {
			t.Errorf("dropped late = %d, want 5", got)
		}
		f.expect(t, "output", pick(emit,
			w("k[95,105]=+100@100", "k[100,110]=+100@100", "k[5,15]=+5@5", "k[5,15]=+5+6@6",
				"k[100,110]=+100+105@105", "k[105,115]=+105@105", "k[100,110]=+100+105+106@106", "k[105,115]=+105+106@106"),
			w("k[5,15]=+5+6@6"))...)
	})
}

// KStreamWindowAggregateTest.shouldLogAndMeterWhenSkippingExpiredWindowByGrace:
// tumbling 10 ms windows with 90 ms grace. At stream time 200 the close
// time is 110, so [100,110) is closed exactly at its end + grace: records at
// 100..105 are dropped, as is 6.
func TestWindowedSkipsAtGraceBoundary(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		win := window.Tumbling(10 * time.Millisecond).WithGrace(90 * time.Millisecond)
		top := wBuild(t, 10*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.AggregateWindowed(g.WindowedBy(win).Emit(emit), func() string { return "" }, toStringAdder,
				stream.Materialized[string, string]{Name: "topic1-Canonicalized", Value: serde.String(), DisableLogging: true})
		})
		f := wStart(t, top, 10*time.Millisecond, opts...)
		f.pipe(t, "k", "100", 200)
		for i, ts := range []int64{100, 101, 102, 103, 104, 105, 6} {
			f.pipe(t, "k", fmt.Sprint(i), ts)
		}
		if got := f.d.Dropped("late"); got != 7 {
			t.Errorf("dropped late = %d, want 7", got)
		}
		f.expect(t, "output", pick(emit, w("k[200,210]=+100@200"), nil)...)
	})
}

// The grace boundary from the other side (streams-semantics: a window is
// closed when end <= streamTime - grace): with size 10 and grace 5, [0,10)
// takes a record at stream time 14 and is closed at 15; emitting on close,
// its result is released by the record that moves stream time to 15.
func TestWindowedGraceBoundary(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		win := window.Tumbling(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
		top := wBuild(t, 10*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.AggregateWindowed(g.WindowedBy(win).Emit(emit), func() string { return "" }, toStringAdder,
				stream.Materialized[string, string]{Value: serde.String()})
		})
		f := wStart(t, top, 10*time.Millisecond, opts...)
		f.run(t, []wCase{
			{"a", "1", 1, pick(emit, w("a[0,10]=+1@1"), nil)},
			{"b", "1", 14, pick(emit, w("b[10,20]=+1@14"), nil)},
			{"a", "2", 9, pick(emit, w("a[0,10]=+1+2@9"), nil)}, // end 10 > 14 - 5
			{"b", "2", 15, pick(emit, w("b[10,20]=+1+2@15"), w("a[0,10]=+1+2@9"))},
			{"a", "3", 9, nil}, // end 10 <= 15 - 5: closed
			{"a", "4", 10, pick(emit, w("a[10,20]=+4@10"), nil)},
		})
		if got := f.d.Dropped("late"); got != 1 {
			t.Errorf("dropped late = %d, want 1", got)
		}
	})
}

// ---- windowed tables downstream ----

// KStreamWindowAggregateTest.testJoin: two hopping-window aggregations
// (10, advance 5) joined as tables; the join looks windows up in the other
// side's window store. Emitting on update (grace 100) every update joins;
// emitting on close (grace 5) only final results reach the join, which
// still finds the other side's (not yet emitted) windows in its store.
// The stores keep a minute: with the default retention (size + grace =
// 15 ms) table1's [0,10) has expired from its store when table2's closes
// (Kafka's segmented stores keep whole 60 s segments, so Kafka's test
// relies on that).
func TestWindowedTableJoin(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		const size = 10 * time.Millisecond
		grace := pick(emit, 100*time.Millisecond, 5*time.Millisecond)
		b := stream.NewBuilder()
		agg := func(topic, store string) stream.KTable[window.Windowed[string], string] {
			g := stream.Stream(b, stream.With(serde.String(), serde.String()), topic).
				GroupByKey(stream.Grouped[string, string]{Key: serde.String(), Value: serde.String()})
			return stream.AggregateWindowed(g.WindowedBy(window.Hopping(size, 5*time.Millisecond).WithGrace(grace)).Emit(emit),
				func() string { return "0" }, toStringAdder, stream.Materialized[string, string]{Name: store, Value: serde.String(), Retention: time.Minute})
		}
		wks := window.TimeWindowedSerde(serde.String(), size)
		prod := stream.Produced[window.Windowed[string], string]{Key: wks, Value: serde.String()}
		t1, t2 := agg("topic1", "topic1-Canonized"), agg("topic2", "topic2-Canonized")
		t1.ToStream().To("out1", prod)
		t2.ToStream().To("out2", prod)
		stream.JoinTables(t1, t2, func(_ window.Windowed[string], a, b string) string { return a + "%" + b }, stream.Materialized[window.Windowed[string], string]{}).
			ToStream().To("joined", prod)
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		f := wStart(t, top, size, opts...)
		in2 := streamtest.InputTopic(f.d, "topic2", serde.String(), serde.String())
		out := func(topic string) *wFixture {
			return &wFixture{d: f.d, out: streamtest.OutputTopic(f.d, topic, wks, serde.String())}
		}
		o1, o2, oj := out("out1"), out("out2"), out("joined")
		in1 := streamtest.InputTopic(f.d, "topic1", serde.String(), serde.String())
		pipe := func(in *streamtest.Input[string, string], recs ...any) {
			for i := 0; i < len(recs); i += 3 {
				if err := in.Pipe(recs[i].(string), recs[i+1].(string), int64(recs[i+2].(int))); err != nil {
					t.Fatal(err)
				}
			}
		}
		if emit == stream.EmitOnWindowUpdate {
			// processEmitUpdateJoin
			pipe(in1, "A", "1", 0, "B", "2", 1, "C", "3", 2, "D", "4", 3, "A", "1", 9)
			o1.expect(t, "table1", "A[0,10]=0+1@0", "B[0,10]=0+2@1", "C[0,10]=0+3@2", "D[0,10]=0+4@3", "A[0,10]=0+1+1@9", "A[5,15]=0+1@9")
			o2.expect(t, "table2")
			oj.expect(t, "joined")
			pipe(in1, "A", "1", 5, "B", "2", 6, "D", "4", 7, "B", "2", 8, "C", "3", 9)
			o1.expect(t, "table1", "A[0,10]=0+1+1+1@9", "A[5,15]=0+1+1@9", "B[0,10]=0+2+2@6", "B[5,15]=0+2@6",
				"D[0,10]=0+4+4@7", "D[5,15]=0+4@7", "B[0,10]=0+2+2+2@8", "B[5,15]=0+2+2@8", "C[0,10]=0+3+3@9", "C[5,15]=0+3@9")
			pipe(in2, "A", "a", 0, "B", "b", 1, "C", "c", 2, "D", "d", 20, "A", "a", 20)
			o1.expect(t, "table1")
			o2.expect(t, "table2", "A[0,10]=0+a@0", "B[0,10]=0+b@1", "C[0,10]=0+c@2", "D[15,25]=0+d@20", "D[20,30]=0+d@20", "A[15,25]=0+a@20", "A[20,30]=0+a@20")
			oj.expect(t, "joined", "A[0,10]=0+1+1+1%0+a@9", "B[0,10]=0+2+2+2%0+b@8", "C[0,10]=0+3+3%0+c@9")
			pipe(in2, "A", "a", 5, "B", "b", 6, "D", "d", 7, "D", "d", 18, "A", "a", 21)
			o1.expect(t, "table1")
			o2.expect(t, "table2", "A[0,10]=0+a+a@5", "A[5,15]=0+a@5", "B[0,10]=0+b+b@6", "B[5,15]=0+b@6", "D[0,10]=0+d@7", "D[5,15]=0+d@7",
				"D[10,20]=0+d@18", "D[15,25]=0+d+d@20", "A[15,25]=0+a+a@21", "A[20,30]=0+a+a@21")
			oj.expect(t, "joined", "A[0,10]=0+1+1+1%0+a+a@9", "A[5,15]=0+1+1%0+a@9", "B[0,10]=0+2+2+2%0+b+b@8", "B[5,15]=0+2+2%0+b@8",
				"D[0,10]=0+4+4%0+d@7", "D[5,15]=0+4%0+d@7")
			return
		}
		// processEmitFinalJoin
		pipe(in1, "A", "1", 0, "B", "2", 1, "C", "3", 2, "D", "4", 3, "A", "1", 9, "A", "1", 15)
		o1.expect(t, "table1", "A[0,10]=0+1+1@9", "B[0,10]=0+2@1", "C[0,10]=0+3@2", "D[0,10]=0+4@3")
		o2.expect(t, "table2")
		oj.expect(t, "joined")
		pipe(in1, "A", "1", 10, "B", "2", 11, "D", "4", 12, "B", "2", 13, "C", "3", 14, "A", "1", 20)
		o1.expect(t, "table1", "A[5,15]=0+1+1@10", "B[5,15]=0+2+2@13", "C[5,15]=0+3@14", "D[5,15]=0+4@12")
		o2.expect(t, "table2")
		oj.expect(t, "joined")
		pipe(in2, "A", "a", 0, "B", "b", 1, "C", "c", 2, "D", "d", 10, "A", "a", 15)
		o1.expect(t, "table1")
		o2.expect(t, "table2", "A[0,10]=0+a@0", "B[0,10]=0+b@1", "C[0,10]=0+c@2")
		oj.expect(t, "joined", "A[0,10]=0+1+1%0+a@9", "B[0,10]=0+2%0+b@1", "C[0,10]=0+3%0+c@2")
		pipe(in2, "A", "a", 5, "B", "b", 6, "D", "d", 7, "D", "d", 18, "A", "a", 21)
		o1.expect(t, "table1")
		o2.expect(t, "table2", "A[5,15]=0+a@5", "B[5,15]=0+b@6", "D[5,15]=0+d+d@10")
		oj.expect(t, "joined", "A[5,15]=0+1+1%0+a@10", "B[5,15]=0+2+2%0+b@13", "D[5,15]=0+4%0+d+d@12")
	})
}

// TopologyTest.timeWindowZeroArgCountShouldPreserveTopologyStructure and
// timeWindowNamedMaterializedCountShouldPreserveTopologyStructure: a
// windowed count describes like Kafka's, the store numbered before the
// processor.
func TestWindowedDescribe(t *testing.T) {
	for _, tc := range []struct {
		m    stream.Materialized[string, int64]
		want string
	}{
		{stream.Materialized[string, int64]{}, "Topologies:\n" +
			"   Sub-topology: 0\n" +
			"    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n" +
			"      --> KSTREAM-AGGREGATE-0000000002\n" +
			"    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n" +
			"      --> none\n" +
			"      <-- KSTREAM-SOURCE-0000000000\n\n"},
		{stream.Materialized[string, int64]{Name: "count-store", InMemory: true}, "Topologies:\n" +
			"   Sub-topology: 0\n" +
			"    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n" +
			"      --> KSTREAM-AGGREGATE-0000000001\n" +
			"    Processor: KSTREAM-AGGREGATE-0000000001 (stores: [count-store])\n" +
			"      --> none\n" +
			"      <-- KSTREAM-SOURCE-0000000000\n\n"},
	} {
		b := stream.NewBuilder()
		g := stream.Stream(b, stream.With(serde.String(), serde.String()), "input-topic").GroupByKey(stream.Grouped[string, string]{})
		stream.CountWindowed(g.WindowedBy(window.Tumbling(time.Millisecond)), tc.m)
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		describe(t, top, tc.want)
	}
	// A windowed reduce is a KSTREAM-REDUCE node with its store.
	b := stream.NewBuilder()
	g := stream.Stream(b, stream.With(serde.String(), serde.String()), "input-topic").GroupByKey(stream.Grouped[string, string]{})
	stream.ReduceWindowed(g.WindowedBySliding(window.Sliding(time.Millisecond)), func(a, v string) string { return a + v }, stream.Materialized[string, string]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	describe(t, top, "Topologies:\n"+
		"   Sub-topology: 0\n"+
		"    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic])\n"+
		"      --> KSTREAM-REDUCE-0000000002\n"+
		"    Processor: KSTREAM-REDUCE-0000000002 (stores: [KSTREAM-REDUCE-STATE-STORE-0000000001])\n"+
		"      --> none\n"+
		"      <-- KSTREAM-SOURCE-0000000000\n\n")
}

// ---- build errors ----

// WindowStoreMaterializer and SlidingWindowStoreMaterializer: a retention
// below size + grace (sliding: 2 * time difference + grace) is an error,
// as are a missing serde and an invalid window definition.
func TestWindowedBuildErrors(t *testing.T) {
	type point struct{ X, Y int }
	for _, tc := range []struct {
		name  string
		build func(b *stream.Builder)
		want  string
	}{
		{"retention below size+grace", func(b *stream.Builder) {
			g := stream.Stream(b, stream.With(serde.String(), serde.String()), "in").GroupByKey(stream.Grouped[string, string]{})
			stream.CountWindowed(g.WindowedBy(window.Tumbling(10*time.Millisecond).WithGrace(5*time.Millisecond)),
				stream.Materialized[string, int64]{Name: "s", Retention: 14 * time.Millisecond})
		}, "retention period of the window store s must be no smaller than its window size plus the grace period"},
		{"sliding retention below 2*diff+grace", func(b *stream.Builder) {
			g := stream.Stream(b, stream.With(serde.String(), serde.String()), "in").GroupByKey(stream.Grouped[string, string]{})
			stream.CountWindowed(g.WindowedBySliding(window.Sliding(10*time.Millisecond).WithGrace(5*time.Millisecond)),
				stream.Materialized[string, int64]{Name: "s", Retention: 24 * time.Millisecond})
		}, "must be no smaller than 2 * time difference plus the grace period"},
		{"no key serde", func(b *stream.Builder) {
			s := stream.Stream(b, stream.With(serde.String(), serde.String()), "in")
			g := stream.GroupBy(s, func(_, v string) point { return point{} }, stream.Grouped[point, string]{})
			stream.CountWindowed(g.WindowedBy(window.Tumbling(time.Second)), stream.Materialized[point, int64]{Name: "s"})
		}, "no key serde for store s"},
		{"no value serde", func(b *stream.Builder) {
			g := stream.Stream(b, stream.With(serde.String(), serde.String()), "in").GroupByKey(stream.Grouped[string, string]{})
			stream.AggregateWindowed(g.WindowedBy(window.Tumbling(time.Second)), func() point { return point{} },
				func(string, string, point) point { return point{} }, stream.Materialized[string, point]{Name: "s"})
		}, "no value serde for store s"},
		{"invalid windows", func(b *stream.Builder) {
			g := stream.Stream(b, stream.With(serde.String(), serde.String()), "in").GroupByKey(stream.Grouped[string, string]{})
			stream.CountWindowed(g.WindowedBy(window.Hopping(time.Second, 2*time.Second)), stream.Materialized[string, int64]{})
		}, "window: invalid window definition"},
		{"zero sliding windows", func(b *stream.Builder) {
			g := stream.Stream(b, stream.With(serde.String(), serde.String()), "in").GroupByKey(stream.Grouped[string, string]{})
			stream.CountWindowed(g.WindowedBySliding(window.SlidingWindows{}), stream.Materialized[string, int64]{})
		}, "zero SlidingWindows"},
		{"unknown emit strategy", func(b *stream.Builder) {
			g := stream.Stream(b, stream.With(serde.String(), serde.String()), "in").GroupByKey(stream.Grouped[string, string]{})
			stream.CountWindowed(g.WindowedBy(window.Tumbling(time.Second)).Emit(7), stream.Materialized[string, int64]{})
		}, "unknown emit strategy EmitStrategy(7)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := stream.NewBuilder()
			tc.build(b)
			_, err := b.Build()
			if !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build error %v, want ErrTopology containing %q", err, tc.want)
			}
		})
	}
	// The smallest retentions are fine.
	b := stream.NewBuilder()
	g := stream.Stream(b, stream.With(serde.String(), serde.String()), "in").GroupByKey(stream.Grouped[string, string]{})
	stream.CountWindowed(g.WindowedBy(window.Tumbling(10*time.Millisecond).WithGrace(5*time.Millisecond)),
		stream.Materialized[string, int64]{Name: "a", Retention: 15 * time.Millisecond})
	stream.CountWindowed(g.WindowedBySliding(window.Sliding(10*time.Millisecond).WithGrace(5*time.Millisecond)),
		stream.Materialized[string, int64]{Name: "b", Retention: 25 * time.Millisecond})
	if _, err := b.Build(); err != nil {
		t.Fatal(err)
	}
}

// The window store's changelog: Kafka's window key layout (key, 8-byte
// start, 4-byte sequence number 0), the plain aggregate as value and the
// window's timestamp as record timestamp; the changelog is compact,delete
// with retention.ms = store retention + 1 day.
func TestWindowedChangelog(t *testing.T) {
	win := window.Hopping(10*time.Millisecond, 5*time.Millisecond).WithGrace(5 * time.Millisecond)
	top := wBuild(t, 10*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], int64] {
		return stream.CountWindowed(g.WindowedBy(win), stream.Materialized[string, int64]{Name: "counts"})
	})
	f := wStart(t, top, 10*time.Millisecond)
	f.pipe(t, "k", "a", 7)
	f.pipe(t, "k", "b", 3) // only in [0,10)
	var got []string
	for _, r := range f.d.Records("test-app-counts-changelog") {
		k, start, err := stream.SplitWindowStoreKey(r.Key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := serde.Int64().Deserialize("", r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Key[len(r.Key)-4:], []byte{0, 0, 0, 0}) {
			t.Errorf("key %x: sequence number is not 0", r.Key)
		}
		got = append(got, fmt.Sprintf("%s@%d=%d@%d", k, start, n, r.Timestamp))
	}
	if want := []string{"k@0=1@7", "k@5=1@7", "k@0=2@7"}; !slices.Equal(got, want) {
		t.Errorf("changelog %q, want %q", got, want)
	}
	for _, sub := range top.Subtopologies("test-app") {
		for _, st := range sub.Stores {
			ct := st.Changelog
			if ct.Name != "test-app-counts-changelog" {
				continue
			}
			if st.Kind != stream.WindowKind || st.Retention != 15*time.Millisecond {
				t.Errorf("store %+v", st)
			}
			if ct.Configs["cleanup.policy"] != "compact,delete" || ct.Configs["retention.ms"] != fmt.Sprint((15*time.Millisecond+24*time.Hour).Milliseconds()) {
				t.Errorf("changelog configs %v", ct.Configs)
			}
			return
		}
	}
	t.Error("no changelog topic test-app-counts-changelog")
}

// ---- sliding windows ----

// gather reads the unread output and groups it by window start, as
// Kafka's sliding-window tests do: start → sorted distinct "value@ts".
// Every window must span the time difference d.
func (f *wFixture) gather(t *testing.T, d int64) map[int64][]string {
	t.Helper()
	recs, err := f.out.ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64][]string{}
	for _, r := range recs {
		if r.Key.Window.End != r.Key.Window.Start+d {
			t.Errorf("window %v does not span %d ms", r.Key.Window, d)
		}
		s := fmt.Sprintf("%s@%d", r.Value, r.Timestamp)
		if !slices.Contains(out[r.Key.Window.Start], s) {
			out[r.Key.Window.Start] = append(out[r.Key.Window.Start], s)
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

func (f *wFixture) expectGathered(t *testing.T, d int64, want map[int64][]string) {
	t.Helper()
	got := f.gather(t, d)
	for _, v := range want {
		slices.Sort(v)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("windows by start:\n got %v\nwant %v", got, want)
	}
}

// slidingAgg aggregates "input" into sliding windows, appending values to
// "0".
func slidingAgg(t *testing.T, win window.SlidingWindows, emit stream.EmitStrategy, opts ...streamtest.Option) *wFixture {
	top := wBuild(t, win.TimeDifference(), func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
		return stream.AggregateWindowed(g.WindowedBySliding(win).Emit(emit), func() string { return "0" }, toStringAdder,
			stream.Materialized[string, string]{Name: "topic-Canonized", Value: serde.String()})
	})
	return wStart(t, top, win.TimeDifference(), opts...)
}

type tsv struct {
	v  string
	ts int64
}

func (f *wFixture) pipeAll(t *testing.T, k string, recs ...tsv) {
	t.Helper()
	for _, r := range recs {
		f.pipe(t, k, r.v, r.ts)
	}
}

// KStreamSlidingWindowAggregateTest.testAggregateSmallInput: time
// difference 10, grace 5. Two records at 10 share the left window [0,10];
// 14 creates the right window of 10 ([11,21]); emitting on close, 30 closes
// every window ending before 25.
func TestSlidingAggregateSmallInput(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := slidingAgg(t, window.Sliding(10*time.Millisecond).WithGrace(5*time.Millisecond), emit, opts...)
		f.pipeAll(t, "A", tsv{"1", 10}, tsv{"2", 10}, tsv{"3", 14}, tsv{"4", 15}, tsv{"5", 20}, tsv{"6", 22}, tsv{"7", 30})
		if emit == stream.EmitOnWindowClose {
			f.expectGathered(t, 10, map[int64][]string{
				0: {"0+1+2@10"}, 4: {"0+1+2+3@14"}, 5: {"0+1+2+3+4@15"}, 10: {"0+1+2+3+4+5@20"},
				11: {"0+3+4+5@20"}, 12: {"0+3+4+5+6@22"},
			})
			return
		}
		f.expectGathered(t, 10, map[int64][]string{
			0: {"0+1@10", "0+1+2@10"}, 4: {"0+1+2+3@14"}, 5: {"0+1+2+3+4@15"}, 10: {"0+1+2+3+4+5@20"},
			11: {"0+3@14", "0+3+4@15", "0+3+4+5@20"}, 12: {"0+3+4+5+6@22"},
			15: {"0+4@15", "0+4+5@20", "0+4+5+6@22"}, 16: {"0+5@20", "0+5+6@22"},
			20: {"0+5+6+7@30"}, 21: {"0+6@22", "0+6+7@30"}, 23: {"0+7@30"},
		})
	})
}

// KStreamSlidingWindowAggregateTest.testReduceSmallInput.
func TestSlidingReduceSmallInput(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		win := window.Sliding(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
		top := wBuild(t, win.TimeDifference(), func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.ReduceWindowed(g.WindowedBySliding(win).Emit(emit), func(agg, v string) string { return agg + "+" + v },
				stream.Materialized[string, string]{Name: "store-name"})
		})
		f := wStart(t, top, win.TimeDifference(), opts...)
		f.pipeAll(t, "A", tsv{"1", 10}, tsv{"2", 14}, tsv{"3", 15}, tsv{"4", 22}, tsv{"5", 26}, tsv{"6", 30})
		if emit == stream.EmitOnWindowClose {
			f.expectGathered(t, 10, map[int64][]string{
				0: {"1@10"}, 4: {"1+2@14"}, 5: {"1+2+3@15"}, 11: {"2+3@15"}, 12: {"2+3+4@22"},
			})
			return
		}
		f.expectGathered(t, 10, map[int64][]string{
			0: {"1@10"}, 4: {"1+2@14"}, 5: {"1+2+3@15"}, 11: {"2@14", "2+3@15"}, 12: {"2+3+4@22"},
			15: {"3@15", "3+4@22"}, 16: {"4@22", "4+5@26"}, 20: {"4+5+6@30"}, 23: {"5@26", "5+6@30"}, 27: {"6@30"},
		})
	})
}

// KStreamSlidingWindowAggregateTest.testEarlyRecordsSmallInput and
// testEarlyNoGracePeriodSmallInput: time difference 50 (grace 0); records
// before 50 go into [0,50] and get right windows; the out-of-order 3 and
// 10 update the right windows that contain them.
func TestSlidingEarlyRecordsSmallInput(t *testing.T) {
	for _, win := range []window.SlidingWindows{
		window.Sliding(50 * time.Millisecond).WithGrace(0),
		window.Sliding(50 * time.Millisecond),
	} {
		wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
			f := slidingAgg(t, win, emit, opts...)
			f.pipeAll(t, "A", tsv{"1", 0}, tsv{"2", 5}, tsv{"3", 6}, tsv{"4", 3}, tsv{"5", 13}, tsv{"6", 10}, tsv{"7", 70})
			if emit == stream.EmitOnWindowClose {
				f.expectGathered(t, 50, map[int64][]string{
					0: {"0+1+2+3+4+5+6@13"}, 1: {"0+2+3+4+5+6@13"}, 4: {"0+2+3+5+6@13"},
					6: {"0+3+5+6@13"}, 7: {"0+5+6@13"}, 11: {"0+5@13"},
				})
				return
			}
			f.expectGathered(t, 50, map[int64][]string{
				0:  {"0+1@0", "0+1+2@5", "0+1+2+3@6", "0+1+2+3+4@6", "0+1+2+3+4+5@13", "0+1+2+3+4+5+6@13"},
				1:  {"0+2@5", "0+2+3@6", "0+2+3+4@6", "0+2+3+4+5@13", "0+2+3+4+5+6@13"},
				4:  {"0+2+3@6", "0+2+3+5@13", "0+2+3+5+6@13"},
				6:  {"0+3@6", "0+3+5@13", "0+3+5+6@13"},
				7:  {"0+5@13", "0+5+6@13"},
				11: {"0+5@13"},
				20: {"0+7@70"},
			})
		})
	}
}

// KStreamSlidingWindowAggregateTest.testEarlyRecordsRepeatedInput: time
// difference 5, no grace; repeated early timestamps.
func TestSlidingEarlyRecordsRepeatedInput(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := slidingAgg(t, window.Sliding(5*time.Millisecond), emit, opts...)
		f.pipeAll(t, "A", tsv{"1", 0}, tsv{"2", 2}, tsv{"3", 4}, tsv{"4", 0}, tsv{"5", 2}, tsv{"6", 2}, tsv{"7", 0}, tsv{"8", 7})
		if emit == stream.EmitOnWindowClose {
			f.expectGathered(t, 5, map[int64][]string{0: {"0+1+2+3+4+5+6+7@4"}, 1: {"0+2+3+5+6@4"}})
			return
		}
		f.expectGathered(t, 5, map[int64][]string{
			0: {"0+1@0", "0+1+2@2", "0+1+2+3+4+5@4", "0+1+2+3+4+5+6@4", "0+1+2+3@4", "0+1+2+3+4@4", "0+1+2+3+4+5+6+7@4"},
			1: {"0+2+3+5+6@4", "0+2@2", "0+2+3@4", "0+2+3+5@4"},
			2: {"0+2+3+5+6+8@7"},
			3: {"0+3@4", "0+3+8@7"},
			5: {"0+8@7"},
		})
	})
}

// KStreamSlidingWindowAggregateTest.testNoGracePeriodSmallInput: time
// difference 50, no grace; the out-of-order 103 and 110 update existing
// windows and create the right windows they need.
func TestSlidingNoGracePeriodSmallInput(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := slidingAgg(t, window.Sliding(50*time.Millisecond), emit, opts...)
		f.pipeAll(t, "A", tsv{"1", 100}, tsv{"2", 105}, tsv{"3", 106}, tsv{"4", 103}, tsv{"5", 113}, tsv{"6", 110})
		if emit == stream.EmitOnWindowClose {
			f.expectGathered(t, 50, map[int64][]string{50: {"0+1@100"}, 55: {"0+1+2@105"}, 56: {"0+1+2+3+4@106"}})
			return
		}
		f.expectGathered(t, 50, map[int64][]string{
			50:  {"0+1@100"},
			55:  {"0+1+2@105"},
			56:  {"0+1+2+3@106", "0+1+2+3+4@106"},
			63:  {"0+1+2+3+4+5@113", "0+1+2+3+4+5+6@113"},
			101: {"0+2@105", "0+2+3@106", "0+2+3+4@106", "0+2+3+4+5@113", "0+2+3+4+5+6@113"},
			104: {"0+2+3@106", "0+2+3+5@113", "0+2+3+5+6@113"},
			106: {"0+3@106", "0+3+5@113", "0+3+5+6@113"},
			107: {"0+5@113", "0+5+6@113"},
			111: {"0+5@113"},
		})
	})
}

// KStreamSlidingWindowAggregateTest.shouldLogAndMeterWhenSkippingExpiredWindowByGrace:
// time difference 10, grace 90. At stream time 200 the close time is 110:
// the left windows of 100..105 ([90,100] .. [95,105]) are closed, so those
// records change nothing and are counted as dropped, as is 15 (15 + 10 <
// 110). Emitting on close, [190,200] is released by 300 (200 < 300 - 90
// - ... : end < close time) and [290,300] by 400.
func TestSlidingSkipsExpiredWindowByGrace(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := slidingAgg(t, window.Sliding(10*time.Millisecond).WithGrace(90*time.Millisecond), emit, opts...)
		f.pipe(t, "k", "100", 200)
		for i, ts := range []int64{100, 101, 102, 103, 104, 105, 15} {
			f.pipe(t, "k", fmt.Sprint(i), ts)
		}
		f.pipe(t, "k", "101", 300)
		f.pipe(t, "k", "102", 400)
		if got := f.d.Dropped("late"); got != 7 {
			t.Errorf("dropped late = %d, want 7", got)
		}
		f.expect(t, "output", pick(emit,
			w("k[190,200]=0+100@200", "k[290,300]=0+101@300", "k[390,400]=0+102@400"),
			w("k[190,200]=0+100@200", "k[290,300]=0+101@300"))...)
	})
}

// The sliding grace boundary: a window is updated while end >= stream
// time - grace (Kafka's KStreamSlidingWindowAggregate), so with d = 10 and
// grace 5 the left window [0,10] of a record at 10 still takes a record at
// stream time 15, and emitting on close it is released at 16, one past end
// + grace (the table's finalAt rule for sliding windows).
func TestSlidingGraceBoundary(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := slidingAgg(t, window.Sliding(10*time.Millisecond).WithGrace(5*time.Millisecond), emit, opts...)
		f.run(t, []wCase{
			{"a", "1", 10, pick(emit, w("a[0,10]=0+1@10"), nil)},
			{"b", "1", 15, pick(emit, w("b[5,15]=0+1@15"), nil)},
			// 9 is early: it joins [0,10] (end 10 >= 15 - 5: still open)
			// and gets a right window holding a@10.
			{"a", "2", 9, pick(emit, w("a[10,20]=0+1@10", "a[0,10]=0+1+2@10"), nil)},
			{"b", "2", 16, pick(emit, w("b[16,26]=0+2@16", "b[6,16]=0+1+2@16"), w("a[0,10]=0+1+2@10"))},
		})
	})
}

// ---- restart ----

// restoreEnv is a TaskEnv whose stores are restored from changelog
// records captured before (what the runtime does on a new worker) and
// which keeps what the task sends.
type restoreEnv struct {
	changelogs map[string][]stream.RawRecord
	sent       []stream.RawRecord
}

func (e *restoreEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	info.InMemory = true
	s, err := stream.OpenStateStore(info, "", table.BadgerOptions{})
	if err != nil {
		return nil, err
	}
	return s, stream.RestoreChangelog(info, s, e.changelogs[info.Changelog.Name])
}

func (e *restoreEnv) Send(rec stream.RawRecord) error {
	e.sent = append(e.sent, rec)
	return nil
}

// KStreamWindowAggregateTest.shouldEmitFromLastEmitTime, through a task
// restart: A@0, B@5 and C@15 are processed (emitting on close, C@15
// releases A's and B's [0,10)); a new task restored from the changelog
// then gets D@25. It emits B[5,15) and C[10,20) and not [0,10) again: the
// last close time emitted is recomputed from the restored store. The
// restored task also knows the stream time it had reached: a record at 4
// (whose only window [0,10) closed at 15) is dropped, emitting on update
// too.
func TestWindowedStateSurvivesRestart(t *testing.T) {
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		f := hoppingAgg(t, emit, opts...)
		f.pipe(t, "A", "1", 0)
		f.pipe(t, "B", "2", 5)
		f.pipe(t, "C", "3", 15)
		f.expect(t, "before restart", pick(emit,
			w("A[0,10]=0+1@0", "B[0,10]=0+2@5", "B[5,15]=0+2@5", "C[10,20]=0+3@15", "C[15,25]=0+3@15"),
			w("A[0,10]=0+1@0", "B[0,10]=0+2@5"))...)
		changelog := "test-app-window-store-changelog"
		env := &restoreEnv{changelogs: map[string][]stream.RawRecord{changelog: f.d.Records(changelog)}}
		if len(env.changelogs[changelog]) == 0 {
			t.Fatal("no changelog records")
		}
		if err := f.d.Close(); err != nil {
			t.Fatal(err)
		}

		// A new task of the same topology, on another worker.
		win := window.Hopping(10*time.Millisecond, 5*time.Millisecond).WithGrace(5 * time.Millisecond)
		top2 := wBuild(t, 10*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.AggregateWindowed(g.WindowedBy(win).Emit(emit), func() string { return "0" }, toStringAdder,
				stream.Materialized[string, string]{Name: "window-store", Value: serde.String()})
		})
		dropped := 0
		task, err := top2.NewTask(stream.TaskConfig{ApplicationID: "test-app", ID: stream.TaskID{}, Env: env, CacheMaxBytes: 1 << 20,
			Hooks: stream.TaskHooks{Dropped: func(_, reason string) {
				if reason == "late" {
					dropped++
				}
			}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := task.Init(); err != nil {
			t.Fatal(err)
		}
		defer task.Close()
		for i, r := range []struct {
			k  string
			ts int64
		}{{"A", 4}, {"D", 25}} {
			v := map[string]string{"A": "9", "D": "4"}[r.k]
			if err := task.Add(stream.RawRecord{Topic: "input", Offset: int64(3 + i), Key: []byte(r.k), Value: []byte(v), Timestamp: r.ts}); err != nil {
				t.Fatal(err)
			}
			if _, err := task.Process(1); err != nil {
				t.Fatal(err)
			}
			if err := task.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if dropped != 1 {
			t.Errorf("dropped late after restart = %d, want 1 (A@4)", dropped)
		}
		ks := window.TimeWindowedSerde(serde.String(), 10*time.Millisecond)
		var got []string
		for _, r := range env.sent {
			if r.Topic != "output" {
				continue
			}
			k, err := ks.Deserialize(r.Topic, r.Key)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s%v=%s@%d", k.Key, k.Window, r.Value, r.Timestamp))
		}
		want := pick(emit, w("D[20,30]=0+4@25", "D[25,35]=0+4@25"), w("B[5,15]=0+2@5", "C[10,20]=0+3@15"))
		if !slices.Equal(got, want) {
			t.Errorf("after restart:\n got %q\nwant %q", got, want)
		}
	})
}

// KStreamSlidingWindowAggregateTest.testAggregateRandomInput: the same 21
// records in shuffled orders (20 fixed seeds), time difference 10, grace
// 100, with an aggregator sorting the letters so that the final value of
// each window does not depend on the order. The last value forwarded per
// window start must be the expected one. Emitting on close, V@181 releases
// every window ending before 81. Kafka emits only those from 52 on: it
// writes V's windows first, which expires the older ones from its store
// (retention 2*10+100) before they are read; eddy emits before writing,
// so no closed window is lost.
func TestSlidingAggregateRandomInput(t *testing.T) {
	input := []tsv{{"A", 10}, {"B", 15}, {"C", 16}, {"D", 18}, {"E", 30}, {"F", 40}, {"G", 55}, {"H", 56}, {"I", 58}, {"J", 58},
		{"K", 62}, {"L", 63}, {"M", 63}, {"N", 63}, {"O", 76}, {"P", 77}, {"Q", 80}, {"R", 2}, {"S", 3}, {"T", 5}, {"U", 8}}
	final := map[int64]string{
		0: "ARSTU@10", 3: "ASTU@10", 4: "ATU@10", 5: "ABTU@15", 6: "ABCU@16", 8: "ABCDU@18", 9: "ABCD@18", 11: "BCD@18",
		16: "CD@18", 17: "D@18", 20: "E@30", 30: "EF@40", 31: "F@40", 45: "G@55", 46: "GH@56", 48: "GHIJ@58",
		52: "GHIJK@62", 53: "GHIJKLMN@63", 56: "HIJKLMN@63", 57: "IJKLMN@63", 59: "KLMN@63", 63: "LMN@63",
		66: "O@76", 67: "OP@77", 70: "OPQ@80", 77: "PQ@80", 78: "Q@80", 171: "V@181",
	}
	sortAdd := func(_ string, v, agg string) string {
		b := []byte(agg + v)
		slices.Sort(b)
		return string(b)
	}
	win := window.Sliding(10 * time.Millisecond).WithGrace(100 * time.Millisecond)
	wEmits(t, func(t *testing.T, emit stream.EmitStrategy, opts ...streamtest.Option) {
		top := wBuild(t, win.TimeDifference(), func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.AggregateWindowed(g.WindowedBySliding(win).Emit(emit), func() string { return "" }, sortAdd,
				stream.Materialized[string, string]{Name: "store-name"})
		})
		want := map[int64]string{}
		for start, v := range final {
			if emit == stream.EmitOnWindowUpdate || start+10 < 81 {
				want[start] = v
			}
		}
		for seed := int64(1); seed <= 20; seed++ {
			recs := slices.Clone(input)
			rand.New(rand.NewSource(seed)).Shuffle(len(recs), func(i, j int) { recs[i], recs[j] = recs[j], recs[i] })
			f := wStart(t, top, win.TimeDifference(), opts...)
			f.pipeAll(t, "A", recs...)
			f.pipe(t, "A", "V", 181)
			got := map[int64]string{}
			outs, err := f.out.ReadRecords()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range outs {
				got[r.Key.Window.Start] = fmt.Sprintf("%s@%d", r.Value, r.Timestamp)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d, order %v:\n got %v\nwant %v", seed, recs, got, want)
			}
		}
	})
}

// SlidingWindowedKStreamImplTest.shouldCountSlidingWindows and
// shouldReduceSlidingWindows: time difference 100, grace 1000; the last
// result per key and window.
func TestSlidingCountAndReduce(t *testing.T) {
	win := window.Sliding(100 * time.Millisecond).WithGrace(time.Second)
	for _, tc := range []struct {
		name string
		agg  func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string]
		want map[string]string
	}{
		{"count", func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			counts := stream.CountWindowed(g.WindowedBySliding(win), stream.Materialized[string, int64]{})
			return stream.MapTableValues(counts, func(_ window.Windowed[string], n int64) string { return fmt.Sprint(n) })
		}, map[string]string{
			"1[0,100]": "1@100", "1[101,201]": "1@150", "1[50,150]": "2@150", "1[400,500]": "1@500",
			"2[100,200]": "2@200", "2[50,150]": "1@150", "2[151,251]": "1@200",
		}},
		{"reduce", func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.ReduceWindowed(g.WindowedBySliding(win), func(agg, v string) string { return agg + "+" + v }, stream.Materialized[string, string]{})
		}, map[string]string{
			"1[0,100]": "1@100", "1[101,201]": "2@150", "1[50,150]": "1+2@150", "1[400,500]": "3@500",
			"2[100,200]": "10+20@200", "2[50,150]": "20@150", "2[151,251]": "10@200",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wCaches(t, func(t *testing.T, opts ...streamtest.Option) {
				f := wStart(t, wBuild(t, 100*time.Millisecond, tc.agg), 100*time.Millisecond, opts...)
				f.pipe(t, "1", "1", 100)
				f.pipe(t, "1", "2", 150)
				f.pipe(t, "1", "3", 500)
				f.pipe(t, "2", "10", 200)
				f.pipe(t, "2", "20", 150)
				recs, err := f.out.ReadRecords()
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, r := range recs {
					got[fmt.Sprintf("%s%v", r.Key.Key, r.Key.Window)] = fmt.Sprintf("%s@%d", r.Value, r.Timestamp)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("last results:\n got %v\nwant %v", got, tc.want)
				}
			})
		})
	}
}

// The windowed tables tell Suppress(UntilWindowCloses) when a window is
// final (end + grace for time windows, one more for sliding windows whose
// end is included): suppressing the updates gives the results emitting on
// close gives (TimeWindowedKStreamImplTest.shouldCountWindowed and
// KStreamSlidingWindowAggregateTest.testAggregateSmallInput).
func TestWindowedSuppressUntilWindowCloses(t *testing.T) {
	wCaches(t, func(t *testing.T, opts ...streamtest.Option) {
		top := wBuild(t, 500*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], int64] {
			return stream.CountWindowed(g.WindowedBy(window.Tumbling(500*time.Millisecond)), stream.Materialized[string, int64]{}).
				Suppress(stream.UntilWindowCloses(stream.Unbounded()))
		})
		f := wStart(t, top, 500*time.Millisecond, opts...)
		twProcessData(t, f)
		f.expect(t, "suppressed", "1[0,500]=2@15", "1[500,1000]=1@500", "2[500,1000]=2@550")

		win := window.Sliding(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
		top = wBuild(t, 10*time.Millisecond, func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], string] {
			return stream.AggregateWindowed(g.WindowedBySliding(win), func() string { return "0" }, toStringAdder, stream.Materialized[string, string]{}).
				Suppress(stream.UntilWindowCloses(stream.Unbounded()))
		})
		f = wStart(t, top, 10*time.Millisecond, opts...)
		f.pipeAll(t, "A", tsv{"1", 10}, tsv{"2", 10}, tsv{"3", 14}, tsv{"4", 15}, tsv{"5", 20}, tsv{"6", 22}, tsv{"7", 30})
		f.expectGathered(t, 10, map[int64][]string{
			0: {"0+1+2@10"}, 4: {"0+1+2+3@14"}, 5: {"0+1+2+3+4@15"}, 10: {"0+1+2+3+4+5@20"},
			11: {"0+3+4+5@20"}, 12: {"0+3+4+5+6@22"},
		})
	})
}
