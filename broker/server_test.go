package broker

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// produceN produces n records to topic and fails the test on any error.
func produceN(t testing.TB, cl *kgo.Client, topic string, n int) {
	t.Helper()
	ctx := testCtx(t)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("value-%d", i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeN consumes n records of topic from the start.
func consumeN(t testing.TB, s *Server, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, s, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := testCtx(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func TestProduceConsumeCodecs(t *testing.T) {
	s := startServer(t)
	codecs := map[string]kgo.CompressionCodec{
		"none":   kgo.NoCompression(),
		"gzip":   kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(),
		"lz4":    kgo.Lz4Compression(),
		"zstd":   kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			cl := newClient(t, s, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			produceN(t, cl, topic, 500)
			recs := consumeN(t, s, topic, 500)
			if len(recs) != 500 {
				t.Fatalf("got %d records", len(recs))
			}
			for i, r := range recs {
				if r.Offset != int64(i) || string(r.Value) != fmt.Sprintf("value-%d", i) {
					t.Fatalf("record %d: offset %d value %q", i, r.Offset, r.Value)
				}
			}
		})
	}
}

func TestAcks(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"acks0", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
		{"acks1", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"acksall", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "acks-" + tc.name
			cl := newClient(t, s, tc.opts...)
			produceN(t, cl, topic, 300)
			// With acks=0 there is no acknowledgement: wait for the data.
			eventually(t, "records appended", func() bool {
				tp := s.topics.get(topic)
				return tp != nil && tp.partition(0).log.EndOffset() == 300
			})
			recs := consumeN(t, s, topic, 300)
			for i, r := range recs {
				if string(r.Key) != strconv.Itoa(i) {
					t.Fatalf("record %d has key %q", i, r.Key)
				}
			}
		})
	}
}

func TestDataPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := startWith(t, cfg)
	cl := newClient(t, s)
	adm := newAdmin(t, s)
	ctx := testCtx(t)
	if _, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kmsg.StringPtr("86400000")}, "persist"); err != nil {
		t.Fatal(err)
	}
	produceN(t, cl, "persist", 100)
	td, err := adm.ListTopics(ctx, "persist")
	if err != nil {
		t.Fatal(err)
	}
	id := td["persist"].ID
	cl.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s2 := startWith(t, cfg)
	adm2 := newAdmin(t, s2)
	td2, err := adm2.ListTopics(ctx, "persist")
	if err != nil {
		t.Fatal(err)
	}
	if got := td2["persist"]; len(got.Partitions) != 3 || got.ID != id {
		t.Fatalf("after restart: %d partitions id %v, want 3 and %v", len(got.Partitions), got.ID, id)
	}
	rc, err := adm2.DescribeTopicConfigs(ctx, "persist")
	if err != nil {
		t.Fatal(err)
	}
	cfgVal, err := rc.On("persist", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cfgVal.Configs {
		if c.Key == "retention.ms" {
			found = true
			if c.MaybeValue() != "86400000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Fatalf("retention.ms = %q source %v", c.MaybeValue(), c.Source)
			}
		}
	}
	if !found {
		t.Fatal("retention.ms not described")
	}
	recs := consumeN(t, s2, "persist", 100)
	seen := map[string]bool{}
	for _, r := range recs {
		seen[string(r.Key)] = true
	}
	if len(seen) != 100 {
		t.Fatalf("got %d distinct keys after restart", len(seen))
	}
}

