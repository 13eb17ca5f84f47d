package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleCreateTopics(rc *reqCtx, req *kmsg.CreateTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreateTopicsResponseTopic()
		ot.Topic = rt.Topic
		ot.NumPartitions, ot.ReplicationFactor = -1, -1
		fail := func(err error) {
			ot.ErrorCode = rc.note(errorCode(err))
			ot.ErrorMessage = errorMessage(err)
		}
		spec, err := s.createSpecFor(rt, seen[rt.Topic] > 1)
		if err == nil {
			spec.validateOnly = req.ValidateOnly
			var t *topic
			if t, err = s.topics.create(spec); err == nil && t != nil {
				ot.TopicID = t.id
			}
		}
		if err != nil {
			fail(err)
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		ot.NumPartitions, ot.ReplicationFactor = spec.partitions, 1
		if req.Version >= 5 {
			for _, e := range s.topicConfigEntries(spec.configs) {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name, c.Value, c.Source, c.ReadOnly = e.name, e.value, int8(e.source), false
				ot.Configs = append(ot.Configs, c)
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// createSpecFor validates a CreateTopics entry against the single node.
func (s *Server) createSpecFor(rt kmsg.CreateTopicsRequestTopic, duplicate bool) (createSpec, error) {
	spec := createSpec{name: rt.Topic, partitions: rt.NumPartitions}
	if duplicate {
		return spec, fmt.Errorf("topic %q appears more than once in the request: %w", rt.Topic, kerr.InvalidRequest)
	}
	if err := validateTopicName(rt.Topic); err != nil {
		return spec, err
	}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return spec, fmt.Errorf("both a replica assignment and num partitions or replication factor were given: %w", kerr.InvalidRequest)
		}
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return spec, fmt.Errorf("replica assignment partitions must be 0..%d in order: %w", len(rt.ReplicaAssignment)-1, kerr.InvalidReplicaAssignment)
			}
			if len(a.Replicas) != 1 || a.Replicas[0] != s.cfg.NodeID {
				return spec, fmt.Errorf("partition %d is assigned to %v; this cluster has only broker %d: %w", a.Partition, a.Replicas, s.cfg.NodeID, kerr.InvalidReplicaAssignment)
			}
		}
		spec.partitions = int32(len(rt.ReplicaAssignment))
	} else {
		switch {
		case rt.ReplicationFactor == -1 || rt.ReplicationFactor == 1:
		case rt.ReplicationFactor > 1:
			return spec, fmt.Errorf("replication factor: %d larger than available brokers: 1: %w", rt.ReplicationFactor, kerr.InvalidReplicationFactor)
		default:
			return spec, fmt.Errorf("replication factor must be larger than 0, or -1 to use the default: %w", kerr.InvalidReplicationFactor)
		}
		if rt.NumPartitions == -1 {
			spec.partitions = s.cfg.DefaultPartitions
		}
	}
	if len(rt.Configs) > 0 {
		spec.configs = make(map[string]string, len(rt.Configs))
		for _, c := range rt.Configs {
			if c.Value == nil {
				return spec, fmt.Errorf("config %q has a null value: %w", c.Name, kerr.InvalidConfig)
			}
			spec.configs[c.Name] = *c.Value
		}
	}
	return spec, nil
}

func (s *Server) handleDeleteTopics(rc *reqCtx, req *kmsg.DeleteTopicsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if req.Version < 6 {
		targets = make([]kmsg.DeleteTopicsRequestTopic, len(req.TopicNames))
		for i := range req.TopicNames {
			targets[i].Topic = &req.TopicNames[i]
		}
	}
	var deleted []string
	for _, rt := range targets {
		ot := kmsg.NewDeleteTopicsResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		var t *topic
		var err error
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			if t = s.topics.get(*rt.Topic); t == nil {
				err = fmt.Errorf("topic %q: %w", *rt.Topic, ErrTopicNotFound)
			}
		default:
			if t = s.topics.getByID(rt.TopicID); t == nil {
				err = fmt.Errorf("topic id %x: %w", rt.TopicID, kerr.UnknownTopicID)
			}
		}
		if err == nil {
			ot.Topic, ot.TopicID = kmsg.StringPtr(t.name), t.id
			if err = s.topics.delete(t); err == nil {
				deleted = append(deleted, t.name)
			}
		}
		if err != nil {
			ot.ErrorCode = rc.note(errorCode(err))
			ot.ErrorMessage = errorMessage(err)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	// As Kafka does, a deleted topic's committed offsets go with it (a
	// topic re-created under the same name starts with none).
	if len(deleted) > 0 && s.group != nil {
		if err := s.group.TopicsDeleted(deleted...); err != nil {
			s.logger.Warn("dropping committed offsets of deleted topics", "topics", deleted, "err", err)
		}
	}
	return resp
}

func (s *Server) handleCreatePartitions(rc *reqCtx, req *kmsg.CreatePartitionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewCreatePartitionsResponseTopic()
		ot.Topic = rt.Topic
		err := func() error {
			if seen[rt.Topic] > 1 {
				return fmt.Errorf("topic %q appears more than once in the request: %w", rt.Topic, kerr.InvalidRequest)
			}
			t := s.topics.get(rt.Topic)
			if t == nil {
				return fmt.Errorf("topic %q: %w", rt.Topic, ErrTopicNotFound)
			}
			if t.internal {
				return fmt.Errorf("cannot add partitions to %q: %w", t.name, ErrInternalTopic)
			}
			if rt.Assignment != nil {
				if want := int(rt.Count) - len(t.partitions()); len(rt.Assignment) != want {
					return fmt.Errorf("%d assignments given for %d new partitions: %w", len(rt.Assignment), want, kerr.InvalidReplicaAssignment)
				}
				for _, a := range rt.Assignment {
					if len(a.Replicas) != 1 || a.Replicas[0] != s.cfg.NodeID {
						return fmt.Errorf("assignment %v: this cluster has only broker %d: %w", a.Replicas, s.cfg.NodeID, kerr.InvalidReplicaAssignment)
					}
				}
			}
			return s.topics.addPartitions(t, rt.Count, req.ValidateOnly)
		}()
		if err != nil {
			ot.ErrorCode = rc.note(errorCode(err))
			ot.ErrorMessage = errorMessage(err)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}
