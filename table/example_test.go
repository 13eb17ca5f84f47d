package table_test

import (
	"fmt"
	"log"
	"os"

	"github.com/eddy-streams/eddy/table"
)

func Example() {
	dir, err := os.MkdirTemp("", "eddy-store-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// One badger store per task; the in-memory store has the same API.
	var s table.KeyValueStore
	s, err = table.OpenBadger("counts", dir, table.BadgerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	_ = s.PutAll([]table.KeyValue{
		{Key: []byte("apple"), Value: []byte("3")},
		{Key: []byte("banana"), Value: []byte("1")},
		{Key: []byte("cherry"), Value: []byte("7")},
		{Key: []byte("date"), Value: []byte("2")},
	})
	_ = s.Put([]byte("cherry"), nil) // a nil value deletes, like a tombstone

	v, _ := s.Get([]byte("apple"))
	fmt.Printf("apple=%s entries=%d\n", v, s.ApproximateNumEntries())

	// Range is inclusive on both ends, as in Kafka Streams.
	for kv, err := range s.Range([]byte("banana"), []byte("date")) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s=%s\n", kv.Key, kv.Value)
	}
	if err := s.Flush(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// apple=3 entries=3
	// banana=1
	// date=2
}

func ExampleCache() {
	// One cache per task; each store registers a namespace whose listener
	// writes the flushed entries to the store.
	store := table.NewInMemory("counts")
	defer store.Close()
	cache := table.NewCache(10 << 20)
	cache.Register("counts", func(entries []table.DirtyEntry) error {
		for _, e := range entries {
			if e.Value == nil {
				fmt.Printf("flush delete %s\n", e.Key)
			} else {
				fmt.Printf("flush %s=%s\n", e.Key, e.Value)
			}
			if err := store.Put(e.Key, e.Value); err != nil {
				return err
			}
		}
		return nil
	})

	_ = cache.Put("counts", []byte("apple"), []byte("1"), 1000)
	_ = cache.Put("counts", []byte("banana"), []byte("1"), 1001)
	_ = cache.Put("counts", []byte("apple"), []byte("2"), 1002) // merged with the first write
	_ = cache.Put("counts", []byte("banana"), nil, 1003)        // a cached delete

	v, ts, found := cache.Get("counts", []byte("apple"))
	fmt.Printf("cached apple=%s at %d (%v); %d entries, %d bytes\n", v, ts, found, cache.Len(), cache.SizeBytes())

	// At commit: flush the cache into the stores, then flush the stores.
	if err := cache.Flush(); err != nil {
		log.Fatal(err)
	}
	stored, _ := store.Get([]byte("apple"))
	fmt.Printf("stored apple=%s; %d entries still cached\n", stored, cache.Len())
	// Output:
	// cached apple=2 at 1002 (true); 2 entries, 140 bytes
	// flush apple=2
	// flush delete banana
	// stored apple=2; 2 entries still cached
}
