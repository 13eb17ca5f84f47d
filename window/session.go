package window

import "time"

// SessionWindows defines session windows: per key, activity periods
// separated by gaps of inactivity. A session [start, end] includes both
// bounds; start and end are the timestamps of its first and last record, so
// a session of one record is [t, t].
//
// Following Kafka's KStreamSessionWindowAggregate, a record at t starts the
// session [t, t] and merges with every existing session of its key that
// ends at or after t-gap and starts at or before t+gap
// ([SessionWindows.Mergeable]); the result spans all of them
// ([Window.Span]). The merged session replaces the old ones.
//
// Build with [Session] and refine with [SessionWindows.WithGrace]; check
// [SessionWindows.Err].
type SessionWindows struct {
	gap, grace int64
	err        error
}

// Session defines session windows with the given inactivity gap and no grace
// period (Kafka's SessionWindows.ofInactivityGapWithNoGrace). The gap must be
// at least one millisecond.
func Session(inactivityGap time.Duration) SessionWindows {
	s := SessionWindows{gap: millis(inactivityGap)}
	if s.gap <= 0 {
		s.err = invalid("session inactivity gap must be at least 1ms, got %v", inactivityGap)
	}
	return s
}

// WithGrace returns a copy of s with the given grace period (Kafka's
// ofInactivityGapAndGrace). A negative grace is an error.
func (s SessionWindows) WithGrace(grace time.Duration) SessionWindows {
	s.grace = millis(grace)
	if s.err == nil && s.grace < 0 {
		s.err = invalid("grace period must not be negative, got %v", grace)
	}
	return s
}

// Err returns the first validation error, or nil when s is valid.
func (s SessionWindows) Err() error {
	if s.err == nil && s.gap == 0 {
		return invalid("zero SessionWindows; use Session")
	}
	return s.err
}

// Gap returns the inactivity gap.
func (s SessionWindows) Gap() time.Duration { return time.Duration(s.gap) * time.Millisecond }

// Grace returns the grace period.
func (s SessionWindows) Grace() time.Duration { return time.Duration(s.grace) * time.Millisecond }

// GapMs returns the inactivity gap in milliseconds.
func (s SessionWindows) GapMs() int64 { return s.gap }

// GraceMs returns the grace period in milliseconds.
func (s SessionWindows) GraceMs() int64 { return s.grace }

// NewSession returns the session of a single record at t: [t, t].
func (s SessionWindows) NewSession(t int64) Window { return Window{Start: t, End: t} }

// MergeRange returns the bounds a session store search uses to find the
// sessions a record at t merges with (Kafka's findSessions arguments):
// sessions whose end >= earliestEnd (= t - gap) and whose start <=
// latestStart (= t + gap).
func (s SessionWindows) MergeRange(t int64) (earliestEnd, latestStart int64) {
	return t - s.gap, addSat(t, s.gap)
}

// Mergeable reports whether a record at t merges with session w:
// w.End >= t-gap and w.Start <= t+gap, both inclusive. A record exactly
// gap after a session's end joins it.
func (s SessionWindows) Mergeable(w Window, t int64) bool {
	e, l := s.MergeRange(t)
	return w.End >= e && w.Start <= l
}

// Merge returns the session that results from a record at t merging with the
// given sessions (which should all be [SessionWindows.Mergeable] with t):
// the span of [t, t] and all of them.
func (s SessionWindows) Merge(t int64, sessions ...Window) Window {
	out := s.NewSession(t)
	for _, w := range sessions {
		out = out.Span(w)
	}
	return out
}

// Closed reports whether session w is closed at the given stream time. Kafka
// computes closeTime = streamTime - grace - gap and drops a record whose
// merged session has end < closeTime; so w is closed when
// w.End < streamTime - grace - gap, and still open when
// w.End == streamTime - grace - gap.
func (s SessionWindows) Closed(w Window, streamTime int64) bool {
	return w.End < streamTime-s.grace-s.gap
}

// CloseTime returns the smallest stream time at which w is closed:
// w.End + gap + grace + 1.
func (s SessionWindows) CloseTime(w Window) int64 {
	return addSat(addSat(addSat(w.End, s.gap), s.grace), 1)
}
