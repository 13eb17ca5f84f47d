package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/stream"
)

// Guarantee is the processing guarantee (Kafka's processing.guarantee).
type Guarantee string

const (
	// AtLeastOnce commits input offsets after the outputs and changelog
	// records they caused are acknowledged: after a crash some records are
	// processed again. The default.
	AtLeastOnce Guarantee = "at_least_once"
	// ExactlyOnce is Kafka's exactly_once_v2: outputs, changelog records
	// and input offsets commit in one transaction per stream thread and
	// commit interval, consumers read committed, and stores keep the
	// uncommitted writes in memory (see "Exactly-once" in the package doc).
	ExactlyOnce Guarantee = "exactly_once"
)

// Config configures an application's worker: Kafka Streams' StreamsConfig.
// Start from DefaultConfig; Validate reports the first invalid field.
type Config struct {
	// ApplicationID names the application: its consumer group, and the
	// prefix of its internal topics. Required.
	ApplicationID string
	// Brokers are the bootstrap brokers (host:port). Required.
	Brokers []string
	// StateDir holds the task directories (state stores and checkpoints):
	// <StateDir>/<ApplicationID>/<task id>/, and the global stores in
	// <StateDir>/<ApplicationID>/global/. Default "./eddy-state".
	StateDir string
	// NumStreamThreads is the number of stream threads (each a group
	// member with its own tasks). Default 1.
	NumStreamThreads int
	// NumStandbyReplicas is how many warm copies of each task's stores
	// other workers keep (num.standby.replicas). Default 0.
	NumStandbyReplicas int
	// CommitInterval is how often tasks commit (commit.interval.ms).
	// Default 30 s under at-least-once, 100 ms under exactly-once.
	CommitInterval time.Duration
	// Guarantee is the processing guarantee. Default AtLeastOnce.
	Guarantee Guarantee
	// CacheMaxBytes is the record cache of the whole worker
	// (statestore.cache.max.bytes), split evenly over its tasks. Default
	// 10 MiB; 0 disables caching.
	CacheMaxBytes int64
	// ReplicationFactor of the internal topics the application creates.
	// Default 1 (a dev cluster); use 3 on a production Kafka cluster.
	ReplicationFactor int16
	// Errors are the deserialization, processing and production error
	// handlers (default: log and fail).
	Errors stream.ErrorHandlers
	// InvalidTimestampPolicy is what sources do with records whose
	// timestamp is negative or cannot be extracted, unless their Consumed
	// sets a policy (default: fail the task, as Kafka Streams does).
	InvalidTimestampPolicy stream.InvalidTimestampPolicy
	// ApplicationServer is the host:port where this worker answers
	// interactive queries (application.server); it is shared with the
	// other workers so any of them can say which worker holds a key.
	ApplicationServer string
	// Logger receives the runtime's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the runtime's metrics; nil registers none.
	Registerer prometheus.Registerer
	// ClientOptions are extra franz-go options for every client the
	// worker creates (TLS, SASL, ...).
	ClientOptions []kgo.Opt
}

// Defaults.
const (
	DefaultStateDir                  = "./eddy-state"
	DefaultCommitInterval            = 30 * time.Second
	DefaultExactlyOnceCommitInterval = 100 * time.Millisecond
	DefaultCacheMaxBytes             = 10 << 20
)

// DefaultConfig returns the defaults for application appID on brokers.
func DefaultConfig(appID string, brokers ...string) Config {
	return Config{
		ApplicationID:     appID,
		Brokers:           brokers,
		StateDir:          DefaultStateDir,
		NumStreamThreads:  1,
		Guarantee:         AtLeastOnce,
		CacheMaxBytes:     DefaultCacheMaxBytes,
		ReplicationFactor: 1,
	}
}

// ErrInvalidConfig is wrapped by Validate's errors.
var ErrInvalidConfig = errors.New("runtime: invalid config")

// Validate reports the first invalid field, and fills CommitInterval's
// default for the guarantee when it is zero.
func (c *Config) Validate() error {
	bad := func(f string, a ...any) error { return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(f, a...)) }
	switch {
	case c.ApplicationID == "":
		return bad("ApplicationID is required")
	case len(c.Brokers) == 0:
		return bad("Brokers is required")
	case c.StateDir == "":
		return bad("StateDir is required")
	case c.NumStreamThreads < 1:
		return bad("NumStreamThreads must be at least 1, got %d", c.NumStreamThreads)
	case c.NumStandbyReplicas < 0:
		return bad("NumStandbyReplicas must not be negative")
	case c.CacheMaxBytes < 0:
		return bad("CacheMaxBytes must not be negative")
	case c.ReplicationFactor < 1:
		return bad("ReplicationFactor must be at least 1")
	}
	switch c.Guarantee {
	case "":
		c.Guarantee = AtLeastOnce
	case AtLeastOnce, ExactlyOnce:
	default:
		return bad("Guarantee must be %q or %q, got %q", AtLeastOnce, ExactlyOnce, c.Guarantee)
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
		if c.Guarantee == ExactlyOnce {
			c.CommitInterval = DefaultExactlyOnceCommitInterval
		}
	}
	if c.CommitInterval < 0 {
		return bad("CommitInterval must not be negative")
	}
	return nil
}
