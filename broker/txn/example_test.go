package txn_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/broker/txn"
)

// printMarkers is a MarkerWriter that prints instead of appending a
// control batch (txn.ControlBatch) to the partition's log.
type printMarkers struct{}

func (printMarkers) WriteMarker(_ context.Context, topic string, partition int32, pid int64, epoch int16, commit bool, _ int32) error {
	fmt.Printf("marker %s-%d producer %d epoch %d commit=%v\n", topic, partition, pid, epoch, commit)
	return nil
}

// A transactional producer's life: InitProducerId, AddPartitionsToTxn,
// EndTxn(commit), which writes a marker to every partition.
func Example() {
	dir, _ := os.MkdirTemp("", "txn-example")
	defer os.RemoveAll(dir)
	state, _ := storage.Open(filepath.Join(dir, "__transaction_state-0"), storage.DefaultConfig(), storage.Options{})
	defer state.Close()

	nextPID := int64(0)
	c, err := txn.New(txn.Config{
		Logs:                []*storage.Log{state},
		Markers:             printMarkers{},
		OffsetsPartitionFor: func(group string) int32 { return 0 },
		AllocateProducerID:  func() (int64, error) { nextPID++; return nextPID, nil },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx := context.Background()

	id := "my-app"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version, init.TransactionalID, init.TransactionTimeoutMillis = 4, &id, 60_000
	r, _ := c.Handle(ctx, init)
	ir := r.(*kmsg.InitProducerIDResponse)
	fmt.Println("producer", ir.ProducerID, "epoch", ir.ProducerEpoch)

	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version, add.TransactionalID, add.ProducerID, add.ProducerEpoch = 3, id, ir.ProducerID, ir.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "orders", Partitions: []int32{0, 1}}}
	c.Handle(ctx, add)

	end := kmsg.NewPtrEndTxnRequest()
	end.Version, end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = 3, id, ir.ProducerID, ir.ProducerEpoch, true
	r, _ = c.Handle(ctx, end)
	fmt.Println("EndTxn error code", r.(*kmsg.EndTxnResponse).ErrorCode)
	// Output:
	// producer 1 epoch 0
	// marker orders-0 producer 1 epoch 0 commit=true
	// marker orders-1 producer 1 epoch 0 commit=true
	// EndTxn error code 0
}
