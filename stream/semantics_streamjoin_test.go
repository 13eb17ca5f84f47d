package stream_test

// Semantic tests of windowed stream-stream joins (inner, left, outer).
// Inputs, timestamps and expected outputs are facts from Kafka Streams'
// own test suites (apache/kafka, streams/src/test/java/org/apache/kafka/
// streams/kstream/internals/KStreamKStream{Join,LeftJoin,OuterJoin}Test and
// streams/TopologyTest), named above each case. Kafka's tests use Long
// values on the right side of some outer joins; here both sides are
// strings, which prints the same.

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

// sjIn is one input record: side 1 is topic1 (left), 2 is topic2 (right).
type sjIn struct {
	side int
	key  int32
	val  string
	ts   int64
}

// sjStep pipes records, then expects the join's output ("key=value@ts").
type sjStep struct {
	in   []sjIn
	want []string
}

func sjL(key int32, val string, ts int64) sjIn { return sjIn{1, key, val, ts} }
func sjR(key int32, val string, ts int64) sjIn { return sjIn{2, key, val, ts} }

// each pipes, for every key, prefix+key at ts on side.
func sjEach(side int, keys []int32, prefix string, ts int64) []sjIn {
	var out []sjIn
	for _, k := range keys {
		out = append(out, sjIn{side, k, fmt.Sprint(prefix, k), ts})
	}
	return out
}

// stagger pipes, for the i-th key, prefix+key at ts+i on side.
func sjStagger(side int, keys []int32, prefix string, ts int64) []sjIn {
	var out []sjIn
	for i, k := range keys {
		out = append(out, sjIn{side, k, fmt.Sprint(prefix, k), ts + int64(i)})
	}
	return out
}

func sjOrNull(s string, ok bool) string {
	if !ok {
		return "null"
	}
	return s
}

