package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

const (
	// maxPollRecords bounds one poll of the main consumer. It takes the
	// whole fetch franz-go buffered: franz-go sends the next fetch only
	// once the last one is drained, so it then fetches while the tasks
	// process (fetches are bounded by fetchMaxBytes).
	maxPollRecords = 1 << 20
	// maxRestoreRecords bounds one poll of the restore consumer.
	maxRestoreRecords = 10000
	// processBatch is how many records one task processes before the
	// thread turns to its other tasks, polls and commits.
	processBatch = 2000
	// maxBufferedPerTask pauses a task's partitions when it has this many
	// records buffered, and resumes them below it.
	maxBufferedPerTask = 10000
	// fetchMaxBytes and fetchMaxPartitionBytes bound one fetch of the main
	// consumer (franz-go decodes a fetch whole, record by record). A
	// partition's share (a few thousand small records) stays below
	// maxBufferedPerTask, so a task keeping up is not paused.
	fetchMaxBytes          = 1 << 20
	fetchMaxPartitionBytes = 128 << 10
	// fetchMaxWait is how long the broker may hold a fetch of the main
	// consumer waiting for records.
	fetchMaxWait = 100 * time.Millisecond
	// maxIdleWait bounds a poll's wait, so wall-clock punctuators fire.
	maxIdleWait = 100 * time.Millisecond
	// restoreIdleWait bounds a poll's wait while tasks restore or wait
	// for their state directory.
	restoreIdleWait = 20 * time.Millisecond
	// standbyIdleWait bounds a poll's wait while standbys follow their
	// changelogs.
	standbyIdleWait = 50 * time.Millisecond
	// opTimeout bounds admin requests and the final commit.
	opTimeout = 30 * time.Second
)

// reqKind is a group callback handed to the thread's loop.
type reqKind int

const (
	reqAssigned reqKind = iota
	reqRevoked
	reqLost
)

type request struct {
	kind reqKind
	done chan struct{}
}

// prodErr is an asynchronous production failure.
type prodErr struct {
	task stream.TaskID
	rec  *kgo.Record
	err  error
}

// thread is a stream thread: one consumer-group member (and producer),
// one restore consumer, and the tasks assigned to it. Its tasks are only
// touched by its loop goroutine; group callbacks hand their work to the
// loop and wait for it.
type thread struct {
	app   *App
	idx   int
	label string
	log   *slog.Logger
	cl    *kgo.Client // group member and producer
	rcl   *kgo.Client // restore consumer (changelogs)
	bal   *balancer

	reqs   chan *request
	exited chan struct{}

	pollMu     sync.Mutex
	pollCancel context.CancelFunc

	// Owned by the loop.
	active     map[stream.TaskID]*taskState
	standby    map[stream.TaskID]*taskState
	order      []stream.TaskID // active ids, sorted
	paused     map[table.TopicPartition]bool
	restoring  map[table.TopicPartition]*taskState // changelog partitions in rcl
	lag        map[table.TopicPartition]int64
	committed  map[table.TopicPartition]int64
	lastCommit time.Time
	assigned   bool
	ready      bool
	// offsetFailures counts consecutive failures to list changelog
	// offsets.
	offsetFailures int
	// startChecked is when restoreStep last looked for changelog records
	// deleted under a restoring store (see skipDeleted).
	startChecked time.Time

	ackMu    sync.Mutex
	acked    map[table.TopicPartition]int64 // changelog: last acked offset + 1
	prodErrs []prodErr

	// Exactly-once: eos is set for the thread's life; inTxn (loop only)
	// when a transaction is begun; txnAcked counts the records of the
	// transaction acknowledged (any goroutine).
	eos      bool
	txnID    string
	inTxn    bool
	txnAcked atomic.Int64
	topicIDs map[string][16]byte // input topics' ids, for TxnOffsetCommit
	clOpts   []kgo.Opt           // the options of cl, to replace it
	// replaced is closed when cl is being replaced: the old client's
	// group callbacks then return at once (a new channel comes with the
	// new client).
	replaceMu sync.Mutex
	replaced  chan struct{}
	// replacingClient is set (loop only) while a new client begins its
	// first transaction: a failure then is fatal.
	replacingClient bool

	// Owned by the loop: the send path's caches.
	lastTopic    string
	lastTopicSet bool
	lastKind     topicKind
	e2eCount     uint64
	sendBuf      []outRec // records not yet handed to the producer goroutine
	sendCh       chan sendItem
	sendFree     chan []outRec
	sendDone     chan struct{}
	localRecs    []*kgo.Record // records to reuse, taken from freeRecs

	freeMu   sync.Mutex
	freeRecs []*kgo.Record // records the producer is done with

	mProcessed prometheus.Counter
	mLatency   prometheus.Observer
	mCommit    prometheus.Observer
	mE2E       prometheus.Observer
	mLateness  prometheus.Observer
	mLag       prometheus.Gauge
}

