package group

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// readAll returns every record of a __consumer_offsets partition.
func (h *harness) readAll(p int32) []recordbatch.Record {
	h.t.Helper()
	l := h.logs[p]
	var out []recordbatch.Record
	for off := l.StartOffset(); off < l.EndOffset(); {
		ri, err := l.Read(off, 1<<20)
		if err != nil {
			h.t.Fatal(err)
		}
		batches, err := recordbatch.Split(ri.Records)
		if err != nil || len(batches) == 0 {
			h.t.Fatalf("split: %v (%d batches)", err, len(batches))
		}
		for _, b := range batches {
			recs, err := recordbatch.Records(b)
			if err != nil {
				h.t.Fatal(err)
			}
			out = append(out, recs...)
			hd, _ := recordbatch.ParseHeader(b)
			off = hd.LastOffset() + 1
		}
	}
	return out
}

func TestRecordsUseKafkaFormats(t *testing.T) {
	h := newHarness(t, nil)
	const g = "fmt"
	joins := h.joinAll(g, joinOpts{instance: "inst"})
	h.syncAll(g, joins)
	h.commit(g, 1, joins[0].MemberID, map[string][]int64{"t": {42}})
	recs := h.readAll(h.c.PartitionFor(g))
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	// Group metadata as Kafka encodes it: key version 2, value v3.
	var gk kmsg.GroupMetadataKey
	if err := gk.ReadFrom(recs[0].Key); err != nil || gk.Version != 2 || gk.Group != g {
		t.Fatalf("group key %+v: %v", gk, err)
	}
	var gv kmsg.GroupMetadataValue
	if err := gv.ReadFrom(recs[0].Value); err != nil {
		t.Fatal(err)
	}
	if gv.Version != 3 || gv.ProtocolType != "consumer" || gv.Generation != 1 || *gv.Protocol != "range" ||
		*gv.Leader != joins[0].MemberID || len(gv.Members) != 1 || *gv.Members[0].InstanceID != "inst" ||
		string(gv.Members[0].Assignment) != "assigned-"+joins[0].MemberID || gv.Members[0].SessionTimeoutMillis != 10000 {
		t.Fatalf("group value %+v", gv)
	}
	// Offset commit: key version 1, value v3.
	var ok kmsg.OffsetCommitKey
	if err := ok.ReadFrom(recs[1].Key); err != nil || ok.Version != 1 || ok.Group != g || ok.Topic != "t" || ok.Partition != 0 {
		t.Fatalf("offset key %+v: %v", ok, err)
	}
	var ov kmsg.OffsetCommitValue
	if err := ov.ReadFrom(recs[1].Value); err != nil || ov.Version != 3 || ov.Offset != 42 || ov.LeaderEpoch != 7 || ov.Metadata != "md-t" {
		t.Fatalf("offset value %+v: %v", ov, err)
	}
}

func TestRestartReplaysGroupsAndOffsets(t *testing.T) {
	h := newHarness(t, nil)
	const g = "durable"
	o := joinOpts{session: 30 * time.Second}
	joins := h.joinAll(g, o, o)
	assigned := h.syncAll(g, joins)
	m0 := joins[0].MemberID
	h.commit(g, 1, m0, map[string][]int64{"t": {100, 200}})
	h.commit(g, 1, m0, map[string][]int64{"t": {101}}) // overwrites partition 0
	h.commit("standalone", -1, "", map[string][]int64{"u": {7}})
	before := h.c.Committed()

	h.restart()
	after := h.c.Committed()
	if len(after) != len(before) || len(after) != 3 {
		t.Fatalf("committed before %v after %v", before, after)
	}
	for i := range after {
		if after[i] != before[i] {
			t.Fatalf("committed before %v after %v", before, after)
		}
	}
	if after[0].Offset != 101 {
		t.Fatalf("partition 0 at %d", after[0].Offset)
	}
	// The group comes back Stable with its generation, members and
	// assignments; members carry on heartbeating.
	d := h.describe(g)
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 2 {
		t.Fatalf("describe after restart: %+v", d)
	}
	for _, m := range d.Members {
		if string(m.MemberAssignment) != string(assigned[m.MemberID]) {
			t.Fatalf("member %s assignment %q", m.MemberID, m.MemberAssignment)
		}
	}
	for _, j := range joins {
		if code := h.heartbeat(g, j.MemberID, 1, ""); code != 0 {
			t.Fatalf("heartbeat after restart: %v", codeErr(code))
		}
	}
	// The next rebalance continues the generation count.
	// The leader's rejoin starts the rebalance, the follower follows.
	var re []joinOpts
	for _, j := range joins {
		o := joinOpts{memberID: j.MemberID, session: o.session}
		if j.LeaderID == j.MemberID {
			re = append([]joinOpts{o}, re...)
		} else {
			re = append(re, o)
		}
	}
	for _, j := range h.joinAfterRebalance(g, re[0], re[1:]...) {
		if j.Generation != 2 {
			t.Fatalf("generation %d after restart", j.Generation)
		}
	}
}

func TestRestartExpiresMembersThatDoNotReturn(t *testing.T) {
	h := newHarness(t, nil)
	joins := h.joinAll("g", joinOpts{session: 200 * time.Millisecond})
	h.syncAll("g", joins)
	h.restart()
	if d := h.describe("g"); d.State != "Stable" {
		t.Fatalf("state %s", d.State)
	}
	eventually(t, "member expiry after restart", func() bool { return h.describe("g").State == "Empty" })
}

