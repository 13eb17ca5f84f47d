package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The functions in this file run Kafka's classic rebalance protocol. All of
// them are called with g.mu held.

// scheduleSession (re)starts m's session timer.
func (c *Coordinator) scheduleSession(g *group, m *member, d time.Duration) {
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timerSeq++
	seq := m.timerSeq
	m.timer = c.afterFunc(d, func() { c.onSessionExpired(g, m, seq) })
}

func (c *Coordinator) onSessionExpired(g *group, m *member, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead || g.members[m.id] != m || m.timerSeq != seq {
		return
	}
	// A member waiting in JoinGroup or SyncGroup is alive, unless it is new
	// and never completed a join (Kafka's hasSatisfiedHeartbeat).
	if !m.isNew && (m.awaitingJoin() || m.awaitingSync()) {
		return
	}
	c.log.Info("group member session expired", "group", g.name, "member", m.id, "generation", g.generation)
	c.removeMemberAndUpdate(g, m, "session timeout of "+m.id)
}

// addPending records a member id handed out with MEMBER_ID_REQUIRED; it is
// forgotten unless the member joins with it within its session timeout.
func (c *Coordinator) addPending(g *group, id string, session time.Duration) {
	g.pending[id] = c.afterFunc(session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.dead {
			return
		}
		if _, ok := g.pending[id]; !ok {
			return
		}
		delete(g.pending, id)
		c.log.Debug("pending group member expired", "group", g.name, "member", id)
		if g.state == statePreparingRebalance {
			c.tryCompleteJoin(g)
		}
		c.dropIfUnused(g)
	})
}

// removeMemberAndUpdate removes m, answering its waiting requests with
// UNKNOWN_MEMBER_ID, and moves the group on.
func (c *Coordinator) removeMemberAndUpdate(g *group, m *member, reason string) {
	m.sendJoin(joinResult{code: kerr.UnknownMemberID.Code, memberID: m.id, generation: -1})
	m.sendSync(syncResult{code: kerr.UnknownMemberID.Code})
	g.remove(m.id)
	switch g.state {
	case stateStable, stateCompletingRebalance:
		c.prepareRebalance(g, reason)
	case statePreparingRebalance:
		c.tryCompleteJoin(g)
	}
}

// maybePrepareRebalance starts a rebalance unless one is under way.
func (c *Coordinator) maybePrepareRebalance(g *group, reason string) {
	switch g.state {
	case stateStable, stateCompletingRebalance, stateEmpty:
		c.prepareRebalance(g, reason)
	}
}

// prepareRebalance moves the group to PreparingRebalance: pending syncs are
// told REBALANCE_IN_PROGRESS, and the join completes once every member
// rejoined or the rebalance timeout passed. An empty group's first
// rebalance waits InitialRebalanceDelay, extended while members keep
// arriving, up to the rebalance timeout.
func (c *Coordinator) prepareRebalance(g *group, reason string) {
	if g.state == stateCompletingRebalance {
		c.resetAssignment(g, kerr.RebalanceInProgress.Code)
	}
	c.clearPendingSync(g)
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	g.joinSeq++
	seq := g.joinSeq
	if g.state == stateEmpty {
		delay := c.cfg.InitialRebalanceDelay
		remaining := max(g.rebalanceTimeout()-delay, 0)
		g.initialJoin = true
		g.joinTimer = c.afterFunc(delay, func() { c.onJoinTimer(g, seq, remaining) })
	} else {
		g.initialJoin = false
		g.joinTimer = c.afterFunc(g.rebalanceTimeout(), func() { c.onJoinTimer(g, seq, 0) })
	}
	c.log.Info("preparing group rebalance", "group", g.name, "generation", g.generation, "from", g.state.String(), "reason", reason)
	g.setState(statePreparingRebalance, c.now())
	c.tryCompleteJoin(g)
}

func (c *Coordinator) onJoinTimer(g *group, seq uint64, remaining time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead || g.joinSeq != seq || g.state != statePreparingRebalance {
		return
	}
	if g.initialJoin && g.newMemberAdded && remaining > 0 {
		g.newMemberAdded = false
		delay := min(c.cfg.InitialRebalanceDelay, remaining)
		rest := max(remaining-delay, 0)
		g.joinSeq++
		next := g.joinSeq
		g.joinTimer = c.afterFunc(delay, func() { c.onJoinTimer(g, next, rest) })
		return
	}
	c.completeJoin(g)
}

// tryCompleteJoin completes the join phase early when every member
// rejoined (never during an initial delayed join).
func (c *Coordinator) tryCompleteJoin(g *group) {
	if g.state == statePreparingRebalance && !g.initialJoin && g.hasAllJoined() {
		c.completeJoin(g)
	}
}

