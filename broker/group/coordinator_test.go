package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
)

const testPartitions = 3

// harness is a Coordinator on real logs in a temp dir.
type harness struct {
	t    *testing.T
	dir  string
	cfg  Config
	logs []*storage.Log
	c    *Coordinator
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir()}
	h.cfg = Config{
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinSessionTimeout: 10 * time.Millisecond,
		MaxSessionTimeout: time.Minute,
		// Lets joinAll's concurrent members meet in one generation.
		InitialRebalanceDelay: 200 * time.Millisecond,
	}
	if mod != nil {
		mod(&h.cfg)
	}
	h.open()
	t.Cleanup(h.close)
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

func (h *harness) open() {
	h.t.Helper()
	h.logs = nil
	scfg := storage.DefaultConfig()
	scfg.CleanupPolicy = "compact"
	scfg.SegmentBytes = 1 << 20
	scfg.SegmentIndexBytes = 1 << 16
	for p := range testPartitions {
		l, err := storage.Open(filepath.Join(h.dir, fmt.Sprintf("__consumer_offsets-%d", p)), scfg, storage.Options{})
		if err != nil {
			h.t.Fatalf("open log: %v", err)
		}
		h.logs = append(h.logs, l)
	}
	cfg := h.cfg
	cfg.Logs = h.logs
	c, err := New(cfg)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	h.c = c
}

func (h *harness) close() {
	if h.c != nil {
		if err := h.c.Close(); err != nil {
			h.t.Errorf("Close: %v", err)
		}
		h.c = nil
	}
	for _, l := range h.logs {
		if err := l.Close(); err != nil {
			h.t.Errorf("close log: %v", err)
		}
	}
	h.logs = nil
}

func (h *harness) restart() {
	h.t.Helper()
	h.close()
	h.open()
}

func (h *harness) ctx(clientID string) context.Context {
	return WithClientInfo(context.Background(), ClientInfo{ClientID: clientID, Host: "/127.0.0.1"})
}

// do sends a request and fails the test on a Handle error.
func do[R kmsg.Response](h *harness, req kmsg.Request) R {
	h.t.Helper()
	resp, err := h.c.Handle(h.ctx("test"), req)
	if err != nil {
		h.t.Fatalf("Handle(%T): %v", req, err)
	}
	if resp.GetVersion() != req.GetVersion() {
		h.t.Fatalf("response version %d, request %d", resp.GetVersion(), req.GetVersion())
	}
	return resp.(R)
}

func consumerMeta(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

func protocols(names ...string) []kmsg.JoinGroupRequestProtocol {
	var ps []kmsg.JoinGroupRequestProtocol
	for _, n := range names {
		ps = append(ps, kmsg.JoinGroupRequestProtocol{Name: n, Metadata: consumerMeta("t-" + n)})
	}
	return ps
}

type joinOpts struct {
	version   int16
	memberID  string
	instance  string
	protoType string
	protos    []kmsg.JoinGroupRequestProtocol
	session   time.Duration
	rebalance time.Duration
}

func joinRequest(group string, o joinOpts) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	if o.version != 0 {
		req.Version = o.version
	}
	req.Group = group
	req.MemberID = o.memberID
	if o.instance != "" {
		req.InstanceID = &o.instance
	}
	req.ProtocolType = "consumer"
	if o.protoType != "" {
		req.ProtocolType = o.protoType
	}
	req.Protocols = o.protos
	if req.Protocols == nil {
		req.Protocols = protocols("range")
	}
	req.SessionTimeoutMillis = 10000
	if o.session != 0 {
		req.SessionTimeoutMillis = int32(o.session.Milliseconds())
	}
	req.RebalanceTimeoutMillis = 10000
	if o.rebalance != 0 {
		req.RebalanceTimeoutMillis = int32(o.rebalance.Milliseconds())
	}
	return req
}

// join sends JoinGroup, answering MEMBER_ID_REQUIRED as clients do.
func (h *harness) join(ctx context.Context, group string, o joinOpts) (*kmsg.JoinGroupResponse, error) {
	resp, err := h.c.Handle(ctx, joinRequest(group, o))
	if err != nil {
		return nil, err
	}
	jr := resp.(*kmsg.JoinGroupResponse)
	if jr.ErrorCode == kerr.MemberIDRequired.Code {
		o.memberID = jr.MemberID
		return h.join(ctx, group, o)
	}
	return jr, nil
}

