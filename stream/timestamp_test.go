package stream_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
	"github.com/eddy-streams/eddy/table"
)

var errTSBad = errors.New("no timestamp in value")

// tsExtract fails for records whose value is "bad" and otherwise returns
// the record's own timestamp (negative ones included).
func tsExtract(rec *stream.RawRecord, _ int64) (int64, error) {
	if string(rec.Value) == "bad" {
		return 0, errTSBad
	}
	return rec.Timestamp, nil
}

// tsTopology reads topics (one source each, named src-<topic>, merged) with
// tsExtract and the given per-source policy, and writes them to "out".
func tsTopology(t *testing.T, p stream.InvalidTimestampPolicy, topics ...string) *stream.Topology {
	t.Helper()
	b := stream.NewBuilder()
	var s stream.KStream[string, string]
	for i, tp := range topics {
		c := stream.With(serde.String(), serde.String()).WithName("src-" + tp).
			WithTimestampExtractor(tsExtract).WithInvalidTimestampPolicy(p)
		in := stream.Stream(b, c, tp)
		if i == 0 {
			s = in
		} else {
			s = s.Merge(in)
		}
	}
	s.To("out", stream.Produced[string, string]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// tsCase is a record with an invalid timestamp: its value, raw timestamp
// and what the error says.
type tsCase struct {
	name  string
	value string
	ts    int64
	msg   string
}

var tsCases = []tsCase{
	{"negative", "neg", -5, "negative timestamp -5"},
	{"extractor-error", "bad", 500, "timestamp extractor: " + errTSBad.Error()},
}

func tsRead(t *testing.T, d *streamtest.Driver) string {
	t.Helper()
	recs, err := streamtest.OutputTopic(d, "out", serde.String(), serde.String()).ReadRecords()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.String())
	}
	return strings.Join(got, " ")
}

// tsWantFail checks that err is the task failure of FailOnInvalidTimestamp
// for the record at in-0@offset read by node.
func tsWantFail(t *testing.T, err error, node string, offset int64, msg string) {
	t.Helper()
	if !errors.Is(err, streamtest.ErrFailed) || !errors.Is(err, stream.ErrInvalidTimestamp) {
		t.Fatalf("error %v: want a task failure for an invalid timestamp", err)
	}
	var te *stream.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a *TaskError", err)
	}
	if te.Kind != "timestamp" || te.Node != node || te.Source == nil || te.Source.Offset != offset {
		t.Errorf("TaskError kind %q node %q source %+v", te.Kind, te.Node, te.Source)
	}
	pos := fmt.Sprintf("%s-0@%d", te.Source.Topic, offset)
	for _, want := range []string{"timestamp error in " + node, pos, msg} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestInvalidTimestampFailIsDefault(t *testing.T) {
	for _, c := range tsCases {
		t.Run(c.name, func(t *testing.T) {
			d, err := streamtest.New(tsTopology(t, stream.InvalidTimestampDefault, "in"))
			if err != nil {
				t.Fatal(err)
			}
			in := streamtest.InputTopic(d, "in", serde.String(), serde.String())
			if err := in.Pipe("a", "ok", 10); err != nil {
				t.Fatal(err)
			}
			err = in.Pipe("b", c.value, c.ts)
			tsWantFail(t, err, "src-in", 1, c.msg)
			if c.name == "extractor-error" && !errors.Is(err, errTSBad) {
				t.Errorf("error %v does not wrap the extractor's error", err)
			}
			if got := tsRead(t, d); got != "a=ok@10" {
				t.Errorf("output %q", got)
			}
			if n := d.Dropped("invalid-timestamp"); n != 0 {
				t.Errorf("dropped %d, want 0 (the task failed)", n)
			}
			// The driver stays failed.
			if err := in.Pipe("c", "ok", 20); !errors.Is(err, streamtest.ErrFailed) {
				t.Errorf("pipe after failure: %v", err)
			}
		})
	}
}

