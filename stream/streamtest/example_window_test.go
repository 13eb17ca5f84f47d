package streamtest_test

import (
	"fmt"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// minuteCounter counts each user's clicks per minute in the window store
// "clicks-per-minute", and keeps each user's visits (clicks at most 30 s
// apart) in the session store "visits", as a Processor API topology.
type minuteCounter struct {
	minutes, visits *stream.StoreHandle
}

func (p *minuteCounter) Init(ctx stream.ProcessorContext[string, string]) (err error) {
	if p.minutes, err = ctx.Store("clicks-per-minute"); err != nil {
		return err
	}
	p.visits, err = ctx.Store("visits")
	return err
}

func (p *minuteCounter) Process(r stream.Record[string, string]) error {
	key := []byte(r.Key)
	// The minute window.
	start := r.Timestamp - r.Timestamp%60_000
	var n int64
	if v, _, ok, err := p.minutes.FetchWindow(key, start); err != nil {
		return err
	} else if ok {
		n, _ = serde.Int64().Deserialize("", v)
	}
	nb, _ := serde.Int64().Serialize("", n+1)
	if err := p.minutes.PutWindow(key, start, nb, r.Timestamp); err != nil {
		return err
	}
	// The visit: merge every session within 30 s of the click.
	vStart, vEnd, clicks := r.Timestamp, r.Timestamp, int64(1)
	for s, err := range p.visits.FindSessions(key, r.Timestamp-30_000, r.Timestamp+30_000) {
		if err != nil {
			return err
		}
		c, _ := serde.Int64().Deserialize("", s.Value)
		clicks += c
		vStart, vEnd = min(vStart, s.Start), max(vEnd, s.End)
		if err := p.visits.PutSession(key, s.Start, s.End, nil, r.Timestamp); err != nil {
			return err
		}
	}
	cb, _ := serde.Int64().Serialize("", clicks)
	return p.visits.PutSession(key, vStart, vEnd, cb, r.Timestamp)
}

func (p *minuteCounter) Close() error { return nil }

// Window and session stores are read back typed, sorted by key and
// time: WindowStore for window stores, SessionStore for session stores.
func ExampleWindowStore() {
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "clicks-per-minute", Kind: stream.WindowKind, Retention: time.Hour})
	b.AddStateStore(stream.StoreSpec{Name: "visits", Kind: stream.SessionKind, Retention: time.Hour})
	clicks := stream.Stream(b, stream.With(serde.String(), serde.String()), "clicks")
	stream.Process(clicks, func() stream.Processor[string, string, string, string] { return &minuteCounter{} },
		"clicks-per-minute", "visits")
	top, err := b.Build()
	if err != nil {
		panic(err)
	}
	d, err := streamtest.New(top)
	if err != nil {
		panic(err)
	}
	defer d.Close()

	in := streamtest.InputTopic(d, "clicks", serde.String(), serde.String())
	for _, c := range []struct {
		user string
		ts   int64
	}{{"bob", 10_000}, {"alice", 20_000}, {"bob", 50_000}, {"bob", 70_000}, {"alice", 200_000}} {
		if err := in.Pipe(c.user, "/home", c.ts); err != nil {
			panic(err)
		}
	}

	minutes, err := streamtest.WindowStore(d, "clicks-per-minute", serde.String(), serde.Int64())
	if err != nil {
		panic(err)
	}
	for _, w := range minutes {
		fmt.Println(w)
	}
	visits, err := streamtest.SessionStore(d, "visits", serde.String(), serde.Int64())
	if err != nil {
		panic(err)
	}
	for _, s := range visits {
		fmt.Println(s)
	}
	// Output:
	// alice@0=1@20000
	// alice@180000=1@200000
	// bob@0=2@50000
	// bob@60000=1@70000
	// alice@[20000,20000]=1@20000
	// alice@[200000,200000]=1@200000
	// bob@[10000,10000]=1@10000
	// bob@[50000,70000]=2@70000
}