// joinAll joins several members concurrently and returns their responses
// in the order of opts.
func (h *harness) joinAll(group string, opts ...joinOpts) []*kmsg.JoinGroupResponse {
	h.t.Helper()
	out := make([]*kmsg.JoinGroupResponse, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Go(func() {
			out[i], errs[i] = h.join(h.ctx(fmt.Sprintf("client-%d", i)), group, o)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			h.t.Fatalf("join %d: %v", i, err)
		}
		if out[i].ErrorCode != 0 {
			h.t.Fatalf("join %d: %v", i, kerr.ErrorForCode(out[i].ErrorCode))
		}
	}
	return out
}

// joinAfterRebalance starts the first member's join, waits until it put
// the group into PreparingRebalance, then joins the rest; responses come
// back in argument order. It keeps a Stable group's rejoin in one
// generation: a follower rejoining a Stable group unchanged would
// otherwise just get the current generation back.
func (h *harness) joinAfterRebalance(group string, first joinOpts, rest ...joinOpts) []*kmsg.JoinGroupResponse {
	h.t.Helper()
	type result struct {
		j   *kmsg.JoinGroupResponse
		err error
	}
	fc := make(chan result, 1)
	go func() {
		j, err := h.join(h.ctx("first"), group, first)
		fc <- result{j, err}
	}()
	eventually(h.t, "rebalance", func() bool { return h.describe(group).State == "PreparingRebalance" })
	out := append([]*kmsg.JoinGroupResponse{nil}, h.joinAll(group, rest...)...)
	r := <-fc
	if r.err != nil || r.j.ErrorCode != 0 {
		h.t.Fatalf("first join: %v %+v", r.err, r.j)
	}
	out[0] = r.j
	return out
}

func syncRequest(group, member string, gen int32, assign map[string][]byte) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, gen
	pt, p := "consumer", "range"
	req.ProtocolType, req.Protocol = &pt, &p
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: a})
	}
	return req
}

// syncAll syncs every joined member, the leader assigning "assigned-<id>".
func (h *harness) syncAll(group string, joins []*kmsg.JoinGroupResponse) map[string][]byte {
	h.t.Helper()
	assign := map[string][]byte{}
	for _, j := range joins {
		if j.LeaderID == j.MemberID {
			for _, m := range j.Members {
				assign[m.MemberID] = []byte("assigned-" + m.MemberID)
			}
		}
	}
	got := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, j := range joins {
		wg.Go(func() {
			req := syncRequest(group, j.MemberID, j.Generation, nil)
			req.Protocol = j.Protocol
			if j.LeaderID == j.MemberID {
				req = syncRequest(group, j.MemberID, j.Generation, assign)
				req.Protocol = j.Protocol
			}
			resp, err := h.c.Handle(h.ctx("sync"), req)
			if err != nil {
				h.t.Errorf("sync: %v", err)
				return
			}
			sr := resp.(*kmsg.SyncGroupResponse)
			if sr.ErrorCode != 0 {
				h.t.Errorf("sync %s: %v", j.MemberID, kerr.ErrorForCode(sr.ErrorCode))
				return
			}
			mu.Lock()
			got[j.MemberID] = sr.MemberAssignment
			mu.Unlock()
		})
	}
	wg.Wait()
	return got
}

func (h *harness) heartbeat(group, member string, gen int32, instance string) int16 {
	h.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, member, gen
	if instance != "" {
		req.InstanceID = &instance
	}
	return do[*kmsg.HeartbeatResponse](h, req).ErrorCode
}

func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	h.t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	return do[*kmsg.DescribeGroupsResponse](h, req).Groups[0]
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func codeErr(code int16) error { return kerr.ErrorForCode(code) }

func TestPartitionForMatchesKafka(t *testing.T) {
	// Expected values computed from Java's String.hashCode with
	// Kafka's Utils.abs.
	for _, tc := range []struct {
		group string
		n     int
		want  int32
	}{
		{"my-group", 50, 12},
		{"console-consumer-1234", 50, 9},
		{"polygenelubricants", 50, 0}, // hashCode is Integer.MIN_VALUE
		{"", 50, 0},
		{"a", 50, 47},
		{"grüppe-😀", 50, 14}, // surrogate pair: UTF-16 code units
		{"my-group", 7, 1},
	} {
		if got := partitionFor(tc.group, tc.n); got != tc.want {
			t.Errorf("partitionFor(%q, %d) = %d, want %d", tc.group, tc.n, got, tc.want)
		}
	}
}

