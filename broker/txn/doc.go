// Package txn is eddy's transaction coordinator: InitProducerId (with a
// transactional id), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
// DescribeTransactions and ListTransactions, with Kafka's semantics.
//
// # Durability
//
// Every transactional id's state (producer id and epoch, timeout, state,
// partitions, timestamps) is a record of the internal compacted topic
// __transaction_state, in Kafka's own format (kmsg.TxnMetadataKey /
// kmsg.TxnMetadataValue), on the partition PartitionFor chooses. A change
// is appended before the request that caused it is answered; an expired id
// is a tombstone. New replays every partition.
//
// # Ending a transaction
//
//  1. EndTxn persists PrepareCommit or PrepareAbort: the outcome is decided
//     and survives a crash.
//  2. The MarkerWriter writes a commit or abort control batch to every
//     partition of the transaction, including the __consumer_offsets
//     partition AddOffsetsToTxn added.
//  3. CompleteCommit or CompleteAbort is persisted, and EndTxn answered.
//
// A crash between 1 and 3 leaves a Prepare state in the log; New finds it
// and runs 2 and 3 again, which is why MarkerWriter must be idempotent.
// A background goroutine aborts transactions that outlive their timeout
// (bumping the producer epoch first, so the old producer is fenced),
// retries marker writes that failed, and expires idle ids.
//
// # Use
//
// The broker opens one storage.Log per __transaction_state partition
// (cleanup.policy=compact), implements MarkerWriter with ControlBatch and
// storage.Log.AppendControl, and routes the six APIs to Handle:
//
//	c, err := txn.New(txn.Config{
//		Logs:                logs,
//		Markers:             markers,
//		PartitionExists:     topics.exists,
//		OffsetsPartitionFor: groups.PartitionFor,
//		AllocateProducerID:  pids.allocate,
//		Logger:              logger,
//	})
//	ctx = c.Arrived(ctx) // when the request is read off the connection
//	resp, err := c.Handle(ctx, req)
//
// docs/transactions.md describes the state machine and recovery.
package txn
