package crash

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestManyConnections runs 200 clients at once — half producing, half
// consuming — against one broker subprocess, and checks that a metadata
// request keeps answering within a deadline throughout, that the broker's
// resident memory stays bounded, and that every record produced is consumed.
func TestManyConnections(t *testing.T) {
	const (
		producers   = 100
		consumers   = 100
		partitions  = 8
		topic       = "conns"
		mdDeadline  = 3 * time.Second
		maxRSS      = int64(512 << 20)
		minSockets  = 200
		valueLength = 100
	)
	perProducer := profile(3_000, 100_000)
	b := newBroker(t)
	b.start()
	createTopic(t, b.addr, topic, partitions, nil)
	pid := b.pid()

	// Monitor: metadata latency, RSS and open sockets, every 100ms.
	var (
		monMu       sync.Mutex
		maxMD       time.Duration
		mdFailures  []string
		peakRSS     int64
		peakSockets int
	)
	monCtx, stopMon := context.WithCancel(context.Background())
	monDone := make(chan struct{})
	mon := newClient(t, b.addr)
	defer mon.Close()
	go func() {
		defer close(monDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-monCtx.Done():
				return
			case <-tick.C:
			}
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			ctx, cancel := context.WithTimeout(monCtx, mdDeadline)
			start := time.Now()
			_, err := mon.Request(ctx, req)
			took := time.Since(start)
			cancel()
			rss, rerr := rssBytes(pid)
			socks, serr := openSockets(pid)
			monMu.Lock()
			if monCtx.Err() == nil && (err != nil || took > mdDeadline) {
				mdFailures = append(mdFailures, fmt.Sprintf("metadata after %v: %v", took, err))
			}
			maxMD = max(maxMD, took)
			if rerr == nil {
				peakRSS = max(peakRSS, rss)
			}
			if serr == nil {
				peakSockets = max(peakSockets, socks)
			}
			monMu.Unlock()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), profile(120*time.Second, 600*time.Second))
	defer cancel()
	start := time.Now()

	// Consumers first, so connections pile up while producers start.
	var consumed [partitions]atomic.Int64
	var produced [partitions]atomic.Int64
	var producersDone atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, producers+consumers)
	allUp := make(chan struct{})
	var upCount atomic.Int64
	up := func() {
		if upCount.Add(1) == producers+consumers {
			close(allUp)
		}
	}
	for i := 0; i < consumers; i++ {
		p := int32(i % partitions)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr),
				kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}),
				kgo.FetchMaxWait(500*time.Millisecond))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			if err := cl.Ping(ctx); err != nil {
				errs <- fmt.Errorf("consumer ping: %w", err)
				return
			}
			up()
			next := int64(0)
			for {
				if producersDone.Load() && next >= produced[p].Load() {
					consumed[p].Add(next)
					return
				}
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				fs := cl.PollFetches(pctx)
				pcancel()
				if ctx.Err() != nil {
					errs <- fmt.Errorf("consumer of partition %d stopped at offset %d of %d: %w", p, next, produced[p].Load(), ctx.Err())
					return
				}
				for _, e := range fs.Errors() {
					if e.Err == context.DeadlineExceeded || e.Err == context.Canceled {
						continue // the one-second poll ran out: check for the end again
					}
					errs <- fmt.Errorf("consumer of partition %d: %w", p, e.Err)
					return
				}
				fail := false
				fs.EachRecord(func(r *kgo.Record) {
					if r.Offset != next && !fail {
						errs <- fmt.Errorf("partition %d: offset %d after %d", p, r.Offset, next-1)
						fail = true
					}
					next++
				})
				if fail {
					return
				}
			}
		}()
	}
	var pwg sync.WaitGroup
	for i := 0; i < producers; i++ {
		pwg.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pwg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			if err := cl.Ping(ctx); err != nil {
				errs <- fmt.Errorf("producer ping: %w", err)
				return
			}
			up()
			select {
			case <-allUp:
			case <-ctx.Done():
				errs <- fmt.Errorf("not every client connected: %w", ctx.Err())
				return
			}
			value := make([]byte, valueLength)
			for sent := 0; sent < perProducer; {
				var recs []*kgo.Record
				for j := 0; j < 50 && sent < perProducer; j++ {
					recs = append(recs, &kgo.Record{Partition: int32((i + sent) % partitions), Value: value})
					sent++
				}
				res := cl.ProduceSync(ctx, recs...)
				if err := res.FirstErr(); err != nil {
					errs <- fmt.Errorf("producer %d: %w", i, err)
					return
				}
				for _, r := range recs {
					produced[r.Partition].Add(1)
				}
			}
		}()
	}
	go func() {
		pwg.Wait()
		producersDone.Store(true)
	}()
	wg.Wait()
	stopMon()
	<-monDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	monMu.Lock()
	defer monMu.Unlock()
	var total, totalConsumed int64
	for p := range partitions {
		total += produced[p].Load()
		totalConsumed += consumed[p].Load()
	}
	t.Logf("%d records through %d clients in %v; metadata max %v; broker peak RSS %d MiB; peak sockets %d",
		total, producers+consumers, time.Since(start).Round(time.Millisecond), maxMD.Round(time.Millisecond), peakRSS>>20, peakSockets)
	if want := int64(producers * perProducer); total != want && !t.Failed() {
		t.Errorf("produced %d records, want %d", total, want)
	}
	// Consumer i reads partition i%partitions to its end.
	var want int64
	for i := 0; i < consumers; i++ {
		want += produced[i%partitions].Load()
	}
	if totalConsumed != want && !t.Failed() {
		t.Errorf("consumed %d records in all, want %d", totalConsumed, want)
	}
	for _, f := range mdFailures {
		t.Error(f)
	}
	if peakRSS == 0 || peakRSS > maxRSS {
		t.Errorf("broker peak RSS %d bytes, bound %d", peakRSS, maxRSS)
	}
	if peakSockets < minSockets {
		t.Errorf("broker held at most %d sockets; the test meant at least %d concurrent connections", peakSockets, minSockets)
	}
	_, ends := listOffsets(t, b.addr, topic)
	for p := int32(0); p < partitions; p++ {
		if ends[p] != produced[p].Load() {
			t.Errorf("partition %d ends at %d, %d records were acknowledged", p, ends[p], produced[p].Load())
		}
	}
	b.stop()
}
