package broker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/broker/txn"
)

// ErrServerClosed is returned by Start after Close.
var ErrServerClosed = errors.New("broker: server closed")

// coordinator answers the consumer-group APIs (broker/group.Coordinator).
type coordinator interface {
	Handle(ctx context.Context, req kmsg.Request) (kmsg.Response, error)
	// PartitionFor is the __consumer_offsets partition of a group.
	PartitionFor(group string) int32
	// CompleteTxnAt applies (commit) or drops (abort) a producer's pending
	// transactional offsets once its marker is at markerOffset.
	CompleteTxnAt(partition int32, producerID int64, producerEpoch int16, commit bool, markerOffset int64) error
	// TopicsDeleted drops the committed offsets of deleted topics.
	TopicsDeleted(topics ...string) error
	Close() error
}

// Server is a single-node Kafka broker: a topic manager over durable
// partition logs, a Kafka protocol listener and an HTTP listener for
// /metrics. Create it with New, then Start; Close stops it.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	reg     prometheus.Registerer // where the metrics are registered
	gather  prometheus.Gatherer   // what /metrics serves
	mux     *http.ServeMux

	topics    *topicManager
	group     coordinator
	txn       *txn.Coordinator // nil without a group coordinator
	apis      *apiTable        // advertised APIs, fixed at Start
	sessions  *fetchSessions
	clusterID string
	// producerIDs allocates idempotent producers' ids.
	producerIDs *producerIDs
	advHost     string
	advPort     int32
	lockFile    *os.File

	ln      net.Listener
	httpLn  net.Listener
	httpSrv *http.Server

	ctx    context.Context // cancelled by Close; parent of connection contexts
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop, maintenance loop, connections, HTTP server

	mu       sync.Mutex // guards conns, started, closed
	conns    map[*conn]struct{}
	started  bool
	closed   bool
	closeErr error
	closeWG  sync.WaitGroup
}

