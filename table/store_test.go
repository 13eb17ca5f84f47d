package table

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

// testKeyValueStore is the conformance suite every KeyValueStore runs.
// open returns a new, empty store that the test may close.
func testKeyValueStore(t *testing.T, open func(t *testing.T) KeyValueStore) {
	t.Run("PutGetOverwriteDelete", func(t *testing.T) {
		s := open(t)
		mustGet(t, s, "a", nil)
		mustPut(t, s, "a", "1")
		mustGet(t, s, "a", []byte("1"))
		mustPut(t, s, "a", "2")
		mustGet(t, s, "a", []byte("2"))
		if n := s.ApproximateNumEntries(); n != 1 {
			t.Fatalf("entries = %d, want 1", n)
		}
		old, err := s.Delete([]byte("a"))
		if err != nil || string(old) != "2" {
			t.Fatalf("Delete = %q, %v; want \"2\"", old, err)
		}
		mustGet(t, s, "a", nil)
		old, err = s.Delete([]byte("a"))
		if err != nil || old != nil {
			t.Fatalf("second Delete = %q, %v; want nil", old, err)
		}
		if n := s.ApproximateNumEntries(); n != 0 {
			t.Fatalf("entries = %d, want 0", n)
		}
	})
	t.Run("NilValueDeletesEmptyValueStored", func(t *testing.T) {
		s := open(t)
		if err := s.Put([]byte("k"), []byte{}); err != nil {
			t.Fatal(err)
		}
		v, err := s.Get([]byte("k"))
		if err != nil || v == nil || len(v) != 0 {
			t.Fatalf("Get after empty Put = %#v, %v; want non-nil empty", v, err)
		}
		if err := s.Put([]byte("k"), nil); err != nil {
			t.Fatal(err)
		}
		mustGet(t, s, "k", nil)
		if n := s.ApproximateNumEntries(); n != 0 {
			t.Fatalf("entries = %d, want 0", n)
		}
	})
	t.Run("EmptyKeyRejected", func(t *testing.T) {
		s := open(t)
		for name, err := range map[string]error{
			"Put":    s.Put(nil, []byte("v")),
			"PutAll": s.PutAll([]KeyValue{{Key: []byte("ok"), Value: []byte("v")}, {Key: []byte{}, Value: []byte("v")}}),
		} {
			if !errors.Is(err, ErrEmptyKey) {
				t.Errorf("%s(empty key) = %v, want ErrEmptyKey", name, err)
			}
		}
		if _, err := s.Get(nil); !errors.Is(err, ErrEmptyKey) {
			t.Errorf("Get(nil) = %v", err)
		}
		if _, err := s.Delete([]byte{}); !errors.Is(err, ErrEmptyKey) {
			t.Errorf("Delete(empty) = %v", err)
		}
		mustGet(t, s, "ok", nil) // a rejected PutAll writes nothing
	})
	t.Run("CallerMayReuseBuffers", func(t *testing.T) {
		s := open(t)
		k, v := []byte("key"), []byte("val")
		mustPutB(t, s, k, v)
		k[0], v[0] = 'X', 'X'
		mustGet(t, s, "key", []byte("val"))
		got, _ := s.Get([]byte("key"))
		got[0] = 'Y'
		mustGet(t, s, "key", []byte("val"))
	})
	t.Run("OrderAndRange", func(t *testing.T) {
		s := open(t)
		// Unsigned byte order: 0x7f < 0x80 < 0xff; prefixes sort first.
		keys := [][]byte{{0xff}, {0x80}, {0x7f}, {0x00}, []byte("a"), []byte("ab"), []byte("b"), {0x80, 0x00}}
		for _, k := range keys {
			mustPutB(t, s, k, append([]byte("v"), k...))
		}
		want := slices.Clone(keys)
		slices.SortFunc(want, bytes.Compare)
		if got := collectKeys(t, s.All()); !equalKeys(got, want) {
			t.Fatalf("All keys = %x, want %x", got, want)
		}
		if n := s.ApproximateNumEntries(); n != int64(len(keys)) {
			t.Fatalf("entries = %d, want %d", n, len(keys))
		}
		for _, tc := range []struct {
			from, to []byte
			want     [][]byte
		}{
			{[]byte("a"), []byte("b"), [][]byte{[]byte("a"), []byte("ab"), []byte("b")}}, // inclusive both ends
			{[]byte("aa"), []byte("az"), [][]byte{[]byte("ab")}},
			{[]byte("ab"), []byte("ab"), [][]byte{[]byte("ab")}},
			{[]byte("b"), []byte("a"), nil}, // from > to: empty
			{[]byte("c"), []byte("d"), nil},
			{nil, []byte{0x7f}, [][]byte{{0x00}, []byte("a"), []byte("ab"), []byte("b"), {0x7f}}},
			{[]byte{0x80}, nil, [][]byte{{0x80}, {0x80, 0x00}, {0xff}}},
			{nil, nil, want},
		} {
			got := collectKeys(t, s.Range(tc.from, tc.to))
			if !equalKeys(got, tc.want) {
				t.Errorf("Range(%x, %x) = %x, want %x", tc.from, tc.to, got, tc.want)
			}
		}
		// Values match keys; breaking early stops the iteration.
		n := 0
		for kv, err := range s.All() {
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(kv.Value, append([]byte("v"), kv.Key...)) {
				t.Fatalf("value of %x = %x", kv.Key, kv.Value)
			}
			if n++; n == 3 {
				break
			}
		}
	})
	t.Run("IteratorIsSnapshot", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "a", "1")
		mustPut(t, s, "b", "2")
		var got []string
		for kv, err := range s.All() {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(kv.Key))
			if string(kv.Key) == "a" {
				mustPut(t, s, "c", "3") // written during the loop: not seen
			}
		}
		if !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("keys = %q, want [a b]", got)
		}
		mustGet(t, s, "c", []byte("3"))
	})
	t.Run("PutAll", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "gone", "x")
		err := s.PutAll([]KeyValue{
			{Key: []byte("k1"), Value: []byte("a")},
			{Key: []byte("k2"), Value: []byte("b")},
			{Key: []byte("k1"), Value: []byte("c")}, // later entry wins
			{Key: []byte("gone"), Value: nil},
		})
		if err != nil {
			t.Fatal(err)
		}
		mustGet(t, s, "k1", []byte("c"))
		mustGet(t, s, "k2", []byte("b"))
		mustGet(t, s, "gone", nil)
		if n := s.ApproximateNumEntries(); n != 2 {
			t.Fatalf("entries = %d, want 2", n)
		}
		// A batch larger than one badger transaction still applies fully.
		big := make([]KeyValue, 20000)
		for i := range big {
			big[i] = KeyValue{Key: fmt.Appendf(nil, "big-%06d", i), Value: bytes.Repeat([]byte{'v'}, 64)}
		}
		if err := s.PutAll(big); err != nil {
			t.Fatal(err)
		}
		if n := s.ApproximateNumEntries(); n != 20002 {
			t.Fatalf("entries = %d, want 20002", n)
		}
		if got := collectKeys(t, s.Range([]byte("big-"), []byte("big-\xff"))); len(got) != len(big) {
			t.Fatalf("range over big batch = %d keys, want %d", len(got), len(big))
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ConcurrentReaders", func(t *testing.T) {
		s := open(t)
		const n = 300
		var wg sync.WaitGroup
		done := make(chan struct{})
		errc := make(chan error, 4)
		var started sync.WaitGroup
		mustPut(t, s, "k0000", "k0000")
		for r := 0; r < 3; r++ {
			wg.Add(1)
			started.Add(1)
			go func() {
				defer wg.Done()
				first := true
				defer func() {
					if first { // an early error return must not block the writer
						started.Done()
					}
				}()
				for {
					if !first {
						select {
						case <-done:
							return
						default:
						}
					}
					// Values only grow in this test, and every key present
					// holds its own name as value.
					var prev []byte
					for kv, err := range s.All() {
						if err != nil {
							errc <- err
							return
						}
						if prev != nil && bytes.Compare(prev, kv.Key) >= 0 {
							errc <- fmt.Errorf("out of order: %q then %q", prev, kv.Key)
							return
						}
						if !bytes.Equal(kv.Key, kv.Value) {
							errc <- fmt.Errorf("torn entry %q=%q", kv.Key, kv.Value)
							return
						}
						prev = kv.Key
					}
					if v, err := s.Get([]byte("k0000")); err != nil || (v != nil && string(v) != "k0000") {
						errc <- fmt.Errorf("Get = %q, %v", v, err)
						return
					}
					_ = s.ApproximateNumEntries()
					if first {
						first = false
						started.Done()
					}
				}
			}()
		}
		started.Wait() // every reader is running before the writer starts
		for i := 0; i < n; i++ {
			k := fmt.Appendf(nil, "k%04d", i)
			if err := s.Put(k, k); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				if _, err := s.Delete(fmt.Appendf(nil, "k%04d", i/2)); err != nil {
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
	})
	t.Run("Close", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "a", "1")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		if err := s.Put([]byte("a"), []byte("2")); !errors.Is(err, ErrClosed) {
			t.Errorf("Put after Close = %v, want ErrClosed", err)
		}
		if _, err := s.Get([]byte("a")); !errors.Is(err, ErrClosed) {
			t.Errorf("Get after Close = %v, want ErrClosed", err)
		}
		for _, err := range s.All() {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("All after Close yielded %v, want ErrClosed", err)
			}
		}
	})
}

