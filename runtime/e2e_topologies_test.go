package runtime

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
)

// TestE2ETopologies runs a topology per operator family through the test
// driver and through the runtime on each backend (one broker per backend,
// backends one after the other), with input topics of 1 and of 3
// partitions, feeding both the same records, and checks they agree: the
// final value per key of table outputs, every record per key (and origin)
// in order for stream outputs, and the final store contents.
func TestE2ETopologies(t *testing.T) { runE2ETopologies(t, "") }

// TestE2ETopologiesExactlyOnce runs every topology of TestE2ETopologies
// under exactly-once, its outputs read read_committed: transactions,
// transactional stores and read_committed restores give the test driver's
// results on both backends.
func TestE2ETopologiesExactlyOnce(t *testing.T) { runE2ETopologies(t, ExactlyOnce) }

func runE2ETopologies(t *testing.T, g Guarantee) {
	cases := e2eCases()
	for _, c := range cases {
		c.guarantee = g
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			brokers := b.start(t)
			sem := make(chan struct{}, 6) // apps running at once
			t.Run("group", func(t *testing.T) {
				for _, c := range cases {
					for _, parts := range []int32{1, 3} {
						t.Run(fmt.Sprintf("%s/p%d", c.name, parts), func(t *testing.T) {
							t.Parallel()
							sem <- struct{}{}
							defer func() { <-sem }()
							appID := fmt.Sprintf("e2e-%s-p%d%s", c.name, parts, g)
							prefix := appID + "."
							want := c.runDriver(t, appID, prefix)
							c.runRuntime(t, brokers, appID, prefix, parts, want)
						})
					}
				}
			})
		})
	}
}

var strs = stream.With(serde.String(), serde.String())

var producedStr = stream.Produced[string, string]{Key: serde.String(), Value: serde.String()}

var producedInt64 = stream.Produced[string, int64]{Key: serde.String(), Value: serde.Int64()}

