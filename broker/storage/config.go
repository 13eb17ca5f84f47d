package storage

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Values of cleanup.policy and message.timestamp.type.
const (
	CleanupDelete          = "delete"
	CleanupCompact         = "compact"
	TimestampCreateTime    = "CreateTime"
	TimestampLogAppendTime = "LogAppendTime"
)

// DefaultConfig returns Kafka's topic config defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:           1 << 30,
		SegmentMs:              7 * 24 * 3600 * 1000,
		SegmentIndexBytes:      10 << 20,
		IndexIntervalBytes:     4096,
		RetentionMs:            7 * 24 * 3600 * 1000,
		RetentionBytes:         -1,
		CleanupPolicy:          CleanupDelete,
		MinCleanableDirtyRatio: 0.5,
		MinCompactionLagMs:     0,
		MaxCompactionLagMs:     math.MaxInt64,
		DeleteRetentionMs:      24 * 3600 * 1000,
		FileDeleteDelayMs:      60000,
		FlushMessages:          math.MaxInt64,
		FlushMs:                math.MaxInt64,
		MaxMessageBytes:        1048588,
		MessageTimestampType:   TimestampCreateTime,

		MessageTimestampBeforeMaxMs: math.MaxInt64,
		MessageTimestampAfterMaxMs:  3600000,
	}
}

// configKey describes one Kafka topic config name that maps onto a Config field.
type configKey struct {
	name string
	get  func(*Config) string
	set  func(*Config, string) error
}

func parseIntIn(name, v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be an integer in [%d, %d], got %q", name, lo, hi, v)
	}
	return n, nil
}

func intKey(name string, lo, hi int64, field func(*Config) *int64) configKey {
	return configKey{name,
		func(c *Config) string { return strconv.FormatInt(*field(c), 10) },
		func(c *Config, v string) error {
			n, err := parseIntIn(name, v, lo, hi)
			if err == nil {
				*field(c) = n
			}
			return err
		}}
}

func int32Key(name string, lo int64, field func(*Config) *int32) configKey {
	return configKey{name,
		func(c *Config) string { return strconv.FormatInt(int64(*field(c)), 10) },
		func(c *Config, v string) error {
			n, err := parseIntIn(name, v, lo, math.MaxInt32)
			if err == nil {
				*field(c) = int32(n)
			}
			return err
		}}
}

var configKeys = []configKey{
	intKey("segment.bytes", 14, math.MaxInt32, func(c *Config) *int64 { return &c.SegmentBytes }),
	intKey("segment.ms", 1, math.MaxInt64, func(c *Config) *int64 { return &c.SegmentMs }),
	int32Key("segment.index.bytes", 4, func(c *Config) *int32 { return &c.SegmentIndexBytes }),
	int32Key("index.interval.bytes", 0, func(c *Config) *int32 { return &c.IndexIntervalBytes }),
	intKey("retention.ms", -1, math.MaxInt64, func(c *Config) *int64 { return &c.RetentionMs }),
	intKey("retention.bytes", math.MinInt64, math.MaxInt64, func(c *Config) *int64 { return &c.RetentionBytes }),
	{"cleanup.policy", func(c *Config) string { return c.CleanupPolicy }, func(c *Config, v string) error {
		p, err := normalizePolicy(v)
		c.CleanupPolicy = p
		return err
	}},
	{"min.cleanable.dirty.ratio", func(c *Config) string { return strconv.FormatFloat(c.MinCleanableDirtyRatio, 'g', -1, 64) },
		func(c *Config, v string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return fmt.Errorf("min.cleanable.dirty.ratio must be a number in [0, 1], got %q", v)
			}
			c.MinCleanableDirtyRatio = f
			return nil
		}},
	intKey("min.compaction.lag.ms", 0, math.MaxInt64, func(c *Config) *int64 { return &c.MinCompactionLagMs }),
	intKey("max.compaction.lag.ms", 1, math.MaxInt64, func(c *Config) *int64 { return &c.MaxCompactionLagMs }),
	intKey("delete.retention.ms", 0, math.MaxInt64, func(c *Config) *int64 { return &c.DeleteRetentionMs }),
	intKey("file.delete.delay.ms", 0, math.MaxInt64, func(c *Config) *int64 { return &c.FileDeleteDelayMs }),
	intKey("flush.messages", 1, math.MaxInt64, func(c *Config) *int64 { return &c.FlushMessages }),
	intKey("flush.ms", 0, math.MaxInt64, func(c *Config) *int64 { return &c.FlushMs }),
	int32Key("max.message.bytes", 0, func(c *Config) *int32 { return &c.MaxMessageBytes }),
	{"message.timestamp.type", func(c *Config) string { return c.MessageTimestampType }, func(c *Config, v string) error {
		if v != TimestampCreateTime && v != TimestampLogAppendTime {
			return fmt.Errorf("message.timestamp.type must be CreateTime or LogAppendTime, got %q", v)
		}
		c.MessageTimestampType = v
		return nil
	}},
	intKey("message.timestamp.before.max.ms", 0, math.MaxInt64, func(c *Config) *int64 { return &c.MessageTimestampBeforeMaxMs }),
	intKey("message.timestamp.after.max.ms", 0, math.MaxInt64, func(c *Config) *int64 { return &c.MessageTimestampAfterMaxMs }),
}

