package group

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// txnProducer is what the coordinator knows of a transactional producer:
// the newest epoch it wrote with (older epochs are fenced, as the log's
// producer state fences them in Kafka) and the groups where it holds
// offsets of an open transaction.
type txnProducer struct {
	epoch    int16
	lastSeen int64               // ms of its last batch or marker
	groups   map[string]struct{} // groups with offsets of its open transaction
}

// noteProducer records a write or marker of producer pid. c.mu must be held.
func (c *Coordinator) noteProducer(pid int64, epoch int16) *txnProducer {
	p := c.txns[pid]
	if p == nil {
		p = &txnProducer{epoch: epoch, groups: make(map[string]struct{})}
		c.txns[pid] = p
	}
	p.epoch = max(p.epoch, epoch)
	p.lastSeen = max(p.lastSeen, c.now().UnixMilli())
	return p
}

// forgetTxnGroup drops group from pid's open groups. Callers may hold a
// group's mu.
func (c *Coordinator) forgetTxnGroup(pid int64, group string) {
	c.mu.Lock()
	if p := c.txns[pid]; p != nil {
		delete(p.groups, group)
	}
	c.mu.Unlock()
}

// dropTxnOffset removes tp from every open transaction of g, as a plain
// offset tombstone does on replay. g.mu must be held.
func (c *Coordinator) dropTxnOffset(g *group, tp topicPartition) {
	for pid, pend := range g.txnOffsets {
		delete(pend, tp)
		if len(pend) == 0 {
			delete(g.txnOffsets, pid)
			c.forgetTxnGroup(pid, g.name)
		}
	}
}

// codeOf maps a verification error to a response code.
func codeOf(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// txnOffsetCommit answers TxnOffsetCommit: the offsets are written to the
// group's __consumer_offsets partition in a transactional batch of the
// producer and stay pending until CompleteTxn.
func (c *Coordinator) txnOffsetCommit(req *kmsg.TxnOffsetCommitRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	resp.Topics = make([]kmsg.TxnOffsetCommitResponseTopic, len(req.Topics))
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rt.Partitions[j].Partition = p.Partition
		}
	}
	setAll := func(code int16) kmsg.Response {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	generation, memberID, instance := req.Generation, req.MemberID, req.InstanceID
	if req.Version < 3 {
		generation, memberID, instance = -1, "", nil
	}
	switch {
	case req.Group == "":
		return setAll(kerr.InvalidGroupID.Code)
	case req.ProducerID < 0:
		return setAll(kerr.InvalidProducerIDMapping.Code)
	case req.ProducerEpoch < 0:
		return setAll(kerr.InvalidProducerEpoch.Code)
	}
	if v := c.cfg.VerifyTxnOffsetCommit; v != nil {
		if err := v(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group); err != nil {
			return setAll(codeOf(err))
		}
	}

	g := c.lookup(req.Group, generation < 0)
	if g == nil {
		return setAll(kerr.IllegalGeneration.Code)
	}
	defer g.mu.Unlock()
	// Kafka's ClassicGroup.validateOffsetCommit for transactional commits:
	// no REBALANCE_IN_PROGRESS, and v0-2 (no member fields) are accepted.
	var code int16
	switch {
	case generation < 0 && g.state == stateEmpty:
	case generation >= 0 || memberID != "" || instance != nil:
		if instance != nil {
			if id, ok := g.static[*instance]; !ok {
				code = kerr.UnknownMemberID.Code
			} else if id != memberID {
				code = kerr.FencedInstanceID.Code
			}
		} else if g.members[memberID] == nil {
			code = kerr.UnknownMemberID.Code
		}
		if code == 0 && generation != g.generation {
			code = kerr.IllegalGeneration.Code
		}
	}
	if code == 0 {
		c.mu.Lock()
		if p := c.txns[req.ProducerID]; p != nil && req.ProducerEpoch < p.epoch {
			code = kerr.InvalidProducerEpoch.Code
		}
		c.mu.Unlock()
	}
	if code != 0 {
		setAll(code)
		c.dropIfUnused(g)
		return resp
	}

	now := c.now().UnixMilli()
	var (
		recs   []recordbatch.Record
		writes []offsetWrite
	)
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			leaderEpoch := int32(-1)
			if req.Version >= 2 {
				leaderEpoch = p.LeaderEpoch
			}
			w, ok := c.prepareOffset(t.Topic, p.Partition, p.Offset, p.Metadata, leaderEpoch, now, &resp.Topics[i].Partitions[j].ErrorCode)
			if !ok {
				continue
			}
			recs = append(recs, offsetRecord(g.name, w.tp, &w.entry))
			writes = append(writes, w)
		}
	}
	if len(recs) == 0 {
		c.dropIfUnused(g)
		return resp
	}
	opts := recordbatch.BuildOptions{ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch, BaseSequence: -1, Transactional: true}
	first, err := c.appendBatch(g.partition, opts, recs)
	if err != nil {
		c.log.Error("appending transactional offset commit", "group", g.name, "producer_id", req.ProducerID, "err", err)
		code := storeErrCode(err, true)
		for _, w := range writes {
			*w.code = code
		}
		c.dropIfUnused(g)
		return resp
	}
	pend := g.txnOffsets[req.ProducerID]
	if pend == nil {
		pend = make(map[topicPartition][]offsetEntry)
		g.txnOffsets[req.ProducerID] = pend
	}
	for i, w := range writes {
		w.entry.logOffset = first + int64(i)
		pend[w.tp] = append(pend[w.tp], w.entry)
	}
	c.mu.Lock()
	c.noteProducer(req.ProducerID, req.ProducerEpoch).groups[g.name] = struct{}{}
	c.mu.Unlock()
	return resp
}

