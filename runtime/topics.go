package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eddy-streams/eddy/stream"
)

// ErrTopics is wrapped by the errors Run returns when the cluster's topics
// cannot run the topology: a missing source topic, co-partitioned topics
// with different partition counts, an internal topic with the wrong
// partition count.
var ErrTopics = errors.New("runtime: topics")

// plan is the static shape of the topology as the runtime sees it: which
// sub-topology reads which topic, which topics are internal, which stores
// live where. It is computed once, in New.
type plan struct {
	appID        string
	subs         []stream.SubtopologyInfo
	topicSub     map[string]int   // source topic → sub-topology
	repartitions map[string]int32 // repartition topic → explicit partitions (0: derived)
	writers      map[string]int   // repartition topic → the sub-topology writing it
	changelogs   map[string]string
	storeSub     map[string]int // store → sub-topology
	storeInfo    map[string]stream.StoreInfo
	stateful     map[int]bool // sub-topologies with a logged store (standbys)
	userTopics   []string     // source topics that are not internal, sorted
	sources      []string     // every source topic, sorted
	globals      []stream.GlobalStoreInfo
	globalStore  map[string]stream.GlobalStoreInfo // global store → info
	globalTopics []string                          // topics of the global tables, sorted
}

func newPlan(top *stream.Topology, appID string) (*plan, error) {
	p := &plan{
		appID:        appID,
		subs:         top.Subtopologies(appID),
		topicSub:     map[string]int{},
		repartitions: map[string]int32{},
		writers:      map[string]int{},
		changelogs:   map[string]string{},
		storeSub:     map[string]int{},
		storeInfo:    map[string]stream.StoreInfo{},
		stateful:     map[int]bool{},
		globals:      top.GlobalStores(appID),
		globalStore:  map[string]stream.GlobalStoreInfo{},
	}
	for _, s := range p.subs {
		for _, tp := range s.SourceTopics {
			if other, dup := p.topicSub[tp]; dup {
				return nil, fmt.Errorf("%w: topic %q is read by sub-topologies %d and %d; read it once and share the stream", stream.ErrTopology, tp, other, s.ID)
			}
			p.topicSub[tp] = s.ID
		}
		for _, rt := range s.RepartitionSources {
			p.repartitions[rt.Name] = rt.Partitions
		}
		for _, rt := range s.RepartitionSinks {
			p.writers[rt.Name] = s.ID
			if rt.Partitions > 0 {
				p.repartitions[rt.Name] = rt.Partitions
			}
		}
		for _, st := range s.Stores {
			p.storeSub[st.Name] = s.ID
			p.storeInfo[st.Name] = st
			if st.Logged {
				p.changelogs[st.Changelog.Name] = st.Name
				p.stateful[s.ID] = true
			}
		}
	}
	for tp := range p.topicSub {
		p.sources = append(p.sources, tp)
		if _, internal := p.repartitions[tp]; !internal {
			p.userTopics = append(p.userTopics, tp)
		}
	}
	sort.Strings(p.sources)
	sort.Strings(p.userTopics)
	for _, g := range p.globals {
		if sub, dup := p.topicSub[g.Topic]; dup {
			return nil, fmt.Errorf("%w: topic %q is read by global table %s and by sub-topology %d; a topic feeds either streams and tables or one global table", stream.ErrTopology, g.Topic, g.Name, sub)
		}
		p.globalStore[g.Name] = g
		p.globalTopics = append(p.globalTopics, g.Topic)
	}
	sort.Strings(p.globalTopics)
	return p, nil
}

// taskOf returns the task that reads partition of topic.
func (p *plan) taskOf(topic string, partition int32) (stream.TaskID, bool) {
	sub, ok := p.topicSub[topic]
	return stream.TaskID{Subtopology: sub, Partition: partition}, ok
}

// taskCounts returns each sub-topology's task count (the largest partition
// count of its source topics) given the topics' partition counts.
func (p *plan) taskCounts(counts map[string]int32) map[int]int32 {
	out := make(map[int]int32, len(p.subs))
	for _, s := range p.subs {
		var n int32
		for _, tp := range s.SourceTopics {
			n = max(n, counts[tp])
		}
		out[s.ID] = n
	}
	return out
}

