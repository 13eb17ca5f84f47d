package group

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/internal/recordbatch"
)

// Key versions of __consumer_offsets records, as Kafka writes them.
const (
	offsetKeyVersion   = 1 // OffsetCommitKey (0 and 1 are the same)
	groupKeyVersion    = 2 // GroupMetadataKey
	offsetValueVersion = 3 // OffsetCommitValue with leader epoch
	groupValueVersion  = 3 // GroupMetadataValue with instance ids
	replayReadBytes    = 1 << 20
)

// offsetRecord encodes a committed offset; a nil entry is a tombstone.
func offsetRecord(group string, tp topicPartition, e *offsetEntry) recordbatch.Record {
	k := kmsg.NewOffsetCommitKey()
	k.Version, k.Group, k.Topic, k.Partition = offsetKeyVersion, group, tp.topic, tp.partition
	r := recordbatch.Record{Key: k.AppendTo(nil)}
	if e != nil {
		v := kmsg.NewOffsetCommitValue()
		v.Version = offsetValueVersion
		v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = e.offset, e.leaderEpoch, e.metadata, e.commitTime
		r.Value = v.AppendTo(nil)
	}
	return r
}

// groupRecord encodes group metadata; a nil value is a tombstone.
func groupRecord(group string, v *kmsg.GroupMetadataValue) recordbatch.Record {
	k := kmsg.NewGroupMetadataKey()
	k.Version, k.Group = groupKeyVersion, group
	r := recordbatch.Record{Key: k.AppendTo(nil)}
	if v != nil {
		r.Value = v.AppendTo(nil)
	}
	return r
}

// metadataValue is the group's current metadata as Kafka stores it.
func (g *group) metadataValue() *kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		v.Protocol = cloneString(&g.protocol)
	}
	if g.leader != "" {
		v.Leader = cloneString(&g.leader)
	}
	v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	for _, id := range g.order {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = id
		vm.InstanceID = cloneString(m.instanceID)
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout.Milliseconds())
		vm.SessionTimeoutMillis = int32(m.sessionTimeout.Milliseconds())
		vm.Subscription = m.metadataFor(g.protocol)
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		vm.Assignment = m.assignment
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return &v
}

// storeGroup appends the group's metadata. g.mu must be held.
func (c *Coordinator) storeGroup(g *group) error {
	return c.append(g.partition, []recordbatch.Record{groupRecord(g.name, g.metadataValue())})
}

