// Package docs_test checks that the tables of windows.md say what the code
// does: each table's input runs through the test driver, and every result
// cell of the table must list exactly the results the driver produced
// (prose in parentheses or after " — " is ignored).
package docs_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/window"
)

// doc is windows.md.
func doc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("windows.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the part of windows.md under heading, up to the next
// heading.
func section(t *testing.T, md, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(md, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("windows.md has no heading %q", heading)
	}
	if i := strings.Index(rest, "\n#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// row returns the cells of the one table row of md that starts with prefix
// (e.g. "| 12 | 12 |").
func row(t *testing.T, md, prefix string) []string {
	t.Helper()
	var found []string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, prefix) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("windows.md: %d table rows of the section start with %q, want 1", len(found), prefix)
	}
	cells := strings.Split(strings.Trim(found[0], "|"), "|")
	for i, c := range cells {
		cells[i] = strings.TrimSpace(c)
	}
	return cells
}

var (
	parens = regexp.MustCompile(`\s*\([^)]*\)`)
	spaces = regexp.MustCompile(`\s+`)
)

// results returns the results a cell lists: explanations in parentheses or
// after " — " dropped, "— dropped…" read as "dropped".
func results(cell string) string {
	if strings.HasPrefix(cell, "—") {
		return "dropped"
	}
	if i := strings.Index(cell, " — "); i >= 0 {
		cell = cell[:i]
	}
	cell = parens.ReplaceAllString(cell, "")
	return strings.TrimSpace(spaces.ReplaceAllString(cell, " "))
}

// check compares the results of cell col of the row starting with prefix
// with got.
func check(t *testing.T, md, prefix string, col int, got string) {
	t.Helper()
	cells := row(t, md, prefix)
	if col >= len(cells) {
		t.Fatalf("row %q has %d cells", prefix, len(cells))
	}
	if want := results(cells[col]); want != got {
		t.Errorf("windows.md row %q, column %d:\n doc  %q\n code %q", prefix, col+1, want, got)
	}
}

// win formats a windowed key as the tables do.
func win(k window.Windowed[string], inclusive bool) string {
	if inclusive {
		return fmt.Sprintf("[%d,%d]", k.Window.Start, k.Window.End)
	}
	return fmt.Sprintf("[%d,%d)", k.Window.Start, k.Window.End)
}

// windowed writes a windowed count to topic as "window = count" (tombstones
// "window = ∅"), keyed by the inner key.
func windowed(t stream.KTable[window.Windowed[string], int64], topic string, inclusive bool) {
	stream.Map(t.ToStream(), func(k window.Windowed[string], n int64) (string, string) {
		if n == 0 { // a tombstone: counts are never 0
			return k.Key, win(k, inclusive) + " = ∅"
		}
		return k.Key, fmt.Sprintf("%s = %d", win(k, inclusive), n)
	}).To(topic, stream.Produced[string, string]{Key: serde.String(), Value: serde.String()})
}

// input is a record piped into a topic.
type input struct {
	topic, key, value string
	ts                int64
}

// run pipes ins one by one and returns, per input, what each output topic
// received ("value @timestamp", comma-separated), the stream time after it
// and whether a record was dropped as late.
func run(t *testing.T, b *stream.Builder, ins []input, outs ...string) (got []map[string]string, streamTime []int64, dropped []bool) {
	t.Helper()
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	seen := map[string]int{}
	st := int64(-1)
	late := 0
	for _, in := range ins {
		if err := streamtest.InputTopic(d, in.topic, serde.String(), serde.String()).Pipe(in.key, in.value, in.ts); err != nil {
			t.Fatal(err)
		}
		st = max(st, in.ts)
		m := map[string]string{}
		for _, o := range outs {
			recs := d.Records(o)
			var s []string
			for _, r := range recs[seen[o]:] {
				s = append(s, fmt.Sprintf("%s @%d", r.Value, r.Timestamp))
			}
			seen[o] = len(recs)
			m[o] = strings.Join(s, ", ")
		}
		got = append(got, m)
		streamTime = append(streamTime, st)
		n := d.Dropped("late")
		dropped = append(dropped, n > late)
		late = n
	}
	return got, streamTime, dropped
}

func stringStream(b *stream.Builder, topic string) stream.KGroupedStream[string, string] {
	return stream.Stream(b, stream.With(serde.String(), serde.String()), topic).GroupByKey(stream.Grouped[string, string]{})
}

// TestTimeWindowsTable checks "Tumbling and hopping windows": one key per
// record, so each result is the record's window.
func TestTimeWindowsTable(t *testing.T) {
	md := section(t, doc(t), "### Tumbling and hopping windows")
	b := stream.NewBuilder()
	g := stringStream(b, "in")
	windowed(stream.CountWindowed(g.WindowedBy(window.Tumbling(10*time.Millisecond)), stream.As[string, int64]("tumbling")), "tumbling", false)
	windowed(stream.CountWindowed(g.WindowedBy(window.Hopping(10*time.Millisecond, 5*time.Millisecond)), stream.As[string, int64]("hopping")), "hopping", false)
	ts := []int64{0, 3, 5, 9, 10, 12}
	var ins []input
	for _, at := range ts {
		ins = append(ins, input{"in", fmt.Sprint("r", at), "x", at})
	}
	got, _, _ := run(t, b, ins, "tumbling", "hopping")
	strip := regexp.MustCompile(` = 1 @\d+`)
	for i, at := range ts {
		prefix := fmt.Sprintf("| %d | ", at)
		check(t, md, prefix, 1, strip.ReplaceAllString(got[i]["tumbling"], ""))
		check(t, md, prefix, 2, strings.ReplaceAll(strip.ReplaceAllString(got[i]["hopping"], ""), ", ", " "))
	}
}

// TestSlidingTable checks the sliding-windows table.
func TestSlidingTable(t *testing.T) {
	md := section(t, doc(t), "### Sliding windows")
	b := stream.NewBuilder()
	windowed(stream.CountWindowed(stringStream(b, "in").WindowedBySliding(window.Sliding(10*time.Millisecond).WithGrace(5*time.Millisecond)),
		stream.As[string, int64]("sliding")), "sliding", true)
	ts := []int64{20, 25, 40, 28, 24, 5}
	var ins []input
	for _, at := range ts {
		ins = append(ins, input{"in", "A", "x", at})
	}
	got, st, dropped := run(t, b, ins, "sliding")
	for i, at := range ts {
		prefix := fmt.Sprintf("| %d | %d | ", at, st[i])
		res := got[i]["sliding"]
		if dropped[i] {
			res = "dropped"
		}
		check(t, md, prefix, 2, res)
	}
}

// TestSessionTable checks the session-windows table: the results (the
// timestamps, always the session end, are left out there) and the
// sessions each record leaves.
func TestSessionTable(t *testing.T) {
	md := section(t, doc(t), "### Session windows")
	b := stream.NewBuilder()
	windowed(stream.CountSessions(stringStream(b, "in").WindowedBySession(window.Session(10*time.Millisecond).WithGrace(20*time.Millisecond)),
		stream.As[string, int64]("sessions")), "sessions", true)
	ts := []int64{0, 5, 30, 20, 12, 15}
	var ins []input
	for _, at := range ts {
		ins = append(ins, input{"in", "A", "x", at})
	}
	got, _, _ := run(t, b, ins, "sessions")
	live := map[string]bool{}
	at := regexp.MustCompile(` @(\d+)`)
	for i, x := range ts {
		var res []string
		for _, r := range strings.Split(got[i]["sessions"], ", ") {
			w, v, _ := strings.Cut(r, " = ")
			m := at.FindStringSubmatch(v)
			if end := strings.TrimSuffix(w[strings.LastIndexByte(w, ',')+1:], "]"); m == nil || m[1] != end {
				t.Errorf("result %q: the timestamp is not the session end", r)
			}
			if strings.HasPrefix(v, "∅") {
				delete(live, w)
			} else {
				live[w] = true
			}
			res = append(res, at.ReplaceAllString(r, ""))
		}
		var sessions []string
		for w := range live {
			sessions = append(sessions, w)
		}
		slices.SortFunc(sessions, func(a, b string) int {
			var sa, sb int
			fmt.Sscanf(a, "[%d,", &sa)
			fmt.Sscanf(b, "[%d,", &sb)
			return sa - sb
		})
		prefix := fmt.Sprintf("| %d | ", x)
		check(t, md, prefix, 1, strings.Join(sessions, " "))
		check(t, md, prefix, 2, strings.Join(res, ", "))
	}

	// The text below the table: with no grace, [0,5] is closed at stream
	// time 30 and the record at 12 does not merge with it.
	b = stream.NewBuilder()
	windowed(stream.CountSessions(stringStream(b, "in").WindowedBySession(window.Session(10*time.Millisecond)),
		stream.As[string, int64]("sessions")), "sessions", true)
	ins = ins[:5]
	got, _, _ = run(t, b, ins, "sessions")
	if g := got[4]["sessions"]; g != "[20,30] = ∅ @30, [12,30] = 3 @30" {
		t.Errorf("no grace, record at 12: %q", g)
	}
	if !strings.Contains(strings.ReplaceAll(md, "\n", " "), "gives [12,30] = 3, while [0,5] stays") {
		t.Error("windows.md no longer explains closed sessions in merges")
	}
	// With a longer retention the closed [0,5] is still merged.
	b = stream.NewBuilder()
	windowed(stream.CountSessions(stringStream(b, "in").WindowedBySession(window.Session(10*time.Millisecond)),
		stream.Materialized[string, int64]{Name: "sessions", Retention: time.Hour}), "sessions", true)
	got, _, _ = run(t, b, ins, "sessions")
	if g := got[4]["sessions"]; g != "[0,5] = ∅ @5, [20,30] = ∅ @30, [0,30] = 5 @30" {
		t.Errorf("no grace, 1 h retention, record at 12: %q", g)
	}
}

// TestEmitTable checks "Emitting results": emit on update, emit on close
// and UntilWindowCloses (one column: they must agree), UntilTimeLimit.
func TestEmitTable(t *testing.T) {
	md := section(t, doc(t), "## Emitting results")
	b := stream.NewBuilder()
	g := stringStream(b, "in")
	tw := window.Tumbling(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
	update := stream.CountWindowed(g.WindowedBy(tw), stream.As[string, int64]("update"))
	windowed(update, "update", false)
	windowed(stream.CountWindowed(g.WindowedBy(tw).Emit(stream.EmitOnWindowClose), stream.As[string, int64]("close")), "close", false)
	windowed(update.Suppress(stream.UntilWindowCloses(stream.Unbounded())), "suppressed", false)
	windowed(update.Suppress(stream.UntilTimeLimit(10*time.Millisecond, stream.Unbounded())), "limited", false)
	ts := []int64{1, 4, 12, 8, 16, 3, 30}
	var ins []input
	for _, at := range ts {
		ins = append(ins, input{"in", "A", "x", at})
	}
	got, st, dropped := run(t, b, ins, "update", "close", "suppressed", "limited")
	for i, at := range ts {
		prefix := fmt.Sprintf("| %d | %d | ", at, st[i])
		upd := got[i]["update"]
		if dropped[i] {
			upd = "dropped"
		}
		check(t, md, prefix, 2, upd)
		if got[i]["close"] != got[i]["suppressed"] {
			t.Errorf("record at %d: emit on close %q, UntilWindowCloses %q", at, got[i]["close"], got[i]["suppressed"])
		}
		check(t, md, prefix, 3, got[i]["close"])
		check(t, md, prefix, 4, got[i]["limited"])
	}
}

// TestJoinTable checks the stream-stream join table.
func TestJoinTable(t *testing.T) {
	md := section(t, doc(t), "## Stream-stream joins")
	b := stream.NewBuilder()
	left := stream.Stream(b, stream.With(serde.String(), serde.String()), "left")
	right := stream.Stream(b, stream.With(serde.String(), serde.String()), "right")
	w := window.JoinWindowsOf(10 * time.Millisecond).WithGrace(5 * time.Millisecond)
	side := func(v string, ok bool) string {
		if !ok {
			return "∅"
		}
		return v
	}
	withKey := func(s stream.KStream[string, string], topic string) {
		stream.Map(s, func(k, v string) (string, string) { return k, k + " = " + v }).To(topic, stream.Produced[string, string]{})
	}
	withKey(stream.JoinStreams(left, right, func(_ string, a, b string) string { return a + "+" + b }, w,
		stream.StreamJoined[string, string, string]{Name: "inner"}), "inner")
	withKey(stream.LeftJoinStreams(left, right, func(_ string, a, b string, ok bool) string { return a + "+" + side(b, ok) }, w,
		stream.StreamJoined[string, string, string]{Name: "left"}), "left-join")
	withKey(stream.OuterJoinStreams(left, right, func(_ string, a, b string, okL, okR bool) string { return side(a, okL) + "+" + side(b, okR) }, w,
		stream.StreamJoined[string, string, string]{Name: "outer"}), "outer")
	ins := []input{
		{"left", "A", "a1", 0}, {"right", "A", "b1", 5}, {"left", "A", "a2", 30}, {"right", "B", "b2", 32},
		{"left", "C", "c1", 50}, {"right", "C", "d1", 45}, {"left", "A", "a3", 8}, {"left", "D", "e1", 0},
		{"right", "F", "f1", 1},
	}
	got, st, _ := run(t, b, ins, "inner", "left-join", "outer")
	for i, in := range ins {
		prefix := fmt.Sprintf("| %s %s:%s @%d | %d | ", in.topic, in.key, in.value, in.ts, st[i])
		check(t, md, prefix, 2, got[i]["inner"])
		check(t, md, prefix, 3, got[i]["left-join"])
		check(t, md, prefix, 4, got[i]["outer"])
	}
}

// TestWireLayouts checks the byte examples of "Windowed keys on the wire"
// and the changelog layouts.
func TestWireLayouts(t *testing.T) {
	md := doc(t)
	hexs := func(parts ...[]byte) string {
		var s []string
		for _, p := range parts {
			s = append(s, fmt.Sprintf("%x", p))
		}
		return strings.Join(s, " ")
	}
	tk, err := window.TimeWindowedSerde(serde.String(), time.Hour).Serialize("t",
		window.Windowed[string]{Key: "A", Window: window.Window{Start: 7200000, End: 10800000}})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := window.SessionWindowedSerde(serde.String()).Serialize("t", window.Windowed[string]{Key: "A", Window: window.Window{Start: 5, End: 7}})
	if err != nil {
		t.Fatal(err)
	}
	cl := stream.WindowStoreKey([]byte("A"), 7200000)
	flat := strings.ReplaceAll(md, "\n", " ")
	for _, want := range []string{
		"`" + hexs(tk[:1], tk[1:]) + "`",
		"`" + hexs(cl[:1], cl[1:9], cl[9:]) + "`",
		"`" + hexs(sk[:1], sk[1:9], sk[9:]) + "`",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("windows.md does not show %s", want)
		}
	}
	if got := stream.SessionStoreKey([]byte("A"), 5, 7); string(got) != string(sk) {
		t.Errorf("session changelog key %x, want the session key layout %x", got, sk)
	}

	// The store table: default retentions and changelog configs.
	b := stream.NewBuilder()
	g := stringStream(b, "in")
	windowed(stream.CountWindowed(g.WindowedBy(window.Tumbling(time.Hour).WithGrace(time.Minute)), stream.As[string, int64]("tumbling")), "o1", false)
	windowed(stream.CountWindowed(g.WindowedBySliding(window.Sliding(time.Hour).WithGrace(time.Minute)), stream.As[string, int64]("sliding")), "o2", true)
	windowed(stream.CountSessions(g.WindowedBySession(window.Session(time.Hour).WithGrace(time.Minute)), stream.As[string, int64]("sessions")), "o3", true)
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"tumbling": time.Hour + time.Minute, "sliding": 2*time.Hour + time.Minute, "sessions": time.Hour + time.Minute + time.Millisecond}
	for _, s := range top.Subtopologies("app") {
		for _, st := range s.Stores {
			if st.Retention != want[st.Name] || st.Changelog.Configs["cleanup.policy"] != "compact,delete" ||
				st.Changelog.Configs["retention.ms"] != fmt.Sprint((want[st.Name]+24*time.Hour).Milliseconds()) {
				t.Errorf("store %s: retention %v, changelog %v", st.Name, st.Retention, st.Changelog.Configs)
			}
		}
	}
}
