package stream_test

import (
	"testing"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// putProc stores each record's value under its key.
type putProc struct {
	store *stream.KeyValueStore[string, string]
}

func (p *putProc) Init(ctx stream.ProcessorContext[string, string]) (err error) {
	p.store, err = stream.KeyValueStoreOf(ctx, "kv", serde.String(), serde.String())
	return err
}
func (p *putProc) Process(r stream.Record[string, string]) error { return p.store.Put(r.Key, r.Value) }
func (p *putProc) Close() error                                  { return nil }

// A Processor API store write carries the timestamp of the record being
// processed: the extracted one, not the raw record's.
func TestProcessorStoreWriteUsesExtractedTimestamp(t *testing.T) {
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "kv", DisableCaching: true})
	in := stream.Stream(b, stream.With(serde.String(), serde.String()).
		WithTimestampExtractor(func(r *stream.RawRecord, _ int64) (int64, error) { return r.Timestamp + 1000, nil }), "in")
	stream.Process(in, func() stream.Processor[string, string, string, string] { return &putProc{} }, "kv")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := streamtest.InputTopic(d, "in", serde.String(), serde.String()).Pipe("k", "v", 5); err != nil {
		t.Fatal(err)
	}
	raw, err := d.Store("kv").Get([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	_, ts, err := stream.DecodeStoreValue(raw)
	if err != nil || ts != 1005 {
		t.Fatalf("stored timestamp %d (%v), want the extracted 1005", ts, err)
	}
}
