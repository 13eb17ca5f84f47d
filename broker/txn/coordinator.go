package txn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddy-streams/eddy/internal/coordkey"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
)

// Kafka's broker defaults for the durations of Config.
const (
	// DefaultMaxTransactionTimeout is transaction.max.timeout.ms.
	DefaultMaxTransactionTimeout = 15 * time.Minute
	// DefaultAbortTimedOutInterval is
	// transaction.abort.timed.out.transaction.cleanup.interval.ms.
	DefaultAbortTimedOutInterval = 10 * time.Second
	// DefaultTransactionalIDExpiration is transactional.id.expiration.ms.
	DefaultTransactionalIDExpiration = 7 * 24 * time.Hour
	// DefaultRemoveExpiredInterval is
	// transaction.remove.expired.transaction.cleanup.interval.ms.
	DefaultRemoveExpiredInterval = time.Hour
)

// MarkerWriter writes transaction markers (control batches) to data
// partitions. The server implements it: it appends a control batch whose
// record key is (version 0, type 1 = commit or 0 = abort) and whose value
// is kmsg.EndTxnMarker{CoordinatorEpoch}, with the batch's producer id and
// epoch set, to the partition's log; for a __consumer_offsets partition it
// also tells the group coordinator to apply (commit) or drop (abort) the
// producer's pending transactional offsets.
//
// Contract:
//   - Durable before return: when WriteMarker returns nil the marker is in
//     the partition's log as durably as any produced batch (so that a
//     restart cannot lose it after CompleteCommit/CompleteAbort is written).
//   - Idempotent: the coordinator re-sends every marker of a transaction it
//     finds in PrepareCommit/PrepareAbort after a restart, and retries after
//     errors, so a marker for a producer with no open transaction on the
//     partition, or a second identical marker, must be harmless.
//   - A partition that no longer exists (topic deleted) returns an error
//     wrapping kerr.UnknownTopicOrPartition; the coordinator then skips it,
//     as Kafka does. Any other error makes the coordinator retry later.
//   - ctx is cancelled when the coordinator closes.
//   - The producer epoch may be higher than the one the data was written
//     with (a fenced or timed-out transaction is aborted with a bumped
//     epoch); the partition should then reject later writes of the old
//     epoch.
type MarkerWriter interface {
	WriteMarker(ctx context.Context, topic string, partition int32, producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32) error
}

// Config configures a Coordinator.
type Config struct {
	// Logs are the partitions of the internal compacted topic
	// __transaction_state, index = partition. The coordinator reads them
	// in New and appends to them; the caller owns them and closes them
	// after the coordinator. How durable an append is follows the logs'
	// own settings (storage.Config.SyncWrites).
	Logs []*storage.Log
	// Markers writes the commit/abort markers. Required.
	Markers MarkerWriter
	// PartitionExists reports whether a topic partition exists, for
	// UNKNOWN_TOPIC_OR_PARTITION in AddPartitionsToTxn; nil accepts all.
	PartitionExists func(topic string, partition int32) bool
	// OffsetsTopic is the consumer offsets topic AddOffsetsToTxn adds;
	// "" is "__consumer_offsets".
	OffsetsTopic string
	// OffsetsPartitionFor maps a group to its OffsetsTopic partition (the
	// group coordinator's PartitionFor). Required.
	OffsetsPartitionFor func(group string) int32
	// AllocateProducerID returns a producer id never handed out before.
	// Required.
	AllocateProducerID func() (int64, error)
	// Logger receives the coordinator's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for timestamps, timeouts and expiration; nil is
	// time.Now.
	Now func() time.Time
	// MaxTransactionTimeout is transaction.max.timeout.ms; zero is 15 min.
	MaxTransactionTimeout time.Duration
	// AbortTimedOutInterval is how often transactions past their timeout
	// are aborted (and failed marker writes retried); zero is 10 s.
	AbortTimedOutInterval time.Duration
	// TransactionalIDExpiration is transactional.id.expiration.ms: an id
	// without a transaction for this long is forgotten; zero is 7 days.
	TransactionalIDExpiration time.Duration
	// RemoveExpiredInterval is how often expired ids are removed; zero is
	// 1 hour.
	RemoveExpiredInterval time.Duration
}

