package group

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// storeErrCode maps an append failure to the code Kafka answers with.
func storeErrCode(err error, commit bool) int16 {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return kerr.NotCoordinator.Code // Kafka's KAFKA_STORAGE_ERROR mapping
	}
	switch ke {
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidFetchSize:
		if commit {
			return kerr.InvalidCommitOffsetSize.Code
		}
		return kerr.UnknownServerError.Code
	case kerr.UnknownTopicOrPartition, kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition, kerr.KafkaStorageError:
		return kerr.NotCoordinator.Code
	}
	return ke.Code
}

func (c *Coordinator) offsetCommit(req *kmsg.OffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rt.Partitions[j].Partition = p.Partition
		}
	}
	setAll := func(code int16) {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	}
	instance := req.InstanceID
	if req.Version < 7 {
		instance = nil
	}

	g := c.lookup(req.Group, req.Generation < 0)
	if g == nil {
		setAll(kerr.IllegalGeneration.Code)
		return resp
	}
	defer g.mu.Unlock()
	var code int16
	switch {
	case g.fenced(instance, req.MemberID):
		code = kerr.FencedInstanceID.Code
	case req.Generation < 0 && g.state == stateEmpty:
		// A standalone commit: the group only stores offsets.
	case g.state == stateCompletingRebalance:
		code = kerr.RebalanceInProgress.Code
	case g.members[req.MemberID] == nil:
		code = kerr.UnknownMemberID.Code
	case req.Generation != g.generation:
		code = kerr.IllegalGeneration.Code
	default:
		m := g.members[req.MemberID]
		c.scheduleSession(g, m, m.sessionTimeout)
	}
	if code != 0 {
		setAll(code)
		c.dropIfUnused(g)
		return resp
	}

	now := c.now().UnixMilli()
	var (
		recs  []recordbatch.Record
		write []offsetWrite
	)
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			leaderEpoch := int32(-1)
			if req.Version >= 6 {
				leaderEpoch = p.LeaderEpoch
			}
			w, ok := c.prepareOffset(t.Topic, p.Partition, p.Offset, p.Metadata, leaderEpoch, now, &resp.Topics[i].Partitions[j].ErrorCode)
			if !ok {
				continue
			}
			if req.Version == 1 && p.Timestamp != -1 {
				w.entry.commitTime = p.Timestamp
			}
			recs = append(recs, offsetRecord(g.name, w.tp, &w.entry))
			write = append(write, w)
		}
	}
	if len(recs) > 0 {
		opts := recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		if first, err := c.appendBatch(g.partition, opts, recs); err != nil {
			c.log.Error("appending offset commit", "group", g.name, "err", err)
			code := storeErrCode(err, true)
			for _, w := range write {
				*w.code = code
			}
		} else {
			for i, w := range write {
				w.entry.logOffset = first + int64(i)
				g.offsets[w.tp] = w.entry
			}
		}
	}
	c.dropIfUnused(g)
	return resp
}

// fetchedPartition is one OffsetFetch answer, shared by all versions.
type fetchedPartition struct {
	partition int32
	entry     offsetEntry
	code      int16 // UNSTABLE_OFFSET_COMMIT or 0
}

type fetchedTopic struct {
	topic      string
	partitions []fetchedPartition
}

// fetchOffsets returns the committed offsets of the requested partitions,
// or of every committed partition when all is set; unknown ones are offset
// -1. With stable, partitions for which an open transaction holds an offset
// answer UNSTABLE_OFFSET_COMMIT (KIP-447) instead.
func (c *Coordinator) fetchOffsets(name string, requested map[string][]int32, order []string, all, stable bool) []fetchedTopic {
	var (
		offsets  map[topicPartition]offsetEntry
		unstable map[topicPartition]bool
	)
	if g := c.lookup(name, false); g != nil {
		offsets = make(map[topicPartition]offsetEntry, len(g.offsets))
		for tp, e := range g.offsets {
			offsets[tp] = e
		}
		if stable {
			unstable = make(map[topicPartition]bool)
			for _, pend := range g.txnOffsets {
				for tp := range pend {
					unstable[tp] = true
				}
			}
		}
		g.mu.Unlock()
	}
	none := offsetEntry{offset: -1, leaderEpoch: -1}
	answer := func(tp topicPartition, e offsetEntry) fetchedPartition {
		if unstable[tp] {
			return fetchedPartition{tp.partition, none, kerr.UnstableOffsetCommit.Code}
		}
		return fetchedPartition{tp.partition, e, 0}
	}
	if all {
		byTopic := make(map[string][]fetchedPartition)
		for tp, e := range offsets {
			byTopic[tp.topic] = append(byTopic[tp.topic], answer(tp, e))
		}
		out := make([]fetchedTopic, 0, len(byTopic))
		for t, ps := range byTopic {
			sort.Slice(ps, func(i, j int) bool { return ps[i].partition < ps[j].partition })
			out = append(out, fetchedTopic{t, ps})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].topic < out[j].topic })
		return out
	}
	out := make([]fetchedTopic, 0, len(order))
	for _, t := range order {
		ft := fetchedTopic{topic: t}
		for _, p := range requested[t] {
			tp := topicPartition{t, p}
			e, ok := offsets[tp]
			if !ok {
				e = none
			}
			ft.partitions = append(ft.partitions, answer(tp, e))
		}
		out = append(out, ft)
	}
	return out
}

