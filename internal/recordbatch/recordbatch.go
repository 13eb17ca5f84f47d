// Package recordbatch parses, validates and builds Kafka RecordBatch v2
// (magic 2) bytes: the wire format of Produce and Fetch and eddy's on-disk
// segment format.
package recordbatch

// HeaderSize is the size of a RecordBatch v2 header, up to and including
// the records count.
const HeaderSize = 61

// Header is the fixed part of a RecordBatch v2.
type Header struct {
	BaseOffset           int64
	BatchLength          int32 // bytes after the BatchLength field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Record is one decoded record. Key or Value nil means null.
type Record struct {
	Offset    int64 // absolute: BaseOffset + offsetDelta
	Timestamp int64 // absolute
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
}

// RecordHeader is one record header.
type RecordHeader struct {
	Key   string
	Value []byte
}

// BuildOptions sets the batch-level fields of a batch made by Build.
type BuildOptions struct {
	BaseOffset    int64
	ProducerID    int64 // -1 when none
	ProducerEpoch int16 // -1 when none
	BaseSequence  int32 // -1 when none
	Transactional bool
	Control       bool
	LogAppendTime bool
	// DeleteHorizonMs, when > 0, sets attributes bit 6 and stores the
	// horizon in baseTimestamp (compaction's tombstone deadline).
	DeleteHorizonMs int64
	// LastOffsetDelta is the minimum LastOffsetDelta to record: compaction
	// keeps a batch's original last offset even when its last record goes.
	LastOffsetDelta int32
}
