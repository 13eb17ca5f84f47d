package interop

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestKafkaGoWriterReaderGroup writes with segmentio/kafka-go's Writer and
// reads with a Reader in a consumer group (FindCoordinator v0, JoinGroup
// v1), committing explicitly; a second Reader of the group then finds
// nothing left and the committed offsets are the end offsets.
func TestKafkaGoWriterReaderGroup(t *testing.T) {
	c := startCluster(t)
	topic := createTopic(t, c.Addr(), 3, nil)
	group := "g-" + topic
	want := testRecords("kafkago", 300)

	w := &kafka.Writer{
		Addr:         kafka.TCP(c.Addr()),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Compression:  kafka.Snappy,
	}
	msgs := make([]kafka.Message, len(want))
	for i, r := range want {
		msgs[i] = kafka.Message{Key: []byte(r.Key), Value: []byte(r.Value)}
	}
	ctx := testCtx(t, 60*time.Second)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Writer.Close: %v", err)
	}
	stored := consumeAll(t, c.Addr(), topic, len(want))
	checkOffsetsContiguous(t, stored)
	checkSameValues(t, stored, want, false)

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{c.Addr()},
		GroupID:           group,
		Topic:             topic,
		MinBytes:          1,
		MaxBytes:          10 << 20,
		MaxWait:           200 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    10 * time.Second,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
	})
	var got []rec
	for len(got) < len(want) {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("FetchMessage after %d records: %v", len(got), err)
		}
		got = append(got, rec{Partition: int32(m.Partition), Offset: m.Offset, Key: string(m.Key), Value: string(m.Value)})
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("CommitMessages: %v", err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Reader.Close: %v", err)
	}
	checkSameRecords(t, got, stored)
	waitCommittedAtEnd(t, c.Addr(), group, topic)

	// A new member of the group resumes after the commits: it sees only a
	// record written now.
	w2 := &kafka.Writer{Addr: kafka.TCP(c.Addr()), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	if err := w2.WriteMessages(ctx, kafka.Message{Key: []byte("late"), Value: []byte("late-value")}); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	w2.Close()
	r2 := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{c.Addr()}, GroupID: group, Topic: topic, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 200 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond, SessionTimeout: 10 * time.Second,
	})
	defer r2.Close()
	m, err := r2.FetchMessage(ctx)
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	if string(m.Value) != "late-value" {
		t.Fatalf("second reader resumed at %d/%d %q, want the late record", m.Partition, m.Offset, m.Value)
	}
}
