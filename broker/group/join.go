package group

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func cloneProtocols(ps []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(ps))
	for i, p := range ps {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: slices.Clone(p.Metadata)}
	}
	return out
}

func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}

// joinGroup answers JoinGroup, blocking until the rebalance completes.
func (c *Coordinator) joinGroup(ctx context.Context, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	if !c.enter() {
		return nil, ErrClosed
	}
	wait, res := c.doJoin(ctx, req)
	c.exit()
	if wait != nil {
		select {
		case res = <-wait:
		case <-ctx.Done():
			// As in Kafka, the member stays in the group: the rebalance
			// completes with it and its session timer removes it.
			return nil, ctx.Err()
		case <-c.done:
			res = joinResult{code: kerr.CoordinatorNotAvailable.Code, memberID: req.MemberID, generation: -1}
		}
	}
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = res.code
	resp.Generation = res.generation
	resp.MemberID = res.memberID
	resp.LeaderID = res.leader
	resp.Members = res.members
	resp.SkipAssignment = res.skipAssignment
	if res.code == 0 {
		resp.ProtocolType = &res.protocolType
		resp.Protocol = &res.protocol
	}
	return resp, nil
}

type joinParams struct {
	req       *kmsg.JoinGroupRequest
	instance  *string // nil before v5
	client    ClientInfo
	session   time.Duration
	rebalance time.Duration
}

// doJoin runs a JoinGroup's state changes. It returns either a channel
// that will carry the result or the result itself.
func (c *Coordinator) doJoin(ctx context.Context, req *kmsg.JoinGroupRequest) (chan joinResult, joinResult) {
	fail := func(code int16) (chan joinResult, joinResult) {
		return nil, joinResult{code: code, memberID: req.MemberID, generation: -1}
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	p := joinParams{req: req, client: clientInfo(ctx), session: millis(req.SessionTimeoutMillis), rebalance: millis(req.RebalanceTimeoutMillis)}
	if p.session < c.cfg.MinSessionTimeout || p.session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	if req.Version == 0 || p.rebalance <= 0 {
		p.rebalance = p.session // v0 has no rebalance timeout
	}
	if req.Version >= 5 {
		p.instance = req.InstanceID
	}
	if req.Reason != nil && *req.Reason != "" {
		c.log.Debug("join group", "group", req.Group, "member", req.MemberID, "reason", *req.Reason)
	}

	g := c.lookup(req.Group, req.MemberID == "")
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	defer g.mu.Unlock()

	if req.MemberID == "" {
		if !g.supports(req.ProtocolType, req.Protocols) {
			c.dropIfUnused(g)
			return fail(kerr.InconsistentGroupProtocol.Code)
		}
		id := newMemberID(p.client.ClientID)
		if p.instance != nil {
			return c.staticJoin(g, p, id)
		}
		if req.Version >= 4 {
			// KIP-394: hand out the id; the member joins again with it.
			c.addPending(g, id, p.session)
			return nil, joinResult{code: kerr.MemberIDRequired.Code, memberID: id, generation: -1}
		}
		return c.addMemberAndRebalance(g, p, id), joinResult{}
	}

	if !g.supports(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		return c.addMemberAndRebalance(g, p, req.MemberID), joinResult{}
	}
	if g.fenced(p.instance, req.MemberID) {
		return fail(kerr.FencedInstanceID.Code)
	}
	m := g.members[req.MemberID]
	if m == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	if p.instance != nil {
		if _, ok := g.static[*p.instance]; !ok {
			return fail(kerr.UnknownMemberID.Code)
		}
	}
	m.clientID, m.clientHost = p.client.ClientID, p.client.Host
	switch g.state {
	case statePreparingRebalance:
		return c.updateMemberAndRebalance(g, m, p, "member "+m.id+" rejoined"), joinResult{}
	case stateCompletingRebalance:
		if m.matches(req.Protocols) {
			// A lost response: answer again for the current generation.
			res := c.currentJoinResult(g, m)
			if m.id == g.leader {
				res.members = g.memberList()
			}
			return nil, res
		}
		return c.updateMemberAndRebalance(g, m, p, "member "+m.id+" changed its metadata"), joinResult{}
	case stateStable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			// The leader rejoining forces a rebalance, so it can react to
			// changes the metadata does not show (e.g. new partitions).
			return c.updateMemberAndRebalance(g, m, p, "leader or changed member "+m.id+" rejoined"), joinResult{}
		}
		return nil, c.currentJoinResult(g, m)
	}
	return fail(kerr.UnknownMemberID.Code)
}

