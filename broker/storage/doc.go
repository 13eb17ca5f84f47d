// Package storage is eddy's durable partition log: one directory per
// partition holding segments in Kafka's layout, RecordBatch v2 bytes stored
// exactly as produced.
//
// # Layout
//
// A partition directory holds segments named by their 20-digit base offset:
// 00000000000000000000.log (batches, baseOffset assigned by the broker),
// .index (sparse: relative offset int32 → file position int32, one entry
// per index.interval.bytes) and .timeindex (timestamp int64 → relative
// offset int32). Besides them: recovery-point-checkpoint (every offset below
// it was fsynced), log-start-offset-checkpoint, cleaner-offset-checkpoint
// (compaction progress), <offset>.snapshot (idempotent-producer state) and,
// after a clean Close, clean-shutdown.
//
// # Use
//
//	l, err := storage.Open(dir, storage.DefaultConfig(), storage.Options{Logger: logger})
//	info, err := l.Append(produceRecords)        // validates, assigns offsets
//	ri, err := l.Read(info.FirstOffset, 1<<20)   // whole batches, undecoded
//	err = l.Maintain(time.Now())                 // periodically: roll, flush, retention, compaction
//	err = l.Close()
//
// Appends are all-or-nothing per call; errors wrap *kerr.Error so that the
// broker can answer with the Kafka error code. What each flush policy
// promises and how recovery works is in docs/storage.md.
package storage
