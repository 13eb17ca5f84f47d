package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/eddy-streams/eddy/internal/coordkey"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
)

// Kafka's broker defaults for the group settings of Config.
const (
	// DefaultMinSessionTimeout is group.min.session.timeout.ms.
	DefaultMinSessionTimeout = 6 * time.Second
	// DefaultMaxSessionTimeout is group.max.session.timeout.ms.
	DefaultMaxSessionTimeout = 30 * time.Minute
	// DefaultOffsetsRetention is offsets.retention.minutes (7 days).
	DefaultOffsetsRetention = 7 * 24 * time.Hour
	// DefaultOffsetsRetentionCheckInterval is offsets.retention.check.interval.ms.
	DefaultOffsetsRetentionCheckInterval = 10 * time.Minute

	// newMemberJoinTimeout bounds how long a brand-new member may wait in
	// its first JoinGroup before it is dropped (Kafka's constant).
	newMemberJoinTimeout = 5 * time.Minute
	// maxOffsetMetadata is offset.metadata.max.bytes.
	maxOffsetMetadata = 4096
)

// Config configures a Coordinator.
type Config struct {
	// Logs are the partitions of __consumer_offsets, index = partition.
	// The Coordinator appends to them and reads them on New; the caller
	// owns them and closes them after the Coordinator.
	Logs []*storage.Log
	// Logger receives the coordinator's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for commit and state timestamps; nil is time.Now.
	Now func() time.Time
	// MinSessionTimeout and MaxSessionTimeout bound a member's session
	// timeout (group.min/max.session.timeout.ms); zero takes Kafka's
	// defaults, 6 s and 30 min.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long
	// the first rebalance of an empty group waits for more members. Zero
	// means no delay (Kafka's default is 3 s).
	InitialRebalanceDelay time.Duration
	// OffsetsRetention is offsets.retention.minutes: how long the offsets
	// of an empty group (or a standalone commit) are kept. Zero is 7 days.
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is how often expired offsets are
	// removed; zero is 10 minutes.
	OffsetsRetentionCheckInterval time.Duration
	// PartitionExists reports whether a topic partition exists, for
	// UNKNOWN_TOPIC_OR_PARTITION on commits; nil accepts every partition.
	PartitionExists func(topic string, partition int32) bool
	// VerifyTxnOffsetCommit, when set, is asked before a TxnOffsetCommit
	// is written whether the producer's current transaction may commit
	// offsets for the group: the transaction coordinator checks that the
	// producer id and epoch are current and that AddOffsetsToTxn added the
	// group. An error wrapping a *kerr.Error (INVALID_PRODUCER_ID_MAPPING,
	// PRODUCER_FENCED, INVALID_TXN_STATE, ...) is answered with its code
	// on every partition, other errors with UNKNOWN_SERVER_ERROR. It is
	// called without the coordinator's locks held. Nil skips the check;
	// the coordinator still fences epochs older than the newest it saw.
	VerifyTxnOffsetCommit func(transactionalID string, producerID int64, producerEpoch int16, group string) error
	// Appended, when set, is called after every append the coordinator
	// makes to a __consumer_offsets partition, so the broker can wake
	// fetches waiting on that partition. It must not block.
	Appended func(partition int32)
}

// CommittedOffset is one committed offset, for lag metrics.
type CommittedOffset struct {
	Group     string
	Topic     string
	Partition int32
	Offset    int64
}

// ClientInfo identifies the client connection a request came from; it is
// reported by DescribeGroups and used to build member ids.
type ClientInfo struct {
	ClientID string // the request header's client id
	Host     string // the client's address, as Kafka shows it ("/127.0.0.1")
}

type clientInfoKey struct{}

// WithClientInfo returns a context carrying the client's identity for
// Handle. Without it members have an empty client id and host.
func WithClientInfo(ctx context.Context, ci ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, ci)
}

func clientInfo(ctx context.Context) ClientInfo {
	ci, _ := ctx.Value(clientInfoKey{}).(ClientInfo)
	return ci
}

// ErrClosed is returned by Handle after Close.
var ErrClosed = fmt.Errorf("group coordinator closed: %w", kerr.CoordinatorNotAvailable)

