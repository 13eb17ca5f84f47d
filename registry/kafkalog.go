package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrBadLogTopic is wrapped by the error NewKafkaLog returns when the
// registry topic exists but cannot hold the registry safely: its
// cleanup.policy is not exactly "compact" (old schemas would be deleted by
// retention) or it has more than one partition (records would lose their
// order). Like Confluent's Schema Registry, the log refuses to start rather
// than risk losing schemas; fix the topic's config or use another topic.
var ErrBadLogTopic = errors.New("registry: unusable log topic")

// kafkaLog is the Log kept in partition 0 of a compacted Kafka topic.
type kafkaLog struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string

	appendMu  sync.Mutex // one Append at a time, so records keep call order
	closeOnce sync.Once

	fetchBytes int32 // max bytes of one Fetch of Replay (tests lower it)
}

// fetchMaxBytes bounds one Fetch response of Replay; a larger batch still
// comes whole (Kafka returns at least one batch).
const fetchMaxBytes = 4 << 20

// NewKafkaLog returns a Log kept in topic on the Kafka cluster at brokers
// (eddy's broker or any Kafka). If the topic does not exist it is created
// with one partition, the broker's default replication factor and
// cleanup.policy=compact. If it exists, it must have one partition and
// cleanup.policy "compact", or NewKafkaLog fails with an error wrapping
// [ErrBadLogTopic].
//
// opts are extra franz-go client options (TLS, SASL, a logger...), applied
// after the log's own: records go to partition 0 with acks=all through an
// idempotent producer, uncompressed. Options that change those defeat the
// log's guarantees.
//
// Replay reads partition 0 from its log start up to the high watermark
// listed when Replay is called; offset gaps that compaction leaves, at the
// end too, are skipped. Append produces synchronously and returns once the
// record is acknowledged by all in-sync replicas. If Append fails (a
// cancelled ctx, an unreachable broker), the record may or may not have
// been written.
//
// A topic has a single writer: one Log, in one registry, appends to it at a
// time. A registry learns of records others wrote only when it replays, so
// two writers would hand out the same schema ids. Append and Replay are safe
// to call from several goroutines; Appends are written in call order.
func NewKafkaLog(ctx context.Context, brokers []string, topic string, opts ...kgo.Opt) (Log, error) {
	if topic == "" {
		return nil, errors.New("registry: kafka log: empty topic name")
	}
	all := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("eddy-registry"),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0),
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("registry: kafka log: %w", err)
	}
	l := &kafkaLog{cl: cl, adm: kadm.NewClient(cl), topic: topic, fetchBytes: fetchMaxBytes}
	if err := l.ensureTopic(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return l, nil
}

// ensureTopic creates the topic, or checks the one that exists.
func (l *kafkaLog) ensureTopic(ctx context.Context) error {
	compact := "compact"
	_, err := l.adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, l.topic)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("registry: kafka log: creating topic %s: %w", l.topic, err)
	}
	md, err := l.adm.ListTopics(ctx, l.topic)
	if err == nil {
		err = md.Error()
	}
	if err != nil {
		return fmt.Errorf("registry: kafka log: topic %s: %w", l.topic, err)
	}
	if n := len(md[l.topic].Partitions); n != 1 {
		return fmt.Errorf("%w: topic %s has %d partitions, want 1", ErrBadLogTopic, l.topic, n)
	}
	cfgs, err := l.adm.DescribeTopicConfigs(ctx, l.topic)
	if err != nil {
		return fmt.Errorf("registry: kafka log: describing topic %s: %w", l.topic, err)
	}
	rc, err := cfgs.On(l.topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("registry: kafka log: describing topic %s: %w", l.topic, err)
	}
	policy := "delete" // Kafka's default when the broker does not say
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		return fmt.Errorf("%w: topic %s has cleanup.policy=%s, want compact (set it with: eddy topic alter-config %s --set cleanup.policy=compact)",
			ErrBadLogTopic, l.topic, policy, l.topic)
	}
	return nil
}

