package crash

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	txIn      = "txin"
	txOut     = "txout"
	txGroup   = "txg"
	txParts   = 3
	txWorkers = 3
)

func txID(w int) string { return fmt.Sprintf("eddy-crash-tx-%d", w) }

func inValue(p int32, i int64) string { return fmt.Sprintf("in-%d-%06d", p, i) }

// parseIn splits "in-P-IIIIII".
func parseIn(v string) (int32, int64, bool) {
	f := strings.Split(v, "-")
	if len(f) != 3 || f[0] != "in" {
		return 0, 0, false
	}
	p, err1 := strconv.ParseInt(f[1], 10, 32)
	i, err2 := strconv.ParseInt(f[2], 10, 64)
	return int32(p), i, err1 == nil && err2 == nil
}

// Attempt outcomes as the client saw them.
const (
	outcomeOpen      = iota // End not returned (killed mid-transaction)
	outcomeCommitted        // End returned committed, nil
	outcomeAborted          // End returned not committed, nil
	outcomeUnknown          // End returned an error
)

// attempt is one transaction a worker began; its output records carry its id.
type attempt struct {
	produced int
	outcome  int
}

// ledger is the client side's record of every transaction attempt.
type ledger struct {
	mu        sync.Mutex
	attempts  map[string]*attempt
	committed int // attempts End reported committed
}

func (l *ledger) begin(id string) *attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := &attempt{}
	l.attempts[id] = a
	return a
}

func (l *ledger) end(a *attempt, produced, outcome int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a.produced, a.outcome = produced, outcome
	if outcome == outcomeCommitted {
		l.committed++
	}
}

func (l *ledger) commits() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.committed
}

// workerSet is the consume-transform-produce workers of one broker life.
type workerSet struct {
	hard   context.CancelFunc // abandon everything (the broker was killed)
	stop   context.CancelFunc // finish the current transaction, then exit
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []string
	closed []chan struct{}
}

func (ws *workerSet) logErr(format string, args ...any) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(ws.errs) < 20 {
		ws.errs = append(ws.errs, fmt.Sprintf(format, args...))
	}
}

// startWorkers starts txWorkers GroupTransactSession workers against addr.
// Each transaction reads at most 10 records and writes, for each input
// record, one output record to the same partition whose value is the input
// value and the attempt id; it then stays open until the worker's 15 ms
// pacing tick before it ends.
func startWorkers(t *testing.T, addr string, round int, led *ledger) *workerSet {
	t.Helper()
	hardCtx, hard := context.WithCancel(context.Background())
	stopCtx, stop := context.WithCancel(hardCtx)
	ws := &workerSet{hard: hard, stop: stop}
	for w := 0; w < txWorkers; w++ {
		sess, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(addr),
			kgo.TransactionalID(txID(w)),
			kgo.TransactionTimeout(30*time.Second),
			kgo.ConsumerGroup(txGroup),
			kgo.ConsumeTopics(txIn),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(),
			kgo.SessionTimeout(6*time.Second),
			kgo.RebalanceTimeout(6*time.Second),
			kgo.HeartbeatInterval(500*time.Millisecond),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.DefaultProduceTopic(txOut),
			kgo.RetryTimeout(20*time.Second),
			kgo.RecordDeliveryTimeout(20*time.Second),
		)
		if err != nil {
			t.Fatalf("NewGroupTransactSession: %v", err)
		}
		closed := make(chan struct{})
		ws.closed = append(ws.closed, closed)
		ws.wg.Add(1)
		go func() {
			defer ws.wg.Done()
			defer func() {
				// Closing can block on a dead broker (leaving the group);
				// the owner waits for it with a deadline.
				go func() { sess.Close(); close(closed) }()
			}()
			// Pace the transactions so the input lasts over several kills;
			// the wait is inside the transaction, after its records are in
			// the log, so most kills land in an open transaction.
			pace := time.NewTicker(15 * time.Millisecond)
			defer pace.Stop()
			for n := 0; ; n++ {
				fs := sess.PollRecords(stopCtx, 10)
				if stopCtx.Err() != nil || fs.IsClientClosed() {
					return
				}
				fs.EachError(func(tp string, p int32, err error) {
					ws.logErr("worker %d poll %s/%d: %v", w, tp, p, err)
				})
				if fs.NumRecords() == 0 {
					continue
				}
				if err := sess.Begin(); err != nil {
					ws.logErr("worker %d begin: %v", w, err)
					return
				}
				id := fmt.Sprintf("r%dw%dt%d", round, w, n)
				a := led.begin(id)
				var (
					pmu     sync.Mutex
					perr    error
					records int
				)
				fs.EachRecord(func(r *kgo.Record) {
					records++
					out := &kgo.Record{Partition: r.Partition, Key: r.Value, Value: []byte(string(r.Value) + "|" + id)}
					sess.Produce(hardCtx, out, func(_ *kgo.Record, err error) {
						if err != nil {
							pmu.Lock()
							perr = err
							pmu.Unlock()
						}
					})
				})
				try := kgo.TryCommit
				endCtx, cancel := context.WithTimeout(hardCtx, 30*time.Second)
				if err := sess.Client().Flush(endCtx); err != nil {
					try = kgo.TryAbort
				}
				select {
				case <-pace.C:
				case <-hardCtx.Done():
				}
				pmu.Lock()
				if perr != nil {
					try = kgo.TryAbort
				}
				pmu.Unlock()
				committed, err := sess.End(endCtx, try)
				cancel()
				switch {
				case hardCtx.Err() != nil && err != nil:
					led.end(a, records, outcomeOpen)
					return
				case err != nil:
					led.end(a, records, outcomeUnknown)
					ws.logErr("worker %d end %s: %v", w, id, err)
				case committed:
					led.end(a, records, outcomeCommitted)
				default:
					led.end(a, records, outcomeAborted)
				}
			}
		}()
	}
	return ws
}