func newThread(a *App, idx int) (*thread, error) {
	t := &thread{
		app: a, idx: idx, label: strconv.Itoa(idx),
		log:       a.log.With("thread", idx),
		reqs:      make(chan *request, 4),
		exited:    make(chan struct{}),
		active:    map[stream.TaskID]*taskState{},
		standby:   map[stream.TaskID]*taskState{},
		paused:    map[table.TopicPartition]bool{},
		restoring: map[table.TopicPartition]*taskState{},
		lag:       map[table.TopicPartition]int64{},
		committed: map[table.TopicPartition]int64{},
		acked:     map[table.TopicPartition]int64{},
		eos:       a.cfg.Guarantee == ExactlyOnce,
		topicIDs:  map[string][16]byte{},
		replaced:  make(chan struct{}),
	}
	t.bal = &balancer{app: a, thread: idx}
	m := a.metrics
	t.mProcessed = m.processed.WithLabelValues(t.label)
	t.mLatency = m.processLatency.WithLabelValues(t.label)
	t.mCommit = m.commitLatency.WithLabelValues(t.label)
	t.mE2E = m.e2eLatency.WithLabelValues(t.label)
	t.mLateness = m.lateness.WithLabelValues(t.label)
	t.mLag = m.lag.WithLabelValues(t.label)

	clientID := fmt.Sprintf("%s-%s-StreamThread-%d", a.cfg.ApplicationID, a.processID, idx)
	opts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.Brokers...),
		kgo.WithLogger(kgoLogger{a.log}),
		kgo.ClientID(clientID),
		kgo.ConsumerGroup(a.cfg.ApplicationID),
		kgo.ConsumeTopics(a.plan.sources...),
		kgo.Balancers(t.bal),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// A fetch in flight does not see partitions resumed meanwhile: if
		// the others it asks for are at their end it waits this long while
		// the resumed ones have records. Keep it short.
		kgo.FetchMaxWait(fetchMaxWait),
		// Fetches are decoded whole: bound them so a worker with many
		// tasks keeps its memory (see "Memory" in the package doc).
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
		// Fetched records are decoded into pooled slices, given back
		// once addFetches copied them (see recordSlabs).
		kgo.WithPools(&recordSlabs{}),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { t.callback(reqAssigned) }),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { t.callback(reqRevoked) }),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { t.callback(reqLost) }),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(partitioner{kgo.StickyKeyPartitioner(nil)}),
	}
	if t.eos {
		t.txnID = transactionalID(a, idx)
		opts = append(opts, eosClientOpts(a, idx)...)
	}
	t.clOpts = append(opts, a.cfg.ClientOptions...)
	cl, err := kgo.NewClient(t.clOpts...)
	if err != nil {
		return nil, fmt.Errorf("runtime: thread %d client: %w", idx, err)
	}
	ropts := []kgo.Opt{
		kgo.SeedBrokers(a.cfg.Brokers...),
		kgo.WithLogger(kgoLogger{a.log}),
		kgo.ClientID(clientID + "-restore-consumer"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.FetchMaxBytes(fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fetchMaxPartitionBytes),
		// Transaction markers advance the restore position (they are
		// skipped, not applied): a changelog written in transactions
		// ends with one.
		kgo.KeepControlRecords(),
	}
	if t.eos {
		ropts = append(ropts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	rcl, err := kgo.NewClient(append(ropts, a.cfg.ClientOptions...)...)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("runtime: thread %d restore client: %w", idx, err)
	}
	t.cl, t.rcl = cl, rcl
	return t, nil
}

// callback hands a group event to the loop and waits until it is handled
// (the eager protocol: revoked tasks are committed before the callback
// returns). Once the loop has exited, callbacks do nothing.
func (t *thread) callback(kind reqKind) {
	t.replaceMu.Lock()
	replaced := t.replaced
	t.replaceMu.Unlock()
	r := &request{kind: kind, done: make(chan struct{})}
	select {
	case t.reqs <- r:
	case <-t.exited:
		return
	case <-replaced:
		return
	}
	t.wake()
	select {
	case <-r.done:
	case <-t.exited:
	case <-replaced:
	}
}

func (t *thread) wake() {
	t.pollMu.Lock()
	if t.pollCancel != nil {
		t.pollCancel()
	}
	t.pollMu.Unlock()
}

// run is the thread's loop. It returns nil after a graceful shutdown
// (ctx cancelled) and the fatal error otherwise; either way the tasks are
// closed when it returns and stop must then be called.
func (t *thread) run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			t.log.Error("stream thread failed", "err", err)
			t.abortOnFailure()
			t.closeAll(false)
		}
	}()
	t.lastCommit = time.Now()
	t.startProducer()
	for {
		if ctx.Err() != nil {
			return t.shutdown()
		}
		if err := t.serveRequests(); err != nil {
			return err
		}
		if err := t.beginTxn(); err != nil {
			return err
		}
		if err := t.initTasks(ctx); err != nil {
			return err
		}
		if err := t.restoreStep(); err != nil {
			return err
		}
		if err := t.checkProduction(); err != nil {
			return err
		}
		f := t.poll(ctx, t.pollWait())
		if err := t.addFetches(f); err != nil {
			return err
		}
		commitNow, err := t.processStep()
		if err != nil {
			return err
		}
		if err := t.punctuate(); err != nil {
			return err
		}
		t.handOff()
		if t.eos && !commitNow && t.uncommittedBytes() > maxUncommittedBytes {
			commitNow = true
		}
		if commitNow || time.Since(t.lastCommit) >= t.app.cfg.CommitInterval {
			if err := t.commit(); err != nil {
				return err
			}
		}
		t.updatePauses()
		t.updateReady()
	}
}

// stop ends the thread after run returned: callbacks stop waiting, the
// clients close (the group member leaves the group).
func (t *thread) stop() {
	close(t.exited)
	t.rcl.Close()
	t.cl.Close()
	if t.sendCh != nil {
		// Records still handed over (after a failure) fail fast on the
		// closed client.
		close(t.sendCh)
		<-t.sendDone
	}
}

// shutdown finishes the records already polled, commits, and closes
// every task cleanly.
func (t *thread) shutdown() error {
	t.log.Info("stream thread shutting down")
	if err := t.beginTxn(); err != nil {
		return err
	}
	for _, id := range t.order {
		if err := t.drain(t.active[id]); err != nil {
			return err
		}
	}
	if err := t.commit(); err != nil {
		return err
	}
	return t.closeAll(true)
}

// drain processes everything buffered in a running task.
func (t *thread) drain(ts *taskState) error {
	if ts == nil || ts.phase != phaseRunning {
		return nil
	}
	for ts.task.Buffered() > 0 {
		n, err := ts.task.Process(processBatch)
		t.mProcessed.Add(float64(n))
		if err != nil {
			return err
		}
	}
	return nil
}

// closeAll closes every task; clean closes write standby checkpoints.
func (t *thread) closeAll(clean bool) error {
	var errs []error
	for id, ts := range t.active {
		errs = append(errs, t.closeTask(ts, clean))
		delete(t.active, id)
	}
	for id, ts := range t.standby {
		errs = append(errs, t.closeTask(ts, clean))
		delete(t.standby, id)
	}
	t.order = nil
	t.syncOwned()
	return errors.Join(errs...)
}

// closeTask closes a task (active or standby) and releases its
// directory. A clean close of a standby or a restoring task writes its
// checkpoint (running tasks wrote theirs at their last commit); a dirty
// one leaves the last checkpoint, which the next owner replays from.
func (t *thread) closeTask(ts *taskState, clean bool) error {
	var errs []error
	t.app.unregisterQuery(ts)
	t.stopRestoring(ts)
	if clean && (ts.phase == phaseStandby || ts.phase == phaseRestoring) {
		if err := ts.flushStores(); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, ts.writeCheckpoint())
		}
	}
	if ts.task != nil {
		errs = append(errs, ts.task.Close())
		ts.task = nil
	}
	errs = append(errs, ts.closeStores())
	for _, st := range ts.infos {
		if ts.phase == phaseRunning || ts.phase == phaseSuspended {
			t.app.metrics.storeEntries.DeleteLabelValues(st.Name, ts.id.String())
		}
	}
	for topic, p := range ts.inputs {
		delete(t.lag, table.TopicPartition{Topic: topic, Partition: p})
	}
	if ts.locked {
		t.app.unlockTask(ts.id)
		ts.locked = false
	}
	ts.pending = nil
	return errors.Join(errs...)
}

