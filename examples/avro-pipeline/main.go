// Command avro-pipeline is a schema-governed Avro pipeline as an eddy
// worker. It reads page views (a stream keyed by user id) and users (a
// table keyed by user id), both Avro in the Confluent wire format, and
// writes, in Avro too:
//
//   - page-views-enriched: each page view with its user's name and region
//     (empty for an unknown user);
//   - user-view-counts: the number of page views per user, one record per
//     update.
//
// The pipeline itself is package pageviews; the schemas are in
// pageviews/schemas.
//
// Run without flags it starts an embedded broker serving eddy's schema
// registry, registers the input schemas, feeds users and page views,
// evolves the page view schema to v2 while the pipeline runs (and shows
// the registry refusing an incompatible v3), feeds v2 page views and
// prints every output, decoded:
//
//	go run ./examples/avro-pipeline
//
// With --brokers it is a worker of the application "avro-pipeline" until
// SIGINT or SIGTERM, using the registry at --registry. See README.md and
// docs/examples.md.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eddy-streams/eddy/examples/avro-pipeline/pageviews"
	"github.com/eddy-streams/eddy/examples/internal/exampleapp"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/serde/avro"
	"github.com/eddy-streams/eddy/stream"
)

// The subjects of the input schemas (Confluent's TopicName strategy).
const (
	PageViewsSubject = pageviews.PageViewsTopic + "-value"
	UsersSubject     = pageviews.UsersTopic + "-value"
)

// demoBase is the demo's first event time: 2024-03-01T09:00:00Z.
const demoBase int64 = 1709283600000

// The demo's input.
var (
	demoUsers = []pageviews.User{
		{ID: "u1", Name: "Ada", Region: "eu-west"},
		{ID: "u2", Name: "Grace", Region: "us-east"},
		{ID: "u3", Name: "Linus", Region: "eu-north"},
	}
	// demoViewsV1 are written with schema v1; u9 is not a known user.
	demoViewsV1 = []pageviews.PageView{
		{User: "u1", Page: "/home", TS: demoBase + 1000, DurationMs: 5200},
		{User: "u2", Page: "/pricing", TS: demoBase + 2000, DurationMs: 31000},
		{User: "u1", Page: "/docs", TS: demoBase + 3000, DurationMs: 64000},
		{User: "u3", Page: "/home", TS: demoBase + 4000, DurationMs: 800},
		{User: "u9", Page: "/home", TS: demoBase + 5000, DurationMs: 1500},
	}
	// demoViewsV2 are written with schema v2, after it is registered.
	demoViewsV2 = []pageviews.PageViewV2Record{
		{User: "u2", Page: "/docs", TS: demoBase + 6000, DurationMs: 12000, Referrer: "https://search.example/?q=eddy"},
		{User: "u1", Page: "/pricing", TS: demoBase + 7000, DurationMs: 9000, Referrer: "/docs"},
		{User: "u3", Page: "/blog", TS: demoBase + 8000, DurationMs: 45000, Referrer: ""},
	}
)

// registered is a schema version the demo registered, or tried to.
type registered struct {
	what    string
	id      int
	refused error // the registry's answer to an incompatible schema
}

// evolution registers PageViewV2 under PageViewsSubject (compatible) and
// tries PageViewV3Incompatible (refused with 409).
func evolution(ctx context.Context, env exampleapp.Env) ([]registered, error) {
	id, err := env.Registry.Register(ctx, PageViewsSubject, pageviews.PageViewV2)
	if err != nil {
		return nil, fmt.Errorf("register page view v2: %w", err)
	}
	out := []registered{{what: `v2: adds "referrer" (default "")`, id: id}}
	_, err = env.Registry.Register(ctx, PageViewsSubject, pageviews.PageViewV3Incompatible)
	if status := httpStatus(err); status != http.StatusConflict {
		return nil, fmt.Errorf("register the incompatible page view v3: got %v (HTTP %d), want a refusal with HTTP 409", err, status)
	}
	return append(out, registered{what: `v3: adds "device" without a default`, refused: err}), nil
}