func TestInvalidTimestampSkip(t *testing.T) {
	// The policy set on the source, or for the task (the driver).
	configs := []struct {
		name     string
		consumed stream.InvalidTimestampPolicy
		opts     []streamtest.Option
	}{
		{"consumed", stream.SkipOnInvalidTimestamp, nil},
		{"task", stream.InvalidTimestampDefault, []streamtest.Option{streamtest.WithInvalidTimestampPolicy(stream.SkipOnInvalidTimestamp)}},
		{"consumed-overrides-task", stream.SkipOnInvalidTimestamp, []streamtest.Option{streamtest.WithInvalidTimestampPolicy(stream.FailOnInvalidTimestamp)}},
	}
	for _, cfg := range configs {
		for _, c := range tsCases {
			t.Run(cfg.name+"/"+c.name, func(t *testing.T) {
				d, err := streamtest.New(tsTopology(t, cfg.consumed, "in"), cfg.opts...)
				if err != nil {
					t.Fatal(err)
				}
				in := streamtest.InputTopic(d, "in", serde.String(), serde.String())
				for _, r := range []struct {
					k, v string
					ts   int64
				}{{"a", "ok", 10}, {"b", c.value, c.ts}, {"c", "ok", 20}} {
					if err := in.Pipe(r.k, r.v, r.ts); err != nil {
						t.Fatalf("pipe %s: %v", r.k, err)
					}
				}
				if got := tsRead(t, d); got != "a=ok@10 c=ok@20" {
					t.Errorf("output %q", got)
				}
				if n := d.Dropped("invalid-timestamp"); n != 1 {
					t.Errorf("dropped %d, want 1", n)
				}
				if dl := d.Records("dlq"); len(dl) != 0 {
					t.Errorf("dead letters without a dead-letter topic: %v", dl)
				}
			})
		}
	}
}

func TestInvalidTimestampSkipDeadLetter(t *testing.T) {
	for _, c := range tsCases {
		t.Run(c.name, func(t *testing.T) {
			d, err := streamtest.New(tsTopology(t, stream.SkipOnInvalidTimestamp, "in"),
				streamtest.WithErrorHandlers(stream.ErrorHandlers{DeadLetterTopic: "dlq"}))
			if err != nil {
				t.Fatal(err)
			}
			in := streamtest.InputTopic(d, "in", serde.String(), serde.String())
			if err := in.Pipe("a", "ok", 10); err != nil {
				t.Fatal(err)
			}
			if err := in.Pipe("b", c.value, c.ts, stream.Header{Key: "h", Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			dl := d.Records("dlq")
			if len(dl) != 1 {
				t.Fatalf("dead letters %v, want 1", dl)
			}
			r := dl[0]
			if string(r.Key) != "b" || string(r.Value) != c.value || r.Timestamp != c.ts {
				t.Errorf("dead letter %q=%q@%d", r.Key, r.Value, r.Timestamp)
			}
			headers := map[string]string{}
			for _, h := range r.Headers {
				headers[h.Key] = string(h.Value)
			}
			want := map[string]string{
				"h":                         "v",
				stream.HeaderErrorException: "invalid-timestamp",
				stream.HeaderErrorNode:      "src-in",
				stream.HeaderErrorTopic:     "in",
				stream.HeaderErrorPartition: "0",
				stream.HeaderErrorOffset:    "1",
			}
			for k, v := range want {
				if headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, headers[k], v)
				}
			}
			if m := headers[stream.HeaderErrorMessage]; !strings.Contains(m, c.msg) {
				t.Errorf("message header %q does not say %q", m, c.msg)
			}
			if n := d.Dropped("invalid-timestamp"); n != 1 {
				t.Errorf("dropped %d, want 1", n)
			}
			if got := tsRead(t, d); got != "a=ok@10" {
				t.Errorf("output %q", got)
			}
		})
	}
}

