// Package testbin builds the real ecs-remediator binary for the tests and
// the benchmark that run it, and collects a running daemon's log.
package testbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Build builds ./cmd/ecs-remediator of this module into dir and returns
// the binary's path.
func Build(dir string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the module")
	}
	bin := filepath.Join(dir, "ecs-remediator")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ecs-remediator")
	cmd.Dir = filepath.Join(filepath.Dir(self), "..", "..") // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/ecs-remediator: %v\n%s", err, out)
	}
	return bin, nil
}

// Main is a TestMain for the suites that run the binary: it builds it
// once into a temporary directory, sets *bin, runs the tests and removes
// the directory. A failed build fails the suite, and so does a test that
// changed the machine itself (a file the built-in policy writes, the
// host's route_localnet).
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "ecs-remediator-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	before := hostState()
	code := m.Run()
	os.RemoveAll(dir)
	if changed := hostChanges(before, hostState()); len(changed) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: a test changed the machine it runs on (give it temporary paths and a namespace):\n  %s\n", strings.Join(changed, "\n  "))
		code = 1
	}
	os.Exit(code)
}

// Log collects a daemon's output while it runs; safe for concurrent use.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
