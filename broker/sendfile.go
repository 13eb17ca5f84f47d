package broker

import (
	"fmt"
	"io"
	"net"
	"os"
)

// copyFileRange writes size bytes of f from position pos to dst through a
// user-space buffer, reading with positional reads.
func copyFileRange(dst net.Conn, f *os.File, pos, size int64) error {
	n, err := io.Copy(dst, io.NewSectionReader(f, pos, size))
	if err == nil && n != size {
		err = fmt.Errorf("copying %d bytes at %d of %s: %w", size, pos, f.Name(), io.ErrUnexpectedEOF)
	}
	return err
}