func TestJoinSyncHeartbeatThreeMembers(t *testing.T) {
	h := newHarness(t, nil)
	const g = "three"
	joins := h.joinAll(g, joinOpts{}, joinOpts{}, joinOpts{})
	leaders := 0
	ids := map[string]bool{}
	for _, j := range joins {
		if j.Generation != 1 || *j.Protocol != "range" || *j.ProtocolType != "consumer" {
			t.Fatalf("join = gen %d protocol %v type %v", j.Generation, *j.Protocol, *j.ProtocolType)
		}
		ids[j.MemberID] = true
		if j.LeaderID == j.MemberID {
			leaders++
			if len(j.Members) != 3 {
				t.Fatalf("leader sees %d members", len(j.Members))
			}
			for _, m := range j.Members {
				if string(m.ProtocolMetadata) != string(consumerMeta("t-range")) {
					t.Fatalf("leader got metadata %q", m.ProtocolMetadata)
				}
			}
		} else if len(j.Members) != 0 {
			t.Fatalf("follower got %d members", len(j.Members))
		}
	}
	if leaders != 1 || len(ids) != 3 {
		t.Fatalf("leaders %d, distinct ids %d", leaders, len(ids))
	}
	got := h.syncAll(g, joins)
	for id, a := range got {
		if string(a) != "assigned-"+id {
			t.Fatalf("member %s got %q", id, a)
		}
	}
	d := h.describe(g)
	if d.State != "Stable" || len(d.Members) != 3 || d.Protocol != "range" {
		t.Fatalf("describe: %+v", d)
	}
	for _, m := range d.Members {
		if string(m.MemberAssignment) != "assigned-"+m.MemberID || m.ClientHost != "/127.0.0.1" {
			t.Fatalf("describe member %+v", m)
		}
	}
	for _, j := range joins {
		if code := h.heartbeat(g, j.MemberID, 1, ""); code != 0 {
			t.Fatalf("heartbeat: %v", codeErr(code))
		}
	}
	if code := h.heartbeat(g, joins[0].MemberID, 0, ""); code != kerr.IllegalGeneration.Code {
		t.Fatalf("old generation heartbeat: %v", codeErr(code))
	}
	if code := h.heartbeat(g, "nobody", 1, ""); code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member heartbeat: %v", codeErr(code))
	}

	// A fourth member starts a rebalance; the others learn it from their
	// heartbeats, rejoin, and everyone lands in generation 2.
	fourth := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		j, err := h.join(h.ctx("late"), g, joinOpts{})
		if err != nil {
			t.Errorf("join: %v", err)
		}
		fourth <- j
	}()
	eventually(t, "rebalance", func() bool { return h.heartbeat(g, joins[1].MemberID, 1, "") == kerr.RebalanceInProgress.Code })
	opts := make([]joinOpts, 3)
	for i, j := range joins {
		opts[i] = joinOpts{memberID: j.MemberID}
	}
	rejoins := h.joinAll(g, opts...)
	all := append(rejoins, <-fourth)
	for _, j := range all {
		if j.ErrorCode != 0 || j.Generation != 2 {
			t.Fatalf("rejoin: %v gen %d", codeErr(j.ErrorCode), j.Generation)
		}
	}
	if len(h.syncAll(g, all)) != 4 {
		t.Fatal("not all four synced")
	}

	// LeaveGroup v0 of one member rebalances the rest.
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Group, lreq.MemberID = g, all[3].MemberID
	if r := do[*kmsg.LeaveGroupResponse](h, lreq); r.ErrorCode != 0 {
		t.Fatalf("leave: %v", codeErr(r.ErrorCode))
	}
	if r := do[*kmsg.LeaveGroupResponse](h, lreq); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("second leave: %v", codeErr(r.ErrorCode))
	}
	if code := h.heartbeat(g, all[0].MemberID, 2, ""); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat after leave: %v", codeErr(code))
	}
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t, nil)
	ctx := h.ctx("c")
	for _, tc := range []struct {
		name  string
		group string
		o     joinOpts
		want  *kerr.Error
	}{
		{"empty group", "", joinOpts{}, kerr.InvalidGroupID},
		{"session too short", "g", joinOpts{session: time.Millisecond}, kerr.InvalidSessionTimeout},
		{"session too long", "g", joinOpts{session: time.Hour}, kerr.InvalidSessionTimeout},
		{"unknown member, no group", "nogroup", joinOpts{memberID: "x"}, kerr.UnknownMemberID},
		{"no protocols", "g", joinOpts{protos: []kmsg.JoinGroupRequestProtocol{}}, kerr.InconsistentGroupProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := h.c.Handle(ctx, joinRequest(tc.group, tc.o))
			if err != nil {
				t.Fatal(err)
			}
			if code := resp.(*kmsg.JoinGroupResponse).ErrorCode; code != tc.want.Code {
				t.Fatalf("got %v, want %v", codeErr(code), tc.want)
			}
		})
	}
	// Failed joins leave no group behind.
	lreq := kmsg.NewPtrListGroupsRequest()
	if n := len(do[*kmsg.ListGroupsResponse](h, lreq).Groups); n != 0 {
		t.Fatalf("%d groups listed", n)
	}
	// MEMBER_ID_REQUIRED on v4+, direct admission below.
	resp, _ := h.c.Handle(ctx, joinRequest("g", joinOpts{version: 4}))
	if jr := resp.(*kmsg.JoinGroupResponse); jr.ErrorCode != kerr.MemberIDRequired.Code || jr.MemberID == "" {
		t.Fatalf("v4 join: %v %q", codeErr(jr.ErrorCode), jr.MemberID)
	}
	jr, err := h.join(ctx, "g3", joinOpts{version: 3})
	if err != nil || jr.ErrorCode != 0 || jr.Generation != 1 {
		t.Fatalf("v3 join: %v %v", err, jr)
	}
	// Unsupported versions are refused.
	bad := joinRequest("g", joinOpts{})
	bad.Version = 10
	if _, err := h.c.Handle(ctx, bad); !errors.Is(err, kerr.UnsupportedVersion) {
		t.Fatalf("v10 join: %v", err)
	}
}

