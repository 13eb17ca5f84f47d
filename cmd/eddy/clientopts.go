package main

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// producerOpts translates the --acks and --compression flags shared by
// produce and perf into client options. Idempotent writes (franz-go's
// default) need acks=all, so weaker acks disable them.
func producerOpts(acks, compression string) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	switch strings.ToLower(acks) {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1", "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0", "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("invalid --acks %q: want all, 1 or 0", acks)
	}
	var codec kgo.CompressionCodec
	switch strings.ToLower(compression) {
	case "none", "":
		codec = kgo.NoCompression()
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("invalid --compression %q: want none, gzip, snappy, lz4 or zstd", compression)
	}
	return append(opts, kgo.ProducerBatchCompression(codec)), nil
}
