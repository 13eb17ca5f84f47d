//go:build !unix

package broker

import (
	"errors"
	"os"
	"path/filepath"
)

var syscallEMFILE = errors.New("too many open files")

// lockDir creates dir/.lock; without flock it cannot detect a second broker.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
}
