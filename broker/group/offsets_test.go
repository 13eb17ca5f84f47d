package group

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commit sends OffsetCommit v8 of offsets (partition i gets offsets[i])
// and returns the error codes by "topic/partition" index order.
func (h *harness) commit(group string, gen int32, member string, offsets map[string][]int64) []int16 {
	h.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation, req.MemberID = group, gen, member
	topics := make([]string, 0, len(offsets))
	for t := range offsets {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = t
		for p, o := range offsets[t] {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = int32(p), o, 7
			md := "md-" + t
			rp.Metadata = &md
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	var codes []int16
	for _, rt := range do[*kmsg.OffsetCommitResponse](h, req).Topics {
		for _, rp := range rt.Partitions {
			codes = append(codes, rp.ErrorCode)
		}
	}
	return codes
}

// fetch returns group's committed offsets as "topic" → offsets by
// partition, using OffsetFetch v8 with all topics.
func (h *harness) fetchAll(group string) map[string][]int64 {
	h.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: group}}
	out := map[string][]int64{}
	for _, rt := range do[*kmsg.OffsetFetchResponse](h, req).Groups[0].Topics {
		for _, rp := range rt.Partitions {
			out[rt.Topic] = append(out[rt.Topic], rp.Offset)
		}
	}
	return out
}

func allZero(codes []int16) bool {
	for _, c := range codes {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestOffsetCommitFetchSimple(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.PartitionExists = func(topic string, p int32) bool { return topic != "missing" && p < 3 }
	})
	if codes := h.commit("simple", -1, "", map[string][]int64{"a": {10, 20}, "b": {30}}); !allZero(codes) {
		t.Fatalf("commit: %v", codes)
	}
	if got := h.fetchAll("simple"); len(got) != 2 || got["a"][0] != 10 || got["a"][1] != 20 || got["b"][0] != 30 {
		t.Fatalf("fetch all: %v", got)
	}
	codes := h.commit("simple", -1, "", map[string][]int64{"missing": {1}, "a": {1, 2, 3, 4}})
	if want := []int16{0, 0, 0, kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code}; !slicesEqual(codes, want) {
		t.Fatalf("commit codes %v, want %v", codes, want)
	}

	// OffsetFetch v1 with explicit partitions, unknown ones -1.
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 1
	req.Group = "simple"
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "a", Partitions: []int32{0, 2, 9}}, {Topic: "zz", Partitions: []int32{0}}}
	r := do[*kmsg.OffsetFetchResponse](h, req)
	want := [][]int64{{1, 3, -1}, {-1}}
	for i, rt := range r.Topics {
		for j, rp := range rt.Partitions {
			if rp.Offset != want[i][j] || rp.ErrorCode != 0 {
				t.Fatalf("fetch %s[%d] = %d (%v), want %d", rt.Topic, rp.Partition, rp.Offset, codeErr(rp.ErrorCode), want[i][j])
			}
		}
	}
	// v5+ returns the leader epoch and metadata.
	req.Version = 5
	r = do[*kmsg.OffsetFetchResponse](h, req)
	if p := r.Topics[0].Partitions[0]; p.LeaderEpoch != 7 || *p.Metadata != "md-a" {
		t.Fatalf("fetch v5: %+v", p)
	}
	// v8 with several groups, one unknown.
	req8 := kmsg.NewPtrOffsetFetchRequest()
	req8.Version = 8
	req8.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "simple", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "b", Partitions: []int32{0}}}},
		{Group: "nobody", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "b", Partitions: []int32{0}}}},
	}
	r8 := do[*kmsg.OffsetFetchResponse](h, req8)
	if r8.Groups[0].Topics[0].Partitions[0].Offset != 30 || r8.Groups[1].Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("fetch v8: %+v", r8.Groups)
	}

	// Metadata over offset.metadata.max.bytes is refused.
	creq := kmsg.NewPtrOffsetCommitRequest()
	creq.Version = 2
	creq.Group = "simple"
	big := strings.Repeat("x", maxOffsetMetadata+1)
	creq.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "a", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 99, Metadata: &big}}}}
	if c := do[*kmsg.OffsetCommitResponse](h, creq).Topics[0].Partitions[0].ErrorCode; c != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("big metadata: %v", codeErr(c))
	}
	if got := h.fetchAll("simple")["a"][0]; got != 1 {
		t.Fatalf("refused commit changed the offset to %d", got)
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOffsetCommitGroupChecks(t *testing.T) {
	h := newHarness(t, nil)
	joins := h.joinAll("g", joinOpts{})
	m := joins[0].MemberID
	one := map[string][]int64{"t": {1}}
	// CompletingRebalance: REBALANCE_IN_PROGRESS even for the right member.
	if c := h.commit("g", 1, m, one); c[0] != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit while completing: %v", codeErr(c[0]))
	}
	h.syncAll("g", joins)
	for _, tc := range []struct {
		gen    int32
		member string
		want   int16
	}{
		{1, m, 0},
		{0, m, kerr.IllegalGeneration.Code},
		{1, "stranger", kerr.UnknownMemberID.Code},
		{-1, "", kerr.UnknownMemberID.Code}, // not a standalone group
	} {
		if c := h.commit("g", tc.gen, tc.member, one); c[0] != tc.want {
			t.Fatalf("commit gen %d member %q: %v, want %v", tc.gen, tc.member, codeErr(c[0]), codeErr(tc.want))
		}
	}
	// A generation on a group that does not exist is ILLEGAL_GENERATION.
	if c := h.commit("nogroup", 3, "x", one); c[0] != kerr.IllegalGeneration.Code {
		t.Fatalf("commit to missing group: %v", codeErr(c[0]))
	}
	if got := h.fetchAll("g")["t"]; len(got) != 1 || got[0] != 1 {
		t.Fatalf("fetch: %v", got)
	}
}

