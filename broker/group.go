package broker

import (
	"context"
	"fmt"
	"strings"

	"github.com/eddy-streams/eddy/broker/group"
	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// groupCoordinator adapts group.Coordinator: it hands the client identity
// of the connection to every request.
type groupCoordinator struct {
	*group.Coordinator
}

// newCoordinator starts the consumer-group coordinator over the
// __consumer_offsets logs and returns it with the source of committed
// offsets for the lag gauge.
func newCoordinator(s *Server, logs []*storage.Log) (coordinator, func() []committedOffset, error) {
	c, err := group.New(group.Config{
		Logs:   logs,
		Logger: s.logger,
		Appended: func(partition int32) {
			if t := s.topics.get(offsetsTopic); t != nil {
				if p := t.partition(partition); p != nil {
					p.wake()
				}
			}
		},
		// s.txn starts after this coordinator, before any connection.
		VerifyTxnOffsetCommit: func(transactionalID string, producerID int64, producerEpoch int16, grp string) error {
			if s.txn == nil {
				return fmt.Errorf("no transaction coordinator: %w", kerr.CoordinatorNotAvailable)
			}
			return s.txn.VerifyPartition(transactionalID, producerID, producerEpoch, offsetsTopic, s.group.PartitionFor(grp))
		},
		PartitionExists: func(topic string, partition int32) bool {
			t := s.topics.get(topic)
			return t != nil && t.partition(partition) != nil
		},
	})
	if err != nil {
		return nil, nil, err
	}
	committed := func() []committedOffset {
		cs := c.Committed()
		out := make([]committedOffset, len(cs))
		for i, co := range cs {
			out[i] = committedOffset{group: co.Group, topic: co.Topic, partition: co.Partition, offset: co.Offset}
		}
		return out
	}
	return groupCoordinator{c}, committed, nil
}

// groupAPIRanges are the group APIs with the versions the coordinator
// serves.
func groupAPIRanges() []apiRange {
	var out []apiRange
	for _, a := range groupAPIs {
		if lo, hi, ok := group.Versions(a.key); ok {
			out = append(out, apiRange{a.key, lo, hi})
		}
	}
	return out
}

// clientContext carries the request's client id and address to the
// coordinator (DescribeGroups shows them; member ids embed the client id).
func clientContext(ctx context.Context, c *conn, r *request) context.Context {
	ci := group.ClientInfo{Host: "/" + c.remote}
	if i := strings.LastIndexByte(c.remote, ':'); i >= 0 {
		ci.Host = "/" + strings.Trim(c.remote[:i], "[]")
	}
	if r.clientID != nil {
		ci.ClientID = *r.clientID
	}
	return group.WithClientInfo(ctx, ci)
}
