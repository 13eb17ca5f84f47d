package storage

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzOpen feeds arbitrary segment and index bytes to Open, with and
// without the clean-shutdown marker: Open must not panic, and the log it
// opens must serve reads and take appends at its end offset.
func FuzzOpen(f *testing.F) {
	f.Fuzz(func(t *testing.T, logBytes, indexBytes []byte, clean bool) {
		dir := t.TempDir()
		os.WriteFile(segName(dir, 0, logSuffix), logBytes, 0o644)
		os.WriteFile(segName(dir, 0, indexSuffix), indexBytes, 0o644)
		if clean {
			os.WriteFile(filepath.Join(dir, cleanShutdownFile), nil, 0o644)
		}
		cfg := DefaultConfig()
		cfg.IndexIntervalBytes = 64
		l, err := Open(dir, cfg, Options{})
		if err != nil {
			return
		}
		defer l.Close()
		for off := l.StartOffset(); off < l.EndOffset() && off < l.StartOffset()+50; off++ {
			l.Read(off, 100)
		}
		l.OffsetForTimestamp(0)
		end := l.EndOffset()
		info, err := l.Append(batch(2, "f", 1))
		if err != nil || info.FirstOffset != end {
			t.Fatalf("append after open: %+v %v (end %d)", info, err, end)
		}
		if !clean {
			// Recovered logs hold only valid batches.
			readAll(t, l, l.StartOffset())
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzOpen when EDDY_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("EDDY_WRITE_SEEDS") == "" {
		t.Skip("set EDDY_WRITE_SEEDS=1 to regenerate the fuzz seed corpus")
	}
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 64
	l := openT(t, dir, cfg, nil)
	for i := range 6 {
		l.Append(batch(1+i, "s", int64(i)))
	}
	l.Close()
	logb, _ := os.ReadFile(segName(dir, 0, logSuffix))
	idxb, _ := os.ReadFile(segName(dir, 0, indexSuffix))
	out := filepath.Join("testdata", "fuzz", "FuzzOpen")
	os.MkdirAll(out, 0o755)
	q := func(b []byte) string { return "[]byte(" + strconv.Quote(string(b)) + ")" }
	seeds := map[string]string{
		"clean":     q(logb) + "\n" + q(idxb) + "\nbool(true)",
		"unclean":   q(logb) + "\n" + q(idxb) + "\nbool(false)",
		"torn":      q(logb[:len(logb)-7]) + "\n" + q(nil) + "\nbool(false)",
		"tornclean": q(logb[:len(logb)-7]) + "\n" + q(idxb) + "\nbool(true)",
		"badindex":  q(logb) + "\n" + q([]byte{0, 0, 0, 1, 0, 0, 0, 9}) + "\nbool(true)",
	}
	for name, body := range seeds {
		if err := os.WriteFile(filepath.Join(out, name), []byte("go test fuzz v1\n"+body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