func TestProtocolSelection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members [][]string
		want    string
	}{
		{"only common protocol", [][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin"}}, "roundrobin"},
		{"majority preference", [][]string{{"a", "b"}, {"a", "b"}, {"b", "a"}}, "a"},
		{"majority second", [][]string{{"a", "b"}, {"b", "a"}, {"b", "a"}}, "b"},
		{"uncommon first choice", [][]string{{"x", "b"}, {"y", "b"}, {"b"}}, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.InitialRebalanceDelay = 200 * time.Millisecond })
			var opts []joinOpts
			for _, ps := range tc.members {
				opts = append(opts, joinOpts{protos: protocols(ps...)})
			}
			joins := h.joinAll("g", opts...)
			for _, j := range joins {
				if j.Generation != 1 || *j.Protocol != tc.want {
					t.Fatalf("got gen %d protocol %s, want gen 1 %s", j.Generation, *j.Protocol, tc.want)
				}
				if j.LeaderID == j.MemberID {
					for _, m := range j.Members {
						if string(m.ProtocolMetadata) != string(consumerMeta("t-"+tc.want)) {
							t.Fatalf("leader metadata %q", m.ProtocolMetadata)
						}
					}
				}
			}
		})
	}
}

func TestInconsistentProtocols(t *testing.T) {
	h := newHarness(t, nil)
	joins := h.joinAll("g", joinOpts{protos: protocols("range", "sticky")})
	h.syncAll("g", joins)
	ctx := h.ctx("c")
	for _, o := range []joinOpts{
		{protos: protocols("roundrobin")},
		{protoType: "connect", protos: protocols("range")},
	} {
		resp, err := h.c.Handle(ctx, joinRequest("g", o))
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.(*kmsg.JoinGroupResponse).ErrorCode; code != kerr.InconsistentGroupProtocol.Code {
			t.Fatalf("got %v", codeErr(code))
		}
	}
	// SyncGroup v5 checks the protocol name and type.
	req := syncRequest("g", joins[0].MemberID, 1, nil)
	other := "sticky"
	req.Protocol = &other
	if r := do[*kmsg.SyncGroupResponse](h, req); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("sync with wrong protocol: %v", codeErr(r.ErrorCode))
	}
}

