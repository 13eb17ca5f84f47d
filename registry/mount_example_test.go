package registry_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/registry"
)

// Serving the registry from an embedded broker: its schemas live in the
// broker's _schemas topic, and it answers on the broker's HTTP listener.
func ExampleMount() {
	dir, err := os.MkdirTemp("", "eddy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := broker.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = "127.0.0.1:0"
	cfg.OffsetsTopicPartitions = 1
	cfg.TransactionTopicPartitions = 1
	srv, err := broker.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	reg, err := registry.Mount(ctx, srv, registry.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close() // before the broker: deferred calls run last-in first-out

	cl, err := sr.NewClient(sr.URLs("http://" + srv.HTTPAddr()))
	if err != nil {
		log.Fatal(err)
	}
	ss, err := cl.CreateSchema(ctx, "pageviews-value", sr.Schema{
		Schema: `{"type":"record","name":"PageView","fields":[{"name":"user","type":"string"}]}`,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ss.Subject, "version", ss.Version, "id", ss.ID)
	// Output:
	// pageviews-value version 1 id 1
}
