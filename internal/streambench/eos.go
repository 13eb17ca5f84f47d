package streambench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/runtime"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
)

// This file backs `eddy perf eos`: wordcount throughput under each
// processing guarantee (EddyWordCount, checked by VerifyCounts) and the
// count worker whose restart after a kill -9 the command times
// (RunCountWorker).

// Lines is the known input of a word count: what FillLines produced.
type Lines struct {
	// Lines and Words produced.
	Lines, Words int64
	// Counts is the exact final count of every word.
	Counts map[string]int64
}

// FillLines creates topic and produces cfg.Records lines of wordsPerLine
// words each (separated by spaces), drawn uniformly at random (fixed seed)
// from cfg.Keys distinct words "w00000"…, and returns the exact counts.
func FillLines(ctx context.Context, cfg Config, topic string, wordsPerLine int) (Lines, error) {
	cfg.defaults()
	if wordsPerLine < 1 {
		return Lines{}, fmt.Errorf("streambench: %d words per line, want at least 1", wordsPerLine)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		return Lines{}, err
	}
	defer cl.Close()
	if err := createTopics(ctx, kadm.NewClient(cl), cfg.Partitions, topic); err != nil {
		return Lines{}, err
	}
	vocab := make([]string, cfg.Keys)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%05d", i)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	res := Lines{Counts: make(map[string]int64, cfg.Keys)}
	var failed atomic.Value
	var sb strings.Builder
	for i := 0; i < cfg.Records; i++ {
		sb.Reset()
		for j := 0; j < wordsPerLine; j++ {
			w := vocab[rng.IntN(len(vocab))]
			if j > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(w)
			res.Counts[w]++
		}
		res.Words += int64(wordsPerLine)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(sb.String())}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return Lines{}, err
	}
	if err, _ := failed.Load().(error); err != nil {
		return Lines{}, err
	}
	res.Lines = int64(cfg.Records)
	return res, nil
}

// createTopics creates topics with the given partitions unless they exist.
func createTopics(ctx context.Context, adm *kadm.Client, partitions int32, topics ...string) error {
	for _, t := range topics {
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, t); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("create %s: %w", t, err)
		}
	}
	return nil
}

// WordCountResult is one measured word count run.
type WordCountResult struct {
	// Lines and Words of the input.
	Lines, Words int64
	// Elapsed from the first word counted to the last (words reach the
	// count through the repartition topic, so under exactly-once only
	// once the transaction that wrote them committed).
	Elapsed time.Duration
	// Commits and Aborts: transactions committed and aborted (exactly-once
	// only; an abort makes words count twice in the meter, not in the
	// store).
	Commits, Aborts int64
	// WorkerCPU and BrokerCPU: CPU time this process (the worker) and
	// the broker process (WordCountRun.BrokerPID; 0 if not given) used
	// from the worker's start to the last word counted; 0 where
	// ProcessCPU fails.
	WorkerCPU, BrokerCPU time.Duration
	// Verify is the check of the output topic after the run.
	Verify Verified
}

// WordCountRun names one EddyWordCount run.
type WordCountRun struct {
	// In is the input topic (filled by FillLines), Out the output topic
	// (created), AppID the application id.
	In, Out, AppID string
	// Guarantee and CommitInterval (0: the guarantee's default).
	Guarantee      runtime.Guarantee
	CommitInterval time.Duration
	// BrokerPID: a broker process on this host whose CPU time to report.
	BrokerPID int
}

// cpuTimes returns ProcessCPU of this process and of pid (0: not asked).
func cpuTimes(pid int) (self, other time.Duration) {
	self, _ = ProcessCPU(0)
	if pid > 0 {
		other, _ = ProcessCPU(pid)
	}
	return self, other
}

// LineRate returns input lines per second.
func (r WordCountResult) LineRate() float64 { return perSecond(r.Lines, r.Elapsed) }

