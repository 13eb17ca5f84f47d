// Command sessions is a sessionization example as an eddy worker: it reads
// page views (the topic page-views, keyed by user id) and groups each
// user's views into sessions that end after 30 minutes without a view,
// writing every session update to the topic user-sessions.
//
// The event time of a page view is its ts field (epoch milliseconds).
// A view that extends a session, or falls within 30 minutes of two
// sessions and merges them, replaces them: the replaced sessions are
// written as tombstones (null values), then the new session. See
// README.md.
//
// Run without flags it starts an embedded broker, feeds a few page views and
// prints the sessions:
//
//	go run ./examples/sessions
//
// With --brokers it is a worker of the application "sessions" until SIGINT
// or SIGTERM. See docs/examples.md for the common flags.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/eddy-streams/eddy/examples/internal/exampleapp"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/window"
)

// The example's topics and store.
const (
	PageViewsTopic    = "page-views"
	UserSessionsTopic = "user-sessions"
	// SessionStore is the session store of the page-view counts; its
	// changelog is <app-id>-user-sessions-changelog.
	SessionStore = "user-sessions"
)

// Session windows.
const (
	// InactivityGap ends a session: a user's views at most this far apart
	// (both ends included) are in the same session.
	InactivityGap = 30 * time.Minute
	// Grace is how long, in stream time, a session still takes out-of-order
	// views after it could have closed: a view whose (merged) session ends
	// before stream time - InactivityGap - Grace is dropped and counted in
	// the dropped-records metric.
	Grace = 5 * time.Minute
	// Retention is how long (in stream time) the store keeps a session for
	// interactive queries.
	Retention = 24 * time.Hour
)

// PageView is the value of a record in page-views.
type PageView struct {
	UserID string `json:"user_id"`
	Page   string `json:"page"`
	// TS is the event time, epoch milliseconds.
	TS int64 `json:"ts"`
}

// UserSession is the value written to user-sessions: a user's session from
// its first to its last page view, both included (epoch milliseconds).
type UserSession struct {
	UserID       string `json:"user_id"`
	SessionStart int64  `json:"session_start"`
	SessionEnd   int64  `json:"session_end"`
	PageViews    int64  `json:"page_views"`
}

// PageViewSerde is the JSON serde of page views: a JSON object; its fields
// are optional (the record key is the user id that groups).
func PageViewSerde() serde.Serde[PageView] {
	js := serde.JSON[PageView]()
	return serde.Func(js.Serialize, func(topic string, b []byte) (PageView, error) {
		if len(b) == 0 || b[0] != '{' {
			return PageView{}, fmt.Errorf("topic %q: decode page view: not a JSON object", topic)
		}
		v, err := js.Deserialize(topic, b)
		if err != nil {
			return v, fmt.Errorf("topic %q: decode page view: %w", topic, err)
		}
		return v, nil
	})
}

// ViewedAt is the page views' timestamp extractor: the ts field of the
// value. A view without a usable ts keeps its record timestamp (and an
// undecodable one then fails in the value deserializer).
func ViewedAt(rec *stream.RawRecord, _ int64) (int64, error) {
	var v struct {
		TS *int64 `json:"ts"`
	}
	if err := json.Unmarshal(rec.Value, &v); err != nil || v.TS == nil || *v.TS < 0 {
		return rec.Timestamp, nil
	}
	return *v.TS, nil
}

