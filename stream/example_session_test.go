package stream_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/window"
)

// minutes formats epoch milliseconds as minutes.
func minutes(ms int64) string { return fmt.Sprintf("%dm", ms/60_000) }

// Sessionization: page views per user, in sessions that end after 30
// minutes without a view, accepting views up to 5 minutes late. Every
// change is forwarded: a view that bridges two sessions removes both (a
// tombstone each) and adds the merged one.
func ExampleCountSessions() {
	b := stream.NewBuilder()
	views := stream.Stream(b, stream.With(serde.String(), serde.String()), "page-views")
	perUser := views.GroupByKey(stream.Grouped[string, string]{}).
		WindowedBySession(window.Session(30 * time.Minute).WithGrace(5 * time.Minute))
	stream.CountSessions(perUser, stream.Materialized[string, int64]{Name: "sessions"}).
		ToStream().To("user-sessions", stream.Produced[window.Windowed[string], int64]{})
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

	in := streamtest.InputTopic(d, "page-views", serde.String(), serde.String())
	const minute = 60_000
	for _, v := range []struct {
		user, page string
		at         int64
	}{
		{"alice", "/home", 0},
		{"alice", "/cart", 10 * minute},
		{"bob", "/home", 12 * minute},
		{"alice", "/home", 45 * minute},     // 35 minutes later: a new session
		{"alice", "/checkout", 30 * minute}, // late, within 30 minutes of both
	} {
		if err := in.Pipe(v.user, v.page, v.at); err != nil {
			fmt.Println(err)
			return
		}
	}
	out := streamtest.OutputTopic(d, "user-sessions", window.SessionWindowedSerde(serde.String()), serde.Int64())
	recs, err := out.ReadRecords()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		w := r.Key.Window
		if r.ValueNull {
			fmt.Printf("%s [%s,%s] removed\n", r.Key.Key, minutes(w.Start), minutes(w.End))
			continue
		}
		fmt.Printf("%s [%s,%s] %d views\n", r.Key.Key, minutes(w.Start), minutes(w.End), r.Value)
	}
	// Output:
	// alice [0m,0m] 1 views
	// alice [0m,0m] removed
	// alice [0m,10m] 2 views
	// bob [12m,12m] 1 views
	// alice [45m,45m] 1 views
	// alice [0m,10m] removed
	// alice [45m,45m] removed
	// alice [0m,45m] 4 views
}

// The pages of each finished session, forwarded once when the session
// closes: 30 minutes (the gap) plus 5 minutes of grace after its last view,
// in stream time. A session's aggregate starts from init; when a view
// merges sessions, the merger combines their aggregates first.
func ExampleAggregateSessions() {
	b := stream.NewBuilder()
	views := stream.Stream(b, stream.With(serde.String(), serde.String()), "page-views")
	perUser := views.GroupByKey(stream.Grouped[string, string]{}).
		WindowedBySession(window.Session(30 * time.Minute).WithGrace(5 * time.Minute)).
		Emit(stream.EmitOnWindowClose)
	stream.AggregateSessions(perUser,
		func() string { return "" },
		func(_ string, page, pages string) string { return strings.TrimPrefix(pages+" "+page, " ") },
		func(_ string, a, b string) string { return strings.TrimSpace(a + " " + b) },
		stream.Materialized[string, string]{Value: serde.String()}).
		ToStream().To("finished-sessions", stream.Produced[window.Windowed[string], string]{})
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

	in := streamtest.InputTopic(d, "page-views", serde.String(), serde.String())
	out := streamtest.OutputTopic(d, "finished-sessions", window.SessionWindowedSerde(serde.String()), serde.String())
	const minute = 60_000
	for _, v := range []struct {
		user, page string
		at         int64
	}{
		{"alice", "/home", 0},
		{"alice", "/cart", 10 * minute},
		{"bob", "/home", 20 * minute},
		{"alice", "/checkout", 5 * minute}, // out of order, same session
		{"bob", "/faq", 45 * minute},       // alice's session [0m,10m] is still open
		{"carol", "/home", 46 * minute},    // stream time 46m > 10m + 35m: it closes
		{"carol", "/home", 90 * minute},    // bob's [20m,45m] and carol's [46m,46m] close
	} {
		if err := in.Pipe(v.user, v.page, v.at); err != nil {
			fmt.Println(err)
			return
		}
		recs, err := out.ReadRecords()
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, r := range recs {
			w := r.Key.Window
			fmt.Printf("at %s: %s [%s,%s] %s\n", minutes(v.at), r.Key.Key, minutes(w.Start), minutes(w.End), r.Value)
		}
	}
	// Output:
	// at 46m: alice [0m,10m] /home /cart /checkout
	// at 90m: bob [20m,45m] /home /faq
	// at 90m: carol [46m,46m] /home
}
