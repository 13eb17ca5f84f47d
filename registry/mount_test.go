package registry

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/eddy-streams/eddy/broker"
)

// startMountBroker starts a broker with its HTTP listener on dir.
func startMountBroker(t *testing.T, dir string) *broker.Server {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = "127.0.0.1:0"
	cfg.OffsetsTopicPartitions = 1
	cfg.TransactionTopicPartitions = 1
	srv, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func mustMount(t *testing.T, ctx context.Context, srv *broker.Server) (*Server, *sr.Client) {
	t.Helper()
	s, err := Mount(ctx, srv, Config{})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	cl, err := sr.NewClient(sr.URLs("http://" + srv.HTTPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	return s, cl
}

// TestMountRestart registers schemas on a mounted registry, restarts the
// broker on the same data directory, mounts again and finds the same ids
// and versions, with /metrics still served beside the registry.
func TestMountRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv := startMountBroker(t, dir)
	s, cl := mustMount(t, ctx, srv)

	v1 := `{"type":"record","name":"PageView","fields":[{"name":"user","type":"string"}]}`
	v2 := `{"type":"record","name":"PageView","fields":[{"name":"user","type":"string"},{"name":"ref","type":"string","default":""}]}`
	other := `{"type":"enum","name":"Color","symbols":["RED","GREEN"]}`
	var want []sr.SubjectSchema
	for _, r := range []struct{ subject, schema string }{
		{"pageviews-value", v1}, {"colors-value", other}, {"pageviews-value", v2},
	} {
		ss, err := cl.CreateSchema(ctx, r.subject, sr.Schema{Schema: r.schema})
		if err != nil {
			t.Fatalf("register under %s: %v", r.subject, err)
		}
		want = append(want, ss)
	}
	if want[2].Version != 2 || want[0].ID == want[2].ID {
		t.Fatalf("registered %+v: want pageviews-value v2 with a new id", want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv = startMountBroker(t, dir)
	_, cl = mustMount(t, ctx, srv)
	for _, w := range want {
		got, err := cl.SchemaByVersion(ctx, w.Subject, w.Version)
		if err != nil {
			t.Fatalf("after restart, %s v%d: %v", w.Subject, w.Version, err)
		}
		if got.ID != w.ID || got.Version != w.Version || got.Subject != w.Subject {
			t.Errorf("after restart, %s v%d = id %d version %d, want id %d", w.Subject, w.Version, got.ID, got.Version, w.ID)
		}
		text, err := cl.SchemaTextByID(ctx, w.ID)
		if err != nil || text != w.Schema.Schema {
			t.Errorf("after restart, schema id %d: %q, %v; want %q", w.ID, text, err, w.Schema.Schema)
		}
	}
	// A new schema gets an id not used before the restart.
	third := `{"type":"record","name":"PageView","fields":[{"name":"user","type":"string"},{"name":"ref","type":"string","default":""},{"name":"n","type":"int","default":0}]}`
	ss, err := cl.CreateSchema(ctx, "pageviews-value", sr.Schema{Schema: third})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if ss.ID == w.ID {
			t.Errorf("new schema reuses id %d", ss.ID)
		}
	}
	if ss.Version != 3 {
		t.Errorf("new schema is version %d, want 3", ss.Version)
	}

	resp, err := http.Get("http://" + srv.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "eddy_") {
		t.Errorf("/metrics: %s, %.200s", resp.Status, body)
	}
}

// TestMountNeedsStartedBroker refuses a broker that is not started or has
// no HTTP listener.
func TestMountNeedsStartedBroker(t *testing.T) {
	ctx := context.Background()
	cfg := broker.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTP = ""
	cfg.OffsetsTopicPartitions = 1
	cfg.TransactionTopicPartitions = 1
	srv, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := Mount(ctx, srv, Config{}); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Mount before Start: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := Mount(ctx, srv, Config{}); err == nil || !strings.Contains(err.Error(), "no HTTP listener") {
		t.Errorf("Mount without HTTP: %v", err)
	}
}