// sjTopology builds topic1 <kind> topic2 → "output" with Kafka's
// MockValueJoiner.TOSTRING_JOINER ("v1+v2", null for a missing side).
func sjTopology(t *testing.T, kind string, w window.JoinWindows, j stream.StreamJoined[int32, string, string]) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	c := stream.With(serde.Int32(), serde.String())
	s1 := stream.Stream(b, c, "topic1")
	s2 := stream.Stream(b, c, "topic2")
	var out stream.KStream[int32, string]
	switch kind {
	case "join":
		out = stream.JoinStreams(s1, s2, func(_ int32, a, b string) string { return a + "+" + b }, w, j)
	case "leftJoin":
		out = stream.LeftJoinStreams(s1, s2, func(_ int32, a, b string, ok bool) string { return a + "+" + sjOrNull(b, ok) }, w, j)
	case "outerJoin":
		out = stream.OuterJoinStreams(s1, s2, func(_ int32, a, b string, okA, okB bool) string {
			return sjOrNull(a, okA) + "+" + sjOrNull(b, okB)
		}, w, j)
	default:
		t.Fatalf("unknown join kind %q", kind)
	}
	out.To("output", stream.Produced[int32, string]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// sjRun runs steps against a fresh driver and checks each step's output.
func sjRun(t *testing.T, kind string, w window.JoinWindows, steps []sjStep) *streamtest.Driver {
	t.Helper()
	d, err := streamtest.New(sjTopology(t, kind, w, stream.StreamJoined[int32, string, string]{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ins := map[int]*streamtest.Input[int32, string]{
		1: streamtest.InputTopic(d, "topic1", serde.Int32(), serde.String()),
		2: streamtest.InputTopic(d, "topic2", serde.Int32(), serde.String()),
	}
	out := streamtest.OutputTopic(d, "output", serde.Int32(), serde.String())
	for i, st := range steps {
		for _, in := range st.in {
			if err := ins[in.side].Pipe(in.key, in.val, in.ts); err != nil {
				t.Fatalf("step %d: pipe %+v: %v", i, in, err)
			}
		}
		recs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, rec := range recs {
			got = append(got, rec.String())
		}
		want := st.want
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d (after %v):\n got %q\nwant %q", i, st.in, got, want)
		}
	}
	return d
}

var sjKeys = []int32{0, 1, 2, 3}

func sjMs(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// sjCases are Kafka's test cases, by join kind.
var sjCases = []struct {
	name  string // the Kafka test
	kind  string
	w     window.JoinWindows
	steps []sjStep
}{
	{"KStreamKStreamJoinTest.testJoin", "join", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{sjEach(1, sjKeys[:2], "A", 0), nil},
		{sjEach(2, sjKeys[:2], "a", 0), []string{"0=A0+a0@0", "1=A1+a1@0"}},
		{sjEach(1, sjKeys, "B", 0), []string{"0=B0+a0@0", "1=B1+a1@0"}},
		{sjEach(2, sjKeys, "b", 0), []string{"0=A0+b0@0", "0=B0+b0@0", "1=A1+b1@0", "1=B1+b1@0", "2=B2+b2@0", "3=B3+b3@0"}},
		{sjEach(1, sjKeys, "C", 0), []string{"0=C0+a0@0", "0=C0+b0@0", "1=C1+a1@0", "1=C1+b1@0", "2=C2+b2@0", "3=C3+b3@0"}},
		{sjEach(2, sjKeys[:2], "c", 0), []string{"0=A0+c0@0", "0=B0+c0@0", "0=C0+c0@0", "1=A1+c1@0", "1=B1+c1@0", "1=C1+c1@0"}},
	}},
	{"KStreamKStreamJoinTest.testOuterJoin", "outerJoin", window.JoinWindowsOf(sjMs(100)).WithGrace(24 * time.Hour), []sjStep{
		{sjEach(1, sjKeys[:2], "A", 0), nil},
		{sjEach(2, sjKeys[:2], "a", 0), []string{"0=A0+a0@0", "1=A1+a1@0"}},
		{sjEach(1, sjKeys, "B", 0), []string{"0=B0+a0@0", "1=B1+a1@0"}},
		{sjEach(2, sjKeys, "b", 0), []string{"0=A0+b0@0", "0=B0+b0@0", "1=A1+b1@0", "1=B1+b1@0", "2=B2+b2@0", "3=B3+b3@0"}},
		{sjEach(1, sjKeys, "C", 0), []string{"0=C0+a0@0", "0=C0+b0@0", "1=C1+a1@0", "1=C1+b1@0", "2=C2+b2@0", "3=C3+b3@0"}},
		{sjEach(2, sjKeys[:2], "c", 0), []string{"0=A0+c0@0", "0=B0+c0@0", "0=C0+c0@0", "1=A1+c1@0", "1=B1+c1@0", "1=C1+c1@0"}},
	}},
	{"KStreamKStreamJoinTest.testAsymmetricWindowingAfter", "join", window.JoinWindowsOf(0).After(sjMs(100)), []sjStep{
		{sjStagger(1, sjKeys, "A", 1000), nil},
		{sjEach(2, sjKeys, "a", 999), nil},
		{sjEach(2, sjKeys, "b", 1000), []string{"0=A0+b0@1000"}},
		{sjEach(2, sjKeys, "c", 1001), []string{"0=A0+c0@1001", "1=A1+c1@1001"}},
		{sjEach(2, sjKeys, "d", 1002), []string{"0=A0+d0@1002", "1=A1+d1@1002", "2=A2+d2@1002"}},
		{sjEach(2, sjKeys, "e", 1003), []string{"0=A0+e0@1003", "1=A1+e1@1003", "2=A2+e2@1003", "3=A3+e3@1003"}},
		{sjEach(2, sjKeys, "f", 1100), []string{"0=A0+f0@1100", "1=A1+f1@1100", "2=A2+f2@1100", "3=A3+f3@1100"}},
		{sjEach(2, sjKeys, "g", 1101), []string{"1=A1+g1@1101", "2=A2+g2@1101", "3=A3+g3@1101"}},
		{sjEach(2, sjKeys, "h", 1102), []string{"2=A2+h2@1102", "3=A3+h3@1102"}},
		{sjEach(2, sjKeys, "i", 1103), []string{"3=A3+i3@1103"}},
		{sjEach(2, sjKeys, "j", 1104), nil},
	}},
	{"KStreamKStreamJoinTest.testAsymmetricWindowingBefore", "join", window.JoinWindowsOf(0).Before(sjMs(100)), []sjStep{
		{sjStagger(1, sjKeys, "A", 1000), nil},
		{sjEach(2, sjKeys, "a", 899), nil},
		{sjEach(2, sjKeys, "b", 900), []string{"0=A0+b0@1000"}},
		{sjEach(2, sjKeys, "c", 901), []string{"0=A0+c0@1000", "1=A1+c1@1001"}},
		{sjEach(2, sjKeys, "d", 902), []string{"0=A0+d0@1000", "1=A1+d1@1001", "2=A2+d2@1002"}},
		{sjEach(2, sjKeys, "e", 903), []string{"0=A0+e0@1000", "1=A1+e1@1001", "2=A2+e2@1002", "3=A3+e3@1003"}},
		{sjEach(2, sjKeys, "f", 1000), []string{"0=A0+f0@1000", "1=A1+f1@1001", "2=A2+f2@1002", "3=A3+f3@1003"}},
		{sjEach(2, sjKeys, "g", 1001), []string{"1=A1+g1@1001", "2=A2+g2@1002", "3=A3+g3@1003"}},
		{sjEach(2, sjKeys, "h", 1002), []string{"2=A2+h2@1002", "3=A3+h3@1003"}},
		{sjEach(2, sjKeys, "i", 1003), []string{"3=A3+i3@1003"}},
		{sjEach(2, sjKeys, "j", 1004), nil},
	}},

	{"KStreamKStreamLeftJoinTest.testLeftJoinDuplicates", "leftJoin", window.JoinWindowsOf(sjMs(100)).WithGrace(sjMs(10)), []sjStep{
		{[]sjIn{sjL(0, "A0", 0), sjL(0, "A0-0", 0), sjR(1, "a0", 111), sjR(2, "dummy", 500)}, []string{"0=A0+null@0", "0=A0-0+null@0"}},
		{[]sjIn{sjL(2, "A2", 1000), sjL(2, "A2-0", 1000), sjR(2, "a2", 1001)}, []string{"2=A2+a2@1001", "2=A2-0+a2@1001"}},
		{[]sjIn{sjR(3, "a3", 315)}, nil},
	}},
	{"KStreamKStreamLeftJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor", "leftJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjL(0, "A0", 1), sjL(1, "A1", 2), sjL(0, "A0-0", 3)}, nil},
		{[]sjIn{sjR(1, "a1", 3)}, []string{"1=A1+a1@3"}},
		{[]sjIn{sjL(2, "dummy", 401)}, []string{"0=A0+null@1", "0=A0-0+null@3"}},
		{[]sjIn{sjR(2, "dummy", 401)}, []string{"2=dummy+dummy@401"}},
	}},
	{"KStreamKStreamLeftJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor", "leftJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjL(0, "A0", 1), sjL(1, "A1", 2), sjL(0, "A0-0", 3)}, nil},
		{[]sjIn{sjR(1, "a1", 3)}, []string{"1=A1+a1@3"}},
		{[]sjIn{sjR(2, "dummy", 401)}, []string{"0=A0+null@1", "0=A0-0+null@3"}},
		{[]sjIn{sjL(2, "dummy", 402)}, []string{"2=dummy+dummy@402"}},
	}},
	{"KStreamKStreamLeftJoinTest.testRightNonJoinedRecordsAreNeverEmittedByTheLeftProcessor", "leftJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjR(0, "A0", 1), sjR(1, "A1", 2), sjR(0, "A0-0", 3)}, nil},
		{[]sjIn{sjL(1, "a1", 3)}, []string{"1=a1+A1@3"}},
		{[]sjIn{sjL(2, "dummy", 401)}, nil},
		{[]sjIn{sjR(2, "dummy", 402)}, []string{"2=dummy+dummy@402"}},
	}},
	{"KStreamKStreamLeftJoinTest.testRightNonJoinedRecordsAreNeverEmittedByTheRightProcessor", "leftJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjR(0, "A0", 1), sjR(1, "A1", 2), sjR(0, "A0-0", 3)}, nil},
		{[]sjIn{sjL(1, "a1", 3)}, []string{"1=a1+A1@3"}},
		{[]sjIn{sjR(2, "dummy", 401)}, nil},
		{[]sjIn{sjL(2, "dummy", 402)}, []string{"2=dummy+dummy@402"}},
	}},
	{"KStreamKStreamLeftJoinTest.testLeftJoinedRecordsWithZeroAfterAreEmitted", "leftJoin", window.JoinWindowsOf(sjMs(100)).After(0), []sjStep{
		{sjStagger(1, sjKeys, "A", 1000), []string{"0=A0+null@1000", "1=A1+null@1001", "2=A2+null@1002"}},
		{sjEach(2, sjKeys, "a", 999), []string{"0=A0+a0@1000", "1=A1+a1@1001", "2=A2+a2@1002", "3=A3+a3@1003"}},
		{sjEach(2, sjKeys, "b", 1000), []string{"0=A0+b0@1000", "1=A1+b1@1001", "2=A2+b2@1002", "3=A3+b3@1003"}},
		{sjEach(2, sjKeys, "c", 1001), []string{"1=A1+c1@1001", "2=A2+c2@1002", "3=A3+c3@1003"}},
		{sjEach(2, sjKeys, "d", 1002), []string{"2=A2+d2@1002", "3=A3+d3@1003"}},
		{sjEach(2, sjKeys, "e", 1003), []string{"3=A3+e3@1003"}},
		{sjEach(2, sjKeys, "f", 1100), nil},
	}},
	{"KStreamKStreamLeftJoinTest.testOrdering", "leftJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjL(0, "A0", 0), sjL(1, "A1", 100)}, nil},
		{[]sjIn{sjR(1, "a1", 110)}, []string{"0=A0+null@0", "1=A1+a1@110"}},
	}},
	{"KStreamKStreamLeftJoinTest.testGracePeriod", "leftJoin", window.JoinWindowsOf(sjMs(100)).WithGrace(sjMs(10)), []sjStep{
		{sjEach(1, sjKeys[:2], "A", 0), nil},
		{sjEach(2, sjKeys, "a", 101), nil},
		{[]sjIn{sjR(0, "dummy", 1201)}, []string{"0=A0+null@0", "1=A1+null@0"}},
	}},
	{"KStreamKStreamLeftJoinTest.shouldNotEmitLeftJoinResultForAsymmetricWindow", "leftJoin", window.JoinWindowsOf(sjMs(100)).Before(0), []sjStep{
		{sjStagger(1, sjKeys[:2], "A", 0), nil},
		{[]sjIn{sjR(0, "a0", 100)}, []string{"0=A0+a0@100"}},
		{[]sjIn{sjR(1, "a1", 102)}, []string{"1=A1+null@1"}},
	}},
	{"KStreamKStreamLeftJoinTest.testWindowing (with testUpperWindowBound and testLowerWindowBound)", "leftJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{sjEach(1, sjKeys[:2], "A", 0), nil},
		{sjEach(2, sjKeys, "a", 0), []string{"0=A0+a0@0", "1=A1+a1@0"}},
		// testUpperWindowBound
		{sjStagger(2, sjKeys, "b", 1000), nil},
		{sjEach(1, sjKeys, "B", 1100), []string{"0=B0+b0@1100", "1=B1+b1@1100", "2=B2+b2@1100", "3=B3+b3@1100"}},
		{sjEach(1, sjKeys, "C", 1101), []string{"1=C1+b1@1101", "2=C2+b2@1101", "3=C3+b3@1101"}},
		{sjEach(1, sjKeys, "D", 1102), []string{"2=D2+b2@1102", "3=D3+b3@1102"}},
		{sjEach(1, sjKeys, "E", 1103), []string{"3=E3+b3@1103"}},
		{sjEach(1, sjKeys, "F", 1104), nil},
		{[]sjIn{sjL(0, "dummy", 1405)}, []string{"0=C0+null@1101", "0=D0+null@1102", "1=D1+null@1102",
			"0=E0+null@1103", "1=E1+null@1103", "2=E2+null@1103", "0=F0+null@1104", "1=F1+null@1104", "2=F2+null@1104", "3=F3+null@1104"}},
		// testLowerWindowBound: records whose window has ended when they
		// arrive are emitted at once when nothing matches.
		{sjEach(1, sjKeys, "G", 899), []string{"0=G0+null@899", "1=G1+null@899", "2=G2+null@899", "3=G3+null@899"}},
		{sjEach(1, sjKeys, "H", 900), []string{"0=H0+b0@1000", "1=H1+null@900", "2=H2+null@900", "3=H3+null@900"}},
		{sjEach(1, sjKeys, "I", 901), []string{"0=I0+b0@1000", "1=I1+b1@1001", "2=I2+null@901", "3=I3+null@901"}},
		{sjEach(1, sjKeys, "J", 902), []string{"0=J0+b0@1000", "1=J1+b1@1001", "2=J2+b2@1002", "3=J3+null@902"}},
		{sjEach(1, sjKeys, "K", 903), []string{"0=K0+b0@1000", "1=K1+b1@1001", "2=K2+b2@1002", "3=K3+b3@1003"}},
		{[]sjIn{sjL(0, "dummy", 1203)}, []string{"0=dummy+null@1203"}},
	}},

	{"KStreamKStreamOuterJoinTest.testOuterJoinDuplicates", "outerJoin", window.JoinWindowsOf(sjMs(100)).WithGrace(sjMs(10)), []sjStep{
		{[]sjIn{sjL(0, "A0", 0), sjL(0, "A0-0", 0), sjR(1, "11", 0), sjR(1, "12", 0), sjR(1, "10", 111), sjR(3, "100", 211)},
			[]string{"1=null+11@0", "1=null+12@0", "0=A0+null@0", "0=A0-0+null@0"}},
		{[]sjIn{sjL(2, "A2", 200), sjL(2, "A2-0", 200), sjR(2, "13", 201), sjR(2, "14", 201)},
			[]string{"2=A2+13@201", "2=A2-0+13@201", "2=A2+14@201", "2=A2-0+14@201"}},
		{[]sjIn{sjR(3, "100", 1500)}, []string{"1=null+10@111", "3=null+100@211"}},
	}},
	{"KStreamKStreamOuterJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor", "outerJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjL(0, "A0", 1), sjL(1, "A1", 2), sjL(0, "A0-0", 3)}, nil},
		{[]sjIn{sjR(1, "11", 3)}, []string{"1=A1+11@3"}},
		{[]sjIn{sjL(2, "dummy", 401)}, []string{"0=A0+null@1", "0=A0-0+null@3"}},
		{[]sjIn{sjR(2, "100", 401)}, []string{"2=dummy+100@401"}},
	}},
	{"KStreamKStreamOuterJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor", "outerJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjL(0, "A0", 1), sjL(1, "A1", 2), sjL(0, "A0-0", 3)}, nil},
		{[]sjIn{sjR(1, "11", 3)}, []string{"1=A1+11@3"}},
		{[]sjIn{sjR(2, "100", 401)}, []string{"0=A0+null@1", "0=A0-0+null@3"}},
		{[]sjIn{sjL(2, "dummy", 402)}, []string{"2=dummy+100@402"}},
	}},
	{"KStreamKStreamOuterJoinTest.testRightExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor", "outerJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjR(0, "10", 1), sjR(1, "11", 2), sjR(0, "12", 3)}, nil},
		{[]sjIn{sjL(1, "A1", 3)}, []string{"1=A1+11@3"}},
		{[]sjIn{sjL(2, "dummy", 401)}, []string{"0=null+10@1", "0=null+12@3"}},
		{[]sjIn{sjR(2, "100", 402)}, []string{"2=dummy+100@402"}},
	}},
	{"KStreamKStreamOuterJoinTest.testRightExpiredNonJoinedRecordsAreEmittedByTheRightProcessor", "outerJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjR(0, "10", 1), sjR(1, "11", 2), sjR(0, "12", 3)}, nil},
		{[]sjIn{sjL(1, "A1", 3)}, []string{"1=A1+11@3"}},
		{[]sjIn{sjR(2, "100", 401)}, []string{"0=null+10@1", "0=null+12@3"}},
		{[]sjIn{sjL(2, "dummy", 402)}, []string{"2=dummy+100@402"}},
	}},
	{"KStreamKStreamOuterJoinTest.testOrdering", "outerJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{[]sjIn{sjL(0, "A0", 0), sjL(1, "A1", 100)}, nil},
		{[]sjIn{sjR(1, "11", 110)}, []string{"0=A0+null@0", "1=A1+11@110"}},
	}},
	{"KStreamKStreamOuterJoinTest.testGracePeriod", "outerJoin", window.JoinWindowsOf(sjMs(100)).WithGrace(sjMs(10)), []sjStep{
		{[]sjIn{sjL(0, "A0", 0), sjR(1, "11", 0)}, nil},
		{[]sjIn{sjL(1, "A1", 101), sjR(0, "10", 101)}, nil},
		{[]sjIn{sjR(0, "100", 112)}, []string{"1=null+11@0", "0=A0+null@0"}},
	}},
	{"KStreamKStreamOuterJoinTest.testEmitAllNonJoinedResultsForAsymmetricWindow", "outerJoin", window.JoinWindowsOf(sjMs(5)).After(sjMs(20)), []sjStep{
		{[]sjIn{sjL(0, "A0", 29)}, nil},
		{[]sjIn{sjL(1, "A1", 30)}, nil},
		{[]sjIn{sjR(2, "12", 31)}, nil},
		{[]sjIn{sjR(3, "13", 36)}, nil},
		{[]sjIn{sjR(4, "14", 37)}, []string{"2=null+12@31"}},
		{[]sjIn{sjR(5, "15", 50)}, []string{"0=A0+null@29", "3=null+13@36", "4=null+14@37"}},
	}},
	{"KStreamKStreamOuterJoinTest.testOuterJoinWithDefaultSuppliers (runOuterJoin)", "outerJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{sjEach(1, sjKeys[:2], "A", 0), nil},
		{[]sjIn{sjR(0, "10", 0), sjR(1, "11", 0)}, []string{"0=A0+10@0", "1=A1+11@0"}},
		{sjEach(1, sjKeys[:3], "B", 0), []string{"0=B0+10@0", "1=B1+11@0"}},
		{[]sjIn{sjR(0, "20", 0), sjR(1, "21", 0), sjR(2, "22", 0), sjR(3, "23", 0)}, []string{"0=A0+20@0", "0=B0+20@0", "1=A1+21@0", "1=B1+21@0", "2=B2+22@0"}},
		{sjEach(1, sjKeys, "C", 0), []string{"0=C0+10@0", "0=C0+20@0", "1=C1+11@0", "1=C1+21@0", "2=C2+22@0", "3=C3+23@0"}},
		{[]sjIn{sjL(0, "dummy", 400)}, nil},
	}},
	{"KStreamKStreamOuterJoinTest.testWindowing (first steps)", "outerJoin", window.JoinWindowsOf(sjMs(100)), []sjStep{
		{sjEach(1, sjKeys[:2], "A", 0), nil},
		{[]sjIn{sjR(0, "10", 0), sjR(1, "11", 0), sjR(2, "12", 0), sjR(3, "13", 0)}, []string{"0=A0+10@0", "1=A1+11@0"}},
	}},
	{"KStreamKStreamOuterJoinTest.testShouldNotEmitLeftJoinResultForAsymmetricBeforeWindow", "outerJoin", window.JoinWindowsOf(sjMs(100)).Before(0), []sjStep{
		{sjStagger(1, sjKeys[:2], "A", 0), nil},
		{[]sjIn{sjR(0, "10", 100)}, []string{"0=A0+10@100"}},
		{[]sjIn{sjR(1, "11", 102)}, []string{"1=A1+null@1"}},
		{[]sjIn{sjR(2, "12", 103)}, []string{"1=null+11@102"}},
		{[]sjIn{sjL(2, "A2", 103)}, []string{"2=A2+12@103"}},
	}},
	{"KStreamKStreamOuterJoinTest.testShouldNotEmitLeftJoinResultForAsymmetricAfterWindow", "outerJoin", window.JoinWindowsOf(sjMs(100)).After(0), []sjStep{
		{sjStagger(1, sjKeys[:2], "A", 0), []string{"0=A0+null@0"}},
		{[]sjIn{sjR(1, "11", 1)}, []string{"1=A1+11@1"}},
		{[]sjIn{sjR(2, "12", 101)}, nil},
		{[]sjIn{sjR(3, "13", 101)}, nil},
		{[]sjIn{sjL(2, "A2", 201)}, []string{"2=A2+12@201"}},
	}},
}

