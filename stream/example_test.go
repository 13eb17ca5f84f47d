package stream_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// printRecords prints the records of out not read yet, one a line.
func printRecords[K, V any](out *streamtest.Output[K, V]) {
	recs, err := out.ReadRecords()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range recs {
		fmt.Println(r)
	}
}

// wordCountTopology is the word count of the examples: lines in, a count
// per word out.
func wordCountTopology() (*stream.Topology, error) {
	b := stream.NewBuilder()
	lines := stream.Stream(b, stream.With(serde.String(), serde.String()), "text-lines")
	words := stream.FlatMapValues(lines, func(_ string, line string) []string {
		return strings.Fields(strings.ToLower(line))
	})
	counts := stream.GroupBy(words, func(_, word string) string { return word }, stream.Grouped[string, string]{}).
		Count(stream.As[string, int64]("counts"))
	counts.ToStream().To("word-counts", stream.Produced[string, int64]{})
	return b.Build()
}

// Count words: Stream reads lines, FlatMapValues splits them into words,
// GroupBy re-keys each word by itself (through a repartition topic) and
// Count keeps a running count per word. The test driver runs it without a
// broker; records print as key=value@timestamp.
func ExampleKGroupedStream_Count() {
	top, err := wordCountTopology()
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
	in := streamtest.InputTopic(d, "text-lines", serde.String(), serde.String())
	out := streamtest.OutputTopic(d, "word-counts", serde.String(), serde.Int64())
	_ = in.PipeValue("hello kafka streams", 1000)
	_ = in.PipeValue("hello eddy", 2000)
	printRecords(out)
	// Output:
	// hello=1@1000
	// kafka=1@1000
	// streams=1@1000
	// hello=2@2000
	// eddy=1@2000
}

// Describe prints a topology as Kafka Streams prints its
// TopologyDescription: the word count splits into two sub-topologies at
// its repartition topic.
func ExampleTopology_Describe() {
	top, err := wordCountTopology()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(top.Describe())
	// Output:
	// Topologies:
	//    Sub-topology: 0
	//     Source: KSTREAM-SOURCE-0000000000 (topics: [text-lines])
	//       --> KSTREAM-FLATMAPVALUES-0000000001
	//     Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
	//       --> KSTREAM-KEY-SELECT-0000000002
	//       <-- KSTREAM-SOURCE-0000000000
	//     Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
	//       --> counts-repartition-filter
	//       <-- KSTREAM-FLATMAPVALUES-0000000001
	//     Processor: counts-repartition-filter (stores: [])
	//       --> counts-repartition-sink
	//       <-- KSTREAM-KEY-SELECT-0000000002
	//     Sink: counts-repartition-sink (topic: counts-repartition)
	//       <-- counts-repartition-filter
	//
	//   Sub-topology: 1
	//     Source: counts-repartition-source (topics: [counts-repartition])
	//       --> KSTREAM-AGGREGATE-0000000003
	//     Processor: KSTREAM-AGGREGATE-0000000003 (stores: [counts])
	//       --> KTABLE-TOSTREAM-0000000007
	//       <-- counts-repartition-source
	//     Processor: KTABLE-TOSTREAM-0000000007 (stores: [])
	//       --> KSTREAM-SINK-0000000008
	//       <-- KSTREAM-AGGREGATE-0000000003
	//     Sink: KSTREAM-SINK-0000000008 (topic: word-counts)
	//       <-- KTABLE-TOSTREAM-0000000007
}

// Split routes each record to the first branch whose predicate matches;
// the default branch takes the rest. Branches are named split name +
// branch name.
func ExampleKStream_Split() {
	b := stream.NewBuilder()
	orders := stream.Stream(b, stream.With(serde.String(), serde.Int64()), "orders")
	branches := orders.Split("orders-").
		Branch(func(_ string, amount int64) bool { return amount >= 1000 }, "large").
		Branch(func(_ string, amount int64) bool { return amount <= 0 }, "invalid").
		DefaultBranch("normal")
	for name, s := range branches {
		s.To(name, stream.Produced[string, int64]{})
	}
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
	in := streamtest.InputTopic(d, "orders", serde.String(), serde.Int64())
	_ = in.Pipe("o1", 250, 1)
	_ = in.Pipe("o2", 5000, 2)
	_ = in.Pipe("o3", -3, 3)
	_ = in.Pipe("o4", 1000, 4)
	for _, topic := range []string{"orders-large", "orders-invalid", "orders-normal"} {
		fmt.Println(topic + ":")
		printRecords(streamtest.OutputTopic(d, topic, serde.String(), serde.Int64()))
	}
	// Output:
	// orders-large:
	// o2=5000@2
	// o4=1000@4
	// orders-invalid:
	// o3=-3@3
	// orders-normal:
	// o1=250@1
}

