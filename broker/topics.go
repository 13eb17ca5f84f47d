package broker

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/eddy-streams/eddy/broker/storage"
)

// offsetsTopic is the internal topic holding committed offsets and group
// metadata.
const offsetsTopic = "__consumer_offsets"

// topicsFile lists every topic with its id, partition count and config
// overrides. It is replaced atomically on every change.
const topicsFile = "topics.json"

// maxTopicNameLen is Kafka's limit (255 minus room for the partition suffix).
const maxTopicNameLen = 249

// Lock order: topicManager.admin, then topicManager.mu, then partition.mu.

// topicManager owns the topics and their partition logs.
type topicManager struct {
	dir     string
	logger  *slog.Logger
	metrics *metrics
	base    storage.Config // broker-wide defaults with SyncWrites and ProducerIDExpirationMs applied

	admin sync.Mutex // serializes changes (create, delete, alter) and metadata writes

	mu     sync.RWMutex // guards byName, byID and topic.configs
	byName map[string]*topic
	byID   map[[16]byte]*topic
}

// topic is one topic. Its partition slice is replaced as a whole
// (copy-on-write) so the hot path reads it without a lock.
type topic struct {
	name     string
	id       [16]byte
	internal bool
	configs  map[string]string // overrides, replaced as a whole under topicManager.mu
	parts    atomic.Pointer[[]*partition]
	m        *topicMetrics
}

// partition is one partition of a topic.
type partition struct {
	t   *topic
	id  int32
	log *storage.Log

	// Long-polling fetches register a channel here; appends signal them.
	nwait   atomic.Int32
	mu      sync.Mutex
	waiters []chan struct{}
}

