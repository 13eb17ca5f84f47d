package main

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/examples/avro-pipeline/pageviews"
	"github.com/eddy-streams/eddy/examples/internal/exampleapp"
	"github.com/eddy-streams/eddy/examples/internal/exampletest"
	"github.com/eddy-streams/eddy/registry"
	"github.com/eddy-streams/eddy/runtime"
	"github.com/eddy-streams/eddy/serde/avro"
	"github.com/eddy-streams/eddy/stream"
)

func TestMain(m *testing.M) { exampletest.Main(m) }

// brokerWithRegistry starts a broker serving eddy's schema registry on its
// HTTP listener, both closed when the test ends.
func brokerWithRegistry(t *testing.T) (string, exampleapp.Env) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.HTTP = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	srv, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg, err := registry.Mount(ctx, srv, registry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	url := "http://" + srv.HTTPAddr()
	cl, err := avro.NewRegistryClient(url)
	if err != nil {
		t.Fatal(err)
	}
	return srv.Addr(), exampleapp.Env{Registry: cl, RegistryURL: url}
}

// seen is a deserialization handler that records the errors it is given
// and skips their records.
type seen struct {
	mu   sync.Mutex
	errs []error
	offs []int64
}

func (s *seen) handle(ctx stream.ErrorContext, err error) stream.ErrorAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
	if ctx.Source != nil {
		s.offs = append(s.offs, ctx.Source.Offset)
	}
	return stream.LogAndContinue(ctx, err)
}

