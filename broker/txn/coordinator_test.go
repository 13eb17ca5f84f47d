package txn

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// marker is one WriteMarker call.
type marker struct {
	Topic     string
	Partition int32
	PID       int64
	Epoch     int16
	Commit    bool
}

// fakeMarkers records markers; fail makes WriteMarker return an error.
type fakeMarkers struct {
	mu      sync.Mutex
	markers []marker
	fail    error
}

func (f *fakeMarkers) WriteMarker(_ context.Context, topic string, partition int32, pid int64, epoch int16, commit bool, _ int32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.markers = append(f.markers, marker{topic, partition, pid, epoch, commit})
	return nil
}

// take returns and clears the recorded markers, sorted.
func (f *fakeMarkers) take() []marker {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.markers
	f.markers = nil
	slices.SortFunc(out, func(a, b marker) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

func (f *fakeMarkers) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

// clock is an injectable, advanceable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a coordinator over real logs in a temporary directory that can
// be closed and reopened like a restarted broker.
type env struct {
	t       *testing.T
	dir     string
	parts   int
	clock   *clock
	markers *fakeMarkers
	nextPID atomic.Int64
	logs    []*storage.Log
	c       *Coordinator
	tweak   func(*Config)
}

func newEnv(t *testing.T, parts int) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), parts: parts, clock: &clock{t: time.UnixMilli(1_700_000_000_000)}, markers: &fakeMarkers{}}
	e.nextPID.Store(1000)
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) openLogs() {
	e.t.Helper()
	cfg := storage.DefaultConfig()
	cfg.CleanupPolicy = storage.CleanupCompact
	e.logs = nil
	for p := range e.parts {
		l, err := storage.Open(filepath.Join(e.dir, fmt.Sprintf("__transaction_state-%d", p)), cfg, storage.Options{Now: e.clock.Now})
		if err != nil {
			e.t.Fatal(err)
		}
		e.logs = append(e.logs, l)
	}
}

func (e *env) open() {
	e.t.Helper()
	e.openLogs()
	cfg := Config{
		Logs:                e.logs,
		Markers:             e.markers,
		OffsetsPartitionFor: func(group string) int32 { return int32(len(group) % 3) },
		AllocateProducerID:  func() (int64, error) { return e.nextPID.Add(1), nil },
		PartitionExists:     func(topic string, p int32) bool { return topic != "missing" && p < 8 },
		Now:                 e.clock.Now,
		// Long intervals: tests drive the background work directly.
		AbortTimedOutInterval: time.Hour,
	}
	if e.tweak != nil {
		e.tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.c = c
}

func (e *env) close() {
	if e.c != nil {
		if err := e.c.Close(); err != nil {
			e.t.Error(err)
		}
		e.c = nil
	}
	for _, l := range e.logs {
		l.Close()
	}
	e.logs = nil
}

func (e *env) restart() {
	e.t.Helper()
	e.close()
	e.open()
}

func do[R kmsg.Response](t *testing.T, c *Coordinator, ctx context.Context, req kmsg.Request) R {
	t.Helper()
	resp, err := c.Handle(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

func (e *env) init(version int16, id string, timeoutMs int32, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	e.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = version
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = timeoutMs
	req.ProducerID, req.ProducerEpoch = pid, epoch
	return do[*kmsg.InitProducerIDResponse](e.t, e.c, context.Background(), req)
}

// mustInit initializes id and returns its producer id and epoch.
func (e *env) mustInit(id string) (int64, int16) {
	e.t.Helper()
	r := e.init(4, id, 60_000, -1, -1)
	if r.ErrorCode != 0 {
		e.t.Fatalf("InitProducerId(%s): %v", id, kerr.ErrorForCode(r.ErrorCode))
	}
	return r.ProducerID, r.ProducerEpoch
}

func (e *env) add(ctx context.Context, version int16, id string, pid int64, epoch int16, topic string, parts ...int32) map[int32]int16 {
	e.t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: parts}}
	resp := do[*kmsg.AddPartitionsToTxnResponse](e.t, e.c, ctx, req)
	out := map[int32]int16{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out[rp.Partition] = rp.ErrorCode
		}
	}
	return out
}

func (e *env) mustAdd(id string, pid int64, epoch int16, topic string, parts ...int32) {
	e.t.Helper()
	for p, code := range e.add(context.Background(), 3, id, pid, epoch, topic, parts...) {
		if code != 0 {
			e.t.Fatalf("AddPartitionsToTxn %s-%d: %v", topic, p, kerr.ErrorForCode(code))
		}
	}
}