// CompleteTxn ends producerID's transaction on a __consumer_offsets
// partition: with commit its pending offsets (TxnOffsetCommit) in the
// partition's groups become committed offsets, replacing only offsets
// written before them; otherwise they are dropped.
//
// The broker calls it after it appended the producer's commit or abort
// marker (a control batch) to __consumer_offsets-partition, as part of
// EndTxn or of aborting a fenced or timed-out transaction. It completes
// every pending offset of the producer, also ones written after the
// marker; CompleteTxnAt, given the marker's offset, does not. A producer
// without pending offsets is no error.
func (c *Coordinator) CompleteTxn(partition int32, producerID int64, producerEpoch int16, commit bool) error {
	return c.CompleteTxnAt(partition, producerID, producerEpoch, commit, math.MaxInt64)
}

// CompleteTxnAt is CompleteTxn for a marker appended at markerOffset (the
// AppendInfo.FirstOffset that storage.Log.AppendControl returned): pending
// offsets written at or after it belong to the producer's next transaction
// and stay pending, exactly as replaying the log decides on restart.
func (c *Coordinator) CompleteTxnAt(partition int32, producerID int64, producerEpoch int16, commit bool, markerOffset int64) error {
	if partition < 0 || int(partition) >= len(c.cfg.Logs) {
		return fmt.Errorf("group: __consumer_offsets-%d does not exist: %w", partition, kerr.UnknownTopicOrPartition)
	}
	if !c.enter() {
		return ErrClosed
	}
	defer c.exit()
	if producerID < 0 {
		return nil // TxnOffsetCommit never stores offsets without a producer id
	}
	c.mu.Lock()
	p := c.noteProducer(producerID, producerEpoch)
	var names []string
	for name := range p.groups {
		if partitionFor(name, len(c.cfg.Logs)) == partition {
			names = append(names, name)
		}
	}
	c.mu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		g := c.lookup(name, false)
		if g == nil {
			c.forgetTxnGroup(producerID, name)
			continue
		}
		c.completeTxn(g, producerID, commit, markerOffset)
		g.mu.Unlock()
	}
	return nil
}

// completeTxn applies a marker to g's pending offsets of pid written
// before markerOffset. g.mu must be held.
func (c *Coordinator) completeTxn(g *group, pid int64, commit bool, markerOffset int64) {
	pend := g.txnOffsets[pid]
	n := 0
	for tp, es := range pend {
		i := 0
		for i < len(es) && es[i].logOffset < markerOffset {
			i++
		}
		if i == 0 {
			continue
		}
		n++
		if e := es[i-1]; commit {
			if cur, ok := g.offsets[tp]; !ok || cur.logOffset < e.logOffset {
				g.offsets[tp] = e
			}
		}
		if i == len(es) {
			delete(pend, tp)
		} else {
			pend[tp] = es[i:]
		}
	}
	if len(pend) == 0 {
		delete(g.txnOffsets, pid)
		c.forgetTxnGroup(pid, g.name)
	}
	if n > 0 {
		c.log.Debug("transactional offsets completed", "group", g.name, "producer_id", pid, "commit", commit, "offsets", n)
	}
	c.dropIfUnused(g)
}

// expireProducers forgets producers without open transactions that have
// not written for the offsets retention time.
func (c *Coordinator) expireProducers(nowMs int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid, p := range c.txns {
		if len(p.groups) == 0 && nowMs-p.lastSeen >= c.cfg.OffsetsRetention.Milliseconds() {
			delete(c.txns, pid)
		}
	}
}
