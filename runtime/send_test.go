package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

func TestRecordSlabs(t *testing.T) {
	p := &recordSlabs{}
	s := p.GetRecords(300)
	if len(s) != 0 || cap(s) != 512 {
		t.Fatalf("GetRecords(300): len %d cap %d, want 0 and 512", len(s), cap(s))
	}
	s = s[:300]
	p.PutRecords(s)
	again := p.GetRecords(257)
	if cap(again) != 512 || &again[:1][0] != &s[0] {
		t.Error("a slab put back is not reused for the same size class")
	}
	if other := p.GetRecords(300); cap(other) != 512 || &other[:1][0] == &s[0] {
		t.Error("a slab in use was handed out twice")
	}
	if got := cap(p.GetRecords(0)); got != 1 {
		t.Errorf("GetRecords(0): cap %d, want 1", got)
	}
	p.PutRecords(make([]kgo.Record, 0, 300)) // not a class size: dropped
	if p.bytes != 0 {
		t.Errorf("kept %d bytes of a slice that is not a class size", p.bytes)
	}
	for range 1000 {
		p.PutRecords(make([]kgo.Record, 0, 1<<10))
	}
	if p.bytes > slabKeepBytes || p.bytes == 0 {
		t.Errorf("kept %d bytes, want at most %d", p.bytes, slabKeepBytes)
	}
	if got := cap(p.GetRecords(1 << 20)); got != 1<<20 {
		t.Errorf("GetRecords above the largest class: cap %d", got)
	}
}

// newSendThread is a thread with just what the send path needs, its
// client producing to brokers; changelog is a changelog topic.
func newSendThread(t *testing.T, brokers []string, changelog string) *thread {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(partitioner{kgo.StickyKeyPartitioner(nil)}), kgo.UnknownTopicRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	th := &thread{
		app:    &App{plan: &plan{changelogs: map[string]string{changelog: "store"}, repartitions: map[string]int32{}}},
		cl:     cl,
		mE2E:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "e2e"}),
		acked:  map[table.TopicPartition]int64{},
		exited: make(chan struct{}),
		rcl:    cl,
	}
	return th
}

// Records go through the producer goroutine in order; a commit's flush
// waits for all of them; changelog acks are tracked and failures reach
// the production handler with their task.
func TestSendPath(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 2, "out", "app-store-changelog")
		th := newSendThread(t, brokers, "app-store-changelog")
		th.startProducer()
		stopped := false
		defer func() {
			if !stopped {
				th.stop()
			}
		}()
		id := stream.TaskID{Subtopology: 0, Partition: 1}
		s := newSender(th, id)
		const n = 3*sendBatch + 17
		for i := range n {
			th.sendWith(s, stream.RawRecord{Topic: "out", Partition: -1, Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "%d", i), Timestamp: time.Now().UnixMilli()})
			th.sendWith(s, stream.RawRecord{Topic: "app-store-changelog", Partition: 1, Key: []byte("k"), Value: fmt.Appendf(nil, "%d", i), Timestamp: 1})
		}
		th.flushSends()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := th.cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		th.ackMu.Lock()
		acked := th.acked[table.TopicPartition{Topic: "app-store-changelog", Partition: 1}]
		errs := th.prodErrs
		th.ackMu.Unlock()
		if acked != n || len(errs) != 0 {
			t.Fatalf("changelog acked up to %d (want %d), %d production errors", acked, n, len(errs))
		}
		out := newReader(t, brokers, "out")
		out.waitFor(t, 30*time.Second, "output", func(recs []*kgo.Record) bool { return len(recs) >= n })
		last := map[string]int{}
		for _, r := range out.recs {
			var v int
			fmt.Sscan(string(r.Value), &v)
			if p, ok := last[string(r.Key)]; ok && v <= p {
				t.Fatalf("key %s: %d after %d", r.Key, v, p)
			}
			last[string(r.Key)] = v
		}
		if len(out.recs) != n {
			t.Errorf("%d output records, want %d", len(out.recs), n)
		}

		// A record that cannot be delivered reaches the handler with its
		// task.
		th.sendWith(s, stream.RawRecord{Topic: "no-such-topic", Partition: -1, Value: []byte("v"), Timestamp: 1})
		th.flushSends()
		if err := th.cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		th.app.cfg.Errors.Production = func(ec stream.ErrorContext, err error) stream.ErrorAction {
			if ec.TaskID != id {
				t.Errorf("production error of task %v, want %v", ec.TaskID, id)
			}
			return stream.Fail
		}
		th.log = slog.New(slog.NewTextHandler(io.Discard, nil))
		var te *stream.TaskError
		if err := th.checkProduction(); !errors.As(err, &te) || te.Task != id || te.Kind != "production" {
			t.Errorf("checkProduction = %v, want a production TaskError of %v", err, id)
		}

		// stop ends the producer goroutine.
		stopped = true
		th.stop()
		select {
		case <-th.sendDone:
		default:
			t.Error("producer goroutine still running after stop")
		}
	})
}

func TestRecordFreeList(t *testing.T) {
	th := &thread{}
	r := th.newRecord()
	r.Topic, r.Value, r.Offset = "t", []byte("v"), 7
	th.releaseRecord(r)
	if got := th.newRecord(); got != r || got.Topic != "" || got.Value != nil || got.Offset != 0 {
		t.Errorf("newRecord = %p %+v, want the released record, zeroed", got, got)
	}
	for range freeRecordsMax + 10 {
		th.releaseRecord(new(kgo.Record))
	}
	if len(th.freeRecs) != freeRecordsMax {
		t.Errorf("free list holds %d records, want at most %d", len(th.freeRecs), freeRecordsMax)
	}
	seen := map[*kgo.Record]bool{}
	for range freeRecordsTake + 1 {
		r := th.newRecord()
		if seen[r] {
			t.Fatal("a record was handed out twice")
		}
		seen[r] = true
	}
	if len(th.freeRecs) != freeRecordsMax-2*freeRecordsTake {
		t.Errorf("free list holds %d records after taking %d, want %d", len(th.freeRecs), freeRecordsTake+1, freeRecordsMax-2*freeRecordsTake)
	}
}