func (s *seen) errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// TestBadRecordsWorker runs the example's topology in a runtime worker on
// a broker with eddy's registry, with page views that are not Avro (bad
// magic byte), written with a schema id the registry does not know, or cut
// short: each goes to the deserialization handler and the dead-letter
// topic with an error wrapping its avro sentinel, the worker keeps
// running, and every good record around them is processed.
func TestBadRecordsWorker(t *testing.T) {
	addr, env := brokerWithRegistry(t)
	const dlq = "page-views-dlq"
	for _, topic := range []string{pageviews.PageViewsTopic, pageviews.UsersTopic, pageviews.EnrichedTopic, pageviews.CountsTopic, dlq} {
		exampletest.CreateTopic(t, addr, topic, 1) // one partition: the records keep their order
	}
	ctx := context.Background()
	for _, s := range []struct{ subject, schema string }{{PageViewsSubject, pageviews.PageViewV1}, {UsersSubject, pageviews.UserSchema}} {
		if _, err := env.Registry.Register(ctx, s.subject, s.schema); err != nil {
			t.Fatal(err)
		}
	}
	userW, err := avro.Serde[pageviews.User](env.Registry, pageviews.UserSchema)
	if err != nil {
		t.Fatal(err)
	}
	viewW, err := avro.Serde[pageviews.PageView](env.Registry, pageviews.PageViewV1)
	if err != nil {
		t.Fatal(err)
	}
	view := func(user, page string, ts int64) *kgo.Record {
		b, err := viewW.Serialize(pageviews.PageViewsTopic, pageviews.PageView{User: user, Page: page, TS: ts, DurationMs: 10})
		if err != nil {
			t.Fatal(err)
		}
		return &kgo.Record{Topic: pageviews.PageViewsTopic, Key: []byte(user), Value: b, Timestamp: time.UnixMilli(ts)}
	}
	ub, err := userW.Serialize(pageviews.UsersTopic, pageviews.User{ID: "u1", Name: "Ada", Region: "eu"})
	if err != nil {
		t.Fatal(err)
	}
	cl := exampletest.Client(t, addr)
	exampletest.Produce(t, cl, &kgo.Record{Topic: pageviews.UsersTopic, Key: []byte("u1"), Value: ub, Timestamp: time.UnixMilli(demoBase)})

	top, err := topology(env)
	if err != nil {
		t.Fatal(err)
	}
	h := &seen{}
	cfg := runtime.DefaultConfig("avro-bad-records", addr)
	cfg.StateDir, cfg.CommitInterval = t.TempDir(), 100*time.Millisecond
	cfg.Errors = stream.ErrorHandlers{Deserialization: h.handle, DeadLetterTopic: dlq}
	app, err := runtime.New(top, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- app.Run(runCtx) }()
	t.Cleanup(func() { app.Close() })

	// The bad records, each between good ones.
	badMagic := view("u1", "/bad-magic", demoBase+2)
	badMagic.Value = append([]byte{1}, badMagic.Value[1:]...)
	unknown := view("u1", "/unknown-id", demoBase+4)
	binary.BigEndian.PutUint32(unknown.Value[1:5], 1<<30) // no such id
	truncated := view("u1", "/truncated", demoBase+6)
	truncated.Value = truncated.Value[:len(truncated.Value)-1]
	exampletest.Produce(t, cl,
		view("u1", "/1", demoBase+1), badMagic,
		view("u2", "/2", demoBase+3), unknown,
		view("u1", "/3", demoBase+5), truncated,
		view("u1", "/4", demoBase+7))

	dec := decoders{}
	if dec.enriched, err = avro.Serde[pageviews.EnrichedView](env.Registry, pageviews.EnrichedViewSchema); err != nil {
		t.Fatal(err)
	}
	if dec.count, err = avro.Serde[pageviews.ViewCount](env.Registry, pageviews.ViewCountSchema); err != nil {
		t.Fatal(err)
	}
	r := exampletest.NewReader(t, addr, pageviews.EnrichedTopic, pageviews.CountsTopic, dlq)
	var got results
	var dead []*kgo.Record
	r.WaitFor(t, 60*time.Second, func(r *exampletest.Reader) bool {
		select {
		case err := <-runErr:
			t.Fatalf("the worker stopped: %v", err)
		default:
		}
		var out []exampleapp.Record
		dead = nil
		for _, rec := range r.Records() {
			if rec.Topic == dlq {
				dead = append(dead, rec)
				continue
			}
			out = append(out, exampleapp.Record{Topic: rec.Topic, Key: rec.Key, Value: rec.Value})
		}
		got = dec.collect(out)
		return len(got.enriched) == 4 && got.counts["u1"] == 3 && got.counts["u2"] == 1 && len(dead) == 3
	}, func() string { return "4 enriched views, counts u1=3 u2=1 and 3 dead letters" })

	if want := map[string]int64{"u1": 3, "u2": 1}; !reflect.DeepEqual(got.counts, want) {
		t.Errorf("counts %v, want %v", got.counts, want)
	}
	var pages []string
	for _, ts := range sortedKeys(got.enriched) {
		e := got.enriched[ts]
		pages = append(pages, e.Page+":"+e.Name)
	}
	if strings.Join(pages, " ") != "/1:Ada /2: /3:Ada /4:Ada" {
		t.Errorf("enriched views %v", pages)
	}

	errs := h.errors()
	sentinels := []error{avro.ErrBadMagic, avro.ErrUnknownSchema, avro.ErrTruncated}
	if len(errs) != len(sentinels) {
		t.Fatalf("the handler saw %d errors, want %d: %v", len(errs), len(sentinels), errs)
	}
	for i, want := range sentinels {
		if !errors.Is(errs[i], want) {
			t.Errorf("error %d: %v, want one wrapping %v", i, errs[i], want)
		}
	}
	for i, rec := range dead {
		headers := map[string]string{}
		for _, hd := range rec.Headers {
			headers[hd.Key] = string(hd.Value)
		}
		if msg := headers[stream.HeaderErrorMessage]; !strings.Contains(msg, sentinels[i].Error()) ||
			headers[stream.HeaderErrorTopic] != pageviews.PageViewsTopic {
			t.Errorf("dead letter %d: headers %v, want the error %q", i, headers, sentinels[i])
		}
	}
	if string(dead[0].Value) != string(badMagic.Value) || string(dead[2].Value) != string(truncated.Value) {
		t.Error("dead letters are not the records as read")
	}

	// The pipeline registered what it writes (README: "Who registers
	// which schema").
	src, err := sr.NewClient(sr.URLs(env.RegistryURL))
	if err != nil {
		t.Fatal(err)
	}
	subjects, err := src.Subjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(subjects)
	if want := []string{"avro-bad-records-users-changelog-value", pageviews.EnrichedTopic + "-value", PageViewsSubject,
		pageviews.CountsTopic + "-value", UsersSubject}; !reflect.DeepEqual(subjects, want) {
		t.Errorf("subjects %q, want %q", subjects, want)
	}

	stop()
	if err := <-runErr; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestDemo runs the example without flags: embedded broker and registry,
// the schema evolution, every output decoded and printed.
func TestDemo(t *testing.T) {
	out := exampletest.RunDemo(t)

	sections := map[string][]string{}
	var cur string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case l == "":
		case !strings.HasPrefix(l, " "):
			head := strings.Fields(strings.SplitN(l, "(", 2)[0]) // "schemas under S (…)", "T (…)"
			cur = head[len(head)-1]
			sections[cur] = []string{}
		default:
			sections[cur] = append(sections[cur], strings.TrimSpace(l))
		}
	}
	check := func(section string, want ...string) {
		t.Helper()
		if got := sections[section]; strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", section, got, want)
		}
	}
	schemas := sections[PageViewsSubject]
	if len(schemas) != 3 || !strings.HasPrefix(schemas[0], "v1: registered, id ") ||
		!strings.HasPrefix(schemas[1], `v2: adds "referrer" (default ""): registered, id `) ||
		!strings.HasPrefix(schemas[2], `v3: adds "device" without a default: refused, HTTP 409: `) {
		t.Errorf("schemas: %q", schemas)
	}
	check(pageviews.UsersTopic,
		`u1  {"id":"u1","name":"Ada","region":"eu-west"}`,
		`u2  {"id":"u2","name":"Grace","region":"us-east"}`,
		`u3  {"id":"u3","name":"Linus","region":"eu-north"}`)
	check(pageviews.PageViewsTopic,
		`u1  v1  {"user":"u1","page":"/home","ts":1709283601000,"duration_ms":5200,"referrer":""}`,
		`u2  v1  {"user":"u2","page":"/pricing","ts":1709283602000,"duration_ms":31000,"referrer":""}`,
		`u1  v1  {"user":"u1","page":"/docs","ts":1709283603000,"duration_ms":64000,"referrer":""}`,
		`u3  v1  {"user":"u3","page":"/home","ts":1709283604000,"duration_ms":800,"referrer":""}`,
		`u9  v1  {"user":"u9","page":"/home","ts":1709283605000,"duration_ms":1500,"referrer":""}`,
		`u2  v2  {"user":"u2","page":"/docs","ts":1709283606000,"duration_ms":12000,"referrer":"https://search.example/?q=eddy"}`,
		`u1  v2  {"user":"u1","page":"/pricing","ts":1709283607000,"duration_ms":9000,"referrer":"/docs"}`,
		`u3  v2  {"user":"u3","page":"/blog","ts":1709283608000,"duration_ms":45000,"referrer":""}`)
	check(pageviews.EnrichedTopic,
		`u1  {"user":"u1","page":"/home","ts":1709283601000,"duration_ms":5200,"name":"Ada","region":"eu-west"}`,
		`u2  {"user":"u2","page":"/pricing","ts":1709283602000,"duration_ms":31000,"name":"Grace","region":"us-east"}`,
		`u1  {"user":"u1","page":"/docs","ts":1709283603000,"duration_ms":64000,"name":"Ada","region":"eu-west"}`,
		`u3  {"user":"u3","page":"/home","ts":1709283604000,"duration_ms":800,"name":"Linus","region":"eu-north"}`,
		`u9  {"user":"u9","page":"/home","ts":1709283605000,"duration_ms":1500,"name":"","region":""}`,
		`u2  {"user":"u2","page":"/docs","ts":1709283606000,"duration_ms":12000,"name":"Grace","region":"us-east"}`,
		`u1  {"user":"u1","page":"/pricing","ts":1709283607000,"duration_ms":9000,"name":"Ada","region":"eu-west"}`,
		`u3  {"user":"u3","page":"/blog","ts":1709283608000,"duration_ms":45000,"name":"Linus","region":"eu-north"}`)
	check(pageviews.CountsTopic, "u1  3", "u2  2", "u3  2", "u9  1")
}