func TestStaticMembership(t *testing.T) {
	h := newHarness(t, nil)
	const g = "static"
	joins := h.joinAll(g,
		joinOpts{instance: "i-1", protos: protocols("range")},
		joinOpts{instance: "i-2", protos: protocols("range")})
	h.syncAll(g, joins)
	var leader, follower *kmsg.JoinGroupResponse
	for _, j := range joins {
		if j.LeaderID == j.MemberID {
			leader = j
		} else {
			follower = j
		}
	}
	var followerInst, leaderInst string
	for _, m := range leader.Members {
		if m.MemberID == follower.MemberID {
			followerInst = *m.InstanceID
		} else {
			leaderInst = *m.InstanceID
		}
	}

	// The follower restarts: same instance id, no member id. It gets a new
	// member id and the current generation without a rebalance.
	re, err := h.join(h.ctx("restarted"), g, joinOpts{instance: followerInst, protos: protocols("range")})
	if err != nil || re.ErrorCode != 0 {
		t.Fatalf("static rejoin: %v %v", err, re)
	}
	if re.Generation != 1 || re.MemberID == follower.MemberID || re.LeaderID != leader.MemberID || len(re.Members) != 0 {
		t.Fatalf("static rejoin = gen %d member %s leader %s members %d", re.Generation, re.MemberID, re.LeaderID, len(re.Members))
	}
	if d := h.describe(g); d.State != "Stable" {
		t.Fatalf("state %s after static rejoin", d.State)
	}
	// The old incarnation is fenced, the new one syncs its old assignment.
	if code := h.heartbeat(g, follower.MemberID, 1, followerInst); code != kerr.FencedInstanceID.Code {
		t.Fatalf("old incarnation heartbeat: %v", codeErr(code))
	}
	req := syncRequest(g, re.MemberID, 1, nil)
	req.InstanceID = &followerInst
	if r := do[*kmsg.SyncGroupResponse](h, req); r.ErrorCode != 0 || string(r.MemberAssignment) != "assigned-"+follower.MemberID {
		t.Fatalf("sync after static rejoin: %v %q", codeErr(r.ErrorCode), r.MemberAssignment)
	}
	if code := h.heartbeat(g, re.MemberID, 1, followerInst); code != 0 {
		t.Fatalf("new incarnation heartbeat: %v", codeErr(code))
	}

	// The leader restarts with JoinGroup v9: SkipAssignment, member list,
	// still no rebalance.
	lre, err := h.join(h.ctx("leader"), g, joinOpts{instance: leaderInst, protos: protocols("range")})
	if err != nil || lre.ErrorCode != 0 {
		t.Fatalf("leader rejoin: %v %v", err, lre)
	}
	if !lre.SkipAssignment || lre.Generation != 1 || lre.LeaderID != lre.MemberID || len(lre.Members) != 2 {
		t.Fatalf("leader rejoin = skip %v gen %d leader %s members %d", lre.SkipAssignment, lre.Generation, lre.LeaderID, len(lre.Members))
	}

	// A leader on JoinGroup v5 cannot skip the assignment: rebalance.
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		j, err := h.join(h.ctx("leader"), g, joinOpts{version: 5, instance: leaderInst, protos: protocols("range")})
		if err != nil {
			t.Errorf("join: %v", err)
		}
		done <- j
	}()
	eventually(t, "rebalance", func() bool {
		return h.heartbeat(g, re.MemberID, 1, followerInst) == kerr.RebalanceInProgress.Code
	})
	fj, err := h.join(h.ctx("f"), g, joinOpts{memberID: re.MemberID, instance: followerInst, protos: protocols("range")})
	if err != nil || fj.ErrorCode != 0 || fj.Generation != 2 {
		t.Fatalf("follower rejoin: %v %+v", err, fj)
	}
	if lj := <-done; lj.ErrorCode != 0 || lj.Generation != 2 || lj.SkipAssignment {
		t.Fatalf("v5 leader rejoin: %+v", lj)
	}

	// LeaveGroup v3+ by instance id; a wrong member id is fenced.
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Version = 5
	wrong := leaderInst
	lreq.Group = g
	lreq.Members = []kmsg.LeaveGroupRequestMember{
		{MemberID: "someone-else", InstanceID: &wrong},
		{InstanceID: &followerInst},
	}
	r := do[*kmsg.LeaveGroupResponse](h, lreq)
	if r.ErrorCode != 0 || r.Members[0].ErrorCode != kerr.FencedInstanceID.Code || r.Members[1].ErrorCode != 0 {
		t.Fatalf("leave: %+v", r)
	}
	if d := h.describe(g); len(d.Members) != 1 {
		t.Fatalf("%d members after leave", len(d.Members))
	}
}

