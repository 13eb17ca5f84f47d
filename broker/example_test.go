package broker_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/broker"
)

// ExampleServer starts a broker on a random port, produces a record with a
// Kafka client and reads it back.
func ExampleServer() {
	dir, err := os.MkdirTemp("", "eddy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg := broker.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = "" // no /metrics listener
	srv, err := broker.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	client, err := kgo.NewClient(
		kgo.SeedBrokers(srv.Addr()),
		kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("greetings"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx := context.Background()
	rec := &kgo.Record{Topic: "greetings", Key: []byte("k"), Value: []byte("hello, eddy")}
	if err := client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		log.Fatal(err)
	}
	fetches := client.PollFetches(ctx)
	for _, r := range fetches.Records() {
		fmt.Printf("%s/%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
	}
	// Output:
	// greetings/0@0 k=hello, eddy
}
