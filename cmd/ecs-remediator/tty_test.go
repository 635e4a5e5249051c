package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// runTTY runs the binary with stdout and stderr on a new pseudo-terminal of
// cols columns (0: leave the size alone) and returns what it printed, with
// the terminal's \r\n turned back into \n. env is added to the environment.
func runTTY(t *testing.T, cols int, env []string, args ...string) result {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cols > 0 {
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: uint16(cols)}); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	_, rerr := io.Copy(&out, master) // EIO once the child has exited
	werr := cmd.Wait()
	if rerr != nil && !errors.Is(rerr, syscall.EIO) {
		t.Fatal(rerr)
	}
	code := 0
	if ee, ok := werr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if werr != nil {
		t.Fatal(werr)
	}
	s := strings.ReplaceAll(out.String(), "\r\n", "\n")
	return result{code: code, stdout: s}
}

func longest(s string) (int, string) {
	n, line := 0, ""
	for _, l := range strings.Split(s, "\n") {
		if c := len([]rune(l)); c > n {
			n, line = c, l
		}
	}
	return n, line
}

// unwrapEnv clears COLUMNS so the terminal's own size decides.
var unwrapEnv = []string{"COLUMNS="}

// A finding's DETAIL wraps to the terminal; --wide and a pipe get each
// finding and each fix whole on one line.
func TestTableFitsTerminal(t *testing.T) {
	long := strings.Repeat("x", 30)
	h := newHost(t, "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\nHTTP_PROXY=http://proxy."+long+".example:3128\n", "")
	for _, cols := range []int{80, 100, 200} {
		r := runTTY(t, cols, unwrapEnv, "check", "--config", h.policy)
		if r.code != 1 {
			t.Fatalf("%d columns: exit %d\n%s", cols, r.code, r.stdout)
		}
		if n, l := longest(r.stdout); n > cols {
			t.Errorf("%d columns: a line of %d: %q\n%s", cols, n, l, r.stdout)
		}
		if !strings.Contains(r.stdout, "fix:") || !strings.Contains(r.stdout, "NOT compliant") {
			t.Errorf("%d columns:\n%s", cols, r.stdout)
		}
	}
	// $COLUMNS wins over the terminal's size.
	r := runTTY(t, 200, []string{"COLUMNS=60"}, "check", "--config", h.policy)
	if n, l := longest(r.stdout); n > 60 {
		t.Errorf("COLUMNS=60: a line of %d: %q\n%s", n, l, r.stdout)
	}
	// --wide on a terminal and any pipe: one line per finding, one per fix.
	piped := run(t, "check", "--config", h.policy)
	wideTTY := runTTY(t, 80, unwrapEnv, "check", "--config", h.policy, "--wide")
	jr := decodeReport(t, run(t, "check", "--config", h.policy, "--json").stdout)
	lines := 1 + 2 // header, blank, verdict
	for _, f := range jr.Findings {
		lines++
		if f.Fix != "" && f.Status != "ok" {
			lines++
		}
	}
	for name, out := range map[string]string{"pipe": piped.stdout, "--wide": wideTTY.stdout} {
		if got := strings.Count(out, "\n"); got != lines {
			t.Errorf("%s: %d lines, want %d (one per finding and fix):\n%s", name, got, lines, out)
		}
		if n, _ := longest(out); n <= 80 {
			t.Errorf("%s: the longest line has %d characters: wrapped?\n%s", name, n, out)
		}
		for _, f := range jr.Findings {
			if !strings.Contains(out, f.Detail) {
				t.Errorf("%s: the detail of %s is not whole: %q", name, f.Item, f.Detail)
			}
		}
	}
}

func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		in    string
		width int
		want  []string
	}{
		{"a b c", 80, []string{"a b c"}},
		{"aaa bbb ccc", 7, []string{"aaa bbb", "ccc"}},
		{"/a/very/long/path/name x", 10, []string{"/a/very/lo", "ng/path/na", "me x"}},
		{"", 10, []string{""}},
	} {
		if got := wrap(tc.in, tc.width); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}

func TestShortFix(t *testing.T) {
	detail := "missing: iptables -t nat OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679"
	fix := "ecs-remediator apply (runs: iptables -t nat -A OUTPUT -p tcp -d 169.254.170.2 --dport 80 -j REDIRECT --to-ports 51679)"
	if got, want := shortFix(detail, fix), "ecs-remediator apply (runs iptables -A OUTPUT with the rule above)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	guard := "missing: iptables -t filter INPUT --dst 127.0.0.0/8 -j DROP"
	if got, want := shortFix(guard, "ecs-remediator apply (runs: iptables -t filter -I INPUT 2 --dst 127.0.0.0/8 -j DROP)"), "ecs-remediator apply (runs iptables -I INPUT 2 with the rule above)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// A command the detail does not show is kept.
	other := "ecs-remediator apply (runs: iptables -t nat -A OUTPUT -p udp -j RETURN)"
	if got := shortFix(detail, other); got != other {
		t.Errorf("shortened a fix the detail does not repeat: %q", got)
	}
	if got := shortFix(detail, "ecs-remediator apply"); got != "ecs-remediator apply" {
		t.Errorf("%q", got)
	}
}
