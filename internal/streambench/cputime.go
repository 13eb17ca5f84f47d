package streambench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTick = 10 * time.Millisecond

// ProcessCPU returns the CPU time (user and system) process pid has used,
// pid 0 meaning this process, read from /proc/<pid>/stat: Linux only, an
// error elsewhere. Its resolution is 10 ms.
func ProcessCPU(pid int) (time.Duration, error) {
	p := "self"
	if pid > 0 {
		p = strconv.Itoa(pid)
	}
	b, err := os.ReadFile("/proc/" + p + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("streambench: unexpected /proc/%s/stat", p)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("streambench: unexpected /proc/%s/stat", p)
	}
	// Fields 14 and 15 (utime, stime); f[0] is field 3.
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("streambench: /proc/%s/stat: %w", p, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