// versions are the request versions Handle accepts, by API key.
var versions = map[int16][2]int16{
	8:  {0, 8}, // OffsetCommit
	9:  {0, 8}, // OffsetFetch
	11: {0, 9}, // JoinGroup
	12: {0, 4}, // Heartbeat
	13: {0, 5}, // LeaveGroup
	14: {0, 5}, // SyncGroup
	15: {0, 5}, // DescribeGroups
	16: {0, 4}, // ListGroups
	28: {0, 3}, // TxnOffsetCommit
	42: {0, 2}, // DeleteGroups
	47: {0, 0}, // OffsetDelete
}

// Versions returns the range of versions Handle accepts for an API key,
// for ApiVersions; ok is false for keys the coordinator does not answer.
func Versions(key int16) (minVersion, maxVersion int16, ok bool) {
	r, ok := versions[key]
	return r[0], r[1], ok
}

// Coordinator coordinates every consumer group of one broker. It is safe
// for concurrent use.
type Coordinator struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	done      chan struct{} // closed by Close: wakes blocked requests
	closeOnce sync.Once
	inflight  sync.WaitGroup // work that may touch the logs
	loopDone  chan struct{}

	mu     sync.Mutex // guards groups, txns and closed; taken after a group's mu
	groups map[string]*group
	txns   map[int64]*txnProducer // transactional producers seen, by producer id
	closed bool
}

// New builds a Coordinator and replays cfg.Logs to rebuild the committed
// offsets and group metadata. Records that cannot be decoded are logged and
// skipped.
func New(cfg Config) (*Coordinator, error) {
	if len(cfg.Logs) == 0 {
		return nil, errors.New("group: Config.Logs is empty")
	}
	for i, l := range cfg.Logs {
		if l == nil {
			return nil, fmt.Errorf("group: Config.Logs[%d] is nil", i)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = DefaultMinSessionTimeout
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = DefaultMaxSessionTimeout
	}
	if cfg.MinSessionTimeout > cfg.MaxSessionTimeout {
		return nil, fmt.Errorf("group: MinSessionTimeout %v above MaxSessionTimeout %v", cfg.MinSessionTimeout, cfg.MaxSessionTimeout)
	}
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = DefaultOffsetsRetention
	}
	if cfg.OffsetsRetentionCheckInterval <= 0 {
		cfg.OffsetsRetentionCheckInterval = DefaultOffsetsRetentionCheckInterval
	}
	c := &Coordinator{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "group"),
		now:      cfg.Now,
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
		groups:   make(map[string]*group),
		txns:     make(map[int64]*txnProducer),
	}
	if err := c.replay(); err != nil {
		return nil, err
	}
	go c.retentionLoop()
	return c, nil
}

// Close stops every timer and background goroutine, wakes blocked
// JoinGroup and SyncGroup requests with COORDINATOR_NOT_AVAILABLE and waits
// for work in progress. It does not close the logs. Close is idempotent.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		gs := make([]*group, 0, len(c.groups))
		for _, g := range c.groups {
			gs = append(gs, g)
		}
		c.mu.Unlock()
		close(c.done)
		c.inflight.Wait()
		<-c.loopDone
		for _, g := range gs {
			g.mu.Lock()
			g.stopTimers()
			g.mu.Unlock()
		}
	})
	return nil
}

// enter registers work that may touch groups or logs; it fails once the
// coordinator is closed. Every enter that succeeds is paired with exit.
func (c *Coordinator) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.inflight.Add(1)
	return true
}

func (c *Coordinator) exit() { c.inflight.Done() }

// afterFunc runs f after d unless the coordinator closed first.
func (c *Coordinator) afterFunc(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() {
		if !c.enter() {
			return
		}
		defer c.exit()
		f()
	})
}

func (c *Coordinator) retentionLoop() {
	defer close(c.loopDone)
	t := time.NewTicker(c.cfg.OffsetsRetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if !c.enter() {
				return
			}
			c.expireOffsets(c.now())
			c.exit()
		}
	}
}

// PartitionFor returns the __consumer_offsets partition that holds a group:
// abs(group.hashCode()) % partitions, as Kafka computes it.
func (c *Coordinator) PartitionFor(group string) int32 {
	return partitionFor(group, len(c.cfg.Logs))
}

func partitionFor(group string, n int) int32 { return coordkey.Partition(group, n) }

// Committed returns every committed offset, sorted by group, topic and
// partition.
func (c *Coordinator) Committed() []CommittedOffset {
	var out []CommittedOffset
	for _, g := range c.snapshot() {
		g.mu.Lock()
		for tp, o := range g.offsets {
			out = append(out, CommittedOffset{Group: g.name, Topic: tp.topic, Partition: tp.partition, Offset: o.offset})
		}
		g.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return out
}

// snapshot returns the current groups.
func (c *Coordinator) snapshot() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	return gs
}

