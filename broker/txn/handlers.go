package txn

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// epochExhausted reports whether an epoch is too high to bump for a new
// producer session (Kafka: epoch >= Short.MaxValue - 1); the next
// InitProducerId then hands out a new producer id.
func epochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// fenced is PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for request versions
// older than the one that introduced PRODUCER_FENCED (KIP-588).
func fenced(version, since int16) int16 {
	if version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return kerr.ProducerFenced.Code
}

// initProducerID answers InitProducerId.
func (c *Coordinator) initProducerID(req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	fail := func(code int16) kmsg.Response {
		if code == kerr.ProducerFenced.Code {
			code = fenced(req.Version, 4)
		}
		resp.ErrorCode = code
		return resp
	}
	if req.TransactionalID == nil {
		// An idempotent producer: always a fresh producer id, as Kafka.
		pid, err := c.cfg.AllocateProducerID()
		if err != nil {
			c.log.Error("allocating a producer id failed", "err", err)
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		resp.ProducerID, resp.ProducerEpoch = pid, 0
		return resp
	}
	id := *req.TransactionalID
	if id == "" {
		return fail(kerr.InvalidRequest.Code)
	}
	if req.TransactionTimeoutMillis <= 0 || time.Duration(req.TransactionTimeoutMillis)*time.Millisecond > c.cfg.MaxTransactionTimeout {
		return fail(kerr.InvalidTransactionTimeout.Code)
	}
	expectPID, expectEpoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		expectPID, expectEpoch = req.ProducerID, req.ProducerEpoch
	}
	if (expectPID == -1) != (expectEpoch == -1) || expectPID < -1 || expectEpoch < -1 {
		return fail(kerr.InvalidRequest.Code)
	}
	expected := expectPID >= 0

	m := c.lockTxn(id, true)
	if m.completing || m.state == kmsg.TransactionStatePrepareCommit || m.state == kmsg.TransactionStatePrepareAbort {
		m.mu.Unlock()
		return fail(kerr.ConcurrentTransactions.Code)
	}
	// KIP-360: a producer that names its id and epoch must be the current
	// one (or retrying after an epoch-exhaustion rotation).
	if expected && !(m.epoch == -1 || expectPID == m.pid || (expectPID == m.lastPID && epochExhausted(expectEpoch))) {
		m.mu.Unlock()
		return fail(kerr.ProducerFenced.Code)
	}
	now := c.now().UnixMilli()
	switch m.state {
	case kmsg.TransactionStateOngoing:
		// Fence the current producer: abort its transaction with a bumped
		// epoch, which is never returned. The client retries on
		// CONCURRENT_TRANSACTIONS and then gets a second bump (or a new
		// producer id if this one exhausted the epochs).
		epoch := m.epoch
		if epoch < math.MaxInt16 {
			epoch++
		}
		err := c.prepareEnd(m, false, epoch)
		if err == nil {
			m.lastEpoch = -1
		}
		m.mu.Unlock()
		if err != nil {
			return fail(errCode(err))
		}
		c.log.Info("fencing producer and aborting its transaction", "id", id, "producer_id", m.pid, "epoch", epoch)
		c.finish(m)
		return fail(kerr.ConcurrentTransactions.Code)
	}
	defer m.mu.Unlock()
	next := m.txnData.clone()
	switch {
	case m.pid >= 0 && epochExhausted(m.epoch) && (!expected || expectEpoch == m.epoch):
		pid, err := c.cfg.AllocateProducerID()
		if err != nil {
			c.log.Error("allocating a producer id failed", "err", err)
			return fail(kerr.CoordinatorNotAvailable.Code)
		}
		next.lastPID, next.lastEpoch = m.pid, -1
		if expected {
			next.lastEpoch = m.epoch
		}
		next.pid, next.epoch = pid, 0
	case !expected || m.epoch == -1 || expectEpoch == m.epoch:
		if m.pid < 0 {
			pid, err := c.cfg.AllocateProducerID()
			if err != nil {
				c.forgetIfNew(m)
				c.log.Error("allocating a producer id failed", "err", err)
				return fail(kerr.CoordinatorNotAvailable.Code)
			}
			next.pid = pid
		}
		next.lastEpoch = -1
		if expected {
			next.lastEpoch = m.epoch
		}
		next.epoch = m.epoch + 1
	case expectEpoch == m.lastEpoch:
		// A retried InitProducerId: answer the epoch it already got.
	default:
		return fail(kerr.ProducerFenced.Code)
	}
	next.state = kmsg.TransactionStateEmpty
	next.timeoutMs = req.TransactionTimeoutMillis
	next.parts = map[topicPartition]struct{}{}
	next.startMs, next.updateMs = -1, now
	if err := c.transition(m, next); err != nil {
		c.forgetIfNew(m)
		return fail(errCode(err))
	}
	resp.ProducerID, resp.ProducerEpoch = m.pid, m.epoch
	return resp
}

