package txn

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/internal/recordbatch"
)

const (
	// keyVersion is the TxnMetadataKey version Kafka writes (and the only
	// one it defines).
	keyVersion = 0
	// valueVersion is the TxnMetadataValue version eddy writes: v0, which
	// every Kafka release since 0.11 reads.
	valueVersion = 0
	// replayReadBytes is how much of a log New reads at a time.
	replayReadBytes = 1 << 20
)

// topicPartition names one partition of a transaction.
type topicPartition struct {
	topic     string
	partition int32
}

// txnData is the durable part of a transactional id's state: what one
// __transaction_state record holds (plus lastPID/lastEpoch, kept in memory
// only, as Kafka keeps them).
type txnData struct {
	pid       int64
	epoch     int16
	lastPID   int64 // previous producer id after an epoch-exhaustion rotation, else -1
	lastEpoch int16 // epoch before the last bump, for retried InitProducerId, else -1
	timeoutMs int32
	state     kmsg.TransactionState
	parts     map[topicPartition]struct{}
	startMs   int64 // when the current transaction began; -1 when none
	updateMs  int64 // last state change
}

// clone returns a deep copy of d.
func (d *txnData) clone() txnData {
	c := *d
	c.parts = make(map[topicPartition]struct{}, len(d.parts))
	for tp := range d.parts {
		c.parts[tp] = struct{}{}
	}
	return c
}

// sortedParts returns the transaction's partitions ordered by topic and
// partition.
func (d *txnData) sortedParts() []topicPartition {
	out := make([]topicPartition, 0, len(d.parts))
	for tp := range d.parts {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].partition < out[j].partition
	})
	return out
}

// encodeRecord returns the __transaction_state record for id; a nil d is a
// tombstone (the id expired).
func encodeRecord(id string, d *txnData) recordbatch.Record {
	k := kmsg.NewTxnMetadataKey()
	k.Version, k.TransactionalID = keyVersion, id
	r := recordbatch.Record{Key: k.AppendTo(nil)}
	if d == nil {
		return r
	}
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueVersion
	v.ProducerID, v.ProducerEpoch, v.TimeoutMillis = d.pid, d.epoch, d.timeoutMs
	v.State = d.state
	v.LastUpdateTimestamp, v.StartTimestamp = d.updateMs, d.startMs
	var cur *kmsg.TxnMetadataValueTopic
	for _, tp := range d.sortedParts() {
		if cur == nil || cur.Topic != tp.topic {
			v.Topics = append(v.Topics, kmsg.TxnMetadataValueTopic{Topic: tp.topic})
			cur = &v.Topics[len(v.Topics)-1]
		}
		cur.Partitions = append(cur.Partitions, tp.partition)
	}
	r.Value = v.AppendTo(nil)
	return r
}

// decodeRecord decodes one __transaction_state record. A nil *txnData with
// a nil error is a tombstone. Malformed or implausible records return an
// error wrapping kerr.CorruptMessage.
func decodeRecord(key, value []byte) (string, *txnData, error) {
	if len(key) < 2 {
		return "", nil, fmt.Errorf("txn: key of %d bytes: %w", len(key), kerr.CorruptMessage)
	}
	if ver := int16(binary.BigEndian.Uint16(key)); ver != keyVersion {
		return "", nil, fmt.Errorf("txn: unknown key version %d: %w", ver, kerr.CorruptMessage)
	}
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return "", nil, fmt.Errorf("txn: transaction metadata key: %v: %w", err, kerr.CorruptMessage)
	}
	if k.TransactionalID == "" {
		return "", nil, fmt.Errorf("txn: empty transactional id: %w", kerr.CorruptMessage)
	}
	if value == nil {
		return k.TransactionalID, nil, nil
	}
	if len(value) < 2 {
		return "", nil, fmt.Errorf("txn: value of %d bytes: %w", len(value), kerr.CorruptMessage)
	}
	if ver := int16(binary.BigEndian.Uint16(value)); ver < 0 || ver > 1 {
		return "", nil, fmt.Errorf("txn: unknown value version %d: %w", ver, kerr.CorruptMessage)
	}
	var v kmsg.TxnMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return "", nil, fmt.Errorf("txn: transaction metadata value: %v: %w", err, kerr.CorruptMessage)
	}
	switch {
	case v.ProducerID < 0:
		return "", nil, fmt.Errorf("txn: %q: producer id %d: %w", k.TransactionalID, v.ProducerID, kerr.CorruptMessage)
	case v.ProducerEpoch < 0:
		return "", nil, fmt.Errorf("txn: %q: producer epoch %d: %w", k.TransactionalID, v.ProducerEpoch, kerr.CorruptMessage)
	case v.TimeoutMillis <= 0:
		return "", nil, fmt.Errorf("txn: %q: timeout %d ms: %w", k.TransactionalID, v.TimeoutMillis, kerr.CorruptMessage)
	case v.State < kmsg.TransactionStateEmpty || v.State > kmsg.TransactionStatePrepareEpochFence:
		return "", nil, fmt.Errorf("txn: %q: state %d: %w", k.TransactionalID, v.State, kerr.CorruptMessage)
	}
	d := &txnData{
		pid: v.ProducerID, epoch: v.ProducerEpoch, lastPID: -1, lastEpoch: -1,
		timeoutMs: v.TimeoutMillis, state: v.State,
		parts:   make(map[topicPartition]struct{}),
		startMs: v.StartTimestamp, updateMs: v.LastUpdateTimestamp,
	}
	for _, t := range v.Topics {
		if t.Topic == "" {
			return "", nil, fmt.Errorf("txn: %q: empty topic name: %w", k.TransactionalID, kerr.CorruptMessage)
		}
		for _, p := range t.Partitions {
			if p < 0 {
				return "", nil, fmt.Errorf("txn: %q: partition %s-%d: %w", k.TransactionalID, t.Topic, p, kerr.CorruptMessage)
			}
			d.parts[topicPartition{t.Topic, p}] = struct{}{}
		}
	}
	return k.TransactionalID, d, nil
}

