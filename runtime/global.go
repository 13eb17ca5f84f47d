package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

// globalDir is the directory of the global stores and their checkpoint
// under <StateDir>/<ApplicationID>.
const globalDir = "global"

// globalLabel is the thread and task label of the global thread's
// metrics.
const globalLabel = "global"

// globalQueryID registers the global stores for interactive queries
// (no stream task has it).
var globalQueryID = stream.TaskID{Subtopology: -1, Partition: -1}

// globalThread keeps the worker's global stores: Kafka Streams'
// GlobalStreamThread. It reads every partition of every global topic
// with its own client (assigned partitions, no group), from the
// checkpointed offsets or from the start, and applies the records to the
// stores through a stream.GlobalTask. Its methods run on one goroutine at
// a time: bootstrap and close on Run's, run on its own in between.
type globalThread struct {
	app  *App
	log  *slog.Logger
	dir  string
	cl   *kgo.Client
	task *stream.GlobalTask

	// topicStore maps each global topic to its store.
	topicStore map[string]stream.GlobalStoreInfo
	// pos is, per global partition, the next offset to apply.
	pos map[table.TopicPartition]int64
	// persistent partitions are checkpointed (their store is on disk).
	persistent map[table.TopicPartition]bool
	// written is the last checkpoint written.
	written map[table.TopicPartition]int64
	// end is the bootstrap target, nil once bootstrapped.
	end map[table.TopicPartition]int64
	// remaining is what was added to the restore gauge per store.
	remaining map[string]float64
	queried   bool

	lastCheckpoint time.Time
	mDropped       *prometheus.CounterVec
}

// newGlobalThread opens the global stores, deciding from the checkpoint
// where each stands, and creates the client reading the global topics
// from there. It needs the topics' partition counts (a.counts) and the
// admin client.
func newGlobalThread(ctx context.Context, a *App) (*globalThread, error) {
	g := &globalThread{
		app: a, log: a.log.With("thread", globalLabel),
		dir:        filepath.Join(a.cfg.StateDir, a.cfg.ApplicationID, globalDir),
		topicStore: map[string]stream.GlobalStoreInfo{},
		pos:        map[table.TopicPartition]int64{},
		persistent: map[table.TopicPartition]bool{},
		remaining:  map[string]float64{},
		mDropped:   a.metrics.dropped,
	}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("runtime: global state directory: %w", err)
	}
	var tps []table.TopicPartition
	for _, info := range a.plan.globals {
		g.topicStore[info.Topic] = info
		for p := range a.counts[info.Topic] {
			tps = append(tps, table.TopicPartition{Topic: info.Topic, Partition: p})
		}
	}
	start, end, err := g.listOffsets(ctx, tps)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(g.dir, checkpointFile)
	ckpt, err := table.ReadCheckpoint(path)
	if errors.Is(err, table.ErrBadCheckpoint) {
		g.log.Warn("ignoring a bad global checkpoint: the global stores are rebuilt", "err", err)
		ckpt = map[table.TopicPartition]int64{}
	} else if err != nil {
		return nil, fmt.Errorf("runtime: global stores: %w", err)
	}
	for _, info := range a.plan.globals {
		// A persistent store is kept when the checkpoint places every
		// partition of its topic inside the topic's log; otherwise what
		// its directory holds is unknown, and it is rebuilt from the
		// start of the topic.
		keep := !info.InMemory
		for p := range a.counts[info.Topic] {
			tp := table.TopicPartition{Topic: info.Topic, Partition: p}
			if o, ok := ckpt[tp]; !ok || o < start[tp] || o > end[tp] {
				if ok && keep {
					g.log.Warn("global checkpoint outside the topic: rebuilding the store", "store", info.Name, "topic", info.Topic,
						"partition", p, "checkpoint", o, "start", start[tp], "end", end[tp])
				}
				keep = false
			}
		}
		for p := range a.counts[info.Topic] {
			tp := table.TopicPartition{Topic: info.Topic, Partition: p}
			g.pos[tp] = start[tp]
			if keep {
				g.pos[tp] = ckpt[tp]
			}
			if !info.InMemory {
				g.persistent[tp] = true
			}
		}
		if !keep && !info.InMemory {
			if err := os.RemoveAll(filepath.Join(g.dir, info.Name)); err != nil {
				return nil, fmt.Errorf("runtime: wipe global store %s: %w", info.Name, err)
			}
		}
	}
	g.end = end

	task, err := a.top.NewGlobalTask(stream.GlobalTaskConfig{
		ApplicationID: a.cfg.ApplicationID,
		Env:           globalEnv{g},
		Logger:        a.log.With("thread", globalLabel),
		Errors:        a.cfg.Errors,
		Hooks: stream.TaskHooks{Dropped: func(_, reason string) {
			g.mDropped.WithLabelValues(globalLabel, reason).Inc()
		}},
	})
	if err != nil {
		return nil, err
	}
	if err := task.Init(); err != nil {
		task.Close()
		return nil, err
	}
	g.task = task

	assign := map[string]map[int32]kgo.Offset{}
	for tp, o := range g.pos {
		if assign[tp.Topic] == nil {
			assign[tp.Topic] = map[int32]kgo.Offset{}
		}
		assign[tp.Topic][tp.Partition] = kgo.NewOffset().At(o)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.Brokers...),
		kgo.WithLogger(kgoLogger{a.log}),
		kgo.ClientID(fmt.Sprintf("%s-%s-GlobalStreamThread", a.cfg.ApplicationID, a.processID)),
		kgo.ConsumePartitions(assign),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Transaction markers move the position past them (see apply).
		kgo.KeepControlRecords(),
	}
	if a.cfg.Guarantee == ExactlyOnce {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(append(opts, a.cfg.ClientOptions...)...)
	if err != nil {
		task.Close()
		return nil, fmt.Errorf("runtime: global thread client: %w", err)
	}
	g.cl = cl
	return g, nil
}

