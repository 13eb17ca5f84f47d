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

// testSessionStore is the conformance suite every SessionStore runs.
func testSessionStore(t *testing.T, open func(t *testing.T, o SegmentOptions) SessionStore) {
	long := SegmentOptions{Retention: time.Hour, SegmentInterval: 10 * time.Millisecond}
	t.Run("PutFetchRemove", func(t *testing.T) {
		s := open(t, long)
		mustFetchS(t, s, "a", 0, 5, nil)
		mustPutS(t, s, "a", 0, 5, "1")
		mustPutS(t, s, "a", 0, 6, "2")
		mustFetchS(t, s, "a", 0, 5, []byte("1"))
		mustFetchS(t, s, "a", 0, 6, []byte("2"))
		mustFetchS(t, s, "a", 1, 5, nil)
		mustPutS(t, s, "a", 0, 5, "3")
		mustFetchS(t, s, "a", 0, 5, []byte("3"))
		if n := s.ApproximateNumEntries(); n != 2 {
			t.Fatalf("entries = %d, want 2", n)
		}
		if err := s.Remove([]byte("a"), 0, 5); err != nil {
			t.Fatal(err)
		}
		mustFetchS(t, s, "a", 0, 5, nil)
		if err := s.Put([]byte("a"), 0, 6, nil); err != nil {
			t.Fatal(err)
		}
		mustFetchS(t, s, "a", 0, 6, nil)
		if err := s.Put([]byte("a"), 7, 7, []byte{}); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Fetch([]byte("a"), 7, 7); err != nil || v == nil || len(v) != 0 {
			t.Fatalf("Fetch after empty Put = %#v, %v", v, err)
		}
		if n := s.ApproximateNumEntries(); n != 1 {
			t.Fatalf("entries = %d, want 1", n)
		}
		if err := s.Put([]byte("a"), 5, 4, []byte("v")); err == nil {
			t.Fatal("end before start accepted")
		}
	})
	t.Run("FindSessions", func(t *testing.T) {
		s := open(t, long)
		for _, p := range [][2]int64{{30, 30}, {0, 5}, {10, 20}, {3, 40}, {12, 20}} {
			mustPutS(t, s, "a", p[0], p[1], fmt.Sprint(p[0], "-", p[1]))
			mustPutS(t, s, "ab", p[0], p[1], "x")
			mustPutS(t, s, "a\x80", p[0], p[1], "x")
			mustPutS(t, s, "0", p[0], p[1], "x")
		}
		for _, c := range []struct {
			earliestEnd, latestStart int64
			want                     string
		}{
			{10, 30, "a[10,20] a[12,20] a[30,30] a[3,40]"},
			{20, 30, "a[10,20] a[12,20] a[30,30] a[3,40]"},
			{21, 30, "a[30,30] a[3,40]"},
			{10, 29, "a[10,20] a[12,20] a[3,40]"},
			{0, 0, "a[0,5]"},
			{41, 100, ""},
			{math.MinInt64, math.MaxInt64, "a[0,5] a[10,20] a[12,20] a[30,30] a[3,40]"},
		} {
			if got := sessionList(t, s.FindSessions([]byte("a"), c.earliestEnd, c.latestStart)); got != c.want {
				t.Errorf("FindSessions(a, %d, %d) = %s, want %s", c.earliestEnd, c.latestStart, got, c.want)
			}
		}
		if got, want := sessionList(t, s.FetchAllSessions([]byte("a"))), "a[0,5] a[10,20] a[12,20] a[30,30] a[3,40]"; got != want {
			t.Errorf("FetchAllSessions = %s, want %s", got, want)
		}
		for e, err := range s.FetchAllSessions([]byte("a")) {
			if err != nil || string(e.Value) != fmt.Sprint(e.Start, "-", e.End) {
				t.Fatalf("entry %+v, %v", e, err)
			}
		}
		// All: by segment (10 ms, of the end), then the bytes of key, end
		// and start: "ab" sorts before "a"+end, as in Kafka Streams.
		want := "0[0,5] ab[0,5] a[0,5] a\x80[0,5] 0[10,20] 0[12,20] ab[10,20] ab[12,20] a[10,20] a[12,20] a\x80[10,20] a\x80[12,20] " +
			"0[30,30] ab[30,30] a[30,30] a\x80[30,30] 0[3,40] ab[3,40] a[3,40] a\x80[3,40]"
		if got := sessionList(t, s.All()); got != want {
			t.Errorf("All = %q\nwant  %q", got, want)
		}
	})
	t.Run("RetentionByEnd", func(t *testing.T) {
		s := open(t, winOpts) // retention 100, segments 50
		mustPutS(t, s, "a", 0, 0, "x")
		mustPutS(t, s, "a", 0, 1, "y")
		mustPutS(t, s, "a", 0, 100, "z") // observed 100: end 0 expires, end 1 stays
		if s.ObservedStreamTime() != 100 {
			t.Fatalf("observed = %d", s.ObservedStreamTime())
		}
		mustFetchS(t, s, "a", 0, 0, nil)
		mustFetchS(t, s, "a", 0, 1, []byte("y"))
		if got, want := sessionList(t, s.FetchAllSessions([]byte("a"))), "a[0,1] a[0,100]"; got != want {
			t.Fatalf("sessions = %s, want %s", got, want)
		}
		mustPutS(t, s, "b", 0, 0, "late")
		if n := s.ExpiredWrites(); n != 1 {
			t.Fatalf("expired writes = %d, want 1", n)
		}
		mustPutS(t, s, "a", 100, 150, "w") // live from 51: segment [0, 50) dropped
		if n := s.ApproximateNumEntries(); n != 2 {
			t.Fatalf("entries = %d, want 2", n)
		}
		if got, want := sessionList(t, s.All()), "a[0,100] a[100,150]"; got != want {
			t.Fatalf("All = %s, want %s", got, want)
		}
	})
	t.Run("EmptyKeyAndClose", func(t *testing.T) {
		s := open(t, long)
		if err := s.Put(nil, 0, 0, []byte("v")); !errors.Is(err, ErrEmptyKey) {
			t.Errorf("Put = %v", err)
		}
		if err := s.Remove([]byte{}, 0, 0); !errors.Is(err, ErrEmptyKey) {
			t.Errorf("Remove = %v", err)
		}
		if _, err := s.Fetch(nil, 0, 0); !errors.Is(err, ErrEmptyKey) {
			t.Errorf("Fetch = %v", err)
		}
		for _, err := range s.FindSessions(nil, 0, 0) {
			if !errors.Is(err, ErrEmptyKey) {
				t.Errorf("FindSessions = %v", err)
			}
		}
		mustPutS(t, s, "a", 0, 0, "v")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Put([]byte("a"), 0, 0, []byte("v")); !errors.Is(err, ErrClosed) {
			t.Errorf("Put after Close = %v", err)
		}
		if _, err := s.Fetch([]byte("a"), 0, 0); !errors.Is(err, ErrClosed) {
			t.Errorf("Fetch after Close = %v", err)
		}
		for _, err := range s.All() {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("All after Close = %v", err)
			}
		}
	})
	t.Run("ConcurrentReadersWhileWritingAndExpiring", func(t *testing.T) {
		s := open(t, winOpts)
		done := make(chan struct{})
		errs := make(chan error, 2)
		var wg sync.WaitGroup
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
				for e, err := range s.FetchAllSessions([]byte("k")) {
					if err != nil {
						errs <- err
						return
					}
					if e.End <= prev || e.End-e.Start != 3 {
						errs <- fmt.Errorf("session %+v after end %d", e, prev)
						return
					}
					prev = e.End
				}
			}
		}()
		for i := int64(3); i < 2000; i++ {
			if err := s.Put([]byte("k"), i-3, i, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if c := s.ApproximateNumEntries(); c > 150 {
			t.Fatalf("entries = %d, retention not enforced", c)
		}
	})
}