func (e *env) end(ctx context.Context, version int16, id string, pid int64, epoch int16, commit bool) int16 {
	e.t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	return do[*kmsg.EndTxnResponse](e.t, e.c, ctx, req).ErrorCode
}

func (e *env) describe(id string) kmsg.DescribeTransactionsResponseTransactionState {
	e.t.Helper()
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{id}
	resp := do[*kmsg.DescribeTransactionsResponse](e.t, e.c, context.Background(), req)
	if len(resp.TransactionStates) != 1 {
		e.t.Fatalf("DescribeTransactions: %d states", len(resp.TransactionStates))
	}
	return resp.TransactionStates[0]
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	w := int16(0)
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(w))
	}
}

func wantState(t *testing.T, e *env, id, state string) kmsg.DescribeTransactionsResponseTransactionState {
	t.Helper()
	st := e.describe(id)
	if st.ErrorCode != 0 || st.State != state {
		t.Fatalf("%s: state %q (%v), want %q", id, st.State, kerr.ErrorForCode(st.ErrorCode), state)
	}
	return st
}

func TestInitProducerID(t *testing.T) {
	e := newEnv(t, 3)
	pid, epoch := e.mustInit("a")
	if pid != 1001 || epoch != 0 {
		t.Fatalf("first init: pid %d epoch %d", pid, epoch)
	}
	pid2, epoch2 := e.mustInit("a")
	if pid2 != pid || epoch2 != 1 {
		t.Fatalf("second init: pid %d epoch %d, want %d 1", pid2, epoch2, pid)
	}
	// Another id gets another producer id.
	if p, _ := e.mustInit("b"); p == pid {
		t.Fatal("two transactional ids share a producer id")
	}

	wantCode(t, "timeout over max", e.init(4, "a", int32((16*time.Minute).Milliseconds()), -1, -1).ErrorCode, kerr.InvalidTransactionTimeout)
	wantCode(t, "zero timeout", e.init(4, "a", 0, -1, -1).ErrorCode, kerr.InvalidTransactionTimeout)
	wantCode(t, "empty id", e.init(4, "", 1000, -1, -1).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "pid without epoch", e.init(4, "a", 1000, pid, -1).ErrorCode, kerr.InvalidRequest)

	// KIP-360: the current pid and epoch bump; a wrong pid is fenced
	// (INVALID_PRODUCER_EPOCH before v4); a retry with the previous epoch
	// gets the same answer.
	r := e.init(4, "a", 60_000, pid, 1)
	if r.ErrorCode != 0 || r.ProducerID != pid || r.ProducerEpoch != 2 {
		t.Fatalf("KIP-360 bump: %+v", r)
	}
	r = e.init(4, "a", 60_000, pid, 1)
	if r.ErrorCode != 0 || r.ProducerEpoch != 2 {
		t.Fatalf("KIP-360 retry: %+v", r)
	}
	wantCode(t, "wrong pid v4", e.init(4, "a", 60_000, pid+50, 0).ErrorCode, kerr.ProducerFenced)
	wantCode(t, "wrong pid v3", e.init(3, "a", 60_000, pid+50, 0).ErrorCode, kerr.InvalidProducerEpoch)
	wantCode(t, "stale epoch", e.init(4, "a", 60_000, pid, 0).ErrorCode, kerr.ProducerFenced)

	// Idempotent producers get a fresh producer id every time.
	req := kmsg.NewPtrInitProducerIDRequest()
	resp := do[*kmsg.InitProducerIDResponse](t, e.c, context.Background(), req)
	if resp.ErrorCode != 0 || resp.ProducerID <= pid2 || resp.ProducerEpoch != 0 {
		t.Fatalf("idempotent init: %+v", resp)
	}

	// The state survives a restart.
	e.restart()
	st := wantState(t, e, "a", "Empty")
	if st.ProducerID != pid || st.ProducerEpoch != 2 || st.TimeoutMillis != 60_000 {
		t.Fatalf("after restart: %+v", st)
	}
	if _, ep := e.mustInit("a"); ep != 3 {
		t.Fatalf("after restart epoch %d, want 3", ep)
	}
}

// writeState appends a raw state record, as an earlier broker would have.
func writeState(t *testing.T, l *storage.Log, now time.Time, id string, d *txnData) {
	t.Helper()
	r := encodeRecord(id, d)
	r.Timestamp = now.UnixMilli()
	if _, err := l.Append(recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []recordbatch.Record{r})); err != nil {
		t.Fatal(err)
	}
}