// addMemberAndRebalance adds a new member waiting for the join to complete.
func (c *Coordinator) addMemberAndRebalance(g *group, p joinParams, id string) chan joinResult {
	m := &member{
		id:               id,
		instanceID:       cloneString(p.instance),
		clientID:         p.client.ClientID,
		clientHost:       p.client.Host,
		sessionTimeout:   p.session,
		rebalanceTimeout: p.rebalance,
		protocolType:     p.req.ProtocolType,
		protocols:        cloneProtocols(p.req.Protocols),
		isNew:            true,
	}
	ch := make(chan joinResult, 1)
	m.joinWait = ch
	if g.state == statePreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.add(m)
	c.scheduleSession(g, m, newMemberJoinTimeout)
	c.maybePrepareRebalance(g, "new member "+id+" joined")
	c.tryCompleteJoin(g)
	return ch
}

// updateMemberAndRebalance records a known member's rejoin.
func (c *Coordinator) updateMemberAndRebalance(g *group, m *member, p joinParams, reason string) chan joinResult {
	m.protocols = cloneProtocols(p.req.Protocols)
	m.sessionTimeout, m.rebalanceTimeout = p.session, p.rebalance
	if m.joinWait != nil {
		// A second JoinGroup while the first still waits: the newer wins.
		m.joinWait <- joinResult{code: kerr.RebalanceInProgress.Code, memberID: m.id, generation: -1}
	}
	ch := make(chan joinResult, 1)
	m.joinWait = ch
	c.maybePrepareRebalance(g, reason)
	c.tryCompleteJoin(g)
	return ch
}

// staticJoin handles a JoinGroup with a group.instance.id and no member id.
func (c *Coordinator) staticJoin(g *group, p joinParams, newID string) (chan joinResult, joinResult) {
	oldID, known := g.static[*p.instance]
	m := g.members[oldID]
	if !known || m == nil {
		return c.addMemberAndRebalance(g, p, newID), joinResult{}
	}
	c.log.Info("static group member rejoined", "group", g.name, "instance", *p.instance, "old", oldID, "new", newID)
	oldClient, oldHost := m.clientID, m.clientHost
	c.replaceStatic(g, m, newID)
	m.clientID, m.clientHost = p.client.ClientID, p.client.Host
	switch g.state {
	case stateStable:
		leader := g.leader == newID
		if !m.matches(p.req.Protocols) || (leader && p.req.Version < 9) {
			// Changed metadata needs a new assignment; a leader too old to
			// accept SkipAssignment must recompute it.
			return c.updateMemberAndRebalance(g, m, p, "static member "+newID+" rejoined"), joinResult{}
		}
		oldSession, oldRebalance := m.sessionTimeout, m.rebalanceTimeout
		m.sessionTimeout, m.rebalanceTimeout = p.session, p.rebalance
		if err := c.storeGroup(g); err != nil {
			c.log.Error("storing group after static member rejoin", "group", g.name, "err", err)
			c.replaceStatic(g, m, oldID)
			m.clientID, m.clientHost = oldClient, oldHost
			m.sessionTimeout, m.rebalanceTimeout = oldSession, oldRebalance
			return nil, joinResult{code: storeErrCode(err, false), memberID: newID, generation: -1}
		}
		c.scheduleSession(g, m, m.sessionTimeout)
		res := c.currentJoinResult(g, m)
		if leader {
			// KIP-814: the leader learns the members but keeps the
			// current assignment.
			res.members = g.memberList()
			res.skipAssignment = true
		}
		return nil, res
	case stateCompletingRebalance, statePreparingRebalance:
		return c.updateMemberAndRebalance(g, m, p, "static member "+newID+" rejoined"), joinResult{}
	}
	return nil, joinResult{code: kerr.UnknownMemberID.Code, memberID: newID, generation: -1}
}

// syncGroup answers SyncGroup, blocking until the leader's assignment is in.
func (c *Coordinator) syncGroup(ctx context.Context, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	if !c.enter() {
		return nil, ErrClosed
	}
	wait, res := c.doSync(req)
	c.exit()
	if wait != nil {
		select {
		case res = <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			res = syncResult{code: kerr.CoordinatorNotAvailable.Code}
		}
	}
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = res.code
	resp.MemberAssignment = res.assignment
	if res.code == 0 {
		resp.ProtocolType = &res.protocolType
		resp.Protocol = &res.protocol
	}
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp, nil
}

