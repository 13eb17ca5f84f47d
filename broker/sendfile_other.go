//go:build !linux

package broker

import (
	"net"
	"os"
)

// sendFileRange writes size bytes of f from position pos to dst, with
// positional reads (the file's shared position is not used).
func sendFileRange(dst net.Conn, f *os.File, pos, size int64) error {
	return copyFileRange(dst, f, pos, size)
}