func TestEpochExhaustionRotatesProducerID(t *testing.T) {
	e := newEnv(t, 1)
	e.close()
	e.openLogs()
	writeState(t, e.logs[0], e.clock.Now(), "x", &txnData{pid: 77, epoch: 32766, timeoutMs: 1000,
		state: kmsg.TransactionStateCompleteCommit, parts: map[topicPartition]struct{}{}, startMs: -1})
	for _, l := range e.logs {
		l.Close()
	}
	e.open()
	r := e.init(4, "x", 1000, 77, 32766)
	if r.ErrorCode != 0 || r.ProducerID == 77 || r.ProducerEpoch != 0 {
		t.Fatalf("rotation: %+v", r)
	}
	// A retry after the rotation (old pid, exhausted epoch) gets the same.
	r2 := e.init(4, "x", 1000, 77, 32766)
	if r2.ErrorCode != 0 || r2.ProducerID != r.ProducerID || r2.ProducerEpoch != 0 {
		t.Fatalf("retry after rotation: %+v, want %+v", r2, r)
	}
}

func TestCommitAndAbortWriteMarkersToExactlyTheTransactionPartitions(t *testing.T) {
	e := newEnv(t, 3)
	pid, epoch := e.mustInit("t1")
	e.mustAdd("t1", pid, epoch, "orders", 0, 2)
	e.mustAdd("t1", pid, epoch, "audit", 1)
	e.mustAdd("t1", pid, epoch, "orders", 2) // already in: no change
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "t1", pid, epoch, "grp"
	wantCode(t, "AddOffsetsToTxn", do[*kmsg.AddOffsetsToTxnResponse](t, e.c, context.Background(), ao).ErrorCode, nil)
	st := wantState(t, e, "t1", "Ongoing")
	if st.StartTimestamp != e.clock.Now().UnixMilli() || len(st.Topics) != 3 {
		t.Fatalf("ongoing: %+v", st)
	}
	if m := e.markers.take(); len(m) != 0 {
		t.Fatalf("markers before EndTxn: %v", m)
	}

	wantCode(t, "EndTxn commit", e.end(context.Background(), 3, "t1", pid, epoch, true), nil)
	want := []marker{
		{"__consumer_offsets", 0, pid, epoch, true}, // len("grp") % 3
		{"audit", 1, pid, epoch, true},
		{"orders", 0, pid, epoch, true},
		{"orders", 2, pid, epoch, true},
	}
	if got := e.markers.take(); !slices.Equal(got, want) {
		t.Fatalf("commit markers:\n got %v\nwant %v", got, want)
	}
	wantState(t, e, "t1", "CompleteCommit")
	// A retried commit succeeds without new markers; an abort is invalid.
	wantCode(t, "retried commit", e.end(context.Background(), 3, "t1", pid, epoch, true), nil)
	wantCode(t, "abort after commit", e.end(context.Background(), 3, "t1", pid, epoch, false), kerr.InvalidTxnState)
	if m := e.markers.take(); len(m) != 0 {
		t.Fatalf("markers from retries: %v", m)
	}

	// The next transaction of the same producer starts afresh.
	e.mustAdd("t1", pid, epoch, "audit", 3)
	wantCode(t, "EndTxn abort", e.end(context.Background(), 3, "t1", pid, epoch, false), nil)
	if got, want := e.markers.take(), []marker{{"audit", 3, pid, epoch, false}}; !slices.Equal(got, want) {
		t.Fatalf("abort markers: got %v want %v", got, want)
	}
	wantState(t, e, "t1", "CompleteAbort")
	wantCode(t, "commit after abort", e.end(context.Background(), 3, "t1", pid, epoch, true), kerr.InvalidTxnState)
	// EndTxn with no transaction.
	pid2, epoch2 := e.mustInit("t2")
	wantCode(t, "EndTxn on Empty", e.end(context.Background(), 3, "t2", pid2, epoch2, true), kerr.InvalidTxnState)
	if m := e.markers.take(); len(m) != 0 {
		t.Fatalf("markers from invalid EndTxn: %v", m)
	}
}

