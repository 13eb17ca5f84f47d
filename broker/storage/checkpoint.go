package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Files in a partition directory besides segments.
const (
	cleanShutdownFile    = "clean-shutdown"
	recoveryPointFile    = "recovery-point-checkpoint"
	logStartOffsetFile   = "log-start-offset-checkpoint"
	cleanerOffsetFile    = "cleaner-offset-checkpoint"
	checkpointTempSuffix = ".tmp"
)

func storageErr(err error) error {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return err
	}
	return fmt.Errorf("storage: %v: %w", err, kerr.KafkaStorageError)
}

// readCheckpoint reads an int64 checkpoint; ok is false when the file is
// missing or unreadable.
func readCheckpoint(dir, name string) (int64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

// writeCheckpoint atomically replaces an int64 checkpoint file: write a
// temporary file, fsync it, rename it over the old one, fsync the directory.
func writeCheckpoint(dir, name string, v int64) error {
	tmp := filepath.Join(dir, name+checkpointTempSuffix)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return storageErr(err)
	}
	if _, err := f.WriteString(strconv.FormatInt(v, 10) + "\n"); err != nil {
		f.Close()
		return storageErr(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return storageErr(err)
	}
	if err := f.Close(); err != nil {
		return storageErr(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return storageErr(err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	return syncPath(dir)
}
