//go:build unix

package streambench

import (
	"io/fs"
	"syscall"
)

// diskUsage is the space a file takes on disk: its allocated blocks
// (sparse and preallocated files count what they really use).
func diskUsage(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
