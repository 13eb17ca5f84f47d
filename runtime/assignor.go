package runtime

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/stream"
)

// protocolName is the group protocol of eddy stream threads.
const protocolName = "eddy-streams"

// metadataVersion versions the subscription and assignment user data.
const metadataVersion = 1

// subscription is what a stream thread tells the group leader when it
// joins: who it is and what it has. It travels as the UserData of a
// kmsg.ConsumerMemberMetadata, so tools that read consumer groups still
// see the topics.
type subscription struct {
	Version int    `json:"v"`
	Process string `json:"process"`
	Thread  int    `json:"thread"`
	Server  string `json:"server,omitempty"`
	// Active and Standby are the tasks the thread owns now (stickiness).
	Active  []string `json:"active,omitempty"`
	Standby []string `json:"standby,omitempty"`
	// State is, per task with a checkpoint in the process's state
	// directory, the sum of its checkpointed changelog offsets.
	State map[string]int64 `json:"state,omitempty"`
}

// assignmentData is a member's assignment beyond its partitions: its
// tasks, and which host serves which tasks (for KeyOwner). It travels as
// the UserData of a kmsg.ConsumerMemberAssignment.
type assignmentData struct {
	Version int                 `json:"v"`
	Active  []string            `json:"active,omitempty"`
	Standby []string            `json:"standby,omitempty"`
	Hosts   map[string][]string `json:"hosts,omitempty"`
}

