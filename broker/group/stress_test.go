package group

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestChurn runs members that join, sync, heartbeat, commit and leave at
// random for a while, as misbehaving clients would, under -race: nothing
// may deadlock, every request must return once its context ends, and the
// group must settle once they stop.
func TestChurn(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.InitialRebalanceDelay = 20 * time.Millisecond })
	const g = "churn"
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	stats := map[string]int{}
	for i := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			count := func(k string) { mu.Lock(); stats[k]++; mu.Unlock() }
			c := WithClientInfo(ctx, ClientInfo{ClientID: fmt.Sprintf("m%d", i)})
			memberID := ""
			for ctx.Err() == nil {
				o := joinOpts{memberID: memberID, session: 500 * time.Millisecond, rebalance: 300 * time.Millisecond}
				if rng.IntN(4) == 0 {
					o.instance = fmt.Sprintf("inst-%d", i%3) // collide on purpose
				}
				j, err := h.join(c, g, o)
				if err != nil {
					return
				}
				if j.ErrorCode != 0 {
					count(fmt.Sprintf("join-error-%d", j.ErrorCode))
					if j.ErrorCode == kerr.UnknownMemberID.Code || j.ErrorCode == kerr.FencedInstanceID.Code {
						memberID = ""
					}
					continue
				}
				count("joined")
				memberID = j.MemberID
				assign := map[string][]byte{}
				for _, m := range j.Members {
					assign[m.MemberID] = []byte("a")
				}
				sreq := syncRequest(g, memberID, j.Generation, assign)
				sreq.Protocol, sreq.InstanceID = j.Protocol, nil
				if o.instance != "" {
					sreq.InstanceID = &o.instance
				}
				if rng.IntN(8) == 0 {
					continue // never syncs: the pending-sync timeout removes it
				}
				resp, err := h.c.Handle(c, sreq)
				if err != nil {
					return
				}
				if code := resp.(*kmsg.SyncGroupResponse).ErrorCode; code != 0 {
					count("sync-error")
					continue
				}
				count("synced")
				for range rng.IntN(5) {
					hb := kmsg.NewPtrHeartbeatRequest()
					hb.Version = 4
					hb.Group, hb.MemberID, hb.Generation = g, memberID, j.Generation
					if o.instance != "" {
						hb.InstanceID = &o.instance
					}
					resp, err := h.c.Handle(c, hb)
					if err != nil {
						return
					}
					if resp.(*kmsg.HeartbeatResponse).ErrorCode != 0 {
						break
					}
					oc := kmsg.NewPtrOffsetCommitRequest()
					oc.Version = 8
					oc.Group, oc.MemberID, oc.Generation = g, memberID, j.Generation
					oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: int32(i), Offset: int64(rng.IntN(100))}}}}
					if _, err := h.c.Handle(c, oc); err != nil {
						return
					}
					time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
				}
				switch rng.IntN(4) {
				case 0:
					lv := kmsg.NewPtrLeaveGroupRequest()
					lv.Version = 3
					lv.Group = g
					lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: memberID}}
					if _, err := h.c.Handle(c, lv); err != nil {
						return
					}
					memberID = ""
				case 1:
					// Silently vanish: a new incarnation without member id.
					memberID = ""
				}
			}
		})
	}
	wg.Wait()
	t.Logf("stats: %v", stats)
	if stats["synced"] == 0 {
		t.Fatal("no member ever completed a rebalance")
	}
	// With everyone gone, sessions and rebalance timeouts empty the group.
	eventually(t, "group settles empty", func() bool {
		d := h.describe(g)
		return d.State == "Empty" && len(d.Members) == 0
	})
}
