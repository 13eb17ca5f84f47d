package table

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// flushLog records what a cache's listeners receive, one string per flush:
// "ns: k=v@ts k=<nil>@ts".
type flushLog struct {
	calls []string
	fail  map[string]error // namespace -> error to return
}

func (l *flushLog) listener(ns string) func([]DirtyEntry) error {
	return func(entries []DirtyEntry) error {
		parts := []string{ns + ":"}
		for _, e := range entries {
			v := "<nil>"
			if e.Value != nil {
				v = string(e.Value)
			}
			parts = append(parts, fmt.Sprintf("%s=%s@%d", e.Key, v, e.Timestamp))
		}
		s := strings.Join(parts, " ")
		if err := l.fail[ns]; err != nil {
			l.calls = append(l.calls, s+" FAILED")
			return err
		}
		l.calls = append(l.calls, s)
		return nil
	}
}

// take returns the recorded flushes and forgets them.
func (l *flushLog) take() []string {
	c := l.calls
	l.calls = nil
	return c
}

// newTestCache returns a cache of maxBytes with namespaces registered to log.
func newTestCache(t *testing.T, maxBytes int64, log *flushLog, namespaces ...string) *Cache {
	t.Helper()
	c := NewCache(maxBytes)
	for _, ns := range namespaces {
		c.Register(ns, log.listener(ns))
	}
	return c
}

func put(t *testing.T, c *Cache, ns, key, value string, ts int64) {
	t.Helper()
	if err := c.Put(ns, []byte(key), []byte(value), ts); err != nil {
		t.Fatalf("Put(%s, %s) = %v", ns, key, err)
	}
}

func del(t *testing.T, c *Cache, ns, key string, ts int64) {
	t.Helper()
	if err := c.Put(ns, []byte(key), nil, ts); err != nil {
		t.Fatalf("Put(%s, %s, nil) = %v", ns, key, err)
	}
}

// cached returns "v@ts", "<nil>@ts" for a tombstone or "-" when absent.
func cached(c *Cache, ns, key string) string {
	v, ts, found := c.Get(ns, []byte(key))
	switch {
	case !found:
		return "-"
	case v == nil:
		return fmt.Sprintf("<nil>@%d", ts)
	}
	return fmt.Sprintf("%s@%d", v, ts)
}

// checkCacheInvariants walks the cache's lists and compares them with its
// maps and counters.
func checkCacheInvariants(t *testing.T, c *Cache) {
	t.Helper()
	var size int64
	n := 0
	for e := c.lru.next; e != &c.lru; e = e.next {
		if e.next.prev != e {
			t.Fatalf("LRU list broken at %q", e.key)
		}
		if e.ns.entries[e.key] != e {
			t.Fatalf("LRU entry %q not in its namespace's map", e.key)
		}
		size += e.size()
		n++
	}
	if size != c.SizeBytes() || n != c.Len() {
		t.Fatalf("LRU list holds %d entries of %d bytes; Len %d, SizeBytes %d", n, size, c.Len(), c.SizeBytes())
	}
	total := 0
	for _, name := range c.names {
		ns := c.spaces[name]
		total += len(ns.entries)
		dirty := 0
		for e := ns.dirty.dnext; e != &ns.dirty; e = e.dnext {
			if !e.dirty || e.ns != ns || ns.entries[e.key] != e {
				t.Fatalf("dirty list of %q holds a stray entry %q", name, e.key)
			}
			dirty++
		}
		for _, e := range ns.entries {
			if e.dirty {
				dirty--
			}
		}
		if dirty != 0 || ns.ndirty != countDirty(ns) {
			t.Fatalf("dirty list of %q disagrees with dirty flags", name)
		}
	}
	if total != c.Len() {
		t.Fatalf("namespaces hold %d entries, Len %d", total, c.Len())
	}
}

func countDirty(ns *cacheNamespace) int {
	n := 0
	for _, e := range ns.entries {
		if e.dirty {
			n++
		}
	}
	return n
}

// entrySize is what one entry of a 1-byte key and 1-byte value accounts for.
const entrySize = 2 + cacheEntryOverhead

