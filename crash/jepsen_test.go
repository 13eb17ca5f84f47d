package crash

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// rawAddPartitions sends AddPartitionsToTxn v1 for one partition.
func rawAddPartitions(t *testing.T, rc *rawConn, id string, pid int64, epoch int16, topic string, p int32) {
	t.Helper()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.SetVersion(1)
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	rt := kmsg.NewAddPartitionsToTxnRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{p}
	req.Topics = append(req.Topics, rt)
	r, err := rc.do(req)
	if err != nil {
		t.Fatalf("AddPartitionsToTxn: %v", err)
	}
	for _, tp := range r.(*kmsg.AddPartitionsToTxnResponse).Topics {
		for _, pp := range tp.Partitions {
			if err := kerr.ErrorForCode(pp.ErrorCode); err != nil {
				t.Fatalf("AddPartitionsToTxn %s/%d: %v", tp.Topic, pp.Partition, err)
			}
		}
	}
}

// rawTxnProduce produces one transactional batch (built with
// internal/recordbatch) of the given values and returns its base offset.
func rawTxnProduce(t *testing.T, rc *rawConn, id string, pid int64, epoch int16, seq int32, topic string, p int32, values ...string) int64 {
	t.Helper()
	now := time.Now().UnixMilli()
	recs := make([]recordbatch.Record, len(values))
	for i, v := range values {
		recs[i] = recordbatch.Record{Offset: int64(i), Timestamp: now, Value: []byte(v)}
	}
	batch := recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, Transactional: true}, recs)
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(7)
	req.TransactionID = &id
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = p, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	r, err := rc.do(req)
	if err != nil {
		t.Fatalf("Produce: %v", err)
	}
	resp := r.(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("Produce response shape: %d topics", len(resp.Topics))
	}
	pr := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
		t.Fatalf("transactional Produce: %v", err)
	}
	return pr.BaseOffset
}

func endTxnRequest(id string, pid int64, epoch int16, commit bool) *kmsg.EndTxnRequest {
	req := kmsg.NewPtrEndTxnRequest()
	req.SetVersion(1)
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	return req
}

// rawEndTxn sends EndTxn v1 and returns its error (retrying
// CONCURRENT_TRANSACTIONS, which a previous EndTxn's markers cause).
func rawEndTxn(t *testing.T, rc *rawConn, id string, pid int64, epoch int16, commit bool) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := rc.do(endTxnRequest(id, pid, epoch, commit))
		if err != nil {
			t.Fatalf("EndTxn: %v", err)
		}
		err = kerr.ErrorForCode(r.(*kmsg.EndTxnResponse).ErrorCode)
		if !errors.Is(err, kerr.ConcurrentTransactions) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// committedValues is the read_committed view of one partition, as values.
func committedValues(t *testing.T, rc *rawConn, topic string, p int32) ([]string, partView) {
	t.Helper()
	v, err := readView(rc, topic, p, true)
	if err != nil {
		t.Fatalf("read_committed %s/%d: %v", topic, p, err)
	}
	var out []string
	for _, r := range v.recs {
		out = append(out, r.value)
	}
	return out, v
}