func (c *Coordinator) offsetFetch(req *kmsg.OffsetFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			requested, order := make(map[string][]int32), []string(nil)
			for _, t := range rg.Topics {
				if _, ok := requested[t.Topic]; !ok {
					order = append(order, t.Topic)
				}
				requested[t.Topic] = append(requested[t.Topic], t.Partitions...)
			}
			gr := kmsg.NewOffsetFetchResponseGroup()
			gr.Group = rg.Group
			for _, ft := range c.fetchOffsets(rg.Group, requested, order, rg.Topics == nil, req.RequireStable) {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = ft.topic
				for _, fp := range ft.partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition = fp.partition
					rp.Offset = fp.entry.offset
					rp.LeaderEpoch = fp.entry.leaderEpoch
					md := fp.entry.metadata
					rp.Metadata = &md
					rp.ErrorCode = fp.code
					rt.Partitions = append(rt.Partitions, rp)
				}
				gr.Topics = append(gr.Topics, rt)
			}
			resp.Groups = append(resp.Groups, gr)
		}
		return resp
	}
	requested, order := make(map[string][]int32), []string(nil)
	for _, t := range req.Topics {
		if _, ok := requested[t.Topic]; !ok {
			order = append(order, t.Topic)
		}
		requested[t.Topic] = append(requested[t.Topic], t.Partitions...)
	}
	all := req.Topics == nil && req.Version >= 2
	stable := req.RequireStable && req.Version >= 7
	for _, ft := range c.fetchOffsets(req.Group, requested, order, all, stable) {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = ft.topic
		for _, fp := range ft.partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition = fp.partition
			rp.Offset = fp.entry.offset
			rp.LeaderEpoch = fp.entry.leaderEpoch
			md := fp.entry.metadata
			rp.Metadata = &md
			rp.ErrorCode = fp.code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// subscribedTopics returns the topics the members of a "consumer" group
// subscribe to; ok is false when a subscription cannot be parsed.
func (g *group) subscribedTopics() (map[string]bool, bool) {
	topics := make(map[string]bool)
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range md.Topics {
			topics[t] = true
		}
	}
	return topics, true
}

func (c *Coordinator) offsetDelete(req *kmsg.OffsetDeleteRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	for _, t := range req.Topics {
		rt := kmsg.OffsetDeleteResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, kmsg.OffsetDeleteResponseTopicPartition{Partition: p.Partition})
		}
		resp.Topics = append(resp.Topics, rt)
	}
	g := c.lookup(req.Group, false)
	if g == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	defer g.mu.Unlock()

	var subscribed map[string]bool
	switch {
	case g.protocolType == "consumer":
		var ok bool
		if subscribed, ok = g.subscribedTopics(); !ok {
			subscribed = nil // unknown subscriptions: treat every topic as subscribed
		}
	case g.state == stateEmpty:
		subscribed = map[string]bool{}
	default:
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}

	var deleted []topicPartition
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			tp := topicPartition{rt.Topic, rp.Partition}
			switch {
			case c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(rt.Topic, rp.Partition):
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed == nil || subscribed[rt.Topic]:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				if _, ok := g.offsets[tp]; ok && !slices.Contains(deleted, tp) {
					deleted = append(deleted, tp)
				}
			}
		}
	}
	if len(deleted) == 0 {
		return resp
	}
	if _, err := c.deleteOffsets(g, deleted); err != nil {
		c.log.Error("appending offset tombstones", "group", g.name, "err", err)
		resp.ErrorCode = storeErrCode(err, false)
	}
	return resp
}

func (c *Coordinator) deleteGroups(req *kmsg.DeleteGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		r := kmsg.NewDeleteGroupsResponseGroup()
		r.Group = name
		r.ErrorCode = c.deleteGroup(name)
		resp.Groups = append(resp.Groups, r)
	}
	return resp
}