func TestRequestValidation(t *testing.T) {
	e := newEnv(t, 2)
	pid, epoch := e.mustInit("v")
	ctx := context.Background()
	for _, p := range e.add(ctx, 3, "nope", pid, epoch, "orders", 0) {
		wantCode(t, "unknown id", p, kerr.InvalidProducerIDMapping)
	}
	for _, p := range e.add(ctx, 3, "v", pid+1, epoch, "orders", 0) {
		wantCode(t, "wrong pid", p, kerr.InvalidProducerIDMapping)
	}
	for _, p := range e.add(ctx, 3, "v", pid, epoch+1, "orders", 0) {
		wantCode(t, "wrong epoch v3", p, kerr.ProducerFenced)
	}
	for _, p := range e.add(ctx, 1, "v", pid, epoch+1, "orders", 0) {
		wantCode(t, "wrong epoch v1", p, kerr.InvalidProducerEpoch)
	}
	for _, p := range e.add(ctx, 3, "", pid, epoch, "orders", 0) {
		wantCode(t, "empty id", p, kerr.InvalidRequest)
	}
	codes := e.add(ctx, 3, "v", pid, epoch, "orders", 0, 9)
	wantCode(t, "existing partition next to a missing one", codes[0], kerr.OperationNotAttempted)
	wantCode(t, "missing partition", codes[9], kerr.UnknownTopicOrPartition)
	wantState(t, e, "v", "Empty")

	wantCode(t, "EndTxn unknown id", e.end(ctx, 3, "nope", pid, epoch, true), kerr.InvalidProducerIDMapping)
	wantCode(t, "EndTxn wrong pid", e.end(ctx, 3, "v", pid+1, epoch, true), kerr.InvalidProducerIDMapping)
	wantCode(t, "EndTxn old epoch v3", e.end(ctx, 3, "v", pid, epoch+1, true), kerr.ProducerFenced)
	wantCode(t, "EndTxn old epoch v1", e.end(ctx, 1, "v", pid, epoch+1, true), kerr.InvalidProducerEpoch)

	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.Version = 3
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "v", pid, epoch+1, "g"
	wantCode(t, "AddOffsets old epoch", do[*kmsg.AddOffsetsToTxnResponse](t, e.c, ctx, ao).ErrorCode, kerr.ProducerFenced)
	ao.Version = 1
	wantCode(t, "AddOffsets old epoch v1", do[*kmsg.AddOffsetsToTxnResponse](t, e.c, ctx, ao).ErrorCode, kerr.InvalidProducerEpoch)

	// v4: batched, with a verify-only transaction.
	e.mustAdd("v", pid, epoch, "orders", 1)
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 4
	req.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{
		{TransactionalID: "v", ProducerID: pid, ProducerEpoch: epoch, VerifyOnly: true,
			Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "orders", Partitions: []int32{1, 2}}}},
		{TransactionalID: "nope", ProducerID: 1, ProducerEpoch: 0,
			Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "orders", Partitions: []int32{1}}}},
	}
	resp := do[*kmsg.AddPartitionsToTxnResponse](t, e.c, ctx, req)
	if len(resp.Transactions) != 2 {
		t.Fatalf("v4: %d transactions", len(resp.Transactions))
	}
	ps := resp.Transactions[0].Topics[0].Partitions
	wantCode(t, "verify: in txn", ps[0].ErrorCode, nil)
	wantCode(t, "verify: not in txn", ps[1].ErrorCode, kerr.InvalidTxnState)
	wantCode(t, "v4 unknown id", resp.Transactions[1].Topics[0].Partitions[0].ErrorCode, kerr.InvalidProducerIDMapping)
	if st := wantState(t, e, "v", "Ongoing"); len(st.Topics) != 1 || !slices.Equal(st.Topics[0].Partitions, []int32{1}) {
		t.Fatalf("verify-only changed the transaction: %+v", st.Topics)
	}

	// Unsupported versions and keys are errors, not responses.
	bad := kmsg.NewPtrEndTxnRequest()
	bad.Version = 5
	if _, err := e.c.Handle(ctx, bad); !errors.Is(err, kerr.UnsupportedVersion) {
		t.Fatalf("EndTxn v5: %v", err)
	}
	if _, err := e.c.Handle(ctx, kmsg.NewPtrMetadataRequest()); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("Metadata: %v", err)
	}
	if lo, hi, ok := e.c.Versions(26); !ok || lo != 0 || hi != 3 {
		t.Fatalf("Versions(EndTxn) = %d %d %v", lo, hi, ok)
	}
}

func TestInitProducerIDFencesAndAbortsOngoing(t *testing.T) {
	e := newEnv(t, 2)
	pid, epoch := e.mustInit("f")
	e.mustAdd("f", pid, epoch, "orders", 0, 1)

	wantCode(t, "fencing init", e.init(4, "f", 60_000, -1, -1).ErrorCode, kerr.ConcurrentTransactions)
	want := []marker{{"orders", 0, pid, epoch + 1, false}, {"orders", 1, pid, epoch + 1, false}}
	if got := e.markers.take(); !slices.Equal(got, want) {
		t.Fatalf("fence markers: got %v want %v", got, want)
	}
	wantState(t, e, "f", "CompleteAbort")
	p2, e2 := e.mustInit("f")
	if p2 != pid || e2 != epoch+2 {
		t.Fatalf("after fence: pid %d epoch %d, want %d %d", p2, e2, pid, epoch+2)
	}
	// The zombie can neither add partitions nor end a transaction.
	for _, code := range e.add(context.Background(), 3, "f", pid, epoch, "orders", 0) {
		wantCode(t, "zombie add", code, kerr.ProducerFenced)
	}
	wantCode(t, "zombie commit", e.end(context.Background(), 3, "f", pid, epoch, true), kerr.ProducerFenced)
}