// dedup is a Processor API processor: it forwards a record only the first
// time its key is seen, remembering seen keys in the store "seen", and
// every minute of wall-clock time forwards a "#seen" record with how many
// keys it has seen.
type dedup struct {
	ctx  stream.ProcessorContext[string, string]
	seen *stream.KeyValueStore[string, int64]
	n    int
}

func (p *dedup) Init(ctx stream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	var err error
	p.seen, err = stream.KeyValueStoreOf(ctx, "seen", serde.String(), serde.Int64())
	ctx.Schedule(time.Minute, stream.WallClockTime, func(now int64) {
		p.ctx.Forward(stream.Record[string, string]{Key: "#seen", Value: fmt.Sprint(p.n), Timestamp: now})
	})
	return err
}

func (p *dedup) Process(r stream.Record[string, string]) error {
	if _, ok, err := p.seen.Get(r.Key); err != nil || ok {
		return err
	}
	p.n++
	if err := p.seen.Put(r.Key, r.Timestamp); err != nil {
		return err
	}
	p.ctx.Forward(r)
	return nil
}

func (p *dedup) Close() error { return nil }

// Process runs a Processor API processor with a state store (declared
// with AddStateStore and named in Process) and a wall-clock punctuator,
// driven here by the test driver's clock.
func ExampleProcess() {
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "seen"})
	events := stream.Stream(b, stream.With(serde.String(), serde.String()), "events")
	stream.Process(events, func() stream.Processor[string, string, string, string] { return &dedup{} }, "seen").
		To("unique-events", stream.Produced[string, string]{})
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
	in := streamtest.InputTopic(d, "events", serde.String(), serde.String())
	for i, id := range []string{"a", "b", "a", "c", "b"} {
		_ = in.Pipe(id, "event "+fmt.Sprint(i), int64(i))
	}
	_ = d.AdvanceWallClockTime(time.Minute)
	printRecords(streamtest.OutputTopic(d, "unique-events", serde.String(), serde.String()))
	seen, _ := streamtest.KeyValueStore(d, "seen", serde.String(), serde.Int64())
	fmt.Println(seen)
	// Output:
	// a=event 0@0
	// b=event 1@1
	// c=event 3@3
	// #seen=3@60000
	// map[a:0 b:1 c:3]
}

// GroupTable re-groups a table by a new key; Count keeps the number of
// rows per new key, taking rows out of their old group as they move.
func ExampleGroupTable() {
	b := stream.NewBuilder()
	// users: user id → region
	users := stream.Table(b, "users", stream.With(serde.String(), serde.String()), stream.As[string, string]("users"))
	stream.GroupTable(users, func(_, region string) (string, string) { return region, region }, stream.Grouped[string, string]{}).
		Count(stream.As[string, int64]("users-per-region")).
		ToStream().To("region-counts", stream.Produced[string, int64]{})
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
	in := streamtest.InputTopic(d, "users", serde.String(), serde.String())
	_ = in.Pipe("alice", "eu", 1)
	_ = in.Pipe("bob", "eu", 2)
	_ = in.Pipe("alice", "us", 3) // alice moves: eu loses one, us gains one
	_ = in.PipeTombstone("bob", 4)
	printRecords(streamtest.OutputTopic(d, "region-counts", serde.String(), serde.Int64()))
	// Output:
	// eu=1@1
	// eu=2@2
	// eu=1@3
	// us=1@3
	// eu=0@4
}

// Cogroup folds several grouped streams, each with its own value type and
// adder, into one table.
func ExampleCogroup() {
	type account struct{ Deposits, Withdrawals int64 }
	b := stream.NewBuilder()
	deposits := stream.Stream(b, stream.With(serde.String(), serde.Int64()), "deposits").GroupByKey(stream.Grouped[string, int64]{})
	withdrawals := stream.Stream(b, stream.With(serde.String(), serde.Int64()), "withdrawals").GroupByKey(stream.Grouped[string, int64]{})
	c := stream.Cogroup(deposits, func(_ string, v int64, a account) account { a.Deposits += v; return a })
	c = stream.CogroupWith(c, withdrawals, func(_ string, v int64, a account) account { a.Withdrawals += v; return a })
	c.Aggregate(func() account { return account{} }, stream.Materialized[string, account]{Name: "accounts", Value: serde.JSON[account]()}).
		ToStream().To("balances", stream.Produced[string, account]{})
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
	_ = streamtest.InputTopic(d, "deposits", serde.String(), serde.Int64()).Pipe("acct-1", 100, 1)
	_ = streamtest.InputTopic(d, "withdrawals", serde.String(), serde.Int64()).Pipe("acct-1", 30, 2)
	_ = streamtest.InputTopic(d, "deposits", serde.String(), serde.Int64()).Pipe("acct-1", 5, 3)
	printRecords(streamtest.OutputTopic(d, "balances", serde.String(), serde.JSON[account]()))
	// Output:
	// acct-1={100 0}@1
	// acct-1={100 30}@2
	// acct-1={105 30}@3
}
