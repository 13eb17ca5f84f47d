package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// defaultTarget names the broker every suite drives. Switching the whole
// suite to franz-go's kfake is this one line (or EDDY_INTEROP_TARGET=kfake).
const defaultTarget = "eddy"

// cluster is one running broker that the suite talks to.
type cluster interface {
	// Addr is the bootstrap host:port.
	Addr() string
	// Restart stops the broker and starts it again on the same data. The
	// address may change; clients made before Restart must not be reused.
	Restart(t *testing.T)
}

// targets maps a target name to the function that starts it; the eddy
// target registers itself from eddy_target_test.go.
var targets = map[string]func(t *testing.T) cluster{
	"kfake": func(t *testing.T) cluster { return startKfake(t) },
}

// startCluster starts the selected target for one test; it stops at the
// end of the test.
func startCluster(t *testing.T) cluster {
	t.Helper()
	name := os.Getenv("EDDY_INTEROP_TARGET")
	if name == "" {
		name = defaultTarget
	}
	start, ok := targets[name]
	if !ok {
		t.Fatalf("unknown interop target %q (built with -tags kfakeonly?)", name)
	}
	return start(t)
}

// kfakeCluster is a single-broker kfake cluster persisting to a temp dir.
type kfakeCluster struct {
	dir string
	c   *kfake.Cluster
}

func startKfake(t *testing.T) *kfakeCluster {
	t.Helper()
	k := &kfakeCluster{dir: t.TempDir()}
	k.start(t)
	t.Cleanup(func() { k.c.Close() })
	return k
}

func (k *kfakeCluster) start(t *testing.T) {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(1),
		kfake.DataDir(k.dir),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	k.c = c
}

func (k *kfakeCluster) Addr() string { return k.c.ListenAddrs()[0] }

func (k *kfakeCluster) Restart(t *testing.T) {
	t.Helper()
	k.c.Close()
	k.start(t)
}

// ---------------------------------------------------------------------------
// Required external clients.

// requireAvailable skips the test when err says a client is missing, or
// fails it when EDDY_INTEROP_REQUIRE=1 (as CI sets it).
func requireAvailable(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("EDDY_INTEROP_REQUIRE") == "1" {
		t.Fatalf("%s is not available and EDDY_INTEROP_REQUIRE=1: %v", what, err)
	}
	t.Skipf("%s is not available (set EDDY_INTEROP_REQUIRE=1 to fail instead): %v", what, err)
}

// kcatPath returns the kcat binary or skips/fails the test.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		p, err = exec.LookPath("kafkacat")
	}
	requireAvailable(t, "kcat", err)
	return p
}

// pythonWith returns the python interpreter (EDDY_PYTHON, default
// /usr/bin/python3) after checking it can import module.
func pythonWith(t *testing.T, module string) string {
	t.Helper()
	py := os.Getenv("EDDY_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	out, err := exec.Command(py, "-c", "import "+module).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s -c 'import %s': %v: %s", py, module, err, bytes.TrimSpace(out))
	}
	requireAvailable(t, "python module "+module, err)
	return py
}

// runCmd runs a command with a deadline and returns its stdout; a non-zero
// exit fails the test with stderr.
func runCmd(t *testing.T, timeout time.Duration, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		t.Fatalf("%s %s: %v after %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name),
			strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond),
			tail(stdout.Bytes()), tail(stderr.Bytes()))
	}
	return stdout.Bytes()
}

func tail(b []byte) []byte {
	const limit = 8 << 10
	if len(b) > limit {
		return append([]byte("...\n"), b[len(b)-limit:]...)
	}
	return b
}

// ---------------------------------------------------------------------------
// franz-go helpers.

var topicSeq atomic.Int64

var nonTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// topicName returns a topic name unique within the run, derived from the test.
func topicName(t *testing.T) string {
	n := nonTopicChars.ReplaceAllString(t.Name(), "-")
	if len(n) > 180 {
		n = n[:180]
	}
	return fmt.Sprintf("%s-%d", strings.ToLower(n), topicSeq.Add(1))
}

