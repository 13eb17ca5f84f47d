package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPerfEOS runs perf eos end to end on small inputs against the test
// cluster: the three word count modes with their verified output and
// ratios, and the restarts of a count worker (the test binary re-executed
// as eddy) after a SIGKILL.
func TestPerfEOS(t *testing.T) {
	t.Setenv(runMainEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, err := runCtx(ctx, "", "perf", "eos", "--lines", "2000", "--words", "100", "--words-per-line", "3",
		"--partitions", "2", "--runs", "2", "--restart-records", "4000", "--restart-keys", "1000", "--restart-partitions", "3",
		"--kill-at", "0.5", "--work-dir", t.TempDir())
	if err != nil {
		t.Fatalf("perf eos: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	t.Logf("perf eos output:\n%s", out)
	// Every run of every mode: rates, and the 100 words verified (the
	// broker's CPU is not measured: it is not a subprocess).
	for _, mode := range []string{"at_least_once, commit 100ms", "at_least_once, commit 30s", "exactly_once, commit 100ms"} {
		rows := regexp.MustCompile(`(?m)^[12]\s+`+regexp.QuoteMeta(mode)+`\s+([0-9]+)\s+[0-9]+\s+\S+\s+([0-9]+)\s+0\s+([0-9]+)\s+0\s+\S+\s+-$`).FindAllStringSubmatch(out, -1)
		if len(rows) != 2 {
			t.Fatalf("%d rows for %q, want 2", len(rows), mode)
		}
		for _, r := range rows {
			rate, _ := strconv.Atoi(r[1])
			commits, _ := strconv.Atoi(r[2])
			outputs, _ := strconv.Atoi(r[3])
			if rate <= 0 || outputs < 100 || (commits > 0) != strings.HasPrefix(mode, "exactly_once") {
				t.Fatalf("%q: rate %d, %d commits, %d output records", mode, rate, commits, outputs)
			}
		}
	}
	for _, re := range []string{
		`ratio exactly_once/at_least_once\(100ms\)\s+[0-9.]+x \(range [0-9.]+–[0-9.]+; target >= 0.85x: (met|MISSED)\)`,
		`ratio exactly_once/at_least_once\(30s\)\s+[0-9.]+x`,
		`ratio full restore / same state dir\s+[0-9.]+x \(restore phase\)`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("perf eos output lacks %s", re)
		}
	}
	// The restarts: every task runs; the full restore reads at least one
	// changelog record per key the killed worker had counted.
	restored := map[string]int{}
	for _, r := range regexp.MustCompile(`(?m)^(\S+, [^\n]*?)\s+[0-9.]+m?s\s+[0-9.]+[mµn]?s\s+[0-9.]+[mµn]?s\s+([0-9]+)\s+3$`).FindAllStringSubmatch(out, -1) {
		restored[r[1]], _ = strconv.Atoi(r[2])
	}
	if len(restored) != 3 {
		t.Fatalf("restart rows %v, want 3 with 3 tasks each", restored)
	}
	if n := restored["exactly_once, state wiped (full restore)"]; n < 1000 {
		t.Fatalf("full restore restored %d records, want at least one per key (1000)", n)
	}
}

func TestPerfEOSFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--lines", "0"},
		{"--kill-at", "1.5"},
		{"--throughput=false", "--restart=false"},
	} {
		if _, _, err := run(t, "", append([]string{"perf", "eos"}, args...)...); err == nil {
			t.Errorf("perf eos %v: no error", args)
		}
	}
}
