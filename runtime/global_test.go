package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

// enrichment joins orders ("<product>,<region>") with two global tables:
// products (persistent store "products", inner join) then regions
// (in-memory store "regions", left join); the output is
// "<product name>@<region name or none>".
func enrichment(t *testing.T) *stream.Topology {
	b := stream.NewBuilder()
	str := stream.With(serde.String(), serde.String())
	products := stream.GlobalTable(b, "products", str, stream.Materialized[string, string]{Name: "products"})
	regions := stream.GlobalTable(b, "regions", str, stream.Materialized[string, string]{Name: "regions", InMemory: true})
	orders := stream.Stream(b, str, "orders")
	field := func(v string, i int) string {
		if f := strings.Split(v, ","); i < len(f) {
			return f[i]
		}
		return ""
	}
	named := stream.JoinGlobal(orders, products, func(_ string, v string) string { return field(v, 0) },
		func(_ string, v, name string) string { return v + "," + name })
	out := stream.LeftJoinGlobal(named, regions, func(_ string, v string) string { return field(v, 1) },
		func(_ string, v, region string, ok bool) string {
			if !ok {
				region = "none"
			}
			return field(v, 2) + "@" + region
		})
	out.To("enriched", stream.Produced[string, string]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// valuesByKey returns the last value per key.
func valuesByKey(recs []*kgo.Record) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		m[string(r.Key)] = string(r.Value)
	}
	return m
}