// TestJepsenDelayedEndTxn: an EndTxn(commit) meant for a producer's
// previous transaction, delayed on its connection until the producer has
// begun its next transaction, must not end the new one. The old EndTxn is
// pipelined on connection A behind a Fetch that long-polls for 2 s;
// meanwhile connection B commits transaction 1 (the client's retry of the
// same EndTxn), begins transaction 2 and produces to it. When the delayed
// EndTxn is finally processed, transaction 2 must stay invisible to
// read_committed; its producer then aborts it, and its records must never
// become visible. Transaction 3 commits normally.
func TestJepsenDelayedEndTxn(t *testing.T) {
	const topic, idle, id = "delayed", "delayed-idle", "delayed-tx"
	b := newBroker(t)
	b.start()
	createTopic(t, b.addr, topic, 1, nil)
	createTopic(t, b.addr, idle, 1, nil)

	rcB := dialRaw(t, b.addr)
	pid, epoch := initTxnProducer(t, rcB, id, 60000)

	// Transaction 1.
	rawAddPartitions(t, rcB, id, pid, epoch, topic, 0)
	rawTxnProduce(t, rcB, id, pid, epoch, 0, topic, 0, "t1-0", "t1-1", "t1-2")

	// Connection A: a long-polling Fetch, then txn 1's EndTxn(commit) queued
	// behind it.
	rcA := dialRaw(t, b.addr)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(11)
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes, fetch.SessionEpoch = -1, 2000, 1<<20, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = idle
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset, fp.LogStartOffset, fp.CurrentLeaderEpoch, fp.PartitionMaxBytes = 0, -1, -1, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	sent := time.Now()
	fetchCorr, err := rcA.send(fetch)
	if err != nil {
		t.Fatal(err)
	}
	delayed := endTxnRequest(id, pid, epoch, true)
	delayedCorr, err := rcA.send(delayed)
	if err != nil {
		t.Fatal(err)
	}

	// Connection B: the retried EndTxn commits txn 1; txn 2 begins.
	if err := rawEndTxn(t, rcB, id, pid, epoch, true); err != nil {
		t.Fatalf("EndTxn(commit) of txn 1: %v", err)
	}
	waitStable(t, rcB, topic, 1, 30*time.Second)
	rawAddPartitions(t, rcB, id, pid, epoch, topic, 0)
	txn2 := rawTxnProduce(t, rcB, id, pid, epoch, 3, topic, 0, "t2-0", "t2-1")
	if began := time.Since(sent); began > 1500*time.Millisecond {
		t.Fatalf("txn 2 began %v after the delayed EndTxn was sent, too late for the 2 s long poll to hold it back", began)
	}

	// The delayed EndTxn is processed now.
	if _, err := rcA.recv(fetch, fetchCorr); err != nil {
		t.Fatal(err)
	}
	r, err := rcA.recv(delayed, delayedCorr)
	if err != nil {
		t.Fatal(err)
	}
	if held := time.Since(sent); held < 1500*time.Millisecond {
		t.Fatalf("the long poll returned after %v; the EndTxn was not held back", held)
	}
	t.Logf("delayed EndTxn answered %v", kerr.ErrorForCode(r.(*kmsg.EndTxnResponse).ErrorCode))

	check := func(when string, want ...string) {
		t.Helper()
		got, v := committedValues(t, rcB, topic, 0)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: read_committed sees %v, want %v (LSO %d, txn 2 at %d)", when, got, want, v.lso, txn2)
		}
	}
	check("after the delayed EndTxn", "t1-0", "t1-1", "t1-2")
	_, lso, err := stableOffsets(rcB, topic, 1)
	if err != nil {
		t.Fatal(err)
	}
	if lso[0] != txn2 {
		u, _ := readView(rcB, topic, 0, false)
		t.Logf("read_uncommitted view: %+v", u)
		t.Fatalf("after the delayed EndTxn the last stable offset is %d, want %d (txn 2 still open)", lso[0], txn2)
	}

	// Txn 2's own end: abort. It must succeed (txn 2 is still open) and
	// its records must never be visible.
	if err := rawEndTxn(t, rcB, id, pid, epoch, false); err != nil {
		t.Fatalf("EndTxn(abort) of txn 2: %v (did the delayed EndTxn end it?)", err)
	}
	waitStable(t, rcB, topic, 1, 30*time.Second)
	check("after txn 2 aborted", "t1-0", "t1-1", "t1-2")

	// Txn 3 commits normally.
	rawAddPartitions(t, rcB, id, pid, epoch, topic, 0)
	rawTxnProduce(t, rcB, id, pid, epoch, 5, topic, 0, "t3-0")
	if err := rawEndTxn(t, rcB, id, pid, epoch, true); err != nil {
		t.Fatalf("EndTxn(commit) of txn 3: %v", err)
	}
	waitStable(t, rcB, topic, 1, 30*time.Second)
	check("after txn 3 committed", "t1-0", "t1-1", "t1-2", "t3-0")
	b.stop()
}

// jAck is one record a transactional producer had acknowledged.
type jAck struct {
	partition int32
	offset    int64
	value     string
}

// jTxn is one transaction of the Jepsen workload.
type jTxn struct {
	id     string
	commit bool // planned and, for a commit, acknowledged outcome
	acks   []jAck
}

// jLoad is the result of runTxnLoad.
type jLoad struct {
	txns     []*jTxn
	seen     [][]*kgo.Record // per concurrent read_committed consumer, in poll order
	violated []string        // aborted records a consumer saw while polling
}

// jValue is a workload record value: transaction id, planned outcome
// ("c" or "a"), partition and index within the transaction's partition.
func jValue(txn string, commit bool, p int32, i int) string {
	o := "a"
	if commit {
		o = "c"
	}
	return fmt.Sprintf("%s|%s|%d|%d", txn, o, p, i)
}

