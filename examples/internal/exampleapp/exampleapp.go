// Package exampleapp is the main of every eddy example: the flags they share
// and their two ways of running.
//
// Without --brokers (and without EDDY_BROKERS) an example runs as a demo: it
// starts an embedded broker in-process on a free port, creates the example's
// topics, starts the application, produces the example's demo input, reads
// the output topics until the expected results have all arrived, prints them
// and exits. Everything lives in a temporary directory removed at exit.
//
// With --brokers the example is a worker of application --app-id on that
// cluster and runs until SIGINT or SIGTERM, then shuts down gracefully
// (finishing in-flight work, committing, closing its stores, leaving the
// group). Several copies share the input partitions.
//
// An example that uses a schema registry sets Example.TopologyWith: its
// demo broker serves eddy's registry on its HTTP listener, its workers
// take --registry, and its topology (and, with DemoWith, its demo) get an
// Env with a registry client.
//
// A main package describes its example with an Example and calls Main:
//
//	func main() { exampleapp.Main(example()) }
package exampleapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/runtime"
	"github.com/eddy-streams/eddy/serde/avro"
	"github.com/eddy-streams/eddy/stream"
)

// Topic is a topic an example reads or writes, with the partition count the
// demo creates it with.
type Topic struct {
	Name       string
	Partitions int32
}

// Record is one record of demo input or output.
type Record struct {
	Topic string
	// Key and Value are the record's bytes; nil is null.
	Key, Value []byte
	// Timestamp is the record timestamp in epoch milliseconds; 0 on input
	// means "now".
	Timestamp int64
}

// Demo is an example's demo run: its input, and how to tell that the
// results are complete and print them.
type Demo struct {
	// Batches of input records, produced in order. Before each batch after
	// the first, the demo waits until the application has committed every
	// record of the earlier batches, so that (for instance) a table is
	// loaded before the stream that joins it arrives.
	Batches [][]Record
	// Outputs are the topics the demo reads, from their start.
	Outputs []string
	// Done reports whether out, every output record read so far in the
	// order read, holds all the expected results.
	Done func(out []Record) bool
	// Print writes the demo's input and results to w in a stable,
	// readable form.
	Print func(w io.Writer, out []Record)
	// Steps, when set, make more batches, produced after Batches: each
	// is called when its batch is due (after the wait described for
	// Batches), so it can act on the running application's surroundings
	// first — register a new schema version, say — and returns the
	// batch's records.
	Steps []func(ctx context.Context) ([]Record, error)
}

// Env is what the runner gives an example that uses a schema registry
// (one that sets Example.TopologyWith).
type Env struct {
	// Registry is a client of the schema registry: in the demo, eddy's
	// registry served by the embedded broker; for a worker, the registry
	// at --registry.
	Registry avro.Registry
	// RegistryURL is the registry's base URL.
	RegistryURL string
}

// Example describes a runnable example.
type Example struct {
	// Name is the program name and the default application id.
	Name string
	// Summary is one line for the usage message.
	Summary string
	// Topics are the example's input and output topics; the demo creates
	// them. Workers expect them to exist.
	Topics []Topic
	// Topology builds the example's topology.
	Topology func() (*stream.Topology, error)
	// TopologyWith, when set, builds the topology instead of Topology,
	// with a schema registry: the example gets a --registry flag (default
	// $EDDY_REGISTRY, else DefaultRegistryURL) for its workers, and its
	// demo serves eddy's registry on the embedded broker's HTTP listener.
	TopologyWith func(env Env) (*stream.Topology, error)
	// Demo is the demo run.
	Demo Demo
	// DemoWith, when set, builds the demo run instead of Demo, once the
	// embedded broker is up, and its registry if TopologyWith is set (env
	// is empty otherwise): for input that needs the registry (Avro
	// records carry schema ids) and output decoded with it.
	DemoWith func(ctx context.Context, env Env) (Demo, error)
}

// DefaultRegistryURL is the --registry default when $EDDY_REGISTRY is not
// set: eddy's broker, or Confluent Schema Registry, on this host.
const DefaultRegistryURL = "http://127.0.0.1:8081"

