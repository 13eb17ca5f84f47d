package streambench

import (
	"fmt"
	"io"
	"math"
	"time"
)

// SoakCheck is one criterion of a soak verdict.
type SoakCheck struct {
	// Name of the criterion.
	Name string
	// Judged is false when the run was too short to judge it.
	Judged bool
	// OK is the outcome (false when not judged).
	OK bool
	// Detail gives the figures compared, or why it was not judged.
	Detail string
}

// SoakVerdict is the judgement of a soak run.
type SoakVerdict struct {
	// Bounded is true when at least one check was judged and every judged
	// check passed.
	Bounded bool
	// Checks in a fixed order: entries bound, expiry, the four growth
	// checks, lag.
	Checks []SoakCheck
}

// Tolerances of the growth checks: after the warm-up, the largest value
// of the second half of the samples may exceed the largest of the first
// half by this fraction plus this absolute slack.
const (
	entriesGrowthTol = 0.10
	diskGrowthTol    = 0.25
	diskGrowthSlack  = 8 << 20
	rssGrowthTol     = 0.20
	rssGrowthSlack   = 16 << 20
	heapGrowthTol    = 0.25
	heapGrowthSlack  = 8 << 20
	// lagStartup: samples this early are left out of the lag check (topic
	// creation, group join, first fetch).
	lagStartup = 20 * time.Second
	// lagMax is the lag allowed, in seconds of input.
	lagMax = 10
)

// EntryBound is the most entries the soak's window store may hold: each
// task's store keeps the segments from segment(observed - Retention) on,
// so its window starts span less than Retention + SegmentInterval, that
// is at most floor((Retention+SegmentInterval)/Window) + 1 windows; one
// more window is allowed for the window being filled while the runtime
// samples. Each window holds one entry per key seen in it: at most Keys,
// and at most the records of a window (Rate × Window, +5 %) when that is
// smaller.
func (c SoakConfig) EntryBound() int64 {
	windows := int64((c.Retention+c.SegmentInterval())/c.Window) + 2
	perWindow := int64(c.Keys)
	if r := int64(math.Ceil(float64(c.Rate) * c.Window.Seconds() * 1.05)); r < perWindow {
		perWindow = r
	}
	return windows * perWindow
}

// WarmUp is when the soak's store has reached its steady state: the
// first segment is removed at the latest once stream time is Retention +
// SegmentInterval past the first record; from then on the entries cycle
// between Retention's and Retention + SegmentInterval's worth.
func (c SoakConfig) WarmUp() time.Duration { return c.Retention + c.SegmentInterval() }

