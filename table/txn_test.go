package table

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

var txnOpts = BadgerOptions{Transactional: true}

func openTxn(t testing.TB, dir string) *BadgerStore {
	t.Helper()
	s, err := OpenBadger("txn", dir, txnOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// flushingKV flushes a transactional store after every write, so the
// conformance suite exercises reads of flushed data and Flush during
// iteration.
type flushingKV struct{ *BadgerStore }

func (f flushingKV) Put(k, v []byte) error { return f.flush(f.BadgerStore.Put(k, v)) }

func (f flushingKV) PutAll(e []KeyValue) error { return f.flush(f.BadgerStore.PutAll(e)) }

func (f flushingKV) Delete(k []byte) ([]byte, error) {
	old, err := f.BadgerStore.Delete(k)
	return old, f.flush(err)
}

func (f flushingKV) flush(err error) error {
	if err != nil {
		return err
	}
	return f.Flush()
}

type flushingWindow struct{ WindowStore }

func (f flushingWindow) Put(k []byte, start int64, v []byte) error {
	if err := f.WindowStore.Put(k, start, v); err != nil {
		return err
	}
	return f.Flush()
}

func (f flushingWindow) PutAll(e []WindowEntry) error {
	if err := f.WindowStore.PutAll(e); err != nil {
		return err
	}
	return f.Flush()
}

type flushingSession struct{ SessionStore }

func (f flushingSession) Put(k []byte, start, end int64, v []byte) error {
	if err := f.SessionStore.Put(k, start, end, v); err != nil {
		return err
	}
	return f.Flush()
}

func (f flushingSession) Remove(k []byte, start, end int64) error {
	return f.Put(k, start, end, nil)
}

// The conformance suites, on transactional stores that never flush (all
// reads come from the overlay) and that flush after every write.
func TestTxnBadgerStore(t *testing.T) {
	t.Run("NoFlush", func(t *testing.T) {
		testKeyValueStore(t, func(t *testing.T) KeyValueStore { return openTxn(t, t.TempDir()) })
	})
	t.Run("FlushEachWrite", func(t *testing.T) {
		testKeyValueStore(t, func(t *testing.T) KeyValueStore { return flushingKV{openTxn(t, t.TempDir())} })
	})
}

func openTxnWindow(t *testing.T, dir string, o SegmentOptions) WindowStore {
	t.Helper()
	s, err := OpenBadgerWindowStore("txn", dir, o, txnOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openTxnSession(t *testing.T, dir string, o SegmentOptions) SessionStore {
	t.Helper()
	s, err := OpenBadgerSessionStore("txn", dir, o, txnOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestTxnBadgerWindowStore(t *testing.T) {
	t.Run("NoFlush", func(t *testing.T) {
		testWindowStore(t, func(t *testing.T, o SegmentOptions) WindowStore { return openTxnWindow(t, t.TempDir(), o) })
	})
	t.Run("FlushEachWrite", func(t *testing.T) {
		testWindowStore(t, func(t *testing.T, o SegmentOptions) WindowStore {
			return flushingWindow{openTxnWindow(t, t.TempDir(), o)}
		})
	})
}

func TestTxnBadgerSessionStore(t *testing.T) {
	t.Run("NoFlush", func(t *testing.T) {
		testSessionStore(t, func(t *testing.T, o SegmentOptions) SessionStore { return openTxnSession(t, t.TempDir(), o) })
	})
	t.Run("FlushEachWrite", func(t *testing.T) {
		testSessionStore(t, func(t *testing.T, o SegmentOptions) SessionStore {
			return flushingSession{openTxnSession(t, t.TempDir(), o)}
		})
	})
}

// kvList renders a store's entries as "k=v k=v".
func kvList(t *testing.T, seq func(func(KeyValue, error) bool)) string {
	t.Helper()
	var b []byte
	for kv, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%s=%s", kv.Key, kv.Value)
	}
	return string(b)
}

func TestTxnRollback(t *testing.T) {
	dir := t.TempDir()
	s := openTxn(t, dir)
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	mustPut(t, s, "c", "3")
	mustPut(t, s, "e", "")
	if _, err := s.Delete([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// Uncommitted: an overwrite, deletes, new keys, a put then delete.
	mustPut(t, s, "a", "changed")
	if _, err := s.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAll([]KeyValue{{Key: []byte("d"), Value: []byte("4")}, {Key: []byte("e"), Value: nil}, {Key: []byte("c"), Value: []byte("back")}}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "f", "5")
	if _, err := s.Delete([]byte("f")); err != nil {
		t.Fatal(err)
	}
	if got, want := kvList(t, s.All()), "a=changed c=back d=4"; got != want {
		t.Fatalf("before rollback: %s, want %s", got, want)
	}
	if n := s.ApproximateNumEntries(); n != 3 {
		t.Fatalf("entries before rollback = %d, want 3", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened either way, the store holds exactly the flushed state.
	for _, o := range []BadgerOptions{txnOpts, {}} {
		s, err := OpenBadger("txn", dir, o)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kvList(t, s.All()), "a=1 b=2 e="; got != want {
			t.Errorf("after rollback (transactional %v): %s, want %s", o.Transactional, got, want)
		}
		mustGet(t, s, "e", []byte{})
		mustGet(t, s, "c", nil)
		if n := s.ApproximateNumEntries(); n != 3 {
			t.Errorf("entries after rollback = %d, want 3", n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTxnWindowRollback(t *testing.T) {
	dir := t.TempDir()
	s := openTxnWindow(t, dir, winOpts) // retention 100 ms, segments of 50 ms
	mustPutW(t, s, "a", 10, "10")
	mustPutW(t, s, "b", 60, "60")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	mustPutW(t, s, "a", 10, "over")
	if err := s.Put([]byte("b"), 60, nil); err != nil {
		t.Fatal(err)
	}
	mustPutW(t, s, "c", 200, "200") // expires segments 0..1 (a@10, b@60)
	if got, want := windowList(t, s.All()), "c@200"; got != want {
		t.Fatalf("before rollback: %s, want %s", got, want)
	}
	if n := s.ApproximateNumEntries(); n != 1 {
		t.Fatalf("entries before rollback = %d, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTxnWindow(t, dir, winOpts)
	if got := s.ObservedStreamTime(); got != 60 {
		t.Fatalf("observed after rollback = %d, want 60", got)
	}
	if got, want := windowList(t, s.All()), "a@10 b@60"; got != want {
		t.Fatalf("after rollback: %s, want %s", got, want)
	}
	mustFetchW(t, s, "a", 10, []byte("10"))
	if n := s.ApproximateNumEntries(); n != 2 {
		t.Fatalf("entries after rollback = %d, want 2", n)
	}
}

func TestTxnSessionRollback(t *testing.T) {
	dir := t.TempDir()
	s := openTxnSession(t, dir, winOpts)
	mustPutS(t, s, "a", 0, 10, "1")
	mustPutS(t, s, "b", 20, 30, "2")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// Merge a's session into a longer one; drop b's.
	if err := s.Remove([]byte("a"), 0, 10); err != nil {
		t.Fatal(err)
	}
	mustPutS(t, s, "a", 0, 40, "merged")
	if err := s.Remove([]byte("b"), 20, 30); err != nil {
		t.Fatal(err)
	}
	if got, want := sessionList(t, s.All()), "a[0,40]"; got != want {
		t.Fatalf("before rollback: %s, want %s", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTxnSession(t, dir, winOpts)
	if got, want := sessionList(t, s.All()), "a[0,10] b[20,30]"; got != want {
		t.Fatalf("after rollback: %s, want %s", got, want)
	}
	if got := s.ObservedStreamTime(); got != 30 {
		t.Fatalf("observed after rollback = %d, want 30", got)
	}
}

// TestTxnMergeReads checks overlay-over-badger reads at hand-picked
// boundaries: badger holds b, d, f; the overlay adds a, c, g, deletes d and
// overwrites f.
func TestTxnMergeReads(t *testing.T) {
	s := openTxn(t, t.TempDir())
	for _, k := range []string{"b", "d", "f"} {
		mustPut(t, s, k, "disk")
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "c", "g"} {
		mustPut(t, s, k, "mem")
	}
	if _, err := s.Delete([]byte("d")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "f", "mem")
	mustGet(t, s, "b", []byte("disk"))
	mustGet(t, s, "c", []byte("mem"))
	mustGet(t, s, "d", nil)
	mustGet(t, s, "f", []byte("mem"))
	for _, c := range []struct{ from, to, want string }{
		{"", "", "a=mem b=disk c=mem f=mem g=mem"},
		{"b", "f", "b=disk c=mem f=mem"}, // badger keys at both ends
		{"a", "c", "a=mem b=disk c=mem"}, // overlay keys at both ends
		{"c", "d", "c=mem"},              // an end deleted in the overlay
		{"d", "d", ""},
		{"f", "f", "f=mem"},
		{"b", "b", "b=disk"},
		{"g", "", "g=mem"},
		{"", "a", "a=mem"},
		{"bb", "ff", "c=mem f=mem"},
		{"h", "", ""},
	} {
		var from, to []byte
		if c.from != "" {
			from = []byte(c.from)
		}
		if c.to != "" {
			to = []byte(c.to)
		}
		if got := kvList(t, s.Range(from, to)); got != c.want {
			t.Errorf("Range(%q, %q) = %s, want %s", c.from, c.to, got, c.want)
		}
	}
	if n := s.ApproximateNumEntries(); n != 5 {
		t.Fatalf("entries = %d, want 5", n)
	}
}

// TestTxnMergeModel runs random writes and flushes against a transactional
// store and a map, checking every read after every step.
func TestTxnMergeModel(t *testing.T) {
	s := openTxn(t, t.TempDir())
	rng := rand.New(rand.NewPCG(6, 892))
	keys := [][]byte{{0x00}, {0x7f}, {0x80}, {0x80, 0x00}, {0xff}}
	for i := range 20 {
		keys = append(keys, fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "k%d\x00", i))
	}
	model := map[string][]byte{}
	randKey := func() []byte { return keys[rng.IntN(len(keys))] }
	randBound := func() []byte {
		if rng.IntN(8) == 0 {
			return nil
		}
		return randKey()
	}
	randValue := func() []byte {
		if rng.IntN(6) == 0 {
			return nil // delete
		}
		return fmt.Appendf([]byte{}, "%d", rng.IntN(3)) // sometimes empty below
	}
	for step := range 600 {
		switch op := rng.IntN(10); {
		case op < 4:
			k, v := randKey(), randValue()
			if rng.IntN(5) == 0 && v != nil {
				v = []byte{}
			}
			mustPutB(t, s, k, v)
			setModel(model, k, v)
		case op < 6:
			k := randKey()
			old, err := s.Delete(k)
			if err != nil {
				t.Fatal(err)
			}
			if want := model[string(k)]; !bytes.Equal(old, want) || (old == nil) != (want == nil) {
				t.Fatalf("step %d: Delete(%x) = %q, want %q", step, k, old, want)
			}
			delete(model, string(k))
		case op < 9:
			batch := make([]KeyValue, rng.IntN(6))
			for i := range batch {
				batch[i] = KeyValue{Key: randKey(), Value: randValue()}
				setModel(model, batch[i].Key, batch[i].Value)
			}
			if err := s.PutAll(batch); err != nil {
				t.Fatal(err)
			}
		default:
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range keys {
			got, err := s.Get(k)
			want := model[string(k)]
			if err != nil || !bytes.Equal(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("step %d: Get(%x) = %q, %v; want %q", step, k, got, err, want)
			}
		}
		if n := s.ApproximateNumEntries(); n != int64(len(model)) {
			t.Fatalf("step %d: entries = %d, want %d", step, n, len(model))
		}
		for range 4 {
			from, to := randBound(), randBound()
			var inRange []string
			for k := range model {
				kb := []byte(k)
				if (from == nil || bytes.Compare(kb, from) >= 0) && (to == nil || bytes.Compare(kb, to) <= 0) {
					inRange = append(inRange, k)
				}
			}
			slices.Sort(inRange) // Go strings compare as unsigned bytes
			var want []string
			for _, k := range inRange {
				want = append(want, fmt.Sprintf("%x=%s", k, model[k]))
			}
			var got []string
			for kv, err := range s.Range(from, to) {
				if err != nil {
					t.Fatal(err)
				}
				if kv.Value == nil {
					t.Fatalf("step %d: nil value for %x", step, kv.Key)
				}
				got = append(got, fmt.Sprintf("%x=%s", kv.Key, kv.Value))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: Range(%x, %x) = %q, want %q", step, from, to, got, want)
			}
		}
	}
}

func setModel(m map[string][]byte, k, v []byte) {
	if v == nil {
		delete(m, string(k))
		return
	}
	m[string(k)] = bytes.Clone(v)
}

// TestTxnIteratorSnapshot writes, deletes and flushes inside loops over
// All: each loop sees the store as it was when it started.
func TestTxnIteratorSnapshot(t *testing.T) {
	s := openTxn(t, t.TempDir())
	mustPut(t, s, "a", "disk")
	mustPut(t, s, "c", "disk")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "b", "mem")
	mustPut(t, s, "c", "mem")
	var got []string
	for kv, err := range s.All() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%s", kv.Key, kv.Value))
		if string(kv.Key) == "a" {
			mustPut(t, s, "a2", "new")
			mustPut(t, s, "c", "newer")
			if _, err := s.Delete([]byte("b")); err != nil {
				t.Fatal(err)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "d", "after flush")
		}
		kv.Value[0] = 'X' // yielded slices belong to the caller
	}
	if want := []string{"a=disk", "b=mem", "c=mem"}; !slices.Equal(got, want) {
		t.Fatalf("loop saw %q, want %q", got, want)
	}
	if got, want := kvList(t, s.All()), "a=disk a2=new c=newer d=after flush"; got != want {
		t.Fatalf("after the loop: %s, want %s", got, want)
	}
}

// TestTxnConcurrentReaders moves units between keys in PutAll batches that
// keep their sum constant, flushing now and then, while readers check that
// every snapshot (All, also across a Flush) sums to the constant and that
// Get never fails. Run with -race.
func TestTxnConcurrentReaders(t *testing.T) {
	s := openTxn(t, t.TempDir())
	const nkeys, total = 16, 16 * 100
	val := func(n int) []byte { return fmt.Appendf(nil, "%d", n) }
	counts := make([]int, nkeys)
	init := make([]KeyValue, nkeys)
	for i := range init {
		counts[i] = total / nkeys
		init[i] = KeyValue{Key: fmt.Appendf(nil, "k%02d", i), Value: val(counts[i])}
	}
	if err := s.PutAll(init); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	var snapshots sync.WaitGroup // each reader has read at least once
	for range 3 {
		wg.Add(1)
		snapshots.Add(1)
		go func() {
			defer wg.Done()
			first := true
			defer func() {
				if first {
					snapshots.Done()
				}
			}()
			for {
				sum := 0
				for kv, err := range s.All() {
					if err != nil {
						errc <- err
						return
					}
					var n int
					if _, err := fmt.Sscan(string(kv.Value), &n); err != nil {
						errc <- fmt.Errorf("value %q of %s: %v", kv.Value, kv.Key, err)
						return
					}
					sum += n
				}
				if sum != total {
					errc <- fmt.Errorf("snapshot sums to %d, want %d", sum, total)
					return
				}
				if v, err := s.Get([]byte("k00")); err != nil || v == nil {
					errc <- fmt.Errorf("Get(k00) = %q, %v", v, err)
					return
				}
				_ = s.UncommittedBytes()
				_ = s.ApproximateNumEntries()
				if first {
					first = false
					snapshots.Done()
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	snapshots.Wait()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		from, to := rng.IntN(nkeys), rng.IntN(nkeys)
		if from == to || counts[from] == 0 {
			continue
		}
		counts[from]--
		counts[to]++
		err := s.PutAll([]KeyValue{
			{Key: fmt.Appendf(nil, "k%02d", from), Value: val(counts[from])},
			{Key: fmt.Appendf(nil, "k%02d", to), Value: val(counts[to])},
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestTxnUncommittedBytes(t *testing.T) {
	s := openTxn(t, t.TempDir())
	if n := s.UncommittedBytes(); n != 0 {
		t.Fatalf("empty store: %d", n)
	}
	mustPut(t, s, "key", "value") // 3 + 5
	if n := s.UncommittedBytes(); n != 8 {
		t.Fatalf("after one put: %d, want 8", n)
	}
	mustPut(t, s, "key", "v") // replaces: 3 + 1
	if n := s.UncommittedBytes(); n != 4 {
		t.Fatalf("after an overwrite: %d, want 4", n)
	}
	mustPut(t, s, "k2", "vv")
	if n := s.UncommittedBytes(); n != 8 {
		t.Fatalf("after a second key: %d, want 8", n)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := s.UncommittedBytes(); n != 0 {
		t.Fatalf("after Flush: %d", n)
	}
	if _, err := s.Delete([]byte("key")); err != nil {
		t.Fatal(err)
	}
	if n := s.UncommittedBytes(); n != 3 {
		t.Fatalf("after a delete: %d, want 3 (the key)", n)
	}

	// Window and session stores report their store's bytes; they grow
	// with writes and drop to 0 at Flush.
	w := openTxnWindow(t, t.TempDir(), winOpts)
	ss := openTxnSession(t, t.TempDir(), winOpts)
	for _, st := range []interface {
		Uncommitted
		Flush() error
	}{w.(Uncommitted).(windowStore), ss.(Uncommitted).(sessionStore)} {
		prev := st.UncommittedBytes()
		for i := range 3 {
			switch x := st.(type) {
			case windowStore:
				mustPutW(t, x, "k", int64(i), "v")
			case sessionStore:
				mustPutS(t, x, "k", 0, int64(i), "v")
			}
			n := st.UncommittedBytes()
			if n <= prev {
				t.Fatalf("%T: %d bytes after a write, %d before", st, n, prev)
			}
			prev = n
		}
		if err := st.Flush(); err != nil {
			t.Fatal(err)
		}
		if n := st.UncommittedBytes(); n != 0 {
			t.Fatalf("%T after Flush: %d", st, n)
		}
	}

	// Non-transactional stores hold nothing.
	plain, err := OpenBadger("plain", t.TempDir(), BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	mustPut(t, plain, "k", "v")
	if n := plain.UncommittedBytes(); n != 0 {
		t.Fatalf("non-transactional: %d", n)
	}
	mem, err := NewInMemoryWindowStore("mem", winOpts)
	if err != nil {
		t.Fatal(err)
	}
	if n := mem.(Uncommitted).UncommittedBytes(); n != 0 {
		t.Fatalf("in-memory window store: %d", n)
	}
}

// TestTxnLargeFlush flushes an overlay far larger than one badger
// transaction.
func TestTxnLargeFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("large")
	}
	dir := t.TempDir()
	s := openTxn(t, dir)
	const n = 200_000
	batch := make([]KeyValue, 0, 1000)
	v := bytes.Repeat([]byte{'v'}, 64)
	for i := range n {
		batch = append(batch, KeyValue{Key: fmt.Appendf(nil, "key-%07d", i), Value: v})
		if len(batch) == cap(batch) {
			if err := s.PutAll(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := s.Delete([]byte("key-0000007")); err != nil {
		t.Fatal(err)
	}
	if got := s.UncommittedBytes(); got < n*64 {
		t.Fatalf("uncommitted bytes = %d, want >= %d", got, n*64)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := s.UncommittedBytes(); got != 0 {
		t.Fatalf("uncommitted bytes after Flush = %d", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenBadger("txn", dir, BadgerOptions{}) // recounts badger's keys
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.ApproximateNumEntries(); got != n-1 {
		t.Fatalf("entries = %d, want %d", got, n-1)
	}
	mustGet(t, s, "key-0000007", nil)
	mustGet(t, s, "key-0199999", v)
}

func TestTxnFlushAndReadAfterClose(t *testing.T) {
	s := openTxn(t, t.TempDir())
	mustPut(t, s, "a", "1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Delete([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Delete after Close = %v, want ErrClosed", err)
	}
	if n := s.UncommittedBytes(); n != 0 {
		t.Fatalf("UncommittedBytes after Close = %d", n)
	}
}

// BenchmarkTxnPutGet puts then gets a 100-byte value over 10,000 keys, on
// a plain badger store and on transactional ones that flush every 1,000
// writes (about one commit interval of a busy task) or never.
func BenchmarkTxnPutGet(b *testing.B) {
	for _, c := range []struct {
		name       string
		o          BadgerOptions
		flushEvery int
	}{
		{"plain", BadgerOptions{}, 0},
		{"txn-flush1000", txnOpts, 1000},
		{"txn-noflush", txnOpts, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := OpenBadger("bench", b.TempDir(), c.o)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			v := bytes.Repeat([]byte{'v'}, 100)
			keys := make([][]byte, 10000)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key-%05d", i)
			}
			b.ReportAllocs()
			start := time.Now()
			i := 0
			for b.Loop() {
				k := keys[i%len(keys)]
				if err := s.Put(k, v); err != nil {
					b.Fatal(err)
				}
				if got, err := s.Get(k); err != nil || len(got) != len(v) {
					b.Fatalf("Get = %d bytes, %v", len(got), err)
				}
				if i++; c.flushEvery > 0 && i%c.flushEvery == 0 {
					if err := s.Flush(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(i)/time.Since(start).Seconds(), "putgets/s")
		})
	}
}

// The tests check the transactional stores' counts after each write.
func init() { RecountInterval = 0 }

// TestTxnBackgroundRecount: with a non-zero RecountInterval the count of a
// transactional store is refreshed in the background (the caller gets the
// last count at once), and Close waits for a recount in flight.
func TestTxnBackgroundRecount(t *testing.T) {
	defer func(old time.Duration) { RecountInterval = old }(RecountInterval)
	RecountInterval = time.Millisecond
	s := openTxn(t, t.TempDir())
	for i := range 300 {
		if err := s.Put(fmt.Appendf(nil, "k%04d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.ApproximateNumEntries() != 300 {
		if time.Now().After(deadline) {
			t.Fatalf("count %d, want 300", s.ApproximateNumEntries())
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	if _, err := s.Delete([]byte("k0000")); err != nil {
		t.Fatal(err)
	}
	s.ApproximateNumEntries() // may start a recount Close must wait for
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
