package stream

import (
	"fmt"
	"testing"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/table"
)

// queueEnv records what a task sends.
type queueEnv struct{ sent []RawRecord }

func (e *queueEnv) OpenStore(info StoreInfo) (StateStore, error) {
	return table.NewInMemory(info.Name), nil
}
func (e *queueEnv) Send(r RawRecord) error { e.sent = append(e.sent, r); return nil }

func newQueueTask(t *testing.T) (*Task, *queueEnv) {
	t.Helper()
	b := NewBuilder()
	Stream(b, With(serde.Bytes(), serde.Bytes()), "a", "b").To("out", Produced[[]byte, []byte]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	env := &queueEnv{}
	task, err := top.NewTask(TaskConfig{ApplicationID: "app", Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Close() })
	return task, env
}

// A partition queue that never quite empties (records arrive while some
// are still buffered) keeps its size bounded and its order.
func TestPartQueueStaysBounded(t *testing.T) {
	task, env := newQueueTask(t)
	var next int64
	add := func(n int) {
		recs := make([]RawRecord, n)
		for i := range recs {
			recs[i] = RawRecord{Topic: "a", Offset: next, Key: []byte("k"), Value: fmt.Appendf(nil, "%d", next), Timestamp: next}
			next++
		}
		if err := task.Add(recs...); err != nil {
			t.Fatal(err)
		}
	}
	add(100)
	for range 1000 {
		add(100)
		if _, err := task.Process(100); err != nil {
			t.Fatal(err)
		}
	}
	q := task.queues[topicPart{"a", 0}]
	if got := task.Buffered(); got != 100 {
		t.Fatalf("Buffered = %d, want 100", got)
	}
	if c := cap(q.recs); c > 1024 {
		t.Errorf("queue capacity grew to %d for at most 200 records", c)
	}
	if _, err := task.Process(1000); err != nil {
		t.Fatal(err)
	}
	if len(env.sent) != int(next) {
		t.Fatalf("sent %d records, want %d", len(env.sent), next)
	}
	for i, r := range env.sent {
		if string(r.Value) != fmt.Sprint(i) {
			t.Fatalf("record %d: value %q, out of order", i, r.Value)
		}
	}
	// Drained: the queue holds no references to the records' bytes.
	for i, r := range q.recs[:cap(q.recs)] {
		if r.Key != nil || r.Value != nil {
			t.Fatalf("drained queue still holds record %d", i)
		}
	}
	if got := task.CommitOffsets()[table.TopicPartition{Topic: "a", Partition: 0}]; got != next {
		t.Errorf("commit offset %d, want %d", got, next)
	}
}

// AddFunc buffers in place like Add, and processing still follows the
// timestamps across partitions.
func TestAddFunc(t *testing.T) {
	task, env := newQueueTask(t)
	fill := func(topic string, ts ...int64) func([]RawRecord) {
		return func(dst []RawRecord) {
			for i := range dst {
				dst[i] = RawRecord{Topic: topic, Offset: int64(i), Key: []byte(topic), Value: fmt.Appendf(nil, "%s%d", topic, ts[i]), Timestamp: ts[i]}
			}
		}
	}
	if err := task.AddFunc("a", 0, 3, fill("a", 1, 4, 6)); err != nil {
		t.Fatal(err)
	}
	if err := task.AddFunc("b", 0, 2, fill("b", 2, 5)); err != nil {
		t.Fatal(err)
	}
	if err := task.AddFunc("a", 0, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := task.AddFunc("c", 0, 1, fill("c", 1)); err == nil {
		t.Error("AddFunc accepted a topic the task does not read")
	}
	if got := task.Buffered(); got != 5 {
		t.Fatalf("Buffered = %d, want 5", got)
	}
	if got := task.BufferedFor("b", 0); got != 2 {
		t.Fatalf("BufferedFor(b) = %d, want 2", got)
	}
	if _, err := task.Process(10); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range env.sent {
		got = append(got, string(r.Value))
	}
	if want := "[a1 b2 a4 b5 a6]"; fmt.Sprint(got) != want {
		t.Errorf("processed %v, want %s", got, want)
	}
}