// append writes records as one batch to a __consumer_offsets partition.
func (c *Coordinator) append(partition int32, recs []recordbatch.Record) error {
	_, err := c.appendBatch(partition, recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	return err
}

// appendBatch writes records as one batch with the given batch fields and
// returns the offset of its first record (records follow in order).
func (c *Coordinator) appendBatch(partition int32, opts recordbatch.BuildOptions, recs []recordbatch.Record) (int64, error) {
	now := c.now().UnixMilli()
	for i := range recs {
		recs[i].Offset = int64(i)
		recs[i].Timestamp = now
	}
	info, err := c.cfg.Logs[partition].Append(recordbatch.Build(opts, recs))
	if err != nil {
		return 0, fmt.Errorf("append to __consumer_offsets-%d: %w", partition, err)
	}
	if c.cfg.Appended != nil {
		c.cfg.Appended(partition)
	}
	return info.FirstOffset, nil
}

// record is one decoded __consumer_offsets record.
type record struct {
	group  string
	offset bool // an offset record; else group metadata
	tp     topicPartition
	entry  *offsetEntry             // nil: offset tombstone
	meta   *kmsg.GroupMetadataValue // nil: group tombstone
}

// decodeRecord decodes one __consumer_offsets record.
func decodeRecord(key, value []byte) (record, error) {
	var r record
	if len(key) < 2 {
		return r, fmt.Errorf("key of %d bytes: %w", len(key), kerr.CorruptMessage)
	}
	switch ver := int16(binary.BigEndian.Uint16(key)); ver {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return r, fmt.Errorf("offset commit key: %v: %w", err, kerr.CorruptMessage)
		}
		r.group, r.offset, r.tp = k.Group, true, topicPartition{k.Topic, k.Partition}
		if value == nil {
			return r, nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return r, fmt.Errorf("offset commit value: %v: %w", err, kerr.CorruptMessage)
		}
		if v.Version < 0 || v.Version > 4 {
			return r, fmt.Errorf("offset commit value version %d: %w", v.Version, kerr.CorruptMessage)
		}
		e := &offsetEntry{offset: v.Offset, leaderEpoch: -1, metadata: v.Metadata, commitTime: v.CommitTimestamp, expireTime: -1}
		if v.Version >= 3 {
			e.leaderEpoch = v.LeaderEpoch
		}
		if v.Version == 1 {
			e.expireTime = v.ExpireTimestamp
		}
		r.entry = e
		return r, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return r, fmt.Errorf("group metadata key: %v: %w", err, kerr.CorruptMessage)
		}
		r.group = k.Group
		if value == nil {
			return r, nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return r, fmt.Errorf("group metadata value: %v: %w", err, kerr.CorruptMessage)
		}
		if v.Version < 0 || v.Version > 4 {
			return r, fmt.Errorf("group metadata value version %d: %w", v.Version, kerr.CorruptMessage)
		}
		r.meta = &v
		return r, nil
	default:
		return r, fmt.Errorf("unknown key version %d: %w", ver, kerr.CorruptMessage)
	}
}

// loader accumulates replayed records, last write wins.
type loader struct {
	groups    map[string]*loaded
	producers map[int64]*txnProducer // transactional producers seen
}

type loaded struct {
	partition int32
	meta      *kmsg.GroupMetadataValue
	offsets   map[topicPartition]offsetEntry
	txn       map[int64]map[topicPartition][]offsetEntry // still open at the end
}

func newLoader() *loader {
	return &loader{groups: make(map[string]*loaded), producers: make(map[int64]*txnProducer)}
}

func (l *loader) group(name string, partition int32) *loaded {
	lg := l.groups[name]
	if lg == nil {
		lg = &loaded{offsets: make(map[topicPartition]offsetEntry), txn: make(map[int64]map[topicPartition][]offsetEntry)}
		l.groups[name] = lg
	}
	lg.partition = partition
	return lg
}

// apply applies a record that is not part of a transaction.
func (l *loader) apply(r record, partition int32) {
	lg := l.group(r.group, partition)
	switch {
	case r.offset && r.entry == nil:
		delete(lg.offsets, r.tp)
	case r.offset:
		lg.offsets[r.tp] = *r.entry
	default:
		lg.meta = r.meta
	}
}

// commitTxnOffset applies an offset of a committed transaction: it replaces
// only an offset written before it (Kafka's rule, so that a plain commit
// made while the transaction was open wins).
func (l *loader) commitTxnOffset(name string, tp topicPartition, e offsetEntry, partition int32) {
	lg := l.group(name, partition)
	if cur, ok := lg.offsets[tp]; !ok || cur.logOffset < e.logOffset {
		lg.offsets[tp] = e
	}
}

// sawProducer records a transactional batch or marker of a producer.
func (l *loader) sawProducer(pid int64, epoch int16, ts int64) {
	p := l.producers[pid]
	if p == nil {
		p = &txnProducer{epoch: epoch, groups: make(map[string]struct{})}
		l.producers[pid] = p
	}
	p.epoch = max(p.epoch, epoch)
	p.lastSeen = max(p.lastSeen, ts)
}

// txnKey is a group's partition in an open transaction during replay.
type txnKey struct {
	group string
	tp    topicPartition
}

// openTxn is what one producer's open transaction wrote to a partition.
type openTxn struct {
	offsets map[txnKey]offsetEntry
	meta    []record // group metadata (eddy never writes it transactionally)
}

