package main

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// maxLatencySamples bounds the memory of a latency recorder (4 bytes each);
// beyond it, every other sample is dropped, halving again as needed, so
// percentiles stay representative of the whole run.
const maxLatencySamples = 8 << 20

// latencyRecorder collects latencies for a live window (average, max) and for
// the whole run (percentiles). It is safe for concurrent use.
type latencyRecorder struct {
	mu      sync.Mutex
	samples []uint32 // microseconds
	stride  int      // keep every stride-th sample
	seen    int

	winN, winSum, winMax int64 // microseconds
	totN, totSum, totMax int64
}

func newLatencyRecorder() *latencyRecorder { return &latencyRecorder{stride: 1} }

// add records one latency.
func (l *latencyRecorder) add(d time.Duration) {
	us := max(d.Microseconds(), 0)
	l.mu.Lock()
	l.winN++
	l.winSum += us
	l.winMax = max(l.winMax, us)
	l.totN++
	l.totSum += us
	l.totMax = max(l.totMax, us)
	l.seen++
	if l.seen%l.stride == 0 {
		if len(l.samples) >= maxLatencySamples {
			l.samples = decimate(l.samples)
			l.stride *= 2
		}
		l.samples = append(l.samples, uint32(min(us, 1<<32-1)))
	}
	l.mu.Unlock()
}

// decimate keeps every other element, in place.
func decimate(s []uint32) []uint32 {
	n := 0
	for i := 0; i < len(s); i += 2 {
		s[n] = s[i]
		n++
	}
	return s[:n]
}

// window returns the count, average and maximum since the previous call.
func (l *latencyRecorder) window() (n int64, avg, maxLat time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = l.winN
	if n > 0 {
		avg = time.Duration(l.winSum/n) * time.Microsecond
	}
	maxLat = time.Duration(l.winMax) * time.Microsecond
	l.winN, l.winSum, l.winMax = 0, 0, 0
	return n, avg, maxLat
}

// latencySummary describes a whole run's latency distribution.
type latencySummary struct {
	Count               int64
	Avg, Max            time.Duration
	P50, P95, P99, P999 time.Duration
}

// summary computes the run's distribution.
func (l *latencyRecorder) summary() latencySummary {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	out := latencySummary{Count: l.totN, Max: time.Duration(l.totMax) * time.Microsecond}
	if l.totN > 0 {
		out.Avg = time.Duration(l.totSum/l.totN) * time.Microsecond
	}
	l.mu.Unlock()
	slices.Sort(s)
	pct := func(p float64) time.Duration {
		if len(s) == 0 {
			return 0
		}
		i := min(int(p*float64(len(s))), len(s)-1)
		return time.Duration(s[i]) * time.Microsecond
	}
	out.P50, out.P95, out.P99, out.P999 = pct(0.50), pct(0.95), pct(0.99), pct(0.999)
	return out
}

// ms formats a duration as fractional milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