func TestStreamJoinKafkaCases(t *testing.T) {
	for _, c := range sjCases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.w.Err(); err != nil {
				t.Fatal(err)
			}
			sjRun(t, c.kind, c.w, c.steps)
		})
	}
}

// TestStreamJoinDuplicates: two records of one key with the same timestamp
// on each side are all kept (Kafka's join stores retain duplicates) and
// all joined, in arrival order; unmatched duplicates of a left join are
// all emitted when their window closes (as in Kafka's
// KStreamKStreamLeftJoinTest.testLeftJoinDuplicates).
func TestStreamJoinDuplicates(t *testing.T) {
	w := window.JoinWindowsOf(sjMs(10))
	sjRun(t, "join", w, []sjStep{
		{[]sjIn{sjL(1, "A", 5), sjL(1, "B", 5)}, nil},
		{[]sjIn{sjR(1, "x", 5)}, []string{"1=A+x@5", "1=B+x@5"}},
		{[]sjIn{sjR(1, "y", 5)}, []string{"1=A+y@5", "1=B+y@5"}},
		{[]sjIn{sjL(1, "C", 5)}, []string{"1=C+x@5", "1=C+y@5"}},
	})
	sjRun(t, "leftJoin", w, []sjStep{
		{[]sjIn{sjL(1, "A", 5), sjL(1, "B", 5), sjL(2, "C", 5)}, nil},
		{[]sjIn{sjR(2, "z", 7)}, []string{"2=C+z@7"}},
		// Stream time 16 > 5 + 10: key 1's two records are emitted; key
		// 2's was matched.
		{[]sjIn{sjR(9, "tick", 16)}, []string{"1=A+null@5", "1=B+null@5"}},
		{[]sjIn{sjR(9, "tick", 100)}, nil},
	})
}