// ---- group callbacks, run by the loop ----

func (t *thread) serveRequests() error {
	for {
		select {
		case r := <-t.reqs:
			err := t.handle(r.kind)
			close(r.done)
			if err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (t *thread) handle(kind reqKind) error {
	switch kind {
	case reqRevoked:
		return t.onRevoked()
	case reqLost:
		return t.onLost()
	default:
		return t.onAssigned()
	}
}

// onRevoked runs at the start of every rebalance (eager protocol: every
// partition is revoked): the running tasks process what they buffered and
// commit, then wait suspended for the new assignment.
func (t *thread) onRevoked() error {
	if err := t.beginTxn(); err != nil {
		return err
	}
	for _, id := range t.order {
		if err := t.drain(t.active[id]); err != nil {
			return err
		}
	}
	if err := t.commit(); err != nil {
		return err
	}
	for _, ts := range t.active {
		if ts.phase == phaseRunning {
			ts.phase = phaseSuspended
		}
		ts.pending = nil
	}
	t.resetConsumerState()
	return nil
}

// onLost closes every active task without committing: the group has
// moved on without this member.
func (t *thread) onLost() error {
	t.log.Warn("partitions lost: closing active tasks without committing")
	defer t.syncOwned()
	for id, ts := range t.active {
		if err := t.closeTask(ts, false); err != nil {
			t.log.Warn("closing a lost task", "task", id.String(), "err", err)
		}
		delete(t.active, id)
	}
	t.order = nil
	t.resetConsumerState()
	// What the lost tasks sent is in the open transaction: it must not
	// commit with the next tasks' work.
	return t.abortLost()
}

func (t *thread) resetConsumerState() {
	if len(t.paused) > 0 {
		t.cl.ResumeFetchPartitions(tpMap(t.paused))
		clear(t.paused)
	}
	clear(t.lag)
	clear(t.committed)
	t.mLag.Set(0)
}

// onAssigned applies the assignment the leader sent in the user data.
func (t *thread) onAssigned() error {
	ad := t.bal.takeAssignment()
	if ad == nil {
		ad = &assignmentData{}
	}
	activeIDs, err := parseTaskIDs(ad.Active)
	if err != nil {
		return err
	}
	standbyIDs, err := parseTaskIDs(ad.Standby)
	if err != nil {
		return err
	}
	t.app.setHosts(ad.Hosts)
	isActive := map[stream.TaskID]bool{}
	for _, id := range activeIDs {
		isActive[id] = true
	}
	isStandby := map[stream.TaskID]bool{}
	for _, id := range standbyIDs {
		isStandby[id] = true
	}
	// Active tasks that moved away (or became standbys here) close.
	for id, ts := range t.active {
		if !isActive[id] {
			if err := t.closeTask(ts, true); err != nil {
				t.log.Warn("closing a revoked task", "task", id.String(), "err", err)
			}
			delete(t.active, id)
		}
	}
	// Standbys: promoted ones restore the tail, dropped ones close.
	for id, ts := range t.standby {
		switch {
		case isStandby[id]:
		case isActive[id]:
			delete(t.standby, id)
			t.app.unregisterQuery(ts)
			t.app.promoted.Add(1)
			ts.standby = false
			ts.phase = phaseRestoring
			ts.end = nil // taken by initTasks
			t.active[id] = ts
			t.log.Info("promoting standby task", "task", id.String())
		default:
			if err := t.closeTask(ts, true); err != nil {
				t.log.Warn("closing a standby task", "task", id.String(), "err", err)
			}
			delete(t.standby, id)
		}
	}
	for _, id := range activeIDs {
		ts := t.active[id]
		switch {
		case ts == nil:
			t.active[id] = newTaskState(t.app, id, false)
		case ts.phase == phaseSuspended:
			ts.phase = phaseRunning
		}
	}
	for _, id := range standbyIDs {
		if t.standby[id] == nil && t.active[id] == nil {
			t.standby[id] = newTaskState(t.app, id, true)
		}
	}
	t.order = slices.SortedFunc(maps.Keys(t.active), compareTasks)
	t.syncOwned()
	t.assigned, t.ready = true, false
	t.app.metrics.rebalances.WithLabelValues(t.label).Inc()
	t.log.Info("assigned", "active", ad.Active, "standby", ad.Standby)
	return nil
}

// syncOwned tells the balancer (next join) and the app (Tasks, gauges)
// what the thread owns.
func (t *thread) syncOwned() {
	active := slices.SortedFunc(maps.Keys(t.active), compareTasks)
	standby := slices.SortedFunc(maps.Keys(t.standby), compareTasks)
	t.bal.setOwned(active, standby)
	t.app.setOwned(t.idx, active, standby)
	t.app.metrics.activeTasks.WithLabelValues(t.label).Set(float64(len(active)))
	t.app.metrics.standbyTasks.WithLabelValues(t.label).Set(float64(len(standby)))
}

// ---- opening and restoring ----

// initTasks opens the state of new tasks (once their directory is free),
// takes the restore targets, and starts the tasks that need no restore.
func (t *thread) initTasks(ctx context.Context) error {
	var opening, needEnd []*taskState
	for _, m := range []map[stream.TaskID]*taskState{t.active, t.standby} {
		for _, ts := range m {
			switch {
			case ts.phase == phaseNew && !ts.locked:
				if t.app.tryLockTask(ts.id, t.idx) {
					ts.locked = true
					opening = append(opening, ts)
				}
			case ts.phase == phaseNew:
				opening = append(opening, ts)
			case ts.phase == phaseRestoring && ts.end == nil:
				needEnd = append(needEnd, ts)
			}
		}
	}
	if len(opening) == 0 && len(needEnd) == 0 {
		return nil
	}
	var tps []table.TopicPartition
	for _, ts := range append(slices.Clone(opening), needEnd...) {
		tps = append(tps, ts.changelogs()...)
	}
	start, end, err := t.app.listOffsets(ctx, tps)
	if err != nil {
		// Right after the changelogs are created their metadata may lag:
		// only persistent failures are worth a warning.
		if t.offsetFailures++; ctx.Err() == nil && t.offsetFailures%50 == 0 {
			t.log.Warn("listing changelog offsets keeps failing; retrying", "failures", t.offsetFailures, "err", err)
		}
		return nil // retried on the next iteration; opening tasks keep their lock
	}
	t.offsetFailures = 0
	for _, ts := range opening {
		if err := ts.open(t.app, start, end); err != nil {
			return err
		}
		if ts.standby {
			ts.phase = phaseStandby
			t.startRestoring(ts)
			t.app.registerQuery(ts)
			continue
		}
		ts.phase = phaseRestoring
		needEnd = append(needEnd, ts)
	}
	for _, ts := range needEnd {
		ts.end = map[table.TopicPartition]int64{}
		for _, tp := range ts.changelogs() {
			ts.end[tp] = end[tp]
			if ts.pos[tp] < start[tp] {
				ts.pos[tp] = start[tp]
			}
		}
		for tp, e := range ts.end {
			if rem := e - ts.pos[tp]; rem > 0 {
				store := ts.logged[tp]
				ts.remaining[store] += float64(rem)
				t.app.metrics.restoreRemaining.WithLabelValues(store).Add(float64(rem))
			}
		}
		if ts.restored() {
			if err := t.startTask(ts); err != nil {
				return err
			}
			continue
		}
		t.log.Info("restoring task", "task", ts.id.String(), "from", ts.pos, "to", ts.end)
		t.startRestoring(ts)
	}
	return nil
}

// startRestoring adds the task's changelog partitions to the restore
// consumer at the stores' positions (no-op for those already in it).
func (t *thread) startRestoring(ts *taskState) {
	add := map[string]map[int32]kgo.Offset{}
	for tp := range ts.logged {
		if t.restoring[tp] != nil {
			t.restoring[tp] = ts
			continue
		}
		t.restoring[tp] = ts
		if add[tp.Topic] == nil {
			add[tp.Topic] = map[int32]kgo.Offset{}
		}
		add[tp.Topic][tp.Partition] = kgo.NewOffset().At(ts.pos[tp])
	}
	if len(add) > 0 {
		t.rcl.AddConsumePartitions(add)
	}
}

// stopRestoring removes the task's changelog partitions from the restore
// consumer and its leftover from the restore gauge.
func (t *thread) stopRestoring(ts *taskState) {
	rm := map[string][]int32{}
	for tp := range ts.logged {
		if t.restoring[tp] == ts {
			delete(t.restoring, tp)
			rm[tp.Topic] = append(rm[tp.Topic], tp.Partition)
		}
	}
	if len(rm) > 0 {
		t.rcl.RemoveConsumePartitions(rm)
	}
	for store, rem := range ts.remaining {
		t.app.metrics.restoreRemaining.WithLabelValues(store).Sub(rem)
	}
	clear(ts.remaining)
}

// restoreStep applies what the restore consumer fetched to restoring and
// standby stores, and starts the tasks whose restore completed.
func (t *thread) restoreStep() error {
	if len(t.restoring) == 0 {
		return nil
	}
	// Drain what the restore consumer buffered, within bounds, so
	// standbys keep up with busy actives.
	fetched := 0
	for range 4 {
		n, err := t.applyRestored(t.rcl.PollRecords(nil, maxRestoreRecords))
		if err != nil {
			return err
		}
		fetched += n
		if n < maxRestoreRecords {
			break
		}
	}
	if fetched == 0 {
		t.skipDeleted()
	}
	for _, id := range t.order {
		ts := t.active[id]
		if ts.phase == phaseRestoring && ts.end != nil && ts.restored() {
			if err := t.startTask(ts); err != nil {
				return err
			}
		}
	}
	return nil
}

// skipDeleted moves restoring stores past changelog records that were
// deleted after the restore began: a window or session changelog
// (compact,delete) loses its old records to retention, and DeleteRecords
// can remove records of any changelog. The restore consumer then resumes
// at the log start, and the store's position must follow it or the
// restore would never reach its end. What was deleted under a window
// store had expired anyway; for a key-value store it is lost, as in Kafka
// Streams, which then restores from the new log start too. It runs at most
// twice a second, when a poll fetched nothing.
func (t *thread) skipDeleted() {
	if time.Since(t.startChecked) < 500*time.Millisecond {
		return
	}
	t.startChecked = time.Now()
	var tps []table.TopicPartition
	for tp, ts := range t.restoring {
		if ts.end != nil && ts.pos[tp] < ts.end[tp] {
			tps = append(tps, tp)
		}
	}
	if len(tps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start, _, err := t.app.listOffsets(ctx, tps)
	if err != nil {
		return // tried again later
	}
	for _, tp := range tps {
		ts := t.restoring[tp]
		if s, ok := start[tp]; ok && s > ts.pos[tp] {
			t.log.Warn("changelog records were deleted under a restoring store: resuming at the log start",
				"task", ts.id.String(), "store", ts.logged[tp], "from", ts.pos[tp], "log_start", s)
			skipped := float64(min(s, ts.end[tp]) - ts.pos[tp])
			ts.pos[tp] = s
			store := ts.logged[tp]
			if ts.phase == phaseRestoring {
				d := min(skipped, ts.remaining[store])
				ts.remaining[store] -= d
				t.app.metrics.restoreRemaining.WithLabelValues(store).Sub(d)
			}
		}
	}
}

// applyRestored applies fetched changelog records to the restoring and
// standby stores they belong to, in PutAll batches; it returns how many
// records were fetched.
func (t *thread) applyRestored(f kgo.Fetches) (int, error) {
	f.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
			t.log.Warn("restore consumer", "topic", topic, "partition", p, "err", err)
		}
	})
	type key struct {
		ts    *taskState
		store string
	}
	batches := map[key][]stream.RawRecord{}
	var keys []key
	f.EachRecord(func(r *kgo.Record) {
		tp := table.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		ts := t.restoring[tp]
		if ts == nil || r.Offset < ts.pos[tp] {
			return
		}
		if isControl(r) {
			ts.pos[tp] = r.Offset + 1
			return
		}
		k := key{ts, ts.logged[tp]}
		if _, ok := batches[k]; !ok {
			keys = append(keys, k)
		}
		batches[k] = append(batches[k], stream.RawRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli()})
		ts.pos[tp] = r.Offset + 1
	})
	for _, k := range keys {
		recs := batches[k]
		if err := stream.RestoreChangelog(k.ts.info(k.store), k.ts.stores[k.store], recs); err != nil {
			return 0, fmt.Errorf("runtime: task %s: restore store %s: %w", k.ts.id, k.store, err)
		}
		if t.eos {
			// Restored records are committed ones: a transactional store
			// takes them at once instead of holding them in memory.
			if err := k.ts.stores[k.store].Flush(); err != nil {
				return 0, fmt.Errorf("runtime: task %s: restore store %s: %w", k.ts.id, k.store, err)
			}
		}
		n := float64(len(recs))
		t.app.metrics.restored.WithLabelValues(k.store).Add(n)
		if k.ts.phase == phaseRestoring {
			d := min(n, k.ts.remaining[k.store])
			k.ts.remaining[k.store] -= d
			t.app.metrics.restoreRemaining.WithLabelValues(k.store).Sub(d)
		}
	}
	return f.NumRecords(), nil
}