// JudgeSoak judges a soak run's samples:
//
//   - store entries: every sample <= cfg.EntryBound();
//   - expiry: once the run is past WarmUp, some sample's entries are below
//     an earlier sample's (a segment was removed);
//   - growth of store entries, store disk, RSS and live heap: the samples
//     at or after WarmUp are split in two halves by time; the largest
//     value of the second half may exceed the largest of the first half by
//     at most 10 % (entries), 25 % + 8 MiB (disk), 20 % + 16 MiB (RSS),
//     25 % + 8 MiB (live heap). Judged when those samples span at least two
//     segment intervals (so each half sees a whole segment cycle) and
//     number at least 4: a run of at least Retention + 3 × SegmentInterval
//     (with the defaults 12.5 min: 7.5 min of warm-up, then two
//     2.5-minute segments; a 1-hour run compares minutes 7.5–33.75 with
//     33.75–60);
//   - lag: every sample after the first 20 s has lag <= 10 s of input
//     (Rate × 10): the worker keeps up.
//
// The least-squares slope of each growth series after the warm-up is given
// in the details, per hour, for information.
func JudgeSoak(cfg SoakConfig, samples []SoakSample) SoakVerdict {
	cfg.defaults()
	var v SoakVerdict
	if len(samples) == 0 {
		v.Checks = append(v.Checks, SoakCheck{Name: "samples", Detail: "no samples taken"})
		return v
	}
	// Store entries under the bound.
	bound := cfg.EntryBound()
	var maxE int64
	var at time.Duration
	for _, s := range samples {
		if s.StoreEntries > maxE {
			maxE, at = s.StoreEntries, s.Elapsed
		}
	}
	v.Checks = append(v.Checks, SoakCheck{Name: "store entries <= bound", Judged: true, OK: maxE <= bound,
		Detail: fmt.Sprintf("max %d at %v; bound %d = (floor((retention %v + segment %v) / window %v) + 2) windows × %d entries a window",
			maxE, at, bound, cfg.Retention, cfg.SegmentInterval(), cfg.Window, bound/(int64((cfg.Retention+cfg.SegmentInterval())/cfg.Window)+2))})

	// Expiry observed.
	warm := cfg.WarmUp()
	last := samples[len(samples)-1].Elapsed
	exp := SoakCheck{Name: "expiry (entries fell)"}
	if last < warm {
		exp.Detail = fmt.Sprintf("not judged: run of %v shorter than retention + segment = %v", last, warm)
	} else {
		exp.Judged = true
		var peak int64
		for _, s := range samples {
			if s.StoreEntries < peak {
				exp.OK = true
				exp.Detail = fmt.Sprintf("fell from %d to %d at %v", peak, s.StoreEntries, s.Elapsed)
				break
			}
			peak = max(peak, s.StoreEntries)
		}
		if !exp.OK {
			exp.Detail = fmt.Sprintf("never fell in %v (max %d)", last, peak)
		}
	}
	v.Checks = append(v.Checks, exp)

	// Growth after the warm-up.
	var post []SoakSample
	for _, s := range samples {
		if s.Elapsed >= warm {
			post = append(post, s)
		}
	}
	type series struct {
		name  string
		get   func(SoakSample) int64
		tol   float64
		slack int64
		unit  string
	}
	all := []series{
		{"store entries", func(s SoakSample) int64 { return s.StoreEntries }, entriesGrowthTol, 0, ""},
		{"store disk", func(s SoakSample) int64 { return s.StoreDisk }, diskGrowthTol, diskGrowthSlack, "MiB"},
		{"RSS", func(s SoakSample) int64 { return s.RSS }, rssGrowthTol, rssGrowthSlack, "MiB"},
		{"live heap", func(s SoakSample) int64 { return s.HeapLive }, heapGrowthTol, heapGrowthSlack, "MiB"},
	}
	span := time.Duration(0)
	if len(post) > 0 {
		span = post[len(post)-1].Elapsed - post[0].Elapsed
	}
	for _, sr := range all {
		c := SoakCheck{Name: sr.name + " growth"}
		if span < 2*cfg.SegmentInterval() || len(post) < 4 {
			c.Detail = fmt.Sprintf("not judged: %d samples over %v after the warm-up (%v); needs 4 over 2 segments (%v), a run of at least %v",
				len(post), span, warm, 2*cfg.SegmentInterval(), warm+2*cfg.SegmentInterval()+cfg.Interval)
			v.Checks = append(v.Checks, c)
			continue
		}
		mid := post[0].Elapsed + span/2
		var maxA, maxB int64
		for _, s := range post {
			if s.Elapsed < mid {
				maxA = max(maxA, sr.get(s))
			} else {
				maxB = max(maxB, sr.get(s))
			}
		}
		limit := int64(float64(maxA)*(1+sr.tol)) + sr.slack
		c.Judged, c.OK = true, maxB <= limit
		slope := slopePerHour(post, sr.get)
		if sr.unit == "MiB" {
			c.Detail = fmt.Sprintf("max %.1f MiB in %v–%v, %.1f MiB in %v–%v (limit %.1f: +%.0f %% + %d MiB); slope %+.1f MiB/h",
				mib(maxA), post[0].Elapsed, mid, mib(maxB), mid, post[len(post)-1].Elapsed, mib(limit), sr.tol*100, sr.slack>>20, slope/(1<<20))
		} else {
			c.Detail = fmt.Sprintf("max %d in %v–%v, %d in %v–%v (limit %d: +%.0f %%); slope %+.0f /h",
				maxA, post[0].Elapsed, mid, maxB, mid, post[len(post)-1].Elapsed, limit, sr.tol*100, slope)
		}
		v.Checks = append(v.Checks, c)
	}

	// Lag.
	lag := SoakCheck{Name: "lag (keeps up)"}
	limit := int64(cfg.Rate) * lagMax
	var maxLag int64
	var lagAt time.Duration
	n := 0
	for _, s := range samples {
		if s.Elapsed < lagStartup {
			continue
		}
		n++
		if s.Lag > maxLag {
			maxLag, lagAt = s.Lag, s.Elapsed
		}
	}
	if n == 0 {
		lag.Detail = fmt.Sprintf("not judged: no sample after the first %v", lagStartup)
	} else {
		lag.Judged, lag.OK = true, maxLag <= limit
		lag.Detail = fmt.Sprintf("max %d records after the first %v; limit %d (%d s of input)", maxLag, lagStartup, limit, lagMax)
		if maxLag > 0 {
			lag.Detail = fmt.Sprintf("max %d records (at %v) after the first %v; limit %d (%d s of input)", maxLag, lagAt, lagStartup, limit, lagMax)
		}
	}
	v.Checks = append(v.Checks, lag)

	judged := 0
	v.Bounded = true
	for _, c := range v.Checks {
		if c.Judged {
			judged++
			v.Bounded = v.Bounded && c.OK
		}
	}
	v.Bounded = v.Bounded && judged > 0
	return v
}

// slopePerHour is the least-squares slope of get over the samples, per
// hour.
func slopePerHour(ss []SoakSample, get func(SoakSample) int64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range ss {
		x, y := s.Elapsed.Hours(), float64(get(s))
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	d := n*sxx - sx*sx
	if n < 2 || d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// WriteSoakHeader writes the column header of WriteSoakSample's rows.
func WriteSoakHeader(w io.Writer) {
	fmt.Fprintf(w, "%8s %11s %11s %8s %9s %9s %9s %10s %11s %6s\n",
		"elapsed", "produced", "processed", "lag", "RSS MiB", "heap MiB", "inuse MiB", "entries", "disk MiB", "late")
}

// WriteSoakSample writes one sample as a table row.
func WriteSoakSample(w io.Writer, s SoakSample) {
	fmt.Fprintf(w, "%8s %11d %11d %8d %9.1f %9.1f %9.1f %10d %11.1f %6d\n",
		s.Elapsed, s.Produced, s.Processed, s.Lag, mib(s.RSS), mib(s.HeapLive), mib(s.HeapInUse), s.StoreEntries, mib(s.StoreDisk), s.Late)
}

// WriteSoakVerdict writes the verdict: one line per check, then the
// conclusion.
func WriteSoakVerdict(w io.Writer, v SoakVerdict) {
	for _, c := range v.Checks {
		state := "n/a "
		if c.Judged {
			state = "FAIL"
			if c.OK {
				state = "ok  "
			}
		}
		fmt.Fprintf(w, "  %s %-24s %s\n", state, c.Name, c.Detail)
	}
	if v.Bounded {
		fmt.Fprintln(w, "verdict: BOUNDED")
	} else {
		fmt.Fprintln(w, "verdict: NOT BOUNDED")
	}
}
