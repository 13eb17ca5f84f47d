package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/registry"
)

// registryStartTimeout bounds starting the schema registry: creating its
// topic and replaying it.
const registryStartTimeout = time.Minute

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
		withRegistry  bool
		registryTopic string
	)
	c := &cobra.Command{
		Use:   "broker",
		Short: "Run the eddy broker (Kafka protocol, durable log storage)",
		Long: `broker runs eddy's bundled broker: a durable, partitioned log speaking the
Kafka wire protocol. It serves Kafka clients on --listen and Prometheus
metrics on --http (/metrics). It shuts down cleanly on SIGINT or SIGTERM.

With --http set (the default, 127.0.0.1:8081, Confluent Schema Registry's
port), the broker also serves a schema registry there: the Confluent Schema
Registry REST API for Avro schemas (/subjects, /schemas/ids/..., /config,
/compatibility, /mode). Its schemas are kept in the compacted topic
--registry-topic (default _schemas) on the broker itself, so ids and versions
survive restarts. Point serdes, "eddy registry" and "eddy consume
--value-format avro" at http://<--http address>. --registry=false turns it
off.

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
			var reg *registry.Server
			if withRegistry && cfg.HTTP != "" {
				if reg, err = startRegistry(cmd.Context(), srv, registryTopic, log); err != nil {
					srv.Close()
					return err
				}
			}
			if readyFile != "" {
				if err := writeFileAtomic(readyFile, []byte(srv.Addr()+"\n")); err != nil {
					if reg != nil {
						reg.Close()
					}
					srv.Close()
					return fmt.Errorf("ready file: %w", err)
				}
			}
			<-cmd.Context().Done()
			log.Info("shutting down")
			start := time.Now()
			if reg != nil {
				if err := reg.Close(); err != nil {
					log.Warn("closing the schema registry", "err", err)
				}
			}
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
	f.StringVar(&cfg.HTTP, "http", def.HTTP, `HTTP listener for /metrics and the schema registry ("" disables)`)
	f.BoolVar(&withRegistry, "registry", true, "serve the schema registry on --http")
	f.StringVar(&registryTopic, "registry-topic", registry.DefaultTopic, "compacted topic the schema registry keeps its schemas in")
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

// startRegistry mounts the schema registry, its records in topic on srv,
// on srv's HTTP listener.
func startRegistry(ctx context.Context, srv *broker.Server, topic string, log *slog.Logger) (*registry.Server, error) {
	ctx, cancel := context.WithTimeout(ctx, registryStartTimeout)
	defer cancel()
	l, err := registry.NewKafkaLog(ctx, []string{srv.Addr()}, topic)
	if errors.Is(err, registry.ErrBadLogTopic) {
		return nil, fmt.Errorf("schema registry: %w (to fix the topic, start the broker with --registry=false; or pick another --registry-topic)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	reg, err := registry.Mount(ctx, srv, registry.Config{Log: l, Logger: log.With("component", "registry")})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	log.Info("schema registry ready", "url", "http://"+srv.HTTPAddr(), "topic", topic)
	return reg, nil
}