func TestInvalidTimestampUsePartitionTime(t *testing.T) {
	for _, c := range tsCases {
		t.Run(c.name, func(t *testing.T) {
			// Two topics, so partition time (per topic-partition) and stream
			// time (per task) differ.
			d, err := streamtest.New(tsTopology(t, stream.UsePartitionTimeOnInvalidTimestamp, "a", "b"))
			if err != nil {
				t.Fatal(err)
			}
			a := streamtest.InputTopic(d, "a", serde.String(), serde.String())
			b := streamtest.InputTopic(d, "b", serde.String(), serde.String())
			steps := []struct {
				in   *streamtest.Input[string, string]
				k, v string
				ts   int64
			}{
				{a, "a1", "ok", 100},
				{b, "b1", "ok", 50},
				{b, "b2", "ok", 30},      // partition time of b stays 50
				{b, "b3", c.value, c.ts}, // → 50, b's time, not stream time 100
				{a, "a2", c.value, c.ts}, // → 100
				{a, "a3", "ok", 70},
				{a, "a4", c.value, c.ts}, // still 100: the largest seen on a
			}
			for _, s := range steps {
				if err := s.in.Pipe(s.k, s.v, s.ts); err != nil {
					t.Fatalf("pipe %s: %v", s.k, err)
				}
			}
			want := fmt.Sprintf("a1=ok@100 b1=ok@50 b2=ok@30 b3=%[1]s@50 a2=%[1]s@100 a3=ok@70 a4=%[1]s@100", c.value)
			if got := tsRead(t, d); got != want {
				t.Errorf("output\n got %s\nwant %s", got, want)
			}
			if n := d.Dropped("invalid-timestamp"); n != 0 {
				t.Errorf("dropped %d, want 0", n)
			}
		})
	}
}

func TestInvalidTimestampUsePartitionTimeUnknown(t *testing.T) {
	for _, c := range tsCases {
		t.Run(c.name, func(t *testing.T) {
			d, err := streamtest.New(tsTopology(t, stream.InvalidTimestampDefault, "a", "b"),
				streamtest.WithInvalidTimestampPolicy(stream.UsePartitionTimeOnInvalidTimestamp))
			if err != nil {
				t.Fatal(err)
			}
			// Stream time is 100, but partition b has no time yet.
			if err := streamtest.InputTopic(d, "a", serde.String(), serde.String()).Pipe("a1", "ok", 100); err != nil {
				t.Fatal(err)
			}
			err = streamtest.InputTopic(d, "b", serde.String(), serde.String()).Pipe("b1", c.value, c.ts)
			tsWantFail(t, err, "src-b", 0, c.msg)
			if !strings.Contains(err.Error(), "partition time unknown") {
				t.Errorf("error %q does not say the partition time is unknown", err)
			}
			if got := tsRead(t, d); got != "a1=ok@100" {
				t.Errorf("output %q", got)
			}
		})
	}
}

func TestInvalidTimestampConsumedFailOverridesTask(t *testing.T) {
	d, err := streamtest.New(tsTopology(t, stream.FailOnInvalidTimestamp, "in"),
		streamtest.WithInvalidTimestampPolicy(stream.SkipOnInvalidTimestamp))
	if err != nil {
		t.Fatal(err)
	}
	err = streamtest.InputTopic(d, "in", serde.String(), serde.String()).Pipe("a", "neg", -1)
	tsWantFail(t, err, "src-in", 0, "negative timestamp -1")
}

func TestInvalidTimestampUnknownPolicy(t *testing.T) {
	b := stream.NewBuilder()
	stream.Stream(b, stream.With(serde.String(), serde.String()).WithName("src").
		WithInvalidTimestampPolicy(stream.InvalidTimestampPolicy(9)), "in").To("out", stream.Produced[string, string]{})
	_, err := b.Build()
	if err == nil || !strings.Contains(err.Error(), "src") || !strings.Contains(err.Error(), "InvalidTimestampPolicy(9)") {
		t.Fatalf("Build: %v, want an error naming the source and the policy", err)
	}
}

// tsEnv is a TaskEnv for a task without stores.
type tsEnv struct{ sent []stream.RawRecord }