// Defaults of the common flags.
const (
	// DefaultCommitInterval is the workers' commit interval: shorter than
	// the runtime's 30 s so that an example's results show up promptly.
	DefaultCommitInterval = time.Second
	// DemoCommitInterval is the commit interval of a demo run.
	DemoCommitInterval = 200 * time.Millisecond
	// DefaultMemoryLimit is the workers' Go soft memory limit: it keeps a
	// worker with 12 tasks within 256 MiB resident (see runtime's
	// "Memory").
	DefaultMemoryLimit = 192 << 20
	// DemoTimeout bounds a demo run.
	DemoTimeout = 60 * time.Second
)

// options are the parsed common flags.
type options struct {
	brokers        string
	appID          string
	stateDir       string
	guarantee      string
	metrics        string
	threads        int
	standbys       int
	commitInterval time.Duration
	logLevel       string
	deadLetter     string
	memoryLimit    int64
	sessionTimeout time.Duration
	registry       string          // --registry, for examples with TopologyWith
	set            map[string]bool // flags given on the command line
}

// parseFlags parses args into options; it returns flag.ErrHelp for -h.
func parseFlags(ex Example, args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet(ex.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.brokers, "brokers", os.Getenv("EDDY_BROKERS"),
		"comma-separated bootstrap brokers host:port (env EDDY_BROKERS); empty: run the demo on an embedded broker")
	fs.StringVar(&o.appID, "app-id", ex.Name, "application id: the consumer group and the prefix of internal topics")
	fs.StringVar(&o.stateDir, "state-dir", runtime.DefaultStateDir, "directory of the state stores (the demo uses a temporary one unless this is set)")
	fs.StringVar(&o.guarantee, "guarantee", string(runtime.AtLeastOnce), "processing guarantee: at_least_once or exactly_once")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics and interactive queries at http://ADDR/stores (e.g. 127.0.0.1:9100; the other workers forward queries to ADDR)")
	fs.IntVar(&o.threads, "threads", 1, "number of stream threads")
	fs.IntVar(&o.standbys, "standbys", 0, "number of standby replicas of each task's stores (num.standby.replicas)")
	fs.DurationVar(&o.commitInterval, "commit-interval", DefaultCommitInterval,
		fmt.Sprintf("commit interval (the demo uses %v unless this is set)", DemoCommitInterval))
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level: debug, info, warn, error (the demo logs errors only unless this is set)")
	fs.StringVar(&o.deadLetter, "dead-letter-topic", "",
		"skip records that cannot be deserialized or processed and write them to this topic, with the error in headers (default: fail)")
	fs.Int64Var(&o.memoryLimit, "memory-limit", DefaultMemoryLimit,
		"Go soft memory limit in bytes (like the JVM's -Xmx; ignored when GOMEMLIMIT is set; 0: Go's default)")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", 0,
		"consumer group session and rebalance timeout: how long the group waits for a silent worker before moving its tasks (0: franz-go's defaults, 45s and 60s; the broker's minimum is 6s)")
	if ex.TopologyWith != nil {
		def := os.Getenv("EDDY_REGISTRY")
		if def == "" {
			def = DefaultRegistryURL
		}
		fs.StringVar(&o.registry, "registry", def,
			"schema registry URL of the workers (env EDDY_REGISTRY); the demo serves eddy's registry on its embedded broker")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s: %s\n\nUsage: %s [flags]\n\n", ex.Name, ex.Summary, ex.Name)
		fmt.Fprintf(fs.Output(), "Without --brokers it runs a demo on an embedded broker and prints the results;\n")
		fmt.Fprintf(fs.Output(), "with --brokers it is a worker of application --app-id until SIGINT/SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// Main runs the example with the process's arguments, SIGINT and SIGTERM
// cancelling it, and exits: 0 on success (including a graceful shutdown on
// a signal), 1 with the error on stderr otherwise, 2 for bad flags.
func Main(ex Example) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, ex, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "%s: %v\n", ex.Name, err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "%s: %v\n", ex.Name, err)
		os.Exit(1)
	}
}

// errUsage wraps errors in the command line.
var errUsage = errors.New("usage")

