package interop

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFranzCompressionAcks produces with every codec and every acks level
// and reads everything back; the broker must store batches compressed as
// received and hand out contiguous offsets.
func TestFranzCompressionAcks(t *testing.T) {
	c := startCluster(t)
	codecs := []struct {
		name  string
		id    int8
		codec kgo.CompressionCodec
	}{
		{"none", 0, kgo.NoCompression()},
		{"gzip", 1, kgo.GzipCompression()},
		{"snappy", 2, kgo.SnappyCompression()},
		{"lz4", 3, kgo.Lz4Compression()},
		{"zstd", 4, kgo.ZstdCompression()},
	}
	acks := []struct {
		name string
		acks kgo.Acks
	}{{"acks0", kgo.NoAck()}, {"acks1", kgo.LeaderAck()}, {"acksall", kgo.AllISRAcks()}}
	const partitions, n = 3, 300
	for _, cc := range codecs {
		for _, ac := range acks {
			t.Run(cc.name+"/"+ac.name, func(t *testing.T) {
				topic := createTopic(t, c.Addr(), partitions, nil)
				opts := []kgo.Opt{kgo.ProducerBatchCompression(cc.codec), kgo.RequiredAcks(ac.acks),
					kgo.ProducerLinger(5 * time.Millisecond)}
				if ac.name != "acksall" {
					opts = append(opts, kgo.DisableIdempotentWrite())
				}
				want := testRecords(cc.name+ac.name, n)
				acked := produceFranz(t, c.Addr(), topic, want, opts...)
				got := consumeAll(t, c.Addr(), topic, n)
				checkOffsetsContiguous(t, got)
				if ac.name == "acks0" {
					// No acknowledgement carries offsets; every record must arrive once.
					checkSameValues(t, got, want, false)
				} else {
					checkOffsetsContiguous(t, acked)
					checkSameRecords(t, got, acked)
				}
				stored := storedCodecs(t, c.Addr(), topic, partitions)
				if len(stored) == 0 {
					t.Fatal("raw fetch returned no batches")
				}
				for i, s := range stored {
					if s != cc.id {
						t.Fatalf("stored batch %d has codec %d, produced with %d (%s)", i, s, cc.id, cc.name)
					}
				}
			})
		}
	}
}

// groupWatch tracks what each member of a consumer group owns and consumes.
type groupWatch struct {
	mu    sync.Mutex
	owned map[string]map[int32]bool // member -> partitions
	seen  map[string]int            // value -> times consumed
}

func (g *groupWatch) assign(member string, m map[string][]int32, add bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owned[member] == nil {
		g.owned[member] = map[int32]bool{}
	}
	for _, ps := range m {
		for _, p := range ps {
			if add {
				g.owned[member][p] = true
			} else {
				delete(g.owned[member], p)
			}
		}
	}
}

// stable reports nil when the live members own every partition exactly
// once and each owns at least one.
func (g *groupWatch) stable(live []string, partitions int32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	owner := map[int32]string{}
	for _, m := range live {
		if len(g.owned[m]) == 0 {
			return fmt.Errorf("member %s owns nothing (owned: %v)", m, g.owned)
		}
		for p := range g.owned[m] {
			if o, dup := owner[p]; dup {
				return fmt.Errorf("partition %d owned by %s and %s", p, o, m)
			}
			owner[p] = m
		}
	}
	if int32(len(owner)) != partitions {
		return fmt.Errorf("%d of %d partitions owned: %v", len(owner), partitions, g.owned)
	}
	return nil
}

func (g *groupWatch) snapshot() map[string]map[int32]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]map[int32]bool{}
	for m, ps := range g.owned {
		out[m] = map[int32]bool{}
		for p := range ps {
			out[m][p] = true
		}
	}
	return out
}

