package stream_test

import (
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/window"
)

// Join ad impressions with clicks of the same ad that happen at most ten
// seconds apart. Each match is emitted as soon as its second record
// arrives, with the later of the two timestamps.
func ExampleJoinStreams() {
	b := stream.NewBuilder()
	c := stream.With(serde.String(), serde.String())
	impressions := stream.Stream(b, c, "impressions")
	clicks := stream.Stream(b, c, "clicks")
	stream.JoinStreams(impressions, clicks,
		func(ad, impression, click string) string { return impression + "/" + click },
		window.JoinWindowsOf(10*time.Second),
		stream.StreamJoined[string, string, string]{}).
		To("clicked-impressions", stream.Produced[string, string]{})
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
	imp := streamtest.InputTopic(d, "impressions", serde.String(), serde.String())
	clk := streamtest.InputTopic(d, "clicks", serde.String(), serde.String())
	out := streamtest.OutputTopic(d, "clicked-impressions", serde.String(), serde.String())
	_ = imp.Pipe("ad-1", "shown", 1_000)
	_ = imp.Pipe("ad-2", "shown", 2_000)
	_ = clk.Pipe("ad-1", "click", 4_000)  // 3 s later: joins
	_ = clk.Pipe("ad-2", "click", 13_000) // 11 s later: too late
	printRecords(out)
	// Output:
	// ad-1=shown/click@4000
}

// A left join emits every left record: with its matches, or, once its
// window has closed (stream time past t + after + grace) without a match,
// alone (ok false). Here the window is 10 s with a 2 s grace period.
func ExampleLeftJoinStreams() {
	b := stream.NewBuilder()
	c := stream.With(serde.String(), serde.String())
	orders := stream.Stream(b, c, "orders")
	payments := stream.Stream(b, c, "payments")
	stream.LeftJoinStreams(orders, payments,
		func(id, order, payment string, ok bool) string {
			if !ok {
				return order + " unpaid"
			}
			return order + " paid by " + payment
		},
		window.JoinWindowsOf(10*time.Second).WithGrace(2*time.Second),
		stream.StreamJoined[string, string, string]{}).
		To("order-status", stream.Produced[string, string]{})
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
	ord := streamtest.InputTopic(d, "orders", serde.String(), serde.String())
	pay := streamtest.InputTopic(d, "payments", serde.String(), serde.String())
	out := streamtest.OutputTopic(d, "order-status", serde.String(), serde.String())
	_ = ord.Pipe("o1", "book", 0)
	_ = ord.Pipe("o2", "lamp", 1_000)
	_ = pay.Pipe("o1", "card", 5_000)
	fmt.Println("at 5 s:")
	printRecords(out)
	_ = pay.Pipe("o9", "cash", 13_001) // stream time passes 1 000 + 10 000 + 2 000
	fmt.Println("at 13.001 s:")
	printRecords(out)
	// Output:
	// at 5 s:
	// o1=book paid by card@5000
	// at 13.001 s:
	// o2=lamp unpaid@1000
}

// An outer join also emits the right records that found no match, with
// okLeft false, once their window has closed.
func ExampleOuterJoinStreams() {
	b := stream.NewBuilder()
	c := stream.With(serde.String(), serde.Int64())
	expected := stream.Stream(b, c, "expected")
	seen := stream.Stream(b, c, "seen")
	stream.OuterJoinStreams(expected, seen,
		func(id string, want, got int64, okWant, okGot bool) string {
			switch {
			case !okGot:
				return fmt.Sprintf("missing %d", want)
			case !okWant:
				return fmt.Sprintf("unexpected %d", got)
			}
			return fmt.Sprintf("ok %d", got)
		},
		window.JoinWindowsOf(time.Second),
		stream.StreamJoined[string, int64, int64]{}).
		To("report", stream.Produced[string, string]{})
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
	exp := streamtest.InputTopic(d, "expected", serde.String(), serde.Int64())
	got := streamtest.InputTopic(d, "seen", serde.String(), serde.Int64())
	out := streamtest.OutputTopic(d, "report", serde.String(), serde.String())
	_ = exp.Pipe("a", 1, 0)
	_ = exp.Pipe("b", 2, 0)
	_ = got.Pipe("a", 1, 500)
	_ = got.Pipe("c", 3, 600)
	_ = exp.Pipe("tick", 0, 5_000) // closes every window above
	printRecords(out)
	// Output:
	// a=ok 1@500
	// b=missing 2@0
	// c=unexpected 3@600
}