// listOffsets lists the global partitions' log start and end offsets,
// retrying for a while (a broker may not know a topic's leaders yet).
func (g *globalThread) listOffsets(ctx context.Context, tps []table.TopicPartition) (start, end map[table.TopicPartition]int64, err error) {
	for attempt := 1; ; attempt++ {
		start, end, err = g.app.listOffsets(ctx, tps)
		if err == nil || ctx.Err() != nil || attempt == 50 {
			if err != nil {
				err = fmt.Errorf("runtime: global topics: %w", err)
			}
			return start, end, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// bootstrap applies the global topics up to the end offsets listed at
// start, before any stream thread runs (Kafka Streams does the same), then
// flushes the stores, writes the checkpoint and opens the stores to
// interactive queries. It returns nil early if ctx is cancelled.
func (g *globalThread) bootstrap(ctx context.Context) error {
	var total float64
	for tp, e := range g.end {
		if rem := e - g.pos[tp]; rem > 0 {
			store := g.topicStore[tp.Topic].Name
			g.remaining[store] += float64(rem)
			g.app.metrics.restoreRemaining.WithLabelValues(store).Add(float64(rem))
			total += float64(rem)
		}
	}
	g.log.Info("bootstrapping global stores", "from", g.pos, "to", g.end)
	started := time.Now()
	for !g.caughtUp() {
		if ctx.Err() != nil {
			g.endBootstrap()
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, maxIdleWait)
		f := g.cl.PollRecords(pctx, maxRestoreRecords)
		cancel()
		if err := g.apply(f); err != nil {
			g.endBootstrap()
			return err
		}
	}
	g.endBootstrap()
	if err := g.checkpoint(); err != nil {
		return err
	}
	g.app.registerGlobal(g)
	g.queried = true
	g.log.Info("global stores bootstrapped", "records", total, "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// caughtUp reports whether every global partition reached the bootstrap
// target.
func (g *globalThread) caughtUp() bool {
	for tp, e := range g.end {
		if g.pos[tp] < e {
			return false
		}
	}
	return true
}

// endBootstrap withdraws what is left of the restore gauge (offsets the
// topic no longer holds, such as compacted ones, are never applied).
func (g *globalThread) endBootstrap() {
	for store, rem := range g.remaining {
		g.app.metrics.restoreRemaining.WithLabelValues(store).Sub(rem)
	}
	clear(g.remaining)
	g.end = nil
}

// run keeps the global stores up to date until ctx is cancelled (nil) or
// a record fails the global task (the error). It checkpoints every
// CommitInterval; the final checkpoint is close's.
func (g *globalThread) run(ctx context.Context) error {
	g.lastCheckpoint = time.Now()
	for {
		if ctx.Err() != nil {
			return nil
		}
		if wait := time.Until(g.lastCheckpoint.Add(g.app.cfg.CommitInterval)); wait > 0 {
			pctx, cancel := context.WithTimeout(ctx, wait)
			f := g.cl.PollRecords(pctx, maxRestoreRecords)
			cancel()
			if err := g.apply(f); err != nil {
				return err
			}
			continue
		}
		if err := g.checkpoint(); err != nil {
			return err
		}
	}
}

// apply hands fetched records to the global task, in order per
// partition, and advances the positions.
func (g *globalThread) apply(f kgo.Fetches) error {
	f.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		g.log.Warn("global consumer", "topic", topic, "partition", p, "err", err)
	})
	var err error
	f.EachPartition(func(p kgo.FetchTopicPartition) {
		if err != nil || len(p.Records) == 0 {
			return
		}
		tp := table.TopicPartition{Topic: p.Topic, Partition: p.Partition}
		raws := make([]stream.RawRecord, 0, len(p.Records))
		last := int64(-1)
		for _, r := range p.Records {
			if r.Offset < g.pos[tp] {
				continue
			}
			last = r.Offset
			if isControl(r) {
				continue
			}
			raws = append(raws, rawRecord(r))
		}
		if last < 0 {
			return
		}
		if len(raws) > 0 {
			if err = g.task.Apply(raws...); err != nil {
				return
			}
		}
		g.pos[tp] = last + 1
		store := g.topicStore[tp.Topic].Name
		if g.end != nil {
			var n float64
			for _, r := range raws {
				if r.Offset < g.end[tp] {
					n++
				}
			}
			g.app.metrics.restored.WithLabelValues(store).Add(n)
			d := min(n, g.remaining[store])
			g.remaining[store] -= d
			g.app.metrics.restoreRemaining.WithLabelValues(store).Sub(d)
		}
	})
	return err
}

// checkpoint makes the stores durable, sends pending dead letters, and
// writes the positions of the persistent stores when they moved.
func (g *globalThread) checkpoint() error {
	g.lastCheckpoint = time.Now()
	if err := g.task.Flush(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	err := g.cl.Flush(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("runtime: global thread: flush dead letters: %w", err)
	}
	for _, info := range g.app.plan.globals {
		if h := g.task.Store(info.Name); h != nil {
			g.app.metrics.storeEntries.WithLabelValues(info.Name, globalLabel).Set(float64(h.ApproximateNumEntries()))
		}
	}
	if len(g.persistent) == 0 {
		return nil
	}
	offsets := make(map[table.TopicPartition]int64, len(g.persistent))
	dirty := len(g.written) != len(g.persistent)
	for tp := range g.persistent {
		offsets[tp] = g.pos[tp]
		if o, ok := g.written[tp]; !ok || o != offsets[tp] {
			dirty = true
		}
	}
	if !dirty {
		return nil
	}
	if err := table.WriteCheckpoint(filepath.Join(g.dir, checkpointFile), offsets); err != nil {
		return fmt.Errorf("runtime: global stores: %w", err)
	}
	g.written = offsets
	return nil
}

// close ends the global thread once no stream thread reads its stores
// any more: a clean close checkpoints first (a failed one leaves the last
// checkpoint, from which the next start replays the topics).
func (g *globalThread) close(clean bool) error {
	var errs []error
	if g.queried {
		g.app.unregisterGlobal()
		g.queried = false
	}
	if clean {
		errs = append(errs, g.checkpoint())
	}
	g.cl.Close()
	errs = append(errs, g.task.Close())
	for _, info := range g.app.plan.globals {
		g.app.metrics.storeEntries.DeleteLabelValues(info.Name, globalLabel)
	}
	return errors.Join(errs...)
}

// store returns the global store called name for the stream tasks, or
// nil.
func (g *globalThread) store(name string) *stream.StoreHandle {
	return g.task.Store(name)
}

// globalEnv is the stream.GlobalEnv of the global task: stores under
// <StateDir>/<ApplicationID>/global/<store>/, dead letters through the
// global thread's client.
type globalEnv struct{ g *globalThread }

func (e globalEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	// Global stores only ever apply committed records (read_committed
	// under exactly-once): they need no transactional overlay.
	return stream.OpenStateStore(info, filepath.Join(e.g.dir, info.Name), table.BadgerOptions{Logger: e.g.app.cfg.Logger})
}

// Send produces a dead-letter record of an undecodable global record; it
// is flushed at the next checkpoint. A failed delivery is logged.
func (e globalEnv) Send(rec stream.RawRecord) error {
	kr := &kgo.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value, Timestamp: time.UnixMilli(rec.Timestamp)}
	for _, h := range rec.Headers {
		kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	e.g.cl.Produce(context.Background(), kr, func(r *kgo.Record, err error) {
		if err != nil {
			e.g.log.Warn("dead-letter record not delivered", "topic", r.Topic, "err", err)
		}
	})
	return nil
}

// registerGlobal makes the global stores readable by StoreReader.
func (a *App) registerGlobal(g *globalThread) {
	a.qmu.Lock()
	defer a.qmu.Unlock()
	for _, info := range a.plan.globals {
		h := g.task.Store(info.Name)
		if h == nil {
			continue
		}
		a.qstores[info.Name] = map[stream.TaskID]*queryable{globalQueryID: {id: globalQueryID, kv: h.Underlying()}}
	}
}

// unregisterGlobal withdraws the global stores from queries and waits for
// the queries reading them.
func (a *App) unregisterGlobal() {
	var gone []*queryable
	a.qmu.Lock()
	for _, info := range a.plan.globals {
		if q := a.qstores[info.Name][globalQueryID]; q != nil {
			gone = append(gone, q)
			delete(a.qstores, info.Name)
		}
	}
	a.qmu.Unlock()
	for _, q := range gone {
		q.readers.Wait()
	}
}
