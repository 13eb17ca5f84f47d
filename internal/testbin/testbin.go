// Package testbin builds the eddy binary once per test process for suites
// that run it as a subprocess (the crash and interop suites).
//
// A suite's TestMain calls Main, which runs the tests and removes the build
// directory; tests call Eddy to get the binary's path, built on first use so
// that `go test -run` of tests that do not need it skips the build.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	dir      string // set by Main, removed after the tests
	once     sync.Once
	path     string
	buildErr error
)

// Main runs the tests of m with a temporary build directory and exits with
// their status. prefix names the directory (os.MkdirTemp's pattern).
func Main(m *testing.M, prefix string) {
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	dir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// Eddy builds ./cmd/eddy of this module once and returns its path; a build
// failure fails t.
func Eddy(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if dir == "" {
			buildErr = fmt.Errorf("testbin.Eddy: TestMain must call testbin.Main")
			return
		}
		path = filepath.Join(dir, "eddy")
		cmd := exec.Command("go", "build", "-o", path, "./cmd/eddy")
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/eddy: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return path
}

// moduleRoot is the repository root: two levels above this file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var (
	progMu sync.Mutex
	progs  = map[string]*program{}
)

// program is one main package built by Program.
type program struct {
	once sync.Once
	path string
	err  error
}

// Program builds the main package pkg of this module (a path relative to
// the module root, such as "./examples/wordcount") once per test process
// and returns the binary's path; a build failure fails t. TestMain must call
// Main.
func Program(t testing.TB, pkg string) string {
	t.Helper()
	progMu.Lock()
	p := progs[pkg]
	if p == nil {
		p = &program{}
		progs[pkg] = p
	}
	progMu.Unlock()
	p.once.Do(func() {
		if dir == "" {
			p.err = fmt.Errorf("testbin.Program: TestMain must call testbin.Main")
			return
		}
		p.path = filepath.Join(dir, "prog"+strings.NewReplacer("/", "_", ".", "_").Replace(filepath.Clean(pkg)))
		cmd := exec.Command("go", "build", "-o", p.path, pkg)
		cmd.Dir = moduleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			p.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if p.err != nil {
		t.Fatal(p.err)
	}
	return p.path
}
