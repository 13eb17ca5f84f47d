package broker

import (
	"errors"
	"fmt"
	"sync"

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
			if code := s.verifyTxnProduce(req, t.name, in.Partition, in.Records); code != 0 {
				rp.ErrorCode = rc.note(code)
				continue
			}
			tasks = append(tasks, appendTask{t: t, p: p, records: in.Records, rp: rp})
		}
	}
	if len(tasks) > 1 && (s.cfg.SyncWrites || bytesOf(tasks) >= parallelAppendBytes) {
		// Validation (CRC, decompression) and fsyncs dominate: spread
		// the partitions over the cores.
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

// parallelAppendBytes is the request size from which a produce request's
// partitions are appended concurrently.
const parallelAppendBytes = 256 << 10

func bytesOf(tasks []appendTask) int {
	n := 0
	for i := range tasks {
		n += len(tasks[i].records)
	}
	return n
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
