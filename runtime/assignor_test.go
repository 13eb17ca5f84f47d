package runtime

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/stream"
)

func tid(sub int, p int32) stream.TaskID { return stream.TaskID{Subtopology: sub, Partition: p} }

func allTasks(subs int, parts int32) []stream.TaskID {
	var out []stream.TaskID
	for s := range subs {
		for p := range parts {
			out = append(out, tid(s, p))
		}
	}
	return out
}

func mem(id, process string, active ...stream.TaskID) member {
	m := member{id: id, process: process, active: map[stream.TaskID]bool{}, standby: map[stream.TaskID]bool{}, state: map[stream.TaskID]int64{}}
	for _, a := range active {
		m.active[a] = true
	}
	return m
}

// check verifies every task is active exactly once and loads are balanced.
func check(t *testing.T, tasks []stream.TaskID, plan map[string]*memberAssignment) {
	t.Helper()
	seen := map[stream.TaskID]int{}
	lo, hi := 1<<30, 0
	for _, a := range plan {
		for _, id := range a.active {
			seen[id]++
		}
		lo, hi = min(lo, len(a.active)), max(hi, len(a.active))
	}
	for _, id := range tasks {
		if seen[id] != 1 {
			t.Errorf("task %s assigned %d times", id, seen[id])
		}
	}
	if hi-lo > 1 {
		t.Errorf("unbalanced: %d..%d tasks per member", lo, hi)
	}
}

func TestAssignBalancedAndSpread(t *testing.T) {
	tasks := allTasks(2, 4)
	ms := []member{mem("a", "p1"), mem("b", "p2"), mem("c", "p3")}
	plan := assignTasks(tasks, nil, ms, 0)
	check(t, tasks, plan)
	// Two members: each gets half of each sub-topology.
	plan = assignTasks(tasks, nil, ms[:2], 0)
	check(t, tasks, plan)
	for id, a := range plan {
		subs := map[int]int{}
		for _, tk := range a.active {
			subs[tk.Subtopology]++
		}
		if subs[0] != 2 || subs[1] != 2 {
			t.Errorf("member %s: %v, want 2 tasks of each sub-topology", id, a.active)
		}
	}
}

func TestAssignSticky(t *testing.T) {
	tasks := allTasks(2, 4)
	// One member owned everything; a second joins: the first keeps half,
	// spread over both sub-topologies.
	a := mem("a", "p1", tasks...)
	b := mem("b", "p2")
	plan := assignTasks(tasks, nil, []member{a, b}, 0)
	check(t, tasks, plan)
	for _, id := range plan["a"].active {
		if !a.active[id] {
			t.Errorf("a got %s it did not own", id)
		}
	}
	// A balanced assignment stays as it is.
	a2 := mem("a", "p1", plan["a"].active...)
	b2 := mem("b", "p2", plan["b"].active...)
	again := assignTasks(tasks, nil, []member{b2, a2}, 0)
	if !slices.Equal(again["a"].active, plan["a"].active) || !slices.Equal(again["b"].active, plan["b"].active) {
		t.Errorf("balanced assignment moved: %v %v → %v %v", plan["a"].active, plan["b"].active, again["a"].active, again["b"].active)
	}
	// A member leaves: its tasks go to the others, nothing else moves.
	c := mem("c", "p3")
	three := assignTasks(tasks, nil, []member{a2, b2, c}, 0)
	check(t, tasks, three)
	two := assignTasks(tasks, nil, []member{mem("a", "p1", three["a"].active...), mem("b", "p2", three["b"].active...)}, 0)
	check(t, tasks, two)
	for _, m := range []string{"a", "b"} {
		for _, id := range three[m].active {
			if !slices.Contains(two[m].active, id) {
				t.Errorf("%s lost %s when c left", m, id)
			}
		}
	}
}

func TestAssignPrefersState(t *testing.T) {
	tasks := allTasks(1, 2)
	a := mem("a", "p1")
	b := mem("b", "p2")
	b.state[tid(0, 0)] = 100
	plan := assignTasks(tasks, nil, []member{a, b}, 0)
	if !slices.Equal(plan["b"].active, []stream.TaskID{tid(0, 0)}) {
		t.Errorf("b (with the state of 0_0) got %v", plan["b"].active)
	}
}

