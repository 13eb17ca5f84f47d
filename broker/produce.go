package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errAcksZeroFailed closes the connection of an acks=0 produce that failed,
// as Kafka does, so the client refreshes its metadata.
var errAcksZeroFailed = errors.New("acks=0 produce failed")

// appendTask is one partition's batch of a produce request.
type appendTask struct {
	t       *topic
	p       *partition
	records []byte
	rp      *kmsg.ProduceResponseTopicPartition
}

func (s *Server) handleProduce(rc *reqCtx, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	var acksErr int16
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		acksErr = kerr.InvalidRequiredAcks.Code
	}
	tasks := make([]appendTask, 0, 8)
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		ot.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		var (
			t    *topic
			terr error
		)
		if acksErr == 0 {
			t, terr = s.lookupTopic(rt.Topic, s.cfg.AutoCreateTopics)
			if terr == nil && t.internal {
				terr = fmt.Errorf("cannot produce to %q: %w", t.name, ErrInternalTopic)
			}
		}
		for j := range rt.Partitions {
			in := &rt.Partitions[j]
			rp := &ot.Partitions[j]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = in.Partition
			rp.BaseOffset = -1
			switch {
			case acksErr != 0:
				rp.ErrorCode = rc.note(acksErr)
				continue
			case terr != nil:
				rp.ErrorCode = rc.note(errorCode(terr))
				rp.ErrorMessage = errorMessage(terr)
				continue
			}
			p := t.partition(in.Partition)
			if p == nil {
				rp.ErrorCode = rc.note(kerr.UnknownTopicOrPartition.Code)
				continue
			}
			tasks = append(tasks, appendTask{t: t, p: p, records: in.Records, rp: rp})
		}
	}
	if s.cfg.SyncWrites && len(tasks) > 1 {
		// Each append waits for an fsync: overlap them.
		var wg sync.WaitGroup
		for i := range tasks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.appendOne(&tasks[i])
			}()
		}
		wg.Wait()
	} else {
		for i := range tasks {
			s.appendOne(&tasks[i])
		}
	}
	for i := range tasks {
		rc.note(tasks[i].rp.ErrorCode)
	}
	if req.Acks == 0 {
		if rc.code != 0 {
			return nil, fmt.Errorf("%w: %s", errAcksZeroFailed, errorName(rc.code))
		}
		return nil, nil
	}
	return resp, nil
}

func (s *Server) appendOne(task *appendTask) {
	rp := task.rp
	if len(task.records) == 0 {
		rp.ErrorCode = kerr.CorruptMessage.Code
		rp.ErrorMessage = kmsg.StringPtr("produce request has no record batches")
		return
	}
	info, err := task.p.log.Append(task.records)
	if err != nil {
		rp.ErrorCode = errorCode(err)
		rp.ErrorMessage = errorMessage(err)
		if rp.ErrorCode == kerr.UnknownServerError.Code {
			s.logger.Error("append", "topic", task.t.name, "partition", task.p.id, "err", err)
		}
		return
	}
	rp.BaseOffset = info.FirstOffset
	rp.LogAppendTime = info.LogAppendTime
	rp.LogStartOffset = info.LogStartOffset
	task.p.wake()
	task.t.m.bytesIn.Add(float64(len(task.records)))
	task.t.m.recordsIn.Add(float64(info.RecordCount))
}

// fetchPart is one requested partition of a fetch.
type fetchPart struct {
	t        *topic
	p        *partition // nil when the partition has an error
	offset   int64
	maxBytes int32
	hw       int64 // end offset seen by the last pass
	rp       *kmsg.FetchResponseTopicPartition
}

func (s *Server) handleFetch(rc *reqCtx, req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 {
		switch {
		case req.SessionID != 0:
			resp.ErrorCode = rc.note(kerr.FetchSessionIDNotFound.Code)
			return resp
		case req.SessionEpoch > 0:
			resp.ErrorCode = rc.note(kerr.InvalidFetchSessionEpoch.Code)
			return resp
		}
	}
	useIDs := req.Version >= 13
	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	parts := make([]fetchPart, 0, n)
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	hasErr := false
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		var t *topic
		terr := kerr.UnknownTopicOrPartition.Code
		if useIDs {
			t = s.topics.getByID(rt.TopicID)
			terr = kerr.UnknownTopicID.Code
		} else {
			t = s.topics.get(rt.Topic)
		}
		ot.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			in := &rt.Partitions[j]
			rp := &ot.Partitions[j]
			*rp = kmsg.NewFetchResponseTopicPartition()
			rp.Partition = in.Partition
			fp := fetchPart{t: t, offset: in.FetchOffset, maxBytes: in.PartitionMaxBytes, rp: rp}
			switch {
			case t == nil:
				rp.ErrorCode = rc.note(terr)
			case t.partition(in.Partition) == nil:
				rp.ErrorCode = rc.note(kerr.UnknownTopicOrPartition.Code)
			case checkLeaderEpoch(in.CurrentLeaderEpoch) != 0:
				rp.ErrorCode = rc.note(checkLeaderEpoch(in.CurrentLeaderEpoch))
			default:
				fp.p = t.partition(in.Partition)
			}
			if fp.p == nil {
				hasErr = true
			}
			parts = append(parts, fp)
		}
	}

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
			break
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
	for i := range parts {
		fp := &parts[i]
		rc.note(fp.rp.ErrorCode)
		if fp.p != nil && len(fp.rp.RecordBatches) > 0 {
			fp.t.m.bytesOut.Add(float64(len(fp.rp.RecordBatches)))
			fp.t.m.recordsOut.Add(float64(countRecords(fp.rp.RecordBatches)))
		}
	}
	return resp
}

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
		rp := fp.rp
		rp.RecordBatches = nil
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
		rp.RecordBatches = info.Records
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
			offset, ts, err := listOffset(p, in.Timestamp)
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
// offset means no record at or after the timestamp.
func listOffset(p *partition, ts int64) (int64, int64, error) {
	switch ts {
	case listLatest:
		return p.log.EndOffset(), -1, nil
	case listEarliest, listEarliestLoc:
		return p.log.StartOffset(), -1, nil
	case listMaxTime:
		return -1, -1, fmt.Errorf("max timestamp lookup (-3) is not supported: %w", kerr.UnsupportedVersion)
	}
	if ts < 0 {
		return -1, -1, fmt.Errorf("timestamp %d: %w", ts, kerr.InvalidRequest)
	}
	off, got, ok, err := p.log.OffsetForTimestamp(ts)
	if err != nil {
		return -1, -1, err
	}
	if !ok {
		return -1, -1, nil
	}
	return off, got, nil
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
