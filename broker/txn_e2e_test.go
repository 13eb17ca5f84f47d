package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readAll reads topic from the start until it has want records, with the
// given isolation level, and returns the values.
func readAll(t *testing.T, s *Server, topic string, want int, committed bool) []string {
	t.Helper()
	ctx := testCtx(t)
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl := newClient(t, s, opts...)
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading %s (got %d of %d): %v", topic, len(got), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// endOffsets is the sum of the topic's partitions' end offsets.
func endOffsets(t *testing.T, s *Server, topic string) int64 {
	t.Helper()
	var n int64
	for _, p := range s.topics.get(topic).partitions() {
		n += p.log.EndOffset()
	}
	return n
}

// TestTransactionsCommitAbort: a read_committed consumer sees exactly the
// committed transactions' records, a read_uncommitted one sees the aborted
// ones too, and markers are in the log but never returned as records.
func TestTransactionsCommitAbort(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	if _, err := newAdmin(t, s).CreateTopic(ctx, 2, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	p := newClient(t, s, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("tx"))
	var committed []string
	batches := []struct {
		n      int
		commit bool
	}{{10, true}, {5, false}, {3, true}, {4, false}}
	total := 0
	for b, batch := range batches {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range batch.n {
			v := fmt.Sprintf("b%d-%d", b, i)
			if err := p.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if batch.commit {
				committed = append(committed, v)
			}
		}
		total += batch.n
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(batch.commit)); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, s, "tx", len(committed), true)
	slices.Sort(got)
	slices.Sort(committed)
	if !slices.Equal(got, committed) {
		t.Fatalf("read_committed got %v, want %v", got, committed)
	}
	if all := readAll(t, s, "tx", total, false); len(all) != total {
		t.Fatalf("read_uncommitted got %d records, want %d", len(all), total)
	}
	// Each transaction left one marker on each partition it touched.
	if n := endOffsets(t, s, "tx"); n <= int64(total) {
		t.Fatalf("end offsets sum %d: no markers after %d records", n, total)
	}
}

// TestTransactionFencesZombie: a second producer with the same
// transactional id fences the first, whose open transaction is aborted
// and whose commit fails.
func TestTransactionFencesZombie(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	if _, err := newAdmin(t, s).CreateTopic(ctx, 1, 1, nil, "z"); err != nil {
		t.Fatal(err)
	}
	zombie := newClient(t, s, kgo.TransactionalID("z-1"), kgo.DefaultProduceTopic("z"))
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, kgo.StringRecord("zombie")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := newClient(t, s, kgo.TransactionalID("z-1"), kgo.DefaultProduceTopic("z"))
	if err := fresh.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.ProduceSync(ctx, kgo.StringRecord("fresh")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	err := zombie.EndTransaction(ctx, kgo.TryCommit)
	if err == nil {
		t.Fatal("the fenced producer committed")
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Logf("zombie commit failed with %v", err)
	}
	if got := readAll(t, s, "z", 1, true); !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("read_committed got %v, want [fresh]", got)
	}
}

// TestGroupTransactSession runs franz-go's exactly-once
// consume-transform-produce loop: every input record appears exactly once
// in the committed output, and the group's committed offsets cover the
// input.
func TestGroupTransactSession(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	adm := newAdmin(t, s)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "eos-in"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "eos-out"); err != nil {
		t.Fatal(err)
	}
	const n = 600
	in := newClient(t, s, kgo.DefaultProduceTopic("eos-in"))
	for i := range n {
		in.Produce(ctx, kgo.StringRecord(strconv.Itoa(i)), nil)
	}
	if err := in.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(s.Addr()),
		kgo.TransactionalID("eos-1"),
		kgo.ConsumerGroup("eos-g"),
		kgo.ConsumeTopics("eos-in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.DefaultProduceTopic("eos-out"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := 0
	for done < n {
		fs := sess.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		var recs int
		fs.EachRecord(func(r *kgo.Record) {
			recs++
			sess.Produce(ctx, kgo.StringRecord("out-"+string(r.Value)), nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			t.Fatal(err)
		}
		if committed {
			done += recs
		}
	}
	got := readAll(t, s, "eos-out", n, true)
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for i := range n {
		if c := seen["out-"+strconv.Itoa(i)]; c != 1 {
			t.Fatalf("output for input %d appears %d times", i, c)
		}
	}
	offs, err := adm.FetchOffsets(context.Background(), "eos-g")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Fatalf("committed offsets sum to %d, want %d", sum, n)
	}
}
