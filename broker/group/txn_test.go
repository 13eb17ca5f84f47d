package group

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// txnCommit describes one TxnOffsetCommit.
type txnCommit struct {
	version    int16 // 0 means 3
	group      string
	pid        int64
	epoch      int16
	generation int32
	member     string
	instance   string
	offsets    map[string][]int64 // topic → offset by partition
}

// txnCommit sends TxnOffsetCommit and returns the codes in topic, partition
// order.
func (h *harness) txnCommit(tc txnCommit) []int16 {
	h.t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version = 3
	if tc.version != 0 {
		req.Version = tc.version
	}
	req.TransactionalID = "tx"
	req.Group, req.ProducerID, req.ProducerEpoch = tc.group, tc.pid, tc.epoch
	req.Generation, req.MemberID = tc.generation, tc.member
	if tc.instance != "" {
		req.InstanceID = &tc.instance
	}
	for _, t := range sortedKeys(tc.offsets) {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = t
		for p, o := range tc.offsets[t] {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = int32(p), o, 4
			md := fmt.Sprintf("txn-%d", tc.pid)
			rp.Metadata = &md
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	// Off the wire, as the broker hands requests in.
	wire := kmsg.NewPtrTxnOffsetCommitRequest()
	wire.Version = req.Version
	if err := wire.ReadFrom(req.AppendTo(nil)); err != nil {
		h.t.Fatal(err)
	}
	var codes []int16
	for _, rt := range do[*kmsg.TxnOffsetCommitResponse](h, wire).Topics {
		for _, rp := range rt.Partitions {
			codes = append(codes, rp.ErrorCode)
		}
	}
	return codes
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// fetchedOffset is one partition of an OffsetFetch answer.
type fetchedOffset struct {
	offset int64
	code   int16
}

// fetchStable sends OffsetFetch (v7 or v8) for topic t partitions 0..n-1,
// or every partition when n < 0.
func (h *harness) fetchStable(version int16, group, topic string, n int, stable bool) map[int32]fetchedOffset {
	h.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version, req.RequireStable = version, stable
	var parts []int32
	for p := range n {
		parts = append(parts, int32(p))
	}
	out := map[int32]fetchedOffset{}
	if version >= 8 {
		rg := kmsg.OffsetFetchRequestGroup{Group: group}
		if n >= 0 {
			rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: parts}}
		}
		req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
		resp := do[*kmsg.OffsetFetchResponse](h, req)
		if g := resp.Groups[0]; g.ErrorCode != 0 {
			h.t.Fatalf("group error %v", codeErr(g.ErrorCode))
		}
		for _, rt := range resp.Groups[0].Topics {
			for _, rp := range rt.Partitions {
				if rt.Topic == topic {
					out[rp.Partition] = fetchedOffset{rp.Offset, rp.ErrorCode}
				}
			}
		}
		return out
	}
	req.Group = group
	if n >= 0 {
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: parts}}
	}
	resp := do[*kmsg.OffsetFetchResponse](h, req)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("error %v", codeErr(resp.ErrorCode))
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic == topic {
				out[rp.Partition] = fetchedOffset{rp.Offset, rp.ErrorCode}
			}
		}
	}
	return out
}

// marker appends a commit or abort control batch of producer pid to the
// group's partition, as the transaction coordinator does, and returns its
// offset.
func (h *harness) marker(group string, pid int64, epoch int16, commit bool) int64 {
	h.t.Helper()
	typ := byte(0)
	if commit {
		typ = 1
	}
	rec := recordbatch.Record{Timestamp: h.c.now().UnixMilli(), Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 0}}
	b := recordbatch.Build(recordbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1, Transactional: true, Control: true}, []recordbatch.Record{rec})
	info, err := h.logs[h.c.PartitionFor(group)].AppendControl(b)
	if err != nil {
		h.t.Fatalf("append marker: %v", err)
	}
	return info.FirstOffset
}

// endTxn writes the marker and tells the coordinator, as the broker does.
func (h *harness) endTxn(group string, pid int64, epoch int16, commit bool) {
	h.t.Helper()
	off := h.marker(group, pid, epoch, commit)
	if err := h.c.CompleteTxnAt(h.c.PartitionFor(group), pid, epoch, commit, off); err != nil {
		h.t.Fatalf("CompleteTxnAt: %v", err)
	}
}