func TestListOffsetsByTime(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s)
	ctx := testCtx(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := range 10 {
		r := &kgo.Record{Topic: "times", Value: []byte("x"), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	check := func(name string, lo kadm.ListedOffsets, want int64) {
		t.Helper()
		o, ok := lo.Lookup("times", 0)
		if !ok || o.Err != nil {
			t.Fatalf("%s: %v %v", name, ok, o.Err)
		}
		if o.Offset != want {
			t.Fatalf("%s: offset %d, want %d", name, o.Offset, want)
		}
	}
	lo, err := adm.ListStartOffsets(ctx, "times")
	if err != nil {
		t.Fatal(err)
	}
	check("start", lo, 0)
	if lo, err = adm.ListEndOffsets(ctx, "times"); err != nil {
		t.Fatal(err)
	}
	check("end", lo, 10)
	if lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(3500*time.Millisecond).UnixMilli(), "times"); err != nil {
		t.Fatal(err)
	}
	check("after 3.5s", lo, 4)
	if lo, err = adm.ListOffsetsAfterMilli(ctx, base.UnixMilli(), "times"); err != nil {
		t.Fatal(err)
	}
	check("at base", lo, 0)
	// -3: the largest timestamp and its offset (KIP-734), not the last
	// record's.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "times", Value: []byte("late"), Timestamp: base}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if lo, err = adm.ListMaxTimestampOffsets(ctx, "times"); err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("times", 0); o.Offset != 9 || o.Timestamp != base.Add(9*time.Second).UnixMilli() {
		t.Fatalf("max timestamp: offset %d timestamp %d", o.Offset, o.Timestamp)
	}
	// After the last timestamp: Kafka answers -1, which kadm maps to the end.
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "times"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = base.Add(time.Hour).UnixMilli()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.Offset != -1 {
		t.Fatalf("future timestamp: code %d offset %d", p.ErrorCode, p.Offset)
	}
}

func TestTopicAdmin(t *testing.T) {
	s := startServer(t)
	adm := newAdmin(t, s)
	ctx := testCtx(t)

	r, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr("compact")}, "admin-a")
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	if r.ID == ([16]byte{}) {
		t.Fatal("no topic id")
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "admin-a"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "admin-rf3"); !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3: %v", err)
	}
	for _, bad := range []string{"bad name", ".", "..", strings.Repeat("x", 250), "a/b"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, bad); !errors.Is(err, kerr.InvalidTopicException) {
			t.Fatalf("create %q: %v", bad, err)
		}
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"no.such.config": kmsg.StringPtr("1")}, "admin-cfg"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 0, 1, nil, "admin-zero"); !errors.Is(err, kerr.InvalidPartitions) {
		t.Fatalf("0 partitions: %v", err)
	}
	// validate only creates nothing.
	if _, err := adm.ValidateCreateTopics(ctx, 1, 1, nil, "admin-v"); err != nil {
		t.Fatal(err)
	}
	if s.topics.get("admin-v") != nil {
		t.Fatal("validate-only created the topic")
	}
	// -1 partitions takes the default.
	if r, err := adm.CreateTopic(ctx, -1, -1, nil, "admin-default"); err != nil || r.NumPartitions != 1 {
		t.Fatalf("default partitions: %v %+v", err, r)
	}

	if _, err := adm.CreatePartitions(ctx, 2, "admin-a"); err != nil {
		t.Fatalf("create partitions: %v", err)
	}
	if n := len(s.topics.get("admin-a").partitions()); n != 4 {
		t.Fatalf("partitions after CreatePartitions: %d", n)
	}
	up, err := adm.UpdatePartitions(ctx, 3, "admin-a")
	if err != nil {
		t.Fatal(err)
	}
	if r := up["admin-a"]; !errors.Is(r.Err, kerr.InvalidPartitions) {
		t.Fatalf("shrinking partitions: %v", r.Err)
	}

	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !td.Has("admin-a") || !td.Has("admin-default") {
		t.Fatalf("list: %v", td.Names())
	}
	dir := s.topics.partitionDir("admin-a", 3)
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.DeleteTopics(ctx, "admin-a"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("partition dir after delete: %v", err)
	}
	if _, err := adm.DeleteTopic(ctx, "admin-a"); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete missing: %v", err)
	}
	// Delete by topic id (DeleteTopics v6).
	id := s.topics.get("admin-default").id
	cl := newClient(t, s)
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Topics = []kmsg.DeleteTopicsRequestTopic{{TopicID: id}}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Topics[0].ErrorCode; c != 0 || s.topics.get("admin-default") != nil {
		t.Fatalf("delete by id: code %d", c)
	}
	if _, err := adm.DeleteTopic(ctx, offsetsTopic); err == nil {
		t.Fatal("deleted the offsets topic")
	}
}

