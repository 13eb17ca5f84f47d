package table

import (
	"errors"
	"fmt"
	"slices"
)

// cacheEntryOverhead is the number of bytes a Cache accounts for each entry
// on top of len(key)+len(value): an estimate of its bookkeeping (the entry,
// its map slot and its list links).
const cacheEntryOverhead = 64

// errCacheReentrant is returned by Put, Flush and FlushNamespace when they
// are called from a flush listener.
var errCacheReentrant = errors.New("table: cache modified from within a flush listener")

// DirtyEntry is one cached write handed to a namespace's flush listener.
type DirtyEntry struct {
	Key       []byte
	Value     []byte // nil: a cached delete (tombstone)
	Timestamp int64  // epoch ms of the write
}

// Cache is a record cache, the equivalent of Kafka Streams' ThreadCache and
// its NamedCaches: it holds recent writes of a task's stores in memory,
// merges repeated writes of a key, and hands them to each store (through the
// flush listener of the store's namespace) when it needs room and at commit
// (Flush).
//
// The cache is bounded by bytes: each entry counts len(key)+len(value)
// plus a fixed overhead of 64 bytes. Entries are evicted least recently used
// first, across all namespaces; Get and Put make an entry the most recently
// used. Evicting a dirty entry (one written since the last flush) first
// flushes every dirty entry of its namespace, as Kafka's NamedCache does.
//
// Put and Get are O(1) amortized. Put copies key and value, so callers may
// reuse their buffers. The entries handed to a flush listener are copies
// owned by the listener.
//
// A flush listener may call Get (which refreshes that entry's LRU position),
// Len and SizeBytes. It must not change the cache: Put, Flush and
// FlushNamespace called from a listener return an error, and Register and
// Drop panic.
//
// A Cache is not safe for concurrent use: it is owned by one task's stream
// thread. Create caches with NewCache.
type Cache struct {
	maxBytes int64
	size     int64
	n        int
	lru      cacheEntry // sentinel: lru.next is the least recently used
	spaces   map[string]*cacheNamespace
	names    []string        // registered namespaces, sorted
	last     *cacheNamespace // the namespace last looked up
	// hit is the entry the last Get found: a read-modify-write (Get,
	// then Put of the same key) finds it without a second map lookup. Nil
	// when that entry may have left the cache.
	hit      *cacheEntry
	flushing bool // a listener is running
}

// cacheEntry is one cached key, linked into the cache's LRU list and, while
// dirty, into its namespace's dirty list.
type cacheEntry struct {
	ns           *cacheNamespace
	key          string
	value        []byte // never modified after Put: Get hands it out
	ts           int64
	dirty        bool
	prev, next   *cacheEntry // LRU list
	dprev, dnext *cacheEntry // dirty list, oldest Put first
}

func (e *cacheEntry) size() int64 {
	return int64(len(e.key)+len(e.value)) + cacheEntryOverhead
}

// cacheNamespace is the part of a Cache that belongs to one store.
type cacheNamespace struct {
	name    string
	flush   func(entries []DirtyEntry) error
	entries map[string]*cacheEntry
	dirty   cacheEntry // sentinel of the dirty list
	ndirty  int
}

func (n *cacheNamespace) resetDirty() {
	n.dirty.dnext, n.dirty.dprev = &n.dirty, &n.dirty
	n.ndirty = 0
}

func (n *cacheNamespace) pushDirty(e *cacheEntry) {
	e.dprev, e.dnext = n.dirty.dprev, &n.dirty
	e.dprev.dnext = e
	n.dirty.dprev = e
	n.ndirty++
}

func (n *cacheNamespace) unlinkDirty(e *cacheEntry) {
	e.dprev.dnext, e.dnext.dprev = e.dnext, e.dprev
	e.dprev, e.dnext = nil, nil
	n.ndirty--
}

// NewCache returns a cache holding at most maxBytes, counting for each entry
// len(key)+len(value) plus an overhead of 64 bytes.
//
// maxBytes <= 0 disables caching: every Put is handed straight to the
// namespace's flush listener as a one-entry flush and nothing is retained.
func NewCache(maxBytes int64) *Cache {
	c := &Cache{maxBytes: maxBytes, spaces: make(map[string]*cacheNamespace)}
	c.lru.prev, c.lru.next = &c.lru, &c.lru
	return c
}