func (c *Coordinator) doSync(req *kmsg.SyncGroupRequest) (chan syncResult, syncResult) {
	fail := func(code int16) (chan syncResult, syncResult) { return nil, syncResult{code: code} }
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	instance := req.InstanceID
	if req.Version < 3 {
		instance = nil
	}
	g := c.lookup(req.Group, false)
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	defer g.mu.Unlock()
	if code := g.validateMember(instance, req.MemberID, req.Generation); code != 0 {
		return fail(code)
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case stateStable:
		delete(g.pendingSync, m.id)
		c.scheduleSession(g, m, m.sessionTimeout)
		return nil, syncResult{assignment: m.assignment, protocolType: g.protocolType, protocol: g.protocol}
	case stateCompletingRebalance:
		delete(g.pendingSync, m.id)
		m.sendSync(syncResult{code: kerr.RebalanceInProgress.Code}) // an older SyncGroup still waiting
		ch := make(chan syncResult, 1)
		m.syncWait = ch
		if m.id == g.leader {
			assignments := make(map[string][]byte, len(req.GroupAssignment))
			for _, a := range req.GroupAssignment {
				assignments[a.MemberID] = a.MemberAssignment
			}
			for id, mm := range g.members {
				mm.assignment = slices.Clone(assignments[id])
			}
			if err := c.storeGroup(g); err != nil {
				c.log.Error("storing group assignment", "group", g.name, "generation", g.generation, "err", err)
				c.resetAssignment(g, storeErrCode(err, false))
				c.maybePrepareRebalance(g, "storing the assignment failed")
			} else {
				c.propagateAssignment(g)
			}
		}
		return ch, syncResult{}
	}
	return fail(kerr.UnknownMemberID.Code)
}

// validateMember checks a request's instance id, member id and generation
// in Kafka's order. g.mu must be held.
func (g *group) validateMember(instanceID *string, memberID string, generation int32) int16 {
	switch {
	case g.fenced(instanceID, memberID):
		return kerr.FencedInstanceID.Code
	case g.members[memberID] == nil:
		return kerr.UnknownMemberID.Code
	case generation != g.generation:
		return kerr.IllegalGeneration.Code
	}
	return 0
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	resp.ErrorCode = c.doHeartbeat(req)
	return resp
}

func (c *Coordinator) doHeartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.lookup(req.Group, false)
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	defer g.mu.Unlock()
	instance := req.InstanceID
	if req.Version < 3 {
		instance = nil
	}
	if code := g.validateMember(instance, req.MemberID, req.Generation); code != 0 {
		return code
	}
	m := g.members[req.MemberID]
	switch g.state {
	case statePreparingRebalance:
		c.scheduleSession(g, m, m.sessionTimeout)
		return kerr.RebalanceInProgress.Code
	case stateCompletingRebalance, stateStable:
		c.scheduleSession(g, m, m.sessionTimeout)
		return 0
	}
	return kerr.UnknownMemberID.Code
}

func (c *Coordinator) leaveGroup(req *kmsg.LeaveGroupRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	resp.Members = make([]kmsg.LeaveGroupResponseMember, len(leaving))
	for i, l := range leaving {
		resp.Members[i] = kmsg.LeaveGroupResponseMember{MemberID: l.MemberID, InstanceID: l.InstanceID}
	}
	setAll := func(code int16) {
		for i := range resp.Members {
			resp.Members[i].ErrorCode = code
		}
	}
	switch g := c.lookupForLeave(req.Group); {
	case req.Group == "":
		resp.ErrorCode = kerr.InvalidGroupID.Code
	case g == nil:
		setAll(kerr.UnknownMemberID.Code)
	default:
		for i, l := range leaving {
			resp.Members[i].ErrorCode = c.leaveOne(g, l)
		}
		g.mu.Unlock()
	}
	if req.Version < 3 {
		if resp.ErrorCode == 0 {
			resp.ErrorCode = resp.Members[0].ErrorCode
		}
		resp.Members = nil
	}
	return resp
}

func (c *Coordinator) lookupForLeave(name string) *group {
	if name == "" {
		return nil
	}
	return c.lookup(name, false)
}

// leaveOne removes one member named by LeaveGroup. g.mu must be held.
func (c *Coordinator) leaveOne(g *group, l kmsg.LeaveGroupRequestMember) int16 {
	id := l.MemberID
	if l.InstanceID != nil {
		known, ok := g.static[*l.InstanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case id != "" && known != id:
			return kerr.FencedInstanceID.Code
		}
		id = known
	}
	if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		c.tryCompleteJoin(g)
		c.dropIfUnused(g)
		return 0
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	reason := "member " + id + " left"
	if l.Reason != nil && *l.Reason != "" {
		reason += ": " + *l.Reason
	}
	c.log.Info("group member left", "group", g.name, "member", id, "reason", reason)
	c.removeMemberAndUpdate(g, m, reason)
	return 0
}
