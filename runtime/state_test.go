package runtime

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

// TestOpenState checks where a task's store stands when it opens: kept at
// a usable checkpoint, wiped without one or with one outside the
// changelog.
func TestOpenState(t *testing.T) {
	a, err := New(wordcount(t), Config{ApplicationID: "app", Brokers: []string{"x:1"}, StateDir: t.TempDir(), NumStreamThreads: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	a.counts = map[string]int32{"text-lines": 1, "app-counts-repartition": 1}
	id := stream.TaskID{Subtopology: 1, Partition: 0}
	tp := table.TopicPartition{Topic: "app-counts-changelog", Partition: 0}
	start := map[table.TopicPartition]int64{tp: 5}
	end := map[table.TopicPartition]int64{tp: 20}

	// seed writes one entry in a fresh open and closes.
	seed := func() {
		ts := newTaskState(a, id, false)
		if err := ts.open(a, start, end); err != nil {
			t.Fatal(err)
		}
		if err := ts.stores["counts"].(table.KeyValueStore).Put([]byte("k"), []byte("12345678v")); err != nil {
			t.Fatal(err)
		}
		ts.pos[tp] = 12
		if err := ts.flushStores(); err != nil {
			t.Fatal(err)
		}
		if err := ts.writeCheckpoint(); err != nil {
			t.Fatal(err)
		}
		ts.closeStores()
	}
	ckpt := filepath.Join(a.cfg.StateDir, "app", "1_0", checkpointFile)
	for _, c := range []struct {
		name    string
		ckpt    map[table.TopicPartition]int64 // nil: no checkpoint file
		remove  bool
		wantPos int64
		kept    bool
	}{
		{"checkpoint kept", nil, false, 12, true},
		{"checkpoint file missing", nil, true, 5, false},
		{"no checkpoint entry", map[table.TopicPartition]int64{}, false, 5, false},
		{"checkpoint past the end", map[table.TopicPartition]int64{tp: 21}, false, 5, false},
		{"checkpoint before the start", map[table.TopicPartition]int64{tp: 4}, false, 5, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			seed()
			if c.remove {
				if err := os.Remove(ckpt); err != nil {
					t.Fatal(err)
				}
			}
			if c.ckpt != nil {
				if err := table.WriteCheckpoint(ckpt, c.ckpt); err != nil {
					t.Fatal(err)
				}
			}
			ts := newTaskState(a, id, false)
			if err := ts.open(a, start, end); err != nil {
				t.Fatal(err)
			}
			defer ts.closeStores()
			if ts.pos[tp] != c.wantPos {
				t.Errorf("position %d, want %d", ts.pos[tp], c.wantPos)
			}
			v, err := ts.stores["counts"].(table.KeyValueStore).Get([]byte("k"))
			if err != nil {
				t.Fatal(err)
			}
			if (v != nil) != c.kept {
				t.Errorf("store entry %q, want kept=%v", v, c.kept)
			}
		})
	}
}