// Register sets the flush listener of namespace ns (one per store). Put to an
// unregistered namespace returns an error. Registering ns again replaces
// its listener and keeps its entries. flush must not be nil.
//
// flush receives the namespace's dirty entries in the order of each key's
// latest Put; the slice and the byte slices in it belong to the listener.
// When flush returns an error the entries stay dirty and are handed over
// again by the next flush of the namespace.
func (c *Cache) Register(ns string, flush func(entries []DirtyEntry) error) {
	if flush == nil {
		panic("table: Cache.Register with a nil flush listener")
	}
	if c.flushing {
		panic("table: Cache.Register called from a flush listener")
	}
	if c.spaces == nil {
		c.spaces = make(map[string]*cacheNamespace)
	}
	if n := c.spaces[ns]; n != nil {
		n.flush = flush
		return
	}
	n := &cacheNamespace{name: ns, flush: flush, entries: make(map[string]*cacheEntry)}
	n.resetDirty()
	c.spaces[ns] = n
	i, _ := slices.BinarySearch(c.names, ns)
	c.names = slices.Insert(c.names, i, ns)
}

// Get returns the cached value of key in ns. found is true for a cached
// tombstone too (value nil). A Get refreshes the entry's LRU position.
//
// The returned value is shared with the cache and must not be modified. The
// cache never modifies it either (a later Put stores a new copy), so it may
// be kept.
func (c *Cache) Get(ns string, key []byte) (value []byte, ts int64, found bool) {
	n := c.namespace(ns)
	if n == nil {
		return nil, 0, false
	}
	e := n.entries[string(key)]
	if e == nil {
		return nil, 0, false
	}
	c.unlinkLRU(e)
	c.pushLRU(e)
	c.hit = e
	return e.value, e.ts, true
}

// Put caches value (nil = delete) for key in ns and marks it dirty. Putting
// a key that is already dirty replaces its value and timestamp: one dirty
// entry, with the latest value, reaches the listener.
//
// When the cache exceeds maxBytes it evicts least-recently-used entries
// (across all namespaces); evicting a dirty entry first flushes all dirty
// entries of that entry's namespace, then drops the evicted entry. Put
// returns the flush listener's error; the write is then cached (still dirty)
// and the cache may stay above maxBytes until a later Put evicts or Flush
// succeeds. With caching disabled (see NewCache) the write is handed to the
// listener and not retained, even when the listener fails.
//
// An empty key is rejected with ErrEmptyKey, as stores reject it.
func (c *Cache) Put(ns string, key, value []byte, ts int64) error {
	if c.flushing {
		return errCacheReentrant
	}
	if len(key) == 0 {
		return ErrEmptyKey
	}
	n := c.namespace(ns)
	if n == nil {
		return notRegistered(ns)
	}
	if c.maxBytes <= 0 {
		return c.call(n, []DirtyEntry{{Key: clone(key), Value: clone(value), Timestamp: ts}})
	}
	v := clone(value) // nil stays nil; empty stays empty, non-nil
	e := c.hit
	if e == nil || e.ns != n || e.key != string(key) {
		e = n.entries[string(key)]
	}
	if e == nil {
		e = &cacheEntry{ns: n, key: string(key), value: v, ts: ts}
		n.entries[e.key] = e
		c.size += e.size()
		c.n++
	} else {
		c.size += int64(len(v) - len(e.value))
		e.value, e.ts = v, ts
		c.unlinkLRU(e)
		if e.dirty {
			n.unlinkDirty(e)
		}
	}
	c.pushLRU(e)
	e.dirty = true
	n.pushDirty(e)
	return c.evict()
}

// namespace returns the namespace called ns, or nil. A task's writes tend
// to come in runs to one store, so it remembers the last one: comparing names
// is cheaper than hashing them.
func (c *Cache) namespace(ns string) *cacheNamespace {
	if n := c.last; n != nil && n.name == ns {
		return n
	}
	n := c.spaces[ns]
	if n != nil {
		c.last = n
	}
	return n
}

