package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

const minute = int64(60000)

// run pipes views (user, event time as an offset from demoBase in ms) into
// a fresh driver and returns the user-sessions records as
// "user start..end=views@ts" with times as offsets from demoBase in
// minutes (ms when not whole), "user null@ts" for tombstones, and the
// driver.
func run(t *testing.T, views ...any) ([]string, *streamtest.Driver) {
	t.Helper()
	top, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(top, streamtest.WithApplicationID("sessions"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	in := streamtest.InputTopic(d, PageViewsTopic, serde.String(), serde.String())
	for i := 0; i < len(views); i += 2 {
		user, at := views[i].(string), views[i+1].(int64)
		v := fmt.Sprintf(`{"user_id":%q,"page":"/p%d","ts":%d}`, user, i/2, demoBase+at)
		// The record timestamp (1) is not the event time: ts is.
		if err := in.Pipe(user, v, 1); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := streamtest.OutputTopic(d, UserSessionsTopic, serde.String(), serde.Nullable(serde.JSON[UserSession]())).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	rel := func(ms int64) string {
		if (ms-demoBase)%minute == 0 {
			return fmt.Sprint((ms - demoBase) / minute)
		}
		return fmt.Sprintf("%dms", ms-demoBase)
	}
	var out []string
	for _, r := range recs {
		if r.Value == nil {
			out = append(out, fmt.Sprintf("%s null@%s", r.Key, rel(r.Timestamp)))
			continue
		}
		s := *r.Value
		if s.UserID != r.Key {
			t.Errorf("record key %q, value %+v", r.Key, s)
		}
		out = append(out, fmt.Sprintf("%s %s..%s=%d@%s", r.Key, rel(s.SessionStart), rel(s.SessionEnd), s.PageViews, rel(r.Timestamp)))
	}
	return out, d
}

func check(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("user-sessions:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// TestSessionsDriver runs the sessionization in the test driver: the gap
// is inclusive, an out-of-order view bridging two sessions merges them
// (tombstones for both, then the merged session), and a view whose merged
// session is closed is dropped. Each record's timestamp is its session's
// end, as in Kafka Streams.
func TestSessionsDriver(t *testing.T) {
	gap := InactivityGap.Milliseconds()
	if gap != 30*minute {
		t.Fatalf("test written for a 30-minute gap, not %v", InactivityGap)
	}
	got, d := run(t,
		"u1", int64(0),
		"u2", 10*minute,
		"u1", gap, // exactly the gap later: the same session
		"u1", 2*gap+1, // 1 ms more than the gap after the last view: a new session
		"u1", 45*minute, // out of order, within the gap of both u1 sessions
		"u1", 15*minute, // inside the session: one update, no tombstone (the record cache)
	)
	check(t, got,
		"u1 0..0=1@0",
		"u2 10..10=1@10",
		"u1 null@0",
		"u1 0..30=2@30",
		"u1 3600001ms..3600001ms=1@3600001ms",
		"u1 null@30",
		"u1 null@3600001ms",
		"u1 0..3600001ms=4@3600001ms",
		"u1 0..3600001ms=5@3600001ms",
	)
	if n := d.Dropped("late"); n != 0 {
		t.Errorf("%d views dropped", n)
	}
}

// TestSessionsLate checks the grace boundary: at stream time T a session
// is closed when its end < T - gap - grace, and a view is dropped when the
// session it would merge into (or start) is closed. Stream time is the
// task's, across users.
func TestSessionsLate(t *testing.T) {
	closeAt := (InactivityGap + Grace).Milliseconds()
	const t0 = 3 * 60 * minute
	got, d := run(t,
		"u2", 10*minute,
		"u2", t0, // stream time t0
		"u2", 40*minute, // would merge with 10..10 into 10..40: closed, dropped
		"u3", t0-closeAt, // a new session ending at t0 - gap - grace: still open
		"u4", t0-closeAt-1, // one ms earlier: closed, dropped
	)
	check(t, got,
		"u2 10..10=1@10",
		"u2 180..180=1@180",
		fmt.Sprintf("u3 %d..%d=1@%d", (t0-closeAt)/minute, (t0-closeAt)/minute, (t0-closeAt)/minute),
	)
	if n := d.Dropped("late"); n != 2 {
		t.Errorf("%d views dropped as late, want 2", n)
	}
}

// TestSessionsBadInput checks page views that are not JSON objects: the
// deserializer names the topic (the default handler stops the task).
func TestSessionsBadInput(t *testing.T) {
	top, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`not json`, `[1]`, `{"user_id":`, `null`} {
		d, err := streamtest.New(top)
		if err != nil {
			t.Fatal(err)
		}
		in := streamtest.InputTopic(d, PageViewsTopic, serde.String(), serde.String())
		if err := in.Pipe("u1", bad, 1); err == nil || !strings.Contains(err.Error(), `topic "page-views"`) {
			t.Errorf("%s: err %v, want a decode error naming the topic", bad, err)
		}
		d.Close()
	}
}

// TestSessionsNullKey checks that a page view without a key is dropped:
// sessions are per user.
func TestSessionsNullKey(t *testing.T) {
	_, d := run(t)
	in := streamtest.InputTopic(d, PageViewsTopic, serde.Bytes(), serde.String())
	if err := in.Pipe(nil, `{"page":"/","ts":5}`, 1); err != nil {
		t.Fatal(err)
	}
	if n := len(d.Records(UserSessionsTopic)); n != 0 {
		t.Errorf("%d sessions for a view without a key", n)
	}
}

// TestApplyAndSessionize checks the helpers that read user-sessions back:
// folding the records of merges gives the sessions computed directly.
func TestApplyAndSessionize(t *testing.T) {
	offsets := []int64{0, 5 * minute, 60 * minute, 30 * minute, 200 * minute}
	users := []string{"u1", "u2", "u1", "u1", "u1"}
	var args []any
	var views []PageView
	for i, at := range offsets {
		args = append(args, users[i], at)
		views = append(views, PageView{UserID: users[i], TS: demoBase + at})
	}
	got, d := run(t, args...)
	m := map[string][]UserSession{}
	for _, r := range d.Records(UserSessionsTopic) {
		if err := Apply(m, string(r.Key), r.Value); err != nil {
			t.Fatal(err)
		}
	}
	want := Sessionize(views, InactivityGap)
	if !equal(m, want) || len(want["u1"]) != 2 || want["u1"][0].PageViews != 3 || want["u1"][0].SessionEnd != demoBase+60*minute {
		t.Errorf("folded %v, want %v (records %q)", m, want, got)
	}
	if err := Apply(m, "u1", []byte(`{"user_id":"u2","session_start":1,"session_end":1,"page_views":1}`)); err == nil {
		t.Error("Apply took a session of another user")
	}
	if err := Apply(m, "u1", []byte(`[]`)); err == nil {
		t.Error("Apply took a value that is not a session")
	}
}

// TestSessionsBridgeClosed checks a view that bridges a closed session and
// an open one: the store keeps sessions for Retention (24 h), so the
// closed session is still found and merged, as in Kafka Streams (with the
// default retention, gap + grace, it would have left the store).
func TestSessionsBridgeClosed(t *testing.T) {
	got, d := run(t,
		"u1", int64(0),
		"u1", 60*minute,
		"u2", 95*minute, // stream time 95: 0..0 is closed (0 < 95 - 35), 60..60 is open
		"u1", 30*minute, // within 30 minutes of both
	)
	check(t, got,
		"u1 0..0=1@0",
		"u1 60..60=1@60",
		"u2 95..95=1@95",
		"u1 null@0",
		"u1 null@60",
		"u1 0..60=3@60",
	)
	if n := d.Dropped("late"); n != 0 {
		t.Errorf("%d views dropped", n)
	}
}
