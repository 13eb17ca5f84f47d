package registry

import (
	"context"
	"errors"
	"sync"
)

// memLog is an in-memory Log for tests: records in a slice, an append
// failure switch, and a count of appends.
type memLog struct {
	mu      sync.Mutex
	recs    []memRecord
	fail    error // non-nil: Append returns it and stores nothing
	closed  bool
	appends int
}

type memRecord struct{ key, value []byte }

func newMemLog() *memLog { return &memLog{} }

var errLogClosed = errors.New("memlog: closed")

func (l *memLog) Replay(ctx context.Context, apply func(key, value []byte) error) error {
	l.mu.Lock()
	recs := append([]memRecord(nil), l.recs...)
	l.mu.Unlock()
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := apply(r.key, r.value); err != nil {
			return err
		}
	}
	return nil
}

func (l *memLog) Append(_ context.Context, key, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLogClosed
	}
	if l.fail != nil {
		return l.fail
	}
	l.appends++
	// Copies: the caller may reuse its slices.
	r := memRecord{key: append([]byte(nil), key...)}
	if value != nil {
		r.value = append([]byte{}, value...)
	}
	l.recs = append(l.recs, r)
	return nil
}

func (l *memLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

func (l *memLog) setFail(err error) {
	l.mu.Lock()
	l.fail = err
	l.mu.Unlock()
}

func (l *memLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}
