package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/examples/internal/exampletest"
)

func TestMain(m *testing.M) { exampletest.Main(m) }

// TestDemo runs the example without flags and checks what it prints.
func TestDemo(t *testing.T) {
	out := exampletest.RunDemo(t)

	sections := map[string][]string{}
	var cur string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case l == "":
		case !strings.HasPrefix(l, " "):
			cur, _, _ = strings.Cut(l, " ")
			sections[cur] = []string{}
		default:
			sections[cur] = append(sections[cur], strings.Join(strings.Fields(l), " "))
		}
	}
	check := func(section string, want ...string) {
		t.Helper()
		if got := sections[section]; strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %s\nwant %s", section, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
		}
	}
	s := func(user string, from, to, n int64) string {
		return fmt.Sprintf(`%s {"user_id":%q,"session_start":%d,"session_end":%d,"page_views":%d}`,
			user, user, demoBase+from*minute, demoBase+to*minute, n)
	}
	null := " null (merged into the next session)"
	check(UserSessionsTopic,
		s("alice", 0, 0, 1), "alice"+null, s("alice", 0, 10, 2), "alice"+null, s("alice", 0, 20, 3), s("alice", 120, 120, 1),
		s("bob", 5, 5, 1), s("bob", 50, 50, 1), "bob"+null, "bob"+null, s("bob", 5, 50, 3),
		s("carol", 40, 40, 1), s("carol", 90, 90, 1))
	check("sessions",
		"alice 09:00-09:20 3 page views", "alice 11:00-11:00 1 page view",
		"bob 09:05-09:50 3 page views",
		"carol 09:40-09:40 1 page view", "carol 10:30-10:30 1 page view")
	if got := sections[PageViewsTopic]; len(got) != len(demoViews) || !strings.HasSuffix(got[len(got)-1], "too late: dropped") {
		t.Errorf("%s: %q", PageViewsTopic, got)
	}
}

// view is a page-views record of user at minute m after base.
func view(base int64, user string, m int64) *kgo.Record {
	v, _ := json.Marshal(PageView{UserID: user, Page: "/", TS: base + m*minute})
	return &kgo.Record{Topic: PageViewsTopic, Key: []byte(user), Value: v}
}

// TestWorkerRestart runs the example as a worker against a broker, stops
// it, and starts a new worker with an empty state directory: it restores
// the sessions from the changelog, so a view that merges with a session
// seen before the restart gives the merged session with every view
// counted.
func TestWorkerRestart(t *testing.T) {
	bin := exampletest.Binary(t)
	addr := exampletest.Broker(t)
	for _, topic := range []string{PageViewsTopic, UserSessionsTopic} {
		exampletest.CreateTopic(t, addr, topic, 3)
	}
	args := func() []string {
		return []string{"--brokers", addr, "--app-id", "sessions-restart", "--state-dir", t.TempDir(),
			"--commit-interval", "100ms", "--log-level", "info"}
	}
	cl := exampletest.Client(t, addr)
	r := exampletest.NewReader(t, addr, UserSessionsTopic)
	sessions := func() map[string][]UserSession {
		m := map[string][]UserSession{}
		for _, rec := range r.Records() {
			if err := Apply(m, string(rec.Key), rec.Value); err != nil {
				t.Fatalf("user-sessions record %s=%s: %v", rec.Key, rec.Value, err)
			}
		}
		return m
	}
	wait := func(w *exampletest.Worker, want map[string][]UserSession) {
		t.Helper()
		r.WaitFor(t, 60*time.Second, func(*exampletest.Reader) bool {
			w.CheckRunning(t)
			return equal(sessions(), want)
		}, func() string { return fmt.Sprintf("sessions %v, have %v", want, sessions()) })
	}
	// Recent event times: the changelog's retention.ms (the store's
	// retention + 1 day) would let the broker delete older records.
	base := (time.Now().UnixMilli()/minute - 180) * minute
	at := func(user string, from, to, n int64) UserSession {
		return UserSession{UserID: user, SessionStart: base + from*minute, SessionEnd: base + to*minute, PageViews: n}
	}

	w1 := exampletest.Start(t, "worker-1", bin, args()...)
	exampletest.Produce(t, cl, view(base, "u1", 0), view(base, "u1", 10), view(base, "u2", 0), view(base, "u1", 50))
	wait(w1, map[string][]UserSession{"u1": {at("u1", 0, 10, 2), at("u1", 50, 50, 1)}, "u2": {at("u2", 0, 0, 1)}})
	w1.Stop(t, 30*time.Second)

	w2 := exampletest.Start(t, "worker-2", bin, args()...)
	// 09:30 bridges u1's two sessions; u2's session goes on.
	exampletest.Produce(t, cl, view(base, "u1", 30), view(base, "u2", 20))
	wait(w2, map[string][]UserSession{"u1": {at("u1", 0, 50, 4)}, "u2": {at("u2", 0, 20, 2)}})
	if !strings.Contains(w2.Output(), "restoring task") {
		t.Errorf("worker-2 did not restore its state from the changelog:\n%s", w2.Output())
	}
	w2.Stop(t, 30*time.Second)
}