func expectCodes(t *testing.T, what string, got []int16, want ...int16) {
	t.Helper()
	if !slicesEqual(got, want) {
		var g, w []error
		for _, c := range got {
			g = append(g, codeErr(c))
		}
		for _, c := range want {
			w = append(w, codeErr(c))
		}
		t.Fatalf("%s: codes %v, want %v", what, g, w)
	}
}

func TestTxnOffsetCommitCommitAndAbort(t *testing.T) {
	h := newHarness(t, nil)
	const g = "eos"
	if c := h.commit(g, -1, "", map[string][]int64{"t": {10, 11}}); !allZero(c) {
		t.Fatalf("plain commit: %v", c)
	}
	expectCodes(t, "txn commit", h.txnCommit(txnCommit{group: g, pid: 7, epoch: 2, generation: -1, offsets: map[string][]int64{"t": {20}}}), 0)

	// Pending: invisible without RequireStable, unstable with it.
	for _, v := range []int16{7, 8} {
		if got := h.fetchStable(v, g, "t", 2, false); got[0] != (fetchedOffset{10, 0}) || got[1] != (fetchedOffset{11, 0}) {
			t.Fatalf("v%d fetch while pending: %v", v, got)
		}
		if got := h.fetchStable(v, g, "t", 2, true); got[0] != (fetchedOffset{-1, kerr.UnstableOffsetCommit.Code}) || got[1] != (fetchedOffset{11, 0}) {
			t.Fatalf("v%d stable fetch while pending: %v", v, got)
		}
		if got := h.fetchStable(v, g, "t", -1, true); got[0].code != kerr.UnstableOffsetCommit.Code || got[1] != (fetchedOffset{11, 0}) {
			t.Fatalf("v%d stable fetch of all partitions while pending: %v", v, got)
		}
	}
	if got := h.c.Committed(); len(got) != 2 || got[0].Offset != 10 {
		t.Fatalf("Committed while pending: %v", got)
	}

	// The offsets are a transactional batch of the producer, without sequence.
	p := h.c.PartitionFor(g)
	ri, err := h.logs[p].Read(h.logs[p].EndOffset()-1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	hd, err := recordbatch.ParseHeader(ri.Records)
	if err != nil {
		t.Fatal(err)
	}
	if !hd.Transactional() || hd.Control() || hd.ProducerID != 7 || hd.ProducerEpoch != 2 || hd.BaseSequence != -1 {
		t.Fatalf("txn batch header %+v", hd)
	}

	h.endTxn(g, 7, 2, true)
	if got := h.fetchStable(8, g, "t", 2, true); got[0] != (fetchedOffset{20, 0}) || got[1] != (fetchedOffset{11, 0}) {
		t.Fatalf("after commit: %v", got)
	}

	// Abort: the previous commit stays.
	expectCodes(t, "txn commit", h.txnCommit(txnCommit{group: g, pid: 7, epoch: 2, generation: -1, offsets: map[string][]int64{"t": {30, 31}}}), 0, 0)
	h.endTxn(g, 7, 2, false)
	if got := h.fetchStable(7, g, "t", 2, true); got[0] != (fetchedOffset{20, 0}) || got[1] != (fetchedOffset{11, 0}) {
		t.Fatalf("after abort: %v", got)
	}
	if got := h.c.Committed(); len(got) != 2 || got[0].Offset != 20 || got[1].Offset != 11 {
		t.Fatalf("Committed after abort: %v", got)
	}
	// Metadata and leader epoch come from the TxnOffsetCommit.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: g, Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}}}
	rp := do[*kmsg.OffsetFetchResponse](h, req).Groups[0].Topics[0].Partitions[0]
	if rp.LeaderEpoch != 4 || *rp.Metadata != "txn-7" {
		t.Fatalf("fetched %+v", rp)
	}
}

func TestTxnOffsetCommitStandaloneGroupAbortLeavesNothing(t *testing.T) {
	h := newHarness(t, nil)
	expectCodes(t, "txn commit", h.txnCommit(txnCommit{version: 1, group: "fresh", pid: 1, offsets: map[string][]int64{"t": {5}}}), 0)
	if d := h.describe("fresh"); d.State != "Empty" {
		t.Fatalf("group with pending offsets: %s", d.State)
	}
	h.endTxn("fresh", 1, 0, false)
	if d := h.describe("fresh"); d.State != "Dead" {
		t.Fatalf("group after abort: %s", d.State)
	}
	h.restart()
	if d := h.describe("fresh"); d.State != "Dead" {
		t.Fatalf("group after restart: %s", d.State)
	}
}

func TestTxnOffsetCommitPlainCommitInBetweenWins(t *testing.T) {
	h := newHarness(t, nil)
	const g = "mixed"
	h.txnCommit(txnCommit{group: g, pid: 3, generation: -1, offsets: map[string][]int64{"t": {50, 51}}})
	h.commit(g, -1, "", map[string][]int64{"t": {60}}) // after the txn record: wins on partition 0
	h.endTxn(g, 3, 0, true)
	want := map[int32]fetchedOffset{0: {60, 0}, 1: {51, 0}}
	if got := h.fetchStable(8, g, "t", 2, true); !maps.Equal(got, want) {
		t.Fatalf("after commit: %v", got)
	}
	h.restart()
	if got := h.fetchStable(8, g, "t", 2, true); !maps.Equal(got, want) {
		t.Fatalf("after restart: %v", got)
	}
}

func TestTxnOffsetCommitMemberChecks(t *testing.T) {
	h := newHarness(t, nil)
	const g = "kip447"
	joins := h.joinAll(g, joinOpts{instance: "static-1"}, joinOpts{})
	h.syncAll(g, joins)
	gr := h.lookup(g)
	static := gr.static["static-1"]
	gr.mu.Unlock()
	dynamic := joins[0].MemberID
	if dynamic == static {
		dynamic = joins[1].MemberID
	}
	gen := joins[0].Generation
	off := map[string][]int64{"t": {1}}
	p := h.c.PartitionFor(g)
	end := h.logs[p].EndOffset()
	bad := []struct {
		name string
		tc   txnCommit
		code int16
	}{
		{"old generation", txnCommit{group: g, pid: 1, generation: gen - 1, member: dynamic, offsets: off}, kerr.IllegalGeneration.Code},
		{"newer generation", txnCommit{group: g, pid: 1, generation: gen + 1, member: dynamic, offsets: off}, kerr.IllegalGeneration.Code},
		{"unknown member", txnCommit{group: g, pid: 1, generation: gen, member: "nobody", offsets: off}, kerr.UnknownMemberID.Code},
		{"no member with a generation", txnCommit{group: g, pid: 1, generation: gen, offsets: off}, kerr.UnknownMemberID.Code},
		{"fenced instance", txnCommit{group: g, pid: 1, generation: gen, member: dynamic, instance: "static-1", offsets: off}, kerr.FencedInstanceID.Code},
		{"unknown instance", txnCommit{group: g, pid: 1, generation: gen, member: static, instance: "other", offsets: off}, kerr.UnknownMemberID.Code},
		{"no such group", txnCommit{group: "none", pid: 1, generation: 1, member: "m", offsets: off}, kerr.IllegalGeneration.Code},
		{"empty group id", txnCommit{group: "", pid: 1, generation: -1, offsets: off}, kerr.InvalidGroupID.Code},
		{"no producer id", txnCommit{group: g, pid: -1, generation: gen, member: dynamic, offsets: off}, kerr.InvalidProducerIDMapping.Code},
		{"negative epoch", txnCommit{group: g, pid: 1, epoch: -1, generation: gen, member: dynamic, offsets: off}, kerr.InvalidProducerEpoch.Code},
	}
	for _, b := range bad {
		expectCodes(t, b.name, h.txnCommit(b.tc), b.code)
	}
	if h.logs[p].EndOffset() != end {
		t.Fatal("rejected commits were written")
	}
	if d := h.describe("none"); d.State != "Dead" {
		t.Fatalf("rejected commit created a group: %s", d.State)
	}
	good := []txnCommit{
		{group: g, pid: 1, generation: gen, member: dynamic, offsets: off},
		{group: g, pid: 2, generation: gen, member: static, instance: "static-1", offsets: map[string][]int64{"u": {2}}},
		{version: 2, group: g, pid: 3, offsets: map[string][]int64{"v": {3}}},               // v0-2 carry no member fields
		{group: g, pid: 4, generation: -1, offsets: map[string][]int64{"w": {4}}},           // v3 without group membership
		{group: g, pid: 1, generation: gen, member: dynamic, offsets: map[string][]int64{}}, // nothing to write
	}
	for i, tc := range good {
		if c := h.txnCommit(tc); !allZero(c) {
			t.Fatalf("good commit %d: %v", i, c)
		}
	}
	// A standalone group takes transactional commits with generation -1
	// and any member id.
	expectCodes(t, "standalone", h.txnCommit(txnCommit{group: "solo", pid: 5, generation: -1, member: "x", offsets: off}), 0)
}

func TestTxnOffsetCommitFencesOldEpochs(t *testing.T) {
	h := newHarness(t, nil)
	const g = "fence"
	off := map[string][]int64{"t": {1}}
	expectCodes(t, "epoch 3", h.txnCommit(txnCommit{group: g, pid: 9, epoch: 3, generation: -1, offsets: off}), 0)
	expectCodes(t, "epoch 2", h.txnCommit(txnCommit{group: g, pid: 9, epoch: 2, generation: -1, offsets: off}), kerr.InvalidProducerEpoch.Code)
	// A new epoch aborts the open transaction (its marker carries the new
	// epoch); the zombie with the old one stays fenced, also after restart.
	h.endTxn(g, 9, 4, false)
	expectCodes(t, "zombie", h.txnCommit(txnCommit{group: g, pid: 9, epoch: 3, generation: -1, offsets: off}), kerr.InvalidProducerEpoch.Code)
	h.restart()
	expectCodes(t, "zombie after restart", h.txnCommit(txnCommit{group: g, pid: 9, epoch: 3, generation: -1, offsets: off}), kerr.InvalidProducerEpoch.Code)
	expectCodes(t, "new epoch", h.txnCommit(txnCommit{group: g, pid: 9, epoch: 4, generation: -1, offsets: off}), 0)
}

func TestTxnOffsetCommitVerifyHookAndPartitionChecks(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.VerifyTxnOffsetCommit = func(txnID string, pid int64, epoch int16, group string) error {
			if pid == 66 {
				return fmt.Errorf("not in the transaction: %w", kerr.InvalidTxnState)
			}
			if pid == 67 {
				return errors.New("boom")
			}
			return nil
		}
		c.PartitionExists = func(topic string, partition int32) bool { return topic != "gone" }
	})
	off := map[string][]int64{"t": {1}}
	expectCodes(t, "verify", h.txnCommit(txnCommit{group: "g", pid: 66, generation: -1, offsets: off}), kerr.InvalidTxnState.Code)
	expectCodes(t, "verify other", h.txnCommit(txnCommit{group: "g", pid: 67, generation: -1, offsets: off}), kerr.UnknownServerError.Code)
	big := make([]byte, maxOffsetMetadata+1)
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.Version, req.Group, req.ProducerID, req.Generation = 3, "g", 1, -1
	md := string(big)
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{
		{Topic: "gone", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}},
		{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, Metadata: &md}, {Partition: 1, Offset: 2}}},
	}
	var got []int16
	for _, rt := range do[*kmsg.TxnOffsetCommitResponse](h, req).Topics {
		for _, rp := range rt.Partitions {
			got = append(got, rp.ErrorCode)
		}
	}
	expectCodes(t, "partition checks", got, kerr.UnknownTopicOrPartition.Code, kerr.OffsetMetadataTooLarge.Code, 0)
	h.endTxn("g", 1, 0, true)
	if got := h.fetchStable(8, "g", "t", 2, true); got[0].offset != -1 || got[1].offset != 2 {
		t.Fatalf("after commit: %v", got)
	}
}