// TestStreamJoinNullKeysAndValues: Kafka's StreamStreamJoinUtil.skipRecord
// drops records with a null key or value (counted in dropped-records),
// except that left and outer joins emit the null-key records of their
// outer sides at once (KIP-962, Kafka 3.7).
func TestStreamJoinNullKeysAndValues(t *testing.T) {
	for _, kind := range []string{"join", "leftJoin", "outerJoin"} {
		t.Run(kind, func(t *testing.T) {
			d, err := streamtest.New(sjTopology(t, kind, window.JoinWindowsOf(sjMs(100)), stream.StreamJoined[int32, string, string]{}))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in1 := streamtest.InputTopic(d, "topic1", serde.Int32(), serde.String())
			in2 := streamtest.InputTopic(d, "topic2", serde.Int32(), serde.String())
			out := streamtest.OutputTopic(d, "output", serde.Int32(), serde.String())
			for _, err := range []error{
				in1.Pipe(1, "A", 10), in2.Pipe(1, "a", 10),
				in1.PipeValue("L", 11), in2.PipeValue("R", 11),
				in1.PipeTombstone(1, 12), in2.PipeTombstone(1, 12),
			} {
				if err != nil {
					t.Fatal(err)
				}
			}
			recs, err := out.ReadRecords()
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, r := range recs {
				got = append(got, r.String())
			}
			want := map[string][]string{
				"join":      {"1=A+a@10"},
				"leftJoin":  {"1=A+a@10", "null=L+null@11"},
				"outerJoin": {"1=A+a@10", "null=L+null@11", "null=null+R@11"},
			}[kind]
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
			drops := map[string]int{"join": 4, "leftJoin": 3, "outerJoin": 2}[kind]
			if n := d.Dropped("null-key-or-value"); n != drops {
				t.Errorf("dropped null-key-or-value = %d, want %d", n, drops)
			}
		})
	}
}