// checkBalancerShape checks a stable single-topic assignment has the shape
// the balancer produces, which proves the broker selected the protocol the
// members asked for and relayed the leader's plan: range hands each member
// one contiguous run, round-robin deals partitions out modulo the member
// count, and cooperative-sticky never moves a partition it need not move.
func checkBalancerShape(balancer string, now, prev map[string]map[int32]bool, joined bool) error {
	switch balancer {
	case "range":
		for m, ps := range now {
			lo, hi := int32(1<<30), int32(-1)
			for p := range ps {
				lo, hi = min(lo, p), max(hi, p)
			}
			if int(hi-lo+1) != len(ps) {
				return fmt.Errorf("range: member %s owns non-contiguous %v", m, ps)
			}
		}
	case "roundrobin":
		k := int32(len(now))
		for m, ps := range now {
			r := int32(-1)
			for p := range ps {
				if r == -1 {
					r = p % k
				} else if p%k != r {
					return fmt.Errorf("roundrobin: member %s owns %v, not one residue mod %d", m, ps, k)
				}
			}
		}
	case "cooperative-sticky":
		for m, old := range prev {
			cur, ok := now[m]
			if !ok {
				continue
			}
			if joined { // existing members only give partitions away
				for p := range cur {
					if !old[p] {
						return fmt.Errorf("sticky: %s gained %d when a member joined (%v -> %v)", m, p, old, cur)
					}
				}
			} else { // survivors keep everything they had
				for p := range old {
					if !cur[p] {
						return fmt.Errorf("sticky: %s lost %d when a member left (%v -> %v)", m, p, old, cur)
					}
				}
			}
		}
	}
	return nil
}

type groupMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// TestFranzGroupBalancers runs a group of up to three franz-go members
// through joins and leaves with each classic balancer while records flow.
func TestFranzGroupBalancers(t *testing.T) {
	c := startCluster(t)
	balancers := []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"roundrobin", kgo.RoundRobinBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	}
	for _, bc := range balancers {
		t.Run(bc.name, func(t *testing.T) {
			const partitions = 6
			topic := createTopic(t, c.Addr(), partitions, nil)
			group := "g-" + topic
			w := &groupWatch{owned: map[string]map[int32]bool{}, seen: map[string]int{}}
			members := map[string]*groupMember{}
			join := func(name string) {
				m := &groupMember{name: name, done: make(chan struct{})}
				cl, err := kgo.NewClient(
					kgo.SeedBrokers(c.Addr()),
					kgo.ConsumerGroup(group),
					kgo.ConsumeTopics(topic),
					kgo.Balancers(bc.b),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
					kgo.SessionTimeout(10*time.Second),
					kgo.HeartbeatInterval(200*time.Millisecond),
					kgo.FetchMaxWait(200*time.Millisecond),
					kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { w.assign(name, a, true) }),
					kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, r map[string][]int32) {
						// Commit what was consumed before giving partitions away.
						if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
							t.Logf("%s: commit on revoke: %v", name, err)
						}
						w.assign(name, r, false)
					}),
					kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) { w.assign(name, l, false) }),
				)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				m.cl, m.cancel = cl, cancel
				go func() {
					defer close(m.done)
					for ctx.Err() == nil {
						fs := cl.PollFetches(ctx)
						fs.EachRecord(func(r *kgo.Record) {
							w.mu.Lock()
							w.seen[string(r.Value)]++
							w.mu.Unlock()
						})
					}
				}()
				members[name] = m
			}
			leave := func(name string) {
				m := members[name]
				m.cancel()
				<-m.done
				if err := m.cl.CommitUncommittedOffsets(context.Background()); err != nil {
					t.Errorf("%s: commit before leaving: %v", name, err)
				}
				m.cl.Close() // leaves the group
				delete(members, name)
				w.mu.Lock()
				delete(w.owned, name)
				w.mu.Unlock()
			}
			t.Cleanup(func() {
				for name := range members {
					leave(name)
				}
			})
			live := func() []string {
				var out []string
				for n := range members {
					out = append(out, n)
				}
				sort.Strings(out)
				return out
			}
			prev := map[string]map[int32]bool{}
			waitStable := func(stage string, joined bool) {
				waitFor(t, 45*time.Second, stage+": stable assignment", func() error { return w.stable(live(), partitions) })
				now := w.snapshot()
				t.Logf("%s: stable %v", stage, now)
				if err := checkBalancerShape(bc.name, now, prev, joined); err != nil {
					t.Fatalf("%s: %v", stage, err)
				}
				prev = now
			}
			var want []rec
			produce := func(stage string) {
				want = append(want, produceFranz(t, c.Addr(), topic, testRecords(bc.name+stage, 120))...)
			}

			join("m1")
			waitStable("m1 joined", true)
			produce("a")
			join("m2")
			waitStable("m2 joined", true)
			join("m3")
			waitStable("m3 joined", true)
			produce("b")
			leave("m1")
			waitStable("m1 left", false)
			produce("c")
			leave("m2")
			waitStable("m2 left", false)
			produce("d")

			waitFor(t, 45*time.Second, "every record consumed", func() error {
				w.mu.Lock()
				defer w.mu.Unlock()
				for _, r := range want {
					if w.seen[r.Value] == 0 {
						return fmt.Errorf("%v not consumed yet", r)
					}
				}
				return nil
			})
			w.mu.Lock()
			for v := range w.seen {
				found := false
				for _, r := range want {
					if r.Value == v {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("consumed a record never produced: %q", v)
				}
			}
			w.mu.Unlock()
			leave("m3")
			waitCommittedAtEnd(t, c.Addr(), group, topic)
		})
	}
}

