package stream_test

// Semantic tests of table-table joins, foreign-key joins and global-table
// joins. Inputs and expected outputs are facts from Kafka Streams' own test
// suites (apache/kafka, streams/src/test/java/org/apache/kafka/streams/...),
// cited above each case; deviations are noted where they occur.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/table"
)

// must fails the test on err.
func jMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readAll reads o's unread records as "key=value@ts" strings.
func jReadAll[K, V any](t *testing.T, o *streamtest.Output[K, V]) []string {
	t.Helper()
	recs, err := o.ReadRecords()
	jMust(t, err)
	out := []string{}
	for _, r := range recs {
		out = append(out, r.String())
	}
	return out
}

// expectRecords checks o's unread records.
func jExpect[K, V any](t *testing.T, step string, o *streamtest.Output[K, V], want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := jReadAll(t, o); !slices.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", step, got, want)
	}
}

func jStrp(s string) *string { return &s }

func jOrNull(s string, ok bool) string {
	if !ok {
		return "null"
	}
	return s
}

// caches runs f with the record cache off and on: caching must not change
// what the driver's output topics show (it commits after every record).
func jCaches(t *testing.T, f func(t *testing.T, opts ...streamtest.Option)) {
	for _, c := range []int64{0, 10 << 20} {
		t.Run(fmt.Sprintf("cache=%d", c), func(t *testing.T) { f(t, streamtest.WithCacheMaxBytes(c)) })
	}
}

// ---- table-table joins ----

// buildTableJoin builds table1 <kind> table2 → "output", plus two
// consumers of the join: a KGroupedTable counting join rows per value
// ("counts", store "rows-by-value"), which only stays right if every update
// carries the exact old row, and a stream-table join ("lookups" →
// "lookup-results") reading the join through its getter (computed from both
// tables when the join is not materialized).
func buildTableJoin(t *testing.T, kind string, materialized bool) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	c := stream.With(serde.Int32(), serde.String())
	t1 := stream.Table(b, "topic1", c, stream.Materialized[int32, string]{})
	t2 := stream.Table(b, "topic2", c, stream.Materialized[int32, string]{})
	var m stream.Materialized[int32, string]
	if materialized {
		m = stream.As[int32, string]("joined")
	}
	var j stream.KTable[int32, string]
	switch kind {
	case "join":
		j = stream.JoinTables(t1, t2, func(_ int32, a, b string) string { return a + "+" + b }, m)
	case "leftJoin":
		j = stream.LeftJoinTables(t1, t2, func(_ int32, a, b string, ok bool) string { return a + "+" + jOrNull(b, ok) }, m)
	case "outerJoin":
		j = stream.OuterJoinTables(t1, t2, func(_ int32, a, b string, okA, okB bool) string { return jOrNull(a, okA) + "+" + jOrNull(b, okB) }, m)
	}
	j.ToStream().To("output", stream.Produced[int32, string]{})
	stream.GroupTable(j, func(_ int32, v string) (string, string) { return v, v }, stream.Grouped[string, string]{Name: "by-value"}).
		Count(stream.As[string, int64]("rows-by-value")).ToStream().To("counts", stream.Produced[string, int64]{})
	lookups := stream.Stream(b, c, "lookups")
	stream.LeftJoinTable(lookups, j, func(_ int32, _ string, v string, ok bool) string { return jOrNull(v, ok) }, stream.Joined[int32, string]{}).
		To("lookup-results", stream.Produced[int32, string]{})
	top, err := b.Build()
	jMust(t, err)
	return top
}

// tableJoinSteps are the steps of Kafka's KTableKTable{Inner,Left,Outer}JoinTest
// testJoin (and testQueryableJoin, materialized), with the output of each
// step for each kind.
var tableJoinSteps = []struct {
	name string
	pipe func(t *testing.T, in1, in2 *streamtest.Input[int32, string])
	want map[string][]string
}{
	{"two left rows, the other table empty (and a null key)", func(t *testing.T, in1, _ *streamtest.Input[int32, string]) {
		jMust(t, in1.Pipe(0, "X0", 5))
		jMust(t, in1.Pipe(1, "X1", 6))
		jMust(t, in1.PipeValue("SomeVal", 42))
	}, map[string][]string{
		"join":      nil,
		"leftJoin":  {"0=X0+null@5", "1=X1+null@6"},
		"outerJoin": {"0=X0+null@5", "1=X1+null@6"},
	}},
	{"two right rows (and a null key)", func(t *testing.T, _, in2 *streamtest.Input[int32, string]) {
		jMust(t, in2.Pipe(0, "Y0", 0))
		jMust(t, in2.Pipe(1, "Y1", 10))
		jMust(t, in2.PipeValue("AnotherVal", 73))
	}, map[string][]string{
		"join":      {"0=X0+Y0@5", "1=X1+Y1@10"},
		"leftJoin":  {"0=X0+Y0@5", "1=X1+Y1@10"},
		"outerJoin": {"0=X0+Y0@5", "1=X1+Y1@10"},
	}},
	{"four left rows", func(t *testing.T, in1, _ *streamtest.Input[int32, string]) {
		for k := range int32(4) {
			jMust(t, in1.Pipe(k, fmt.Sprint("XX", k), 7))
		}
	}, map[string][]string{
		"join":      {"0=XX0+Y0@7", "1=XX1+Y1@10"},
		"leftJoin":  {"0=XX0+Y0@7", "1=XX1+Y1@10", "2=XX2+null@7", "3=XX3+null@7"},
		"outerJoin": {"0=XX0+Y0@7", "1=XX1+Y1@10", "2=XX2+null@7", "3=XX3+null@7"},
	}},
	{"four right rows", func(t *testing.T, _, in2 *streamtest.Input[int32, string]) {
		for k := range int32(4) {
			jMust(t, in2.Pipe(k, fmt.Sprint("YY", k), int64(k)*5))
		}
	}, map[string][]string{
		"join":      {"0=XX0+YY0@7", "1=XX1+YY1@7", "2=XX2+YY2@10", "3=XX3+YY3@15"},
		"leftJoin":  {"0=XX0+YY0@7", "1=XX1+YY1@7", "2=XX2+YY2@10", "3=XX3+YY3@15"},
		"outerJoin": {"0=XX0+YY0@7", "1=XX1+YY1@7", "2=XX2+YY2@10", "3=XX3+YY3@15"},
	}},
	{"four left rows with a smaller timestamp", func(t *testing.T, in1, _ *streamtest.Input[int32, string]) {
		for k := range int32(4) {
			jMust(t, in1.Pipe(k, fmt.Sprint("XXX", k), 6))
		}
	}, map[string][]string{
		"join":      {"0=XXX0+YY0@6", "1=XXX1+YY1@6", "2=XXX2+YY2@10", "3=XXX3+YY3@15"},
		"leftJoin":  {"0=XXX0+YY0@6", "1=XXX1+YY1@6", "2=XXX2+YY2@10", "3=XXX3+YY3@15"},
		"outerJoin": {"0=XXX0+YY0@6", "1=XXX1+YY1@6", "2=XXX2+YY2@10", "3=XXX3+YY3@15"},
	}},
	{"two right deletes", func(t *testing.T, _, in2 *streamtest.Input[int32, string]) {
		jMust(t, in2.PipeTombstone(0, 5))
		jMust(t, in2.PipeTombstone(1, 7))
	}, map[string][]string{
		"join":      {"0=null@6", "1=null@7"},
		"leftJoin":  {"0=XXX0+null@6", "1=XXX1+null@7"},
		"outerJoin": {"0=XXX0+null@6", "1=XXX1+null@7"},
	}},
	{"four left rows with a larger timestamp", func(t *testing.T, in1, _ *streamtest.Input[int32, string]) {
		for k := range int32(4) {
			jMust(t, in1.Pipe(k, fmt.Sprint("XXXX", k), 13))
		}
	}, map[string][]string{
		"join":      {"2=XXXX2+YY2@13", "3=XXXX3+YY3@15"},
		"leftJoin":  {"0=XXXX0+null@13", "1=XXXX1+null@13", "2=XXXX2+YY2@13", "3=XXXX3+YY3@15"},
		"outerJoin": {"0=XXXX0+null@13", "1=XXXX1+null@13", "2=XXXX2+YY2@13", "3=XXXX3+YY3@15"},
	}},
	{"four left deletes", func(t *testing.T, in1, _ *streamtest.Input[int32, string]) {
		jMust(t, in1.PipeTombstone(0, 0))
		jMust(t, in1.PipeTombstone(1, 42))
		jMust(t, in1.PipeTombstone(2, 5))
		jMust(t, in1.PipeTombstone(3, 20))
	}, map[string][]string{
		// Inner: keys 0 and 1 had no join row any more: no tombstone.
		"join":      {"2=null@10", "3=null@20"},
		"leftJoin":  {"0=null@0", "1=null@42", "2=null@10", "3=null@20"},
		"outerJoin": {"0=null@0", "1=null@42", "2=null+YY2@10", "3=null+YY3@20"},
	}},
}

