//go:build linux

package broker

import (
	"io"
	"net"
	"os"
	"syscall"
)

// sendFileRange writes size bytes of f from position pos to dst. On a TCP
// connection it uses sendfile(2) with an explicit offset, so the bytes go
// from the page cache to the socket without passing through user space and
// the file's shared position is neither used nor moved (concurrent fetches
// of one segment do not race). Other connections fall back to copying.
func sendFileRange(dst net.Conn, f *os.File, pos, size int64) error {
	sc, ok := dst.(syscall.Conn)
	if !ok {
		return copyFileRange(dst, f, pos, size)
	}
	dstRaw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	srcRaw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := srcRaw.Control(func(src uintptr) {
		werr := dstRaw.Write(func(fd uintptr) bool {
			for size > 0 {
				n, err := syscall.Sendfile(int(fd), int(src), &pos, int(min(size, 1<<30)))
				if n > 0 {
					size -= int64(n)
				}
				switch {
				case err == syscall.EINTR:
				case err == syscall.EAGAIN:
					return false // wait until the socket is writable
				case err != nil:
					serr = os.NewSyscallError("sendfile", err)
					return true
				case n == 0:
					serr = io.ErrUnexpectedEOF // the file is shorter than the range
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr != nil {
		return serr
	}
	return cerr
}