// newClient returns a franz-go client closed at the end of the test.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic with the given partitions and waits until
// metadata shows every partition with a leader.
func createTopic(t *testing.T, addr string, partitions int32, configs map[string]*string) string {
	t.Helper()
	topic := topicName(t)
	adm := kadm.NewClient(newClient(t, addr))
	ctx := testCtx(t, 30*time.Second)
	resp, err := adm.CreateTopics(ctx, partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
	if r := resp[topic]; r.Err != nil {
		t.Fatalf("CreateTopics %s: %v (%s)", topic, r.Err, r.ErrMessage)
	}
	waitFor(t, 15*time.Second, "topic "+topic+" to have leaders", func() error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		td, ok := md.Topics[topic]
		if !ok || td.Err != nil || int32(len(td.Partitions)) != partitions {
			return fmt.Errorf("metadata: %+v", td)
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return fmt.Errorf("partition %d: leader %d err %v", p.Partition, p.Leader, p.Err)
			}
		}
		return nil
	})
	return topic
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rec is one record as a client saw it.
type rec struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

func (r rec) String() string {
	return fmt.Sprintf("%d@%d %q=%q", r.Partition, r.Offset, r.Key, r.Value)
}

// testRecords makes n keyed records with compressible values.
func testRecords(prefix string, n int) []rec {
	out := make([]rec, n)
	for i := range out {
		out[i] = rec{
			Partition: -1, Offset: -1,
			Key:   fmt.Sprintf("%s-key-%d", prefix, i%17),
			Value: fmt.Sprintf("%s-value-%06d-%s", prefix, i, strings.Repeat("eddy", 16)),
		}
	}
	return out
}

// produceFranz produces recs with a franz-go client configured by opts and
// returns them with the partition and offset of each acknowledgement.
func produceFranz(t *testing.T, addr, topic string, recs []rec, opts ...kgo.Opt) []rec {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{kgo.DefaultProduceTopic(topic)}, opts...)...)
	ctx := testCtx(t, 60*time.Second)
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{Key: []byte(r.Key), Value: []byte(r.Value)}
	}
	if err := cl.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	out := make([]rec, len(recs))
	for i, kr := range krs {
		out[i] = rec{Partition: kr.Partition, Offset: kr.Offset, Key: string(kr.Key), Value: string(kr.Value)}
	}
	return out
}

// consumeAll reads the topic from the start with a franz-go direct consumer
// until it has want records (failing after a deadline) and returns them.
func consumeAll(t *testing.T, addr, topic string, want int) []rec {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	ctx := testCtx(t, 60*time.Second)
	var out []rec
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), want)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, rec{Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)})
		})
	}
	return out
}

// sortRecs orders records by partition and offset.
func sortRecs(rs []rec) []rec {
	rs = append([]rec(nil), rs...)
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Partition != rs[j].Partition {
			return rs[i].Partition < rs[j].Partition
		}
		return rs[i].Offset < rs[j].Offset
	})
	return rs
}

// checkSameRecords fails unless got and want hold exactly the same records
// (partition, offset, key, value), in any order.
func checkSameRecords(t *testing.T, got, want []rec) {
	t.Helper()
	g, w := sortRecs(got), sortRecs(want)
	if len(g) != len(w) {
		t.Fatalf("got %d records, want %d", len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("record %d: got %v, want %v", i, g[i], w[i])
		}
	}
}

// checkSameValues fails unless got holds every value of want at least once
// and nothing else (duplicates allowed when dupsOK).
func checkSameValues(t *testing.T, got []rec, want []rec, dupsOK bool) {
	t.Helper()
	wantSet := make(map[string]bool, len(want))
	for _, r := range want {
		wantSet[r.Key+"\x00"+r.Value] = true
	}
	seen := make(map[string]int, len(got))
	for _, r := range got {
		k := r.Key + "\x00" + r.Value
		if !wantSet[k] {
			t.Fatalf("consumed unexpected record %v", r)
		}
		seen[k]++
		if seen[k] > 1 && !dupsOK {
			t.Fatalf("record consumed twice: %v", r)
		}
	}
	if len(seen) != len(wantSet) {
		var missing []string
		for k := range wantSet {
			if seen[k] == 0 && len(missing) < 5 {
				missing = append(missing, strings.ReplaceAll(k, "\x00", "="))
			}
		}
		t.Fatalf("consumed %d distinct records, want %d; missing e.g. %q", len(seen), len(wantSet), missing)
	}
}

