package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
