package stream_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

func wordcount(b *stream.Builder) {
	lines := stream.Stream(b, stream.With(serde.String(), serde.String()), "text-lines")
	words := stream.FlatMapValues(lines, func(_ string, line string) []string {
		return strings.FieldsFunc(strings.ToLower(line), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	})
	counts := stream.GroupBy(words, func(_ string, w string) string { return w }, stream.Grouped[string, string]{Key: serde.String()}).
		Count(stream.As[string, int64]("counts"))
	counts.ToStream().To("word-counts", stream.Produced[string, int64]{})
}

func TestWordCountDriver(t *testing.T) {
	b := stream.NewBuilder()
	wordcount(b)
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + top.Describe().String())
	for _, cache := range []int64{0, 10 << 20} {
		d, err := streamtest.New(top, streamtest.WithCacheMaxBytes(cache))
		if err != nil {
			t.Fatal(err)
		}
		in := streamtest.InputTopic(d, "text-lines", serde.String(), serde.String())
		out := streamtest.OutputTopic(d, "word-counts", serde.String(), serde.Int64())
		for i, l := range []string{"Hello Kafka Streams", "All streams lead to Kafka", "Join Kafka Summit"} {
			if err := in.PipeValue(l, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		recs, err := out.ReadRecords()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			got = append(got, r.String())
		}
		want := "hello=1@0 kafka=1@0 streams=1@0 all=1@1 streams=2@1 lead=1@1 to=1@1 kafka=2@1 join=1@2 kafka=3@2 summit=1@2"
		if strings.Join(got, " ") != want {
			t.Errorf("cache %d:\n got %s\nwant %s", cache, strings.Join(got, " "), want)
		}
		m, err := streamtest.KeyValueStore(d, "counts", serde.String(), serde.Int64())
		if err != nil || m["kafka"] != 3 {
			t.Errorf("store: %v %v", m, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
