package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDataDirLockAndIdentity(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := startWith(t, cfg)
	second, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second broker on the same dir: %v", err)
	}
	id := s.ClusterID()
	s.Close()

	other := cfg
	other.ClusterID = "some-other-cluster"
	s3, err := New(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Start(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("mismatched cluster id: %v", err)
	}
	s4 := startWith(t, cfg)
	if s4.ClusterID() != id {
		t.Fatalf("cluster id changed: %q → %q", id, s4.ClusterID())
	}
	if err := s4.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
}

func TestOrphanPartitionDirsRemoved(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := startWith(t, cfg)
	s.Close()
	orphan := filepath.Join(dir, "gone-0")
	if err := os.MkdirAll(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "not-a-partition")
	if err := os.MkdirAll(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	startWith(t, cfg)
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("orphan partition dir: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("unrelated dir removed: %v", err)
	}
}

func TestAcksZeroFailureClosesConnection(t *testing.T) {
	s := startServer(t)
	c := dialRaw(t, s)
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	req.Acks = 0
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: offsetsTopic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: make([]byte, 80)}}}}
	c.send(req, 1)
	c.expectClosed()
}

func TestMaintenanceLoopAppliesRetention(t *testing.T) {
	s := startServer(t, func(c *Config) { c.MaintenanceInterval = 10 * time.Millisecond })
	cl := newClient(t, s)
	ctx := testCtx(t)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{
		"retention.ms": kmsg.StringPtr("1000"),
		"segment.ms":   kmsg.StringPtr("1"),
	}, "expiring"); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "expiring", Value: []byte("x"), Timestamp: old}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	l := s.topics.get("expiring").partition(0).log
	eventually(t, "retention to delete the old records", func() bool { return l.StartOffset() == 5 })
}

func TestCloseWithoutStart(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"empty data dir":     func(c *Config) { c.DataDir = "" },
		"bad listen":         func(c *Config) { c.Listen = "nope" },
		"advertise port 0":   func(c *Config) { c.Advertise = "host:0" },
		"partitions":         func(c *Config) { c.DefaultPartitions = 0 },
		"max request":        func(c *Config) { c.MaxRequestBytes = 10 },
		"offsets partitions": func(c *Config) { c.OffsetsTopicPartitions = -1 },
		"node id":            func(c *Config) { c.NodeID = -1 },
		"topic default":      func(c *Config) { c.TopicDefaults = map[string]string{"retention.ms": "x"} },
		"unknown default":    func(c *Config) { c.TopicDefaults = map[string]string{"no.such": "1"} },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
}
