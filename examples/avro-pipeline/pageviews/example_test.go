package pageviews_test

import (
	"fmt"

	"github.com/eddy-streams/eddy/examples/avro-pipeline/pageviews"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// The pipeline with JSON values in the test driver (with Avro, build the
// serdes with pageviews.AvroSerdes and a registry client).
func ExampleTopology() {
	s := pageviews.JSONSerdes()
	top, err := pageviews.Topology(s)
	if err != nil {
		panic(err)
	}
	d, err := streamtest.New(top, streamtest.WithCacheMaxBytes(0))
	if err != nil {
		panic(err)
	}
	defer d.Close()
	users := streamtest.InputTopic(d, pageviews.UsersTopic, serde.String(), s.User)
	views := streamtest.InputTopic(d, pageviews.PageViewsTopic, serde.String(), s.PageView)
	_ = users.Pipe("u1", pageviews.User{ID: "u1", Name: "Ada", Region: "eu"}, 1)
	_ = views.Pipe("u1", pageviews.PageView{User: "u1", Page: "/home", TS: 2, DurationMs: 300}, 2)
	_ = views.Pipe("u2", pageviews.PageView{User: "u2", Page: "/docs", TS: 3, DurationMs: 400}, 3)

	enriched, _ := streamtest.OutputTopic(d, pageviews.EnrichedTopic, serde.String(), s.Enriched).ReadRecords()
	for _, r := range enriched {
		fmt.Printf("%s %+v\n", r.Key, r.Value)
	}
	counts, _ := streamtest.OutputTopic(d, pageviews.CountsTopic, serde.String(), s.Count).ReadRecords()
	for _, r := range counts {
		fmt.Printf("%s %+v\n", r.Key, r.Value)
	}
	// Output:
	// u1 {User:u1 Page:/home TS:2 DurationMs:300 Name:Ada Region:eu}
	// u2 {User:u2 Page:/docs TS:3 DurationMs:400 Name: Region:}
	// u1 {User:u1 Views:1}
	// u2 {User:u2 Views:1}
}
