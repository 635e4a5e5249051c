package netfilter

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// runner runs one external command. It is the only seam between this
// package and the iptables binaries; the production runner execs them.
type runner interface {
	run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

type execRunner struct{}

// run execs name with args on the calling goroutine's thread (so a test that
// runs in a private network namespace execs into that namespace), feeding
// stdin, and returns stdout. A failure carries the command line and stderr.
func (execRunner) run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	out.Grow(1 << 20) // a -save of a big ruleset: fewer copies while it grows
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.Bytes(), &cmdError{cmd: name + " " + strings.Join(args, " "), err: err, stderr: msg}
	}
	return out.Bytes(), nil
}

// cmdError is a failed command with what it printed.
type cmdError struct {
	cmd    string
	err    error
	stderr string
}

func (e *cmdError) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("%s: %v", e.cmd, e.err)
	}
	return fmt.Sprintf("%s: %v: %s", e.cmd, e.err, e.stderr)
}

func (e *cmdError) Unwrap() error { return e.err }

func lookPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