// txnState is the coordinator's offsets and open transactions, for
// comparing live state with replayed state.
type txnState struct {
	offsets map[string]map[topicPartition]offsetEntry
	pending map[string]map[int64]map[topicPartition]offsetEntry // the latest write
	epochs  map[int64]int16
	open    map[int64]map[string]struct{}
}

func (h *harness) txnState() txnState {
	h.t.Helper()
	s := txnState{offsets: map[string]map[topicPartition]offsetEntry{}, pending: map[string]map[int64]map[topicPartition]offsetEntry{},
		epochs: map[int64]int16{}, open: map[int64]map[string]struct{}{}}
	for _, g := range h.c.snapshot() {
		g.mu.Lock()
		s.offsets[g.name] = maps.Clone(g.offsets)
		s.pending[g.name] = map[int64]map[topicPartition]offsetEntry{}
		for pid, pend := range g.txnOffsets {
			s.pending[g.name][pid] = map[topicPartition]offsetEntry{}
			for tp, es := range pend {
				s.pending[g.name][pid][tp] = es[len(es)-1]
			}
		}
		g.mu.Unlock()
	}
	h.c.mu.Lock()
	for pid, p := range h.c.txns {
		s.epochs[pid] = p.epoch
		s.open[pid] = maps.Clone(p.groups)
	}
	h.c.mu.Unlock()
	return s
}