func mustPut(t *testing.T, s KeyValueStore, k, v string) {
	t.Helper()
	mustPutB(t, s, []byte(k), []byte(v))
}

func mustPutB(t *testing.T, s KeyValueStore, k, v []byte) {
	t.Helper()
	if err := s.Put(k, v); err != nil {
		t.Fatalf("Put(%q) = %v", k, err)
	}
}

func mustGet(t *testing.T, s KeyValueStore, k string, want []byte) {
	t.Helper()
	got, err := s.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q) = %v", k, err)
	}
	if (got == nil) != (want == nil) || !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q (nil %v), want %q (nil %v)", k, got, got == nil, want, want == nil)
	}
}

func collectKeys(t *testing.T, seq func(func(KeyValue, error) bool)) [][]byte {
	t.Helper()
	var keys [][]byte
	for kv, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, kv.Key)
	}
	return keys
}

func equalKeys(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

func TestInMemoryStore(t *testing.T) {
	testKeyValueStore(t, func(t *testing.T) KeyValueStore {
		s := NewInMemory("mem")
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestBadgerStore(t *testing.T) {
	testKeyValueStore(t, func(t *testing.T) KeyValueStore {
		s, err := OpenBadger("disk", t.TempDir(), BadgerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestBadgerStoreReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBadger("disk", dir, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	mustPut(t, s, "c", "3")
	if _, err := s.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]byte("e"), []byte{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBadger("disk", dir, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustGet(t, s, "a", []byte("1"))
	mustGet(t, s, "b", nil)
	mustGet(t, s, "c", []byte("3"))
	mustGet(t, s, "e", []byte{})
	if n := s.ApproximateNumEntries(); n != 3 {
		t.Fatalf("entries after reopen = %d, want 3", n)
	}
	if got := collectKeys(t, s.All()); !equalKeys(got, [][]byte{[]byte("a"), []byte("c"), []byte("e")}) {
		t.Fatalf("keys after reopen = %q", got)
	}
}

func TestBadgerOpenSameDirTwiceFails(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBadger("disk", dir, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := OpenBadger("disk", dir, BadgerOptions{}); err == nil {
		s2.Close()
		t.Fatal("second OpenBadger of the same dir succeeded")
	}
}