// TestTableTableJoins replays Kafka's KTableKTableInnerJoinTest,
// KTableKTableLeftJoinTest and KTableKTableOuterJoinTest (testJoin,
// testQueryableJoin): timestamps are the max of both sides, a tombstone
// only follows an existing join row. Their testSendingOldValues cases are
// covered by the KGroupedTable downstream, which subtracts old rows: at
// every step its positive counts are exactly the current join rows.
func TestTableTableJoins(t *testing.T) {
	for _, kind := range []string{"join", "leftJoin", "outerJoin"} {
		for _, materialized := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/materialized=%v", kind, materialized), func(t *testing.T) {
				top := buildTableJoin(t, kind, materialized)
				var groups []stream.CopartitionGroup
				for _, s := range top.Subtopologies("app") {
					groups = append(groups, s.Copartitioned...)
				}
				if len(groups) == 0 || !slices.Equal(groups[0].Topics, []string{"topic1", "topic2"}) {
					t.Errorf("co-partition groups: %+v", groups)
				}
				jCaches(t, func(t *testing.T, opts ...streamtest.Option) {
					d, err := streamtest.New(top, opts...)
					jMust(t, err)
					defer d.Close()
					in1 := streamtest.InputTopic(d, "topic1", serde.Int32(), serde.String())
					in2 := streamtest.InputTopic(d, "topic2", serde.Int32(), serde.String())
					out := streamtest.OutputTopic(d, "output", serde.Int32(), serde.String())
					rows := map[int32]string{}
					for _, st := range tableJoinSteps {
						st.pipe(t, in1, in2)
						want := st.want[kind]
						jExpect(t, st.name, out, want...)
						for _, w := range want {
							k, v, _ := strings.Cut(w[:strings.LastIndex(w, "@")], "=")
							var key int32
							fmt.Sscan(k, &key)
							if v == "null" {
								delete(rows, key)
							} else {
								rows[key] = v
							}
						}
						checkRowCounts(t, d, st.name, rows)
						if materialized {
							got, err := streamtest.KeyValueStore(d, "joined", serde.Int32(), serde.String())
							jMust(t, err)
							if fmt.Sprint(got) != fmt.Sprint(rows) {
								t.Errorf("%s: store joined = %v, want %v", st.name, got, rows)
							}
						}
					}
					if d.Dropped("null-key") != 2 {
						t.Errorf("dropped null keys = %d, want 2", d.Dropped("null-key"))
					}
					// Lookups through the join's getter see the current rows.
					lookups := streamtest.InputTopic(d, "lookups", serde.Int32(), serde.String())
					res := streamtest.OutputTopic(d, "lookup-results", serde.Int32(), serde.String())
					jMust(t, lookups.Pipe(2, "?", 100))
					jMust(t, lookups.Pipe(0, "?", 101))
					want2 := map[string]string{"join": "null", "leftJoin": "null", "outerJoin": "null+YY2"}[kind]
					jExpect(t, "lookups", res, "2="+want2+"@100", "0=null@101")
				})
			})
		}
	}
}

// checkRowCounts checks that the KGroupedTable counting join rows by value
// has a positive count exactly for the current rows.
func checkRowCounts(t *testing.T, d *streamtest.Driver, step string, rows map[int32]string) {
	t.Helper()
	counts, err := streamtest.KeyValueStore(d, "rows-by-value", serde.String(), serde.Int64())
	jMust(t, err)
	want := map[string]int64{}
	for _, v := range rows {
		want[v]++
	}
	got := map[string]int64{}
	for v, n := range counts {
		if n < 0 {
			t.Errorf("%s: count of %q is %d", step, v, n)
		}
		if n > 0 {
			got[v] = n
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: rows by value = %v, want %v (old values wrong?)", step, got, want)
	}
}

// TestTableJoinBuildErrors: a materialized join needs a value serde for
// its store, and the error names the operator.
func TestTableJoinBuildErrors(t *testing.T) {
	type pair struct{ A, B string }
	b := stream.NewBuilder()
	c := stream.With(serde.String(), serde.String())
	t1 := stream.Table(b, "a", c, stream.Materialized[string, string]{})
	t2 := stream.Table(b, "b", c, stream.Materialized[string, string]{})
	stream.JoinTables(t1, t2, func(_ string, a, b string) pair { return pair{a, b} }, stream.As[string, pair]("pairs"))
	_, err := b.Build()
	if !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), "KTABLE-MERGE") || !strings.Contains(err.Error(), "(join)") {
		t.Fatalf("err = %v", err)
	}
	// Not materialized, the same join needs no serde.
	b = stream.NewBuilder()
	t1 = stream.Table(b, "a", c, stream.Materialized[string, string]{})
	t2 = stream.Table(b, "b", c, stream.Materialized[string, string]{})
	j := stream.JoinTables(t1, t2, func(_ string, a, b string) pair { return pair{a, b} }, stream.Materialized[string, pair]{})
	stream.MapTableValues(j, func(_ string, p pair) string { return p.A + p.B }).ToStream().To("out", stream.Produced[string, string]{})
	_, err = b.Build()
	jMust(t, err)
}

// ---- foreign-key joins ----

const fkBase = 1000

// fkExtract is the foreign-key extractor of Kafka's
// KTableKTableForeignKeyJoinIntegrationTest: the part after '|' ("returnNull",
// or none, gives a null foreign key).
func fkExtract(v string) *string {
	_, fk, ok := strings.Cut(v, "|")
	if !ok || fk == "returnNull" {
		return nil
	}
	return &fk
}

// fkFixture is the integration test's topology: left_table (string keys,
// values "value|fk") joined by foreign key with right_table (keys *string,
// so that a null foreign key is expressible), "(left,right)" to
// output-topic, and the result joined again with the left table
// ("rejoin(...)" to rejoin-output-topic).
type fkFixture struct {
	d            *streamtest.Driver
	top          *stream.Topology
	left         *streamtest.Input[string, string]
	right        *streamtest.Input[*string, string]
	out, rejoin  *streamtest.Output[string, string]
	store        string
	materialized bool
}

