// Package table holds eddy's state stores, the equivalent of Kafka Streams'
// state stores.
//
// # Key-value stores
//
// KeyValueStore is a byte-oriented store: keys and values are []byte, and
// typed access is layered on top with serdes. Two implementations share one
// contract, checked by one conformance suite:
//
//   - BadgerStore (OpenBadger): persistent, on disk, backed by badger. The
//     default for stateful operators, like Kafka Streams' RocksDB stores.
//   - InMemoryStore (NewInMemory): a B-tree in memory; restored entirely from
//     the changelog after a restart.
//
// The semantics follow Kafka Streams: a nil value is a delete (a tombstone),
// while an empty value is a value; keys are ordered by unsigned bytes; Range
// is inclusive on both ends, and a nil bound is open; empty keys are
// rejected with ErrEmptyKey.
//
// # Window and session stores
//
// WindowStore and SessionStore are Kafka Streams' WindowStore<Bytes, byte[]>
// and SessionStore<Bytes, byte[]>: one value per (key, window start), and
// per (key, session start, session end). Each has an in-memory
// implementation (NewInMemoryWindowStore, NewInMemorySessionStore: one
// B-tree) and a badger one (OpenBadgerWindowStore, OpenBadgerSessionStore:
// one badger database per store, with OpenBadger's options and memory
// budget below), checked by one conformance suite per interface. Both
// implementations share one layout and so one iteration order:
//
//	window store key   [segment id][key][window start]
//	session store key  [segment id][key][session end][session start]
//
// where every number is 8 bytes big-endian with the sign bit flipped (so
// byte order is numeric order) and the segment id is
// floor(time / SegmentInterval) of the window start or the session end.
//
// Retention follows Kafka Streams. Each store tracks its observed stream
// time, the largest window start (session end) written; an entry whose time
// is <= observed - Retention is expired: never returned, and writes to it
// are skipped and counted (ExpiredWrites) instead of failing, like Kafka's
// "Skipping record for expired segment". Space is reclaimed by whole
// segments: the write that advances stream time deletes every segment below
// segment(observed - Retention). SegmentInterval defaults to Kafka's
// max(Retention/2, 60 s), so a store holds at most Retention plus one or two
// segments of data. The badger stores restore the observed stream time from
// their data when reopened.
//
// Expiry deletes a segment's keys through a badger WriteBatch (≈ 2.8 µs a
// key: 28 ms for a 10,000-entry segment, paid by the write that advances
// time; in memory ≈ 0.8 µs a key). Readers are unaffected: they iterate
// their snapshot, and expired entries were already filtered out. badger's
// DropPrefix was measured at about the same speed (21 ms for 10,000 keys)
// and open readers kept their snapshot, but it is not used: it blocks all
// writes while it runs (they fail with badger.ErrBlockedWrites), flushes the
// memtables to a new level-0 table on every call and pauses compactions.
// Deleted keys leave badger's files at compaction.
//
// # Iteration
//
// Range and All return iter.Seq2[KeyValue, error], to be used with range
// over func. An iterator reads a consistent snapshot taken when the loop starts
// and releases it when the loop ends, including on break: there is no Close
// to forget. A read failure is yielded once as a non-nil error, then the
// iteration stops.
//
// # Concurrency
//
// One goroutine, the task's stream thread, writes a store. Interactive
// queries may call Get, Range, All and ApproximateNumEntries from any number
// of goroutines at the same time; each write is seen entirely or not at all.
// Close must not race with other calls; afterwards calls return ErrClosed.
//
// # Memory budget
//
// badger's defaults (64 MiB memtables ×5, a 256 MiB block cache, no index
// cache limit so every table index stays in memory, 1 GiB value log files)
// are meant for one database per process; eddy opens one store
// per task, so OpenBadger sizes badger for that:
//
//	memtables     2 × 2 MiB, each arena ≈ 2.6 MiB with batch headroom  ≈  5.2 MiB
//	block cache   4 MiB                                                  4   MiB
//	index cache   2 MiB (bloom filters and table indexes)                2   MiB
//	total Go heap per store                                           ≈ 11.2 MiB
//
// Measured: four stores holding 200,000 100-byte entries each hold 44 MiB
// of live Go heap, 11 MiB per store; budget ≤ 12 MiB of live heap per
// store, so a worker with 12 tasks and one store each keeps ≈ 144 MiB in its
// stores. Other settings: no compression (values are usually small and
// already serialized), values up to 32 KiB kept in the LSM tree and larger
// ones in 16 MiB value log files, 2 MiB tables, 2 level-0 tables before
// compaction (stall at 4), 2 compactors, conflict detection off (one
// writer), badger metrics off. Table and value log files are memory-mapped:
// pages of them that are read count toward resident memory as page cache,
// which the kernel reclaims under pressure. Write bursts leave transient
// garbage that the Go runtime returns to the OS over time.
//
// badger's log lines go to the slog.Logger in BadgerOptions (info as debug);
// a nil Logger silences them.
//
// # Durability
//
// Writes are not fsynced by default (BadgerOptions.SyncWrites changes that):
// Flush syncs, and is meant to be called at commit, before the changelog
// checkpoint is written. The changelog topic is the
// source of truth; a store is a cache of it.
//
// # Transactional stores
//
// Under exactly-once processing a store must not keep writes whose Kafka
// transaction aborted: after a crash the checkpoint and the store would
// disagree with the committed changelog. With BadgerOptions.Transactional
// (the idea of Kafka's KIP-892) a BadgerStore, and a window or session
// store opened with it, keeps every write in an in-memory overlay, a
// B-tree in which a nil value is a pending delete. Put, PutAll and Delete
// go to the overlay, and so do the deletes of expired segments. Reads (Get,
// Range, All and the window and session fetches) see the overlay over
// badger: an overlay entry replaces badger's value of its key, a pending
// delete hides it. An iterator snapshots both together (the overlay by a
// copy-on-write clone), so it reads one consistent state even across a
// Flush.
//
//   - Flush writes the overlay to badger (in as many badger transactions as
//     it takes), syncs, and empties the overlay. Call it only after the
//     Kafka transaction committed, then write the checkpoint. If writing
//     fails, Flush returns the error with part of the overlay written: the
//     task must then fail and be restored from its changelog.
//   - Close without Flush DISCARDS the overlay: that is the rollback after
//     an abort, and what a crash does. A store reopened after either holds
//     exactly what the last Flush wrote.
//   - UncommittedBytes (the Uncommitted interface, implemented by the badger
//     store and by the window and session stores) reports the overlay's
//     size in bytes of keys and values, so the runtime can commit early
//     before it grows too large; the overlay lives in the Go heap, outside
//     the memory budget below.
//   - Writes read nothing: ApproximateNumEntries is refreshed by counting
//     the keys readers see (overlay over badger, keys only) in the
//     background, at most every RecountInterval (10 s), after writes; in
//     between it returns the last count. A read per written key to keep an
//     exact count cost exactly-once a third of its commit time.
//
// Interactive queries on a transactional store see uncommitted writes, as
// in Kafka Streams under exactly-once before KIP-892's read-committed
// queries. The one writer and any number of readers share the overlay
// under a read-write lock: Get takes the read lock; an iterator takes the
// write lock only to clone. A store that is not transactional takes no
// lock and writes badger at once, as before.
//
// # Record cache
//
// Cache is Kafka Streams' record cache: it holds recent writes of a task's
// stores in memory, one namespace per store, so that repeated writes of a key
// reach the store (and its changelog) once. It is bounded by bytes
// (len(key)+len(value)+64 per entry) and evicts least recently used entries
// across namespaces; evicting a dirty entry flushes every dirty entry of its
// namespace to the namespace's listener. At commit, Cache.Flush hands all
// dirty entries to their listeners, before the stores are flushed and the
// checkpoint is written. A nil value is a cached delete. NewCache(0) disables
// caching: every write goes straight to the listener. A Cache belongs to
// one stream thread and is not safe for concurrent use.
//
// # Checkpoints
//
// ReadCheckpoint and WriteCheckpoint read and write Kafka Streams'
// .checkpoint files, which record the changelog offset up to which each
// store is known to hold its data: a version line (0), a count line, then
// one "topic partition offset" line per TopicPartition. WriteCheckpoint
// writes a temporary file, fsyncs it, renames it into place and fsyncs the
// directory, so a crash leaves the old or the new checkpoint. A missing
// checkpoint reads as empty; a malformed one is an error wrapping
// ErrBadCheckpoint.
package table