func TestCache(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		maxBytes int64
		spaces   []string
		// run drives the cache and returns "key=state" lines to compare.
		run       func(t *testing.T, c *Cache, log *flushLog) []string
		wantState []string
		wantCalls []string
	}{
		{
			name:     "LRUEvictionOrder",
			maxBytes: 3 * entrySize,
			spaces:   []string{"s"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s", "a", "1", 1)
				put(t, c, "s", "b", "2", 2)
				put(t, c, "s", "c", "3", 3)
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				c.Get("s", []byte("a"))     // order b, c, a
				put(t, c, "s", "d", "4", 4) // evicts b; order c, a, d
				put(t, c, "s", "c", "5", 5) // order a, d, c
				c.Get("s", []byte("a"))     // order d, c, a
				put(t, c, "s", "e", "6", 6) // evicts d
				return []string{cached(c, "s", "a"), cached(c, "s", "b"), cached(c, "s", "c"),
					cached(c, "s", "d"), cached(c, "s", "e")}
			},
			wantState: []string{"1@1", "-", "5@5", "-", "6@6"},
			// b was clean, d dirty: evicting d flushes its namespace.
			wantCalls: []string{"s: a=1@1 b=2@2 c=3@3", "s: d=4@4 c=5@5 e=6@6"},
		},
		{
			name:     "EvictingDirtyEntryFlushesWholeNamespace",
			maxBytes: 4 * entrySize,
			spaces:   []string{"s1", "s2"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s1", "a", "1", 1)
				put(t, c, "s2", "x", "2", 2)
				put(t, c, "s1", "b", "3", 3)
				put(t, c, "s1", "c", "4", 4)
				put(t, c, "s2", "y", "5", 5) // evicts s1/a: flushes a, b, c
				st := []string{cached(c, "s1", "a"), cached(c, "s1", "b"), cached(c, "s1", "c"),
					cached(c, "s2", "x"), cached(c, "s2", "y"), fmt.Sprint(c.Len())}
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				return st
			},
			wantState: []string{"-", "3@3", "4@4", "2@2", "5@5", "4"},
			wantCalls: []string{
				"s1: a=1@1 b=3@3 c=4@4",
				"s2: x=2@2 y=5@5", // by Flush; s1 is clean by then
			},
		},
		{
			name:     "DirtyOrderIsLatestPutAndRepeatedPutsMerge",
			maxBytes: 1 << 20,
			spaces:   []string{"s"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s", "a", "1", 1)
				put(t, c, "s", "b", "2", 2)
				put(t, c, "s", "a", "3", 3)
				put(t, c, "s", "c", "4", 4)
				put(t, c, "s", "b", "5", 5)
				if err := c.FlushNamespace("s"); err != nil {
					t.Fatal(err)
				}
				if err := c.Flush(); err != nil { // nothing dirty: no call
					t.Fatal(err)
				}
				put(t, c, "s", "c", "6", 6) // a clean entry made dirty again
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				return []string{fmt.Sprint(c.Len())}
			},
			wantState: []string{"3"},
			wantCalls: []string{"s: a=3@3 c=4@4 b=5@5", "s: c=6@6"},
		},
		{
			name:     "Tombstones",
			maxBytes: 1 << 20,
			spaces:   []string{"s"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s", "a", "1", 1)
				del(t, c, "s", "a", 2)
				del(t, c, "s", "b", 3) // a delete of an uncached key is cached too
				put(t, c, "s", "e", "", 4)
				if v, _, _ := c.Get("s", []byte("e")); v == nil {
					t.Error("empty value read back as nil")
				}
				st := []string{cached(c, "s", "a"), cached(c, "s", "b"), cached(c, "s", "e"),
					fmt.Sprint(c.SizeBytes())}
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				return append(st, cached(c, "s", "a"))
			},
			wantState: []string{"<nil>@2", "<nil>@3", "@4", fmt.Sprint(3 * (1 + cacheEntryOverhead)), "<nil>@2"},
			wantCalls: []string{"s: a=<nil>@2 b=<nil>@3 e=@4"},
		},
		{
			name:     "DisabledPassesEachPutThrough",
			maxBytes: 0,
			spaces:   []string{"s"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s", "a", "1", 1)
				put(t, c, "s", "a", "2", 2)
				del(t, c, "s", "a", 3)
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				return []string{cached(c, "s", "a"), fmt.Sprint(c.Len(), c.SizeBytes())}
			},
			wantState: []string{"-", "0 0"},
			wantCalls: []string{"s: a=1@1", "s: a=2@2", "s: a=<nil>@3"},
		},
		{
			name:     "NegativeMaxBytesDisables",
			maxBytes: -1,
			spaces:   []string{"s"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s", "a", "1", 1)
				return []string{cached(c, "s", "a")}
			},
			wantState: []string{"-"},
			wantCalls: []string{"s: a=1@1"},
		},
		{
			name:     "EntryLargerThanCacheIsPassedThrough",
			maxBytes: entrySize,
			spaces:   []string{"s"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s", "a", "1", 1)
				put(t, c, "s", "big", "value", 2)
				return []string{cached(c, "s", "a"), cached(c, "s", "big"), fmt.Sprint(c.Len(), c.SizeBytes())}
			},
			wantState: []string{"-", "-", "0 0"},
			wantCalls: []string{"s: a=1@1 big=value@2"},
		},
		{
			name:     "SizeAccountingAndDrop",
			maxBytes: 1 << 20,
			spaces:   []string{"s1", "s2"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s1", "key", "value", 1)  // 3+5+64
				put(t, c, "s1", "key", "v", 2)      // 3+1+64
				put(t, c, "s2", "other", "valu", 3) // 5+4+64
				del(t, c, "s1", "gone", 4)          // 4+0+64
				st := []string{fmt.Sprint(c.SizeBytes(), c.Len())}
				c.Drop("s1")
				st = append(st, fmt.Sprint(c.SizeBytes(), c.Len()), cached(c, "s1", "key"))
				c.Drop("s2")
				c.Drop("never-registered")
				st = append(st, fmt.Sprint(c.SizeBytes(), c.Len()))
				put(t, c, "s1", "k", "v", 5) // s1 is still registered
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				return st
			},
			wantState: []string{
				fmt.Sprint((3+1+64)+(5+4+64)+(4+0+64), " ", 3),
				fmt.Sprint(9+64, " ", 1), "-",
				"0 0",
			},
			wantCalls: []string{"s1: k=v@5"}, // dropped entries are never flushed
		},
		{
			name:     "FlushOrdersNamespacesByName",
			maxBytes: 1 << 20,
			spaces:   []string{"c", "a", "b"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "c", "k", "1", 1)
				put(t, c, "b", "k", "2", 2)
				put(t, c, "a", "k", "3", 3)
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			wantCalls: []string{"a: k=3@3", "b: k=2@2", "c: k=1@1"},
		},
		{
			name:     "FlushStopsAtListenerErrorAndRetries",
			maxBytes: 1 << 20,
			spaces:   []string{"a", "b", "c"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "a", "k", "1", 1)
				put(t, c, "b", "k", "2", 2)
				put(t, c, "c", "k", "3", 3)
				log.fail = map[string]error{"b": errBoom}
				if err := c.Flush(); !errors.Is(err, errBoom) {
					t.Fatalf("Flush = %v, want %v", err, errBoom)
				}
				checkCacheInvariants(t, c)
				put(t, c, "b", "k2", "4", 4)
				log.fail = nil
				if err := c.Flush(); err != nil { // a is clean: b and c only
					t.Fatal(err)
				}
				return []string{cached(c, "b", "k")}
			},
			wantState: []string{"2@2"},
			wantCalls: []string{"a: k=1@1", "b: k=2@2 FAILED", "b: k=2@2 k2=4@4", "c: k=3@3"},
		},
		{
			name:     "FlushNamespaceError",
			maxBytes: 1 << 20,
			spaces:   []string{"s"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s", "k", "1", 1)
				log.fail = map[string]error{"s": errBoom}
				if err := c.FlushNamespace("s"); !errors.Is(err, errBoom) {
					t.Fatalf("FlushNamespace = %v, want %v", err, errBoom)
				}
				log.fail = nil
				if err := c.FlushNamespace("s"); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			wantCalls: []string{"s: k=1@1 FAILED", "s: k=1@1"},
		},
		{
			name:     "EvictionListenerError",
			maxBytes: 2 * entrySize,
			spaces:   []string{"s", "t"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				put(t, c, "s", "a", "1", 1)
				put(t, c, "t", "b", "2", 2)
				log.fail = map[string]error{"s": errBoom}
				if err := c.Put("t", []byte("c"), []byte("3"), 3); !errors.Is(err, errBoom) {
					t.Fatalf("Put = %v, want %v", err, errBoom)
				}
				checkCacheInvariants(t, c)
				// The write is cached, s/a stays dirty, the cache is over budget.
				st := []string{fmt.Sprint(c.Len(), c.SizeBytes() > c.maxBytes)}
				log.fail = nil
				// The next Put evicts s/a (flushing s again), then t/b
				// (flushing t).
				put(t, c, "t", "d", "4", 4)
				return append(st, cached(c, "s", "a"), cached(c, "t", "b"), cached(c, "t", "c"),
					cached(c, "t", "d"), fmt.Sprint(c.Len()))
			},
			wantState: []string{"3 true", "-", "-", "3@3", "4@4", "2"},
			wantCalls: []string{
				"s: a=1@1 FAILED",
				"s: a=1@1",
				"t: b=2@2 c=3@3 d=4@4",
			},
		},
		{
			name:     "DisabledListenerError",
			maxBytes: 0,
			spaces:   []string{"s"},
			run: func(t *testing.T, c *Cache, log *flushLog) []string {
				log.fail = map[string]error{"s": errBoom}
				if err := c.Put("s", []byte("a"), []byte("1"), 1); !errors.Is(err, errBoom) {
					t.Fatalf("Put = %v, want %v", err, errBoom)
				}
				return []string{fmt.Sprint(c.Len())}
			},
			wantState: []string{"0"},
			wantCalls: []string{"s: a=1@1 FAILED"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &flushLog{}
			c := newTestCache(t, tt.maxBytes, log, tt.spaces...)
			state := tt.run(t, c, log)
			checkCacheInvariants(t, c)
			if !slices.Equal(state, tt.wantState) {
				t.Errorf("state = %q\nwant    %q", state, tt.wantState)
			}
			if calls := log.take(); !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("flushes = %q\nwant      %q", calls, tt.wantCalls)
			}
		})
	}
}