// New validates cfg and returns a server that is not yet started. Zero
// values of DataDir, Listen, DefaultPartitions, MaxRequestBytes,
// OffsetsTopicPartitions, MaintenanceInterval and ProducerIDExpiration take
// their defaults.
func New(cfg Config) (*Server, error) {
	def := DefaultConfig()
	if cfg.DataDir == "" {
		cfg.DataDir = def.DataDir
	}
	if cfg.Listen == "" {
		cfg.Listen = def.Listen
	}
	if cfg.DefaultPartitions == 0 {
		cfg.DefaultPartitions = def.DefaultPartitions
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = def.MaxRequestBytes
	}
	if cfg.OffsetsTopicPartitions == 0 {
		cfg.OffsetsTopicPartitions = def.OffsetsTopicPartitions
	}
	if cfg.MaintenanceInterval == 0 {
		cfg.MaintenanceInterval = def.MaintenanceInterval
	}
	if cfg.ProducerIDExpiration == 0 {
		cfg.ProducerIDExpiration = def.ProducerIDExpiration
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		logger:   logger,
		metrics:  newMetrics(),
		mux:      http.NewServeMux(),
		conns:    make(map[*conn]struct{}),
		sessions: newFetchSessions(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Registerer != nil {
		s.reg = cfg.Registerer
		if g, ok := cfg.Registerer.(prometheus.Gatherer); ok {
			s.gather = g
		}
	}
	if s.reg == nil || s.gather == nil {
		r := prometheus.NewRegistry()
		if s.reg == nil {
			s.reg = r
		}
		s.gather = r
		if s.reg != r {
			// A Registerer that cannot gather: serve ours on /metrics too.
			for _, c := range s.metrics.collectors() {
				r.MustRegister(c)
			}
		}
	}
	for _, c := range s.metrics.collectors() {
		if err := s.reg.Register(c); err != nil {
			s.unregister()
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	s.mux.Handle("/metrics", promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}))
	return s, nil
}

func (s *Server) unregister() {
	for _, c := range s.metrics.collectors() {
		s.reg.Unregister(c)
	}
}

// Handle mounts h on the HTTP listener at pattern (http.ServeMux
// patterns). /metrics is taken; like http.ServeMux.Handle it panics on a
// pattern that conflicts with one already mounted. Safe to call before or
// after Start.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// Start opens the data directory, recovers every partition, creates
// __consumer_offsets, and starts the listeners. When it returns without
// error the broker accepts connections on Addr.
func (s *Server) Start() (err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.started {
		s.mu.Unlock()
		return errors.New("broker: server already started")
	}
	s.started = true
	s.mu.Unlock()
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if s.lockFile, err = lockDir(cfg.DataDir); err != nil {
		return err
	}
	if s.clusterID, err = loadMetaProperties(cfg.DataDir, cfg.ClusterID, cfg.NodeID); err != nil {
		return err
	}

	if s.producerIDs, err = loadProducerIDs(cfg.DataDir); err != nil {
		return err
	}

	base, err := storage.ParseTopicConfig(cfg.TopicDefaults, storage.DefaultConfig())
	if err != nil {
		return fmt.Errorf("topic defaults: %w", err)
	}
	base.SyncWrites = cfg.SyncWrites
	base.ProducerIDExpirationMs = cfg.ProducerIDExpiration.Milliseconds()
	tm := newTopicManager(cfg.DataDir, base, s.logger, s.metrics)
	if err := tm.load(); err != nil {
		return err
	}
	s.topics = tm
	off, err := tm.ensure(offsetsTopic, cfg.OffsetsTopicPartitions, map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  strconv.Itoa(100 << 20),
	}, true)
	if err != nil {
		return fmt.Errorf("creating %s: %w", offsetsTopic, err)
	}
	logs := make([]*storage.Log, 0, len(off.partitions()))
	for _, p := range off.partitions() {
		logs = append(logs, p.log)
	}
	var committed func() []committedOffset
	if s.group, committed, err = newCoordinator(s, logs); err != nil {
		return fmt.Errorf("starting group coordinator: %w", err)
	}
	s.metrics.state.set(tm, committed)
	if s.group != nil {
		if err := s.startTxnCoordinator(); err != nil {
			return err
		}
		s.apis = newAPITable(coreAPIs, groupAPIRanges(), s.txnAPIRanges())
	} else {
		s.apis = newAPITable(coreAPIs)
	}

	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("kafka listener: %w", err)
	}
	adv := cfg.Advertise
	if adv == "" {
		adv = s.ln.Addr().String()
	}
	host, port, err := splitHostPort(adv)
	if err != nil {
		return fmt.Errorf("advertised address %q: %w", adv, err)
	}
	s.advHost, s.advPort = host, port
	if cfg.HTTP != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.HTTP); err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		s.httpSrv = &http.Server{
			Handler:           s.mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logger.Error("http server", "err", err)
			}
		}()
	}
	s.wg.Add(2)
	go s.acceptLoop()
	go s.maintainLoop()
	s.logger.Info("broker started", "listen", s.ln.Addr().String(), "advertise", s.Addr(),
		"http", s.HTTPAddr(), "data_dir", cfg.DataDir, "cluster_id", s.clusterID, "node_id", cfg.NodeID)
	return nil
}

// Addr is the advertised host:port of the Kafka listener ("" before Start).
func (s *Server) Addr() string {
	if s.advHost == "" && s.advPort == 0 {
		return ""
	}
	return net.JoinHostPort(s.advHost, strconv.Itoa(int(s.advPort)))
}

// HTTPAddr is the address of the HTTP listener ("" when disabled or
// before Start).
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// ClusterID is the cluster id (known after Start).
func (s *Server) ClusterID() string { return s.clusterID }

