package table

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// winOpts: retention 100 ms, segments of 50 ms.
var winOpts = SegmentOptions{Retention: 100 * time.Millisecond, SegmentInterval: 50 * time.Millisecond}

// testWindowStore is the conformance suite every WindowStore runs. open
// returns a new, empty store with the given options that the test may close.
func testWindowStore(t *testing.T, open func(t *testing.T, o SegmentOptions) WindowStore) {
	long := SegmentOptions{Retention: time.Hour, SegmentInterval: 10 * time.Millisecond}
	t.Run("PutFetchOverwriteDelete", func(t *testing.T) {
		s := open(t, long)
		mustFetchW(t, s, "a", 0, nil)
		mustPutW(t, s, "a", 0, "1")
		mustPutW(t, s, "a", 5, "2")
		mustFetchW(t, s, "a", 0, []byte("1"))
		mustPutW(t, s, "a", 0, "3")
		mustFetchW(t, s, "a", 0, []byte("3"))
		mustFetchW(t, s, "a", 5, []byte("2"))
		mustFetchW(t, s, "a", 1, nil)
		mustFetchW(t, s, "b", 0, nil)
		if n := s.ApproximateNumEntries(); n != 2 {
			t.Fatalf("entries = %d, want 2", n)
		}
		if err := s.Put([]byte("a"), 0, nil); err != nil {
			t.Fatal(err)
		}
		mustFetchW(t, s, "a", 0, nil)
		if err := s.Put([]byte("a"), 5, []byte{}); err != nil {
			t.Fatal(err)
		}
		v, err := s.Fetch([]byte("a"), 5)
		if err != nil || v == nil || len(v) != 0 {
			t.Fatalf("Fetch after empty Put = %#v, %v; want non-nil empty", v, err)
		}
		if n := s.ApproximateNumEntries(); n != 1 {
			t.Fatalf("entries = %d, want 1", n)
		}
		if s.Name() == "" {
			t.Fatal("empty name")
		}
	})
	t.Run("PutAllMatchesPuts", func(t *testing.T) {
		// A batch gives what the same writes one by one give, including
		// deletes, an empty key's error and expired starts.
		short := SegmentOptions{Retention: 100 * time.Millisecond, SegmentInterval: 10 * time.Millisecond}
		batch := []WindowEntry{
			{Key: []byte("a"), Start: 500, Value: []byte("1")},
			{Key: []byte("b"), Start: 520, Value: []byte("2")},
			{Key: []byte("a"), Start: 300, Value: []byte("old")}, // expired: 300 <= 520 - 100
			{Key: []byte("a"), Start: 500, Value: []byte("3")},
			{Key: []byte("b"), Start: 520, Value: nil},
			{Key: []byte("c"), Start: 450, Value: []byte("4")},
		}
		one, all := open(t, short), open(t, short)
		for _, e := range batch {
			if err := one.Put(e.Key, e.Start, e.Value); err != nil {
				t.Fatal(err)
			}
		}
		if err := all.PutAll(batch); err != nil {
			t.Fatal(err)
		}
		for _, s := range []WindowStore{one, all} {
			mustFetchW(t, s, "a", 500, []byte("3"))
			mustFetchW(t, s, "a", 300, nil)
			mustFetchW(t, s, "b", 520, nil)
			mustFetchW(t, s, "c", 450, []byte("4"))
			if got := s.ObservedStreamTime(); got != 520 {
				t.Fatalf("observed = %d, want 520", got)
			}
			// A start above the observed stream time is absent.
			mustFetchW(t, s, "a", 521, nil)
		}
		if all.ExpiredWrites() != 1 {
			t.Fatalf("PutAll expired writes = %d, want 1", all.ExpiredWrites())
		}
		if err := all.PutAll([]WindowEntry{{Key: nil, Start: 600, Value: []byte("x")}}); !errors.Is(err, ErrEmptyKey) {
			t.Fatalf("PutAll with an empty key = %v, want ErrEmptyKey", err)
		}
	})
	t.Run("FetchRangeOrderAndInclusiveBounds", func(t *testing.T) {
		s := open(t, long)
		// Out of order, over several segments, with keys that share a
		// prefix with "a" and negative starts.
		for _, st := range []int64{30, 0, 20, 10, -5, 25} {
			mustPutW(t, s, "a", st, fmt.Sprint("a", st))
			mustPutW(t, s, "a\x80", st, "x")
			mustPutW(t, s, "ab", st, "x")
			mustPutW(t, s, "0", st, "x")
		}
		for _, c := range []struct {
			from, to int64
			want     []int64
		}{
			{10, 25, []int64{10, 20, 25}},
			{11, 24, []int64{20}},
			{math.MinInt64, math.MaxInt64, []int64{-5, 0, 10, 20, 25, 30}},
			{-5, -5, []int64{-5}},
			{30, 31, []int64{30}},
			{31, 1000, nil},
			{20, 10, nil},
		} {
			var got []int64
			for e, err := range s.FetchRange([]byte("a"), c.from, c.to) {
				if err != nil {
					t.Fatal(err)
				}
				if string(e.Key) != "a" || string(e.Value) != fmt.Sprint("a", e.Start) {
					t.Fatalf("entry %q@%d = %q", e.Key, e.Start, e.Value)
				}
				got = append(got, e.Start)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("FetchRange(a, %d, %d) = %v, want %v", c.from, c.to, got, c.want)
			}
		}
		// Breaking out stops the iteration.
		n := 0
		for range s.FetchRange([]byte("a"), math.MinInt64, math.MaxInt64) {
			n++
			break
		}
		if n != 1 {
			t.Fatalf("break: %d", n)
		}
	})
	t.Run("FetchAllOrderSegmentKeyStart", func(t *testing.T) {
		s := open(t, long) // segments of 10 ms
		for _, p := range []struct {
			k  string
			st int64
		}{{"b", 15}, {"a", 12}, {"b", 3}, {"a", 5}, {"c", 11}, {"a", 18}, {"b", 21}} {
			mustPutW(t, s, p.k, p.st, "v")
		}
		want := "a@5 b@3 a@12 a@18 b@15 c@11 b@21"
		if got := windowList(t, s.All()); got != want {
			t.Fatalf("All = %s, want %s", got, want)
		}
		if got, want := windowList(t, s.FetchAll(5, 15)), "a@5 a@12 b@15 c@11"; got != want {
			t.Fatalf("FetchAll(5, 15) = %s, want %s", got, want)
		}
	})
	t.Run("RetentionEdge", func(t *testing.T) {
		s := open(t, winOpts)
		mustPutW(t, s, "a", 0, "0")
		mustPutW(t, s, "a", 1, "1")
		mustPutW(t, s, "a", 60, "60")
		if s.ObservedStreamTime() != 60 {
			t.Fatalf("observed = %d", s.ObservedStreamTime())
		}
		mustPutW(t, s, "a", 100, "100") // observed 100: start 0 = 100-100 expires, 1 stays
		mustFetchW(t, s, "a", 0, nil)
		mustFetchW(t, s, "a", 1, []byte("1"))
		if got, want := windowList(t, s.FetchRange([]byte("a"), 0, 200)), "a@1 a@60 a@100"; got != want {
			t.Fatalf("FetchRange = %s, want %s", got, want)
		}
		if got, want := windowList(t, s.All()), "a@1 a@60 a@100"; got != want {
			t.Fatalf("All = %s, want %s", got, want)
		}
		// Late write exactly at the edge: skipped and counted; one past it
		// is stored.
		mustPutW(t, s, "b", 0, "late")
		mustFetchW(t, s, "b", 0, nil)
		if n := s.ExpiredWrites(); n != 1 {
			t.Fatalf("expired writes = %d, want 1", n)
		}
		mustPutW(t, s, "b", 1, "ok")
		mustFetchW(t, s, "b", 1, []byte("ok"))
		// Segment 0 ([0, 50)) is still stored: 0, 1 of a and 1 of b.
		if n := s.ApproximateNumEntries(); n != 5 {
			t.Fatalf("entries = %d, want 5", n)
		}
		// observed 150: live from 51; segment 0 ends before 50, dropped.
		mustPutW(t, s, "a", 150, "150")
		if n := s.ApproximateNumEntries(); n != 3 {
			t.Fatalf("entries after expiry = %d, want 3 (60, 100, 150)", n)
		}
		if got, want := windowList(t, s.All()), "a@60 a@100 a@150"; got != want {
			t.Fatalf("All = %s, want %s", got, want)
		}
		// A write to the past, deletes included, does not move stream time.
		mustPutW(t, s, "a", 120, "120")
		if s.ObservedStreamTime() != 150 {
			t.Fatalf("observed = %d", s.ObservedStreamTime())
		}
		// A jump far ahead expires everything before it.
		if err := s.Put([]byte("z"), 10_000, nil); err != nil {
			t.Fatal(err)
		}
		if got := windowList(t, s.All()); got != "" {
			t.Fatalf("All after jump = %s", got)
		}
		if n := s.ApproximateNumEntries(); n != 0 {
			t.Fatalf("entries = %d, want 0", n)
		}
	})
	t.Run("ReaderKeepsSnapshotDuringExpiry", func(t *testing.T) {
		s := open(t, winOpts)
		for st := int64(0); st < 100; st += 10 {
			mustPutW(t, s, "k", st, "v")
		}
		var got []int64
		for e, err := range s.FetchRange([]byte("k"), 0, 1000) {
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				mustPutW(t, s, "k", 1000, "v") // expires every segment read
			}
			got = append(got, e.Start)
		}
		if fmt.Sprint(got) != "[0 10 20 30 40 50 60 70 80 90]" {
			t.Fatalf("snapshot iteration = %v", got)
		}
		if got := windowList(t, s.FetchRange([]byte("k"), 0, 1000)); got != "k@1000" {
			t.Fatalf("after expiry = %s", got)
		}
	})
	t.Run("EmptyKey", func(t *testing.T) {
		s := open(t, long)
		if err := s.Put(nil, 0, []byte("v")); !errors.Is(err, ErrEmptyKey) {
			t.Errorf("Put = %v", err)
		}
		if _, err := s.Fetch([]byte{}, 0); !errors.Is(err, ErrEmptyKey) {
			t.Errorf("Fetch = %v", err)
		}
		for _, err := range s.FetchRange(nil, 0, 10) {
			if !errors.Is(err, ErrEmptyKey) {
				t.Errorf("FetchRange = %v", err)
			}
		}
		if s.ObservedStreamTime() != math.MinInt64 {
			t.Errorf("rejected write moved stream time")
		}
	})
	t.Run("CallerMayReuseBuffers", func(t *testing.T) {
		s := open(t, long)
		k, v := []byte("key"), []byte("val")
		if err := s.Put(k, 7, v); err != nil {
			t.Fatal(err)
		}
		k[0], v[0] = 'X', 'X'
		mustFetchW(t, s, "key", 7, []byte("val"))
		for e := range s.All() {
			e.Key[0], e.Value[0] = 'Y', 'Y'
		}
		mustFetchW(t, s, "key", 7, []byte("val"))
	})
	t.Run("Close", func(t *testing.T) {
		s := open(t, long)
		mustPutW(t, s, "a", 0, "1")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		if err := s.Put([]byte("a"), 0, []byte("v")); !errors.Is(err, ErrClosed) {
			t.Errorf("Put = %v", err)
		}
		if _, err := s.Fetch([]byte("a"), 0); !errors.Is(err, ErrClosed) {
			t.Errorf("Fetch = %v", err)
		}
		if err := s.Flush(); !errors.Is(err, ErrClosed) {
			t.Errorf("Flush = %v", err)
		}
		for _, seq := range []func(func(WindowEntry, error) bool){s.FetchRange([]byte("a"), 0, 1), s.FetchAll(0, 1), s.All()} {
			n := 0
			for _, err := range seq {
				n++
				if !errors.Is(err, ErrClosed) {
					t.Errorf("iterator = %v", err)
				}
			}
			if n != 1 {
				t.Errorf("iterator yielded %d times", n)
			}
		}
	})
	t.Run("ConcurrentReadersWhileWritingAndExpiring", func(t *testing.T) {
		s := open(t, winOpts)
		const n = 2000
		done := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for r := 0; r < 2; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					prev := int64(math.MinInt64)
					for e, err := range s.FetchRange([]byte("k"), math.MinInt64, math.MaxInt64) {
						if err != nil {
							errs <- err
							return
						}
						if e.Start <= prev || string(e.Value) != fmt.Sprint(e.Start) {
							errs <- fmt.Errorf("entry %d (value %q) after %d", e.Start, e.Value, prev)
							return
						}
						prev = e.Start
					}
					for _, err := range s.All() {
						if err != nil {
							errs <- err
							return
						}
					}
				}
			}()
		}
		for i := int64(0); i < n; i++ {
			if err := s.Put([]byte("k"), i, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			if err := s.Put([]byte("other"), i, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// Bounded by retention: at most 100 ms + one 50 ms segment per key.
		if c := s.ApproximateNumEntries(); c > 2*150 {
			t.Fatalf("entries = %d, retention not enforced", c)
		}
	})
}

