// Package pageviews is the pipeline of the avro-pipeline example: page
// views, keyed by user id, joined with a users table and counted per
// user. The value serdes are the caller's choice: Avro in the Confluent
// wire format through a schema registry ([AvroSerdes]) in the example, or
// JSON ([JSONSerdes]) for the benchmark that compares the two on the same
// topology (eddy perf avro).
//
//	s, err := pageviews.AvroSerdes(registryClient)
//	if err != nil { … }
//	top, err := pageviews.Topology(s)
//
// The Avro schemas are embedded: [PageViewV1] (what the pipeline reads
// with), [PageViewV2] (adds a referrer with a default),
// [PageViewV3Incompatible] (adds a field without a default, which a
// registry checking BACKWARD compatibility refuses), [UserSchema],
// [EnrichedViewSchema] and [ViewCountSchema].
package pageviews

import (
	"embed"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/serde/avro"
	"github.com/eddy-streams/eddy/stream"
)

// The pipeline's topics (see Topics for other names).
const (
	// PageViewsTopic is the input stream: key user id, value PageView.
	PageViewsTopic = "page-views"
	// UsersTopic is the input table: key user id, value User (a null
	// value deletes the user).
	UsersTopic = "users"
	// EnrichedTopic is the output of the join: key user id, value
	// EnrichedView, one record per page view.
	EnrichedTopic = "page-views-enriched"
	// CountsTopic is the output of the count: key user id, value
	// ViewCount, one record per update of a user's count.
	CountsTopic = "user-view-counts"
)

// The pipeline's state stores (changelogs <app-id>-<store>-changelog).
const (
	// UsersStore is the users table.
	UsersStore = "users"
	// CountsStore holds the view count per user.
	CountsStore = "view-counts"
)

//go:embed schemas/*.avsc
var schemas embed.FS

// schema returns the embedded schema file name.
func schema(name string) string {
	b, err := schemas.ReadFile("schemas/" + name)
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	return string(b)
}

// The Avro schemas of the pipeline's records, as registered.
var (
	// PageViewV1 is the first version of the page view schema, and the
	// schema the pipeline reads page views with: records written with
	// later compatible versions are resolved to it.
	PageViewV1 = schema("page_view_v1.avsc")
	// PageViewV2 adds "referrer" with the default "": BACKWARD
	// compatible with v1 (a v2 reader fills in the default for v1
	// records; a v1 reader skips the new field of v2 records).
	PageViewV2 = schema("page_view_v2.avsc")
	// PageViewV3Incompatible adds "device" without a default: a v3
	// reader could not read v1 or v2 records, so a registry checking
	// BACKWARD compatibility refuses it (HTTP 409).
	PageViewV3Incompatible = schema("page_view_v3_incompatible.avsc")
	// UserSchema is the schema of the users table's values.
	UserSchema = schema("user.avsc")
	// EnrichedViewSchema is the schema of EnrichedTopic's values.
	EnrichedViewSchema = schema("enriched_view.avsc")
	// ViewCountSchema is the schema of CountsTopic's values.
	ViewCountSchema = schema("view_count.avsc")
)

// PageView is a page view as the pipeline reads it (PageViewV1).
type PageView struct {
	User       string `avro:"user" json:"user"`
	Page       string `avro:"page" json:"page"`
	TS         int64  `avro:"ts" json:"ts"` // epoch milliseconds
	DurationMs int32  `avro:"duration_ms" json:"duration_ms"`
}

// PageViewV2Record is a page view of PageViewV2: producers that know the
// referrer write it, and readers with the v2 schema read it.
type PageViewV2Record struct {
	User       string `avro:"user" json:"user"`
	Page       string `avro:"page" json:"page"`
	TS         int64  `avro:"ts" json:"ts"`
	DurationMs int32  `avro:"duration_ms" json:"duration_ms"`
	Referrer   string `avro:"referrer" json:"referrer"`
}

// User is a value of the users table.
type User struct {
	ID     string `avro:"id" json:"id"`
	Name   string `avro:"name" json:"name"`
	Region string `avro:"region" json:"region"`
}

// EnrichedView is a page view with its user's name and region, both empty
// when the users table does not know the user.
type EnrichedView struct {
	User       string `avro:"user" json:"user"`
	Page       string `avro:"page" json:"page"`
	TS         int64  `avro:"ts" json:"ts"`
	DurationMs int32  `avro:"duration_ms" json:"duration_ms"`
	Name       string `avro:"name" json:"name"`
	Region     string `avro:"region" json:"region"`
}

// ViewCount is a user's number of page views so far.
type ViewCount struct {
	User  string `avro:"user" json:"user"`
	Views int64  `avro:"views" json:"views"`
}

