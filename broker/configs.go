package broker

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/broker/storage"
)

// brokerNameOf maps topic config names to the broker config that sets
// their default (Kafka's synonyms).
var brokerNameOf = map[string]string{
	"segment.bytes":             "log.segment.bytes",
	"segment.ms":                "log.roll.ms",
	"segment.index.bytes":       "log.index.size.max.bytes",
	"index.interval.bytes":      "log.index.interval.bytes",
	"retention.ms":              "log.retention.ms",
	"retention.bytes":           "log.retention.bytes",
	"cleanup.policy":            "log.cleanup.policy",
	"min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
	"min.compaction.lag.ms":     "log.cleaner.min.compaction.lag.ms",
	"max.compaction.lag.ms":     "log.cleaner.max.compaction.lag.ms",
	"delete.retention.ms":       "log.cleaner.delete.retention.ms",
	"file.delete.delay.ms":      "log.segment.delete.delay.ms",
	"flush.messages":            "log.flush.interval.messages",
	"flush.ms":                  "log.flush.interval.ms",
	"max.message.bytes":         "message.max.bytes",
	"message.timestamp.type":    "log.message.timestamp.type",
	"compression.type":          "compression.type",
	"min.insync.replicas":       "min.insync.replicas",
}

// fixedTopicConfigs are accepted topic configs with no effect on a single
// node; they are described with these values unless overridden.
var fixedTopicConfigs = map[string]string{
	"compression.type":               "producer",
	"min.insync.replicas":            "1",
	"unclean.leader.election.enable": "false",
}

// configTypeOf is the DescribeConfigs v3+ type of a topic config.
func configTypeOf(name string) kmsg.ConfigType {
	switch name {
	case "cleanup.policy":
		return kmsg.ConfigTypeList
	case "message.timestamp.type", "compression.type":
		return kmsg.ConfigTypeString
	case "min.cleanable.dirty.ratio":
		return kmsg.ConfigTypeDouble
	case "segment.index.bytes", "index.interval.bytes", "max.message.bytes", "min.insync.replicas":
		return kmsg.ConfigTypeInt
	case "unclean.leader.election.enable", "auto.create.topics.enable":
		return kmsg.ConfigTypeBoolean
	}
	return kmsg.ConfigTypeLong
}

// configEntry is one described config with its synonyms, most specific
// first.
type configEntry struct {
	name     string
	value    *string
	source   kmsg.ConfigSource
	synonyms []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
}

// topicConfigEntries describes a topic's effective configs given its
// overrides: DYNAMIC_TOPIC_CONFIG for overrides, STATIC_BROKER_CONFIG for
// broker --topic defaults, DEFAULT_CONFIG otherwise.
func (s *Server) topicConfigEntries(overrides map[string]string) []configEntry {
	eff, err := s.topics.topicConfig(overrides)
	if err != nil {
		eff = s.topics.base
	}
	values := eff.ToMap()
	defaults := storage.DefaultConfig().ToMap()
	static := s.topics.base.ToMap()
	for k, v := range fixedTopicConfigs {
		values[k], defaults[k], static[k] = v, v, v
		if bv, ok := s.cfg.TopicDefaults[k]; ok {
			values[k], static[k] = bv, bv
		}
	}
	for k, v := range overrides {
		values[k] = v
	}
	names := slices.Sorted(maps.Keys(values))
	out := make([]configEntry, 0, len(names))
	for _, name := range names {
		e := configEntry{name: name, value: kmsg.StringPtr(values[name]), source: kmsg.ConfigSourceDefaultConfig}
		bname := brokerNameOf[name]
		if bname == "" {
			bname = name
		}
		if v, ok := overrides[name]; ok {
			e.source = kmsg.ConfigSourceDynamicTopicConfig
			e.synonyms = append(e.synonyms, synonym(name, v, kmsg.ConfigSourceDynamicTopicConfig))
		}
		if _, ok := s.cfg.TopicDefaults[name]; ok {
			if e.source == kmsg.ConfigSourceDefaultConfig {
				e.source = kmsg.ConfigSourceStaticBrokerConfig
			}
			e.synonyms = append(e.synonyms, synonym(bname, static[name], kmsg.ConfigSourceStaticBrokerConfig))
		}
		if d, ok := defaults[name]; ok {
			e.synonyms = append(e.synonyms, synonym(bname, d, kmsg.ConfigSourceDefaultConfig))
		}
		out = append(out, e)
	}
	return out
}

func synonym(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	syn.Name, syn.Value, syn.Source = name, kmsg.StringPtr(value), src
	return syn
}

