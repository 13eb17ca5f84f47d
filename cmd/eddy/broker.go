package main

import (
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/broker"
)

func init() { commands = append(commands, brokerCmd) }

func brokerCmd(a *app) *cobra.Command {
	def := broker.DefaultConfig()
	cfg := def
	var (
		configs       []string
		flushMessages int64
		flushMs       int64
		segmentBytes  int64
		retentionMs   int64
		readyFile     string
	)
	c := &cobra.Command{
		Use:   "broker",
		Short: "Run the eddy broker (Kafka protocol, durable log storage)",
		Long: `broker runs eddy's bundled broker: a durable, partitioned log speaking the
Kafka wire protocol. It serves Kafka clients on --listen and Prometheus
metrics on --http (/metrics). It shuts down cleanly on SIGINT or SIGTERM.

Topic config defaults for the whole broker are set with --config k=v (Kafka
topic config names); --flush-messages, --flush-ms, --segment-bytes and
--retention-ms are shorthands for the most common ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := a.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defaults, err := parseKV(configs, "--config")
			if err != nil {
				return err
			}
			for flag, key := range map[string]struct {
				name string
				v    *int64
			}{
				"flush-messages": {"flush.messages", &flushMessages},
				"flush-ms":       {"flush.ms", &flushMs},
				"segment-bytes":  {"segment.bytes", &segmentBytes},
				"retention-ms":   {"retention.ms", &retentionMs},
			} {
				if cmd.Flags().Changed(flag) {
					defaults[key.name] = strconv.FormatInt(*key.v, 10)
				}
			}
			cfg.TopicDefaults = maps.Clone(defaults)
			cfg.Logger = log
			if err := cfg.Validate(); err != nil {
				return err
			}
			srv, err := broker.New(cfg)
			if err != nil {
				return err
			}
			if err := srv.Start(); err != nil {
				srv.Close()
				return err
			}
			log.Info("eddy broker ready", "kafka", srv.Addr(), "http", srv.HTTPAddr(), "data_dir", cfg.DataDir, "sync_writes", cfg.SyncWrites)
			if readyFile != "" {
				if err := writeFileAtomic(readyFile, []byte(srv.Addr()+"\n")); err != nil {
					srv.Close()
					return fmt.Errorf("ready file: %w", err)
				}
			}
			<-cmd.Context().Done()
			log.Info("shutting down")
			start := time.Now()
			if err := srv.Close(); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", def.DataDir, "directory holding the logs and broker metadata")
	f.StringVar(&cfg.Listen, "listen", def.Listen, "Kafka listener host:port (port 0: any free port)")
	f.StringVar(&cfg.Advertise, "advertise", "", "host:port advertised to clients (default: the actual listen address)")
	f.StringVar(&cfg.HTTP, "http", def.HTTP, `HTTP listener for /metrics ("" disables)`)
	f.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", def.AutoCreateTopics, "create unknown topics on Metadata and Produce")
	f.Int32Var(&cfg.DefaultPartitions, "default-partitions", def.DefaultPartitions, "partitions of auto-created topics")
	f.BoolVar(&cfg.SyncWrites, "sync-writes", def.SyncWrites, "fsync every append before acknowledging it")
	f.DurationVar(&cfg.ProducerIDExpiration, "producer-id-expiration", def.ProducerIDExpiration, "forget an idle idempotent producer's state after this long (producer.id.expiration.ms)")
	f.DurationVar(&cfg.ConnectionsMaxIdle, "connections-max-idle", def.ConnectionsMaxIdle, "close a connection idle this long (connections.max.idle.ms)")
	f.DurationVar(&cfg.TransactionAbortInterval, "transaction-abort-interval", def.TransactionAbortInterval, "how often transactions past their timeout are aborted")
	f.Int64Var(&flushMessages, "flush-messages", 0, "default flush.messages: fsync after this many messages")
	f.Int64Var(&flushMs, "flush-ms", 0, "default flush.ms: fsync when the oldest unflushed message is this old")
	f.Int64Var(&segmentBytes, "segment-bytes", 0, "default segment.bytes: roll segments at this size")
	f.Int64Var(&retentionMs, "retention-ms", 0, "default retention.ms (-1: keep forever)")
	f.StringArrayVar(&configs, "config", nil, "broker-wide topic config default key=value (repeatable)")
	f.StringVar(&readyFile, "ready-file", "", "write the advertised Kafka address to this file once listening")
	f.MarkHidden("ready-file") //nolint:errcheck // flag exists
	return c
}
