package streambench

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/runtime"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
)

// CountWorkerConfig configures RunCountWorker.
type CountWorkerConfig struct {
	// Brokers, ApplicationID, StateDir, Guarantee and CommitInterval (0:
	// the guarantee's default) are the runtime's.
	Brokers        []string
	ApplicationID  string
	StateDir       string
	Guarantee      runtime.Guarantee
	CommitInterval time.Duration
	// Topic is the input, filled by Fill.
	Topic string
	// Threads: stream threads. Default 1.
	Threads int
	// SessionTimeout of the group member (0: franz-go's, 45 s). A worker
	// restarted after a kill -9 joins a group whose dead member stays
	// until its session times out; the join waits for that.
	SessionTimeout time.Duration
	// ProgressInterval between "processed" events. Default 50 ms.
	ProgressInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// WorkerEvent is what RunCountWorker reports, times since it started.
type WorkerEvent struct {
	// Event: "assigned" (the first assignment arrived), "running" (every
	// active task restored and processing, App.WaitRunning) or
	// "processed" (progress).
	Event string `json:"event"`
	// Assigned and Running: when those happened (0 if not yet).
	Assigned time.Duration `json:"assigned_ns"`
	Running  time.Duration `json:"running_ns"`
	// Tasks: active tasks at the event.
	Tasks int `json:"tasks"`
	// Restored: changelog records restored
	// (eddy_streams_restored_records_total).
	Restored int64 `json:"restored"`
	// Processed: input records processed by this process.
	Processed int64 `json:"processed"`
}

// RunCountWorker runs a count per key of cfg.Topic (groupByKey → count,
// store "counts", logged) until ctx ends, reporting through emit (called
// from one goroutine at a time): "assigned" and "running" once each, then
// "processed" every cfg.ProgressInterval. It is the worker `eddy perf eos`
// kills with SIGKILL and restarts.
func RunCountWorker(ctx context.Context, cfg CountWorkerConfig, emit func(WorkerEvent)) error {
	if cfg.Threads == 0 {
		cfg.Threads = 1
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 50 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	start := time.Now()
	var processed atomic.Int64
	b := stream.NewBuilder()
	stream.Stream(b, stream.With(serde.Bytes(), serde.Bytes()), cfg.Topic).
		Peek(func([]byte, []byte) { processed.Add(1) }).
		GroupByKey(stream.Grouped[[]byte, []byte]{}).
		Count(stream.Materialized[[]byte, int64]{Name: "counts"})
	top, err := b.Build()
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	rc := runtime.DefaultConfig(cfg.ApplicationID, cfg.Brokers...)
	rc.StateDir = cfg.StateDir
	rc.NumStreamThreads = cfg.Threads
	rc.Guarantee = cfg.Guarantee
	rc.CommitInterval = cfg.CommitInterval
	rc.Logger = cfg.Logger
	rc.Registerer = reg
	if cfg.SessionTimeout > 0 {
		rc.ClientOptions = append(rc.ClientOptions, kgo.SessionTimeout(cfg.SessionTimeout))
	}
	app, err := runtime.New(top, rc)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx) }()

	ev := WorkerEvent{}
	fill := func(name string) WorkerEvent {
		active, _ := app.Tasks()
		ev.Event, ev.Tasks = name, len(active)
		ev.Restored = int64(GatherSum(reg, "eddy_streams_restored_records_total"))
		ev.Processed = processed.Load()
		return ev
	}
	// Poll for the first assignment (a millisecond apart) until running.
	running := make(chan error, 1)
	go func() { running <- app.WaitRunning(ctx) }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err := <-running:
			if err != nil {
				return errors.Join(err, <-errc)
			}
			break wait
		case err := <-errc:
			return err
		case <-tick.C:
			if ev.Assigned == 0 {
				if active, _ := app.Tasks(); len(active) > 0 {
					ev.Assigned = time.Since(start)
					emit(fill("assigned"))
				}
			}
		}
	}
	ev.Running = time.Since(start)
	if ev.Assigned == 0 {
		ev.Assigned = ev.Running
		emit(fill("assigned"))
	}
	emit(fill("running"))
	tick.Reset(cfg.ProgressInterval)
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
			emit(fill("processed"))
		}
	}
}
