package streamtest_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
	"github.com/eddy-streams/eddy/stream/streamtest"
)

func clicksDriver(t *testing.T, opts ...streamtest.Option) *streamtest.Driver {
	t.Helper()
	b := stream.NewBuilder()
	b.AddStateStore(stream.StoreSpec{Name: "clicks-per-minute", Kind: stream.WindowKind, Retention: 2 * time.Minute})
	b.AddStateStore(stream.StoreSpec{Name: "visits", Kind: stream.SessionKind, Retention: time.Hour})
	b.AddStateStore(stream.StoreSpec{Name: "kv"})
	clicks := stream.Stream(b, stream.With(serde.String(), serde.String()), "clicks")
	stream.Process(clicks, func() stream.Processor[string, string, string, string] { return &minuteCounter{} },
		"clicks-per-minute", "visits", "kv")
	top, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(top, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func strs[T fmt.Stringer](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}

// Window and session store contents, with caching on and off, sorted by
// key then time, without expired windows.
func TestWindowAndSessionStores(t *testing.T) {
	for _, cache := range []int64{0, 1 << 20} {
		t.Run(fmt.Sprint("cache=", cache), func(t *testing.T) {
			d := clicksDriver(t, streamtest.WithCacheMaxBytes(cache))
			in := streamtest.InputTopic(d, "clicks", serde.String(), serde.String())
			for _, c := range []struct {
				user string
				ts   int64
			}{{"b", 10_000}, {"a", 20_000}, {"b", 15_000}, {"ab", 30_000}, {"a", 150_000}, {"a", 170_000}} {
				if err := in.Pipe(c.user, "x", c.ts); err != nil {
					t.Fatal(err)
				}
			}
			ws, err := streamtest.WindowStore(d, "clicks-per-minute", serde.String(), serde.Int64())
			if err != nil {
				t.Fatal(err)
			}
			// Observed stream time 120000 with a 2-minute retention:
			// window 0 is expired (start <= 120000 - 120000).
			if got, want := strs(ws), []string{"a@120000=2@170000"}; !slices.Equal(got, want) {
				t.Errorf("windows %v, want %v", got, want)
			}
			ss, err := streamtest.SessionStore(d, "visits", serde.String(), serde.Int64())
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"a@[20000,20000]=1@20000", "a@[150000,170000]=2@170000", "ab@[30000,30000]=1@30000", "b@[10000,15000]=2@15000"}
			if got := strs(ss); !slices.Equal(got, want) {
				t.Errorf("sessions %v, want %v", got, want)
			}
		})
	}
}

func TestWindowStoreErrors(t *testing.T) {
	d := clicksDriver(t)
	if _, err := streamtest.WindowStore(d, "visits", serde.String(), serde.Int64()); err == nil || !strings.Contains(err.Error(), "not a window store") {
		t.Errorf("WindowStore of a session store: %v", err)
	}
	if _, err := streamtest.SessionStore(d, "clicks-per-minute", serde.String(), serde.Int64()); err == nil || !strings.Contains(err.Error(), "not a session store") {
		t.Errorf("SessionStore of a window store: %v", err)
	}
	if _, err := streamtest.KeyValueStore(d, "visits", serde.String(), serde.Int64()); err == nil || !strings.Contains(err.Error(), "not a key-value store") {
		t.Errorf("KeyValueStore of a session store: %v", err)
	}
	if _, err := streamtest.WindowStore(d, "nope", serde.String(), serde.Int64()); err == nil || !strings.Contains(err.Error(), `no store "nope"`) {
		t.Errorf("unknown store: %v", err)
	}
	// A value serde that does not fit: an error naming the store.
	if err := streamtest.InputTopic(d, "clicks", serde.String(), serde.String()).Pipe("a", "x", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := streamtest.WindowStore(d, "clicks-per-minute", serde.String(), serde.Int32()); err == nil || !strings.Contains(err.Error(), "clicks-per-minute") {
		t.Errorf("wrong value serde: %v", err)
	}
	d.Close()
	if _, err := streamtest.SessionStore(d, "visits", serde.String(), serde.Int64()); !errors.Is(err, streamtest.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