func TestSessionExpiry(t *testing.T) {
	h := newHarness(t, nil)
	const g = "expiry"
	short := joinOpts{session: 100 * time.Millisecond, rebalance: 10 * time.Second}
	long := joinOpts{session: 10 * time.Second, rebalance: 10 * time.Second}
	joins := h.joinAll(g, short, long)
	h.syncAll(g, joins)
	survivor := joins[1]
	// Member 0 never heartbeats: its session expires and the group rebalances.
	eventually(t, "session expiry", func() bool { return len(h.describe(g).Members) == 1 })
	if code := h.heartbeat(g, joins[0].MemberID, 1, ""); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member heartbeat: %v", codeErr(code))
	}
	if code := h.heartbeat(g, survivor.MemberID, 1, ""); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("survivor heartbeat: %v", codeErr(code))
	}
	short.memberID = survivor.MemberID
	j := h.joinAll(g, short)[0]
	if j.Generation != 2 || j.LeaderID != survivor.MemberID || len(j.Members) != 1 {
		t.Fatalf("rejoin: %+v", j)
	}
	h.syncAll(g, []*kmsg.JoinGroupResponse{j})
	// The last member stops heartbeating too: the group becomes Empty.
	eventually(t, "group empty", func() bool {
		d := h.describe(g)
		return d.State == "Empty" && len(d.Members) == 0
	})
}

func TestRebalanceTimeoutDropsLaggards(t *testing.T) {
	h := newHarness(t, nil)
	const g = "laggard"
	o := joinOpts{session: 10 * time.Second, rebalance: 300 * time.Millisecond}
	joins := h.joinAll(g, o, o)
	h.syncAll(g, joins)
	var leader, follower *kmsg.JoinGroupResponse
	for _, j := range joins {
		if j.LeaderID == j.MemberID {
			leader = j
		} else {
			follower = j
		}
	}
	// The leader rejoins, the follower only heartbeats: after the
	// rebalance timeout the follower is out and the leader alone in gen 2.
	o.memberID = leader.MemberID
	start := time.Now()
	res := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		j, err := h.join(h.ctx("l"), g, o)
		if err != nil {
			t.Errorf("join: %v", err)
		}
		res <- j
	}()
	var j *kmsg.JoinGroupResponse
	for j == nil {
		select {
		case j = <-res:
		case <-time.After(20 * time.Millisecond):
			h.heartbeat(g, follower.MemberID, 1, "")
		}
	}
	if j.ErrorCode != 0 || j.Generation != 2 || len(j.Members) != 1 {
		t.Fatalf("join: %+v", j)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("join completed after %v, before the rebalance timeout", el)
	}
	if code := h.heartbeat(g, follower.MemberID, 1, ""); code != kerr.UnknownMemberID.Code {
		t.Fatalf("laggard heartbeat: %v", codeErr(code))
	}
}

func TestPendingSyncTimeout(t *testing.T) {
	h := newHarness(t, nil)
	const g = "nosync"
	o := joinOpts{session: 10 * time.Second, rebalance: 300 * time.Millisecond}
	joins := h.joinAll(g, o, o)
	// Only the leader syncs; the follower never does and is removed after
	// the rebalance timeout.
	for _, j := range joins {
		if j.LeaderID == j.MemberID {
			h.syncAll(g, []*kmsg.JoinGroupResponse{j})
		}
	}
	eventually(t, "follower removed", func() bool { return len(h.describe(g).Members) == 1 })
}

func TestJoinCancelledByContext(t *testing.T) {
	h := newHarness(t, nil)
	const g = "cancel"
	joins := h.joinAll(g, joinOpts{})
	h.syncAll(g, joins)
	// A second member's join waits for the first to rejoin; closing its
	// connection returns at once.
	ctx, cancel := context.WithCancel(h.ctx("c"))
	errc := make(chan error, 1)
	go func() {
		_, err := h.join(ctx, g, joinOpts{})
		errc <- err
	}()
	eventually(t, "rebalance", func() bool { return h.heartbeat(g, joins[0].MemberID, 1, "") == kerr.RebalanceInProgress.Code })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("join after cancel: %v", err)
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	h := newHarness(t, nil)
	joins := h.joinAll("g", joinOpts{})
	h.syncAll("g", joins)
	res := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		j, _ := h.join(h.ctx("c"), "g", joinOpts{})
		res <- j
	}()
	eventually(t, "rebalance", func() bool { return h.heartbeat("g", joins[0].MemberID, 1, "") == kerr.RebalanceInProgress.Code })
	if err := h.c.Close(); err != nil {
		t.Fatal(err)
	}
	if j := <-res; j == nil || j.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("waiter after Close: %+v", j)
	}
	if err := h.c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Handle(context.Background(), kmsg.NewPtrListGroupsRequest()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Handle after Close: %v", err)
	}
}

