package stream_test

import (
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

// openWindowStore is a processor whose Init opens store as a window store
// with the given serdes, failing the task when that is refused.
type openWindowStore struct {
	store string
	ks    serde.Serde[string]
}

func (p *openWindowStore) Init(ctx stream.ProcessorContext[string, string]) error {
	_, err := stream.WindowStoreOf(ctx, p.store, p.ks, serde.Int64())
	return err
}

func (p *openWindowStore) Process(stream.Record[string, string]) error { return nil }
func (p *openWindowStore) Close() error                                { return nil }

// TestWindowStoreOfErrors: WindowStoreOf refuses a key-value store, an
// undeclared store and a nil serde with an error naming the store.
func TestWindowStoreOfErrors(t *testing.T) {
	for _, tc := range []struct {
		name, store string
		ks          serde.Serde[string]
		want        string
	}{
		{"key-value store", "kv", serde.String(), "not a window store"},
		{"nil serde", "win", nil, "nil serde"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := stream.NewBuilder()
			b.AddStateStore(stream.StoreSpec{Name: "kv"})
			b.AddStateStore(stream.StoreSpec{Name: "win", Kind: stream.WindowKind, Retention: time.Minute})
			in := stream.Stream(b, stream.With(serde.String(), serde.String()), "in")
			stream.Process(in, func() stream.Processor[string, string, string, string] {
				return &openWindowStore{store: tc.store, ks: tc.ks}
			}, "kv", "win")
			top, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			d, err := streamtest.New(top)
			if err == nil {
				d.Close()
				t.Fatalf("New succeeded; want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.store) {
				t.Fatalf("error %q; want it to name %s and contain %q", err, tc.store, tc.want)
			}
		})
	}
}
