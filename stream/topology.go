package stream

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrTopology is wrapped by every error Build returns for a topology that
// cannot work: a missing serde, a join of streams that cannot be
// co-partitioned, a duplicate name. The message names the operator.
var ErrTopology = errors.New("stream: invalid topology")

type nodeKind int

const (
	kindSource nodeKind = iota
	kindProcessor
	kindSink
)

// node is one vertex of the topology graph.
type node struct {
	name     string
	kind     nodeKind
	op       string // the DSL operator, for errors ("count", "join", ...)
	parents  []*node
	children []*node
	stores   []string
	// Sources: the topics read. Sinks: the static topic (empty when a
	// chooser picks it per record).
	topics   []string
	internal bool // source/sink of a repartition topic (name is not prefixed yet)
	// newInstance creates this node's per-task instance from the
	// instances of its children (in n.children order). The instance is an
	// input[K,V] for the node's input types (sources: a rawInput).
	newInstance func(t *Task, children []any) (any, error)
	sub         int
}

// storeSpec declares a state store.
type storeSpec struct {
	name      string
	logging   bool
	inMemory  bool
	caching   bool
	changelog map[string]string // extra changelog topic configs
	// kind, retention and segment are the store's kind and, for window
	// and session stores, how long entries stay (in stream time) and the
	// segment width (0: the default).
	kind      StoreKind
	retention time.Duration
	segment   time.Duration
}

// repartitionSpec declares a repartition topic.
type repartitionSpec struct {
	name       string // without the application id prefix, ending "-repartition"
	partitions int32  // 0: the maximum of the upstream source topics' counts
}

// Builder builds a topology with the DSL: the counterpart of Kafka Streams'
// StreamsBuilder. Create one with NewBuilder, add streams and tables with
// Stream, Table and GlobalTable, then call Build. A Builder is not safe for
// concurrent use.
type Builder struct {
	nodes        []*node
	byName       map[string]*node
	stores       map[string]*storeSpec
	storeOrder   []string
	repartitions map[string]*repartitionSpec
	grouped      map[groupedKey]any // named groupings' repartitioned streams
	globals      []*globalSpec
	// copartition groups: sets of source node names whose topics must have
	// the same partition count (joins), with the operator that needs it.
	copart []copartGroup
	seq    int
	errs   []error
	built  bool
}