// Topology builds the sessionization: page-views → count per user and
// session → user-sessions.
func Topology() (*stream.Topology, error) {
	b := stream.NewBuilder()
	views := stream.Stream(b, stream.With(serde.String(), PageViewSerde()).WithTimestampExtractor(ViewedAt), PageViewsTopic)
	sessions := stream.CountSessions(
		views.GroupByKey(stream.Grouped[string, PageView]{Key: serde.String(), Value: PageViewSerde()}).
			WindowedBySession(window.Session(InactivityGap).WithGrace(Grace)),
		stream.Materialized[string, int64]{Name: SessionStore, Retention: Retention})
	// Emit on update: every view forwards its session. A session that a
	// view merged away (or extended) reaches here as a tombstone, with the
	// zero count: it is written as a null value.
	stream.Map(sessions.ToStream(), func(k window.Windowed[string], n int64) (string, *UserSession) {
		if n == 0 {
			return k.Key, nil
		}
		return k.Key, &UserSession{UserID: k.Key, SessionStart: k.Window.Start, SessionEnd: k.Window.End, PageViews: n}
	}).To(UserSessionsTopic, stream.Produced[string, *UserSession]{Key: serde.String(), Value: serde.JSON[*UserSession]()})
	return b.Build()
}

// Apply folds one user-sessions record into sessions, the current sessions
// per user: a session replaces every session of its user that it overlaps
// (the sessions it was merged from, or its earlier extent), and a null value
// (a merged-away session) changes nothing, since the session it was merged
// into follows it. It reports an error for a value that is not a session.
func Apply(sessions map[string][]UserSession, user string, value []byte) error {
	if value == nil {
		return nil
	}
	var s UserSession
	if err := json.Unmarshal(value, &s); err != nil {
		return err
	}
	if s.UserID != user || s.SessionEnd < s.SessionStart || s.PageViews < 1 {
		return fmt.Errorf("bad session %s for user %q", value, user)
	}
	kept := []UserSession{s}
	for _, o := range sessions[user] {
		if o.SessionEnd < s.SessionStart || o.SessionStart > s.SessionEnd {
			kept = append(kept, o)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].SessionStart < kept[j].SessionStart })
	sessions[user] = kept
	return nil
}

// Sessionize computes the sessions of views (per user, sorted by start),
// dropping none: what user-sessions converges to when no view is too late.
func Sessionize(views []PageView, gap time.Duration) map[string][]UserSession {
	byUser := map[string][]int64{}
	for _, v := range views {
		byUser[v.UserID] = append(byUser[v.UserID], v.TS)
	}
	out := map[string][]UserSession{}
	for u, ts := range byUser {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		for i, t := range ts {
			if n := len(out[u]); i > 0 && t-ts[i-1] <= gap.Milliseconds() {
				out[u][n-1].SessionEnd = t
				out[u][n-1].PageViews++
				continue
			}
			out[u] = append(out[u], UserSession{UserID: u, SessionStart: t, SessionEnd: t, PageViews: 1})
		}
	}
	return out
}

// demoBase is the demo's first event time: 2024-03-01T09:00:00Z.
const demoBase int64 = 1709283600000

// demoView is one page view of the demo, at a minute after demoBase.
type demoView struct {
	user, page string
	minute     int64
	// tooLate marks the view the worker drops: it arrives after its user's
	// session has closed.
	tooLate bool
}

// demoViews is the demo input, in the order produced.
var demoViews = []demoView{
	{user: "alice", page: "/home", minute: 0},
	{user: "bob", page: "/home", minute: 5},
	{user: "alice", page: "/products", minute: 10},
	{user: "alice", page: "/cart", minute: 20},
	{user: "carol", page: "/home", minute: 40},
	// 45 minutes after bob's first view: a second session.
	{user: "bob", page: "/blog", minute: 50},
	// Out of order, within 30 minutes of both bob's sessions: merges them.
	{user: "bob", page: "/about", minute: 30},
	{user: "carol", page: "/pricing", minute: 90},
	{user: "alice", page: "/home", minute: 120},
	// Sent after alice's 11:00 view: her 09:00 session closed at 10:25
	// (its end + gap + grace), so this view is dropped.
	{user: "alice", page: "/checkout", minute: 25, tooLate: true},
}

func (v demoView) value() PageView {
	return PageView{UserID: v.user, Page: v.page, TS: demoBase + v.minute*time.Minute.Milliseconds()}
}

