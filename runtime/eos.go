package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/table"
)

// Exactly-once (Config.Guarantee = ExactlyOnce) is Kafka Streams'
// exactly_once_v2. Each stream thread's client is a transactional producer
// (transactional.id <app-id>-<process-id>-<thread>) and a read_committed
// consumer. Between two commits everything a thread's tasks send — outputs,
// repartition and changelog records — is in one transaction; the commit adds
// the input offsets to it (AddOffsetsToTxn, then TxnOffsetCommit carrying the
// group generation and member id, KIP-447) and ends it. A zombie (a worker
// the group moved on from) is fenced: the group coordinator refuses its
// TxnOffsetCommit, and a restarted worker's InitProducerID fences the
// previous incarnation of its transactional ids.
//
// Stores are opened transactional (table.BadgerOptions.Transactional): a
// task's writes stay in memory until the transaction committed, then Flush
// writes them to badger and the checkpoint records the changelog offsets.
// After an abort or a crash the stores hold the last committed state, so a
// restart replays at most the committed changelog tail since the checkpoint
// instead of wiping the store as Kafka Streams does (KIP-892).
const (
	// eosTransactionTimeout is transaction.timeout.ms under exactly-once
	// (Kafka Streams' default): a transaction a crashed worker left open
	// is aborted by the broker after this long, which is how long read
	// committed consumers of its partitions may wait.
	eosTransactionTimeout = 10 * time.Second
	// maxUncommittedBytes bounds what a thread's transactional stores
	// hold in memory: past it the thread commits early (Kafka's
	// statestore.uncommitted.max.bytes of KIP-892).
	maxUncommittedBytes = 64 << 20
)

// testHookCommit, set by tests only, runs before a thread's transactional
// commit; an error it returns makes the commit fail (and abort).
var testHookCommit func(t *thread) error

// uncommitted is implemented by the transactional stores.
type uncommitted interface{ UncommittedBytes() int64 }

