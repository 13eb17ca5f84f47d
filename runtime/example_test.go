package runtime_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/runtime"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
)

// A word-count worker on an embedded broker: run it, wait until it has
// its tasks, feed it, and query its store.
func Example() {
	dir, _ := os.MkdirTemp("", "eddy-example")
	defer os.RemoveAll(dir)
	bcfg := broker.DefaultConfig()
	bcfg.DataDir, bcfg.Listen, bcfg.HTTP = dir+"/broker", "127.0.0.1:0", ""
	bcfg.OffsetsTopicPartitions, bcfg.TransactionTopicPartitions = 1, 1
	srv, _ := broker.New(bcfg)
	if err := srv.Start(); err != nil {
		panic(err)
	}
	defer srv.Close()

	// The application's input and output topics exist beforehand.
	cl, _ := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 2, 1, nil, "text-lines", "word-counts"); err != nil {
		panic(err)
	}

	b := stream.NewBuilder()
	lines := stream.Stream(b, stream.With(serde.String(), serde.String()), "text-lines")
	words := stream.FlatMapValues(lines, func(_, line string) []string { return strings.Fields(line) })
	stream.GroupBy(words, func(_, w string) string { return w }, stream.Grouped[string, string]{Key: serde.String()}).
		Count(stream.As[string, int64]("counts")).
		ToStream().To("word-counts", stream.Produced[string, int64]{})
	top, err := b.Build()
	if err != nil {
		panic(err)
	}

	cfg := runtime.DefaultConfig("wordcount", srv.Addr())
	cfg.StateDir = dir + "/state"
	cfg.CommitInterval = 100 * time.Millisecond
	app, err := runtime.New(top, cfg)
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	if err := app.WaitRunning(ctx); err != nil {
		panic(err)
	}

	for _, l := range []string{"hello eddy", "hello kafka streams", "hello go"} {
		cl.ProduceSync(ctx, &kgo.Record{Topic: "text-lines", Value: []byte(l)})
	}
	// Counts become queryable once committed.
	for {
		n, ok, err := runtime.Query(app, "counts", "hello", serde.String(), serde.Int64())
		if err != nil {
			panic(err)
		}
		if ok && n == 3 {
			fmt.Println("hello:", n)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	stop() // graceful: commit, close stores, leave the group
	fmt.Println("run:", <-done)
	// Output:
	// hello: 3
	// run: <nil>
}

// KeyPartition is Kafka's default partitioner for keyed records.
func ExampleKeyPartition() {
	fmt.Println(runtime.KeyPartition([]byte("foobar"), 6))
	// Output: 0
}