// topicRecord is a topic's entry in topics.json.
type topicRecord struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Internal   bool              `json:"internal,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
}

type topicsDoc struct {
	Version int           `json:"version"`
	Topics  []topicRecord `json:"topics"`
}

func (t *topic) partitions() []*partition { return *t.parts.Load() }

// partition returns partition i or nil.
func (t *topic) partition(i int32) *partition {
	ps := t.partitions()
	if i < 0 || int(i) >= len(ps) {
		return nil
	}
	return ps[i]
}

// addWaiter registers ch to be signalled by the next append.
func (p *partition) addWaiter(ch chan struct{}) {
	p.mu.Lock()
	p.waiters = append(p.waiters, ch)
	p.nwait.Add(1)
	p.mu.Unlock()
}

// removeWaiter unregisters ch.
func (p *partition) removeWaiter(ch chan struct{}) {
	p.mu.Lock()
	for i, w := range p.waiters {
		if w == ch {
			last := len(p.waiters) - 1
			p.waiters[i] = p.waiters[last]
			p.waiters[last] = nil
			p.waiters = p.waiters[:last]
			p.nwait.Add(-1)
			break
		}
	}
	p.mu.Unlock()
}

// wake signals every registered waiter without blocking.
func (p *partition) wake() {
	if p.nwait.Load() == 0 {
		return
	}
	p.mu.Lock()
	for _, w := range p.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
}

func newTopicManager(dir string, base storage.Config, logger *slog.Logger, m *metrics) *topicManager {
	return &topicManager{
		dir:     dir,
		logger:  logger,
		metrics: m,
		base:    base,
		byName:  make(map[string]*topic),
		byID:    make(map[[16]byte]*topic),
	}
}

// validateTopicName applies Kafka's topic name rules.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty: %w", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("topic name cannot be %q: %w", name, kerr.InvalidTopicException)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("topic name is longer than %d characters: %w", maxTopicNameLen, kerr.InvalidTopicException)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q contains a character other than ASCII alphanumerics, '.', '_' and '-': %w", name, kerr.InvalidTopicException)
		}
	}
	return nil
}

func (m *topicManager) partitionDir(topic string, p int32) string {
	return filepath.Join(m.dir, topic+"-"+strconv.Itoa(int(p)))
}

// topicConfig resolves a topic's effective log config from its overrides.
func (m *topicManager) topicConfig(overrides map[string]string) (storage.Config, error) {
	cfg, err := storage.ParseTopicConfig(overrides, m.base)
	if err != nil {
		return cfg, err
	}
	cfg.SyncWrites = m.base.SyncWrites
	cfg.ProducerIDExpirationMs = m.base.ProducerIDExpirationMs
	return cfg, nil
}

func (m *topicManager) openLog(name string, p int32, cfg storage.Config) (*storage.Log, error) {
	return storage.Open(m.partitionDir(name, p), cfg, storage.Options{
		Logger: m.logger.With("topic", name, "partition", p),
	})
}

// load reads topics.json, opens every partition and removes partition
// directories of topics that no longer exist (a delete interrupted by a
// crash).
func (m *topicManager) load() error {
	b, err := os.ReadFile(filepath.Join(m.dir, topicsFile))
	var doc topicsDoc
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("parsing %s: %w", topicsFile, err)
		}
	}
	type job struct {
		t   *topic
		p   int32
		cfg storage.Config
	}
	var jobs []job
	for _, r := range doc.Topics {
		if err := validateTopicName(r.Name); err != nil {
			return fmt.Errorf("%s: %w", topicsFile, err)
		}
		var id [16]byte
		if raw, err := hex.DecodeString(r.ID); err != nil || len(raw) != 16 {
			return fmt.Errorf("%s: topic %q has a bad id %q", topicsFile, r.Name, r.ID)
		} else {
			copy(id[:], raw)
		}
		if r.Partitions < 1 {
			return fmt.Errorf("%s: topic %q has %d partitions", topicsFile, r.Name, r.Partitions)
		}
		cfg, err := m.topicConfig(r.Configs)
		if err != nil {
			return fmt.Errorf("%s: topic %q: %w", topicsFile, r.Name, err)
		}
		t := &topic{name: r.Name, id: id, internal: r.Internal, configs: r.Configs, m: m.metrics.topic(r.Name)}
		ps := make([]*partition, r.Partitions)
		t.parts.Store(&ps)
		m.byName[t.name] = t
		m.byID[t.id] = t
		for p := range r.Partitions {
			jobs = append(jobs, job{t, p, cfg})
		}
	}
	// Open the logs a few at a time: recovery is I/O bound.
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
		errs = make([]error, len(jobs))
	)
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l, err := m.openLog(j.t.name, j.p, j.cfg)
			if err != nil {
				errs[i] = fmt.Errorf("opening %s-%d: %w", j.t.name, j.p, err)
				return
			}
			(*j.t.parts.Load())[j.p] = &partition{t: j.t, id: j.p, log: l}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		m.closeAll()
		return err
	}
	m.removeOrphans()
	return nil
}

var partitionDirRE = regexp.MustCompile(`^([a-zA-Z0-9._-]+)-([0-9]+)$`)

// removeOrphans deletes partition directories that belong to no topic.
func (m *topicManager) removeOrphans() {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		m.logger.Warn("listing data dir", "err", err)
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		sm := partitionDirRE.FindStringSubmatch(e.Name())
		if sm == nil {
			continue
		}
		p, err := strconv.Atoi(sm[2])
		if err != nil {
			continue
		}
		if t := m.byName[sm[1]]; t != nil && p < len(t.partitions()) {
			continue
		}
		dir := filepath.Join(m.dir, e.Name())
		m.logger.Warn("removing partition directory of a deleted topic", "dir", dir)
		if err := os.RemoveAll(dir); err != nil {
			m.logger.Warn("removing orphan partition directory", "dir", dir, "err", err)
		}
	}
}

// persist writes topics.json atomically. Callers hold admin.
func (m *topicManager) persist() error {
	m.mu.RLock()
	doc := topicsDoc{Version: 1}
	for _, t := range m.byName {
		doc.Topics = append(doc.Topics, topicRecord{
			Name:       t.name,
			ID:         hex.EncodeToString(t.id[:]),
			Partitions: int32(len(t.partitions())),
			Internal:   t.internal,
			Configs:    t.configs,
		})
	}
	m.mu.RUnlock()
	slices.SortFunc(doc.Topics, func(a, b topicRecord) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(m.dir, topicsFile), b)
}

// writeFileAtomic replaces path with data: write a temporary file, fsync
// it, rename it over path, fsync the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// get returns the topic named name or nil.
func (m *topicManager) get(name string) *topic {
	m.mu.RLock()
	t := m.byName[name]
	m.mu.RUnlock()
	return t
}

// getByID returns the topic with id or nil.
func (m *topicManager) getByID(id [16]byte) *topic {
	m.mu.RLock()
	t := m.byID[id]
	m.mu.RUnlock()
	return t
}

// list returns every topic sorted by name.
func (m *topicManager) list() []*topic {
	m.mu.RLock()
	ts := slices.Collect(maps.Values(m.byName))
	m.mu.RUnlock()
	slices.SortFunc(ts, func(a, b *topic) int { return strings.Compare(a.name, b.name) })
	return ts
}

// overrides returns a copy of the topic's config overrides.
func (m *topicManager) overrides(t *topic) map[string]string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(t.configs)
}

// createSpec describes a topic to create.
type createSpec struct {
	name         string
	partitions   int32
	configs      map[string]string
	internal     bool
	validateOnly bool
}

// checkCreate validates spec against the current topics. Callers hold admin.
func (m *topicManager) checkCreate(spec createSpec) error {
	if err := validateTopicName(spec.name); err != nil {
		return err
	}
	if spec.partitions < 1 {
		return fmt.Errorf("number of partitions must be larger than 0, got %d: %w", spec.partitions, kerr.InvalidPartitions)
	}
	if _, err := m.topicConfig(spec.configs); err != nil {
		return err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if _, ok := m.byName[spec.name]; ok {
		return fmt.Errorf("topic %q: %w", spec.name, ErrTopicExists)
	}
	norm := strings.ReplaceAll(spec.name, ".", "_")
	for name := range m.byName {
		if strings.ReplaceAll(name, ".", "_") == norm {
			return fmt.Errorf("topic %q collides with existing topic %q ('.' and '_' collide in metric names): %w", spec.name, name, kerr.InvalidTopicException)
		}
	}
	return nil
}

// create makes a topic with its partition logs and persists it. With
// spec.validateOnly it only validates. An existing topic returns
// ErrTopicExists.
func (m *topicManager) create(spec createSpec) (*topic, error) {
	m.admin.Lock()
	defer m.admin.Unlock()
	return m.createLocked(spec)
}

func (m *topicManager) createLocked(spec createSpec) (*topic, error) {
	if err := m.checkCreate(spec); err != nil {
		return nil, err
	}
	if spec.validateOnly {
		return nil, nil
	}
	cfg, _ := m.topicConfig(spec.configs)
	t := &topic{name: spec.name, internal: spec.internal, configs: maps.Clone(spec.configs)}
	if _, err := rand.Read(t.id[:]); err != nil {
		return nil, err
	}
	ps := make([]*partition, 0, spec.partitions)
	for p := range spec.partitions {
		l, err := m.openLog(t.name, p, cfg)
		if err != nil {
			for _, q := range ps {
				q.log.Delete()
			}
			return nil, fmt.Errorf("creating %s-%d: %w", t.name, p, err)
		}
		ps = append(ps, &partition{t: t, id: p, log: l})
	}
	t.parts.Store(&ps)
	t.m = m.metrics.topic(t.name)
	m.mu.Lock()
	m.byName[t.name] = t
	m.byID[t.id] = t
	m.mu.Unlock()
	if err := m.persist(); err != nil {
		m.mu.Lock()
		delete(m.byName, t.name)
		delete(m.byID, t.id)
		m.mu.Unlock()
		for _, p := range ps {
			p.log.Delete()
		}
		return nil, fmt.Errorf("persisting topic %q: %w", t.name, err)
	}
	m.logger.Info("created topic", "topic", t.name, "partitions", spec.partitions, "configs", spec.configs)
	return t, nil
}

// ensure returns the topic, creating it with n partitions when missing.
func (m *topicManager) ensure(name string, n int32, configs map[string]string, internal bool) (*topic, error) {
	if t := m.get(name); t != nil {
		return t, nil
	}
	m.admin.Lock()
	defer m.admin.Unlock()
	if t := m.get(name); t != nil {
		return t, nil
	}
	return m.createLocked(createSpec{name: name, partitions: n, configs: configs, internal: internal})
}

// delete removes a topic and its partition directories.
func (m *topicManager) delete(t *topic) error {
	m.admin.Lock()
	defer m.admin.Unlock()
	if t.internal {
		return fmt.Errorf("topic %q: %w", t.name, ErrInternalTopic)
	}
	m.mu.Lock()
	if m.byName[t.name] != t {
		m.mu.Unlock()
		return fmt.Errorf("topic %q: %w", t.name, ErrTopicNotFound)
	}
	delete(m.byName, t.name)
	delete(m.byID, t.id)
	m.mu.Unlock()
	if err := m.persist(); err != nil {
		m.mu.Lock()
		m.byName[t.name] = t
		m.byID[t.id] = t
		m.mu.Unlock()
		return fmt.Errorf("persisting deletion of %q: %w", t.name, err)
	}
	var errs []error
	for _, p := range t.partitions() {
		if err := p.log.Delete(); err != nil {
			errs = append(errs, err)
		}
		p.wake()
	}
	m.metrics.deleteTopic(t.name, len(t.partitions()))
	m.logger.Info("deleted topic", "topic", t.name)
	if err := errors.Join(errs...); err != nil {
		// The topic is gone from the metadata; Start removes leftovers.
		m.logger.Warn("removing partition directories", "topic", t.name, "err", err)
	}
	return nil
}

// addPartitions grows a topic to count partitions.
func (m *topicManager) addPartitions(t *topic, count int32, validateOnly bool) error {
	m.admin.Lock()
	defer m.admin.Unlock()
	if m.get(t.name) != t {
		return fmt.Errorf("topic %q: %w", t.name, ErrTopicNotFound)
	}
	old := t.partitions()
	if count <= int32(len(old)) {
		return fmt.Errorf("topic %q has %d partitions; the new count %d must be larger: %w", t.name, len(old), count, kerr.InvalidPartitions)
	}
	if validateOnly {
		return nil
	}
	cfg, err := m.topicConfig(m.overrides(t))
	if err != nil {
		return err
	}
	ps := slices.Clone(old)
	for p := int32(len(old)); p < count; p++ {
		l, err := m.openLog(t.name, p, cfg)
		if err != nil {
			for _, q := range ps[len(old):] {
				q.log.Delete()
			}
			return fmt.Errorf("creating %s-%d: %w", t.name, p, err)
		}
		ps = append(ps, &partition{t: t, id: p, log: l})
	}
	t.parts.Store(&ps)
	if err := m.persist(); err != nil {
		t.parts.Store(&old)
		for _, q := range ps[len(old):] {
			q.log.Delete()
		}
		return fmt.Errorf("persisting partitions of %q: %w", t.name, err)
	}
	m.logger.Info("added partitions", "topic", t.name, "partitions", count)
	return nil
}

// setConfigs replaces a topic's overrides, persists them and applies them
// to every partition log.
func (m *topicManager) setConfigs(t *topic, overrides map[string]string, validateOnly bool) error {
	m.admin.Lock()
	defer m.admin.Unlock()
	cfg, err := m.topicConfig(overrides)
	if err != nil {
		return err
	}
	if m.get(t.name) != t {
		return fmt.Errorf("topic %q: %w", t.name, ErrTopicNotFound)
	}
	if validateOnly {
		return nil
	}
	m.mu.Lock()
	old := t.configs
	t.configs = maps.Clone(overrides)
	m.mu.Unlock()
	if err := m.persist(); err != nil {
		m.mu.Lock()
		t.configs = old
		m.mu.Unlock()
		return fmt.Errorf("persisting configs of %q: %w", t.name, err)
	}
	for _, p := range t.partitions() {
		p.log.SetConfig(cfg)
	}
	m.logger.Info("altered topic configs", "topic", t.name, "configs", overrides)
	return nil
}

// maintain runs every partition log's time-based work.
func (m *topicManager) maintain(now time.Time) {
	for _, t := range m.list() {
		for _, p := range t.partitions() {
			if err := p.log.Maintain(now); err != nil {
				m.logger.Warn("log maintenance", "topic", t.name, "partition", p.id, "err", err)
			}
		}
	}
}

// closeAll closes every partition log.
func (m *topicManager) closeAll() error {
	m.admin.Lock()
	defer m.admin.Unlock()
	var errs []error
	for _, t := range m.list() {
		for _, p := range t.partitions() {
			if p == nil {
				continue
			}
			if err := p.log.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing %s-%d: %w", t.name, p.id, err))
			}
			p.wake()
		}
	}
	return errors.Join(errs...)
}