// TestFranzCommitResume commits chosen offsets, closes the consumer,
// restarts the broker, and checks a new member resumes exactly there.
func TestFranzCommitResume(t *testing.T) {
	c := startCluster(t)
	const partitions = 3
	topic := createTopic(t, c.Addr(), partitions, nil)
	group := "g-" + topic

	// 30 records per partition, produced to explicit partitions.
	var krs []*kgo.Record
	for i := 0; i < 90; i++ {
		krs = append(krs, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: []byte(fmt.Sprintf("v%03d", i))})
	}
	pcl := newClient(t, c.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := pcl.ProduceSync(testCtx(t, 30*time.Second), krs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	byPO := map[[2]int64]string{}
	for _, r := range krs {
		byPO[[2]int64{int64(r.Partition), r.Offset}] = string(r.Value)
	}

	groupOpts := []kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.HeartbeatInterval(200 * time.Millisecond), kgo.SessionTimeout(10 * time.Second),
	}
	c1, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addr())}, groupOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 60*time.Second)
	n := 0
	for n < 90 {
		fs := c1.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("first consumer read %d of 90", n)
		}
		n += fs.NumRecords()
	}
	commit := map[int32]int64{0: 10, 1: 17, 2: 30}
	offs := map[string]map[int32]kgo.EpochOffset{topic: {}}
	for p, o := range commit {
		offs[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var commitErr error
	c1.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			commitErr = err
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					commitErr = fmt.Errorf("commit %s/%d: error code %d", rt.Topic, rp.Partition, rp.ErrorCode)
				}
			}
		}
	})
	if commitErr != nil {
		t.Fatal(commitErr)
	}
	c1.Close()

	got, err := committedOffsets(t, c.Addr(), group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range commit {
		if got[p] != o {
			t.Fatalf("committed offsets %v, want %v", got, commit)
		}
	}

	c.Restart(t)

	got, err = committedOffsets(t, c.Addr(), group, topic)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	for p, o := range commit {
		if got[p] != o {
			t.Fatalf("after restart committed offsets %v, want %v", got, commit)
		}
	}

	c2, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addr())}, groupOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	wantN := 0
	for _, o := range commit {
		wantN += int(30 - o)
	}
	seen := map[[2]int64]bool{}
	next := map[int32]int64{}
	for p, o := range commit {
		next[p] = o
	}
	ctx2 := testCtx(t, 60*time.Second)
	for len(seen) < wantN {
		fs := c2.PollFetches(ctx2)
		if ctx2.Err() != nil {
			t.Fatalf("second consumer read %d of %d", len(seen), wantN)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch: %v", e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := [2]int64{int64(r.Partition), r.Offset}
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: resumed at offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			if string(r.Value) != byPO[k] {
				t.Fatalf("partition %d offset %d: value %q, want %q", r.Partition, r.Offset, r.Value, byPO[k])
			}
			seen[k] = true
		})
	}
}
