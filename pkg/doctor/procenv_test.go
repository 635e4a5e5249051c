package doctor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-remediator/ecs-remediator/test/nstest"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in          string
		comm, state string
		ppid        int
		ok          bool
	}{
		{"1234 (sleep) S 1200 1234 1200 0 -1", "sleep", "S", 1200, true},
		{"99 (my (odd) proc) R 7 99 7", "my (odd) proc", "R", 7, true},
		{"5 (zombie) Z 1 5", "zombie", "Z", 1, true},
		{"garbage", "", "", 0, false},
		{"5 (x) S notanumber", "", "", 0, false},
	} {
		comm, state, ppid, ok := parseStat([]byte(tc.in))
		if comm != tc.comm || state != tc.state || ppid != tc.ppid || ok != tc.ok {
			t.Errorf("parseStat(%q) = %q %q %d %v", tc.in, comm, state, ppid, ok)
		}
	}
}

func TestContainerRoot(t *testing.T) {
	const host, ctr, nested = "pid:[1]", "pid:[2]", "pid:[3]"
	procs := map[int]procInfo{
		1:  {pid: 1, ppid: 0, pidNS: host},     // host init
		50: {pid: 50, ppid: 1, pidNS: host},    // containerd-shim
		60: {pid: 60, ppid: 50, pidNS: ctr},    // container PID 1
		61: {pid: 61, ppid: 60, pidNS: ctr},    // its child
		62: {pid: 62, ppid: 61, pidNS: ctr},    // grandchild
		70: {pid: 70, ppid: 62, pidNS: nested}, // a nested namespace
		80: {pid: 80, ppid: 999, pidNS: ctr},   // parent vanished
	}
	for pid, want := range map[int]int{1: 1, 50: 1, 60: 60, 61: 60, 62: 60, 70: 70, 80: 80, 12345: 0} {
		if got := containerRoot(procs, pid); got != want {
			t.Errorf("containerRoot(%d) = %d, want %d", pid, got, want)
		}
	}
}

func TestEnvHas(t *testing.T) {
	for _, tc := range []struct {
		env       string
		rel, full bool
	}{
		{"PATH=/bin\x00AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/x\x00", true, false},
		{"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://x\x00", false, true},
		{"XAWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2\x00", false, false},
		{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\x00", false, false},
		{"", false, false},
	} {
		if rel, full := envHas([]byte(tc.env)); rel != tc.rel || full != tc.full {
			t.Errorf("envHas(%q) = %v %v", tc.env, rel, full)
		}
	}
}

// startContainer builds a real process tree in a new PID namespace, as a
// container runtime does: `unshare --pid --fork` makes sh the namespace's
// PID 1 with AWS_CONTAINER_CREDENTIALS_RELATIVE_URI in its environment,
// and script starts its children. It returns sh's host pid and pid-ns link.
func startContainer(t *testing.T, script string) (root int, ns string) {
	t.Helper()
	nstest.Require(t, "unshare", "sh", "sleep", "env")
	cmd := exec.Command("unshare", "--pid", "--fork", "--kill-child", "sh", "-c", script)
	cmd.Env = append(os.Environ(), credentialsEnvVar+"=/v2/credentials/0b5e3bb8-test")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL) // --kill-child takes the namespace down with it
		_ = cmd.Wait()
	})
	// Wait for sh (unshare's child) and its two sleeps to exist.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		procs, err := readProcs("/proc")
		if err != nil {
			t.Fatal(err)
		}
		for pid, p := range procs {
			if p.ppid == cmd.Process.Pid {
				root = pid
			}
		}
		kids := 0
		for _, p := range procs {
			if root != 0 && p.ppid == root && p.comm == "sleep" {
				kids++
			}
		}
		if kids == 2 {
			if procs[root].pidNS == procs[cmd.Process.Pid].pidNS {
				t.Fatalf("sh %d is not in a new PID namespace", root)
			}
			return root, procs[root].pidNS
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the process tree under unshare %d did not appear", cmd.Process.Pid)
	return 0, ""
}

// blindIn returns the scan's finding for one container.
func blindIn(t *testing.T, ns string) *blindProcess {
	t.Helper()
	blind, containers, _, err := scanCredentialsEnv("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if containers == 0 {
		t.Fatal("the scan saw no task container")
	}
	for _, b := range blind {
		if b.pidNS == ns {
			return &b
		}
	}
	return nil
}

func TestCredentialsEnvRealTree(t *testing.T) {
	t.Run("a child lost the variable", func(t *testing.T) {
		// The first sleep runs with the variable removed, as under a
		// wrapper that clears the environment; the second keeps it.
		root, ns := startContainer(t, "env -u "+credentialsEnvVar+" sleep 300 & sleep 301 & wait")
		b := blindIn(t, ns)
		if b == nil {
			t.Fatalf("no finding for the container of pid %d (%s)", root, ns)
		}
		if b.rootPID != root || b.comm != "sleep" || b.othersSeen != 0 {
			t.Fatalf("finding %+v, want one sleep under root %d", *b, root)
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(b.pid), "cmdline"))
		if !strings.Contains(string(cmdline), "300") {
			t.Fatalf("named pid %d (%q), want the sleep 300 without the variable", b.pid, cmdline)
		}
		r := checkTasksCredentialsEnv("/proc")
		if r.Status != Warn || !strings.Contains(r.Detail, fmt.Sprintf("pid %d (sleep)", b.pid)) || !strings.Contains(r.Fix, "entrypoint") {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("warned once per container", func(t *testing.T) {
		_, ns := startContainer(t, "env -u "+credentialsEnvVar+" sleep 300 & env -u "+credentialsEnvVar+" sleep 301 & wait")
		b := blindIn(t, ns)
		if b == nil || b.othersSeen != 1 {
			t.Fatalf("finding %+v, want one finding naming one more process", b)
		}
		r := checkTasksCredentialsEnv("/proc")
		if strings.Count(r.Detail, ns) != 1 || !strings.Contains(r.Detail, "and 1 more") {
			t.Fatalf("want the container once: %+v", r)
		}
	})
	t.Run("every child has it", func(t *testing.T) {
		_, ns := startContainer(t, "sleep 300 & sleep 301 & wait")
		if b := blindIn(t, ns); b != nil {
			t.Fatalf("unexpected finding %+v", *b)
		}
	})
	t.Run("FULL_URI counts", func(t *testing.T) {
		_, ns := startContainer(t, "env -u "+credentialsEnvVar+" "+fullURIEnvVar+"=http://127.0.0.1/creds sleep 300 & sleep 301 & wait")
		if b := blindIn(t, ns); b != nil {
			t.Fatalf("unexpected finding %+v", *b)
		}
	})
}

func TestCredentialsEnvUnreadable(t *testing.T) {
	r := checkTasksCredentialsEnv(filepath.Join(t.TempDir(), "missing"))
	if r.Status != Skip || !strings.Contains(r.Detail, "missing") {
		t.Fatalf("got %+v", r)
	}
}
