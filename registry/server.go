package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
)

// DefaultMaxBodyBytes is the largest request body a Server reads when
// Config.MaxBodyBytes is zero. Larger bodies are refused with HTTP 413.
const DefaultMaxBodyBytes = 4 << 20

// DefaultTopic is the topic a registry keeps its records in, as Confluent's
// Schema Registry does.
const DefaultTopic = "_schemas"

// Log is the durable, ordered log the registry keeps its records in
// (Confluent's _schemas layout).
type Log interface {
	// Replay calls apply for every record from the log's start up to its end
	// as of the call, in order (value nil = tombstone), then returns.
	Replay(ctx context.Context, apply func(key, value []byte) error) error
	// Append writes one record (value nil = tombstone) and returns once it is
	// durable (acked).
	Append(ctx context.Context, key, value []byte) error
	// Close releases the log's resources.
	Close() error
}

// Config configures a registry Server.
type Config struct {
	// Log holds the registry's records. Required.
	Log Log
	// DefaultCompatibility is the global compatibility level used while none
	// is configured through PUT /config. Empty means Backward.
	DefaultCompatibility Compatibility
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes. Larger
	// bodies are answered with HTTP 413 and nothing is stored.
	MaxBodyBytes int64
	// Logger receives warnings (skipped records) and errors (failed appends).
	// Nil discards them.
	Logger *slog.Logger
}

// Server serves the Confluent Schema Registry REST API for Avro schemas. Its
// state lives in memory, rebuilt from the Log by New; every change is
// appended to the Log before it is applied. A Server is an http.Handler and
// is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	// Lock order: writeMu, then mu. A writer holds writeMu from its checks
	// to the apply, so it may read st without mu; it takes mu only to
	// apply. Readers take mu.RLock.
	writeMu sync.Mutex
	mu      sync.RWMutex
	st      *state

	closeOnce sync.Once
	closeErr  error
}

// New replays cfg.Log into memory and returns a Server ready to serve the
// Confluent REST API. Records the registry cannot use (undecodable, invalid
// schemas, other schema types) are skipped with a warning; key types it
// does not need (NOOP, DELETE_SUBJECT, ...) silently. The Server owns the
// Log from then on (Close closes it); when New fails, the Log stays open.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Log == nil {
		return nil, errors.New("registry: Config.Log is required")
	}
	if cfg.DefaultCompatibility == "" {
		cfg.DefaultCompatibility = DefaultCompatibility
	}
	if !cfg.DefaultCompatibility.valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidCompatibility, string(cfg.DefaultCompatibility))
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, log: logger, mux: http.NewServeMux(), st: newState()}
	var applied, skipped int
	err := cfg.Log.Replay(ctx, func(key, value []byte) error {
		switch err := s.st.applyRaw(key, value); {
		case err == nil:
			applied++
		case errors.Is(err, errSkip):
		default:
			skipped++
			logger.Warn("registry: skipping a record of the log", "key", truncate(key), "error", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: replaying the log: %w", err)
	}
	logger.Info("registry: log replayed", "records", applied, "skipped", skipped,
		"subjects", len(s.st.subjects), "schemas", len(s.st.ids))
	s.routes()
	return s, nil
}

// ServeHTTP serves one request of the REST API. Unknown paths are answered
// with HTTP 404 and known paths with an unsupported method with HTTP 405,
// both with a JSON error body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// No route: let the mux decide between 404 and 405, and answer in JSON.
		rec := &statusRecorder{header: http.Header{}}
		s.mux.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		code := rec.code
		if code == 0 {
			code = http.StatusNotFound
		}
		writeError(w, &apiError{status: code, code: code, msg: fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// statusRecorder keeps the status and headers a handler writes and drops
// its body.
type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *statusRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(b), nil
}

func truncate(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// Close closes the Log. The Server must not be used afterwards.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.cfg.Log.Close() })
	return s.closeErr
}
