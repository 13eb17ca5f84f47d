package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFetchSessions(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "sess"); err != nil {
		t.Fatal(err)
	}
	id := s.topics.get("sess").id
	produceTo := func(p int32, n int) {
		t.Helper()
		for range n {
			r := &kgo.Record{Topic: "sess", Partition: p, Value: []byte("v")}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	fetch := func(sessionID, epoch int32, parts map[int32]int64, forget []int32) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.SessionID, req.SessionEpoch = sessionID, epoch
		req.MaxWaitMillis = 0
		if len(parts) > 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "sess", id
			for p, off := range parts {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		if len(forget) > 0 {
			req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "sess", TopicID: id, Partitions: forget}}
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	partsOf := func(resp *kmsg.FetchResponse) map[int32]kmsg.FetchResponseTopicPartition {
		out := map[int32]kmsg.FetchResponseTopicPartition{}
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				out[p.Partition] = p
			}
		}
		return out
	}

	produceTo(0, 3)
	full := fetch(0, 0, map[int32]int64{0: 0, 1: 0}, nil)
	if full.ErrorCode != 0 || full.SessionID == 0 {
		t.Fatalf("new session: code %d id %d", full.ErrorCode, full.SessionID)
	}
	if got := partsOf(full); len(got) != 2 || got[0].HighWatermark != 3 {
		t.Fatalf("full response: %+v", got)
	}
	sid := full.SessionID

	// Nothing changed: an incremental fetch answers no partitions.
	if got := partsOf(fetch(sid, 1, map[int32]int64{0: 3}, nil)); len(got) != 0 {
		t.Fatalf("idle incremental fetch returned %v", got)
	}
	// New data on partition 1 only.
	produceTo(1, 2)
	inc := fetch(sid, 2, nil, nil)
	got := partsOf(inc)
	if len(got) != 1 || got[1].HighWatermark != 2 || len(got[1].RecordBatches) == 0 || inc.SessionID != sid {
		t.Fatalf("incremental: %+v", got)
	}
	// Wrong epoch, unknown session.
	if r := fetch(sid, 7, nil, nil); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("wrong epoch: %d", r.ErrorCode)
	}
	if r := fetch(sid+1, 1, nil, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: %d", r.ErrorCode)
	}
	// Forget partition 0: new data there is no longer reported.
	if got := partsOf(fetch(sid, 3, map[int32]int64{1: 2}, []int32{0})); len(got) != 0 {
		t.Fatalf("after forget: %v", got)
	}
	produceTo(0, 1)
	if got := partsOf(fetch(sid, 4, nil, nil)); len(got) != 0 {
		t.Fatalf("forgotten partition reported: %v", got)
	}
	// Epoch -1 closes the session.
	fetch(sid, -1, map[int32]int64{0: 0}, nil)
	if r := fetch(sid, 5, nil, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session: %d", r.ErrorCode)
	}
}

// TestFetchMaxBytes checks that the first non-empty partition may exceed
// the limits and the others may not.
func TestFetchMaxBytes(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "maxb"); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 10_000)
	for p := range int32(2) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "maxb", Partition: p, Value: big}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 100
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "maxb", s.topics.get("maxb").id
	for p := range int32(2) {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 100
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.Topics[0].Partitions
	if len(ps) != 2 || len(ps[0].RecordBatches) == 0 || len(ps[1].RecordBatches) != 0 {
		t.Fatalf("got %d partitions, sizes %d and %d", len(ps), len(ps[0].RecordBatches), len(ps[1].RecordBatches))
	}
}

// TestFetchEmptyPartitionNotNull checks that a partition with nothing to
// return carries an empty record set, not a null one: sarama and librdkafka
// fail on a null (-1) MessageSetSize.
func TestFetchEmptyPartitionNotNull(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	if _, err := newAdmin(t, s).CreateTopic(ctx, 1, 1, nil, "empty"); err != nil {
		t.Fatal(err)
	}
	for _, version := range []int16{4, 11, 12} {
		c := dialRaw(t, s)
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(version)
		req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "empty"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 1 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		c.send(req, 1)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		c.recv(resp)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d: unexpected response shape %+v", version, resp)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.RecordBatches == nil {
			t.Fatalf("v%d: error %d, records nil=%v; want an empty, non-null record set", version, p.ErrorCode, p.RecordBatches == nil)
		}
	}
}

// TestFetchOffsetsTopicWokenByCommit checks that a fetch long-polling
// __consumer_offsets returns when a group commits, not at MaxWait.
func TestFetchOffsetsTopicWokenByCommit(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	adm := newAdmin(t, s)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "woken"); err != nil {
		t.Fatal(err)
	}
	part := s.group.PartitionFor("wake-g")
	end := s.topics.get(offsetsTopic).partition(part).log.EndOffset()

	c := dialRaw(t, s)
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 60_000, 1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = offsetsTopic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, end, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.send(req, 1)

	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "woken", Partition: 0, At: 1, LeaderEpoch: -1})
	start := time.Now()
	if _, err := adm.CommitOffsets(ctx, "wake-g", offs); err != nil {
		t.Fatal(err)
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	c.recv(resp)
	if waited := time.Since(start); waited > 30*time.Second {
		t.Fatalf("fetch returned after %v: not woken by the commit", waited)
	}
	if p := resp.Topics[0].Partitions[0]; len(p.RecordBatches) == 0 {
		t.Fatalf("fetch returned without the commit's record (error %d)", p.ErrorCode)
	}
}