func mustPutS(t *testing.T, s SessionStore, k string, start, end int64, v string) {
	t.Helper()
	if err := s.Put([]byte(k), start, end, []byte(v)); err != nil {
		t.Fatalf("Put(%q, %d, %d) = %v", k, start, end, err)
	}
}

func mustFetchS(t *testing.T, s SessionStore, k string, start, end int64, want []byte) {
	t.Helper()
	got, err := s.Fetch([]byte(k), start, end)
	if err != nil {
		t.Fatalf("Fetch(%q, %d, %d) = %v", k, start, end, err)
	}
	if (got == nil) != (want == nil) || !bytes.Equal(got, want) {
		t.Fatalf("Fetch(%q, %d, %d) = %q, want %q", k, start, end, got, want)
	}
}

func sessionList(t *testing.T, seq func(func(SessionEntry, error) bool)) string {
	t.Helper()
	var b []byte
	for e, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = fmt.Appendf(b, "%s[%d,%d]", e.Key, e.Start, e.End)
	}
	return string(b)
}

func TestInMemorySessionStore(t *testing.T) {
	testSessionStore(t, func(t *testing.T, o SegmentOptions) SessionStore {
		s, err := NewInMemorySessionStore("mem", o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestBadgerSessionStore(t *testing.T) {
	testSessionStore(t, func(t *testing.T, o SegmentOptions) SessionStore {
		s, err := OpenBadgerSessionStore("disk", t.TempDir(), o, BadgerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestBadgerSessionStoreReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenBadgerSessionStore("disk", dir, winOpts, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustPutS(t, s, "a", 60, 70, "1")
	mustPutS(t, s, "a", 0, 90, "2") // observed 90
	mustPutS(t, s, "b", 80, 85, "3")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBadgerSessionStore("disk", dir, winOpts, BadgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.ObservedStreamTime(); got != 90 {
		t.Fatalf("observed after reopen = %d, want 90", got)
	}
	if got, want := sessionList(t, s.All()), "a[60,70] a[0,90] b[80,85]"; got != want {
		t.Fatalf("All after reopen = %s, want %s", got, want)
	}
}

func benchSessionStores(b *testing.B, f func(b *testing.B, s SessionStore)) {
	o := SegmentOptions{Retention: time.Hour}
	b.Run("memory", func(b *testing.B) {
		s, _ := NewInMemorySessionStore("bench", o)
		defer s.Close()
		f(b, s)
	})
	b.Run("badger", func(b *testing.B) {
		s, err := OpenBadgerSessionStore("bench", b.TempDir(), o, BadgerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		f(b, s)
	})
}

// BenchmarkSessionStorePut writes 100-byte sessions over 10,000 keys, stream
// time advancing one second per 10,000 writes.
func BenchmarkSessionStorePut(b *testing.B) {
	benchSessionStores(b, func(b *testing.B, s SessionStore) {
		v := bytes.Repeat([]byte{'v'}, 100)
		b.SetBytes(int64(len(v)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			end := int64(i/10000) * 1000
			if err := s.Put(fmt.Appendf(nil, "key-%05d", i%10000), end-500, end, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSessionStoreFindSessions finds the sessions of a key that
// overlap a 10-second interval, over 1,000 keys with 60 sessions each.
func BenchmarkSessionStoreFindSessions(b *testing.B) {
	benchSessionStores(b, func(b *testing.B, s SessionStore) {
		v := bytes.Repeat([]byte{'v'}, 100)
		for w := int64(0); w < 60; w++ {
			for k := 0; k < 1000; k++ {
				if err := s.Put(fmt.Appendf(nil, "key-%04d", k), w*1000, w*1000+500, v); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			n := 0
			for _, err := range s.FindSessions(fmt.Appendf(nil, "key-%04d", i%1000), 50_000, 59_000) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 10 {
				b.Fatalf("found %d", n)
			}
		}
	})
}