func TestCrashBetweenPrepareAndMarkers(t *testing.T) {
	e := newEnv(t, 3)
	pid, epoch := e.mustInit("c")
	e.mustAdd("c", pid, epoch, "orders", 0, 1)

	// Markers cannot be written (the broker dies while writing them):
	// the decision is durable, so EndTxn still succeeds.
	e.markers.setFail(errors.New("disk on fire"))
	wantCode(t, "EndTxn", e.end(context.Background(), 3, "c", pid, epoch, true), nil)
	wantState(t, e, "c", "PrepareCommit")
	// While completing, the producer gets CONCURRENT_TRANSACTIONS.
	for _, code := range e.add(context.Background(), 3, "c", pid, epoch, "orders", 2) {
		wantCode(t, "add while prepared", code, kerr.ConcurrentTransactions)
	}
	wantCode(t, "retried commit while prepared", e.end(context.Background(), 3, "c", pid, epoch, true), kerr.ConcurrentTransactions)
	wantCode(t, "abort while prepared", e.end(context.Background(), 3, "c", pid, epoch, false), kerr.InvalidTxnState)
	wantCode(t, "init while prepared", e.init(4, "c", 1000, -1, -1).ErrorCode, kerr.ConcurrentTransactions)

	// Restart: New re-sends the markers and completes the commit.
	e.close()
	e.markers.setFail(nil)
	e.open()
	want := []marker{{"orders", 0, pid, epoch, true}, {"orders", 1, pid, epoch, true}}
	if got := e.markers.take(); !slices.Equal(got, want) {
		t.Fatalf("recovery markers: got %v want %v", got, want)
	}
	wantState(t, e, "c", "CompleteCommit")
	// CompleteCommit is durable: another restart sends nothing.
	e.restart()
	if got := e.markers.take(); len(got) != 0 {
		t.Fatalf("markers after second restart: %v", got)
	}
	wantState(t, e, "c", "CompleteCommit")
	wantCode(t, "retried commit after recovery", e.end(context.Background(), 3, "c", pid, epoch, true), nil)
}

func TestCrashRightAfterPrepareRecord(t *testing.T) {
	// The log ends with PrepareAbort, as if the broker died right after
	// writing it.
	e := newEnv(t, 2)
	e.close()
	e.openLogs()
	id := "crashy"
	d := &txnData{pid: 5, epoch: 3, timeoutMs: 1000, state: kmsg.TransactionStatePrepareAbort, startMs: 1, updateMs: 2,
		parts: map[topicPartition]struct{}{{"a", 0}: {}, {"b", 4}: {}}}
	p := (&Coordinator{cfg: Config{Logs: e.logs}}).PartitionFor(id)
	writeState(t, e.logs[p], e.clock.Now(), id, d)
	for _, l := range e.logs {
		l.Close()
	}
	e.open()
	want := []marker{{"a", 0, 5, 3, false}, {"b", 4, 5, 3, false}}
	if got := e.markers.take(); !slices.Equal(got, want) {
		t.Fatalf("recovery markers: got %v want %v", got, want)
	}
	wantState(t, e, id, "CompleteAbort")
}

func TestMarkerRetryInBackground(t *testing.T) {
	e := newEnv(t, 1)
	e.close()
	e.tweak = func(c *Config) { c.AbortTimedOutInterval = 5 * time.Millisecond }
	e.open()
	pid, epoch := e.mustInit("r")
	e.mustAdd("r", pid, epoch, "orders", 0)
	e.markers.setFail(errors.New("transient"))
	wantCode(t, "EndTxn", e.end(context.Background(), 3, "r", pid, epoch, false), nil)
	e.markers.setFail(nil)
	deadline := time.Now().Add(10 * time.Second)
	for e.describe("r").State != "CompleteAbort" {
		if time.Now().After(deadline) {
			t.Fatal("prepared transaction never completed in the background")
		}
		time.Sleep(time.Millisecond)
	}
	if got, want := e.markers.take(), []marker{{"orders", 0, pid, epoch, false}}; !slices.Equal(got, want) {
		t.Fatalf("markers: got %v want %v", got, want)
	}
}