func TestReplaySkipsBadRecords(t *testing.T) {
	h := newHarness(t, nil)
	h.commit("good", -1, "", map[string][]int64{"t": {5}})
	p := h.c.PartitionFor("good")
	bad := []recordbatch.Record{
		{Key: []byte{0}},           // short key
		{Key: []byte{0, 9, 1, 2}},  // unknown key version
		{Key: []byte{0, 1, 0, 50}}, // truncated offset key
		{Key: offsetRecord("bad", topicPartition{"t", 0}, nil).Key, Value: []byte{0, 3, 1}}, // truncated value
		{Key: groupRecord("bad", nil).Key, Value: []byte{0, 99, 0, 0}},                      // unknown value version
		offsetRecord("good", topicPartition{"t", 1}, &offsetEntry{offset: 6, leaderEpoch: -1, expireTime: -1}),
	}
	if err := h.c.append(p, bad); err != nil {
		t.Fatal(err)
	}
	h.restart()
	got := h.fetchAll("good")
	if len(got["t"]) != 2 || got["t"][0] != 5 || got["t"][1] != 6 {
		t.Fatalf("after replay: %v", got)
	}
	if d := h.describe("bad"); d.State != "Dead" {
		t.Fatalf("bad group state %s", d.State)
	}
}

func TestAppendFailureIsNotAcknowledged(t *testing.T) {
	h := newHarness(t, nil)
	h.commit("g", -1, "", map[string][]int64{"t": {1}})
	p := h.c.PartitionFor("g")
	if err := h.logs[p].Close(); err != nil {
		t.Fatal(err)
	}
	codes := h.commit("g", -1, "", map[string][]int64{"t": {2}})
	if codes[0] == 0 {
		t.Fatal("commit acknowledged although the append failed")
	}
	if got := h.c.Committed(); len(got) != 1 || got[0].Offset != 1 {
		t.Fatalf("committed %v", got)
	}
}

func errorsIsCorrupt(err error) bool { return errors.Is(err, kerr.CorruptMessage) }

// fuzzCoordinator is enough of a Coordinator to build groups, without logs.
func fuzzCoordinator() *Coordinator {
	return &Coordinator{
		cfg: Config{MinSessionTimeout: time.Millisecond, MaxSessionTimeout: time.Minute, Logs: make([]*storage.Log, 1)},
		log: slog.New(slog.DiscardHandler),
		now: time.Now,
	}
}

// FuzzDecodeRecord feeds arbitrary keys and values (nil when tombstone)
// through the replay decoder and loader: bad input must be an error wrapping
// CORRUPT_MESSAGE, never a panic.
func FuzzDecodeRecord(f *testing.F) {
	e := offsetEntry{offset: 5, leaderEpoch: 2, metadata: "m", commitTime: 1, expireTime: -1}
	or := offsetRecord("g", topicPartition{"t", 1}, &e)
	f.Add(or.Key, or.Value, false)
	g := &group{name: "g", members: map[string]*member{}, static: map[string]string{}, generation: 3, protocolType: "consumer", protocol: "range"}
	inst := "i"
	g.add(&member{id: "m1", instanceID: &inst, sessionTimeout: time.Second, rebalanceTimeout: time.Second,
		protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1}}}, assignment: []byte{2}})
	gr := groupRecord("g", g.metadataValue())
	f.Add(gr.Key, gr.Value, false)
	f.Add(gr.Key, []byte{}, true)
	f.Add([]byte{0, 9}, []byte{1}, false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		}
		r, err := decodeRecord(key, value)
		if err != nil {
			if !errorsIsCorrupt(err) {
				t.Fatalf("error does not wrap CORRUPT_MESSAGE: %v", err)
			}
			return
		}
		l := newLoader()
		l.apply(r, 0)
		fc := fuzzCoordinator()
		for _, g := range fc.build(l) {
			_ = g.metadataValue().AppendTo(nil)
		}
	})
}

func TestReplayHonoursTransactionMarkers(t *testing.T) {
	h := newHarness(t, nil)
	p := h.c.PartitionFor("txn")
	offset := func(o int64) recordbatch.Record {
		return offsetRecord("txn", topicPartition{"t", 0}, &offsetEntry{offset: o, leaderEpoch: -1, expireTime: -1})
	}
	marker := func(commit bool) recordbatch.Record {
		typ := byte(0)
		if commit {
			typ = 1
		}
		return recordbatch.Record{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}}
	}
	appendBatch := func(pid int64, seq int32, control bool, recs ...recordbatch.Record) {
		t.Helper()
		for i := range recs {
			recs[i].Offset = int64(i)
		}
		opts := recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: 0, BaseSequence: seq, Transactional: true, Control: control}
		if control {
			opts.BaseSequence = -1
		}
		b := recordbatch.Build(opts, recs)
		var err error
		if control {
			_, err = h.logs[p].AppendControl(b)
		} else {
			_, err = h.logs[p].Append(b)
		}
		if err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	appendBatch(10, 0, false, offset(5)) // committed below
	appendBatch(11, 0, false, offset(9)) // aborted below
	appendBatch(10, -1, true, marker(true))
	appendBatch(11, -1, true, marker(false))
	appendBatch(12, 0, false, offset(99)) // still open at restart
	h.restart()
	if got := h.fetchAll("txn"); len(got["t"]) != 1 || got["t"][0] != 5 {
		t.Fatalf("after replay: %v", got)
	}
}
