package stream_test

import (
	"strings"
	"testing"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// Kafka Streams' KGroupedStreamImplTest (shouldReuseRepartitionTopicWithGeneratedName
// and the named variant): a named grouping aggregated twice shares one
// repartition topic.
func TestNamedGroupingAggregatedTwice(t *testing.T) {
	b := stream.NewBuilder()
	in := stream.Stream(b, stream.With(serde.String(), serde.String()), "in")
	g := stream.GroupBy(in, func(_, v string) string { return v }, stream.Grouped[string, string]{Name: "by-value"})
	g.Count(stream.As[string, int64]("counts")).ToStream().To("counts-out", stream.Produced[string, int64]{})
	g.Reduce(func(a, v string) string { return a + v }, stream.As[string, string]("concat")).ToStream().To("concat-out", stream.Produced[string, string]{})
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(top.Describe().String(), "Sink: by-value-repartition-sink"); n != 1 {
		t.Fatalf("want one repartition sink, got %d:\n%s", n, top.Describe())
	}
	d, err := streamtest.New(top, streamtest.WithCacheMaxBytes(0))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	inT := streamtest.InputTopic(d, "in", serde.String(), serde.String())
	for i, v := range []string{"a", "b", "a"} {
		if err := inT.Pipe("k", v, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	counts, err := streamtest.ReadKeyValuesToMap(streamtest.OutputTopic(d, "counts-out", serde.String(), serde.Int64()))
	if err != nil || counts["a"] != 2 || counts["b"] != 1 {
		t.Fatalf("counts %v %v", counts, err)
	}
	concat, err := streamtest.ReadKeyValuesToMap(streamtest.OutputTopic(d, "concat-out", serde.String(), serde.String()))
	if err != nil || concat["a"] != "aa" || concat["b"] != "b" {
		t.Fatalf("concat %v %v", concat, err)
	}
}