// startTask turns a restored task into a running stream.Task.
func (t *thread) startTask(ts *taskState) error {
	t.stopRestoring(ts)
	ts.end = nil
	var globals func(string) *stream.StoreHandle
	if g := t.app.global; g != nil {
		globals = g.store
	}
	task, err := t.app.top.NewTask(stream.TaskConfig{
		ApplicationID:     t.app.cfg.ApplicationID,
		ID:                ts.id,
		Env:               &sendEnv{taskEnv: taskEnv{t: t, ts: ts}, s: newSender(t, ts.id)},
		Logger:            t.app.log.With("thread", t.idx),
		CacheMaxBytes:     t.app.cacheBytesPerTask(),
		Errors:            t.app.cfg.Errors,
		InvalidTimestamps: t.app.cfg.InvalidTimestampPolicy,
		Hooks: stream.TaskHooks{
			Dropped: func(_, reason string) {
				t.app.metrics.dropped.WithLabelValues(t.label, reason).Inc()
			},
			Processed: func(d time.Duration) { t.mLatency.Observe(d.Seconds()) },
			Lateness:  func(_ string, d time.Duration) { t.mLateness.Observe(d.Seconds()) },
		},
		GlobalStores:    globals,
		DeferStoreFlush: t.eos,
	})
	if err != nil {
		return err
	}
	if err := task.Init(); err != nil {
		task.Close()
		return err
	}
	ts.task = task
	ts.phase = phaseRunning
	if len(ts.pending) > 0 {
		if err := task.Add(ts.pending...); err != nil {
			return err
		}
		ts.pending = nil
	}
	t.ackMu.Lock()
	for tp := range ts.logged {
		delete(t.acked, tp)
	}
	t.ackMu.Unlock()
	// The restored state is durable before the checkpoint says so.
	if err := ts.flushStores(); err != nil {
		return err
	}
	if err := ts.writeCheckpoint(); err != nil {
		return err
	}
	t.app.registerQuery(ts)
	t.log.Info("task running", "task", ts.id.String())
	return nil
}

