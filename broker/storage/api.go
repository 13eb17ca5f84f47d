package storage

// This file holds the storage API's value types; log.go implements Log.

import (
	"log/slog"
	"time"
)

// Config holds one partition log's settings, named after Kafka's topic
// configs. DefaultConfig returns Kafka's defaults.
type Config struct {
	SegmentBytes           int64   // segment.bytes (1 GiB)
	SegmentMs              int64   // segment.ms (7 days)
	SegmentIndexBytes      int32   // segment.index.bytes (10 MiB)
	IndexIntervalBytes     int32   // index.interval.bytes (4096)
	RetentionMs            int64   // retention.ms (7 days; -1 unlimited)
	RetentionBytes         int64   // retention.bytes (-1 unlimited)
	CleanupPolicy          string  // cleanup.policy: delete | compact | compact,delete
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio (0.5)
	MinCompactionLagMs     int64   // min.compaction.lag.ms (0)
	MaxCompactionLagMs     int64   // max.compaction.lag.ms (MaxInt64)
	DeleteRetentionMs      int64   // delete.retention.ms (1 day)
	FileDeleteDelayMs      int64   // file.delete.delay.ms (60 s)
	FlushMessages          int64   // flush.messages (MaxInt64: leave it to the OS)
	FlushMs                int64   // flush.ms (MaxInt64: leave it to the OS)
	MaxMessageBytes        int32   // max.message.bytes (1048588)
	MessageTimestampType   string  // message.timestamp.type: CreateTime | LogAppendTime
	// message.timestamp.before.max.ms (MaxInt64) and
	// message.timestamp.after.max.ms (1 hour): how far a CreateTime record
	// timestamp may lie before or after the broker's clock (INVALID_TIMESTAMP).
	MessageTimestampBeforeMaxMs int64
	MessageTimestampAfterMaxMs  int64
	SyncWrites                  bool // broker --sync-writes: fsync before Append returns
	// ProducerIDExpirationMs is the broker config producer.id.expiration.ms:
	// the state of an idempotent producer without an open transaction is
	// dropped once its last batch's timestamp is this old. 0 means Kafka's
	// default, 1 day. Like SyncWrites it is not a topic config (ToMap and
	// ParseTopicConfig leave it alone).
	ProducerIDExpirationMs int64
}

// Options are the non-config inputs of Open.
type Options struct {
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now
}

// AppendInfo describes a successful Append.
type AppendInfo struct {
	FirstOffset    int64
	LastOffset     int64
	LogAppendTime  int64 // -1 unless message.timestamp.type=LogAppendTime
	LogStartOffset int64
	RecordCount    int64
}

// ReadInfo is the result of Read.
type ReadInfo struct {
	Records        []byte // whole RecordBatch v2 batches, as stored
	HighWatermark  int64
	LogStartOffset int64
}
