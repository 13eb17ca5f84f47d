package registry_test

import (
	"context"
	"fmt"
	"log"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eddy-streams/eddy/registry"
)

// A registry Log in a compacted Kafka topic: records come back in the
// order they were appended, tombstones (nil values) included.
func ExampleNewKafkaLog() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()

	ctx := context.Background()
	l, err := registry.NewKafkaLog(ctx, cluster.ListenAddrs(), registry.DefaultTopic)
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	key := []byte(`{"keytype":"CONFIG","subject":null,"magic":0}`)
	for _, value := range []string{`{"compatibilityLevel":"FULL"}`, ""} {
		v := []byte(value)
		if value == "" {
			v = nil // a tombstone: the global config is deleted
		}
		if err := l.Append(ctx, key, v); err != nil {
			log.Fatal(err)
		}
	}
	err = l.Replay(ctx, func(key, value []byte) error {
		if value == nil {
			fmt.Printf("%s deleted\n", key)
			return nil
		}
		fmt.Printf("%s = %s\n", key, value)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"keytype":"CONFIG","subject":null,"magic":0} = {"compatibilityLevel":"FULL"}
	// {"keytype":"CONFIG","subject":null,"magic":0} deleted
}
