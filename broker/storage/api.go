package storage

// This file pins the storage API other broker packages code against.
// TEMPORARY bodies panic until the storage implementation replaces them.

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
	SyncWrites             bool    // broker --sync-writes: fsync before Append returns
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

// Log is one partition's durable log. It is safe for concurrent use.
type Log struct{}

// Open opens (creating if needed) and recovers the log in dir.
func Open(dir string, cfg Config, opts Options) (*Log, error) { panic("TEMPORARY") }

// Append validates records (one or more RecordBatch v2 batches as in a
// ProduceRequest), assigns offsets by rewriting baseOffset, and appends them.
// Invalid input returns an error wrapping a *kerr.Error (CorruptMessage,
// MessageTooLarge, InvalidRecord, InvalidTimestamp, ...) and leaves the log
// untouched.
func (l *Log) Append(records []byte) (AppendInfo, error) { panic("TEMPORARY") }

// Read returns whole batches starting with the one that holds offset, up to
// maxBytes, but always at least one batch if any exists at offset.
// An offset outside [StartOffset, EndOffset] wraps kerr.OffsetOutOfRange;
// offset == EndOffset returns no records.
func (l *Log) Read(offset int64, maxBytes int) (ReadInfo, error) { panic("TEMPORARY") }

// OffsetForTimestamp returns the first offset whose timestamp is >= ts and
// that timestamp; ok is false when no such record exists.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	panic("TEMPORARY")
}

// StartOffset is the log start offset.
func (l *Log) StartOffset() int64 { panic("TEMPORARY") }

// EndOffset is the next offset to be assigned (the high watermark).
func (l *Log) EndOffset() int64 { panic("TEMPORARY") }

// Size is the bytes of all segments.
func (l *Log) Size() int64 { panic("TEMPORARY") }

// DeleteRecordsBefore advances the log start offset to offset (DeleteRecords).
func (l *Log) DeleteRecordsBefore(offset int64) (int64, error) { panic("TEMPORARY") }

// Config returns the log's config.
func (l *Log) Config() Config { panic("TEMPORARY") }

// SetConfig changes the log's config.
func (l *Log) SetConfig(cfg Config) { panic("TEMPORARY") }

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error { panic("TEMPORARY") }

// Maintain runs time-based work due at now: segment.ms rolls, flush.ms
// flushes, retention, and compaction when the dirty ratio calls for it.
func (l *Log) Maintain(now time.Time) error { panic("TEMPORARY") }

// Close flushes, writes the clean-shutdown marker and closes files.
func (l *Log) Close() error { panic("TEMPORARY") }

// Delete closes the log and removes its directory.
func (l *Log) Delete() error { panic("TEMPORARY") }