func TestIncrementalAlterConfigs(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.TopicDefaults = map[string]string{"retention.bytes": "1000000"}
	s := startWith(t, cfg)
	adm := newAdmin(t, s)
	ctx := testCtx(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "alter"); err != nil {
		t.Fatal(err)
	}
	resps, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("1234")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")},
	}, "alter")
	if err != nil || resps[0].Err != nil {
		t.Fatalf("alter: %v %v", err, resps)
	}
	if got := s.topics.get("alter").partition(0).log.Config(); got.RetentionMs != 1234 || got.CleanupPolicy != "compact,delete" {
		t.Fatalf("log config not applied: %+v", got)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}}, "alter"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, "alter"); err != nil {
		t.Fatal(err)
	}
	resps, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kmsg.StringPtr("soon")}}, "alter")
	if err == nil && resps[0].Err == nil {
		t.Fatal("invalid value accepted")
	}
	s.Close()

	s2 := startWith(t, cfg)
	adm2 := newAdmin(t, s2)
	rc, err := adm2.DescribeTopicConfigs(ctx, "alter")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc[0].Configs {
		got[c.Key] = c
	}
	if c := got["cleanup.policy"]; c.MaybeValue() != "compact" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("cleanup.policy after restart: %q %v", c.MaybeValue(), c.Source)
	}
	if c := got["retention.ms"]; c.MaybeValue() != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms after delete: %q %v", c.MaybeValue(), c.Source)
	}
	if c := got["retention.bytes"]; c.MaybeValue() != "1000000" || c.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("retention.bytes from broker default: %q %v", c.MaybeValue(), c.Source)
	}
	if len(got["retention.bytes"].Synonyms) < 2 {
		t.Fatalf("synonyms: %+v", got["retention.bytes"].Synonyms)
	}
	bc, err := adm2.DescribeBrokerConfigs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	bgot := map[string]string{}
	for _, c := range bc[0].Configs {
		bgot[c.Key] = c.MaybeValue()
	}
	if bgot["log.retention.bytes"] != "1000000" || bgot["num.partitions"] != "1" {
		t.Fatalf("broker configs: %v", bgot)
	}
	// Legacy AlterConfigs replaces every override.
	if _, err := adm2.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: kmsg.StringPtr("60000")}}, "alter"); err != nil {
		t.Fatal(err)
	}
	if o := s2.topics.overrides(s2.topics.get("alter")); len(o) != 1 || o["segment.ms"] != "60000" {
		t.Fatalf("overrides after AlterConfigs: %v", o)
	}
}

func TestDeleteRecordsAndDescribeCluster(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s)
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	produceN(t, cl, "dr", 50)
	resp, err := adm.DeleteRecords(ctx, kadm.Offsets{"dr": {0: {At: 20}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := resp.Lookup("dr", 0); r.Err != nil || r.LowWatermark != 20 {
		t.Fatalf("delete records: %+v", r)
	}
	lo, err := adm.ListStartOffsets(ctx, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("dr", 0); o.Offset != 20 {
		t.Fatalf("start offset %d", o.Offset)
	}
	if resp, _ := adm.DeleteRecords(ctx, kadm.Offsets{"dr": {0: {At: 51}}}); resp != nil {
		if r, _ := resp.Lookup("dr", 0); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
			t.Fatalf("beyond end: %v", r.Err)
		}
	}
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Cluster != s.ClusterID() || len(meta.Brokers) != 1 || meta.Controller != 0 {
		t.Fatalf("metadata: %+v", meta)
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dcr, err := dc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if dcr.ClusterID != s.ClusterID() || len(dcr.Brokers) != 1 || dcr.Brokers[0].Port == 0 {
		t.Fatalf("describe cluster: %+v", dcr)
	}
}

func TestMetadataTopicNames(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s)
	ctx := testCtx(t)
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	for _, name := range []string{"ok-topic", "bad topic", "..", strings.Repeat("y", 250)} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, mt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{0, kerr.InvalidTopicException.Code, kerr.InvalidTopicException.Code, kerr.InvalidTopicException.Code}
	for i, mt := range resp.Topics {
		if mt.ErrorCode != want[i] {
			t.Fatalf("topic %q: code %d want %d", *mt.Topic, mt.ErrorCode, want[i])
		}
	}
	// Without auto-creation an unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
	req.AllowAutoTopicCreation = false
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("never-created")}}
	if resp, err = req.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if c := resp.Topics[0].ErrorCode; c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: code %d", c)
	}
	// All topics include the internal offsets topic.
	req.Topics = nil
	if resp, err = req.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	internal := false
	for _, mt := range resp.Topics {
		if *mt.Topic == offsetsTopic {
			internal = mt.IsInternal
		}
	}
	if !internal {
		t.Fatal("__consumer_offsets missing or not internal")
	}
}