// checkOffsetsContiguous fails unless each partition's offsets in rs are
// exactly 0..n-1 (what a fresh topic must hand out).
func checkOffsetsContiguous(t *testing.T, rs []rec) {
	t.Helper()
	next := map[int32]int64{}
	for _, r := range sortRecs(rs) {
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d where %d was expected (%v)", r.Partition, r.Offset, next[r.Partition], r)
		}
		next[r.Partition]++
	}
}

// endOffsets lists the end offset of every partition of topic.
func endOffsets(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	lo, err := adm.ListEndOffsets(testCtx(t, 15*time.Second), topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("ListEndOffsets %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out
}

// committedOffsets fetches what group has committed for topic.
func committedOffsets(t *testing.T, addr, group, topic string) (map[int32]int64, error) {
	adm := kadm.NewClient(newClient(t, addr))
	resps, err := adm.FetchOffsets(testCtx(t, 15*time.Second), group)
	if err != nil {
		return nil, err
	}
	if err := resps.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, r := range resps[topic] {
		out[p] = r.At
	}
	return out, nil
}

// waitCommittedAtEnd waits until group has committed the end offset of
// every non-empty partition of topic.
func waitCommittedAtEnd(t *testing.T, addr, group, topic string) {
	t.Helper()
	end := endOffsets(t, addr, topic)
	waitFor(t, 30*time.Second, "group "+group+" to commit the end offsets", func() error {
		got, err := committedOffsets(t, addr, group, topic)
		if err != nil {
			return err
		}
		for p, e := range end {
			if e > 0 && got[p] != e {
				return fmt.Errorf("partition %d committed %d, end %d (all committed: %v)", p, got[p], e, got)
			}
		}
		return nil
	})
}

// storedCodecs fetches every partition of topic raw, without decoding
// records, and returns the compression codec of each stored batch — so a
// test can tell the broker kept the producer's compression as received.
func storedCodecs(t *testing.T, addr, topic string, partitions int32) []int8 {
	t.Helper()
	cl := newClient(t, addr)
	ctx := testCtx(t, 30*time.Second)
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	var codecs []int8
	for p := int32(0); p < partitions; p++ {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MaxBytes = 64 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rt.TopicID = md.Topics[topic].ID // Fetch v13+ names topics by ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rp.PartitionMaxBytes = 64 << 20
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := cl.Request(ctx, req)
		if err != nil {
			t.Fatalf("raw fetch: %v", err)
		}
		resp := kresp.(*kmsg.FetchResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("raw fetch: unexpected response shape %+v", resp)
		}
		rp2 := resp.Topics[0].Partitions[0]
		if rp2.ErrorCode != 0 {
			t.Fatalf("raw fetch partition %d: error code %d", p, rp2.ErrorCode)
		}
		b := rp2.RecordBatches
		for len(b) >= 12 {
			n := int(int32(binary.BigEndian.Uint32(b[8:12])))
			if n < 0 || 12+n > len(b) {
				break // a partial trailing batch is allowed in fetch responses
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b[:12+n]); err != nil {
				t.Fatalf("raw fetch: bad batch: %v", err)
			}
			codecs = append(codecs, int8(rb.Attributes&0x07))
			b = b[12+n:]
		}
	}
	return codecs
}

// lockedBuffer is an io.Writer safe for concurrent use (broker logs).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(tail(l.b.Bytes()))
}

// brokerSupports reports whether the broker advertises API key in ApiVersions.
func brokerSupports(t *testing.T, addr string, key int16) bool {
	t.Helper()
	kresp, err := newClient(t, addr).Request(testCtx(t, 15*time.Second), kmsg.NewPtrApiVersionsRequest())
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	for _, k := range kresp.(*kmsg.ApiVersionsResponse).ApiKeys {
		if k.ApiKey == key {
			return true
		}
	}
	return false
}

// requireIdempotence fails a test of the idempotent producer when the
// broker does not advertise InitProducerId (key 22): every target of this
// suite (eddy and kfake) implements it.
func requireIdempotence(t *testing.T, addr string) {
	t.Helper()
	if !brokerSupports(t, addr, 22) {
		t.Fatal("broker does not advertise InitProducerId (22): idempotent producers cannot be tested")
	}
}