type copartGroup struct {
	op    string
	nodes []*node
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder {
	return &Builder{
		byName:       map[string]*node{},
		stores:       map[string]*storeSpec{},
		repartitions: map[string]*repartitionSpec{},
	}
}

// newName returns a Kafka Streams style generated name, PREFIX-0000000007.
func (b *Builder) newName(prefix string) string {
	n := fmt.Sprintf("%s-%010d", prefix, b.seq)
	b.seq++
	return n
}

// errorf records a build error naming the operator node.
func (b *Builder) errorf(op, name, format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%w: %s (%s): %s", ErrTopology, name, op, fmt.Sprintf(format, args...)))
}

// addNode adds n under parents; name "" generates one from prefix.
func (b *Builder) addNode(n *node, prefix string, parents ...*node) *node {
	if n.name == "" {
		n.name = b.newName(prefix)
	} else if _, dup := b.byName[n.name]; dup {
		b.errorf(n.op, n.name, "a processor named %q already exists", n.name)
		n.name = b.newName(prefix)
	}
	if _, dup := b.byName[n.name]; dup {
		n.name = b.newName(prefix)
	}
	for _, p := range parents {
		n.parents = append(n.parents, p)
		p.children = append(p.children, n)
	}
	b.nodes = append(b.nodes, n)
	b.byName[n.name] = n
	return n
}

// addStore declares a store; declaring the same name twice is an error.
func (b *Builder) addStore(op, node string, s *storeSpec) {
	if _, dup := b.stores[s.name]; dup {
		b.errorf(op, node, "a store named %q already exists", s.name)
		return
	}
	b.stores[s.name] = s
	b.storeOrder = append(b.storeOrder, s.name)
}

// Build checks the topology and returns it. Every problem found while
// building (a missing serde, a duplicate name, streams a join cannot
// co-partition) is reported here, joined, each naming its operator.
func (b *Builder) Build() (*Topology, error) {
	if b.built {
		return nil, fmt.Errorf("%w: Build called twice", ErrTopology)
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	if len(b.nodes) == 0 && len(b.globals) == 0 {
		return nil, fmt.Errorf("%w: the topology has no sources", ErrTopology)
	}
	b.built = true
	t := &Topology{b: b}
	t.split() // a store's processors always land in one sub-topology
	return t, nil
}

// Topology is a built topology: the counterpart of Kafka Streams'
// Topology. It is immutable and safe for concurrent use; tasks are created
// from it with NewTask.
type Topology struct {
	b    *Builder
	subs []*subtopology
}

type subtopology struct {
	id      int
	nodes   []*node // in insertion order (parents before children)
	sources []*node
	stores  []string
}

// split groups nodes into sub-topologies: connected components where
// sinks and sources of the same repartition topic are not connected, and
// nodes sharing a store are connected.
func (t *Topology) split() {
	b := t.b
	parent := map[*node]*node{}
	var find func(*node) *node
	find = func(n *node) *node {
		p, ok := parent[n]
		if !ok || p == n {
			parent[n] = n
			return n
		}
		r := find(p)
		parent[n] = r
		return r
	}
	union := func(a, c *node) {
		ra, rc := find(a), find(c)
		if ra != rc {
			parent[rc] = ra
		}
	}
	storeOwner := map[string]*node{}
	for _, n := range b.nodes {
		find(n)
		for _, p := range n.parents {
			union(p, n)
		}
		for _, s := range n.stores {
			if o, ok := storeOwner[s]; ok {
				union(o, n)
			} else {
				storeOwner[s] = n
			}
		}
	}
	// Co-partitioned sources must be in the same sub-topology (joins).
	for _, g := range b.copart {
		for _, n := range g.nodes[1:] {
			union(g.nodes[0], n)
		}
	}
	// Number components in order of their first source, as Kafka does.
	ids := map[*node]int{}
	for _, n := range b.nodes {
		r := find(n)
		if _, ok := ids[r]; !ok {
			ids[r] = len(t.subs)
			t.subs = append(t.subs, &subtopology{id: len(t.subs)})
		}
		s := t.subs[ids[r]]
		n.sub = s.id
		s.nodes = append(s.nodes, n)
		if n.kind == kindSource {
			s.sources = append(s.sources, n)
		}
		for _, st := range n.stores {
			if !slices.Contains(s.stores, st) {
				s.stores = append(s.stores, st)
			}
		}
	}
}

// InternalTopic is a topic the runtime creates for an application:
// repartition and changelog topics.
type InternalTopic struct {
	// Name is the full topic name, "<application-id>-<name>".
	Name string
	// Partitions is the partition count; 0 means "as many as the
	// sub-topology's source topics have" (the runtime resolves it).
	Partitions int32
	// Configs are topic configs (cleanup.policy=compact for changelogs).
	Configs map[string]string
}

// SubtopologyInfo describes one sub-topology for the runtime.
type SubtopologyInfo struct {
	// ID is the sub-topology number, the first half of its task ids.
	ID int
	// SourceTopics are the topics the sub-topology reads (internal ones
	// already prefixed with the application id), sorted.
	SourceTopics []string
	// RepartitionSources are the SourceTopics that are repartition topics.
	RepartitionSources []InternalTopic
	// RepartitionSinks are repartition topics this sub-topology writes.
	RepartitionSinks []InternalTopic
	// Stores are the stores of the sub-topology.
	Stores []StoreInfo
	// Copartitioned are groups of SourceTopics that must have the same
	// partition count (a join reads them side by side), each with the
	// operator that needs it.
	Copartitioned []CopartitionGroup
}

// CopartitionGroup is a set of topics a join needs co-partitioned.
type CopartitionGroup struct {
	Operator string // the join node, e.g. "KSTREAM-JOIN-0000000004 (join)"
	Topics   []string
}

// StoreInfo describes a state store for the runtime.
type StoreInfo struct {
	// Name is the store name.
	Name string
	// Logged says the store has a changelog topic.
	Logged bool
	// InMemory asks for an in-memory store rather than a persistent one.
	InMemory bool
	// Changelog is the changelog topic (empty when not logged).
	Changelog InternalTopic
	// Kind is the kind of store (key-value, window or session).
	Kind StoreKind
	// Retention is, for window and session stores, how long an entry
	// stays in stream time (table.SegmentOptions.Retention).
	Retention time.Duration
	// SegmentInterval is, for window and session stores, the segment
	// width (0: table's default).
	SegmentInterval time.Duration
}

// internalName prefixes an internal topic name with the application id.
func internalName(appID, name string) string { return appID + "-" + name }

// ChangelogTopic returns the changelog topic name of store in application
// appID: "<application-id>-<store>-changelog".
func ChangelogTopic(appID, store string) string {
	return internalName(appID, store+"-changelog")
}

// Subtopologies describes the sub-topologies for application appID, in
// id order.
func (t *Topology) Subtopologies(appID string) []SubtopologyInfo {
	var out []SubtopologyInfo
	for _, s := range t.subs {
		si := SubtopologyInfo{ID: s.id}
		for _, n := range s.nodes {
			switch {
			case n.kind == kindSource:
				for _, tp := range n.topics {
					if n.internal {
						rp := t.b.repartitions[tp]
						si.SourceTopics = append(si.SourceTopics, internalName(appID, tp))
						si.RepartitionSources = append(si.RepartitionSources, InternalTopic{Name: internalName(appID, tp), Partitions: rp.partitions, Configs: repartitionConfigs()})
					} else {
						si.SourceTopics = append(si.SourceTopics, tp)
					}
				}
			case n.kind == kindSink && n.internal:
				rp := t.b.repartitions[n.topics[0]]
				si.RepartitionSinks = append(si.RepartitionSinks, InternalTopic{Name: internalName(appID, rp.name), Partitions: rp.partitions, Configs: repartitionConfigs()})
			}
		}
		sort.Strings(si.SourceTopics)
		si.SourceTopics = slices.Compact(si.SourceTopics)
		for _, name := range s.stores {
			si.Stores = append(si.Stores, t.storeInfo(appID, name))
		}
		for _, g := range t.b.copart {
			if g.nodes[0].sub != s.id {
				continue
			}
			cg := CopartitionGroup{Operator: g.op}
			for _, n := range g.nodes {
				for _, tp := range n.topics {
					if n.internal {
						tp = internalName(appID, tp)
					}
					if !slices.Contains(cg.Topics, tp) {
						cg.Topics = append(cg.Topics, tp)
					}
				}
			}
			sort.Strings(cg.Topics)
			si.Copartitioned = append(si.Copartitioned, cg)
		}
		out = append(out, si)
	}
	return out
}

func repartitionConfigs() map[string]string {
	return map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}
}

func (t *Topology) storeInfo(appID, name string) StoreInfo {
	sp := t.b.stores[name]
	si := StoreInfo{Name: name, Logged: sp.logging, InMemory: sp.inMemory, Kind: sp.kind, Retention: sp.retention, SegmentInterval: sp.segment}
	if sp.logging {
		cfg := map[string]string{"cleanup.policy": "compact"}
		if sp.kind != KeyValueKind {
			// Window and session changelogs are compacted and also
			// deleted a day after the store lets entries go, as in
			// Kafka Streams.
			cfg["cleanup.policy"] = "compact,delete"
			cfg["retention.ms"] = strconv.FormatInt((sp.retention + windowChangelogExtra).Milliseconds(), 10)
		}
		for k, v := range sp.changelog {
			cfg[k] = v
		}
		si.Changelog = InternalTopic{Name: ChangelogTopic(appID, name), Configs: cfg}
	}
	return si
}

// SubtopologyOf returns the sub-topology that reads topic (internal topics
// given with their application id prefix), or -1.
func (t *Topology) SubtopologyOf(appID, topic string) int {
	for _, s := range t.Subtopologies(appID) {
		if slices.Contains(s.SourceTopics, topic) {
			return s.ID
		}
	}
	return -1
}

// StoreNames returns every store of the topology in declaration order.
func (t *Topology) StoreNames() []string { return slices.Clone(t.b.storeOrder) }

// Describe returns the topology's description, printed by its String
// method in the shape of Kafka Streams' TopologyDescription.
func (t *Topology) Describe() *TopologyDescription {
	d := &TopologyDescription{}
	for _, s := range t.subs {
		sd := SubtopologyDescription{ID: s.id}
		for _, n := range describeOrder(s.nodes) {
			nd := NodeDescription{Name: n.name, Stores: slices.Clone(n.stores)}
			switch n.kind {
			case kindSource:
				nd.Kind = "Source"
				nd.Topics = slices.Clone(n.topics)
			case kindSink:
				nd.Kind = "Sink"
				nd.Topics = slices.Clone(n.topics)
			default:
				nd.Kind = "Processor"
			}
			for _, c := range describeOrder(n.children) {
				nd.Successors = append(nd.Successors, c.name)
			}
			for _, p := range describeOrder(n.parents) {
				nd.Predecessors = append(nd.Predecessors, p.name)
			}
			sd.Nodes = append(sd.Nodes, nd)
		}
		d.Subtopologies = append(d.Subtopologies, sd)
	}
	for _, g := range t.b.globals {
		d.GlobalStores = append(d.GlobalStores, GlobalStoreDescription{Source: g.sourceName, Topic: g.topic, Processor: g.procName, Store: g.store})
	}
	return d
}

// describeOrder returns nodes in the order Kafka Streams describes them:
// by the size of the sub-tree each one roots (the node and, through every
// path, its descendants), largest first, then by name.
func describeOrder(nodes []*node) []*node {
	sizes := map[*node]int{}
	var size func(n *node) int
	size = func(n *node) int {
		if sz, ok := sizes[n]; ok {
			return sz
		}
		sz := 1
		for _, c := range n.children {
			sz += size(c)
		}
		sizes[n] = sz
		return sz
	}
	out := slices.Clone(nodes)
	slices.SortStableFunc(out, func(a, b *node) int {
		if sa, sb := size(a), size(b); sa != sb {
			return sb - sa
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// TopologyDescription is the structure of a topology.
type TopologyDescription struct {
	Subtopologies []SubtopologyDescription
	GlobalStores  []GlobalStoreDescription
}

// SubtopologyDescription is one sub-topology's nodes.
type SubtopologyDescription struct {
	ID    int
	Nodes []NodeDescription
}

// NodeDescription is one node: Kind is "Source", "Processor" or "Sink".
type NodeDescription struct {
	Kind         string
	Name         string
	Topics       []string // sources: the topics read; sinks: the topic written ("" for a chooser)
	Stores       []string
	Successors   []string
	Predecessors []string
}

// GlobalStoreDescription is one global store (a global table).
type GlobalStoreDescription struct {
	Source, Topic, Processor, Store string
}

// String prints the description as Kafka Streams prints a
// TopologyDescription.
func (d *TopologyDescription) String() string {
	var sb strings.Builder
	// Kafka indents the first sub-topology by three spaces, the others by two.
	sb.WriteString("Topologies:\n ")
	for _, s := range d.Subtopologies {
		fmt.Fprintf(&sb, "  Sub-topology: %d\n", s.ID)
		for _, n := range s.Nodes {
			switch n.Kind {
			case "Source":
				fmt.Fprintf(&sb, "    Source: %s (topics: [%s])\n", n.Name, strings.Join(n.Topics, ", "))
			case "Sink":
				topic := "extractor"
				if len(n.Topics) == 1 && n.Topics[0] != "" {
					topic = n.Topics[0]
				}
				fmt.Fprintf(&sb, "    Sink: %s (topic: %s)\n", n.Name, topic)
			default:
				fmt.Fprintf(&sb, "    Processor: %s (stores: [%s])\n", n.Name, strings.Join(n.Stores, ", "))
			}
			switch {
			case n.Kind == "Sink":
			case len(n.Successors) > 0:
				fmt.Fprintf(&sb, "      --> %s\n", strings.Join(n.Successors, ", "))
			default:
				sb.WriteString("      --> none\n")
			}
			if len(n.Predecessors) > 0 {
				fmt.Fprintf(&sb, "      <-- %s\n", strings.Join(n.Predecessors, ", "))
			}
		}
		sb.WriteString("\n")
	}
	for i, g := range d.GlobalStores {
		fmt.Fprintf(&sb, "  Sub-topology: %d for global store (will not generate tasks)\n", len(d.Subtopologies)+i)
		fmt.Fprintf(&sb, "    Source: %s (topics: [%s])\n      --> %s\n", g.Source, g.Topic, g.Processor)
		fmt.Fprintf(&sb, "    Processor: %s (stores: [%s])\n      --> none\n      <-- %s\n", g.Processor, g.Store, g.Source)
	}
	return sb.String()
}