// acceptedKeys are Kafka topic configs that clients and tools set but that
// have no effect on a single-node broker storing batches as produced. They
// are accepted (and validated where cheap) so tools work, and ignored.
var acceptedKeys = map[string]func(string) error{
	"compression.type": func(v string) error {
		if v != "producer" {
			return fmt.Errorf("compression.type %q: eddy stores batches as the producer compressed them; only \"producer\" is supported", v)
		}
		return nil
	},
	"min.insync.replicas":                     nil,
	"unclean.leader.election.enable":          nil,
	"preallocate":                             nil,
	"message.downconversion.enable":           nil,
	"message.format.version":                  nil,
	"message.timestamp.difference.max.ms":     nil,
	"segment.jitter.ms":                       nil,
	"follower.replication.throttled.replicas": nil,
	"leader.replication.throttled.replicas":   nil,
	"local.retention.ms":                      nil,
	"local.retention.bytes":                   nil,
	"remote.storage.enable":                   nil,
}

// IsTopicConfig reports whether name is a topic config ParseTopicConfig
// accepts (including the ones it accepts and ignores).
func IsTopicConfig(name string) bool {
	if _, ok := acceptedKeys[name]; ok {
		return true
	}
	return slices.ContainsFunc(configKeys, func(k configKey) bool { return k.name == name })
}

func normalizePolicy(v string) (string, error) {
	var del, comp bool
	for p := range strings.SplitSeq(v, ",") {
		switch strings.TrimSpace(strings.ToLower(p)) {
		case CleanupDelete:
			del = true
		case CleanupCompact:
			comp = true
		default:
			return "", fmt.Errorf("cleanup.policy must be a list of delete and compact, got %q", v)
		}
	}
	switch {
	case del && comp:
		return CleanupCompact + "," + CleanupDelete, nil
	case comp:
		return CleanupCompact, nil
	}
	return CleanupDelete, nil
}

// ParseTopicConfig applies Kafka topic configs (by their Kafka names) over
// base. Unknown names and invalid values return an error wrapping
// kerr.InvalidConfig. Names that have no effect here (compression.type
// "producer", min.insync.replicas, …) are accepted and ignored.
func ParseTopicConfig(m map[string]string, base Config) (Config, error) {
	c := base
	for name, v := range m {
		i := slices.IndexFunc(configKeys, func(k configKey) bool { return k.name == name })
		if i < 0 {
			check, ok := acceptedKeys[name]
			if !ok {
				return base, fmt.Errorf("unknown topic config %q: %w", name, kerr.InvalidConfig)
			}
			if check != nil {
				if err := check(v); err != nil {
					return base, fmt.Errorf("%v: %w", err, kerr.InvalidConfig)
				}
			}
			continue
		}
		if err := configKeys[i].set(&c, v); err != nil {
			return base, fmt.Errorf("%v: %w", err, kerr.InvalidConfig)
		}
	}
	if err := c.Validate(); err != nil {
		return base, err
	}
	return c, nil
}

// ToMap returns the config under Kafka's names (SyncWrites, a broker
// setting, is not a topic config and is left out).
func (c Config) ToMap() map[string]string {
	m := make(map[string]string, len(configKeys))
	for _, k := range configKeys {
		m[k.name] = k.get(&c)
	}
	return m
}

// Validate checks every field against the range Kafka allows; errors wrap
// kerr.InvalidConfig.
func (c Config) Validate() error {
	for _, k := range configKeys {
		probe := DefaultConfig()
		if err := k.set(&probe, k.get(&c)); err != nil {
			return fmt.Errorf("%v: %w", err, kerr.InvalidConfig)
		}
	}
	if c.ProducerIDExpirationMs < 0 {
		return fmt.Errorf("producer.id.expiration.ms must not be negative, got %d: %w", c.ProducerIDExpirationMs, kerr.InvalidConfig)
	}
	if p, _ := normalizePolicy(c.CleanupPolicy); p != c.CleanupPolicy {
		return fmt.Errorf("cleanup.policy %q must be delete, compact or compact,delete: %w", c.CleanupPolicy, kerr.InvalidConfig)
	}
	return nil
}