// lookup returns the live group name locked, creating it when create is
// set; nil (and nothing locked) when it does not exist.
func (c *Coordinator) lookup(name string, create bool) *group {
	for {
		c.mu.Lock()
		g := c.groups[name]
		if g == nil {
			if !create {
				c.mu.Unlock()
				return nil
			}
			g = c.newGroup(name)
			c.groups[name] = g
		}
		c.mu.Unlock()
		g.mu.Lock()
		if !g.dead {
			return g
		}
		// Removed between the map lookup and the lock: look again.
		g.mu.Unlock()
	}
}

func (c *Coordinator) newGroup(name string) *group {
	return &group{
		name:       name,
		partition:  c.PartitionFor(name),
		members:    make(map[string]*member),
		static:     make(map[string]string),
		pending:    make(map[string]*time.Timer),
		offsets:    make(map[topicPartition]offsetEntry),
		txnOffsets: make(map[int64]map[topicPartition][]offsetEntry),
		stateTime:  c.now(),
	}
}

// removeGroup marks g Dead and drops it from the map. g.mu must be held.
func (c *Coordinator) removeGroup(g *group) {
	g.setState(stateDead, c.now())
	g.dead = true
	g.stopTimers()
	c.mu.Lock()
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
	for pid := range g.txnOffsets {
		if p := c.txns[pid]; p != nil {
			delete(p.groups, g.name)
		}
	}
	c.mu.Unlock()
	clear(g.txnOffsets)
}

// dropIfUnused removes a group that a failed request created and that holds
// nothing worth keeping. g.mu must be held.
func (c *Coordinator) dropIfUnused(g *group) {
	if g.state == stateEmpty && len(g.members) == 0 && len(g.pending) == 0 && !g.hasOffsets() && g.generation == 0 {
		c.removeGroup(g)
	}
}

// Handle answers one group-coordinator request. The response has the
// request's version. ctx ends when the client connection closes; a
// JoinGroup or SyncGroup blocked on a rebalance then returns ctx.Err() and,
// as in Kafka, the member stays until its session times out. Errors are
// returned only for requests Handle does not serve, after Close, and on
// cancellation; everything else is an error code in the response.
func (c *Coordinator) Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	r, ok := versions[req.Key()]
	if !ok {
		return nil, fmt.Errorf("group: API key %d is not a group request: %w", req.Key(), kerr.InvalidRequest)
	}
	if v := req.GetVersion(); v < r[0] || v > r[1] {
		return nil, fmt.Errorf("group: %s v%d outside %d-%d: %w", kmsg.NameForKey(req.Key()), v, r[0], r[1], kerr.UnsupportedVersion)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch req := req.(type) {
	case *kmsg.JoinGroupRequest:
		return c.joinGroup(ctx, req)
	case *kmsg.SyncGroupRequest:
		return c.syncGroup(ctx, req)
	case *kmsg.HeartbeatRequest:
		return c.guard(func() kmsg.Response { return c.heartbeat(req) })
	case *kmsg.LeaveGroupRequest:
		return c.guard(func() kmsg.Response { return c.leaveGroup(req) })
	case *kmsg.OffsetCommitRequest:
		return c.guard(func() kmsg.Response { return c.offsetCommit(req) })
	case *kmsg.OffsetFetchRequest:
		return c.guard(func() kmsg.Response { return c.offsetFetch(req) })
	case *kmsg.TxnOffsetCommitRequest:
		return c.guard(func() kmsg.Response { return c.txnOffsetCommit(req) })
	case *kmsg.OffsetDeleteRequest:
		return c.guard(func() kmsg.Response { return c.offsetDelete(req) })
	case *kmsg.DescribeGroupsRequest:
		return c.guard(func() kmsg.Response { return c.describeGroups(req) })
	case *kmsg.ListGroupsRequest:
		return c.guard(func() kmsg.Response { return c.listGroups(req) })
	case *kmsg.DeleteGroupsRequest:
		return c.guard(func() kmsg.Response { return c.deleteGroups(req) })
	}
	return nil, fmt.Errorf("group: unexpected request type %T: %w", req, kerr.InvalidRequest)
}

// guard runs a non-blocking handler as in-flight work.
func (c *Coordinator) guard(f func() kmsg.Response) (kmsg.Response, error) {
	if !c.enter() {
		return nil, ErrClosed
	}
	defer c.exit()
	return f(), nil
}
