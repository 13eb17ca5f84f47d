// Package group is eddy's consumer-group coordinator: Kafka's classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
// ListGroups, DeleteGroups) and committed offsets (OffsetCommit, OffsetFetch,
// OffsetDelete), including the group side of transactions (TxnOffsetCommit,
// OffsetFetch's RequireStable).
//
// # State
//
// Each group runs Kafka's state machine: Empty → PreparingRebalance →
// CompletingRebalance → Stable, and Dead once deleted or expired. Session
// timeouts expire members, rebalance timeouts drop members that do not
// rejoin or sync in time, and static members (group.instance.id) can bounce
// without a rebalance.
//
// # Durability
//
// Committed offsets and group metadata are records in the partitions of the
// internal topic __consumer_offsets, encoded exactly as Kafka encodes them
// (OffsetCommitKey/Value, GroupMetadataKey/Value), so Kafka tools can read
// that topic. Deletions are tombstones. New replays every partition to
// rebuild the state; an OffsetCommit is acknowledged only after its records
// were appended.
//
// # Transactions
//
// TxnOffsetCommit writes its offsets as a transactional batch of the
// producer (its id and epoch, no sequence) and keeps them pending, per
// producer id: OffsetFetch does not return them, and with RequireStable
// answers UNSTABLE_OFFSET_COMMIT for their partitions. When the broker has
// appended the producer's commit or abort marker to the group's partition it
// calls CompleteTxnAt (or CompleteTxn): commit makes the pending offsets the
// committed ones unless a plain commit was written after them; abort drops
// them. Replay reaches the same state from the log; transactions without a
// marker stay pending. Epochs older than the newest seen for a producer id
// are fenced (INVALID_PRODUCER_EPOCH).
//
// # Use
//
// The broker opens one storage.Log per __consumer_offsets partition and
// hands them in:
//
//	c, err := group.New(group.Config{Logs: logs, Logger: logger})
//	...
//	resp, err := c.Handle(ctx, req) // ctx ends when the connection closes
//	...
//	c.Close()
//
// FindCoordinator is answered by the broker; PartitionFor tells which
// __consumer_offsets partition holds a group.
//
// # Locks
//
// Each group has its own mutex; the Coordinator's mutex guards the map of
// groups and the closed flag. Lock order: a group's mutex before the
// Coordinator's, never the other way round.
package group