// ---- polling and processing ----

// pollWait is how long the next poll may wait for input.
func (t *thread) pollWait() time.Duration {
	for _, ts := range t.active {
		if ts.phase == phaseRunning && ts.task.Buffered() > 0 {
			return 0
		}
	}
	wait := min(maxIdleWait, time.Until(t.lastCommit.Add(t.app.cfg.CommitInterval)))
	if len(t.restoring) > 0 {
		wait = min(wait, standbyIdleWait)
	}
	for _, m := range []map[stream.TaskID]*taskState{t.active, t.standby} {
		for _, ts := range m {
			if ts.phase == phaseNew || ts.phase == phaseRestoring {
				wait = min(wait, restoreIdleWait)
			}
		}
	}
	return max(wait, 0)
}

func (t *thread) poll(ctx context.Context, wait time.Duration) kgo.Fetches {
	if wait <= 0 {
		return t.cl.PollRecords(nil, maxPollRecords)
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t.pollMu.Lock()
	t.pollCancel = cancel
	t.pollMu.Unlock()
	if len(t.reqs) > 0 {
		cancel()
	}
	f := t.cl.PollRecords(pctx, maxPollRecords)
	t.pollMu.Lock()
	t.pollCancel = nil
	t.pollMu.Unlock()
	return f
}

// copyFetched converts fetched records into dst (of the same length) and
// gives the kgo.Records back to their pool (their bytes are not pooled:
// dst keeps them).
func copyFetched(dst []stream.RawRecord, recs []*kgo.Record) {
	for i, r := range recs {
		dst[i] = rawRecord(r)
		r.Recycle()
	}
}

// rawRecord converts a fetched record; the bytes are shared, not copied.
func rawRecord(r *kgo.Record) stream.RawRecord {
	raw := stream.RawRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli()}
	if len(r.Headers) > 0 {
		raw.Headers = make([]stream.Header, len(r.Headers))
		for j, h := range r.Headers {
			raw.Headers[j] = stream.Header{Key: h.Key, Value: h.Value}
		}
	}
	return raw
}

func (t *thread) addFetches(f kgo.Fetches) error {
	f.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		t.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
	})
	var err error
	f.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 || err != nil {
			return
		}
		id, ok := t.app.plan.taskOf(p.Topic, p.Partition)
		ts := t.active[id]
		if !ok || ts == nil || ts.phase == phaseSuspended {
			t.log.Warn("dropping records of a partition this thread does not own", "topic", p.Topic, "partition", p.Partition)
			return
		}
		tp := table.TopicPartition{Topic: p.Topic, Partition: p.Partition}
		t.lag[tp] = max(0, p.HighWatermark-(p.Records[len(p.Records)-1].Offset+1))
		if ts.task != nil {
			err = ts.task.AddFunc(p.Topic, p.Partition, len(p.Records), func(dst []stream.RawRecord) {
				copyFetched(dst, p.Records)
			})
			return
		}
		n := len(ts.pending)
		ts.pending = slices.Grow(ts.pending, len(p.Records))[:n+len(p.Records)]
		copyFetched(ts.pending[n:], p.Records)
	})
	var lag int64
	for _, l := range t.lag {
		lag += l
	}
	t.mLag.Set(float64(lag))
	return err
}