// ErrClosed is returned by Handle after Close.
var ErrClosed = fmt.Errorf("transaction coordinator closed: %w", kerr.CoordinatorNotAvailable)

// versions are the request versions Handle accepts, by API key.
var versions = map[int16][2]int16{
	22: {0, 4}, // InitProducerId
	24: {0, 4}, // AddPartitionsToTxn
	25: {0, 3}, // AddOffsetsToTxn
	26: {0, 3}, // EndTxn
	65: {0, 0}, // DescribeTransactions
	66: {0, 1}, // ListTransactions
}

// coordinatorEpoch is the epoch written in every marker. A single broker
// is always the coordinator of every __transaction_state partition, so it
// never changes.
const coordinatorEpoch = 0

// Coordinator is the transaction coordinator of one broker. It is safe for
// concurrent use.
//
// Lock order: gate (read-held for a whole request or background pass), then
// a txnMeta's mu, then Coordinator.mu (the map). Coordinator.mu is never
// held while taking a txnMeta's mu, and no lock is held while markers are
// written (the txnMeta's completing flag stands in for it).
type Coordinator struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	txns map[string]*txnMeta

	seq atomic.Uint64 // arrival and transaction-start sequence numbers

	ctx    context.Context // cancelled by Close; marker writes use it
	cancel context.CancelFunc
	gate   sync.RWMutex // read-held by in-flight requests and background work
	closed bool         // under gate
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// txnMeta is one transactional id's state.
type txnMeta struct {
	id string

	mu sync.Mutex // guards everything below
	txnData
	// completing is set while markers are being written for a Prepare
	// state; other requests answer CONCURRENT_TRANSACTIONS meanwhile.
	completing bool
	// startSeq is the sequence number taken when the current transaction
	// began; a request that arrived before it cannot be about it.
	startSeq uint64
	// removed is set when the id expired and left the map.
	removed bool
}

// New replays the __transaction_state logs, completes every transaction
// found in PrepareCommit or PrepareAbort (re-sending its markers, then
// writing CompleteCommit/CompleteAbort) and starts the background timeout
// and expiration work. A marker that cannot be written yet is retried in
// the background; it does not fail New.
func New(cfg Config) (*Coordinator, error) {
	if len(cfg.Logs) == 0 {
		return nil, errors.New("txn: no __transaction_state logs")
	}
	for i, l := range cfg.Logs {
		if l == nil {
			return nil, fmt.Errorf("txn: __transaction_state-%d has no log", i)
		}
	}
	if cfg.Markers == nil || cfg.OffsetsPartitionFor == nil || cfg.AllocateProducerID == nil {
		return nil, errors.New("txn: Markers, OffsetsPartitionFor and AllocateProducerID are required")
	}
	if cfg.OffsetsTopic == "" {
		cfg.OffsetsTopic = "__consumer_offsets"
	}
	if cfg.MaxTransactionTimeout <= 0 {
		cfg.MaxTransactionTimeout = DefaultMaxTransactionTimeout
	}
	if cfg.AbortTimedOutInterval <= 0 {
		cfg.AbortTimedOutInterval = DefaultAbortTimedOutInterval
	}
	if cfg.TransactionalIDExpiration <= 0 {
		cfg.TransactionalIDExpiration = DefaultTransactionalIDExpiration
	}
	if cfg.RemoveExpiredInterval <= 0 {
		cfg.RemoveExpiredInterval = DefaultRemoveExpiredInterval
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, now: cfg.Now, txns: make(map[string]*txnMeta), done: make(chan struct{})}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.seq.Store(1)
	if err := c.replay(); err != nil {
		c.cancel()
		return nil, err
	}
	if n := len(c.txns); n > 0 {
		c.log.Info("loaded transactional ids", "ids", n)
	}
	c.completePending()
	c.wg.Add(1)
	go c.loop()
	return c, nil
}

