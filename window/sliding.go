package window

import "time"

// SlidingWindows defines Kafka's sliding windows: fixed-size windows
// [start, start+timeDifference] that include both bounds, placed where
// records are rather than on a grid. Two records land in a common window
// when their timestamps differ by at most the time difference.
//
// Following Kafka's KStreamSlidingWindowAggregate, a record at t (with
// t >= timeDifference) owns two windows:
//
//   - its left window [t-d, t] ([SlidingWindows.LeftWindow]), which ends at
//     the record and always exists once the record is seen;
//   - its right window [t+1, t+1+d] ([SlidingWindows.RightWindow]), created
//     only when some record of the key lies in (t, t+d], i.e. the window
//     would not be empty.
//
// A record also updates every existing window that contains it. Records
// with 0 <= t < d ("early" records, [SlidingWindows.Early]) cannot have a
// left window with a non-negative start; they all go into the single window
// [0, d] ([SlidingWindows.EarlyWindow]) and still get right windows.
//
// Build with [Sliding] and refine with [SlidingWindows.WithGrace]; check
// [SlidingWindows.Err].
type SlidingWindows struct {
	diff, grace int64
	err         error
	set         bool
}

// Sliding defines sliding windows with the given maximum time difference and
// no grace period (Kafka's SlidingWindows.ofTimeDifferenceWithNoGrace). A
// negative time difference is an error; zero is allowed, as in Kafka.
func Sliding(timeDifference time.Duration) SlidingWindows {
	s := SlidingWindows{diff: millis(timeDifference), set: true}
	if s.diff < 0 {
		s.err = invalid("sliding window time difference must not be negative, got %v", timeDifference)
	}
	return s
}

// WithGrace returns a copy of s with the given grace period (Kafka's
// ofTimeDifferenceAndGrace). A negative grace is an error.
func (s SlidingWindows) WithGrace(grace time.Duration) SlidingWindows {
	s.grace = millis(grace)
	if s.err == nil && s.grace < 0 {
		s.err = invalid("grace period must not be negative, got %v", grace)
	}
	return s
}

// Err returns the first validation error, or nil when s is valid.
func (s SlidingWindows) Err() error {
	if s.err == nil && !s.set {
		return invalid("zero SlidingWindows; use Sliding")
	}
	return s.err
}

// TimeDifference returns the maximum time difference d; every window spans
// d milliseconds and includes both bounds.
func (s SlidingWindows) TimeDifference() time.Duration {
	return time.Duration(s.diff) * time.Millisecond
}

// Grace returns the grace period.
func (s SlidingWindows) Grace() time.Duration { return time.Duration(s.grace) * time.Millisecond }

// TimeDifferenceMs returns the time difference in milliseconds.
func (s SlidingWindows) TimeDifferenceMs() int64 { return s.diff }

// GraceMs returns the grace period in milliseconds.
func (s SlidingWindows) GraceMs() int64 { return s.grace }

// LeftWindow returns the window ending at the record: [t-d, t].
func (s SlidingWindows) LeftWindow(t int64) Window { return Window{Start: t - s.diff, End: t} }

// RightWindow returns the window starting just after the record:
// [t+1, t+1+d]. The aggregation creates it only when a record of the same
// key lies in (t, t+d].
func (s SlidingWindows) RightWindow(t int64) Window {
	return Window{Start: t + 1, End: addSat(t+1, s.diff)}
}

// WindowStarting returns the window starting at start: [start, start+d].
func (s SlidingWindows) WindowStarting(start int64) Window {
	return Window{Start: start, End: addSat(start, s.diff)}
}

// Early reports whether a record at t is an early record (0 <= t < d): its
// left window would start before 0, so it goes into [SlidingWindows.EarlyWindow].
func (s SlidingWindows) Early(t int64) bool { return t >= 0 && t < s.diff }

// EarlyWindow returns [0, d], the window that collects all early records.
func (s SlidingWindows) EarlyWindow() Window { return Window{Start: 0, End: s.diff} }

// LookupRange returns the range of window starts [from, to] that the
// aggregation fetches from the window store for a record at t:
// from = max(0, t-2d) and to = t+1. It covers every window the record
// falls into, the left window of the previous record, and the record's own
// right window if it exists. For an early record from is 0.
func (s SlidingWindows) LookupRange(t int64) (from, to int64) {
	return max(0, t-2*s.diff), t + 1
}

// Late reports whether a record at t is dropped at the given stream time:
// Kafka drops it when even its right window has closed, that is when
// t + 1 + d <= streamTime - grace.
func (s SlidingWindows) Late(t, streamTime int64) bool {
	return t+1+s.diff <= streamTime-s.grace
}

// Closed reports whether window w no longer accepts updates. Sliding
// windows include their end, and Kafka updates one while
// w.End >= streamTime - grace, so it is closed when
// w.End < streamTime - grace (one millisecond later than a time window
// with the same end).
func (s SlidingWindows) Closed(w Window, streamTime int64) bool {
	return w.End < streamTime-s.grace
}

// CloseTime returns the stream time at which w closes: w.End + grace + 1.
func (s SlidingWindows) CloseTime(w Window) int64 { return addSat(addSat(w.End, s.grace), 1) }
