package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

// phase is where a task is in its life on a stream thread.
type phase int

const (
	// phaseNew: assigned, its state directory not opened yet (another
	// thread of the process may still hold it).
	phaseNew phase = iota
	// phaseRestoring: stores open, reading the changelog tail up to the
	// end offsets taken when restoring began.
	phaseRestoring
	// phaseRunning: a stream.Task processes its input.
	phaseRunning
	// phaseSuspended: committed and idle during a rebalance (eager
	// protocol); it resumes if the new assignment keeps it.
	phaseSuspended
	// phaseStandby: stores open, following the changelog.
	phaseStandby
)

// checkpointFile is the name of a task's checkpoint in its directory.
const checkpointFile = ".checkpoint"

// taskState is one task of a stream thread, active or standby: its
// directory, its stores and where they are in their changelogs.
type taskState struct {
	id      stream.TaskID
	dir     string
	standby bool
	phase   phase
	locked  bool

	infos  []stream.StoreInfo
	stores map[string]stream.StateStore
	// logged maps each changelog partition to its store.
	logged map[table.TopicPartition]string
	// persistent changelog partitions are the ones checkpointed (in-memory
	// stores restore from the start every time).
	persistent map[table.TopicPartition]bool
	// pos is, per changelog partition, the offset the store covers up to
	// (the next offset to read).
	pos map[table.TopicPartition]int64
	// end is the restore target; nil when not restoring or not known yet.
	end map[table.TopicPartition]int64
	// remaining is what was added to the restore gauge per store.
	remaining map[string]float64
	// written is the last checkpoint written.
	written map[table.TopicPartition]int64

	task    *stream.Task
	pending []stream.RawRecord // input polled before the task runs
	inputs  map[string]int32   // source partitions
	queried bool               // registered for interactive queries
}

func newTaskState(a *App, id stream.TaskID, standby bool) *taskState {
	ts := &taskState{
		id: id, standby: standby,
		dir:        filepath.Join(a.cfg.StateDir, a.cfg.ApplicationID, id.String()),
		infos:      a.plan.subs[id.Subtopology].Stores,
		stores:     map[string]stream.StateStore{},
		logged:     map[table.TopicPartition]string{},
		persistent: map[table.TopicPartition]bool{},
		pos:        map[table.TopicPartition]int64{},
		remaining:  map[string]float64{},
		inputs:     a.plan.partitionsOf(id, a.counts),
	}
	for _, info := range ts.infos {
		if info.Logged {
			tp := table.TopicPartition{Topic: info.Changelog.Name, Partition: id.Partition}
			ts.logged[tp] = info.Name
			if !info.InMemory {
				ts.persistent[tp] = true
			}
		}
	}
	return ts
}

// info returns the description of the task's store called name.
func (ts *taskState) info(name string) stream.StoreInfo {
	for _, si := range ts.infos {
		if si.Name == name {
			return si
		}
	}
	return stream.StoreInfo{Name: name}
}

