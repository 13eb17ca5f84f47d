package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/recordbatch"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnTestBatch is a batch of one record with value v: transactional for a
// producer id >= 0, plain otherwise.
func txnTestBatch(pid int64, seq int32, v string) []byte {
	opts := recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	if pid >= 0 {
		opts = recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: 0, BaseSequence: seq, Transactional: true}
	}
	return recordbatch.Build(opts, []recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Key: []byte("k"), Value: []byte(v)}})
}

// txnTestMarker is the control batch ending pid's transaction.
func txnTestMarker(pid int64, commit bool) []byte {
	k := kmsg.NewControlRecordKey()
	k.Type = kmsg.ControlRecordKeyTypeAbort
	if commit {
		k.Type = kmsg.ControlRecordKeyTypeCommit
	}
	v := kmsg.NewEndTxnMarker()
	return recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: 0, BaseSequence: -1, Transactional: true, Control: true},
		[]recordbatch.Record{{Timestamp: time.Now().UnixMilli(), Key: k.AppendTo(nil), Value: v.AppendTo(nil)}})
}

// TestFetchReadCommitted writes transactional batches and markers to a
// partition log and checks what read_committed and read_uncommitted
// fetches return: raw responses (LSO, aborted transactions, the cut at the
// LSO), a long-polling read_committed fetch woken by a marker, and a
// franz-go read_committed consumer that sees exactly the committed records.
func TestFetchReadCommitted(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	cl := newClient(t, s)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "rc"); err != nil {
		t.Fatal(err)
	}
	p := s.topics.get("rc").partition(0)
	appendData := func(b []byte) {
		t.Helper()
		if _, err := p.log.Append(b); err != nil {
			t.Fatal(err)
		}
		p.wake()
	}
	appendMarker := func(pid int64, commit bool) {
		t.Helper()
		if _, err := appendControl(p, txnTestMarker(pid, commit)); err != nil {
			t.Fatal(err)
		}
	}
	appendData(txnTestBatch(-1, 0, "p0"))  // 0
	appendData(txnTestBatch(1, 0, "c1"))   // 1
	appendData(txnTestBatch(2, 0, "a1"))   // 2
	appendData(txnTestBatch(-1, 0, "p1"))  // 3
	appendData(txnTestBatch(1, 1, "c2"))   // 4
	appendMarker(1, true)                  // 5
	appendMarker(2, false)                 // 6
	appendData(txnTestBatch(3, 0, "open")) // 7
	appendData(txnTestBatch(-1, 0, "p2"))  // 8
	if lso := p.log.LastStableOffset(); lso != 7 {
		t.Fatalf("LSO %d, want 7", lso)
	}

	fetch := func(isolation int8, offset int64, maxWait int32) *kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.IsolationLevel = maxWait, 1, 1<<20, isolation
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "rc", s.topics.get("rc").id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return &resp.Topics[0].Partitions[0]
	}
	lastOffset := func(rp *kmsg.FetchResponseTopicPartition) int64 {
		bs, err := recordbatch.Split(rp.RecordBatches)
		if err != nil || len(bs) == 0 {
			t.Fatalf("%d batches: %v", len(bs), err)
		}
		h, _ := recordbatch.ParseHeader(bs[len(bs)-1])
		return h.LastOffset()
	}
	// read_uncommitted: everything, with the LSO reported.
	rp := fetch(0, 0, 0)
	if rp.HighWatermark != 9 || rp.LastStableOffset != 7 || rp.AbortedTransactions != nil || lastOffset(rp) != 8 {
		t.Fatalf("read_uncommitted: hw %d lso %d aborted %v last %d", rp.HighWatermark, rp.LastStableOffset, rp.AbortedTransactions, lastOffset(rp))
	}
	// read_committed: up to the LSO, with the aborted transaction.
	rp = fetch(1, 0, 0)
	ab := rp.AbortedTransactions
	if rp.HighWatermark != 9 || rp.LastStableOffset != 7 || len(ab) != 1 || ab[0].ProducerID != 2 || ab[0].FirstOffset != 2 || lastOffset(rp) != 6 {
		t.Fatalf("read_committed: hw %d lso %d aborted %v last %d", rp.HighWatermark, rp.LastStableOffset, rp.AbortedTransactions, lastOffset(rp))
	}
	if rp = fetch(1, 7, 0); len(rp.RecordBatches) != 0 || rp.ErrorCode != 0 {
		t.Fatalf("read_committed at the LSO: %d bytes, error %d", len(rp.RecordBatches), rp.ErrorCode)
	}

	// A franz-go consumer sees the committed records below the LSO.
	newConsumer := func() *kgo.Client {
		return newClient(t, s, kgo.ConsumeTopics("rc"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(time.Second))
	}
	consumer := newConsumer()
	var got []string
	poll := func(n int) {
		t.Helper()
		for len(got) < n {
			fs := consumer.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
	}
	poll(4)
	if want := []string{"p0", "c1", "p1", "c2"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer got %v, want %v", got, want)
	}

	consumer.Close()
	eventually(t, "the consumer's fetches to end", func() bool { return p.nwait.Load() == 0 })

	// A read_committed fetch waiting at the LSO is woken by the marker
	// that advances it (MaxWait is far beyond the test's deadline).
	done := make(chan *kmsg.FetchResponseTopicPartition, 1)
	go func() {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.IsolationLevel = 60_000, 1, 1<<20, 1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "rc", s.topics.get("rc").id
		rpq := kmsg.NewFetchRequestTopicPartition()
		rpq.FetchOffset, rpq.PartitionMaxBytes = 7, 1<<20
		rt.Partitions = append(rt.Partitions, rpq)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(context.Background(), cl)
		if err != nil {
			done <- nil
			return
		}
		done <- &resp.Topics[0].Partitions[0]
	}()
	eventually(t, "the fetch to wait", func() bool { return p.nwait.Load() == 1 })
	appendMarker(3, true)
	select {
	case rp := <-done:
		if rp == nil || rp.LastStableOffset != 10 || lastOffset(rp) != 9 {
			t.Fatalf("woken fetch: %+v", rp)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a waiting read_committed fetch was not woken by the marker")
	}
	consumer, got = newConsumer(), nil
	poll(6)
	if want := []string{"p0", "c1", "p1", "c2", "open", "p2"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer got %v, want %v", got, want)
	}
}

// TestListOffsetsReadCommitted checks that ListOffsets honours the
// isolation level as Kafka does: for read_committed, latest is the last
// stable offset and a timestamp lookup finds only offsets below it.
func TestListOffsetsReadCommitted(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	if _, err := newAdmin(t, s).CreateTopic(ctx, 1, 1, nil, "lo"); err != nil {
		t.Fatal(err)
	}
	p := s.topics.get("lo").partition(0)
	for _, b := range [][]byte{
		txnTestBatch(-1, 0, "p0"),  // 0
		txnTestBatch(5, 0, "open"), // 1: an open transaction
		txnTestBatch(-1, 0, "p1"),  // 2
	} {
		if _, err := p.log.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	list := func(isolation int8, ts int64) int64 {
		t.Helper()
		c := dialRaw(t, s)
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(4)
		req.ReplicaID, req.IsolationLevel = -1, isolation
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lo"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.CurrentLeaderEpoch = ts, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		c.send(req, 1)
		resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
		c.recv(resp)
		got := resp.Topics[0].Partitions[0]
		if got.ErrorCode != 0 {
			t.Fatalf("ListOffsets isolation %d ts %d: error %d", isolation, ts, got.ErrorCode)
		}
		return got.Offset
	}
	if got := list(0, -1); got != 3 {
		t.Errorf("read_uncommitted latest = %d, want the high watermark 3", got)
	}
	if got := list(1, -1); got != 1 {
		t.Errorf("read_committed latest = %d, want the last stable offset 1", got)
	}
	if got := list(0, 0); got != 0 {
		t.Errorf("read_uncommitted offset for timestamp 0 = %d, want 0", got)
	}
	// Records at and after the LSO are not fetchable read_committed: a
	// lookup landing there finds nothing.
	if _, err := p.log.DeleteRecordsBefore(1); err != nil {
		t.Fatal(err)
	}
	if got := list(1, 0); got != -1 {
		t.Errorf("read_committed offset for timestamp 0 past the LSO = %d, want -1", got)
	}
	if got := list(0, 0); got != 1 {
		t.Errorf("read_uncommitted offset for timestamp 0 = %d, want 1", got)
	}
	if _, err := appendControl(p, txnTestMarker(5, true)); err != nil {
		t.Fatal(err)
	}
	if got := list(1, -1); got != 4 {
		t.Errorf("read_committed latest after the commit = %d, want 4", got)
	}
}