func newFKFixture(t *testing.T, leftJoin, materialized bool, extract func(string) *string, opts ...streamtest.Option) *fkFixture {
	t.Helper()
	b := stream.NewBuilder()
	left := stream.Table(b, "left_table", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
	right := stream.Table(b, "right_table", stream.With(serde.Nullable(serde.String()), serde.String()), stream.Materialized[*string, string]{})
	f := &fkFixture{materialized: materialized}
	var m stream.Materialized[string, string]
	if materialized {
		m, f.store = stream.As[string, string]("store"), "store"
	}
	var j, rj stream.KTable[string, string]
	rejoin := func(_ string, a, b string) string { return "rejoin(" + a + "," + b + ")" }
	if leftJoin {
		j = stream.LeftJoinForeignKey(left, right, extract, func(v, vo string, ok bool) string { return "(" + v + "," + jOrNull(vo, ok) + ")" },
			stream.ForeignKeyJoined[string, string, *string]{}, m)
		rj = stream.LeftJoinTables(j, left, func(k, a, b string, ok bool) string { return rejoin(k, a, jOrNull(b, ok)) }, stream.Materialized[string, string]{})
	} else {
		j = stream.JoinForeignKey(left, right, extract, func(v, vo string) string { return "(" + v + "," + vo + ")" },
			stream.ForeignKeyJoined[string, string, *string]{}, m)
		rj = stream.JoinTables(j, left, rejoin, stream.Materialized[string, string]{})
	}
	if !materialized {
		f.store = j.StoreName()
	}
	j.ToStream().To("output-topic", stream.Produced[string, string]{})
	rj.ToStream().To("rejoin-output-topic", stream.Produced[string, string]{})
	top, err := b.Build()
	jMust(t, err)
	f.top = top
	f.d, err = streamtest.New(top, opts...)
	jMust(t, err)
	t.Cleanup(func() { f.d.Close() })
	f.left = streamtest.InputTopic(f.d, "left_table", serde.String(), serde.String())
	f.right = streamtest.InputTopic(f.d, "right_table", serde.Nullable(serde.String()), serde.String())
	f.out = streamtest.OutputTopic(f.d, "output-topic", serde.String(), serde.String())
	f.rejoin = streamtest.OutputTopic(f.d, "rejoin-output-topic", serde.String(), serde.String())
	return f
}

func (f *fkFixture) expectStore(t *testing.T, step string, want map[string]string) {
	t.Helper()
	got, err := streamtest.KeyValueStore(f.d, f.store, serde.String(), serde.String())
	jMust(t, err)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: store %s = %v, want %v", step, f.store, got, want)
	}
}

// forFKJoins runs f for the inner and left join, materialized or not,
// with the record cache off and on (the Kafka test's parameters, less
// optimization and versioned stores).
func forFKJoins(t *testing.T, f func(t *testing.T, leftJoin, materialized bool, opts ...streamtest.Option)) {
	for _, leftJoin := range []bool{false, true} {
		for _, materialized := range []bool{false, true} {
			t.Run(fmt.Sprintf("leftJoin=%v/materialized=%v", leftJoin, materialized), func(t *testing.T) {
				jCaches(t, func(t *testing.T, opts ...streamtest.Option) { f(t, leftJoin, materialized, opts...) })
			})
		}
	}
}

// pick returns the left-join or the inner-join expectation.
func jPick[T any](leftJoin bool, left, inner T) T {
	if leftJoin {
		return left
	}
	return inner
}

func jAt(s string, ts int64) string { return fmt.Sprintf("%s@%d", s, ts) }

// KTableKTableForeignKeyJoinIntegrationTest.doJoinFromLeftThenDeleteLeftEntity
// (with rejoin).
func TestFKJoinFromLeftThenDeleteLeft(t *testing.T) {
	forFKJoins(t, func(t *testing.T, leftJoin, _ bool, opts ...streamtest.Option) {
		f := newFKFixture(t, leftJoin, true, fkExtract, opts...)
		jMust(t, f.right.Pipe(jStrp("rhs1"), "rhsValue1", fkBase))
		jMust(t, f.right.Pipe(jStrp("rhs2"), "rhsValue2", fkBase+1))
		jMust(t, f.right.Pipe(jStrp("rhs3"), "rhsValue3", fkBase+2))
		jExpect(t, "right rows", f.out)
		jExpect(t, "right rows (rejoin)", f.rejoin)
		f.expectStore(t, "right rows", map[string]string{})

		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs1", fkBase+3))
		jMust(t, f.left.Pipe("lhs2", "lhsValue2|rhs2", fkBase+4))
		jExpect(t, "left rows", f.out, jAt("lhs1=(lhsValue1|rhs1,rhsValue1)", fkBase+3), jAt("lhs2=(lhsValue2|rhs2,rhsValue2)", fkBase+4))
		jExpect(t, "left rows (rejoin)", f.rejoin,
			jAt("lhs1=rejoin((lhsValue1|rhs1,rhsValue1),lhsValue1|rhs1)", fkBase+3), jAt("lhs2=rejoin((lhsValue2|rhs2,rhsValue2),lhsValue2|rhs2)", fkBase+4))
		f.expectStore(t, "left rows", map[string]string{"lhs1": "(lhsValue1|rhs1,rhsValue1)", "lhs2": "(lhsValue2|rhs2,rhsValue2)"})

		jMust(t, f.left.Pipe("lhs3", "lhsValue3|rhs1", fkBase+5))
		jExpect(t, "another reference", f.out, jAt("lhs3=(lhsValue3|rhs1,rhsValue1)", fkBase+5))
		jExpect(t, "another reference (rejoin)", f.rejoin, jAt("lhs3=rejoin((lhsValue3|rhs1,rhsValue1),lhsValue3|rhs1)", fkBase+5))

		jMust(t, f.left.PipeTombstone("lhs1", fkBase+6))
		jExpect(t, "left delete", f.out, jAt("lhs1=null", fkBase+6))
		// The left delete reaches the rejoin before the join's own
		// tombstone does: a left join first sees the join row without its
		// left row (Kafka's test reads a map, which hides this step).
		jExpect(t, "left delete (rejoin)", f.rejoin, jPick(leftJoin,
			[]string{jAt("lhs1=rejoin((lhsValue1|rhs1,rhsValue1),null)", fkBase+6), jAt("lhs1=null", fkBase+6)},
			[]string{jAt("lhs1=null", fkBase+6)})...)
		f.expectStore(t, "left delete", map[string]string{"lhs2": "(lhsValue2|rhs2,rhsValue2)", "lhs3": "(lhsValue3|rhs1,rhsValue1)"})
	})
}

// KTableKTableForeignKeyJoinIntegrationTest.doJoinFromRightThenDeleteRightEntity.
func TestFKJoinFromRightThenDeleteRight(t *testing.T) {
	forFKJoins(t, func(t *testing.T, leftJoin, materialized bool, opts ...streamtest.Option) {
		f := newFKFixture(t, leftJoin, materialized, fkExtract, opts...)
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs1", fkBase))
		jMust(t, f.left.Pipe("lhs2", "lhsValue2|rhs2", fkBase+1))
		jMust(t, f.left.Pipe("lhs3", "lhsValue3|rhs1", fkBase+2))
		jExpect(t, "left rows", f.out, jPick(leftJoin,
			[]string{jAt("lhs1=(lhsValue1|rhs1,null)", fkBase), jAt("lhs2=(lhsValue2|rhs2,null)", fkBase+1), jAt("lhs3=(lhsValue3|rhs1,null)", fkBase+2)}, nil)...)

		jMust(t, f.right.Pipe(jStrp("rhs1"), "rhsValue1", fkBase+3))
		// Every subscriber of rhs1 is joined again, with the right update's timestamp.
		jExpect(t, "right row rhs1", f.out, jAt("lhs1=(lhsValue1|rhs1,rhsValue1)", fkBase+3), jAt("lhs3=(lhsValue3|rhs1,rhsValue1)", fkBase+3))
		jMust(t, f.right.Pipe(jStrp("rhs2"), "rhsValue2", fkBase+4))
		jExpect(t, "right row rhs2", f.out, jAt("lhs2=(lhsValue2|rhs2,rhsValue2)", fkBase+4))
		jMust(t, f.right.Pipe(jStrp("rhs3"), "rhsValue3", fkBase+5))
		jExpect(t, "unreferenced right row", f.out)
		f.expectStore(t, "right rows", map[string]string{"lhs1": "(lhsValue1|rhs1,rhsValue1)", "lhs2": "(lhsValue2|rhs2,rhsValue2)", "lhs3": "(lhsValue3|rhs1,rhsValue1)"})

		jMust(t, f.right.PipeTombstone(jStrp("rhs1"), fkBase+6))
		jExpect(t, "right delete", f.out, jPick(leftJoin,
			[]string{jAt("lhs1=(lhsValue1|rhs1,null)", fkBase+6), jAt("lhs3=(lhsValue3|rhs1,null)", fkBase+6)},
			[]string{jAt("lhs1=null", fkBase+6), jAt("lhs3=null", fkBase+6)})...)
		f.expectStore(t, "right delete", jPick(leftJoin,
			map[string]string{"lhs1": "(lhsValue1|rhs1,null)", "lhs2": "(lhsValue2|rhs2,rhsValue2)", "lhs3": "(lhsValue3|rhs1,null)"},
			map[string]string{"lhs2": "(lhsValue2|rhs2,rhsValue2)"}))
	})
}