// changelogs returns the task's changelog partitions, sorted.
func (ts *taskState) changelogs() []table.TopicPartition {
	out := make([]table.TopicPartition, 0, len(ts.logged))
	for tp := range ts.logged {
		out = append(out, tp)
	}
	slices.SortFunc(out, func(a, b table.TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// restored reports whether every changelog partition reached its end.
func (ts *taskState) restored() bool {
	for tp, end := range ts.end {
		if ts.pos[tp] < end {
			return false
		}
	}
	return true
}

// buffered is the input waiting for the task.
func (ts *taskState) buffered() int {
	if ts.task != nil {
		return ts.task.Buffered()
	}
	return len(ts.pending)
}

// open opens the task's stores, deciding per changelog partition where
// the store stands: at its checkpointed offset when the checkpoint is
// usable, else nowhere (the store directory is wiped and restored from
// the start of the changelog). start and end are the changelogs' log start
// and end offsets.
func (ts *taskState) open(a *App, start, end map[table.TopicPartition]int64) error {
	if err := os.MkdirAll(ts.dir, 0o755); err != nil {
		return fmt.Errorf("runtime: task %s: %w", ts.id, err)
	}
	ckpt, err := table.ReadCheckpoint(filepath.Join(ts.dir, checkpointFile))
	if errors.Is(err, table.ErrBadCheckpoint) {
		a.log.Warn("ignoring a bad checkpoint: the task's stores restore from scratch", "task", ts.id.String(), "err", err)
		ckpt = map[table.TopicPartition]int64{}
	} else if err != nil {
		return fmt.Errorf("runtime: task %s: %w", ts.id, err)
	}
	for _, info := range ts.infos {
		dir := filepath.Join(ts.dir, info.Name)
		if info.Logged {
			tp := table.TopicPartition{Topic: info.Changelog.Name, Partition: ts.id.Partition}
			p, ok := ckpt[tp]
			if info.InMemory || !ok || p < start[tp] || p > end[tp] {
				if ok && !info.InMemory {
					a.log.Warn("checkpoint outside the changelog: restoring the store from scratch", "task", ts.id.String(), "store", info.Name,
						"checkpoint", p, "start", start[tp], "end", end[tp])
				}
				// No usable checkpoint: what the directory holds is
				// unknown (an unclean stop, or another run's state).
				if !info.InMemory {
					if err := os.RemoveAll(dir); err != nil {
						return fmt.Errorf("runtime: task %s: wipe store %s: %w", ts.id, info.Name, err)
					}
				}
				p = start[tp]
			}
			ts.pos[tp] = p
		}
		st, err := stream.OpenStateStore(info, dir, a.badgerOptions())
		if err != nil {
			ts.closeStores()
			return fmt.Errorf("runtime: task %s: %w", ts.id, err)
		}
		ts.stores[info.Name] = st
	}
	return nil
}

// checkpointDirty reports whether the positions moved since the last
// checkpoint.
func (ts *taskState) checkpointDirty() bool {
	for tp := range ts.persistent {
		if o, ok := ts.written[tp]; !ok || o != ts.pos[tp] {
			return true
		}
	}
	return false
}

// writeCheckpoint writes the positions of the persistent logged stores.
func (ts *taskState) writeCheckpoint() error {
	if len(ts.persistent) == 0 || len(ts.stores) == 0 {
		return nil
	}
	if !ts.checkpointDirty() {
		return nil
	}
	offsets := make(map[table.TopicPartition]int64, len(ts.persistent))
	for tp := range ts.persistent {
		offsets[tp] = ts.pos[tp]
	}
	if err := table.WriteCheckpoint(filepath.Join(ts.dir, checkpointFile), offsets); err != nil {
		return fmt.Errorf("runtime: task %s: %w", ts.id, err)
	}
	ts.written = offsets
	return nil
}

// flushStores makes the stores' writes durable (before a checkpoint).
func (ts *taskState) flushStores() error {
	for name, kv := range ts.stores {
		if err := kv.Flush(); err != nil {
			return fmt.Errorf("runtime: task %s: flush store %s: %w", ts.id, name, err)
		}
	}
	return nil
}

func (ts *taskState) closeStores() error {
	var errs []error
	for _, kv := range ts.stores {
		errs = append(errs, kv.Close())
	}
	clear(ts.stores)
	return errors.Join(errs...)
}

// taskEnv is the stream.TaskEnv of a task run by a stream thread.
type taskEnv struct {
	t  *thread
	ts *taskState
}

func (e *taskEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	kv := e.ts.stores[info.Name]
	if kv == nil {
		return nil, fmt.Errorf("runtime: task %s has no store %q", e.ts.id, info.Name)
	}
	return kv, nil
}

// Partitions returns topic's partition count, for custom partitioners.
func (e *taskEnv) Partitions(topic string) (int32, error) {
	return e.t.app.partitions(topic)
}

// stateOffsets returns, per task directory in this process's state
// directory holding a checkpoint, the sum of its checkpointed offsets: the
// assignor's hint of where state already is.
func (a *App) stateOffsets() map[string]int64 {
	root := filepath.Join(a.cfg.StateDir, a.cfg.ApplicationID)
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := parseTaskID(e.Name()); err != nil {
			continue
		}
		ckpt, err := table.ReadCheckpoint(filepath.Join(root, e.Name(), checkpointFile))
		if err != nil || len(ckpt) == 0 {
			continue
		}
		var sum int64
		for _, o := range ckpt {
			sum += max(o, 0)
		}
		out[e.Name()] = sum
	}
	return out
}
