package broker

import (
	"encoding/binary"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchPart is one partition of a fetch.
type fetchPart struct {
	name     string   // topic name as requested (v0-v12)
	id       [16]byte // topic id as requested (v13+)
	t        *topic
	p        *partition // nil when the partition has an error
	offset   int64
	maxBytes int32
	hw       int64 // end offset seen by the last pass
	rp       kmsg.FetchResponseTopicPartition
	sp       *sessionPart // the session's entry, for incremental fetches
}

func (s *Server) handleFetch(rc *reqCtx, req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	useIDs := req.Version >= 13

	var (
		sess        *fetchSession
		incremental bool
	)
	if req.Version >= 7 {
		switch {
		case req.SessionEpoch == -1: // sessionless full fetch; closes the session
			if req.SessionID != 0 {
				s.sessions.remove(req.SessionID)
			}
		case req.SessionEpoch == 0: // new session
			if req.SessionID != 0 {
				s.sessions.remove(req.SessionID)
			}
			sess = s.sessions.create()
		default:
			var code int16
			sess, code = s.sessions.acquire(req.SessionID, req.SessionEpoch)
			if code != 0 {
				resp.ErrorCode = rc.note(code)
				return resp
			}
			incremental = true
		}
	}
	if sess != nil {
		defer sess.release()
	}

	var parts []fetchPart
	if incremental {
		sess.update(req, useIDs)
		parts = make([]fetchPart, len(sess.parts))
		for i, sp := range sess.parts {
			parts[i] = fetchPart{name: sp.key.name, id: sp.key.id, offset: sp.offset, maxBytes: sp.maxBytes, sp: sp}
			parts[i].rp = kmsg.NewFetchResponseTopicPartition()
			parts[i].rp.RecordBatches = noRecords
			parts[i].rp.Partition = sp.key.partition
		}
	} else {
		for i := range req.Topics {
			rt := &req.Topics[i]
			for j := range rt.Partitions {
				in := &rt.Partitions[j]
				fp := fetchPart{name: rt.Topic, id: rt.TopicID, offset: in.FetchOffset, maxBytes: in.PartitionMaxBytes}
				fp.rp = kmsg.NewFetchResponseTopicPartition()
				fp.rp.RecordBatches = noRecords
				fp.rp.Partition = in.Partition
				if code := checkLeaderEpoch(in.CurrentLeaderEpoch); code != 0 {
					fp.rp.ErrorCode = code
				}
				parts = append(parts, fp)
			}
		}
		if sess != nil {
			sess.reset(parts, useIDs)
		}
	}

	hasErr := false
	for i := range parts {
		fp := &parts[i]
		if fp.rp.ErrorCode != 0 {
			hasErr = true
			continue
		}
		if useIDs {
			fp.t = s.topics.getByID(fp.id)
		} else {
			fp.t = s.topics.get(fp.name)
		}
		switch {
		case fp.t == nil && useIDs:
			fp.rp.ErrorCode = kerr.UnknownTopicID.Code
		case fp.t == nil:
			fp.rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			if fp.p = fp.t.partition(fp.rp.Partition); fp.p == nil {
				fp.rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
		}
		if fp.p == nil {
			hasErr = true
		}
	}

	s.fetchWait(rc, parts, req, hasErr)

	// Group the partitions by topic, in first-seen order. An incremental
	// response carries only partitions with records, an error, or a
	// changed high watermark or log start offset.
	index := make(map[[16]byte]int)
	byName := make(map[string]int)
	for i := range parts {
		fp := &parts[i]
		rc.note(fp.rp.ErrorCode)
		if fp.p != nil && len(fp.rp.RecordBatches) > 0 {
			fp.t.m.bytesOut.Add(float64(len(fp.rp.RecordBatches)))
			fp.t.m.recordsOut.Add(float64(countRecords(fp.rp.RecordBatches)))
		}
		if sp := fp.sp; sp != nil {
			changed := len(fp.rp.RecordBatches) > 0 || fp.rp.ErrorCode != 0 ||
				!sp.sent || sp.hw != fp.rp.HighWatermark || sp.logStart != fp.rp.LogStartOffset
			if !changed {
				continue
			}
		}
		if sess != nil {
			sess.sent(fp)
		}
		var (
			ti int
			ok bool
		)
		if useIDs {
			ti, ok = index[fp.id]
		} else {
			ti, ok = byName[fp.name]
		}
		if !ok {
			ti = len(resp.Topics)
			resp.Topics = append(resp.Topics, kmsg.FetchResponseTopic{Topic: fp.name, TopicID: fp.id})
			if useIDs {
				index[fp.id] = ti
			} else {
				byName[fp.name] = ti
			}
		}
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, fp.rp)
	}
	if sess != nil {
		resp.SessionID = sess.id
		sess.epoch++
	}
	return resp
}

// fetchWait reads the partitions, long-polling until MinBytes are
// available, MaxWaitMillis passes, an error shows up or the connection
// closes. A waiting fetch is woken by appends to its partitions.
func (s *Server) fetchWait(rc *reqCtx, parts []fetchPart, req *kmsg.FetchRequest, hasErr bool) {
	var (
		wait    chan struct{}
		timer   *time.Timer
		expired = req.MaxWaitMillis <= 0
	)
	defer func() {
		if wait != nil {
			for i := range parts {
				if parts[i].p != nil {
					parts[i].p.removeWaiter(wait)
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		total, passErr := s.fetchPass(parts, req.MaxBytes)
		if hasErr || passErr || expired || total >= int(req.MinBytes) || rc.ctx.Err() != nil {
			return
		}
		if wait == nil {
			wait = make(chan struct{}, 1)
			timer = time.NewTimer(time.Duration(req.MaxWaitMillis) * time.Millisecond)
			moved := false
			for i := range parts {
				if fp := &parts[i]; fp.p != nil {
					fp.p.addWaiter(wait)
					moved = moved || fp.p.log.EndOffset() != fp.hw
				}
			}
			if moved {
				continue
			}
		}
		select {
		case <-wait:
		case <-timer.C:
			expired = true
		case <-rc.ctx.Done():
			expired = true
		}
	}
}

// noRecords is the empty, non-null record set of a partition with nothing to
// return.
var noRecords = []byte{}

// fetchPass reads every partition once, returning the bytes read and
// whether any partition failed.
func (s *Server) fetchPass(parts []fetchPart, maxBytes int32) (int, bool) {
	total := 0
	failed := false
	for i := range parts {
		fp := &parts[i]
		if fp.p == nil {
			continue
		}
		rp := &fp.rp
		// An empty record set, never null: sarama and librdkafka reject a
		// null (-1) MessageSetSize in a fetch response.
		rp.RecordBatches = noRecords
		rp.ErrorCode = 0
		log := fp.p.log
		remaining := int(maxBytes) - total
		limit := min(int(fp.maxBytes), remaining)
		if total > 0 && limit <= 0 {
			fp.hw = log.EndOffset()
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = fp.hw, fp.hw, log.StartOffset()
			continue
		}
		info, err := log.Read(fp.offset, max(limit, 1))
		if err != nil {
			fp.hw = log.EndOffset()
			rp.ErrorCode = errorCode(err)
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = fp.hw, fp.hw, log.StartOffset()
			failed = true
			continue
		}
		fp.hw = info.HighWatermark
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = info.HighWatermark, info.HighWatermark, info.LogStartOffset
		if total > 0 && len(info.Records) > limit {
			continue // only the first non-empty partition may exceed the limits
		}
		if len(info.Records) > 0 {
			rp.RecordBatches = info.Records
		}
		total += len(info.Records)
	}
	return total, failed
}

// countRecords sums the record counts of the batch headers in b.
func countRecords(b []byte) int {
	n := 0
	for len(b) >= 61 {
		length := int(int32(binary.BigEndian.Uint32(b[8:12])))
		n += int(int32(binary.BigEndian.Uint32(b[57:61])))
		if length < 49 || 12+length > len(b) {
			break
		}
		b = b[12+length:]
	}
	return n
}
