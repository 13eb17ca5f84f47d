//go:build unix

package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

var syscallEMFILE = syscall.EMFILE

// lockDir takes an exclusive advisory lock on dir/.lock so two brokers
// never share a data directory. Closing the file releases it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another broker: %w", dir, err)
	}
	return f, nil
}
