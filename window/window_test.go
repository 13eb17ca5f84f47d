package window

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestTimeWindowsValidation(t *testing.T) {
	tests := []struct {
		name    string
		w       TimeWindows
		wantErr bool
	}{
		// TimeWindowsTest.shouldSetWindowSize / shouldSetWindowAdvance: size 123, advance 4.
		{"size 123", Tumbling(123 * ms), false},
		{"size 123 advance 4", Hopping(123*ms, 4*ms), false},
		// TimeWindowsTest.windowSizeMustNotBeZero.
		{"size 0", Tumbling(0), true},
		// TimeWindowsTest.windowSizeMustNotBeNegative.
		{"size -1", Tumbling(-1 * ms), true},
		// Sub-millisecond sizes truncate to 0 ms (Duration.toMillis).
		{"size 999us", Tumbling(999 * time.Microsecond), true},
		// TimeWindowsTest.advanceIntervalMustNotBeZero.
		{"advance 0", Hopping(123*ms, 0), true},
		// TimeWindowsTest.advanceIntervalMustNotBeNegative.
		{"advance -1", Hopping(123*ms, -1*ms), true},
		// TimeWindowsTest.advanceIntervalMustNotBeLargerThanWindowSize: advance 124 > size 123.
		{"advance > size", Hopping(123*ms, 124*ms), true},
		{"advance == size", Hopping(123*ms, 123*ms), false},
		// TimeWindowsTest.gracePeriodShouldEnforceBoundaries: ofSizeAndGrace(3ms, 0) ok, (3ms, -1ms) fails.
		{"grace 0", Tumbling(3 * ms).WithGrace(0), false},
		{"grace -1", Tumbling(3 * ms).WithGrace(-1 * ms), true},
		{"zero value", TimeWindows{}, true},
		// The first error sticks even if a later call is valid.
		{"sticky", Tumbling(0).WithGrace(5 * ms), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.w.Err()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Err() = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if err != nil && tc.w.WindowsFor(10) != nil {
				t.Fatalf("invalid windows returned windows")
			}
		})
	}
	w := Hopping(123*ms, 4*ms).WithGrace(7 * ms)
	if w.Size() != 123*ms || w.Advance() != 4*ms || w.Grace() != 7*ms || w.SizeMs() != 123 || w.GraceMs() != 7 || w.Tumbling() {
		t.Fatalf("accessors: %+v", w)
	}
	if !Tumbling(5 * ms).Tumbling() {
		t.Fatal("Tumbling(5ms).Tumbling() = false")
	}
}

func TestTimeWindowsFor(t *testing.T) {
	tests := []struct {
		name string
		w    TimeWindows
		ts   int64
		want []Window
	}{
		// TimeWindowsTest.shouldComputeWindowsForHoppingWindows: size 12, advance 5, ts 21.
		{"hopping", Hopping(12*ms, 5*ms), 21, []Window{{10, 22}, {15, 27}, {20, 32}}},
		// TimeWindowsTest.shouldComputeWindowsForBarelyOverlappingHoppingWindows: size 6, advance 5, ts 7.
		{"barely overlapping", Hopping(6*ms, 5*ms), 7, []Window{{5, 11}}},
		// TimeWindowsTest.shouldComputeWindowsForTumblingWindows: size 12, ts 21.
		{"tumbling", Tumbling(12 * ms), 21, []Window{{12, 24}}},
		// Window starts are aligned to epoch 0: a window end is exclusive.
		{"tumbling at boundary", Tumbling(10 * ms), 10, []Window{{10, 20}}},
		{"tumbling before boundary", Tumbling(10 * ms), 9, []Window{{0, 10}}},
		{"tumbling at 0", Tumbling(10 * ms), 0, []Window{{0, 10}}},
		// Near epoch 0 only windows with start >= 0 exist.
		{"hopping near 0", Hopping(10*ms, 5*ms), 3, []Window{{0, 10}}},
		{"hopping at 5", Hopping(10*ms, 5*ms), 5, []Window{{0, 10}, {5, 15}}},
		{"negative ts", Tumbling(10 * ms), -1, nil},
		{"overflowing end", Tumbling(10 * ms), math.MaxInt64 - 3, []Window{{math.MaxInt64 - 7, math.MaxInt64}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.w.WindowsFor(tc.ts)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("WindowsFor(%d) = %v, want %v", tc.ts, got, tc.want)
			}
			for _, w := range got {
				if !w.Contains(tc.ts) {
					t.Fatalf("window %v does not contain %d", w, tc.ts)
				}
			}
		})
	}
}

