//go:build !unix

package streambench

import "io/fs"

// diskUsage is the file's size (allocated blocks are not portable).
func diskUsage(info fs.FileInfo) int64 { return info.Size() }