// expected is the sessions the demo ends with.
func expected() map[string][]UserSession {
	var views []PageView
	for _, v := range demoViews {
		if !v.tooLate {
			views = append(views, v.value())
		}
	}
	return Sessionize(views, InactivityGap)
}

// sessionsOf folds the user-sessions records of out.
func sessionsOf(out []exampleapp.Record) map[string][]UserSession {
	m := map[string][]UserSession{}
	for _, r := range out {
		if r.Topic == UserSessionsTopic {
			_ = Apply(m, string(r.Key), r.Value) // a bad value never matches expected
		}
	}
	return m
}

// equal reports whether two session sets are the same.
func equal(a, b map[string][]UserSession) bool {
	if len(a) != len(b) {
		return false
	}
	for u, s := range a {
		if fmt.Sprint(s) != fmt.Sprint(b[u]) {
			return false
		}
	}
	return true
}

// clock formats an epoch-millisecond time as hh:mm UTC.
func clock(ms int64) string { return time.UnixMilli(ms).UTC().Format("15:04") }

// sortedUsers returns m's keys in order.
func sortedUsers[V any](m map[string]V) []string {
	users := make([]string, 0, len(m))
	for u := range m {
		users = append(users, u)
	}
	sort.Strings(users)
	return users
}

// example describes the sessions example.
func example() exampleapp.Example {
	want := expected()
	var views []exampleapp.Record
	for _, v := range demoViews {
		pv := v.value()
		b, err := json.Marshal(pv)
		if err != nil {
			panic(err) // a fixed, valid value
		}
		views = append(views, exampleapp.Record{Topic: PageViewsTopic, Key: []byte(v.user), Value: b, Timestamp: pv.TS})
	}
	return exampleapp.Example{
		Name:     "sessions",
		Summary:  "group page views into per-user sessions with a 30-minute inactivity gap",
		Topics:   []exampleapp.Topic{{Name: PageViewsTopic, Partitions: 3}, {Name: UserSessionsTopic, Partitions: 3}},
		Topology: Topology,
		Demo: exampleapp.Demo{
			Batches: [][]exampleapp.Record{views},
			Outputs: []string{UserSessionsTopic},
			Done:    func(out []exampleapp.Record) bool { return equal(sessionsOf(out), want) },
			Print: func(w io.Writer, out []exampleapp.Record) {
				fmt.Fprintf(w, "%s (key user id, in the order sent):\n", PageViewsTopic)
				for i, r := range views {
					note := ""
					if demoViews[i].tooLate {
						note = "  too late: dropped"
					}
					fmt.Fprintf(w, "  %-5s  %s  (%s)%s\n", r.Key, r.Value, clock(r.Timestamp), note)
				}
				perUser := map[string][]string{}
				for _, r := range out {
					if r.Topic != UserSessionsTopic {
						continue
					}
					v := "null  (merged into the next session)"
					if r.Value != nil {
						v = string(r.Value)
					}
					perUser[string(r.Key)] = append(perUser[string(r.Key)], v)
				}
				fmt.Fprintf(w, "\n%s (key user id; every update, in order per user):\n", UserSessionsTopic)
				for _, u := range sortedUsers(perUser) {
					for _, v := range perUser[u] {
						fmt.Fprintf(w, "  %-5s  %s\n", u, v)
					}
				}
				got := sessionsOf(out)
				fmt.Fprintf(w, "\nsessions (the result, UTC):\n")
				for _, u := range sortedUsers(got) {
					for _, s := range got[u] {
						views := "page views"
						if s.PageViews == 1 {
							views = "page view"
						}
						fmt.Fprintf(w, "  %-5s  %s-%s  %d %s\n", u, clock(s.SessionStart), clock(s.SessionEnd), s.PageViews, views)
					}
				}
			},
		},
	}
}

func main() { exampleapp.Main(example()) }