func TestMarkerForDeletedPartitionIsSkipped(t *testing.T) {
	e := newEnv(t, 1)
	pid, epoch := e.mustInit("d")
	e.mustAdd("d", pid, epoch, "gone", 0)
	e.markers.setFail(fmt.Errorf("topic deleted: %w", kerr.UnknownTopicOrPartition))
	wantCode(t, "EndTxn", e.end(context.Background(), 3, "d", pid, epoch, true), nil)
	wantState(t, e, "d", "CompleteCommit")
}

func TestTimeoutAbortsAndFences(t *testing.T) {
	e := newEnv(t, 2)
	r := e.init(4, "slow", 1000, -1, -1)
	pid, epoch := r.ProducerID, r.ProducerEpoch
	e.mustAdd("slow", pid, epoch, "orders", 3)

	e.clock.Advance(1000 * time.Millisecond) // not yet past the timeout
	e.c.abortTimedOut()
	wantState(t, e, "slow", "Ongoing")

	e.clock.Advance(time.Millisecond)
	e.c.abortTimedOut()
	if got, want := e.markers.take(), []marker{{"orders", 3, pid, epoch + 1, false}}; !slices.Equal(got, want) {
		t.Fatalf("timeout markers: got %v want %v", got, want)
	}
	st := wantState(t, e, "slow", "CompleteAbort")
	if st.ProducerEpoch != epoch+1 {
		t.Fatalf("epoch after timeout %d, want %d", st.ProducerEpoch, epoch+1)
	}
	// The late producer is fenced.
	wantCode(t, "late commit", e.end(context.Background(), 3, "slow", pid, epoch, true), kerr.ProducerFenced)
	for _, code := range e.add(context.Background(), 3, "slow", pid, epoch, "orders", 3) {
		wantCode(t, "late add", code, kerr.ProducerFenced)
	}
	// Its new session works.
	if _, ep := e.mustInit("slow"); ep != epoch+2 {
		t.Fatalf("new session epoch %d, want %d", ep, epoch+2)
	}
}

