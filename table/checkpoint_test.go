package table

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTestFile(t testing.TB, dir, contents string) string {
	t.Helper()
	path := filepath.Join(dir, ".checkpoint")
	if err := os.WriteFile(path, []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadCheckpoint(t *testing.T) {
	tests := []struct {
		name, file string
		want       map[TopicPartition]int64 // nil: ErrBadCheckpoint
	}{
		{"Empty", "0\n0\n", map[TopicPartition]int64{}},
		{"Entries", "0\n3\nclicks 0 42\nclicks 1 7\napp-store-changelog 12 0\n", map[TopicPartition]int64{
			{"clicks", 0}: 42, {"clicks", 1}: 7, {"app-store-changelog", 12}: 0,
		}},
		{"UnknownOffset", "0\n1\nt 0 -4\n", map[TopicPartition]int64{{"t", 0}: -4}},
		{"LeadingZeros", "0\n01\nt 007 0010\n", map[TopicPartition]int64{{"t", 7}: 10}},
		{"Limits", "0\n1\nt.x_Y-9 2147483647 9223372036854775807\n", map[TopicPartition]int64{
			{"t.x_Y-9", 2147483647}: 9223372036854775807,
		}},
		{"LongestTopic", "0\n1\n" + strings.Repeat("t", 249) + " 0 1\n", map[TopicPartition]int64{
			{strings.Repeat("t", 249), 0}: 1,
		}},

		{"EmptyFile", "", nil},
		{"VersionOnly", "0\n", nil},
		{"BadVersion", "1\n0\n", nil},
		{"VersionNotANumber", "v0\n0\n", nil},
		{"NoFinalNewline", "0\n1\nt 0 5", nil},
		{"CountTooHigh", "0\n2\nt 0 5\n", nil},
		{"CountTooLow", "0\n0\nt 0 5\n", nil},
		{"NegativeCount", "0\n-1\n", nil},
		{"HugeCount", "0\n99999999999999999999\n", nil},
		{"BadPartition", "0\n1\nt x 5\n", nil},
		{"NegativePartition", "0\n1\nt -1 5\n", nil},
		{"PartitionOverflow", "0\n1\nt 2147483648 5\n", nil},
		{"SignedPartition", "0\n1\nt +1 5\n", nil},
		{"BadOffset", "0\n1\nt 0 5x\n", nil},
		{"NegativeOffset", "0\n1\nt 0 -1\n", nil},
		{"OffsetOverflow", "0\n1\nt 0 9223372036854775808\n", nil},
		{"TopicWithSpace", "0\n1\nmy topic 0 5\n", nil},
		{"DoubleSpace", "0\n1\nt  0 5\n", nil},
		{"TrailingSpace", "0\n1\nt 0 5 \n", nil},
		{"Tab", "0\n1\nt\t0\t5\n", nil},
		{"CRLF", "0\r\n1\r\nt 0 5\r\n", nil},
		{"TwoFields", "0\n1\nt 0\n", nil},
		{"EmptyTopic", "0\n1\n 0 5\n", nil},
		{"IllegalTopic", "0\n1\nt/x 0 5\n", nil},
		{"DotTopic", "0\n1\n.. 0 5\n", nil},
		{"TopicTooLong", "0\n1\n" + strings.Repeat("t", 250) + " 0 1\n", nil},
		{"Duplicate", "0\n2\nt 0 5\nt 0 6\n", nil},
		{"BlankLine", "0\n1\nt 0 5\n\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadCheckpoint(writeTestFile(t, t.TempDir(), tt.file))
			if tt.want == nil {
				if !errors.Is(err, ErrBadCheckpoint) || got != nil {
					t.Fatalf("ReadCheckpoint = %v, %v; want ErrBadCheckpoint", got, err)
				}
				return
			}
			if err != nil || got == nil || !maps.Equal(got, tt.want) {
				t.Fatalf("ReadCheckpoint = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestReadCheckpointMissing(t *testing.T) {
	got, err := ReadCheckpoint(filepath.Join(t.TempDir(), "nope", ".checkpoint"))
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("ReadCheckpoint(missing) = %#v, %v; want empty map", got, err)
	}
}

func TestReadCheckpointTooLarge(t *testing.T) {
	dir := t.TempDir()
	// A valid prefix, padded with valid entries past 16 MiB.
	var b strings.Builder
	b.WriteString("0\n1\nt 0 1\n")
	for b.Len() <= maxCheckpointSize {
		b.WriteString(strings.Repeat("x", 200) + " 0 1\n")
	}
	if _, err := ReadCheckpoint(writeTestFile(t, dir, b.String())); !errors.Is(err, ErrBadCheckpoint) ||
		!strings.Contains(err.Error(), "larger than") {
		t.Fatalf("ReadCheckpoint(> 16 MiB) = %v, want ErrBadCheckpoint", err)
	}
}

func TestReadCheckpointNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadCheckpoint(dir); err == nil || errors.Is(err, ErrBadCheckpoint) {
		t.Fatalf("ReadCheckpoint(directory) = %v, want an I/O error", err)
	}
}

func TestWriteCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".checkpoint")
	offsets := map[TopicPartition]int64{
		{"orders", 10}:              5,
		{"orders", 2}:               17,
		{"app-counts-changelog", 0}: 123456789012,
		{"orders", 0}:               -4,
	}
	if err := WriteCheckpoint(path, offsets); err != nil {
		t.Fatal(err)
	}
	const want = "0\n4\napp-counts-changelog 0 123456789012\norders 0 -4\norders 2 17\norders 10 5\n"
	if b, err := os.ReadFile(path); err != nil || string(b) != want {
		t.Fatalf("file = %q, %v; want %q", b, err, want)
	}
	got, err := ReadCheckpoint(path)
	if err != nil || !maps.Equal(got, offsets) {
		t.Fatalf("ReadCheckpoint = %v, %v; want %v", got, err, offsets)
	}

	// Overwriting replaces the file and leaves no temporary file behind.
	if err := WriteCheckpoint(path, map[TopicPartition]int64{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "0\n0\n" {
		t.Fatalf("empty checkpoint = %q, %v", b, err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if err := WriteCheckpoint(path, nil); err != nil { // a nil map is empty
		t.Fatal(err)
	}
}

func TestWriteCheckpointRejects(t *testing.T) {
	for name, offsets := range map[string]map[TopicPartition]int64{
		"NegativePartition": {{"t", 0}: 1, {"t", -1}: 1},
		"NegativeOffset":    {{"t", 0}: -1},
		"TopicWithSpace":    {{"a b", 0}: 1},
		"TopicWithNewline":  {{"a\n", 0}: 1},
		"EmptyTopic":        {{"", 0}: 1},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeTestFile(t, dir, "0\n1\nold 0 1\n")
			if err := WriteCheckpoint(path, offsets); err == nil {
				t.Fatal("WriteCheckpoint succeeded")
			}
			got, err := ReadCheckpoint(path)
			if err != nil || !maps.Equal(got, map[TopicPartition]int64{{"old", 0}: 1}) {
				t.Fatalf("old checkpoint changed: %v, %v", got, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("directory holds %d files, want 1", len(entries))
			}
		})
	}
}

func TestWriteCheckpointMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope", ".checkpoint")
	if err := WriteCheckpoint(path, map[TopicPartition]int64{{"t", 0}: 1}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteCheckpoint(missing dir) = %v, want ErrNotExist", err)
	}
}

// FuzzReadCheckpoint reads arbitrary files: ReadCheckpoint must not panic,
// must reject with ErrBadCheckpoint, and what it accepts must survive a
// write and a read unchanged.
func FuzzReadCheckpoint(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		got, err := ReadCheckpoint(writeTestFile(t, dir, string(data)))
		if err != nil {
			if !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("error %v does not wrap ErrBadCheckpoint", err)
			}
			if got != nil {
				t.Fatalf("ReadCheckpoint returned %v with error %v", got, err)
			}
			return
		}
		again := filepath.Join(dir, "again")
		if err := WriteCheckpoint(again, got); err != nil {
			t.Fatalf("WriteCheckpoint of a read checkpoint: %v", err)
		}
		reread, err := ReadCheckpoint(again)
		if err != nil || !maps.Equal(reread, got) {
			t.Fatalf("re-read = %v, %v; want %v", reread, err, got)
		}
	})
}