// processStep lets each running task process a batch; it reports whether
// a processor asked for a commit.
func (t *thread) processStep() (bool, error) {
	commit := false
	for _, id := range t.order {
		ts := t.active[id]
		if ts.phase != phaseRunning || ts.task.Buffered() == 0 {
			continue
		}
		n, err := ts.task.Process(processBatch)
		t.mProcessed.Add(float64(n))
		if err != nil {
			return false, err
		}
		if ts.task.CommitRequested() {
			commit = true
		}
	}
	return commit, nil
}

func (t *thread) punctuate() error {
	for _, id := range t.order {
		ts := t.active[id]
		if ts.phase != phaseRunning {
			continue
		}
		if err := ts.task.Punctuate(); err != nil {
			return err
		}
		if ts.task.CommitRequested() {
			t.lastCommit = time.Time{} // commit now
		}
	}
	return nil
}

// updatePauses pauses the input of tasks with too much buffered and
// resumes it once they caught up.
func (t *thread) updatePauses() {
	var pause, resume map[table.TopicPartition]bool
	for _, ts := range t.active {
		full := ts.buffered() >= maxBufferedPerTask
		for topic, p := range ts.inputs {
			tp := table.TopicPartition{Topic: topic, Partition: p}
			switch {
			case full && !t.paused[tp]:
				if pause == nil {
					pause = map[table.TopicPartition]bool{}
				}
				pause[tp], t.paused[tp] = true, true
			case !full && t.paused[tp]:
				if resume == nil {
					resume = map[table.TopicPartition]bool{}
				}
				resume[tp] = true
				delete(t.paused, tp)
			}
		}
	}
	if len(pause) > 0 {
		t.cl.PauseFetchPartitions(tpMap(pause))
	}
	if len(resume) > 0 {
		t.cl.ResumeFetchPartitions(tpMap(resume))
	}
}

func (t *thread) updateReady() {
	if !t.assigned || t.ready {
		return
	}
	for _, ts := range t.active {
		if ts.phase != phaseRunning {
			return
		}
	}
	t.ready = true
	t.app.threadReady(t.idx)
}

// recordSlabs pools the slices franz-go decodes fetched records into
// (kgo.PoolRecords), in power-of-two size classes. Without it every
// fetched record costs a fresh 200-byte kgo.Record, and the garbage
// collector runs several times a second under load. Unlike a sync.Pool
// it survives garbage collections; it keeps at most slabKeepBytes. Each
// thread's client has its own.
type recordSlabs struct {
	mu      sync.Mutex
	classes [maxSlabClass + 1][][]kgo.Record
	bytes   int
}

const (
	// maxSlabClass is the largest pooled slice: 2^maxSlabClass records.
	maxSlabClass = 15
	// slabKeepBytes bounds the memory the pool keeps for reuse.
	slabKeepBytes = 8 << 20
)

var recordBytes = int(unsafe.Sizeof(kgo.Record{}))

// GetRecords returns a slice of capacity at least n.
func (p *recordSlabs) GetRecords(n int) []kgo.Record {
	c := bits.Len(uint(max(n, 1) - 1))
	if c > maxSlabClass {
		return make([]kgo.Record, 0, n)
	}
	p.mu.Lock()
	if free := p.classes[c]; len(free) > 0 {
		s := free[len(free)-1]
		free[len(free)-1] = nil
		p.classes[c] = free[:len(free)-1]
		p.bytes -= cap(s) * recordBytes
		p.mu.Unlock()
		return s[:0]
	}
	p.mu.Unlock()
	return make([]kgo.Record, 0, 1<<c)
}

// PutRecords takes back a slice whose records were all recycled (and so
// zeroed).
func (p *recordSlabs) PutRecords(s []kgo.Record) {
	c := bits.Len(uint(cap(s)) - 1)
	if cap(s) == 0 || cap(s) != 1<<c || c > maxSlabClass {
		return
	}
	p.mu.Lock()
	if size := cap(s) * recordBytes; p.bytes+size <= slabKeepBytes {
		p.classes[c] = append(p.classes[c], s)
		p.bytes += size
	}
	p.mu.Unlock()
}

// ---- producing and committing ----

// explicitPartition marks records whose Partition the task chose.
var explicitPartition = context.WithValue(context.Background(), explicitPartitionKey{}, true)

type explicitPartitionKey struct{}

// e2eSample is how often the end-to-end latency is observed: one sent
// record in e2eSample (reading the clock and a histogram cost as much as
// a simple operator).
const e2eSample = 64

// topicKind says whether a topic the thread sends to is a changelog (its
// acknowledged offsets are checkpointed) or an internal topic (not an
// output: no end-to-end latency).
type topicKind struct {
	changelog, internal bool
}

// kindOf returns the kind of topic, remembering the last topic asked
// about (a task usually sends to one topic in a row).
func (t *thread) kindOf(topic string) topicKind {
	if topic == t.lastTopic && t.lastTopicSet {
		return t.lastKind
	}
	_, changelog := t.app.plan.changelogs[topic]
	_, repart := t.app.plan.repartitions[topic]
	t.lastTopic, t.lastTopicSet = topic, true
	t.lastKind = topicKind{changelog: changelog, internal: changelog || repart}
	return t.lastKind
}

// sender is the send side of one task: the promises handed to the
// producer are made once per task, not once per record.
type sender struct {
	t  *thread
	id stream.TaskID
	// onAck completes records of ordinary topics: it only takes the lock
	// to report a failure. onLogAck also tracks the acknowledged offsets
	// of changelog records.
	onAck, onLogAck func(*kgo.Record, error)
}

func newSender(t *thread, id stream.TaskID) *sender {
	s := &sender{t: t, id: id}
	s.onAck = func(r *kgo.Record, err error) {
		if err != nil {
			t.ackMu.Lock()
			t.prodErrs = append(t.prodErrs, prodErr{task: id, rec: r, err: err})
			t.ackMu.Unlock()
			return
		}
		if t.eos {
			t.txnAcked.Add(1)
		}
		t.releaseRecord(r)
	}
	s.onLogAck = func(r *kgo.Record, err error) {
		t.ackMu.Lock()
		if err != nil {
			t.prodErrs = append(t.prodErrs, prodErr{task: id, rec: r, err: err})
			t.ackMu.Unlock()
			return
		}
		tp := table.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if r.Offset+1 > t.acked[tp] {
			t.acked[tp] = r.Offset + 1
		}
		t.ackMu.Unlock()
		if t.eos {
			t.txnAcked.Add(1)
		}
		t.releaseRecord(r)
	}
	return s
}