func mustPutW(t *testing.T, s WindowStore, k string, start int64, v string) {
	t.Helper()
	if err := s.Put([]byte(k), start, []byte(v)); err != nil {
		t.Fatalf("Put(%q, %d) = %v", k, start, err)
	}
}

func mustFetchW(t *testing.T, s WindowStore, k string, start int64, want []byte) {
	t.Helper()
	got, err := s.Fetch([]byte(k), start)
	if err != nil {
		t.Fatalf("Fetch(%q, %d) = %v", k, start, err)
	}
	if (got == nil) != (want == nil) || !bytes.Equal(got, want) {
		t.Fatalf("Fetch(%q, %d) = %q, want %q", k, start, got, want)
	}
}

func windowList(t *testing.T, seq func(func(WindowEntry, error) bool)) string {
	t.Helper()
	var b []byte
	for e, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%s@%d", e.Key, e.Start)
	}
	return string(b)
}

func TestInMemoryWindowStore(t *testing.T) {
	testWindowStore(t, func(t *testing.T, o SegmentOptions) WindowStore {
		s, err := NewInMemoryWindowStore("mem", o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestBadgerWindowStore(t *testing.T) {
	testWindowStore(t, func(t *testing.T, o SegmentOptions) WindowStore {
		s, err := OpenBadgerWindowStore("disk", t.TempDir(), o, BadgerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestBadgerWindowStoreReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBadgerWindowStore("disk", dir, winOpts, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustPutW(t, s, "a", 10, "10")
	mustPutW(t, s, "b", 80, "80") // segment 1, observed 80
	mustPutW(t, s, "a", 60, "60")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBadgerWindowStore("disk", dir, winOpts, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.ObservedStreamTime(); got != 80 {
		t.Fatalf("observed after reopen = %d, want 80", got)
	}
	if got, want := windowList(t, s.All()), "a@10 a@60 b@80"; got != want {
		t.Fatalf("All after reopen = %s, want %s", got, want)
	}
	mustPutW(t, s, "a", 10, "late") // 10 <= 110-100 once observed is 110
	mustPutW(t, s, "a", 110, "110")
	mustPutW(t, s, "a", 10, "late")
	if n := s.ExpiredWrites(); n != 1 {
		t.Fatalf("expired writes = %d, want 1", n)
	}
}

func TestSegmentOptions(t *testing.T) {
	for _, c := range []struct {
		o    SegmentOptions
		want int64
	}{
		{SegmentOptions{Retention: time.Hour}, 30 * 60_000},
		{SegmentOptions{Retention: time.Minute}, 60_000},
		{SegmentOptions{Retention: 0}, 60_000},
		{SegmentOptions{Retention: time.Hour, SegmentInterval: time.Second}, 1000},
	} {
		g, err := newSegmented(NewInMemory("x"), nil, 8, c.o)
		if err != nil {
			t.Fatal(err)
		}
		if g.interval != c.want {
			t.Errorf("%+v: interval %d, want %d", c.o, g.interval, c.want)
		}
	}
	for _, o := range []SegmentOptions{{Retention: -1}, {Retention: time.Hour, SegmentInterval: time.Microsecond}} {
		if _, err := NewInMemoryWindowStore("x", o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	g, _ := newSegmented(NewInMemory("x"), nil, 8, SegmentOptions{Retention: time.Hour, SegmentInterval: 10 * time.Millisecond})
	for t0, want := range map[int64]int64{0: 0, 9: 0, 10: 1, -1: -1, -10: -1, -11: -2} {
		if got := g.segID(t0); got != want {
			t.Errorf("segID(%d) = %d, want %d", t0, got, want)
		}
	}
}

func benchWindowStores(b *testing.B, f func(b *testing.B, s WindowStore)) {
	o := SegmentOptions{Retention: time.Hour}
	b.Run("memory", func(b *testing.B) {
		s, _ := NewInMemoryWindowStore("bench", o)
		defer s.Close()
		f(b, s)
	})
	b.Run("badger", func(b *testing.B) {
		s, err := OpenBadgerWindowStore("bench", b.TempDir(), o, BadgerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		f(b, s)
	})
}

// BenchmarkWindowStorePut writes 100-byte values over 10,000 keys in
// 1-minute windows, stream time advancing one window per 10,000 writes
// (with expiry, retention one hour).
func BenchmarkWindowStorePut(b *testing.B) {
	benchWindowStores(b, func(b *testing.B, s WindowStore) {
		v := bytes.Repeat([]byte{'v'}, 100)
		b.SetBytes(int64(len(v)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := s.Put(fmt.Appendf(nil, "key-%05d", i%10000), int64(i/10000)*60_000, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWindowStoreFetchRange reads the last 10 one-minute windows of a
// key, over 1,000 keys with 60 windows each.
func BenchmarkWindowStoreFetchRange(b *testing.B) {
	benchWindowStores(b, func(b *testing.B, s WindowStore) {
		v := bytes.Repeat([]byte{'v'}, 100)
		for w := int64(0); w < 60; w++ {
			for k := 0; k < 1000; k++ {
				if err := s.Put(fmt.Appendf(nil, "key-%04d", k), w*60_000, v); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			n := 0
			for _, err := range s.FetchRange(fmt.Appendf(nil, "key-%04d", i%1000), 50*60_000, 59*60_000) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 10 {
				b.Fatalf("fetched %d", n)
			}
		}
	})
}

// BenchmarkWindowStoreExpire measures removing one expired segment of
// 10,000 entries (100-byte values): each op fills a segment, then one write
// a retention later expires it.
func BenchmarkWindowStoreExpire(b *testing.B) {
	o := SegmentOptions{Retention: time.Minute, SegmentInterval: time.Minute}
	run := func(b *testing.B, s WindowStore) {
		v := bytes.Repeat([]byte{'v'}, 100)
		keys := make([][]byte, 10000)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "key-%05d", i)
		}
		for i := int64(0); b.Loop(); i++ {
			b.StopTimer()
			for _, k := range keys {
				if err := s.Put(k, i*120_000, v); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			// Observed (i+1)*120 s: live from 60 s + 1 ms later than the
			// filled segment's end, which is expired and removed.
			if err := s.Put([]byte("zz"), (i+1)*120_000, v); err != nil {
				b.Fatal(err)
			}
		}
		if n := s.ApproximateNumEntries(); n > 1 {
			b.Fatalf("entries = %d", n)
		}
	}
	b.Run("memory", func(b *testing.B) {
		s, _ := NewInMemoryWindowStore("bench", o)
		defer s.Close()
		run(b, s)
	})
	b.Run("badger", func(b *testing.B) {
		s, err := OpenBadgerWindowStore("bench", b.TempDir(), o, BadgerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
}
