package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const apiVersionsKey = 18

// apiRange is one advertised API and its version range.
type apiRange struct{ key, min, max int16 }

// coreAPIs are the APIs the server answers itself, with the ranges of
// kafka-notes.md. The maxima match a Kafka 3.x release so that clients
// that infer the broker version from them (kafka-python) see a modern one.
var coreAPIs = []apiRange{
	{0, 0, 11}, // Produce
	{1, 0, 16}, // Fetch
	{2, 0, 8},  // ListOffsets
	{3, 0, 12}, // Metadata
	{10, 0, 4}, // FindCoordinator
	{18, 0, 4}, // ApiVersions
	{19, 0, 7}, // CreateTopics
	{20, 0, 6}, // DeleteTopics
	{21, 0, 2}, // DeleteRecords
	{32, 0, 4}, // DescribeConfigs
	{33, 0, 2}, // AlterConfigs
	{37, 0, 3}, // CreatePartitions
	{44, 0, 1}, // IncrementalAlterConfigs
	{60, 0, 1}, // DescribeCluster
	{61, 0, 0}, // DescribeProducers
}

// groupAPIs are answered by the group coordinator.
var groupAPIs = []apiRange{
	{8, 0, 8},  // OffsetCommit
	{9, 0, 8},  // OffsetFetch
	{11, 0, 9}, // JoinGroup
	{12, 0, 4}, // Heartbeat
	{13, 0, 5}, // LeaveGroup
	{14, 0, 5}, // SyncGroup
	{15, 0, 5}, // DescribeGroups
	{16, 0, 4}, // ListGroups
	{42, 0, 2}, // DeleteGroups
	{47, 0, 0}, // OffsetDelete
	{28, 0, 3}, // TxnOffsetCommit
}

// apiTable is the set of advertised APIs.
type apiTable struct {
	lo, hi [maxAPIKey]int16
	ok     [maxAPIKey]bool
	keys   []kmsg.ApiVersionsResponseApiKey // sorted by key
}

func newAPITable(sets ...[]apiRange) *apiTable {
	t := &apiTable{}
	for _, set := range sets {
		for _, a := range set {
			t.lo[a.key], t.hi[a.key], t.ok[a.key] = a.min, a.max, true
		}
	}
	for key := range int16(maxAPIKey) {
		if t.ok[key] {
			t.keys = append(t.keys, kmsg.ApiVersionsResponseApiKey{ApiKey: key, MinVersion: t.lo[key], MaxVersion: t.hi[key]})
		}
	}
	return t
}

// versions returns the advertised range of key.
func (t *apiTable) versions(key int16) (lo, hi int16, ok bool) {
	if key < 0 || key >= maxAPIKey || !t.ok[key] {
		return 0, 0, false
	}
	return t.lo[key], t.hi[key], true
}

// reqCtx carries one request through its handler.
type reqCtx struct {
	ctx  context.Context
	c    *conn
	r    *request
	code int16 // first non-zero error code of the response, for metrics
}

// note records code as the response's error code unless one is recorded.
func (rc *reqCtx) note(code int16) int16 {
	if rc.code == 0 {
		rc.code = code
	}
	return code
}

// handle answers one request. A nil response means no response is sent
// (acks=0 produce); an error closes the connection.
func (s *Server) handle(c *conn, r *request) (kmsg.Response, int16, error) {
	rc := &reqCtx{ctx: c.ctx, c: c, r: r}
	if r.unsupportedApiVersions {
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ApiKeys = s.apis.keys
		return resp, resp.ErrorCode, nil
	}
	var (
		resp kmsg.Response
		err  error
	)
	switch req := r.req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp = s.handleApiVersions(req)
	case *kmsg.MetadataRequest:
		resp = s.handleMetadata(rc, req)
	case *kmsg.ProduceRequest:
		resp, err = s.handleProduce(rc, req)
	case *kmsg.FetchRequest:
		resp = s.handleFetch(rc, req)
	case *kmsg.ListOffsetsRequest:
		resp = s.handleListOffsets(rc, req)
	case *kmsg.FindCoordinatorRequest:
		resp = s.handleFindCoordinator(rc, req)
	case *kmsg.CreateTopicsRequest:
		resp = s.handleCreateTopics(rc, req)
	case *kmsg.DeleteTopicsRequest:
		resp = s.handleDeleteTopics(rc, req)
	case *kmsg.CreatePartitionsRequest:
		resp = s.handleCreatePartitions(rc, req)
	case *kmsg.DeleteRecordsRequest:
		resp = s.handleDeleteRecords(rc, req)
	case *kmsg.DescribeConfigsRequest:
		resp = s.handleDescribeConfigs(rc, req)
	case *kmsg.AlterConfigsRequest:
		resp = s.handleAlterConfigs(rc, req)
	case *kmsg.IncrementalAlterConfigsRequest:
		resp = s.handleIncrementalAlterConfigs(rc, req)
	case *kmsg.DescribeClusterRequest:
		resp = s.handleDescribeCluster(req)
	case *kmsg.DescribeProducersRequest:
		resp = s.handleDescribeProducers(rc, req)
	case *kmsg.InitProducerIDRequest, *kmsg.AddPartitionsToTxnRequest, *kmsg.AddOffsetsToTxnRequest,
		*kmsg.EndTxnRequest, *kmsg.DescribeTransactionsRequest, *kmsg.ListTransactionsRequest:
		if s.txn == nil {
			return nil, 0, fmt.Errorf("no transaction coordinator for %s", kmsg.NameForKey(r.key))
		}
		ctx := rc.ctx
		if r.arrived != nil {
			ctx = r.arrived
		}
		resp, err = s.txn.Handle(ctx, req)
	default:
		if s.group == nil {
			return nil, 0, fmt.Errorf("no handler for %s", kmsg.NameForKey(r.key))
		}
		resp, err = s.group.Handle(clientContext(rc.ctx, c, r), req)
		if err == nil && resp != nil {
			rc.note(groupErrorCode(resp))
		}
	}
	if err != nil {
		return nil, 0, err
	}
	return resp, rc.code, nil
}