// tasks lists every task given the topics' partition counts, sorted.
func (p *plan) tasks(counts map[string]int32) []stream.TaskID {
	var out []stream.TaskID
	tc := p.taskCounts(counts)
	for _, s := range p.subs {
		for i := range tc[s.ID] {
			out = append(out, stream.TaskID{Subtopology: s.ID, Partition: i})
		}
	}
	return out
}

// partitionsOf returns the source partitions of task id: partition
// id.Partition of each source topic that has it.
func (p *plan) partitionsOf(id stream.TaskID, counts map[string]int32) map[string]int32 {
	out := map[string]int32{}
	for _, tp := range p.subs[id.Subtopology].SourceTopics {
		if counts[tp] > id.Partition {
			out[tp] = id.Partition
		}
	}
	return out
}

// topicCounts resolves the partition count of every source topic:
// user topics and global topics as they exist (a missing one is an
// error), repartition topics
// from their explicit count, else from the sub-topology that writes them
// (the largest count of its source topics), then aligned inside
// co-partition groups; the groups are then checked.
func (p *plan) topicCounts(existing map[string]int32) (map[string]int32, error) {
	counts := map[string]int32{}
	var missing, missingGlobal []string
	for _, tp := range p.userTopics {
		n, ok := existing[tp]
		if !ok {
			missing = append(missing, tp)
			continue
		}
		counts[tp] = n
	}
	for _, tp := range p.globalTopics {
		n, ok := existing[tp]
		if !ok {
			missingGlobal = append(missingGlobal, tp)
			continue
		}
		counts[tp] = n
	}
	if len(missing)+len(missingGlobal) > 0 {
		var what []string
		if len(missing) > 0 {
			what = append(what, "source topic(s) "+strings.Join(missing, ", "))
		}
		if len(missingGlobal) > 0 {
			what = append(what, "global table topic(s) "+strings.Join(missingGlobal, ", "))
		}
		return nil, fmt.Errorf("%w: %s do not exist; create them before starting the application", ErrTopics, strings.Join(what, " and "))
	}
	resolving := map[string]bool{}
	var resolve func(tp string) (int32, error)
	resolve = func(tp string) (int32, error) {
		if n, ok := counts[tp]; ok {
			return n, nil
		}
		if n := p.repartitions[tp]; n > 0 {
			counts[tp] = n
			return n, nil
		}
		if resolving[tp] {
			// A cycle (a foreign-key join's subscription and response
			// topics feed each other): it adds nothing here; the
			// co-partition groups below size such topics.
			return 0, nil
		}
		resolving[tp] = true
		w, ok := p.writers[tp]
		if !ok {
			return 0, fmt.Errorf("%w: repartition topic %s has no writer", ErrTopics, tp)
		}
		var n int32
		for _, src := range p.subs[w].SourceTopics {
			c, err := resolve(src)
			if err != nil {
				return 0, err
			}
			n = max(n, c)
		}
		counts[tp] = n
		return n, nil
	}
	for _, tp := range slices.Sorted(maps.Keys(p.repartitions)) {
		if _, err := resolve(tp); err != nil {
			return nil, err
		}
	}
	// Co-partition groups: repartition topics without an explicit count
	// take the count of the group's fixed topics (user topics and explicit
	// repartition topics), or the largest count in the group.
	for _, s := range p.subs {
		for _, g := range s.Copartitioned {
			var target int32
			var fixed []string
			for _, tp := range g.Topics {
				if n, internal := p.repartitions[tp]; !internal || n > 0 {
					fixed = append(fixed, tp)
				}
			}
			if len(fixed) > 0 {
				target = counts[fixed[0]]
			} else {
				for _, tp := range g.Topics {
					target = max(target, counts[tp])
				}
			}
			for _, tp := range g.Topics {
				if n, internal := p.repartitions[tp]; internal && n == 0 {
					counts[tp] = target
				}
			}
		}
	}
	for _, tp := range slices.Sorted(maps.Keys(p.repartitions)) {
		if counts[tp] <= 0 {
			return nil, fmt.Errorf("%w: cannot size repartition topic %s: it depends only on itself; give it a partition count", ErrTopics, tp)
		}
	}
	for _, s := range p.subs {
		for _, g := range s.Copartitioned {
			var desc []string
			equal := true
			for _, tp := range g.Topics {
				desc = append(desc, fmt.Sprintf("%s (%d partitions)", tp, counts[tp]))
				equal = equal && counts[tp] == counts[g.Topics[0]]
			}
			if !equal {
				return nil, fmt.Errorf("%w: %s needs co-partitioned inputs, but %s differ; give them the same partition count (or repartition one side)", ErrTopics, g.Operator, strings.Join(desc, ", "))
			}
		}
	}
	return counts, nil
}

