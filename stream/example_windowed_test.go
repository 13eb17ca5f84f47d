package stream_test

import (
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/window"
)

// printWindowed prints the windowed records of out not read yet, one a
// line, as key[start,end]=value@timestamp.
func printWindowed[V any](out *streamtest.Output[window.Windowed[string], V]) {
	recs, err := out.ReadRecords()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Printf("%s%v=%v@%d\n", r.Key.Key, r.Key.Window, r.Value, r.Timestamp)
	}
}

// runWindowed builds a topology whose windowed table (from the clicks per
// user read from "clicks") goes to "out", pipes the given clicks (user,
// timestamp in ms) and prints what reached "out".
func runWindowed[V any](size time.Duration, vs serde.Serde[V], agg func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], V], clicks ...any) {
	b := stream.NewBuilder()
	g := stream.Stream(b, stream.With(serde.String(), serde.String()), "clicks").
		GroupByKey(stream.Grouped[string, string]{})
	wks := window.TimeWindowedSerde(serde.String(), size)
	agg(g).ToStream().To("out", stream.Produced[window.Windowed[string], V]{Key: wks, Value: vs})
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
	in := streamtest.InputTopic(d, "clicks", serde.String(), serde.String())
	for i := 0; i < len(clicks); i += 2 {
		if err := in.Pipe(clicks[i].(string), "click", int64(clicks[i+1].(int))); err != nil {
			fmt.Println(err)
			return
		}
	}
	printWindowed(streamtest.OutputTopic(d, "out", wks, vs))
}

// Count clicks per user in tumbling one-second windows. Each click updates
// its window's count (emit on update, the default); the click at 1100 opens
// the next window; the late click at 900 still counts, since the first
// window accepts records for its 200 ms grace period after its end (until
// stream time 1200).
func ExampleCountWindowed() {
	runWindowed(time.Second, serde.Int64(), func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], int64] {
		w := window.Tumbling(time.Second).WithGrace(200 * time.Millisecond)
		return stream.CountWindowed(g.WindowedBy(w), stream.Materialized[string, int64]{Name: "clicks-per-second"})
	}, "ann", 100, "bob", 300, "ann", 1100, "ann", 900)
	// Output:
	// ann[0,1000]=1@100
	// bob[0,1000]=1@300
	// ann[1000,2000]=1@1100
	// ann[0,1000]=2@900
}

// Emit only final counts: with EmitOnWindowClose a window's count is
// forwarded once, when stream time reaches its end plus grace. The click
// at 2100 closes [0,1000) (1000 + 200 <= 2100), both users' windows in key
// order; ann's [1000,2000) stays open until 2200.
func ExampleTimeWindowedKStream_Emit() {
	runWindowed(time.Second, serde.Int64(), func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], int64] {
		w := window.Tumbling(time.Second).WithGrace(200 * time.Millisecond)
		return stream.CountWindowed(g.WindowedBy(w).Emit(stream.EmitOnWindowClose), stream.Materialized[string, int64]{})
	}, "ann", 100, "bob", 300, "ann", 900, "ann", 1500, "bob", 2100)
	// Output:
	// ann[0,1000]=2@900
	// bob[0,1000]=1@300
}

// Sliding windows follow the records: two clicks share a window when they
// are at most the time difference (500 ms) apart. Each click has a window
// ending at it; a click with a later one within 500 ms also gets a window
// starting just after it (here [101,601], holding the click at 400).
func ExampleKGroupedStream_WindowedBySliding() {
	runWindowed(500*time.Millisecond, serde.Int64(), func(g stream.KGroupedStream[string, string]) stream.KTable[window.Windowed[string], int64] {
		return stream.CountWindowed(g.WindowedBySliding(window.Sliding(500*time.Millisecond)), stream.Materialized[string, int64]{})
	}, "ann", 100, "ann", 400)
	// Output:
	// ann[0,500]=1@100
	// ann[101,601]=1@400
	// ann[0,500]=2@400
}

// AggregateWindowed folds each window's records into any type: here the
// list of pages a user viewed per hopping window of 10 s advancing by 5 s,
// so a view belongs to two windows.
func ExampleAggregateWindowed() {
	b := stream.NewBuilder()
	views := stream.Stream(b, stream.With(serde.String(), serde.String()), "views").
		GroupByKey(stream.Grouped[string, string]{})
	w := window.Hopping(10*time.Second, 5*time.Second)
	pages := stream.AggregateWindowed(views.WindowedBy(w), func() string { return "" },
		func(_ string, page, agg string) string { return agg + "/" + page },
		stream.Materialized[string, string]{Name: "pages"})
	wks := window.TimeWindowedSerde(serde.String(), 10*time.Second)
	pages.ToStream().To("pages-out", stream.Produced[window.Windowed[string], string]{Key: wks})
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
	in := streamtest.InputTopic(d, "views", serde.String(), serde.String())
	_ = in.Pipe("ann", "home", 6000)
	_ = in.Pipe("ann", "cart", 12000)
	printWindowed(streamtest.OutputTopic(d, "pages-out", wks, serde.String()))
	// Output:
	// ann[0,10000]=/home@6000
	// ann[5000,15000]=/home@6000
	// ann[5000,15000]=/home/cart@12000
	// ann[10000,20000]=/cart@12000
}
