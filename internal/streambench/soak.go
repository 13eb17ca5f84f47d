package streambench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/runtime"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/window"
)

// SoakStore is the name of the soak's window store.
const SoakStore = "soak-counts"

// SoakConfig describes a soak run: a windowed count worker fed at a steady
// rate, with event time = wall clock, sampled at a fixed interval.
type SoakConfig struct {
	// Brokers of the cluster.
	Brokers []string
	// WorkDir holds the worker's state directory. Required.
	WorkDir string
	// Duration of the run (from the worker's start). Required.
	Duration time.Duration
	// Rate of input records per second. Default 2,000.
	Rate int
	// Keys: distinct keys, round-robin. Default 10,000.
	Keys int
	// Partitions of the input topic (tasks of the worker). Default 6.
	Partitions int32
	// Window is the tumbling window size. Default 1 minute.
	Window time.Duration
	// Retention of the window store. Default 5 minutes.
	Retention time.Duration
	// Interval between samples. Default 30 s.
	Interval time.Duration
	// CommitInterval of the worker. Default the runtime's (30 s). The
	// store-entries figure is sampled by the runtime at each commit.
	CommitInterval time.Duration
	// Topic is the input topic, created if missing. Default
	// "eddy-soak-<unix nanos>".
	Topic string
	// Logger; nil discards.
	Logger *slog.Logger
	// OnSample, if set, is called with each sample as it is taken.
	OnSample func(SoakSample)
}

// defaults fills the zero fields with their defaults.
func (c *SoakConfig) defaults() {
	if c.Rate == 0 {
		c.Rate = 2000
	}
	if c.Keys == 0 {
		c.Keys = 10_000
	}
	if c.Partitions == 0 {
		c.Partitions = 6
	}
	if c.Window == 0 {
		c.Window = time.Minute
	}
	if c.Retention == 0 {
		c.Retention = 5 * time.Minute
	}
	if c.Interval == 0 {
		c.Interval = 30 * time.Second
	}
	if c.Topic == "" {
		c.Topic = fmt.Sprintf("eddy-soak-%d", time.Now().UnixNano())
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// validate reports the first invalid field (after defaults).
func (c *SoakConfig) validate() error {
	switch {
	case c.WorkDir == "" || c.Duration <= 0:
		return errors.New("streambench: soak needs a work dir and a positive duration")
	case c.Rate <= 0 || c.Keys <= 0 || c.Partitions <= 0:
		return fmt.Errorf("streambench: soak rate %d, keys %d, partitions %d: must be positive", c.Rate, c.Keys, c.Partitions)
	case c.Window < time.Millisecond:
		return fmt.Errorf("streambench: soak window %v below 1 ms", c.Window)
	case c.Retention < c.Window:
		return fmt.Errorf("streambench: soak retention %v below the window size %v", c.Retention, c.Window)
	case c.Interval <= 0 || c.CommitInterval < 0:
		return fmt.Errorf("streambench: soak interval %v, commit interval %v: must be positive", c.Interval, c.CommitInterval)
	}
	return nil
}

// SegmentInterval is the segment width of the soak's window store: the
// store's default, Kafka Streams' max(Retention/2, 60 s).
func (c SoakConfig) SegmentInterval() time.Duration {
	return max(c.Retention/2, time.Minute)
}

// SoakSample is one sample of a soak run.
type SoakSample struct {
	// Elapsed since the worker started.
	Elapsed time.Duration
	// Produced is the number of input records the broker acknowledged;
	// Processed the number the worker processed.
	Produced, Processed int64
	// Lag is Produced - Processed: input records not processed yet.
	Lag int64
	// RSS is the resident set size of this process (worker, load
	// generator and sampler; VmRSS), 0 where /proc is missing.
	RSS int64
	// HeapLive is the Go heap live after the last GC (runtime/metrics
	// /gc/heap/live:bytes); HeapInUse the heap spans in use now.
	HeapLive, HeapInUse int64
	// StoreEntries is the window store's entries summed over the tasks
	// (eddy_streams_store_entries, which the runtime samples at each
	// commit: ApproximateNumEntries, expired entries of segments not yet
	// removed included).
	StoreEntries int64
	// StoreDisk is the disk space (allocated blocks) of the window store
	// directories of every task.
	StoreDisk int64
	// Late is the count of records dropped as late.
	Late int64
}

// SoakResult is a soak run's samples and verdict.
type SoakResult struct {
	// Config is the run's configuration, defaults filled in.
	Config SoakConfig
	// Samples in the order taken.
	Samples []SoakSample
	// Verdict is JudgeSoak of the samples.
	Verdict SoakVerdict
}

// Soak runs a windowed count worker (groupByKey → windowedBy(tumbling
// Window) → count, store retention Retention) on a new topic fed at Rate
// records/s over Keys keys (event time: the time of each produce call)
// for Duration, sampling every Interval, and judges the samples with
// JudgeSoak. The worker, the load generator and the sampler share this
// process.
func Soak(ctx context.Context, cfg SoakConfig) (SoakResult, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return SoakResult{}, err
	}
	res := SoakResult{Config: cfg}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return res, err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, cfg.Partitions, 1, nil, cfg.Topic); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		return res, fmt.Errorf("create %s: %w", cfg.Topic, err)
	}

	var processed atomic.Int64
	b := stream.NewBuilder()
	w := stream.Stream(b, stream.With(serde.Bytes(), serde.Bytes()), cfg.Topic).
		Peek(func([]byte, []byte) { processed.Add(1) }).
		GroupByKey(stream.Grouped[[]byte, []byte]{}).
		WindowedBy(window.Tumbling(cfg.Window))
	stream.CountWindowed(w, stream.Materialized[[]byte, int64]{Name: SoakStore, Retention: cfg.Retention})
	top, err := b.Build()
	if err != nil {
		return res, err
	}
	appID := fmt.Sprintf("soak-%d", time.Now().UnixNano())
	reg := prometheus.NewRegistry()
	rc := runtime.DefaultConfig(appID, cfg.Brokers...)
	rc.StateDir = filepath.Join(cfg.WorkDir, "state")
	rc.Logger = cfg.Logger
	rc.Registerer = reg
	if cfg.CommitInterval > 0 {
		rc.CommitInterval = cfg.CommitInterval
	}
	app, err := runtime.New(top, rc)
	if err != nil {
		return res, err
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- app.Run(rctx) }()

	// The load generator: every 10 ms, produce what the rate allows so far.
	var acked atomic.Int64
	var prodErr atomic.Value
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		val := []byte("vvvvvvvvvvvvvvvvvvvv")
		keys := make([][]byte, cfg.Keys)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "key-%05d", i)
		}
		sent := int64(0)
		for {
			select {
			case <-rctx.Done():
				return
			case now := <-tick.C:
				want := int64(now.Sub(start).Seconds() * float64(cfg.Rate))
				for ; sent < want; sent++ {
					cl.Produce(rctx, &kgo.Record{Topic: cfg.Topic, Key: keys[sent%int64(len(keys))], Value: val, Timestamp: now},
						func(_ *kgo.Record, err error) {
							if err != nil {
								if !errors.Is(err, context.Canceled) {
									prodErr.Store(err)
								}
								return
							}
							acked.Add(1)
						})
				}
			}
		}
	}()

	storeDir := filepath.Join(rc.StateDir, appID)
	sample := func() (SoakSample, error) {
		s := SoakSample{Elapsed: time.Since(start).Round(time.Second), Produced: acked.Load(), Processed: processed.Load()}
		s.Lag = s.Produced - s.Processed
		s.RSS = currentRSS()
		s.HeapLive, s.HeapInUse = heapBytes()
		var err error
		if s.StoreEntries, s.Late, err = soakMetrics(reg); err != nil {
			return s, err
		}
		if s.StoreDisk, err = storeDiskUsage(storeDir, SoakStore); err != nil {
			return s, err
		}
		return s, nil
	}

	var runErr error
	tick := time.NewTicker(cfg.Interval)
	end := time.NewTimer(cfg.Duration)
