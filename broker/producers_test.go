package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeProducers runs a transactional producer with an open
// transaction and a plain idempotent producer and checks what
// DescribeProducers reports, through kadm and through a raw request.
func TestDescribeProducers(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	adm := newAdmin(t, s)
	const topic = "dp"
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs.Sorted() {
		if lo, hi, ok := v.KeyVersions(61); !ok || lo != 0 || hi != 0 {
			t.Fatalf("DescribeProducers advertised %d..%d (%v), want 0..0", lo, hi, ok)
		}
	}

	start := time.Now().UnixMilli()
	txn := newClient(t, s, kgo.TransactionalID("dp-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int32{0, 2} {
		if err := txn.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte("t")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txnPID, txnEpoch, err := txn.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idem := newClient(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 2 { // two batches: sequences 0 and 1
		if err := idem.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 1, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	idemPID, idemEpoch, err := idem.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}, 1: {}, 2: {}}})
	if err != nil {
		t.Fatal(err)
	}
	one := func(p int32) kadm.DescribedProducer {
		t.Helper()
		dp, ok := described[topic].Partitions[p]
		if !ok || dp.Err != nil || len(dp.ActiveProducers) != 1 {
			t.Fatalf("partition %d: %+v", p, dp)
		}
		for _, ap := range dp.ActiveProducers {
			return ap
		}
		panic("unreachable")
	}
	for _, p := range []int32{0, 2} {
		ap := one(p)
		if ap.ProducerID != txnPID || ap.ProducerEpoch != txnEpoch || ap.LastSequence != 0 ||
			ap.CurrentTxnStartOffset != 0 || ap.CoordinatorEpoch != -1 || ap.LastTimestamp < start {
			t.Errorf("partition %d: %+v, want pid %d epoch %d, sequence 0, txn start 0", p, ap, txnPID, txnEpoch)
		}
	}
	if ap := one(1); ap.ProducerID != idemPID || ap.ProducerEpoch != idemEpoch || ap.LastSequence != 1 ||
		ap.CurrentTxnStartOffset != -1 || ap.CoordinatorEpoch != -1 || ap.LastTimestamp < start {
		t.Errorf("partition 1: %+v, want pid %d epoch %d, sequence 1, no transaction", ap, idemPID, idemEpoch)
	}

	// Raw request (kgo would shard it by leader and fail unknown topics
	// itself): unknown topics and partitions fail one by one.
	req := kmsg.NewPtrDescribeProducersRequest()
	req.Topics = []kmsg.DescribeProducersRequestTopic{
		{Topic: topic, Partitions: []int32{2, 7, -1}},
		{Topic: "no-such-topic", Partitions: []int32{0}},
	}
	raw := dialRaw(t, s)
	raw.send(req, 7)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	if corr := raw.recv(resp); corr != 7 {
		t.Fatalf("correlation id %d", corr)
	}
	if len(resp.Topics) != 2 || len(resp.Topics[0].Partitions) != 3 || len(resp.Topics[1].Partitions) != 1 {
		t.Fatalf("response shape: %+v", resp)
	}
	p2 := resp.Topics[0].Partitions[0]
	if p2.Partition != 2 || p2.ErrorCode != 0 || len(p2.ActiveProducers) != 1 || p2.ActiveProducers[0].ProducerID != txnPID ||
		p2.ActiveProducers[0].CurrentTxnStartOffset != 0 {
		t.Errorf("raw partition 2: %+v", p2)
	}
	for _, rp := range []kmsg.DescribeProducersResponseTopicPartition{resp.Topics[0].Partitions[1], resp.Topics[0].Partitions[2], resp.Topics[1].Partitions[0]} {
		if err := kerr.ErrorForCode(rp.ErrorCode); !errors.Is(err, kerr.UnknownTopicOrPartition) || len(rp.ActiveProducers) != 0 {
			t.Errorf("partition %d: %v, %d producers, want UNKNOWN_TOPIC_OR_PARTITION", rp.Partition, err, len(rp.ActiveProducers))
		}
	}
	if s.topics.get("no-such-topic") != nil {
		t.Error("DescribeProducers created a topic")
	}

	// After the commit the producer is still known (Kafka keeps idempotent
	// state), with the marker's coordinator epoch and no open transaction.
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	eventually(t, "commit markers", func() bool {
		d, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}, 2: {}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []int32{0, 2} {
			dp := d[topic].Partitions[p]
			if dp.Err != nil || len(dp.ActiveProducers) != 1 {
				return false
			}
			for _, ap := range dp.ActiveProducers {
				if ap.ProducerID != txnPID || ap.CurrentTxnStartOffset != -1 || ap.CoordinatorEpoch != 0 || ap.LastSequence != 0 {
					return false
				}
			}
		}
		return true
	})
}

// TestProducerIDExpirationConfig: the broker setting reaches every
// partition log, survives a topic config change, and is validated.
func TestProducerIDExpirationConfig(t *testing.T) {
	if d := DefaultConfig().ProducerIDExpiration; d != 24*time.Hour {
		t.Fatalf("default producer id expiration %v", d)
	}
	s := startServer(t, func(c *Config) { c.ProducerIDExpiration = 90 * time.Minute })
	ctx := testCtx(t)
	adm := newAdmin(t, s)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "exp"); err != nil {
		t.Fatal(err)
	}
	want := (90 * time.Minute).Milliseconds()
	check := func(when string) {
		t.Helper()
		if got := s.topics.get("exp").partition(0).log.Config().ProducerIDExpirationMs; got != want {
			t.Fatalf("%s: producer id expiration %d ms, want %d", when, got, want)
		}
	}
	check("created")
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000000")}}, "exp")
	if err != nil || rs[0].Err != nil {
		t.Fatal(err, rs)
	}
	check("after a config change")

	cfg := testConfig(t, t.TempDir())
	cfg.ProducerIDExpiration = -time.Second
	if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("negative expiration: %v", err)
	}
}