func offsetDelete(h *harness, group string, topic string, parts ...int32) *kmsg.OffsetDeleteResponse {
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	rt := kmsg.OffsetDeleteRequestTopic{Topic: topic}
	for _, p := range parts {
		rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteRequestTopicPartition{Partition: p})
	}
	req.Topics = []kmsg.OffsetDeleteRequestTopic{rt}
	return do[*kmsg.OffsetDeleteResponse](h, req)
}

func TestOffsetDeleteAndDeleteGroups(t *testing.T) {
	h := newHarness(t, nil)
	// A consumer group subscribed to t-range (see protocols).
	joins := h.joinAll("live", joinOpts{})
	h.syncAll("live", joins)
	h.commit("live", 1, joins[0].MemberID, map[string][]int64{"t-range": {5}, "other": {6}})
	if r := offsetDelete(h, "live", "t-range", 0); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("delete subscribed: %+v", r)
	}
	if r := offsetDelete(h, "live", "other", 0); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete unsubscribed: %+v", r)
	}
	if got := h.fetchAll("live"); len(got) != 1 || got["t-range"][0] != 5 {
		t.Fatalf("after delete: %v", got)
	}
	if r := offsetDelete(h, "nobody", "t", 0); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete in missing group: %v", codeErr(r.ErrorCode))
	}

	dreq := kmsg.NewPtrDeleteGroupsRequest()
	dreq.Version = 2
	dreq.Groups = []string{"live", "nobody"}
	r := do[*kmsg.DeleteGroupsResponse](h, dreq)
	if r.Groups[0].ErrorCode != kerr.NonEmptyGroup.Code || r.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete groups: %+v", r.Groups)
	}

	// Standalone group: OffsetDelete of its last offset removes the group.
	h.commit("solo", -1, "", map[string][]int64{"t": {1, 2}})
	if r := offsetDelete(h, "solo", "t", 0, 1); r.ErrorCode != 0 {
		t.Fatalf("delete solo: %v", codeErr(r.ErrorCode))
	}
	if d := h.describe("solo"); d.State != "Dead" {
		t.Fatalf("solo state %s", d.State)
	}

	// DeleteGroups of an empty group removes it and its offsets.
	h.commit("gone", -1, "", map[string][]int64{"t": {1}})
	dreq.Groups = []string{"gone"}
	if r := do[*kmsg.DeleteGroupsResponse](h, dreq); r.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete gone: %v", codeErr(r.Groups[0].ErrorCode))
	}
	if got := h.fetchAll("gone"); len(got) != 0 {
		t.Fatalf("offsets after delete: %v", got)
	}
	h.restart()
	if got := h.fetchAll("gone"); len(got) != 0 {
		t.Fatalf("offsets after delete and restart: %v", got)
	}
	if got := h.fetchAll("solo"); len(got) != 0 {
		t.Fatalf("solo offsets after restart: %v", got)
	}
	if got := h.fetchAll("live"); len(got) != 1 || got["t-range"][0] != 5 {
		t.Fatalf("live offsets after restart: %v", got)
	}
}

func TestOffsetExpiry(t *testing.T) {
	var clock = time.Unix(1_700_000_000, 0)
	h := newHarness(t, func(c *Config) {
		c.Now = func() time.Time { return clock }
		c.OffsetsRetention = time.Hour
	})
	h.commit("solo", -1, "", map[string][]int64{"t": {1}})
	joins := h.joinAll("cg", joinOpts{})
	h.syncAll("cg", joins)
	h.commit("cg", 1, joins[0].MemberID, map[string][]int64{"t-range": {3}, "unsubscribed": {4}})

	h.c.expireOffsets(clock.Add(59 * time.Minute))
	if len(h.c.Committed()) != 3 {
		t.Fatalf("expired too early: %v", h.c.Committed())
	}
	h.c.expireOffsets(clock.Add(61 * time.Minute))
	// The standalone offset and the unsubscribed topic are gone; the
	// subscribed one stays while the group is Stable.
	got := h.c.Committed()
	if len(got) != 1 || got[0] != (CommittedOffset{"cg", "t-range", 0, 3}) {
		t.Fatalf("after expiry: %v", got)
	}
	if d := h.describe("solo"); d.State != "Dead" {
		t.Fatalf("solo group state %s", d.State)
	}
	h.restart()
	if got := h.c.Committed(); len(got) != 1 {
		t.Fatalf("after restart: %v", got)
	}
}

func TestTopicsDeleted(t *testing.T) {
	h := newHarness(t, nil)
	h.commit("solo", -1, "", map[string][]int64{"t": {1, 2}, "u": {3}})
	joins := h.joinAll("cg", joinOpts{})
	h.syncAll("cg", joins)
	h.commit("cg", 1, joins[0].MemberID, map[string][]int64{"t": {4}})
	if err := h.c.TopicsDeleted("t"); err != nil {
		t.Fatal(err)
	}
	if got := h.c.Committed(); len(got) != 1 || got[0] != (CommittedOffset{"solo", "u", 0, 3}) {
		t.Fatalf("after deleting t: %v", got)
	}
	if err := h.c.TopicsDeleted("u"); err != nil {
		t.Fatal(err)
	}
	if d := h.describe("solo"); d.State != "Dead" {
		t.Fatalf("solo state %s", d.State)
	}
	if d := h.describe("cg"); d.State != "Stable" {
		t.Fatalf("cg state %s", d.State)
	}
	h.restart()
	if got := h.c.Committed(); len(got) != 0 {
		t.Fatalf("after restart: %v", got)
	}
}