// WordRate returns words counted per second.
func (r WordCountResult) WordRate() float64 { return perSecond(r.Words, r.Elapsed) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// WordCountTopology is examples/wordcount's topology with a meter: lines
// of in → words → selectKey(word) → repartition "words" → tick → count
// (store "counts") → out (value: 8-byte big-endian count). tick runs once
// per word that reached the count's sub-topology.
func WordCountTopology(in, out string, tick func()) (*stream.Topology, error) {
	b := stream.NewBuilder()
	lines := stream.Stream(b, stream.With(serde.String(), serde.String()), in)
	words := stream.FlatMapValues(lines, func(_ string, line string) []string { return strings.Fields(line) })
	stream.SelectKey(words, func(_ string, w string) string { return w }).
		Repartition(stream.Repartitioned[string, string]{Name: "words"}).
		Peek(func(string, string) { tick() }).
		GroupByKey(stream.Grouped[string, string]{}).
		Count(stream.Materialized[string, int64]{Name: "counts"}).
		ToStream().
		To(out, stream.Produced[string, int64]{Key: serde.String(), Value: serde.Int64()})
	return b.Build()
}

// EddyWordCount runs WordCountTopology from the start of run.In (filled
// by FillLines, whose result is want) to run.Out under run.Guarantee,
// until every word was counted; then it stops the worker gracefully and
// checks run.Out with VerifyCounts. A run whose output is not exactly
// want fails: a broken run reports no figure.
func EddyWordCount(ctx context.Context, cfg Config, run WordCountRun, want Lines) (WordCountResult, error) {
	in, out := run.In, run.Out
	cfg.defaults()
	adm, err := newAdmin(cfg.Brokers)
	if err != nil {
		return WordCountResult{}, err
	}
	err = createTopics(ctx, adm, cfg.Partitions, out)
	adm.Close()
	if err != nil {
		return WordCountResult{}, err
	}
	m := newMeter(int(want.Words))
	top, err := WordCountTopology(in, out, m.tick)
	if err != nil {
		return WordCountResult{}, err
	}
	reg := prometheus.NewRegistry()
	rc := runtime.DefaultConfig(run.AppID, cfg.Brokers...)
	rc.StateDir = filepath.Join(cfg.WorkDir, "state")
	rc.NumStreamThreads = cfg.Threads
	rc.Logger = cfg.Logger
	rc.Guarantee = run.Guarantee
	rc.CommitInterval = run.CommitInterval
	rc.Registerer = reg
	app, err := runtime.New(top, rc)
	if err != nil {
		return WordCountResult{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	selfCPU, brokerCPU := cpuTimes(run.BrokerPID)
	go func() { errc <- app.Run(rctx) }()
	if err := m.wait(ctx, errc); err != nil {
		cancel()
		_ = app.Close()
		return WordCountResult{}, err
	}
	selfCPU2, brokerCPU2 := cpuTimes(run.BrokerPID)
	res := WordCountResult{Lines: want.Lines, Words: want.Words, Elapsed: m.result().Elapsed,
		WorkerCPU: selfCPU2 - selfCPU, BrokerCPU: brokerCPU2 - brokerCPU}
	cancel()
	if err := <-errc; err != nil {
		return res, fmt.Errorf("worker: %w", err)
	}
	res.Commits = int64(GatherSum(reg, "eddy_streams_transactions_committed_total"))
	res.Aborts = int64(GatherSum(reg, "eddy_streams_transactions_aborted_total"))
	v, err := VerifyCounts(ctx, cfg.Brokers, out, want.Counts)
	res.Verify = v
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", out, err)
	}
	return res, nil
}

func newAdmin(brokers []string) (*kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// GatherSum returns the sum over all label values of the metric family
// name (a counter or gauge) in reg; 0 when absent.
func GatherSum(reg prometheus.Gatherer, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// Verified is what VerifyCounts read.
type Verified struct {
	// Records read (data records, read_committed) and distinct Keys.
	Records, Keys int64
	// Repeats: records whose count is not above the key's previous count
	// in the topic (a duplicate or a step back). Exactly-once output has
	// none.
	Repeats int64
}

// ErrCountsWrong is wrapped by VerifyCounts when the latest counts are
// not the expected ones.
var ErrCountsWrong = errors.New("streambench: final counts wrong")

// VerifyCounts reads topic read_committed from the start to its end
// offsets (keys: words, values: 8-byte big-endian counts) and checks that
// the latest count of every key is want's, and that no other key
// appears. It counts Repeats but does not fail on them.
func VerifyCounts(ctx context.Context, brokers []string, topic string, want map[string]int64) (Verified, error) {
	adm, err := newAdmin(brokers)
	if err != nil {
		return Verified{}, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return Verified{}, fmt.Errorf("end offsets: %w", err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return Verified{}, err
	}
	defer cl.Close()
	latest := make(map[string]int64, len(want))
	var v Verified
	for len(remaining) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return v, err
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, err)) })
		if ferr != nil {
			return v, fmt.Errorf("fetch (%d partitions not read to their end): %w", len(remaining), ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			v.Records++
			if len(r.Value) != 8 {
				ferr = errors.Join(ferr, fmt.Errorf("%s: value of %d bytes", r.Key, len(r.Value)))
				return
			}
			n := int64(binary.BigEndian.Uint64(r.Value))
			if prev, ok := latest[string(r.Key)]; ok && n <= prev {
				v.Repeats++
			}
			latest[string(r.Key)] = n
		})
		if ferr != nil {
			return v, ferr
		}
	}
	v.Keys = int64(len(latest))
	var wrong []string
	for k, n := range want {
		if latest[k] != n {
			wrong = append(wrong, fmt.Sprintf("%s: %d, want %d", k, latest[k], n))
		}
	}
	for k := range latest {
		if _, ok := want[k]; !ok {
			wrong = append(wrong, fmt.Sprintf("%s: unexpected key", k))
		}
	}
	if len(wrong) > 0 {
		return v, fmt.Errorf("%w: %d of %d keys, e.g. %s", ErrCountsWrong, len(wrong), len(want), strings.Join(wrong[:min(3, len(wrong))], "; "))
	}
	return v, nil
}