// persist appends id's new state (nil: a tombstone) to its
// __transaction_state partition as one batch. Errors wrap a *kerr.Error a
// client can act on: COORDINATOR_NOT_AVAILABLE (retriable) for storage
// failures, UNKNOWN_SERVER_ERROR for a record too large to store.
func (c *Coordinator) persist(id string, d *txnData) error {
	p := c.PartitionFor(id)
	r := encodeRecord(id, d)
	r.Offset, r.Timestamp = 0, c.now().UnixMilli()
	b := recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []recordbatch.Record{r})
	if _, err := c.cfg.Logs[p].Append(b); err != nil {
		code := kerr.CoordinatorNotAvailable
		if ke := (*kerr.Error)(nil); asKerr(err, &ke) && (ke == kerr.MessageTooLarge || ke == kerr.RecordListTooLarge) {
			code = kerr.UnknownServerError
		}
		return fmt.Errorf("txn: writing %q to __transaction_state-%d: %v: %w", id, p, err, code)
	}
	return nil
}

// replay rebuilds every transactional id's state from the logs: the last
// record of each id wins and a tombstone removes it.
func (c *Coordinator) replay() error {
	for p, log := range c.cfg.Logs {
		if err := c.replayLog(int32(p), log); err != nil {
			return err
		}
	}
	return nil
}

// replayLog applies one partition's records, from its start to its end.
// Undecodable batches and records are logged and skipped.
func (c *Coordinator) replayLog(p int32, log *storage.Log) error {
	off, end := log.StartOffset(), log.EndOffset()
	for off < end {
		ri, err := log.Read(off, replayReadBytes)
		if err != nil {
			return fmt.Errorf("txn: reading __transaction_state-%d at offset %d: %w", p, off, err)
		}
		batches, err := recordbatch.Split(ri.Records)
		if err != nil {
			return fmt.Errorf("txn: reading __transaction_state-%d at offset %d: %w", p, off, err)
		}
		start := off
		for _, b := range batches {
			h, err := recordbatch.ParseHeader(b)
			if err != nil {
				return fmt.Errorf("txn: reading __transaction_state-%d at offset %d: %w", p, off, err)
			}
			next := h.LastOffset() + 1
			if next <= off {
				continue
			}
			if h.Control() {
				off = next
				continue
			}
			recs, err := recordbatch.Records(b)
			if err != nil {
				c.log.Error("skipping undecodable __transaction_state batch", "partition", p, "offset", h.BaseOffset, "err", err)
				off = next
				continue
			}
			for _, r := range recs {
				if r.Offset < off {
					continue
				}
				c.applyRecord(p, r.Offset, r.Key, r.Value)
			}
			off = next
		}
		if off == start {
			c.log.Warn("no progress replaying __transaction_state", "partition", p, "offset", off, "end", end)
			break
		}
	}
	return nil
}

// applyRecord applies one replayed record to the in-memory state.
func (c *Coordinator) applyRecord(p int32, offset int64, key, value []byte) {
	id, d, err := decodeRecord(key, value)
	if err != nil {
		c.log.Error("skipping bad __transaction_state record", "partition", p, "offset", offset, "err", err)
		return
	}
	if d == nil || d.state == kmsg.TransactionStateDead {
		delete(c.txns, id)
		return
	}
	if want := c.PartitionFor(id); want != p {
		c.log.Warn("transactional id found in an unexpected __transaction_state partition", "id", id, "found", p, "expected", want)
	}
	if d.state == kmsg.TransactionStatePrepareEpochFence {
		// Kafka never completes a fence without a PrepareAbort; an
		// interrupted fence leaves an ongoing transaction, which the
		// timeout (or the next InitProducerId) aborts.
		d.state = kmsg.TransactionStateOngoing
	}
	m := c.txns[id]
	if m == nil {
		m = &txnMeta{id: id}
		c.txns[id] = m
	}
	m.txnData = *d
}