// Run runs the example with command-line args: the demo without brokers,
// else a worker until ctx is cancelled. Results go to stdout, logs to
// stderr.
func Run(ctx context.Context, ex Example, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(ex, args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	if len(splitBrokers(o.brokers)) == 0 && !o.set["log-level"] {
		level = slog.LevelError // the demo prints its results, not the runtime's warnings
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if o.memoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(o.memoryLimit)
	}

	cfg := o.config(log)
	queries := &queryMount{}
	if o.metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer = reg
		addr, stopMetrics, err := serveMetrics(o.metrics, reg, queries, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
		// The other workers forward queries for the keys this one owns
		// to this server.
		cfg.ApplicationServer = addr
	}
	if len(cfg.Brokers) == 0 {
		return runDemo(ctx, ex, cfg, o, log, stdout)
	}
	var env Env
	if ex.TopologyWith != nil {
		if env, err = registryEnv(o.registry); err != nil {
			return fmt.Errorf("%w: --registry: %v", errUsage, err)
		}
	}
	top, err := ex.topology(env)
	if err != nil {
		return err
	}
	return runWorker(ctx, top, cfg, queries, log)
}

// topology builds the example's topology, with env if it uses a
// registry.
func (ex Example) topology(env Env) (*stream.Topology, error) {
	if ex.TopologyWith != nil {
		return ex.TopologyWith(env)
	}
	return ex.Topology()
}

// registryEnv returns the Env of the registry at url.
func registryEnv(url string) (Env, error) {
	reg, err := avro.NewRegistryClient(url)
	if err != nil {
		return Env{}, err
	}
	return Env{Registry: reg, RegistryURL: url}, nil
}

// queryMount serves the interactive queries of an App created after the
// HTTP server started; 503 until then.
type queryMount struct{ h atomic.Pointer[http.Handler] }

// set makes m serve app's queries.
func (m *queryMount) set(app *runtime.App) {
	h := app.QueryHandler()
	m.h.Store(&h)
}

func (m *queryMount) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := m.h.Load()
	if h == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"the worker is starting"}`+"\n")
		return
	}
	(*h).ServeHTTP(w, r)
}

// config returns the runtime configuration the flags ask for.
func (o *options) config(log *slog.Logger) runtime.Config {
	cfg := runtime.DefaultConfig(o.appID, splitBrokers(o.brokers)...)
	cfg.StateDir = o.stateDir
	cfg.NumStreamThreads = o.threads
	cfg.NumStandbyReplicas = o.standbys
	cfg.CommitInterval = o.commitInterval
	cfg.Guarantee = runtime.Guarantee(o.guarantee)
	cfg.Logger = log
	if o.sessionTimeout > 0 {
		cfg.ClientOptions = append(cfg.ClientOptions, kgo.SessionTimeout(o.sessionTimeout), kgo.RebalanceTimeout(o.sessionTimeout))
	}
	if o.deadLetter != "" {
		cfg.Errors = stream.ErrorHandlers{
			Deserialization: stream.LogAndContinue,
			Processing:      stream.LogAndContinue,
			DeadLetterTopic: o.deadLetter,
		}
	}
	return cfg
}

// splitBrokers splits a comma list, dropping empty entries.
func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// serveMetrics serves reg at http://addr/metrics, and queries (the
// interactive queries) at http://addr/stores, until the returned func is
// called. It returns the address it listens on.
func serveMetrics(addr string, reg *prometheus.Registry, queries http.Handler, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/stores", queries)
	mux.Handle("/stores/", queries)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	log.Info("serving interactive queries", "url", "http://"+ln.Addr().String()+"/stores")
	return ln.Addr().String(), func() {
		srv.Close()
		<-done
	}, nil
}

// runWorker runs the application until ctx is cancelled.
func runWorker(ctx context.Context, top *stream.Topology, cfg runtime.Config, queries *queryMount, log *slog.Logger) error {
	app, err := runtime.New(top, cfg)
	if err != nil {
		return err
	}
	queries.set(app)
	log.Info("worker starting", "app-id", cfg.ApplicationID, "brokers", strings.Join(cfg.Brokers, ","))
	runErr := app.Run(ctx)
	closeErr := app.Close()
	if runErr != nil {
		return runErr
	}
	if closeErr != nil {
		return closeErr
	}
	log.Info("worker stopped")
	return nil
}
