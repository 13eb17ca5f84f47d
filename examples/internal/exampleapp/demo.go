package exampleapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/broker"
	"github.com/eddy-streams/eddy/runtime"
)

// pollInterval is how often the demo checks the application's committed
// offsets.
const pollInterval = 20 * time.Millisecond

// runDemo runs the example's demo on an embedded broker.
func runDemo(ctx context.Context, ex Example, cfg runtime.Config, o *options, log *slog.Logger, stdout io.Writer) (err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, DemoTimeout, fmt.Errorf("demo did not finish within %v", DemoTimeout))
	defer cancel()

	dir, err := os.MkdirTemp("", "eddy-"+ex.Name+"-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bcfg := broker.DefaultConfig()
	bcfg.DataDir = filepath.Join(dir, "broker")
	bcfg.Listen = "127.0.0.1:0"
	bcfg.HTTP = ""
	if ex.TopologyWith != nil {
		bcfg.HTTP = "127.0.0.1:0" // the schema registry's listener
	}
	bcfg.Logger = nil
	bcfg.OffsetsTopicPartitions = 1 // one consumer group: keep start-up and shutdown quick
	srv, err := broker.New(bcfg)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("embedded broker: %w", err)
	}
	defer func() {
		if cerr := srv.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("embedded broker: %w", cerr)
		}
	}()
	log.Info("embedded broker started", "addr", srv.Addr())

	var env Env
	if ex.TopologyWith != nil {
		reg, url, err := startRegistry(ctx, srv)
		if err != nil {
			return fmt.Errorf("embedded schema registry: %w", err)
		}
		defer func() {
			if cerr := reg.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("embedded schema registry: %w", cerr)
			}
		}()
		if env, err = registryEnv(url); err != nil {
			return err
		}
		log.Info("schema registry started", "url", url)
	}
	top, err := ex.topology(env)
	if err != nil {
		return err
	}
	demo := ex.Demo
	if ex.DemoWith != nil {
		if demo, err = ex.DemoWith(ctx, env); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}

	cfg.Brokers = []string{srv.Addr()}
	if !o.set["state-dir"] {
		cfg.StateDir = filepath.Join(dir, "state")
	}
	if !o.set["commit-interval"] {
		cfg.CommitInterval = DemoCommitInterval
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr()))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := createTopics(ctx, adm, ex.Topics); err != nil {
		return err
	}

	app, err := runtime.New(top, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := app.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	// waitCtx ends when the demo times out or the application stops.
	waitCtx, stopWaiting := context.WithCancelCause(ctx)
	defer stopWaiting(nil)
	runCtx, stopApp := context.WithCancel(context.Background())
	defer stopApp()
	runErr := make(chan error, 1)
	go func() {
		err := app.Run(runCtx)
		cause := errors.New("application stopped unexpectedly")
		if err != nil {
			cause = fmt.Errorf("application failed: %w", err)
		}
		stopWaiting(cause)
		runErr <- err
	}()
	// stop shuts the application down and returns its error.
	stopped := false
	stop := func() error {
		stopped = true
		stopApp()
		return <-runErr
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()
	fail := func(what string, err error) error {
		if cause := context.Cause(waitCtx); cause != nil {
			err = cause
		}
		return fmt.Errorf("demo: %s: %w", what, err)
	}

	if err := app.WaitRunning(waitCtx); err != nil {
		return fail("starting the application", err)
	}
	log.Info("application running", "app-id", cfg.ApplicationID)

	out, err := newOutputReader(srv.Addr(), demo.Outputs)
	if err != nil {
		return err
	}
	defer out.close()

	produced := map[string]map[int32]int64{} // topic → partition → end offset produced
	for i := range len(demo.Batches) + len(demo.Steps) {
		if i > 0 {
			if err := waitCommitted(waitCtx, adm, cfg.ApplicationID, produced); err != nil {
				return fail("waiting for the application to commit its input", err)
			}
		}
		var batch []Record
		if i < len(demo.Batches) {
			batch = demo.Batches[i]
		} else if batch, err = demo.Steps[i-len(demo.Batches)](waitCtx); err != nil {
			return fail(fmt.Sprintf("demo step %d", i-len(demo.Batches)+1), err)
		}
		if err := produce(waitCtx, cl, batch, produced); err != nil {
			return fail("producing the demo input", err)
		}
	}
	recs, err := out.readUntil(waitCtx, demo.Done, log)
	if err != nil {
		return fail(fmt.Sprintf("reading the results (%d records read, not all expected)", len(recs)), err)
	}
	if err := stop(); err != nil {
		return err
	}
	demo.Print(stdout, recs)
	return nil
}

// createTopics creates topics, each with its partition count and no
// time-based retention; topics that exist already are fine.
//
// Demo records carry fixed event times (2024) as their timestamps, and
// so do windowed results: with the broker's default retention.ms (7 days)
// its retention would delete them before they are read.
func createTopics(ctx context.Context, adm *kadm.Client, topics []Topic) error {
	keep := map[string]*string{"retention.ms": kadm.StringPtr("-1")}
	for _, t := range topics {
		resp, err := adm.CreateTopics(ctx, t.Partitions, 1, keep, t.Name)
		if err != nil {
			return fmt.Errorf("create topic %s: %w", t.Name, err)
		}
		for _, r := range resp {
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
			}
		}
	}
	return nil
}

// produce writes recs and records the end offset of every partition written
// in ends.
func produce(ctx context.Context, cl *kgo.Client, recs []Record, ends map[string]map[int32]int64) error {
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value}
		if r.Timestamp != 0 {
			kr.Timestamp = time.UnixMilli(r.Timestamp)
		}
		krs[i] = kr
	}
	res := cl.ProduceSync(ctx, krs...)
	if err := res.FirstErr(); err != nil {
		return err
	}
	for _, r := range res {
		if ends[r.Record.Topic] == nil {
			ends[r.Record.Topic] = map[int32]int64{}
		}
		if end := r.Record.Offset + 1; end > ends[r.Record.Topic][r.Record.Partition] {
			ends[r.Record.Topic][r.Record.Partition] = end
		}
	}
	return nil
}

// waitCommitted waits until group has committed offsets at or past ends.
func waitCommitted(ctx context.Context, adm *kadm.Client, group string, ends map[string]map[int32]int64) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		offs, err := adm.FetchOffsets(ctx, group)
		if err == nil && covers(offs, ends) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// covers reports whether offs reach ends.
func covers(offs kadm.OffsetResponses, ends map[string]map[int32]int64) bool {
	for t, ps := range ends {
		for p, end := range ps {
			o, ok := offs.Lookup(t, p)
			if !ok || o.Err != nil || o.At < end {
				return false
			}
		}
	}
	return true
}

// outputReader reads output topics from their start.
type outputReader struct {
	cl *kgo.Client
}

// newOutputReader starts reading topics from their start, read committed.
func newOutputReader(addr string, topics []string) (*outputReader, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	return &outputReader{cl: cl}, nil
}

// readUntil reads records until done says the results are complete.
func (r *outputReader) readUntil(ctx context.Context, done func([]Record) bool, log *slog.Logger) ([]Record, error) {
	var out []Record
	for !done(out) {
		fs := r.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, err
		}
		fs.EachError(func(t string, p int32, err error) {
			log.Debug("reading results", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(func(kr *kgo.Record) {
			out = append(out, Record{Topic: kr.Topic, Key: kr.Key, Value: kr.Value, Timestamp: kr.Timestamp.UnixMilli()})
		})
	}
	return out, nil
}

func (r *outputReader) close() { r.cl.Close() }