// Serdes are the value serdes of the pipeline (keys are strings).
type Serdes struct {
	PageView serde.Serde[PageView]
	User     serde.Serde[User]
	Enriched serde.Serde[EnrichedView]
	Count    serde.Serde[ViewCount]
}

// AvroSerdes returns Avro serdes (Confluent wire format) using reg. Page
// views are read with PageViewV1, whatever compatible version they were
// written with. The serdes of what the pipeline writes — its outputs, and
// the users in the users store's changelog — register their schemas on
// first use (avro.AutoRegister, what Kafka Streams' Avro serdes do by
// default), under "<topic>-value"; the input schemas are the producers'
// to register. opts are added to every serde's options.
func AvroSerdes(reg avro.Registry, opts ...avro.Option) (Serdes, error) {
	opts = append([]avro.Option{avro.AutoRegister()}, opts...)
	var s Serdes
	var err error
	if s.PageView, err = avro.Serde[PageView](reg, PageViewV1, opts...); err != nil {
		return s, err
	}
	if s.User, err = avro.Serde[User](reg, UserSchema, opts...); err != nil {
		return s, err
	}
	if s.Enriched, err = avro.Serde[EnrichedView](reg, EnrichedViewSchema, opts...); err != nil {
		return s, err
	}
	if s.Count, err = avro.Serde[ViewCount](reg, ViewCountSchema, opts...); err != nil {
		return s, err
	}
	return s, nil
}

// JSONSerdes returns JSON serdes of the same types: the pipeline with JSON
// values, as the benchmark's baseline.
func JSONSerdes() Serdes {
	return Serdes{
		PageView: serde.JSON[PageView](),
		User:     serde.JSON[User](),
		Enriched: serde.JSON[EnrichedView](),
		Count:    serde.JSON[ViewCount](),
	}
}

// Topics names the pipeline's topics.
type Topics struct {
	PageViews, Users, Enriched, Counts string
}

// DefaultTopics are the example's topic names.
var DefaultTopics = Topics{PageViews: PageViewsTopic, Users: UsersTopic, Enriched: EnrichedTopic, Counts: CountsTopic}

// Streams are the pipeline's streams, for callers that observe them (the
// benchmark counts records with Peek).
type Streams struct {
	// Views are the page views read.
	Views stream.KStream[string, PageView]
	// Enriched are the joined views, as written to the enriched topic.
	Enriched stream.KStream[string, EnrichedView]
}

// Build adds the pipeline to b with serdes s on topics t, and returns its
// streams:
//
//   - every page view is joined with its user in the users table (a left
//     join: a view of an unknown user is passed on with an empty name and
//     region) and written to t.Enriched;
//   - page views are counted per user (store CountsStore), each new count
//     written to t.Counts.
//
// Page views are keyed by user id, so neither needs a repartition;
// t.PageViews and t.Users must have the same number of partitions.
func Build(b *stream.Builder, s Serdes, t Topics) Streams {
	views := stream.Stream(b, stream.With(serde.String(), s.PageView), t.PageViews)
	users := stream.Table(b, t.Users, stream.With(serde.String(), s.User),
		stream.Materialized[string, User]{Name: UsersStore, Key: serde.String(), Value: s.User})

	enriched := stream.LeftJoinTable(views, users, Enrich,
		stream.Joined[string, PageView]{Name: "enrich", Key: serde.String(), Value: s.PageView})
	enriched.To(t.Enriched, stream.Produced[string, EnrichedView]{Key: serde.String(), Value: s.Enriched})

	counts := views.GroupByKey(stream.Grouped[string, PageView]{Key: serde.String(), Value: s.PageView}).
		Count(stream.Materialized[string, int64]{Name: CountsStore})
	stream.MapValues(counts.ToStream(), func(user string, n int64) ViewCount {
		return ViewCount{User: user, Views: n}
	}).To(t.Counts, stream.Produced[string, ViewCount]{Key: serde.String(), Value: s.Count})
	return Streams{Views: views, Enriched: enriched}
}

// Enrich is the join: the page view with its user's name and region (ok
// false: the user is unknown, and they stay empty).
func Enrich(_ string, v PageView, u User, ok bool) EnrichedView {
	e := EnrichedView{User: v.User, Page: v.Page, TS: v.TS, DurationMs: v.DurationMs}
	if ok {
		e.Name, e.Region = u.Name, u.Region
	}
	return e
}

// Topology builds the pipeline on DefaultTopics with serdes s.
func Topology(s Serdes) (*stream.Topology, error) {
	b := stream.NewBuilder()
	Build(b, s, DefaultTopics)
	return b.Build()
}
