package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPerfAvro runs perf avro on a small input against the test cluster,
// with eddy's registry served in-process, and a CPU profile of each run.
func TestPerfAvro(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prof := filepath.Join(t.TempDir(), "cpu")
	out, errOut, err := runCtx(ctx, "", "perf", "avro", "--records", "3000", "--keys", "20", "--partitions", "2",
		"--work-dir", t.TempDir(), "--cpuprofile", prof)
	if err != nil {
		t.Fatalf("perf avro: %v\n%s\n%s", err, out, errOut)
	}
	for _, re := range []string{`(?m)^json\s+[0-9]+`, `(?m)^avro\s+[0-9]+`, `ratio avro/json\s+[0-9.]+x`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("perf avro output lacks %s:\n%s", re, out)
		}
	}
	for _, f := range []string{prof + ".avro", prof + ".json"} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("CPU profile %s: %v", f, err)
		}
	}
	if _, _, err := run(t, "", "perf", "avro", "--records", "0"); err == nil || !strings.Contains(err.Error(), "--records 0") {
		t.Fatalf("perf avro --records 0: %v", err)
	}
}
