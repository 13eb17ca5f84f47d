package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

// Errors returned by App.
var (
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("runtime: application closed")
	// ErrUnknownStore is returned for a store name the topology does not
	// have.
	ErrUnknownStore = errors.New("runtime: unknown store")
	// ErrNotAvailable is returned by interactive queries while the answer
	// is not known here yet: before the first assignment, or while the
	// task is moving.
	ErrNotAvailable = errors.New("runtime: not available yet")
)

// App runs a topology as one worker of an application: Kafka Streams'
// KafkaStreams. Create it with New, start it with Run.
type App struct {
	top  *stream.Topology
	cfg  Config
	log  *slog.Logger
	plan *plan

	metrics *metrics

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run returns
	runErr  error
	// Set by Run before the threads start.
	processID  string
	counts     map[string]int32
	taskCounts map[int]int32
	acl        *kgo.Client
	adm        *kadm.Client

	readyOnce sync.Once
	readyCh   chan struct{}
	readyMu   sync.Mutex
	readyIdx  map[int]bool

	ownedMu sync.Mutex
	owned   map[int][2][]stream.TaskID // thread → active, standby

	hostsMu sync.RWMutex
	hosts   map[string][]stream.TaskID

	locksMu sync.Mutex
	locks   map[stream.TaskID]int // task directory → thread holding it

	partsMu sync.Mutex
	parts   map[string]int32

	// qmu guards the registries of queryable stores (store → task).
	qmu     sync.RWMutex
	qstores map[string]map[stream.TaskID]*queryable
	sstores map[string]map[stream.TaskID]*queryable // standbys

	promoted atomic.Int64 // standby tasks promoted to active

	// global keeps the global stores; set by Run before the stream
	// threads start (which read it), nil without global tables.
	global *globalThread
}