func (s txnState) equal(o txnState) bool {
	if !maps.EqualFunc(s.offsets, o.offsets, func(a, b map[topicPartition]offsetEntry) bool { return maps.Equal(a, b) }) {
		return false
	}
	if !maps.EqualFunc(s.pending, o.pending, func(a, b map[int64]map[topicPartition]offsetEntry) bool {
		return maps.EqualFunc(a, b, func(x, y map[topicPartition]offsetEntry) bool { return maps.Equal(x, y) })
	}) {
		return false
	}
	return maps.Equal(s.epochs, o.epochs) &&
		maps.EqualFunc(s.open, o.open, func(a, b map[string]struct{}) bool { return maps.Equal(a, b) })
}

func TestTxnReplayReachesTheSameState(t *testing.T) {
	h := newHarness(t, nil)
	// Several groups, so that several partitions carry transactions.
	groups := []string{"a", "b", "c", "d"}
	for _, g := range groups {
		h.commit(g, -1, "", map[string][]int64{"t": {1, 1}})
	}
	tc := func(g string, pid int64, epoch int16, offs ...int64) {
		t.Helper()
		if c := h.txnCommit(txnCommit{group: g, pid: pid, epoch: epoch, generation: -1, offsets: map[string][]int64{"t": offs}}); !allZero(c) {
			t.Fatalf("txn commit %s pid %d: %v", g, pid, c)
		}
	}
	tc("a", 100, 0, 10, 11) // committed
	tc("b", 100, 0, 12)     // same producer, another group
	tc("a", 101, 0, 20)     // aborted
	tc("c", 102, 1, 30, 31) // left pending
	tc("d", 103, 0, 40)     // committed, then a next transaction left pending
	if h.c.PartitionFor("b") == h.c.PartitionFor("a") {
		t.Fatal("groups a and b must live in different partitions")
	}
	// A marker completes the producer's offsets in its own partition only.
	h.endTxn("a", 100, 0, true)
	if got := h.fetchStable(8, "b", "t", 1, true); got[0].code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("b completed by a's marker: %v", got)
	}
	h.endTxn("b", 100, 0, true)
	h.endTxn("a", 101, 0, false)
	// A delayed completion: the producer's next transaction wrote offsets
	// after the marker, before the broker called CompleteTxnAt.
	m := h.marker("d", 103, 0, true)
	tc("d", 103, 0, 41)
	if err := h.c.CompleteTxnAt(h.c.PartitionFor("d"), 103, 0, true, m); err != nil {
		t.Fatal(err)
	}
	tc("b", 104, 0, 0, 0) // left pending

	check := func(when string) {
		t.Helper()
		for g, want := range map[string]map[int32]fetchedOffset{
			"a": {0: {10, 0}, 1: {11, 0}},
			"b": {0: {-1, kerr.UnstableOffsetCommit.Code}, 1: {-1, kerr.UnstableOffsetCommit.Code}},
			"c": {0: {-1, kerr.UnstableOffsetCommit.Code}, 1: {-1, kerr.UnstableOffsetCommit.Code}},
			"d": {0: {-1, kerr.UnstableOffsetCommit.Code}, 1: {1, 0}},
		} {
			if got := h.fetchStable(8, g, "t", 2, true); !maps.Equal(got, want) {
				t.Fatalf("%s: group %s: %v, want %v", when, g, got, want)
			}
		}
		if got := h.fetchStable(7, "d", "t", 2, false); got[0].offset != 40 {
			t.Fatalf("%s: d committed %v", when, got)
		}
		if got := h.fetchStable(7, "b", "t", 2, false); got[0].offset != 12 {
			t.Fatalf("%s: b committed %v", when, got)
		}
	}
	check("live")
	before := h.txnState()
	h.restart()
	check("after restart")
	if after := h.txnState(); !before.equal(after) {
		t.Fatalf("replayed state differs:\nlive   %+v\nreplay %+v", before, after)
	}

	// The pending transactions complete after the restart like before it.
	h.endTxn("c", 102, 1, true)
	h.endTxn("d", 103, 0, false)
	if got := h.fetchStable(8, "c", "t", 2, true); got[0].offset != 30 || got[1].offset != 31 {
		t.Fatalf("c after commit: %v", got)
	}
	if got := h.fetchStable(8, "d", "t", 2, true); got[0].offset != 40 || got[0].code != 0 {
		t.Fatalf("d after abort: %v", got)
	}
	before = h.txnState()
	h.restart()
	if after := h.txnState(); !before.equal(after) {
		t.Fatalf("replayed state differs:\nlive   %+v\nreplay %+v", before, after)
	}
}