// Close stops the listeners, closes every connection, waits for their
// goroutines, closes the group coordinator and every partition log
// (writing the clean-shutdown marker). It is idempotent; later calls
// return the first call's result.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.closeWG.Wait()
		return s.closeErr
	}
	s.closed = true
	s.closeWG.Add(1)
	defer s.closeWG.Done()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	s.cancel()
	var errs []error
	if s.ln != nil {
		s.ln.Close()
	}
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			s.httpSrv.Close()
		}
		cancel()
	} else if s.httpLn != nil {
		s.httpLn.Close()
	}
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	if s.txn != nil { // before the group coordinator: it completes transactions through it
		if err := s.txn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing transaction coordinator: %w", err))
		}
	}
	if s.group != nil {
		if err := s.group.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing group coordinator: %w", err))
		}
	}
	if s.topics != nil {
		if err := s.topics.closeAll(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.lockFile != nil {
		s.lockFile.Close()
	}
	s.unregister()
	s.closeErr = errors.Join(errs...)
	s.logger.Info("broker stopped", "err", s.closeErr)
	return s.closeErr
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscallEMFILE) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				s.logger.Warn("accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-s.ctx.Done():
					return
				}
			}
			s.logger.Error("accept", "err", err)
			return
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Server) maintainLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.MaintenanceInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-tick.C:
			s.topics.maintain(now)
			s.closeIdle(now)
		}
	}
}

// closeIdle closes the connections with nothing in flight and no traffic
// for ConnectionsMaxIdle, as Kafka does (connections.max.idle.ms).
func (s *Server) closeIdle(now time.Time) {
	cutoff := now.Add(-s.cfg.ConnectionsMaxIdle)
	var idle []*conn
	s.mu.Lock()
	for c := range s.conns {
		if c.idleSince(cutoff) {
			idle = append(idle, c)
		}
	}
	s.mu.Unlock()
	for _, c := range idle {
		s.logger.Info("closing idle connection", "remote", c.remote, "idle_for_more_than", s.cfg.ConnectionsMaxIdle)
		c.close()
	}
}

func (s *Server) newConn(nc net.Conn) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		s:      s,
		nc:     nc,
		ctx:    ctx,
		cancel: cancel,
		br:     bufio.NewReaderSize(nc, 64<<10),
		remote: nc.RemoteAddr().String(),
	}
	c.lastActive.Store(time.Now().UnixNano())
	return c
}

// loadMetaProperties reads DataDir/meta.properties, creating it on first
// start, and returns the cluster id. A configured cluster id or node id
// that differs from the stored one is an error, as in Kafka.
func loadMetaProperties(dir, clusterID string, nodeID int32) (string, error) {
	path := filepath.Join(dir, "meta.properties")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if clusterID == "" {
			var raw [16]byte
			if _, err := rand.Read(raw[:]); err != nil {
				return "", err
			}
			clusterID = base64.RawURLEncoding.EncodeToString(raw[:])
		}
		content := fmt.Sprintf("# eddy broker identity\nversion=1\ncluster.id=%s\nnode.id=%d\n", clusterID, nodeID)
		if err := writeFileAtomic(path, []byte(content)); err != nil {
			return "", fmt.Errorf("writing meta.properties: %w", err)
		}
		return clusterID, nil
	}
	if err != nil {
		return "", err
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			props[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	stored := props["cluster.id"]
	if stored == "" {
		return "", fmt.Errorf("%s has no cluster.id", path)
	}
	if clusterID != "" && clusterID != stored {
		return "", fmt.Errorf("%w: configured cluster id %q does not match %q stored in %s", ErrInvalidConfig, clusterID, stored, path)
	}
	if n := props["node.id"]; n != "" && n != strconv.Itoa(int(nodeID)) {
		return "", fmt.Errorf("%w: configured node id %d does not match %s stored in %s", ErrInvalidConfig, nodeID, n, path)
	}
	return stored, nil
}

var _ io.Closer = (*Server)(nil)