func TestCacheRejects(t *testing.T) {
	for _, maxBytes := range []int64{0, 1 << 20} {
		c := NewCache(maxBytes)
		c.Register("s", func([]DirtyEntry) error { return nil })
		if err := c.Put("s", nil, []byte("v"), 0); !errors.Is(err, ErrEmptyKey) {
			t.Errorf("maxBytes %d: Put(empty key) = %v, want ErrEmptyKey", maxBytes, err)
		}
		if err := c.Put("nope", []byte("k"), []byte("v"), 0); err == nil || !strings.Contains(err.Error(), "not registered") {
			t.Errorf("maxBytes %d: Put(unregistered) = %v", maxBytes, err)
		}
		if err := c.FlushNamespace("nope"); err == nil {
			t.Errorf("maxBytes %d: FlushNamespace(unregistered) = nil", maxBytes)
		}
		if _, _, found := c.Get("nope", []byte("k")); found {
			t.Errorf("maxBytes %d: Get(unregistered) found", maxBytes)
		}
	}
}

func TestCacheCopies(t *testing.T) {
	c := NewCache(1 << 20)
	var got []DirtyEntry
	c.Register("s", func(entries []DirtyEntry) error {
		got = entries
		for _, e := range entries { // the listener owns them
			e.Key[0], e.Value[0] = 'X', 'X'
			_ = append(e.Key, "ZZ"...) // must not overwrite e.Value
		}
		return nil
	})
	k, v := []byte("key"), []byte("val")
	if err := c.Put("s", k, v, 1); err != nil {
		t.Fatal(err)
	}
	k2, v2 := []byte("k2"), []byte("v2")
	if err := c.Put("s", k2, v2, 2); err != nil {
		t.Fatal(err)
	}
	k[0], v[0], k2[0], v2[0] = 'Y', 'Y', 'Y', 'Y' // callers reuse buffers
	if s := cached(c, "s", "key"); s != "val@1" {
		t.Fatalf("after caller reuse: %s, want val@1", s)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if s := cached(c, "s", "key") + " " + cached(c, "s", "k2"); s != "val@1 v2@2" {
		t.Fatalf("after listener writes: %s", s)
	}
	if len(got) != 2 || string(got[0].Key) != "Xey" || string(got[0].Value) != "Xal" ||
		string(got[1].Key) != "X2" || string(got[1].Value) != "X2" {
		t.Fatalf("listener entries = %+v", got)
	}
}

func TestCacheListenerReentry(t *testing.T) {
	c := NewCache(1 << 20)
	var getOther string
	var putErr, flushErr, flushNSErr error
	var dropPanic, registerPanic any
	c.Register("s", func([]DirtyEntry) error {
		getOther = cached(c, "t", "other")
		putErr = c.Put("t", []byte("x"), []byte("y"), 9)
		flushErr = c.Flush()
		flushNSErr = c.FlushNamespace("t")
		func() {
			defer func() { dropPanic = recover() }()
			c.Drop("t")
		}()
		func() {
			defer func() { registerPanic = recover() }()
			c.Register("u", func([]DirtyEntry) error { return nil })
		}()
		return nil
	})
	c.Register("t", func([]DirtyEntry) error { return nil })
	put(t, c, "t", "other", "o", 1)
	put(t, c, "s", "k", "v", 2)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if getOther != "o@1" {
		t.Errorf("Get from listener = %s, want o@1", getOther)
	}
	for name, err := range map[string]error{"Put": putErr, "Flush": flushErr, "FlushNamespace": flushNSErr} {
		if !errors.Is(err, errCacheReentrant) {
			t.Errorf("%s from listener = %v, want errCacheReentrant", name, err)
		}
	}
	if dropPanic == nil || registerPanic == nil {
		t.Errorf("Drop, Register from listener did not panic: %v, %v", dropPanic, registerPanic)
	}
	checkCacheInvariants(t, c)
	if c.Len() != 2 || cached(c, "t", "x") != "-" {
		t.Errorf("listener changed the cache: Len %d", c.Len())
	}
	put(t, c, "s", "k", "w", 3) // usable again after the listener returned
}

func TestCacheRegisterReplacesListener(t *testing.T) {
	c := NewCache(1 << 20)
	var first, second int
	c.Register("s", func(e []DirtyEntry) error { first += len(e); return nil })
	put(t, c, "s", "k", "v", 1)
	c.Register("s", func(e []DirtyEntry) error { second += len(e); return nil })
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if first != 0 || second != 1 || len(c.names) != 1 {
		t.Fatalf("first %d second %d names %q", first, second, c.names)
	}
}

// TestCacheLosesNoWrite drives a small cache with random operations and
// checks that the stores behind it end up with every key's latest write.
func TestCacheLosesNoWrite(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		maxBytes := int64(rng.IntN(20)) * 40 // 0 (disabled) to 760 bytes
		c := NewCache(maxBytes)
		namespaces := []string{"n0", "n1", "n2"}
		stores := map[string]map[string]string{}
		latest := map[string]map[string]*string{}
		for _, ns := range namespaces {
			store := map[string]string{}
			stores[ns], latest[ns] = store, map[string]*string{}
			c.Register(ns, func(entries []DirtyEntry) error {
				seen := map[string]bool{}
				for _, e := range entries {
					if seen[string(e.Key)] {
						t.Fatalf("seed %d: key %q twice in one flush", seed, e.Key)
					}
					seen[string(e.Key)] = true
					if e.Value == nil {
						delete(store, string(e.Key))
					} else {
						store[string(e.Key)] = string(e.Value)
					}
				}
				return nil
			})
		}
		for i := range 2000 {
			ns := namespaces[rng.IntN(len(namespaces))]
			key := fmt.Sprintf("k%d", rng.IntN(30))
			switch r := rng.IntN(100); {
			case r < 55:
				v := strings.Repeat("v", rng.IntN(40))
				put(t, c, ns, key, v, int64(i))
				latest[ns][key] = &v
			case r < 70:
				del(t, c, ns, key, int64(i))
				latest[ns][key] = nil
			case r < 93:
				v, _, found := c.Get(ns, []byte(key))
				want, ok := latest[ns][key]
				if found && (!ok || (want == nil) != (v == nil) || (want != nil && *want != string(v))) {
					t.Fatalf("seed %d op %d: Get(%s, %s) = %q, stale", seed, i, ns, key, v)
				}
			case r < 98:
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
			case r < 99:
				if err := c.FlushNamespace(ns); err != nil {
					t.Fatal(err)
				}
			default:
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				c.Drop(ns) // clean entries only: nothing is lost
			}
			if maxBytes > 0 && c.SizeBytes() > maxBytes {
				t.Fatalf("seed %d op %d: SizeBytes %d > %d", seed, i, c.SizeBytes(), maxBytes)
			}
			if i%97 == 0 {
				checkCacheInvariants(t, c)
			}
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		checkCacheInvariants(t, c)
		for _, ns := range namespaces {
			for key, want := range latest[ns] {
				got, ok := stores[ns][key]
				if want == nil && ok || want != nil && (!ok || got != *want) {
					t.Fatalf("seed %d: store %s key %s = %q (present %v), want %v", seed, ns, key, got, ok, want)
				}
			}
		}
		for _, ns := range namespaces {
			c.Drop(ns)
		}
		if c.SizeBytes() != 0 || c.Len() != 0 {
			t.Fatalf("seed %d: after Drop: SizeBytes %d Len %d", seed, c.SizeBytes(), c.Len())
		}
	}
}

// BenchmarkCachePutGet puts and gets 100-byte values over a hot set of 1,000
// keys in a 10 MiB cache; one op is one Put and one Get.
func BenchmarkCachePutGet(b *testing.B) {
	c := NewCache(10 << 20)
	c.Register("bench", func([]DirtyEntry) error { return nil })
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%05d", i)
	}
	v := make([]byte, 100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := keys[i%len(keys)]
		if err := c.Put("bench", k, v, int64(i)); err != nil {
			b.Fatal(err)
		}
		if _, _, found := c.Get("bench", keys[(i*7)%len(keys)]); !found && i >= len(keys) {
			b.Fatal("hot key not cached")
		}
	}
}
