package storage_test

import (
	"fmt"
	"os"

	"github.com/eddy-streams/eddy/broker/storage"
	"github.com/eddy-streams/eddy/internal/recordbatch"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "partition")
	defer os.RemoveAll(dir)

	l, err := storage.Open(dir, storage.DefaultConfig(), storage.Options{})
	if err != nil {
		panic(err)
	}
	defer l.Close()

	// A producer's batch: offsets are relative, the log assigns real ones.
	batch := recordbatch.Build(recordbatch.BuildOptions{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]recordbatch.Record{{Offset: 0, Key: []byte("k"), Value: []byte("hello")}, {Offset: 1, Value: []byte("world")}})
	l.Append(batch)
	info, _ := l.Append(batch)
	fmt.Println("second append got offsets", info.FirstOffset, "to", info.LastOffset)

	ri, _ := l.Read(3, 1<<20)
	recs, _ := recordbatch.Records(ri.Records)
	fmt.Println(recs[1].Offset, string(recs[1].Value), "high watermark", ri.HighWatermark)
	// Output:
	// second append got offsets 2 to 3
	// 3 world high watermark 4
}
