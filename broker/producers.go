package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeProducers answers DescribeProducers (key 61): for each
// requested partition, the producers whose idempotent state its log keeps
// (see storage.Log.Producers), as Kafka's ProducerStateManager reports
// them. Unknown topics and partitions get UNKNOWN_TOPIC_OR_PARTITION per
// partition; a topic is never auto-created.
func (s *Server) handleDescribeProducers(rc *reqCtx, req *kmsg.DescribeProducersRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	resp.Topics = make([]kmsg.DescribeProducersResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		ot := &resp.Topics[i]
		ot.Topic = rt.Topic
		t := s.topics.get(rt.Topic)
		ot.Partitions = make([]kmsg.DescribeProducersResponseTopicPartition, len(rt.Partitions))
		for j, part := range rt.Partitions {
			op := &ot.Partitions[j]
			op.Partition = part
			var p *partition
			if t != nil {
				p = t.partition(part)
			}
			if p == nil {
				op.ErrorCode = rc.note(kerr.UnknownTopicOrPartition.Code)
				continue
			}
			ps := p.log.Producers()
			op.ActiveProducers = make([]kmsg.DescribeProducersResponseTopicPartitionActiveProducer, len(ps))
			for k, pi := range ps {
				ap := &op.ActiveProducers[k]
				ap.ProducerID = pi.ProducerID
				ap.ProducerEpoch = int32(pi.ProducerEpoch)
				ap.LastSequence = pi.LastSequence
				ap.LastTimestamp = pi.LastTimestamp
				ap.CoordinatorEpoch = pi.CoordinatorEpoch
				ap.CurrentTxnStartOffset = pi.TxnStartOffset
			}
		}
	}
	return resp
}
