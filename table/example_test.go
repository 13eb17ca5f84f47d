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