// Versions returns the range of versions Handle accepts for an API key,
// for ApiVersions; ok is false for keys the coordinator does not answer.
func (c *Coordinator) Versions(key int16) (lo, hi int16, ok bool) {
	r, ok := versions[key]
	return r[0], r[1], ok
}

// PartitionFor returns the __transaction_state partition that holds a
// transactional id: abs(id.hashCode()) % partitions, as Kafka computes it.
func (c *Coordinator) PartitionFor(transactionalID string) int32 {
	return coordkey.Partition(transactionalID, len(c.cfg.Logs))
}

type arrivalKey struct{}

// Arrived returns ctx marked with the moment the request was read from its
// connection. The server should call it as soon as it has read a request,
// before queueing it: an EndTxn that arrived before the producer's current
// transaction began (a delayed retry of the previous transaction's EndTxn)
// is then refused with INVALID_TXN_STATE instead of ending the wrong
// transaction.
func (c *Coordinator) Arrived(ctx context.Context) context.Context {
	return context.WithValue(ctx, arrivalKey{}, c.seq.Add(1))
}

func arrival(ctx context.Context) (uint64, bool) {
	s, ok := ctx.Value(arrivalKey{}).(uint64)
	return s, ok
}

// Handle answers one transaction request: InitProducerId (22),
// AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26),
// DescribeTransactions (65) or ListTransactions (66). The response version
// is the request version. ctx should be cancelled when the client
// connection closes: a request whose connection is gone changes nothing.
// Errors are returned only for requests Handle does not answer (wrong key
// or version, closed coordinator, cancelled ctx); protocol errors are in
// the response.
func (c *Coordinator) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	r, ok := versions[req.Key()]
	if !ok {
		return nil, fmt.Errorf("txn: API key %d is not a transaction request: %w", req.Key(), kerr.InvalidRequest)
	}
	if v := req.GetVersion(); v < r[0] || v > r[1] {
		return nil, fmt.Errorf("txn: %s v%d outside %d-%d: %w", kmsg.NameForKey(req.Key()), v, r[0], r[1], kerr.UnsupportedVersion)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !c.enter() {
		return nil, ErrClosed
	}
	defer c.exit()
	switch req := req.(type) {
	case *kmsg.InitProducerIDRequest:
		return c.initProducerID(req), nil
	case *kmsg.AddPartitionsToTxnRequest:
		return c.addPartitionsToTxn(ctx, req), nil
	case *kmsg.AddOffsetsToTxnRequest:
		return c.addOffsetsToTxn(ctx, req), nil
	case *kmsg.EndTxnRequest:
		return c.endTxn(ctx, req), nil
	case *kmsg.DescribeTransactionsRequest:
		return c.describeTransactions(req), nil
	case *kmsg.ListTransactionsRequest:
		return c.listTransactions(req), nil
	}
	return nil, fmt.Errorf("txn: unexpected request type %T: %w", req, kerr.InvalidRequest)
}

// enter registers in-flight work; false after Close.
func (c *Coordinator) enter() bool {
	c.gate.RLock()
	if c.closed {
		c.gate.RUnlock()
		return false
	}
	return true
}

func (c *Coordinator) exit() { c.gate.RUnlock() }

// Close stops the background work, cancels marker writes in progress and
// waits for in-flight requests. Transactions left in a Prepare state are
// completed by the next New. Close is idempotent.
func (c *Coordinator) Close() error {
	c.once.Do(func() {
		c.cancel()
		close(c.done)
		c.gate.Lock()
		c.closed = true
		c.gate.Unlock()
		c.wg.Wait()
	})
	return nil
}

// loop aborts timed-out transactions, retries unfinished completions and
// expires transactional ids until Close.
func (c *Coordinator) loop() {
	defer c.wg.Done()
	abort := time.NewTicker(c.cfg.AbortTimedOutInterval)
	defer abort.Stop()
	expire := time.NewTicker(c.cfg.RemoveExpiredInterval)
	defer expire.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-abort.C:
			if !c.enter() {
				return
			}
			c.abortTimedOut()
			c.completePending()
			c.exit()
		case <-expire.C:
			if !c.enter() {
				return
			}
			c.expireIDs()
			c.exit()
		}
	}
}

