// Package broker is eddy's bundled Kafka broker: a single node that keeps
// topics in durable partition logs (package broker/storage) and speaks the
// Kafka wire protocol, so any Kafka client or tool works against it.
//
// The smallest use starts a broker on a random port and points a Kafka
// client at Addr:
//
//	cfg := broker.DefaultConfig()
//	cfg.DataDir = dir
//	cfg.Listen = "127.0.0.1:0"
//	srv, err := broker.New(cfg)
//	if err != nil { ... }
//	if err := srv.Start(); err != nil { ... }
//	defer srv.Close()
//	client, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
//
// # Lifecycle
//
// New validates a Config; Start opens (and, after a crash, recovers) the
// data directory, creates __consumer_offsets, starts the group coordinator
// (package broker/group) and the listeners, and returns once connections
// are accepted. Close stops the listeners, closes every connection, waits
// for every goroutine and closes the logs, leaving the clean-shutdown
// marker. Close is idempotent. A data directory is locked by one broker at
// a time.
//
// # Data directory
//
// Each partition is a directory <data-dir>/<topic>-<partition> of Kafka
// segment files. topics.json lists every topic with its id, partition
// count and config overrides; it is replaced atomically (temporary file,
// fsync, rename, directory fsync) on every change. meta.properties keeps
// the cluster id and node id.
//
// # Protocol
//
// Every request is decoded and encoded with franz-go's kmsg. A connection
// answers pipelined requests in order: one goroutine reads and decodes
// frames, one handles requests one at a time, one writes responses. A
// frame larger than Config.MaxRequestBytes, an unknown API key, an
// unsupported version or a malformed request closes that connection (the
// reason is logged); ApiVersions with an unknown version is answered as v0
// with UNSUPPORTED_VERSION (KIP-511). Produce with acks=0 gets no response.
// Fetch long-polls: a fetch waiting for MinBytes registers with its
// partitions and is woken by the next append. See docs/broker.md for each
// API and its versions.
//
// # Metrics
//
// Metrics are registered with Config.Registerer (a private registry when
// nil) and served on /metrics of the HTTP listener: eddy_requests_total,
// eddy_request_duration_seconds, eddy_bytes_in_total, eddy_bytes_out_total,
// eddy_records_in_total, eddy_records_out_total, eddy_log_end_offset,
// eddy_log_start_offset, eddy_log_size_bytes, eddy_connections_open and
// eddy_consumer_group_lag. Handle mounts more HTTP handlers.
//
// # Lock order
//
// topicManager.admin (topic changes) before topicManager.mu (the topic
// maps) before partition.mu (fetch waiters). Produce and Fetch take only
// the read lock of topicManager.mu to look a topic up, then work on the
// partition's log, which has its own locks.
package broker