// KTableKTableForeignKeyJoinIntegrationTest.shouldEmitTombstoneWhenDeletingNonJoiningRecords
// and shouldNotEmitTombstonesWhenDeletingNonExistingRecords.
//
// Deviation: for the inner join Kafka emits an "unnecessary" tombstone
// when a left row that never joined is deleted; eddy's result is always
// materialized, so it knows there was no result and emits nothing.
func TestFKJoinDeletingNonJoiningRecords(t *testing.T) {
	forFKJoins(t, func(t *testing.T, leftJoin, materialized bool, opts ...streamtest.Option) {
		f := newFKFixture(t, leftJoin, materialized, fkExtract, opts...)
		jMust(t, f.left.PipeTombstone("lhs0", fkBase-1))
		jExpect(t, "delete of a row that never existed", f.out)

		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs1", fkBase))
		jExpect(t, "non-joining row", f.out, jPick(leftJoin, []string{jAt("lhs1=(lhsValue1|rhs1,null)", fkBase)}, nil)...)
		jMust(t, f.left.PipeTombstone("lhs1", fkBase+1))
		jExpect(t, "delete of the non-joining row", f.out, jPick(leftJoin, []string{jAt("lhs1=null", fkBase+1)}, nil)...)
		jMust(t, f.left.PipeTombstone("lhs1", fkBase+2))
		jExpect(t, "delete again", f.out)
		f.expectStore(t, "end", map[string]string{})
	})
}

// KTableKTableForeignKeyJoinIntegrationTest.joinShouldProduceNullsWhenValueHasNonMatchingForeignKey.
//
// Deviation: moving an inner-join row from one missing foreign key to
// another emits no tombstone in eddy (Kafka: an unnecessary one).
func TestFKJoinNonMatchingForeignKey(t *testing.T) {
	forFKJoins(t, func(t *testing.T, leftJoin, materialized bool, opts ...streamtest.Option) {
		f := newFKFixture(t, leftJoin, materialized, fkExtract, opts...)
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs1", fkBase))
		jExpect(t, "missing foreign key", f.out, jPick(leftJoin, []string{jAt("lhs1=(lhsValue1|rhs1,null)", fkBase)}, nil)...)
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs2", fkBase+1))
		jExpect(t, "another missing foreign key", f.out, jPick(leftJoin, []string{jAt("lhs1=(lhsValue1|rhs2,null)", fkBase+1)}, nil)...)
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs3", fkBase+2))
		jExpect(t, "yet another", f.out, jPick(leftJoin, []string{jAt("lhs1=(lhsValue1|rhs3,null)", fkBase+2)}, nil)...)

		jMust(t, f.right.Pipe(jStrp("rhs1"), "rhsValue1", fkBase+3))
		jExpect(t, "right row no longer referenced", f.out)
		f.expectStore(t, "right row no longer referenced", jPick(leftJoin, map[string]string{"lhs1": "(lhsValue1|rhs3,null)"}, map[string]string{}))

		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs1", fkBase+4))
		jExpect(t, "existing foreign key", f.out, jAt("lhs1=(lhsValue1|rhs1,rhsValue1)", fkBase+4))
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs2", fkBase+5))
		jExpect(t, "back to a missing one", f.out, jAt(jPick(leftJoin, "lhs1=(lhsValue1|rhs2,null)", "lhs1=null"), fkBase+5))
		f.expectStore(t, "end", jPick(leftJoin, map[string]string{"lhs1": "(lhsValue1|rhs2,null)"}, map[string]string{}))
	})
}

// KTableKTableForeignKeyJoinIntegrationTest.shouldUnsubscribeOldForeignKeyIfLeftSideIsUpdated.
func TestFKJoinUnsubscribesOldForeignKey(t *testing.T) {
	forFKJoins(t, func(t *testing.T, leftJoin, materialized bool, opts ...streamtest.Option) {
		f := newFKFixture(t, leftJoin, materialized, fkExtract, opts...)
		jMust(t, f.right.Pipe(jStrp("rhs1"), "rhsValue1", fkBase))
		jMust(t, f.right.Pipe(jStrp("rhs2"), "rhsValue2", fkBase+1))
		jExpect(t, "right rows", f.out)
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs1", fkBase+2))
		jExpect(t, "join", f.out, jAt("lhs1=(lhsValue1|rhs1,rhsValue1)", fkBase+2))
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs2", fkBase+3))
		jExpect(t, "foreign key change", f.out, jAt("lhs1=(lhsValue1|rhs2,rhsValue2)", fkBase+3))
		jMust(t, f.right.Pipe(jStrp("rhs1"), "rhsValue1Delta", fkBase+4))
		jExpect(t, "update of the old foreign key", f.out)
		f.expectStore(t, "end", map[string]string{"lhs1": "(lhsValue1|rhs2,rhsValue2)"})
		// The later of the two rows' timestamps wins on a left update.
		jMust(t, f.right.Pipe(jStrp("rhs2"), "rhsValue2b", fkBase+10))
		jMust(t, f.left.Pipe("lhs1", "lhsValue1b|rhs2", fkBase+5))
		jExpect(t, "timestamps", f.out, jAt("lhs1=(lhsValue1|rhs2,rhsValue2b)", fkBase+10), jAt("lhs1=(lhsValue1b|rhs2,rhsValue2b)", fkBase+10))
	})
}

// subscriptionKey is a subscription store key as Kafka lays it out
// (KTableKTableForeignKeyJoinIntegrationTest.subscriptionStoreKey): the
// foreign key's length, the foreign key, the primary key.
func subscriptionKey(lhs, rhs string) []byte {
	return append(append([]byte{0, 0, 0, byte(len(rhs))}, rhs...), lhs...)
}

func subscriptionStore(t *testing.T, f *fkFixture) string {
	t.Helper()
	for _, s := range f.top.StoreNames() {
		if strings.Contains(s, "SUBSCRIPTION-STATE-STORE") {
			return s
		}
	}
	t.Fatal("no subscription store")
	return ""
}

// KTableKTableForeignKeyJoinIntegrationTest.shouldEmitRecordOnNullForeignKeyForLeftJoins
// and shouldEmitRecordWhenOldAndNewFkDiffer; for the inner join, a null
// foreign key has no result and is counted as dropped, and a row whose
// foreign key becomes null loses its result (KAFKA-16407, Kafka 4.1).
func TestFKJoinNullForeignKey(t *testing.T) {
	forFKJoins(t, func(t *testing.T, leftJoin, materialized bool, opts ...streamtest.Option) {
		f := newFKFixture(t, leftJoin, materialized, func(string) *string { return nil }, opts...)
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs1", fkBase))
		jExpect(t, "null foreign key", f.out, jPick(leftJoin, []string{jAt("lhs1=(lhsValue1|rhs1,null)", fkBase)}, nil)...)
		f.expectStore(t, "null foreign key", jPick(leftJoin, map[string]string{"lhs1": "(lhsValue1|rhs1,null)"}, map[string]string{}))
		if got := f.d.Dropped("null-key"); got != jPick(leftJoin, 0, 1) {
			t.Errorf("dropped = %d", got)
		}
		jMust(t, f.left.PipeTombstone("lhs1", fkBase+1))
		jExpect(t, "delete", f.out, jPick(leftJoin, []string{jAt("lhs1=null", fkBase+1)}, nil)...)
	})
	forFKJoins(t, func(t *testing.T, leftJoin, materialized bool, opts ...streamtest.Option) {
		f := newFKFixture(t, leftJoin, materialized, fkExtract, opts...)
		subs := subscriptionStore(t, f)
		jMust(t, f.right.Pipe(jStrp("rhs2"), "rhsValue2", fkBase-1))
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs1", fkBase))
		jExpect(t, "missing foreign key", f.out, jPick(leftJoin, []string{jAt("lhs1=(lhsValue1|rhs1,null)", fkBase)}, nil)...)
		if v, _ := f.d.Store(subs).Get(subscriptionKey("lhs1", "rhs1")); v == nil {
			t.Error("no subscription (rhs1, lhs1)")
		}
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|returnNull", fkBase))
		jExpect(t, "foreign key becomes null", f.out, jPick(leftJoin, []string{jAt("lhs1=(lhsValue1|returnNull,null)", fkBase)}, nil)...)
		if v, _ := f.d.Store(subs).Get(subscriptionKey("lhs1", "rhs1")); v != nil {
			t.Error("subscription (rhs1, lhs1) still stored")
		}
		// From a null foreign key to a joining one, and back to null.
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|rhs2", fkBase+1))
		jExpect(t, "null to rhs2", f.out, jAt("lhs1=(lhsValue1|rhs2,rhsValue2)", fkBase+1))
		jMust(t, f.left.Pipe("lhs1", "lhsValue1|returnNull", fkBase+2))
		jExpect(t, "rhs2 to null", f.out, jAt(jPick(leftJoin, "lhs1=(lhsValue1|returnNull,null)", "lhs1=null"), fkBase+2))
		jMust(t, f.right.Pipe(jStrp("rhs2"), "rhsValue2b", fkBase+3))
		jExpect(t, "old foreign key updated", f.out)
		f.expectStore(t, "end", jPick(leftJoin, map[string]string{"lhs1": "(lhsValue1|returnNull,null)"}, map[string]string{}))
	})
}