// checkProducer validates a request's producer against m and m's state for
// adding partitions or ending; m.mu is held. PRODUCER_FENCED is returned
// unmapped.
func checkProducer(m *txnMeta, pid int64, epoch int16) int16 {
	switch {
	case m == nil || pid != m.pid:
		return kerr.InvalidProducerIDMapping.Code
	case epoch != m.epoch:
		return kerr.ProducerFenced.Code
	case m.completing || m.state == kmsg.TransactionStatePrepareCommit || m.state == kmsg.TransactionStatePrepareAbort:
		return kerr.ConcurrentTransactions.Code
	}
	return 0
}

// addPartitions adds parts to id's transaction, starting one if needed,
// and returns the (unmapped) error code.
func (c *Coordinator) addPartitions(ctx context.Context, id string, pid int64, epoch int16, parts []topicPartition) int16 {
	if id == "" {
		return kerr.InvalidRequest.Code
	}
	m := c.lockTxn(id, false)
	if m == nil {
		return kerr.InvalidProducerIDMapping.Code
	}
	defer m.mu.Unlock()
	if code := checkProducer(m, pid, epoch); code != 0 {
		return code
	}
	if m.state == kmsg.TransactionStateOngoing {
		all := true
		for _, tp := range parts {
			if _, ok := m.parts[tp]; !ok {
				all = false
				break
			}
		}
		if all {
			return 0
		}
	}
	if ctx.Err() != nil {
		// The client is gone; change nothing.
		return kerr.RequestTimedOut.Code
	}
	next := m.txnData.clone()
	starting := m.state != kmsg.TransactionStateOngoing
	now := c.now().UnixMilli()
	if starting {
		next.parts = map[topicPartition]struct{}{}
		next.startMs = now
	}
	for _, tp := range parts {
		next.parts[tp] = struct{}{}
	}
	next.state = kmsg.TransactionStateOngoing
	next.updateMs = now
	if err := c.transition(m, next); err != nil {
		return errCode(err)
	}
	if starting {
		m.startSeq = c.seq.Add(1)
	}
	return 0
}

// verifyPartitions answers a v4 VerifyOnly transaction: which partitions
// are in the ongoing transaction.
func (c *Coordinator) verifyPartitions(id string, pid int64, epoch int16, parts []topicPartition) (int16, map[topicPartition]int16) {
	m := c.lockTxn(id, false)
	if m == nil {
		return kerr.InvalidProducerIDMapping.Code, nil
	}
	defer m.mu.Unlock()
	if code := checkProducer(m, pid, epoch); code != 0 {
		return code, nil
	}
	out := make(map[topicPartition]int16, len(parts))
	for _, tp := range parts {
		if _, ok := m.parts[tp]; ok && m.state == kmsg.TransactionStateOngoing {
			out[tp] = 0
		} else {
			out[tp] = kerr.InvalidTxnState.Code
		}
	}
	return 0, out
}