// The records handed to the producer are recycled: a record goes back
// to the thread's free list once its promise ran successfully (the
// producer no longer holds it then); failed ones are kept for the error
// handler. The loop takes them back in bunches.
const (
	// freeRecordsMax bounds the records kept for reuse.
	freeRecordsMax = 1 << 15
	// freeRecordsTake is how many the loop takes at once.
	freeRecordsTake = 256
)

// releaseRecord puts r back on the free list (any goroutine).
func (t *thread) releaseRecord(r *kgo.Record) {
	*r = kgo.Record{}
	t.freeMu.Lock()
	if len(t.freeRecs) < freeRecordsMax {
		t.freeRecs = append(t.freeRecs, r)
	}
	t.freeMu.Unlock()
}

// newRecord returns a zero record for the producer (loop only).
func (t *thread) newRecord() *kgo.Record {
	if n := len(t.localRecs); n > 0 {
		r := t.localRecs[n-1]
		t.localRecs[n-1] = nil
		t.localRecs = t.localRecs[:n-1]
		return r
	}
	t.freeMu.Lock()
	k := min(len(t.freeRecs), freeRecordsTake)
	t.localRecs = append(t.localRecs, t.freeRecs[len(t.freeRecs)-k:]...)
	clear(t.freeRecs[len(t.freeRecs)-k:])
	t.freeRecs = t.freeRecs[:len(t.freeRecs)-k]
	t.freeMu.Unlock()
	if k == 0 {
		return new(kgo.Record)
	}
	return t.newRecord()
}

func (t *thread) send(id stream.TaskID, rec stream.RawRecord) {
	t.sendWith(newSender(t, id), rec)
}

func (t *thread) sendWith(s *sender, rec stream.RawRecord) {
	kr := t.newRecord()
	kr.Topic, kr.Key, kr.Value = rec.Topic, rec.Key, rec.Value
	kr.Timestamp = time.UnixMilli(rec.Timestamp)
	if len(rec.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(rec.Headers))
		for i, h := range rec.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	if rec.Partition >= 0 {
		kr.Partition = rec.Partition
		kr.Context = explicitPartition
	}
	kind := t.kindOf(rec.Topic)
	if !kind.internal {
		if t.e2eCount++; t.e2eCount%e2eSample == 1 {
			t.mE2E.Observe(max(0, float64(time.Now().UnixMilli()-rec.Timestamp)/1000))
		}
	}
	promise := s.onAck
	if kind.changelog {
		promise = s.onLogAck
	}
	if t.sendCh == nil {
		t.cl.Produce(context.Background(), kr, promise)
		return
	}
	t.sendBuf = append(t.sendBuf, outRec{kr, promise})
	if len(t.sendBuf) >= sendBatch {
		t.handOff()
	}
}

// The loop hands the records it sends to a producer goroutine in
// batches: franz-go's Produce (partitioning, batching, accounting) costs
// about as much as the rest of a simple topology, and on its own
// goroutine it runs on another core.
const (
	// sendBatch is how many records the loop hands over at once.
	sendBatch = 256
	// sendQueue bounds the batches waiting for the producer goroutine;
	// past it (when franz-go's buffer is full too) the loop waits.
	sendQueue = 32
)

// outRec is a record on its way to the producer.
type outRec struct {
	r       *kgo.Record
	promise func(*kgo.Record, error)
}

// sendItem is a batch of records, or a flush marker (flushed is closed
// once every record handed over before it is in the producer).
type sendItem struct {
	recs    []outRec
	flushed chan struct{}
}

// startProducer starts the producer goroutine; stop ends it.
func (t *thread) startProducer() {
	t.sendCh = make(chan sendItem, sendQueue)
	t.sendFree = make(chan []outRec, sendQueue+2)
	t.sendDone = make(chan struct{})
	go t.produceLoop()
}

func (t *thread) produceLoop() {
	defer close(t.sendDone)
	ctx := context.Background()
	for it := range t.sendCh {
		for i, o := range it.recs {
			t.cl.Produce(ctx, o.r, o.promise)
			it.recs[i] = outRec{}
		}
		if it.flushed != nil {
			close(it.flushed)
		}
		if it.recs != nil {
			select {
			case t.sendFree <- it.recs[:0]:
			default:
			}
		}
	}
}

// handOff passes the records sent so far to the producer goroutine. The
// loop calls it after every processing step, so a record waits at most
// one step.
func (t *thread) handOff() {
	if len(t.sendBuf) == 0 {
		return
	}
	t.sendCh <- sendItem{recs: t.sendBuf}
	select {
	case t.sendBuf = <-t.sendFree:
	default:
		t.sendBuf = make([]outRec, 0, sendBatch)
	}
}

// flushSends returns once every record sent so far is in the producer
// (its Flush then waits for their acknowledgements).
func (t *thread) flushSends() {
	if t.sendCh == nil {
		return
	}
	t.handOff()
	done := make(chan struct{})
	t.sendCh <- sendItem{flushed: done}
	<-done
}

// sendEnv is a running task's stream.TaskEnv: taskEnv with the task's
// sender.
type sendEnv struct {
	taskEnv
	s *sender
}

// Send hands rec to the producer.
func (e *sendEnv) Send(rec stream.RawRecord) error {
	e.t.sendWith(e.s, rec)
	return nil
}

// checkProduction applies the production error handler to the
// asynchronous failures reported since the last check.
func (t *thread) checkProduction() error {
	t.ackMu.Lock()
	errs := t.prodErrs
	t.prodErrs = nil
	t.ackMu.Unlock()
	handler := t.app.cfg.Errors.Production
	if handler == nil {
		handler = stream.LogAndFail
	}
	dlq := t.app.cfg.Errors.DeadLetterTopic
	for _, pe := range errs {
		err := fmt.Errorf("send to %s: %w", pe.rec.Topic, pe.err)
		t.log.Warn("production error", "task", pe.task.String(), "topic", pe.rec.Topic, "err", pe.err)
		if dlq != "" && pe.rec.Topic != dlq {
			t.send(pe.task, stream.RawRecord{Topic: dlq, Partition: -1, Key: pe.rec.Key, Value: pe.rec.Value,
				Timestamp: pe.rec.Timestamp.UnixMilli(), Headers: []stream.Header{
					{Key: stream.HeaderErrorException, Value: []byte("production")},
					{Key: stream.HeaderErrorMessage, Value: []byte(err.Error())},
					{Key: stream.HeaderErrorNode, Value: []byte("producer")},
					{Key: stream.HeaderErrorTopic, Value: []byte(pe.rec.Topic)},
				}})
		}
		if handler(stream.ErrorContext{Node: "producer", TaskID: pe.task}, err) == stream.Continue {
			t.app.metrics.dropped.WithLabelValues(t.label, "production").Inc()
			continue
		}
		return &stream.TaskError{Task: pe.task, Node: "producer", Kind: "production", Err: err}
	}
	return nil
}

