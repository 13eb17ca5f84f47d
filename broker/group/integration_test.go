package group_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/broker"
)

func init() {
	if os.Getenv("EDDY_TEST_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
}

// startBroker runs a real broker on dir with random ports.
func startBroker(t *testing.T, dir string) *broker.Server {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = ""
	cfg.OffsetsTopicPartitions = 3
	if os.Getenv("EDDY_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func client(t *testing.T, s *broker.Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func consumer(t *testing.T, s *broker.Server, group, topic string) *kgo.Client {
	return client(t, s,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.HeartbeatInterval(100*time.Millisecond),
		kgo.SessionTimeout(6*time.Second),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
}

// consume polls cl until n records arrived and returns their values.
func consume(ctx context.Context, t *testing.T, cl *kgo.Client, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestFranzGoGroupAgainstBroker runs franz-go consumers and kadm against
// a real broker: a group consumes and commits, a second member joins,
// the broker restarts and the group resumes from its commits.
func TestFranzGoGroupAgainstBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	s := startBroker(t, dir)
	defer func() { s.Close() }()

	const topic, group = "orders", "billing"
	admin := kadm.NewClient(client(t, s))
	if _, err := admin.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod := client(t, s, kgo.DefaultProduceTopic(topic))
	produce := func(from, to int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 100)

	c1 := consumer(t, s, group, topic)
	if got := consume(ctx, t, c1, 100); len(got) != 100 {
		t.Fatalf("consumed %d", len(got))
	}
	if err := c1.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	// A second member joins: the group rebalances to two members sharing
	// the four partitions.
	c2 := consumer(t, s, group, topic)
	var wg sync.WaitGroup
	for _, c := range []*kgo.Client{c1, c2} {
		wg.Go(func() {
			for ctx.Err() == nil {
				if c.PollRecords(ctx, 1).IsClientClosed() {
					return
				}
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		dg, err := admin.DescribeGroups(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		d := dg[group]
		assigned := 0
		for _, m := range d.Members {
			if ca, ok := m.Assigned.AsConsumer(); ok {
				for _, at := range ca.Topics {
					assigned += len(at.Partitions)
				}
			}
		}
		if d.State == "Stable" && len(d.Members) == 2 && assigned == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group never stabilised with two members: %+v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c2.Close()
	c1.Close()
	wg.Wait()
	prod.Close()

	offs, err := admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 100 {
		t.Fatalf("committed offsets sum to %d, want 100", total)
	}
	admin.Close()

	// Restart on the same data dir: the commits survive and a consumer of
	// the group reads only what was produced after them.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = startBroker(t, dir)
	prod = client(t, s, kgo.DefaultProduceTopic(topic))
	defer prod.Close()
	produce(100, 110)
	c3 := consumer(t, s, group, topic)
	defer c3.Close()
	got := consume(ctx, t, c3, 10)
	for _, v := range got {
		var i int
		if _, err := fmt.Sscanf(v, "v%d", &i); err != nil || i < 100 {
			t.Fatalf("re-read %q after restart: commits lost", v)
		}
	}
	if err := c3.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	c3.Close()

	// The group is empty now: kadm can delete it.
	admin = kadm.NewClient(client(t, s))
	defer admin.Close()
	if _, err := admin.DeleteGroup(ctx, group); err != nil {
		t.Fatal(err)
	}
	lg, err := admin.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lg[group]; ok {
		t.Fatalf("group still listed after delete: %v", lg)
	}
}

// TestKafkaGoReaderGroup runs segmentio/kafka-go's group Reader, which
// speaks the oldest versions (JoinGroup v1, SyncGroup/Heartbeat v0,
// OffsetCommit v2, OffsetFetch v1).
func TestKafkaGoReaderGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := startBroker(t, t.TempDir())
	defer s.Close()
	const topic, group = "events", "kgo-reader"
	admin := kadm.NewClient(client(t, s))
	defer admin.Close()
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod := client(t, s, kgo.DefaultProduceTopic(topic))
	defer prod.Close()
	for i := range 20 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{s.Addr()},
		GroupID:           group,
		Topic:             topic,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
	})
	for i := range 20 {
		if _, err := r.ReadMessage(ctx); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	offs, err := admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 20 {
		t.Fatalf("kafka-go committed %d records, want 20", total)
	}
}

// saramaHandler counts the messages it consumes and marks them.
type saramaHandler struct {
	mu   sync.Mutex
	seen map[string]bool
	n    int
	done chan struct{}
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		sess.MarkMessage(msg, "")
		h.mu.Lock()
		h.seen[string(msg.Value)] = true
		if len(h.seen) == h.n {
			select {
			case <-h.done:
			default:
				close(h.done)
			}
		}
		h.mu.Unlock()
	}
	return nil
}

// TestSaramaConsumerGroup runs IBM/sarama's consumer group (JoinGroup v3,
// SyncGroup v2, OffsetCommit/OffsetFetch of Kafka 2.1) with a static
// member id.
func TestSaramaConsumerGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := startBroker(t, t.TempDir())
	defer s.Close()
	const topic, group = "clicks", "sarama"
	admin := kadm.NewClient(client(t, s))
	defer admin.Close()
	if _, err := admin.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod := client(t, s, kgo.DefaultProduceTopic(topic))
	defer prod.Close()
	const n = 30
	for i := range n {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_3_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 50 * time.Millisecond
	cfg.Consumer.Group.InstanceId = "sarama-1"
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{s.Addr()}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &saramaHandler{seen: map[string]bool{}, n: n, done: make(chan struct{})}
	cctx, ccancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		for cctx.Err() == nil {
			if err := cg.Consume(cctx, []string{topic}, h); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
		t.Fatalf("sarama consumed %d of %d", len(h.seen), n)
	}
	// The marked offsets reach the broker with the next auto-commit.
	deadline := time.Now().Add(10 * time.Second)
	for {
		offs, err := admin.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		total := int64(0)
		offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		if total == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sarama committed %d of %d", total, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dg, err := admin.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if d := dg[group]; d.State != "Stable" || len(d.Members) != 1 || d.Members[0].InstanceID == nil || *d.Members[0].InstanceID != "sarama-1" {
		t.Fatalf("describe: %+v", d)
	}
	ccancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := cg.Close(); err != nil {
		t.Fatal(err)
	}
}