func TestTxnPendingOffsetsAndDeletion(t *testing.T) {
	var clock = time.Unix(1_700_000_000, 0)
	h := newHarness(t, func(c *Config) {
		c.Now = func() time.Time { return clock }
		c.OffsetsRetention = time.Hour
	})
	// Expiry: an offset a transaction holds does not expire, and the
	// group stays while the transaction is open.
	h.commit("exp", -1, "", map[string][]int64{"t": {1, 2}})
	h.txnCommit(txnCommit{group: "exp", pid: 1, generation: -1, offsets: map[string][]int64{"t": {5}}})
	h.c.expireOffsets(clock.Add(2 * time.Hour))
	if d := h.describe("exp"); d.State != "Empty" {
		t.Fatalf("group with an open transaction expired: %s", d.State)
	}
	if got := h.c.Committed(); len(got) != 1 || got[0] != (CommittedOffset{"exp", "t", 0, 1}) {
		t.Fatalf("after expiry: %v", got)
	}
	clock = clock.Add(2 * time.Hour)
	h.endTxn("exp", 1, 0, true)
	if got := h.c.Committed(); len(got) != 1 || got[0].Offset != 5 {
		t.Fatalf("after commit: %v", got)
	}

	// DeleteGroups deletes an Empty group with open transactions; their
	// later commit does not bring offsets back, live or replayed.
	h.txnCommit(txnCommit{group: "del", pid: 2, generation: -1, offsets: map[string][]int64{"t": {7}}})
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Version = 2
	req.Groups = []string{"del"}
	if c := do[*kmsg.DeleteGroupsResponse](h, req).Groups[0].ErrorCode; c != 0 {
		t.Fatalf("delete: %v", codeErr(c))
	}
	h.endTxn("del", 2, 0, true)
	if d := h.describe("del"); d.State != "Dead" {
		t.Fatalf("deleted group: %s", d.State)
	}
	// Deleted topics take pending offsets along.
	h.txnCommit(txnCommit{group: "top", pid: 3, generation: -1, offsets: map[string][]int64{"gone": {3}, "kept": {4}}})
	if err := h.c.TopicsDeleted("gone"); err != nil {
		t.Fatal(err)
	}
	h.endTxn("top", 3, 0, true)
	if got := h.fetchAll("top"); len(got) != 1 || got["kept"][0] != 4 {
		t.Fatalf("after deleting a topic: %v", got)
	}
	before := h.txnState()
	h.restart()
	if d := h.describe("del"); d.State != "Dead" {
		t.Fatalf("deleted group after restart: %s", d.State)
	}
	if got := h.fetchAll("top"); len(got) != 1 || got["kept"][0] != 4 {
		t.Fatalf("after restart: %v", got)
	}
	if after := h.txnState(); !before.equal(after) {
		t.Fatalf("replayed state differs:\nlive   %+v\nreplay %+v", before, after)
	}
	// Producers without open transactions are forgotten after retention.
	h.c.expireOffsets(clock.Add(2 * time.Hour))
	if n := len(h.txnState().epochs); n != 0 {
		t.Fatalf("%d producers remembered", n)
	}
}