func containsAll(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func queryString(t *testing.T, a *App, store, key string) (string, bool) {
	t.Helper()
	v, ok, err := Query(a, store, key, serde.String(), serde.String())
	if err != nil {
		t.Fatalf("Query(%s, %s): %v", store, key, err)
	}
	return v, ok
}

// TestGlobalTables runs a stream-global join end to end (global topics
// with 3 and 2 partitions, a stream with 2), sees a global update reach
// later stream records, restarts from the checkpoint (reading only what
// is new), and rebuilds the stores after the state directory is lost.
func TestGlobalTables(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 3, "products")
		createTopics(t, brokers, 2, "regions", "orders", "enriched")
		var prods [][2]string
		for i := range 12 {
			prods = append(prods, [2]string{fmt.Sprintf("p%d", i), fmt.Sprintf("prod-%d", i)})
		}
		produce(t, brokers, "products", prods...)
		produce(t, brokers, "regions", [2]string{"r0", "north"}, [2]string{"r1", "south"})
		top := enrichment(t)
		cfg := testConfig(t, "global", brokers)
		cfg.ApplicationServer = "127.0.0.1:7002"
		out := newReader(t, brokers, "enriched")

		// The global stores are bootstrapped before the worker runs.
		a := start(t, top, cfg)
		a.waitRunning(t)
		for i := range 12 {
			if v, ok := queryString(t, a.App, "products", fmt.Sprintf("p%d", i)); !ok || v != fmt.Sprintf("prod-%d", i) {
				t.Fatalf("products p%d = %q %v after WaitRunning", i, v, ok)
			}
		}
		if v, ok := queryString(t, a.App, "regions", "r1"); !ok || v != "south" {
			t.Fatalf("regions r1 = %q %v", v, ok)
		}
		if n := metricValue(a.metrics.restored.WithLabelValues("products")); n != 12 {
			t.Errorf("first start restored %v product records, want 12", n)
		}
		if n := metricValue(a.metrics.restoreRemaining.WithLabelValues("products")); n != 0 {
			t.Errorf("restore_remaining_records{products} = %v after bootstrap", n)
		}
		if h, err := a.KeyOwner("products", []byte("p3")); err != nil || h.String() != cfg.ApplicationServer {
			t.Errorf("KeyOwner(products) = %v, %v", h, err)
		}
		var all int
		for _, err := range mustStore(t, a.App, "products").All() {
			if err != nil {
				t.Fatal(err)
			}
			all++
		}
		if all != 12 {
			t.Errorf("products All: %d entries, want 12", all)
		}

		want := map[string]string{}
		var orders [][2]string
		for i := range 10 {
			orders = append(orders, [2]string{fmt.Sprintf("o%d", i), fmt.Sprintf("p%d,r%d", i, i%3)})
			region := []string{"north", "south", "none"}[i%3]
			want[fmt.Sprintf("o%d", i)] = fmt.Sprintf("prod-%d@%s", i, region)
		}
		orders = append(orders, [2]string{"o-unknown", "p99,r0"}) // no product: no output
		produce(t, brokers, "orders", orders...)
		out.waitFor(t, 30*time.Second, "enriched orders", func(recs []*kgo.Record) bool { return containsAll(valuesByKey(recs), want) })

		// A global update is seen by the stream records after it.
		produce(t, brokers, "products", [2]string{"p1", "prod-1-v2"})
		eventually(t, 10*time.Second, "global update applied", func() bool {
			v, _ := queryString(t, a.App, "products", "p1")
			return v == "prod-1-v2"
		})
		produce(t, brokers, "orders", [2]string{"o20", "p1,r0"})
		want["o20"] = "prod-1-v2@north"
		out.waitFor(t, 30*time.Second, "an order joined with the update", func(recs []*kgo.Record) bool { return containsAll(valuesByKey(recs), want) })
		if _, ok := valuesByKey(out.recs)["o-unknown"]; ok {
			t.Error("an order with no product was joined")
		}
		a.stop(t)

		// The checkpoint covers the products topic (persistent), not the
		// in-memory regions store.
		ckpt, err := table.ReadCheckpoint(filepath.Join(cfg.StateDir, "global", globalDir, checkpointFile))
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for tp, o := range ckpt {
			if tp.Topic != "products" {
				t.Errorf("checkpoint entry %v", tp)
			}
			sum += o
		}
		if len(ckpt) != 3 || sum != 13 {
			t.Errorf("global checkpoint %v, want the 3 products partitions summing to 13", ckpt)
		}

		// A restart reads only the records after the checkpoint (the
		// in-memory store is rebuilt in full).
		produce(t, brokers, "products", [2]string{"p12", "prod-12"}, [2]string{"p13", "prod-13"})
		b := start(t, top, cfg)
		b.waitRunning(t)
		if n := metricValue(b.metrics.restored.WithLabelValues("products")); n != 2 {
			t.Errorf("restart restored %v product records, want the 2 new ones", n)
		}
		if n := metricValue(b.metrics.restored.WithLabelValues("regions")); n != 2 {
			t.Errorf("restart restored %v region records, want 2 (in memory)", n)
		}
		for k, want := range map[string]string{"p1": "prod-1-v2", "p5": "prod-5", "p13": "prod-13"} {
			if v, ok := queryString(t, b.App, "products", k); !ok || v != want {
				t.Errorf("after restart products %s = %q %v, want %q", k, v, ok, want)
			}
		}
		b.stop(t)

		// Without its state directory the worker rebuilds the stores.
		if err := os.RemoveAll(cfg.StateDir); err != nil {
			t.Fatal(err)
		}
		c := start(t, top, cfg)
		c.waitRunning(t)
		if n := metricValue(c.metrics.restored.WithLabelValues("products")); n != 15 {
			t.Errorf("rebuild restored %v product records, want 15", n)
		}
		for k, want := range map[string]string{"p1": "prod-1-v2", "p13": "prod-13"} {
			if v, ok := queryString(t, c.App, "products", k); !ok || v != want {
				t.Errorf("after rebuild products %s = %q %v, want %q", k, v, ok, want)
			}
		}
		produce(t, brokers, "orders", [2]string{"o21", "p13,r1"})
		want["o21"] = "prod-13@south"
		out.waitFor(t, 30*time.Second, "an order joined after the rebuild", func(recs []*kgo.Record) bool { return containsAll(valuesByKey(recs), want) })
		c.stop(t)
	})
}