// eosClientOpts returns the options making a thread's client a
// transactional, read_committed one.
func eosClientOpts(a *App, idx int) []kgo.Opt {
	return []kgo.Opt{
		kgo.TransactionalID(transactionalID(a, idx)),
		kgo.TransactionTimeout(eosTransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}
}

// transactionalID is the thread's transactional.id. The process id is
// kept in the state directory, so a worker restarted on its state directory
// fences the transactions its previous incarnation left open.
func transactionalID(a *App, idx int) string {
	return fmt.Sprintf("%s-%s-%d", a.cfg.ApplicationID, a.processID, idx)
}

// beginTxn starts the thread's next transaction (exactly-once only). The
// broker sees it with the first record produced, so an idle thread costs
// nothing.
func (t *thread) beginTxn() error {
	if !t.eos || t.inTxn {
		return nil
	}
	if err := t.cl.BeginTransaction(); err != nil {
		if t.replacingClient {
			return fmt.Errorf("runtime: thread %d: begin transaction: %w", t.idx, err)
		}
		// The producer is in a fatal state (fenced): start over.
		t.log.Warn("cannot begin a transaction: replacing the thread's client", "err", err)
		return t.replaceClient()
	}
	t.inTxn = true
	t.txnAcked.Store(0)
	return nil
}

// commitEOS commits the thread's transaction: the tasks flush (caches to
// stores, changelogs and downstream), the producer has every record
// acknowledged, the input offsets join the transaction, and it commits.
// Only then do the stores take the transaction's writes and the
// checkpoints move. When the commit fails the transaction is aborted and
// the tasks rewind to the last commit (see abortAndRewind): commitEOS then
// returns nil and the thread goes on, unless even the abort failed.
func (t *thread) commitEOS() error {
	start := time.Now()
	t.lastCommit = start
	if err := t.beginTxn(); err != nil {
		return err
	}
	running, err := t.flushTasks()
	if err != nil || len(running) == 0 && len(t.standby) == 0 {
		return err
	}
	if err := t.flushProducer(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout+2*time.Minute)
	defer cancel()
	offsets := t.offsetsToCommit(running)
	if err := t.commitTxn(ctx, offsets); err != nil {
		return t.abortAndRewind(err)
	}
	t.inTxn = false
	for tp, eo := range flatOffsets(offsets) {
		t.committed[tp] = eo
	}
	t.app.metrics.txnCommits.WithLabelValues(t.label).Inc()
	// Committed: the stores take the transaction's writes, then the
	// checkpoints say how far the changelogs are applied.
	if err := t.checkpointCommitted(running, true); err != nil {
		return err
	}
	t.mCommit.Observe(time.Since(start).Seconds())
	return t.beginTxn()
}

// commitTxn adds offsets to the open transaction and commits it.
func (t *thread) commitTxn(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	if hook := testHookCommit; hook != nil {
		if err := hook(t); err != nil {
			return err
		}
	}
	if len(offsets) > 0 {
		commit := t.txnCommitOffsets
		if t.txnAcked.Load() == 0 {
			// Nothing was written in this transaction: the offsets commit
			// on their own (still fenced by the group generation), and
			// the empty transaction ends without a request.
			commit = func(_ context.Context, o map[string]map[int32]kgo.EpochOffset) error { return t.commitOffsetsPlain(o) }
		}
		if err := commit(ctx, offsets); err != nil {
			return err
		}
	}
	return t.cl.EndTransaction(ctx, kgo.TryCommit)
}

// flatOffsets flattens a commit's offsets.
func flatOffsets(offsets map[string]map[int32]kgo.EpochOffset) map[table.TopicPartition]int64 {
	out := map[table.TopicPartition]int64{}
	for topic, ps := range offsets {
		for p, eo := range ps {
			out[table.TopicPartition{Topic: topic, Partition: p}] = eo.Offset
		}
	}
	return out
}

// txnCommitOffsets adds the consumer group to the open transaction and
// commits offsets in it, with the member's generation so the group
// coordinator fences a zombie (KIP-447).
func (t *thread) txnCommitOffsets(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	id, epoch, err := t.cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("producer id: %w", err)
	}
	group := t.app.cfg.ApplicationID
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID = t.txnID
	add.ProducerID, add.ProducerEpoch = id, epoch
	add.Group = group
	err = retryTxn(ctx, func() error {
		resp, err := add.RequestWith(ctx, t.cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	})
	if err != nil {
		return fmt.Errorf("add offsets to transaction: %w", err)
	}
	ids, err := t.topicIDsOf(ctx, offsets)
	if err != nil {
		return err
	}
	member, gen := t.cl.GroupMetadata()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID = t.txnID
	req.Group = group
	req.ProducerID, req.ProducerEpoch = id, epoch
	req.Generation, req.MemberID = gen, member
	for topic, ps := range offsets {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = topic, ids[topic] // v6+ (KIP-1319) names topics by id
		for p, eo := range ps {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, eo.Offset, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	err = retryTxn(ctx, func() error {
		resp, err := req.RequestWith(ctx, t.cl)
		if err != nil {
			return err
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return fmt.Errorf("%s-%d: %w", rt.Topic, rp.Partition, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit offsets in transaction (generation %d): %w", gen, err)
	}
	return nil
}

// topicIDsOf returns the topic ids of the topics in offsets, looked up
// once per topic.
func (t *thread) topicIDsOf(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) (map[string][16]byte, error) {
	var missing []string
	for topic := range offsets {
		if _, ok := t.topicIDs[topic]; !ok {
			missing = append(missing, topic)
		}
	}
	if len(missing) > 0 {
		td, err := t.app.adm.ListTopics(ctx, missing...)
		if err != nil {
			return nil, fmt.Errorf("topic ids: %w", err)
		}
		for _, topic := range missing {
			d, ok := td[topic]
			if !ok || d.Err != nil {
				return nil, fmt.Errorf("topic id of %s: %v", topic, d.Err)
			}
			t.topicIDs[topic] = d.ID
		}
	}
	return t.topicIDs, nil
}

// retryTxn retries fn while the transaction or group coordinator answers
// with a retriable error (CONCURRENT_TRANSACTIONS right after the previous
// commit, UNSTABLE_OFFSET_COMMIT while another transaction's offsets are
// pending, a coordinator moving or loading), up to ctx's deadline.
func retryTxn(ctx context.Context, fn func() error) error {
	backoff := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if !errors.Is(err, kerr.ConcurrentTransactions) && !errors.Is(err, kerr.UnstableOffsetCommit) &&
			!errors.Is(err, kerr.CoordinatorLoadInProgress) &&
			!errors.Is(err, kerr.CoordinatorNotAvailable) && !errors.Is(err, kerr.NotCoordinator) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// abortAndRewind aborts the open transaction after cause made its commit
// impossible (the group moved on, the thread was fenced, a request failed)
// and rewinds the active tasks to the last commit: they close without
// flushing (their stores drop the uncommitted writes), reopen from their
// stores and checkpoints, and the consumer goes back to the committed
// offsets. It returns an error only when the abort itself failed.
func (t *thread) abortAndRewind(cause error) error {
	t.log.Warn("aborting the transaction and rewinding to the last commit", "err", cause)
	t.app.metrics.txnAborts.WithLabelValues(t.label).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if t.inTxn {
		if err := t.abortTxn(ctx); err != nil {
			// The producer is fenced (the transaction timed out while
			// the thread was stalled, or a newer incarnation took its
			// transactional id) or the broker is unreachable: what the
			// transaction wrote is aborted by the broker, and the thread
			// starts over with a new client, as Kafka Streams replaces a
			// fenced thread producer.
			t.log.Warn("the transaction cannot be aborted: replacing the thread's client", "err", err)
			return t.replaceClient()
		}
	}
	if err := t.rewind(ctx); err != nil {
		// Without the committed offsets the consumer would go on past
		// the aborted records: start over as a new member instead,
		// which reads its positions from the committed offsets.
		t.log.Warn("cannot rewind the consumer: replacing the thread's client", "err", err)
		return t.replaceClient()
	}
	return t.beginTxn()
}

// abortLost aborts the open transaction after the thread's partitions were
// lost (the tasks are already closed); if that fails the client is
// replaced.
func (t *thread) abortLost() error {
	if !t.eos || !t.inTxn {
		return nil
	}
	t.app.metrics.txnAborts.WithLabelValues(t.label).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := t.abortTxn(ctx); err != nil {
		t.log.Warn("aborting the transaction of lost tasks failed: replacing the thread's client", "err", err)
		return t.replaceClient()
	}
	t.ackMu.Lock()
	clear(t.acked)
	t.ackMu.Unlock()
	return t.beginTxn()
}

// abortOnFailure aborts the open transaction of a thread that failed, so
// read_committed consumers need not wait for the transaction timeout.
// Errors are logged: the broker aborts it at the timeout anyway.
func (t *thread) abortOnFailure() {
	if !t.eos || !t.inTxn || t.sendCh == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.abortTxn(ctx); err != nil {
		t.log.Warn("aborting the transaction of a failed thread", "err", err)
	}
}

// abortTxn aborts the open transaction: records still buffered fail,
// and the records that failed are not production errors.
func (t *thread) abortTxn(ctx context.Context) error {
	t.flushSends()
	err := t.cl.AbortBufferedRecords(ctx)
	if err == nil {
		err = t.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	t.ackMu.Lock()
	t.prodErrs = nil
	t.ackMu.Unlock()
	if err == nil {
		t.inTxn = false
	}
	return err
}

// replaceClient closes the thread's client (leaving the group) and its
// active tasks without committing, and starts over with a new client,
// which joins the group again.
func (t *thread) replaceClient() error {
	t.replaceMu.Lock()
	close(t.replaced)
	t.replaceMu.Unlock()
	close(t.sendCh)
	<-t.sendDone
	t.sendCh = nil
	t.cl.Close()
	t.replaceMu.Lock()
	t.replaced = make(chan struct{})
	t.replaceMu.Unlock()
	// Group events of the old client are void.
	for len(t.reqs) > 0 {
		close((<-t.reqs).done)
	}
	for id, ts := range t.active {
		if err := t.closeTask(ts, false); err != nil {
			t.log.Warn("closing a task of a replaced client", "task", id.String(), "err", err)
		}
		delete(t.active, id)
	}
	t.order = nil
	t.ackMu.Lock()
	clear(t.acked)
	t.prodErrs = nil
	t.ackMu.Unlock()
	t.resetConsumerState()
	t.syncOwned()
	t.assigned, t.ready, t.inTxn = false, false, false
	cl, err := kgo.NewClient(t.clOpts...)
	if err != nil {
		return fmt.Errorf("runtime: thread %d: new client: %w", t.idx, err)
	}
	t.cl = cl
	t.startProducer()
	t.app.metrics.clientReplacements.WithLabelValues(t.label).Inc()
	t.replacingClient = true
	defer func() { t.replacingClient = false }()
	return t.beginTxn()
}

// rewind closes the active tasks without committing and recreates them,
// to be reopened from their stores, and sets the consumer back to the
// group's committed offsets of their partitions. An error means the
// offsets could not be read and the consumer was not set back.
func (t *thread) rewind(ctx context.Context) error {
	parts := map[string][]int32{}
	for id, ts := range t.active {
		for topic, p := range ts.inputs {
			parts[topic] = append(parts[topic], p)
		}
		if err := t.closeTask(ts, false); err != nil {
			t.log.Warn("closing a task to rewind it", "task", id.String(), "err", err)
		}
		t.active[id] = newTaskState(t.app, id, false)
	}
	t.ackMu.Lock()
	clear(t.acked)
	t.ackMu.Unlock()
	t.resetConsumerState()
	t.syncOwned()
	t.ready = false
	if len(parts) == 0 {
		return nil
	}
	offsets, err := t.fetchCommitted(ctx, parts)
	if err != nil {
		return fmt.Errorf("fetch committed offsets: %w", err)
	}
	t.log.Info("rewound the consumer to the committed offsets", "offsets", offsets)
	t.cl.SetOffsets(offsets)
	return nil
}

// fetchCommitted returns the group's committed offsets of parts, waiting
// while another transaction's offsets for them are pending
// (RequireStable); partitions without a committed offset get their log
// start (the consumer's reset policy).
func (t *thread) fetchCommitted(ctx context.Context, parts map[string][]int32) (map[string]map[int32]kgo.EpochOffset, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = t.app.cfg.ApplicationID
	req.RequireStable = true
	for topic, ps := range parts {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, ps
		req.Topics = append(req.Topics, rt)
	}
	var out map[string]map[int32]kgo.EpochOffset
	var none []string
	err := retryTxn(ctx, func() error {
		resp, err := req.RequestWith(ctx, t.cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return err
		}
		out, none = map[string]map[int32]kgo.EpochOffset{}, nil
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return fmt.Errorf("%s-%d: %w", rt.Topic, rp.Partition, err)
				}
				if out[rt.Topic] == nil {
					out[rt.Topic] = map[int32]kgo.EpochOffset{}
				}
				out[rt.Topic][rp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: rp.Offset}
				if rp.Offset < 0 && !slices.Contains(none, rt.Topic) {
					none = append(none, rt.Topic)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(none) > 0 {
		starts, err := t.app.adm.ListStartOffsets(ctx, none...)
		if err != nil {
			return nil, err
		}
		for topic, ps := range out {
			for p, eo := range ps {
				if eo.Offset >= 0 {
					continue
				}
				o, ok := starts.Lookup(topic, p)
				if !ok || o.Err != nil {
					return nil, fmt.Errorf("log start of %s-%d: %v", topic, p, o.Err)
				}
				ps[p] = kgo.EpochOffset{Epoch: -1, Offset: o.Offset}
			}
		}
	}
	return out, nil
}

// uncommittedBytes is what the running tasks' transactional stores hold
// in memory.
func (t *thread) uncommittedBytes() int64 {
	var n int64
	for _, id := range t.order {
		ts := t.active[id]
		if ts.phase != phaseRunning {
			continue
		}
		for _, st := range ts.stores {
			if u, ok := st.(uncommitted); ok {
				n += u.UncommittedBytes()
			}
		}
	}
	return n
}

// isControl reports whether a fetched record is a transaction marker; the
// restore and global consumers keep them (kgo.KeepControlRecords) so their
// positions move past the markers, and skip them.
func isControl(r *kgo.Record) bool { return r.Attrs.IsControl() }
