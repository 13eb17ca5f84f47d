package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, perfCmd) }

func perfCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "perf",
		Short: "Benchmarks: producer and consumer throughput, end-to-end latency, eddy vs kfake",
	}
	c.AddCommand(perfProduceCmd(a), perfConsumeCmd(a), perfLatencyCmd(a), perfCompareCmd(a), perfStreamsCmd(a), perfAvroCmd(a), perfSoakCmd(a), perfEOSCmd(a), perfEOSWorkerCmd(a))
	return c
}

// perfProduceConfig configures one producer benchmark.
type perfProduceConfig struct {
	Topic          string
	NumRecords     int64
	RecordSize     int
	Throughput     int64 // records/s; <= 0 unlimited
	Acks           string
	Compression    string
	Partitions     int32 // partitions of the topic if it has to be created
	Linger         time.Duration
	ReportInterval time.Duration
}

// perfProduceResult is the outcome of a producer benchmark.
type perfProduceResult struct {
	Records, Bytes int64
	Elapsed        time.Duration
	Latency        latencySummary
}

func (r perfProduceResult) recPerSec() float64 { return perSec(r.Records, r.Elapsed) }
func (r perfProduceResult) mbPerSec() float64  { return perSec(r.Bytes, r.Elapsed) / (1 << 20) }

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func perfProduceCmd(a *app) *cobra.Command {
	cfg := perfProduceConfig{}
	c := &cobra.Command{
		Use:   "produce --topic T",
		Short: "Producer throughput and latency (like kafka-producer-perf-test)",
		Long: `perf produce sends --num-records records of --record-size bytes to --topic
(created with --partitions if missing), at most --throughput records/s, and
prints a progress line every --report-interval on stderr and a summary on
stdout: records/s, MB/s (MiB), and the latency from send to acknowledgement
(average, max, p50, p95, p99, p99.9).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runPerfProduce(cmd.Context(), a, cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			printProduceSummary(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Topic, "topic", "", "topic to produce to (required)")
	f.Int64Var(&cfg.NumRecords, "num-records", 1_000_000, "records to send")
	f.IntVar(&cfg.RecordSize, "record-size", 100, "value size in bytes")
	f.Int64Var(&cfg.Throughput, "throughput", -1, "records/s cap (-1: unlimited)")
	f.StringVar(&cfg.Acks, "acks", "all", "required acks: all, 1, 0")
	f.StringVar(&cfg.Compression, "compression", "none", "none, gzip, snappy, lz4, zstd")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions when the topic has to be created")
	f.DurationVar(&cfg.Linger, "linger", 10*time.Millisecond, "producer linger (franz-go's default is 10ms)")
	f.DurationVar(&cfg.ReportInterval, "report-interval", 5*time.Second, "progress line interval")
	c.MarkFlagRequired("topic") //nolint:errcheck // flag exists
	return c
}

// ensureTopic creates topic with the given partitions unless it exists.
func ensureTopic(ctx context.Context, a *app, topic string, partitions int32) error {
	adm, err := a.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	r, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// runPerfProduce runs one producer benchmark, writing progress lines to
// progressW (nil: none).
func runPerfProduce(ctx context.Context, a *app, cfg perfProduceConfig, progressW io.Writer) (perfProduceResult, error) {
	if cfg.NumRecords <= 0 || cfg.RecordSize < 0 {
		return perfProduceResult{}, errors.New("--num-records must be > 0 and --record-size >= 0")
	}
	if err := ensureTopic(ctx, a, cfg.Topic, cfg.Partitions); err != nil {
		return perfProduceResult{}, err
	}
	opts, err := producerOpts(cfg.Acks, cfg.Compression)
	if err != nil {
		return perfProduceResult{}, err
	}
	opts = append(opts, kgo.DefaultProduceTopic(cfg.Topic), kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedBytes(32<<20), kgo.MaxBufferedRecords(1<<20))
	cl, err := a.client(opts...)
	if err != nil {
		return perfProduceResult{}, err
	}
	defer cl.Close()

	payload := randomPayload(cfg.RecordSize)
	lat := newLatencyRecorder()
	var (
		failed   atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	stopReport := reportEvery(progressW, cfg.ReportInterval, func(w io.Writer, d time.Duration) {
		n, avg, mx := lat.window()
		fmt.Fprintf(w, "%d records sent, %.1f records/sec (%.2f MB/sec), %s ms avg latency, %s ms max latency.\n",
			n, perSec(n, d), perSec(n*int64(cfg.RecordSize), d)/(1<<20), ms(avg), ms(mx))
	})
	defer stopReport()
	for i := int64(0); i < cfg.NumRecords && ctx.Err() == nil; i++ {
		throttle(start, i, cfg.Throughput)
		sent := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: payload}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
				return
			}
			lat.add(time.Since(sent))
		})
	}
	flushErr := cl.Flush(ctx)
	elapsed := time.Since(start)
	stopReport()
	if err := cmpErr(ctx.Err(), flushErr); err != nil {
		return perfProduceResult{}, fmt.Errorf("produce: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return perfProduceResult{}, fmt.Errorf("produce: %d records failed, first: %w", n, firstErr)
	}
	s := lat.summary()
	return perfProduceResult{Records: s.Count, Bytes: s.Count * int64(cfg.RecordSize), Elapsed: elapsed, Latency: s}, nil
}

func cmpErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func printProduceSummary(w io.Writer, r perfProduceResult) {
	l := r.Latency
	fmt.Fprintf(w, "%d records sent, %.1f records/sec (%.2f MB/sec), %s ms avg latency, %s ms max latency, %s ms 50th, %s ms 95th, %s ms 99th, %s ms 99.9th.\n",
		r.Records, r.recPerSec(), r.mbPerSec(), ms(l.Avg), ms(l.Max), ms(l.P50), ms(l.P95), ms(l.P99), ms(l.P999))
}

// throttle sleeps until record i is due when sending at rate records/s
// from start; rate <= 0 never sleeps. Sleeps shorter than a millisecond are
// skipped to keep timer overhead off the hot path.
func throttle(start time.Time, i, rate int64) {
	if rate <= 0 {
		return
	}
	due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
	if d := time.Until(due); d > time.Millisecond {
		time.Sleep(d)
	}
}

// randomPayload returns n random uppercase letters, as Kafka's perf tool does.
func randomPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'A' + byte(rand.IntN(26))
	}
	return b
}

// reportEvery calls fn every interval with the time since its previous call
// until the returned stop is called (idempotent; it waits for the goroutine).
// With w nil or interval <= 0 it does nothing.
func reportEvery(w io.Writer, interval time.Duration, fn func(w io.Writer, since time.Duration)) (stop func()) {
	if w == nil || interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				fn(w, now.Sub(last))
				last = now
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// perfConsumeConfig configures one consumer benchmark.
type perfConsumeConfig struct {
	Topic          string
	Messages       int64
	Group          string
	Timeout        time.Duration // give up after this long without a record
	ReportInterval time.Duration
}

// perfConsumeResult is the outcome of a consumer benchmark.
type perfConsumeResult struct {
	Records, Bytes int64
	Elapsed        time.Duration // client start to the last record
	FirstRecord    time.Duration // client start to the first record
}

func (r perfConsumeResult) recPerSec() float64 { return perSec(r.Records, r.Elapsed) }
func (r perfConsumeResult) mbPerSec() float64  { return perSec(r.Bytes, r.Elapsed) / (1 << 20) }

func perfConsumeCmd(a *app) *cobra.Command {
	cfg := perfConsumeConfig{}
	c := &cobra.Command{
		Use:   "consume --topic T",
		Short: "Consumer throughput (like kafka-consumer-perf-test)",
		Long: `perf consume reads --messages records of --topic from the start of every
partition (or as a member of --group, from its committed offsets), printing a
progress line every --report-interval on stderr and a summary on stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runPerfConsume(cmd.Context(), a, cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			printConsumeSummary(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Topic, "topic", "", "topic to consume (required)")
	f.Int64Var(&cfg.Messages, "messages", 1_000_000, "records to consume")
	f.StringVar(&cfg.Group, "group", "", "consume as this consumer group (default: no group, from the start)")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "fail after this long without receiving a record")
	f.DurationVar(&cfg.ReportInterval, "report-interval", 5*time.Second, "progress line interval")
	c.MarkFlagRequired("topic") //nolint:errcheck // flag exists
	return c
}

func runPerfConsume(ctx context.Context, a *app, cfg perfConsumeConfig, progressW io.Writer) (perfConsumeResult, error) {
	if cfg.Messages <= 0 {
		return perfConsumeResult{}, errors.New("--messages must be > 0")
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if cfg.Group != "" {
		opts = append(opts, kgo.ConsumerGroup(cfg.Group))
	}
	cl, err := a.client(opts...)
	if err != nil {
		return perfConsumeResult{}, err
	}
	defer cl.Close()
	var n, bytes atomic.Int64
	var prevN, prevB int64
	stopReport := reportEvery(progressW, cfg.ReportInterval, func(w io.Writer, d time.Duration) {
		cn, cb := n.Load(), bytes.Load()
		fmt.Fprintf(w, "%d records received, %.1f records/sec (%.2f MB/sec), %d total.\n",
			cn-prevN, perSec(cn-prevN, d), perSec(cb-prevB, d)/(1<<20), cn)
		prevN, prevB = cn, cb
	})
	defer stopReport()
	start := time.Now()
	var res perfConsumeResult
	for n.Load() < cfg.Messages {
		pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		fetches := cl.PollRecords(pctx, int(min(cfg.Messages-n.Load(), 1<<20)))
		cancel()
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if fetchErr == nil {
				fetchErr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			if errors.Is(fetchErr, context.DeadlineExceeded) {
				return res, fmt.Errorf("no record for %v after %d of %d records", cfg.Timeout, n.Load(), cfg.Messages)
			}
			return res, fetchErr
		}
		var fb int64
		cnt := int64(0)
		fetches.EachRecord(func(r *kgo.Record) {
			fb += int64(len(r.Key) + len(r.Value))
			cnt++
		})
		if cnt > 0 && res.FirstRecord == 0 {
			res.FirstRecord = time.Since(start)
		}
		n.Add(cnt)
		bytes.Add(fb)
	}
	res.Elapsed = time.Since(start)
	stopReport()
	res.Records, res.Bytes = n.Load(), bytes.Load()
	return res, nil
}

func printConsumeSummary(w io.Writer, r perfConsumeResult) {
	fmt.Fprintf(w, "%d records received (%.2f MB) in %.2f s, %.1f records/sec (%.2f MB/sec), first record after %s ms.\n",
		r.Records, float64(r.Bytes)/(1<<20), r.Elapsed.Seconds(), r.recPerSec(), r.mbPerSec(), ms(r.FirstRecord))
}

// perfLatencyConfig configures an end-to-end latency benchmark.
type perfLatencyConfig struct {
	Topic       string
	Rate        int64
	Duration    time.Duration
	Warmup      time.Duration
	RecordSize  int
	Partitions  int32
	Acks        string
	Compression string
	Linger      time.Duration
}

// perfLatencyResult is the outcome of an end-to-end latency benchmark.
type perfLatencyResult struct {
	Sent, Received int64
	Latency        latencySummary // of records sent after the warm-up
}

func perfLatencyCmd(a *app) *cobra.Command {
	cfg := perfLatencyConfig{}
	c := &cobra.Command{
		Use:   "latency",
		Short: "End-to-end latency at a steady rate (producer to consumer)",
		Long: `perf latency produces at a steady --rate for --duration while a consumer in
the same process reads the topic from its end. Each value starts with the send
time; the consumer measures now minus that time. Records sent during --warmup
are not counted. Prints p50, p95, p99, p99.9 and max.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := runPerfLatency(cmd.Context(), a, cfg)
			if err != nil {
				return err
			}
			printLatencySummary(cmd.OutOrStdout(), cfg, res)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Topic, "topic", "eddy-perf-latency", "topic (created if missing)")
	f.Int64Var(&cfg.Rate, "rate", 50_000, "records/s to produce")
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to produce")
	f.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "initial period excluded from the statistics")
	f.IntVar(&cfg.RecordSize, "record-size", 100, "value size in bytes (at least 8)")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions when the topic has to be created")
	f.StringVar(&cfg.Acks, "acks", "all", "required acks: all, 1, 0")
	f.StringVar(&cfg.Compression, "compression", "none", "none, gzip, snappy, lz4, zstd")
	f.DurationVar(&cfg.Linger, "linger", 0, "producer linger")
	return c
}

func runPerfLatency(ctx context.Context, a *app, cfg perfLatencyConfig) (perfLatencyResult, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.RecordSize < 8 {
		return perfLatencyResult{}, errors.New("--rate and --duration must be > 0 and --record-size >= 8")
	}
	if err := ensureTopic(ctx, a, cfg.Topic, cfg.Partitions); err != nil {
		return perfLatencyResult{}, err
	}
	// Position the consumer at the current end of every partition before
	// producing, so it sees exactly the records of this run.
	adm, err := a.admin()
	if err != nil {
		return perfLatencyResult{}, err
	}
	ends, err := adm.ListEndOffsets(ctx, cfg.Topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return perfLatencyResult{}, fmt.Errorf("list end offsets: %w", err)
	}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { parts[o.Partition] = kgo.NewOffset().At(o.Offset) })
	cons, err := a.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: parts}))
	if err != nil {
		return perfLatencyResult{}, err
	}
	defer cons.Close()
	opts, err := producerOpts(cfg.Acks, cfg.Compression)
	if err != nil {
		return perfLatencyResult{}, err
	}
	prod, err := a.client(append(opts, kgo.DefaultProduceTopic(cfg.Topic), kgo.ProducerLinger(cfg.Linger))...)
	if err != nil {
		return perfLatencyResult{}, err
	}
	defer prod.Close()

	lat := newLatencyRecorder()
	var received atomic.Int64
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup).UnixNano()
	// The consumer goroutine is owned here: the deferred stop cancels it and
	// waits for it on every return path.
	cctx, cancelConsumer := context.WithCancel(ctx)
	var consumerErr error
	consumerExited := make(chan struct{})
	stopConsumer := func() error {
		cancelConsumer()
		<-consumerExited
		return consumerErr
	}
	defer stopConsumer() //nolint:errcheck // error paths already return an error
	go func() {
		defer close(consumerExited)
		for {
			fetches := cons.PollFetches(cctx)
			if cctx.Err() != nil {
				return
			}
			var ferr error
			fetches.EachError(func(t string, p int32, err error) { ferr = cmpErr(ferr, fmt.Errorf("fetch %s[%d]: %w", t, p, err)) })
			if ferr != nil {
				consumerErr = ferr
				return
			}
			now := time.Now().UnixNano()
			fetches.EachRecord(func(r *kgo.Record) {
				received.Add(1)
				if len(r.Value) < 8 {
					return
				}
				sent := int64(binary.BigEndian.Uint64(r.Value))
				if sent >= measureFrom {
					lat.add(time.Duration(now - sent))
				}
			})
		}
	}()

	var sent, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	total := int64(cfg.Duration.Seconds() * float64(cfg.Rate))
	for i := int64(0); i < total && ctx.Err() == nil; i++ {
		throttle(start, i, cfg.Rate)
		v := make([]byte, cfg.RecordSize)
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		prod.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
				return
			}
			sent.Add(1)
		})
	}
	if err := prod.Flush(ctx); err != nil {
		return perfLatencyResult{}, fmt.Errorf("produce: %w", err)
	}
	if n := failed.Load(); n > 0 {
		return perfLatencyResult{}, fmt.Errorf("produce: %d records failed, first: %w", n, firstErr)
	}
	// Wait (bounded) for the consumer to see every acknowledged record.
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < sent.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-consumerExited:
			return perfLatencyResult{}, cmpErr(consumerErr, errors.New("consumer stopped"))
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := stopConsumer(); err != nil {
		return perfLatencyResult{}, err
	}
	res := perfLatencyResult{Sent: sent.Load(), Received: received.Load(), Latency: lat.summary()}
	if res.Received < res.Sent {
		return res, fmt.Errorf("consumer received %d of %d records within 30 s after producing", res.Received, res.Sent)
	}
	return res, ctx.Err()
}

func printLatencySummary(w io.Writer, cfg perfLatencyConfig, r perfLatencyResult) {
	l := r.Latency
	fmt.Fprintf(w, "%d records at %d records/sec for %s (%d measured after %s warm-up): end-to-end latency %s ms avg, %s ms 50th, %s ms 95th, %s ms 99th, %s ms 99.9th, %s ms max.\n",
		r.Sent, cfg.Rate, cfg.Duration, l.Count, cfg.Warmup, ms(l.Avg), ms(l.P50), ms(l.P95), ms(l.P99), ms(l.P999), ms(l.Max))
}