// New checks cfg and prepares a worker for top. It does not talk to the
// cluster: Run does.
func New(top *stream.Topology, cfg Config) (*App, error) {
	if top == nil {
		return nil, fmt.Errorf("%w: nil topology", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, err := newPlan(top, cfg.ApplicationID)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("runtime: metrics: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &App{
		top: top, cfg: cfg, plan: p, metrics: m,
		log:      log.With("app", cfg.ApplicationID),
		done:     make(chan struct{}),
		readyCh:  make(chan struct{}),
		readyIdx: map[int]bool{},
		owned:    map[int][2][]stream.TaskID{},
		locks:    map[stream.TaskID]int{},
		parts:    map[string]int32{},
		qstores:  map[string]map[stream.TaskID]*queryable{},
		sstores:  map[string]map[stream.TaskID]*queryable{},
	}, nil
}

// Run runs the worker until ctx is cancelled or a task fails. It creates
// the internal topics, starts the stream threads (each joins the
// application's group) and processes. When ctx is cancelled it shuts down
// gracefully — the records already polled are processed, tasks flush,
// the producer's records are acknowledged, checkpoints are written,
// offsets committed, stores closed and the group left — and returns nil.
// On a fatal error (a handler said Fail, a store failed) it closes what
// it can and returns the error. Run may be called once.
func (a *App) Run(ctx context.Context) error {
	a.mu.Lock()
	switch {
	case a.closed:
		a.mu.Unlock()
		return ErrClosed
	case a.started:
		a.mu.Unlock()
		return errors.New("runtime: Run called twice")
	}
	a.started = true
	ctx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	a.mu.Unlock()
	defer cancel()
	err := a.run(ctx)
	a.mu.Lock()
	a.runErr = err
	a.mu.Unlock()
	close(a.done)
	return err
}

func (a *App) run(ctx context.Context) error {
	root := filepath.Join(a.cfg.StateDir, a.cfg.ApplicationID)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("runtime: state directory: %w", err)
	}
	unlock, err := lockDir(filepath.Join(root, ".lock"))
	if err != nil {
		return fmt.Errorf("runtime: state directory %s is in use by another worker (give each worker its own StateDir): %w", root, err)
	}
	defer unlock()
	pid, err := loadProcessID(filepath.Join(root, "process.id"))
	if err != nil {
		return err
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(a.cfg.Brokers...), kgo.WithLogger(kgoLogger{a.log}),
		kgo.ClientID(a.cfg.ApplicationID + "-admin")}, a.cfg.ClientOptions...)
	acl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("runtime: admin client: %w", err)
	}
	defer acl.Close()
	// The brokers may be starting (or restarting): unreachable brokers are
	// retried for opTimeout.
	sctx, scancel := context.WithTimeout(ctx, opTimeout)
	counts, err := a.plan.setupTopics(sctx, acl, a.cfg.ReplicationFactor)
	for backoff := 50 * time.Millisecond; err != nil && isNetErr(err) && sctx.Err() == nil; backoff = min(2*backoff, time.Second) {
		a.log.Warn("brokers unreachable; retrying", "err", err)
		select {
		case <-sctx.Done():
		case <-time.After(backoff):
		}
		counts, err = a.plan.setupTopics(sctx, acl, a.cfg.ReplicationFactor)
	}
	scancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.mu.Lock()
	a.processID, a.counts, a.taskCounts, a.acl, a.adm = pid, counts, a.plan.taskCounts(counts), acl, kadm.NewClient(acl)
	a.mu.Unlock()
	a.partsMu.Lock()
	for k, v := range counts {
		a.parts[k] = v
	}
	a.partsMu.Unlock()
	a.log.Info("starting", "process", pid, "threads", a.cfg.NumStreamThreads, "tasks", len(a.plan.tasks(counts)))

	// The global stores are bootstrapped before any stream thread starts;
	// the global thread then follows its topics until the stream threads
	// have stopped, and closes last (they read its stores).
	var (
		global  *globalThread
		gerr    error
		gdone   chan struct{}
		gcancel context.CancelFunc = func() {}
	)
	if len(a.plan.globals) > 0 {
		g, err := newGlobalThread(ctx, a)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := g.bootstrap(ctx); err != nil {
			return errors.Join(err, g.close(false))
		}
		if ctx.Err() != nil {
			return g.close(true)
		}
		a.global = g
		global, gdone = g, make(chan struct{})
		var gctx context.Context
		gctx, gcancel = context.WithCancel(ctx)
		go func() {
			defer close(gdone)
			if gerr = g.run(gctx); gerr != nil {
				g.log.Error("global thread failed", "err", gerr)
				a.cancel() // the stream threads shut down gracefully
			}
		}()
	}
	stopGlobal := func() error {
		if global == nil {
			return nil
		}
		gcancel()
		<-gdone
		return errors.Join(gerr, global.close(gerr == nil))
	}

	threads := make([]*thread, 0, a.cfg.NumStreamThreads)
	for i := range a.cfg.NumStreamThreads {
		t, err := newThread(a, i)
		if err != nil {
			for _, t := range threads {
				close(t.exited)
				t.rcl.Close()
				t.cl.Close()
			}
			return errors.Join(err, stopGlobal())
		}
		threads = append(threads, t)
	}
	errs := make([]error, len(threads))
	var wg sync.WaitGroup
	for i, t := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = t.run(ctx)
			if errs[i] != nil {
				a.cancel() // the other threads shut down gracefully
			}
			t.stop()
		}()
	}
	wg.Wait()
	return errors.Join(append(errs, stopGlobal())...)
}