func mustStore(t *testing.T, a *App, name string) *StoreReader {
	t.Helper()
	r, err := a.Store(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGlobalTableErrors: a missing global topic is named; an undecodable
// global record under log-and-fail stops the worker before it runs.
func TestGlobalTableErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 1, "orders")
		a, err := New(enrichment(t), testConfig(t, "global-missing", brokers))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Run(context.Background()); !errors.Is(err, ErrTopics) || !strings.Contains(err.Error(), "products") ||
			!strings.Contains(err.Error(), "regions") || strings.Contains(err.Error(), "orders") {
			t.Errorf("missing global topics: %v", err)
		}

		createTopics(t, brokers, 2, "rates")
		produce(t, brokers, "rates", [2]string{"eur", "12345678"}, [2]string{"usd", "bad"})
		b := stream.NewBuilder()
		rates := stream.GlobalTable(b, "rates", stream.With(serde.String(), serde.Int64()), stream.Materialized[string, int64]{Name: "rates"})
		stream.JoinGlobal(stream.Stream(b, stream.With(serde.String(), serde.String()), "orders"), rates,
			func(_ string, v string) string { return v }, func(_ string, v string, r int64) int64 { return r }).
			To("priced", stream.Produced[string, int64]{})
		top, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		r := start(t, top, testConfig(t, "global-bad", brokers))
		r.checked = true
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.WaitRunning(ctx); err == nil || !strings.Contains(err.Error(), "deserialization") {
			t.Errorf("WaitRunning = %v, want the global task's deserialization error", err)
		}
		if err := <-r.errc; err == nil || !strings.Contains(err.Error(), "rates") {
			t.Errorf("Run = %v, want the global task's error", err)
		}
	})
}

// TestGlobalTopicAlsoStreamed: a topic cannot feed a global table and a
// stream.
func TestGlobalTopicAlsoStreamed(t *testing.T) {
	b := stream.NewBuilder()
	str := stream.With(serde.String(), serde.String())
	g := stream.GlobalTable(b, "t", str, stream.Materialized[string, string]{Name: "g"})
	stream.JoinGlobal(stream.Stream(b, str, "t"), g, func(k, _ string) string { return k },
		func(_ string, v, gv string) string { return v + gv }).To("out", stream.Produced[string, string]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(top, DefaultConfig("x", "127.0.0.1:1")); !errors.Is(err, stream.ErrTopology) || !strings.Contains(err.Error(), `"t"`) {
		t.Errorf("New = %v", err)
	}
}

// TestGlobalTopicEndingWithMarker bootstraps a global table whose topic
// was written in transactions (one committed, one aborted), so it ends
// with transaction markers: the bootstrap steps over them and finishes,
// under both guarantees. Before the restore consumers kept control
// records, the position never reached the end offset and the worker never
// ran.
func TestGlobalTopicEndingWithMarker(t *testing.T) {
	forEachBackend(t, func(t *testing.T, brokers []string) {
		createTopics(t, brokers, 1, "products")
		createTopics(t, brokers, 2, "regions", "orders", "enriched")
		for i, commit := range []bool{true, false} {
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(fmt.Sprintf("gtx-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			v := "prod-1"
			if !commit {
				v = "aborted"
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "products", Key: []byte("p1"), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
			cancel()
			cl.Close()
		}
		for _, g := range []Guarantee{AtLeastOnce, ExactlyOnce} {
			cfg := testConfig(t, "global-marker-"+string(g), brokers)
			cfg.Guarantee = g
			a := start(t, enrichment(t), cfg)
			a.waitRunning(t)
			v, ok := queryString(t, a.App, "products", "p1")
			switch {
			case g == ExactlyOnce && (!ok || v != "prod-1"):
				t.Errorf("%s: products p1 = %q %v, want the committed prod-1", g, v, ok)
			case g == AtLeastOnce && !ok:
				t.Errorf("%s: products p1 missing", g)
			}
			a.stop(t)
		}
	})
}