// completeJoin ends the join phase: members that did not rejoin are
// removed (static ones wait for their session timeout), a new generation
// starts, the protocol is selected and every waiting member gets its
// JoinGroup response, the leader with the member list.
func (c *Coordinator) completeJoin(g *group) {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
	}
	g.joinSeq++
	for _, id := range slices.Clone(g.order) {
		if m := g.members[id]; !m.awaitingJoin() && m.instanceID == nil {
			c.log.Info("removing group member that did not rejoin", "group", g.name, "member", id)
			m.sendSync(syncResult{code: kerr.UnknownMemberID.Code})
			g.remove(id)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Only static members that have not rejoined remain: wait another
		// rebalance timeout for them or their session expiry.
		seq := g.joinSeq
		g.initialJoin = false
		g.joinTimer = c.afterFunc(g.rebalanceTimeout(), func() { c.onJoinTimer(g, seq, 0) })
		return
	}
	g.generation++
	now := c.now()
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.setState(stateEmpty, now)
		c.log.Info("group is empty", "group", g.name, "generation", g.generation)
		if err := c.storeGroup(g); err != nil {
			c.log.Error("storing empty group metadata", "group", g.name, "err", err)
		}
		return
	}
	g.protocol = g.selectProtocol()
	g.setState(stateCompletingRebalance, now)
	g.pendingSync = make(map[string]bool, len(g.members))
	c.log.Info("group join complete", "group", g.name, "generation", g.generation, "protocol", g.protocol, "leader", g.leader, "members", len(g.members))
	for _, id := range g.order {
		m := g.members[id]
		if m.awaitingJoin() {
			res := c.currentJoinResult(g, m)
			if id == g.leader {
				res.members = g.memberList()
			}
			m.sendJoin(res)
		}
		m.isNew = false
		c.scheduleSession(g, m, m.sessionTimeout)
		g.pendingSync[id] = true
	}
	seq := g.syncSeq + 1
	g.syncSeq = seq
	g.syncTimer = c.afterFunc(g.rebalanceTimeout(), func() { c.onPendingSyncExpired(g, seq) })
}

// currentJoinResult is a successful JoinGroup answer for the current
// generation, without the member list.
func (c *Coordinator) currentJoinResult(g *group, m *member) joinResult {
	return joinResult{
		memberID:     m.id,
		generation:   g.generation,
		protocolType: g.protocolType,
		protocol:     g.protocol,
		leader:       g.leader,
	}
}

// onPendingSyncExpired removes members that joined the generation but did
// not SyncGroup within the rebalance timeout, and rebalances.
func (c *Coordinator) onPendingSyncExpired(g *group, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead || g.syncSeq != seq || len(g.pendingSync) == 0 {
		return
	}
	if g.state != stateCompletingRebalance && g.state != stateStable {
		return
	}
	for _, id := range slices.Clone(g.order) {
		if g.pendingSync[id] {
			c.log.Info("removing group member that did not sync", "group", g.name, "member", id)
			g.remove(id)
		}
	}
	c.prepareRebalance(g, "members did not sync in time")
}

func (c *Coordinator) clearPendingSync(g *group) {
	g.pendingSync = nil
	if g.syncTimer != nil {
		g.syncTimer.Stop()
	}
	g.syncSeq++
}

// resetAssignment clears every assignment and fails waiting syncs. A
// member's session timer may have fired and been ignored while it waited,
// so the timer restarts for each answered member.
func (c *Coordinator) resetAssignment(g *group, code int16) {
	for _, m := range g.members {
		m.assignment = nil
		if m.awaitingSync() {
			m.sendSync(syncResult{code: code})
			c.scheduleSession(g, m, m.sessionTimeout)
		}
	}
}

// propagateAssignment answers every waiting SyncGroup with its member's
// assignment and makes the group Stable.
func (c *Coordinator) propagateAssignment(g *group) {
	for _, id := range g.order {
		m := g.members[id]
		if m.awaitingSync() {
			m.sendSync(syncResult{assignment: m.assignment, protocolType: g.protocolType, protocol: g.protocol})
			c.scheduleSession(g, m, m.sessionTimeout)
		}
	}
	g.setState(stateStable, c.now())
	c.log.Info("group stable", "group", g.name, "generation", g.generation)
}

// replaceStatic gives a static member a new member id, fencing requests
// still waiting under the old one.
func (c *Coordinator) replaceStatic(g *group, m *member, newID string) {
	oldID := m.id
	m.sendJoin(joinResult{code: kerr.FencedInstanceID.Code, memberID: oldID, generation: -1})
	m.sendSync(syncResult{code: kerr.FencedInstanceID.Code})
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	for i, id := range g.order {
		if id == oldID {
			g.order[i] = newID
		}
	}
	if g.leader == oldID {
		g.leader = newID
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = newID
	}
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
}