// internalTopic is a topic the application creates.
type internalTopic struct {
	name       string
	partitions int32
	configs    map[string]string
}

// internalTopics lists the repartition and changelog topics with their
// resolved partition counts.
func (p *plan) internalTopics(counts map[string]int32) []internalTopic {
	tc := p.taskCounts(counts)
	var out []internalTopic
	seen := map[string]bool{}
	for _, s := range p.subs {
		for _, rt := range append(slices.Clone(s.RepartitionSources), s.RepartitionSinks...) {
			if !seen[rt.Name] {
				seen[rt.Name] = true
				out = append(out, internalTopic{name: rt.Name, partitions: counts[rt.Name], configs: rt.Configs})
			}
		}
		for _, st := range s.Stores {
			if st.Logged && !seen[st.Changelog.Name] {
				seen[st.Changelog.Name] = true
				out = append(out, internalTopic{name: st.Changelog.Name, partitions: tc[s.ID], configs: st.Changelog.Configs})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// setupTopics checks the source topics, creates the internal topics and
// returns every source and internal topic's partition count.
func (p *plan) setupTopics(ctx context.Context, cl *kgo.Client, rf int16) (map[string]int32, error) {
	adm := kadm.NewClient(cl)
	existing, err := listPartitions(ctx, cl, append(slices.Clone(p.userTopics), p.globalTopics...)...)
	if err != nil {
		return nil, err
	}
	counts, err := p.topicCounts(existing)
	if err != nil {
		return nil, err
	}
	internal := p.internalTopics(counts)
	var names []string
	for _, it := range internal {
		names = append(names, it.name)
	}
	have, err := listPartitions(ctx, cl, names...)
	if err != nil {
		return nil, err
	}
	for _, it := range internal {
		if n, ok := have[it.name]; ok {
			if n != it.partitions {
				return nil, fmt.Errorf("%w: internal topic %s has %d partitions, the topology needs %d (delete it, or reset the application)", ErrTopics, it.name, n, it.partitions)
			}
			counts[it.name] = n
			continue
		}
		cfgs := map[string]*string{}
		for k, v := range it.configs {
			cfgs[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopics(ctx, it.partitions, rf, cfgs, it.name)
		if err != nil {
			return nil, fmt.Errorf("runtime: create topic %s: %w", it.name, err)
		}
		if r, ok := resp[it.name]; ok && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return nil, fmt.Errorf("runtime: create topic %s: %w", it.name, r.Err)
		} else if ok && r.Err != nil {
			// Another worker created it meanwhile: check its size.
			now, err := listPartitions(ctx, cl, it.name)
			if err != nil {
				return nil, err
			}
			if n := now[it.name]; n != it.partitions {
				return nil, fmt.Errorf("%w: internal topic %s has %d partitions, the topology needs %d", ErrTopics, it.name, n, it.partitions)
			}
		}
		counts[it.name] = it.partitions
	}
	return counts, nil
}

// listPartitions returns the partition count of each topic that exists.
// It asks a broker directly (no metadata cache), and waits a little for
// topics that exist without partitions yet (just created).
func listPartitions(ctx context.Context, cl *kgo.Client, topics ...string) (map[string]int32, error) {
	out := map[string]int32{}
	if len(topics) == 0 {
		return out, nil
	}
	for attempt := 0; ; attempt++ {
		req := kmsg.NewPtrMetadataRequest()
		for _, t := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("runtime: list topics: %w", err)
		}
		settling := false
		for _, t := range resp.Topics {
			if t.Topic == nil {
				continue
			}
			err := kerr.ErrorForCode(t.ErrorCode)
			switch {
			case errors.Is(err, kerr.UnknownTopicOrPartition):
				continue
			case errors.Is(err, kerr.LeaderNotAvailable) || err == nil && len(t.Partitions) == 0:
				settling = true
			case err != nil:
				return nil, fmt.Errorf("runtime: topic %s: %w", *t.Topic, err)
			}
			out[*t.Topic] = int32(len(t.Partitions))
		}
		if !settling || attempt >= 50 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