func (c *Coordinator) deleteGroup(name string) int16 {
	g := c.lookup(name, false)
	if g == nil {
		return kerr.GroupIDNotFound.Code
	}
	defer g.mu.Unlock()
	if g.state != stateEmpty {
		return kerr.NonEmptyGroup.Code
	}
	if err := c.append(g.partition, g.tombstones()); err != nil {
		c.log.Error("appending group tombstones", "group", g.name, "err", err)
		return storeErrCode(err, false)
	}
	c.log.Info("group deleted", "group", g.name)
	c.removeGroup(g)
	return 0
}

// tombstones deletes every offset, also those only open transactions hold
// (so that their later commit markers find nothing to apply, on replay
// too), and the group metadata.
func (g *group) tombstones() []recordbatch.Record {
	recs := make([]recordbatch.Record, 0, len(g.offsets)+1)
	for _, tp := range g.offsetPartitions(nil) {
		recs = append(recs, offsetRecord(g.name, tp, nil))
	}
	return append(recs, groupRecord(g.name, nil))
}

// offsetPartitions returns the partitions with a committed offset or an
// offset of an open transaction, sorted; keep, when set, filters them.
func (g *group) offsetPartitions(keep func(topicPartition) bool) []topicPartition {
	seen := make(map[topicPartition]bool, len(g.offsets))
	for tp := range g.offsets {
		seen[tp] = true
	}
	for _, pend := range g.txnOffsets {
		for tp := range pend {
			seen[tp] = true
		}
	}
	out := make([]topicPartition, 0, len(seen))
	for tp := range seen {
		if keep == nil || keep(tp) {
			out = append(out, tp)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].partition < out[j].partition
	})
	return out
}

