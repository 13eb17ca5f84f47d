package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestBrokerCommand runs `eddy broker` in-process on a random port, drives it
// with the client commands, stops it (as SIGINT would), restarts it on the
// same data dir and checks the records are still there.
func TestBrokerCommand(t *testing.T) {
	dir := t.TempDir()
	start := func() (addr string, stop func()) {
		ready := filepath.Join(t.TempDir(), "addr")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, _, err := runAt(ctx, "unused:1", "", "broker", "--data-dir", dir, "--listen", "127.0.0.1:0",
				"--http", "", "--ready-file", ready, "--log-level", "warn", "--default-partitions", "2", "--retention-ms", "-1")
			done <- err
		}()
		deadline := time.Now().Add(20 * time.Second)
		for {
			if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
				addr = strings.TrimSpace(string(b))
				break
			}
			select {
			case err := <-done:
				t.Fatalf("broker exited before ready: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("broker not ready")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return addr, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("broker: %v", err)
			}
		}
	}
	addr, stop := start()
	ctx := context.Background()
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, err := runAt(ctx, addr, stdin, args...)
		if err != nil {
			t.Fatalf("eddy %v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
	// Auto-created with --default-partitions 2.
	must("a:1\nb:2\nc:3\n", "produce", "auto", "-K", ":")
	// --retention-ms became a broker-wide topic default.
	if out := must("", "topic", "describe", "auto"); !strings.Contains(out, "PARTITIONS  2") ||
		!containsLine(out, "retention.ms", "-1", "static_broker_config") {
		t.Fatalf("auto-created topic:\n%s", out)
	}
	if out := must("", "consume", "auto", "-e", "-f", `%k=%v\n`, "-G", "g1"); len(strings.Fields(out)) != 3 {
		t.Fatalf("consume: %q", out)
	}
	stop()

	addr, stop = start()
	defer stop()
	if out := must("", "consume", "auto", "-e", "-f", `%k=%v\n`); len(strings.Fields(out)) != 3 {
		t.Fatalf("after restart: %q", out)
	}
	if out := must("", "group", "describe", "g1"); !strings.Contains(out, "TOTAL-LAG    0") || !containsLine(out, "auto") {
		t.Fatalf("committed offsets lost across restart:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe to write and read concurrently.
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

// brokerProc is an `eddy broker` command running in-process.
type brokerProc struct {
	addr   string      // Kafka address
	logs   *syncBuffer // its stderr
	cancel context.CancelFunc
	done   chan error
}

// startBrokerCmd runs `eddy broker` on dir with HTTP on a random port and
// the extra args, and waits until it is ready (its ready file written).
func startBrokerCmd(t *testing.T, dir string, args ...string) *brokerProc {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	p := &brokerProc{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	root := newRootCmd()
	root.SetOut(io.Discard)
	root.SetErr(p.logs)
	root.SetArgs(append([]string{"broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--ready-file", ready, "--log-level", "info"}, args...))
	go func() { p.done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil && len(b) > 0 {
			p.addr = strings.TrimSpace(string(b))
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("broker exited before ready: %v\n%s", err, p.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not ready:\n%s", p.logs)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

// stop cancels the command, as SIGINT would, and waits for it (once).
func (p *brokerProc) stop(t *testing.T) {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	if err := <-p.done; err != nil {
		t.Errorf("broker: %v", err)
	}
}

// logValue returns the value of key in the first log line containing msg.
func (p *brokerProc) logValue(t *testing.T, msg, key string) string {
	t.Helper()
	for line := range strings.SplitSeq(p.logs.String(), "\n") {
		if !strings.Contains(line, msg) {
			continue
		}
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				return strings.Trim(v, `"`)
			}
		}
	}
	t.Fatalf("no log line %q with %s=:\n%s", msg, key, p.logs)
	return ""
}

// httpAddr returns the broker's HTTP address from its start-up log.
func (p *brokerProc) httpAddr(t *testing.T) string {
	return p.logValue(t, "eddy broker ready", "http")
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // draining
	resp.Body.Close()
	return resp.StatusCode
}

// TestBrokerRegistry checks that `eddy broker` serves the schema registry
// on --http by default, keeps schemas across a restart, closes it on
// shutdown, and honours --registry-topic and --registry=false.
func TestBrokerRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	p := startBrokerCmd(t, dir, "--registry-topic", "my-schemas")
	url := p.logValue(t, "schema registry ready", "url")
	if want := "http://" + p.httpAddr(t); url != want {
		t.Fatalf("registry url %q, want %q", url, want)
	}
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	schema := `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`
	ss, err := cl.CreateSchema(ctx, "r-value", sr.Schema{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runAt(ctx, p.addr, "", "topic", "describe", "my-schemas")
	if err != nil || !containsLine(out, "cleanup.policy", "compact") {
		t.Fatalf("registry topic: %v\n%s%s", err, out, errOut)
	}
	p.stop(t)
	if logs := p.logs.String(); !strings.Contains(logs, "shutting down") || !strings.Contains(logs, "stopped") {
		t.Fatalf("no clean shutdown:\n%s", logs)
	}

	p = startBrokerCmd(t, dir, "--registry-topic", "my-schemas")
	cl, err = sr.NewClient(sr.URLs(p.logValue(t, "schema registry ready", "url")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cl.SchemaByVersion(ctx, "r-value", 1)
	if err != nil || got.ID != ss.ID {
		t.Fatalf("after restart: %+v, %v; want id %d", got, err, ss.ID)
	}
	if code := httpStatus(t, "http://"+p.httpAddr(t)+"/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	p.stop(t)

	// --registry=false: /metrics only.
	p = startBrokerCmd(t, dir, "--registry=false")
	if strings.Contains(p.logs.String(), "schema registry ready") {
		t.Fatalf("registry started with --registry=false:\n%s", p.logs)
	}
	base := "http://" + p.httpAddr(t)
	if code := httpStatus(t, base+"/subjects"); code != http.StatusNotFound {
		t.Fatalf("/subjects with --registry=false: %d, want 404", code)
	}
	if code := httpStatus(t, base+"/metrics"); code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	// A registry topic that is not compacted stops the broker at start-up.
	if out, errOut, err := runAt(ctx, p.addr, "", "topic", "create", "plain"); err != nil {
		t.Fatalf("topic create: %v\n%s%s", err, out, errOut)
	}
	p.stop(t)
	_, _, err = runAt(ctx, "unused:1", "", "broker", "--data-dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--registry-topic", "plain", "--log-level", "error")
	if err == nil || !strings.Contains(err.Error(), "cleanup.policy=delete, want compact") || !strings.Contains(err.Error(), "--registry=false") {
		t.Fatalf("broker with a non-compacted registry topic: %v", err)
	}
}
