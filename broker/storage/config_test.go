package storage

import (
	"errors"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestParseTopicConfig(t *testing.T) {
	base := DefaultConfig()
	m := map[string]string{
		"segment.bytes": "2048", "segment.ms": "1000", "segment.index.bytes": "4096", "index.interval.bytes": "100",
		"retention.ms": "-1", "retention.bytes": "12345", "cleanup.policy": "delete,compact",
		"min.cleanable.dirty.ratio": "0.25", "min.compaction.lag.ms": "5", "max.compaction.lag.ms": "6",
		"delete.retention.ms": "7", "file.delete.delay.ms": "8", "flush.messages": "9", "flush.ms": "10",
		"max.message.bytes": "11", "message.timestamp.type": "LogAppendTime",
		"message.timestamp.before.max.ms": "12", "message.timestamp.after.max.ms": "13",
		"compression.type": "producer", "min.insync.replicas": "1",
	}
	c, err := ParseTopicConfig(m, base)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{SegmentBytes: 2048, SegmentMs: 1000, SegmentIndexBytes: 4096, IndexIntervalBytes: 100, RetentionMs: -1,
		RetentionBytes: 12345, CleanupPolicy: "compact,delete", MinCleanableDirtyRatio: 0.25, MinCompactionLagMs: 5,
		MaxCompactionLagMs: 6, DeleteRetentionMs: 7, FileDeleteDelayMs: 8, FlushMessages: 9, FlushMs: 10,
		MaxMessageBytes: 11, MessageTimestampType: "LogAppendTime",
		MessageTimestampBeforeMaxMs: 12, MessageTimestampAfterMaxMs: 13}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	// ToMap round-trips every field.
	back, err := ParseTopicConfig(c.ToMap(), DefaultConfig())
	if err != nil || back != c {
		t.Fatal(back, err)
	}
	delete(m, "compression.type")
	delete(m, "min.insync.replicas")
	m["cleanup.policy"] = "compact,delete"
	if got := c.ToMap(); !maps.Equal(got, m) {
		t.Fatalf("ToMap %v", got)
	}
	for _, bad := range []map[string]string{
		{"segment.bytes": "10"}, {"segment.bytes": "x"}, {"retention.ms": "-2"}, {"cleanup.policy": "archive"},
		{"min.cleanable.dirty.ratio": "1.5"}, {"message.timestamp.type": "Now"}, {"no.such.config": "1"},
		{"compression.type": "gzip"}, {"flush.messages": "0"}, {"max.message.bytes": "99999999999"},
	} {
		if _, err := ParseTopicConfig(bad, base); !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("%v: got %v", bad, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if !IsTopicConfig("retention.ms") || !IsTopicConfig("preallocate") || IsTopicConfig("bogus") {
		t.Fatal("IsTopicConfig")
	}
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	c := DefaultConfig()
	c.SegmentBytes = 1
	if _, err := Open(t.TempDir(), c, Options{}); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatal(err)
	}
}