// idNum is the number after the first letter of an id like "a12" found in
// v (-1 if none).
func idNum(v string) int {
	m := idRE.FindStringSubmatch(v)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var idRE = regexp.MustCompile(`[a-z]([0-9]+)`)

// originRE finds the input topic and key in a value of statelessCase.
var originRE = regexp.MustCompile(`<([ab])[0-9]+\.(k[0-9]+)>`)

// afterDot is what follows the last "." in v (the input key the cases
// append to values), up to a ">" or "|".
func afterDot(_, v string) string {
	s := v[strings.LastIndex(v, ".")+1:]
	if i := strings.IndexAny(s, ">|"); i >= 0 {
		s = s[:i]
	}
	return s
}

// tagProcessor appends "|<length>" to each value (a ProcessValues
// processor; it forwards under another key, which ProcessValues replaces).
type tagProcessor struct {
	ctx stream.ProcessorContext[string, string]
}

func (p *tagProcessor) Init(ctx stream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}
func (p *tagProcessor) Process(r stream.Record[string, string]) error {
	p.ctx.Forward(stream.Record[string, string]{Key: "ignored", Value: fmt.Sprintf("%s|%d", r.Value, len(r.Value)), Timestamp: r.Timestamp})
	return nil
}
func (p *tagProcessor) Close() error { return nil }

// sumPunctuator sums values per key in the store "sums" and forwards
// nothing itself: a stream-time punctuator forwards every sum, as
// "sum-<key>", every 10 s of stream time.
type sumPunctuator struct {
	ctx   stream.ProcessorContext[string, int64]
	store *stream.KeyValueStore[string, int64]
}

func (p *sumPunctuator) Init(ctx stream.ProcessorContext[string, int64]) error {
	p.ctx = ctx
	var err error
	if p.store, err = stream.KeyValueStoreOf(ctx, "sums", serde.String(), serde.Int64()); err != nil {
		return err
	}
	ctx.Schedule(10*time.Second, stream.StreamTime, p.emit)
	return nil
}

func (p *sumPunctuator) Process(r stream.Record[string, int64]) error {
	sum, _, err := p.store.Get(r.Key)
	if err != nil {
		return err
	}
	return p.store.Put(r.Key, sum+r.Value)
}

func (p *sumPunctuator) emit(ts int64) {
	for kv, err := range p.store.All() {
		if err != nil {
			p.ctx.Logger().Error("emit", "err", err)
			return
		}
		p.ctx.Forward(stream.Record[string, int64]{Key: "sum-" + kv.Key, Value: kv.Value, Timestamp: ts})
	}
}

func (p *sumPunctuator) Close() error { return nil }

func e2eCases() []*e2eCase {
	return []*e2eCase{
		statelessCase(), aggregateCase(), toTableCase(), repartitionCase(), tableCase(), groupTableCase(false), groupTableCase(true),
		cogroupCase(), streamTableCase(), tableTableCase(), fkJoinCase(), globalCase(), processCase(),
	}
}

// statelessCase: merge, filter, filterNot, map, mapValues, flatMap,
// flatMapValues, selectKey, peek, processValues, split with a default
// branch, to and to with a topic chooser.
func statelessCase() *e2eCase {
	var in []e2eRec
	for i := range 30 {
		in = append(in, str("a", fmt.Sprintf("k%d", i%6), fmt.Sprintf("a%d", i), int64(i)*1000))
		if i < 20 {
			in = append(in, str("b", fmt.Sprintf("k%d", i%4), fmt.Sprintf("b%d", i), int64(i)*1000+500))
		}
	}
	origin := func(_, v string) string { // input topic and key
		m := originRE.FindStringSubmatch(v)
		if m == nil {
			return "?"
		}
		return m[1] + "/" + m[2]
	}
	return &e2eCase{
		name:   "stateless",
		inputs: []e2eTopic{{name: "a"}, {name: "b"}},
		outputs: []e2eOutput{
			{topic: "from-b", dec: decStr, origin: origin},
			{topic: "even", dec: decStr, origin: origin},
			{topic: "odd", dec: decStr, origin: origin},
		},
		phases: [][]e2eRec{in},
		build: func(e *e2eEnv) {
			m := stream.Stream(e.b, strs, e.topic("a")).Merge(stream.Stream(e.b, strs, e.topic("b")))
			f := m.Filter(func(_, v string) bool { return !strings.HasSuffix(v, "3") }).
				FilterNot(func(_, v string) bool { return strings.HasSuffix(v, "7") })
			mp := stream.Map(f, func(k, v string) (string, string) { return strings.ToUpper(k), v + "." + k })
			mv := stream.MapValues(mp, func(_, v string) string { return "<" + v + ">" })
			fm := stream.FlatMap(mv, func(k, v string) []stream.KeyValue[string, string] {
				var out []stream.KeyValue[string, string]
				for j := range idNum(v) % 3 { // 0 to 2 records
					out = append(out, stream.KeyValue[string, string]{Key: fmt.Sprintf("%s-%d", k, j), Value: v})
				}
				return out
			})
			fmv := stream.FlatMapValues(fm, func(k, v string) []string {
				if strings.HasSuffix(k, "-1") {
					return []string{v + "x", v + "yy"}
				}
				return []string{v}
			})
			sk := stream.SelectKey(fmv, func(k, v string) string { return k[:2] + strings.Repeat("#", len(v)%2) })
			pk := sk.Peek(func(string, string) { e.peeked.Add(1) })
			pv := stream.ProcessValues(pk, func() stream.Processor[string, string, string, string] { return &tagProcessor{} })
			br := pv.Split("split-").Branch(func(_, v string) bool { return strings.HasPrefix(v, "<b") }, "b").DefaultBranch("rest")
			br["split-b"].To(e.topic("from-b"), producedStr)
			br["split-rest"].ToChooser(func(k, v string) string {
				if len(v)%2 == 0 {
					return e.topic("even")
				}
				return e.topic("odd")
			}, producedStr)
		},
	}
}

// aggregateCase: groupBy + count, groupByKey + reduce, groupBy +
// aggregate, with timestamps out of order.
func aggregateCase() *e2eCase {
	vocab := []string{"kafka", "streams", "eddy", "go", "broker", "table", "join", "window", "key"}
	var in []e2eRec
	for i := range 40 {
		in = append(in, str("words", fmt.Sprintf("k%d", i%5), vocab[(i*7)%len(vocab)], int64((i*37)%40)*1000))
	}
	return &e2eCase{
		name:    "aggregate",
		inputs:  []e2eTopic{{name: "words"}},
		outputs: []e2eOutput{{topic: "counts", table: true, dec: decInt64}, {topic: "reduced", table: true, dec: decStr}, {topic: "lengths", table: true, dec: decInt64}},
		stores:  []e2eStore{{"count", decInt64}, {"reduce", decStr}, {"agg", decInt64}},
		phases:  [][]e2eRec{in},
		build: func(e *e2eEnv) {
			words := stream.Stream(e.b, strs, e.topic("words"))
			stream.GroupBy(words, func(_, w string) string { return w }, stream.Grouped[string, string]{Name: "by-word", Key: serde.String()}).
				Count(stream.As[string, int64]("count")).ToStream().To(e.topic("counts"), producedInt64)
			words.GroupByKey(stream.Grouped[string, string]{}).
				Reduce(func(agg, v string) string { return agg + "+" + v }, stream.As[string, string]("reduce")).
				ToStream().To(e.topic("reduced"), producedStr)
			byLetter := stream.GroupBy(words, func(_, w string) string { return w[:1] }, stream.Grouped[string, string]{Name: "by-letter", Key: serde.String()})
			stream.Aggregate(byLetter, func() int64 { return 0 }, func(_ string, w string, agg int64) int64 { return agg + int64(len(w)) },
				stream.Materialized[string, int64]{Name: "agg", Value: serde.Int64()}).
				ToStream().To(e.topic("lengths"), producedInt64)
		},
	}
}

// toTableCase: toTable with tombstones, on the stream's own key and after
// a key change (through a repartition topic).
func toTableCase() *e2eCase {
	var in []e2eRec
	for i := range 30 {
		k := fmt.Sprintf("k%d", i%6)
		if i%7 == 6 {
			in = append(in, tomb("in", k, int64(i)*1000))
			continue
		}
		in = append(in, str("in", k, fmt.Sprintf("v%d", i), int64(i)*1000))
	}
	return &e2eCase{
		name:    "totable",
		inputs:  []e2eTopic{{name: "in"}},
		outputs: []e2eOutput{{topic: "out", table: true, dec: decStr}, {topic: "upper", table: true, dec: decStr}},
		stores:  []e2eStore{{"tt", decStr}, {"tt-upper", decStr}},
		phases:  [][]e2eRec{in},
		build: func(e *e2eEnv) {
			s := stream.Stream(e.b, strs, e.topic("in"))
			s.Filter(func(k, _ string) bool { return k != "k5" }).ToTable(stream.As[string, string]("tt")).ToStream().To(e.topic("out"), producedStr)
			stream.SelectKey(s, func(k, _ string) string { return strings.ToUpper(k) }).
				ToTable(stream.Materialized[string, string]{Name: "tt-upper", Key: serde.String(), Value: serde.String()}).
				ToStream().To(e.topic("upper"), producedStr)
		},
	}
}

// repartitionCase: an explicit repartition with 2 partitions, read by a
// stateless branch and by a count.
func repartitionCase() *e2eCase {
	var in []e2eRec
	for i := range 30 {
		in = append(in, str("in", fmt.Sprintf("k%d", i%5), fmt.Sprintf("v%d", i), int64(i)*1000))
	}
	return &e2eCase{
		name:   "repartition",
		inputs: []e2eTopic{{name: "in"}},
		outputs: []e2eOutput{
			{topic: "rp-out", dec: decStr, origin: afterDot},
			{topic: "rp-counts", table: true, dec: decInt64},
		},
		stores: []e2eStore{{"rp-count", decInt64}},
		phases: [][]e2eRec{in},
		build: func(e *e2eEnv) {
			s := stream.MapValues(stream.Stream(e.b, strs, e.topic("in")), func(k, v string) string { return v + "." + k })
			rp := stream.SelectKey(s, func(_, v string) string { return fmt.Sprintf("g%d", idNum(v)%3) }).
				Repartition(stream.Repartitioned[string, string]{Name: "rp", Key: serde.String(), Partitions: 2})
			stream.MapValues(rp, func(k, v string) string { return k + ":" + v }).To(e.topic("rp-out"), producedStr)
			rp.GroupByKey(stream.Grouped[string, string]{}).Count(stream.As[string, int64]("rp-count")).ToStream().To(e.topic("rp-counts"), producedInt64)
		},
		extra: func(t *testing.T, brokers []string, appID string) {
			if n := topicPartitions(t, brokers, appID+"-rp-repartition"); n != 2 {
				t.Errorf("repartition topic has %d partitions, want 2", n)
			}
		},
	}
}

// tableCase: a KTable source with tombstones, filter, mapValues,
// toStream.
func tableCase() *e2eCase {
	var in []e2eRec
	for i := range 30 {
		k := fmt.Sprintf("k%d", i%8)
		switch {
		case i%9 == 8:
			in = append(in, tomb("tin", k, int64(i)*1000))
		case i%3 == 0:
			in = append(in, str("tin", k, fmt.Sprintf("x%d", i), int64(i)*1000))
		default:
			in = append(in, str("tin", k, fmt.Sprintf("y%d", i), int64(i)*1000))
		}
	}
	return &e2eCase{
		name:    "table",
		inputs:  []e2eTopic{{name: "tin"}},
		outputs: []e2eOutput{{topic: "tout", table: true, dec: decStr}},
		stores:  []e2eStore{{"tsrc", decStr}},
		phases:  [][]e2eRec{in},
		build: func(e *e2eEnv) {
			t := stream.Table(e.b, e.topic("tin"), strs, stream.As[string, string]("tsrc"))
			f := t.Filter(func(_, v string) bool { return strings.HasPrefix(v, "y") })
			stream.MapTableValues(f, func(k, v string) string { return strings.ToUpper(v) + "/" + k }).ToStream().To(e.topic("tout"), producedStr)
		},
	}
}

// groupTableCase: KGroupedTable count, reduce and aggregate with
// subtractors, people moving between cities and leaving.
//
// An aggregate's timestamp is the largest of the updates it received, so
// with caching it depends on what the source table's cache folded: a
// person moving from c0 to c2 and back within one commit sends c0 nothing
// end to end, while the driver (which commits after every record) sends
// c0 a subtract with the later timestamp. The values agree; with caching
// the timestamps are not compared, without caching (noCache) they are.
func groupTableCase(noCache bool) *e2eCase {
	var in []e2eRec
	for i := range 40 {
		k := fmt.Sprintf("p%d", i%10)
		if i%11 == 10 {
			in = append(in, tomb("people", k, int64(i)*1000))
			continue
		}
		in = append(in, str("people", k, fmt.Sprintf("c%d:%d", (i*3)%4, 20+i), int64(i)*1000))
	}
	city := func(v string) string { return v[:strings.Index(v, ":")] }
	age := func(v string) int64 { n, _ := strconv.ParseInt(v[strings.Index(v, ":")+1:], 10, 64); return n }
	name := "grouptable"
	if noCache {
		name += "-nocache"
	}
	return &e2eCase{
		name:    name,
		noCache: noCache,
		inputs:  []e2eTopic{{name: "people"}},
		outputs: []e2eOutput{
			{topic: "counts", table: true, dec: decInt64, noTS: !noCache},
			{topic: "ages", table: true, dec: decInt64, noTS: !noCache},
			{topic: "ids", table: true, dec: decInt64, noTS: !noCache},
		},
		stores: []e2eStore{{"people", decStr}, {"gt-count", decInt64}, {"gt-age", decInt64}, {"gt-agg", decInt64}},
		phases: [][]e2eRec{in},
		build: func(e *e2eEnv) {
			people := stream.Table(e.b, e.topic("people"), strs, stream.As[string, string]("people"))
			stream.GroupTable(people, func(k, v string) (string, string) { return city(v), k }, stream.Grouped[string, string]{Name: "gt-by-city"}).
				Count(stream.As[string, int64]("gt-count")).ToStream().To(e.topic("counts"), producedInt64)
			stream.GroupTable(people, func(_, v string) (string, int64) { return city(v), age(v) }, stream.Grouped[string, int64]{Name: "gt-ages"}).
				Reduce(func(a, v int64) int64 { return a + v }, func(a, v int64) int64 { return a - v }, stream.As[string, int64]("gt-age")).
				ToStream().To(e.topic("ages"), producedInt64)
			ids := stream.GroupTable(people, func(k, v string) (string, string) { return city(v), k }, stream.Grouped[string, string]{Name: "gt-ids"})
			stream.AggregateTable(ids, func() int64 { return 0 },
				func(_ string, p string, agg int64) int64 { return agg + int64(idNum(p)+1) },
				func(_ string, p string, agg int64) int64 { return agg - int64(idNum(p)+1) },
				stream.Materialized[string, int64]{Name: "gt-agg", Value: serde.Int64()}).
				ToStream().To(e.topic("ids"), producedInt64)
		},
	}
}

// cogroupCase: two streams, one grouped by key and one re-keyed, folded
// into one aggregate.
func cogroupCase() *e2eCase {
	var in []e2eRec
	for i := range 25 {
		in = append(in, str("clicks", fmt.Sprintf("u%d", i%5), fmt.Sprintf("c%d", i), int64(i)*1000))
		if i%2 == 0 {
			in = append(in, str("views", fmt.Sprintf("page%d", i%3), fmt.Sprintf("u%d", i%6), int64(i)*1000+500))
		}
	}
	return &e2eCase{
		name:    "cogroup",
		inputs:  []e2eTopic{{name: "clicks"}, {name: "views"}},
		outputs: []e2eOutput{{topic: "activity", table: true, dec: decInt64}},
		stores:  []e2eStore{{"cg", decInt64}},
		phases:  [][]e2eRec{in},
		build: func(e *e2eEnv) {
			clicks := stream.Stream(e.b, strs, e.topic("clicks")).GroupByKey(stream.Grouped[string, string]{})
			views := stream.GroupBy(stream.Stream(e.b, strs, e.topic("views")), func(_, u string) string { return u },
				stream.Grouped[string, string]{Name: "cg-views", Key: serde.String()})
			c := stream.Cogroup(clicks, func(_ string, _ string, agg int64) int64 { return agg + 1 })
			c = stream.CogroupWith(c, views, func(_ string, _ string, agg int64) int64 { return agg + 1000 })
			c.Aggregate(func() int64 { return 0 }, stream.Materialized[string, int64]{Name: "cg", Value: serde.Int64()}).
				ToStream().To(e.topic("activity"), producedInt64)
		},
	}
}

// streamTableCase: stream-table inner and left joins; each table phase is
// processed before the stream records after it.
func streamTableCase() *e2eCase {
	users := []e2eRec{}
	for i := range 6 {
		users = append(users, str("users", fmt.Sprintf("u%d", i), fmt.Sprintf("name%d", i), int64(i)*1000))
	}
	users = append(users, str("users", "u1", "name1b", 6000), tomb("users", "u2", 7000))
	orders := func(from, n int, ts int64) []e2eRec {
		var out []e2eRec
		for i := from; i < from+n; i++ {
			out = append(out, str("orders", fmt.Sprintf("u%d", i%7), fmt.Sprintf("o%d", i), ts+int64(i)*100))
		}
		return out
	}
	joiner := func(_, o, u string) string { return o + "/" + u }
	return &e2eCase{
		name:    "streamtable",
		inputs:  []e2eTopic{{name: "users"}, {name: "orders"}},
		outputs: []e2eOutput{{topic: "inner", dec: decStr}, {topic: "left", dec: decStr}},
		stores:  []e2eStore{{"users", decStr}},
		phases: [][]e2eRec{users, orders(0, 20, 10000),
			{tomb("users", "u3", 20000), str("users", "u6", "name6", 20000), str("users", "u0", "name0b", 20001)}, orders(20, 14, 30000)},
		barriers: [][]string{{"users"}, {"out:inner", "out:left"}, {"users"}},
		build: func(e *e2eEnv) {
			u := stream.Table(e.b, e.topic("users"), strs, stream.As[string, string]("users"))
			o := stream.Stream(e.b, strs, e.topic("orders"))
			stream.JoinTable(o, u, joiner, stream.Joined[string, string]{Name: "st-inner"}).To(e.topic("inner"), producedStr)
			stream.LeftJoinTable(o, u, func(k, o, u string, ok bool) string {
				if !ok {
					u = "none"
				}
				return joiner(k, o, u)
			}, stream.Joined[string, string]{Name: "st-left"}).To(e.topic("left"), producedStr)
		},
	}
}

// tableTableCase: table-table inner, left and outer joins, with updates
// and deletes on both sides (each phase processed before the next, so the
// result timestamps are the same end to end).
func tableTableCase() *e2eCase {
	var left, right []e2eRec
	for i := range 6 {
		left = append(left, str("left", fmt.Sprintf("k%d", i), fmt.Sprintf("l%d", i), int64(i)*1000))
	}
	for i := 3; i < 9; i++ {
		right = append(right, str("right", fmt.Sprintf("k%d", i), fmt.Sprintf("r%d", i), 10000+int64(i)*1000))
	}
	leftUpd := []e2eRec{str("left", "k1", "l1b", 20000), tomb("left", "k4", 21000), str("left", "k7", "l7", 22000), tomb("left", "k0", 23000)}
	rightUpd := []e2eRec{tomb("right", "k3", 30000), str("right", "k1", "r1", 31000), str("right", "k5", "r5b", 32000), tomb("right", "k8", 33000)}
	show := func(v string, ok bool) string {
		if !ok {
			return "-"
		}
		return v
	}
	return &e2eCase{
		name:   "tabletable",
		inputs: []e2eTopic{{name: "left"}, {name: "right"}},
		outputs: []e2eOutput{
			{topic: "inner", table: true, dec: decStr}, {topic: "leftjoin", table: true, dec: decStr}, {topic: "outer", table: true, dec: decStr},
		},
		stores:   []e2eStore{{"lt", decStr}, {"rt", decStr}, {"tt-inner", decStr}, {"tt-left", decStr}, {"tt-outer", decStr}},
		phases:   [][]e2eRec{left, right, leftUpd, rightUpd},
		barriers: [][]string{{"lt"}, {"rt", "tt-inner", "tt-left", "tt-outer"}, {"lt", "tt-inner", "tt-left", "tt-outer"}},
		build: func(e *e2eEnv) {
			l := stream.Table(e.b, e.topic("left"), strs, stream.As[string, string]("lt"))
			r := stream.Table(e.b, e.topic("right"), strs, stream.As[string, string]("rt"))
			stream.JoinTables(l, r, func(_, a, b string) string { return a + "+" + b }, stream.As[string, string]("tt-inner")).
				ToStream().To(e.topic("inner"), producedStr)
			stream.LeftJoinTables(l, r, func(_, a, b string, ok bool) string { return a + "+" + show(b, ok) }, stream.As[string, string]("tt-left")).
				ToStream().To(e.topic("leftjoin"), producedStr)
			stream.OuterJoinTables(l, r, func(_, a, b string, okA, okB bool) string { return show(a, okA) + "+" + show(b, okB) },
				stream.As[string, string]("tt-outer")).ToStream().To(e.topic("outer"), producedStr)
		},
	}
}

// fkJoinCase: foreign-key inner and left joins; the right table has 2
// partitions whatever the left has. Orders change products and are
// deleted; then products change and are deleted.
func fkJoinCase() *e2eCase {
	var products, orders []e2eRec
	for i := range 5 {
		products = append(products, str("products", fmt.Sprintf("p%d", i), fmt.Sprintf("prod%d", i), int64(i)*1000))
	}
	for i := range 12 {
		orders = append(orders, str("orders", fmt.Sprintf("o%d", i%9), fmt.Sprintf("p%d:%d", i%6, i), 10000+int64(i)*1000))
	}
	orders = append(orders, tomb("orders", "o2", 30000), str("orders", "o3", "p5:99", 31000))
	prodUpd := []e2eRec{str("products", "p1", "prod1b", 40000), tomb("products", "p2", 41000), str("products", "p5", "prod5", 42000)}
	fk := func(v string) string { return v[:strings.Index(v, ":")] }
	return &e2eCase{
		name:   "fkjoin",
		inputs: []e2eTopic{{name: "orders"}, {name: "products", partitions: 2}},
		outputs: []e2eOutput{
			{topic: "fk-inner", table: true, dec: decStr}, {topic: "fk-left", table: true, dec: decStr},
		},
		stores:   []e2eStore{{"fk-orders", decStr}, {"fk-products", decStr}, {"fk-inner", decStr}, {"fk-left", decStr}},
		phases:   [][]e2eRec{products, orders, prodUpd},
		barriers: [][]string{{"fk-products"}, {"fk-orders", "fk-inner", "fk-left"}},
		build: func(e *e2eEnv) {
			o := stream.Table(e.b, e.topic("orders"), strs, stream.As[string, string]("fk-orders"))
			p := stream.Table(e.b, e.topic("products"), strs, stream.As[string, string]("fk-products"))
			stream.JoinForeignKey(o, p, fk, func(v, pv string) string { return v + "=" + pv },
				stream.ForeignKeyJoined[string, string, string]{Name: "fk-i"}, stream.As[string, string]("fk-inner")).
				ToStream().To(e.topic("fk-inner"), producedStr)
			stream.LeftJoinForeignKey(o, p, fk, func(v, pv string, ok bool) string {
				if !ok {
					pv = "none"
				}
				return v + "=" + pv
			}, stream.ForeignKeyJoined[string, string, string]{Name: "fk-l"}, stream.As[string, string]("fk-left")).
				ToStream().To(e.topic("fk-left"), producedStr)
		},
	}
}

// globalCase: stream-global inner and left joins; the global topic has 2
// partitions; a global update and delete between two stream phases.
func globalCase() *e2eCase {
	regions := []e2eRec{}
	for i := range 4 {
		regions = append(regions, str("regions", fmt.Sprintf("r%d", i), fmt.Sprintf("region%d", i), int64(i)*1000))
	}
	events := func(from, n int, ts int64) []e2eRec {
		var out []e2eRec
		for i := from; i < from+n; i++ {
			out = append(out, str("events", fmt.Sprintf("u%d", i%6), fmt.Sprintf("r%d:%d", i%6, i), ts+int64(i)*100))
		}
		return out
	}
	region := func(_, v string) string { return v[:strings.Index(v, ":")] }
	return &e2eCase{
		name:    "global",
		inputs:  []e2eTopic{{name: "regions", partitions: 2}, {name: "events"}},
		outputs: []e2eOutput{{topic: "g-inner", dec: decStr}, {topic: "g-left", dec: decStr}},
		stores:  []e2eStore{{"regions", decStr}},
		phases: [][]e2eRec{regions, events(0, 20, 10000),
			{str("regions", "r1", "region1b", 20000), tomb("regions", "r2", 20001), str("regions", "r5", "region5", 20002)}, events(20, 12, 30000)},
		barriers: [][]string{{"regions"}, {"out:g-inner", "out:g-left"}, {"regions"}},
		build: func(e *e2eEnv) {
			g := stream.GlobalTable(e.b, e.topic("regions"), strs, stream.As[string, string]("regions"))
			ev := stream.Stream(e.b, strs, e.topic("events"))
			stream.JoinGlobal(ev, g, region, func(_, v, r string) string { return v + "@" + r }).To(e.topic("g-inner"), producedStr)
			stream.LeftJoinGlobal(ev, g, region, func(_, v, r string, ok bool) string {
				if !ok {
					r = "none"
				}
				return v + "@" + r
			}).To(e.topic("g-left"), producedStr)
		},
	}
}

// processCase: Process with a state store and a stream-time punctuator
// that forwards the store. The input ends with a record per key an hour
// later (adding 0): its punctuation forwards the final sums in every
// task, at that time.
func processCase() *e2eCase {
	var in []e2eRec
	for i := range 24 {
		in = append(in, num("nums", fmt.Sprintf("k%d", i%5), int64(i), int64(i)*1000))
	}
	for k := range 5 {
		in = append(in, num("nums", fmt.Sprintf("k%d", k), 0, 3600_000))
	}
	return &e2eCase{
		name:    "process",
		inputs:  []e2eTopic{{name: "nums"}},
		outputs: []e2eOutput{{topic: "sums", table: true, dec: decInt64}},
		stores:  []e2eStore{{"sums", decInt64}},
		phases:  [][]e2eRec{in},
		build: func(e *e2eEnv) {
			e.b.AddStateStore(stream.StoreSpec{Name: "sums"})
			stream.Process(stream.Stream(e.b, stream.With(serde.String(), serde.Int64()), e.topic("nums")),
				func() stream.Processor[string, int64, string, int64] { return &sumPunctuator{} }, "sums").
				To(e.topic("sums"), producedInt64)
		},
	}
}