func TestTimeoutAbortInBackground(t *testing.T) {
	e := newEnv(t, 1)
	e.close()
	e.tweak = func(c *Config) { c.AbortTimedOutInterval = 5 * time.Millisecond }
	e.open()
	r := e.init(4, "bg", 1000, -1, -1)
	e.mustAdd("bg", r.ProducerID, r.ProducerEpoch, "orders", 0)
	e.clock.Advance(2 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for e.describe("bg").State != "CompleteAbort" {
		if time.Now().After(deadline) {
			t.Fatal("timed-out transaction never aborted")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDelayedEndTxnCannotEndALaterTransaction covers the anomaly Jepsen
// found: an EndTxn delayed in flight lands on a later transaction of the
// same producer.
func TestDelayedEndTxnCannotEndALaterTransaction(t *testing.T) {
	t.Run("older epoch", func(t *testing.T) {
		e := newEnv(t, 1)
		pid, epoch := e.mustInit("j")
		e.mustAdd("j", pid, epoch, "orders", 0)
		// The producer restarts (its EndTxn(commit) still in flight),
		// which aborts txn 1, and starts txn 2.
		wantCode(t, "fence", e.init(4, "j", 60_000, -1, -1).ErrorCode, kerr.ConcurrentTransactions)
		pid2, epoch2 := e.mustInit("j")
		e.mustAdd("j", pid2, epoch2, "orders", 1)
		e.markers.take()
		// The delayed EndTxn arrives.
		wantCode(t, "delayed EndTxn v3", e.end(context.Background(), 3, "j", pid, epoch, true), kerr.ProducerFenced)
		wantCode(t, "delayed EndTxn v1", e.end(context.Background(), 1, "j", pid, epoch, true), kerr.InvalidProducerEpoch)
		wantState(t, e, "j", "Ongoing")
		if m := e.markers.take(); len(m) != 0 {
			t.Fatalf("delayed EndTxn wrote markers: %v", m)
		}
	})
	t.Run("same epoch", func(t *testing.T) {
		e := newEnv(t, 1)
		pid, epoch := e.mustInit("j")
		e.mustAdd("j", pid, epoch, "orders", 0)
		// EndTxn #1 is read from the wire, then stalls; the client times
		// out and retries on a new connection, which succeeds.
		delayed := e.c.Arrived(context.Background())
		wantCode(t, "retried EndTxn", e.end(e.c.Arrived(context.Background()), 3, "j", pid, epoch, true), nil)
		e.markers.take()
		// Transaction 2 begins.
		e.mustAdd("j", pid, epoch, "orders", 1)
		// The stalled EndTxn is finally processed.
		wantCode(t, "delayed EndTxn", e.end(delayed, 3, "j", pid, epoch, true), kerr.InvalidTxnState)
		wantState(t, e, "j", "Ongoing")
		if m := e.markers.take(); len(m) != 0 {
			t.Fatalf("delayed EndTxn wrote markers: %v", m)
		}
		// The real EndTxn of transaction 2 works.
		wantCode(t, "EndTxn 2", e.end(e.c.Arrived(context.Background()), 3, "j", pid, epoch, false), nil)
		if got, want := e.markers.take(), []marker{{"orders", 1, pid, epoch, false}}; !slices.Equal(got, want) {
			t.Fatalf("markers: got %v want %v", got, want)
		}
	})
	t.Run("closed connection", func(t *testing.T) {
		e := newEnv(t, 1)
		pid, epoch := e.mustInit("j")
		e.mustAdd("j", pid, epoch, "orders", 0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "j", pid, epoch, true
		if _, err := e.c.Handle(ctx, req); err == nil {
			t.Fatal("EndTxn on a closed connection was handled")
		}
		wantState(t, e, "j", "Ongoing")
	})
}

func TestDescribeAndListTransactions(t *testing.T) {
	e := newEnv(t, 3)
	p1, e1 := e.mustInit("one")
	e.mustAdd("one", p1, e1, "orders", 1, 0)
	e.mustAdd("one", p1, e1, "audit", 2)
	p2, _ := e.mustInit("two")

	st := wantState(t, e, "one", "Ongoing")
	if st.ProducerID != p1 || st.ProducerEpoch != e1 || st.TimeoutMillis != 60_000 || st.StartTimestamp != e.clock.Now().UnixMilli() {
		t.Fatalf("describe: %+v", st)
	}
	wantTopics := []kmsg.DescribeTransactionsResponseTransactionStateTopic{{Topic: "audit", Partitions: []int32{2}}, {Topic: "orders", Partitions: []int32{0, 1}}}
	if len(st.Topics) != 2 || st.Topics[0].Topic != "audit" || !slices.Equal(st.Topics[1].Partitions, wantTopics[1].Partitions) {
		t.Fatalf("describe topics: %+v", st.Topics)
	}
	if st := e.describe("unknown"); st.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("describe unknown: %+v", st)
	}

	list := func(version int16, states []string, pids []int64, duration int64) ([]string, []string) {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version, req.StateFilters, req.ProducerIDFilters, req.DurationFilterMillis = version, states, pids, duration
		resp := do[*kmsg.ListTransactionsResponse](t, e.c, context.Background(), req)
		var out []string
		for _, s := range resp.TransactionStates {
			out = append(out, s.TransactionalID+":"+s.TransactionState)
		}
		return out, resp.UnknownStateFilters
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s: got %v want %v", what, got, want)
		}
	}
	got, _ := list(0, nil, nil, -1)
	check("all", got, []string{"one:Ongoing", "two:Empty"})
	got, _ = list(0, []string{"Ongoing"}, nil, -1)
	check("ongoing", got, []string{"one:Ongoing"})
	got, _ = list(0, nil, []int64{p2}, -1)
	check("by pid", got, []string{"two:Empty"})
	got, unknown := list(0, []string{"Bogus", "Empty"}, nil, -1)
	check("unknown filter", got, []string{"two:Empty"})
	check("unknown filters", unknown, []string{"Bogus"})
	got, _ = list(0, []string{"Bogus"}, nil, -1)
	check("only unknown filters", got, nil)
	e.clock.Advance(5 * time.Second)
	got, _ = list(1, []string{"Ongoing"}, nil, 10_000)
	check("shorter than duration", got, nil)
	got, _ = list(1, []string{"Ongoing"}, nil, 4_000)
	check("longer than duration", got, []string{"one:Ongoing"})
	got, _ = list(0, []string{"Ongoing"}, nil, 10_000) // v0 ignores the duration
	check("v0 duration", got, []string{"one:Ongoing"})
}

func TestTransactionalIDExpiration(t *testing.T) {
	e := newEnv(t, 2)
	pid, epoch := e.mustInit("old")
	e.mustAdd("old", pid, epoch, "orders", 0)
	wantCode(t, "commit", e.end(context.Background(), 3, "old", pid, epoch, true), nil)
	p2, e2 := e.mustInit("busy")
	e.mustAdd("busy", p2, e2, "orders", 1)

	e.clock.Advance(DefaultTransactionalIDExpiration - time.Millisecond)
	e.c.expireIDs()
	wantState(t, e, "old", "CompleteCommit")
	e.clock.Advance(time.Millisecond)
	e.c.expireIDs()
	if st := e.describe("old"); st.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("expired id still described: %+v", st)
	}
	// An ongoing transaction never expires (it times out instead).
	wantState(t, e, "busy", "Ongoing")
	// The tombstone survives a restart; the id starts over with a new pid.
	e.restart()
	if st := e.describe("old"); st.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("expired id back after restart: %+v", st)
	}
	if p, ep := e.mustInit("old"); p == pid || ep != 0 {
		t.Fatalf("reused expired id: pid %d epoch %d", p, ep)
	}
}

func TestReplaySkipsBadRecords(t *testing.T) {
	e := newEnv(t, 1)
	pid, _ := e.mustInit("good")
	e.close()
	e.openLogs()
	for _, r := range []recordbatch.Record{
		{Key: []byte{0, 9, 'x'}, Value: []byte{1}},                         // unknown key version
		{Key: []byte{0, 0, 0, 3, 'b', 'a', 'd'}, Value: []byte{0, 0, 1}},   // truncated value
		{Key: []byte{0, 0, 0, 4, 'g', 'o', 'o', 'd'}, Value: []byte{7, 7}}, // unknown value version
	} {
		r.Timestamp = e.clock.Now().UnixMilli()
		if _, err := e.logs[0].Append(recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []recordbatch.Record{r})); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range e.logs {
		l.Close()
	}
	e.open()
	if st := wantState(t, e, "good", "Empty"); st.ProducerID != pid {
		t.Fatalf("good id: %+v", st)
	}
	if st := e.describe("bad"); st.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("bad record loaded: %+v", st)
	}
}