// brokerConfigEntries describes the broker's (static) configs.
func (s *Server) brokerConfigEntries() []configEntry {
	def := DefaultConfig()
	type kv struct {
		name, value, deflt string
	}
	list := []kv{
		{"broker.id", strconv.Itoa(int(s.cfg.NodeID)), "0"},
		{"node.id", strconv.Itoa(int(s.cfg.NodeID)), "0"},
		{"log.dirs", s.cfg.DataDir, def.DataDir},
		{"num.partitions", strconv.Itoa(int(s.cfg.DefaultPartitions)), strconv.Itoa(int(def.DefaultPartitions))},
		{"auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics), "true"},
		{"socket.request.max.bytes", strconv.Itoa(int(s.cfg.MaxRequestBytes)), strconv.Itoa(int(def.MaxRequestBytes))},
		{"offsets.topic.num.partitions", strconv.Itoa(int(s.cfg.OffsetsTopicPartitions)), strconv.Itoa(int(def.OffsetsTopicPartitions))},
		{"offsets.topic.replication.factor", "1", "1"},
		{"default.replication.factor", "1", "1"},
		{"advertised.listeners", "PLAINTEXT://" + s.Addr(), ""},
	}
	for _, e := range s.topicConfigEntries(nil) {
		bname := brokerNameOf[e.name]
		if bname == "" {
			continue
		}
		d := ""
		if len(e.synonyms) > 0 {
			d = *e.synonyms[len(e.synonyms)-1].Value
		}
		list = append(list, kv{bname, *e.value, d})
	}
	slices.SortFunc(list, func(a, b kv) int { return strings.Compare(a.name, b.name) })
	out := make([]configEntry, 0, len(list))
	for _, c := range list {
		e := configEntry{name: c.name, value: kmsg.StringPtr(c.value), source: kmsg.ConfigSourceDefaultConfig}
		if c.value != c.deflt {
			e.source = kmsg.ConfigSourceStaticBrokerConfig
			e.synonyms = append(e.synonyms, synonym(c.name, c.value, kmsg.ConfigSourceStaticBrokerConfig))
		}
		e.synonyms = append(e.synonyms, synonym(c.name, c.deflt, kmsg.ConfigSourceDefaultConfig))
		out = append(out, e)
	}
	return out
}

// checkBrokerName validates a BROKER resource name ("" or this node's id).
func (s *Server) checkBrokerName(name string) error {
	if name == "" || name == strconv.Itoa(int(s.cfg.NodeID)) {
		return nil
	}
	return fmt.Errorf("unexpected broker id %q, this is broker %d: %w", name, s.cfg.NodeID, kerr.InvalidRequest)
}

func (s *Server) handleDescribeConfigs(rc *reqCtx, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		or := kmsg.NewDescribeConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		var (
			entries []configEntry
			err     error
		)
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := s.topics.get(rr.ResourceName)
			if t == nil {
				err = fmt.Errorf("topic %q: %w", rr.ResourceName, ErrTopicNotFound)
				break
			}
			entries = s.topicConfigEntries(s.topics.overrides(t))
		case kmsg.ConfigResourceTypeBroker:
			if err = s.checkBrokerName(rr.ResourceName); err == nil {
				entries = s.brokerConfigEntries()
			}
		default:
			err = fmt.Errorf("resource type %v is not supported: %w", rr.ResourceType, kerr.InvalidRequest)
		}
		if err != nil {
			or.ErrorCode = rc.note(errorCode(err))
			or.ErrorMessage = errorMessage(err)
			resp.Resources = append(resp.Resources, or)
			continue
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, e.name) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.Source = e.name, e.value, e.source
			c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
			c.ReadOnly = rr.ResourceType == kmsg.ConfigResourceTypeBroker
			if req.IncludeSynonyms {
				c.ConfigSynonyms = e.synonyms
			}
			c.ConfigType = configTypeOf(e.name)
			or.Configs = append(or.Configs, c)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp
}

// alterTarget is the topic an AlterConfigs or IncrementalAlterConfigs
// resource names, or the error that resource gets: a resource named twice
// in one request, broker configs (static in eddy), another resource type, or
// an unknown topic.
func (s *Server) alterTarget(typ kmsg.ConfigResourceType, name string, duplicate bool) (*topic, error) {
	if duplicate {
		return nil, fmt.Errorf("resource appears more than once in the request: %w", kerr.InvalidRequest)
	}
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
	case kmsg.ConfigResourceTypeBroker:
		if err := s.checkBrokerName(name); err != nil {
			return nil, err
		}
		return nil, errBrokerConfigStatic
	default:
		return nil, fmt.Errorf("resource type %v is not supported: %w", typ, kerr.InvalidRequest)
	}
	t := s.topics.get(name)
	if t == nil {
		return nil, fmt.Errorf("topic %q: %w", name, ErrTopicNotFound)
	}
	return t, nil
}

