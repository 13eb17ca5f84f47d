package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleListOffsets(rc *reqCtx, req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		ot.Topic = rt.Topic
		t := s.topics.get(rt.Topic)
		ot.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			in := &rt.Partitions[j]
			rp := &ot.Partitions[j]
			*rp = kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = in.Partition
			var p *partition
			if t != nil {
				p = t.partition(in.Partition)
			}
			if p == nil {
				rp.ErrorCode = rc.note(kerr.UnknownTopicOrPartition.Code)
				continue
			}
			if code := checkLeaderEpoch(in.CurrentLeaderEpoch); code != 0 {
				rp.ErrorCode = rc.note(code)
				continue
			}
			offset, ts, err := listOffset(p, in.Timestamp, req.IsolationLevel == 1)
			if err != nil {
				rp.ErrorCode = rc.note(errorCode(err))
				continue
			}
			rp.Offset, rp.Timestamp = offset, ts
			if offset >= 0 {
				rp.LeaderEpoch = 0
			}
			if req.Version == 0 {
				rp.OldStyleOffsets = []int64{}
				if offset >= 0 {
					rp.OldStyleOffsets = append(rp.OldStyleOffsets, offset)
				}
			}
		}
	}
	return resp
}

// Special ListOffsets timestamps.
const (
	listLatest      = -1
	listEarliest    = -2
	listMaxTime     = -3
	listEarliestLoc = -4
)

// listOffset resolves a ListOffsets timestamp to (offset, timestamp); -1
// offset means no record at or after the timestamp. For a read_committed
// client (v2+), as in Kafka, the log ends at the last stable offset: latest
// is the LSO, and a lookup only finds offsets below it.
func listOffset(p *partition, ts int64, readCommitted bool) (int64, int64, error) {
	fetchable := p.log.EndOffset()
	if readCommitted {
		fetchable = p.log.LastStableOffset()
	}
	switch ts {
	case listLatest:
		return fetchable, -1, nil
	case listEarliest, listEarliestLoc:
		return p.log.StartOffset(), -1, nil
	case listMaxTime:
		off, got, err := maxTimestamp(p)
		if err != nil || off >= fetchable {
			return -1, -1, err
		}
		return off, got, nil
	}
	if ts < 0 {
		return -1, -1, fmt.Errorf("timestamp %d: %w", ts, kerr.InvalidRequest)
	}
	off, got, ok, err := p.log.OffsetForTimestamp(ts)
	if err != nil {
		return -1, -1, err
	}
	if !ok || off >= fetchable {
		return -1, -1, nil
	}
	return off, got, nil
}

// maxTimestamp finds the largest record timestamp and the first offset
// carrying it (ListOffsets -3, KIP-734) by binary search over
// OffsetForTimestamp: about 62 time-index lookups.
func maxTimestamp(p *partition) (int64, int64, error) {
	has := func(ts int64) (bool, error) {
		_, _, ok, err := p.log.OffsetForTimestamp(ts)
		return ok, err
	}
	ok, err := has(0)
	if err != nil || !ok {
		return -1, -1, err
	}
	lo, hi := int64(0), int64(1)<<62
	if ok, err := has(hi); err != nil {
		return -1, -1, err
	} else if ok {
		lo = hi
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := has(mid)
		if err != nil {
			return -1, -1, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	off, ts, ok, err := p.log.OffsetForTimestamp(lo)
	if err != nil || !ok {
		return -1, -1, err
	}
	return off, ts, nil
}

func (s *Server) handleDeleteRecords(rc *reqCtx, req *kmsg.DeleteRecordsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		ot.Topic = rt.Topic
		t := s.topics.get(rt.Topic)
		ot.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			in := &rt.Partitions[j]
			rp := &ot.Partitions[j]
			rp.Partition = in.Partition
			rp.LowWatermark = -1
			var p *partition
			if t != nil {
				p = t.partition(in.Partition)
			}
			if p == nil {
				rp.ErrorCode = rc.note(kerr.UnknownTopicOrPartition.Code)
				continue
			}
			off := in.Offset
			if off == -1 {
				off = p.log.EndOffset()
			}
			if off < 0 || off > p.log.EndOffset() {
				rp.ErrorCode = rc.note(kerr.OffsetOutOfRange.Code)
				continue
			}
			low, err := p.log.DeleteRecordsBefore(off)
			if err != nil {
				rp.ErrorCode = rc.note(errorCode(err))
				continue
			}
			rp.LowWatermark = low
			p.wake()
		}
	}
	return resp
}
