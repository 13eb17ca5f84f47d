package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProducerIDsNeverReused checks that producer ids stay unique across
// clean and unclean restarts: a reused id would let a new producer's batches
// be taken for an old one's duplicates.
func TestProducerIDsNeverReused(t *testing.T) {
	dir := t.TempDir()
	seen := map[int64]bool{}
	initPID := func(s *Server) int64 {
		t.Helper()
		c := dialRaw(t, s)
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(4)
		req.TransactionTimeoutMillis = 60000
		req.ProducerID, req.ProducerEpoch = -1, -1
		c.send(req, 1)
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		c.recv(resp)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 {
			t.Fatalf("InitProducerId: code %d id %d epoch %d", resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch)
		}
		if seen[resp.ProducerID] {
			t.Fatalf("producer id %d handed out twice", resp.ProducerID)
		}
		seen[resp.ProducerID] = true
		return resp.ProducerID
	}
	// Each restart continues after the durably reserved block, so ids
	// handed out before a crash (not only a clean stop) are never reused.
	for range 3 {
		s := startWith(t, testConfig(t, dir))
		for range 5 {
			initPID(s)
		}
		s.Close()
	}

	// A transactional id gets its producer id from the same allocator.
	s := startWith(t, testConfig(t, dir))
	c := dialRaw(t, s)
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr("tx")
	req.TransactionTimeoutMillis = 60000
	c.send(req, 1)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	c.recv(resp)
	if resp.ErrorCode != 0 || seen[resp.ProducerID] || resp.ProducerEpoch != 0 {
		t.Fatalf("transactional InitProducerId: code %d id %d (seen before: %v) epoch %d", resp.ErrorCode, resp.ProducerID, seen[resp.ProducerID], resp.ProducerEpoch)
	}
}

// TestIdempotentProduce checks that franz-go's default idempotent producer
// works end to end: records land once, in order, with producer ids set.
func TestIdempotentProduce(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	if _, err := newAdmin(t, s).CreateTopic(ctx, 3, 1, nil, "idem"); err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, s) // idempotent by default
	const n = 3000
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Topic: "idem", Key: []byte{byte(i)}, Value: []byte("v")}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cons := newClient(t, s, kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.ProducerID < 0 {
				t.Fatalf("record at %d/%d has no producer id", r.Partition, r.Offset)
			}
			got++
		})
	}
	if got != n {
		t.Fatalf("consumed %d records, want %d", got, n)
	}
}
