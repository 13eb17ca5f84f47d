package window

import "time"

// JoinWindows defines the window of a stream-stream join. A left record at
// tL and a right record at tR of the same key join when
//
//	tL - before <= tR <= tL + after
//
// with both bounds included. [JoinWindowsOf] sets before = after = d, so
// records join when |tL - tR| <= d. The output record's timestamp is
// max(tL, tR).
//
// before or after may be negative (a window entirely after or before the
// left record) as long as before + after >= 0.
//
// Build with [JoinWindowsOf] and refine with [JoinWindows.Before],
// [JoinWindows.After] and [JoinWindows.WithGrace]; check [JoinWindows.Err].
type JoinWindows struct {
	before, after, grace int64
	err                  error
	set                  bool
}

// JoinWindowsOf defines a symmetric join window: records join when their
// timestamps differ by at most d. There is no grace period (Kafka's
// JoinWindows.ofTimeDifferenceWithNoGrace; eddy has no 24-hour default
// grace). A negative d is an error.
func JoinWindowsOf(d time.Duration) JoinWindows {
	ms := millis(d)
	return JoinWindows{before: ms, after: ms, set: true}.validate()
}

// Before returns a copy of j in which a right record may be up to d before
// the left record.
func (j JoinWindows) Before(d time.Duration) JoinWindows {
	j.before = millis(d)
	return j.validate()
}

// After returns a copy of j in which a right record may be up to d after
// the left record.
func (j JoinWindows) After(d time.Duration) JoinWindows {
	j.after = millis(d)
	return j.validate()
}

// WithGrace returns a copy of j with the given grace period (Kafka's
// ofTimeDifferenceAndGrace). A negative grace is an error.
func (j JoinWindows) WithGrace(grace time.Duration) JoinWindows {
	j.grace = millis(grace)
	return j.validate()
}

func (j JoinWindows) validate() JoinWindows {
	if j.err != nil {
		return j
	}
	switch {
	case j.before+j.after < 0:
		j.err = invalid("join window interval before+after must not be negative, got before=%dms after=%dms", j.before, j.after)
	case j.grace < 0:
		j.err = invalid("grace period must not be negative, got %dms", j.grace)
	}
	return j
}

// Err returns the first validation error, or nil when j is valid.
func (j JoinWindows) Err() error {
	if j.err == nil && !j.set {
		return invalid("zero JoinWindows; use JoinWindowsOf")
	}
	return j.err
}

// BeforeMs returns how far before the left record a right record may be, in
// milliseconds.
func (j JoinWindows) BeforeMs() int64 { return j.before }

// AfterMs returns how far after the left record a right record may be, in
// milliseconds.
func (j JoinWindows) AfterMs() int64 { return j.after }

// GraceMs returns the grace period in milliseconds.
func (j JoinWindows) GraceMs() int64 { return j.grace }

// Grace returns the grace period.
func (j JoinWindows) Grace() time.Duration { return time.Duration(j.grace) * time.Millisecond }

// Size returns before + after, the width of the join window (Kafka's
// JoinWindows.size).
func (j JoinWindows) Size() time.Duration {
	return time.Duration(j.before+j.after) * time.Millisecond
}

// Retention returns how long each side's window store must keep records:
// before + after + grace, as Kafka sizes the join stores.
func (j JoinWindows) Retention() time.Duration {
	return time.Duration(j.before+j.after+j.grace) * time.Millisecond
}

// Matches reports whether a left record at tLeft and a right record at
// tRight join: tLeft-before <= tRight <= tLeft+after.
func (j JoinWindows) Matches(tLeft, tRight int64) bool {
	return tRight >= tLeft-j.before && tRight <= tLeft+j.after
}

// LeftRange returns the time range [from, to] to search in the right
// side's store for a left record at t: [t-before, t+after], both clamped at
// 0 as Kafka's KStreamKStreamJoin does.
func (j JoinWindows) LeftRange(t int64) (from, to int64) {
	return clampRange(t, j.before, j.after)
}

// RightRange returns the time range [from, to] to search in the left side's
// store for a right record at t: [t-after, t+before] (the reversed window),
// both clamped at 0.
func (j JoinWindows) RightRange(t int64) (from, to int64) {
	return clampRange(t, j.after, j.before)
}

func clampRange(t, back, fwd int64) (from, to int64) {
	// back and fwd come from time.Durations, so |back| < 2^54 and the
	// negation cannot overflow.
	return max(0, addSat(t, -back)), max(0, addSat(t, fwd))
}

// LeftUnmatchedClosed reports whether an unmatched left record at t can be
// emitted by a left or outer join at the given stream time: Kafka keeps it
// while t + after + grace >= streamTime, so it is emitted once
// t + after + grace < streamTime.
func (j JoinWindows) LeftUnmatchedClosed(t, streamTime int64) bool {
	return addSat(addSat(t, j.after), j.grace) < streamTime
}

// RightUnmatchedClosed reports whether an unmatched right record at t can be
// emitted by an outer join at the given stream time: once
// t + before + grace < streamTime (Kafka looks the right side up with
// before).
func (j JoinWindows) RightUnmatchedClosed(t, streamTime int64) bool {
	return addSat(addSat(t, j.before), j.grace) < streamTime
}