func TestInitialRebalanceDelayGathersMembers(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.InitialRebalanceDelay = 300 * time.Millisecond })
	joins := h.joinAll("g", joinOpts{}, joinOpts{}, joinOpts{})
	for _, j := range joins {
		if j.Generation != 1 {
			t.Fatalf("generation %d: the delay should gather all three members", j.Generation)
		}
	}
}

func TestListAndDescribe(t *testing.T) {
	h := newHarness(t, nil)
	joins := h.joinAll("stable", joinOpts{})
	h.syncAll("stable", joins)
	h.commit("simple", -1, "", map[string][]int64{"t": {5}})
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 4
	r := do[*kmsg.ListGroupsResponse](h, req)
	if len(r.Groups) != 2 || r.Groups[0].Group != "simple" || r.Groups[0].GroupState != "Empty" || r.Groups[0].ProtocolType != "" ||
		r.Groups[1].Group != "stable" || r.Groups[1].GroupState != "Stable" || r.Groups[1].ProtocolType != "consumer" {
		t.Fatalf("list: %+v", r.Groups)
	}
	req.StatesFilter = []string{"stable"}
	if r := do[*kmsg.ListGroupsResponse](h, req); len(r.Groups) != 1 || r.Groups[0].Group != "stable" {
		t.Fatalf("filtered list: %+v", r.Groups)
	}
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Version = 5
	dreq.Groups = []string{"stable", "missing"}
	dreq.IncludeAuthorizedOperations = true
	d := do[*kmsg.DescribeGroupsResponse](h, dreq)
	if d.Groups[0].State != "Stable" || d.Groups[0].AuthorizedOperations <= 0 || d.Groups[1].State != "Dead" || d.Groups[1].ErrorCode != 0 {
		t.Fatalf("describe: %+v", d.Groups)
	}
	if !slices.ContainsFunc(d.Groups[0].Members, func(m kmsg.DescribeGroupsResponseGroupMember) bool { return m.ClientID == "client-0" }) {
		t.Fatalf("describe members: %+v", d.Groups[0].Members)
	}
}

func TestMemberWaitingInSyncStillExpires(t *testing.T) {
	h := newHarness(t, nil)
	const g = "syncwait"
	long := joinOpts{session: 10 * time.Second, rebalance: 30 * time.Second}
	a := h.joinAll(g, long)[0]
	h.syncAll(g, []*kmsg.JoinGroupResponse{a})
	b := long
	long.memberID = a.MemberID
	joins := h.joinAfterRebalance(g, b, long)
	bj, a := joins[0], joins[1]
	if a.LeaderID != a.MemberID || a.Generation != 2 {
		t.Fatalf("join: %+v", a)
	}
	// B waits in SyncGroup for the leader, then its connection drops.
	ctx, cancel := context.WithCancel(h.ctx("b"))
	errc := make(chan error, 1)
	go func() {
		_, err := h.c.Handle(ctx, syncRequest(g, bj.MemberID, 2, nil))
		errc <- err
	}()
	eventually(t, "B waiting in sync", func() bool {
		gr := h.lookup(g)
		defer gr.mu.Unlock()
		return gr.members[bj.MemberID].awaitingSync()
	})
	cancel()
	<-errc
	// B's session timer fires while B counts as waiting, which leaves it
	// without a timer; make its session short for what follows.
	gr := h.lookup(g)
	m := gr.members[bj.MemberID]
	m.timer.Stop()
	m.timerSeq++
	m.sessionTimeout = 100 * time.Millisecond
	gr.mu.Unlock()
	// A leaves: the failed sync restarts B's session timer, so B expires
	// long before the 30 s rebalance timeout and the group empties.
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Group, lreq.MemberID = g, a.MemberID
	do[*kmsg.LeaveGroupResponse](h, lreq)
	eventually(t, "group empty", func() bool { return h.describe(g).State == "Empty" })
}

