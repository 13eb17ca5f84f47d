package window

import (
	"math"
	"slices"
	"time"
)

// TimeWindows defines tumbling and hopping windows: fixed-size, half-open
// windows [start, start+size) whose starts are multiples of the advance
// counted from epoch 0. Tumbling windows have advance == size, so every
// timestamp falls into exactly one window; hopping windows have
// advance < size and overlap.
//
// A TimeWindows value is built by [Tumbling] or [Hopping] and refined with
// [TimeWindows.WithGrace]. Invalid arguments do not panic: the value keeps
// the first error, [TimeWindows.Err] returns it, and the computing methods
// return empty results. The zero value is invalid.
type TimeWindows struct {
	size, advance, grace int64
	err                  error
}

// Tumbling defines non-overlapping windows of the given size with no grace
// period, Kafka's TimeWindows.ofSizeWithNoGrace. Sizes are truncated to
// whole milliseconds; a size below one millisecond is an error.
//
// eddy has no 24-hour default grace (Kafka's deprecated TimeWindows.of):
// grace is zero unless set with [TimeWindows.WithGrace], which together
// with Tumbling corresponds to Kafka's ofSizeAndGrace.
func Tumbling(size time.Duration) TimeWindows {
	return Hopping(size, size)
}

// Hopping defines windows of the given size whose starts are advance apart,
// with no grace period (Kafka's ofSizeWithNoGrace(size).advanceBy(advance)).
// The advance must be positive and not larger than the size.
func Hopping(size, advance time.Duration) TimeWindows {
	s, a := millis(size), millis(advance)
	tw := TimeWindows{size: s, advance: a}
	switch {
	case s <= 0:
		tw.err = invalid("window size must be at least 1ms, got %v", size)
	case a <= 0:
		tw.err = invalid("window advance must be at least 1ms, got %v", advance)
	case a > s:
		tw.err = invalid("window advance %v must not be larger than the window size %v", advance, size)
	}
	return tw
}

// WithGrace returns a copy of t that accepts out-of-order records for grace
// after a window's end. A negative grace is an error.
func (t TimeWindows) WithGrace(grace time.Duration) TimeWindows {
	t.grace = millis(grace)
	if t.err == nil && t.grace < 0 {
		t.err = invalid("grace period must not be negative, got %v", grace)
	}
	return t
}

// Err returns the first validation error, or nil when t is valid.
func (t TimeWindows) Err() error {
	if t.err == nil && t.size == 0 {
		return invalid("zero TimeWindows; use Tumbling or Hopping")
	}
	return t.err
}

// Size returns the window size.
func (t TimeWindows) Size() time.Duration { return time.Duration(t.size) * time.Millisecond }

// Advance returns the distance between the starts of consecutive windows.
func (t TimeWindows) Advance() time.Duration { return time.Duration(t.advance) * time.Millisecond }

// Grace returns the grace period.
func (t TimeWindows) Grace() time.Duration { return time.Duration(t.grace) * time.Millisecond }

// SizeMs returns the window size in milliseconds.
func (t TimeWindows) SizeMs() int64 { return t.size }

// GraceMs returns the grace period in milliseconds.
func (t TimeWindows) GraceMs() int64 { return t.grace }

// Tumbling reports whether windows do not overlap (advance == size).
func (t TimeWindows) Tumbling() bool { return t.size == t.advance }

// WindowsFor returns every window containing ts, ordered by start, as
// Kafka's TimeWindows.windowsFor computes them: the first start is
// max(0, ts-size+advance) rounded down to a multiple of advance, and starts
// step by advance while they are <= ts. A negative ts belongs to no window.
// An end that would overflow int64 is clamped to math.MaxInt64.
func (t TimeWindows) WindowsFor(ts int64) []Window {
	return t.AppendWindowsFor(nil, ts)
}

// AppendWindowsFor appends the windows WindowsFor returns to dst and
// returns the extended slice, so that a caller can reuse one slice.
func (t TimeWindows) AppendWindowsFor(dst []Window, ts int64) []Window {
	if t.Err() != nil || ts < 0 {
		return dst
	}
	first := max(0, ts-t.size+t.advance) / t.advance * t.advance
	out := slices.Grow(dst, int((ts-first)/t.advance+1))
	for start := first; start <= ts; start += t.advance {
		out = append(out, Window{Start: start, End: addSat(start, t.size)})
		if start > math.MaxInt64-t.advance {
			break
		}
	}
	return out
}

// WindowFor returns the window starting at start: [start, start+size).
func (t TimeWindows) WindowFor(start int64) Window {
	return Window{Start: start, End: addSat(start, t.size)}
}

// CloseTime returns the stream time at which w closes: w.End + grace.
func (t TimeWindows) CloseTime(w Window) int64 { return addSat(w.End, t.grace) }

// Closed reports whether w no longer accepts records at the given stream
// time. Kafka's KStreamWindowAggregate updates a window only while
// w.End > streamTime - grace, so a window is closed exactly when
// w.End <= streamTime - grace (equivalently w.End + grace <= streamTime).
// With size 10 and grace 5, window [0,10) still takes records at stream
// time 14 and is closed at 15.
func (t TimeWindows) Closed(w Window, streamTime int64) bool {
	return w.End <= streamTime-t.grace
}

// Late reports whether a record at ts is too late for every window it
// belongs to at the given stream time, i.e. all of [TimeWindows.WindowsFor]
// are [TimeWindows.Closed]. Such a record is dropped. A record with a
// negative timestamp belongs to no window and is reported late.
func (t TimeWindows) Late(ts, streamTime int64) bool {
	ws := t.WindowsFor(ts)
	if len(ws) == 0 {
		return true
	}
	// The last window has the largest end.
	return t.Closed(ws[len(ws)-1], streamTime)
}
