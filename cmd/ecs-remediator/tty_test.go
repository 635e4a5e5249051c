package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ecs-remediator/ecs-remediator/pkg/policy"
)

// openPTY opens a new pseudo-terminal of cols columns (0: leave the size
// alone) and returns its master and slave ends.
func openPTY(t *testing.T, cols int) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cols > 0 {
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: uint16(cols)}); err != nil {
			t.Fatal(err)
		}
	}
	return master, slave
}

// ttyCommand is the binary with stdin, stdout and stderr on slave, in its
// own session with slave as its controlling terminal.
func ttyCommand(slave *os.File, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	return cmd
}

// runTTY runs the binary with stdout and stderr on a new pseudo-terminal of
// cols columns and returns what it printed, with the terminal's \r\n
// turned back into \n. env is added to the environment.
func runTTY(t *testing.T, cols int, env []string, args ...string) result {
	t.Helper()
	master, slave := openPTY(t, cols)
	defer master.Close()
	cmd := ttyCommand(slave, env, args...)
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

// startTTY starts a long-running command (the daemon) on a new
// pseudo-terminal; it is stopped with SIGTERM when the test ends.
func startTTY(t *testing.T, cols int, args ...string) *syncBuffer {
	t.Helper()
	master, slave := openPTY(t, cols)
	cmd := ttyCommand(slave, unwrapEnv, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		io.Copy(crlf{out}, master)
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		<-done
		master.Close()
	})
	return out
}

// crlf turns a terminal's \r\n into \n.
type crlf struct{ w io.Writer }

func (c crlf) Write(p []byte) (int, error) {
	_, err := c.w.Write(bytes.ReplaceAll(p, []byte("\r"), nil))
	return len(p), err
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
	h := newHost(t, "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\nHTTP_PROXY=http://proxy."+long+".example:3128\n")
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
	if got, want := shortFix(detail, fix), "ecs-remediator apply (runs iptables -t nat -A OUTPUT with the rule above)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	guard := "missing: iptables -t filter INPUT --dst 127.0.0.0/8 -j DROP"
	if got, want := shortFix(guard, "ecs-remediator apply (runs: iptables -t filter -I INPUT 2 --dst 127.0.0.0/8 -j DROP)"), "ecs-remediator apply (runs iptables -t filter -I INPUT 2 with the rule above)"; got != want {
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

// On a terminal apply prints the sentences only; the fields are in
// --log-format json (and the journal); a pipe gets the text lines with
// their fields.
func TestApplyLogFormats(t *testing.T) {
	const drifted = "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n"
	h := newHost(t, drifted)
	r := runTTY(t, 80, unwrapEnv, "apply", "--config", h.policy)
	if r.code != 0 || !strings.Contains(r.stdout, "ecs_config.ECS_ENABLE_TASK_IAM_ROLE: rewrote line 1") {
		t.Fatalf("apply on a terminal: exit %d\n%s", r.code, r.stdout)
	}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.Contains(l, "{") || strings.Contains(l, "message_id") || strings.Contains(l, " INFO ") {
			t.Errorf("apply on a terminal printed a structured line: %q", l)
		}
	}

	os.WriteFile(h.ecsConfig, []byte(drifted), 0o644)
	r = run(t, "apply", "--config", h.policy, "--log-format", "json")
	var repaired map[string]any
	for _, l := range strings.Split(r.stderr, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("--log-format json: %q: %v", l, err)
		}
		if m["item"] == "ecs_config.ECS_ENABLE_TASK_IAM_ROLE" {
			repaired = m
		}
	}
	if r.code != 0 || repaired == nil || repaired["message_id"] != "5c620fe93edf42679e0e7d6686fc5f36" || repaired["old"] != `"true"` || repaired["new"] != "true" {
		t.Fatalf("--log-format json: exit %d, repair %v\n%s", r.code, repaired, r.stderr)
	}

	os.WriteFile(h.ecsConfig, []byte(drifted), 0o644)
	if r := run(t, "apply", "--config", h.policy); !strings.Contains(r.stderr, `"item": "ecs_config.ECS_ENABLE_TASK_IAM_ROLE"`) {
		t.Errorf("apply into a pipe lost the fields:\n%s", r.stderr)
	}
	if r := run(t, "apply", "--config", h.policy, "--log-format", "yaml"); r.code != 2 || !strings.Contains(r.stderr, `--log-format "yaml": give human, text or json`) {
		t.Errorf("bad --log-format: exit %d %q", r.code, r.stderr)
	}
}

// The daemon in a terminal prints sentences too.
func TestRunOnTerminal(t *testing.T) {
	h := newHost(t, "ECS_ENABLE_TASK_IAM_ROLE=\"true\"\n", func(p *policy.Policy) {
		p.Metrics.Textfile, p.Doctor.Interval, p.Agent.Restart = policy.Off, time.Hour, policy.RestartNever
	})
	out := startTTY(t, 100, "run", "--config", h.policy)
	eventually(t, "the repair logged", out, func() bool {
		return strings.Contains(out.String(), "ecs_config.ECS_ENABLE_TASK_IAM_ROLE: rewrote line 1")
	})
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "message_id") || strings.Contains(l, `{"`) {
			t.Errorf("run on a terminal printed a structured line: %q", l)
		}
	}
}