// build turns the replayed records into groups, without timers.
func (c *Coordinator) build(l *loader) []*group {
	names := make([]string, 0, len(l.groups))
	for n := range l.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []*group
	for _, name := range names {
		lg := l.groups[name]
		if lg.meta == nil && len(lg.offsets) == 0 && len(lg.txn) == 0 {
			continue
		}
		g := c.newGroup(name)
		if g.partition != lg.partition {
			c.log.Warn("group found in an unexpected __consumer_offsets partition", "group", name, "found", lg.partition, "expected", g.partition)
		}
		g.offsets = lg.offsets
		g.txnOffsets = lg.txn
		if m := lg.meta; m != nil {
			c.loadMetadata(g, m)
		} else {
			g.stateTime = time.Time{}
		}
		out = append(out, g)
	}
	return out
}

// loadMetadata restores a group from its stored metadata: Stable with its
// members, or Empty.
func (c *Coordinator) loadMetadata(g *group, v *kmsg.GroupMetadataValue) {
	g.generation = v.Generation
	if v.Protocol != nil {
		g.protocol = *v.Protocol
	}
	g.stateTime = time.Time{}
	if v.CurrentStateTimestamp >= 0 {
		g.stateTime = time.UnixMilli(v.CurrentStateTimestamp)
	}
	clamp := func(ms int32) time.Duration {
		return min(max(millis(ms), c.cfg.MinSessionTimeout), c.cfg.MaxSessionTimeout)
	}
	for _, vm := range v.Members {
		if vm.MemberID == "" || g.members[vm.MemberID] != nil {
			continue
		}
		if vm.InstanceID != nil {
			if _, dup := g.static[*vm.InstanceID]; dup {
				continue
			}
		}
		m := &member{
			id:             vm.MemberID,
			instanceID:     cloneString(vm.InstanceID),
			clientID:       vm.ClientID,
			clientHost:     vm.ClientHost,
			sessionTimeout: clamp(vm.SessionTimeoutMillis),
			protocolType:   v.ProtocolType,
			protocols:      []kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: slices.Clone(vm.Subscription)}},
			assignment:     slices.Clone(vm.Assignment),
		}
		m.rebalanceTimeout = m.sessionTimeout
		if vm.RebalanceTimeoutMillis > 0 {
			m.rebalanceTimeout = millis(vm.RebalanceTimeoutMillis)
		}
		g.add(m)
	}
	g.protocolType = v.ProtocolType
	if v.Leader != nil && g.members[*v.Leader] != nil {
		g.leader = *v.Leader
	}
	if len(g.members) > 0 {
		g.state = stateStable
	} else {
		g.state = stateEmpty
		g.protocol, g.leader = "", ""
	}
}

// replay rebuilds every group from the logs and starts member timers.
func (c *Coordinator) replay() error {
	l := newLoader()
	for p, log := range c.cfg.Logs {
		if err := c.replayLog(int32(p), log, l); err != nil {
			return err
		}
	}
	groups := c.build(l)
	c.txns = l.producers
	for _, g := range groups {
		g.mu.Lock()
		c.groups[g.name] = g
		for pid := range g.txnOffsets {
			p := c.txns[pid]
			if p == nil { // unreachable: pending offsets come from a batch of pid
				p = &txnProducer{epoch: -1, groups: make(map[string]struct{})}
				c.txns[pid] = p
			}
			p.groups[g.name] = struct{}{}
		}
		for _, id := range g.order {
			m := g.members[id]
			c.scheduleSession(g, m, m.sessionTimeout)
		}
		g.mu.Unlock()
	}
	if len(groups) > 0 {
		c.log.Info("loaded consumer groups", "groups", len(groups))
	}
	return nil
}