// runTxnLoad runs `producers` transactional producers, each running txns
// transactions that write perPart records to every partition of topic and
// then commit or abort (seeded plan, abortPct percent aborts), while
// `consumers` read_committed consumers poll the topic concurrently and
// record every record they see. The consumers stop once each has seen as
// many records as the committed transactions hold.
func runTxnLoad(t *testing.T, addr, topic string, parts int32, producers, txns, perPart, abortPct, consumers int) *jLoad {
	t.Helper()
	rng := seededRand(t)
	plans := make([][]bool, producers)
	for w := range plans {
		for range txns {
			plans[w] = append(plans[w], rng.IntN(100) >= abortPct)
		}
	}
	out := &jLoad{seen: make([][]*kgo.Record, consumers)}
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// Consumers.
	stop := make(chan int64, consumers) // expected committed record count, sent once producers finish
	var cwg sync.WaitGroup
	for c := 0; c < consumers; c++ {
		cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			defer cl.Close()
			want := int64(-1)
			for {
				if want < 0 {
					select {
					case want = <-stop:
					default:
					}
				}
				if want >= 0 && int64(len(out.seen[c])) >= want {
					return
				}
				pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
				fs := cl.PollFetches(pctx)
				pcancel()
				if ctx.Err() != nil {
					return
				}
				fs.EachError(func(tp string, p int32, err error) {
					if !errors.Is(err, context.DeadlineExceeded) {
						mu.Lock()
						out.violated = append(out.violated, fmt.Sprintf("consumer %d: fetch %s/%d: %v", c, tp, p, err))
						mu.Unlock()
					}
				})
				fs.EachRecord(func(r *kgo.Record) {
					out.seen[c] = append(out.seen[c], r)
					if strings.Contains(string(r.Value), "|a|") {
						mu.Lock()
						out.violated = append(out.violated, fmt.Sprintf("consumer %d: aborted record %q at %d/%d", c, r.Value, r.Partition, r.Offset))
						mu.Unlock()
					}
				})
			}
		}()
	}

	// Producers.
	var pwg sync.WaitGroup
	for w := 0; w < producers; w++ {
		cl := newClient(t, addr, kgo.TransactionalID(fmt.Sprintf("jepsen-%s-%d", topic, w)), kgo.DefaultProduceTopic(topic),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			defer cl.Close()
			for n, commit := range plans[w] {
				txn := &jTxn{id: fmt.Sprintf("w%dn%d", w, n), commit: commit}
				if err := cl.BeginTransaction(); err != nil {
					t.Errorf("producer %d: begin: %v", w, err)
					return
				}
				var amu sync.Mutex
				var perr error
				for p := int32(0); p < parts; p++ {
					for i := 0; i < perPart; i++ {
						cl.Produce(ctx, &kgo.Record{Partition: p, Value: []byte(jValue(txn.id, commit, p, i))}, func(r *kgo.Record, err error) {
							amu.Lock()
							defer amu.Unlock()
							if err != nil {
								perr = err
								return
							}
							txn.acks = append(txn.acks, jAck{partition: r.Partition, offset: r.Offset, value: string(r.Value)})
						})
					}
				}
				if err := cl.Flush(ctx); err != nil || perr != nil {
					t.Errorf("producer %d txn %s: produce: %v %v", w, txn.id, err, perr)
					return
				}
				try := kgo.TryAbort
				if commit {
					try = kgo.TryCommit
				}
				if err := cl.EndTransaction(ctx, try); err != nil {
					t.Errorf("producer %d txn %s: end (commit %v): %v", w, txn.id, commit, err)
					return
				}
				mu.Lock()
				out.txns = append(out.txns, txn)
				mu.Unlock()
			}
		}()
	}
	pwg.Wait()
	var want int64
	for _, x := range out.txns {
		if x.commit {
			want += int64(len(x.acks))
		}
	}
	for range consumers {
		stop <- want
	}
	cwg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("workload did not finish within 120s")
	}
	for c := range out.seen {
		if int64(len(out.seen[c])) != want {
			t.Errorf("consumer %d saw %d records, the committed transactions hold %d", c, len(out.seen[c]), want)
		}
	}
	return out
}

// finalView reads every partition read_committed and read_uncommitted with
// raw fetches after waiting for the topic to be stable.
func finalView(t *testing.T, addr, topic string, parts int32) (committed, uncommitted []viewRec) {
	t.Helper()
	rc := dialRaw(t, addr)
	waitStable(t, rc, topic, parts, 30*time.Second)
	for p := int32(0); p < parts; p++ {
		c, err := readView(rc, topic, p, true)
		if err != nil {
			t.Fatal(err)
		}
		u, err := readView(rc, topic, p, false)
		if err != nil {
			t.Fatal(err)
		}
		committed = append(committed, c.recs...)
		uncommitted = append(uncommitted, u.recs...)
	}
	return committed, uncommitted
}