func (c *Coordinator) describeGroups(req *kmsg.DescribeGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group = name
		d.State = stateDead.String()
		if req.IncludeAuthorizedOperations {
			d.AuthorizedOperations = 1<<3 | 1<<6 | 1<<8 // READ, DELETE, DESCRIBE: no ACLs yet
		}
		if g := c.lookup(name, false); g != nil {
			d.State = g.state.String()
			d.ProtocolType = g.protocolType
			stable := g.state == stateStable
			if stable {
				d.Protocol = g.protocol
			}
			for _, id := range g.order {
				m := g.members[id]
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID = id
				dm.InstanceID = cloneString(m.instanceID)
				dm.ClientID = m.clientID
				dm.ClientHost = m.clientHost
				dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
				if stable {
					dm.ProtocolMetadata = append(dm.ProtocolMetadata, m.metadataFor(g.protocol)...)
					dm.MemberAssignment = append(dm.MemberAssignment, m.assignment...)
				}
				d.Members = append(d.Members, dm)
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}

func (c *Coordinator) listGroups(req *kmsg.ListGroupsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, g := range c.snapshot() {
		g.mu.Lock()
		st, dead := g.state.String(), g.dead
		l := kmsg.NewListGroupsResponseGroup()
		l.Group, l.ProtocolType, l.GroupState, l.GroupType = g.name, g.protocolType, st, "classic"
		g.mu.Unlock()
		if dead || !matches(req.StatesFilter, st) || !matches(req.TypesFilter, "classic") {
			continue
		}
		resp.Groups = append(resp.Groups, l)
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	return resp
}

// expireOffsets removes offsets past retention, as Kafka's KIP-211 rules
// say, and deletes empty groups left without offsets.
func (c *Coordinator) expireOffsets(now time.Time) {
	for _, g := range c.snapshot() {
		g.mu.Lock()
		if !g.dead {
			c.expireGroupOffsets(g, now)
		}
		g.mu.Unlock()
	}
	c.expireProducers(now.UnixMilli())
}

func (c *Coordinator) expireGroupOffsets(g *group, now time.Time) {
	nowMs := now.UnixMilli()
	retention := c.cfg.OffsetsRetention.Milliseconds()
	// As in Kafka, an offset an open transaction will replace does not
	// expire, and a group with open transactions is not deleted.
	expired := func(tp topicPartition, e offsetEntry, base int64) bool {
		if g.hasTxnOffset(tp) {
			return false
		}
		if e.expireTime >= 0 {
			return nowMs >= e.expireTime
		}
		return nowMs-base >= retention
	}
	var gone []topicPartition
	switch {
	case g.protocolType != "" && g.state == stateEmpty:
		for tp, e := range g.offsets {
			base := e.commitTime
			if !g.stateTime.IsZero() {
				base = g.stateTime.UnixMilli()
			}
			if expired(tp, e, base) {
				gone = append(gone, tp)
			}
		}
	case g.protocolType == "consumer" && g.state == stateStable:
		subscribed, ok := g.subscribedTopics()
		if !ok {
			return
		}
		for tp, e := range g.offsets {
			if !subscribed[tp.topic] && expired(tp, e, e.commitTime) {
				gone = append(gone, tp)
			}
		}
	case g.protocolType == "":
		for tp, e := range g.offsets {
			if expired(tp, e, e.commitTime) {
				gone = append(gone, tp)
			}
		}
	}
	dropped, err := c.deleteOffsets(g, gone)
	if err != nil {
		c.log.Error("appending expired offsets", "group", g.name, "err", err)
		return
	}
	if len(gone) > 0 || dropped {
		c.log.Info("expired group offsets", "group", g.name, "offsets", len(gone), "group_removed", dropped)
	}
}

// deleteOffsets appends tombstones for tps and forgets them, committed and
// in open transactions alike (as replaying a tombstone does); an empty group
// left without offsets is deleted along with them (Kafka's
// cleanupGroupMetadata). Nothing changes if the append fails. g.mu must be
// held.
func (c *Coordinator) deleteOffsets(g *group, tps []topicPartition) (dropped bool, err error) {
	gone := make(map[topicPartition]bool, len(tps))
	for _, tp := range tps {
		gone[tp] = true
	}
	left := len(g.offsetPartitions(func(tp topicPartition) bool { return !gone[tp] }))
	dropGroup := g.state == stateEmpty && len(g.pending) == 0 && left == 0
	if len(tps) == 0 && !dropGroup {
		return false, nil
	}
	recs := make([]recordbatch.Record, 0, len(tps)+1)
	for _, tp := range tps {
		recs = append(recs, offsetRecord(g.name, tp, nil))
	}
	if dropGroup {
		recs = append(recs, groupRecord(g.name, nil))
	}
	if err := c.append(g.partition, recs); err != nil {
		return false, err
	}
	for _, tp := range tps {
		delete(g.offsets, tp)
		c.dropTxnOffset(g, tp)
	}
	if dropGroup {
		c.removeGroup(g)
	}
	return dropGroup, nil
}

// TopicsDeleted removes every committed offset of the named topics, as
// Kafka does when topics are deleted: tombstones are appended and empty
// groups left without offsets are deleted. The broker calls it after
// deleting topics, without holding locks that PartitionExists takes.
func (c *Coordinator) TopicsDeleted(topics ...string) error {
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	gone := make(map[string]bool, len(topics))
	for _, t := range topics {
		gone[t] = true
	}
	var errs []error
	for _, g := range c.snapshot() {
		g.mu.Lock()
		if err := c.deleteTopicOffsets(g, gone); err != nil {
			errs = append(errs, err)
		}
		g.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (c *Coordinator) deleteTopicOffsets(g *group, gone map[string]bool) error {
	if g.dead {
		return nil
	}
	tps := g.offsetPartitions(func(tp topicPartition) bool { return gone[tp.topic] })
	if len(tps) == 0 {
		return nil
	}
	if _, err := c.deleteOffsets(g, tps); err != nil {
		return fmt.Errorf("group %s: deleting offsets of deleted topics: %w", g.name, err)
	}
	return nil
}

// offsetWrite is one partition's offset from an OffsetCommit or
// TxnOffsetCommit request, validated and waiting for its append.
type offsetWrite struct {
	tp    topicPartition
	entry offsetEntry
	code  *int16 // the partition's error code in the response
}

// prepareOffset validates one partition of a commit request: it sets *code
// and returns false for an unknown partition or metadata over the limit,
// else it returns the entry to write.
func (c *Coordinator) prepareOffset(topic string, partition int32, offset int64, metadata *string, leaderEpoch int32, now int64, code *int16) (offsetWrite, bool) {
	switch {
	case c.cfg.PartitionExists != nil && !c.cfg.PartitionExists(topic, partition):
		*code = kerr.UnknownTopicOrPartition.Code
		return offsetWrite{}, false
	case metadata != nil && len(*metadata) > maxOffsetMetadata:
		*code = kerr.OffsetMetadataTooLarge.Code
		return offsetWrite{}, false
	}
	e := offsetEntry{offset: offset, leaderEpoch: leaderEpoch, commitTime: now, expireTime: -1}
	if metadata != nil {
		e.metadata = *metadata
	}
	return offsetWrite{topicPartition{topic, partition}, e, code}, true
}