func TestTimeWindowsClosed(t *testing.T) {
	// KStreamWindowAggregate updates a window while end > streamTime - grace.
	// Size 10, grace 5: window [0,10) closes when stream time reaches 15.
	w := Tumbling(10 * ms).WithGrace(5 * ms)
	win := Window{0, 10}
	tests := []struct {
		streamTime int64
		closed     bool
	}{
		{9, false}, {10, false}, {14, false}, // end - grace = 10 > 14-5=9
		{15, true}, // grace boundary: end == streamTime - grace
		{16, true},
	}
	for _, tc := range tests {
		if got := w.Closed(win, tc.streamTime); got != tc.closed {
			t.Errorf("Closed([0,10), %d) = %v, want %v", tc.streamTime, got, tc.closed)
		}
	}
	if got := w.CloseTime(win); got != 15 {
		t.Errorf("CloseTime = %d, want 15", got)
	}
	// No grace: the window closes as soon as stream time reaches its end.
	if !Tumbling(10*ms).Closed(win, 10) || Tumbling(10*ms).Closed(win, 9) {
		t.Error("no-grace boundary wrong")
	}
}

func TestTimeWindowsLate(t *testing.T) {
	// Hopping size 10 advance 5, grace 5. A record at 12 is in [5,15) and [10,20).
	w := Hopping(10*ms, 5*ms).WithGrace(5 * ms)
	tests := []struct {
		ts, streamTime int64
		late           bool
	}{
		{12, 12, false},
		{12, 20, false}, // [5,15) closed (15 <= 15), [10,20) open
		{12, 24, false},
		{12, 25, true}, // [10,20): 20 <= 25-5 — exactly end + grace
		{-1, 0, true},
	}
	for _, tc := range tests {
		if got := w.Late(tc.ts, tc.streamTime); got != tc.late {
			t.Errorf("Late(%d, %d) = %v, want %v", tc.ts, tc.streamTime, got, tc.late)
		}
	}
}