// snapshot returns every known transactional id's meta.
func (c *Coordinator) snapshot() []*txnMeta {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*txnMeta, 0, len(c.txns))
	for _, m := range c.txns {
		out = append(out, m)
	}
	return out
}

// lockTxn returns id's meta, locked, or nil when unknown. With create, an
// unknown id gets a new meta (producer id -1, not yet persisted).
func (c *Coordinator) lockTxn(id string, create bool) *txnMeta {
	for {
		c.mu.Lock()
		m := c.txns[id]
		if m == nil {
			if !create {
				c.mu.Unlock()
				return nil
			}
			m = &txnMeta{id: id, txnData: txnData{pid: -1, epoch: -1, lastPID: -1, lastEpoch: -1,
				state: kmsg.TransactionStateEmpty, parts: map[topicPartition]struct{}{}, startMs: -1}}
			c.txns[id] = m
		}
		c.mu.Unlock()
		m.mu.Lock()
		if !m.removed {
			return m
		}
		m.mu.Unlock()
	}
}

// forgetIfNew removes a meta lockTxn created when its first write failed.
// m.mu is held.
func (c *Coordinator) forgetIfNew(m *txnMeta) {
	if m.pid >= 0 {
		return
	}
	m.removed = true
	c.mu.Lock()
	if c.txns[m.id] == m {
		delete(c.txns, m.id)
	}
	c.mu.Unlock()
}

// transition persists next as m's state and then adopts it. m.mu is held.
func (c *Coordinator) transition(m *txnMeta, next txnData) error {
	if err := c.persist(m.id, &next); err != nil {
		c.log.Error("transaction state write failed", "id", m.id, "err", err)
		return err
	}
	m.txnData = next
	return nil
}

// prepareEnd persists PrepareCommit or PrepareAbort for m's ongoing
// transaction (with epoch, which a fence or timeout bumps) and marks it
// completing. m.mu is held; on success the caller must call finish.
func (c *Coordinator) prepareEnd(m *txnMeta, commit bool, epoch int16) error {
	next := m.txnData.clone()
	next.epoch = epoch
	next.state = kmsg.TransactionStatePrepareAbort
	if commit {
		next.state = kmsg.TransactionStatePrepareCommit
	}
	next.updateMs = c.now().UnixMilli()
	if err := c.transition(m, next); err != nil {
		return err
	}
	m.completing = true
	return nil
}

// finish writes the markers of m's prepared transaction and then persists
// CompleteCommit or CompleteAbort. m.completing must have been set by the
// caller, who does not hold m.mu. On failure the transaction stays
// prepared and the background loop (or the next New) retries.
func (c *Coordinator) finish(m *txnMeta) error {
	m.mu.Lock()
	commit := m.state == kmsg.TransactionStatePrepareCommit
	pid, epoch, parts := m.pid, m.epoch, m.sortedParts()
	m.mu.Unlock()

	err := c.writeMarkers(pid, epoch, commit, parts)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.completing = false
	if err != nil {
		c.log.Error("writing transaction markers failed; will retry", "id", m.id, "producer_id", pid, "commit", commit, "err", err)
		return err
	}
	next := m.txnData.clone()
	next.state = kmsg.TransactionStateCompleteAbort
	if commit {
		next.state = kmsg.TransactionStateCompleteCommit
	}
	next.parts = map[topicPartition]struct{}{}
	next.updateMs = c.now().UnixMilli()
	return c.transition(m, next)
}

// writeMarkers writes one marker to every partition, skipping partitions
// that no longer exist.
func (c *Coordinator) writeMarkers(pid int64, epoch int16, commit bool, parts []topicPartition) error {
	for _, tp := range parts {
		err := c.cfg.Markers.WriteMarker(c.ctx, tp.topic, tp.partition, pid, epoch, commit, coordinatorEpoch)
		switch {
		case err == nil:
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			c.log.Warn("skipping transaction marker for a partition that no longer exists", "topic", tp.topic, "partition", tp.partition, "producer_id", pid)
		default:
			return fmt.Errorf("marker for %s-%d: %w", tp.topic, tp.partition, err)
		}
	}
	return nil
}

