package group_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/group"
	"github.com/eddy-streams/eddy/broker/storage"
)

// A standalone consumer commits an offset and reads it back; the broker
// normally builds the Coordinator over the __consumer_offsets logs.
func Example() {
	dir, _ := os.MkdirTemp("", "groups")
	defer os.RemoveAll(dir)
	cfg := storage.DefaultConfig()
	cfg.CleanupPolicy = "compact"
	var logs []*storage.Log
	for p := range 3 {
		l, err := storage.Open(filepath.Join(dir, fmt.Sprint("__consumer_offsets-", p)), cfg, storage.Options{})
		if err != nil {
			panic(err)
		}
		defer l.Close()
		logs = append(logs, l)
	}
	c, err := group.New(group.Config{Logs: logs})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 8
	commit.Group = "reports" // generation -1: no group membership
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{
		Topic:      "orders",
		Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 42, LeaderEpoch: -1}},
	}}
	if _, err := c.Handle(context.Background(), commit); err != nil {
		panic(err)
	}

	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Version = 8
	fetch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "reports"}} // nil topics: all
	resp, err := c.Handle(context.Background(), fetch)
	if err != nil {
		panic(err)
	}
	for _, t := range resp.(*kmsg.OffsetFetchResponse).Groups[0].Topics {
		for _, p := range t.Partitions {
			fmt.Printf("%s[%d] committed at %d\n", t.Topic, p.Partition, p.Offset)
		}
	}
	fmt.Println("stored in partition", c.PartitionFor("reports"))
	// Output:
	// orders[0] committed at 42
	// stored in partition 0
}