// errBrokerConfigStatic answers attempts to alter broker configs.
var errBrokerConfigStatic = fmt.Errorf("broker configs are static in eddy; set them with flags and restart: %w", kerr.InvalidRequest)

func (s *Server) handleAlterConfigs(rc *reqCtx, req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	dup := duplicateResources(req.Resources, func(r kmsg.AlterConfigsRequestResource) resourceKey {
		return resourceKey{r.ResourceType, r.ResourceName}
	})
	for _, rr := range req.Resources {
		or := kmsg.NewAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		err := func() error {
			t, err := s.alterTarget(rr.ResourceType, rr.ResourceName, dup[resourceKey{rr.ResourceType, rr.ResourceName}])
			if err != nil {
				return err
			}
			next := make(map[string]string, len(rr.Configs))
			for _, c := range rr.Configs {
				if c.Value != nil {
					next[c.Name] = *c.Value
				}
			}
			return s.topics.setConfigs(t, next, req.ValidateOnly)
		}()
		if err != nil {
			or.ErrorCode = rc.note(errorCode(err))
			or.ErrorMessage = errorMessage(err)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp
}

func (s *Server) handleIncrementalAlterConfigs(rc *reqCtx, req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	dup := duplicateResources(req.Resources, func(r kmsg.IncrementalAlterConfigsRequestResource) resourceKey {
		return resourceKey{r.ResourceType, r.ResourceName}
	})
	for _, rr := range req.Resources {
		or := kmsg.NewIncrementalAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		err := func() error {
			t, err := s.alterTarget(rr.ResourceType, rr.ResourceName, dup[resourceKey{rr.ResourceType, rr.ResourceName}])
			if err != nil {
				return err
			}
			next := s.topics.overrides(t)
			if next == nil {
				next = map[string]string{}
			}
			seen := map[string]bool{}
			for _, c := range rr.Configs {
				if seen[c.Name] {
					return fmt.Errorf("config %q appears more than once: %w", c.Name, kerr.InvalidRequest)
				}
				seen[c.Name] = true
				if err := s.applyConfigOp(next, c); err != nil {
					return err
				}
			}
			return s.topics.setConfigs(t, next, req.ValidateOnly)
		}()
		if err != nil {
			or.ErrorCode = rc.note(errorCode(err))
			or.ErrorMessage = errorMessage(err)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp
}

// applyConfigOp applies one IncrementalAlterConfigs operation to overrides.
func (s *Server) applyConfigOp(overrides map[string]string, c kmsg.IncrementalAlterConfigsRequestResourceConfig) error {
	switch c.Op {
	case kmsg.IncrementalAlterConfigOpSet:
		if c.Value == nil {
			return fmt.Errorf("config %q: SET needs a value: %w", c.Name, kerr.InvalidConfig)
		}
		overrides[c.Name] = *c.Value
	case kmsg.IncrementalAlterConfigOpDelete:
		delete(overrides, c.Name)
	case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		if configTypeOf(c.Name) != kmsg.ConfigTypeList || !storage.IsTopicConfig(c.Name) {
			return fmt.Errorf("config %q is not a list: APPEND and SUBTRACT apply to list configs only: %w", c.Name, kerr.InvalidConfig)
		}
		if c.Value == nil {
			return fmt.Errorf("config %q: %v needs a value: %w", c.Name, c.Op, kerr.InvalidConfig)
		}
		cur, ok := overrides[c.Name]
		if !ok {
			cur = s.topics.base.ToMap()[c.Name]
		}
		items := splitList(cur)
		for _, v := range splitList(*c.Value) {
			if c.Op == kmsg.IncrementalAlterConfigOpAppend {
				if !slices.Contains(items, v) {
					items = append(items, v)
				}
			} else {
				items = slices.DeleteFunc(items, func(x string) bool { return x == v })
			}
		}
		overrides[c.Name] = strings.Join(items, ",")
	default:
		return fmt.Errorf("unknown config operation %d: %w", c.Op, kerr.InvalidRequest)
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type resourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

func duplicateResources[T any](rs []T, key func(T) resourceKey) map[resourceKey]bool {
	count := make(map[resourceKey]int, len(rs))
	for _, r := range rs {
		count[key(r)]++
	}
	dup := make(map[resourceKey]bool)
	for k, n := range count {
		if n > 1 {
			dup[k] = true
		}
	}
	return dup
}