func TestSlidingWindows(t *testing.T) {
	tests := []struct {
		name    string
		w       SlidingWindows
		wantErr bool
	}{
		// SlidingWindowsTest.shouldSetTimeDifference: 123 ms.
		{"diff 123", Sliding(123 * ms), false},
		// SlidingWindowsTest.timeDifferenceMustNotBeNegative.
		{"diff -1", Sliding(-1 * ms), true},
		{"diff 0", Sliding(0), false},
		// SlidingWindowsTest.shouldSetGracePeriod: ofTimeDifferenceAndGrace(10ms, 5ms).
		{"grace 5", Sliding(10 * ms).WithGrace(5 * ms), false},
		// SlidingWindowsTest.gracePeriodMustNotBeNegative.
		{"grace -1", Sliding(10 * ms).WithGrace(-1 * ms), true},
		{"zero value", SlidingWindows{}, true},
	}
	for _, tc := range tests {
		if err := tc.w.Err(); (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: Err() = %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
	s := Sliding(10 * ms).WithGrace(5 * ms)
	if s.TimeDifference() != 10*ms || s.Grace() != 5*ms || s.TimeDifferenceMs() != 10 || s.GraceMs() != 5 {
		t.Fatalf("accessors wrong: %+v", s)
	}
	// KStreamSlidingWindowAggregate: a record at t has left window [t-d, t]
	// and right window [t+1, t+1+d]; with d=10, t=15: [5,15] and [16,26].
	if got := s.LeftWindow(10); got != (Window{0, 10}) {
		t.Errorf("LeftWindow(10) = %v", got)
	}
	if got := s.LeftWindow(15); got != (Window{5, 15}) {
		t.Errorf("LeftWindow(15) = %v", got)
	}
	if got := s.RightWindow(15); got != (Window{16, 26}) {
		t.Errorf("RightWindow(15) = %v", got)
	}
	if got := s.WindowStarting(16); got != (Window{16, 26}) {
		t.Errorf("WindowStarting(16) = %v", got)
	}
	if !s.LeftWindow(15).ContainsInclusive(5) || !s.LeftWindow(15).ContainsInclusive(15) || s.LeftWindow(15).ContainsInclusive(16) {
		t.Error("sliding windows must include both bounds")
	}
	// Early records: 0 <= t < d go into [0, d].
	for _, tc := range []struct {
		ts    int64
		early bool
	}{{0, true}, {9, true}, {10, false}, {-1, false}} {
		if got := s.Early(tc.ts); got != tc.early {
			t.Errorf("Early(%d) = %v", tc.ts, got)
		}
	}
	if s.EarlyWindow() != (Window{0, 10}) {
		t.Errorf("EarlyWindow = %v", s.EarlyWindow())
	}
	// KStreamSlidingWindowAggregate fetches starts [max(0, t-2d), t+1].
	if f, to := s.LookupRange(25); f != 5 || to != 26 {
		t.Errorf("LookupRange(25) = %d,%d", f, to)
	}
	if f, to := s.LookupRange(3); f != 0 || to != 4 {
		t.Errorf("LookupRange(3) = %d,%d", f, to)
	}
	// Late: t + 1 + d <= streamTime - grace. d=10, grace=5, t=10: late at stream time 26.
	for _, tc := range []struct {
		ts, st int64
		late   bool
	}{{10, 25, false}, {10, 26, true}, {10, 27, true}} {
		if got := s.Late(tc.ts, tc.st); got != tc.late {
			t.Errorf("Late(%d,%d) = %v, want %v", tc.ts, tc.st, got, tc.late)
		}
	}
	// Closed: end < streamTime - grace. [0,10] closes at stream time 16.
	if s.Closed(Window{0, 10}, 15) || !s.Closed(Window{0, 10}, 16) {
		t.Error("sliding Closed boundary wrong")
	}
	if s.CloseTime(Window{0, 10}) != 16 {
		t.Error("sliding CloseTime wrong")
	}
}

func TestSessionWindows(t *testing.T) {
	tests := []struct {
		name    string
		w       SessionWindows
		wantErr bool
	}{
		// SessionWindowsTest.shouldSetWindowGap: gap 42.
		{"gap 42", Session(42 * ms), false},
		// SessionWindowsTest.windowSizeMustNotBeNegative.
		{"gap -1", Session(-1 * ms), true},
		// SessionWindowsTest.windowSizeMustNotBeZero.
		{"gap 0", Session(0), true},
		// SessionWindowsTest.gracePeriodShouldEnforceBoundaries: (3ms, 0) ok, (3ms, -1ms) fails.
		{"grace 0", Session(3 * ms).WithGrace(0), false},
		{"grace -1", Session(3 * ms).WithGrace(-1 * ms), true},
		{"zero value", SessionWindows{}, true},
	}
	for _, tc := range tests {
		if err := tc.w.Err(); (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: Err() = %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
	s := Session(42 * ms).WithGrace(3 * ms)
	if s.Gap() != 42*ms || s.Grace() != 3*ms || s.GapMs() != 42 || s.GraceMs() != 3 {
		t.Fatal("accessors wrong")
	}
}

func TestSessionMerge(t *testing.T) {
	// KStreamSessionWindowAggregate merges the sessions findSessions(t-gap,
	// t+gap) returns: end >= t-gap and start <= t+gap. Gap 50 ms.
	s := Session(50 * ms)
	tests := []struct {
		name    string
		session Window
		ts      int64
		merge   bool
	}{
		{"within gap", Window{0, 0}, 30, true},
		// Exactly gap after the end: inclusive, merges.
		{"end + gap", Window{0, 10}, 60, true},
		{"end + gap + 1", Window{0, 10}, 61, false},
		// Exactly gap before the start: merges.
		{"start - gap", Window{100, 120}, 50, true},
		{"start - gap - 1", Window{100, 120}, 49, false},
		{"inside", Window{100, 120}, 110, true},
	}
	for _, tc := range tests {
		if got := s.Mergeable(tc.session, tc.ts); got != tc.merge {
			t.Errorf("%s: Mergeable(%v, %d) = %v, want %v", tc.name, tc.session, tc.ts, got, tc.merge)
		}
	}
	if e, l := s.MergeRange(100); e != 50 || l != 150 {
		t.Errorf("MergeRange(100) = %d,%d", e, l)
	}
	// A record at 60 bridging [0,10] and [100,120] yields [0,120].
	if got := s.Merge(60, Window{0, 10}, Window{100, 120}); got != (Window{0, 120}) {
		t.Errorf("Merge = %v", got)
	}
	if got := s.Merge(7); got != (Window{7, 7}) {
		t.Errorf("Merge(7) = %v", got)
	}
}

func TestSessionClosed(t *testing.T) {
	// KStreamSessionWindowAggregate: closeTime = streamTime - grace - gap;
	// a session is expired when end < closeTime.
	s := Session(10 * ms).WithGrace(5 * ms)
	w := Window{0, 20}
	tests := []struct {
		streamTime int64
		closed     bool
	}{
		{34, false},
		{35, false}, // grace boundary: end == streamTime - grace - gap, still open
		{36, true},
	}
	for _, tc := range tests {
		if got := s.Closed(w, tc.streamTime); got != tc.closed {
			t.Errorf("Closed(%v, %d) = %v, want %v", w, tc.streamTime, got, tc.closed)
		}
	}
	if got := s.CloseTime(w); got != 36 {
		t.Errorf("CloseTime = %d, want 36", got)
	}
}

func TestJoinWindowsValidation(t *testing.T) {
	// JoinWindowsTest uses ANY_SIZE = 123 and ANY_OTHER_SIZE = 456.
	base := JoinWindowsOf(123 * ms)
	tests := []struct {
		name    string
		w       JoinWindows
		wantErr bool
	}{
		// JoinWindowsTest.validWindows.
		{"before other", JoinWindowsOf(456 * ms).Before(123 * ms), false},
		{"before 0", JoinWindowsOf(456 * ms).Before(0), false},
		{"before -123", JoinWindowsOf(456 * ms).Before(-123 * ms), false},
		{"before -456", JoinWindowsOf(456 * ms).Before(-456 * ms), false},
		{"after other", JoinWindowsOf(456 * ms).After(123 * ms), false},
		{"after -456", JoinWindowsOf(456 * ms).After(-456 * ms), false},
		// JoinWindowsTest.timeDifferenceMustNotBeNegative.
		{"negative difference", JoinWindowsOf(-1 * ms), true},
		// JoinWindowsTest.endTimeShouldNotBeBeforeStart: after(-ANY_SIZE-1).
		{"after before start", base.After(-124 * ms), true},
		{"after -123", base.After(-123 * ms), false},
		// JoinWindowsTest.startTimeShouldNotBeAfterEnd: before(-ANY_SIZE-1).
		{"before after end", base.Before(-124 * ms), true},
		// JoinWindowsTest.gracePeriodShouldEnforceBoundaries: (3ms, 0) ok, (3ms, -1ms) fails.
		{"grace 0", JoinWindowsOf(3 * ms).WithGrace(0), false},
		{"grace -1", JoinWindowsOf(3 * ms).WithGrace(-1 * ms), true},
		{"zero value", JoinWindows{}, true},
	}
	for _, tc := range tests {
		if err := tc.w.Err(); (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: Err() = %v, want error %v", tc.name, err, tc.wantErr)
		}
	}
	// JoinWindowsTest: size is before + after.
	j := JoinWindowsOf(456 * ms).Before(123 * ms).WithGrace(10 * ms)
	if j.Size() != 579*ms || j.BeforeMs() != 123 || j.AfterMs() != 456 || j.Grace() != 10*ms || j.GraceMs() != 10 || j.Retention() != 589*ms {
		t.Fatalf("accessors wrong: %+v", j)
	}
}

func TestJoinWindowsMatches(t *testing.T) {
	// KStreamKStreamJoinTest.testWindowing: JoinWindows of 100 ms; records
	// join when |tL - tR| <= 100, both ends inclusive.
	j := JoinWindowsOf(100 * ms)
	tests := []struct {
		l, r  int64
		match bool
	}{
		{1000, 900, true}, {1000, 899, false},
		{1000, 1100, true}, {1000, 1101, false},
		{1000, 1000, true},
	}
	for _, tc := range tests {
		if got := j.Matches(tc.l, tc.r); got != tc.match {
			t.Errorf("Matches(%d,%d) = %v", tc.l, tc.r, got)
		}
	}
	// KStreamKStreamJoinTest.testAsymmetricWindowingAfter: of(0).after(100):
	// right records may be 0..100 after the left one.
	a := JoinWindowsOf(0).After(100 * ms)
	if a.Matches(1000, 999) || !a.Matches(1000, 1000) || !a.Matches(1000, 1100) || a.Matches(1000, 1101) {
		t.Error("asymmetric after wrong")
	}
	// testAsymmetricWindowingBefore: of(0).before(100).
	b := JoinWindowsOf(0).Before(100 * ms)
	if !b.Matches(1000, 900) || b.Matches(1000, 899) || b.Matches(1000, 1001) {
		t.Error("asymmetric before wrong")
	}
	// Ranges: left record searches [t-before, t+after]; right record the reverse.
	if f, to := b.LeftRange(1000); f != 900 || to != 1000 {
		t.Errorf("LeftRange = %d,%d", f, to)
	}
	if f, to := b.RightRange(900); f != 900 || to != 1000 {
		t.Errorf("RightRange = %d,%d", f, to)
	}
	// Clamped at 0 as in KStreamKStreamJoin.
	if f, to := j.LeftRange(50); f != 0 || to != 150 {
		t.Errorf("LeftRange(50) = %d,%d", f, to)
	}
	// Every match is found by both lookups.
	for l := int64(850); l <= 1150; l += 7 {
		for r := int64(850); r <= 1150; r += 11 {
			for _, w := range []JoinWindows{j, a, b, JoinWindowsOf(30 * ms).Before(-10 * ms)} {
				lf, lt := w.LeftRange(l)
				rf, rt := w.RightRange(r)
				m := w.Matches(l, r)
				if m != (r >= lf && r <= lt) || m != (l >= rf && l <= rt) {
					t.Fatalf("%+v: l=%d r=%d match=%v ranges [%d,%d] [%d,%d]", w, l, r, m, lf, lt, rf, rt)
				}
			}
		}
	}
}

func TestJoinUnmatchedClose(t *testing.T) {
	// KStreamKStreamJoin keeps an outer record while
	// t + lookBack + grace >= streamTime (lookBack = after for left records,
	// before for right records).
	j := JoinWindowsOf(100 * ms).Before(50 * ms).WithGrace(10 * ms)
	if j.LeftUnmatchedClosed(1000, 1110) || !j.LeftUnmatchedClosed(1000, 1111) {
		t.Error("left unmatched boundary wrong")
	}
	if j.RightUnmatchedClosed(1000, 1060) || !j.RightUnmatchedClosed(1000, 1061) {
		t.Error("right unmatched boundary wrong")
	}
}

func TestWindowHelpers(t *testing.T) {
	a, b := Window{0, 10}, Window{10, 20}
	if a.Overlaps(b) || !a.OverlapsInclusive(b) {
		t.Error("touching windows: half-open must not overlap, inclusive must")
	}
	if !a.Overlaps(Window{5, 15}) || a.OverlapsInclusive(Window{11, 20}) {
		t.Error("overlap wrong")
	}
	if a.Contains(10) || !a.ContainsInclusive(10) || !a.Contains(0) {
		t.Error("contains wrong")
	}
	if a.Span(Window{30, 40}) != (Window{0, 40}) || a.Duration() != 10*ms || a.String() != "[0,10]" {
		t.Error("span/duration/string wrong")
	}
}

// TestDocTables checks the tables in doc.go.
func TestDocTables(t *testing.T) {
	hop, tum := Hopping(10*ms, 5*ms), Tumbling(10*ms)
	for _, tc := range []struct {
		ts       int64
		hop, tum []Window
	}{
		{0, []Window{{0, 10}}, []Window{{0, 10}}},
		{3, []Window{{0, 10}}, []Window{{0, 10}}},
		{5, []Window{{0, 10}, {5, 15}}, []Window{{0, 10}}},
		{9, []Window{{0, 10}, {5, 15}}, []Window{{0, 10}}},
		{10, []Window{{5, 15}, {10, 20}}, []Window{{10, 20}}},
		{12, []Window{{5, 15}, {10, 20}}, []Window{{10, 20}}},
	} {
		if got := hop.WindowsFor(tc.ts); !reflect.DeepEqual(got, tc.hop) {
			t.Errorf("hopping %d: %v", tc.ts, got)
		}
		if got := tum.WindowsFor(tc.ts); !reflect.DeepEqual(got, tc.tum) {
			t.Errorf("tumbling %d: %v", tc.ts, got)
		}
	}
	s := Session(50 * ms)
	for _, tc := range []struct {
		records []int64
		want    []Window
	}{
		{[]int64{0}, []Window{{0, 0}}},
		{[]int64{0, 30}, []Window{{0, 30}}},
		{[]int64{0, 30, 80}, []Window{{0, 80}}},
		{[]int64{0, 30, 81}, []Window{{0, 30}, {81, 81}}},
		{[]int64{0, 30, 130}, []Window{{0, 30}, {130, 130}}},
		{[]int64{0, 30, 130, 80}, []Window{{0, 130}}},
	} {
		var sessions []Window
		for _, ts := range tc.records {
			var keep, merge []Window
			for _, w := range sessions {
				if s.Mergeable(w, ts) {
					merge = append(merge, w)
				} else {
					keep = append(keep, w)
				}
			}
			sessions = append(keep, s.Merge(ts, merge...))
		}
		if !reflect.DeepEqual(sessions, tc.want) {
			t.Errorf("sessions for %v = %v, want %v", tc.records, sessions, tc.want)
		}
	}
}