func TestFetchLongPollWakesOnAppend(t *testing.T) {
	s := startServer(t)
	cl := newClient(t, s)
	ctx := testCtx(t)
	produceN(t, cl, "poll", 1)
	tp := s.topics.get("poll")
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 20000
	req.MinBytes = 1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "poll", tp.id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = 1
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	type result struct {
		resp *kmsg.FetchResponse
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		resp, err := req.RequestWith(ctx, cl)
		done <- result{resp, err, time.Since(start)}
	}()
	eventually(t, "fetch waiting", func() bool { return tp.partition(0).nwait.Load() == 1 })
	produceN(t, cl, "poll", 1)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	p := r.resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || len(p.RecordBatches) == 0 || p.HighWatermark != 2 {
		t.Fatalf("fetch: code %d, %d bytes, hw %d", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	if r.took > 10*time.Second {
		t.Fatalf("fetch was not woken by the append: took %v", r.took)
	}
	if n := tp.partition(0).nwait.Load(); n != 0 {
		t.Fatalf("%d waiters left registered", n)
	}
}

func TestConsumerGroupCommitResumeAndLag(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	s := startWith(t, cfg)
	ctx := testCtx(t)
	adm := newAdmin(t, s)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "grp"); err != nil {
		t.Fatal(err)
	}
	produceN(t, newClient(t, s), "grp", 40)
	cl := newClient(t, s, kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("grp"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 40 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d: %v", got, ctx.Err())
		}
		got += len(fs.Records())
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	produceN(t, newClient(t, s), "grp", 10)

	resp, err := http.Get("http://" + s.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lag := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, `eddy_consumer_group_lag{group="g1"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			lag += v
		}
	}
	if lag != 10 {
		t.Fatalf("total lag %v, want 10", lag)
	}
	s.Close()

	s2 := startWith(t, cfg)
	cl2 := newClient(t, s2, kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("grp"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var rest []*kgo.Record
	for len(rest) < 10 {
		fs := cl2.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("resumed %d: %v", len(rest), ctx.Err())
		}
		rest = append(rest, fs.Records()...)
	}
	for _, r := range rest {
		if k, _ := strconv.Atoi(string(r.Key)); k >= 10 {
			t.Fatalf("re-read a committed record: key %s", r.Key)
		}
	}
	if len(rest) != 10 {
		t.Fatalf("got %d records after resume", len(rest))
	}
}

// TestDeleteTopicDropsCommittedOffsets checks that deleting a topic drops
// the offsets groups committed for it, so a topic re-created under the same
// name does not inherit them.
func TestDeleteTopicDropsCommittedOffsets(t *testing.T) {
	s := startServer(t)
	ctx := testCtx(t)
	adm := newAdmin(t, s)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "gone"); err != nil {
		t.Fatal(err)
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "gone", Partition: 0, At: 7, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "g1", offs); err != nil {
		t.Fatal(err)
	}
	fetched, err := adm.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("gone", 0); !ok || o.At != 7 {
		t.Fatalf("committed offset before delete = %+v, %v; want 7", o, ok)
	}
	if _, err := adm.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "gone"); err != nil {
		t.Fatal(err)
	}
	fetched, err = adm.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("gone", 0); ok && o.At >= 0 {
		t.Fatalf("re-created topic inherited committed offset %d", o.At)
	}
}
