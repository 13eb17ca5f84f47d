package table

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
)

func benchStores(b *testing.B, f func(b *testing.B, s KeyValueStore)) {
	b.Run("memory", func(b *testing.B) {
		s := NewInMemory("bench")
		defer s.Close()
		f(b, s)
	})
	b.Run("badger", func(b *testing.B) {
		s, err := OpenBadger("bench", b.TempDir(), BadgerOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		f(b, s)
	})
}

// BenchmarkPut writes 100-byte values over 10,000 keys.
func BenchmarkPut(b *testing.B) {
	benchStores(b, func(b *testing.B, s KeyValueStore) {
		v := bytes.Repeat([]byte{'v'}, 100)
		b.SetBytes(int64(len(v)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := s.Put(fmt.Appendf(nil, "key-%05d", i%10000), v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGet reads 10,000 present keys of 100-byte values.
func BenchmarkGet(b *testing.B) {
	benchStores(b, func(b *testing.B, s KeyValueStore) {
		v := bytes.Repeat([]byte{'v'}, 100)
		batch := make([]KeyValue, 10000)
		keys := make([][]byte, len(batch))
		for i := range batch {
			keys[i] = fmt.Appendf(nil, "key-%05d", i)
			batch[i] = KeyValue{Key: keys[i], Value: v}
		}
		if err := s.PutAll(batch); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			got, err := s.Get(keys[i%len(keys)])
			if err != nil || got == nil {
				b.Fatal(got, err)
			}
		}
	})
}

// captureHandler records log messages.
type captureHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func TestBadgerLogsToSlog(t *testing.T) {
	h := &captureHandler{}
	s, err := OpenBadger("logged", t.TempDir(), BadgerOptions{Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.msgs) == 0 {
		t.Fatal("badger logged nothing through slog on open and close")
	}
	for _, m := range h.msgs {
		if len(m) > 0 && m[len(m)-1] == '\n' {
			t.Errorf("message keeps trailing newline: %q", m)
		}
	}
}
