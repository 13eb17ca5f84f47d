package streambench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// soakCfg is the long profile's shape: 1-minute windows, 5-minute
// retention (2.5-minute segments), 10,000 keys at 2,000 rec/s.
func soakCfg() SoakConfig {
	c := SoakConfig{WorkDir: "x", Duration: time.Hour, Interval: 30 * time.Second}
	c.defaults()
	return c
}

// steady returns an hour of samples every 30 s of a store that behaves:
// entries saw-tooth between retention's and retention + segment's worth,
// disk and memory flat after the warm-up.
func steady(c SoakConfig) []SoakSample {
	var ss []SoakSample
	seg := c.SegmentInterval()
	for e := c.Interval; e <= c.Duration; e += c.Interval {
		win := int64(e / c.Window)
		if e >= c.Retention {
			// windows since the last removed segment boundary
			win = int64((c.Retention + (e-c.Retention)%seg) / c.Window)
		}
		ss = append(ss, SoakSample{Elapsed: e, Produced: int64(e.Seconds()) * 2000, Processed: int64(e.Seconds())*2000 - 100, Lag: 100,
			RSS: 90 << 20, HeapLive: 40 << 20, StoreEntries: (win + 1) * int64(c.Keys), StoreDisk: 30 << 20})
	}
	return ss
}

func check(t *testing.T, v SoakVerdict, name string) SoakCheck {
	t.Helper()
	for _, c := range v.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, v.Checks)
	return SoakCheck{}
}

func TestSoakConfigBounds(t *testing.T) {
	c := soakCfg()
	if c.SegmentInterval() != 150*time.Second || c.WarmUp() != 450*time.Second {
		t.Fatalf("segment %v warm-up %v, want 2m30s and 7m30s", c.SegmentInterval(), c.WarmUp())
	}
	// floor(7.5 min / 1 min) + 2 = 9 windows of 10,000 keys.
	if b := c.EntryBound(); b != 90_000 {
		t.Fatalf("entry bound %d, want 90000", b)
	}
	// Fewer records a window than keys: the records bound the window.
	c.Rate = 100 // 6,000 records a minute, +5 %
	if b := c.EntryBound(); b != 9*6300 {
		t.Fatalf("entry bound at 100 rec/s %d, want %d", b, 9*6300)
	}
	// Short retention: Kafka's 60 s minimum segment.
	s := SoakConfig{Window: 2 * time.Second, Retention: 10 * time.Second, Keys: 1000, Rate: 2000}
	if s.SegmentInterval() != time.Minute || s.EntryBound() != 37_000 {
		t.Fatalf("short profile: segment %v bound %d", s.SegmentInterval(), s.EntryBound())
	}
}

func TestJudgeSoakBounded(t *testing.T) {
	c := soakCfg()
	v := JudgeSoak(c, steady(c))
	if !v.Bounded {
		t.Fatalf("steady run judged not bounded: %+v", v.Checks)
	}
	for _, c := range v.Checks {
		if !c.Judged || !c.OK {
			t.Fatalf("check %+v: want judged and ok", c)
		}
	}
	var buf bytes.Buffer
	WriteSoakVerdict(&buf, v)
	if !strings.HasSuffix(buf.String(), "verdict: BOUNDED\n") || !strings.Contains(buf.String(), "ok   store disk growth") {
		t.Fatalf("verdict text:\n%s", buf.String())
	}
}

func TestJudgeSoakUnbounded(t *testing.T) {
	c := soakCfg()
	// No expiry: one more window of entries every minute.
	ss := steady(c)
	for i := range ss {
		ss[i].StoreEntries = int64(ss[i].Elapsed/c.Window+1) * int64(c.Keys)
	}
	v := JudgeSoak(c, ss)
	if v.Bounded || check(t, v, "store entries <= bound").OK || check(t, v, "expiry (entries fell)").OK || check(t, v, "store entries growth").OK {
		t.Fatalf("growing entries judged: %+v", v.Checks)
	}
	// Disk growing steadily, 1 MiB a minute: 30 → 90 MiB.
	ss = steady(c)
	for i := range ss {
		ss[i].StoreDisk = (30 + int64(ss[i].Elapsed/time.Minute)) << 20
	}
	v = JudgeSoak(c, ss)
	if d := check(t, v, "store disk growth"); v.Bounded || d.OK || !strings.Contains(d.Detail, "slope +60.0 MiB/h") {
		t.Fatalf("growing disk judged: %+v", d)
	}
	if !check(t, v, "RSS growth").OK {
		t.Fatal("flat RSS judged growing")
	}
	// Within tolerance: the second half 20 % above the first (disk's is 25 % + 8 MiB).
	ss = steady(c)
	for i := range ss {
		if ss[i].Elapsed > 40*time.Minute {
			ss[i].StoreDisk = 36 << 20
		}
	}
	if v := JudgeSoak(c, ss); !v.Bounded {
		t.Fatalf("disk +20 %% judged not bounded: %+v", check(t, v, "store disk growth"))
	}
	// A worker falling behind.
	ss = steady(c)
	ss[len(ss)-1].Lag = 30_000
	if v := JudgeSoak(c, ss); v.Bounded || check(t, v, "lag (keeps up)").OK {
		t.Fatalf("lag of 15 s of input judged: %+v", check(t, v, "lag (keeps up)"))
	}
}

func TestJudgeSoakShortRun(t *testing.T) {
	c := SoakConfig{WorkDir: "x", Duration: 90 * time.Second, Window: 2 * time.Second, Retention: 10 * time.Second,
		Keys: 1000, Interval: 5 * time.Second}
	c.defaults()
	var ss []SoakSample
	for e := c.Interval; e <= c.Duration; e += c.Interval {
		n := int64(e/c.Window) * 1000
		if e >= 35*time.Second { // a segment removed at 35 s
			n -= 10_000
		}
		ss = append(ss, SoakSample{Elapsed: e, StoreEntries: n})
	}
	v := JudgeSoak(c, ss)
	if !v.Bounded || !check(t, v, "expiry (entries fell)").OK {
		t.Fatalf("short run: %+v", v.Checks)
	}
	if g := check(t, v, "RSS growth"); g.Judged || !strings.Contains(g.Detail, "not judged") {
		t.Fatalf("RSS growth judged on a short run: %+v", g)
	}
	if v := JudgeSoak(c, nil); v.Bounded {
		t.Fatal("no samples judged bounded")
	}
	bad := SoakConfig{WorkDir: "x", Duration: time.Minute, Window: time.Minute, Retention: time.Second}
	bad.defaults()
	if err := bad.validate(); err == nil || !strings.Contains(err.Error(), "retention 1s below the window size 1m0s") {
		t.Fatalf("retention below the window: %v", err)
	}
	bad.Retention = time.Minute
	if err := bad.validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}
