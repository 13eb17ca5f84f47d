package streambench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/examples/avro-pipeline/pageviews"
	"github.com/eddy-streams/eddy/registry"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/serde/avro"
	"github.com/eddy-streams/eddy/stream"
)

// This file backs `eddy perf avro`: the avro-pipeline example's topology
// (package pageviews: page views left-joined with a users table and
// counted per user) with Avro values through a schema registry against
// the same topology with JSON values.

// Format is the value format of a page-view pipeline run.
type Format string

// The formats compared.
const (
	// Avro values in the Confluent wire format (serde/avro), schemas in
	// a registry.
	Avro Format = "avro"
	// JSON values (serde.JSON).
	JSON Format = "json"
)

// PageViewTopics returns the pipeline's topics for a run whose topics
// start with prefix.
func PageViewTopics(prefix string) pageviews.Topics {
	return pageviews.Topics{
		PageViews: prefix + "-page-views", Users: prefix + "-users",
		Enriched: prefix + "-enriched", Counts: prefix + "-counts",
	}
}

// serdes returns the pipeline's serdes in format f; reg is needed for Avro.
func serdes(f Format, reg avro.Registry) (pageviews.Serdes, error) {
	switch f {
	case Avro:
		if reg == nil {
			return pageviews.Serdes{}, errors.New("streambench: the Avro pipeline needs a registry")
		}
		return pageviews.AvroSerdes(reg)
	case JSON:
		return pageviews.JSONSerdes(), nil
	}
	return pageviews.Serdes{}, fmt.Errorf("streambench: unknown format %q", f)
}

// regions are the users' regions.
var regions = []string{"eu-west", "eu-north", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south"}

// FillPageViews creates the topics of PageViewTopics(prefix) with
// cfg.Partitions partitions each and fills the inputs in format f: first
// cfg.Keys users ("user-0000"…), then cfg.Records page views of those
// users, round-robin, every view later in time than every user, so that
// the users table is loaded before the views it enriches. With Avro the
// input schemas (pageviews.PageViewV1, pageviews.UserSchema) are
// registered in reg under "<topic>-value" first.
func FillPageViews(ctx context.Context, cfg Config, f Format, reg avro.Registry, prefix string) error {
	cfg.defaults()
	t := PageViewTopics(prefix)
	var userS serde.Serde[pageviews.User]
	var viewS serde.Serde[pageviews.PageView]
	switch f {
	case Avro:
		if reg == nil {
			return errors.New("streambench: the Avro pipeline needs a registry")
		}
		if _, err := reg.Register(ctx, t.PageViews+"-value", pageviews.PageViewV1); err != nil {
			return err
		}
		if _, err := reg.Register(ctx, t.Users+"-value", pageviews.UserSchema); err != nil {
			return err
		}
		var err error
		if userS, err = avro.Serde[pageviews.User](reg, pageviews.UserSchema); err != nil {
			return err
		}
		if viewS, err = avro.Serde[pageviews.PageView](reg, pageviews.PageViewV1); err != nil {
			return err
		}
	case JSON:
		userS, viewS = serde.JSON[pageviews.User](), serde.JSON[pageviews.PageView]()
	default:
		return fmt.Errorf("streambench: unknown format %q", f)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := createTopics(ctx, kadm.NewClient(cl), cfg.Partitions, t.PageViews, t.Users, t.Enriched, t.Counts); err != nil {
		return err
	}
	var failed atomic.Value
	produce := func(topic, key string, value []byte, ts time.Time) {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value, Timestamp: ts}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	// Times end about now: the broker's retention applies to them.
	base := time.Now().Add(-time.Duration(cfg.Records+1) * time.Millisecond).Truncate(time.Second)
	userID := func(i int) string { return fmt.Sprintf("user-%04d", i%cfg.Keys) }
	for i := 0; i < cfg.Keys; i++ {
		u := pageviews.User{ID: userID(i), Name: fmt.Sprintf("name-%04d", i), Region: regions[i%len(regions)]}
		b, err := userS.Serialize(t.Users, u)
		if err != nil {
			return err
		}
		produce(t.Users, u.ID, b, base)
	}
	// The users first: a view processed before its user is loaded would
	// not be joined, and the run would do less work than it should.
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < cfg.Records; i++ {
		ts := base.Add(time.Duration(i+1) * time.Millisecond)
		v := pageviews.PageView{User: userID(i), Page: fmt.Sprintf("/products/%d", rng.IntN(500)),
			TS: ts.UnixMilli(), DurationMs: int32(rng.IntN(120_000))}
		b, err := viewS.Serialize(t.PageViews, v)
		if err != nil {
			return err
		}
		produce(t.PageViews, v.User, b, ts)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return nil
}

// ServeRegistry serves eddy's schema registry, its log in topic
// registry.DefaultTopic of the cluster at brokers, on a free local port
// until the returned func is called, and returns its URL.
func ServeRegistry(ctx context.Context, brokers []string) (url string, stop func() error, err error) {
	log, err := registry.NewKafkaLog(ctx, brokers, registry.DefaultTopic)
	if err != nil {
		return "", nil, err
	}
	reg, err := registry.New(ctx, registry.Config{Log: log})
	if err != nil {
		return "", nil, errors.Join(err, log.Close())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, errors.Join(err, reg.Close())
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // http.ErrServerClosed once stopped
	}()
	return "http://" + ln.Addr().String(), func() error {
		err := srv.Close()
		<-done
		return errors.Join(err, reg.Close())
	}, nil
}

// PageViewResult is one measured run of the page-view pipeline.
type PageViewResult struct {
	Result
	// Unjoined counts the views whose user the table did not hold when
	// they were processed (0 when the users were loaded first, as they
	// should be).
	Unjoined int64
}

// EddyPageViews runs the avro-pipeline example's topology in format f on
// the input FillPageViews wrote under prefix and reports the rate end to
// end: from the first page view processed to the moment every enriched
// view is in the output topic (acknowledged by the broker). Every view
// is also counted per user, and each count written to the counts topic.
func EddyPageViews(ctx context.Context, cfg Config, f Format, reg avro.Registry, prefix string) (PageViewResult, error) {
	cfg.defaults()
	s, err := serdes(f, reg)
	if err != nil {
		return PageViewResult{}, err
	}
	t := PageViewTopics(prefix)
	out, err := newOutputWatch(ctx, cfg, t.Enriched)
	if err != nil {
		return PageViewResult{}, err
	}
	defer out.close()
	m := newMeter(cfg.Records)
	var unjoined atomic.Int64
	b := stream.NewBuilder()
	p := pageviews.Build(b, s, t)
	p.Views.Peek(func(string, pageviews.PageView) { m.tick() })
	p.Enriched.Peek(func(_ string, e pageviews.EnrichedView) {
		if e.Name == "" {
			unjoined.Add(1)
		}
	})
	r, err := runApp(ctx, cfg, fmt.Sprintf("bench-pageviews-%s-%d", f, time.Now().UnixNano()), b, m, out)
	return PageViewResult{Result: r, Unjoined: unjoined.Load()}, err
}