// commit is at-least-once: flush every running task (caches to stores,
// changelogs and downstream), wait until the producer has every record
// acknowledged, write the checkpoints, then commit the input offsets.
func (t *thread) commit() error {
	if t.eos {
		return t.commitEOS()
	}
	start := time.Now()
	t.lastCommit = start
	running, err := t.flushTasks()
	if err != nil || len(running) == 0 && len(t.standby) == 0 {
		return err
	}
	if err := t.flushProducer(); err != nil {
		return err
	}
	if err := t.checkpointCommitted(running, false); err != nil {
		return err
	}
	if offsets := t.offsetsToCommit(running); len(offsets) > 0 {
		if err := t.commitOffsetsPlain(offsets); err != nil {
			// The group is rebalancing or moved on: the revoke (or lost)
			// callback follows and settles the tasks.
			t.log.Warn("offset commit failed", "err", err)
		}
	}
	t.mCommit.Observe(time.Since(start).Seconds())
	return nil
}

// flushTasks flushes the running tasks (caches to stores, changelogs and
// downstream) and returns them.
func (t *thread) flushTasks() ([]*taskState, error) {
	var running []*taskState
	for _, id := range t.order {
		if ts := t.active[id]; ts.phase == phaseRunning {
			running = append(running, ts)
			if err := ts.task.Flush(); err != nil {
				return nil, err
			}
		}
	}
	return running, nil
}

// flushProducer waits until every record sent so far is acknowledged and
// applies the production error handler to the failures; dead-letter
// records the handler sent are flushed too.
func (t *thread) flushProducer() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout+2*time.Minute)
	defer cancel()
	t.flushSends()
	if err := t.cl.Flush(ctx); err != nil {
		return fmt.Errorf("runtime: flush producer: %w", err)
	}
	if err := t.checkProduction(); err != nil {
		return err
	}
	t.flushSends()
	if err := t.cl.Flush(ctx); err != nil {
		return fmt.Errorf("runtime: flush producer: %w", err)
	}
	return nil
}

// checkpointCommitted records how far the running tasks' changelogs are
// applied once their output is safe (flushed under at-least-once,
// committed under exactly-once), samples their store gauges, and
// checkpoints the standbys. flushStores first hands the stores the writes
// they held back (exactly-once, TaskConfig.DeferStoreFlush).
func (t *thread) checkpointCommitted(running []*taskState, flushStores bool) error {
	t.advancePositions(running)
	for _, ts := range running {
		if flushStores {
			if err := ts.flushStores(); err != nil {
				return err
			}
		}
		if err := ts.writeCheckpoint(); err != nil {
			return err
		}
		for name, kv := range ts.stores {
			t.app.metrics.storeEntries.WithLabelValues(name, ts.id.String()).Set(float64(kv.ApproximateNumEntries()))
		}
	}
	return t.checkpointStandbys()
}

// advancePositions moves the running tasks' changelog positions to the
// acknowledged offsets.
func (t *thread) advancePositions(running []*taskState) {
	t.ackMu.Lock()
	defer t.ackMu.Unlock()
	for _, ts := range running {
		for tp := range ts.logged {
			if o, ok := t.acked[tp]; ok && o > ts.pos[tp] {
				ts.pos[tp] = o
			}
		}
	}
}

// checkpointStandbys makes the standbys' stores durable and checkpoints
// them when their positions moved.
func (t *thread) checkpointStandbys() error {
	for _, ts := range t.standby {
		if ts.phase == phaseStandby && ts.checkpointDirty() {
			if err := ts.flushStores(); err != nil {
				return err
			}
			if err := ts.writeCheckpoint(); err != nil {
				return err
			}
		}
	}
	return nil
}

// offsetsToCommit returns the running tasks' input offsets that moved
// since the last commit.
func (t *thread) offsetsToCommit(running []*taskState) map[string]map[int32]kgo.EpochOffset {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, ts := range running {
		for tp, o := range ts.task.CommitOffsets() {
			if c, ok := t.committed[tp]; ok && c == o {
				continue
			}
			if offsets[tp.Topic] == nil {
				offsets[tp.Topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
	}
	return offsets
}

// commitOffsetsPlain commits offsets outside a transaction (OffsetCommit,
// with the member's generation) and records the committed ones.
func (t *thread) commitOffsetsPlain(offsets map[string]map[int32]kgo.EpochOffset) error {
	var cerr error
	cctx, ccancel := context.WithTimeout(context.Background(), opTimeout)
	defer ccancel()
	t.cl.CommitOffsetsSync(cctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if e := kerr.ErrorForCode(rp.ErrorCode); e != nil {
					cerr = e
					continue
				}
				if o, ok := offsets[rt.Topic][rp.Partition]; ok {
					t.committed[table.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = o.Offset
				}
			}
		}
	})
	return cerr
}

// ---- helpers ----

func tpMap(set map[table.TopicPartition]bool) map[string][]int32 {
	out := map[string][]int32{}
	for tp := range set {
		out[tp.Topic] = append(out[tp.Topic], tp.Partition)
	}
	return out
}

// partitioner sends records whose task chose a partition (changelogs,
// custom partitioners) there, and the others through kgo's sticky key
// partitioner: murmur2 of the key masked to positive, modulo the
// partition count, exactly as Kafka's default partitioner does for keyed
// records (sticky batches for null keys).
type partitioner struct{ def kgo.Partitioner }

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &topicPartitioner{def: p.def.ForTopic(topic)}
}

type topicPartitioner struct{ def kgo.TopicPartitioner }

func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Context == explicitPartition || p.def.RequiresConsistency(r)
}

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Context == explicitPartition {
		return int(r.Partition) % n
	}
	return p.def.Partition(r, n)
}

func (p *topicPartitioner) OnNewBatch() {
	if nb, ok := p.def.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

// kgoLogger adapts franz-go's logger to slog (franz-go's info is debug
// here: it is chatty).
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	case k.l.Enabled(ctx, slog.LevelError):
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	}
	k.l.Log(context.Background(), lv, msg, append(keyvals, "component", "kgo")...)
}
