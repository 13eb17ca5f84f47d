package stream_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/table"
)

// be8 and be4 are big-endian encodings, for spelling out Kafka's layouts.
func be8(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
func be4(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// The window store key of the changelog and record cache is Kafka Streams'
// WindowKeySchema.toStoreKeyBinary layout (key, 8-byte timestamp, 4-byte
// sequence number), and the session key SessionKeySchema.toBinary's (key,
// 8-byte end, 8-byte start); facts from Kafka's WindowKeySchemaTest and
// SessionKeySchemaTest.
func TestStoreKeyLayouts(t *testing.T) {
	for _, c := range []struct {
		key        []byte
		start, end int64
	}{
		{[]byte("a"), 0, 0},
		{[]byte("alice"), 1_700_000_000_000, 1_700_000_005_000},
		{[]byte{0, 0xff, 0}, 1, 1 << 40},
		{[]byte("k"), -5, 7}, // negative times still round-trip
	} {
		wk := stream.WindowStoreKey(c.key, c.start)
		if want := cat(c.key, be8(c.start), be4(0)); !bytes.Equal(wk, want) {
			t.Errorf("WindowStoreKey(%q, %d) = %x, want %x", c.key, c.start, wk, want)
		}
		k, start, err := stream.SplitWindowStoreKey(wk)
		if err != nil || !bytes.Equal(k, c.key) || start != c.start {
			t.Errorf("SplitWindowStoreKey(%x) = %q, %d, %v", wk, k, start, err)
		}
		// The key is capped: appending to it cannot overwrite the start.
		if cap(k) != len(k) {
			t.Errorf("split window key has spare capacity %d", cap(k)-len(k))
		}

		sk := stream.SessionStoreKey(c.key, c.start, c.end)
		if want := cat(c.key, be8(c.end), be8(c.start)); !bytes.Equal(sk, want) {
			t.Errorf("SessionStoreKey(%q, %d, %d) = %x, want %x", c.key, c.start, c.end, sk, want)
		}
		k, start, end, err := stream.SplitSessionStoreKey(sk)
		if err != nil || !bytes.Equal(k, c.key) || start != c.start || end != c.end {
			t.Errorf("SplitSessionStoreKey(%x) = %q, %d, %d, %v", sk, k, start, end, err)
		}
	}
	// A Kafka window key with a non-zero sequence number (a store with
	// duplicates) still splits into its key and start.
	k, start, err := stream.SplitWindowStoreKey(cat([]byte("dup"), be8(42), be4(7)))
	if err != nil || string(k) != "dup" || start != 42 {
		t.Errorf("key with seqnum 7: %q, %d, %v", k, start, err)
	}
	// Too short: the key part must not be empty.
	for _, b := range [][]byte{nil, {}, make([]byte, 12)} {
		if _, _, err := stream.SplitWindowStoreKey(b); !errors.Is(err, stream.ErrBadChangelogKey) {
			t.Errorf("SplitWindowStoreKey(%d bytes): %v", len(b), err)
		}
	}
	for _, b := range [][]byte{nil, make([]byte, 16)} {
		if _, _, _, err := stream.SplitSessionStoreKey(b); !errors.Is(err, stream.ErrBadChangelogKey) {
			t.Errorf("SplitSessionStoreKey(%d bytes): %v", len(b), err)
		}
	}
}

func openMem(t testing.TB, info stream.StoreInfo) stream.StateStore {
	t.Helper()
	info.InMemory = true
	s, err := stream.OpenStateStore(info, "", table.BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rec(off int64, key, value []byte, ts int64) stream.RawRecord {
	return stream.RawRecord{Topic: "app-s-changelog", Offset: off, Key: key, Value: value, Timestamp: ts}
}

// windowContents lists a window store as "key@start=value@ts".
func windowContents(t testing.TB, ws table.WindowStore) []string {
	t.Helper()
	var out []string
	for e, err := range ws.All() {
		if err != nil {
			t.Fatal(err)
		}
		v, ts, err := stream.DecodeStoreValue(e.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s@%d=%s@%d", e.Key, e.Start, v, ts))
	}
	return out
}

// sessionContents lists a session store as "key[start,end]=value@ts".
func sessionContents(t testing.TB, ss table.SessionStore) []string {
	t.Helper()
	var out []string
	for e, err := range ss.All() {
		if err != nil {
			t.Fatal(err)
		}
		v, ts, err := stream.DecodeStoreValue(e.Value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s[%d,%d]=%s@%d", e.Key, e.Start, e.End, v, ts))
	}
	return out
}

func TestRestoreChangelog(t *testing.T) {
	hour := time.Hour
	t.Run("key-value", func(t *testing.T) {
		info := stream.StoreInfo{Name: "kv"}
		s := openMem(t, info)
		err := stream.RestoreChangelog(info, s, []stream.RawRecord{
			rec(0, []byte("a"), []byte("1"), 10),
			rec(1, []byte("b"), []byte("2"), 11),
			rec(2, []byte("a"), nil, 12), // tombstone
			rec(3, []byte("c"), []byte{}, 13),
		})
		if err != nil {
			t.Fatal(err)
		}
		kv := s.(table.KeyValueStore)
		var got []string
		for e, err := range kv.All() {
			if err != nil {
				t.Fatal(err)
			}
			v, ts, _ := stream.DecodeStoreValue(e.Value)
			got = append(got, fmt.Sprintf("%s=%s@%d", e.Key, v, ts))
		}
		if want := []string{"b=2@11", "c=@13"}; !slices.Equal(got, want) {
			t.Errorf("restored %v, want %v", got, want)
		}
	})
	t.Run("window", func(t *testing.T) {
		info := stream.StoreInfo{Name: "w", Kind: stream.WindowKind, Retention: hour}
		s := openMem(t, info)
		err := stream.RestoreChangelog(info, s, []stream.RawRecord{
			rec(0, stream.WindowStoreKey([]byte("a"), 0), []byte("1"), 3),
			rec(1, stream.WindowStoreKey([]byte("a"), 10), []byte("2"), 12),
			rec(2, stream.WindowStoreKey([]byte("b"), 0), []byte("3"), 4),
			rec(3, stream.WindowStoreKey([]byte("a"), 0), []byte("4"), 5),
			rec(4, stream.WindowStoreKey([]byte("b"), 0), nil, 6), // tombstone
		})
		if err != nil {
			t.Fatal(err)
		}
		ws := s.(table.WindowStore)
		if got, want := windowContents(t, ws), []string{"a@0=4@5", "a@10=2@12"}; !slices.Equal(got, want) {
			t.Errorf("restored %v, want %v", got, want)
		}
		if ws.ObservedStreamTime() != 10 {
			t.Errorf("observed stream time %d, want 10", ws.ObservedStreamTime())
		}
		// A key too short for the layout: a clear error naming the store
		// and offset, wrapping ErrBadChangelogKey.
		err = stream.RestoreChangelog(info, s, []stream.RawRecord{rec(7, []byte("short"), []byte("x"), 1)})
		if !errors.Is(err, stream.ErrBadChangelogKey) || !strings.Contains(err.Error(), "store w") || !strings.Contains(err.Error(), "offset 7") {
			t.Errorf("bad key: %v", err)
		}
	})
	t.Run("session", func(t *testing.T) {
		info := stream.StoreInfo{Name: "s", Kind: stream.SessionKind, Retention: hour}
		s := openMem(t, info)
		err := stream.RestoreChangelog(info, s, []stream.RawRecord{
			rec(0, stream.SessionStoreKey([]byte("a"), 0, 0), []byte("1"), 0),
			rec(1, stream.SessionStoreKey([]byte("a"), 0, 0), nil, 30), // merged away
			rec(2, stream.SessionStoreKey([]byte("a"), 0, 30), []byte("2"), 30),
			rec(3, stream.SessionStoreKey([]byte("b"), 5, 5), []byte("1"), 5),
		})
		if err != nil {
			t.Fatal(err)
		}
		ss := s.(table.SessionStore)
		if got, want := sessionContents(t, ss), []string{"a[0,30]=2@30", "b[5,5]=1@5"}; !slices.Equal(got, want) {
			t.Errorf("restored %v, want %v", got, want)
		}
		err = stream.RestoreChangelog(info, s, []stream.RawRecord{rec(9, make([]byte, 16), []byte("x"), 1)})
		if !errors.Is(err, stream.ErrBadChangelogKey) || !strings.Contains(err.Error(), "offset 9") {
			t.Errorf("bad key: %v", err)
		}
		err = stream.RestoreChangelog(info, s, []stream.RawRecord{rec(10, stream.SessionStoreKey([]byte("a"), 9, 8), []byte("x"), 1)})
		if err == nil || !strings.Contains(err.Error(), "before start") {
			t.Errorf("end before start: %v", err)
		}
	})
	t.Run("unknown store type", func(t *testing.T) {
		info := stream.StoreInfo{Name: "x", Kind: stream.WindowKind, Retention: hour}
		if err := stream.RestoreChangelog(info, otherStore{}, nil); err == nil {
			t.Error("restore into an unknown store type: no error")
		}
	})
}

// otherStore is a StateStore of none of table's kinds.
type otherStore struct{}

func (otherStore) Name() string                 { return "other" }
func (otherStore) Flush() error                 { return nil }
func (otherStore) Close() error                 { return nil }
func (otherStore) ApproximateNumEntries() int64 { return 0 }

// taskEnv runs a task without a runtime: in-memory stores, sent records
// collected.
type taskEnv struct {
	sent []stream.RawRecord
}

func (e *taskEnv) OpenStore(info stream.StoreInfo) (stream.StateStore, error) {
	info.InMemory = true
	return stream.OpenStateStore(info, "", table.BadgerOptions{})
}

func (e *taskEnv) Send(rec stream.RawRecord) error {
	e.sent = append(e.sent, rec)
	return nil
}

// windowedTask starts a task of a topology with a window store "w" and a
// session store "s" connected to a processor that does nothing: the test
// drives the store handles itself.
func windowedTask(t *testing.T, cacheBytes int64) (*stream.Task, *taskEnv) {
	t.Helper()
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "w", Kind: stream.WindowKind, Retention: time.Hour})
	b.AddStateStore(stream.StoreSpec{Name: "s", Kind: stream.SessionKind, Retention: time.Hour})
	in := stream.Stream(b, stream.With(serde.String(), serde.String()), "in")
	stream.Process(in, func() stream.Processor[string, string, string, string] { return nopProc{} }, "w", "s")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	env := &taskEnv{}
	task, err := top.NewTask(stream.TaskConfig{ApplicationID: "app", Env: env, CacheMaxBytes: cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Init(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { task.Close() })
	return task, env
}

type nopProc struct{}

func (nopProc) Init(stream.ProcessorContext[string, string]) error { return nil }
func (nopProc) Process(stream.Record[string, string]) error        { return nil }
func (nopProc) Close() error                                       { return nil }

func collect[T any](t *testing.T, seq func(func(T, error) bool), show func(T) string) []string {
	t.Helper()
	var out []string
	for e, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, show(e))
	}
	return out
}

func showWindow(e stream.WindowStoreEntry) string {
	return fmt.Sprintf("%s@%d=%s@%d", e.Key, e.Start, e.Value, e.Timestamp)
}

func showSession(e stream.SessionStoreEntry) string {
	return fmt.Sprintf("%s[%d,%d]=%s@%d", e.Key, e.Start, e.End, e.Value, e.Timestamp)
}

func TestStoreHandleWindow(t *testing.T) {
	for _, cached := range []bool{true, false} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			var cacheBytes int64
			if cached {
				cacheBytes = 1 << 20
			}
			task, env := windowedTask(t, cacheBytes)
			h := task.Store("w")
			if h.Kind() != stream.WindowKind || h.Window() == nil || h.Session() != nil || h.Underlying() != nil {
				t.Fatalf("handle of w: kind %v, window %v, session %v", h.Kind(), h.Window(), h.Session())
			}
			if h.ObservedStreamTime() != -1 {
				t.Errorf("observed stream time before writes: %d", h.ObservedStreamTime())
			}
			must(t, h.PutWindow([]byte("a"), 0, []byte("1"), 3))
			must(t, h.PutWindow([]byte("a"), 10, []byte("2"), 12))
			must(t, h.PutWindow([]byte("b"), 10, []byte("3"), 14))
			must(t, h.PutWindow([]byte("a"), 0, []byte("4"), 5)) // overwrites

			// FetchWindow sees the writes, cached or not.
			v, ts, ok, err := h.FetchWindow([]byte("a"), 0)
			if err != nil || !ok || string(v) != "4" || ts != 5 {
				t.Errorf("FetchWindow(a, 0) = %q@%d %v %v", v, ts, ok, err)
			}
			if _, _, ok, err := h.FetchWindow([]byte("a"), 5); ok || err != nil {
				t.Errorf("FetchWindow(a, 5): found %v, %v", ok, err)
			}
			// The store itself and the changelog have them only when not
			// cached.
			raw, err := h.Window().Fetch([]byte("a"), 0)
			if err != nil || (raw != nil) == cached {
				t.Errorf("store before the sync: %x, %v (cached %v)", raw, err, cached)
			}
			if want := map[bool]int{true: 0, false: 4}[cached]; len(env.sent) != want {
				t.Errorf("%d changelog records before the sync, want %d", len(env.sent), want)
			}

			// FetchWindows writes the cache out first, so it sees them.
			got := collect(t, h.FetchWindows([]byte("a"), 0, 10), showWindow)
			if want := []string{"a@0=4@5", "a@10=2@12"}; !slices.Equal(got, want) {
				t.Errorf("FetchWindows(a, 0, 10) = %v, want %v", got, want)
			}
			got = collect(t, h.FetchWindows([]byte("a"), 1, 10), showWindow)
			if want := []string{"a@10=2@12"}; !slices.Equal(got, want) {
				t.Errorf("FetchWindows(a, 1, 10) = %v, want %v", got, want)
			}
			got = collect(t, h.FetchAllWindows(10, 10), showWindow)
			if want := []string{"a@10=2@12", "b@10=3@14"}; !slices.Equal(got, want) {
				t.Errorf("FetchAllWindows(10, 10) = %v, want %v", got, want)
			}
			if raw, _ := h.Window().Fetch([]byte("a"), 0); raw == nil {
				t.Error("store after the sync lacks a@0")
			}
			if h.ObservedStreamTime() != 10 {
				t.Errorf("observed stream time %d, want 10", h.ObservedStreamTime())
			}
			// The changelog carries every write that reached the store:
			// the cache folded a@0's two writes into one.
			var log []string
			for _, r := range env.sent {
				if r.Topic != "app-w-changelog" {
					t.Errorf("changelog record to %s", r.Topic)
				}
				k, start, err := stream.SplitWindowStoreKey(r.Key)
				if err != nil {
					t.Fatal(err)
				}
				log = append(log, fmt.Sprintf("%s@%d=%s@%d", k, start, r.Value, r.Timestamp))
			}
			slices.Sort(log)
			want := []string{"a@0=4@5", "a@10=2@12", "b@10=3@14"}
			if !cached {
				want = []string{"a@0=1@3", "a@0=4@5", "a@10=2@12", "b@10=3@14"}
			}
			if !slices.Equal(log, want) {
				t.Errorf("changelog %v, want %v", log, want)
			}

			// A nil value deletes, through the cache as well.
			must(t, h.PutWindow([]byte("a"), 10, nil, 20))
			if _, _, ok, _ := h.FetchWindow([]byte("a"), 10); ok {
				t.Error("a@10 still there after a delete")
			}
			got = collect(t, h.FetchWindows([]byte("a"), 0, 100), showWindow)
			if want := []string{"a@0=4@5"}; !slices.Equal(got, want) {
				t.Errorf("after delete: %v, want %v", got, want)
			}

			// The changelog restores the same store.
			info := stream.StoreInfo{Name: "w", Kind: stream.WindowKind, Retention: time.Hour}
			s := openMem(t, info)
			if err := stream.RestoreChangelog(info, s, env.sent); err != nil {
				t.Fatal(err)
			}
			if got, want := windowContents(t, s.(table.WindowStore)), windowContents(t, h.Window()); !slices.Equal(got, want) {
				t.Errorf("restored %v, task's store %v", got, want)
			}

			// Wrong uses are errors.
			if err := h.PutWindow(nil, 0, []byte("x"), 0); !errors.Is(err, table.ErrEmptyKey) {
				t.Errorf("empty key: %v", err)
			}
			if _, _, _, err := h.FetchSession([]byte("a"), 0, 0); err == nil {
				t.Error("FetchSession on a window store: no error")
			}
			for _, err := range h.AllSessions() {
				if err == nil {
					t.Error("AllSessions on a window store: no error")
				}
			}
			for _, err := range h.Range(nil, nil) {
				if err == nil {
					t.Error("Range on a window store: no error")
				}
			}
		})
	}
}

func TestStoreHandleSession(t *testing.T) {
	for _, cached := range []bool{true, false} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			var cacheBytes int64
			if cached {
				cacheBytes = 1 << 20
			}
			task, env := windowedTask(t, cacheBytes)
			h := task.Store("s")
			if h.Kind() != stream.SessionKind || h.Session() == nil || h.Window() != nil {
				t.Fatalf("handle of s: kind %v", h.Kind())
			}
			must(t, h.PutSession([]byte("a"), 0, 0, []byte("1"), 0))
			must(t, h.PutSession([]byte("a"), 0, 0, nil, 30)) // merged away
			must(t, h.PutSession([]byte("a"), 0, 30, []byte("2"), 30))
			must(t, h.PutSession([]byte("a"), 100, 120, []byte("3"), 120))
			must(t, h.PutSession([]byte("b"), 5, 5, []byte("1"), 5))

			v, ts, ok, err := h.FetchSession([]byte("a"), 0, 30)
			if err != nil || !ok || string(v) != "2" || ts != 30 {
				t.Errorf("FetchSession(a, 0, 30) = %q@%d %v %v", v, ts, ok, err)
			}
			if _, _, ok, _ := h.FetchSession([]byte("a"), 0, 0); ok {
				t.Error("removed session a[0,0] found")
			}
			if raw, _ := h.Session().Fetch([]byte("a"), 0, 30); (raw != nil) == cached {
				t.Errorf("store before the sync has a[0,30]: %v (cached %v)", raw != nil, cached)
			}
			// Sessions of a overlapping [25, 100]: end >= 25, start <= 100.
			got := collect(t, h.FindSessions([]byte("a"), 25, 100), showSession)
			if want := []string{"a[0,30]=2@30", "a[100,120]=3@120"}; !slices.Equal(got, want) {
				t.Errorf("FindSessions(a, 25, 100) = %v, want %v", got, want)
			}
			got = collect(t, h.FindSessions([]byte("a"), 31, 99), showSession)
			if len(got) != 0 {
				t.Errorf("FindSessions(a, 31, 99) = %v, want none", got)
			}
			got = collect(t, h.AllSessions(), showSession)
			slices.Sort(got)
			if want := []string{"a[0,30]=2@30", "a[100,120]=3@120", "b[5,5]=1@5"}; !slices.Equal(got, want) {
				t.Errorf("AllSessions = %v, want %v", got, want)
			}
			if h.ObservedStreamTime() != 120 {
				t.Errorf("observed stream time %d, want 120", h.ObservedStreamTime())
			}

			info := stream.StoreInfo{Name: "s", Kind: stream.SessionKind, Retention: time.Hour}
			s := openMem(t, info)
			if err := stream.RestoreChangelog(info, s, env.sent); err != nil {
				t.Fatal(err)
			}
			if got, want := sessionContents(t, s.(table.SessionStore)), sessionContents(t, h.Session()); !slices.Equal(got, want) {
				t.Errorf("restored %v, task's store %v", got, want)
			}

			if err := h.PutSession([]byte("a"), 9, 8, []byte("x"), 9); err == nil {
				t.Error("end before start: no error")
			}
			if err := h.PutSession(nil, 0, 0, []byte("x"), 0); !errors.Is(err, table.ErrEmptyKey) {
				t.Errorf("empty key: %v", err)
			}
			if err := h.PutWindow([]byte("a"), 0, []byte("x"), 0); err == nil {
				t.Error("PutWindow on a session store: no error")
			}
			for _, err := range h.FetchWindows([]byte("a"), 0, 1) {
				if err == nil {
					t.Error("FetchWindows on a session store: no error")
				}
			}
		})
	}
}

