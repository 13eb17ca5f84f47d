package interop

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "eddy-interop-sarama"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func saramaMessages(rs []rec, topic string) []*sarama.ProducerMessage {
	msgs := make([]*sarama.ProducerMessage, len(rs))
	for i, r := range rs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.Key), Value: sarama.StringEncoder(r.Value)}
	}
	return msgs
}

func fromSarama(msgs []*sarama.ProducerMessage) []rec {
	out := make([]rec, len(msgs))
	for i, m := range msgs {
		k, _ := m.Key.Encode()
		v, _ := m.Value.Encode()
		out[i] = rec{Partition: m.Partition, Offset: m.Offset, Key: string(k), Value: string(v)}
	}
	return out
}

// TestSaramaSyncProducer sends with sarama's SyncProducer (plain,
// idempotent, compressed) and checks every acknowledged offset.
func TestSaramaSyncProducer(t *testing.T) {
	c := startCluster(t)
	for _, tc := range []struct {
		name       string
		idempotent bool
		conf       func(*sarama.Config)
	}{
		{"plain", false, func(*sarama.Config) {}},
		{"idempotent", true, func(cfg *sarama.Config) {
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
		}},
		{"gzip", false, func(cfg *sarama.Config) { cfg.Producer.Compression = sarama.CompressionGZIP }},
		{"zstd", false, func(cfg *sarama.Config) { cfg.Producer.Compression = sarama.CompressionZSTD }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.idempotent {
				requireIdempotence(t, c.Addr())
			}
			topic := createTopic(t, c.Addr(), 3, nil)
			cfg := saramaConfig()
			tc.conf(cfg)
			p, err := sarama.NewSyncProducer([]string{c.Addr()}, cfg)
			if err != nil {
				t.Fatalf("NewSyncProducer: %v", err)
			}
			defer p.Close()
			rs := testRecords("sarama"+tc.name, 300)
			// One at a time for the first few, then in bulk.
			msgs := saramaMessages(rs, topic)
			for _, m := range msgs[:10] {
				if _, _, err := p.SendMessage(m); err != nil {
					t.Fatalf("SendMessage: %v", err)
				}
			}
			if err := p.SendMessages(msgs[10:]); err != nil {
				t.Fatalf("SendMessages: %v", err)
			}
			acked := fromSarama(msgs)
			checkOffsetsContiguous(t, acked)
			checkSameRecords(t, consumeAll(t, c.Addr(), topic, len(rs)), acked)
		})
	}
}

// TestSaramaAsyncProducer sends with sarama's AsyncProducer and checks
// every success against what the broker serves.
func TestSaramaAsyncProducer(t *testing.T) {
	c := startCluster(t)
	topic := createTopic(t, c.Addr(), 3, nil)
	cfg := saramaConfig()
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	p, err := sarama.NewAsyncProducer([]string{c.Addr()}, cfg)
	if err != nil {
		t.Fatalf("NewAsyncProducer: %v", err)
	}
	rs := testRecords("saramaasync", 1000)
	go func() {
		for _, m := range saramaMessages(rs, topic) {
			p.Input() <- m
		}
	}()
	var acked []*sarama.ProducerMessage
	timeout := time.After(60 * time.Second)
	for len(acked) < len(rs) {
		select {
		case m := <-p.Successes():
			acked = append(acked, m)
		case e := <-p.Errors():
			t.Fatalf("async produce: %v", e.Err)
		case <-timeout:
			t.Fatalf("only %d of %d acknowledged", len(acked), len(rs))
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := fromSarama(acked)
	checkOffsetsContiguous(t, got)
	checkSameRecords(t, consumeAll(t, c.Addr(), topic, len(rs)), got)
}

type saramaHandler struct {
	mu   *sync.Mutex
	got  *[]rec
	name string
}

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		*h.got = append(*h.got, rec{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)})
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// TestSaramaConsumerGroup consumes with two sarama group members; together
// they read every record at its offset and commit the end offsets.
func TestSaramaConsumerGroup(t *testing.T) {
	c := startCluster(t)
	topic := createTopic(t, c.Addr(), 4, nil)
	group := "g-" + topic
	want := produceFranz(t, c.Addr(), topic, testRecords("saramag", 400))

	var mu sync.Mutex
	var got []rec
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var groups []sarama.ConsumerGroup
	for i := 0; i < 2; i++ {
		cfg := saramaConfig()
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
		cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
		cfg.Consumer.Group.Session.Timeout = 10 * time.Second
		cfg.Consumer.Return.Errors = true
		g, err := sarama.NewConsumerGroup([]string{c.Addr()}, group, cfg)
		if err != nil {
			t.Fatalf("NewConsumerGroup: %v", err)
		}
		groups = append(groups, g)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := g.Consume(ctx, []string{topic}, saramaHandler{mu: &mu, got: &got}); err != nil &&
					!errors.Is(err, sarama.ErrClosedConsumerGroup) && ctx.Err() == nil {
					t.Errorf("Consume: %v", err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for err := range g.Errors() {
				if ctx.Err() == nil {
					t.Errorf("consumer group error: %v", err)
				}
			}
		}()
	}
	waitFor(t, 60*time.Second, "sarama group to consume everything", func() error {
		mu.Lock()
		defer mu.Unlock()
		seen := map[rec]bool{}
		for _, r := range got {
			seen[r] = true
		}
		for _, w := range want {
			if !seen[w] {
				return errors.New("missing " + w.String())
			}
		}
		return nil
	})
	cancel()
	for _, g := range groups {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	wg.Wait()
	mu.Lock()
	checkSameValues(t, got, want, true)
	mu.Unlock()
	waitCommittedAtEnd(t, c.Addr(), group, topic)
}
