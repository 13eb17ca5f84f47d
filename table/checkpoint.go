package table

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrBadCheckpoint is wrapped by errors for a checkpoint file that cannot be
// parsed.
var ErrBadCheckpoint = errors.New("table: bad checkpoint file")

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

const (
	// checkpointVersion is the only version of the format, as in Kafka.
	checkpointVersion = 0
	// maxCheckpointSize bounds the checkpoint files ReadCheckpoint accepts.
	maxCheckpointSize = 16 << 20
	// offsetUnknown is Kafka's OffsetCheckpoint.OFFSET_UNKNOWN, the only
	// negative offset a checkpoint may hold.
	offsetUnknown = -4
	// maxTopicLen is the longest topic name Kafka accepts.
	maxTopicLen = 249
)

// ReadCheckpoint reads the checkpoint at path, in the format of Kafka
// Streams' .checkpoint files (see WriteCheckpoint). A missing file yields an
// empty, non-nil map and nil error.
//
// A malformed file yields an error wrapping ErrBadCheckpoint: an unknown
// version, an entry count that does not match the entries, a line that is
// not newline-terminated, a number that does not parse, a negative partition,
// a negative offset other than -4 (Kafka's unknown offset), a topic that is
// not a legal Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -; spaces make
// the line malformed), a duplicate entry, or a file larger than 16 MiB.
// Other errors (a file that cannot be read) are returned as they are.
func ReadCheckpoint(path string) (map[TopicPartition]int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("table: read checkpoint: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCheckpointSize+1))
	if err != nil {
		return nil, fmt.Errorf("table: read checkpoint: %w", err)
	}
	if len(data) > maxCheckpointSize {
		return nil, fmt.Errorf("%w %s: larger than %d bytes", ErrBadCheckpoint, path, maxCheckpointSize)
	}
	offsets, err := parseCheckpoint(string(data))
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadCheckpoint, path, err)
	}
	return offsets, nil
}

// parseCheckpoint parses the contents of a checkpoint file.
func parseCheckpoint(data string) (map[TopicPartition]int64, error) {
	if data == "" {
		return nil, errors.New("empty")
	}
	if !strings.HasSuffix(data, "\n") {
		return nil, errors.New("last line is not newline-terminated")
	}
	var version, count, lineNo int64
	offsets := map[TopicPartition]int64{}
	for rest := data; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		lineNo++
		var err error
		switch lineNo {
		case 1:
			version, err = parseDecimal(line, 63)
			if err == nil && version != checkpointVersion {
				err = fmt.Errorf("unsupported version %d", version)
			}
		case 2:
			count, err = parseDecimal(line, 63)
			if err == nil {
				// Each entry takes at least 6 bytes ("t 0 0\n"): do not trust
				// count for more room than the file can fill.
				offsets = make(map[TopicPartition]int64, min(count, int64(len(rest)/6)))
			}
		default:
			err = parseEntry(line, offsets)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	if lineNo < 2 {
		return nil, errors.New("no entry count")
	}
	if int64(len(offsets)) != count {
		return nil, fmt.Errorf("%d entries, but the count says %d", len(offsets), count)
	}
	return offsets, nil
}

// parseEntry parses one "topic partition offset" line into offsets.
func parseEntry(line string, offsets map[TopicPartition]int64) error {
	fields := strings.Split(line, " ")
	if len(fields) != 3 {
		return fmt.Errorf("%q is not \"topic partition offset\"", line)
	}
	topic := fields[0]
	if !validTopic(topic) {
		return fmt.Errorf("invalid topic %q", topic)
	}
	partition, err := parseDecimal(fields[1], 31)
	if err != nil {
		return fmt.Errorf("partition: %w", err)
	}
	offset, err := parseOffset(fields[2])
	if err != nil {
		return err
	}
	tp := TopicPartition{Topic: topic, Partition: int32(partition)}
	if _, dup := offsets[tp]; dup {
		return fmt.Errorf("duplicate entry for %s %d", tp.Topic, tp.Partition)
	}
	offsets[tp] = offset
	return nil
}

// parseDecimal parses a non-negative decimal number of at most bits bits:
// ASCII digits only, no sign.
func parseDecimal(s string, bits int) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a non-negative decimal number", s)
	}
	n, err := strconv.ParseInt(s, 10, bits+1)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return n, nil
}

// parseOffset parses an offset: a non-negative number or -4.
func parseOffset(s string) (int64, error) {
	if s == strconv.Itoa(offsetUnknown) {
		return offsetUnknown, nil
	}
	n, err := parseDecimal(s, 63)
	if err != nil {
		return 0, fmt.Errorf("offset: %w", err)
	}
	return n, nil
}

// validTopic reports whether topic is a legal Kafka topic name.
func validTopic(topic string) bool {
	if topic == "" || len(topic) > maxTopicLen || topic == "." || topic == ".." {
		return false
	}
	for i := range len(topic) {
		switch c := topic[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// WriteCheckpoint writes offsets to path atomically, in the format of Kafka
// Streams' .checkpoint files: a line with the version, 0; a line with the
// number of entries; then one line per entry, "topic partition offset",
// separated by single spaces. Every line ends with a newline. Entries are
// sorted by topic, then partition, so equal maps give equal files.
//
// The file is written to path+".tmp" and fsynced, renamed over path, and the
// directory is fsynced: a crash leaves either the old or the new checkpoint.
// Concurrent writers of one path are not supported.
//
// Offsets that ReadCheckpoint would reject are refused before anything is
// written: a topic that is not a legal Kafka topic name, a negative
// partition, a negative offset other than -4 (Kafka's unknown offset). An
// empty map writes a checkpoint with no entries.
func WriteCheckpoint(path string, offsets map[TopicPartition]int64) error {
	tps := slices.SortedFunc(maps.Keys(offsets), func(a, b TopicPartition) int {
		return cmp.Or(strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	buf := make([]byte, 0, 8+len(tps)*32)
	buf = strconv.AppendInt(buf, checkpointVersion, 10)
	buf = append(buf, '\n')
	buf = strconv.AppendInt(buf, int64(len(tps)), 10)
	buf = append(buf, '\n')
	for _, tp := range tps {
		offset := offsets[tp]
		switch {
		case !validTopic(tp.Topic):
			return fmt.Errorf("table: write checkpoint %s: invalid topic %q", path, tp.Topic)
		case tp.Partition < 0:
			return fmt.Errorf("table: write checkpoint %s: negative partition %d of %s", path, tp.Partition, tp.Topic)
		case offset < 0 && offset != offsetUnknown:
			return fmt.Errorf("table: write checkpoint %s: invalid offset %d for %s %d", path, offset, tp.Topic, tp.Partition)
		}
		buf = append(buf, tp.Topic...)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, int64(tp.Partition), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, offset, 10)
		buf = append(buf, '\n')
	}
	if len(buf) > maxCheckpointSize {
		return fmt.Errorf("table: write checkpoint %s: %d bytes is more than %d", path, len(buf), maxCheckpointSize)
	}
	if err := writeFileSync(path+".tmp", buf); err != nil {
		return fmt.Errorf("table: write checkpoint: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		os.Remove(path + ".tmp")
		return fmt.Errorf("table: write checkpoint: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("table: write checkpoint: %w", err)
	}
	return nil
}

// writeFileSync writes data to name, truncating it, and fsyncs it. On error
// it removes name.
func writeFileSync(name string, data []byte) (err error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(name)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir fsyncs directory dir, making a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