// The internal topics have Kafka's names and the two sides are
// co-partitioned with them.
func TestFKJoinTopology(t *testing.T) {
	for _, name := range []string{"", "orders-customers"} {
		b := stream.NewBuilder()
		left := stream.Table(b, "orders", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
		right := stream.Table(b, "customers", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
		stream.JoinForeignKey(left, right, func(v string) string { return v }, func(v, vo string) string { return vo },
			stream.ForeignKeyJoined[string, string, string]{Name: name}, stream.Materialized[string, string]{}).
			ToStream().To("out", stream.Produced[string, string]{})
		top, err := b.Build()
		jMust(t, err)
		subs := top.Subtopologies("app")
		if len(subs) != 2 {
			t.Fatalf("%d sub-topologies:\n%s", len(subs), top.Describe())
		}
		var reg, resp string
		for _, s := range subs {
			for _, src := range s.RepartitionSources {
				if strings.Contains(strings.ToLower(src.Name), "registration") {
					reg = src.Name
					if !slices.Contains(s.SourceTopics, "customers") || len(s.Copartitioned) != 1 || !slices.Contains(s.Copartitioned[0].Topics, "customers") {
						t.Errorf("registration topic with %v, co-partitioned %+v", s.SourceTopics, s.Copartitioned)
					}
				} else {
					resp = src.Name
					if !slices.Contains(s.SourceTopics, "orders") || len(s.Copartitioned) != 1 || !slices.Contains(s.Copartitioned[0].Topics, "orders") {
						t.Errorf("response topic with %v, co-partitioned %+v", s.SourceTopics, s.Copartitioned)
					}
				}
			}
		}
		if name == "" {
			if !strings.HasPrefix(reg, "app-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-") || !strings.HasSuffix(reg, "-topic") ||
				!strings.HasPrefix(resp, "app-KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-") || !strings.HasSuffix(resp, "-topic") {
				t.Errorf("topics %q %q", reg, resp)
			}
		} else if reg != "app-orders-customers-subscription-registration-topic" || resp != "app-orders-customers-subscription-response-topic" {
			t.Errorf("topics %q %q", reg, resp)
		}
	}
}

// ForeignKeyPartitioner places subscriptions on the right table's
// partitions (Kafka's TableJoined.otherPartitioner).
func TestFKJoinForeignKeyPartitioner(t *testing.T) {
	b := stream.NewBuilder()
	left := stream.Table(b, "orders", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
	right := stream.Table(b, "customers", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
	var calls []string
	stream.JoinForeignKey(left, right, func(v string) string { return v }, func(v, vo string) string { return vo },
		stream.ForeignKeyJoined[string, string, string]{ForeignKeyPartitioner: func(topic, fk string, n int32) int32 {
			calls = append(calls, fmt.Sprintf("%s/%d", fk, n))
			return 0
		}}, stream.Materialized[string, string]{}).ToStream().To("out", stream.Produced[string, string]{})
	top, err := b.Build()
	jMust(t, err)
	d, err := streamtest.New(top)
	jMust(t, err)
	defer d.Close()
	jMust(t, streamtest.InputTopic(d, "customers", serde.String(), serde.String()).Pipe("c1", "Ann", 1))
	jMust(t, streamtest.InputTopic(d, "orders", serde.String(), serde.String()).Pipe("o1", "c1", 2))
	jExpect(t, "join", streamtest.OutputTopic(d, "out", serde.String(), serde.String()), "o1=Ann@2")
	if !slices.Equal(calls, []string{"c1/1"}) {
		t.Errorf("partitioner calls %v", calls)
	}
}

// A foreign-key join reports missing serdes at build time, naming the
// operator.
func TestFKJoinBuildErrors(t *testing.T) {
	type customer struct{ Name string }
	b := stream.NewBuilder()
	left := stream.Table(b, "orders", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
	right := stream.Table(b, "customers", stream.With(serde.String(), serde.JSON[customer]()), stream.Materialized[string, customer]{})
	mapped := stream.MapTableValues(right, func(_ string, c customer) customer { return c }) // loses the value serde
	stream.JoinForeignKey(left, mapped, func(v string) string { return v }, func(v string, c customer) string { return c.Name },
		stream.ForeignKeyJoined[string, string, string]{}, stream.Materialized[string, string]{})
	_, err := b.Build()
	if !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION") ||
		!strings.Contains(err.Error(), "right table's value serde") {
		t.Fatalf("err = %v", err)
	}
}

// Old values of a foreign-key join are exact: a KGroupedTable downstream
// (count of orders per customer name) subtracts correctly through foreign
// key changes, right updates and deletes.
func TestFKJoinFeedsGroupedTable(t *testing.T) {
	jCaches(t, func(t *testing.T, opts ...streamtest.Option) {
		b := stream.NewBuilder()
		orders := stream.Table(b, "orders", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
		customers := stream.Table(b, "customers", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
		j := stream.JoinForeignKey(orders, customers, func(v string) string { return v }, func(_, name string) string { return name },
			stream.ForeignKeyJoined[string, string, string]{}, stream.Materialized[string, string]{})
		stream.GroupTable(j, func(_, name string) (string, string) { return name, name }, stream.Grouped[string, string]{}).
			Count(stream.As[string, int64]("per-name"))
		top, err := b.Build()
		jMust(t, err)
		d, err := streamtest.New(top, opts...)
		jMust(t, err)
		defer d.Close()
		o := streamtest.InputTopic(d, "orders", serde.String(), serde.String())
		c := streamtest.InputTopic(d, "customers", serde.String(), serde.String())
		jMust(t, c.Pipe("c1", "ann", 1))
		jMust(t, c.Pipe("c2", "bob", 2))
		jMust(t, o.Pipe("o1", "c1", 3))
		jMust(t, o.Pipe("o2", "c1", 4))
		jMust(t, o.Pipe("o3", "c2", 5))
		jMust(t, o.Pipe("o2", "c2", 6))     // foreign key change
		jMust(t, c.Pipe("c1", "annie", 7))  // right update
		jMust(t, c.PipeTombstone("c2", 8))  // right delete
		jMust(t, o.Pipe("o4", "c9", 9))     // no customer
		jMust(t, o.PipeTombstone("o1", 10)) // left delete
		got, err := streamtest.KeyValueStore(d, "per-name", serde.String(), serde.Int64())
		jMust(t, err)
		if want := map[string]int64{"ann": 0, "annie": 0, "bob": 0}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("per-name = %v, want %v", got, want)
		}
		jMust(t, c.Pipe("c2", "bobby", 11))
		got, err = streamtest.KeyValueStore(d, "per-name", serde.String(), serde.Int64())
		jMust(t, err)
		if got["bobby"] != 2 {
			t.Errorf("per-name = %v, want bobby=2", got)
		}
	})
}

// Responses computed for an older version of a left row are discarded:
// the left row "v1|rhs1" is updated to "v2|rhs2", and the answer for v2
// reaches the left task before the one for v1 (they come from different
// right partitions in a real cluster). The tasks are driven by hand to
// deliver them in that order. Without the hash check the result would end
// as (v2|rhs2,R1).
func TestFKJoinDiscardsStaleResponses(t *testing.T) {
	b := stream.NewBuilder()
	left := stream.Table(b, "left_table", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
	right := stream.Table(b, "right_table", stream.With(serde.Nullable(serde.String()), serde.String()), stream.Materialized[*string, string]{})
	stream.JoinForeignKey(left, right, fkExtract, func(v, vo string) string { return "(" + v + "," + vo + ")" },
		stream.ForeignKeyJoined[string, string, *string]{}, stream.Materialized[string, string]{}).
		ToStream().To("output-topic", stream.Produced[string, string]{})
	top, err := b.Build()
	jMust(t, err)
	env := &jEnv{}
	task := func(topic string) *stream.Task {
		tk, err := top.NewTask(stream.TaskConfig{ApplicationID: "app", ID: stream.TaskID{Subtopology: top.SubtopologyOf("app", topic)}, Env: env})
		jMust(t, err)
		jMust(t, tk.Init())
		t.Cleanup(func() { tk.Close() })
		return tk
	}
	lt, rt := task("left_table"), task("right_table")
	feed := func(tk *stream.Task, recs ...stream.RawRecord) {
		t.Helper()
		for i := range recs {
			recs[i].Partition, recs[i].Offset = 0, int64(len(env.sent)+i)
		}
		jMust(t, tk.Add(recs...))
		_, err := tk.Process(len(recs))
		jMust(t, err)
		jMust(t, tk.Flush())
	}
	sent := func(part string) []stream.RawRecord {
		var out []stream.RawRecord
		for _, r := range env.sent {
			if strings.Contains(r.Topic, part) {
				out = append(out, r)
			}
		}
		return out
	}
	kv := func(topic, k, v string, ts int64) stream.RawRecord {
		return stream.RawRecord{Topic: topic, Key: []byte(k), Value: []byte(v), Timestamp: ts}
	}
	feed(rt, kv("right_table", "rhs1", "R1", 1), kv("right_table", "rhs2", "R2", 2))
	feed(lt, kv("left_table", "lhs1", "v1|rhs1", 3), kv("left_table", "lhs1", "v2|rhs2", 4))
	feed(rt, sent("SUBSCRIPTION-REGISTRATION")...)
	responses := sent("SUBSCRIPTION-RESPONSE")
	if len(responses) != 2 {
		t.Fatalf("%d responses", len(responses))
	}
	slices.Reverse(responses)
	feed(lt, responses...)
	var got []string
	for _, r := range sent("output-topic") {
		got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Timestamp))
	}
	if want := []string{"lhs1=(v2|rhs2,R2)@4"}; !slices.Equal(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
}

// ---- global tables ----

// globalFixture is the topology of Kafka's KStreamGlobalKTableJoinTest and
// KStreamGlobalKTableLeftJoinTest: streamTopic (int32 keys) joined with
// the global table of globalTableTopic by the key after the comma in the
// stream value (none: a null key), to "output".
type globalFixture struct {
	d      *streamtest.Driver
	top    *stream.Topology
	stream *streamtest.Input[int32, string]
	table  *streamtest.Input[*string, string]
	out    *streamtest.Output[int32, string]
	steps  int
	ts     int64      // the stream input's next timestamp (auto-advance by 1)
	want   [][]string // the outputs expected by the next expect calls
}

// expect checks the output against the next expectation.
func (f *globalFixture) expect(t *testing.T) {
	t.Helper()
	if len(f.want) == 0 {
		t.Fatal("no expectation left")
	}
	w := f.want[0]
	f.want = f.want[1:]
	jExpect(t, fmt.Sprintf("expectation %d", f.steps), f.out, w...)
	f.steps++
}

func newGlobalFixture(t *testing.T, left bool, opts ...streamtest.Option) *globalFixture {
	t.Helper()
	b := stream.NewBuilder()
	s := stream.Stream(b, stream.With(serde.Int32(), serde.String()), "streamTopic")
	g := stream.GlobalTable(b, "globalTableTopic", stream.With(serde.Nullable(serde.String()), serde.String()), stream.Materialized[*string, string]{})
	keyMapper := func(_ int32, v string) *string {
		if _, fk, ok := strings.Cut(v, ","); ok {
			return &fk
		}
		return nil
	}
	var j stream.KStream[int32, string]
	if left {
		j = stream.LeftJoinGlobal(s, g, keyMapper, func(_ int32, v, gv string, ok bool) string { return v + "+" + jOrNull(gv, ok) })
	} else {
		j = stream.JoinGlobal(s, g, keyMapper, func(_ int32, v, gv string) string { return v + "+" + gv })
	}
	j.To("output", stream.Produced[int32, string]{})
	top, err := b.Build()
	jMust(t, err)
	f := &globalFixture{top: top}
	f.d, err = streamtest.New(top, opts...)
	jMust(t, err)
	t.Cleanup(func() { f.d.Close() })
	f.stream = streamtest.InputTopic(f.d, "streamTopic", serde.Int32(), serde.String())
	f.table = streamtest.InputTopic(f.d, "globalTableTopic", serde.Nullable(serde.String()), serde.String())
	f.out = streamtest.OutputTopic(f.d, "output", serde.Int32(), serde.String())
	return f
}

// pushToStream pipes n records "<prefix><i>[,FKey<i>]" with keys 0..n-1
// (key 0 null when nullKey).
func (f *globalFixture) pushToStream(t *testing.T, n int, prefix string, withFK, nullKey bool) {
	t.Helper()
	for i := range n {
		v := fmt.Sprint(prefix, i)
		if withFK {
			v += fmt.Sprint(",FKey", i)
		}
		if nullKey && i == 0 {
			jMust(t, f.stream.PipeValue(v, f.ts))
		} else {
			jMust(t, f.stream.Pipe(int32(i), v, f.ts))
		}
		f.ts++
	}
}

func (f *globalFixture) pushToTable(t *testing.T, n int, prefix string) {
	t.Helper()
	for i := range n {
		jMust(t, f.table.Pipe(jStrp(fmt.Sprint("FKey", i)), fmt.Sprint(prefix, i), 0))
	}
}

func (f *globalFixture) pushNullsToTable(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		jMust(t, f.table.PipeTombstone(jStrp(fmt.Sprint("FKey", i)), 0))
	}
}

// KStreamGlobalKTableJoinTest / KStreamGlobalKTableLeftJoinTest.shouldNotRequireCopartitioning,
// and the global store in Describe and GlobalStores.
func TestGlobalJoinTopology(t *testing.T) {
	f := newGlobalFixture(t, false)
	subs := f.top.Subtopologies("app")
	if len(subs) != 1 || len(subs[0].Copartitioned) != 0 || len(subs[0].Stores) != 0 || !slices.Equal(subs[0].SourceTopics, []string{"streamTopic"}) {
		t.Errorf("sub-topologies: %+v", subs)
	}
	gs := f.top.GlobalStores("app")
	if len(gs) != 1 || gs[0].Topic != "globalTableTopic" || gs[0].Name != "globalTableTopic-STATE-STORE-0000000001" || gs[0].InMemory {
		t.Errorf("global stores: %+v", gs)
	}
	desc := f.top.Describe().String()
	for _, line := range []string{
		"Sub-topology: 1 for global store (will not generate tasks)",
		"Source: KSTREAM-SOURCE-0000000002 (topics: [globalTableTopic])",
		"Processor: KTABLE-SOURCE-0000000003 (stores: [globalTableTopic-STATE-STORE-0000000001])",
		"Processor: KSTREAM-JOIN-0000000004 (stores: [])",
	} {
		if !strings.Contains(desc, line) {
			t.Errorf("Describe lacks %q:\n%s", line, desc)
		}
	}
}

// KStreamGlobalKTableJoinTest / KStreamGlobalKTableLeftJoinTest.
func TestGlobalJoins(t *testing.T) {
	cases := []struct {
		name     string
		run      func(t *testing.T, f *globalFixture)
		inner    [][]string // the output at each expect call (and at the end)
		leftJoin [][]string
	}{
		{name: "shouldNotJoinWithEmptyGlobalTableOnStreamUpdates", run: func(t *testing.T, f *globalFixture) {
			f.pushToStream(t, 2, "X", true, false)
		}, inner: [][]string{nil}, leftJoin: [][]string{{"0=X0,FKey0+null@0", "1=X1,FKey1+null@1"}}},
		{name: "shouldNotJoinOnGlobalTableUpdates", run: func(t *testing.T, f *globalFixture) {
			f.pushToStream(t, 2, "X", true, false)
			f.expect(t)
			f.pushToTable(t, 2, "Y")
			f.expect(t)
			f.pushToStream(t, 4, "X", true, false)
			f.expect(t)
			f.pushToTable(t, 4, "YY")
			f.expect(t)
			f.pushToStream(t, 4, "X", true, false)
			f.expect(t)
			f.pushToTable(t, 4, "YYY")
		}, inner: [][]string{nil, nil, {"0=X0,FKey0+Y0@2", "1=X1,FKey1+Y1@3"}, nil,
			{"0=X0,FKey0+YY0@6", "1=X1,FKey1+YY1@7", "2=X2,FKey2+YY2@8", "3=X3,FKey3+YY3@9"}, nil},
			leftJoin: [][]string{{"0=X0,FKey0+null@0", "1=X1,FKey1+null@1"}, nil,
				{"0=X0,FKey0+Y0@2", "1=X1,FKey1+Y1@3", "2=X2,FKey2+null@4", "3=X3,FKey3+null@5"}, nil,
				{"0=X0,FKey0+YY0@6", "1=X1,FKey1+YY1@7", "2=X2,FKey2+YY2@8", "3=X3,FKey3+YY3@9"}, nil}},
		{name: "shouldJoinOnlyIfMatchFoundOnStreamUpdates", run: func(t *testing.T, f *globalFixture) {
			f.pushToTable(t, 2, "Y")
			f.expect(t)
			f.pushToStream(t, 4, "X", true, false)
		}, inner: [][]string{nil, {"0=X0,FKey0+Y0@0", "1=X1,FKey1+Y1@1"}},
			leftJoin: [][]string{nil, {"0=X0,FKey0+Y0@0", "1=X1,FKey1+Y1@1", "2=X2,FKey2+null@2", "3=X3,FKey3+null@3"}}},
		{name: "shouldClearGlobalTableEntryOnNullValueUpdates", run: func(t *testing.T, f *globalFixture) {
			f.pushToTable(t, 4, "Y")
			f.expect(t)
			f.pushToStream(t, 4, "X", true, false)
			f.expect(t)
			f.pushNullsToTable(t, 2)
			f.expect(t)
			f.pushToStream(t, 4, "XX", true, false)
		}, inner: [][]string{nil, {"0=X0,FKey0+Y0@0", "1=X1,FKey1+Y1@1", "2=X2,FKey2+Y2@2", "3=X3,FKey3+Y3@3"}, nil,
			{"2=XX2,FKey2+Y2@6", "3=XX3,FKey3+Y3@7"}},
			leftJoin: [][]string{nil, {"0=X0,FKey0+Y0@0", "1=X1,FKey1+Y1@1", "2=X2,FKey2+Y2@2", "3=X3,FKey3+Y3@3"}, nil,
				{"0=XX0,FKey0+null@4", "1=XX1,FKey1+null@5", "2=XX2,FKey2+Y2@6", "3=XX3,FKey3+Y3@7"}}},
		{name: "shouldNotJoinOnNullKeyMapperValues", run: func(t *testing.T, f *globalFixture) {
			f.pushToTable(t, 4, "Y")
			f.expect(t)
			f.pushToStream(t, 4, "XXX", false, false)
		}, inner: [][]string{nil, nil}, leftJoin: [][]string{nil, nil}},
		{name: "shouldJoinOnNullKeyWithNonNullKeyMapperValues", run: func(t *testing.T, f *globalFixture) {
			f.pushToTable(t, 2, "Y")
			f.expect(t)
			f.pushToStream(t, 4, "X", true, true)
		}, inner: [][]string{nil, {"null=X0,FKey0+Y0@0", "1=X1,FKey1+Y1@1"}},
			leftJoin: [][]string{nil, {"null=X0,FKey0+Y0@0", "1=X1,FKey1+Y1@1", "2=X2,FKey2+null@2", "3=X3,FKey3+null@3"}}},
	}
	for _, c := range cases {
		for _, left := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/left=%v", c.name, left), func(t *testing.T) {
				jCaches(t, func(t *testing.T, opts ...streamtest.Option) {
					f := newGlobalFixture(t, left, opts...)
					f.want = jPick(left, c.leftJoin, c.inner)
					c.run(t, f)
					f.expect(t)
					if len(f.want) != 0 {
						t.Errorf("%d expectations left", len(f.want))
					}
				})
			})
		}
	}
}

// The global store holds the table (tombstones delete), and a null key on
// the global topic is dropped.
func TestGlobalStoreContents(t *testing.T) {
	f := newGlobalFixture(t, true)
	f.pushToTable(t, 3, "Y")
	f.pushNullsToTable(t, 1)
	jMust(t, f.d.PipeRaw(stream.RawRecord{Topic: "globalTableTopic", Value: []byte("no key")}))
	got, err := streamtest.KeyValueStore(f.d, "globalTableTopic-STATE-STORE-0000000001", serde.String(), serde.String())
	jMust(t, err)
	if want := map[string]string{"FKey1": "Y1", "FKey2": "Y2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("global store = %v, want %v", got, want)
	}
	if f.d.Dropped("null-key") != 1 {
		t.Errorf("dropped = %d", f.d.Dropped("null-key"))
	}
}

// GlobalTask directly: offsets for checkpoints, the deserialization
// handler, dead letters, and reads of its stores.
func TestGlobalTask(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.GlobalTable(b, "rates", stream.With(serde.String(), serde.Int64()), stream.Materialized[string, int64]{Name: "rates", InMemory: true})
	s := stream.Stream(b, stream.With(serde.String(), serde.Int64()), "amounts")
	stream.JoinGlobal(s, g, func(k string, _ int64) string { return k }, func(_ string, v, r int64) int64 { return v * r }).
		To("out", stream.Produced[string, int64]{})
	top, err := b.Build()
	jMust(t, err)
	if gs := top.GlobalStores("app"); len(gs) != 1 || gs[0] != (stream.GlobalStoreInfo{Name: "rates", Topic: "rates", InMemory: true}) {
		t.Fatalf("global stores %+v", gs)
	}
	env := &jEnv{}
	var dropped []string
	gt, err := top.NewGlobalTask(stream.GlobalTaskConfig{ApplicationID: "app", Env: env,
		Errors: stream.ErrorHandlers{Deserialization: stream.LogAndContinue, DeadLetterTopic: "dlq"},
		Hooks:  stream.TaskHooks{Dropped: func(_, reason string) { dropped = append(dropped, reason) }}})
	jMust(t, err)
	jMust(t, gt.Init())
	if !slices.Equal(gt.Topics(), []string{"rates"}) {
		t.Errorf("topics %v", gt.Topics())
	}
	eight, _ := serde.Int64().Serialize("", 8)
	jMust(t, gt.Apply(
		stream.RawRecord{Topic: "rates", Partition: 0, Offset: 0, Key: []byte("eur"), Value: eight, Timestamp: 5},
		stream.RawRecord{Topic: "rates", Partition: 1, Offset: 7, Key: []byte("usd"), Value: []byte("bad"), Timestamp: 6}))
	if !slices.Equal(dropped, []string{"deserialization"}) || len(env.sent) != 1 || env.sent[0].Topic != "dlq" {
		t.Errorf("dropped %v, dead letters %+v", dropped, env.sent)
	}
	offs := gt.Offsets()
	if len(offs) != 2 {
		t.Errorf("offsets %v", offs)
	}
	for tp, o := range offs {
		if want := map[int32]int64{0: 1, 1: 8}[tp.Partition]; o != want || tp.Topic != "rates" {
			t.Errorf("offset %v = %d", tp, o)
		}
	}
	v, ts, ok, err := gt.Store("rates").Get([]byte("eur"))
	if err != nil || !ok || ts != 5 || string(v) != string(eight) {
		t.Errorf("Get = %v %d %v %v", v, ts, ok, err)
	}
	jMust(t, gt.Flush())

	// A task reads the shared store.
	task, err := top.NewTask(stream.TaskConfig{ApplicationID: "app", ID: stream.TaskID{}, Env: env, GlobalStores: func(name string) *stream.StoreHandle { return gt.Store(name) }})
	jMust(t, err)
	jMust(t, task.Init())
	three, _ := serde.Int64().Serialize("", 3)
	jMust(t, task.Add(stream.RawRecord{Topic: "amounts", Key: []byte("eur"), Value: three, Timestamp: 9}))
	_, err = task.Process(10)
	jMust(t, err)
	if len(env.sent) != 2 || env.sent[1].Topic != "out" {
		t.Fatalf("sent %+v", env.sent)
	}
	if n, _ := serde.Int64().Deserialize("", env.sent[1].Value); n != 24 || env.sent[1].Timestamp != 9 {
		t.Errorf("joined %d @%d", n, env.sent[1].Timestamp)
	}
	jMust(t, task.Close())

	// Without the global store, the task cannot start.
	task, err = top.NewTask(stream.TaskConfig{ApplicationID: "app", ID: stream.TaskID{}, Env: env})
	jMust(t, err)
	if err := task.Init(); err == nil || !strings.Contains(err.Error(), "global store") {
		t.Errorf("Init without global stores: %v", err)
	}
	jMust(t, gt.Close())
	jMust(t, gt.Close())

	// Under LogAndFail an undecodable record fails the global task.
	gt, err = top.NewGlobalTask(stream.GlobalTaskConfig{ApplicationID: "app", Env: &jEnv{}})
	jMust(t, err)
	jMust(t, gt.Init())
	if err := gt.Apply(stream.RawRecord{Topic: "rates", Key: []byte("x"), Value: []byte("bad")}); err == nil {
		t.Error("no error under LogAndFail")
	}
	if err := gt.Apply(stream.RawRecord{Topic: "other"}); err == nil {
		t.Error("no error for a topic that is not global")
	}
	jMust(t, gt.Close())
}

// The global task writes the shared global store while a stream task
// reads it from another goroutine (as the runtime's global thread and
// stream threads do); run with -race.
func TestGlobalStoreConcurrentReads(t *testing.T) {
	b := stream.NewBuilder()
	g := stream.GlobalTable(b, "rates", stream.With(serde.String(), serde.Int64()), stream.Materialized[string, int64]{})
	s := stream.Stream(b, stream.With(serde.String(), serde.Int64()), "amounts")
	stream.LeftJoinGlobal(s, g, func(k string, _ int64) string { return k }, func(_ string, v, r int64, _ bool) int64 { return v * r }).
		To("out", stream.Produced[string, int64]{})
	top, err := b.Build()
	jMust(t, err)
	gt, err := top.NewGlobalTask(stream.GlobalTaskConfig{ApplicationID: "app", Env: &jEnv{}})
	jMust(t, err)
	jMust(t, gt.Init())
	defer gt.Close()
	env := &jEnv{}
	task, err := top.NewTask(stream.TaskConfig{ApplicationID: "app", Env: env, GlobalStores: gt.Store})
	jMust(t, err)
	jMust(t, task.Init())
	defer task.Close()
	const n = 2000
	enc := func(v int64) []byte { b, _ := serde.Int64().Serialize("", v); return b }
	done := make(chan error, 1)
	go func() {
		for i := range int64(n) {
			if err := gt.Apply(stream.RawRecord{Topic: "rates", Offset: i, Key: []byte(fmt.Sprint("k", i%10)), Value: enc(i), Timestamp: i}); err != nil {
				done <- err
				return
			}
		}
		done <- gt.Flush()
	}()
	for i := range int64(n) {
		jMust(t, task.Add(stream.RawRecord{Topic: "amounts", Offset: i, Key: []byte(fmt.Sprint("k", i%10)), Value: enc(1), Timestamp: i}))
		_, err := task.Process(1)
		jMust(t, err)
	}
	jMust(t, <-done)
	if len(env.sent) != n {
		t.Errorf("%d outputs, want %d", len(env.sent), n)
	}
	v, _, ok, err := gt.Store(g.StoreName()).Get([]byte("k9"))
	if r, _ := serde.Int64().Deserialize("", v); err != nil || !ok || r != n-1 {
		t.Errorf("k9 = %d %v %v", r, ok, err)
	}
}

// jEnv is a TaskEnv keeping stores in memory and sent records in a slice.
type jEnv struct{ sent []stream.RawRecord }

func (e *jEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	return table.NewInMemory(info.Name), nil
}

func (e *jEnv) Send(r stream.RawRecord) error {
	e.sent = append(e.sent, r)
	return nil
}

// ---- examples ----

// A foreign-key join: each order joined with its customer, by the
// customer id in the order.
func ExampleJoinForeignKey() {
	b := stream.NewBuilder()
	orders := stream.Table(b, "orders", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
	customers := stream.Table(b, "customers", stream.With(serde.String(), serde.String()), stream.Materialized[string, string]{})
	stream.JoinForeignKey(orders, customers,
		func(order string) string { _, customer, _ := strings.Cut(order, "@"); return customer },
		func(order, name string) string { return order + " for " + name },
		stream.ForeignKeyJoined[string, string, string]{}, stream.Materialized[string, string]{}).
		ToStream().To("orders-with-customers", stream.Produced[string, string]{})
	top, _ := b.Build()
	d, _ := streamtest.New(top)
	defer d.Close()
	o := streamtest.InputTopic(d, "orders", serde.String(), serde.String())
	c := streamtest.InputTopic(d, "customers", serde.String(), serde.String())
	out := streamtest.OutputTopic(d, "orders-with-customers", serde.String(), serde.String())
	c.Pipe("c1", "Ann", 1)
	o.Pipe("o1", "3 apples@c1", 2)
	c.Pipe("c1", "Annie", 3)
	o.Pipe("o1", "3 apples@c2", 4) // no customer c2: the result goes
	recs, _ := out.ReadRecords()
	for _, r := range recs {
		fmt.Println(r)
	}
	// Output:
	// o1=3 apples@c1 for Ann@2
	// o1=3 apples@c1 for Annie@3
	// o1=null@4
}

// A stream joined with a global table by a key computed from each record.
func ExampleJoinGlobal() {
	b := stream.NewBuilder()
	rates := stream.GlobalTable(b, "rates", stream.With(serde.String(), serde.Float64()), stream.Materialized[string, float64]{})
	payments := stream.Stream(b, stream.With(serde.String(), serde.Float64()), "payments")
	stream.LeftJoinGlobal(payments, rates,
		func(account string, _ float64) string { cur, _, _ := strings.Cut(account, "/"); return cur },
		func(_ string, amount, rate float64, ok bool) float64 {
			if !ok {
				return -1
			}
			return amount * rate
		}).To("payments-eur", stream.Produced[string, float64]{})
	top, _ := b.Build()
	d, _ := streamtest.New(top)
	defer d.Close()
	r := streamtest.InputTopic(d, "rates", serde.String(), serde.Float64())
	p := streamtest.InputTopic(d, "payments", serde.String(), serde.Float64())
	out := streamtest.OutputTopic(d, "payments-eur", serde.String(), serde.Float64())
	p.Pipe("usd/alice", 10, 1)
	r.Pipe("usd", 0.5, 0)
	p.Pipe("usd/alice", 10, 2)
	recs, _ := out.ReadRecords()
	for _, rec := range recs {
		fmt.Println(rec)
	}
	// Output:
	// usd/alice=-1@1
	// usd/alice=5@2
}