func taskStrings(ids []stream.TaskID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func parseTaskID(s string) (stream.TaskID, error) {
	var id stream.TaskID
	if _, err := fmt.Sscanf(s, "%d_%d", &id.Subtopology, &id.Partition); err != nil {
		return id, fmt.Errorf("runtime: bad task id %q", s)
	}
	return id, nil
}

func parseTaskIDs(ss []string) ([]stream.TaskID, error) {
	out := make([]stream.TaskID, 0, len(ss))
	for _, s := range ss {
		id, err := parseTaskID(s)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func compareTasks(a, b stream.TaskID) int {
	return cmp.Or(cmp.Compare(a.Subtopology, b.Subtopology), cmp.Compare(a.Partition, b.Partition))
}

// member is one group member as the assignor sees it.
type member struct {
	id      string
	process string
	thread  int
	server  string
	active  map[stream.TaskID]bool
	standby map[stream.TaskID]bool
	state   map[stream.TaskID]int64
}

// memberAssignment is what the assignor gives one member.
type memberAssignment struct {
	active, standby []stream.TaskID
}

// assignTasks places tasks on members:
//
//  1. Active tasks stay with the member that owns them now while it is
//     under its fair share (ceil(tasks/members)), overall and of the
//     task's sub-topology.
//  2. Remaining tasks go to the least-loaded member, then the one with the
//     fewest tasks of the same sub-topology, then one whose process has
//     the task's state on disk (the largest checkpoint).
//  3. Tasks move from the most to the least loaded member until the loads
//     differ by at most one, preferring tasks whose state the receiver has.
//  4. Each stateful task gets up to standbys standby copies, each on a
//     process other than the active's and the other copies', preferring
//     the member that had it, then a process with its state, then the
//     least loaded member.
//
// All partitions of a task go to one member (the caller turns tasks into
// partitions), which is what co-partitioning needs.
func assignTasks(tasks []stream.TaskID, stateful map[int]bool, members []member, standbys int) map[string]*memberAssignment {
	out := make(map[string]*memberAssignment, len(members))
	if len(members) == 0 {
		return out
	}
	ms := slices.Clone(members)
	sort.SliceStable(ms, func(i, j int) bool {
		return cmp.Or(cmp.Compare(ms[i].process, ms[j].process), cmp.Compare(ms[i].thread, ms[j].thread), cmp.Compare(ms[i].id, ms[j].id)) < 0
	})
	tasks = slices.Clone(tasks)
	slices.SortFunc(tasks, compareTasks)
	for _, m := range ms {
		out[m.id] = &memberAssignment{}
	}
	load := map[string]int{}
	owner := map[stream.TaskID]string{}
	processState := map[string]map[stream.TaskID]int64{}
	for _, m := range ms {
		ps := processState[m.process]
		if ps == nil {
			ps = map[stream.TaskID]int64{}
			processState[m.process] = ps
		}
		for id, off := range m.state {
			ps[id] = max(ps[id], off+1) // +1: a checkpoint at 0 still counts
		}
	}
	stateOf := func(m member, id stream.TaskID) int64 { return processState[m.process][id] }

	fair := (len(tasks) + len(ms) - 1) / len(ms)
	// Per sub-topology loads, so each sub-topology's tasks spread too.
	subTasks := map[int]int{}
	for _, id := range tasks {
		subTasks[id.Subtopology]++
	}
	subLoad := map[string]map[int]int{}
	for _, m := range ms {
		subLoad[m.id] = map[int]int{}
	}
	give := func(id stream.TaskID, m string) { owner[id] = m; load[m]++; subLoad[m][id.Subtopology]++ }
	take := func(id stream.TaskID) { m := owner[id]; load[m]--; subLoad[m][id.Subtopology]--; delete(owner, id) }
	// 1. Sticky, within the fair share overall and per sub-topology.
	for _, id := range tasks {
		subFair := (subTasks[id.Subtopology] + len(ms) - 1) / len(ms)
		for _, m := range ms {
			if m.active[id] && load[m.id] < fair && subLoad[m.id][id.Subtopology] < subFair {
				give(id, m.id)
				break
			}
		}
	}
	// 2. The rest, to the least loaded, then the one with the fewest of the
	// task's sub-topology, then the one with the task's state.
	for _, id := range tasks {
		if _, ok := owner[id]; ok {
			continue
		}
		best := 0
		for i, m := range ms[1:] {
			b := ms[best]
			if c := cmp.Or(cmp.Compare(load[m.id], load[b.id]), cmp.Compare(subLoad[m.id][id.Subtopology], subLoad[b.id][id.Subtopology]),
				cmp.Compare(stateOf(b, id), stateOf(m, id))); c < 0 {
				best = i + 1
			}
		}
		give(id, ms[best].id)
	}
	// 3. Balance: move from the most to the least loaded member, picking
	// the task the receiver has the state of, else of the sub-topology it
	// has the fewest of.
	for {
		hi, lo := 0, 0
		for i, m := range ms {
			if load[m.id] > load[ms[hi].id] {
				hi = i
			}
			if load[m.id] < load[ms[lo].id] {
				lo = i
			}
		}
		if load[ms[hi].id]-load[ms[lo].id] <= 1 {
			break
		}
		recv := ms[lo]
		var move stream.TaskID
		found := false
		for _, id := range tasks {
			if owner[id] != ms[hi].id {
				continue
			}
			if !found || cmp.Or(cmp.Compare(stateOf(recv, move), stateOf(recv, id)),
				cmp.Compare(subLoad[recv.id][id.Subtopology], subLoad[recv.id][move.Subtopology])) < 0 {
				move, found = id, true
			}
		}
		take(move)
		give(move, recv.id)
	}
	processOf := map[string]string{}
	byID := map[string]member{}
	for _, m := range ms {
		processOf[m.id] = m.process
		byID[m.id] = m
	}
	for _, id := range tasks {
		out[owner[id]].active = append(out[owner[id]].active, id)
	}
	// 4. Standbys.
	for _, id := range tasks {
		if !stateful[id.Subtopology] {
			continue
		}
		used := map[string]bool{processOf[owner[id]]: true}
		for range standbys {
			best := -1
			for i, m := range ms {
				if used[m.process] {
					continue
				}
				if best < 0 {
					best = i
					continue
				}
				b := ms[best]
				mHad, bHad := m.standby[id] || m.active[id], b.standby[id] || b.active[id]
				switch {
				case mHad != bHad:
					if mHad {
						best = i
					}
				case (stateOf(m, id) > 0) != (stateOf(b, id) > 0):
					if stateOf(m, id) > 0 {
						best = i
					}
				case load[m.id] < load[b.id]:
					best = i
				}
			}
			if best < 0 {
				break // fewer processes than replicas
			}
			m := ms[best]
			used[m.process] = true
			load[m.id]++
			out[m.id].standby = append(out[m.id].standby, id)
		}
	}
	return out
}

// balancer is a stream thread's kgo.GroupBalancer. Each thread has its
// own: it reports the thread's tasks when joining and keeps the user data
// of the last assignment for the thread to read in OnPartitionsAssigned.
type balancer struct {
	app    *App
	thread int

	mu       sync.Mutex
	active   []stream.TaskID // owned now, reported on join
	standby  []stream.TaskID
	assigned *assignmentData // last assignment's user data
}

var _ kgo.GroupBalancer = (*balancer)(nil)

func (b *balancer) ProtocolName() string { return protocolName }
func (b *balancer) IsCooperative() bool  { return false }

// setOwned records the tasks the thread owns, for the next join.
func (b *balancer) setOwned(active, standby []stream.TaskID) {
	b.mu.Lock()
	b.active, b.standby = slices.Clone(active), slices.Clone(standby)
	b.mu.Unlock()
}

// takeAssignment returns the user data of the last assignment.
func (b *balancer) takeAssignment() *assignmentData {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.assigned
}

func (b *balancer) JoinGroupMetadata(topics []string, _ map[string][]int32, _ int32) []byte {
	b.mu.Lock()
	sub := subscription{
		Version: metadataVersion,
		Process: b.app.processID,
		Thread:  b.thread,
		Server:  b.app.cfg.ApplicationServer,
		Active:  taskStrings(b.active),
		Standby: taskStrings(b.standby),
	}
	b.mu.Unlock()
	sub.State = b.app.stateOffsets()
	ud, _ := json.Marshal(sub)
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 1
	meta.Topics = topics
	meta.UserData = ud
	return meta.AppendTo(nil)
}

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var ma kmsg.ConsumerMemberAssignment
	if err := ma.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("runtime: bad assignment: %w", err)
	}
	var ad assignmentData
	if len(ma.UserData) > 0 {
		if err := json.Unmarshal(ma.UserData, &ad); err != nil {
			return nil, fmt.Errorf("runtime: bad assignment user data: %w", err)
		}
	}
	out := make(map[string][]int32, len(ma.Topics))
	for _, t := range ma.Topics {
		out[t.Topic] = t.Partitions
	}
	b.mu.Lock()
	b.assigned = &ad
	b.mu.Unlock()
	return out, nil
}

func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	mb := &memberBalancer{app: b.app}
	topics := map[string]struct{}{}
	for _, jm := range members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(jm.ProtocolMetadata); err != nil {
			return nil, nil, fmt.Errorf("runtime: member %s: bad metadata: %w", jm.MemberID, err)
		}
		var sub subscription
		if err := json.Unmarshal(meta.UserData, &sub); err != nil {
			return nil, nil, fmt.Errorf("runtime: member %s: bad subscription: %w", jm.MemberID, err)
		}
		if sub.Version != metadataVersion {
			return nil, nil, fmt.Errorf("runtime: member %s speaks version %d, this worker %d", jm.MemberID, sub.Version, metadataVersion)
		}
		m := member{id: jm.MemberID, process: sub.Process, thread: sub.Thread, server: sub.Server,
			active: map[stream.TaskID]bool{}, standby: map[stream.TaskID]bool{}, state: map[stream.TaskID]int64{}}
		for _, s := range sub.Active {
			if id, err := parseTaskID(s); err == nil {
				m.active[id] = true
			}
		}
		for _, s := range sub.Standby {
			if id, err := parseTaskID(s); err == nil {
				m.standby[id] = true
			}
		}
		for s, off := range sub.State {
			if id, err := parseTaskID(s); err == nil {
				m.state[id] = off
			}
		}
		mb.members = append(mb.members, m)
		for _, t := range meta.Topics {
			topics[t] = struct{}{}
		}
	}
	return mb, topics, nil
}

