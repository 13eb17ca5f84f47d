package group

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a group's state, as Kafka names them.
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s state) String() string { return stateNames[s] }

type topicPartition struct {
	topic     string
	partition int32
}

// offsetEntry is one committed offset.
type offsetEntry struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  int64 // ms
	expireTime  int64 // ms; -1 unless committed with an explicit expiry (value v1)
	// logOffset is the __consumer_offsets offset of the record that wrote
	// the commit. When a transaction commits, its offsets replace only
	// those written before them, as in Kafka.
	logOffset int64
}

// joinResult is what a JoinGroup waiter receives.
type joinResult struct {
	code           int16
	memberID       string
	generation     int32
	protocolType   string
	protocol       string
	leader         string
	members        []kmsg.JoinGroupResponseMember
	skipAssignment bool
}

// syncResult is what a SyncGroup waiter receives.
type syncResult struct {
	code         int16
	assignment   []byte
	protocolType string
	protocol     string
}

// member is one group member.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol // by preference
	assignment       []byte

	isNew    bool
	joinWait chan joinResult // non-nil while awaiting a JoinGroup response
	syncWait chan syncResult // non-nil while awaiting a SyncGroup response
	timer    *time.Timer     // session (heartbeat) expiry
	timerSeq uint64
}

// awaitingJoin and awaitingSync report a pending JoinGroup or SyncGroup;
// one whose connection closed still counts, as in Kafka.
func (m *member) awaitingJoin() bool { return m.joinWait != nil }
func (m *member) awaitingSync() bool { return m.syncWait != nil }

// metadataFor returns the member's metadata for protocol.
func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether the member already joined with these protocols.
func (m *member) matches(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].Name != m.protocols[i].Name || !bytes.Equal(ps[i].Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

func (m *member) sendJoin(r joinResult) {
	if m.joinWait != nil {
		m.joinWait <- r // buffered 1, one send per channel
		m.joinWait = nil
	}
}

func (m *member) sendSync(r syncResult) {
	if m.syncWait != nil {
		m.syncWait <- r
		m.syncWait = nil
	}
}

// group is one consumer group; mu guards everything below it.
type group struct {
	mu        sync.Mutex
	name      string
	partition int32

	dead         bool
	state        state
	stateTime    time.Time
	protocolType string // "" when none (a standalone group)
	protocol     string // the selected protocol; "" when none
	generation   int32
	leader       string

	members     map[string]*member
	order       []string          // member ids in join order, for determinism
	static      map[string]string // group.instance.id → member id
	pending     map[string]*time.Timer
	pendingSync map[string]bool

	newMemberAdded bool
	initialJoin    bool
	joinTimer      *time.Timer
	joinSeq        uint64
	syncTimer      *time.Timer
	syncSeq        uint64

	offsets map[topicPartition]offsetEntry
	// txnOffsets are the offsets of open transactions (TxnOffsetCommit),
	// by producer id: invisible to OffsetFetch until the producer's commit
	// marker, dropped by its abort marker. Each partition keeps its writes
	// in log order: a marker applies the last one written before it, and
	// writes after it (the producer's next transaction, when the broker
	// reports the marker late) stay pending.
	txnOffsets map[int64]map[topicPartition][]offsetEntry
}

// hasOffsets reports whether the group stores committed offsets or offsets
// of open transactions.
func (g *group) hasOffsets() bool { return len(g.offsets) > 0 || len(g.txnOffsets) > 0 }

// hasTxnOffset reports whether an open transaction holds an offset for tp.
func (g *group) hasTxnOffset(tp topicPartition) bool {
	for _, pend := range g.txnOffsets {
		if _, ok := pend[tp]; ok {
			return true
		}
	}
	return false
}

func (g *group) setState(s state, now time.Time) {
	g.state = s
	g.stateTime = now
}

func (g *group) stopTimers() {
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
	}
	for _, t := range g.pending {
		t.Stop()
	}
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	if g.syncTimer != nil {
		g.syncTimer.Stop()
	}
}

// rebalanceTimeout is the longest rebalance timeout among the members.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// fenced reports whether instanceID is registered to another member id.
func (g *group) fenced(instanceID *string, memberID string) bool {
	if instanceID == nil {
		return false
	}
	id, ok := g.static[*instanceID]
	return ok && id != memberID
}

// supports reports whether a member with this protocol type and protocols
// may join: an empty group takes any non-empty type and list; otherwise
// the type must match and one protocol must be supported by every member.
func (g *group) supports(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == stateEmpty && len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supportCount(p.Name) == len(g.members) {
			return true
		}
	}
	return false
}

func (g *group) supportCount(protocol string) int {
	n := 0
	for _, m := range g.members {
		for _, p := range m.protocols {
			if p.Name == protocol {
				n++
				break
			}
		}
	}
	return n
}

// selectProtocol picks, among the protocols every member supports, the one
// most members prefer: each member votes for its first supported candidate.
// Ties go to the earlier preference of the first member.
func (g *group) selectProtocol() string {
	votes := make(map[string]int)
	for _, id := range g.order {
		for _, p := range g.members[id].protocols {
			if g.supportCount(p.Name) == len(g.members) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	if len(g.order) > 0 {
		for _, p := range g.members[g.order[0]].protocols {
			if v := votes[p.Name]; v > bestVotes {
				best, bestVotes = p.Name, v
			}
		}
	}
	return best
}

// add adds m; the first member becomes leader and sets the protocol type.
func (g *group) add(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

// remove drops a member; a new leader is the first remaining member.
func (g *group) remove(id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	m.timerSeq++
	delete(g.members, id)
	for i, o := range g.order {
		if o == id {
			g.order = append(g.order[:i:i], g.order[i+1:]...)
			break
		}
	}
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	delete(g.pendingSync, id)
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

// hasAllJoined reports whether every member rejoined and no member id
// handed out by MEMBER_ID_REQUIRED is still outstanding.
func (g *group) hasAllJoined() bool {
	for _, m := range g.members {
		if !m.awaitingJoin() {
			return false
		}
	}
	return len(g.pending) == 0
}

// electJoinedLeader keeps the leader if it rejoined, else picks a member
// that did; false when no member rejoined.
func (g *group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.awaitingJoin() {
		return true
	}
	for _, id := range g.order {
		if g.members[id].awaitingJoin() {
			g.leader = id
			return true
		}
	}
	return false
}

// memberList is the leader's view of the members in a JoinGroup response.
func (g *group) memberList() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.order))
	for _, id := range g.order {
		m := g.members[id]
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadataFor(g.protocol)
		out = append(out, jm)
	}
	return out
}

// newMemberID returns clientID-UUID, Kafka's member id format.
func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: it crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", clientID, b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
