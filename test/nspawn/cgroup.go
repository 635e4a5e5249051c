package nspawn

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// cgroupRoot is where run cgroups are made: the cgroup v2 hierarchy, at
// /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a pure v2 one.
func cgroupRoot() (string, error) {
	for _, d := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup")
}

var runs atomic.Int64

// newRunCgroup creates the cgroup one Docker boot starts from.
func newRunCgroup() (string, error) {
	root, err := cgroupRoot()
	if err != nil {
		return "", err
	}
	removeStaleRunCgroups(root)
	dir := filepath.Join(root, fmt.Sprintf("ecs-remediator-e2e-%d-%d", os.Getpid(), runs.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// removeRunCgroup kills whatever still runs in the cgroup (a container
// whose nspawn was SIGKILLed keeps running) and removes it, innermost
// first.
func removeRunCgroup(dir string) error {
	if procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); len(strings.TrimSpace(string(procs))) > 0 || hasChildren(dir) {
		_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0o644)
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		for try := 0; ; try++ {
			last = os.Remove(dirs[i])
			if last == nil || os.IsNotExist(last) || try == 50 {
				break
			}
			time.Sleep(100 * time.Millisecond) // killed processes take a moment to leave
		}
	}
	if os.IsNotExist(last) {
		return nil
	}
	return last
}

func hasChildren(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			return true
		}
	}
	return false
}

// removeStaleRunCgroups removes run cgroups of test processes that are gone.
func removeStaleRunCgroups(root string) {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "ecs-remediator-e2e-")
		if !ok || !e.IsDir() {
			continue
		}
		var pid, n int
		if _, err := fmt.Sscanf(rest, "%d-%d", &pid, &n); err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		_ = removeRunCgroup(filepath.Join(root, e.Name()))
	}
}