// groupErrorCode is the top-level error code of a group API response.
func groupErrorCode(resp kmsg.Response) int16 {
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		return r.ErrorCode
	case *kmsg.SyncGroupResponse:
		return r.ErrorCode
	case *kmsg.HeartbeatResponse:
		return r.ErrorCode
	case *kmsg.LeaveGroupResponse:
		return r.ErrorCode
	case *kmsg.ListGroupsResponse:
		return r.ErrorCode
	case *kmsg.OffsetFetchResponse:
		return r.ErrorCode
	case *kmsg.OffsetDeleteResponse:
		return r.ErrorCode
	case *kmsg.OffsetCommitResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
	case *kmsg.DescribeGroupsResponse:
		for _, g := range r.Groups {
			if g.ErrorCode != 0 {
				return g.ErrorCode
			}
		}
	case *kmsg.DeleteGroupsResponse:
		for _, g := range r.Groups {
			if g.ErrorCode != 0 {
				return g.ErrorCode
			}
		}
	}
	return 0
}

func (s *Server) handleApiVersions(req *kmsg.ApiVersionsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = s.apis.keys
	return resp
}

func (s *Server) handleDescribeCluster(req *kmsg.DescribeClusterRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("only the brokers endpoint type (1) is supported")
		return resp
	}
	resp.EndpointType = 1
	resp.ClusterID = s.clusterID
	resp.ControllerID = s.cfg.NodeID
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{{NodeID: s.cfg.NodeID, Host: s.advHost, Port: s.advPort}}
	return resp
}

func (s *Server) handleFindCoordinator(rc *reqCtx, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	answer := func(key string) (int16, *string) {
		switch {
		case req.CoordinatorType == 1 && s.txn == nil:
			return rc.note(kerr.CoordinatorNotAvailable.Code), kmsg.StringPtr("transaction coordinator not available")
		case req.CoordinatorType == 1:
			return 0, nil
		case req.CoordinatorType != 0:
			return rc.note(kerr.InvalidRequest.Code), kmsg.StringPtr("unknown coordinator key type")
		case s.group == nil:
			return rc.note(kerr.CoordinatorNotAvailable.Code), kmsg.StringPtr("group coordinator not available")
		}
		return 0, nil
	}
	if req.Version >= 4 {
		for _, key := range req.CoordinatorKeys {
			code, msg := answer(key)
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.ErrorCode, c.ErrorMessage = key, code, msg
			c.NodeID, c.Host, c.Port = -1, "", -1
			if code == 0 {
				c.NodeID, c.Host, c.Port = s.cfg.NodeID, s.advHost, s.advPort
			}
			resp.Coordinators = append(resp.Coordinators, c)
		}
		return resp
	}
	code, msg := answer(req.CoordinatorKey)
	resp.ErrorCode, resp.ErrorMessage = code, msg
	resp.NodeID, resp.Host, resp.Port = -1, "", -1
	if code == 0 {
		resp.NodeID, resp.Host, resp.Port = s.cfg.NodeID, s.advHost, s.advPort
	}
	return resp
}

func (s *Server) handleMetadata(rc *reqCtx, req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: s.cfg.NodeID, Host: s.advHost, Port: s.advPort}}
	resp.ClusterID = &s.clusterID
	resp.ControllerID = s.cfg.NodeID

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range s.topics.list() {
			resp.Topics = append(resp.Topics, s.topicMetadata(t))
		}
		return resp
	}
	autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			t := s.topics.getByID(rt.TopicID)
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = rc.note(kerr.UnknownTopicID.Code)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			resp.Topics = append(resp.Topics, s.topicMetadata(t))
			continue
		}
		name := *rt.Topic
		t, err := s.lookupTopic(name, autoCreate)
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr(name)
			mt.ErrorCode = rc.note(errorCode(err))
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, s.topicMetadata(t))
	}
	return resp
}

// lookupTopic returns the topic named name, creating it with the default
// partition count when create is set. Unknown topics return
// ErrTopicNotFound; bad names INVALID_TOPIC_EXCEPTION.
func (s *Server) lookupTopic(name string, create bool) (*topic, error) {
	if t := s.topics.get(name); t != nil {
		return t, nil
	}
	if err := validateTopicName(name); err != nil {
		return nil, err
	}
	if !create {
		return nil, fmt.Errorf("topic %q: %w", name, ErrTopicNotFound)
	}
	t, err := s.topics.ensure(name, s.cfg.DefaultPartitions, nil, false)
	if err != nil {
		s.logger.Warn("auto-creating topic", "topic", name, "err", err)
		return nil, err
	}
	return t, nil
}

func (s *Server) topicMetadata(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.name)
	mt.TopicID = t.id
	mt.IsInternal = t.internal
	node := []int32{s.cfg.NodeID}
	ps := t.partitions()
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(ps))
	for i := range ps {
		mp := &mt.Partitions[i]
		mp.Partition = int32(i)
		mp.Leader = s.cfg.NodeID
		mp.LeaderEpoch = 0
		mp.Replicas = node
		mp.ISR = node
	}
	return mt
}

// checkLeaderEpoch validates a request's CurrentLeaderEpoch: the single
// node's epoch is always 0.
func checkLeaderEpoch(epoch int32) int16 {
	if epoch > 0 {
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}