func TestPartitionFor(t *testing.T) {
	c := &Coordinator{cfg: Config{Logs: make([]*storage.Log, 50)}}
	// Known Java String.hashCode values: "hello" is 99162322 and
	// "polygenelubricants" is Integer.MIN_VALUE, which Kafka's abs maps to 0.
	for id, want := range map[string]int32{"": 0, "a": 97 % 50, "hello": 99162322 % 50, "polygenelubricants": 0} {
		if got := c.PartitionFor(id); got != want {
			t.Errorf("PartitionFor(%q) = %d, want %d", id, got, want)
		}
	}
}

func TestConcurrentTransactions(t *testing.T) {
	e := newEnv(t, 3)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w%d", w)
			pid, epoch := e.mustInit(id)
			for i := range 20 {
				e.mustAdd(id, pid, epoch, "orders", int32(i%4))
				if code := e.end(context.Background(), 3, id, pid, epoch, i%2 == 0); code != 0 {
					errs <- fmt.Errorf("%s: EndTxn: %v", id, kerr.ErrorForCode(code))
					return
				}
			}
		}()
	}
	// Concurrent readers.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				do[*kmsg.ListTransactionsResponse](t, e.c, context.Background(), kmsg.NewPtrListTransactionsRequest())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(e.markers.take()); n != 8*20 {
		t.Fatalf("%d markers, want %d", n, 8*20)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	e := newEnv(t, 1)
	c := e.c
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Handle(context.Background(), kmsg.NewPtrListTransactionsRequest()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handle after Close: %v", err)
	}
}

func TestVerifyPartition(t *testing.T) {
	e := newEnv(t, 1)
	pid, epoch := e.mustInit("p")
	check := func(what string, err error, want *kerr.Error) {
		t.Helper()
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}
	check("no transaction", e.c.VerifyPartition("p", pid, epoch, "orders", 0), kerr.InvalidTxnState)
	e.mustAdd("p", pid, epoch, "orders", 0)
	check("added", e.c.VerifyPartition("p", pid, epoch, "orders", 0), nil)
	check("not added", e.c.VerifyPartition("p", pid, epoch, "orders", 1), kerr.InvalidTxnState)
	check("old epoch", e.c.VerifyPartition("p", pid, epoch-1, "orders", 0), kerr.ProducerFenced)
	check("other pid", e.c.VerifyPartition("p", pid+1, epoch, "orders", 0), kerr.InvalidProducerIDMapping)
	check("unknown id", e.c.VerifyPartition("q", pid, epoch, "orders", 0), kerr.InvalidProducerIDMapping)
	wantCode(t, "commit", e.end(context.Background(), 3, "p", pid, epoch, true), nil)
	check("after commit", e.c.VerifyPartition("p", pid, epoch, "orders", 0), kerr.InvalidTxnState)
}