func (e *tsEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	return nil, fmt.Errorf("no store %s", info.Name)
}
func (e *tsEnv) Send(rec stream.RawRecord) error { e.sent = append(e.sent, rec); return nil }

// TestInvalidTimestampStreamTimeAndLateness runs a task directly to see
// its stream time: skipped records do not advance it, and records below it
// are reported to the Lateness hook.
func TestInvalidTimestampStreamTimeAndLateness(t *testing.T) {
	type late struct {
		node string
		d    time.Duration
	}
	var lates []late
	env := &tsEnv{}
	task, err := tsTopology(t, stream.SkipOnInvalidTimestamp, "in").NewTask(stream.TaskConfig{
		ApplicationID: "app", Env: env,
		Hooks: stream.TaskHooks{Lateness: func(node string, d time.Duration) { lates = append(lates, late{node, d}) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	defer task.Close()
	steps := []struct {
		value      string
		ts         int64
		streamTime int64
	}{
		{"bad", 500, -1}, // skipped: an extractor error, though the raw timestamp is 500
		{"ok", 100, 100},
		{"bad", 900, 100},
		{"neg", -1, 100},
		{"ok", 40, 100}, // 60 ms late
		{"ok", 100, 100},
		{"ok", 200, 200},
		{"ok", 199, 200}, // 1 ms late
	}
	for i, s := range steps {
		if err := task.Add(stream.RawRecord{Topic: "in", Offset: int64(i), Key: []byte("k"), Value: []byte(s.value), Timestamp: s.ts}); err != nil {
			t.Fatal(err)
		}
		if n, err := task.Process(10); n != 1 || err != nil {
			t.Fatalf("step %d: processed %d, %v", i, n, err)
		}
		if got := task.StreamTime(); got != s.streamTime {
			t.Errorf("step %d (%s@%d): stream time %d, want %d", i, s.value, s.ts, got, s.streamTime)
		}
	}
	want := []late{{"src-in", 60 * time.Millisecond}, {"src-in", time.Millisecond}}
	if fmt.Sprint(lates) != fmt.Sprint(want) {
		t.Errorf("lateness %v, want %v", lates, want)
	}
	if len(env.sent) != 5 {
		t.Errorf("sent %d records, want the 5 valid ones", len(env.sent))
	}
	offs := task.CommitOffsets()
	if got := offs[table.TopicPartition{Topic: "in"}]; got != int64(len(steps)) {
		t.Errorf("commit offset %d, want %d (skipped records are consumed)", got, len(steps))
	}
}

func TestInvalidTimestampPolicyString(t *testing.T) {
	for p, want := range map[stream.InvalidTimestampPolicy]string{
		stream.InvalidTimestampDefault:            "default",
		stream.FailOnInvalidTimestamp:             "fail",
		stream.SkipOnInvalidTimestamp:             "skip",
		stream.UsePartitionTimeOnInvalidTimestamp: "use-partition-time",
		stream.InvalidTimestampPolicy(7):          "InvalidTimestampPolicy(7)",
	} {
		if got := p.String(); got != want {
			t.Errorf("%d: %q, want %q", int(p), got, want)
		}
	}
}

// The TaskError of a failed last record keeps the record's position (the
// queue's slot is reused once the record is processed).
func TestTaskErrorKeepsPositionOfLastRecord(t *testing.T) {
	b := stream.NewBuilder()
	stream.Stream(b, stream.With(serde.String(), serde.Int64()), "in").To("out", stream.Produced[string, int64]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.PipeRaw(stream.RawRecord{Topic: "in", Key: []byte("k"), Value: []byte("bad"), Timestamp: 1})
	var te *stream.TaskError
	if !errors.As(err, &te) || te.Source == nil || te.Source.Topic != "in" || te.Source.Offset != 0 {
		t.Fatalf("got %v (%+v)", err, te)
	}
	if !strings.Contains(err.Error(), "at in-0@0") {
		t.Fatalf("position missing: %v", err)
	}
}