// TestJepsenAbortedRead: records of aborted transactions never reach a
// read_committed consumer, neither consumers polling while the aborts
// happen nor a reader of the final log; every committed record is seen
// exactly once.
func TestJepsenAbortedRead(t *testing.T) {
	const topic, parts = "aborted-read", 3
	b := newBroker(t)
	b.start()
	createTopic(t, b.addr, topic, parts, nil)
	load := runTxnLoad(t, b.addr, topic, parts, 3, profile(40, 400), 4, 50, 2)
	for _, v := range load.violated {
		t.Error(v)
	}
	committed, uncommitted := finalView(t, b.addr, topic, parts)
	nAborted := 0
	for _, r := range uncommitted {
		if strings.Contains(r.value, "|a|") {
			nAborted++
		}
	}
	if nAborted == 0 {
		t.Fatalf("no aborted record in the log; the test exercised nothing")
	}
	for _, r := range committed {
		if strings.Contains(r.value, "|a|") {
			t.Errorf("aborted read: %q at offset %d visible read_committed", r.value, r.offset)
		}
	}
	for c, seen := range load.seen {
		dup := map[string]bool{}
		for _, r := range seen {
			if dup[string(r.Value)] {
				t.Errorf("consumer %d saw %q twice", c, r.Value)
			}
			dup[string(r.Value)] = true
		}
	}
	t.Logf("%d transactions; %d aborted records in the log, %d committed records visible", len(load.txns), nAborted, len(committed))
	b.stop()
}

// TestJepsenTornTransaction: a transaction spanning three partitions is
// visible on all of them or on none. Many producers run concurrent
// transactions (a third aborted); concurrent read_committed consumers and
// a reader of the final log must each see, for every transaction, all of
// its records or none, and all of every acknowledged commit.
func TestJepsenTornTransaction(t *testing.T) {
	const topic, parts, perPart = "torn-txn", 3, 3
	b := newBroker(t)
	b.start()
	createTopic(t, b.addr, topic, parts, nil)
	load := runTxnLoad(t, b.addr, topic, parts, 4, profile(30, 300), perPart, 33, 2)
	for _, v := range load.violated {
		t.Error(v)
	}
	byID := map[string]*jTxn{}
	for _, x := range load.txns {
		byID[x.id] = x
	}
	checkWhole := func(who string, values []string) {
		t.Helper()
		count := map[string]map[string]bool{}
		for _, v := range values {
			id, _, _ := strings.Cut(v, "|")
			if count[id] == nil {
				count[id] = map[string]bool{}
			}
			count[id][v] = true
		}
		for id, vs := range count {
			x := byID[id]
			if x == nil {
				t.Errorf("%s: records of unknown transaction %s", who, id)
				continue
			}
			if len(vs) != parts*perPart {
				t.Errorf("torn transaction: %s sees %d of the %d records of %s (commit %v)", who, len(vs), parts*perPart, id, x.commit)
			}
		}
		for id, x := range byID {
			if x.commit && count[id] == nil {
				t.Errorf("%s: committed transaction %s not visible", who, id)
			}
			if !x.commit && count[id] != nil {
				t.Errorf("%s: aborted transaction %s visible", who, id)
			}
		}
	}
	for c, seen := range load.seen {
		var vals []string
		for _, r := range seen {
			vals = append(vals, string(r.Value))
		}
		checkWhole(fmt.Sprintf("consumer %d", c), vals)
	}
	committed, _ := finalView(t, b.addr, topic, parts)
	var vals []string
	for _, r := range committed {
		vals = append(vals, r.value)
	}
	checkWhole("final read_committed reader", vals)
	t.Logf("%d transactions over %d partitions checked", len(load.txns), parts)
	b.stop()
}

// TestJepsenLostWrite: every record acknowledged in a committed
// transaction is read back, at its acknowledged partition and offset —
// also after the broker is SIGKILLed and restarted.
func TestJepsenLostWrite(t *testing.T) {
	const topic, parts = "lost-write", 3
	b := newBroker(t)
	b.start()
	createTopic(t, b.addr, topic, parts, nil)
	load := runTxnLoad(t, b.addr, topic, parts, 3, profile(40, 400), 5, 20, 1)
	for _, v := range load.violated {
		t.Error(v)
	}
	check := func(when string) {
		t.Helper()
		committed, _ := finalView(t, b.addr, topic, parts)
		at := map[[2]int64]string{}
		for _, r := range committed {
			at[[2]int64{int64(r.partition), r.offset}] = r.value
		}
		n := 0
		for _, x := range load.txns {
			if !x.commit {
				continue
			}
			for _, a := range x.acks {
				n++
				if got := at[[2]int64{int64(a.partition), a.offset}]; got != a.value {
					t.Errorf("lost write %s: %q acknowledged at %d/%d, read_committed has %q there", when, a.value, a.partition, a.offset, got)
				}
			}
		}
		if len(committed) != n {
			t.Errorf("%s: %d records visible read_committed, %d acknowledged in committed transactions", when, len(committed), n)
		}
		t.Logf("%s: %d acknowledged committed records read back", when, n)
	}
	check("before the kill")
	b.kill()
	b.start()
	check("after kill -9 and restart")
	b.stop()
}
