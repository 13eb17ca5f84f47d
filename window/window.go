package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalid is wrapped by every validation error of a window definition
// (a non-positive size, a bad advance, a negative grace period, ...).
var ErrInvalid = errors.New("window: invalid window definition")

// ErrInvalidWindow is wrapped by the error a windowed-key deserializer
// returns when the decoded bounds cannot form a window (a negative start, or
// an end before the start).
var ErrInvalidWindow = errors.New("window: invalid window bounds")

// Window is a time interval in epoch milliseconds.
//
// How the bounds are read depends on the window type that produced it:
// windows of [TimeWindows] are half-open, [Start, End); windows of
// [SlidingWindows], [SessionWindows] and [JoinWindows] include both bounds,
// [Start, End]. Use [Window.Contains] or [Window.ContainsInclusive]
// accordingly.
type Window struct {
	// Start is the first millisecond of the window.
	Start int64
	// End is the end of the window: excluded for time windows, included
	// for sliding and session windows.
	End int64
}

// Contains reports whether ts lies in the half-open interval [Start, End),
// the rule for tumbling and hopping windows.
func (w Window) Contains(ts int64) bool { return ts >= w.Start && ts < w.End }

// ContainsInclusive reports whether ts lies in the closed interval
// [Start, End], the rule for sliding and session windows.
func (w Window) ContainsInclusive(ts int64) bool { return ts >= w.Start && ts <= w.End }

// Overlaps reports whether two half-open windows share at least one
// millisecond (Start < o.End && o.Start < End).
func (w Window) Overlaps(o Window) bool { return w.Start < o.End && o.Start < w.End }

// OverlapsInclusive reports whether two closed windows share at least one
// millisecond; windows that touch at a bound overlap.
func (w Window) OverlapsInclusive(o Window) bool { return !(o.End < w.Start || w.End < o.Start) }

// Span returns the smallest window covering both w and o: the earlier start
// and the later end. Merging two sessions yields their span.
func (w Window) Span(o Window) Window {
	return Window{Start: min(w.Start, o.Start), End: max(w.End, o.End)}
}

// Duration returns End - Start as a time.Duration.
func (w Window) Duration() time.Duration { return time.Duration(w.End-w.Start) * time.Millisecond }

// String formats the window as "[Start,End]" with both bounds in
// milliseconds; it does not say whether End is included.
func (w Window) String() string { return fmt.Sprintf("[%d,%d]", w.Start, w.End) }

// millis converts d to whole milliseconds, rounding toward zero as Kafka's
// Duration.toMillis does.
func millis(d time.Duration) int64 { return d.Milliseconds() }

// addSat returns a+b, saturating at math.MaxInt64 / math.MinInt64 instead of
// wrapping around.
func addSat(a, b int64) int64 {
	s := a + b
	if b > 0 && s < a {
		return math.MaxInt64
	}
	if b < 0 && s > a {
		return math.MinInt64
	}
	return s
}

// invalid builds a validation error wrapping ErrInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}
