package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// defaultBrokers is the seed broker list used when neither --brokers nor
// EDDY_BROKERS is given.
const defaultBrokers = "127.0.0.1:9092"

// brokersEnv names the environment variable that supplies the default for
// --brokers.
const brokersEnv = "EDDY_BROKERS"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling so that a second
	// SIGINT kills a shutdown that hangs.
	context.AfterFunc(ctx, stop)
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "eddy:", err)
		stop()
		os.Exit(1)
	}
}

// app holds the global flags shared by every command.
type app struct {
	brokers  string
	logLevel string

	// clientLog receives franz-go's client logs: at --log-level when that
	// flag is given, else only warnings and errors. Set before RunE.
	clientLog *slog.Logger
}

// commands lists constructors of the top-level subcommands; each command file
// registers its constructor from init so that the tree is built in one place.
var commands []func(a *app) *cobra.Command

// newRootCmd builds a fresh command tree. Tests call it once per invocation
// so that no flag state leaks between runs.
func newRootCmd() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "eddy",
		Short:         "eddy: a Kafka-compatible broker and the Kafka client tools to use it",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	brokers := os.Getenv(brokersEnv)
	if brokers == "" {
		brokers = defaultBrokers
	}
	root.PersistentFlags().StringVar(&a.brokers, "brokers", brokers, "comma-separated seed brokers host:port (env "+brokersEnv+")")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		lvl := a.logLevel
		if !cmd.Flags().Changed("log-level") {
			lvl = "warn"
		}
		l, err := (&app{logLevel: lvl}).logger(cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		a.clientLog = l
		return nil
	}
	for _, c := range commands {
		root.AddCommand(c(a))
	}
	return root
}

// logger returns a text slog.Logger on w at the configured --log-level.
func (a *app) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", a.logLevel)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

// seeds splits the --brokers list.
func (a *app) seeds() ([]string, error) {
	var out []string
	for s := range strings.SplitSeq(a.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--brokers is empty")
	}
	return out, nil
}

// client returns a franz-go client for the configured brokers with the
// extra options appended.
func (a *app) client(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := a.seeds()
	if err != nil {
		return nil, err
	}
	all := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID("eddy-cli")}
	if a.clientLog != nil {
		all = append(all, kgo.WithLogger(kgoLogger{a.clientLog}))
	}
	all = append(all, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// admin returns an admin client; closing the returned kadm.Client closes the
// underlying kgo.Client.
func (a *app) admin() (*kadm.Client, error) {
	cl, err := a.client()
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// parseKV parses "k=v" pairs into a map (later duplicates win).
func parseKV(pairs []string, what string) (map[string]string, error) {
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid %s %q: want key=value", what, p)
		}
		m[k] = v
	}
	return m, nil
}

// isTerminal reports whether w is an *os.File attached to a character device
// (a terminal), which is when live progress is worth drawing.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so a reader polling for path never sees a partial write.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// kgoLogger adapts a slog.Logger to franz-go's kgo.Logger.
type kgoLogger struct{ l *slog.Logger }

// Level reports the most verbose kgo level the slog handler accepts.
func (k kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case k.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case k.l.Enabled(ctx, slog.LevelInfo):
		return kgo.LogLevelInfo
	case k.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

// Log forwards one kgo log line.
func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelError
	switch level {
	case kgo.LogLevelDebug:
		lvl = slog.LevelDebug
	case kgo.LogLevelInfo:
		lvl = slog.LevelInfo
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	}
	k.l.Log(context.Background(), lvl, msg, keyvals...)
}