// addPartitionsToTxn answers AddPartitionsToTxn, v0-v3 and the v4 batched
// form.
func (c *Coordinator) addPartitionsToTxn(ctx context.Context, req *kmsg.AddPartitionsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]kmsg.AddPartitionsToTxnRequestTransactionTopic, 0, len(req.Topics))
		for _, t := range req.Topics {
			topics = append(topics, kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		codes := c.addTxn(ctx, req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics)
		for _, t := range req.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[topicPartition{t.Topic, p}]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, tx := range req.Transactions {
		codes := c.addTxn(ctx, req.Version, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, tx.Topics)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for _, t := range tx.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[topicPartition{t.Topic, p}]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp
}

// addTxn handles one transaction of AddPartitionsToTxn and returns the
// error code of every partition.
func (c *Coordinator) addTxn(ctx context.Context, version int16, id string, pid int64, epoch int16, verifyOnly bool,
	topics []kmsg.AddPartitionsToTxnRequestTransactionTopic) map[topicPartition]int16 {
	var parts []topicPartition
	codes := make(map[topicPartition]int16)
	unknown := false
	for _, t := range topics {
		for _, p := range t.Partitions {
			tp := topicPartition{t.Topic, p}
			parts = append(parts, tp)
			if t.Topic == "" || p < 0 || (c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(t.Topic, p)) {
				codes[tp] = kerr.UnknownTopicOrPartition.Code
				unknown = true
			}
		}
	}
	setAll := func(code int16) map[topicPartition]int16 {
		if code == kerr.ProducerFenced.Code {
			code = fenced(version, 2)
		}
		for _, tp := range parts {
			codes[tp] = code
		}
		return codes
	}
	if unknown {
		for _, tp := range parts {
			if codes[tp] == 0 {
				codes[tp] = kerr.OperationNotAttempted.Code
			}
		}
		return codes
	}
	if verifyOnly {
		code, per := c.verifyPartitions(id, pid, epoch, parts)
		if code != 0 {
			return setAll(code)
		}
		return per
	}
	return setAll(c.addPartitions(ctx, id, pid, epoch, parts))
}

// addOffsetsToTxn answers AddOffsetsToTxn: it adds the group's
// __consumer_offsets partition to the transaction.
func (c *Coordinator) addOffsetsToTxn(ctx context.Context, req *kmsg.AddOffsetsToTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	tp := topicPartition{c.cfg.OffsetsTopic, c.cfg.OffsetsPartitionFor(req.Group)}
	code := c.addPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, []topicPartition{tp})
	if code == kerr.ProducerFenced.Code {
		code = fenced(req.Version, 2)
	}
	resp.ErrorCode = code
	return resp
}

// endTxn answers EndTxn: it persists PrepareCommit/PrepareAbort, writes the
// markers and persists CompleteCommit/CompleteAbort before answering.
func (c *Coordinator) endTxn(ctx context.Context, req *kmsg.EndTxnRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	code := c.end(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	if code == kerr.ProducerFenced.Code {
		code = fenced(req.Version, 2)
	}
	resp.ErrorCode = code
	return resp
}

func (c *Coordinator) end(ctx context.Context, id string, pid int64, epoch int16, commit bool) int16 {
	if id == "" {
		return kerr.InvalidRequest.Code
	}
	m := c.lockTxn(id, false)
	if m == nil {
		return kerr.InvalidProducerIDMapping.Code
	}
	if pid != m.pid {
		m.mu.Unlock()
		return kerr.InvalidProducerIDMapping.Code
	}
	if epoch != m.epoch {
		m.mu.Unlock()
		return kerr.ProducerFenced.Code
	}
	if m.completing {
		m.mu.Unlock()
		return kerr.ConcurrentTransactions.Code
	}
	switch m.state {
	case kmsg.TransactionStateOngoing:
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		same := (m.state == kmsg.TransactionStatePrepareCommit) == commit
		m.mu.Unlock()
		if same {
			return kerr.ConcurrentTransactions.Code
		}
		return kerr.InvalidTxnState.Code
	case kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
		// A retry of the EndTxn that completed the last transaction
		// succeeds; the opposite outcome is an error.
		same := (m.state == kmsg.TransactionStateCompleteCommit) == commit
		m.mu.Unlock()
		if same {
			return 0
		}
		return kerr.InvalidTxnState.Code
	default:
		m.mu.Unlock()
		return kerr.InvalidTxnState.Code
	}
	if s, ok := arrival(ctx); ok && s < m.startSeq {
		// This EndTxn was read before the ongoing transaction began: a
		// delayed request meant for an earlier transaction.
		m.mu.Unlock()
		c.log.Warn("refusing an EndTxn that arrived before the transaction began", "id", id, "producer_id", pid, "commit", commit)
		return kerr.InvalidTxnState.Code
	}
	if ctx.Err() != nil {
		m.mu.Unlock()
		return kerr.RequestTimedOut.Code
	}
	err := c.prepareEnd(m, commit, m.epoch)
	m.mu.Unlock()
	if err != nil {
		return errCode(err)
	}
	// The outcome is durable: whatever happens to the markers now, the
	// transaction completes (here, in the background loop, or in New).
	c.finish(m)
	return 0
}

// stateName is Kafka's name of a transaction state, as DescribeTransactions
// and ListTransactions use it.
func stateName(s kmsg.TransactionState) string {
	switch s {
	case kmsg.TransactionStateEmpty:
		return "Empty"
	case kmsg.TransactionStateOngoing:
		return "Ongoing"
	case kmsg.TransactionStatePrepareCommit:
		return "PrepareCommit"
	case kmsg.TransactionStatePrepareAbort:
		return "PrepareAbort"
	case kmsg.TransactionStateCompleteCommit:
		return "CompleteCommit"
	case kmsg.TransactionStateCompleteAbort:
		return "CompleteAbort"
	case kmsg.TransactionStateDead:
		return "Dead"
	case kmsg.TransactionStatePrepareEpochFence:
		return "PrepareEpochFence"
	}
	return "Unknown"
}

// stateByName is the inverse of stateName.
func stateByName(name string) (kmsg.TransactionState, bool) {
	for s := kmsg.TransactionStateEmpty; s <= kmsg.TransactionStatePrepareEpochFence; s++ {
		if stateName(s) == name {
			return s, true
		}
	}
	return 0, false
}

// describeTransactions answers DescribeTransactions.
func (c *Coordinator) describeTransactions(req *kmsg.DescribeTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		m := c.lockTxn(id, false)
		if m != nil && m.pid < 0 {
			// Being created by a concurrent InitProducerId.
			m.mu.Unlock()
			m = nil
		}
		if m == nil || id == "" {
			if m != nil {
				m.mu.Unlock()
			}
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State = stateName(m.state)
		st.TimeoutMillis = m.timeoutMs
		st.StartTimestamp = m.startMs
		st.ProducerID, st.ProducerEpoch = m.pid, m.epoch
		for _, tp := range m.sortedParts() {
			if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.topic {
				st.Topics = append(st.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.topic})
			}
			t := &st.Topics[len(st.Topics)-1]
			t.Partitions = append(t.Partitions, tp.partition)
		}
		m.mu.Unlock()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp
}

// listTransactions answers ListTransactions, filtering by state, producer
// id and (v1) by how long the transaction has been running.
func (c *Coordinator) listTransactions(req *kmsg.ListTransactionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := make(map[kmsg.TransactionState]bool)
	for _, name := range req.StateFilters {
		if s, ok := stateByName(name); ok {
			states[s] = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		// Only unknown states were asked for: nothing matches.
		return resp
	}
	pids := make(map[int64]bool, len(req.ProducerIDFilters))
	for _, p := range req.ProducerIDFilters {
		pids[p] = true
	}
	duration := int64(-1)
	if req.Version >= 1 {
		duration = req.DurationFilterMillis
	}
	now := c.now().UnixMilli()
	for _, m := range c.snapshot() {
		m.mu.Lock()
		keep := !m.removed && m.pid >= 0 && m.state != kmsg.TransactionStateDead &&
			(len(pids) == 0 || pids[m.pid]) &&
			(len(states) == 0 || states[m.state]) &&
			(duration < 0 || now-m.startMs > duration)
		if keep {
			st := kmsg.NewListTransactionsResponseTransactionState()
			st.TransactionalID, st.ProducerID, st.TransactionState = m.id, m.pid, stateName(m.state)
			resp.TransactionStates = append(resp.TransactionStates, st)
		}
		m.mu.Unlock()
	}
	sort.Slice(resp.TransactionStates, func(i, j int) bool {
		return resp.TransactionStates[i].TransactionalID < resp.TransactionStates[j].TransactionalID
	})
	return resp
}
