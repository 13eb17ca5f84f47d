// Package runtime runs a stream.Topology as a worker process of an
// application: the counterpart of Kafka Streams' KafkaStreams. It speaks
// the Kafka protocol through franz-go, so a worker runs against eddy's
// broker (external or embedded) or any Kafka cluster.
//
//	top, _ := b.Build()
//	cfg := runtime.DefaultConfig("wordcount", "127.0.0.1:9092")
//	app, err := runtime.New(top, cfg)
//	...
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	err = app.Run(ctx) // nil after a graceful shutdown
//
// Start as many workers (processes) with the same ApplicationID as you
// like: they share the work. Each needs its own StateDir.
//
// # Threads and tasks
//
// A worker runs Config.NumStreamThreads stream threads. A task is one
// sub-topology applied to one partition of its source topics (task "1_3":
// sub-topology 1, partition 3); a sub-topology has as many tasks as its
// largest source topic has partitions. Each stream thread is a member of
// the consumer group named ApplicationID, owns the tasks the group assigns
// it, and runs them in one goroutine: it polls its input partitions,
// hands records to their tasks, lets each task process a bounded batch
// (records in timestamp order across its partitions), fires wall-clock
// punctuators, and commits when due. A task with 10,000 or more
// records buffered has its partitions paused until it catches up.
//
// Each thread has one franz-go client that is both the group member and
// the producer (acks=all, idempotent), and a second one, the restore
// consumer, that reads changelogs. Records a task sends with no partition
// go through Kafka's default partitioner (murmur2 of the key, masked
// positive, modulo the partition count; see KeyPartition), so repartition
// topics land on the right task whatever client wrote them; changelog
// records go to the task's own partition. Config.ClientOptions are added
// after the runtime's own options to every client (the admin client too),
// so they can tune or override them: TLS, SASL, SessionTimeout,
// HeartbeatInterval, FetchMaxWait... They must not change the group's
// mechanics (ConsumerGroup, Balancers, BlockRebalanceOnPoll, the
// OnPartitions callbacks, auto-commit), which the runtime relies on.
//
// # Internal topics
//
// Run first checks the source topics (a missing one is an error naming
// it: the runtime never creates user topics), then creates the internal
// topics, idempotently: repartition topics
// "<ApplicationID>-<name>-repartition" with their explicit partition
// count, else the largest count of the source topics of the sub-topology
// that writes them; and changelog topics "<ApplicationID>-<store>-changelog"
// (cleanup.policy=compact) with as many partitions as their
// sub-topology has tasks. An existing internal topic with another partition
// count is an error. Topics that a join reads side by side must have the
// same partition count (repartition topics without an explicit count are
// sized to match); otherwise Run fails with ErrTopics, naming the join and
// the topics with their counts.
//
// # Assignment
//
// The group uses the "eddy-streams" protocol with eager rebalancing. When
// joining, each thread sends (as the user data of a standard consumer
// subscription): its process id (a UUID kept in
// <StateDir>/<ApplicationID>/process.id), its thread index, its
// ApplicationServer, the tasks it owns, and, for every task directory of
// the process holding a checkpoint, the sum of the checkpointed offsets.
// The group leader assigns tasks, never partitions: all partitions of a
// task go to one member, so co-partitioned inputs meet in one task. Tasks
// stay with their owners while that keeps the members balanced; others go
// to the least-loaded member, spreading each sub-topology and preferring
// processes that have the task's state; then loads are evened out to
// within one task. With NumStandbyReplicas > 0, each task with a logged
// store also gets standby copies, each on a different process than the
// active and each other (a copy on the same process would protect
// nothing), preferring the previous holder, then a process with state.
// Every member receives its active and standby tasks and the map of
// application servers to their active tasks, which KeyOwner reads.
//
// Rebalancing is eager: at the start of a rebalance every thread finishes
// the records it already polled, commits, and suspends its tasks (stores
// stay open). When the new assignment arrives, tasks it keeps resume at
// once, tasks it lost are closed, new tasks are opened and restored,
// standbys that became active restore only the changelog tail they miss.
// If the member was kicked out of the group (partitions lost), its tasks
// close without committing.
//
// # State, restore and checkpoints
//
// A task's state lives in <StateDir>/<ApplicationID>/<task id>/: one
// directory per persistent store (badger, sized per task; see package
// table), in-memory stores live in memory only, and a .checkpoint file
// holds, per changelog partition of the task's persistent logged stores,
// the changelog offset the store covers up to.
//
// Under at-least-once the checkpoint is rewritten at every commit and kept
// while the task runs (under exactly-once, see below). At a commit the
// task's stores are
// flushed (fsynced) before the producer is flushed and before the
// checkpoint is written with, per changelog partition, one past the last
// acknowledged changelog record; so a checkpoint never claims more than
// the store holds durably. When a task opens:
//
//   - no checkpoint entry for a persistent logged store (first start, the
//     file deleted, or a store from unknown history): the store directory
//     is wiped and the store is restored from the start of its changelog;
//   - a checkpoint outside the changelog's [log start, end] (the topic was
//     recreated or truncated): the same;
//   - otherwise the store is kept and the changelog is replayed from the
//     checkpointed offset to its end.
//
// After an unclean stop the checkpoint is that of the last commit, and the
// store may hold later writes; replaying the changelog from the checkpoint
// brings every key the changelog has since seen to its logged value, and
// the input records after the last committed offset are processed again:
// at-least-once, as in Kafka Streams. After a clean stop the checkpoint
// covers everything and a restart restores nothing.
//
// # Exactly-once
//
// With Config.Guarantee = ExactlyOnce (Kafka's exactly_once_v2) each
// stream thread's client is a transactional producer, transactional.id
// <app-id>-<process-id>-<thread>, and a read_committed consumer. What the
// thread's tasks send between two commits (outputs, repartition and
// changelog records) is one transaction; the commit adds the input offsets
// to it (AddOffsetsToTxn, then TxnOffsetCommit with the member's group
// generation, KIP-447) and commits it. The commit interval defaults to 100
// ms, and the transaction timeout is 10 s.
//
//   - A zombie (a worker the group moved on from, say after a long pause)
//     is fenced: the group coordinator refuses its TxnOffsetCommit, so it
//     aborts. A worker restarted on its state directory keeps its process
//     id, and its InitProducerID aborts what its previous incarnation left
//     open.
//   - When a commit fails (fenced, a rebalance, a broker error) the thread
//     aborts the transaction and rewinds: the active tasks close without
//     flushing, reopen from their stores and checkpoints, and the consumer
//     goes back to the group's committed offsets (waiting while offsets of
//     another transaction are pending, RequireStable).
//   - Stores are transactional (table.BadgerOptions.Transactional): a
//     task's writes stay in memory until the transaction committed; then
//     they are written to badger, synced, and the checkpoint records the
//     changelog offsets. An abort or a crash leaves the stores at the last
//     commit, so a restart replays at most the committed changelog tail
//     since the checkpoint. Kafka Streams instead wipes a task's state after
//     an unclean stop under exactly-once (what KIP-892 sets out to fix).
//     More than 64 MiB of uncommitted writes in a thread's stores makes it
//     commit early.
//   - Restore and global consumers read read_committed and step over
//     transaction markers; restores end at the last stable offset.
//   - A production error the handler skips still lets the transaction
//     commit when the producer accepts it; otherwise the transaction aborts
//     and the records are processed again.
//
// Interactive queries read the stores with their uncommitted writes (as
// Kafka Streams does without KIP-892's read-committed queries).
//
// Restore runs before the task processes: the thread's restore consumer
// reads the changelog partitions from the store's position to the end
// offsets listed when the restore began, applying each record
// (stream.ChangelogEntry) in PutAll batches, while the thread keeps
// serving its running tasks; records of the task's input that arrive
// meanwhile wait in a bounded buffer. Then the stores are flushed, the
// checkpoint written and the task starts.
//
// # Global tables
//
// A topology with global tables (stream.GlobalTable) gets one global
// thread per worker, shared by its stream threads: Kafka Streams'
// GlobalStreamThread. It has its own client, assigned every partition of
// every global topic (no consumer group, no committed offsets), and
// applies their records to the global stores through a
// stream.GlobalTask. The stores live in
// <StateDir>/<ApplicationID>/global/<store>/ (badger, or in memory for
// Materialized.InMemory), next to a .checkpoint file holding, per
// partition of the persistent stores' topics, the offset after the last
// record the store covers. A global topic is its own changelog: nothing
// is written back to the cluster.
//
// Run checks the global topics with the source topics (a missing one is
// an error naming it). Then, before any stream thread starts, the global
// stores are bootstrapped: each persistent store whose checkpoint places
// every partition of its topic inside the topic's log is kept and read
// from there; any other store (no checkpoint, one outside the log, an
// in-memory store) is wiped and read from the start. Reading goes up to
// the end offsets listed when the bootstrap began, then the stores are
// flushed and the checkpoint written; only then do the stream threads
// start, so WaitRunning also waits for the bootstrap, and a stream record
// never meets a global table older than the worker's start. (Positions
// are taken from the records read, so a topic whose log ends with
// transaction markers would not be seen as caught up: global topics are
// expected to be written without transactions.)
//
// Afterwards the global thread keeps reading its topics, and every
// CommitInterval and at shutdown flushes the stores and rewrites the
// checkpoint; it closes after the stream threads. A restart thus reads
// only what was added since, and a worker that lost its state directory
// rebuilds the stores from the topics. Stream tasks read the global
// stores directly (they have no record cache, and the stores are safe for
// a reader and a writer at once): a global update is visible to the
// stream records processed after it was applied, with no ordering between
// the two topics beyond that (as in Kafka Streams). An undecodable global
// record goes to Config.Errors' deserialization handler (and the
// dead-letter topic); a Fail stops the worker (during the bootstrap, Run
// and WaitRunning return the error).
//
// # Standby replicas
//
// A standby task opens the task's stores in the same directory layout and
// follows its changelog partitions with the restore consumer, forever. Its
// checkpoint is written at commits. When the assignment makes it active on
// the same thread, it restores only the tail between its position and the
// changelog's end, then runs.
//
// # Commit
//
// Every CommitInterval, when a processor asks (ProcessorContext.Commit),
// at the start of a rebalance and at shutdown, a thread commits:
//
//  1. each running task flushes its record cache (writing stores and
//     changelogs, forwarding cached updates) and its stores;
//  2. the producer is flushed: every record sent so far is acknowledged
//     (or failed, see below);
//  3. checkpoints are written (changelog positions from the
//     acknowledgements), for active and standby tasks whose positions
//     moved;
//  4. the tasks' input offsets (one past the last processed record) are
//     committed with the group member's client.
//
// A failed offset commit is logged, not fatal: it means the group is
// rebalancing, and the revoke (or lost) callback follows.
//
// # Shutdown
//
// When Run's context is cancelled (or Close is called) each thread
// processes the records it already polled, commits as above, closes its
// tasks and standbys (writing their checkpoints) and stores, then leaves
// the group, which hands its tasks to the remaining workers at once. Run
// returns nil. A SIGTERM handled by signal.NotifyContext is a graceful
// shutdown.
//
// # Errors
//
//   - Deserialization and processing errors go to Config.Errors'
//     handlers inside the task (log-and-fail by default, log-and-continue,
//     and a dead-letter topic receiving the input record with the error in
//     headers whatever the handler decides).
//   - Production errors are asynchronous: a record the producer cannot
//     deliver (after its retries) is handed to
//     Config.Errors.Production at the next poll or commit, and to the
//     dead-letter topic with its error in headers; Continue counts it as
//     dropped, Fail stops the worker. Serialization errors at sinks are
//     handled inside the task.
//   - A Fail decision, a store failure or an internal error is fatal: the
//     thread closes its tasks without committing (the failed record will
//     be read again), the other threads shut down gracefully, and Run
//     returns the error (a *stream.TaskError for handler failures).
//
// # Interactive queries
//
// App.Store reads this worker's copies of a store, over its running
// active tasks; Query is the typed Get. Reads see what the tasks flushed
// (at commits, or at once with caching disabled). App.KeyOwner says which
// worker (its ApplicationServer) holds a key, from the assignment all
// members receive. App.QueryHandler serves the stores over HTTP
// (GET /stores, /stores/S/keys/K, /stores/S/all, /stores/S/range): any
// worker answers for any key, forwarding the request once to the owner's
// ApplicationServer; scope=all fans out to every worker (see
// docs/runtime.md). A global store is served in full by every worker once bootstrapped (its
// reads see each record as soon as it is applied), and KeyOwner answers
// this worker for it.
//
// # Window and session stores
//
// The stores of windowed aggregations (KGroupedStream.WindowedBy,
// WindowedBySliding, WindowedBySession), of stream-stream joins and the
// Processor API stores declared with stream.WindowKind or
// stream.SessionKind are read with the StoreReader's window and session
// methods, Kafka Streams' ReadOnlyWindowStore and ReadOnlySessionStore;
// StoreReader.Kind tells a store's kind, and a method of another kind
// returns ErrWrongStoreKind:
//
//   - FetchWindows(key, from, to): key's windows whose start is in [from,
//     to] (epoch ms, both included), by start; FetchAllWindows(from, to)
//     every key's. A window store keeps window starts only: a window's
//     end is its start plus the window size.
//   - FetchSessions(key): key's sessions, by end then start;
//     FindSessions(key, earliestEnd, latestStart) those overlapping
//     [earliestEnd, latestStart]; AllSessions every key's.
//
// A key is read from the task that owns it (its partition by KeyPartition,
// as for Get). QueryWindows, QueryAllWindows and QuerySessions are the
// typed versions, with the inner (unwindowed) key serde and the store's
// value serde:
//
//	counts, err := runtime.QueryWindows(app, "clicks-per-minute", "alice",
//		from.UnixMilli(), to.UnixMilli(), serde.String(), serde.Int64())
//	for _, w := range counts {
//		fmt.Println(time.UnixMilli(w.Start), w.Value)
//	}
//
// Over HTTP, a key's windows and sessions are forwarded to the owner like
// /keys; without a key, this worker's (or with scope=all every worker's)
// are listed. Times are epoch milliseconds or RFC 3339; size= gives each
// window's end:
//
//	curl 'http://localhost:8080/stores/clicks-per-minute/windows?key=alice&from=2026-11-22T08:00:00Z&to=2026-11-22T09:00:00Z&size=1m'
//	curl 'http://localhost:8080/stores/clicks-per-minute/windows?from=1795334400000&scope=all&limit=100'
//	curl 'http://localhost:8080/stores/visits/sessions?key=alice'
//	curl 'http://localhost:8080/stores/visits/sessions?scope=all&from=1795334400000&to=1795338000000'
//
// An answer lists QueryWindow entries:
//
//	{"store":"clicks-per-minute","scope":"key","truncated":false,"entries":[
//	  {"key":"alice","key_base64":"YWxpY2U=","value_base64":"AAAAAAAAAAM=",
//	   "host":"10.0.0.7:8080","start":1795334400000,"end":1795334460000,"timestamp":1795334451200}]}
//
// A key without windows answers an empty list; an unknown store 404; a
// store of another kind, a bad time or from after to 400.
//
// # Metrics
//
// With Config.Registerer set the runtime registers (labels: thread is the
// stream thread index, store the store name, task the task id, reason the
// drop reason; the global thread's series have thread and task
// "global"):
//
//	eddy_streams_records_processed_total{thread}           counter   input records processed
//	eddy_streams_process_latency_seconds{thread}           histogram time to process one input record through its sub-topology (sampled: 1 record in 64)
//	eddy_streams_commit_latency_seconds{thread}            histogram time of one commit (flush, acks, checkpoints, offsets)
//	eddy_streams_end_to_end_latency_seconds{thread}        histogram wall clock minus record timestamp when written to an output topic (sampled: 1 record in 64)
//	eddy_streams_record_lateness_seconds{thread}           histogram stream time minus record timestamp, for input records below their task's stream time
//	eddy_streams_dropped_records_total{thread,reason}      counter   records dropped: null-key, deserialization, processing, production, invalid-timestamp, late
//	eddy_streams_restore_remaining_records{store}          gauge     changelog (or global topic) records still to restore before tasks can run
//	eddy_streams_restored_records_total{store}             counter   changelog records applied by restores and standbys, and global topic records applied by the bootstrap
//	eddy_streams_store_entries{store,task}                 gauge     approximate keys in an active task's store (or a global store), sampled at commit
//	eddy_streams_consumer_lag_records{thread}              gauge     high watermark minus fetch position, summed over the thread's input partitions (updated when records are fetched)
//	eddy_streams_active_tasks{thread}                      gauge     active tasks owned
//	eddy_streams_standby_tasks{thread}                     gauge     standby tasks owned
//	eddy_streams_rebalances_total{thread}                  counter   assignments received
//	eddy_streams_transactions_committed_total{thread}      counter   exactly-once: transactions committed
//	eddy_streams_transactions_aborted_total{thread}        counter   exactly-once: transactions aborted (the thread's tasks rewound)
//
// Two Apps given the same Registerer share the collectors.
//
// # Memory
//
// A worker's memory is mostly: each task's badger stores (about 12 MiB of
// Go heap each, see package table), the record cache (CacheMaxBytes for
// the whole worker), records buffered per task (its input partitions are
// paused at 10,000 buffered records), and the fetches franz-go decodes
// whole, one per client: each stream thread's consumer and restore
// consumer and the global thread's consumer (each fetch bounded to 1 MiB,
// 128 KiB per partition, with a 100 ms fetch wait; ClientOptions can
// change that). Records sent are handed to a
// producer goroutine in batches, so producing runs beside processing;
// a commit waits for every one of them to be acknowledged. Go's garbage collector lets the heap grow to about twice
// the live data by default; run workers with a soft memory limit
// (GOMEMLIMIT, or debug.SetMemoryLimit; the examples' --memory-limit flag)
// to keep a worker with 12 tasks within 256 MiB resident: measured at
// 168 MiB with a 192 MiB limit by `eddy perf streams`.
//
// # Not yet
//
// Partitions added to source or global topics while the application runs
// are not picked up until its workers restart.
package runtime