func TestCompleteTxnErrors(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.c.CompleteTxn(testPartitions, 1, 0, true); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("bad partition: %v", err)
	}
	if err := h.c.CompleteTxn(0, 1, 0, true); err != nil {
		t.Fatalf("producer without offsets: %v", err)
	}
	_ = h.c.Close()
	if err := h.c.CompleteTxn(0, 1, 0, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// FuzzTxnOffsetCommit decodes arbitrary TxnOffsetCommit requests (v0-3),
// hands them to the coordinator, optionally ends the producer's
// transaction, and fetches the group's offsets with RequireStable: nothing
// may panic, and every response must encode and mirror the request.
func FuzzTxnOffsetCommit(f *testing.F) {
	for v := range int16(4) {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version, req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = v, "tx", "g", 3, 1
		req.Generation = -1
		md := "m"
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 9, LeaderEpoch: -1, Metadata: &md}}}}
		f.Add(uint8(v), req.AppendTo(nil), uint8(1))
	}
	f.Add(uint8(3), []byte{0, 0}, uint8(0))
	dir := f.TempDir()
	scfg := storage.DefaultConfig()
	scfg.CleanupPolicy = "compact"
	var logs []*storage.Log
	for p := range 2 {
		l, err := storage.Open(filepath.Join(dir, fmt.Sprint(p)), scfg, storage.Options{})
		if err != nil {
			f.Fatal(err)
		}
		logs = append(logs, l)
	}
	c, err := New(Config{Logs: logs})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		_ = c.Close()
		for _, l := range logs {
			_ = l.Close()
		}
	})
	f.Fuzz(func(t *testing.T, version uint8, body []byte, complete uint8) {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = int16(version % 4)
		if err := req.ReadFrom(body); err != nil {
			return
		}
		resp, err := c.Handle(t.Context(), req)
		if err != nil {
			t.Fatalf("Handle: %v", err)
		}
		tr := resp.(*kmsg.TxnOffsetCommitResponse)
		if len(tr.Topics) != len(req.Topics) {
			t.Fatalf("%d topics answered for %d", len(tr.Topics), len(req.Topics))
		}
		for i := range tr.Topics {
			if len(tr.Topics[i].Partitions) != len(req.Topics[i].Partitions) {
				t.Fatalf("topic %d: %d partitions answered for %d", i, len(tr.Topics[i].Partitions), len(req.Topics[i].Partitions))
			}
		}
		dec := kmsg.NewPtrTxnOffsetCommitResponse()
		dec.Version = req.Version
		if err := dec.ReadFrom(resp.AppendTo(nil)); err != nil {
			t.Fatalf("response does not decode: %v", err)
		}
		if complete&1 != 0 {
			if err := c.CompleteTxn(c.PartitionFor(req.Group), req.ProducerID, req.ProducerEpoch, complete&2 != 0); err != nil {
				t.Fatalf("CompleteTxn: %v", err)
			}
		}
		fr := kmsg.NewPtrOffsetFetchRequest()
		fr.Version, fr.RequireStable = 8, true
		fr.Groups = []kmsg.OffsetFetchRequestGroup{{Group: req.Group}}
		fresp, err := c.Handle(t.Context(), fr)
		if err != nil {
			t.Fatalf("OffsetFetch: %v", err)
		}
		_ = fresp.AppendTo(nil)
	})
}
