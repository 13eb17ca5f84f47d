package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/eddy-streams/eddy/internal/streambench"
	"github.com/eddy-streams/eddy/serde/avro"
)

// perfAvroConfig configures `eddy perf avro`.
type perfAvroConfig struct {
	Records    int
	Keys       int
	Partitions int32
	Registry   string
	WorkDir    string
	// CPUProfile is the path prefix of CPU profiles of the two runs
	// (<prefix>.avro and <prefix>.json); "" writes none.
	CPUProfile string
}

func perfAvroCmd(a *app) *cobra.Command {
	cfg := perfAvroConfig{}
	c := &cobra.Command{
		Use:   "avro",
		Short: "Benchmark the avro-pipeline example's topology: Avro values against JSON values",
		Long: `perf avro measures the topology of examples/avro-pipeline — page views
left-joined with a users table (--keys users) and counted per user, both
results written to output topics — twice in this process, on the same
broker: with JSON values (serde.JSON) and with Avro values in the Confluent
wire format (serde/avro, schemas in a registry). It prints records/s for
both and the ratio Avro/JSON.

It starts eddy's broker as a subprocess of this binary (fresh temporary data
dir) unless --brokers is given, and serves eddy's schema registry in this
process, its schemas in the topic _schemas of that broker, unless
--registry is given. Both inputs are filled before either run; rates count
from the first page view processed to the last enriched view acknowledged
by the broker, so startup and group joins are excluded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPerfAvro(cmd.Context(), a, cmd, cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	f.IntVar(&cfg.Records, "records", 500_000, "page views per run")
	f.IntVar(&cfg.Keys, "keys", 1000, "users (distinct keys)")
	f.Int32Var(&cfg.Partitions, "partitions", 6, "partitions of every topic")
	f.StringVar(&cfg.Registry, "registry", "", "URL of a Confluent-compatible schema registry (default: eddy's, served in this process)")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write CPU profiles of the runs to PREFIX.avro and PREFIX.json (go tool pprof)")
	f.StringVar(&cfg.WorkDir, "work-dir", "", "parent of the temporary directories (default: $TMPDIR)")
	return c
}

func runPerfAvro(ctx context.Context, a *app, cmd *cobra.Command, cfg perfAvroConfig, out, errw io.Writer) error {
	if cfg.Records <= 0 || cfg.Keys <= 0 || cfg.Partitions <= 0 {
		return fmt.Errorf("--records %d, --keys %d, --partitions %d: want positive numbers", cfg.Records, cfg.Keys, cfg.Partitions)
	}
	tmp, err := os.MkdirTemp(cfg.WorkDir, "eddy-perf-avro-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return withPerfBroker(ctx, a, cmd, tmp, func(brokers string, _ int) error {
		return perfAvroOn(ctx, brokers, tmp, cfg, out, errw)
	})
}

func perfAvroOn(ctx context.Context, brokers, tmp string, cfg perfAvroConfig, out, errw io.Writer) (err error) {
	seeds := strings.Split(brokers, ",")
	url := cfg.Registry
	if url == "" {
		var stop func() error
		if url, stop, err = streambench.ServeRegistry(ctx, seeds); err != nil {
			return fmt.Errorf("schema registry: %w", err)
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	reg, err := avro.NewRegistryClient(url)
	if err != nil {
		return err
	}
	base := streambench.Config{Brokers: seeds, Records: cfg.Records, Keys: cfg.Keys, Partitions: cfg.Partitions}
	fmt.Fprintf(out, "eddy perf avro: %d page views, %d users, %d partitions; broker %s, registry %s\n", cfg.Records, cfg.Keys, cfg.Partitions, brokers, url)
	fmt.Fprintf(out, "host: %d CPUs, %s %s/%s\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)

	// Topic names unique per run, so a --brokers cluster can serve
	// several runs.
	prefix := fmt.Sprintf("perf-avro-%d", time.Now().UnixNano())
	formats := []streambench.Format{streambench.JSON, streambench.Avro}
	for _, f := range formats {
		fmt.Fprintf(errw, "== fill %s input\n", f)
		if err := streambench.FillPageViews(ctx, base, f, reg, prefix+"-"+string(f)); err != nil {
			return fmt.Errorf("fill %s: %w", f, err)
		}
	}
	results := map[streambench.Format]streambench.PageViewResult{}
	for _, f := range formats {
		c := base
		c.WorkDir = filepath.Join(tmp, string(f))
		fmt.Fprintf(errw, "== %s pipeline\n", f)
		r, err := perfAvroRun(ctx, c, f, reg, prefix+"-"+string(f), cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("%s pipeline: %w", f, err)
		}
		if r.Unjoined > 0 {
			return fmt.Errorf("%s pipeline: %d page views processed before their user was loaded: the run did less work than it should", f, r.Unjoined)
		}
		fmt.Fprintf(errw, "   %d records in %s: %.0f rec/s\n", r.Records, r.Elapsed.Round(time.Millisecond), r.Rate())
		results[f] = r
	}
	fmt.Fprintf(out, "%-34s %14s %12s\n", "values", "rec/s", "elapsed")
	for _, f := range formats {
		r := results[f]
		fmt.Fprintf(out, "%-34s %14.0f %12s\n", f, r.Rate(), r.Elapsed.Round(time.Millisecond))
	}
	if j := results[streambench.JSON].Rate(); j > 0 {
		fmt.Fprintf(out, "%-34s %13.2fx\n", "ratio avro/json", results[streambench.Avro].Rate()/j)
	}
	return nil
}

// perfAvroRun measures one format, with a CPU profile to prefix.<format>
// if prefix is set.
func perfAvroRun(ctx context.Context, c streambench.Config, f streambench.Format, reg avro.Registry, topics, prefix string) (streambench.PageViewResult, error) {
	if prefix != "" {
		pf, err := os.Create(prefix + "." + string(f))
		if err != nil {
			return streambench.PageViewResult{}, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return streambench.PageViewResult{}, err
		}
		defer pprof.StopCPUProfile()
	}
	return streambench.EddyPageViews(ctx, c, f, reg, topics)
}
