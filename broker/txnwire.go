package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/broker/txn"
	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// transactionTopic is the internal compacted topic holding the transaction
// coordinator's state, as in Kafka.
const transactionTopic = "__transaction_state"

// txnAPIs are answered by the transaction coordinator; their version
// ranges come from txn.Versions.
var txnAPIs = []int16{
	22, // InitProducerId (with and without a transactional id)
	24, // AddPartitionsToTxn
	25, // AddOffsetsToTxn
	26, // EndTxn
	65, // DescribeTransactions
	66, // ListTransactions
}

// txnAPIRanges are the transaction APIs with the versions the coordinator
// serves.
func (s *Server) txnAPIRanges() []apiRange {
	var out []apiRange
	for _, key := range txnAPIs {
		if lo, hi, ok := s.txn.Versions(key); ok {
			out = append(out, apiRange{key, lo, hi})
		}
	}
	return out
}

// startTxnCoordinator creates __transaction_state if needed and starts the
// transaction coordinator over it. The group coordinator must be running:
// New completes transactions left half-finished by a crash, which writes
// markers to __consumer_offsets too.
func (s *Server) startTxnCoordinator() error {
	t, err := s.topics.ensure(transactionTopic, s.cfg.TransactionTopicPartitions, map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  strconv.Itoa(100 << 20),
	}, true)
	if err != nil {
		return fmt.Errorf("creating %s: %w", transactionTopic, err)
	}
	logs := make([]*storage.Log, 0, len(t.partitions()))
	for _, p := range t.partitions() {
		logs = append(logs, p.log)
	}
	c, err := txn.New(txn.Config{
		Logs:    logs,
		Markers: markerWriter{s},
		PartitionExists: func(topic string, partition int32) bool {
			t := s.topics.get(topic)
			return t != nil && t.partition(partition) != nil
		},
		OffsetsTopic:          offsetsTopic,
		OffsetsPartitionFor:   s.group.PartitionFor,
		AllocateProducerID:    s.producerIDs.allocate,
		Logger:                s.logger.With("component", "txn"),
		AbortTimedOutInterval: s.cfg.TransactionAbortInterval,
	})
	if err != nil {
		return fmt.Errorf("starting transaction coordinator: %w", err)
	}
	s.txn = c
	return nil
}

// markerWriter writes transaction markers for the coordinator.
type markerWriter struct{ s *Server }

// WriteMarker appends a commit or abort control batch to one partition,
// wakes fetches waiting on it (the last stable offset may have moved), and,
// on a __consumer_offsets partition, has the group coordinator apply or drop
// the producer's pending transactional offsets.
func (w markerWriter) WriteMarker(ctx context.Context, topic string, partition int32, pid int64, epoch int16, commit bool, coordinatorEpoch int32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := w.s
	t := s.topics.get(topic)
	if t == nil {
		return fmt.Errorf("topic %q: %w", topic, kerr.UnknownTopicOrPartition)
	}
	p := t.partition(partition)
	if p == nil {
		return fmt.Errorf("%s-%d: %w", topic, partition, kerr.UnknownTopicOrPartition)
	}
	info, err := appendControl(p, txn.ControlBatch(pid, epoch, commit, coordinatorEpoch, time.Now().UnixMilli()))
	if err != nil {
		return fmt.Errorf("writing marker to %s-%d: %w", topic, partition, err)
	}
	if topic == offsetsTopic {
		if err := s.group.CompleteTxnAt(partition, pid, epoch, commit, info.FirstOffset); err != nil {
			return fmt.Errorf("completing transactional offsets on %s-%d: %w", topic, partition, err)
		}
	}
	return nil
}

// verifyTxnProduce checks, before a transactional batch is appended, that
// its partition was added to the producer's ongoing transaction (KIP-890
// part 1): without it a stray write would hold the last stable offset back
// forever (a hanging transaction). It returns an error code, or 0.
func (s *Server) verifyTxnProduce(req *kmsg.ProduceRequest, topic string, partition int32, records []byte) int16 {
	pid, epoch, transactional := transactionalBatch(records)
	if !transactional {
		return 0
	}
	if req.TransactionID == nil || s.txn == nil {
		return kerr.InvalidTxnState.Code
	}
	if err := s.txn.VerifyPartition(*req.TransactionID, pid, epoch, topic, partition); err != nil {
		return errorCode(err)
	}
	return 0
}

// transactionalBatch reads the producer id, epoch and transactional bit of
// the first batch of records (a produce request's batches of one partition
// come from one producer).
func transactionalBatch(records []byte) (pid int64, epoch int16, transactional bool) {
	h, err := recordbatch.ParseHeader(records)
	if err != nil || !h.Transactional() {
		return -1, -1, false // a malformed batch is the append's to reject
	}
	return h.ProducerID, h.ProducerEpoch, true
}