// TestStreamJoinLateRecords: a record older than its own side's store
// keeps (timestamp <= the store's observed stream time - retention, the
// retention being before + after + grace) still joins with what the other
// side holds, but is not stored (Kafka's window store skips the write and
// counts it in dropped-records): later records of the other side do not
// find it. Within the grace period it is stored and joins both ways.
func TestStreamJoinLateRecords(t *testing.T) {
	w := window.JoinWindowsOf(sjMs(10)).WithGrace(sjMs(5)) // retention 25
	d := sjRun(t, "join", w, []sjStep{
		{[]sjIn{sjR(1, "x", 55), sjL(2, "A", 100)}, nil},
		// 75 <= 100 - 25: too old for the left store, but it joins x.
		{[]sjIn{sjL(1, "B", 75)}, nil},
		{[]sjIn{sjL(1, "C", 60)}, []string{"1=C+x@60"}},
		// C was not stored: y does not find it.
		{[]sjIn{sjR(1, "y", 62)}, nil},
		// 76 > 100 - 25: kept, though stream time is 100.
		{[]sjIn{sjL(3, "D", 76), sjR(3, "z", 80)}, []string{"3=D+z@80"}},
	})
	if n := d.Dropped("late"); n != 2 {
		t.Errorf("dropped late = %d, want 2 (B and C)", n)
	}
}