// A window or session store needs a retention.
func TestAddStateStoreNeedsRetention(t *testing.T) {
	for _, k := range []stream.StoreKind{stream.WindowKind, stream.SessionKind} {
		b := stream.NewBuilder()
		b.AddStateStore(stream.StoreSpec{Name: "w", Kind: k})
		in := stream.Stream(b, stream.With(serde.String(), serde.String()), "in")
		stream.Process(in, func() stream.Processor[string, string, string, string] { return nopProc{} }, "w")
		if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "Retention") {
			t.Errorf("%v store without retention: %v", k, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzChangelogKeys checks that the window and session key splitters and
// RestoreChangelog never panic on arbitrary changelog keys, that a key
// they accept round-trips, and that a restore fails exactly when the key
// cannot be split.
func FuzzChangelogKeys(f *testing.F) {
	f.Add([]byte("a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), []byte("v"), int64(0), false)
	f.Add([]byte{}, []byte{}, int64(1), true)
	f.Add([]byte("short"), []byte("v"), int64(5), false)
	f.Fuzz(func(t *testing.T, key, value []byte, ts int64, tombstone bool) {
		if tombstone {
			value = nil
		}
		k, start, werr := stream.SplitWindowStoreKey(key)
		if werr == nil {
			if !bytes.Equal(stream.WindowStoreKey(k, start)[:len(key)-4], key[:len(key)-4]) {
				t.Fatalf("window key %x does not round-trip", key)
			}
		} else if len(key) > 12 {
			t.Fatalf("window key of %d bytes rejected: %v", len(key), werr)
		}
		sk, sstart, send, serr := stream.SplitSessionStoreKey(key)
		if serr == nil {
			if !bytes.Equal(stream.SessionStoreKey(sk, sstart, send), key) {
				t.Fatalf("session key %x does not round-trip", key)
			}
		} else if len(key) > 16 {
			t.Fatalf("session key of %d bytes rejected: %v", len(key), serr)
		}
		recs := []stream.RawRecord{rec(0, key, value, ts)}

		wi := stream.StoreInfo{Name: "w", Kind: stream.WindowKind, Retention: time.Hour}
		ws := openMem(t, wi)
		err := stream.RestoreChangelog(wi, ws, recs)
		if (err != nil) != (werr != nil) {
			t.Fatalf("window restore of %x: %v (split: %v)", key, err, werr)
		}
		if err == nil && value != nil {
			if got, _ := ws.(table.WindowStore).Fetch(k, start); got != nil {
				v, gts, _ := stream.DecodeStoreValue(got)
				if !bytes.Equal(v, value) || gts != ts {
					t.Fatalf("restored %x@%d, want %x@%d", v, gts, value, ts)
				}
			}
		}

		si := stream.StoreInfo{Name: "s", Kind: stream.SessionKind, Retention: time.Hour}
		ss := openMem(t, si)
		err = stream.RestoreChangelog(si, ss, recs)
		wantErr := serr != nil || send < sstart
		if (err != nil) != wantErr {
			t.Fatalf("session restore of %x: %v (split: %v)", key, err, serr)
		}
	})
}
