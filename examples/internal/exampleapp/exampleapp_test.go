package exampleapp

import (
	"context"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/runtime"
	"github.com/eddy-streams/eddy/stream"
)

var testExample = Example{
	Name:     "test",
	Summary:  "a test",
	Topology: func() (*stream.Topology, error) { return nil, errors.New("not built") },
}

func TestFlagsConfig(t *testing.T) {
	t.Setenv("EDDY_BROKERS", "")
	o, err := parseFlags(testExample, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.config(nil)
	if cfg.ApplicationID != "test" || len(cfg.Brokers) != 0 || cfg.StateDir != runtime.DefaultStateDir ||
		cfg.Guarantee != runtime.AtLeastOnce || cfg.CommitInterval != DefaultCommitInterval ||
		cfg.NumStreamThreads != 1 || cfg.NumStandbyReplicas != 0 || cfg.Errors.DeadLetterTopic != "" || cfg.Errors.Deserialization != nil {
		t.Errorf("defaults: %+v", cfg)
	}

	t.Setenv("EDDY_BROKERS", "h1:9092, h2:9092,")
	o, err = parseFlags(testExample, []string{"--app-id", "a", "--state-dir", "/s", "--guarantee", "exactly_once",
		"--threads", "3", "--standbys", "1", "--commit-interval", "5s", "--dead-letter-topic", "dlq"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg = o.config(nil)
	if !reflect.DeepEqual(cfg.Brokers, []string{"h1:9092", "h2:9092"}) || cfg.ApplicationID != "a" || cfg.StateDir != "/s" ||
		cfg.Guarantee != runtime.ExactlyOnce || cfg.NumStreamThreads != 3 || cfg.NumStandbyReplicas != 1 ||
		cfg.CommitInterval != 5*time.Second || cfg.Errors.DeadLetterTopic != "dlq" ||
		cfg.Errors.Deserialization == nil || cfg.Errors.Processing == nil {
		t.Errorf("flags: %+v", cfg)
	}
	if !o.set["state-dir"] || o.set["metrics"] {
		t.Errorf("set flags: %v", o.set)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}

	o, err = parseFlags(testExample, []string{"--brokers", "x:1"}, io.Discard)
	if err != nil || !reflect.DeepEqual(o.config(nil).Brokers, []string{"x:1"}) {
		t.Errorf("--brokers over EDDY_BROKERS: %v %v", o, err)
	}
}

func TestFlagsSessionTimeout(t *testing.T) {
	o, err := parseFlags(testExample, []string{"--brokers", "x:1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(o.config(nil).ClientOptions); n != 0 {
		t.Errorf("no --session-timeout: %d client options, want 0", n)
	}
	o, err = parseFlags(testExample, []string{"--brokers", "x:1", "--session-timeout", "7s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.config(nil)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers("127.0.0.1:1"), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t")},
		cfg.ClientOptions...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.OptValue(kgo.SessionTimeout); got != 7*time.Second {
		t.Errorf("SessionTimeout = %v, want 7s", got)
	}
	if got := cl.OptValue(kgo.RebalanceTimeout); got != 7*time.Second {
		t.Errorf("RebalanceTimeout = %v, want 7s", got)
	}
}

func TestRunBadCommandLine(t *testing.T) {
	ctx := context.Background()
	var stderr strings.Builder
	if err := Run(ctx, testExample, []string{"-h"}, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) ||
		!strings.Contains(stderr.String(), "-brokers string") || !strings.Contains(stderr.String(), "-memory-limit int") {
		t.Errorf("-h: %v\n%s", err, stderr.String())
	}
	for _, args := range [][]string{{"--nope"}, {"extra"}, {"--log-level", "loud"}, {"--threads", "x"}} {
		if err := Run(ctx, testExample, args, io.Discard, io.Discard); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	// A topology error is reported as it is.
	if err := Run(ctx, testExample, []string{"--brokers", "127.0.0.1:1"}, io.Discard, io.Discard); err == nil || err.Error() != "not built" {
		t.Errorf("topology error: %v", err)
	}
}

// TestRegistryFlag checks --registry: only examples with TopologyWith have
// it, its default comes from EDDY_REGISTRY or DefaultRegistryURL, and a
// worker's topology gets a client of it.
func TestRegistryFlag(t *testing.T) {
	ctx := context.Background()
	if err := Run(ctx, testExample, []string{"--registry", "http://x"}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Errorf("--registry without TopologyWith: %v, want a usage error", err)
	}
	var got Env
	ex := testExample
	ex.TopologyWith = func(env Env) (*stream.Topology, error) {
		got = env
		return nil, errors.New("not built")
	}
	for _, c := range []struct{ env, flag, want string }{
		{"", "", DefaultRegistryURL},
		{"http://env:8081", "", "http://env:8081"},
		{"http://env:8081", "http://flag:8081", "http://flag:8081"},
	} {
		t.Setenv("EDDY_REGISTRY", c.env)
		args := []string{"--brokers", "127.0.0.1:1"}
		if c.flag != "" {
			args = append(args, "--registry", c.flag)
		}
		got = Env{}
		if err := Run(ctx, ex, args, io.Discard, io.Discard); err == nil || err.Error() != "not built" {
			t.Errorf("%+v: %v, want the topology's error", c, err)
		}
		if got.RegistryURL != c.want || got.Registry == nil {
			t.Errorf("%+v: topology got %+v, want a registry at %s", c, got, c.want)
		}
	}
	var stderr strings.Builder
	if err := Run(ctx, ex, []string{"-h"}, io.Discard, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "-registry string") {
		t.Errorf("-h: %v\n%s", err, stderr.String())
	}
}