// lookup returns the locked group for white-box checks.
func (h *harness) lookup(name string) *group {
	h.t.Helper()
	g := h.c.lookup(name, false)
	if g == nil {
		h.t.Fatalf("no group %s", name)
	}
	return g
}

// TestEveryVersionEncodes sends each API at every accepted version, with
// both successful and failing inputs, and encodes the response as the
// broker would: no version may produce an unencodable response.
func TestEveryVersionEncodes(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.InitialRebalanceDelay = 0 })
	h.commit("simple", -1, "", map[string][]int64{"t": {1}})
	joins := h.joinAll("stable", joinOpts{})
	h.syncAll("stable", joins)
	m := joins[0].MemberID
	inst := "inst"
	md := "md"
	for key, r := range versions {
		for v := r[0]; v <= r[1]; v++ {
			var reqs []kmsg.Request
			switch key {
			case 8:
				for _, g := range []string{"simple", "stable", "nogroup"} {
					req := kmsg.NewPtrOffsetCommitRequest()
					req.Group, req.Generation, req.MemberID, req.InstanceID = g, 1, m, &inst
					req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Offset: 3, Metadata: &md}}}}
					reqs = append(reqs, req)
				}
			case 9:
				for _, g := range []string{"simple", "nogroup"} {
					req := kmsg.NewPtrOffsetFetchRequest()
					req.Group = g
					req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t", Partitions: []int32{0, 1}}}
					req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: g}}
					req.RequireStable = true
					reqs = append(reqs, req)
				}
			case 11:
				bad := joinRequest("", joinOpts{})
				reqs = append(reqs, joinRequest(fmt.Sprintf("g-v%d", v), joinOpts{}), bad, joinRequest("stable", joinOpts{memberID: "nobody"}))
			case 12:
				req := kmsg.NewPtrHeartbeatRequest()
				req.Group, req.MemberID, req.Generation = "stable", m, 1
				reqs = append(reqs, req)
			case 13:
				req := kmsg.NewPtrLeaveGroupRequest()
				req.Group, req.MemberID = "stable", "nobody"
				req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "nobody"}}
				reqs = append(reqs, req)
			case 14:
				reqs = append(reqs, syncRequest("stable", m, 1, nil), syncRequest("stable", m, 9, nil))
			case 15:
				req := kmsg.NewPtrDescribeGroupsRequest()
				req.Groups = []string{"stable", "simple", "nogroup"}
				reqs = append(reqs, req)
			case 16:
				req := kmsg.NewPtrListGroupsRequest()
				reqs = append(reqs, req)
			case 28:
				for _, g := range []string{"simple", "stable", "nogroup", ""} {
					req := kmsg.NewPtrTxnOffsetCommitRequest()
					req.TransactionalID, req.ProducerID, req.ProducerEpoch = "tx", 5, 0
					req.Group, req.Generation, req.MemberID, req.InstanceID = g, 1, m, &inst
					req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Offset: 3, Metadata: &md}}}}
					reqs = append(reqs, req)
				}
			case 42:
				req := kmsg.NewPtrDeleteGroupsRequest()
				req.Groups = []string{"stable", "nogroup"}
				reqs = append(reqs, req)
			case 47:
				req := kmsg.NewPtrOffsetDeleteRequest()
				req.Group = "stable"
				req.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
				reqs = append(reqs, req)
			}
			for _, req := range reqs {
				req.SetVersion(v)
				// Round-trip the request through its encoding so fields the
				// version lacks are dropped, as off the wire.
				wire := kmsg.RequestForKey(key)
				wire.SetVersion(v)
				if err := wire.ReadFrom(req.AppendTo(nil)); err != nil {
					t.Fatalf("%s v%d: decode: %v", kmsg.NameForKey(key), v, err)
				}
				ctx, cancel := context.WithTimeout(h.ctx("c"), 5*time.Second)
				resp, err := h.c.Handle(ctx, wire)
				cancel()
				if err != nil {
					t.Fatalf("%s v%d: %v", kmsg.NameForKey(key), v, err)
				}
				if resp.GetVersion() != v {
					t.Fatalf("%s v%d: response version %d", kmsg.NameForKey(key), v, resp.GetVersion())
				}
				b := resp.AppendTo(nil)
				dec := kmsg.ResponseForKey(key)
				dec.SetVersion(v)
				if err := dec.ReadFrom(b); err != nil {
					t.Fatalf("%s v%d: response does not decode: %v", kmsg.NameForKey(key), v, err)
				}
			}
		}
	}
}