// replayLog reads one partition from its start and applies its records.
// Records that fail to decode are logged and skipped. Transactional
// records (TxnOffsetCommit) wait for their producer's commit marker and
// are dropped on abort; those without a marker stay pending. A plain
// offset tombstone also deletes the partition's offsets in open
// transactions (DeleteGroups, OffsetDelete and deleted topics write them).
func (c *Coordinator) replayLog(p int32, log *storage.Log, l *loader) error {
	pending := make(map[int64]*openTxn) // open transactions by producer id
	off, end := log.StartOffset(), log.EndOffset()
	for off < end {
		ri, err := log.Read(off, replayReadBytes)
		if err != nil {
			return fmt.Errorf("group: reading __consumer_offsets-%d at offset %d: %w", p, off, err)
		}
		batches, err := recordbatch.Split(ri.Records)
		if err != nil {
			return fmt.Errorf("group: reading __consumer_offsets-%d at offset %d: %w", p, off, err)
		}
		start := off
		for _, b := range batches {
			h, err := recordbatch.ParseHeader(b)
			if err != nil {
				return fmt.Errorf("group: reading __consumer_offsets-%d at offset %d: %w", p, off, err)
			}
			next := h.LastOffset() + 1
			if next <= off {
				continue
			}
			recs, err := recordbatch.Records(b)
			if err != nil {
				c.log.Error("skipping undecodable __consumer_offsets batch", "partition", p, "offset", h.BaseOffset, "err", err)
				off = next
				continue
			}
			if (h.Transactional() || h.Control()) && h.ProducerID >= 0 {
				l.sawProducer(h.ProducerID, h.ProducerEpoch, h.MaxTimestamp)
			}
			for _, r := range recs {
				if r.Offset < off {
					continue
				}
				if h.Control() {
					// Control record key: int16 version, int16 type (1 = commit).
					if len(r.Key) >= 4 && binary.BigEndian.Uint16(r.Key[2:4]) == 1 {
						if t := pending[h.ProducerID]; t != nil {
							commitReplayed(l, t, p)
						}
					}
					delete(pending, h.ProducerID)
					continue
				}
				rec, err := decodeRecord(r.Key, r.Value)
				if err != nil {
					c.log.Error("skipping bad __consumer_offsets record", "partition", p, "offset", r.Offset, "err", err)
					continue
				}
				if rec.entry != nil {
					rec.entry.logOffset = r.Offset
				}
				if !h.Transactional() {
					l.apply(rec, p)
					if rec.offset && rec.entry == nil {
						for _, t := range pending {
							delete(t.offsets, txnKey{rec.group, rec.tp})
						}
					}
					continue
				}
				t := pending[h.ProducerID]
				if t == nil {
					t = &openTxn{offsets: make(map[txnKey]offsetEntry)}
					pending[h.ProducerID] = t
				}
				switch {
				case !rec.offset:
					t.meta = append(t.meta, rec)
				case rec.entry == nil:
					delete(t.offsets, txnKey{rec.group, rec.tp})
				default:
					t.offsets[txnKey{rec.group, rec.tp}] = *rec.entry
				}
			}
			off = next
		}
		if off == start {
			// Nothing readable at off (a gap left by compaction, say):
			// stop rather than spin.
			c.log.Warn("no progress replaying __consumer_offsets", "partition", p, "offset", off, "end", end)
			break
		}
	}
	for pid, t := range pending {
		for k, e := range t.offsets {
			lg := l.group(k.group, p)
			if lg.txn[pid] == nil {
				lg.txn[pid] = make(map[topicPartition][]offsetEntry)
			}
			lg.txn[pid][k.tp] = []offsetEntry{e}
		}
	}
	if len(pending) > 0 {
		c.log.Info("__consumer_offsets has open transactions; their offsets stay pending until their markers", "partition", p, "producers", len(pending))
	}
	return nil
}

// commitReplayed applies a transaction whose commit marker was replayed.
func commitReplayed(l *loader, t *openTxn, partition int32) {
	for k, e := range t.offsets {
		l.commitTxnOffset(k.group, k.tp, e, partition)
	}
	for _, rec := range t.meta {
		l.apply(rec, partition)
	}
}