// Replay implements Log.
func (l *kafkaLog) Replay(ctx context.Context, apply func(key, value []byte) error) error {
	starts, err := l.adm.ListStartOffsets(ctx, l.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("registry: kafka log: start offset of %s: %w", l.topic, err)
	}
	ends, err := l.adm.ListEndOffsets(ctx, l.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("registry: kafka log: end offset of %s: %w", l.topic, err)
	}
	start, ok1 := starts.Lookup(l.topic, 0)
	end, ok2 := ends.Lookup(l.topic, 0)
	if !ok1 || !ok2 {
		return fmt.Errorf("registry: kafka log: topic %s has no partition 0", l.topic)
	}
	offset, hwm := start.Offset, end.Offset
	f := fetcher{l: l, decompressor: kgo.DefaultDecompressor()}
	for offset < hwm {
		rp, err := f.fetch(ctx, offset)
		if err != nil {
			return err
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset:    offset,
			Topic:     l.topic,
			Partition: 0,
		}, rp, f.decompressor, nil)
		if fp.Err != nil {
			return fmt.Errorf("registry: kafka log: reading %s at offset %d: %w", l.topic, offset, fp.Err)
		}
		for _, r := range fp.Records {
			if r.Offset >= hwm {
				return nil
			}
			if err := apply(r.Key, r.Value); err != nil {
				return err
			}
		}
		if next <= offset {
			// A broker answers with no batch only when none holds an
			// offset in [offset, hwm): compaction removed the tail.
			if len(rp.RecordBatches) == 0 {
				return nil
			}
			return fmt.Errorf("registry: kafka log: reading %s: no progress at offset %d", l.topic, offset)
		}
		offset = next
	}
	return nil
}

// fetcher reads partition 0 of a kafkaLog's topic for one Replay.
type fetcher struct {
	l            *kafkaLog
	decompressor kgo.Decompressor
	leader       int32    // partition 0's leader, once known
	topicID      [16]byte // for Fetch versions 13 and later
	known        bool     // leader and topicID are set
}

// fetch fetches partition 0 from offset on, retrying errors that go away
// (a leader change, a broker restarting) until ctx is done.
func (f *fetcher) fetch(ctx context.Context, offset int64) (*kmsg.FetchResponseTopicPartition, error) {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		rp, err := f.fetchOnce(ctx, offset)
		if err == nil {
			return rp, nil
		}
		f.known = false // ask for the leader again
		if !kerr.IsRetriable(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("registry: kafka log: reading %s at offset %d: %w", f.l.topic, offset, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("registry: kafka log: reading %s at offset %d: %w (last error: %w)", f.l.topic, offset, ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
}

// locate looks up partition 0's leader and the topic's id.
func (f *fetcher) locate(ctx context.Context) error {
	md, err := f.l.adm.Metadata(ctx, f.l.topic)
	if err != nil {
		return err
	}
	td, ok := md.Topics[f.l.topic]
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	if td.Err != nil {
		return td.Err
	}
	pd, ok := td.Partitions[0]
	if !ok {
		return kerr.UnknownTopicOrPartition
	}
	if pd.Err != nil {
		return pd.Err
	}
	f.leader, f.topicID, f.known = pd.Leader, td.ID, true
	return nil
}

// fetchOnce sends one Fetch for partition 0 to its leader.
func (f *fetcher) fetchOnce(ctx context.Context, offset int64) (*kmsg.FetchResponseTopicPartition, error) {
	if !f.known {
		if err := f.locate(ctx); err != nil {
			return nil, err
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 100
	req.MinBytes = 1
	req.MaxBytes = f.l.fetchBytes
	req.SessionEpoch = -1 // no fetch session
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = f.l.topic // versions before 13
	rt.TopicID = f.topicID
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = 0
	p.FetchOffset = offset
	p.CurrentLeaderEpoch = -1
	p.LogStartOffset = -1
	p.PartitionMaxBytes = f.l.fetchBytes
	rt.Partitions = append(rt.Partitions, p)
	req.Topics = append(req.Topics, rt)
	kresp, err := f.l.cl.Broker(int(f.leader)).Request(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("fetch response has %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	rp := &resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		return nil, err
	}
	return rp, nil
}

// Append implements Log.
func (l *kafkaLog) Append(ctx context.Context, key, value []byte) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	r := &kgo.Record{Topic: l.topic, Partition: 0, Key: key, Value: value}
	// kgo keeps retrying a buffered record past ctx's end, so wait here
	// for whichever comes first.
	done := make(chan error, 1)
	l.cl.Produce(ctx, r, func(_ *kgo.Record, err error) { done <- err })
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("%w (the record may still be written)", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("registry: kafka log: writing to %s: %w", l.topic, err)
	}
	return nil
}

// Close implements Log. It is safe to call more than once.
func (l *kafkaLog) Close() error {
	l.closeOnce.Do(l.cl.Close)
	return nil
}
