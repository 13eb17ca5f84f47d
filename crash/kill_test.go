package crash

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// acked is one acknowledged record: where the broker said it put it.
type acked struct {
	partition int32
	offset    int64
	seq       int64 // the record's number, also its value
}

func valueOf(seq int64) []byte { return []byte(fmt.Sprintf("r%09d", seq)) }

func seqOf(v []byte) (int64, bool) {
	if len(v) != 10 || v[0] != 'r' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v[1:]), 10, 64)
	return n, err == nil
}

// TestKill9DuringAcksAllProduce kills the broker with SIGKILL in the middle
// of an acks=all produce, restarts it on the same data dir, and checks that
// every acknowledged record is at the offset its acknowledgement named, that
// offsets have no gaps, that no record appears twice, and that the broker
// takes new writes after the restart.
func TestKill9DuringAcksAllProduce(t *testing.T) {
	for _, mode := range profile([]string{"default-flush"}, []string{"default-flush", "sync-writes"}) {
		t.Run(mode, func(t *testing.T) {
			var extra []string
			if mode == "sync-writes" {
				extra = append(extra, "--sync-writes")
			}
			kill9Rounds(t, extra)
		})
	}
}

func kill9Rounds(t *testing.T, extra []string) {
	rng := seededRand(t)
	rounds := profile(1, 5)
	perRound := profile(int64(1_000_000), int64(3_000_000))
	const partitions = 3
	const topic = "kill9"

	b := newBroker(t, extra...)
	b.start()
	createTopic(t, b.addr, topic, partitions, nil)

	var all []acked
	var nextSeq int64
	for round := 1; round <= rounds; round++ {
		killAt := perRound/4 + rng.Int64N(perRound/2)
		got, sent := produceUntilKilled(t, b, topic, nextSeq, perRound, killAt)
		t.Logf("round %d: killed after %d acknowledged of %d sent (target %d)", round, len(got), sent, perRound)
		if int64(len(got)) >= perRound {
			t.Fatalf("round %d: every record was acknowledged before the kill landed; the test did not kill during the produce", round)
		}
		all = append(all, got...)
		nextSeq += perRound

		b.start()
		verifyAcked(t, b.addr, topic, partitions, all, nextSeq)
	}

	// The broker takes new writes after recovery, at the end of the log.
	_, endBefore := listOffsets(t, b.addr, topic)
	cl := newClient(t, b.addr, kgo.DefaultProduceTopic(topic))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := int64(0); i < 1000; i++ {
		recs = append(recs, &kgo.Record{Value: valueOf(nextSeq + i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	for _, r := range recs {
		if r.Offset < endBefore[r.Partition] {
			t.Fatalf("new record got offset %d below the recovered end %d of partition %d", r.Offset, endBefore[r.Partition], r.Partition)
		}
		all = append(all, acked{partition: r.Partition, offset: r.Offset, seq: nextSeq})
		seq, _ := seqOf(r.Value)
		all[len(all)-1].seq = seq
	}
	verifyAcked(t, b.addr, topic, partitions, all, nextSeq+1000)
	b.stop()
}

// produceUntilKilled produces records n0..n0+n-1 with acks=all and kills the
// broker once killAt of them are acknowledged. It returns what was
// acknowledged and how many were handed to the client.
func produceUntilKilled(t *testing.T, b *brokerProc, topic string, n0, n, killAt int64) ([]acked, int64) {
	t.Helper()
	cl := newClient(t, b.addr,
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.MaxBufferedRecords(200_000),
		kgo.ProducerBatchMaxBytes(256<<10),
		kgo.RecordDeliveryTimeout(10*time.Second),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	)
	var (
		mu     sync.Mutex
		got    = make([]acked, 0, n)
		nacked atomic.Int64
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	killed := make(chan struct{})
	var sent int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(0); i < n; i++ {
			select {
			case <-killed:
				return
			default:
			}
			seq := n0 + i
			r := &kgo.Record{Value: valueOf(seq)}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err != nil {
					return
				}
				mu.Lock()
				got = append(got, acked{partition: r.Partition, offset: r.Offset, seq: seq})
				mu.Unlock()
				nacked.Add(1)
			})
			sent = i + 1
		}
	}()
	deadline := time.Now().Add(150 * time.Second)
	for nacked.Load() < killAt {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records acknowledged after 150s", nacked.Load(), killAt)
		}
		time.Sleep(time.Millisecond)
	}
	b.kill()
	close(killed)
	wg.Wait()
	cancel()   // fail what is still buffered
	cl.Close() // every promise has run when Close returns
	mu.Lock()
	defer mu.Unlock()
	return got, sent
}

// verifyAcked reads every partition from the start and checks each
// acknowledged record is at its acknowledged offset, offsets are gapless,
// every value is one that was produced (seq < maxSeq) and none repeats.
func verifyAcked(t *testing.T, addr, topic string, partitions int32, all []acked, maxSeq int64) {
	t.Helper()
	start := time.Now()
	byPart := make([][]acked, partitions)
	for _, a := range all {
		byPart[a.partition] = append(byPart[a.partition], a)
	}
	starts, ends := listOffsets(t, addr, topic)
	seen := make([]bool, maxSeq)
	total := 0
	for p := int32(0); p < partitions; p++ {
		want := byPart[p]
		sort.Slice(want, func(i, j int) bool { return want[i].offset < want[j].offset })
		if starts[p] != 0 {
			t.Fatalf("partition %d starts at %d after restart, want 0", p, starts[p])
		}
		if len(want) > 0 && want[len(want)-1].offset >= ends[p] {
			t.Fatalf("partition %d: end offset %d after restart, but offset %d was acknowledged",
				p, ends[p], want[len(want)-1].offset)
		}
		i := 0
		readPartition(t, addr, topic, p, 0, ends[p], 120*time.Second, func(r *kgo.Record) {
			seq, ok := seqOf(r.Value)
			if !ok || seq >= maxSeq {
				t.Fatalf("partition %d offset %d holds %q, never produced", p, r.Offset, r.Value)
			}
			if seen[seq] {
				t.Fatalf("partition %d offset %d: record %d appears twice", p, r.Offset, seq)
			}
			seen[seq] = true
			total++
			for i < len(want) && want[i].offset < r.Offset {
				t.Fatalf("partition %d: acknowledged record %d at offset %d is missing", p, want[i].seq, want[i].offset)
			}
			if i < len(want) && want[i].offset == r.Offset {
				if want[i].seq != seq {
					t.Fatalf("partition %d offset %d holds record %d, acknowledgement said %d", p, r.Offset, seq, want[i].seq)
				}
				i++
			}
		})
		if i != len(want) {
			t.Fatalf("partition %d: %d acknowledged records missing after offset %d", p, len(want)-i, ends[p])
		}
	}
	t.Logf("verified %d acknowledged records (%d in the log) in %v", len(all), total, time.Since(start).Round(time.Millisecond))
}
