package kernel

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Runner runs one external command: the iptables binaries, for the text
// reader, the restore batches and the other backend's -save. Exec is the
// production runner; tests substitute one that answers without a kernel
// (the text reader then takes the same path as in production).
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

// Exec runs commands with os/exec.
type Exec struct{}

// Run execs name with args on the calling goroutine's thread (so a test that
// runs in a private network namespace execs into that namespace), feeding
// stdin, and returns stdout. A failure is a *CmdError with the command line
// and stderr.
func (Exec) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
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
		return out.Bytes(), &CmdError{Cmd: name + " " + strings.Join(args, " "), Err: err, Stderr: msg}
	}
	return out.Bytes(), nil
}

// CmdError is a failed command with what it printed.
type CmdError struct {
	Cmd    string // the command line
	Err    error  // how it failed (an *exec.ExitError, ...)
	Stderr string // what it printed on stderr (or stdout when stderr was empty)
}

func (e *CmdError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s: %v", e.Cmd, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Cmd, e.Err, e.Stderr)
}

func (e *CmdError) Unwrap() error { return e.Err }
