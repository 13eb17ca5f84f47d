package stream_test

import (
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// perMinute is a Processor API processor keeping, in the window store
// "per-minute", how many records each key had in each minute, and
// forwarding the count so far of the record's minute and of the two last
// minutes.
type perMinute struct {
	ctx    stream.ProcessorContext[string, string]
	counts *stream.WindowStore[string, int64]
}

func (p *perMinute) Init(ctx stream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	var err error
	p.counts, err = stream.WindowStoreOf(ctx, "per-minute", serde.String(), serde.Int64())
	return err
}

func (p *perMinute) Process(r stream.Record[string, string]) error {
	start := r.Timestamp - r.Timestamp%time.Minute.Milliseconds()
	n, _, err := p.counts.Fetch(r.Key, start)
	if err != nil {
		return err
	}
	if err := p.counts.Put(r.Key, start, n+1); err != nil {
		return err
	}
	var last2 int64
	for w, err := range p.counts.FetchRange(r.Key, start-time.Minute.Milliseconds(), start) {
		if err != nil {
			return err
		}
		last2 += w.Value
	}
	p.ctx.Forward(stream.Record[string, string]{Key: r.Key, Value: fmt.Sprintf("%d this minute, %d in two", n+1, last2), Timestamp: r.Timestamp})
	return nil
}

func (p *perMinute) Close() error { return nil }

// WindowStoreOf gives a Processor API processor typed access to a window
// store declared with AddStateStore.
func ExampleWindowStoreOf() {
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "per-minute", Kind: stream.WindowKind, Retention: time.Hour})
	clicks := stream.Stream(b, stream.With(serde.String(), serde.String()), "clicks")
	stream.Process(clicks, func() stream.Processor[string, string, string, string] { return &perMinute{} }, "per-minute").
		To("clicks-this-minute", stream.Produced[string, string]{})
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
	for _, ts := range []int64{1_000, 30_000, 61_000, 119_999, 120_000} {
		_ = in.Pipe("alice", "click", ts)
	}
	recs, _ := streamtest.OutputTopic(d, "clicks-this-minute", serde.String(), serde.String()).ReadRecords()
	for _, r := range recs {
		fmt.Printf("%s@%d: %s\n", r.Key, r.Timestamp, r.Value)
	}
	windows, _ := streamtest.WindowStore(d, "per-minute", serde.String(), serde.Int64())
	for _, w := range windows {
		fmt.Println(w)
	}
	// Output:
	// alice@1000: 1 this minute, 1 in two
	// alice@30000: 2 this minute, 2 in two
	// alice@61000: 1 this minute, 3 in two
	// alice@119999: 2 this minute, 4 in two
	// alice@120000: 1 this minute, 3 in two
	// alice@0=2@30000
	// alice@60000=2@119999
	// alice@120000=1@120000
}
