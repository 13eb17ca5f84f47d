package txn

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// logMarkers is a MarkerWriter over real partition logs, as the server
// implements it (minus the group coordinator call).
type logMarkers struct {
	mu   sync.Mutex
	logs map[topicPartition]*storage.Log
	now  func() time.Time
}

func (m *logMarkers) WriteMarker(_ context.Context, topic string, partition int32, pid int64, epoch int16, commit bool, coordEpoch int32) error {
	m.mu.Lock()
	l := m.logs[topicPartition{topic, partition}]
	m.mu.Unlock()
	if l == nil {
		return fmt.Errorf("%s-%d: %w", topic, partition, kerr.UnknownTopicOrPartition)
	}
	_, err := l.AppendControl(ControlBatch(pid, epoch, commit, coordEpoch, m.now().UnixMilli()))
	return err
}

// controlMarkers returns (pid, epoch, commit) of every control batch in l.
func controlMarkers(t *testing.T, l *storage.Log) []string {
	t.Helper()
	ri, err := l.Read(l.StartOffset(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := recordbatch.Split(ri.Records)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range batches {
		h, err := recordbatch.Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Control() {
			continue
		}
		if !h.Transactional() {
			t.Fatal("control batch without the transactional bit")
		}
		recs, err := recordbatch.Records(b)
		if err != nil || len(recs) != 1 {
			t.Fatalf("control batch records: %v %d", err, len(recs))
		}
		var k kmsg.ControlRecordKey
		if err := k.ReadFrom(recs[0].Key); err != nil {
			t.Fatal(err)
		}
		var v kmsg.EndTxnMarker
		if err := v.ReadFrom(recs[0].Value); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d/%d/%s/ce%d", h.ProducerID, h.ProducerEpoch, k.Type, v.CoordinatorEpoch))
	}
	return out
}

func TestControlBatchInRealLogs(t *testing.T) {
	dir := t.TempDir()
	now := func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	open := func(name string) *storage.Log {
		l, err := storage.Open(filepath.Join(dir, name), storage.DefaultConfig(), storage.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	data := open("orders-0")
	state := open("__transaction_state-0")
	lm := &logMarkers{logs: map[topicPartition]*storage.Log{{"orders", 0}: data}, now: now}
	c, err := New(Config{Logs: []*storage.Log{state}, Markers: lm, Now: now,
		OffsetsPartitionFor: func(string) int32 { return 0 },
		AllocateProducerID:  func() (int64, error) { return 7, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	id := "real"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version, init.TransactionalID, init.TransactionTimeoutMillis = 4, &id, 10_000
	ir := do[*kmsg.InitProducerIDResponse](t, c, context.Background(), init)
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version, add.TransactionalID, add.ProducerID, add.ProducerEpoch = 3, id, ir.ProducerID, ir.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "orders", Partitions: []int32{0}}}
	do[*kmsg.AddPartitionsToTxnResponse](t, c, context.Background(), add)

	// The producer's transactional data.
	b := recordbatch.Build(recordbatch.BuildOptions{ProducerID: ir.ProducerID, ProducerEpoch: ir.ProducerEpoch, BaseSequence: 0, Transactional: true},
		[]recordbatch.Record{{Timestamp: now().UnixMilli(), Key: []byte("k"), Value: []byte("v")}})
	if _, err := data.Append(b); err != nil {
		t.Fatal(err)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.Version, end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = 3, id, ir.ProducerID, ir.ProducerEpoch, true
	if r := do[*kmsg.EndTxnResponse](t, c, context.Background(), end); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	got := controlMarkers(t, data)
	if len(got) != 1 || got[0] != "7/0/COMMIT/ce0" {
		t.Fatalf("control batches: %v", got)
	}
	// A re-sent marker (recovery after a crash) is accepted by the log.
	if err := lm.WriteMarker(context.Background(), "orders", 0, 7, 0, true, 0); err != nil {
		t.Fatalf("re-sent marker: %v", err)
	}
	// The key bytes are Kafka's: int16 version 0, int16 type 1.
	recs, err := recordbatch.Records(ControlBatch(7, 0, true, 3, 1))
	if err != nil || binary.BigEndian.Uint32(recs[0].Key) != 1 {
		t.Fatalf("control key %x (%v)", recs[0].Key, err)
	}
}