// httpStatus returns the HTTP status of a registry error, 0 if there is
// none.
func httpStatus(err error) int {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// results are the outputs of the pipeline, decoded.
type results struct {
	enriched map[int64]pageviews.EnrichedView // by view time (unique in the demo)
	counts   map[string]int64                 // user → latest count
}

// decoders decode the output topics.
type decoders struct {
	enriched serde.Serde[pageviews.EnrichedView]
	count    serde.Serde[pageviews.ViewCount]
}

// collect decodes the records read from the output topics.
func (d decoders) collect(recs []exampleapp.Record) results {
	r := results{enriched: map[int64]pageviews.EnrichedView{}, counts: map[string]int64{}}
	for _, rec := range recs {
		switch rec.Topic {
		case pageviews.EnrichedTopic:
			if v, err := d.enriched.Deserialize(rec.Topic, rec.Value); err == nil {
				r.enriched[v.TS] = v
			}
		case pageviews.CountsTopic:
			if v, err := d.count.Deserialize(rec.Topic, rec.Value); err == nil && v.User == string(rec.Key) {
				r.counts[v.User] = v.Views
			}
		}
	}
	return r
}

// expected computes the results of the demo input.
func expected() results {
	users := map[string]pageviews.User{}
	for _, u := range demoUsers {
		users[u.ID] = u
	}
	r := results{enriched: map[int64]pageviews.EnrichedView{}, counts: map[string]int64{}}
	views := append([]pageviews.PageView(nil), demoViewsV1...)
	for _, v := range demoViewsV2 {
		views = append(views, pageviews.PageView{User: v.User, Page: v.Page, TS: v.TS, DurationMs: v.DurationMs})
	}
	for _, v := range views {
		u, ok := users[v.User]
		r.enriched[v.TS] = pageviews.Enrich(v.User, v, u, ok)
		r.counts[v.User]++
	}
	return r
}

// complete reports whether got holds every expected result.
func (got results) complete(want results) bool {
	for ts, e := range want.enriched {
		if got.enriched[ts] != e {
			return false
		}
	}
	for u, n := range want.counts {
		if got.counts[u] != n {
			return false
		}
	}
	return true
}

// encodeAll encodes vs with s as records of topic, keyed by key(v), with
// timestamp ts(v).
func encodeAll[T any](s serde.Serde[T], topic string, vs []T, key func(T) string, ts func(T) int64) ([]exampleapp.Record, error) {
	recs := make([]exampleapp.Record, len(vs))
	for i, v := range vs {
		b, err := s.Serialize(topic, v)
		if err != nil {
			return nil, err
		}
		recs[i] = exampleapp.Record{Topic: topic, Key: []byte(key(v)), Value: b, Timestamp: ts(v)}
	}
	return recs, nil
}

// demo builds the demo run with the registry of env.
func demo(ctx context.Context, env exampleapp.Env) (exampleapp.Demo, error) {
	reg := env.Registry
	// The producers' side: register the input schemas (v1), then write
	// with them (the serdes look the schemas up, they do not register).
	v1ID, err := reg.Register(ctx, PageViewsSubject, pageviews.PageViewV1)
	if err != nil {
		return exampleapp.Demo{}, fmt.Errorf("register page view v1: %w", err)
	}
	if _, err := reg.Register(ctx, UsersSubject, pageviews.UserSchema); err != nil {
		return exampleapp.Demo{}, fmt.Errorf("register user: %w", err)
	}
	userW, err := avro.Serde[pageviews.User](reg, pageviews.UserSchema)
	if err != nil {
		return exampleapp.Demo{}, err
	}
	viewW1, err := avro.Serde[pageviews.PageView](reg, pageviews.PageViewV1)
	if err != nil {
		return exampleapp.Demo{}, err
	}
	viewW2, err := avro.Serde[pageviews.PageViewV2Record](reg, pageviews.PageViewV2)
	if err != nil {
		return exampleapp.Demo{}, err
	}
	// The consumers' side: outputs decoded with the pipeline's schemas,
	// and the input read back with v2, whatever it was written with.
	dec := decoders{}
	if dec.enriched, err = avro.Serde[pageviews.EnrichedView](reg, pageviews.EnrichedViewSchema); err != nil {
		return exampleapp.Demo{}, err
	}
	if dec.count, err = avro.Serde[pageviews.ViewCount](reg, pageviews.ViewCountSchema); err != nil {
		return exampleapp.Demo{}, err
	}
	viewR2, err := avro.Serde[pageviews.PageViewV2Record](reg, pageviews.PageViewV2)
	if err != nil {
		return exampleapp.Demo{}, err
	}

	users, err := encodeAll(userW, pageviews.UsersTopic, demoUsers,
		func(u pageviews.User) string { return u.ID }, func(pageviews.User) int64 { return demoBase })
	if err != nil {
		return exampleapp.Demo{}, err
	}
	viewKey := func(v pageviews.PageView) string { return v.User }
	viewsV1, err := encodeAll(viewW1, pageviews.PageViewsTopic, demoViewsV1, viewKey, func(v pageviews.PageView) int64 { return v.TS })
	if err != nil {
		return exampleapp.Demo{}, err
	}
	var steps []registered
	var viewsV2 []exampleapp.Record
	want := expected()
	return exampleapp.Demo{
		// Users first: the join reads the table as it is when a view
		// is processed.
		Batches: [][]exampleapp.Record{users, viewsV1},
		// Then, with the pipeline running and its v1 views committed,
		// the page view schema evolves and producers move to v2.
		Steps: []func(context.Context) ([]exampleapp.Record, error){
			func(ctx context.Context) ([]exampleapp.Record, error) {
				if steps, err = evolution(ctx, env); err != nil {
					return nil, err
				}
				viewsV2, err = encodeAll(viewW2, pageviews.PageViewsTopic, demoViewsV2,
					func(v pageviews.PageViewV2Record) string { return v.User },
					func(v pageviews.PageViewV2Record) int64 { return v.TS })
				return viewsV2, err
			},
		},
		Outputs: []string{pageviews.EnrichedTopic, pageviews.CountsTopic},
		Done:    func(out []exampleapp.Record) bool { return dec.collect(out).complete(want) },
		Print: func(w io.Writer, out []exampleapp.Record) {
			got := dec.collect(out)
			fmt.Fprintf(w, "schemas under %s (compatibility BACKWARD):\n", PageViewsSubject)
			fmt.Fprintf(w, "  v1: registered, id %d\n", v1ID)
			for _, s := range steps {
				if s.refused != nil {
					fmt.Fprintf(w, "  %s: refused, HTTP %d: %s\n", s.what, httpStatus(s.refused), reason(s.refused))
				} else {
					fmt.Fprintf(w, "  %s: registered, id %d\n", s.what, s.id)
				}
			}
			fmt.Fprintf(w, "\n%s (table, key user id):\n", pageviews.UsersTopic)
			for _, u := range demoUsers {
				fmt.Fprintf(w, "  %s  %s\n", u.ID, jsonOf(u))
			}
			fmt.Fprintf(w, "\n%s (key user id; read back with schema v2, so v1 records get referrer \"\"):\n", pageviews.PageViewsTopic)
			for _, r := range append(append([]exampleapp.Record(nil), viewsV1...), viewsV2...) {
				v, err := viewR2.Deserialize(r.Topic, r.Value)
				written := "v1"
				if int(binary.BigEndian.Uint32(r.Value[1:5])) != v1ID {
					written = "v2"
				}
				if err != nil {
					fmt.Fprintf(w, "  %s  %s  error: %v\n", r.Key, written, err)
					continue
				}
				fmt.Fprintf(w, "  %s  %s  %s\n", r.Key, written, jsonOf(v))
			}
			fmt.Fprintf(w, "\n%s (key user id, by view time; the pipeline reads with v1):\n", pageviews.EnrichedTopic)
			for _, ts := range sortedKeys(got.enriched) {
				e := got.enriched[ts]
				fmt.Fprintf(w, "  %s  %s\n", e.User, jsonOf(e))
			}
			fmt.Fprintf(w, "\n%s (latest count per user):\n", pageviews.CountsTopic)
			for _, u := range sortedKeys(got.counts) {
				fmt.Fprintf(w, "  %s  %d\n", u, got.counts[u])
			}
		},
	}, nil
}

// jsonOf returns v as JSON, for printing.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// reason returns the reason the registry gave for refusing a schema: the
// description in its message if there is one, else the message.
func reason(err error) string {
	msg := err.Error()
	var re *sr.ResponseError
	if errors.As(err, &re) {
		msg = re.Message
	}
	const desc = "description:'"
	if i := strings.Index(msg, desc); i >= 0 {
		if d, _, ok := strings.Cut(msg[i+len(desc):], "'"); ok {
			msg = d
		}
	}
	return strings.Join(strings.Fields(msg), " ")
}

// sortedKeys returns m's keys in order.
func sortedKeys[K int64 | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// example describes the avro-pipeline example.
func example() exampleapp.Example {
	return exampleapp.Example{
		Name:    "avro-pipeline",
		Summary: "Avro page views enriched with their user and counted per user, with schemas in a registry",
		Topics: []exampleapp.Topic{
			{Name: pageviews.PageViewsTopic, Partitions: 3}, {Name: pageviews.UsersTopic, Partitions: 3},
			{Name: pageviews.EnrichedTopic, Partitions: 3}, {Name: pageviews.CountsTopic, Partitions: 3},
		},
		TopologyWith: topology,
		DemoWith:     demo,
	}
}

// topology builds the pipeline with Avro serdes on env's registry.
func topology(env exampleapp.Env) (*stream.Topology, error) {
	s, err := pageviews.AvroSerdes(env.Registry, avro.Timeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	return pageviews.Topology(s)
}

func main() { exampleapp.Main(example()) }