// WaitRunning returns once every stream thread has received an assignment
// and restored its active tasks, at least once; or the error that stopped
// Run before that; or ctx's error.
func (a *App) WaitRunning(ctx context.Context) error {
	select {
	case <-a.readyCh:
		return nil
	case <-a.done:
		select {
		case <-a.readyCh:
			return nil
		default:
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.runErr != nil {
			return a.runErr
		}
		return errors.New("runtime: the application stopped before running")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops Run, if it is running, and waits for it to return. It is
// idempotent; Run cannot be called after Close.
func (a *App) Close() error {
	a.mu.Lock()
	a.closed = true
	cancel, started := a.cancel, a.started
	a.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if started {
		<-a.done
	}
	return nil
}

// Tasks returns the active and standby tasks of this worker's stream
// threads, sorted.
func (a *App) Tasks() (active, standby []stream.TaskID) {
	a.ownedMu.Lock()
	defer a.ownedMu.Unlock()
	for _, o := range a.owned {
		active = append(active, o[0]...)
		standby = append(standby, o[1]...)
	}
	slices.SortFunc(active, compareTasks)
	slices.SortFunc(standby, compareTasks)
	return active, standby
}

func (a *App) setOwned(thread int, active, standby []stream.TaskID) {
	a.ownedMu.Lock()
	a.owned[thread] = [2][]stream.TaskID{active, standby}
	a.ownedMu.Unlock()
}

// cacheBytesPerTask splits the worker's record cache over its active
// tasks (as counted when the task starts).
func (a *App) cacheBytesPerTask() int64 {
	if a.cfg.CacheMaxBytes == 0 {
		return 0
	}
	a.ownedMu.Lock()
	n := 0
	for _, o := range a.owned {
		n += len(o[0])
	}
	a.ownedMu.Unlock()
	return a.cfg.CacheMaxBytes / int64(max(n, 1))
}

func (a *App) threadReady(idx int) {
	a.readyMu.Lock()
	a.readyIdx[idx] = true
	n := len(a.readyIdx)
	a.readyMu.Unlock()
	if n >= a.cfg.NumStreamThreads {
		a.readyOnce.Do(func() {
			a.log.Info("running")
			close(a.readyCh)
		})
	}
}

func (a *App) setHosts(hosts map[string][]string) {
	m := make(map[string][]stream.TaskID, len(hosts))
	for h, ids := range hosts {
		ts, err := parseTaskIDs(ids)
		if err != nil {
			continue
		}
		m[h] = ts
	}
	a.hostsMu.Lock()
	a.hosts = m
	a.hostsMu.Unlock()
}

// tryLockTask takes task id's state directory for thread, unless another
// thread of this worker still holds it.
func (a *App) tryLockTask(id stream.TaskID, thread int) bool {
	a.locksMu.Lock()
	defer a.locksMu.Unlock()
	if owner, held := a.locks[id]; held && owner != thread {
		return false
	}
	a.locks[id] = thread
	return true
}

func (a *App) unlockTask(id stream.TaskID) {
	a.locksMu.Lock()
	delete(a.locks, id)
	a.locksMu.Unlock()
}

// listOffsets returns the log start and end offsets of changelog
// partitions.
func (a *App) listOffsets(ctx context.Context, tps []table.TopicPartition) (start, end map[table.TopicPartition]int64, err error) {
	start, end = map[table.TopicPartition]int64{}, map[table.TopicPartition]int64{}
	if len(tps) == 0 {
		return start, end, nil
	}
	var topics []string
	for _, tp := range tps {
		if !slices.Contains(topics, tp.Topic) {
			topics = append(topics, tp.Topic)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for _, q := range []struct {
		list func(context.Context, ...string) (kadm.ListedOffsets, error)
		into map[table.TopicPartition]int64
	}{{a.adm.ListStartOffsets, start}, {a.listEnd, end}} {
		lo, err := q.list(ctx, topics...)
		if err != nil {
			return nil, nil, err
		}
		for _, tp := range tps {
			o, ok := lo.Lookup(tp.Topic, tp.Partition)
			if !ok {
				return nil, nil, fmt.Errorf("runtime: no offsets for %s-%d", tp.Topic, tp.Partition)
			}
			if o.Err != nil {
				return nil, nil, fmt.Errorf("runtime: offsets of %s-%d: %w", tp.Topic, tp.Partition, o.Err)
			}
			q.into[tp] = o.Offset
		}
	}
	return start, end, nil
}

// isNetErr reports a connection failure (a broker down or restarting).
func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// listEnd lists end offsets: under exactly-once the last stable offsets
// (read_committed: a transaction still open is not waited for), else the
// high watermarks.
func (a *App) listEnd(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
	if a.cfg.Guarantee == ExactlyOnce {
		return a.adm.ListCommittedOffsets(ctx, topics...)
	}
	return a.adm.ListEndOffsets(ctx, topics...)
}

// badgerOptions are the options of the stores the worker opens:
// transactional under exactly-once.
func (a *App) badgerOptions() table.BadgerOptions {
	return table.BadgerOptions{Logger: a.cfg.Logger, Transactional: a.cfg.Guarantee == ExactlyOnce}
}

// partitions returns topic's partition count (cached).
func (a *App) partitions(topic string) (int32, error) {
	a.partsMu.Lock()
	n, ok := a.parts[topic]
	a.partsMu.Unlock()
	if ok {
		return n, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	got, err := listPartitions(ctx, a.acl, topic)
	if err != nil {
		return 0, err
	}
	n, ok = got[topic]
	if !ok {
		return 0, fmt.Errorf("runtime: topic %s does not exist", topic)
	}
	a.partsMu.Lock()
	a.parts[topic] = n
	a.partsMu.Unlock()
	return n, nil
}

// loadProcessID reads the worker's process id from path, creating it the
// first time: it identifies the worker's state directory to the group
// leader across restarts.
func loadProcessID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); len(id) == 36 {
			return id, nil
		}
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	id := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("runtime: write process id: %w", err)
	}
	return id, nil
}