// memberBalancer runs the assignor on the group leader.
type memberBalancer struct {
	app     *App
	members []member
}

func (mb *memberBalancer) Balance(map[string]int32) kgo.IntoSyncAssignment {
	panic("unreachable: BalanceOrError is used")
}

func (mb *memberBalancer) BalanceOrError(known map[string]int32) (kgo.IntoSyncAssignment, error) {
	p := mb.app.plan
	// The leader's metadata may not show a topic created a moment ago:
	// fall back on the counts this worker checked at startup.
	counts := make(map[string]int32, len(known))
	for tp, n := range known {
		counts[tp] = n
	}
	mb.app.mu.Lock()
	for tp, n := range mb.app.counts {
		counts[tp] = max(counts[tp], n)
	}
	mb.app.mu.Unlock()
	tasks := p.tasks(counts)
	plan := assignTasks(tasks, p.stateful, mb.members, mb.app.cfg.NumStandbyReplicas)
	hosts := map[string][]string{}
	for _, m := range mb.members {
		if m.server != "" {
			hosts[m.server] = append(hosts[m.server], taskStrings(plan[m.id].active)...)
		}
	}
	for h := range hosts {
		sort.Strings(hosts[h])
	}
	var out syncPlan
	for _, m := range mb.members {
		a := plan[m.id]
		ma := kmsg.NewConsumerMemberAssignment()
		parts := map[string][]int32{}
		for _, id := range a.active {
			for tp, part := range p.partitionsOf(id, counts) {
				parts[tp] = append(parts[tp], part)
			}
		}
		for _, tp := range slices.Sorted(maps.Keys(parts)) {
			at := kmsg.NewConsumerMemberAssignmentTopic()
			at.Topic = tp
			at.Partitions = parts[tp]
			slices.Sort(at.Partitions)
			ma.Topics = append(ma.Topics, at)
		}
		ud, err := json.Marshal(assignmentData{Version: metadataVersion, Active: taskStrings(a.active), Standby: taskStrings(a.standby), Hosts: hosts})
		if err != nil {
			return nil, err
		}
		ma.UserData = ud
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = m.id
		sa.MemberAssignment = ma.AppendTo(nil)
		out = append(out, sa)
	}
	if mb.app.log != nil {
		mb.app.log.Info("assigned tasks", "members", len(mb.members), "tasks", len(tasks))
	}
	return out, nil
}

type syncPlan []kmsg.SyncGroupRequestGroupAssignment

func (s syncPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment { return s }
