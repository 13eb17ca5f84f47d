package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/eddy-streams/eddy/examples/avro-pipeline/pageviews"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/serde/avro"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// fakeRegistry starts franz-go's fake registry (a third-party peer; it
// does not check compatibility) and returns a client of it.
func fakeRegistry(t *testing.T) avro.Registry {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	reg, err := avro.NewRegistryClient(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// inputSerdes are the producers' serdes of the pipeline's input.
type inputSerdes struct {
	user   serde.Serde[pageviews.User]
	viewV1 serde.Serde[pageviews.PageView]
	viewV2 serde.Serde[pageviews.PageViewV2Record]
}

// avroInputs registers the input schemas (v1 and v2 of the page view)
// in reg and returns serdes that write with them.
func avroInputs(t *testing.T, reg avro.Registry) inputSerdes {
	t.Helper()
	ctx := context.Background()
	for _, s := range []struct{ subject, schema string }{
		{PageViewsSubject, pageviews.PageViewV1}, {PageViewsSubject, pageviews.PageViewV2}, {UsersSubject, pageviews.UserSchema},
	} {
		if _, err := reg.Register(ctx, s.subject, s.schema); err != nil {
			t.Fatal(err)
		}
	}
	var in inputSerdes
	var err error
	if in.user, err = avro.Serde[pageviews.User](reg, pageviews.UserSchema); err != nil {
		t.Fatal(err)
	}
	if in.viewV1, err = avro.Serde[pageviews.PageView](reg, pageviews.PageViewV1); err != nil {
		t.Fatal(err)
	}
	if in.viewV2, err = avro.Serde[pageviews.PageViewV2Record](reg, pageviews.PageViewV2); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestTopologyDriver runs the pipeline in the test driver with Avro values
// (v1 and v2 page views) and with JSON values: the same input gives the
// same enriched views and counts.
func TestTopologyDriver(t *testing.T) {
	for _, format := range []string{"avro", "json"} {
		t.Run(format, func(t *testing.T) {
			var s pageviews.Serdes
			var in inputSerdes
			if format == "avro" {
				reg := fakeRegistry(t)
				in = avroInputs(t, reg)
				var err error
				if s, err = pageviews.AvroSerdes(reg); err != nil {
					t.Fatal(err)
				}
			} else {
				s = pageviews.JSONSerdes()
				in = inputSerdes{user: s.User, viewV1: s.PageView, viewV2: serde.JSON[pageviews.PageViewV2Record]()}
			}
			top, err := pageviews.Topology(s)
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(top, streamtest.WithCacheMaxBytes(0), streamtest.WithApplicationID("avro-pipeline"))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			users := streamtest.InputTopic(d, pageviews.UsersTopic, serde.String(), in.user)
			v1 := streamtest.InputTopic(d, pageviews.PageViewsTopic, serde.String(), in.viewV1)
			v2 := streamtest.InputTopic(d, pageviews.PageViewsTopic, serde.String(), in.viewV2)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(users.Pipe("u1", pageviews.User{ID: "u1", Name: "Ada", Region: "eu"}, 1))
			must(users.Pipe("u2", pageviews.User{ID: "u2", Name: "Grace", Region: "us"}, 2))
			must(v1.Pipe("u1", pageviews.PageView{User: "u1", Page: "/a", TS: 10, DurationMs: 100}, 10))
			must(v1.Pipe("u9", pageviews.PageView{User: "u9", Page: "/b", TS: 11, DurationMs: 200}, 11))
			// v2 records, written after the schema evolved, read with v1.
			must(v2.Pipe("u2", pageviews.PageViewV2Record{User: "u2", Page: "/c", TS: 12, DurationMs: 300, Referrer: "/a"}, 12))
			must(v2.Pipe("u1", pageviews.PageViewV2Record{User: "u1", Page: "/d", TS: 13, DurationMs: 400, Referrer: "x"}, 13))
			// A user's update shows in later views only; a deleted user's
			// views pass with empty name and region.
			must(users.Pipe("u1", pageviews.User{ID: "u1", Name: "Ada L.", Region: "uk"}, 14))
			must(users.PipeTombstone("u2", 15))
			must(v1.Pipe("u1", pageviews.PageView{User: "u1", Page: "/e", TS: 16, DurationMs: 500}, 16))
			must(v2.Pipe("u2", pageviews.PageViewV2Record{User: "u2", Page: "/f", TS: 17, DurationMs: 600}, 17))

			enriched, err := streamtest.OutputTopic(d, pageviews.EnrichedTopic, serde.String(), s.Enriched).ReadRecords()
			must(err)
			var got []string
			for _, r := range enriched {
				got = append(got, fmt.Sprintf("%s=%+v@%d", r.Key, r.Value, r.Timestamp))
			}
			want := []string{
				"u1={User:u1 Page:/a TS:10 DurationMs:100 Name:Ada Region:eu}@10",
				"u9={User:u9 Page:/b TS:11 DurationMs:200 Name: Region:}@11",
				"u2={User:u2 Page:/c TS:12 DurationMs:300 Name:Grace Region:us}@12",
				"u1={User:u1 Page:/d TS:13 DurationMs:400 Name:Ada Region:eu}@13",
				"u1={User:u1 Page:/e TS:16 DurationMs:500 Name:Ada L. Region:uk}@16",
				"u2={User:u2 Page:/f TS:17 DurationMs:600 Name: Region:}@17",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s:\n got %s\nwant %s", pageviews.EnrichedTopic, strings.Join(got, "\n    "), strings.Join(want, "\n    "))
			}

			counts, err := streamtest.OutputTopic(d, pageviews.CountsTopic, serde.String(), s.Count).ReadRecords()
			must(err)
			got = nil
			for _, r := range counts {
				if r.Key != r.Value.User {
					t.Errorf("count keyed %q for user %q", r.Key, r.Value.User)
				}
				got = append(got, fmt.Sprintf("%s=%d", r.Key, r.Value.Views))
			}
			if g, w := strings.Join(got, " "), "u1=1 u9=1 u2=1 u1=2 u1=3 u2=2"; g != w {
				t.Errorf("%s:\n got %s\nwant %s", pageviews.CountsTopic, g, w)
			}
		})
	}
}

// TestEvolutionBothWays checks the two directions of the v1 → v2
// evolution with the registry resolving writer schemas: a v1 reader (the
// running pipeline) reads v2 records, dropping the referrer, and a v2
// reader reads v1 records with the default referrer "".
func TestEvolutionBothWays(t *testing.T) {
	reg := fakeRegistry(t)
	in := avroInputs(t, reg)
	const topic = pageviews.PageViewsTopic
	v1 := pageviews.PageView{User: "u1", Page: "/a", TS: 1709283601000, DurationMs: 5}
	v2 := pageviews.PageViewV2Record{User: "u2", Page: "/b", TS: 1709283602000, DurationMs: 6, Referrer: "/a"}
	b1, err := in.viewV1.Serialize(topic, v1)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := in.viewV2.Serialize(topic, v2)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := in.viewV1.Deserialize(topic, b2); err != nil ||
		got != (pageviews.PageView{User: "u2", Page: "/b", TS: 1709283602000, DurationMs: 6}) {
		t.Errorf("v1 reader, v2 record: %+v, %v", got, err)
	}
	if got, err := in.viewV2.Deserialize(topic, b1); err != nil ||
		got != (pageviews.PageViewV2Record{User: "u1", Page: "/a", TS: 1709283601000, DurationMs: 5, Referrer: ""}) {
		t.Errorf("v2 reader, v1 record: %+v, %v", got, err)
	}
	// v3 is not resolvable against v1 records: a v3 reader has no value
	// for "device". (The registry refuses to register it; see TestDemo.)
	v3, err := avro.Serde[struct {
		User   string `avro:"user"`
		Device string `avro:"device"`
	}](reg, pageviews.PageViewV3Incompatible)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v3.Deserialize(topic, b1); !errors.Is(err, avro.ErrIncompatible) {
		t.Errorf("v3 reader, v1 record: %v, want %v", err, avro.ErrIncompatible)
	}
}