// TestStreamJoinDescribe: the processors and stores Kafka Streams creates
// for a stream-stream join (TopologyTest.streamStreamJoinTopologyWith*,
// streamStreamLeftJoinTopologyWith*, streamStreamOuterJoinTopologyWith*).
func TestStreamJoinDescribe(t *testing.T) {
	describe := func(kind string, j stream.StreamJoined[int32, string, string]) string {
		b := stream.NewBuilder()
		c := stream.With(serde.Int32(), serde.String())
		s1 := stream.Stream(b, c, "input-topic1")
		s2 := stream.Stream(b, c, "input-topic2")
		w := window.JoinWindowsOf(sjMs(100))
		switch kind {
		case "join":
			stream.JoinStreams(s1, s2, func(_ int32, a, b string) string { return a + b }, w, j)
		case "leftJoin":
			stream.LeftJoinStreams(s1, s2, func(_ int32, a, b string, _ bool) string { return a + b }, w, j)
		default:
			stream.OuterJoinStreams(s1, s2, func(_ int32, a, b string, _, _ bool) string { return a + b }, w, j)
		}
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return top.Describe().String()
	}
	shape := func(this, other, thisStore, otherStore, shared string) string {
		stores := func(s string) string {
			if shared == "" {
				return s
			}
			return s + ", " + shared
		}
		first, second := "    Processor: "+this+" (stores: ["+stores(otherStore)+"])\n"+
			"      --> KSTREAM-MERGE-0000000006\n      <-- KSTREAM-WINDOWED-0000000002\n",
			"    Processor: "+other+" (stores: ["+stores(thisStore)+"])\n"+
				"      --> KSTREAM-MERGE-0000000006\n      <-- KSTREAM-WINDOWED-0000000003\n"
		preds := this + ", " + other
		if other < this {
			first, second = second, first
			// Kafka prints the merge's predecessors as "this, other"
			// whatever their names (its sizes are computed while the
			// sorted sets are filled); eddy sorts them as it sorts every
			// node list, by sub-tree size and then name.
			preds = other + ", " + this
		}
		return "Topologies:\n" +
			"   Sub-topology: 0\n" +
			"    Source: KSTREAM-SOURCE-0000000000 (topics: [input-topic1])\n" +
			"      --> KSTREAM-WINDOWED-0000000002\n" +
			"    Source: KSTREAM-SOURCE-0000000001 (topics: [input-topic2])\n" +
			"      --> KSTREAM-WINDOWED-0000000003\n" +
			"    Processor: KSTREAM-WINDOWED-0000000002 (stores: [" + thisStore + "])\n" +
			"      --> " + this + "\n" +
			"      <-- KSTREAM-SOURCE-0000000000\n" +
			"    Processor: KSTREAM-WINDOWED-0000000003 (stores: [" + otherStore + "])\n" +
			"      --> " + other + "\n" +
			"      <-- KSTREAM-SOURCE-0000000001\n" +
			first + second +
			"    Processor: KSTREAM-MERGE-0000000006 (stores: [])\n" +
			"      --> none\n" +
			"      <-- " + preds + "\n\n"
	}
	cases := []struct {
		name, kind string
		j          stream.StreamJoined[int32, string, string]
		want       string
	}{
		{"streamStreamJoinTopologyWithDefaultStoresNames", "join", stream.StreamJoined[int32, string, string]{},
			shape("KSTREAM-JOINTHIS-0000000004", "KSTREAM-JOINOTHER-0000000005", "KSTREAM-JOINTHIS-0000000004-store", "KSTREAM-JOINOTHER-0000000005-store", "")},
		{"streamStreamJoinTopologyWithCustomStoresNames", "join", stream.StreamJoined[int32, string, string]{StoreName: "custom-name"},
			shape("KSTREAM-JOINTHIS-0000000004", "KSTREAM-JOINOTHER-0000000005", "custom-name-this-join-store", "custom-name-other-join-store", "")},
		{"streamStreamLeftJoinTopologyWithDefaultStoresNames", "leftJoin", stream.StreamJoined[int32, string, string]{},
			shape("KSTREAM-JOINTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005", "KSTREAM-JOINTHIS-0000000004-store", "KSTREAM-OUTEROTHER-0000000005-store", "KSTREAM-OUTERSHARED-0000000004-store")},
		{"streamStreamLeftJoinTopologyWithCustomStoresNames", "leftJoin", stream.StreamJoined[int32, string, string]{StoreName: "custom-name"},
			shape("KSTREAM-JOINTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005", "custom-name-this-join-store", "custom-name-outer-other-join-store", "custom-name-left-shared-join-store")},
		{"streamStreamOuterJoinTopologyWithDefaultStoresNames", "outerJoin", stream.StreamJoined[int32, string, string]{},
			shape("KSTREAM-OUTERTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005", "KSTREAM-OUTERTHIS-0000000004-store", "KSTREAM-OUTEROTHER-0000000005-store", "KSTREAM-OUTERSHARED-0000000004-store")},
		{"streamStreamOuterJoinTopologyWithCustomStoresNames", "outerJoin", stream.StreamJoined[int32, string, string]{StoreName: "custom-name"},
			shape("KSTREAM-OUTERTHIS-0000000004", "KSTREAM-OUTEROTHER-0000000005", "custom-name-outer-this-join-store", "custom-name-outer-other-join-store", "custom-name-outer-shared-join-store")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := describe(c.kind, c.j); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestStreamJoinStoresAndNames: the stores a join declares (window stores
// of retention before + after + grace, the shared key-value store of a
// left join, all logged unless DisableLogging) and the processor names
// StreamJoined.Name gives (Kafka's StreamJoined.withName).
func TestStreamJoinStoresAndNames(t *testing.T) {
	b := stream.NewBuilder()
	c := stream.With(serde.Int32(), serde.String())
	s1 := stream.Stream(b, c, "t1")
	s2 := stream.Stream(b, c, "t2")
	w := window.JoinWindowsOf(sjMs(100)).After(sjMs(50)).WithGrace(sjMs(7))
	stream.LeftJoinStreams(s1, s2, func(_ int32, a, b string, _ bool) string { return a + b }, w,
		stream.StreamJoined[int32, string, string]{Name: "j", StoreName: "st", InMemory: true})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	desc := top.Describe().String()
	for _, name := range []string{"j-this-windowed", "j-other-windowed", "j-this-join", "j-outer-other-join", "j-merge"} {
		if !strings.Contains(desc, "Processor: "+name+" ") {
			t.Errorf("no processor %s in\n%s", name, desc)
		}
	}
	subs := top.Subtopologies("app")
	if len(subs) != 1 {
		t.Fatalf("%d sub-topologies, want 1", len(subs))
	}
	got := map[string]stream.StoreInfo{}
	for _, s := range subs[0].Stores {
		got[s.Name] = s
	}
	for _, want := range []stream.StoreInfo{
		{Name: "st-this-join-store", Kind: stream.WindowKind, Retention: sjMs(157)},
		{Name: "st-outer-other-join-store", Kind: stream.WindowKind, Retention: sjMs(157)},
		{Name: "st-left-shared-join-store", Kind: stream.KeyValueKind},
	} {
		s, ok := got[want.Name]
		switch {
		case !ok:
			t.Errorf("no store %s (have %v)", want.Name, got)
		case s.Kind != want.Kind || s.Retention != want.Retention || !s.Logged || !s.InMemory:
			t.Errorf("store %s = %+v, want kind %v retention %v, logged, in memory", want.Name, s, want.Kind, want.Retention)
		}
	}
	if g := subs[0].Copartitioned; len(g) != 1 || !slices.Equal(g[0].Topics, []string{"t1", "t2"}) {
		t.Errorf("co-partition groups %+v, want one of t1, t2", g)
	}
}

// TestStreamJoinRepartition: a side whose key changed is repartitioned
// before the join, through a topic named after the stream's last
// processor (Kafka's expectedTopologyWithGeneratedRepartitionTopic in
// KStreamKStreamJoinTest), or Name+"-left-repartition" with a Name
// (shouldCreateRepartitionTopicsWithUserProvidedName); the join then reads
// the repartitioned records.
func TestStreamJoinRepartition(t *testing.T) {
	for _, name := range []string{"", "named"} {
		t.Run("name="+name, func(t *testing.T) {
			b := stream.NewBuilder()
			c := stream.With(serde.Int32(), serde.String())
			s1 := stream.Map(stream.Stream(b, c, "t1"), func(k int32, v string) (int32, string) { return k + 1, v })
			s2 := stream.Stream(b, c, "t2")
			stream.JoinStreams(s1, s2, func(_ int32, a, b string) string { return a + "+" + b }, window.JoinWindowsOf(sjMs(10)),
				stream.StreamJoined[int32, string, string]{Name: name}).To("out", stream.Produced[int32, string]{})
			top, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			topic := "KSTREAM-MAP-0000000001-repartition"
			if name != "" {
				topic = "named-left-repartition"
			}
			if desc := top.Describe().String(); !strings.Contains(desc, "(topic: "+topic+")") {
				t.Fatalf("no sink to %s in\n%s", topic, desc)
			}
			d, err := streamtest.New(top)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			in1 := streamtest.InputTopic(d, "t1", serde.Int32(), serde.String())
			in2 := streamtest.InputTopic(d, "t2", serde.Int32(), serde.String())
			out := streamtest.OutputTopic(d, "out", serde.Int32(), serde.String())
			if err := in2.Pipe(2, "b", 5); err != nil {
				t.Fatal(err)
			}
			if err := in1.Pipe(1, "a", 6); err != nil {
				t.Fatal(err)
			}
			recs, err := out.ReadRecords()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].String() != "2=a+b@6" {
				t.Errorf("got %v, want [2=a+b@6]", recs)
			}
		})
	}
}

// TestStreamJoinBuildErrors: missing serdes and invalid windows are Build
// errors naming the join.
func TestStreamJoinBuildErrors(t *testing.T) {
	type point struct{ X int }
	b := stream.NewBuilder()
	s1 := stream.Stream(b, stream.With(serde.Int32(), serde.JSON[point]()), "t1").
		WithSerdes(nil, nil)
	s1 = stream.MapValues(s1, func(_ int32, v point) point { return v }) // drops the value serde
	s2 := stream.Stream(b, stream.With(serde.Int32(), serde.String()), "t2")
	stream.JoinStreams(s1, s2, func(_ int32, a point, b string) string { return b }, window.JoinWindowsOf(sjMs(10)),
		stream.StreamJoined[int32, point, string]{})
	stream.JoinStreams(s2, s2, func(_ int32, a, b string) string { return b }, window.JoinWindows{},
		stream.StreamJoined[int32, string, string]{StoreName: "bad"})
	_, err := b.Build()
	if !errors.Is(err, stream.ErrTopology) {
		t.Fatalf("Build error %v, want ErrTopology", err)
	}
	for _, want := range []string{"StreamJoined.Value", "join windows"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Build error %q does not mention %q", err, want)
		}
	}
}

// TestStreamJoinHeaders: results carry the headers of the record being
// processed, unmatched records emitted late included (Kafka's
// KStreamKStreamOuterJoinTest.testShouldForwardCurrentHeaders).
func TestStreamJoinHeaders(t *testing.T) {
	d, err := streamtest.New(sjTopology(t, "outerJoin", window.JoinWindowsOf(sjMs(100)).WithGrace(sjMs(10)), stream.StreamJoined[int32, string, string]{}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in1 := streamtest.InputTopic(d, "topic1", serde.Int32(), serde.String())
	in2 := streamtest.InputTopic(d, "topic2", serde.Int32(), serde.String())
	out := streamtest.OutputTopic(d, "output", serde.Int32(), serde.String())
	h := func(b byte) stream.Header { return stream.Header{Key: "h", Value: []byte{b}} }
	check := func(step string, want ...string) {
		t.Helper()
		recs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, r := range recs {
			got = append(got, fmt.Sprintf("%v h=%v", r, r.Headers))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", step, got, want)
		}
	}
	for _, err := range []error{in1.Pipe(0, "A0", 0, h(1)), in2.Pipe(1, "10", 0, h(2)), in2.Pipe(3, "100", 211, h(3))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	check("unmatched", "1=null+10@0 h=[{h [3]}]", "0=A0+null@0 h=[{h [3]}]")
	for _, err := range []error{in1.Pipe(2, "A2", 200, h(4)), in2.Pipe(2, "12", 200, h(5))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	check("joined", "2=A2+12@200 h=[{h [5]}]")
}

// sjEnv is a TaskEnv keeping every topic in memory and restoring stores
// from their changelog topics, as the runtime does on a restart.
type sjEnv struct{ topics map[string][]stream.RawRecord }

func (e *sjEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	info.InMemory = true
	s, err := stream.OpenStateStore(info, "", table.BadgerOptions{})
	if err != nil {
		return nil, err
	}
	if info.Logged {
		if err := stream.RestoreChangelog(info, s, e.topics[info.Changelog.Name]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (e *sjEnv) Send(rec stream.RawRecord) error {
	rec.Offset = int64(len(e.topics[rec.Topic]))
	e.topics[rec.Topic] = append(e.topics[rec.Topic], rec)
	return nil
}

// TestStreamJoinRestore: both window stores and the shared store of
// unmatched records are rebuilt from their changelogs after a restart:
// stored records still join, and an unmatched record of before the
// restart is emitted when its window closes after it.
func TestStreamJoinRestore(t *testing.T) {
	top := sjTopology(t, "leftJoin", window.JoinWindowsOf(sjMs(100)), stream.StreamJoined[int32, string, string]{})
	env := &sjEnv{topics: map[string][]stream.RawRecord{}}
	offsets := map[string]int64{}
	run := func(recs ...sjIn) {
		t.Helper()
		task, err := top.NewTask(stream.TaskConfig{ApplicationID: "app", Env: env})
		if err != nil {
			t.Fatal(err)
		}
		if err := task.Init(); err != nil {
			t.Fatal(err)
		}
		for _, in := range recs {
			topic := fmt.Sprint("topic", in.side)
			kb, _ := serde.Int32().Serialize(topic, in.key)
			raw := stream.RawRecord{Topic: topic, Offset: offsets[topic], Key: kb, Value: []byte(in.val), Timestamp: in.ts}
			offsets[topic]++
			if err := task.Add(raw); err != nil {
				t.Fatal(err)
			}
			if _, err := task.Process(1); err != nil {
				t.Fatal(err)
			}
		}
		if err := task.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := task.Close(); err != nil {
			t.Fatal(err)
		}
	}
	output := func() []string {
		var out []string
		for _, r := range env.topics["output"] {
			k, _ := serde.Int32().Deserialize("output", r.Key)
			out = append(out, fmt.Sprintf("%d=%s@%d", k, r.Value, r.Timestamp))
		}
		env.topics["output"] = nil
		return out
	}
	run(sjL(1, "A", 10), sjL(2, "B", 20), sjR(3, "c", 30))
	if got := output(); len(got) != 0 {
		t.Fatalf("before the restart: %q, want nothing", got)
	}
	// After a restart: B joins b (the left store was restored, and B's
	// unmatched entry removed); A's window closes at 10 + 100 < 111.
	run(sjR(2, "b", 50), sjR(9, "tick", 111), sjR(9, "tick", 500))
	want := []string{"2=B+b@50", "1=A+null@10"}
	if got := output(); !slices.Equal(got, want) {
		t.Errorf("after the restart: got %q, want %q", got, want)
	}
}
