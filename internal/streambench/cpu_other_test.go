//go:build !unix

package streambench

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
