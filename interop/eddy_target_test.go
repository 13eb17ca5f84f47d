//go:build !kfakeonly

package interop

import (
	"log/slog"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/broker"
)

func init() {
	targets["eddy"] = func(t *testing.T) cluster { return startEddy(t) }
}

// eddyCluster is eddy's broker running in-process on a temp data dir.
type eddyCluster struct {
	dir  string
	logs *lockedBuffer
	srv  *broker.Server
}

func startEddy(t *testing.T) *eddyCluster {
	t.Helper()
	e := &eddyCluster{dir: t.TempDir(), logs: &lockedBuffer{}}
	e.start(t)
	t.Cleanup(func() {
		if err := e.srv.Close(); err != nil {
			t.Errorf("broker Close: %v", err)
		}
		if t.Failed() {
			t.Logf("broker log (tail):\n%s", e.logs)
		}
	})
	return e
}

func (e *eddyCluster) start(t *testing.T) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = e.dir
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = ""
	// A short timeout sweep: the transaction tests wait for the broker to
	// abort a killed member's transaction.
	cfg.TransactionAbortInterval = 500 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("broker Start: %v", err)
	}
	e.srv = srv
}

func (e *eddyCluster) Addr() string { return e.srv.Addr() }

func (e *eddyCluster) Restart(t *testing.T) {
	t.Helper()
	if err := e.srv.Close(); err != nil {
		t.Fatalf("broker Close: %v", err)
	}
	e.start(t)
}