// evict drops least recently used entries until the cache fits maxBytes.
func (c *Cache) evict() error {
	for c.size > c.maxBytes && c.lru.next != &c.lru {
		e := c.lru.next
		if e.dirty {
			// A listener cannot remove entries, so e is still cached
			// afterwards, now clean (perhaps no longer least recently used
			// if the listener read it; it is evicted all the same).
			if err := c.flushNamespace(e.ns); err != nil {
				return err
			}
		}
		c.unlinkLRU(e)
		delete(e.ns.entries, e.key)
		c.hit = nil
		c.size -= e.size()
		c.n--
	}
	return nil
}

// Flush hands every dirty entry of every namespace to its listener
// (namespaces in name order; within a namespace, in the order of each key's
// latest Put), then marks them clean: they stay cached. A namespace without
// dirty entries is skipped. Flush stops at and returns the first listener
// error; the entries of that namespace and of the namespaces after it stay
// dirty.
func (c *Cache) Flush() error {
	if c.flushing {
		return errCacheReentrant
	}
	for _, name := range c.names {
		if err := c.flushNamespace(c.spaces[name]); err != nil {
			return err
		}
	}
	return nil
}

// FlushNamespace hands every dirty entry of ns to its listener, in the order
// of each key's latest Put, then marks them clean: they stay cached. When the
// listener fails, FlushNamespace returns its error and the entries stay
// dirty. FlushNamespace of an unregistered namespace returns an error.
func (c *Cache) FlushNamespace(ns string) error {
	if c.flushing {
		return errCacheReentrant
	}
	n := c.spaces[ns]
	if n == nil {
		return notRegistered(ns)
	}
	return c.flushNamespace(n)
}

func (c *Cache) flushNamespace(n *cacheNamespace) error {
	if n.ndirty == 0 {
		return nil
	}
	// Copy keys and values into one buffer: one allocation, owned by the
	// listener. Full slice expressions keep the listener's appends from
	// overwriting neighbours.
	total := 0
	for e := n.dirty.dnext; e != &n.dirty; e = e.dnext {
		total += len(e.key) + len(e.value)
	}
	buf := make([]byte, 0, total)
	entries := make([]DirtyEntry, 0, n.ndirty)
	for e := n.dirty.dnext; e != &n.dirty; e = e.dnext {
		off := len(buf)
		buf = append(buf, e.key...)
		d := DirtyEntry{Key: buf[off:len(buf):len(buf)], Timestamp: e.ts}
		if e.value != nil {
			off = len(buf)
			buf = append(buf, e.value...)
			d.Value = buf[off:len(buf):len(buf)]
		}
		entries = append(entries, d)
	}
	if err := c.call(n, entries); err != nil {
		return err
	}
	for e := n.dirty.dnext; e != &n.dirty; {
		next := e.dnext
		e.dirty, e.dprev, e.dnext = false, nil, nil
		e = next
	}
	n.resetDirty()
	return nil
}

// call runs n's listener, refusing changes to the cache meanwhile.
func (c *Cache) call(n *cacheNamespace, entries []DirtyEntry) error {
	c.flushing = true
	defer func() { c.flushing = false }()
	return n.flush(entries)
}

// Drop drops every entry of ns without flushing, dirty ones included: it is
// used when a task is closed dirty. ns stays registered.
func (c *Cache) Drop(ns string) {
	if c.flushing {
		panic("table: Cache.Drop called from a flush listener")
	}
	n := c.spaces[ns]
	if n == nil {
		return
	}
	for _, e := range n.entries {
		c.unlinkLRU(e)
		c.size -= e.size()
	}
	c.n -= len(n.entries)
	n.entries = make(map[string]*cacheEntry)
	c.hit = nil
	n.resetDirty()
}

// SizeBytes returns the bytes currently accounted: for each entry,
// len(key)+len(value) plus a 64-byte overhead.
func (c *Cache) SizeBytes() int64 { return c.size }

// Len returns the number of cached entries, tombstones included.
func (c *Cache) Len() int { return c.n }

func (c *Cache) pushLRU(e *cacheEntry) {
	e.prev, e.next = c.lru.prev, &c.lru
	e.prev.next = e
	c.lru.prev = e
}

func (c *Cache) unlinkLRU(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func notRegistered(ns string) error {
	return fmt.Errorf("table: cache namespace %q is not registered", ns)
}