// finish stops the workers (gracefully or not) and waits for their sessions
// to close.
func (ws *workerSet) finish(t *testing.T, graceful bool) {
	t.Helper()
	if graceful {
		ws.stop()
	} else {
		ws.hard()
	}
	done := make(chan struct{})
	go func() { ws.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("workers did not exit within 60s")
	}
	ws.hard()
	for i, c := range ws.closed {
		select {
		case <-c:
		case <-time.After(60 * time.Second):
			t.Fatalf("worker %d session did not close within 60s", i)
		}
	}
	for _, e := range ws.errs {
		t.Logf("worker error (tolerated): %s", e)
	}
}

// TestKill9TransactionalWorkload runs a consume-transform-produce pipeline
// of franz-go GroupTransactSessions over a pre-filled input topic while the
// broker is SIGKILLed at random moments, restarts the broker and the
// workers each time, and after every restart checks: every transaction is
// wholly committed or wholly aborted, the read_committed output holds each
// input at most once and in input order, the group's committed offsets
// equal exactly the inputs whose outputs are committed, no record of an
// aborted attempt is visible read_committed, and what was committed before
// stays committed. After the last kill the workers run to completion and
// every input must be in the committed output exactly once.
func TestKill9TransactionalWorkload(t *testing.T) {
	rng := seededRand(t)
	rounds := profile(4, 40)
	perPart := profile(int64(3000), int64(30000))

	b := newBroker(t)
	b.start()
	createTopic(t, b.addr, txIn, txParts, nil)
	createTopic(t, b.addr, txOut, txParts, nil)
	{
		cl := newClient(t, b.addr, kgo.DefaultProduceTopic(txIn), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		var recs []*kgo.Record
		for p := int32(0); p < txParts; p++ {
			for i := int64(0); i < perPart; i++ {
				recs = append(recs, &kgo.Record{Partition: p, Value: []byte(inValue(p, i))})
			}
		}
		err := cl.ProduceSync(ctx, recs...).FirstErr()
		cancel()
		cl.Close()
		if err != nil {
			t.Fatalf("pre-fill: %v", err)
		}
		for _, r := range recs {
			if p, i, _ := parseIn(string(r.Value)); r.Partition != p || r.Offset != i {
				t.Fatalf("pre-fill: %s landed at %d/%d", r.Value, r.Partition, r.Offset)
			}
		}
	}

	led := &ledger{attempts: map[string]*attempt{}}
	prev := make([][]string, txParts) // committed output per partition after the previous check
	midWork := 0
	for round := 1; round <= rounds+1; round++ {
		ws := startWorkers(t, b.addr, round, led)
		if round <= rounds {
			// Kill at a random moment after the round has made progress.
			c0 := led.commits()
			deadline := time.Now().Add(90 * time.Second)
			for led.commits() == c0 {
				if time.Now().After(deadline) {
					ws.finish(t, false)
					t.Fatalf("round %d: no transaction committed within 90s", round)
				}
				time.Sleep(5 * time.Millisecond)
			}
			delay := time.Duration(rng.Int64N(int64(1500 * time.Millisecond)))
			time.Sleep(delay) // the kill point itself: a seeded random moment
			b.kill()
			ws.finish(t, false)
			t.Logf("round %d: SIGKILL %v after the round's first commit (%d commits so far)", round, delay.Round(time.Millisecond), led.commits())
			b.start()
			done := checkTxnOutput(t, b.addr, led, prev, perPart, false)
			if done < txParts*perPart {
				midWork++
				continue
			}
			t.Logf("round %d: the input is fully processed; skipping the remaining kills", round)
			round = rounds // the loop's increment makes this the final round
			continue
		}
		// Last round: no kill; run to completion.
		waitGroupDone(t, b.addr, perPart, 120*time.Second)
		ws.finish(t, true)
		checkTxnOutput(t, b.addr, led, prev, perPart, true)
	}
	t.Logf("%d of %d kills landed with input left to process", midWork, rounds)
	if midWork == 0 {
		t.Fatalf("every kill landed after the input was fully processed; the workload did not exercise crashes")
	}
	b.stop()
}

// fenceAll sends InitProducerId for every worker's transactional id, so any
// transaction a killed worker left open is aborted.
func fenceAll(t *testing.T, rc *rawConn) {
	t.Helper()
	for w := 0; w < txWorkers; w++ {
		initTxnProducer(t, rc, txID(w), 60000)
	}
}

// initTxnProducer sends InitProducerId for a transactional id, retrying the
// retriable errors, and returns the producer id and epoch.
func initTxnProducer(t *testing.T, rc *rawConn, id string, timeoutMs int32) (int64, int16) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(1)
		req.TransactionalID = &id
		req.TransactionTimeoutMillis = timeoutMs
		r, err := rc.do(req)
		if err != nil {
			t.Fatalf("InitProducerId %s: %v", id, err)
		}
		resp := r.(*kmsg.InitProducerIDResponse)
		err = kerr.ErrorForCode(resp.ErrorCode)
		if err == nil {
			return resp.ProducerID, resp.ProducerEpoch
		}
		var ke *kerr.Error
		if !errors.As(err, &ke) || !ke.Retriable && !errors.Is(err, kerr.ConcurrentTransactions) {
			t.Fatalf("InitProducerId %s: %v", id, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("InitProducerId %s still failing after 60s: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupOffsets fetches the group's committed offsets for txIn with
// RequireStable, retrying while a transaction holds offsets.
func groupOffsets(t *testing.T, addr string) map[int32]int64 {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = txGroup
		req.RequireStable = true
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = txIn
		for p := int32(0); p < txParts; p++ {
			rt.Partitions = append(rt.Partitions, p)
		}
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		resp, err := req.RequestWith(ctx, cl)
		cancel()
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		out := map[int32]int64{}
		if err == nil {
			for _, tp := range resp.Topics {
				for _, p := range tp.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil && err == nil {
						err = e
					}
					out[p.Partition] = p.Offset
				}
			}
		}
		if err == nil {
			return out
		}
		if !errors.Is(err, kerr.UnstableOffsetCommit) && !errors.Is(err, kerr.CoordinatorLoadInProgress) {
			t.Fatalf("OffsetFetch %s: %v", txGroup, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("OffsetFetch %s still failing after 60s: %v", txGroup, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGroupDone polls until the group has committed the end of every input
// partition.
func waitGroupDone(t *testing.T, addr string, perPart int64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		offs := groupOffsets(t, addr)
		done := true
		for p := int32(0); p < txParts; p++ {
			done = done && offs[p] == perPart
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group offsets %v after %v, want %d on every partition", offs, d, perPart)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkTxnOutput fences the workers' transactional ids, waits until the
// output has no open transaction, and checks the output and the group's
// offsets against the input and the ledger. It returns the number of inputs
// with committed output.
func checkTxnOutput(t *testing.T, addr string, led *ledger, prev [][]string, perPart int64, final bool) int64 {
	t.Helper()
	rc := dialRaw(t, addr)
	fenceAll(t, rc)
	waitStable(t, rc, txOut, txParts, 60*time.Second)

	type count struct{ committed, uncommitted int }
	perAttempt := map[string]*count{}
	get := func(id string) *count {
		c := perAttempt[id]
		if c == nil {
			c = &count{}
			perAttempt[id] = c
		}
		return c
	}
	split := func(v string) (string, string) {
		in, id, ok := strings.Cut(v, "|")
		if !ok {
			t.Fatalf("output value %q has no attempt id", v)
		}
		return in, id
	}
	offs := groupOffsets(t, addr)
	var total int64
	for p := int32(0); p < txParts; p++ {
		unc, err := readView(rc, txOut, p, false)
		if err != nil {
			t.Fatalf("read_uncommitted %s/%d: %v", txOut, p, err)
		}
		com, err := readView(rc, txOut, p, true)
		if err != nil {
			t.Fatalf("read_committed %s/%d: %v", txOut, p, err)
		}
		for _, r := range unc.recs {
			_, id := split(r.value)
			get(id).uncommitted++
			if !r.txn {
				t.Fatalf("%s/%d offset %d: output record %q is not transactional", txOut, p, r.offset, r.value)
			}
		}
		var vals []string
		for i, r := range com.recs {
			in, id := split(r.value)
			get(id).committed++
			ip, idx, ok := parseIn(in)
			if !ok || ip != p {
				t.Fatalf("%s/%d offset %d: committed output %q is not from input partition %d", txOut, p, r.offset, r.value, p)
			}
			if idx != int64(i) {
				t.Fatalf("%s/%d offset %d: committed output #%d is for input %d (%q): lost, duplicated or reordered output", txOut, p, r.offset, i, idx, r.value)
			}
			vals = append(vals, r.value)
		}
		// Committed output never disappears across a crash.
		if len(vals) < len(prev[p]) {
			t.Fatalf("%s/%d: %d committed outputs before the restart, %d after", txOut, p, len(prev[p]), len(vals))
		}
		for i, v := range prev[p] {
			if vals[i] != v {
				t.Fatalf("%s/%d: committed output #%d was %q before the restart, %q after", txOut, p, i, v, vals[i])
			}
		}
		prev[p] = vals
		k := int64(len(vals))
		total += k
		got, ok := offs[p]
		if !ok || got < 0 {
			got = 0
		}
		if got != k {
			t.Fatalf("group %s %s/%d: committed offset %d, but %d inputs have committed output", txGroup, txIn, p, got, k)
		}
		if final && k != perPart {
			t.Fatalf("%s/%d: %d of %d inputs in the committed output at the end", txOut, p, k, perPart)
		}
	}

	led.mu.Lock()
	defer led.mu.Unlock()
	var nCommitted, nAborted, nOther int
	ids := make([]string, 0, len(perAttempt))
	for id := range perAttempt {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := perAttempt[id]
		a := led.attempts[id]
		if a == nil {
			t.Fatalf("output of unknown attempt %s", id)
		}
		if c.committed != 0 && c.committed != c.uncommitted {
			t.Fatalf("torn transaction %s: %d of its %d records visible read_committed", id, c.committed, c.uncommitted)
		}
		switch {
		case a.outcome == outcomeCommitted && c.committed != a.produced:
			t.Fatalf("attempt %s was acknowledged committed with %d records, %d visible read_committed", id, a.produced, c.committed)
		case a.outcome == outcomeAborted && c.committed != 0:
			t.Fatalf("aborted read: attempt %s was aborted, %d of its records visible read_committed", id, c.committed)
		}
		if c.committed > 0 {
			nCommitted++
		} else if c.uncommitted > 0 {
			nAborted++
		}
	}
	for id, a := range led.attempts {
		if a.outcome == outcomeCommitted && perAttempt[id] == nil && a.produced > 0 {
			t.Fatalf("lost write: attempt %s was acknowledged committed with %d records, none in the output", id, a.produced)
		}
		if a.outcome != outcomeCommitted && a.outcome != outcomeAborted {
			nOther++
		}
	}
	t.Logf("check: %d inputs with committed output, group offsets %v; attempts in the log: %d committed, %d aborted; %d attempts ended uncertain (killed or failed End)",
		total, offs, nCommitted, nAborted, nOther)
	return total
}