// completePending finishes every prepared transaction nobody is finishing.
func (c *Coordinator) completePending() {
	for _, m := range c.snapshot() {
		m.mu.Lock()
		prepared := m.state == kmsg.TransactionStatePrepareCommit || m.state == kmsg.TransactionStatePrepareAbort
		if !prepared || m.completing || m.removed {
			m.mu.Unlock()
			continue
		}
		m.completing = true
		m.mu.Unlock()
		if err := c.finish(m); err == nil {
			c.log.Info("completed prepared transaction", "id", m.id)
		}
	}
}

// abortTimedOut aborts every ongoing transaction older than its timeout,
// bumping the producer epoch first so that the producer is fenced, as
// Kafka does.
func (c *Coordinator) abortTimedOut() {
	now := c.now().UnixMilli()
	for _, m := range c.snapshot() {
		m.mu.Lock()
		if m.removed || m.completing || m.state != kmsg.TransactionStateOngoing || m.startMs+int64(m.timeoutMs) >= now {
			m.mu.Unlock()
			continue
		}
		epoch := m.epoch
		if epoch < math.MaxInt16 {
			epoch++
		}
		c.log.Info("aborting timed-out transaction", "id", m.id, "producer_id", m.pid, "epoch", m.epoch, "timeout_ms", m.timeoutMs)
		err := c.prepareEnd(m, false, epoch)
		if err == nil {
			m.lastEpoch = -1
		}
		m.mu.Unlock()
		if err == nil {
			c.finish(m)
		}
	}
}

// expireIDs forgets transactional ids with no transaction whose last
// change is older than TransactionalIDExpiration, writing a tombstone.
func (c *Coordinator) expireIDs() {
	cutoff := c.now().Add(-c.cfg.TransactionalIDExpiration).UnixMilli()
	for _, m := range c.snapshot() {
		m.mu.Lock()
		idle := m.state == kmsg.TransactionStateEmpty || m.state == kmsg.TransactionStateCompleteCommit || m.state == kmsg.TransactionStateCompleteAbort
		if m.removed || m.completing || !idle || m.pid < 0 || m.updateMs > cutoff {
			m.mu.Unlock()
			continue
		}
		if err := c.persist(m.id, nil); err != nil {
			c.log.Error("expiring transactional id failed", "id", m.id, "err", err)
			m.mu.Unlock()
			continue
		}
		m.removed = true
		c.mu.Lock()
		if c.txns[m.id] == m {
			delete(c.txns, m.id)
		}
		c.mu.Unlock()
		c.log.Info("expired transactional id", "id", m.id, "producer_id", m.pid)
		m.mu.Unlock()
	}
}

// asKerr is errors.As for *kerr.Error.
func asKerr(err error, target **kerr.Error) bool { return errors.As(err, target) }

// errCode returns the Kafka error code of err (UNKNOWN_SERVER_ERROR when it
// carries none).
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if asKerr(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// VerifyPartition reports whether topic-partition is in the ongoing
// transaction of transactionalID with this producer id and epoch, for the
// server's check of a transactional Produce (Kafka's produce-side
// verification, KIP-890 part 1). It returns nil when it is, else an error
// wrapping kerr.InvalidProducerIDMapping (unknown id or producer id),
// kerr.ProducerFenced (another epoch), kerr.ConcurrentTransactions (the
// previous transaction is still completing) or kerr.InvalidTxnState (the
// partition was not added with AddPartitionsToTxn).
func (c *Coordinator) VerifyPartition(transactionalID string, producerID int64, producerEpoch int16, topic string, partition int32) error {
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	tp := topicPartition{topic, partition}
	code, per := c.verifyPartitions(transactionalID, producerID, producerEpoch, []topicPartition{tp})
	if code == 0 {
		code = per[tp]
	}
	if code == 0 {
		return nil
	}
	return fmt.Errorf("txn: %q producer %d epoch %d writing to %s-%d: %w", transactionalID, producerID, producerEpoch, topic, partition, kerr.ErrorForCode(code))
}