func TestAssignStandbys(t *testing.T) {
	tasks := allTasks(2, 3)
	stateful := map[int]bool{1: true}
	// Two threads in p1, one in p2, one in p3.
	ms := []member{mem("a1", "p1"), mem("a2", "p1"), mem("b", "p2"), mem("c", "p3")}
	for _, standbys := range []int{1, 2, 5} {
		plan := assignTasks(tasks, stateful, ms, standbys)
		check(t, tasks, plan)
		processOf := map[string]string{"a1": "p1", "a2": "p1", "b": "p2", "c": "p3"}
		activeProc := map[stream.TaskID]string{}
		for m, a := range plan {
			for _, id := range a.active {
				activeProc[id] = processOf[m]
			}
		}
		copies := map[stream.TaskID][]string{}
		for m, a := range plan {
			for _, id := range a.standby {
				if !stateful[id.Subtopology] {
					t.Errorf("standby of stateless task %s", id)
				}
				p := processOf[m]
				if p == activeProc[id] || slices.Contains(copies[id], p) {
					t.Errorf("standbys=%d: standby of %s on process %s twice (active on %s)", standbys, id, p, activeProc[id])
				}
				copies[id] = append(copies[id], p)
			}
		}
		for _, id := range tasks {
			want := 0
			if stateful[id.Subtopology] {
				want = min(standbys, 2) // three processes
			}
			if len(copies[id]) != want {
				t.Errorf("standbys=%d: task %s has %d standbys, want %d", standbys, id, len(copies[id]), want)
			}
		}
	}
	// The standby stays where it was.
	b := mem("b", "p2", tid(1, 0))
	c := mem("c", "p3")
	c.standby[tid(1, 0)] = true
	a := mem("a", "p1")
	plan := assignTasks([]stream.TaskID{tid(1, 0)}, stateful, []member{a, b, c}, 1)
	if !slices.Equal(plan["c"].standby, []stream.TaskID{tid(1, 0)}) {
		t.Errorf("standby moved: %+v %+v %+v", plan["a"], plan["b"], plan["c"])
	}
}

func TestMemberBalancerPartitions(t *testing.T) {
	a := &App{cfg: Config{NumStandbyReplicas: 1}, plan: &plan{
		subs: []stream.SubtopologyInfo{
			{ID: 0, SourceTopics: []string{"l", "r"}},
			{ID: 1, SourceTopics: []string{"app-x-repartition"}},
		},
		stateful: map[int]bool{1: true},
	}}
	var members []kmsg.JoinGroupResponseMember
	for i, p := range []string{"p1", "p2"} {
		b := &balancer{app: &App{cfg: Config{ApplicationServer: fmt.Sprintf("h%d:80", i)}, processID: p}, thread: 0}
		meta := b.JoinGroupMetadata([]string{"l", "r", "app-x-repartition"}, nil, 0)
		members = append(members, kmsg.JoinGroupResponseMember{MemberID: fmt.Sprintf("m%d", i), ProtocolMetadata: meta})
	}
	mb, topics, err := (&balancer{app: a}).MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) != 3 {
		t.Errorf("topics %v", topics)
	}
	plan, err := mb.(*memberBalancer).BalanceOrError(map[string]int32{"l": 2, "r": 2, "app-x-repartition": 2})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int32{}
	hosts := map[string][]string{}
	for _, sa := range plan.IntoSyncAssignment() {
		b := &balancer{}
		parts, err := b.ParseSyncAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		ad := b.takeAssignment()
		if len(ad.Standby) != 1 {
			t.Errorf("%s standbys %v", sa.MemberID, ad.Standby)
		}
		hosts = ad.Hosts
		// A task's partitions of l and r go together.
		if !slices.Equal(parts["l"], parts["r"]) {
			t.Errorf("%s: l %v r %v not co-partitioned", sa.MemberID, parts["l"], parts["r"])
		}
		for tp, ps := range parts {
			got[tp] = append(got[tp], ps...)
		}
	}
	for tp, ps := range got {
		slices.Sort(ps)
		if !slices.Equal(ps, []int32{0, 1}) {
			t.Errorf("%s partitions %v", tp, ps)
		}
	}
	js, _ := json.Marshal(hosts)
	if len(hosts) != 2 || len(hosts["h0:80"]) != 2 || len(hosts["h1:80"]) != 2 {
		t.Errorf("hosts %s", js)
	}
}

// Kafka's murmur2 test vectors (Utils.murmur2), masked and reduced as
// its default partitioner does: the repartition topics and KeyOwner rely
// on kgo hashing keys exactly like Java clients.
func TestKeyPartitionMatchesKafka(t *testing.T) {
	for key, hash := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		for _, n := range []int32{1, 3, 7, 100} {
			want := int32(uint32(hash)&0x7fffffff) % n
			if got := KeyPartition([]byte(key), n); got != want {
				t.Errorf("KeyPartition(%q, %d) = %d, want %d", key, n, got, want)
			}
		}
	}
}
