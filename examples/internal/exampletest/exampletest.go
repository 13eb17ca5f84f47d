// Package exampletest runs examples as worker processes against an
// in-process broker, for the examples' tests.
//
// A test package's TestMain calls Main, which builds the package's example
// binary once and removes it after the tests; tests get its path from
// Binary, start a broker with Broker and workers with Start.
package exampletest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eddy-streams/eddy/broker"
)

var (
	binDir   string
	binPath  string
	buildErr error
	once     sync.Once
)

// Main runs m's tests with a temporary directory for the example binary and
// exits with their status.
func Main(m *testing.M) {
	d, err := os.MkdirTemp("", "eddy-example-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// Binary builds the example in the current directory (the test's package)
// once and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if binDir == "" {
			buildErr = errors.New("exampletest.Binary: TestMain must call exampletest.Main")
			return
		}
		wd, err := os.Getwd()
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(binDir, filepath.Base(wd))
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// RunDemo runs the example's binary (see Binary) without flags and without
// EDDY_BROKERS, so as its demo, in a temporary directory, and returns what
// it printed. The demo must leave its working directory empty. Its failure fails the test with both its outputs; its
// output and duration are logged.
func RunDemo(t testing.TB) string {
	t.Helper()
	bin := Binary(t)
	start := time.Now()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "EDDY_BROKERS=")
	cmd.Dir = t.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), err, out, stderr.String())
	}
	t.Logf("demo took %v:\n%s", time.Since(start), out)
	if entries, _ := os.ReadDir(cmd.Dir); len(entries) != 0 {
		t.Errorf("the demo left files in its working directory: %v", entries)
	}
	return string(out)
}

// Broker starts an in-process broker on a free port, closed when the test
// ends, and returns its address.
func Broker(t testing.TB) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.HTTP = t.TempDir(), "127.0.0.1:0", ""
	srv, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr()
}

// Client returns a franz-go client of addr, closed when the test ends, with
// opts (consumers read committed).
func Client(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates topic with partitions partitions.
func CreateTopic(t testing.TB, addr, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(Client(t, addr)).CreateTopics(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// Produce writes recs and waits for their acknowledgements.
func Produce(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// WaitGroupMembers waits until group is stable with n members.
func WaitGroupMembers(t testing.TB, addr, group string, n int, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(Client(t, addr))
	var last string
	Poll(t, timeout, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gs, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			last = err.Error()
			return false
		}
		g := gs[group]
		last = fmt.Sprintf("state %s, %d members", g.State, len(g.Members))
		return g.Err == nil && g.State == "Stable" && len(g.Members) == n
	}, func() string { return fmt.Sprintf("group %s with %d members (last: %s)", group, n, last) })
}

// Poll calls cond every 20 ms until it returns true, failing the test with
// what() after timeout.
func Poll(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what())
		}
		<-tick.C
	}
}

// Reader reads topics from their start and keeps every record read.
type Reader struct {
	cl   *kgo.Client
	recs []*kgo.Record
}

// NewReader starts reading topics (read committed) from their start.
func NewReader(t testing.TB, addr string, topics ...string) *Reader {
	t.Helper()
	return &Reader{cl: Client(t, addr, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))}
}

// Records returns every record read so far, in the order read.
func (r *Reader) Records() []*kgo.Record { return r.recs }

// Latest returns the value of the last record read per key of topic.
func (r *Reader) Latest(topic string) map[string][]byte {
	m := map[string][]byte{}
	for _, rec := range r.recs {
		if rec.Topic == topic {
			m[string(rec.Key)] = rec.Value
		}
	}
	return m
}

// WaitFor reads until cond holds, failing the test with what() after
// timeout. cond is called after every fetch, and at least every 250 ms.
func (r *Reader) WaitFor(t testing.TB, timeout time.Duration, cond func(*Reader) bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond(r) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		fs := r.cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(rec *kgo.Record) { r.recs = append(r.recs, rec) })
	}
}

// Worker is an example process.
type Worker struct {
	Name string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
	err  error // the exit status, once done is closed
}

// Start starts the example binary bin with args; the process is killed when
// the test ends if it still runs. Its stdout and stderr are kept for
// Output, and logged if the test fails.
func Start(t testing.TB, name, bin string, args ...string) *Worker {
	t.Helper()
	w := &Worker{Name: name, done: make(chan struct{})}
	w.cmd = exec.Command(bin, args...)
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, w.Output())
		}
	})
	return w
}

// CheckRunning fails the test if the process has exited.
func (w *Worker) CheckRunning(t testing.TB) {
	t.Helper()
	select {
	case <-w.done:
		t.Fatalf("%s exited: %v\n%s", w.Name, w.err, w.Output())
	default:
	}
}

// Output returns what the process wrote so far.
func (w *Worker) Output() string { return w.out.String() }

// Wait waits up to timeout for the process to exit and returns its exit
// status (nil for 0).
func (w *Worker) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-w.done:
		return w.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v", w.Name, timeout)
		return nil
	}
}

// Stop sends SIGTERM and checks that the process exits with status 0 within
// timeout.
func (w *Worker) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", w.Name, err)
	}
	if err := w.Wait(t, timeout); err != nil {
		t.Fatalf("%s after SIGTERM: %v\n%s", w.Name, err, w.Output())
	}
}

// metricsURL finds the metrics URL a worker started with --metrics and
// --log-level info logs.
var metricsURL = regexp.MustCompile(`msg="serving metrics" url=(\S+)`)

// Metrics scrapes the metrics of w, a worker started with --metrics and
// --log-level info, and returns them in the Prometheus text format.
func Metrics(t testing.TB, w *Worker) string {
	t.Helper()
	var url string
	Poll(t, 30*time.Second, func() bool {
		if m := metricsURL.FindStringSubmatch(w.Output()); m != nil {
			url = m[1]
		}
		return url != ""
	}, func() string { return w.Name + " logging its metrics address" })
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// MetricSum adds up the samples in text (the Prometheus text format) whose
// series starts with prefix (a metric name, or a name and the first
// labels).
func MetricSum(text, prefix string) float64 {
	var sum float64
	for _, l := range strings.Split(text, "\n") {
		series, value, ok := strings.Cut(l, " ")
		if !ok || !strings.HasPrefix(series, strings.TrimSuffix(prefix, "}")) {
			continue
		}
		if rest := series[len(strings.TrimSuffix(prefix, "}")):]; rest != "" && !strings.HasPrefix(rest, "{") && !strings.HasPrefix(rest, ",") && rest != "}" {
			continue // a longer metric name
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			sum += v
		}
	}
	return sum
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
