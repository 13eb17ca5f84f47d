package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddy-streams/eddy/broker/storage"
)

// Config configures a Server. Load it from flags or a file, start from
// DefaultConfig, and call Validate before New (New validates too).
type Config struct {
	// DataDir holds every partition directory and the broker's metadata.
	// Default ./eddy-data.
	DataDir string
	// Listen is the Kafka listener address. Default 127.0.0.1:9092; port 0
	// picks a free port (see Server.Addr).
	Listen string
	// Advertise is the host:port clients are told to connect to in
	// Metadata and FindCoordinator. Default: the actual listen address.
	Advertise string
	// HTTP is the address of the HTTP listener serving /metrics and any
	// handler mounted with Server.Handle. "" disables it.
	// Default 127.0.0.1:8081.
	HTTP string
	// AutoCreateTopics creates unknown topics on Metadata and Produce
	// (Kafka's auto.create.topics.enable). Default true.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics with num_partitions -1 (Kafka's num.partitions).
	// Default 1.
	DefaultPartitions int32
	// SyncWrites makes every append fsync before it is acknowledged.
	SyncWrites bool
	// TopicDefaults are broker-wide defaults for topic configs, keyed by
	// Kafka topic config names (retention.ms, segment.bytes, ...).
	TopicDefaults map[string]string
	// MaxRequestBytes is the largest request frame accepted (Kafka's
	// socket.request.max.bytes). A larger frame closes the connection.
	// Default 100 MiB.
	MaxRequestBytes int32
	// OffsetsTopicPartitions is the partition count of __consumer_offsets
	// when it is first created. Default 50.
	OffsetsTopicPartitions int32
	// TransactionTopicPartitions is the partition count of
	// __transaction_state when it is first created (Kafka's
	// transaction.state.log.num.partitions). Default 50.
	TransactionTopicPartitions int32
	// NodeID is this broker's node id. Default 0.
	NodeID int32
	// ClusterID is the cluster id. Empty: generated on first start and
	// kept in DataDir/meta.properties.
	ClusterID string
	// TransactionAbortInterval is how often transactions that outlived
	// their timeout are aborted (Kafka's
	// transaction.abort.timed.out.transaction.cleanup.interval.ms).
	// Default 10 s.
	TransactionAbortInterval time.Duration
	// ConnectionsMaxIdle closes a connection that has had no request in
	// flight and no traffic for this long (Kafka's
	// connections.max.idle.ms). Default 10 minutes.
	ConnectionsMaxIdle time.Duration
	// MaintenanceInterval is how often every partition log runs its
	// time-based work (segment.ms rolls, flush.ms, retention, compaction).
	// Default 1 s.
	MaintenanceInterval time.Duration
	// ProducerIDExpiration is how long the broker keeps the state of an
	// idempotent producer without an open transaction after its last write
	// to a partition (Kafka's producer.id.expiration.ms, a broker config).
	// The timestamp of the producer's last batch counts, as in Kafka; the
	// check runs every 10 minutes. Default 24 h.
	ProducerIDExpiration time.Duration
	// Logger receives the broker's logs. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the broker's Prometheus metrics. Nil: a private
	// registry, served on /metrics.
	Registerer prometheus.Registerer
}

// Defaults of Config fields.
const (
	DefaultDataDir                    = "./eddy-data"
	DefaultListen                     = "127.0.0.1:9092"
	DefaultHTTP                       = "127.0.0.1:8081"
	DefaultMaxRequestBytes            = 100 << 20
	DefaultOffsetsTopicPartitions     = 50
	DefaultTransactionTopicPartitions = 50
	DefaultMaintenanceInterval        = time.Second
	DefaultConnectionsMaxIdle         = 10 * time.Minute
	DefaultTransactionAbortInterval   = 10 * time.Second
	DefaultProducerIDExpiration       = 24 * time.Hour
)

// DefaultConfig returns the configuration `eddy broker` starts with.
func DefaultConfig() Config {
	return Config{
		DataDir:                    DefaultDataDir,
		Listen:                     DefaultListen,
		HTTP:                       DefaultHTTP,
		AutoCreateTopics:           true,
		DefaultPartitions:          1,
		MaxRequestBytes:            DefaultMaxRequestBytes,
		OffsetsTopicPartitions:     DefaultOffsetsTopicPartitions,
		TransactionTopicPartitions: DefaultTransactionTopicPartitions,
		MaintenanceInterval:        DefaultMaintenanceInterval,
		ConnectionsMaxIdle:         DefaultConnectionsMaxIdle,
		TransactionAbortInterval:   DefaultTransactionAbortInterval,
		ProducerIDExpiration:       DefaultProducerIDExpiration,
	}
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("broker: invalid config")

// Validate reports the first invalid field. Zero-valued numeric fields and
// an empty DataDir or Listen are invalid; start from DefaultConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.DataDir == "" {
		return bad("data dir is empty")
	}
	if _, _, err := splitHostPort(c.Listen); err != nil {
		return bad("listen %q: %v", c.Listen, err)
	}
	if c.Advertise != "" {
		host, port, err := splitHostPort(c.Advertise)
		if err != nil {
			return bad("advertise %q: %v", c.Advertise, err)
		}
		if host == "" || port == 0 {
			return bad("advertise %q needs a host and a non-zero port", c.Advertise)
		}
	}
	if c.HTTP != "" {
		if _, _, err := splitHostPort(c.HTTP); err != nil {
			return bad("http %q: %v", c.HTTP, err)
		}
	}
	if c.DefaultPartitions < 1 {
		return bad("default partitions %d < 1", c.DefaultPartitions)
	}
	if c.MaxRequestBytes < 1024 {
		return bad("max request bytes %d < 1024", c.MaxRequestBytes)
	}
	if c.OffsetsTopicPartitions < 1 {
		return bad("offsets topic partitions %d < 1", c.OffsetsTopicPartitions)
	}
	if c.TransactionTopicPartitions < 1 {
		return bad("transaction topic partitions %d < 1", c.TransactionTopicPartitions)
	}
	if c.NodeID < 0 {
		return bad("node id %d < 0", c.NodeID)
	}
	if c.TransactionAbortInterval <= 0 {
		return bad("transaction abort interval %v <= 0", c.TransactionAbortInterval)
	}
	if c.ConnectionsMaxIdle <= 0 {
		return bad("connections max idle %v <= 0", c.ConnectionsMaxIdle)
	}
	if c.MaintenanceInterval <= 0 {
		return bad("maintenance interval %v <= 0", c.MaintenanceInterval)
	}
	if c.ProducerIDExpiration < time.Millisecond {
		return bad("producer id expiration %v < 1ms", c.ProducerIDExpiration)
	}
	if _, err := storage.ParseTopicConfig(c.TopicDefaults, storage.DefaultConfig()); err != nil {
		return bad("topic defaults: %v", err)
	}
	return nil
}

func splitHostPort(addr string) (string, int32, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, int32(port), nil
}
