package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eddy-streams/eddy/broker"
)

// runMainEnv makes the test binary behave as the eddy binary, so that
// commands which start eddy subprocesses (perf compare) can be tested.
const runMainEnv = "EDDY_TEST_RUN_MAIN"

// targetEnv selects the cluster the tests run against: "kfake" (default,
// franz-go's in-process fake Kafka, which proves the CLI is a plain Kafka
// client) or "eddy" (eddy's own broker, in-process on a temporary data dir).
const targetEnv = "EDDY_CLI_TEST_TARGET"

// testBrokers is the seed list of the cluster every test talks to, and
// testTarget its kind.
var testBrokers, testTarget string

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	testTarget = os.Getenv(targetEnv)
	switch testTarget {
	case "", "kfake":
		testTarget = "kfake"
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "kfake:", err)
			return 1
		}
		defer c.Close()
		testBrokers = strings.Join(c.ListenAddrs(), ",")
	case "eddy":
		dir, err := os.MkdirTemp("", "eddy-cli-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		cfg := broker.DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.HTTP = dir, "127.0.0.1:0", ""
		cfg.AutoCreateTopics = false // like kfake, so both targets behave alike
		srv, err := broker.New(cfg)
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "eddy broker:", err)
			return 1
		}
		defer srv.Close()
		testBrokers = srv.Addr()
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want kfake or eddy\n", targetEnv, testTarget)
		return 1
	}
	return m.Run()
}

// run executes one eddy command line in-process against the test cluster.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return runCtx(ctx, stdin, args...)
}

func runCtx(ctx context.Context, stdin string, args ...string) (string, string, error) {
	return runAt(ctx, testBrokers, stdin, args...)
}

// runAt executes one eddy command line in-process against brokers.
func runAt(ctx context.Context, brokers, stdin string, args ...string) (string, string, error) {
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"--brokers", brokers}, args...))
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// mustRun is run that fails the test on error.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, stdin, args...)
	if err != nil {
		t.Fatalf("eddy %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

var topicSeq atomic.Int64

// newTopic returns a topic name unique in this test binary run.
func newTopic(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), topicSeq.Add(1))
}