loop:
	for {
		select {
		case <-tick.C:
			if err, _ := prodErr.Load().(error); err != nil {
				runErr = fmt.Errorf("producing input: %w", err)
				break loop
			}
			s, err := sample()
			if err != nil {
				runErr = fmt.Errorf("sampling: %w", err)
				break loop
			}
			res.Samples = append(res.Samples, s)
			if cfg.OnSample != nil {
				cfg.OnSample(s)
			}
		case <-end.C:
			break loop
		case err := <-errc:
			if err == nil {
				err = errors.New("worker stopped")
			}
			errc <- err // for the shutdown below
			runErr = fmt.Errorf("worker: %w", err)
			break loop
		case <-ctx.Done():
			runErr = ctx.Err()
			break loop
		}
	}
	tick.Stop()
	end.Stop()
	cancel()
	<-prodDone
	if err := <-errc; err != nil && runErr == nil && !errors.Is(err, context.Canceled) {
		runErr = fmt.Errorf("worker shutdown: %w", err)
	}
	res.Verdict = JudgeSoak(cfg, res.Samples)
	return res, runErr
}

// soakMetrics reads the soak store's entries (summed over tasks) and the
// late drops from the worker's metrics.
func soakMetrics(g prometheus.Gatherer) (entries, late int64, err error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, 0, err
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "eddy_streams_store_entries":
			for _, m := range mf.GetMetric() {
				if label(m.GetLabel(), "store") == SoakStore {
					entries += int64(m.GetGauge().GetValue())
				}
			}
		case "eddy_streams_dropped_records_total":
			for _, m := range mf.GetMetric() {
				if label(m.GetLabel(), "reason") == "late" {
					late += int64(m.GetCounter().GetValue())
				}
			}
		}
	}
	return entries, late, nil
}

func label[L interface {
	GetName() string
	GetValue() string
}](ls []L, name string) string {
	for _, l := range ls {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// storeDiskUsage sums the disk usage of every directory named store under
// root (one per task: root/<task>/<store>).
func storeDiskUsage(root, store string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file removed by a compaction meanwhile
			}
			return err
		}
		if !d.Type().IsRegular() || !inStoreDir(root, path, store) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		total += diskUsage(info)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // before the first task opened its store
	}
	return total, err
}

// inStoreDir reports whether path lies under a directory named store
// below root.
func inStoreDir(root, path, store string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return false
	}
	for _, part := range strings.Split(filepath.Dir(rel), string(filepath.Separator)) {
		if part == store {
			return true
		}
	}
	return false
}

// currentRSS returns VmRSS of this process in bytes, or 0.
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// heapBytes returns the live heap after the last GC and the heap in use.
func heapBytes() (live, inUse int64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	u := func(i int) int64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(min(s[i].Value.Uint64(), math.MaxInt64))
	}
	return u(0), u(1) + u(2)
}
